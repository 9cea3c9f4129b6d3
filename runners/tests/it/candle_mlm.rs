//! The masked-LM path of the candle backend: the difflib port against Python's difflib on the
//! sequences of fixtures/data/tiny_mlm_reference.json (written by scripts/tiny-mlm.py), and the
//! tiny synthetic masked LM of fixtures/data/tiny-mlm loading as a masked LM that answers choices
//! only. Its pseudo-log-likelihoods against transformers' are checked end to end in
//! tests/it/crows_mlm.rs.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use audit_core::{Answer, Backend, Case, Generation, Query};
use runners::candle::{matching_blocks, CandleBackend, CandleOptions};
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/data")
        .join(name)
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn matching_blocks_equal_python_difflib() {
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(data("tiny_mlm_reference.json")).unwrap())
            .unwrap();
    let cases = reference["difflib"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    let mut long = 0;
    for case in cases {
        let (a, b) = (ids(&case["a"]), ids(&case["b"]));
        long += usize::from(b.len() >= 200);
        let mut want: Vec<(usize, usize, usize)> = case["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let t = ids(t);
                (t[0] as usize, t[1] as usize, t[2] as usize)
            })
            .collect();
        // difflib ends the list with (len(a), len(b), 0).
        assert_eq!(want.pop(), Some((a.len(), b.len(), 0)));
        assert_eq!(matching_blocks(&a, &b), want, "a={a:?} b={b:?}");
    }
    // Sequences of 200 items or more exercise difflib's popular-item rule.
    assert!(long >= 4);
}

#[test]
fn the_tiny_masked_lm_answers_choices_only() {
    let mut model = CandleBackend::load(&data("tiny-mlm"), &CandleOptions::default()).unwrap();
    let info = model.model();
    assert!(info.details["choice_scoring"].contains("pseudo-log-likelihood"));
    let case = |query: Query| Case {
        id: "c".into(),
        probe: "p".into(),
        attributes: Default::default(),
        query,
    };
    let choice = case(Query::Choice {
        context: String::new(),
        options: vec!["The man is tall.".into(), "The woman is tall.".into()],
    });
    let with_context = case(Query::Choice {
        context: "Q:".into(),
        options: vec!["a".into(), "b".into()],
    });
    let chat = case(Query::Chat {
        system: None,
        history: Vec::new(),
        prompt: "hi".into(),
    });
    let answers = model
        .answer(&[&choice, &with_context], &Generation::default())
        .unwrap();
    let Answer::Logprobs(values) = &answers[0] else {
        panic!("{:?}", answers[0]);
    };
    assert_eq!(values.len(), 2);
    assert!(values.iter().all(|v| v.is_finite() && *v < 0.0));
    assert!(matches!(&answers[1], Answer::Error(e) if e.contains("context must be empty")));
    let answers = model.answer(&[&chat], &Generation::default()).unwrap();
    assert!(matches!(&answers[0], Answer::Error(e) if e.contains("masked LM")));
}
