//! attempts.parquet: the final attempts table, one row per attempt, attributes and scores as
//! columns (`attr.<name>`, `score.<detector>`), sorted by suite, probe and case id.

use std::collections::BTreeSet;
use std::path::Path;

use audit_core::{Answer, Attempt, Query};
use polars::prelude::*;

use crate::ReportError;

/// Writes the attempts table as Parquet.
pub fn write_parquet(attempts: &[Attempt], path: &Path) -> Result<(), ReportError> {
    let error = |e: PolarsError| ReportError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut frame = attempts_frame(attempts).map_err(error)?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .finish(&mut frame)
        .map_err(error)?;
    crate::write_bytes(path, &bytes)
}

/// The attempts as a polars DataFrame.
pub fn attempts_frame(attempts: &[Attempt]) -> PolarsResult<DataFrame> {
    let mut sorted: Vec<&Attempt> = attempts.iter().collect();
    sorted.sort_by(|a, b| (&a.suite, &a.probe, &a.case_id).cmp(&(&b.suite, &b.probe, &b.case_id)));
    let text = |f: &dyn Fn(&Attempt) -> Option<String>| -> Vec<Option<String>> {
        sorted.iter().map(|a| f(a)).collect()
    };
    let json = |value: &dyn erased::Json| Some(value.to_json());
    let mut columns = vec![
        Column::new("suite".into(), text(&|a| Some(a.suite.clone()))),
        Column::new("probe".into(), text(&|a| Some(a.probe.clone()))),
        Column::new("case_id".into(), text(&|a| Some(a.case_id.clone()))),
        Column::new(
            "kind".into(),
            text(&|a| Some(a.query.kind().name().to_string())),
        ),
        Column::new(
            "prompt".into(),
            text(&|a| match &a.query {
                Query::Chat { prompt, .. } => Some(prompt.clone()),
                Query::Choice { context, .. } => Some(context.clone()),
                Query::Embed { texts } | Query::Classify { texts } => json(texts),
                Query::SuffixSearch { prompt, .. } => Some(prompt.clone()),
                Query::Attack { goal, .. } => match &a.answer {
                    Answer::Attack(record) => Some(record.prompt.clone()),
                    _ => Some(goal.clone()),
                },
            }),
        ),
        Column::new(
            "options".into(),
            text(&|a| match &a.query {
                Query::Choice { options, .. } => json(options),
                _ => None,
            }),
        ),
        Column::new(
            "response".into(),
            text(&|a| match &a.answer {
                Answer::Response(r) | Answer::SuffixSearch { response: r, .. } => Some(r.clone()),
                Answer::Attack(record) if record.failure.is_none() => Some(record.response.clone()),
                Answer::Attack(_) => None,
                Answer::Logprobs(l) | Answer::TokenLogprobs { logprobs: l, .. } => json(l),
                Answer::Embeddings(e) => json(e),
                Answer::Labels(l) => json(l),
                Answer::Error(_) => None,
            }),
        ),
        Column::new("error".into(), text(&|a| a.error().map(str::to_string))),
    ];
    let attribute_keys: BTreeSet<&String> =
        sorted.iter().flat_map(|a| a.attributes.keys()).collect();
    for key in attribute_keys {
        columns.push(Column::new(
            format!("attr.{key}").into(),
            text(&|a| a.attributes.get(key).cloned()),
        ));
    }
    let score_keys: BTreeSet<&String> = sorted.iter().flat_map(|a| a.scores.keys()).collect();
    for key in score_keys {
        let values: Vec<Option<f64>> = sorted.iter().map(|a| a.scores.get(key).copied()).collect();
        columns.push(Column::new(format!("score.{key}").into(), values));
    }
    DataFrame::new(sorted.len(), columns)
}

/// Serializing a value to a JSON cell without naming its type at every call.
mod erased {
    pub trait Json {
        fn to_json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}
