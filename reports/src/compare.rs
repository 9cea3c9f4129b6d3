//! The paired comparison of two runs of the same suites (a base and a new model): for every
//! probe and detector, the cases both runs answered are paired by case id and tested: exact
//! McNemar for binary scores, Wilcoxon signed-rank for continuous ones, with Holm and
//! Benjamini–Hochberg adjusted values over every comparison. Pure: two runs in, a
//! `Comparison` out; rendered as compare.json, compare.md and compare.html.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use audit_core::stats;
use audit_core::summary::FDR_LEVEL;
use audit_core::Attempt;
use minijinja::value::Serde;
use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};

use crate::{number, p_value, write, ReportError, RunFiles};

/// File names of a comparison directory.
pub const COMPARE_JSON: &str = "compare.json";
pub const COMPARE_MD: &str = "compare.md";
pub const COMPARE_HTML: &str = "compare.html";

const TEMPLATE: &str = include_str!("../templates/compare.html");

/// What a side of the comparison is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// The run directory as given.
    pub dir: String,
    pub model: String,
    pub backend: String,
    /// sha256 of every model file.
    pub files: Vec<(String, String)>,
    pub suites: Vec<String>,
    pub seed: u64,
    pub n_attempts: u64,
}

/// One paired test: a probe's detector scores on the cases both runs share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedTest {
    pub suite: String,
    pub probe: String,
    pub detector: String,
    /// `binary` (every score 0 or 1) or `continuous`.
    pub scale: String,
    /// Pairs: cases scored in both runs.
    pub n: u64,
    pub base_mean: f64,
    pub new_mean: f64,
    /// new − base (difference of rates, or mean paired difference).
    pub effect: f64,
    pub effect_ci_low: f64,
    pub effect_ci_high: f64,
    pub ci_method: String,
    /// `mcnemar-exact` or `wilcoxon-signed-rank`.
    pub method: String,
    pub statistic: f64,
    pub p_value: f64,
    pub q_holm: f64,
    pub q_bh: f64,
    /// Binary: cases scored 1 in base only, and in new only.
    pub base_only: u64,
    pub new_only: u64,
}

impl PairedTest {
    /// Whether the change is significant at the run's level (q_BH < [`FDR_LEVEL`]).
    pub fn is_significant(&self) -> bool {
        self.q_bh < FDR_LEVEL
    }
}

/// compare.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub base: Side,
    pub new: Side,
    pub confidence: f64,
    /// Case ids (suite/case) in both runs, and in one only.
    pub n_shared: u64,
    pub n_base_only: u64,
    pub n_new_only: u64,
    pub tests: Vec<PairedTest>,
    pub warnings: Vec<String>,
}

fn side(dir: &str, files: &RunFiles) -> Side {
    Side {
        dir: dir.to_string(),
        model: files.manifest.model.model.clone(),
        backend: files.manifest.model.backend.clone(),
        files: files
            .manifest
            .model
            .files
            .iter()
            .map(|f| (f.path.clone(), f.sha256.clone()))
            .collect(),
        suites: files
            .summary
            .suites
            .iter()
            .map(|s| format!("{}@{}", s.id, s.version))
            .collect(),
        seed: files.summary.seed,
        n_attempts: files.summary.n_attempts,
    }
}

type Key<'a> = (&'a str, &'a str);

fn index(attempts: &[Attempt]) -> BTreeMap<Key<'_>, &Attempt> {
    attempts
        .iter()
        .map(|a| ((a.suite.as_str(), a.case_id.as_str()), a))
        .collect()
}

/// Derived outcome of a choice answer: 1 when the first option is strictly the most likely
/// (CrowS-Pairs: the more stereotyping sentence, pct_stereotype's per-pair outcome).
pub const PREFERS_FIRST: &str = "choice:prefers-first";
/// Derived outcome of a choice answer: 1 when the most likely option is the case's gold `label`.
pub const PREFERS_LABEL: &str = "choice:prefers-label";

