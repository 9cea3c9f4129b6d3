//! The suite-file format (docs/suite-format.md): parsing, validation with the file and line of
//! every problem, and building the probes, transforms, detectors and metrics a suite names from
//! the registries of the `probes` crate.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use audit_core::{Detector, Judge, Metric, ProbePlan, Suite, SuiteRef, Transform};
use probes::declared::detectors::{Built, Declared};
use probes::registry::{self, ProbeArgs};
use probes::Context;
use serde::Deserialize;
use sha2::Digest;
use toml::Spanned;

/// A suite that cannot be used: the file, the line where known, and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SuiteError(String);

impl SuiteError {
    pub(crate) fn at(source: &str, line: Option<usize>, message: String) -> SuiteError {
        match line {
            Some(line) => SuiteError(format!("suite {source}: line {line}: {message}")),
            None => SuiteError(format!("suite {source}: {message}")),
        }
    }

    pub(crate) fn unknown(message: String) -> SuiteError {
        SuiteError(message)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    suite: Header,
    #[serde(rename = "probe", default)]
    probes: Vec<Spanned<toml::Table>>,
    /// Detectors declared by the suite (`probes::declared::detectors`).
    #[serde(rename = "detector", default)]
    detectors: Vec<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: Spanned<String>,
    version: String,
    #[serde(default)]
    description: String,
}

/// The keys every `[[probe]]` table has; the others are the family's parameters.
#[derive(Debug, Deserialize)]
struct Common {
    id: String,
    family: String,
    goal: String,
    source: String,
    #[serde(default)]
    detectors: Vec<String>,
    #[serde(default)]
    transforms: Vec<String>,
    #[serde(default, rename = "metric")]
    metrics: Vec<toml::Table>,
}

const COMMON_KEYS: &[&str] = &[
    "id",
    "family",
    "goal",
    "source",
    "detectors",
    "transforms",
    "metric",
];

/// Parses and validates a suite file; `source` names it in errors and in the run's manifest;
/// relative dataset paths are resolved against the context's datasets folder, and detectors
/// that need a resource (the VADER lexicon) take it from the context. A `table` probe's `file`
/// resolves against the folder of `source` (a path; `builtin:` suites use the datasets folder).
pub fn parse(text: &str, source: &str, context: &Context) -> Result<Suite, SuiteError> {
    let datasets = context.datasets();
    let suite_dir = (!source.starts_with("builtin:"))
        .then(|| Path::new(source).parent().unwrap_or(Path::new("")));
    let line = |offset: usize| Some(line_of(text, offset));
    let file: SuiteFile = toml::from_str(text).map_err(|e| {
        SuiteError::at(
            source,
            e.span().and_then(|s| line(s.start)),
            e.message().trim().replace('\n', " "),
        )
    })?;
    let id = file.suite.id.get_ref();
    if !is_identifier(id) {
        return Err(SuiteError::at(
            source,
            line(file.suite.id.span().start),
            format!("suite id `{id}` must be lowercase letters, digits, `-`, `_` or `.`"),
        ));
    }
    if file.probes.is_empty() {
        return Err(SuiteError::at(
            source,
            None,
            "the suite has no [[probe]]".to_string(),
        ));
    }
    let declared = declared_detectors(text, source, &file.detectors)?;
    let mut probe_ids = BTreeSet::new();
    let mut plans = Vec::new();
    for entry in &file.probes {
        let span = entry.span();
        // The line of the first occurrence of `needle` inside this probe's table, else the
        // table's first line.
        let at = |needle: &str, message: String| {
            SuiteError::at(source, line(find_in(text, &span, needle)), message)
        };
        let common: Common = registry::params(entry.get_ref()).map_err(|m| at("", m))?;
        let probe_id = &common.id;
        if !is_identifier(probe_id) {
            return Err(at(
                probe_id,
                format!("probe id `{probe_id}` must be lowercase letters, digits, `-`, `_` or `.`"),
            ));
        }
        if !probe_ids.insert(probe_id.clone()) {
            return Err(at(probe_id, format!("probe id `{probe_id}` appears twice")));
        }
        let mut detectors: Vec<Box<dyn Detector>> = Vec::new();
        let mut judges: Vec<Box<dyn Judge>> = Vec::new();
        for name in &common.detectors {
            if let Some(declared) = declared.get(name) {
                match declared.build() {
                    Built::Detector(detector) => detectors.push(detector),
                    Built::Judge(judge) => judges.push(judge),
                }
                continue;
            }
            if let Some(kind) = registry::judge(name) {
                judges.push((kind.build)());
                continue;
            }
            let Some(kind) = registry::detector(name) else {
                let known: Vec<&str> = registry::DETECTORS
                    .iter()
                    .map(|d| d.id)
                    .chain(registry::JUDGES.iter().map(|j| j.id))
                    .chain(declared.keys().map(String::as_str))
                    .collect();
                return Err(at(
                    &format!("\"{name}\""),
                    format!("unknown detector `{name}` (known: {})", known.join(", ")),
                ));
            };
            detectors.push((kind.build)(context));
        }
        let mut transforms: Vec<Box<dyn Transform>> = Vec::new();
        for (index, name) in common.transforms.iter().enumerate() {
            // A name with `+` is a chain of transforms applied left to right.
            let transform =
                registry::transform_chain(name).map_err(|m| at(&format!("\"{name}\""), m))?;
            if common.transforms[..index].contains(name) {
                return Err(at(
                    &format!("\"{name}\""),
                    format!("transform `{name}` is listed twice"),
                ));
            }
            transforms.push(transform);
        }
        let mut metrics: Vec<Box<dyn Metric>> = Vec::new();
        for table in &common.metrics {
            let mut params = table.clone();
            let kind = match params.remove("kind") {
                Some(toml::Value::String(kind)) => kind,
                _ => {
                    return Err(at(
                        "[[probe.metric]]",
                        "a metric needs `kind = \"...\"`".to_string(),
                    ))
                }
            };
            let Some(metric_kind) = registry::metric(&kind) else {
                let known: Vec<&str> = registry::METRICS.iter().map(|m| m.name).collect();
                return Err(at(
                    &format!("\"{kind}\""),
                    format!("unknown metric kind `{kind}` (known: {})", known.join(", ")),
                ));
            };
            if let Some(toml::Value::String(detector)) = params.get("detector") {
                if !common.detectors.contains(detector) {
                    return Err(at(
                        &format!("detector = \"{detector}\""),
                        format!(
                            "metric uses detector `{detector}`, which probe `{probe_id}` does not run (add it to `detectors`)"
                        ),
                    ));
                }
            }
            metrics.push(
                (metric_kind.build)(&params)
                    .map_err(|m| at(&format!("\"{kind}\""), format!("metric `{kind}`: {m}")))?,
            );
        }
        let Some(family) = registry::family(&common.family) else {
            let known: Vec<&str> = registry::FAMILIES.iter().map(|f| f.name).collect();
            return Err(at(
                &format!("\"{}\"", common.family),
                format!(
                    "unknown probe family `{}` (known: {})",
                    common.family,
                    known.join(", ")
                ),
            ));
        };
        let mut params = entry.get_ref().clone();
        for key in COMMON_KEYS {
            params.remove(*key);
        }
        // Dataset paths stay inside --datasets: a suite file (from a pull request, say) does
        // not read /etc/passwd or ../../secrets into a report.
        for key in ["path", "dir"] {
            if let Some(toml::Value::String(value)) = params.get(key) {
                if let Some(reason) = unsafe_dataset_path(value) {
                    return Err(at(
                        &format!("{key} = "),
                        format!("probe `{probe_id}`: {key} = \"{value}\" {reason}: give a path relative to --datasets"),
                    ));
                }
            }
        }
        // A `table` probe's own data file stays inside the suite file's folder, likewise.
        if let Some(toml::Value::String(value)) = params.get("file") {
            if let Some(reason) = unsafe_dataset_path(value) {
                let reason = reason.replace("the datasets folder", "the suite file's folder");
                return Err(at(
                    "file = ",
                    format!("probe `{probe_id}`: file = \"{value}\" {reason}: give a path relative to the suite file's folder"),
                ));
            }
        }
        let args = ProbeArgs {
            id: probe_id,
            goal: &common.goal,
            source: &common.source,
            params: &params,
            datasets,
            suite_dir,
        };
        let probe = (family.build)(&args).map_err(|m| {
            // An error about one parameter (it opens with the key in backquotes) points at
            // that key's line.
            let needle = m
                .strip_prefix('`')
                .and_then(|rest| rest.split_once('`'))
                .filter(|(key, _)| params.contains_key(*key))
                .map_or_else(|| probe_id.to_string(), |(key, _)| format!("{key} ="));
            at(&needle, format!("probe `{probe_id}`: {m}"))
        })?;
        plans.push(ProbePlan {
            probe,
            transforms,
            detectors,
            judges,
            metrics,
        });
    }
    Ok(Suite {
        reference: SuiteRef {
            id: id.clone(),
            version: file.suite.version,
            source: source.to_string(),
            sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        },
        description: file.suite.description,
        probes: plans,
    })
}

/// The suite's `[[detector]]` tables by id, checked: each parses (`Declared::parse`), its id is
/// an identifier, unique, and not the id of a built-in detector or judge.
fn declared_detectors(
    text: &str,
    source: &str,
    tables: &[Spanned<toml::Table>],
) -> Result<BTreeMap<String, Declared>, SuiteError> {
    let mut declared: BTreeMap<String, Declared> = BTreeMap::new();
    for table in tables {
        let span = table.span();
        let at = |needle: &str, message: String| {
            SuiteError::at(
                source,
                Some(line_of(text, find_in(text, &span, needle))),
                message,
            )
        };
        let detector = Declared::parse(table.get_ref()).map_err(|m| {
            // The line of the key the message names first, else the table's first line.
            let key = table
                .get_ref()
                .keys()
                .filter_map(|key| m.find(&format!("`{key}`")).map(|at| (at, key)))
                .min()
                .map_or_else(String::new, |(_, key)| format!("{key} ="));
            at(&key, m)
        })?;
        let id = detector.id.clone();
        let id_at = format!("\"{id}\"");
        if !is_identifier(&id) {
            return Err(at(
                &id_at,
                format!("detector id `{id}` must be lowercase letters, digits, `-`, `_` or `.`"),
            ));
        }
        if registry::detector(&id).is_some() || registry::judge(&id).is_some() {
            return Err(at(
                &id_at,
                format!("detector id `{id}` is the id of a built-in detector; choose another"),
            ));
        }
        if declared.insert(id.clone(), detector).is_some() {
            return Err(at(&id_at, format!("detector id `{id}` appears twice")));
        }
    }
    Ok(declared)
}

/// Why a dataset path from a suite file may not be used (absolute, or climbing out of the
/// datasets folder with `..`), or None.
fn unsafe_dataset_path(value: &str) -> Option<&'static str> {
    let path = Path::new(value);
    if path.is_absolute() || path.has_root() || value.starts_with('~') {
        return Some("is absolute");
    }
    let climbs = path.components().any(|c| {
        matches!(
            c,
            std::path::Component::ParentDir | std::path::Component::Prefix(_)
        )
    });
    climbs.then_some("climbs out of the datasets folder with `..`")
}

/// The offset of `needle` within `span` of `text` (the span's start when absent or empty).
fn find_in(text: &str, span: &Range<usize>, needle: &str) -> usize {
    let end = span.end.min(text.len());
    let start = span.start.min(end);
    if needle.is_empty() {
        return start;
    }
    text.get(start..end)
        .and_then(|s| s.find(needle))
        .map_or(start, |i| start + i)
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
