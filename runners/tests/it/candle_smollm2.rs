//! The candle backend on the real SmolLM2-135M-Instruct GGUF: tokenizer ids, chat template,
//! greedy generation, choice scoring and batch invariance.

#![allow(clippy::unwrap_used)]

use crate::candle_common;

use audit_core::{Answer, Backend, Case, Generation, Query};
use candle_common::{fixture, sentence_case, smollm2};

fn ids(text: &str) -> Vec<u32> {
    smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .encode(text)
        .unwrap()
}

#[test]
fn known_token_ids() {
    assert_eq!(ids("The"), [504]);
    assert_eq!(ids(" capital"), [3575]);
    assert_eq!(ids("<|endoftext|>"), [0]);
    assert_eq!(ids("<|im_start|>"), [1]);
    assert_eq!(ids("<|im_end|>"), [2]);
}

#[test]
fn tokenizer_matches_transformers() {
    let reference = fixture("candle_tokenizer_smollm2.json");
    for case in reference["tokens"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(ids(text), expected, "token ids of {text:?}");
    }
}

#[test]
fn chat_template_matches_transformers() {
    let reference = fixture("candle_tokenizer_smollm2.json");
    let backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for case in reference["chat_templates"].as_array().unwrap() {
        let messages: Vec<audit_core::Message> =
            serde_json::from_value(case["messages"].clone()).unwrap();
        let (system, rest) = match messages.first() {
            Some(m) if m.role == audit_core::Role::System => {
                (Some(m.content.as_str()), &messages[1..])
            }
            _ => (None, &messages[..]),
        };
        let (prompt, history) = rest.split_last().unwrap();
        let rendered = backend
            .render_chat(system, history, &prompt.content)
            .unwrap();
        assert_eq!(rendered, case["rendered"].as_str().unwrap());
    }
}

#[test]
fn greedy_capital_of_france_is_paris() {
    let backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let prompt = backend.encode("The capital of France is").unwrap();
    let generation = Generation {
        max_new_tokens: 3,
        ..Generation::default()
    };
    let out = backend.complete(&[prompt], &generation, &[0]).unwrap();
    let text = backend.decode(&out[0]).unwrap();
    assert!(text.starts_with(" Paris"), "got {text:?}");
}

#[test]
fn choice_prefers_the_true_continuation() {
    let mut backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let case = Case {
        id: "france".into(),
        probe: "test".into(),
        attributes: Default::default(),
        query: Query::Choice {
            context: "The capital of France is".into(),
            options: vec![" Paris".into(), " Berlin".into(), " a banana".into()],
        },
    };
    let answers = backend.answer(&[&case], &Generation::default()).unwrap();
    let Answer::TokenLogprobs { logprobs: lp, .. } = &answers[0] else {
        panic!("expected log-probs, got {answers:?}")
    };
    assert!(lp[0] > lp[1] && lp[1] > lp[2], "{lp:?}");
    assert!(lp[0] > -1.0, "{lp:?}");
}

/// Options sharing a context run the context once (its keys and values copied to each option);
/// each option scored as a case of its own runs whole. Both must agree: on BBQ items (a long
/// shared context) and on CrowS-Pairs pairs (a shared start, options that differ later).
#[test]
fn shared_prefixes_score_as_whole_sequences() {
    let mut cases = candle_common::bbq_cases("Age", 12);
    let sentences = candle_common::crows_sentences(24);
    for (i, pair) in sentences.chunks(2).enumerate() {
        cases.push(Case {
            id: format!("pair{i}"),
            probe: "test".into(),
            attributes: Default::default(),
            query: Query::Choice {
                context: String::new(),
                options: pair.to_vec(),
            },
        });
    }
    let mut backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let refs: Vec<&Case> = cases.iter().collect();
    let shared = backend.answer(&refs, &Generation::default()).unwrap();
    let mut alone_cases = Vec::new();
    for case in &cases {
        let Query::Choice { context, options } = &case.query else {
            unreachable!()
        };
        for (o, option) in options.iter().enumerate() {
            alone_cases.push(Case {
                id: format!("{}/{o}", case.id),
                probe: "test".into(),
                attributes: Default::default(),
                query: Query::Choice {
                    context: context.clone(),
                    options: vec![option.clone()],
                },
            });
        }
    }
    let refs: Vec<&Case> = alone_cases.iter().collect();
    let alone = backend.answer(&refs, &Generation::default()).unwrap();
    let mut alone = alone.iter();
    let mut largest = 0.0f64;
    for (case, answer) in cases.iter().zip(&shared) {
        let Some(lp) = answer.logprobs() else {
            panic!("{}: {answer:?}", case.id)
        };
        for value in lp {
            let Some(single) = alone.next().and_then(Answer::logprobs) else {
                panic!("missing single-option answer")
            };
            largest = largest.max((value - single[0]).abs());
        }
    }
    assert!(largest <= 1e-4, "largest difference {largest}");
}

