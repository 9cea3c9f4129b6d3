//! summary.json: estimates with intervals, tests with Holm and Benjamini–Hochberg adjusted
//! values over the whole run, and gate verdicts; and `summarise`, which computes it from attempts.

use serde::{Deserialize, Serialize};

use crate::attempt::Attempt;
use crate::case::Attributes;
use crate::probe::MetricContext;
use crate::stats;
use crate::suite::{Suite, SuiteRef};

/// The version of the run directory's schema (manifest.json, attempts.jsonl, summary.json).
pub const SCHEMA_VERSION: u32 = 1;

/// A named estimate with its interval, for a whole probe (`group` empty) or one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The suite's id.
    pub suite: String,
    /// The probe's id.
    pub probe: String,
    /// The estimate's name (`pct_stereotype`, `asr`, …).
    pub metric: String,
    /// The group it is about (empty: the whole probe).
    pub group: Attributes,
    /// The point estimate.
    pub value: f64,
    /// The interval's lower bound, at the run's confidence level.
    pub ci_low: f64,
    /// The interval's upper bound.
    pub ci_high: f64,
    /// e.g. `wilson`, `newcombe-paired`, `bootstrap-bca`.
    pub ci_method: String,
    /// How many observations it rests on.
    pub n: u64,
}

/// A significance test, with its p-value adjusted over every test of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Test {
    /// The suite's id.
    pub suite: String,
    /// The probe's id.
    pub probe: String,
    /// What is compared, e.g. `refusal: group=woman vs group=man (axis=gender)`.
    pub name: String,
    /// e.g. `mcnemar-exact`.
    pub method: String,
    /// The test statistic.
    pub statistic: f64,
    /// The unadjusted p-value.
    pub p_value: f64,
    /// Holm (family-wise) adjusted p-value over all tests of the run.
    pub q_holm: f64,
    /// Benjamini–Hochberg (false discovery rate) adjusted p-value over all tests of the run.
    pub q_bh: f64,
    /// The effect the test is about (a difference of rates, …), with its interval.
    pub effect: f64,
    /// The lower bound of the effect's interval.
    pub effect_ci_low: f64,
    /// The upper bound of the effect's interval.
    pub effect_ci_high: f64,
    /// The attributes the compared sides share (`axis`) and those that differ, for reports.
    pub groups: Vec<Attributes>,
    /// How many observations (pairs, items) the test rests on.
    pub n: u64,
    /// The smallest effect this comparison could detect at α = 0.05 with 80% power, where the
    /// metric can say (see `stats::power`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_detectable_effect: Option<f64>,
}

/// The false-discovery rate at which a run calls a test significant: Benjamini–Hochberg's q
/// below it ([`Test::is_significant`]). Reports and comparisons use this one level.
pub const FDR_LEVEL: f64 = 0.05;

impl Test {
    /// Whether the test is significant at the run's level: q_BH < [`FDR_LEVEL`], over every
    /// test of the run.
    pub fn is_significant(&self) -> bool {
        self.q_bh < FDR_LEVEL
    }
}

/// What an estimate measures, where reports treat it specially: a metric declares the role of
/// each estimate it makes (`Metric::roles`), and summary.json carries them per probe, so that
/// no report guesses from names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The share of attacks that succeeded (harmful requests answered), as observed.
    AttackSuccess,
    /// The share of harmless requests refused, as observed.
    OverRefusal,
}

/// The verdict of one gate of a policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// The gate's name in the policy file.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// One line: what was compared with what.
    pub detail: String,
}

/// What a probe is and how much of it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeSummary {
    /// The suite's id.
    pub suite: String,
    /// The probe's id.
    pub probe: String,
    /// What the probe tries to make the model do.
    pub goal: String,
    /// Where its prompts come from.
    pub source: String,
    /// Its attempts, errors included.
    pub n_attempts: u64,
    /// Its attempts that are errors.
    pub n_errors: u64,
    /// Its detectors' and judges' ids.
    pub detectors: Vec<String>,
    /// Metric id → its method, for the report's methods section.
    pub methods: Vec<(String, String)>,
    /// Estimate name → the value an unbiased model would get (`Metric::ideals`), for reports.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ideals: std::collections::BTreeMap<String, f64>,
    /// Estimate name → what it measures (`Metric::roles`), for reports.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub roles: std::collections::BTreeMap<String, Role>,
}

