//! Gemma 3 270M as an HF folder that transformers exported from the GGUF
//! (`scripts/candle-export-hf.py`: `gemma3_text` config in transformers 5's layout, f32
//! safetensors, tokenizer.json): token ids, sentence log-likelihoods (within 1e-3 nats) and
//! greedy tokens must equal transformers' references for the GGUF
//! (`fixtures/data/candle_reference_gemma3.json`).
//!
//! Ignored by default: writing the folder needs PyTorch, which CI does not install. Run
//! `~/.cache/probity/venv-torch/bin/python scripts/candle-export-hf.py gemma3` and then
//! `cargo test -p runners --test it -- --ignored candle_hf_export`.

#![allow(clippy::unwrap_used)]

use crate::candle_common;

use audit_core::{Backend, Case, Generation};
use candle_common::{fixture, sentence_case};
use runners::candle::{CandleBackend, CandleOptions};

fn load() -> CandleBackend {
    let dir = fixtures::models().join("gemma-3-270m-hf");
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is missing: run scripts/candle-export-hf.py gemma3",
        dir.display()
    );
    CandleBackend::load(&dir, &CandleOptions::default()).unwrap()
}

#[test]
#[ignore = "needs the folder scripts/candle-export-hf.py writes with transformers"]
fn exported_gemma3_folder_matches_transformers() {
    let mut backend = load();
    assert_eq!(backend.model().details["format"], "hf-safetensors");
    let reference = fixture("candle_reference_gemma3.json");
    let bos = reference["bos"].as_u64().unwrap() as u32;
    assert_eq!(backend.sentence_prefix(), Some(bos));
    let sentences: Vec<&serde_json::Value> = reference["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .take(64)
        .collect();
    let cases: Vec<Case> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| sentence_case(&format!("s{i}"), s["sentence"].as_str().unwrap()))
        .collect();
    let refs: Vec<&Case> = cases.iter().collect();
    let answers = backend.answer(&refs, &Generation::default()).unwrap();
    let mut worst = 0.0f64;
    for (expected, answer) in sentences.iter().zip(&answers) {
        let sentence = expected["sentence"].as_str().unwrap();
        let mut ids = vec![bos];
        ids.extend(backend.encode(sentence).unwrap());
        let expected_ids: Vec<u32> = serde_json::from_value(expected["ids"].clone()).unwrap();
        assert_eq!(ids, expected_ids, "token ids of {sentence:?}");
        let Some(lp) = answer.logprobs() else {
            panic!("{sentence:?}: {answer:?}")
        };
        worst = worst.max((lp[0] - expected["logprob"].as_f64().unwrap()).abs());
    }
    assert!(worst <= 1e-3, "largest difference {worst} nats");
    let generations = reference["generations"].as_array().unwrap();
    let prompts: Vec<Vec<u32>> = generations
        .iter()
        .map(|g| serde_json::from_value(g["prompt_ids"].clone()).unwrap())
        .collect();
    let generation = Generation {
        max_new_tokens: reference["max_new_tokens"].as_u64().unwrap() as usize,
        ..Generation::default()
    };
    let out = backend
        .complete(&prompts, &generation, &vec![0; prompts.len()])
        .unwrap();
    for (g, ours) in generations.iter().zip(out) {
        let expected: Vec<u32> = serde_json::from_value(g["generated_ids"].clone()).unwrap();
        assert_eq!(ours, expected, "greedy tokens for {:?}", g["prompt"]);
    }
}
