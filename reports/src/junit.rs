//! junit.xml: the run as JUnit XML (the Apache Ant schema CI systems read), one test case per
//! gate and one per probe. Only gates fail; a probe "errors" when the backend failed on some of
//! its attempts, and its significant findings are listed as properties of its suite.

use std::fmt::Write;

use crate::{number, p_value, RunFiles};

/// Renders junit.xml: `<testsuites>` with a `gates` suite (one case per gate; a failed gate is a
/// `<failure>`) and a `probes` suite (one case per probe; backend errors are an `<error>`, a
/// probe with no attempt is `<skipped>`).
pub fn render_junit(files: &RunFiles) -> String {
    let summary = &files.summary;
    let manifest = &files.manifest;
    // The schema's timestamp has no time zone: RFC 3339 UTC without its `Z`.
    let timestamp: String = manifest
        .finished_at
        .as_deref()
        .unwrap_or(&manifest.started_at)
        .chars()
        .take(19)
        .collect();
    let hostname = if manifest.host.hostname.trim().is_empty() {
        "unknown".to_string()
    } else {
        manifest.host.hostname.clone()
    };
    let classname = format!("probity.{}", manifest.model.model);
    let mut out = String::new();
    let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(out, "<testsuites>");

    // Gates.
    let failures = summary.gates.iter().filter(|g| !g.passed).count();
    let _ = writeln!(
        out,
        "  <testsuite package=\"probity\" id=\"0\" name=\"gates\" timestamp=\"{}\" hostname=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"0\">",
        attr(&timestamp),
        attr(&hostname),
        summary.gates.len()
    );
    let _ = writeln!(out, "    <properties>");
    property(&mut out, "model", &manifest.model.model);
    property(&mut out, "backend", &manifest.model.backend);
    for suite in &summary.suites {
        property(
            &mut out,
            &format!("suite.{}", suite.id),
            &format!("{}@{} sha256:{}", suite.id, suite.version, suite.sha256),
        );
    }
    for file in &manifest.model.files {
        property(&mut out, &format!("sha256.{}", file.path), &file.sha256);
    }
    property(&mut out, "seed", &summary.seed.to_string());
    let _ = writeln!(out, "    </properties>");
    for gate in &summary.gates {
        if gate.passed {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{}.gates\" time=\"0\"/>",
                attr(&gate.name),
                attr(&classname)
            );
        } else {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{}.gates\" time=\"0\">\n      <failure type=\"gate\" message=\"{}\">{}</failure>\n    </testcase>",
                attr(&gate.name),
                attr(&classname),
                attr(&format!("gate `{}` failed: {}", gate.name, gate.detail)),
                text(&gate.detail)
            );
        }
    }
    let mut gate_out = String::new();
    for gate in &summary.gates {
        let verdict = if gate.passed { "pass" } else { "FAIL" };
        let _ = writeln!(gate_out, "{verdict} {}: {}", gate.name, gate.detail);
    }
    if summary.gates.is_empty() {
        gate_out.push_str("No policy was applied to this run: no gates.\n");
    }
    let _ = writeln!(out, "    <system-out>{}</system-out>", text(&gate_out));
    let _ = writeln!(out, "    <system-err></system-err>");
    let _ = writeln!(out, "  </testsuite>");

    // Probes.
    let errors = summary.probes.iter().filter(|p| p.n_errors > 0).count();
    let skipped = summary
        .probes
        .iter()
        .filter(|p| p.n_errors == 0 && p.n_attempts == 0)
        .count();
    let _ = writeln!(
        out,
        "  <testsuite package=\"probity\" id=\"1\" name=\"probes\" timestamp=\"{}\" hostname=\"{}\" tests=\"{}\" failures=\"0\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"0\">",
        attr(&timestamp),
        attr(&hostname),
        summary.probes.len()
    );
    let _ = writeln!(out, "    <properties>");
    for (index, test) in summary
        .tests
        .iter()
        .filter(|t| t.is_significant())
        .enumerate()
    {
        property(
            &mut out,
            &format!("finding.{}", index + 1),
            &format!(
                "{} {}: effect {} [{}, {}], q_BH {}",
                test.probe,
                test.name,
                number(test.effect, 3),
                number(test.effect_ci_low, 3),
                number(test.effect_ci_high, 3),
                p_value(test.q_bh)
            ),
        );
    }
    let _ = writeln!(out, "    </properties>");
    let mut probe_out = String::new();
    for probe in &summary.probes {
        let name = format!("{}/{}", probe.suite, probe.probe);
        let case_class = format!("{}.probes", classname);
        if probe.n_errors > 0 {
            let message = format!(
                "{} of {} attempts of {} failed in the backend",
                probe.n_errors, probe.n_attempts, probe.probe
            );
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"0\">\n      <error type=\"backend\" message=\"{}\">{}</error>\n    </testcase>",
                attr(&name),
                attr(&case_class),
                attr(&message),
                text(&message)
            );
        } else if probe.n_attempts == 0 {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"0\">\n      <skipped message=\"no attempt of this probe ran\"/>\n    </testcase>",
                attr(&name),
                attr(&case_class)
            );
        } else {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"/>",
                attr(&name),
                attr(&case_class)
            );
        }
        let _ = writeln!(
            probe_out,
            "{name}: {} attempts, {} errors",
            probe.n_attempts, probe.n_errors
        );
        for estimate in summary
            .estimates
            .iter()
            .filter(|e| e.suite == probe.suite && e.probe == probe.probe && e.group.is_empty())
        {
            let _ = writeln!(
                probe_out,
                "  {} = {} [{}, {}] ({}, n = {})",
                estimate.metric,
                number(estimate.value, 3),
                number(estimate.ci_low, 3),
                number(estimate.ci_high, 3),
                estimate.ci_method,
                estimate.n
            );
        }
    }
    let _ = writeln!(out, "    <system-out>{}</system-out>", text(&probe_out));
    let _ = writeln!(out, "    <system-err></system-err>");
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}

fn property(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "      <property name=\"{}\" value=\"{}\"/>",
        attr(name),
        attr(value)
    );
}

/// Removes the characters XML 1.0 cannot hold at all (control characters but tab and newlines).
fn clean(value: &str) -> impl Iterator<Item = char> + '_ {
    value.chars().filter(|&c| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
    })
}

/// Escapes an attribute value (newlines kept as character references).
pub(crate) fn attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in clean(value) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes element text.
pub(crate) fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in clean(value) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            attr("a<b>&\"c'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;"
        );
        assert_eq!(
            text("<script>&</script>\u{0}"),
            "&lt;script&gt;&amp;&lt;/script&gt;"
        );
    }
}
