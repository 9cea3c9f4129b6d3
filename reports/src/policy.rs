//! Policy files (TOML, documented in docs/policy.md): gates on the interval bounds of estimates
//! and on the corrected tests of a run, evaluated by a pure function over a `Summary`.
//!
//! A gate decides on confidence bounds and adjusted p-values, never on raw rates: "the upper
//! 95% bound of the refusal rate is at most 0.05", "no group disparity larger than 5 points
//! with q_BH < 0.05". A gate that selects nothing fails, so that a renamed metric or a typo in a
//! selector can never pass silently.

use std::collections::BTreeSet;
use std::path::Path;

use audit_core::{Attributes, Estimate, Gate, Summary, Test};
use serde::Deserialize;
use toml::Spanned;

use crate::{group_label, number, p_value};

/// A parsed policy: its gates, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Where the policy came from, for messages.
    pub source: String,
    pub gates: Vec<GateSpec>,
}

/// One gate of a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct GateSpec {
    pub name: String,
    pub rule: Rule,
}

/// Which estimates or tests a gate looks at. Every field left out matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    pub suite: Option<String>,
    pub probe: Option<String>,
    /// Estimates: the metric id (`refusal_rate`). Tests: the part of the test name before `:`
    /// (`refusal_gap`).
    pub metric: Option<String>,
    /// Estimates: the attributes the estimate's group must have (an empty table selects only
    /// whole-probe estimates). Tests: the attributes every compared side must have.
    pub group: Option<Attributes>,
}

/// What a gate requires.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// Every selected estimate satisfies every bound given.
    Estimate {
        selector: Selector,
        bounds: EstimateBounds,
    },
    /// No selected test shows an effect larger than `max_effect` (in absolute value) with an
    /// adjusted p-value below `alpha`.
    Disparity {
        selector: Selector,
        max_effect: f64,
        alpha: f64,
        correction: Correction,
    },
}

/// Bounds on an estimate; `None` is not checked.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EstimateBounds {
    pub max_ci_high: Option<f64>,
    pub min_ci_low: Option<f64>,
    pub max_value: Option<f64>,
    pub min_value: Option<f64>,
    pub min_n: Option<u64>,
}

/// Which adjusted p-value a disparity gate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    /// Benjamini–Hochberg (false discovery rate) over every test of the run.
    Bh,
    /// Holm (family-wise error rate) over every test of the run.
    Holm,
}

/// A policy file that cannot be used: one line naming the file, the line and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{}", match line { Some(line) => format!("policy {path}: line {line}: {message}"), None => format!("policy {path}: {message}") })]
pub struct PolicyError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    policy: Option<toml::Table>,
    #[serde(rename = "gate", default)]
    gates: Vec<Spanned<GateFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFile {
    name: String,
    suite: Option<String>,
    probe: Option<String>,
    metric: Option<String>,
    test: Option<String>,
    group: Option<Attributes>,
    max_ci_high: Option<f64>,
    min_ci_low: Option<f64>,
    max_value: Option<f64>,
    min_value: Option<f64>,
    min_n: Option<u64>,
    max_effect: Option<f64>,
    alpha: Option<f64>,
    correction: Option<String>,
}

/// Reads and parses a policy file.
pub fn load_policy(path: &Path) -> Result<Policy, PolicyError> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| PolicyError {
        path: source.clone(),
        line: None,
        message: e.to_string(),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| PolicyError {
        path: source.clone(),
        line: None,
        message: "the file is not UTF-8 text".to_string(),
    })?;
    parse_policy(&text, &source)
}

