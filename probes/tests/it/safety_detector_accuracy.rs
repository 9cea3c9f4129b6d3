//! Measures the refusal detector and the plain phrase-list matchers of other tools against the
//! human labels of XSTest's completions and JailbreakBench's judge comparison, checks that the
//! counts the corrected metrics use (`probes::detectors::accuracy`) are the measured ones,
//! that our detector beats every baseline on balanced accuracy on the held-out XSTest split,
//! and that `fixtures/data/detector_accuracy.json` holds these numbers. Regenerate the file
//! with `PROBITY_UPDATE_FIXTURES=1 cargo test -p probes --test it -- safety_detector_accuracy`.

use std::path::{Path, PathBuf};

use audit_core::stats::{wilson, DetectorAccuracy};
use probes::detectors::accuracy;
use probes::detectors::phrase_list::PhraseList;
use probes::detectors::refusal::find_refusal;
use probes::safety::labelled::{
    confusion, jailbreakbench_judged, xstest_completions, LabelledAnswer,
};
use serde_json::{json, Value};

/// A refusal matcher under test.
type Matcher = Box<dyn Fn(&str) -> bool>;

fn datasets() -> PathBuf {
    std::env::var_os("PROBITY_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets"))
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data/detector_accuracy.json")
}

/// The evaluation splits: (name, answers).
fn splits(
    xstest: &[LabelledAnswer],
    jbb: &[LabelledAnswer],
) -> Vec<(&'static str, Vec<LabelledAnswer>)> {
    vec![
        (
            "xstest-completions-development",
            xstest.iter().filter(|a| !a.held_out).cloned().collect(),
        ),
        (
            "xstest-completions-held-out",
            xstest.iter().filter(|a| a.held_out).cloned().collect(),
        ),
        ("xstest-completions-all", xstest.to_vec()),
        ("jailbreakbench-classifier-comparison", jbb.to_vec()),
    ]
}

fn row(c: &DetectorAccuracy) -> Value {
    let se = wilson(c.true_positives, c.positives, 0.95);
    let sp = wilson(c.true_negatives, c.negatives, 0.95);
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    json!({
        "true_positives": c.true_positives,
        "positives": c.positives,
        "true_negatives": c.true_negatives,
        "negatives": c.negatives,
        "sensitivity": round(c.sensitivity()),
        "sensitivity_ci": [round(se.low), round(se.high)],
        "specificity": round(c.specificity()),
        "specificity_ci": [round(sp.low), round(sp.high)],
        "balanced_accuracy": round(c.balanced_accuracy()),
    })
}

#[test]
fn refusal_detector_accuracy() {
    let datasets = datasets();
    let xstest = xstest_completions(&datasets).expect("valid in this test");
    let jbb = jailbreakbench_judged(&datasets).expect("valid in this test");
    assert_eq!(xstest.len(), 5 * 450);
    assert_eq!(jbb.len(), 100);
    let lists =
        PhraseList::load_all(&datasets.join("refusal_phrases")).expect("valid in this test");

    let mut detectors: Vec<(String, Matcher)> = vec![(
        "probity-refusal".to_string(),
        Box::new(|t: &str| find_refusal(t).is_some()),
    )];
    for list in lists {
        let name = list.name.clone();
        detectors.push((name, Box::new(move |t: &str| list.is_refusal(t))));
    }

    let mut results = serde_json::Map::new();
    for (split, answers) in splits(&xstest, &jbb) {
        let mut by_detector = serde_json::Map::new();
        let mut ours = 0.0;
        for (name, detector) in &detectors {
            let confusion = confusion(name, split, &answers, |t| detector(t));
            if name == "probity-refusal" {
                ours = confusion.balanced_accuracy();
                let stored = accuracy::refusal();
                if split == stored.dataset {
                    assert_eq!(
                        (
                            stored.true_positives,
                            stored.positives,
                            stored.true_negatives,
                            stored.negatives
                        ),
                        (
                            confusion.true_positives,
                            confusion.positives,
                            confusion.true_negatives,
                            confusion.negatives
                        ),
                        "probes::detectors::accuracy::refusal() is stale: update it to the measured counts"
                    );
                }
            } else if split.starts_with("xstest") {
                assert!(
                    ours > confusion.balanced_accuracy(),
                    "{split}: {name} has balanced accuracy {} ≥ ours {ours}",
                    confusion.balanced_accuracy()
                );
            }
            by_detector.insert(name.clone(), row(&confusion));
        }
        results.insert(split.to_string(), Value::Object(by_detector));
    }
    let document = json!({
        "about": "Refusal detectors against human labels. Positive = refusal: XSTest full or partial refusal; JailbreakBench human_majority = 0 (not jailbroken). Held-out = XSTest prompts whose number is a multiple of 4 (all five models). JailbreakBench was held out for two rounds of rules; the third round (declining phrases, a limitation followed by an offer) was written after reading its errors, so its numbers are in-sample for that round. Intervals: Wilson 95%.",
        "command": "PROBITY_UPDATE_FIXTURES=1 cargo test -p probes --test it -- safety_detector_accuracy",
        "splits": Value::Object(results),
    });
    let text = serde_json::to_string_pretty(&document).expect("valid in this test") + "\n";
    if std::env::var_os("PROBITY_UPDATE_FIXTURES").is_some() {
        std::fs::write(fixture(), &text).expect("valid in this test");
    } else {
        let stored = std::fs::read_to_string(fixture()).unwrap_or_default();
        assert_eq!(
            stored, text,
            "fixtures/data/detector_accuracy.json is stale: rerun with PROBITY_UPDATE_FIXTURES=1"
        );
    }
}
