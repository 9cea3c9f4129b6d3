//! WEAT (Caliskan et al. 2017) on word vectors and SEAT (May et al. 2019) on sentence encoders:
//! the sent-bias test files (`weat_seat/tests/*.jsonl`, each one JSON object with the target sets
//! `targ1`, `targ2` and the attribute sets `attr1`, `attr2`), one `Embed` case per item, and the
//! `weat-effect` metric: per test, Caliskan's effect size and sent-bias' one-sided permutation p-value
//! (`audit_core::stats::weat`), a bootstrap interval of the effect size over the target items,
//! and Benjamini–Hochberg q-values over the probe's tests.
//!
//! The audited model is the embedding model itself (`--model` a word-vector folder or a
//! sentence-transformers folder): docs/suites/weat.md. Items the model cannot embed (a word
//! outside the vocabulary) are answered with an error and left out of their set, and the metric
//! says how many (`left_out`, for tests that lost items); sent-bias has no such case (it
//! fails). Duplicate items within a set are kept once, as sent-bias' dictionaries keep them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use audit_core::stats::weat::{effect_size_interval, weat_from_associations, WeatConfig};
use audit_core::stats::{benjamini_hochberg, Interval, TestResult};
use audit_core::{
    case_seed, Answer, Attempt, Attributes, Case, Metric, MetricContext, MetricOutput, Probe,
    ProbeError, ProbeInfo, Query,
};
use serde::Deserialize;

use crate::bias::{estimate, read_text, resolve, test};
use crate::registry::{params, ProbeArgs};

/// Word lists on word vectors: the original WEAT 1–10.
pub const WEAT: &str = "weat";
/// The same concepts as template sentences on a sentence encoder: SEAT's sent-weat 1–10.
pub const SEAT: &str = "seat";
pub const METRIC: &str = "weat-effect";
/// The folder of the test files under `--datasets` when the suite gives no `dir`.
pub const DEFAULT_DIR: &str = "weat_seat/tests";
/// The four sets of a test, in the files' names: X, Y (targets), A, B (attributes).
pub const SETS: [&str; 4] = ["targ1", "targ2", "attr1", "attr2"];

/// One set of a test: its category name and its items (words or sentences).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Set {
    pub category: String,
    pub examples: Vec<String>,
}

/// One association test file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationTest {
    pub targ1: Set,
    pub targ2: Set,
    pub attr1: Set,
    pub attr2: Set,
}

impl AssociationTest {
    /// The sets in the order of `SETS`.
    pub fn sets(&self) -> [&Set; 4] {
        [&self.targ1, &self.targ2, &self.attr1, &self.attr2]
    }
}