impl ProbeSummary {
    /// The role of one of this probe's estimates, if its metric declared one.
    pub fn role(&self, metric: &str) -> Option<Role> {
        self.roles.get(metric).copied()
    }
}

impl Summary {
    /// The role of an estimate (by its probe's declared roles), if any.
    pub fn role(&self, estimate: &Estimate) -> Option<Role> {
        self.probes
            .iter()
            .find(|p| p.suite == estimate.suite && p.probe == estimate.probe)
            .and_then(|p| p.role(&estimate.metric))
    }
}

/// The contents of summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run directory schema's version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The suites run.
    pub suites: Vec<SuiteRef>,
    /// The run's seed.
    pub seed: u64,
    /// The confidence level of every interval.
    pub confidence: f64,
    /// Attempts, errors included.
    pub n_attempts: u64,
    /// Attempts that are errors.
    pub n_errors: u64,
    /// What each probe is and how much of it ran.
    pub probes: Vec<ProbeSummary>,
    /// Every estimate of the run.
    pub estimates: Vec<Estimate>,
    /// Every test of the run, adjusted together (Holm and Benjamini–Hochberg).
    pub tests: Vec<Test>,
    /// The verdicts of a policy, when one was evaluated.
    pub gates: Vec<Gate>,
    /// What a reader must know: underpowered comparisons, undefined estimates, …
    pub warnings: Vec<String>,
    /// Detector accuracies measured when the run started (an LLM judge against human labels),
    /// which the corrected rates used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detector_accuracy: Vec<crate::stats::DetectorAccuracy>,
    /// Each judge's sensitivity and specificity on each labelled set, with Wilson intervals at
    /// the run's confidence (from `detector_accuracy`, one entry per entry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judge_calibration: Vec<JudgeCalibration>,
}

/// A share of a labelled class the judge got right, with its Wilson interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelledShare {
    /// `k / n`.
    pub value: f64,
    /// The Wilson interval's lower bound.
    pub ci_low: f64,
    /// The Wilson interval's upper bound.
    pub ci_high: f64,
    /// Correct verdicts, of `n` labelled items of the class.
    pub k: u64,
    /// Labelled items of the class the judge gave a verdict.
    pub n: u64,
}

/// A judge measured on one labelled set: sensitivity (positives flagged) and specificity
/// (negatives not flagged), each absent when the set has no item of its class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeCalibration {
    /// The judge's id.
    pub detector: String,
    /// The labelled set's name.
    pub dataset: String,
    /// The share of labelled positives it flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<LabelledShare>,
    /// The share of labelled negatives it did not flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specificity: Option<LabelledShare>,
    /// Items the judge gave no verdict (left out of both shares).
    pub unscored: u64,
}

impl JudgeCalibration {
    /// From measured counts, with Wilson intervals at `confidence`.
    pub fn of(a: &crate::stats::DetectorAccuracy, confidence: f64) -> JudgeCalibration {
        let share = |k: u64, n: u64| {
            (n > 0).then(|| {
                let ci = crate::stats::wilson(k, n, confidence);
                LabelledShare {
                    value: k as f64 / n as f64,
                    ci_low: ci.low,
                    ci_high: ci.high,
                    k,
                    n,
                }
            })
        };
        JudgeCalibration {
            detector: a.detector.clone(),
            dataset: a.dataset.clone(),
            sensitivity: share(a.true_positives, a.positives),
            specificity: share(a.true_negatives, a.negatives),
            unscored: a.unscored,
        }
    }
}

/// Computes the summary of a run from its attempts (in any order): every metric of every probe,
/// then Holm and Benjamini–Hochberg over all tests of the run. Pure and deterministic.
pub fn summarise(suites: &[Suite], attempts: &[Attempt], seed: u64, confidence: f64) -> Summary {
    summarise_with_accuracy(suites, attempts, seed, Statistics::at(confidence), &[])
}