/// The scores compared for one attempt: its detector scores; a choice answer that no detector
/// scored (its probe's metrics read the log-probabilities) gets the derived outcomes
/// `choice:prefers-first` and, when the case has a gold `label`, `choice:prefers-label`.
fn scores_of(attempt: &Attempt) -> BTreeMap<String, f64> {
    let mut scores = attempt.scores.clone();
    let Some(lp) = attempt.answer.logprobs() else {
        return scores;
    };
    if !scores.is_empty() || lp.len() < 2 || lp.iter().any(|v| !v.is_finite()) {
        return scores;
    }
    let best = lp[1..].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    scores.insert(PREFERS_FIRST.to_string(), f64::from(u8::from(lp[0] > best)));
    let label = attempt
        .attributes
        .get("label")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l < lp.len());
    if let Some(label) = label {
        let top = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let unique = lp.iter().filter(|&&v| v == top).count() == 1;
        scores.insert(
            PREFERS_LABEL.to_string(),
            f64::from(u8::from(unique && lp[label] == top)),
        );
    }
    scores
}

/// Compares two runs case by case. `base_dir` and `new_dir` only name the sides.
pub fn compare(base_dir: &str, base: &RunFiles, new_dir: &str, new: &RunFiles) -> Comparison {
    let confidence = new.summary.confidence;
    let mut warnings = Vec::new();
    for (b, n) in base.summary.suites.iter().zip(&new.summary.suites) {
        if b.id == n.id && b.sha256 != n.sha256 {
            warnings.push(format!(
                "suite {} differs between the runs ({} vs {}): cases are paired by id only",
                b.id, b.version, n.version
            ));
        }
    }
    let base_ids: BTreeSet<(String, String)> = base
        .summary
        .suites
        .iter()
        .map(|s| (s.id.clone(), s.version.clone()))
        .collect();
    let new_ids: BTreeSet<(String, String)> = new
        .summary
        .suites
        .iter()
        .map(|s| (s.id.clone(), s.version.clone()))
        .collect();
    if base_ids != new_ids {
        warnings
            .push("the runs ran different suites: only shared case ids are compared".to_string());
    }
    let base_index = index(&base.attempts);
    let new_index = index(&new.attempts);
    let shared: Vec<(&Attempt, &Attempt)> = base_index
        .iter()
        .filter_map(|(key, b)| new_index.get(key).map(|n| (*b, *n)))
        .collect();
    let n_base_only = base_index
        .keys()
        .filter(|k| !new_index.contains_key(*k))
        .count();
    let n_new_only = new_index
        .keys()
        .filter(|k| !base_index.contains_key(*k))
        .count();

    // (suite, probe, detector) → score pairs, in case-id order.
    let mut pairs: BTreeMap<(String, String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for (b, n) in &shared {
        if b.probe != n.probe {
            continue;
        }
        let (base_scores, new_scores) = (scores_of(b), scores_of(n));
        for (detector, base_score) in &base_scores {
            if let Some(new_score) = new_scores.get(detector) {
                if base_score.is_finite() && new_score.is_finite() {
                    pairs
                        .entry((b.suite.clone(), b.probe.clone(), detector.clone()))
                        .or_default()
                        .push((*base_score, *new_score));
                }
            }
        }
    }
    let mut tests: Vec<PairedTest> = pairs
        .into_iter()
        .enumerate()
        .map(|(i, ((suite, probe, detector), values))| {
            paired_test(
                suite,
                probe,
                detector,
                &values,
                confidence,
                new.summary.seed.wrapping_add(i as u64),
            )
        })
        .collect();
    let p: Vec<f64> = tests.iter().map(|t| t.p_value).collect();
    for ((test, q_holm), q_bh) in tests
        .iter_mut()
        .zip(stats::holm(&p))
        .zip(stats::benjamini_hochberg(&p))
    {
        test.q_holm = q_holm;
        test.q_bh = q_bh;
    }
    if shared.is_empty() {
        warnings.push("the runs share no case id: nothing to compare".to_string());
    }
    Comparison {
        base: side(base_dir, base),
        new: side(new_dir, new),
        confidence,
        n_shared: shared.len() as u64,
        n_base_only: n_base_only as u64,
        n_new_only: n_new_only as u64,
        tests,
        warnings,
    }
}

fn paired_test(
    suite: String,
    probe: String,
    detector: String,
    values: &[(f64, f64)],
    confidence: f64,
    seed: u64,
) -> PairedTest {
    let d = stats::paired_difference(values, confidence, seed);
    PairedTest {
        suite,
        probe,
        detector,
        scale: d.scale.to_string(),
        n: d.n,
        base_mean: d.first_mean,
        new_mean: d.second_mean,
        effect: d.effect,
        effect_ci_low: d.effect_ci_low,
        effect_ci_high: d.effect_ci_high,
        ci_method: d.ci_method.to_string(),
        method: d.method.to_string(),
        statistic: d.statistic,
        p_value: d.p_value,
        q_holm: f64::NAN,
        q_bh: f64::NAN,
        base_only: d.first_only,
        new_only: d.second_only,
    }
}

/// One probe whose scores moved significantly between the runs.
#[derive(Clone, Debug, Serialize)]
struct Change {
    probe: String,
    detector: String,
    n: u64,
    base: String,
    new: String,
    /// "up" or "down".
    direction: &'static str,
    effect: String,
    interval: String,
    method: String,
    q_bh: String,
    q_holm: String,
}

/// "What the fine-tune changed": the significant tests (q_BH < `FDR_LEVEL`), most significant first,
/// and the files the new side adds to the base's (an adapter on the same base weights).
#[derive(Clone, Debug, Serialize)]
struct Changes {
    rows: Vec<Change>,
    n_tests: usize,
    /// Files of the new model absent from the base's, when every base file (by sha256) is also
    /// the new model's: the new model is the base plus these (e.g. a LoRA adapter).
    added_files: Option<Vec<(String, String)>>,
}

fn changes(comparison: &Comparison) -> Changes {
    let mut significant: Vec<&PairedTest> = comparison
        .tests
        .iter()
        .filter(|t| t.is_significant())
        .collect();
    significant.sort_by(|a, b| {
        a.q_bh
            .total_cmp(&b.q_bh)
            .then(b.effect.abs().total_cmp(&a.effect.abs()))
            .then((&a.probe, &a.detector).cmp(&(&b.probe, &b.detector)))
    });
    let rows = significant
        .into_iter()
        .map(|t| Change {
            probe: t.probe.clone(),
            detector: t.detector.clone(),
            n: t.n,
            base: number(t.base_mean, 3),
            new: number(t.new_mean, 3),
            direction: if t.effect > 0.0 { "up" } else { "down" },
            effect: format!("{:+.3}", t.effect),
            interval: format!(
                "[{}, {}]",
                number(t.effect_ci_low, 3),
                number(t.effect_ci_high, 3)
            ),
            method: t.method.clone(),
            q_bh: p_value(t.q_bh),
            q_holm: p_value(t.q_holm),
        })
        .collect();
    let base_hashes: BTreeSet<&str> = comparison
        .base
        .files
        .iter()
        .map(|(_, h)| h.as_str())
        .collect();
    let new_hashes: BTreeSet<&str> = comparison
        .new
        .files
        .iter()
        .map(|(_, h)| h.as_str())
        .collect();
    let added: Vec<(String, String)> = comparison
        .new
        .files
        .iter()
        .filter(|(_, h)| !base_hashes.contains(h.as_str()))
        .cloned()
        .collect();
    let added_files =
        (!base_hashes.is_empty() && base_hashes.is_subset(&new_hashes) && !added.is_empty())
            .then_some(added);
    Changes {
        rows,
        n_tests: comparison.tests.len(),
        added_files,
    }
}

/// The "What the fine-tune changed" section of compare.md.
pub fn render_changes_markdown(comparison: &Comparison) -> String {
    let c = changes(comparison);
    let mut out = String::from("## What the fine-tune changed\n\n");
    if let Some(added) = &c.added_files {
        let _ = writeln!(
            out,
            "`{}` is `{}` (same weight files, same sha256) plus:\n",
            comparison.new.model, comparison.base.model
        );
        for (path, sha) in added {
            let _ = writeln!(out, "- `{path}` sha256 `{sha}`");
        }
        out.push('\n');
    }
    if c.rows.is_empty() {
        let tests = match c.n_tests {
            1 => "the one paired test does not have".to_string(),
            n => format!("none of the {n} paired tests has"),
        };
        let _ = writeln!(
            out,
            "No probe changed significantly: {tests} q_BH < {FDR_LEVEL}. On these cases the runs do not tell the two models apart; that is not evidence that they behave the same (see the intervals below).",
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{} of {} paired tests changed significantly (q_BH < {FDR_LEVEL}, Benjamini–Hochberg over all of them):\n",
        c.rows.len(),
        c.n_tests
    );
    let _ = writeln!(out, "| probe | detector | pairs | base | new | change (new − base) | interval | test | q_bh | q_holm |\n|---|---|---:|---:|---:|---:|---|---|---:|---:|");
    for r in &c.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} {} | {} | {} | {} | {} |",
            r.probe,
            r.detector,
            r.n,
            r.base,
            r.new,
            r.effect,
            if r.direction == "up" { "▲" } else { "▼" },
            r.interval,
            r.method,
            r.q_bh,
            r.q_holm
        );
    }
    out
}

