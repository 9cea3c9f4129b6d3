//! HF folders: all-MiniLM-L6-v2 sentence embeddings against transformers, and a Llama folder
//! (exported here from the SmolLM2 GGUF, q/k un-permuted to HF's layout) that must score and
//! generate exactly as the GGUF does.

#![allow(clippy::unwrap_used)]

use crate::candle_common;

use std::path::Path;

use audit_core::{Answer, Backend, Case, Generation, Query};
use candle_common::{fixture, model_path, sentence_case, smollm2, SMOLLM2};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use runners::candle::{CandleBackend, CandleOptions};

fn minilm_path() -> std::path::PathBuf {
    let path = fixtures::models().join("all-MiniLM-L6-v2");
    assert!(
        path.join("model.safetensors").exists(),
        "{} is missing: run `scripts/fetch-models.sh minilm`",
        path.display()
    );
    path
}

#[test]
fn minilm_embeddings_match_transformers() {
    let mut backend = CandleBackend::load(&minilm_path(), &CandleOptions::default()).unwrap();
    let reference = fixture("candle_reference_minilm.json");
    let items = reference["embeddings"].as_array().unwrap();
    let texts: Vec<String> = items
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_string())
        .collect();
    let case = Case {
        id: "embed".into(),
        probe: "test".into(),
        attributes: Default::default(),
        query: Query::Embed {
            texts: texts.clone(),
        },
    };
    let answers = backend.answer(&[&case], &Generation::default()).unwrap();
    let Answer::Embeddings(vectors) = &answers[0] else {
        panic!("expected embeddings, got {answers:?}")
    };
    for (item, ours) in items.iter().zip(vectors) {
        let expected: Vec<f32> = serde_json::from_value(item["embedding"].clone()).unwrap();
        assert_eq!(ours.len(), 384);
        let diff = ours
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "{:?}: largest difference {diff}", item["text"]);
    }
    let info = backend.model();
    assert_eq!(info.files.len(), 4, "{:?}", info.files);
    // A decoder query on an encoder is a per-item error.
    let choice = sentence_case("c", "Hello");
    let answers = backend.answer(&[&choice], &Generation::default()).unwrap();
    assert!(matches!(&answers[0], Answer::Error(e) if e.contains("sentence encoder")));
}

/// llama.cpp permutes q/k rows for its interleaved RoPE; HF keeps the halves layout.
fn unpermute(w: &Tensor, n_heads: usize) -> Tensor {
    let (out, inp) = w.dims2().unwrap();
    w.reshape((n_heads, out / n_heads / 2, 2, inp))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((out, inp))
        .unwrap()
}

/// Writes an HF Llama folder from the SmolLM2 GGUF, in f32.
fn export_hf(gguf: &Path, dir: &Path) {
    let mut file = std::fs::File::open(gguf).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut tensors = std::collections::HashMap::new();
    let (n_heads, n_kv) = (9, 3);
    for name in content.tensor_infos.keys() {
        let t = content
            .tensor(&mut file, name, &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        let hf = if name == "token_embd.weight" {
            "model.embed_tokens.weight".to_string()
        } else if name == "output_norm.weight" {
            "model.norm.weight".to_string()
        } else {
            let rest = name.strip_prefix("blk.").unwrap();
            let (layer, part) = rest.split_once('.').unwrap();
            let part = part.strip_suffix(".weight").unwrap();
            let hf_part = match part {
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                "attn_norm" => "input_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                other => panic!("unexpected tensor {other}"),
            };
            format!("model.layers.{layer}.{hf_part}.weight")
        };
        let t = match name.rsplit('.').nth(1) {
            Some("attn_q") => unpermute(&t, n_heads),
            Some("attn_k") => unpermute(&t, n_kv),
            _ => t,
        };
        tensors.insert(hf, t);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": true,
        "vocab_size": 49152,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let backend = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    backend
        .tokenizer()
        .save(dir.join("tokenizer.json"), false)
        .unwrap();
    let template = content.metadata["tokenizer.chat_template"]
        .to_string()
        .unwrap()
        .clone();
    let tokenizer_config = serde_json::json!({
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "add_bos_token": false,
        "chat_template": template,
    });
    std::fs::write(
        dir.join("tokenizer_config.json"),
        tokenizer_config.to_string(),
    )
    .unwrap();
}

#[test]
fn llama_folder_matches_gguf() {
    let dir = tempfile::tempdir().unwrap();
    export_hf(&model_path(SMOLLM2, "smollm2"), dir.path());
    let mut folder = CandleBackend::load(dir.path(), &CandleOptions::default()).unwrap();
    let sentences = candle_common::crows_sentences(16);
    let cases: Vec<Case> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| sentence_case(&format!("s{i}"), s))
        .collect();
    let refs: Vec<&Case> = cases.iter().collect();
    let ours = folder.answer(&refs, &Generation::default()).unwrap();
    let mut gguf = smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let theirs = gguf.answer(&refs, &Generation::default()).unwrap();
    for (a, b) in ours.iter().zip(&theirs) {
        let (Answer::TokenLogprobs { logprobs: a, .. }, Answer::TokenLogprobs { logprobs: b, .. }) =
            (a, b)
        else {
            panic!("{a:?} {b:?}")
        };
        assert!((a[0] - b[0]).abs() < 1e-3, "folder {} gguf {}", a[0], b[0]);
    }
    let chat = Case {
        id: "chat".into(),
        probe: "test".into(),
        attributes: Default::default(),
        query: Query::Chat {
            system: None,
            history: Vec::new(),
            prompt: "What is the capital of France?".into(),
        },
    };
    let generation = Generation {
        max_new_tokens: 12,
        ..Generation::default()
    };
    let a = folder.answer(&[&chat], &generation).unwrap();
    let b = gguf.answer(&[&chat], &generation).unwrap();
    assert_eq!(a, b);
    assert_eq!(folder.model().details["format"], "hf-safetensors");
}

#[test]
fn folder_without_tokenizer_or_weights() {
    let dir = tempfile::tempdir().unwrap();
    let message = CandleBackend::load(dir.path(), &CandleOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("neither a .gguf file nor a folder"),
        "{message}"
    );
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), "garbage").unwrap();
    let message = CandleBackend::load(dir.path(), &CandleOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("no tokenizer.json"), "{message}");
    assert!(!message.contains('\n'));
    std::fs::copy(
        minilm_path().join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let message = CandleBackend::load(dir.path(), &CandleOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("model.safetensors") || message.contains("config.json"),
        "{message}"
    );
    assert!(!message.contains('\n'));
}

#[test]
fn rope_scaling_is_refused_not_ignored() {
    // Types we do not implement, and a llama3 scaling without its parameters.
    for (scaling, expected) in [
        (
            serde_json::json!({"rope_type": "yarn", "factor": 8.0}),
            "rope scaling `yarn` (supported: default, linear, llama3) is not supported",
        ),
        (
            serde_json::json!({"rope_type": "llama3", "factor": 8.0}),
            "rope scaling `llama3` without a positive `low_freq_factor` is not supported",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = serde_json::json!({
            "model_type": "llama",
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "rope_scaling": scaling,
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), "x").unwrap();
        std::fs::copy(
            minilm_path().join("tokenizer.json"),
            dir.path().join("tokenizer.json"),
        )
        .unwrap();
        let message = CandleBackend::load(dir.path(), &CandleOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("config.json"), "{message}");
    }
}
