//! results.sarif: SARIF 2.1.0 for code-scanning dashboards. Every probe is a rule; a failed gate
//! is an `error` result and a significant finding (q_BH < 0.05) a `warning` result, each under
//! the rule of the probe it concerns (a gate that spans several probes uses the rule
//! `probity.gate`).

use serde_json::{json, Value};

use crate::{group_label, number, p_value, RunFiles};

/// The rule of failed gates that concern more than one probe.
pub const GATE_RULE: &str = "probity.gate";

/// Renders results.sarif as pretty JSON.
pub fn render_sarif(files: &RunFiles) -> String {
    let value = sarif(files);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn sarif(files: &RunFiles) -> Value {
    let summary = &files.summary;
    let manifest = &files.manifest;
    let mut rules: Vec<Value> = summary
        .probes
        .iter()
        .map(|p| {
            json!({
                "id": p.probe,
                "name": rule_name(&p.probe),
                "shortDescription": { "text": p.goal },
                "fullDescription": {
                    "text": format!("{} Source: {}. Suite {}.", sentence(&p.goal), p.source, p.suite)
                },
                "help": {
                    "text": p.methods.iter().map(|(m, method)| format!("{m}: {method}")).collect::<Vec<_>>().join("\n")
                },
                "properties": { "suite": p.suite, "detectors": p.detectors }
            })
        })
        .collect();
    rules.push(json!({
        "id": GATE_RULE,
        "name": "PolicyGate",
        "shortDescription": { "text": "A gate of the release policy failed" },
        "fullDescription": { "text": "A gate of the policy given with --policy failed on this run's interval bounds or corrected tests." },
        "defaultConfiguration": { "level": "error" }
    }));
    let rule_index = |id: &str| {
        rules
            .iter()
            .position(|r| r["id"] == id)
            .map_or(-1, |i| i as i64)
    };

    let location = |probe: &str| {
        json!([{
            "physicalLocation": {
                "artifactLocation": { "uri": "summary.json", "uriBaseId": "RUNDIR" }
            },
            "logicalLocations": [{ "name": probe, "kind": "module" }]
        }])
    };
    let mut results = Vec::new();
    for gate in summary.gates.iter().filter(|g| !g.passed) {
        let named: Vec<&str> = summary
            .probes
            .iter()
            .map(|p| p.probe.as_str())
            .filter(|p| gate.detail.contains(p))
            .collect();
        let rule = if named.len() == 1 {
            named[0]
        } else {
            GATE_RULE
        };
        results.push(json!({
            "ruleId": rule,
            "ruleIndex": rule_index(rule),
            "kind": "fail",
            "level": "error",
            "message": { "text": format!("Gate `{}` failed: {}", gate.name, gate.detail) },
            "locations": location(named.first().copied().unwrap_or("policy")),
            "partialFingerprints": { "probityGate": gate.name },
            "properties": { "gate": gate.name }
        }));
    }
    for test in summary.tests.iter().filter(|t| t.is_significant()) {
        let groups: Vec<String> = test.groups.iter().map(group_label).collect();
        results.push(json!({
            "ruleId": test.probe,
            "ruleIndex": rule_index(&test.probe),
            "kind": "fail",
            "level": "warning",
            "message": {
                "text": format!(
                    "Significant finding in {}: {} — effect {} [{}, {}] ({}), p {}, q_BH {}, q_Holm {}, n = {}",
                    test.probe,
                    test.name,
                    number(test.effect, 3),
                    number(test.effect_ci_low, 3),
                    number(test.effect_ci_high, 3),
                    test.method,
                    p_value(test.p_value),
                    p_value(test.q_bh),
                    p_value(test.q_holm),
                    test.n
                )
            },
            "locations": location(&test.probe),
            "partialFingerprints": { "probityTest": format!("{}/{}/{}", test.suite, test.probe, test.name) },
            "properties": {
                "suite": test.suite,
                "test": test.name,
                "method": test.method,
                "effect": finite(test.effect),
                "effect_ci_low": finite(test.effect_ci_low),
                "effect_ci_high": finite(test.effect_ci_high),
                "p_value": finite(test.p_value),
                "q_bh": finite(test.q_bh),
                "q_holm": finite(test.q_holm),
                "groups": groups,
                "n": test.n
            }
        }));
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": manifest.tool.name,
                    "version": manifest.tool.version,
                    "semanticVersion": manifest.tool.version,
                    "rules": rules
                }
            },
            "invocations": [{
                "executionSuccessful": true,
                "commandLine": manifest.command_line.join(" "),
                "arguments": manifest.command_line,
                "properties": {
                    "git_sha": manifest.tool.git_sha,
                    "model": manifest.model.model,
                    "backend": manifest.model.backend,
                    "device": manifest.model.device,
                    "seed": summary.seed
                }
            }],
            "originalUriBaseIds": {
                "RUNDIR": { "description": { "text": "The run directory" } }
            },
            "results": results,
            "columnKind": "unicodeCodePoints"
        }]
    })
}

/// A rule name in PascalCase from a probe id (`counterfactual.requests` → `CounterfactualRequests`).
fn rule_name(probe: &str) -> String {
    probe
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// JSON has no NaN: non-finite values become null.
fn finite(value: f64) -> Value {
    if value.is_finite() {
        json!(value)
    } else {
        Value::Null
    }
}
