//! report.html: one self-contained page (inline CSS, inline SVG, a small inline script; no
//! network) rendered by minijinja with HTML autoescaping, so model outputs are shown as text.
//! Nothing from a prompt or an answer is ever rendered as a template: they are values only.
//!
//! The page reads top to bottom as an auditor asks: verdicts (gates) and headline numbers with
//! intervals, charts per probe, every estimate and test, methods, provenance, the regulatory
//! mapping, each adaptive attack as a conversation (collapsed), and the searchable attempts
//! table.

use std::collections::{BTreeMap, BTreeSet};

use audit_core::attempt::{flags, FLAGGED};
use audit_core::summary::{Role, FDR_LEVEL};
use audit_core::{Answer, Attempt, Estimate, Query, Summary, Test};
use minijinja::value::Serde;
use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};

use crate::attacks;
use crate::chart::{self, Bar, ForestRow, Point};
use crate::{group_label, number, p_value, ReportError, RunFiles};

const TEMPLATE: &str = include_str!("../templates/report.html");

#[derive(Serialize)]
struct EstimateRow {
    probe: String,
    metric: String,
    group: String,
    value: String,
    interval: String,
    /// The value an unbiased model would get, where the metric declares one; else empty.
    ideal: String,
    method: String,
    n: u64,
}

/// One benchmark (a probe whose metrics declare ideal values): the metrics with an ideal, as
/// columns, and one row per group (the whole probe first) with each metric's value and interval.
#[derive(Serialize)]
struct Benchmark {
    suite: String,
    probe: String,
    /// (metric, ideal) per column.
    columns: Vec<(String, String)>,
    rows: Vec<BenchmarkRow>,
}

#[derive(Serialize)]
struct BenchmarkRow {
    group: String,
    /// `value [low, high] (n)` per column, `—` where the group has no such estimate.
    cells: Vec<String>,
}

#[derive(Serialize)]
struct TestRow {
    probe: String,
    name: String,
    method: String,
    effect: String,
    interval: String,
    p: String,
    q_holm: String,
    q_bh: String,
    significant: bool,
    n: u64,
}

#[derive(Serialize)]
struct AttemptRow {
    probe: String,
    case_id: String,
    attributes: String,
    prompt: String,
    answer: String,
    scores: String,
    /// Space-separated tokens the score filter matches: `detector:1`/`detector:0` (score at
    /// least or below 0.5), `error`, `unscored`.
    flags: String,
    error: bool,
}

