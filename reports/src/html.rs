//! report.html: one self-contained page (inline CSS, inline SVG, a small inline script; no
//! network) rendered by minijinja with HTML autoescaping, so model outputs are shown as text.
//! Nothing from a prompt or an answer is ever rendered as a template: they are values only.

use audit_core::{Answer, Query};
use minijinja::value::Serde;
use minijinja::{context, Environment, Value};
use serde::Serialize;

use crate::{chart, group_label, number, p_value, ReportError, RunFiles};

const TEMPLATE: &str = include_str!("../templates/report.html");

#[derive(Serialize)]
struct EstimateRow {
    probe: String,
    metric: String,
    group: String,
    value: String,
    interval: String,
    method: String,
    n: u64,
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
    error: bool,
}

/// Renders report.html.
pub fn render_html(files: &RunFiles) -> Result<String, ReportError> {
    let summary = &files.summary;
    let estimates: Vec<EstimateRow> = summary
        .estimates
        .iter()
        .map(|e| EstimateRow {
            probe: e.probe.clone(),
            metric: e.metric.clone(),
            group: group_label(&e.group),
            value: number(e.value, 3),
            interval: format!("[{}, {}]", number(e.ci_low, 3), number(e.ci_high, 3)),
            method: e.ci_method.clone(),
            n: e.n,
        })
        .collect();
    let tests: Vec<TestRow> = summary
        .tests
        .iter()
        .map(|t| TestRow {
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
            significant: t.q_bh < 0.05,
            n: t.n,
        })
        .collect();
    let mut attempts: Vec<&audit_core::Attempt> = files.attempts.iter().collect();
    attempts
        .sort_by(|a, b| (&a.suite, &a.probe, &a.case_id).cmp(&(&b.suite, &b.probe, &b.case_id)));
    let attempt_rows: Vec<AttemptRow> = attempts
        .iter()
        .map(|a| AttemptRow {
            probe: a.probe.clone(),
            case_id: a.case_id.clone(),
            attributes: group_label(&a.attributes),
            prompt: match &a.query {
                Query::Chat { prompt, .. } => prompt.clone(),
                Query::Choice { context, options } => {
                    format!("{context} ⟨{}⟩", options.join(" | "))
                }
                Query::Embed { texts } | Query::Classify { texts } => texts.join(" | "),
            },
            answer: match &a.answer {
                Answer::Response(text) => text.clone(),
                Answer::Logprobs(values) => values
                    .iter()
                    .map(|v| number(*v, 3))
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
            error: a.is_error(),
        })
        .collect();

    let render_error = |what: &str, message: String| ReportError::Render {
        what: what.to_string(),
        message,
    };
    let test_refs: Vec<&audit_core::Test> = summary.tests.iter().collect();
    let forest = if test_refs.is_empty() {
        String::new()
    } else {
        chart::forest_plot(&test_refs).map_err(|e| render_error("forest plot", e))?
    };
    let rate_refs: Vec<&audit_core::Estimate> = summary
        .estimates
        .iter()
        .filter(|e| e.metric.ends_with("_rate"))
        .collect();
    let bars = if rate_refs.is_empty() {
        String::new()
    } else {
        chart::rate_bars(&rate_refs).map_err(|e| render_error("rate chart", e))?
    };

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
            estimates => Value::from(Serde(&estimates)),
            tests => Value::from(Serde(&tests)),
            attempts => Value::from(Serde(&attempt_rows)),
            n_significant => tests.iter().filter(|t| t.significant).count(),
            confidence_pct => number(summary.confidence * 100.0, 0),
            forest_svg => Value::from_safe_string(forest),
            rate_svg => Value::from_safe_string(bars),
        })
        .map_err(|e| render_error("report.html", e.to_string()))
}