/// `summarise`, with detector accuracies measured when the run started (judges), which the
/// corrected-rate metrics use and summary.json records.
pub fn summarise_with_accuracy(
    suites: &[Suite],
    attempts: &[Attempt],
    seed: u64,
    statistics: Statistics,
    accuracy: &[crate::stats::DetectorAccuracy],
) -> Summary {
    let Statistics {
        confidence,
        min_effect,
    } = statistics;
    let mut sorted: Vec<&Attempt> = attempts.iter().collect();
    sorted.sort_by(|a, b| (&a.suite, &a.probe, &a.case_id).cmp(&(&b.suite, &b.probe, &b.case_id)));

    let mut probes = Vec::new();
    let mut estimates = Vec::new();
    let mut tests = Vec::new();
    for suite in suites {
        for (index, plan) in suite.probes.iter().enumerate() {
            let probe_id = plan.probe.id();
            let mine: Vec<&Attempt> = sorted
                .iter()
                .copied()
                .filter(|a| a.suite == suite.reference.id && a.probe == probe_id)
                .collect();
            probes.push(ProbeSummary {
                suite: suite.reference.id.clone(),
                probe: probe_id.to_string(),
                goal: plan.probe.goal().to_string(),
                source: plan.probe.source().to_string(),
                n_attempts: mine.len() as u64,
                n_errors: mine.iter().filter(|a| a.is_error()).count() as u64,
                detectors: plan.detectors.iter().map(|d| d.id().to_string()).collect(),
                methods: plan
                    .metrics
                    .iter()
                    .map(|m| (m.id().to_string(), m.method()))
                    .collect(),
                ideals: plan.metrics.iter().flat_map(|m| m.ideals()).collect(),
                roles: plan.metrics.iter().flat_map(|m| m.roles()).collect(),
            });
            let context = MetricContext {
                suite: &suite.reference.id,
                probe: probe_id,
                seed: crate::backend::case_seed(seed, &format!("{}/{index}", suite.reference.id)),
                confidence,
                accuracy,
            };
            for metric in &plan.metrics {
                let output = metric.compute(&mine, &context);
                estimates.extend(output.estimates);
                tests.extend(output.tests);
            }
        }
    }
    let mut warnings = drop_undefined(&mut estimates, &mut tests);
    adjust(&mut tests);
    warnings.extend(power_warnings(&tests, min_effect));
    Summary {
        schema_version: SCHEMA_VERSION,
        suites: suites.iter().map(|s| s.reference.clone()).collect(),
        seed,
        confidence,
        n_attempts: attempts.len() as u64,
        n_errors: attempts.iter().filter(|a| a.is_error()).count() as u64,
        probes,
        estimates,
        warnings,
        tests,
        gates: Vec::new(),
        detector_accuracy: accuracy.to_vec(),
        judge_calibration: accuracy
            .iter()
            .map(|a| JudgeCalibration::of(a, confidence))
            .collect(),
    }
}

/// Removes every estimate and test with a number that is not finite (an undefined estimate,
/// such as a WEAT effect size over an empty word set), returning one warning per removal: JSON
/// has no NaN or infinity, and a `null` would make summary.json unreadable. A non-finite
/// minimum detectable effect is dropped alone (it is optional).
fn drop_undefined(estimates: &mut Vec<Estimate>, tests: &mut Vec<Test>) -> Vec<String> {
    let mut warnings = Vec::new();
    let group = |g: &Attributes| {
        let parts: Vec<String> = g.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    };
    estimates.retain(|e| {
        let fields = [("value", e.value), ("ci_low", e.ci_low), ("ci_high", e.ci_high)];
        let Some((name, value)) = fields.into_iter().find(|(_, v)| !v.is_finite()) else {
            return true;
        };
        warnings.push(format!(
            "{}/{}: estimate {}{} is omitted: its {name} is undefined ({value}), e.g. for lack of data",
            e.suite,
            e.probe,
            e.metric,
            group(&e.group)
        ));
        false
    });
    tests.retain_mut(|t| {
        if t.min_detectable_effect.is_some_and(|v| !v.is_finite()) {
            t.min_detectable_effect = None;
        }
        let fields = [
            ("statistic", t.statistic),
            ("p_value", t.p_value),
            ("effect", t.effect),
            ("effect_ci_low", t.effect_ci_low),
            ("effect_ci_high", t.effect_ci_high),
        ];
        let Some((name, value)) = fields.into_iter().find(|(_, v)| !v.is_finite()) else {
            return true;
        };
        warnings.push(format!(
            "{}/{}: test {} is omitted: its {name} is undefined ({value}), e.g. for lack of data",
            t.suite, t.probe, t.name
        ));
        false
    });
    warnings
}