#[derive(Serialize)]
struct ProbeCharts {
    suite: String,
    probe: String,
    goal: String,
    /// (title, svg) pairs.
    charts: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Provision {
    framework: String,
    provision: String,
    asks: String,
    evidence: Vec<String>,
}

fn estimate_row(e: &Estimate, ideal: Option<f64>) -> EstimateRow {
    EstimateRow {
        probe: e.probe.clone(),
        metric: e.metric.clone(),
        group: group_label(&e.group),
        value: number(e.value, 3),
        interval: format!("[{}, {}]", number(e.ci_low, 3), number(e.ci_high, 3)),
        ideal: ideal.map(|v| number(v, 3)).unwrap_or_default(),
        method: e.ci_method.clone(),
        n: e.n,
    }
}

/// The ideal of an estimate, as its probe's metrics declared it (summary.json `ideals`).
fn ideal_of(summary: &Summary, e: &Estimate) -> Option<f64> {
    summary
        .probes
        .iter()
        .find(|p| p.suite == e.suite && p.probe == e.probe)
        .and_then(|p| p.ideals.get(&e.metric).copied())
}

/// The benchmark tables: every probe with ideal values, its metrics that have one as columns
/// (in the order the estimates come), its groups as rows (the whole probe first).
fn benchmarks(summary: &Summary) -> Vec<Benchmark> {
    let mut out = Vec::new();
    for probe in summary.probes.iter().filter(|p| !p.ideals.is_empty()) {
        let estimates: Vec<&Estimate> = summary
            .estimates
            .iter()
            .filter(|e| {
                e.suite == probe.suite
                    && e.probe == probe.probe
                    && probe.ideals.contains_key(&e.metric)
            })
            .collect();
        let mut metrics: Vec<&str> = Vec::new();
        let mut groups: Vec<&audit_core::Attributes> = Vec::new();
        for e in &estimates {
            if !metrics.contains(&e.metric.as_str()) {
                metrics.push(&e.metric);
            }
            if !groups.contains(&&e.group) {
                groups.push(&e.group);
            }
        }
        if metrics.is_empty() {
            continue;
        }
        // The whole probe first, then groups in the order they come.
        groups.sort_by_key(|g| !g.is_empty());
        let rows = groups
            .iter()
            .map(|group| BenchmarkRow {
                group: if group.is_empty() {
                    "all".to_string()
                } else {
                    group_label(group)
                },
                cells: metrics
                    .iter()
                    .map(|metric| {
                        estimates
                            .iter()
                            .find(|e| e.metric == *metric && e.group == **group)
                            .map_or("—".to_string(), |e| {
                                format!(
                                    "{} [{}, {}] (n {})",
                                    number(e.value, 3),
                                    number(e.ci_low, 3),
                                    number(e.ci_high, 3),
                                    e.n
                                )
                            })
                    })
                    .collect(),
            })
            .collect();
        out.push(Benchmark {
            suite: probe.suite.clone(),
            probe: probe.probe.clone(),
            columns: metrics
                .iter()
                .map(|m| (m.to_string(), number(probe.ideals[*m], 3)))
                .collect(),
            rows,
        });
    }
    out
}

fn test_row(t: &Test) -> TestRow {
    TestRow {
        probe: t.probe.clone(),
        name: t.name.clone(),
        method: t.method.clone(),
        effect: number(t.effect, 3),
        interval: format!(
            "[{}, {}]",
            number(t.effect_ci_low, 3),
            number(t.effect_ci_high, 3)
        ),
        p: p_value(t.p_value),
        q_holm: p_value(t.q_holm),
        q_bh: p_value(t.q_bh),
        significant: t.is_significant(),
        n: t.n,
    }
}

fn attempt_row(a: &Attempt) -> AttemptRow {
    let mut flags: Vec<String> = a
        .scores
        .iter()
        .map(|(k, v)| format!("{k}:{}", u8::from(flags(*v))))
        .collect();
    if a.is_error() {
        flags.push("error".to_string());
    } else if a.scores.is_empty() {
        flags.push("unscored".to_string());
    }
    AttemptRow {
        probe: a.probe.clone(),
        case_id: a.case_id.clone(),
        attributes: group_label(&a.attributes),
        prompt: match &a.query {
            Query::Chat { prompt, .. } => prompt.clone(),
            Query::Choice { context, options } => {
                format!("{context} ⟨{}⟩", options.join(" | "))
            }
            Query::Embed { texts } | Query::Classify { texts } => texts.join(" | "),
            Query::SuffixSearch { prompt, .. } => match &a.answer {
                Answer::SuffixSearch { suffix, .. } => format!("{prompt} ⟨suffix⟩ {suffix}"),
                _ => prompt.clone(),
            },
            Query::Attack { goal, .. } => match &a.answer {
                Answer::Attack(record) => record.prompt.clone(),
                _ => goal.clone(),
            },
        },
        answer: match &a.answer {
            Answer::Response(text) => text.clone(),
            Answer::Attack(record) if record.failure.is_some() => format!(
                "error: {} ⟨{} target queries, {}⟩",
                record.failure.as_deref().unwrap_or_default(),
                record.queries.target,
                attacks::stop_name(record.stop)
            ),
            Answer::Attack(record) => format!(
                "{} ⟨{} target queries, rating {}, {}⟩",
                record.response,
                record.queries.target,
                number(record.rating, 0),
                attacks::stop_name(record.stop)
            ),
            Answer::SuffixSearch {
                response,
                steps,
                losses,
                target_hit,
                ..
            } => format!(
                "{response} ⟨GCG: {steps} steps, final loss {}, target {}⟩",
                losses
                    .last()
                    .map_or_else(|| "—".to_string(), |l| number(*l, 3)),
                if *target_hit { "hit" } else { "missed" }
            ),
            Answer::Logprobs(values) => values
                .iter()
                .map(|v| number(*v, 3))
                .collect::<Vec<_>>()
                .join(", "),
            Answer::TokenLogprobs { logprobs, tokens } => logprobs
                .iter()
                .zip(tokens)
                .map(|(v, n)| format!("{} ({n} tok)", number(*v, 3)))
                .collect::<Vec<_>>()
                .join(", "),
            Answer::Embeddings(vectors) => format!("{} vectors", vectors.len()),
            Answer::Labels(labels) => format!("{labels:?}"),
            Answer::Error(message) => format!("error: {message}"),
        },
        scores: a
            .scores
            .iter()
            .map(|(k, v)| format!("{k}={}", number(*v, 3)))
            .collect::<Vec<_>>()
            .join(", "),
        flags: flags.join(" "),
        error: a.is_error(),
    }
}

/// The charts of one probe: a forest plot of its tests, interval bars of each metric's
/// estimates by group, and a scatter of two metrics over groups when it has two that share
/// groups (an attack-success rate against an over-refusal rate, where their roles say so).
fn probe_charts(
    summary: &Summary,
    suite: &str,
    probe: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut charts = Vec::new();
    let estimates: Vec<&Estimate> = summary
        .estimates
        .iter()
        .filter(|e| e.suite == suite && e.probe == probe)
        .collect();
    let tests: Vec<&Test> = summary
        .tests
        .iter()
        .filter(|t| t.suite == suite && t.probe == probe)
        .collect();
    if !tests.is_empty() {
        let rows: Vec<ForestRow> = tests
            .iter()
            .map(|t| ForestRow {
                label: t.name.clone(),
                effect: t.effect,
                low: t.effect_ci_low,
                high: t.effect_ci_high,
                highlight: t.is_significant(),
            })
            .collect();
        charts.push((
            format!("Group disparities: effect with interval (red: q_BH < {FDR_LEVEL})"),
            chart::forest(&rows, "effect with interval")?,
        ));
    }
    let metrics: Vec<&str> = estimates
        .iter()
        .map(|e| e.metric.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for metric in &metrics {
        let bars: Vec<Bar> = estimates
            .iter()
            .filter(|e| e.metric == *metric)
            .map(|e| Bar {
                label: group_label(&e.group),
                value: e.value,
                low: e.ci_low,
                high: e.ci_high,
            })
            .collect();
        charts.push((
            format!("{metric} by category, with interval"),
            chart::bars(&bars, &format!("{metric} with interval"))?,
        ));
    }
    let declared = summary
        .probes
        .iter()
        .find(|p| p.suite == suite && p.probe == probe);
    let role = |metric: &str| declared.and_then(|p| p.role(metric));
    if let Some((x, y)) = scatter_pair(&estimates, &metrics, &role) {
        let by_group = |metric: &str| -> BTreeMap<String, (f64, f64, f64)> {
            estimates
                .iter()
                .filter(|e| e.metric == metric && !e.group.is_empty())
                .map(|e| (group_label(&e.group), (e.value, e.ci_low, e.ci_high)))
                .collect()
        };
        let (xs, ys) = (by_group(x), by_group(y));
        let points: Vec<Point> = xs
            .iter()
            .filter_map(|(group, xv)| {
                ys.get(group).map(|yv| Point {
                    label: group.clone(),
                    x: *xv,
                    y: *yv,
                })
            })
            .collect();
        charts.push((
            format!("{x} against {y}, by group"),
            chart::scatter(&points, x, y)?,
        ));
    }
    Ok(charts)
}

/// The run's safety trade-off: every attack-success estimate (by its declared role) of a whole
/// probe against every over-refusal estimate (the share of harmless requests refused), one
/// point per pair with both intervals. `None` when the run lacks either kind.
fn tradeoff_chart(summary: &Summary) -> Result<Option<String>, String> {
    let whole = |role: Role| -> Vec<&Estimate> {
        summary
            .estimates
            .iter()
            .filter(|e| e.group.is_empty() && summary.role(e) == Some(role))
            .collect()
    };
    let attacks = whole(Role::AttackSuccess);
    let refusals = whole(Role::OverRefusal);
    if attacks.is_empty() || refusals.is_empty() {
        return Ok(None);
    }
    let single = refusals.len() == 1;
    let refusals = &refusals;
    let points: Vec<Point> = attacks
        .iter()
        .flat_map(|attack| {
            refusals.iter().map(move |refusal| Point {
                label: if single {
                    attack.probe.clone()
                } else {
                    format!("{} / {}", attack.probe, refusal.probe)
                },
                x: (refusal.value, refusal.ci_low, refusal.ci_high),
                y: (attack.value, attack.ci_low, attack.ci_high),
            })
        })
        .collect();
    chart::scatter(
        &points,
        "over-refusal rate (harmless requests refused)",
        "attack success rate",
    )
    .map(Some)
}

/// Two metrics of a probe with group estimates over the same groups: an attack-success metric
/// against an over-refusal one where their roles say so, else the first two in name order.
fn scatter_pair<'a>(
    estimates: &[&Estimate],
    metrics: &[&'a str],
    role: &dyn Fn(&str) -> Option<Role>,
) -> Option<(&'a str, &'a str)> {
    let groups = |metric: &str| -> BTreeSet<String> {
        estimates
            .iter()
            .filter(|e| e.metric == metric && !e.group.is_empty())
            .map(|e| group_label(&e.group))
            .collect()
    };
    let candidates: Vec<&str> = metrics
        .iter()
        .copied()
        // A judge-corrected variant is the same quantity, not a second metric to plot against.
        .filter(|m| groups(m).len() >= 2 && !m.ends_with("_corrected"))
        .collect();
    let attack = candidates
        .iter()
        .copied()
        .find(|m| role(m) == Some(Role::AttackSuccess));
    let refusal = candidates
        .iter()
        .copied()
        .find(|m| role(m) == Some(Role::OverRefusal));
    let pair = match (attack, refusal) {
        (Some(a), Some(r)) if a != r => Some((a, r)),
        _ if candidates.len() >= 2 => Some((candidates[0], candidates[1])),
        _ => None,
    }?;
    (!groups(pair.0).is_disjoint(&groups(pair.1))).then_some(pair)
}

/// Which evidence of this run speaks to which provision. Evidence, not a conformity
/// assessment: the page says so next to the table.
fn provisions(files: &RunFiles) -> Result<Vec<Provision>, ReportError> {
    let summary = &files.summary;
    let manifest = &files.manifest;
    let bias_probes: Vec<&str> = summary
        .probes
        .iter()
        .filter(|p| {
            // Bias evidence compares demographic groups: estimates or tests over an `axis` or
            // `group` attribute (not, say, over attack transforms).
            let demographic =
                |g: &audit_core::Attributes| g.contains_key("axis") || g.contains_key("group");
            summary
                .estimates
                .iter()
                .any(|e| e.probe == p.probe && demographic(&e.group))
                || summary
                    .tests
                    .iter()
                    .any(|t| t.probe == p.probe && t.groups.iter().any(demographic))
        })
        .map(|p| p.probe.as_str())
        .collect();
    let axes: BTreeSet<String> = summary
        .estimates
        .iter()
        .filter_map(|e| e.group.get("axis").cloned())
        .collect();
    let n_significant = summary.tests.iter().filter(|t| t.is_significant()).count();
    let robustness_probes: Vec<&str> = summary
        .probes
        .iter()
        .filter(|p| {
            // Adversarial evidence: attack transforms applied, or an attack-success metric.
            files.attempts.iter().any(|a| {
                a.probe == p.probe && a.attributes.get("transform").is_some_and(|t| t != "none")
            }) || summary
                .estimates
                .iter()
                .any(|e| e.probe == p.probe && summary.role(e) == Some(Role::AttackSuccess))
        })
        .map(|p| p.probe.as_str())
        .collect();
    let failed_gates = summary.gates.iter().filter(|g| !g.passed).count();
    let gates = if summary.gates.is_empty() {
        "No policy was applied: no gate evidence in this run.".to_string()
    } else {
        format!(
            "{} policy gates evaluated on interval bounds and adjusted tests, {} failed (Verdicts section).",
            summary.gates.len(),
            failed_gates
        )
    };
    let list = |items: &[&str]| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    let bias = if bias_probes.is_empty() {
        "No probe of this run compares groups: no bias evidence.".to_string()
    } else {
        format!(
            "Bias probes {} over the axes {}: {} group estimates with intervals and {} corrected tests, {} significant at q_BH < {FDR_LEVEL} (Estimates and Group disparities sections).",
            list(&bias_probes),
            if axes.is_empty() { "given by the probes".to_string() } else { axes.iter().cloned().collect::<Vec<_>>().join(", ") },
            summary.estimates.iter().filter(|e| !e.group.is_empty()).count(),
            summary.tests.len(),
            n_significant
        )
    };
    let hashes = format!(
        "Provenance: sha256 of {} model files and {} suite files, tool {} {} (git {}), backend {} on {}, seed {}, command line (Provenance section); every attempt with its prompt, answer and scores (Attempts section, attempts.jsonl).",
        manifest.model.files.len(),
        manifest.suites.len(),
        manifest.tool.name,
        manifest.tool.version,
        manifest.tool.git_sha,
        manifest.model.backend,
        manifest.model.device,
        summary.seed
    );
    let methods = "Methods section: the formula, interval and test of every metric, the multiplicity corrections (Holm, Benjamini–Hochberg) and the seed.".to_string();
    let errors = format!(
        "{} of {} attempts failed in the backend.",
        summary.n_errors, summary.n_attempts
    );
    let robustness = if robustness_probes.is_empty() {
        "No probe of this run applies attack transforms: no adversarial-robustness evidence."
            .to_string()
    } else {
        format!(
            "Probes that attack the model (transforms such as encodings, role-play or injection, or an attack-success metric): {}.",
            list(&robustness_probes)
        )
    };
    let rates = format!(
        "{} estimates, each with its {}% interval and method (Estimates section).",
        summary.estimates.len(),
        number(summary.confidence * 100.0, 0)
    );
    let special_categories = if axes.is_empty() {
        "No protected-attribute axis in this run.".to_string()
    } else {
        format!("The probes name the protected attributes ({}) in synthetic, counterfactual prompts: no personal data about real people is processed.", axes.iter().cloned().collect::<Vec<_>>().join(", "))
    };
    let evidence: BTreeMap<&str, String> = BTreeMap::from([
        ("bias", bias),
        ("gates", gates),
        ("compare", "A later run compared with this one (`probity compare`) measures whether a mitigation worked, with paired tests.".to_string()),
        ("special_categories", special_categories),
        ("rates", rates),
        ("robustness", robustness),
        ("errors", errors),
        ("methods", methods),
        ("hashes", hashes),
        ("dated", format!("Dated: {} → {}.", manifest.started_at, manifest.finished_at.as_deref().unwrap_or("not finished"))),
        ("reproducible", format!("Every number carries its interval; the same seed ({}) and CPU backend reproduce attempts.jsonl and summary.json byte for byte.", summary.seed)),
        ("probes", format!("Probes of this run: {}.", summary.probes.iter().map(|p| p.probe.as_str()).collect::<Vec<_>>().join(", "))),
    ]);
    let mapping = frameworks()?;
    mapping
        .provision
        .iter()
        .map(|p| {
            let unknown = |what: &str, name: &str| {
                frameworks_error(format!(
                    "provision {}: unknown {what} `{name}`",
                    p.provision
                ))
            };
            Ok(Provision {
                framework: mapping
                    .frameworks
                    .get(&p.framework)
                    .ok_or_else(|| unknown("framework", &p.framework))?
                    .clone(),
                provision: p.provision.clone(),
                asks: p.asks.clone(),
                evidence: p
                    .evidence
                    .iter()
                    .map(|name| {
                        evidence
                            .get(name.as_str())
                            .cloned()
                            .ok_or_else(|| unknown("evidence", name))
                    })
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

/// The file that maps evidence to provisions, embedded at build time.
const FRAMEWORKS_FILE: &str = "reports/src/frameworks.toml";
const FRAMEWORKS: &str = include_str!("frameworks.toml");

/// The evidence sentences `provisions` writes, by the names frameworks.toml uses.
#[cfg(test)]
const EVIDENCE: [&str; 12] = [
    "bias",
    "gates",
    "compare",
    "special_categories",
    "rates",
    "robustness",
    "errors",
    "methods",
    "hashes",
    "dated",
    "reproducible",
    "probes",
];

/// frameworks.toml: the frameworks' full names, and the provisions in the table's order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Frameworks {
    frameworks: BTreeMap<String, String>,
    provision: Vec<FrameworkProvision>,
}

/// One provision: what it asks and the names of the evidence that speaks to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameworkProvision {
    framework: String,
    provision: String,
    asks: String,
    evidence: Vec<String>,
}

fn frameworks_error(message: String) -> ReportError {
    ReportError::Render {
        what: FRAMEWORKS_FILE.to_string(),
        message,
    }
}

/// frameworks.toml, parsed once.
fn frameworks() -> Result<&'static Frameworks, ReportError> {
    static PARSED: std::sync::OnceLock<Result<Frameworks, String>> = std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| toml::from_str(FRAMEWORKS).map_err(|e| e.message().to_string()))
        .as_ref()
        .map_err(|e| frameworks_error(e.clone()))
}

/// The tests, interval methods and random procedures used anywhere in the run, for the methods
/// section.
fn methods_used(summary: &Summary) -> (Vec<String>, Vec<String>) {
    let tests: BTreeSet<String> = summary.tests.iter().map(|t| t.method.clone()).collect();
    let intervals: BTreeSet<String> = summary
        .estimates
        .iter()
        .map(|e| e.ci_method.clone())
        .collect();
    (tests.into_iter().collect(), intervals.into_iter().collect())
}

/// Renders report.html.
pub fn render_html(files: &RunFiles) -> Result<String, ReportError> {
    let summary = &files.summary;
    let render_error = |what: &str, message: String| ReportError::Render {
        what: what.to_string(),
        message,
    };
    let estimates: Vec<EstimateRow> = summary
        .estimates
        .iter()
        .map(|e| estimate_row(e, ideal_of(summary, e)))
        .collect();
    let headline: Vec<EstimateRow> = summary
        .estimates
        .iter()
        .filter(|e| e.group.is_empty())
        .map(|e| estimate_row(e, ideal_of(summary, e)))
        .collect();
    let benchmarks = benchmarks(summary);
    let tests: Vec<TestRow> = summary.tests.iter().map(test_row).collect();
    let findings: Vec<TestRow> = summary
        .tests
        .iter()
        .filter(|t| t.is_significant())
        .map(test_row)
        .collect();
    let mut attempts: Vec<&Attempt> = files.attempts.iter().collect();
    attempts
        .sort_by(|a, b| (&a.suite, &a.probe, &a.case_id).cmp(&(&b.suite, &b.probe, &b.case_id)));
    let attempt_rows: Vec<AttemptRow> = attempts.iter().map(|a| attempt_row(a)).collect();
    let probe_ids: BTreeSet<&str> = attempts.iter().map(|a| a.probe.as_str()).collect();
    let detectors: BTreeSet<&str> = attempts
        .iter()
        .flat_map(|a| a.scores.keys().map(String::as_str))
        .collect();
    // (flag the rows carry, what the menu says).
    let score_filters: Vec<(String, String)> = detectors
        .iter()
        .flat_map(|d| {
            [
                (format!("{d}:1"), format!("{d} ≥ {FLAGGED}")),
                (format!("{d}:0"), format!("{d} < {FLAGGED}")),
            ]
        })
        .collect();
    let mut charts = Vec::new();
    for probe in &summary.probes {
        let mut probe_charts = probe_charts(summary, &probe.suite, &probe.probe)
            .map_err(|e| render_error("charts", e))?;
        let lines: Vec<chart::Curve> = attempts
            .iter()
            .filter(|a| a.suite == probe.suite && a.probe == probe.probe)
            .filter_map(|a| match &a.answer {
                Answer::SuffixSearch { losses, .. } => Some(chart::Curve {
                    label: a
                        .attributes
                        .get("item")
                        .cloned()
                        .unwrap_or_else(|| a.case_id.clone()),
                    values: losses.clone(),
                }),
                _ => None,
            })
            .collect();
        if !lines.is_empty() {
            probe_charts.push((
                "GCG target loss per step, one line per behavior".to_string(),
                chart::curves(&lines, "step", "target loss (nats per token)")
                    .map_err(|e| render_error("charts", e))?,
            ));
        }
        charts.push(ProbeCharts {
            suite: probe.suite.clone(),
            probe: probe.probe.clone(),
            goal: probe.goal.clone(),
            charts: probe_charts,
        });
    }
    let probe_keys: Vec<(String, String)> = summary
        .probes
        .iter()
        .map(|p| (p.suite.clone(), p.probe.clone()))
        .collect();
    let attacks = attacks::views(&probe_keys, &attempts, attacks::PAGE_CHARS);
    let (test_methods, interval_methods) = methods_used(summary);
    let provisions = provisions(files)?;
    let tradeoff = tradeoff_chart(summary)
        .map_err(|e| render_error("charts", e))?
        .unwrap_or_default();

    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| render_error("report template", e.to_string()))?;
    let template = env
        .get_template("report.html")
        .map_err(|e| render_error("report template", e.to_string()))?;
    template
        .render(context! {
            manifest => Value::from(Serde(&files.manifest)),
            summary => Value::from(Serde(summary)),
            headline => Value::from(Serde(&headline)),
            benchmarks => Value::from(Serde(&benchmarks)),
            findings => Value::from(Serde(&findings)),
            estimates => Value::from(Serde(&estimates)),
            tests => Value::from(Serde(&tests)),
            attempts => Value::from(Serde(&attempt_rows)),
            attacks => Value::from(Serde(&attacks)),
            attack_text_chars => attacks::TEXT_CHARS,
            attack_turns => attacks::TURNS,
            attack_page_chars => attacks::PAGE_CHARS,
            probe_ids => Value::from(Serde(&probe_ids)),
            score_filters => Value::from(Serde(&score_filters)),
            charts => charts.iter().map(|c| context! {
                suite => c.suite.clone(),
                probe => c.probe.clone(),
                goal => c.goal.clone(),
                charts => c.charts.iter().map(|(title, svg)| context! {
                    title => title.clone(),
                    svg => Value::from_safe_string(svg.clone()),
                }).collect::<Vec<_>>(),
            }).collect::<Vec<_>>(),
            tradeoff_svg => Value::from_safe_string(tradeoff),
            provisions => Value::from(Serde(&provisions)),
            test_methods => test_methods,
            interval_methods => interval_methods,
            n_failed_gates => summary.gates.iter().filter(|g| !g.passed).count(),
            n_significant => findings.len(),
            confidence_pct => number(summary.confidence * 100.0, 0),
        })
        .map_err(|e| render_error("report.html", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(metric: &str, group: &str) -> Estimate {
        Estimate {
            suite: "s".to_string(),
            probe: "p".to_string(),
            metric: metric.to_string(),
            group: if group.is_empty() {
                audit_core::Attributes::new()
            } else {
                [("group".to_string(), group.to_string())]
                    .into_iter()
                    .collect()
            },
            value: 0.5,
            ci_low: 0.4,
            ci_high: 0.6,
            ci_method: "wilson".to_string(),
            n: 10,
        }
    }

    /// Which two metrics of a probe get a scatter, if any.
    fn check(estimates: &[(&str, &str)], expect: Option<(&str, &str)>) {
        let owned: Vec<Estimate> = estimates.iter().map(|(m, g)| estimate(m, g)).collect();
        let refs: Vec<&Estimate> = owned.iter().collect();
        let metrics: Vec<&str> = refs
            .iter()
            .map(|e| e.metric.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let role = |m: &str| match m {
            "asr" => Some(Role::AttackSuccess),
            "over_refusal_rate" => Some(Role::OverRefusal),
            _ => None,
        };
        assert_eq!(
            scatter_pair(&refs, &metrics, &role),
            expect,
            "{estimates:?}"
        );
    }

    #[test]
    fn scatter_pairs() {
        let groups = |m: &'static str| [(m, "a"), (m, "b")];
        check(&groups("refusal_rate"), None);
        check(
            &[groups("a_rate"), groups("b_rate")].concat(),
            Some(("a_rate", "b_rate")),
        );
        check(
            &[
                groups("accuracy"),
                groups("over_refusal_rate"),
                groups("asr"),
            ]
            .concat(),
            Some(("asr", "over_refusal_rate")),
        );
        check(
            &[
                ("a_rate", "x"),
                ("a_rate", "y"),
                ("b_rate", "z"),
                ("b_rate", "w"),
            ],
            None,
        );
        check(&[("a_rate", ""), ("b_rate", "")], None);
        check(&[groups("asr"), groups("asr_corrected")].concat(), None);
    }

    #[test]
    fn the_tradeoff_chart_needs_both_kinds() {
        let summary = |metrics: &[&str]| Summary {
            schema_version: 1,
            suites: Vec::new(),
            seed: 0,
            confidence: 0.95,
            n_attempts: 0,
            n_errors: 0,
            // The roles the asr and corrected-rate metrics declare (the corrected variants
            // carry none).
            probes: vec![audit_core::summary::ProbeSummary {
                suite: "s".to_string(),
                probe: "p".to_string(),
                goal: String::new(),
                source: String::new(),
                n_attempts: 0,
                n_errors: 0,
                detectors: Vec::new(),
                methods: Vec::new(),
                ideals: BTreeMap::new(),
                roles: BTreeMap::from([
                    ("asr".to_string(), Role::AttackSuccess),
                    ("over_refusal".to_string(), Role::OverRefusal),
                ]),
            }],
            estimates: metrics.iter().map(|m| estimate(m, "")).collect(),
            tests: Vec::new(),
            gates: Vec::new(),
            warnings: Vec::new(),
            detector_accuracy: Vec::new(),
            judge_calibration: Vec::new(),
        };
        let chart = |metrics: &[&str]| tradeoff_chart(&summary(metrics)).map(|c| c.is_some());
        assert_eq!(chart(&["asr", "over_refusal"]), Ok(true));
        assert_eq!(chart(&["asr", "refusal_rate"]), Ok(false));
        assert_eq!(chart(&["over_refusal", "asr_corrected"]), Ok(false));
    }

    #[test]
    fn the_framework_mapping_parses_and_names_known_evidence() {
        let mapping = frameworks().unwrap();
        assert_eq!(mapping.provision.len(), 10);
        for p in &mapping.provision {
            assert!(
                mapping.frameworks.contains_key(&p.framework),
                "{}: framework {}",
                p.provision,
                p.framework
            );
            assert!(!p.evidence.is_empty(), "{}", p.provision);
            for name in &p.evidence {
                assert!(EVIDENCE.contains(&name.as_str()), "{}: {name}", p.provision);
            }
        }
        // Every evidence sentence is used somewhere.
        for name in EVIDENCE {
            assert!(
                mapping
                    .provision
                    .iter()
                    .any(|p| p.evidence.iter().any(|e| e == name)),
                "{name}"
            );
        }
    }
}