/// compare.md: for a pull-request comment.
pub fn render_compare_markdown(comparison: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Probity comparison: {} → {}\n",
        comparison.base.model, comparison.new.model
    );
    let significant = comparison
        .tests
        .iter()
        .filter(|t| t.is_significant())
        .count();
    let _ = writeln!(
        out,
        "{} shared cases ({} only in base, {} only in new) · {} paired tests, {} significant at q_BH < {FDR_LEVEL} · {}% intervals\n",
        comparison.n_shared,
        comparison.n_base_only,
        comparison.n_new_only,
        comparison.tests.len(),
        significant,
        number(comparison.confidence * 100.0, 0)
    );
    out.push_str(&render_changes_markdown(comparison));
    let _ = writeln!(out, "\n## All paired tests\n");
    let _ = writeln!(out, "| probe | detector | n | base | new | new − base | interval | test | p | q_holm | q_bh |\n|---|---|---:|---:|---:|---:|---|---|---:|---:|---:|");
    for t in &comparison.tests {
        let mark = if t.is_significant() { " ⚠️" } else { "" };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {}{mark} | [{}, {}] | {} | {} | {} | {} |",
            t.probe,
            t.detector,
            t.n,
            number(t.base_mean, 3),
            number(t.new_mean, 3),
            number(t.effect, 3),
            number(t.effect_ci_low, 3),
            number(t.effect_ci_high, 3),
            t.method,
            p_value(t.p_value),
            p_value(t.q_holm),
            p_value(t.q_bh)
        );
    }
    for warning in &comparison.warnings {
        let _ = writeln!(out, "\n> ⚠️ {warning}");
    }
    out
}