/// The difference of rates a run is expected to detect unless told otherwise (`--min-effect`).
pub const STATED_EFFECT: f64 = 0.10;

/// The statistics settings of a run: the confidence level of every interval, and the
/// smallest difference of rates it is meant to detect (the power warnings' threshold).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    /// The confidence level of every interval (`--confidence`).
    pub confidence: f64,
    /// Absent in manifests written before it was recorded: the default then applied.
    #[serde(default = "stated_effect")]
    pub min_effect: f64,
}

fn stated_effect() -> f64 {
    STATED_EFFECT
}

impl Statistics {
    /// `confidence` with the default `min_effect`.
    pub fn at(confidence: f64) -> Statistics {
        Statistics {
            confidence,
            min_effect: STATED_EFFECT,
        }
    }
}

/// One warning per probe whose comparisons cannot detect a difference of `stated_effect` at
/// α = 0.05 with 80% power (from each test's `min_detectable_effect`).
pub fn power_warnings(tests: &[Test], stated_effect: f64) -> Vec<String> {
    let mut by_probe: std::collections::BTreeMap<(&str, &str), (usize, usize, f64, f64)> =
        std::collections::BTreeMap::new();
    for test in tests {
        let Some(mde) = test.min_detectable_effect else {
            continue;
        };
        let entry =
            by_probe
                .entry((&test.suite, &test.probe))
                .or_insert((0, 0, f64::INFINITY, 0.0));
        entry.1 += 1;
        if mde > stated_effect {
            entry.0 += 1;
            entry.2 = entry.2.min(mde);
            entry.3 = entry.3.max(mde);
        }
    }
    by_probe
        .into_iter()
        .filter(|(_, (under, ..))| *under > 0)
        .map(|((suite, probe), (under, total, low, high))| {
            format!(
                "{suite}/{probe}: {under} of {total} comparisons are underpowered for a difference of {stated_effect:.2} (they detect only {low:.2}–{high:.2} at α = 0.05 with 80% power); a smaller disparity would likely go unnoticed"
            )
        })
        .collect()
}

/// Fills `q_holm` and `q_bh` over all tests (one family: the whole run).
pub fn adjust(tests: &mut [Test]) {
    let p: Vec<f64> = tests.iter().map(|t| t.p_value).collect();
    let holm = stats::holm(&p);
    let bh = stats::benjamini_hochberg(&p);
    for ((test, q_holm), q_bh) in tests.iter_mut().zip(holm).zip(bh) {
        test.q_holm = q_holm;
        test.q_bh = q_bh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_estimates_and_tests_are_omitted_with_a_warning() {
        let estimate = |value: f64, ci_high: f64| Estimate {
            suite: "s".into(),
            probe: "p".into(),
            metric: "weat_d".into(),
            group: Attributes::from([("test".to_string(), "t1".to_string())]),
            value,
            ci_low: -1.0,
            ci_high,
            ci_method: "bootstrap".into(),
            n: 3,
        };
        let test = |p_value: f64, mde: Option<f64>| Test {
            suite: "s".into(),
            probe: "p".into(),
            name: "gap".into(),
            method: "m".into(),
            statistic: 1.0,
            p_value,
            q_holm: 0.0,
            q_bh: 0.0,
            effect: 0.1,
            effect_ci_low: 0.0,
            effect_ci_high: 0.2,
            groups: Vec::new(),
            n: 10,
            min_detectable_effect: mde,
        };
        let mut estimates = vec![
            estimate(0.5, 1.0),
            estimate(f64::NAN, 1.0),
            estimate(0.5, f64::INFINITY),
        ];
        let mut tests = vec![test(0.2, Some(f64::NAN)), test(f64::NAN, None)];
        let warnings = drop_undefined(&mut estimates, &mut tests);
        assert_eq!(estimates.len(), 1);
        assert_eq!(tests.len(), 1);
        assert_eq!(tests[0].min_detectable_effect, None);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings[0].contains(
                "s/p: estimate weat_d (test=t1) is omitted: its value is undefined (NaN)"
            ),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].contains("ci_high is undefined (inf)"),
            "{}",
            warnings[1]
        );
        assert!(
            warnings[2].contains("test gap is omitted: its p_value"),
            "{}",
            warnings[2]
        );
    }
}
