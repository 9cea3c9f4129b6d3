//! The candle backend on the real Gemma-3-270m GGUF (base model): SentencePiece-style tokenizer
//! from GGUF metadata, sliding-window layers, greedy generation and batch invariance.

#![allow(clippy::unwrap_used)]

use crate::candle_common;

use audit_core::{Answer, Backend, Case, Generation, Query};
use candle_common::{fixture, gemma3, sentence_case};

#[test]
fn special_ids_and_round_trip() {
    let backend = gemma3()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert_eq!(backend.sentence_prefix(), Some(2), "<bos> is id 2");
    assert_eq!(backend.encode("<bos>").unwrap(), [2]);
    for text in ["a  b", "tabs\tand\nnewlines", "Ünïcödé 日本語 🙂", "   x"] {
        let ids = backend.encode(text).unwrap();
        assert!(ids.iter().all(|&i| i < 262_144), "{text:?}: {ids:?}");
        assert_eq!(backend.decode(&ids).unwrap(), text);
    }
}

#[test]
fn tokenizer_matches_transformers() {
    let reference = fixture("candle_tokenizer_gemma3.json");
    let backend = gemma3()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut compared = 0;
    for case in reference["tokens"].as_array().unwrap() {
        if case["out_of_vocabulary"].as_bool() == Some(true) {
            continue;
        }
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(
            backend.encode(text).unwrap(),
            expected,
            "token ids of {text:?}"
        );
        compared += 1;
    }
    assert!(compared >= 15, "only {compared} texts compared");
}

/// The base model continues "The capital of France is" with " the capital of …" (transformers
/// agrees); asked the question, it answers Paris.
#[test]
fn greedy_answers_paris() {
    let backend = gemma3()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut prompt = vec![2];
    prompt.extend(backend.encode("What is the capital of France?").unwrap());
    let generation = Generation {
        max_new_tokens: 10,
        ..Generation::default()
    };
    let out = backend.complete(&[prompt], &generation, &[0]).unwrap();
    let text = backend.decode(&out[0]).unwrap();
    assert!(
        text.contains("The capital of France is Paris"),
        "got {text:?}"
    );
}

#[test]
fn choice_prefers_the_true_continuation() {
    let mut backend = gemma3()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let case = Case {
        id: "france".into(),
        probe: "test".into(),
        attributes: Default::default(),
        query: Query::Choice {
            context: "The capital of France is the city of".into(),
            options: vec![" Paris".into(), " Berlin".into()],
        },
    };
    let answers = backend.answer(&[&case], &Generation::default()).unwrap();
    let Answer::TokenLogprobs { logprobs: lp, .. } = &answers[0] else {
        panic!("expected log-probs, got {answers:?}")
    };
    assert!(lp[0] > lp[1], "{lp:?}");
}

#[test]
fn batch_invariance_of_sentence_scores() {
    let sentences = candle_common::crows_sentences(32);
    let cases: Vec<Case> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| sentence_case(&format!("s{i}"), s))
        .collect();
    let mut backend = gemma3()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let refs: Vec<&Case> = cases.iter().collect();
    let together = backend.answer(&refs, &Generation::default()).unwrap();
    for (case, batched) in cases.iter().zip(&together) {
        let alone = backend.answer(&[case], &Generation::default()).unwrap();
        let (Answer::TokenLogprobs { logprobs: a, .. }, Answer::TokenLogprobs { logprobs: b, .. }) =
            (&alone[0], batched)
        else {
            panic!("expected log-probs: {alone:?} {batched:?}")
        };
        assert!(
            (a[0] - b[0]).abs() <= 1e-4,
            "{}: alone {} batched {}",
            case.id,
            a[0],
            b[0]
        );
    }
}

#[test]
fn chat_without_template_is_a_per_item_error() {
    let mut backend = gemma3()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let case = Case {
        id: "chat".into(),
        probe: "test".into(),
        attributes: Default::default(),
        query: Query::Chat {
            system: None,
            history: Vec::new(),
            prompt: "Hello".into(),
        },
    };
    let answers = backend.answer(&[&case], &Generation::default()).unwrap();
    assert!(
        matches!(&answers[0], Answer::Error(e) if e.contains("no chat template")),
        "{answers:?}"
    );
}