/// Reads a sent-bias test file (one pretty-printed JSON object despite the `.jsonl` name).
pub fn load(path: &Path) -> Result<AssociationTest, String> {
    let text = read_text(path)?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a test file's text: the four sets, each non-empty, with non-empty items.
pub fn parse(text: &str) -> Result<AssociationTest, String> {
    let test: AssociationTest = serde_json::from_str(text).map_err(|e| {
        format!("not a WEAT/SEAT test (an object with targ1, targ2, attr1, attr2, each {{category, examples}}): {e}")
    })?;
    for (name, set) in SETS.iter().zip(test.sets()) {
        if set.examples.is_empty() {
            return Err(format!("{name} ({}) has no examples", set.category));
        }
        if let Some(i) = set.examples.iter().position(|e| e.trim().is_empty()) {
            return Err(format!("{name} ({}) example {i} is empty", set.category));
        }
    }
    Ok(test)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    tests: Option<Vec<String>>,
}

/// The probe: one `Embed` case per item of every set of every test.
#[derive(Clone, Debug, PartialEq)]
pub struct AssociationProbe {
    pub info: ProbeInfo,
    pub dir: PathBuf,
    /// Test names: file stems in `dir`.
    pub tests: Vec<String>,
}

fn build_with(args: &ProbeArgs<'_>, default_tests: Vec<String>) -> Result<Box<dyn Probe>, String> {
    let p: Params = params(args.params)?;
    let tests = p.tests.unwrap_or(default_tests);
    if tests.is_empty() {
        return Err("`tests` is empty: name at least one test file (e.g. \"weat1\")".into());
    }
    if let Some(bad) = tests
        .iter()
        .find(|t| t.is_empty() || t.contains(['/', '\\']) || t.starts_with('.'))
    {
        return Err(format!(
            "test `{bad}`: expected the stem of a file in the tests folder, e.g. \"weat1\""
        ));
    }
    Ok(Box::new(AssociationProbe {
        info: args.info(),
        dir: resolve(args.datasets, p.dir.as_deref().unwrap_or(DEFAULT_DIR)),
        tests,
    }))
}

/// The `weat` family: `tests` default to `weat1` … `weat10` (Caliskan's WEAT 1–10).
pub fn build_weat(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    build_with(args, (1..=10).map(|i| format!("weat{i}")).collect())
}

/// The `seat` family: `tests` default to `sent-weat1` … `sent-weat10` (May et al.'s SEAT 1–10).
pub fn build_seat(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    build_with(args, (1..=10).map(|i| format!("sent-weat{i}")).collect())
}

impl AssociationProbe {
    /// The cases of one test: ids `probe/test/set/NNN` (NNN the item's position in its set, so
    /// sorting by id keeps the file's order), attributes `test`, `set` and `category`.
    pub fn cases_of(&self, name: &str, test: &AssociationTest) -> Vec<Case> {
        let mut cases = Vec::new();
        for (set_name, set) in SETS.iter().zip(test.sets()) {
            let mut seen = std::collections::BTreeSet::new();
            for (index, item) in set.examples.iter().enumerate() {
                if !seen.insert(item.as_str()) {
                    continue;
                }
                cases.push(Case {
                    id: format!("{}/{name}/{set_name}/{index:03}", self.info.id),
                    probe: self.info.id.clone(),
                    attributes: Attributes::from([
                        ("test".to_string(), name.to_string()),
                        ("set".to_string(), set_name.to_string()),
                        ("category".to_string(), set.category.clone()),
                    ]),
                    query: Query::Embed {
                        texts: vec![item.clone()],
                    },
                });
            }
        }
        cases
    }
}

impl Probe for AssociationProbe {
    fn info(&self) -> &ProbeInfo {
        &self.info
    }
    fn cases(&self, _seed: u64) -> Result<Vec<Case>, ProbeError> {
        let mut cases = Vec::new();
        for name in &self.tests {
            let path = self.dir.join(format!("{name}.jsonl"));
            let test = load(&path).map_err(ProbeError)?;
            cases.extend(self.cases_of(name, &test));
        }
        Ok(cases)
    }
}

/// A sort key that orders the digits of a name as numbers: `weat2` < `weat3b` < `weat10`.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(mut number) = c.to_digit(10).map(u64::from) {
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                number = number.saturating_mul(10).saturating_add(u64::from(d));
                chars.next();
            }
            key.push((std::mem::take(&mut text), number));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

/// The `weat` metric's parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricParams {
    /// sent-bias' `n_samples`.
    #[serde(default = "default_samples")]
    samples: usize,
    /// Bootstrap resamples of the effect size's interval.
    #[serde(default = "default_resamples")]
    resamples: usize,
}

fn default_samples() -> usize {
    100_000
}

fn default_resamples() -> usize {
    2_000
}

pub fn build_metric(table: &toml::Table) -> Result<Box<dyn Metric>, String> {
    let p: MetricParams = params(table)?;
    if p.samples < 2 {
        return Err(format!("samples = {}: expected at least 2", p.samples));
    }
    Ok(Box::new(WeatMetric {
        samples: p.samples,
        resamples: p.resamples,
    }))
}

/// Effect size, permutation p-value and interval per test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeatMetric {
    pub samples: usize,
    pub resamples: usize,
}

/// The vectors of one test's sets, and how many items had none.
#[derive(Default)]
struct Collected {
    sets: [Vec<Vec<f32>>; 4],
    categories: [String; 4],
    left_out: usize,
}

impl Metric for WeatMetric {
    fn id(&self) -> &str {
        METRIC
    }