#[test]
fn batch_invariance_of_sentence_scores() {
    let sentences = candle_common::crows_sentences(32);
    let cases: Vec<Case> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| sentence_case(&format!("s{i}"), s))
        .collect();
    let mut backend = smollm2()
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
fn chat_answers_and_per_item_errors() {
    let mut backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let chat = |id: &str, prompt: String| Case {
        id: id.into(),
        probe: "test".into(),
        attributes: Default::default(),
        query: Query::Chat {
            system: None,
            history: Vec::new(),
            prompt,
        },
    };
    let short = chat("short", "What is the capital of France?".into());
    let long = chat("long", "word ".repeat(9000));
    let generation = Generation {
        max_new_tokens: 8,
        ..Generation::default()
    };
    let answers = backend.answer(&[&short, &long], &generation).unwrap();
    assert!(
        matches!(&answers[0], Answer::Response(t) if t.contains("Paris")),
        "{answers:?}"
    );
    assert!(
        matches!(&answers[1], Answer::Error(e) if e.contains("context window")),
        "{answers:?}"
    );
}

#[test]
fn empty_option_is_a_per_item_error() {
    let mut backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let case = Case {
        id: "empty".into(),
        probe: "test".into(),
        attributes: Default::default(),
        query: Query::Choice {
            context: "Hello".into(),
            options: vec![" world".into(), String::new()],
        },
    };
    let answers = backend.answer(&[&case], &Generation::default()).unwrap();
    assert!(
        matches!(&answers[0], Answer::Error(e) if e.contains("empty option")),
        "{answers:?}"
    );
}

fn chat_case(id: &str, prompt: &str) -> Case {
    Case {
        id: id.into(),
        probe: "test".into(),
        attributes: Default::default(),
        query: Query::Chat {
            system: None,
            history: Vec::new(),
            prompt: prompt.into(),
        },
    }
}

#[test]
fn sampled_answers_do_not_depend_on_the_batch() {
    let mut backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cases = [
        chat_case("a", "Write a haiku about the sea."),
        chat_case("b", "Tell me a fun fact about octopuses."),
        chat_case("c", "Describe a nurse in one sentence."),
    ];
    let generation = Generation {
        max_new_tokens: 12,
        temperature: 0.9,
        top_p: 0.95,
        top_k: Some(50),
        seed: 3,
        stop: Vec::new(),
    };
    let refs: Vec<&Case> = cases.iter().collect();
    let together = backend.answer(&refs, &generation).unwrap();
    for (case, batched) in cases.iter().zip(&together) {
        let alone = backend.answer(&[case], &generation).unwrap();
        assert_eq!(&alone[0], batched, "{}", case.id);
    }
    let other_seed = Generation {
        seed: 4,
        ..generation.clone()
    };
    assert_ne!(backend.answer(&refs, &other_seed).unwrap(), together);
}

#[test]
fn stop_strings_cut_the_answer() {
    let mut backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let case = chat_case("france", "What is the capital of France?");
    let generation = Generation {
        max_new_tokens: 12,
        ..Generation::default()
    };
    let Answer::Response(full) = &backend.answer(&[&case], &generation).unwrap()[0] else {
        panic!("expected a response")
    };
    let cut = full.find("Paris").unwrap();
    let stopped = Generation {
        stop: vec!["Paris".into()],
        ..generation
    };
    let answers = backend.answer(&[&case], &stopped).unwrap();
    assert_eq!(answers[0], Answer::Response(full[..cut].to_string()));
}

/// A context of 40 sentences (several times a packed row) shared by two options: each option
/// scores as the same tokens run whole through the plain causal forward (query chunks of a
/// long row: `score.rs` unit tests).
#[test]
fn a_long_shared_context_scores_as_the_whole_sequence() {
    let backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut context = String::new();
    for s in candle_common::crows_sentences(40) {
        context.push_str(&s);
        context.push(' ');
    }
    let context = context.trim_end().to_string();
    let context_ids = backend.encode(&context).unwrap();
    assert!(context_ids.len() > 500, "{} tokens", context_ids.len());
    let options = vec![
        " That is all.".to_string(),
        " The end of the story".to_string(),
    ];
    let case = Case {
        id: "long".into(),
        probe: "test".into(),
        attributes: Default::default(),
        query: Query::Choice {
            context: context.clone(),
            options: options.clone(),
        },
    };
    let mut backend = backend;
    let answer = backend.answer(&[&case], &Generation::default()).unwrap();
    let Some(lp) = answer[0].logprobs() else {
        panic!("{answer:?}")
    };
    for (o, option) in options.iter().enumerate() {
        let whole = backend.encode(&format!("{context}{option}")).unwrap();
        let n_option = whole.len() - context_ids.len();
        let scores = backend.token_scores(&whole).unwrap();
        let expected: f64 = scores[scores.len() - n_option..].iter().map(|s| s.1).sum();
        assert!(
            (lp[o] - expected).abs() <= 1e-3,
            "option {o}: tree {} whole {expected}",
            lp[o]
        );
    }
}