/// Parses the text of a policy file; `source` names it in errors.
pub fn parse_policy(text: &str, source: &str) -> Result<Policy, PolicyError> {
    let error = |line: Option<usize>, message: String| PolicyError {
        path: source.to_string(),
        line,
        message,
    };
    let file: PolicyFile = toml::from_str(text).map_err(|e| {
        error(
            e.span().map(|s| line_of(text, s.start)),
            e.message().trim().replace('\n', " "),
        )
    })?;
    if let Some(table) = &file.policy {
        if let Some(key) = table.keys().find(|k| k.as_str() != "name") {
            return Err(error(
                None,
                format!("[policy]: unknown field `{key}` (expected `name`)"),
            ));
        }
    }
    if file.gates.is_empty() {
        return Err(error(
            None,
            "no [[gate]]: a policy needs at least one gate".to_string(),
        ));
    }
    let mut names = BTreeSet::new();
    let mut gates = Vec::new();
    for spanned in &file.gates {
        let line = Some(line_of(text, spanned.span().start));
        let gate = spanned.get_ref();
        let spec = gate_spec(gate)
            .map_err(|message| error(line, format!("gate `{}`: {message}", gate.name)))?;
        if !names.insert(gate.name.clone()) {
            return Err(error(
                line,
                format!(
                    "gate `{}` appears twice: gate names must be unique",
                    gate.name
                ),
            ));
        }
        gates.push(spec);
    }
    Ok(Policy {
        source: source.to_string(),
        gates,
    })
}

fn gate_spec(gate: &GateFile) -> Result<GateSpec, String> {
    if gate.name.trim().is_empty() {
        return Err("the name is empty".to_string());
    }
    for (key, value) in [
        ("max_ci_high", gate.max_ci_high),
        ("min_ci_low", gate.min_ci_low),
        ("max_value", gate.max_value),
        ("min_value", gate.min_value),
        ("max_effect", gate.max_effect),
        ("alpha", gate.alpha),
    ] {
        if value.is_some_and(|v| !v.is_finite()) {
            return Err(format!("`{key}` must be a finite number"));
        }
    }
    let estimate_keys = [
        ("max_ci_high", gate.max_ci_high.is_some()),
        ("min_ci_low", gate.min_ci_low.is_some()),
        ("max_value", gate.max_value.is_some()),
        ("min_value", gate.min_value.is_some()),
        ("min_n", gate.min_n.is_some()),
    ];
    let test_keys = [
        ("max_effect", gate.max_effect.is_some()),
        ("alpha", gate.alpha.is_some()),
        ("correction", gate.correction.is_some()),
    ];
    let given = |keys: &[(&str, bool)]| -> Vec<String> {
        keys.iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| format!("`{k}`"))
            .collect()
    };
    match (&gate.metric, &gate.test) {
        (Some(_), Some(_)) => Err(
            "give either `metric` (a bound on estimates) or `test` (a disparity gate), not both"
                .to_string(),
        ),
        (None, None) => Err(
            "give `metric` (a bound on estimates) or `test` (a disparity gate on tests)"
                .to_string(),
        ),
        (Some(metric), None) => {
            let wrong = given(&test_keys);
            if !wrong.is_empty() {
                return Err(format!(
                    "{} apply to `test` gates, not to `metric` gates",
                    wrong.join(", ")
                ));
            }
            if given(&estimate_keys).is_empty() {
                return Err(
                    "no bound: give `max_ci_high`, `min_ci_low`, `max_value`, `min_value` or `min_n`"
                        .to_string(),
                );
            }
            Ok(GateSpec {
                name: gate.name.clone(),
                rule: Rule::Estimate {
                    selector: selector(gate, metric),
                    bounds: EstimateBounds {
                        max_ci_high: gate.max_ci_high,
                        min_ci_low: gate.min_ci_low,
                        max_value: gate.max_value,
                        min_value: gate.min_value,
                        min_n: gate.min_n,
                    },
                },
            })
        }
        (None, Some(test)) => {
            let wrong = given(&estimate_keys);
            if !wrong.is_empty() {
                return Err(format!(
                    "{} apply to `metric` gates, not to `test` gates",
                    wrong.join(", ")
                ));
            }
            let max_effect = gate
                .max_effect
                .ok_or_else(|| "a `test` gate needs `max_effect`".to_string())?;
            if max_effect < 0.0 {
                return Err("`max_effect` must be ≥ 0".to_string());
            }
            let alpha = gate.alpha.unwrap_or(0.05);
            if !(alpha > 0.0 && alpha <= 1.0) {
                return Err("`alpha` must be in (0, 1]".to_string());
            }
            let correction = match gate.correction.as_deref() {
                None | Some("bh") => Correction::Bh,
                Some("holm") => Correction::Holm,
                Some(other) => {
                    return Err(format!("unknown correction `{other}` (known: bh, holm)"))
                }
            };
            Ok(GateSpec {
                name: gate.name.clone(),
                rule: Rule::Disparity {
                    selector: selector(gate, test),
                    max_effect,
                    alpha,
                    correction,
                },
            })
        }
    }
}