#[derive(Serialize)]
struct Row {
    probe: String,
    detector: String,
    n: u64,
    base: String,
    new: String,
    effect: String,
    interval: String,
    method: String,
    p: String,
    q_holm: String,
    q_bh: String,
    significant: bool,
}

/// compare.html: a self-contained page (autoescaped, no script, inline SVG forest plot).
pub fn render_compare_html(comparison: &Comparison) -> Result<String, ReportError> {
    let render_error = |message: String| ReportError::Render {
        what: COMPARE_HTML.to_string(),
        message,
    };
    let rows: Vec<Row> = comparison
        .tests
        .iter()
        .map(|t| Row {
            probe: t.probe.clone(),
            detector: t.detector.clone(),
            n: t.n,
            base: number(t.base_mean, 3),
            new: number(t.new_mean, 3),
            effect: number(t.effect, 3),
            interval: format!(
                "[{}, {}]",
                number(t.effect_ci_low, 3),
                number(t.effect_ci_high, 3)
            ),
            method: t.method.clone(),
            p: p_value(t.p_value),
            q_holm: p_value(t.q_holm),
            q_bh: p_value(t.q_bh),
            significant: t.is_significant(),
        })
        .collect();
    let forest_rows: Vec<crate::chart::ForestRow> = comparison
        .tests
        .iter()
        .map(|t| crate::chart::ForestRow {
            label: format!("{} {}", t.probe, t.detector),
            effect: t.effect,
            low: t.effect_ci_low,
            high: t.effect_ci_high,
            highlight: t.is_significant(),
        })
        .collect();
    let forest = if forest_rows.is_empty() {
        String::new()
    } else {
        crate::chart::forest(&forest_rows, "new − base, with interval").map_err(render_error)?
    };
    let mut env = Environment::new();
    env.add_template("compare.html", TEMPLATE)
        .map_err(|e| render_error(e.to_string()))?;
    let template = env
        .get_template("compare.html")
        .map_err(|e| render_error(e.to_string()))?;
    template
        .render(context! {
            comparison => Value::from(Serde(comparison)),
            rows => Value::from(Serde(&rows)),
            n_significant => rows.iter().filter(|r| r.significant).count(),
            confidence_pct => number(comparison.confidence * 100.0, 0),
            forest_svg => Value::from_safe_string(forest),
            changes => Value::from(Serde(changes(comparison))),
        })
        .map_err(|e| render_error(e.to_string()))
}