    fn method(&self) -> String {
        format!(
            "WEAT/SEAT as sent-bias computes it: s(w,A,B) = mean cos(w,a) − mean cos(w,b); effect size d = (mean_X s − mean_Y s) / std_{{X∪Y}} s (ddof = 1); one-sided permutation p-value over partitions of X∪Y (exact when there are at most {} partitions, else {} draws with sent-bias' +1), Benjamini–Hochberg over the probe's tests; d's interval: percentile bootstrap over the target items ({} resamples, Probity's addition). Items the model could not embed are left out (left_out).",
            self.samples, self.samples, self.resamples
        )
    }

    fn compute(&self, attempts: &[&Attempt], context: &MetricContext<'_>) -> MetricOutput {
        let mut tests: BTreeMap<String, Collected> = BTreeMap::new();
        for attempt in attempts {
            let Some(slot) = SETS.iter().position(|s| *s == attempt.attribute("set")) else {
                continue;
            };
            let entry = tests
                .entry(attempt.attribute("test").to_string())
                .or_default();
            entry.categories[slot] = attempt.attribute("category").to_string();
            match &attempt.answer {
                Answer::Embeddings(vectors) if vectors.len() == 1 && !vectors[0].is_empty() => {
                    entry.sets[slot].push(vectors[0].clone());
                }
                _ => entry.left_out += 1,
            }
        }
        // Tests in natural order (weat2 before weat10), as sent-bias lists them.
        let mut tests: Vec<(String, Collected)> = tests.into_iter().collect();
        tests.sort_by_cached_key(|(name, _)| natural_key(name));
        let mut output = MetricOutput::default();
        let mut p_values = Vec::new();
        for (name, collected) in &tests {
            let refs: Vec<Vec<&[f32]>> = collected
                .sets
                .iter()
                .map(|s| s.iter().map(Vec::as_slice).collect())
                .collect();
            let s_x = audit_core::stats::weat::associations(&refs[0], &refs[2], &refs[3]);
            let s_y = audit_core::stats::weat::associations(&refs[1], &refs[2], &refs[3]);
            let config = WeatConfig {
                samples: self.samples,
                seed: case_seed(context.seed, &format!("weat-p/{name}")),
            };
            let result = weat_from_associations(&s_x, &s_y, config);
            let interval = effect_size_interval(
                &s_x,
                &s_y,
                self.resamples,
                context.confidence,
                case_seed(context.seed, &format!("weat-d/{name}")),
            );
            let group = Attributes::from([("test".to_string(), name.clone())]);
            let n_targets = s_x.len() + s_y.len();
            output.estimates.push(estimate(
                context,
                "effect_size",
                group.clone(),
                result.effect_size,
                interval,
                "bootstrap-percentile",
                n_targets,
            ));
            if collected.left_out > 0 {
                let count = collected.left_out as f64;
                output.estimates.push(estimate(
                    context,
                    "left_out",
                    group.clone(),
                    count,
                    Interval {
                        low: count,
                        high: count,
                    },
                    "count",
                    collected.sets.iter().map(Vec::len).sum::<usize>() + collected.left_out,
                ));
            }
            let [x, y, a, b] = &collected.categories;
            let side = |slot: usize| {
                Attributes::from([
                    ("test".to_string(), name.clone()),
                    ("set".to_string(), SETS[slot].to_string()),
                    ("category".to_string(), collected.categories[slot].clone()),
                ])
            };
            p_values.push(result.p_value);
            output.tests.push(test(
                context,
                format!("{name}: {x} vs {y} × {a} vs {b}"),
                if result.exact {
                    "weat-permutation-exact"
                } else {
                    "weat-permutation-sampled"
                },
                TestResult {
                    statistic: result.statistic,
                    p_value: result.p_value,
                },
                result.effect_size,
                interval,
                vec![side(0), side(1)],
                n_targets,
            ));
        }
        for ((name, _), q) in tests.iter().zip(benjamini_hochberg(&p_values)) {
            output.estimates.push(estimate(
                context,
                "q_bh",
                Attributes::from([("test".to_string(), name.clone())]),
                q,
                Interval { low: q, high: q },
                "benjamini-hochberg over the probe's tests",
                tests.len(),
            ));
        }
        output
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn probe() -> AssociationProbe {
        AssociationProbe {
            info: audit_core::ProbeInfo {
                id: "weat".into(),
                goal: String::new(),
                source: String::new(),
            },
            dir: PathBuf::new(),
            tests: vec![],
        }
    }

    const TOY: &str = r#"{"targ1": {"category": "X", "examples": ["e1", "d", "e1"]},
        "targ2": {"category": "Y", "examples": ["e2", "f"]},
        "attr1": {"category": "A", "examples": ["e1"]},
        "attr2": {"category": "B", "examples": ["e2"]}}"#;