fn selector(gate: &GateFile, metric: &str) -> Selector {
    Selector {
        suite: gate.suite.clone(),
        probe: gate.probe.clone(),
        metric: (metric != "*").then(|| metric.to_string()),
        group: gate.group.clone(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Evaluates every gate of a policy on a summary, in policy order. Pure.
pub fn evaluate(policy: &Policy, summary: &Summary) -> Vec<Gate> {
    policy
        .gates
        .iter()
        .map(|gate| evaluate_gate(gate, summary))
        .collect()
}

/// At most this many violations are named in a gate's detail.
const NAMED: usize = 3;

fn evaluate_gate(gate: &GateSpec, summary: &Summary) -> Gate {
    let (passed, detail) = match &gate.rule {
        Rule::Estimate { selector, bounds } => estimate_gate(selector, bounds, summary),
        Rule::Disparity {
            selector,
            max_effect,
            alpha,
            correction,
        } => disparity_gate(selector, *max_effect, *alpha, *correction, summary),
    };
    Gate {
        name: gate.name.clone(),
        passed,
        detail,
    }
}

fn matches_common(selector: &Selector, suite: &str, probe: &str) -> bool {
    selector.suite.as_deref().is_none_or(|s| s == suite)
        && selector.probe.as_deref().is_none_or(|p| p == probe)
}

fn has_attributes(group: &Attributes, wanted: &Attributes) -> bool {
    wanted.iter().all(|(k, v)| group.get(k) == Some(v))
}

fn estimate_selected(selector: &Selector, estimate: &Estimate) -> bool {
    matches_common(selector, &estimate.suite, &estimate.probe)
        && selector
            .metric
            .as_deref()
            .is_none_or(|m| m == estimate.metric)
        && selector.group.as_ref().is_none_or(|wanted| {
            if wanted.is_empty() {
                estimate.group.is_empty()
            } else {
                has_attributes(&estimate.group, wanted)
            }
        })
}

/// The metric part of a test's name (`refusal_gap` of `refusal_gap: group=a vs group=b`).
pub fn test_metric(test: &Test) -> &str {
    test.name
        .split_once(':')
        .map_or(test.name.as_str(), |(metric, _)| metric.trim())
}

fn test_selected(selector: &Selector, test: &Test) -> bool {
    matches_common(selector, &test.suite, &test.probe)
        && selector
            .metric
            .as_deref()
            .is_none_or(|m| m == test_metric(test))
        && selector.group.as_ref().is_none_or(|wanted| {
            !test.groups.is_empty() && test.groups.iter().all(|g| has_attributes(g, wanted))
        })
}

fn describe_selector(selector: &Selector, what: &str) -> String {
    let mut parts = vec![format!(
        "{what} {}",
        selector.metric.as_deref().unwrap_or("*")
    )];
    if let Some(suite) = &selector.suite {
        parts.push(format!("suite {suite}"));
    }
    if let Some(probe) = &selector.probe {
        parts.push(format!("probe {probe}"));
    }
    if let Some(group) = &selector.group {
        parts.push(format!("group {}", group_label(group)));
    }
    parts.join(", ")
}

fn estimate_gate(
    selector: &Selector,
    bounds: &EstimateBounds,
    summary: &Summary,
) -> (bool, String) {
    let selected: Vec<&Estimate> = summary
        .estimates
        .iter()
        .filter(|e| estimate_selected(selector, e))
        .collect();
    let mut requirement = Vec::new();
    if let Some(v) = bounds.max_ci_high {
        requirement.push(format!("upper bound ≤ {v}"));
    }
    if let Some(v) = bounds.min_ci_low {
        requirement.push(format!("lower bound ≥ {v}"));
    }
    if let Some(v) = bounds.max_value {
        requirement.push(format!("value ≤ {v}"));
    }
    if let Some(v) = bounds.min_value {
        requirement.push(format!("value ≥ {v}"));
    }
    if let Some(v) = bounds.min_n {
        requirement.push(format!("n ≥ {v}"));
    }
    let requirement = requirement.join(" and ");
    if selected.is_empty() {
        return (
            false,
            format!(
                "no estimate matches ({}): check the selector",
                describe_selector(selector, "metric")
            ),
        );
    }
    // NaN bounds fail every comparison: an estimate without an interval never passes.
    let violates = |e: &Estimate| {
        bounds
            .max_ci_high
            .is_some_and(|v| e.ci_high.is_nan() || e.ci_high > v)
            || bounds
                .min_ci_low
                .is_some_and(|v| e.ci_low.is_nan() || e.ci_low < v)
            || bounds
                .max_value
                .is_some_and(|v| e.value.is_nan() || e.value > v)
            || bounds
                .min_value
                .is_some_and(|v| e.value.is_nan() || e.value < v)
            || bounds.min_n.is_some_and(|v| e.n < v)
    };
    let show = |e: &Estimate| {
        format!(
            "{} {} {}: {} [{}, {}], n = {}",
            e.probe,
            e.metric,
            group_label(&e.group),
            number(e.value, 3),
            number(e.ci_low, 3),
            number(e.ci_high, 3),
            e.n
        )
    };
    let failing: Vec<&Estimate> = selected.iter().copied().filter(|e| violates(e)).collect();
    if failing.is_empty() {
        let detail = if selected.len() == 1 {
            format!("{requirement}: {}", show(selected[0]))
        } else {
            format!(
                "{requirement}: all {} selected estimates pass",
                selected.len()
            )
        };
        (true, detail)
    } else {
        let mut named: Vec<String> = failing.iter().take(NAMED).map(|e| show(e)).collect();
        if failing.len() > NAMED {
            named.push(format!("and {} more", failing.len() - NAMED));
        }
        (
            false,
            format!(
                "{requirement}: {} of {} selected estimates violate it: {}",
                failing.len(),
                selected.len(),
                named.join("; ")
            ),
        )
    }
}

fn disparity_gate(
    selector: &Selector,
    max_effect: f64,
    alpha: f64,
    correction: Correction,
    summary: &Summary,
) -> (bool, String) {
    let selected: Vec<&Test> = summary
        .tests
        .iter()
        .filter(|t| test_selected(selector, t))
        .collect();
    let (q_name, q_of): (&str, fn(&Test) -> f64) = match correction {
        Correction::Bh => ("q_BH", |t| t.q_bh),
        Correction::Holm => ("q_Holm", |t| t.q_holm),
    };
    let requirement = format!("no |effect| > {max_effect} with {q_name} < {alpha}");
    if selected.is_empty() {
        return (
            false,
            format!(
                "no test matches ({}): check the selector",
                describe_selector(selector, "test")
            ),
        );
    }
    // A NaN effect or q cannot show a disparity; it is not a violation.
    let failing: Vec<&Test> = selected
        .iter()
        .copied()
        .filter(|t| t.effect.abs() > max_effect && q_of(t) < alpha)
        .collect();
    let show = |t: &Test| {
        format!(
            "{} {}: effect {} [{}, {}], {q_name} {}",
            t.probe,
            t.name,
            number(t.effect, 3),
            number(t.effect_ci_low, 3),
            number(t.effect_ci_high, 3),
            p_value(q_of(t))
        )
    };
    if failing.is_empty() {
        let largest = selected
            .iter()
            .copied()
            .filter(|t| t.effect.is_finite())
            .max_by(|a, b| a.effect.abs().total_cmp(&b.effect.abs()));
        let detail = match largest {
            Some(t) => format!(
                "{requirement}: {} selected tests pass; largest effect {}",
                selected.len(),
                show(t)
            ),
            None => format!("{requirement}: {} selected tests pass", selected.len()),
        };
        (true, detail)
    } else {
        let mut named: Vec<String> = failing.iter().take(NAMED).map(|t| show(t)).collect();
        if failing.len() > NAMED {
            named.push(format!("and {} more", failing.len() - NAMED));
        }
        (
            false,
            format!(
                "{requirement}: {} of {} selected tests violate it: {}",
                failing.len(),
                selected.len(),
                named.join("; ")
            ),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn estimate(metric: &str, group: &[(&str, &str)], value: f64, low: f64, high: f64) -> Estimate {
        Estimate {
            suite: "s".to_string(),
            probe: "p".to_string(),
            metric: metric.to_string(),
            group: group
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            ci_low: low,
            ci_high: high,
            ci_method: "wilson".to_string(),
            n: 100,
        }
    }

    fn test(name: &str, axis: &str, effect: f64, q: f64) -> Test {
        let side = |g: &str| -> Attributes {
            [("axis", axis), ("group", g)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Test {
            suite: "s".to_string(),
            probe: "p".to_string(),
            name: name.to_string(),
            method: "mcnemar-exact".to_string(),
            statistic: 0.0,
            p_value: q,
            q_holm: q,
            q_bh: q,
            effect,
            effect_ci_low: effect - 0.05,
            effect_ci_high: effect + 0.05,
            groups: vec![side("a"), side("b")],
            n: 100,
            min_detectable_effect: None,
        }
    }

    fn summary() -> Summary {
        Summary {
            schema_version: 1,
            suites: Vec::new(),
            seed: 0,
            confidence: 0.95,
            n_attempts: 0,
            n_errors: 0,
            probes: Vec::new(),
            estimates: vec![
                estimate("refusal_rate", &[], 0.02, 0.01, 0.04),
                estimate(
                    "refusal_rate",
                    &[("axis", "gender"), ("group", "a")],
                    0.03,
                    0.01,
                    0.08,
                ),
            ],
            tests: vec![
                test(
                    "refusal_gap: group=a vs group=b (axis=gender)",
                    "gender",
                    -0.2,
                    0.001,
                ),
                test(
                    "refusal_gap: group=c vs group=d (axis=race)",
                    "race",
                    0.03,
                    0.01,
                ),
            ],
            gates: Vec::new(),
            warnings: Vec::new(),
            detector_accuracy: Vec::new(),
            judge_calibration: Vec::new(),
        }
    }

    /// Parses a one-gate policy and evaluates it on `summary()`.
    fn check(gate: &str, passed: bool, detail: &str) {
        let text = format!("[[gate]]\nname = \"g\"\n{gate}\n");
        let policy = parse_policy(&text, "p.toml").unwrap_or_else(|e| panic!("{e}"));
        let verdicts = evaluate(&policy, &summary());
        assert_eq!(verdicts.len(), 1);
        assert_eq!(verdicts[0].passed, passed, "{}", verdicts[0].detail);
        assert!(
            verdicts[0].detail.contains(detail),
            "{}\nexpected: {detail}",
            verdicts[0].detail
        );
    }

    #[test]
    fn gates_evaluate() {
        check(
            "metric = \"refusal_rate\"\ngroup = {}\nmax_ci_high = 0.05",
            true,
            "0.020 [0.010, 0.040]",
        );
        check(
            "metric = \"refusal_rate\"\nmax_ci_high = 0.05",
            false,
            "1 of 2 selected estimates",
        );
        check(
            "metric = \"refusal_rate\"\ngroup = { axis = \"gender\" }\nmin_ci_low = 0.02",
            false,
            "group=a",
        );
        check(
            "metric = \"refusal_rate\"\nmin_n = 100",
            true,
            "all 2 selected",
        );
        check("metric = \"refusal_rate\"\nmin_n = 101", false, "n ≥ 101");
        check(
            "metric = \"nope\"\nmax_value = 1",
            false,
            "no estimate matches",
        );
        check(
            "probe = \"q\"\nmetric = \"refusal_rate\"\nmax_value = 1",
            false,
            "probe q",
        );
        check(
            "test = \"refusal_gap\"\nmax_effect = 0.05",
            false,
            "group=a vs group=b",
        );
        check(
            "test = \"refusal_gap\"\nmax_effect = 0.25",
            true,
            "largest effect",
        );
        check(
            "test = \"refusal_gap\"\ngroup = { axis = \"race\" }\nmax_effect = 0.01",
            false,
            "axis=race",
        );
        check(
            "test = \"*\"\ngroup = { axis = \"race\" }\nmax_effect = 0.01\nalpha = 0.005",
            true,
            "1 selected tests pass",
        );
        check(
            "test = \"refusal_gap\"\nmax_effect = 0.05\ncorrection = \"holm\"\nalpha = 0.0001",
            true,
            "q_Holm",
        );
        check(
            "test = \"other\"\nmax_effect = 0.05",
            false,
            "no test matches",
        );
    }

    fn bad(text: &str, expect: &str) {
        let error = parse_policy(text, "p.toml").expect_err(text).to_string();
        assert!(error.starts_with("policy p.toml: "), "{error}");
        assert!(error.contains(expect), "{error}\nexpected: {expect}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }

    #[test]
    fn bad_policies_name_the_line() {
        bad("[[gate]\nname = 1", "line 1:");
        bad("", "no [[gate]]");
        bad(
            "[[gate]]\nname = \"a\"\nmetric = \"m\"\nmax_ci_hgh = 0.1",
            "line 4: unknown field `max_ci_hgh`",
        );
        bad(
            "\n[[gate]]\nname = \"a\"\nmetric = \"m\"",
            "line 2: gate `a`: no bound",
        );
        bad(
            "[[gate]]\nname = \"a\"\ntest = \"t\"",
            "line 1: gate `a`: a `test` gate needs `max_effect`",
        );
        bad(
            "[[gate]]\nname = \"a\"\nmetric = \"m\"\ntest = \"t\"\nmax_value = 1",
            "not both",
        );
        bad(
            "[[gate]]\nname = \"a\"\nmetric = \"m\"\nmax_effect = 1",
            "apply to `test` gates",
        );
        bad(
            "[[gate]]\nname = \"a\"\ntest = \"m\"\nmax_effect = 1\ncorrection = \"bonferroni\"",
            "unknown correction `bonferroni`",
        );
        bad(
            "[[gate]]\nname = \"a\"\ntest = \"m\"\nmax_effect = 1\nalpha = 2",
            "`alpha` must be in (0, 1]",
        );
        bad("[[gate]]\nname = \"a\"\nmetric = \"m\"\nmax_value = 1\n[[gate]]\nname = \"a\"\nmetric = \"m\"\nmax_value = 1", "line 5: gate `a` appears twice");
        bad(
            "[[gate]]\nname = \"a\"\nmetric = \"m\"\nmax_value = nan",
            "finite",
        );
        bad(
            "[policy]\nnam = \"x\"\n[[gate]]\nname = \"a\"\nmetric = \"m\"\nmax_value = 1",
            "unknown field `nam`",
        );
    }
}
