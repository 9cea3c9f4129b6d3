//! Agreement with PyTorch transformers on the same GGUF weights (dequantized to f32): sentence
//! log-likelihoods of CrowS-Pairs sentences within 1e-3 nats, and identical greedy tokens.
//! The references are written by `scripts/candle-reference.py`.

#![allow(clippy::unwrap_used)]

use crate::candle_common;

use std::sync::Mutex;

use audit_core::{Answer, Backend, Case, Generation};
use candle_common::{fixture, gemma3, qwen05, sentence_case, smollm2};
use runners::candle::CandleBackend;

fn check_sentences(backend: &Mutex<CandleBackend>, reference: &serde_json::Value, tolerance: f64) {
    let diffs = sentence_differences(backend, reference);
    let worst = diffs.iter().max_by(|a, b| a.0.total_cmp(&b.0)).unwrap();
    assert!(
        worst.0 <= tolerance,
        "largest difference {} nats on {:?}",
        worst.0,
        worst.1
    );
}

/// |ours − transformers| for every sentence of the reference, with the sentence.
fn sentence_differences(
    backend: &Mutex<CandleBackend>,
    reference: &serde_json::Value,
) -> Vec<(f64, String)> {
    let sentences = reference["sentences"].as_array().unwrap();
    assert!(
        sentences.len() >= 200
            && reference["skipped_out_of_vocabulary"]
                .as_array()
                .map_or(0, Vec::len)
                < 10,
        "the reference holds too few sentences"
    );
    let mut backend = backend
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let bos = reference["bos"].as_u64().unwrap() as u32;
    assert_eq!(backend.sentence_prefix(), Some(bos));
    let cases: Vec<Case> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| sentence_case(&format!("s{i}"), s["sentence"].as_str().unwrap()))
        .collect();
    let mut diffs = Vec::new();
    for chunk in cases.chunks(64) {
        let refs: Vec<&Case> = chunk.iter().collect();
        let answers = backend.answer(&refs, &Generation::default()).unwrap();
        for (case, answer) in chunk.iter().zip(answers) {
            let index: usize = case.id[1..].parse().unwrap();
            let expected = &sentences[index];
            let sentence = expected["sentence"].as_str().unwrap();
            let mut ids = vec![bos];
            ids.extend(backend.encode(sentence).unwrap());
            let expected_ids: Vec<u32> = serde_json::from_value(expected["ids"].clone()).unwrap();
            assert_eq!(ids, expected_ids, "token ids of {sentence:?}");
            let Answer::TokenLogprobs {
                logprobs: lp,
                tokens,
            } = answer
            else {
                panic!("{sentence:?}: {answer:?}")
            };
            // Every token after the prefix (BOS) is scored: transformers' count.
            assert_eq!(
                tokens[0] as usize,
                expected_ids.len() - 1,
                "token count of {sentence:?}"
            );
            let diff = (lp[0] - expected["logprob"].as_f64().unwrap()).abs();
            diffs.push((diff, sentence.to_string()));
        }
    }
    diffs
}

fn check_generations(backend: &Mutex<CandleBackend>, reference: &serde_json::Value) {
    let backend = backend
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let generations = reference["generations"].as_array().unwrap();
    let prompts: Vec<Vec<u32>> = generations
        .iter()
        .map(|g| serde_json::from_value(g["prompt_ids"].clone()).unwrap())
        .collect();
    let generation = Generation {
        max_new_tokens: reference["max_new_tokens"].as_u64().unwrap() as usize,
        ..Generation::default()
    };
    let seeds = vec![0; prompts.len()];
    let out = backend.complete(&prompts, &generation, &seeds).unwrap();
    for (g, ours) in generations.iter().zip(out) {
        let expected: Vec<u32> = serde_json::from_value(g["generated_ids"].clone()).unwrap();
        assert_eq!(
            ours,
            expected,
            "greedy tokens for {:?}: ours {:?}, transformers {:?}",
            g["prompt"],
            backend.decode(&ours),
            g["text"]
        );
    }
}

#[test]
fn smollm2_sentence_logprobs_match_transformers() {
    check_sentences(smollm2(), &fixture("candle_reference_smollm2.json"), 1e-3);
}

#[test]
fn smollm2_greedy_tokens_match_transformers() {
    check_generations(smollm2(), &fixture("candle_reference_smollm2.json"));
}

#[test]
fn gemma3_sentence_logprobs_match_transformers() {
    check_sentences(gemma3(), &fixture("candle_reference_gemma3.json"), 1e-3);
}

#[test]
fn gemma3_greedy_tokens_match_transformers() {
    check_generations(gemma3(), &fixture("candle_reference_gemma3.json"));
}

/// Qwen 2.5's activations reach thousands (a few channels), and f32 sums over them differ by
/// order: most sentences agree within 1e-3 nats, a few by more (docs/backends/candle.md).
#[test]
fn qwen05_sentence_logprobs_match_transformers() {
    let diffs = sentence_differences(qwen05(), &fixture("candle_reference_qwen0.5b.json"));
    let within = diffs.iter().filter(|d| d.0 <= 1e-3).count();
    let mean = diffs.iter().map(|d| d.0).sum::<f64>() / diffs.len() as f64;
    let worst = diffs.iter().max_by(|a, b| a.0.total_cmp(&b.0)).unwrap();
    println!(
        "qwen0.5b: {within} of {} sentences within 1e-3 nats, mean {mean:.2e}, largest {:.2e} on {:?}",
        diffs.len(),
        worst.0,
        worst.1
    );
    assert!(
        within >= 200,
        "only {within} of {} within 1e-3",
        diffs.len()
    );
    assert!(mean <= 1e-3, "mean difference {mean}");
    assert!(
        worst.0 <= 1e-2,
        "largest difference {} on {:?}",
        worst.0,
        worst.1
    );
}

#[test]
fn qwen05_greedy_tokens_match_transformers() {
    let reference = fixture("candle_reference_qwen0.5b.json");
    let chats = reference["generations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["kind"] == "chat")
        .count();
    assert!(chats >= 20, "only {chats} chat prompts in the reference");
    check_generations(qwen05(), &reference);
}