    #[test]
    fn tests_sort_in_natural_order() {
        let mut names = vec!["weat10", "weat3b", "weat2", "weat3", "sent-weat1", "weat1"];
        names.sort_by_cached_key(|n| natural_key(n));
        assert_eq!(
            names,
            ["sent-weat1", "weat1", "weat2", "weat3", "weat3b", "weat10"]
        );
    }

    #[test]
    fn parses_a_test_and_rejects_malformed_ones() {
        let test = parse(TOY).unwrap();
        assert_eq!(test.targ1.category, "X");
        assert!(parse(r#"{"targ1": {"category": "X", "examples": []}}"#).is_err());
        let empty = TOY.replace("[\"e2\", \"f\"]", "[]");
        assert!(parse(&empty)
            .unwrap_err()
            .contains("targ2 (Y) has no examples"));
        let extra = TOY.replace("\"attr2\"", "\"attr3\"");
        assert!(parse(&extra).is_err());
    }

    fn vector(item: &str) -> Vec<f32> {
        match item {
            "e1" => vec![1.0, 0.0],
            "e2" => vec![0.0, 1.0],
            "d" => vec![1.0, 1.0],
            "f" => vec![3.0, 4.0],
            _ => vec![],
        }
    }

    /// The hand-computed toy of audit_core::stats::weat (d = 1.1/0.822597…, p = 1/6) through
    /// cases, attempts and the metric; the duplicate "e1" of targ1 is kept once.
    #[test]
    fn the_metric_reproduces_the_hand_computed_toy() {
        let test = parse(TOY).unwrap();
        let cases = probe().cases_of("toy", &test);
        assert_eq!(cases.len(), 6);
        assert_eq!(cases[0].id, "weat/toy/targ1/000");
        let attempts: Vec<Attempt> = cases
            .iter()
            .map(|c| {
                let Query::Embed { texts } = &c.query else {
                    unreachable!()
                };
                Attempt::new("s", c, Answer::Embeddings(vec![vector(&texts[0])]))
            })
            .collect();
        let refs: Vec<&Attempt> = attempts.iter().collect();
        let context = MetricContext::new("s", "weat", 1, 0.95);
        let metric = WeatMetric {
            samples: 100_000,
            resamples: 200,
        };
        let output = metric.compute(&refs, &context);
        let d = output
            .estimates
            .iter()
            .find(|e| e.metric == "effect_size")
            .unwrap();
        let std = ((1.1025f64 + 0.0025 + 0.9025 + 0.0225) / 3.0).sqrt();
        assert!((d.value - 1.1 / std).abs() < 1e-7);
        assert_eq!(output.tests.len(), 1);
        assert_eq!(output.tests[0].p_value, 1.0 / 6.0);
        assert_eq!(output.tests[0].method, "weat-permutation-exact");
        assert_eq!(output.tests[0].name, "toy: X vs Y × A vs B");
        let q = output
            .estimates
            .iter()
            .find(|e| e.metric == "q_bh")
            .unwrap();
        assert_eq!(q.value, 1.0 / 6.0);

        // An item the model could not embed is left out and counted.
        let mut with_error = attempts.clone();
        with_error[1].answer = Answer::Error("not in the vocabulary: `d`".into());
        let refs: Vec<&Attempt> = with_error.iter().collect();
        let output = metric.compute(&refs, &context);
        let left = output
            .estimates
            .iter()
            .find(|e| e.metric == "left_out")
            .unwrap();
        assert_eq!(left.value, 1.0);
        assert_eq!(output.tests[0].n, 3);
    }
}
