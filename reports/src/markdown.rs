//! summary.md: the run's verdicts and headline numbers, short enough for a pull-request comment.

use std::fmt::Write;

use crate::{group_label, number, p_value, RunFiles};

/// Markdown for a pull-request comment. Model outputs never appear in it.
pub fn render_markdown(files: &RunFiles) -> String {
    let summary = &files.summary;
    let manifest = &files.manifest;
    let mut out = String::new();
    let suites: Vec<String> = summary
        .suites
        .iter()
        .map(|s| format!("{}@{}", s.id, s.version))
        .collect();
    let _ = writeln!(out, "# Probity audit: {}", manifest.model.model);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Suites {} · backend {} · {} attempts ({} errors) · seed {} · {}% intervals",
        suites.join(", "),
        manifest.model.backend,
        summary.n_attempts,
        summary.n_errors,
        summary.seed,
        number(summary.confidence * 100.0, 0)
    );
    if !summary.gates.is_empty() {
        let failed = summary.gates.iter().filter(|g| !g.passed).count();
        let verdict = if failed == 0 {
            format!("**✅ PASS**: all {} gates passed", summary.gates.len())
        } else {
            let names: Vec<String> = summary
                .gates
                .iter()
                .filter(|g| !g.passed)
                .map(|g| format!("`{}`", escape(&g.name)))
                .collect();
            format!(
                "**❌ FAIL**: {failed} of {} gates failed ({})",
                summary.gates.len(),
                names.join(", ")
            )
        };
        let _ = writeln!(
            out,
            "\n## Gates\n\n{verdict}\n\n| gate | verdict | detail |\n|---|---|---|"
        );
        for gate in &summary.gates {
            let verdict = if gate.passed { "✅ pass" } else { "❌ FAIL" };
            let _ = writeln!(
                out,
                "| {} | {verdict} | {} |",
                escape(&gate.name),
                escape(&gate.detail)
            );
        }
    }
    let _ = writeln!(out, "\n## Estimates\n\n| probe | metric | group | value | interval | n |\n|---|---|---|---:|---|---:|");
    for e in &summary.estimates {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | [{}, {}] | {} |",
            escape(&e.probe),
            escape(&e.metric),
            escape(&group_label(&e.group)),
            number(e.value, 3),
            number(e.ci_low, 3),
            number(e.ci_high, 3),
            e.n
        );
    }
    let attacks: Vec<(&str, crate::attacks::Counts)> = summary
        .probes
        .iter()
        .filter_map(|p| {
            let mine = files
                .attempts
                .iter()
                .filter(|a| a.suite == p.suite && a.probe == p.probe);
            crate::attacks::Counts::of(mine).map(|counts| (p.probe.as_str(), counts))
        })
        .collect();
    if !attacks.is_empty() {
        let _ = writeln!(out, "\n## Attacks\n");
        for (probe, counts) in &attacks {
            let _ = writeln!(out, "- **{}**: {}", escape(probe), counts.line());
        }
    }
    if !summary.detector_accuracy.is_empty() {
        let _ = writeln!(out, "\n## Judge accuracy\n\nMeasured when the run started, against human labels (Wilson intervals at the run's confidence); the `_corrected` estimates of these judges use the first set of each judge.\n\n| judge | labelled set | sensitivity | specificity | unreadable verdicts |\n|---|---|---|---|---:|");
        let share = |s: &Option<audit_core::summary::LabelledShare>| match s {
            Some(s) => format!(
                "{}/{} = {} [{}, {}]",
                s.k,
                s.n,
                number(s.value, 3),
                number(s.ci_low, 3),
                number(s.ci_high, 3)
            ),
            None => "–".to_string(),
        };
        for (i, a) in summary.detector_accuracy.iter().enumerate() {
            // Summaries written before the intervals existed: the counts alone.
            let (sensitivity, specificity) = match summary.judge_calibration.get(i) {
                Some(c) => (share(&c.sensitivity), share(&c.specificity)),
                None => (
                    format!("{}/{}", a.true_positives, a.positives),
                    format!("{}/{}", a.true_negatives, a.negatives),
                ),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                escape(&a.detector),
                escape(&a.dataset),
                sensitivity,
                specificity,
                a.unscored
            );
        }
    }
    let significant = summary.tests.iter().filter(|t| t.is_significant()).count();
    let _ = writeln!(
        out,
        "\n## Tests\n\n{} tests, {} significant at q_BH < {} (Benjamini–Hochberg over all tests of the run; Holm also given).\n",
        summary.tests.len(),
        significant,
        audit_core::summary::FDR_LEVEL
    );
    if !summary.tests.is_empty() {
        let _ = writeln!(out, "| probe | comparison | effect | interval | p | q_holm | q_bh | n |\n|---|---|---:|---|---:|---:|---:|---:|");
        for t in &summary.tests {
            let _ = writeln!(
                out,
                "| {} | {} | {} | [{}, {}] | {} | {} | {} | {} |",
                escape(&t.probe),
                escape(&t.name),
                number(t.effect, 3),
                number(t.effect_ci_low, 3),
                number(t.effect_ci_high, 3),
                p_value(t.p_value),
                p_value(t.q_holm),
                p_value(t.q_bh),
                t.n
            );
        }
    }
    for warning in &summary.warnings {
        let _ = writeln!(out, "\n> ⚠️ {}", escape(warning));
    }
    out
}

/// Keeps a cell in its table: pipes and newlines escaped, HTML tags neutralised.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('\n', " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
