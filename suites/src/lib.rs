//! Suites: the TOML suite-file format users write (documented in docs/suite-format.md), and the
//! built-in suites, which are suite files of the same format embedded in the binary.

mod format;

pub use format::{parse, SuiteError};

use std::path::Path;

use audit_core::Suite;
pub use probes::Context;

/// The built-in suites: (id, file text).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "counterfactual-refusal",
        include_str!("../builtin/counterfactual-refusal.toml"),
    ),
    // Bias benchmarks (probes/src/bias).
    ("crows-pairs", include_str!("../builtin/crows-pairs.toml")),
    ("bbq", include_str!("../builtin/bbq.toml")),
    ("stereoset", include_str!("../builtin/stereoset.toml")),
    ("winobias", include_str!("../builtin/winobias.toml")),
    ("winogender", include_str!("../builtin/winogender.toml")),
    (
        "holistic-bias",
        include_str!("../builtin/holistic-bias.toml"),
    ),
    ("bold", include_str!("../builtin/bold.toml")),
    ("bias-core", include_str!("../builtin/bias-core.toml")),
    ("bias-full", include_str!("../builtin/bias-full.toml")),
    // Embedding association tests (probes/src/weat.rs): run with --model an embedding model.
    ("weat", include_str!("../builtin/weat.toml")),
    ("seat", include_str!("../builtin/seat.toml")),
    // Safety benchmarks and attacks (probes/src/safety).
    ("safety-core", include_str!("../builtin/safety-core.toml")),
    ("safety-full", include_str!("../builtin/safety-full.toml")),
    (
        "safety-judged",
        include_str!("../builtin/safety-judged.toml"),
    ),
    ("toxicity", include_str!("../builtin/toxicity.toml")),
    ("advbench", include_str!("../builtin/advbench.toml")),
    ("gcg", include_str!("../builtin/gcg.toml")),
    ("pair", include_str!("../builtin/pair.toml")),
    (
        "advbench-strings",
        include_str!("../builtin/advbench-strings.toml"),
    ),
    ("harmbench", include_str!("../builtin/harmbench.toml")),
    (
        "jailbreakbench",
        include_str!("../builtin/jailbreakbench.toml"),
    ),
    (
        "do-not-answer",
        include_str!("../builtin/do-not-answer.toml"),
    ),
    ("xstest", include_str!("../builtin/xstest.toml")),
    // Adaptive attacks (probes/src/attacks): run with --attacker and --judge harm-judge=.
    ("tap", include_str!("../builtin/tap.toml")),
    ("crescendo", include_str!("../builtin/crescendo.toml")),
];

/// A built-in suite's file text.
pub fn builtin(id: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(name, _)| *name == id)
        .map(|(_, text)| *text)
}

/// Loads a suite named on the command line: a built-in suite id, or the path of a suite file.
/// Relative dataset paths in the suite resolve against the context's datasets folder.
pub fn load(name: &str, context: &Context) -> Result<Suite, SuiteError> {
    if let Some(text) = builtin(name) {
        return parse(text, &format!("builtin:{name}"), context);
    }
    let path = Path::new(name);
    let looks_like_path = name.contains('/') || name.contains('\\') || name.ends_with(".toml");
    if !looks_like_path && !path.exists() {
        let known: Vec<&str> = BUILTIN.iter().map(|(id, _)| *id).collect();
        return Err(SuiteError::unknown(format!(
            "unknown suite `{name}` (built-in suites: {}; or give the path of a suite file)",
            known.join(", ")
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| SuiteError::at(name, None, e.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| SuiteError::at(name, None, "the file is not UTF-8 text".to_string()))?;
    parse(&text, name, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in suite parses, and its probes make deterministic cases with unique ids.
    /// The probes' cases are made on all cores (each probe twice, at once): bias-full's
    /// HolisticBias alone makes about 480,000.
    #[test]
    fn builtin_suites_conform() {
        let datasets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets");
        let datasets = probes::Context::new(&datasets);
        let suites: Vec<Suite> = BUILTIN
            .iter()
            .map(|(id, text)| {
                let suite = parse(text, &format!("builtin:{id}"), &datasets)
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(&suite.reference.id, id);
                suite
            })
            .collect();
        let plans: Vec<_> = suites.iter().flat_map(|s| &s.probes).collect();
        std::thread::scope(|scope| {
            for plan in plans {
                scope.spawn(move || {
                    assert!(!plan.probe.goal().is_empty() && !plan.probe.source().is_empty());
                    assert!(!plan.metrics.is_empty(), "{}: no metric", plan.probe.id());
                    let (a, b) = std::thread::scope(|inner| {
                        let a = inner.spawn(|| plan.probe.cases(1).unwrap());
                        let b = plan.probe.cases(1).unwrap();
                        (a.join().expect("making cases"), b)
                    });
                    assert!(a == b, "{}: cases differ for one seed", plan.probe.id());
                    let ids: std::collections::BTreeSet<&String> =
                        a.iter().map(|c| &c.id).collect();
                    assert_eq!(
                        ids.len(),
                        a.len(),
                        "{}: duplicate case ids",
                        plan.probe.id()
                    );
                });
            }
        });
    }
}
