//! Ad-hoc breakdowns of a finished run with polars: the rate of a binary detector for every
//! combination of any attributes, with Wilson intervals. The same numbers as the `rate` metric,
//! for groupings the suite did not ask for (`probity report DIR --rate refusal --by template`).

use audit_core::stats::wilson;
use audit_core::{Attempt, Attributes, Estimate};
use polars::prelude::*;

use crate::parquet::attempts_frame;

/// The rate of `detector` (score ≥ `FLAGGED`) per combination of the `by` attributes, over the
/// attempts the detector scored; attempts without an attribute fall in its "" group. Sorted by
/// the group values.
pub fn rates_by(
    attempts: &[Attempt],
    detector: &str,
    by: &[String],
    confidence: f64,
) -> PolarsResult<Vec<Estimate>> {
    let score = format!("score.{detector}");
    let frame = attempts_frame(attempts)?;
    if frame.column(&score).is_err() {
        return Ok(Vec::new());
    }
    let mut frame = frame.lazy();
    let mut keys = Vec::new();
    for attribute in by {
        let column = format!("attr.{attribute}");
        let exists = attempts
            .iter()
            .any(|a| a.attributes.contains_key(attribute));
        frame = if exists {
            frame.with_column(
                col(column.as_str())
                    .fill_null(lit(""))
                    .alias(column.as_str()),
            )
        } else {
            frame.with_column(lit("").alias(column.as_str()))
        };
        keys.push(column);
    }
    let key_exprs: Vec<Expr> = keys.iter().map(|k| col(k.as_str())).collect();
    let grouped = frame
        .filter(col(score.as_str()).is_not_null())
        .with_column(
            col(score.as_str())
                .gt_eq(lit(audit_core::attempt::FLAGGED))
                .cast(DataType::UInt64)
                .alias("flagged"),
        )
        .group_by(key_exprs)
        .agg([
            col("flagged").sum().cast(DataType::UInt64).alias("k"),
            len().cast(DataType::UInt64).alias("n"),
        ])
        .sort(keys.clone(), SortMultipleOptions::default())
        .collect()?;
    let k = grouped.column("k")?.u64()?.clone();
    let n = grouped.column("n")?.u64()?.clone();
    let mut values = Vec::with_capacity(keys.len());
    for key in &keys {
        values.push(grouped.column(key)?.str()?.clone());
    }
    let mut estimates = Vec::with_capacity(grouped.height());
    for row in 0..grouped.height() {
        let (k, n) = (k.get(row).unwrap_or(0), n.get(row).unwrap_or(0));
        let group: Attributes = by
            .iter()
            .zip(&values)
            .map(|(attribute, column)| {
                (attribute.clone(), column.get(row).unwrap_or("").to_string())
            })
            .collect();
        let interval = wilson(k, n, confidence);
        estimates.push(Estimate {
            suite: String::new(),
            probe: String::new(),
            metric: format!("{detector}_rate"),
            group,
            value: if n == 0 { 0.0 } else { k as f64 / n as f64 },
            ci_low: interval.low,
            ci_high: interval.high,
            ci_method: "wilson".to_string(),
            n,
        });
    }
    Ok(estimates)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use audit_core::{Answer, Query};

    fn attempt(id: &str, group: Option<&str>, template: &str, score: Option<f64>) -> Attempt {
        let mut attributes = Attributes::from([("template".to_string(), template.to_string())]);
        if let Some(group) = group {
            attributes.insert("group".to_string(), group.to_string());
        }
        Attempt {
            suite: "s".into(),
            case_id: id.into(),
            probe: "p".into(),
            attributes,
            query: Query::Chat {
                system: None,
                history: vec![],
                prompt: "x".into(),
            },
            answer: match score {
                Some(_) => Answer::Response("y".into()),
                None => Answer::Error("boom".into()),
            },
            scores: score
                .map(|s| [("refusal".to_string(), s)].into_iter().collect())
                .unwrap_or_default(),
            evidence: Default::default(),
            decoded: Vec::new(),
        }
    }

    #[test]
    fn rates_per_group_match_hand_counts() {
        let attempts = vec![
            attempt("1", Some("a"), "t1", Some(1.0)),
            attempt("2", Some("a"), "t2", Some(0.0)),
            attempt("3", Some("a"), "t3", Some(1.0)),
            attempt("4", Some("b"), "t1", Some(0.0)),
            attempt("5", Some("b"), "t2", None),
            attempt("6", None, "t3", Some(1.0)),
        ];
        let by = vec!["group".to_string()];
        let rates = rates_by(&attempts, "refusal", &by, 0.95).unwrap();
        let got: Vec<(String, u64, f64)> = rates
            .iter()
            .map(|e| (e.group["group"].clone(), e.n, e.value))
            .collect();
        assert_eq!(
            got,
            vec![
                (String::new(), 1, 1.0),
                ("a".to_string(), 3, 2.0 / 3.0),
                ("b".to_string(), 1, 0.0)
            ]
        );
        let a = wilson(2, 3, 0.95);
        assert_eq!((rates[1].ci_low, rates[1].ci_high), (a.low, a.high));
        let by_two = vec!["group".to_string(), "template".to_string()];
        assert_eq!(
            rates_by(&attempts, "refusal", &by_two, 0.95).unwrap().len(),
            5
        );
        assert!(rates_by(&attempts, "toxicity", &by, 0.95)
            .unwrap()
            .is_empty());
        let missing = vec!["nope".to_string()];
        let all = rates_by(&attempts, "refusal", &missing, 0.95).unwrap();
        assert_eq!((all.len(), all[0].n), (1, 5));
    }
}
