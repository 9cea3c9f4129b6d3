//! The suite-file format: parsing, validation with the file and line of every problem, and
//! building the probes, detectors and metrics a suite names.

use std::collections::BTreeMap;

use audit_core::{Detector, Metric, ProbePlan, Suite, SuiteRef};
use probes::counterfactual::{Axis, CounterfactualProbe, Template};
use probes::detectors;
use probes::metrics::{self, PairedGap, Rate};
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
    #[serde(rename = "probe")]
    probes: Vec<ProbeEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: Spanned<String>,
    version: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeEntry {
    id: Spanned<String>,
    family: Spanned<String>,
    goal: String,
    source: String,
    #[serde(default)]
    system: Option<String>,
    detectors: Vec<Spanned<String>>,
    #[serde(default, rename = "metric")]
    metrics: Vec<MetricEntry>,
    // Parameters of the counterfactual family.
    #[serde(default, rename = "template")]
    templates: Vec<TemplateEntry>,
    #[serde(default)]
    axes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateEntry {
    id: String,
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricEntry {
    kind: Spanned<String>,
    detector: Spanned<String>,
    #[serde(default)]
    by: Vec<String>,
    between: Option<String>,
    #[serde(default)]
    within: Vec<String>,
}

/// The families of probes a suite file can name.
pub const FAMILIES: &[(&str, &str)] = &[(
    "counterfactual",
    "templates × groups of demographic axes; chat prompts that differ only in the group",
)];

/// Parses and validates a suite file; `source` names it in errors and in the run's manifest.
pub fn parse(text: &str, source: &str) -> Result<Suite, SuiteError> {
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
    let mut probe_ids = std::collections::BTreeSet::new();
    let mut plans = Vec::new();
    for entry in &file.probes {
        let at = |offset: usize, message: String| SuiteError::at(source, line(offset), message);
        let probe_id = entry.id.get_ref();
        if !is_identifier(probe_id) {
            return Err(at(
                entry.id.span().start,
                format!("probe id `{probe_id}` must be lowercase letters, digits, `-`, `_` or `.`"),
            ));
        }
        if !probe_ids.insert(probe_id.clone()) {
            return Err(at(
                entry.id.span().start,
                format!("probe id `{probe_id}` appears twice"),
            ));
        }
        let mut detector_list: Vec<Box<dyn Detector>> = Vec::new();
        for name in &entry.detectors {
            let Some(detector) = detectors::detector(name.get_ref()) else {
                let known: Vec<&str> = detectors::DETECTORS.iter().map(|(id, _)| *id).collect();
                return Err(at(
                    name.span().start,
                    format!(
                        "unknown detector `{}` (known: {})",
                        name.get_ref(),
                        known.join(", ")
                    ),
                ));
            };
            detector_list.push(detector);
        }
        let mut metric_list: Vec<Box<dyn Metric>> = Vec::new();
        for metric in &entry.metrics {
            if !entry
                .detectors
                .iter()
                .any(|d| d.get_ref() == metric.detector.get_ref())
            {
                return Err(at(
                    metric.detector.span().start,
                    format!(
                        "metric uses detector `{}`, which probe `{probe_id}` does not run (add it to `detectors`)",
                        metric.detector.get_ref()
                    ),
                ));
            }
            let detector = metric.detector.get_ref().clone();
            metric_list.push(match metric.kind.get_ref().as_str() {
                metrics::rate::KIND => Box::new(Rate {
                    detector,
                    by: metric.by.clone(),
                }),
                metrics::paired_gap::KIND => Box::new(PairedGap {
                    detector,
                    between: metric
                        .between
                        .clone()
                        .unwrap_or_else(|| "group".to_string()),
                    within: metric.within.clone(),
                }),
                other => {
                    let known: Vec<&str> = metrics::METRICS.iter().map(|(id, _)| *id).collect();
                    return Err(at(
                        metric.kind.span().start,
                        format!(
                            "unknown metric kind `{other}` (known: {})",
                            known.join(", ")
                        ),
                    ));
                }
            });
        }
        let probe = match entry.family.get_ref().as_str() {
            "counterfactual" => {
                let probe = CounterfactualProbe {
                    id: probe_id.clone(),
                    goal: entry.goal.clone(),
                    source: entry.source.clone(),
                    system: entry.system.clone(),
                    templates: entry
                        .templates
                        .iter()
                        .map(|t| Template {
                            id: t.id.clone(),
                            text: t.text.clone(),
                        })
                        .collect(),
                    axes: entry
                        .axes
                        .iter()
                        .map(|(name, groups)| Axis {
                            name: name.clone(),
                            groups: groups.clone(),
                        })
                        .collect(),
                };
                probe.validate().map_err(|message| {
                    at(
                        entry.id.span().start,
                        format!("probe `{probe_id}`: {message}"),
                    )
                })?;
                Box::new(probe)
            }
            other => {
                let known: Vec<&str> = FAMILIES.iter().map(|(id, _)| *id).collect();
                return Err(at(
                    entry.family.span().start,
                    format!(
                        "unknown probe family `{other}` (known: {})",
                        known.join(", ")
                    ),
                ));
            }
        };
        plans.push(ProbePlan {
            probe,
            transforms: Vec::new(),
            detectors: detector_list,
            metrics: metric_list,
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
