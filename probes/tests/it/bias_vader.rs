//! The Rust VADER port against the Python `vaderSentiment` package (3.3.2) on 300 sentences
//! (fixtures/data/vader_reference.json, made by scripts/vader-reference.py), with the lexicon
//! read from the shared models folder (or PROBITY_VADER).

#![allow(clippy::unwrap_used)]

use probes::bias::vader::Vader;

fn lexicon_folder() -> std::path::PathBuf {
    std::env::var_os("PROBITY_VADER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| fixtures::datasets().join("../models/vader"))
}

#[test]
fn compound_scores_match_the_python_package() {
    let vader = Vader::load(&lexicon_folder()).unwrap();
    let text = std::fs::read_to_string(fixtures::data("vader_reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 200);
    let mut mismatches = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let got = vader.polarity(text);
        // The package rounds compound to 4 decimals and the proportions to 3.
        let close = |value: f64, key: &str, tolerance: f64| {
            (value - case[key].as_f64().unwrap()).abs() <= tolerance
        };
        if !(close(got.compound, "compound", 0.5e-4 + 1e-9)
            && close(got.neg, "neg", 0.5e-3 + 1e-9)
            && close(got.neu, "neu", 0.5e-3 + 1e-9)
            && close(got.pos, "pos", 0.5e-3 + 1e-9))
        {
            mismatches.push(format!("{text:?}: ours {got:?}, python {case}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn a_missing_lexicon_names_the_file() {
    let err = Vader::load(std::path::Path::new("/nonexistent")).unwrap_err();
    assert!(
        err.starts_with("reading /nonexistent/vader_lexicon.txt: "),
        "{err}"
    );
}
