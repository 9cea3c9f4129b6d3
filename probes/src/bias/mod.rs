//! Bias benchmarks with their published formulas: one module per benchmark, each holding its
//! loader (read in place from the user's copy of the dataset), its probe and its metrics.
//!
//! Shared conventions: a probe's `path` parameter is resolved against `--datasets` (the suite
//! parser refuses absolute paths and `..`); the file is read when the cases are made, not when the suite is
//! parsed, so `probity list` works without the data. `sample = N` keeps a seeded random subset of
//! N items (the same subset for every model: it depends on `sample_seed`, default 0, and on the
//! item ids only). Metrics read `Answer::Logprobs` and skip attempts without a usable answer.

pub mod bbq;
pub mod bold;
pub mod choice;
pub mod crows_pairs;
pub mod holistic_bias;
pub mod stereoset;
/// The VADER port (probes/src/detectors/vader.rs), which BOLD scores with.
pub use crate::detectors::vader;
pub mod winobias;
pub mod winogender;

pub use crate::sampling::Sampling;

use std::path::{Path, PathBuf};

use audit_core::stats::{BootstrapConfig, Interval};
use audit_core::{case_seed, Attempt, Attributes, Estimate, MetricContext, Query, Test};

/// The dataset file a probe reads: `path` under `datasets`, or `path` itself when absolute.
pub fn resolve(datasets: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        datasets.join(path)
    }
}

/// The text of a dataset file, or a one-line error naming it and the fix.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = crate::provenance::read(path).map_err(|e| {
        format!(
            "reading {}: {e} ({})",
            path.display(),
            crate::catalogue::missing_hint(path)
        )
    })?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{}: byte {}: the file is not UTF-8 text",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// The log-likelihood of every option of a Choice attempt, when the backend gave one finite
/// number per option.
pub fn choice_logprobs(attempt: &Attempt) -> Option<&[f64]> {
    let values = attempt.answer.logprobs()?;
    let Query::Choice { options, .. } = &attempt.query else {
        return None;
    };
    (values.len() == options.len() && values.iter().all(|v| v.is_finite())).then_some(values)
}

/// Each option's log-likelihood divided by its number of tokens (the mean log-probability per
/// token), when the backend counted them and every option has at least one token.
pub fn choice_logprobs_per_token(attempt: &Attempt) -> Option<Vec<f64>> {
    let values = choice_logprobs(attempt)?;
    let tokens = attempt.answer.option_tokens()?;
    (tokens.len() == values.len() && tokens.iter().all(|&n| n > 0)).then(|| {
        values
            .iter()
            .zip(tokens)
            .map(|(v, &n)| v / f64::from(n))
            .collect()
    })
}

/// The index of the largest value (the first on ties, as numpy's argmax), None when empty.
pub fn argmax(values: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (index, value) in values.iter().enumerate() {
        match best {
            Some(b) if values[b] >= *value => {}
            _ => best = Some(index),
        }
    }
    best
}

/// A one-attribute group (`{key: value}`), or the whole probe when `key` is empty.
pub fn group(key: &str, value: &str) -> Attributes {
    if key.is_empty() {
        Attributes::new()
    } else {
        Attributes::from([(key.to_string(), value.to_string())])
    }
}

/// `key=value, …` for test names ("all" for the whole probe).
pub fn describe(group: &Attributes) -> String {
    if group.is_empty() {
        return "all".to_string();
    }
    let parts: Vec<String> = group.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(", ")
}

/// An estimate of this probe.
pub fn estimate(
    context: &MetricContext<'_>,
    metric: &str,
    group: Attributes,
    value: f64,
    interval: Interval,
    ci_method: &str,
    n: usize,
) -> Estimate {
    Estimate {
        suite: context.suite.to_string(),
        probe: context.probe.to_string(),
        metric: metric.to_string(),
        group,
        value,
        ci_low: interval.low,
        ci_high: interval.high,
        ci_method: ci_method.to_string(),
        n: n as u64,
    }
}

/// The bootstrap settings of a metric: the run's confidence, and a seed derived from the
/// metric context's seed and a label (so that every group gets its own stream).
pub fn bootstrap_config(
    context: &MetricContext<'_>,
    resamples: usize,
    label: &str,
) -> BootstrapConfig {
    BootstrapConfig {
        resamples,
        confidence: context.confidence,
        seed: case_seed(context.seed, label),
    }
}

/// A test of this probe, before the run-wide multiplicity correction.
#[allow(clippy::too_many_arguments)]
pub fn test(
    context: &MetricContext<'_>,
    name: String,
    method: &str,
    result: audit_core::stats::TestResult,
    effect: f64,
    effect_interval: Interval,
    groups: Vec<Attributes>,
    n: usize,
) -> Test {
    Test {
        suite: context.suite.to_string(),
        probe: context.probe.to_string(),
        name,
        method: method.to_string(),
        statistic: result.statistic,
        p_value: result.p_value,
        q_holm: result.p_value,
        q_bh: result.p_value,
        effect,
        effect_ci_low: effect_interval.low,
        effect_ci_high: effect_interval.high,
        groups,
        n: n as u64,
        min_detectable_effect: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn per_token_logprobs_need_counts() {
        use audit_core::{Answer, Case};
        let case = Case {
            id: "c".into(),
            probe: "p".into(),
            attributes: Attributes::new(),
            query: Query::Choice {
                context: String::new(),
                options: vec!["a b".into(), "c".into()],
            },
        };
        let with = |answer| Attempt::new("s", &case, answer);
        let counted = with(Answer::TokenLogprobs {
            logprobs: vec![-3.0, -1.5],
            tokens: vec![2, 1],
        });
        assert_eq!(choice_logprobs(&counted), Some(&[-3.0, -1.5][..]));
        assert_eq!(choice_logprobs_per_token(&counted), Some(vec![-1.5, -1.5]));
        let plain = with(Answer::Logprobs(vec![-3.0, -1.5]));
        assert_eq!(choice_logprobs(&plain), Some(&[-3.0, -1.5][..]));
        assert_eq!(choice_logprobs_per_token(&plain), None);
        let zero = with(Answer::TokenLogprobs {
            logprobs: vec![-3.0, -1.5],
            tokens: vec![2, 0],
        });
        assert_eq!(choice_logprobs_per_token(&zero), None);
        let short = with(Answer::TokenLogprobs {
            logprobs: vec![-3.0, -1.5],
            tokens: vec![2],
        });
        assert_eq!(choice_logprobs_per_token(&short), None);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), Some(1));
        assert_eq!(argmax(&[-1.0]), Some(0));
        assert_eq!(argmax(&[]), None);
    }

    #[test]
    fn paths_resolve_against_the_datasets_folder() {
        assert_eq!(
            resolve(Path::new("/d"), "a/b.csv"),
            PathBuf::from("/d/a/b.csv")
        );
        assert_eq!(
            resolve(Path::new("/d"), "/x/b.csv"),
            PathBuf::from("/x/b.csv")
        );
    }
}