/// Writes compare.json, compare.md and compare.html into `out` (created if needed).
pub fn write_comparison(comparison: &Comparison, out: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(out).map_err(|e| ReportError::File {
        path: out.display().to_string(),
        message: e.to_string(),
    })?;
    let mut json = serde_json::to_string_pretty(comparison).map_err(|e| ReportError::Render {
        what: COMPARE_JSON.to_string(),
        message: e.to_string(),
    })?;
    json.push('\n');
    write(&out.join(COMPARE_JSON), &json)?;
    write(&out.join(COMPARE_MD), &render_compare_markdown(comparison))?;
    write(&out.join(COMPARE_HTML), &render_compare_html(comparison)?)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(values: &[(f64, f64)], method: &str, effect: f64) -> PairedTest {
        let test = paired_test(
            "s".to_string(),
            "p".to_string(),
            "d".to_string(),
            values,
            0.95,
            1,
        );
        assert_eq!(test.method, method);
        assert!((test.effect - effect).abs() < 1e-12, "{test:?}");
        assert!(
            test.effect_ci_low <= test.effect && test.effect <= test.effect_ci_high,
            "{test:?}"
        );
        test
    }

    #[test]
    fn choice_answers_get_derived_outcomes_with_or_without_token_counts() {
        use audit_core::{Answer, Attributes, Case, Query};
        let case = Case {
            id: "p/1".into(),
            probe: "p".into(),
            attributes: Attributes::from([("label".to_string(), "1".to_string())]),
            query: Query::Choice {
                context: String::new(),
                options: vec!["a".into(), "b".into(), "c".into()],
            },
        };
        let sums = vec![-2.0, -1.0, -3.0];
        for answer in [
            Answer::Logprobs(sums.clone()),
            Answer::TokenLogprobs {
                logprobs: sums.clone(),
                tokens: vec![1, 1, 2],
            },
        ] {
            let scores = scores_of(&Attempt::new("s", &case, answer));
            assert_eq!(scores.get(PREFERS_FIRST), Some(&0.0));
            assert_eq!(scores.get(PREFERS_LABEL), Some(&1.0));
        }
        // A detector's scores are compared as they are, without derived outcomes.
        let mut scored = Attempt::new("s", &case, Answer::Logprobs(sums));
        scored.scores.insert("d".into(), 1.0);
        assert_eq!(scores_of(&scored).len(), 1);
    }

    #[test]
    fn binary_scores_use_mcnemar_and_continuous_ones_wilcoxon() {
        let binary: Vec<(f64, f64)> = (0..40)
            .map(|i| (0.0, if i < 12 { 1.0 } else { 0.0 }))
            .collect();
        let test = check(&binary, "mcnemar-exact", 0.3);
        assert_eq!((test.base_only, test.new_only), (0, 12));
        assert!(test.p_value < 0.001, "{test:?}");
        let continuous: Vec<(f64, f64)> = (0..30)
            .map(|i| {
                (
                    f64::from(i) / 30.0,
                    f64::from(i) / 30.0 + 0.1 + f64::from(i % 3) * 0.01,
                )
            })
            .collect();
        let test = check(&continuous, "wilcoxon-signed-rank", 0.11);
        assert!(test.p_value < 0.001, "{test:?}");
        let same: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i % 2), f64::from(i % 2)))
            .collect();
        let test = check(&same, "mcnemar-exact", 0.0);
        assert_eq!(test.p_value, 1.0);
    }
}
