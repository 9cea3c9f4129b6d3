//! The rate of a binary detector, overall and per group, with Wilson score intervals.

use std::collections::BTreeMap;

use audit_core::stats::wilson;
use audit_core::{Attempt, Attributes, Estimate, Metric, MetricContext, MetricOutput};

use super::outcome;

pub const KIND: &str = "rate";

/// `[[probe.metric]] kind = "rate"`: `detector`, and `by` (attributes to group by, optional).
pub fn build(table: &toml::Table) -> Result<Box<dyn Metric>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        detector: String,
        #[serde(default)]
        by: Vec<String>,
    }
    let p: Params = crate::registry::params(table)?;
    Ok(Box::new(Rate {
        detector: p.detector,
        by: p.by,
    }))
}

/// The share of scored attempts that a binary detector flags (score ≥ 0.5): over the whole
/// probe, and for every combination of the `by` attributes that occurs.
#[derive(Clone, Debug, PartialEq)]
pub struct Rate {
    pub detector: String,
    pub by: Vec<String>,
}

impl Rate {
    fn name(&self) -> String {
        format!("{}_rate", self.detector)
    }
}

impl Metric for Rate {
    fn id(&self) -> &str {
        KIND
    }

    fn method(&self) -> String {
        format!(
            "{}: share of scored attempts with {} ≥ 0.5, overall and by {}; Wilson score interval; attempts the detector did not score (errors) are excluded",
            self.name(),
            self.detector,
            if self.by.is_empty() { "nothing".to_string() } else { self.by.join(", ") }
        )
    }

    fn compute(&self, attempts: &[&Attempt], context: &MetricContext<'_>) -> MetricOutput {
        let mut counts: BTreeMap<Attributes, (u64, u64)> = BTreeMap::new();
        for attempt in attempts {
            let Some(flagged) = outcome(attempt, &self.detector) else {
                continue;
            };
            let mut keys = vec![Attributes::new()];
            if !self.by.is_empty() {
                keys.push(
                    self.by
                        .iter()
                        .map(|k| (k.clone(), attempt.attribute(k).to_string()))
                        .collect(),
                );
            }
            for key in keys {
                let entry = counts.entry(key).or_default();
                entry.0 += u64::from(flagged);
                entry.1 += 1;
            }
        }
        let estimates = counts
            .into_iter()
            .map(|(group, (k, n))| {
                let interval = wilson(k, n, context.confidence);
                Estimate {
                    suite: context.suite.to_string(),
                    probe: context.probe.to_string(),
                    metric: self.name(),
                    group,
                    value: if n == 0 { 0.0 } else { k as f64 / n as f64 },
                    ci_low: interval.low,
                    ci_high: interval.high,
                    ci_method: "wilson".to_string(),
                    n,
                }
            })
            .collect();
        MetricOutput {
            estimates,
            tests: Vec::new(),
        }
    }
}
