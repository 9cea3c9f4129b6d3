//! Helpers shared by the candle tests: finding the real model files and loading them once.

#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use audit_core::{Case, Query};
use runners::candle::{CandleBackend, CandleOptions};

pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";
pub const QWEN05: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// The path of a fetched model file; fails the test (never skips it) when the file is missing.
pub fn model_path(file: &str, fetch_arg: &str) -> PathBuf {
    let path = fixtures::models().join(file);
    assert!(
        path.exists(),
        "{} is missing: run `scripts/fetch-models.sh {fetch_arg}` (or set PROBITY_MODELS to the folder that holds it)",
        path.display()
    );
    path
}

/// SmolLM2 loaded once per test binary, in f32 on the CPU.
pub fn smollm2() -> &'static Mutex<CandleBackend> {
    static MODEL: OnceLock<Mutex<CandleBackend>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = model_path(SMOLLM2, "smollm2");
        Mutex::new(CandleBackend::load(&path, &CandleOptions::default()).unwrap())
    })
}

/// Gemma 3 270M loaded once per test binary, in f32 on the CPU.
pub fn gemma3() -> &'static Mutex<CandleBackend> {
    static MODEL: OnceLock<Mutex<CandleBackend>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = model_path(GEMMA3, "gemma");
        Mutex::new(CandleBackend::load(&path, &CandleOptions::default()).unwrap())
    })
}

/// Qwen2.5-Coder-0.5B-Instruct loaded once per test binary, dequantized to f32 on the CPU (the
/// mode that is compared with transformers).
pub fn qwen05() -> &'static Mutex<CandleBackend> {
    static MODEL: OnceLock<Mutex<CandleBackend>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = model_path(QWEN05, "qwen0.5b");
        let options = CandleOptions {
            weights: Some("f32".into()),
            ..CandleOptions::default()
        };
        Mutex::new(CandleBackend::load(&path, &options).unwrap())
    })
}

/// The same file with its blocks kept quantized (the mode compared with llama.cpp).
pub fn qwen05_quantized() -> &'static Mutex<CandleBackend> {
    static MODEL: OnceLock<Mutex<CandleBackend>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = model_path(QWEN05, "qwen0.5b");
        let options = CandleOptions {
            weights: Some("quantized".into()),
            ..CandleOptions::default()
        };
        Mutex::new(CandleBackend::load(&path, &options).unwrap())
    })
}

/// A fixture file under `fixtures/data`, parsed.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate it with scripts/candle-reference.py",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// A choice case scoring `sentence` as a whole (empty context).
pub fn sentence_case(id: &str, sentence: &str) -> Case {
    Case {
        id: id.to_string(),
        probe: "test".to_string(),
        attributes: Default::default(),
        query: Query::Choice {
            context: String::new(),
            options: vec![sentence.to_string()],
        },
    }
}

/// The first `n` CrowS-Pairs `sent_more` sentences.
pub fn crows_sentences(n: usize) -> Vec<String> {
    let reference = fixture("candle_reference_smollm2.json");
    reference["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .take(n)
        .map(|s| s["sentence"].as_str().unwrap().to_string())
        .collect()
}

/// The first `n` BBQ items of a category as the bbq probe asks them: lm-eval's prompt (context,
/// a blank line, `Q: question`, `A:`) and the three answers, each after a space.
pub fn bbq_cases(category: &str, n: usize) -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/datasets/bbq/data")
        .join(format!("{category}.jsonl"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared datasets folder)", path.display()));
    text.lines()
        .take(n)
        .map(|line| {
            let item: serde_json::Value = serde_json::from_str(line).unwrap();
            let field = |k: &str| item[k].as_str().unwrap().to_string();
            Case {
                id: format!("bbq/{}", item["example_id"]),
                probe: "test".into(),
                attributes: Default::default(),
                query: Query::Choice {
                    context: format!("{}\n\nQ: {}\nA:", field("context"), field("question")),
                    options: ["ans0", "ans1", "ans2"]
                        .iter()
                        .map(|k| format!(" {}", field(k)))
                        .collect(),
                },
            }
        })
        .collect()
}
