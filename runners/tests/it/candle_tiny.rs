//! HF folders of architectures and RoPE settings no real weights here exercise (Qwen 2 with
//! attention biases, Llama with llama3 and linear `rope_scaling`, Gemma 3 `gemma3_text` with
//! sliding layers; Qwen 3, Mistral, Mixtral, Phi-3 and Gemma 2), against transformers on tiny
//! random-weight models: the folders are rebuilt from `fixtures/data/candle_reference_tiny.json`
//! (the config.json transformers wrote, and the weights from the generator
//! `scripts/candle-tiny-reference.py` used). The Qwen 2, Qwen 3, Phi-3 and Gemma 2 weights are
//! also written as GGUF files.

#![allow(clippy::unwrap_used)]

use crate::candle_common;

use std::collections::HashMap;
use std::path::Path;

use audit_core::{Backend, Generation};
use candle_common::{fixture, sentence_case};
use candle_core::{Device, Tensor};
use runners::candle::{CandleBackend, CandleOptions};

/// The script's generator: x <- x * 6364136223846793005 + 1442695040888963407 (mod 2^64), and
/// u = the top 24 bits mapped to [-1, 1).
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0
    }
}

/// The model's weights under their HF names, drawn in the fixture's order.
fn weights(model: &serde_json::Value, seed: u64) -> HashMap<String, Tensor> {
    let mut lcg = Lcg(seed);
    let mut tensors = HashMap::new();
    for t in model["tensors"].as_array().unwrap() {
        let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
        let (base, scale) = (t["base"].as_f64().unwrap(), t["scale"].as_f64().unwrap());
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| (base + scale * lcg.uniform()) as f32)
            .collect();
        let tensor = Tensor::from_vec(values, shape, &Device::Cpu).unwrap();
        tensors.insert(t["name"].as_str().unwrap().to_string(), tensor);
    }
    tensors
}

/// Writes an HF folder: the stored config.json, the generated weights, and a word-level
/// tokenizer whose token `tN` is id N (so text "t5 t9" is the ids 5, 9), BOS `t1`.
fn write_folder(dir: &Path, model: &serde_json::Value, seed: u64, config: &serde_json::Value) {
    let tensors = weights(model, seed);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..256).map(|i| (format!("t{i}"), i.into())).collect();
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"},
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let tokenizer_config = serde_json::json!({"bos_token": "t1", "add_bos_token": false});
    std::fs::write(
        dir.join("tokenizer_config.json"),
        tokenizer_config.to_string(),
    )
    .unwrap();
}

/// Loads the folder and checks every prompt's summed log-probability (within 1e-4 nats) and its
/// 8 greedy tokens against transformers.
fn check(name: &str, config: Option<serde_json::Value>) {
    let reference = fixture("candle_reference_tiny.json");
    let model = &reference["models"][name];
    let config = config.unwrap_or_else(|| model["config"].clone());
    let dir = tempfile::tempdir().unwrap();
    write_folder(
        dir.path(),
        model,
        reference["seed"].as_u64().unwrap(),
        &config,
    );
    let mut backend = CandleBackend::load(dir.path(), &CandleOptions::default()).unwrap();
    let prompts: Vec<Vec<u32>> = serde_json::from_value(reference["prompts"].clone()).unwrap();
    let cases: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            // The first id is BOS, which an empty-context choice puts in front by itself.
            let text: Vec<String> = ids[1..].iter().map(|id| format!("t{id}")).collect();
            sentence_case(&format!("p{i}"), &text.join(" "))
        })
        .collect();
    let refs: Vec<_> = cases.iter().collect();
    let answers = backend.answer(&refs, &Generation::default()).unwrap();
    let mut worst = 0f64;
    for (i, answer) in answers.iter().enumerate() {
        let Some(lp) = answer.logprobs() else {
            panic!("{name} prompt {i}: {answer:?}")
        };
        let expected = model["logprobs"][i].as_f64().unwrap();
        worst = worst.max((lp[0] - expected).abs());
        assert!(
            (lp[0] - expected).abs() < 1e-4,
            "{name} prompt {i}: ours {} transformers {expected}",
            lp[0]
        );
    }
    eprintln!("{name}: max |Δ| {worst:.2e} nats");
    check_greedy(&backend, &prompts, model, name);
}

/// The 8 greedy tokens after each prompt equal transformers'.
fn check_greedy(
    backend: &CandleBackend,
    prompts: &[Vec<u32>],
    model: &serde_json::Value,
    name: &str,
) {
    let generation = Generation {
        max_new_tokens: 8,
        ..Generation::default()
    };
    let seeds = vec![0; prompts.len()];
    let greedy = backend.complete(prompts, &generation, &seeds).unwrap();
    let expected: Vec<Vec<u32>> = serde_json::from_value(model["greedy"].clone()).unwrap();
    assert_eq!(greedy, expected, "{name}: greedy tokens");
}

#[test]
fn qwen2_with_attention_biases_matches_transformers() {
    check("qwen2", None);
}

#[test]
fn llama3_rope_scaling_matches_transformers() {
    check("llama3_rope", None);
}

/// The same model with its RoPE settings in the transformers 4 layout (`rope_theta` and
/// `rope_scaling`), as folders on the hub have them.
#[test]
fn llama3_rope_scaling_in_the_v4_layout() {
    let reference = fixture("candle_reference_tiny.json");
    let mut config = reference["models"]["llama3_rope"]["config"].clone();
    let mut params = config["rope_parameters"].take();
    let object = config.as_object_mut().unwrap();
    object.remove("rope_parameters");
    object.insert("rope_theta".into(), params["rope_theta"].take());
    params.as_object_mut().unwrap().remove("rope_theta");
    object.insert("rope_scaling".into(), params);
    check("llama3_rope", Some(config));
}

#[test]
fn linear_rope_scaling_matches_transformers() {
    check("linear_rope", None);
}

#[test]
fn gemma3_text_folder_matches_transformers() {
    check("gemma3", None);
}

#[test]
fn unknown_rope_scaling_is_a_load_error() {
    let reference = fixture("candle_reference_tiny.json");
    let model = &reference["models"]["linear_rope"];
    let mut config = model["config"].clone();
    config["rope_parameters"]["rope_type"] = "yarn".into();
    let dir = tempfile::tempdir().unwrap();
    write_folder(
        dir.path(),
        model,
        reference["seed"].as_u64().unwrap(),
        &config,
    );
    let err = CandleBackend::load(dir.path(), &CandleOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("rope scaling `yarn`"), "{err}");
    assert!(err.contains("config.json"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

/// Options sharing a context, and cases sharing a start, score as each option run alone
/// (shared tokens run once, in rows packed from the prefix tree), also across Gemma 3's
/// sliding window of 8 tokens and for a context longer than a packed row.
#[test]
fn shared_prefixes_score_as_whole_sequences() {
    use audit_core::{Case, Query};
    let reference = fixture("candle_reference_tiny.json");
    for name in ["qwen2", "gemma3", "gemma2", "phi3", "mixtral"] {
        let model = &reference["models"][name];
        let dir = tempfile::tempdir().unwrap();
        write_folder(
            dir.path(),
            model,
            reference["seed"].as_u64().unwrap(),
            &model["config"],
        );
        let mut backend = CandleBackend::load(dir.path(), &CandleOptions::default()).unwrap();
        let words = |ids: std::ops::Range<u32>| -> String {
            ids.map(|i| format!("t{}", 3 + i * 7 % 250))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let choice = |id: String, context: String, options: Vec<String>| Case {
            id,
            probe: "test".into(),
            attributes: Default::default(),
            query: Query::Choice { context, options },
        };
        let mut cases: Vec<Case> = (0..4u32)
            .map(|c| {
                choice(
                    format!("c{c}"),
                    words(c..c + 12 + 5 * c),
                    vec![
                        format!(" {}", words(40..41 + c)),
                        format!(" {}", words(50..53)),
                        format!(" {}", words(60..62 + 2 * c)),
                    ],
                )
            })
            .collect();
        // Two cases with one 150-token context (longer than a row), asked different things.
        for (c, options) in [(4, [70..72, 80..81]), (5, [90..93, 70..71])] {
            let options = options.map(|r| format!(" {}", words(r))).to_vec();
            cases.push(choice(format!("c{c}"), words(100..250), options));
        }
        let refs: Vec<&Case> = cases.iter().collect();
        let shared = backend.answer(&refs, &Generation::default()).unwrap();
        for (case, answer) in cases.iter().zip(&shared) {
            let Query::Choice { context, options } = &case.query else {
                unreachable!()
            };
            let Some(lp) = answer.logprobs() else {
                panic!("{answer:?}")
            };
            // The word-level tokenizer's ids of a text: `tN` is N.
            let ids = |text: &str| -> Vec<u32> {
                text.split_whitespace()
                    .map(|w| w[1..].parse().unwrap())
                    .collect()
            };
            for (o, option) in options.iter().enumerate() {
                // The same tokens run whole through the plain causal forward (`token_scores`:
                // one row, KV cache, no tree): the option's tokens are the last ones.
                let mut all = ids(context);
                let n_option = ids(option).len();
                all.extend(ids(option));
                let scores = backend.token_scores(&all).unwrap();
                let whole: f64 = scores[scores.len() - n_option..].iter().map(|s| s.1).sum();
                assert!(
                    (lp[o] - whole).abs() <= 1e-4,
                    "{name} {} option {o}: shared {} whole {whole}",
                    case.id,
                    lp[o],
                );
            }
        }
    }
}

/// The Qwen 2 model as llama.cpp's converter writes it to GGUF (architecture `qwen2`, q/k rows
/// not permuted, `attn_{q,k,v}.bias` tensors), with a byte-level BPE vocabulary of the ids:
/// greedy tokens from token ids equal transformers' on the HF folder.
#[test]
fn qwen2_gguf_with_attention_biases_matches_transformers() {
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::{GgmlDType, QTensor};
    let reference = fixture("candle_reference_tiny.json");
    let model = &reference["models"]["qwen2"];
    let config = &model["config"];
    let hf = weights(model, reference["seed"].as_u64().unwrap());
    let mut names: Vec<(String, String)> = vec![
        (
            "model.embed_tokens.weight".into(),
            "token_embd.weight".into(),
        ),
        ("lm_head.weight".into(), "output.weight".into()),
        ("model.norm.weight".into(), "output_norm.weight".into()),
    ];
    let layers = config["num_hidden_layers"].as_u64().unwrap();
    for i in 0..layers {
        for (ours, theirs) in [
            ("input_layernorm.weight", "attn_norm.weight"),
            ("post_attention_layernorm.weight", "ffn_norm.weight"),
            ("self_attn.q_proj.weight", "attn_q.weight"),
            ("self_attn.k_proj.weight", "attn_k.weight"),
            ("self_attn.v_proj.weight", "attn_v.weight"),
            ("self_attn.o_proj.weight", "attn_output.weight"),
            ("self_attn.q_proj.bias", "attn_q.bias"),
            ("self_attn.k_proj.bias", "attn_k.bias"),
            ("self_attn.v_proj.bias", "attn_v.bias"),
            ("mlp.gate_proj.weight", "ffn_gate.weight"),
            ("mlp.up_proj.weight", "ffn_up.weight"),
            ("mlp.down_proj.weight", "ffn_down.weight"),
        ] {
            names.push((
                format!("model.layers.{i}.{ours}"),
                format!("blk.{i}.{theirs}"),
            ));
        }
    }
    assert_eq!(names.len(), hf.len(), "every HF tensor has a GGUF name");
    let tensors: Vec<(String, QTensor)> = names
        .iter()
        .map(|(ours, theirs)| {
            let q = QTensor::quantize(&hf[ours], GgmlDType::F32).unwrap();
            (theirs.clone(), q)
        })
        .collect();
    let u32_of = |key: &str| Value::U32(config[key].as_u64().unwrap() as u32);
    let mut tokens: Vec<Value> = (0..256).map(|i| Value::String(format!("t{i}"))).collect();
    tokens[2] = Value::String("ab".into());
    tokens[3] = Value::String("a".into());
    tokens[4] = Value::String("b".into());
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("qwen2".into())),
        ("qwen2.block_count", Value::U32(layers as u32)),
        ("qwen2.context_length", u32_of("max_position_embeddings")),
        ("qwen2.embedding_length", u32_of("hidden_size")),
        ("qwen2.feed_forward_length", u32_of("intermediate_size")),
        ("qwen2.attention.head_count", u32_of("num_attention_heads")),
        (
            "qwen2.attention.head_count_kv",
            u32_of("num_key_value_heads"),
        ),
        (
            "qwen2.attention.layer_norm_rms_epsilon",
            Value::F32(config["rms_norm_eps"].as_f64().unwrap() as f32),
        ),
        (
            "qwen2.rope.freq_base",
            Value::F32(config["rope_parameters"]["rope_theta"].as_f64().unwrap() as f32),
        ),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("qwen2".into())),
        ("tokenizer.ggml.tokens", Value::Array(tokens)),
        (
            "tokenizer.ggml.merges",
            Value::Array(vec![Value::String("a b".into())]),
        ),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-qwen2.gguf");
    let mut file = std::fs::File::create(&path).unwrap();
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut file, &metadata, &tensors).unwrap();
    drop(file);

    let backend = CandleBackend::load(&path, &CandleOptions::default()).unwrap();
    let prompts: Vec<Vec<u32>> = serde_json::from_value(reference["prompts"].clone()).unwrap();
    check_greedy(&backend, &prompts, model, "qwen2 GGUF");
}

/// Qwen 3: q/k RMS norms per head.
#[test]
fn qwen3_folder_matches_transformers() {
    check("qwen3", None);
}

/// Mistral with a window of 8 tokens on every layer, shorter than three of the four prompts.
#[test]
fn mistral_sliding_window_matches_transformers() {
    check("mistral", None);
    assert_window_matters("mistral");
}

/// Phi-3: fused qkv and gate_up projections, split at load; a window of 8 on every layer.
#[test]
fn phi3_fused_projections_match_transformers() {
    check("phi3", None);
    assert_window_matters("phi3");
}

/// Gemma 2: attention and final logit soft-capping (caps of 2 and 1.5, small enough to bend
/// these scores), layers 0 and 2 sliding with a window of 8.
#[test]
fn gemma2_softcapping_and_sliding_layers_match_transformers() {
    check("gemma2", None);
    assert_window_matters("gemma2");
    // Without its caps the model scores otherwise: the caps are exercised.
    let reference = fixture("candle_reference_tiny.json");
    let mut config = reference["models"]["gemma2"]["config"].clone();
    config["final_logit_softcapping"] = serde_json::Value::Null;
    config["attn_logit_softcapping"] = serde_json::Value::Null;
    let uncapped = last_prompt_logprob("gemma2", &config);
    let expected = reference["models"]["gemma2"]["logprobs"][3]
        .as_f64()
        .unwrap();
    assert!((uncapped - expected).abs() > 1e-2, "caps change nothing");
}

/// The last (40-token) prompt's log-probability under `config` (the fixture's weights).
fn last_prompt_logprob(name: &str, config: &serde_json::Value) -> f64 {
    let reference = fixture("candle_reference_tiny.json");
    let model = &reference["models"][name];
    let dir = tempfile::tempdir().unwrap();
    write_folder(
        dir.path(),
        model,
        reference["seed"].as_u64().unwrap(),
        config,
    );
    let backend = CandleBackend::load(dir.path(), &CandleOptions::default()).unwrap();
    let prompts: Vec<Vec<u32>> = serde_json::from_value(reference["prompts"].clone()).unwrap();
    let scores = backend.token_scores(&prompts[3]).unwrap();
    scores.iter().map(|s| s.1).sum()
}

/// With the window widened past every prompt, the 40-token prompt scores otherwise.
fn assert_window_matters(name: &str) {
    let reference = fixture("candle_reference_tiny.json");
    let mut config = reference["models"][name]["config"].clone();
    config["sliding_window"] = 4096.into();
    let wide = last_prompt_logprob(name, &config);
    let expected = reference["models"][name]["logprobs"][3].as_f64().unwrap();
    assert!(
        (wide - expected).abs() > 1e-2,
        "{name}: the window changes nothing ({wide} vs {expected})"
    );
}

/// The GGUF name llama.cpp's converter gives an HF tensor name.
fn gguf_name(hf: &str, gemma: bool) -> String {
    match hf {
        "model.embed_tokens.weight" => return "token_embd.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        "model.norm.weight" => return "output_norm.weight".into(),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.").unwrap();
    let (layer, rest) = rest.split_once('.').unwrap();
    let (stem, suffix) = rest.rsplit_once('.').unwrap();
    let theirs = match stem {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" if gemma => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" => "ffn_norm",
        "post_feedforward_layernorm" => "post_ffw_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.qkv_proj" => "attn_qkv",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.gate_up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        other => panic!("no GGUF name for {other}"),
    };
    format!("blk.{layer}.{theirs}.{suffix}")
}

/// Writes the fixture model `name` as llama.cpp's converter would for architecture `arch`
/// (HF q/k layout, Gemma norms stored as 1 + w, f32 tensors), and checks every prompt's
/// log-probability (within 1e-4 nats) and greedy tokens against transformers.
fn check_gguf(name: &str, arch: &str) {
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::{GgmlDType, QTensor};
    let reference = fixture("candle_reference_tiny.json");
    let model = &reference["models"][name];
    let config = &model["config"];
    let gemma = arch.starts_with("gemma");
    let mut hf = weights(model, reference["seed"].as_u64().unwrap());
    // llama.cpp's `llama` architecture: q/k rows permuted for adjacent-pair RoPE, experts stacked.
    if arch == "llama" {
        let heads = |key: &str| config[key].as_u64().unwrap() as usize;
        let permute = |w: &Tensor, n_heads: usize| {
            let (out, d) = w.dims2().unwrap();
            w.reshape((n_heads, 2, out / n_heads / 2, d))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
                .reshape((out, d))
                .unwrap()
        };
        let mut moved = HashMap::new();
        for (name, t) in hf.drain() {
            let (key, t) = if name.ends_with("q_proj.weight") {
                (name, permute(&t, heads("num_attention_heads")))
            } else if name.ends_with("k_proj.weight") {
                (name, permute(&t, heads("num_key_value_heads")))
            } else if let Some(layer) = name.strip_suffix(".mlp.experts.gate_up_proj") {
                let ff = t.dim(1).unwrap() / 2;
                let gate = t.narrow(1, 0, ff).unwrap().contiguous().unwrap();
                let up = t.narrow(1, ff, ff).unwrap().contiguous().unwrap();
                moved.insert(format!("{layer}.ffn_gate_exps"), gate);
                (format!("{layer}.ffn_up_exps"), up)
            } else if let Some(layer) = name.strip_suffix(".mlp.experts.down_proj") {
                (format!("{layer}.ffn_down_exps"), t)
            } else if let Some(layer) = name.strip_suffix(".mlp.gate.weight") {
                (format!("{layer}.ffn_gate_inp"), t)
            } else {
                (name, t)
            };
            moved.insert(key, t);
        }
        hf = moved;
    }
    let mut tensors: Vec<(String, QTensor)> = hf
        .iter()
        .map(|(ours, t)| {
            let t = if gemma && ours.ends_with("norm.weight") {
                (t + 1.0).unwrap()
            } else {
                t.clone()
            };
            let theirs = match ours.strip_prefix("model.layers.") {
                Some(rest) if rest.contains("_exps") || rest.contains("ffn_gate_inp") => {
                    format!("blk.{rest}.weight")
                }
                _ => gguf_name(ours, gemma),
            };
            (theirs, QTensor::quantize(&t, GgmlDType::F32).unwrap())
        })
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let u32_of = |key: &str| Value::U32(config[key].as_u64().unwrap() as u32);
    let key = |k: &str| format!("{arch}.{k}");
    let mut metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        (key("block_count"), u32_of("num_hidden_layers")),
        (key("context_length"), u32_of("max_position_embeddings")),
        (key("embedding_length"), u32_of("hidden_size")),
        (key("feed_forward_length"), u32_of("intermediate_size")),
        (key("attention.head_count"), u32_of("num_attention_heads")),
        (
            key("attention.head_count_kv"),
            u32_of("num_key_value_heads"),
        ),
        (
            key("attention.layer_norm_rms_epsilon"),
            Value::F32(config["rms_norm_eps"].as_f64().unwrap() as f32),
        ),
        (
            key("rope.freq_base"),
            Value::F32(config["rope_parameters"]["rope_theta"].as_f64().unwrap() as f32),
        ),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array((0..256).map(|i| Value::String(format!("t{i}"))).collect()),
        ),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
    ];
    if let Some(n) = config["num_local_experts"].as_u64() {
        metadata.push((key("expert_count"), Value::U32(n as u32)));
        metadata.push((key("expert_used_count"), u32_of("num_experts_per_tok")));
    }
    if config["head_dim"].is_u64() {
        metadata.push((key("attention.key_length"), u32_of("head_dim")));
    }
    if config["sliding_window"].is_u64() {
        metadata.push((key("attention.sliding_window"), u32_of("sliding_window")));
    }
    for cap in ["attn_logit_softcapping", "final_logit_softcapping"] {
        if let Some(v) = config[cap].as_f64() {
            metadata.push((key(cap), Value::F32(v as f32)));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("tiny-{name}.gguf"));
    let mut file = std::fs::File::create(&path).unwrap();
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut file, &metadata, &tensors).unwrap();
    drop(file);

    let backend = CandleBackend::load(&path, &CandleOptions::default()).unwrap();
    let prompts: Vec<Vec<u32>> = serde_json::from_value(reference["prompts"].clone()).unwrap();
    let mut worst = 0f64;
    for (i, ids) in prompts.iter().enumerate() {
        let ours: f64 = backend.token_scores(ids).unwrap().iter().map(|s| s.1).sum();
        let expected = model["logprobs"][i].as_f64().unwrap();
        worst = worst.max((ours - expected).abs());
        assert!(
            (ours - expected).abs() < 1e-4,
            "{name} GGUF prompt {i}: ours {ours} transformers {expected}"
        );
    }
    eprintln!("{name} GGUF: max |Δ| {worst:.2e} nats");
    check_greedy(&backend, &prompts, model, &format!("{name} GGUF"));
}

#[test]
fn qwen3_gguf_matches_transformers() {
    check_gguf("qwen3", "qwen3");
}

#[test]
fn phi3_gguf_matches_transformers() {
    check_gguf("phi3", "phi3");
}

/// Mixtral as llama.cpp writes it: architecture `llama` with `expert_count`, q/k permuted,
/// stacked `ffn_{gate,up,down}_exps`.
#[test]
fn mixtral_gguf_matches_transformers() {
    check_gguf("mixtral", "llama");
}

#[test]
fn gemma2_gguf_matches_transformers() {
    check_gguf("gemma2", "gemma2");
}

/// Mixtral: 4 experts, 2 per token, in the transformers 5 layout (`mlp.experts.gate_up_proj`).
#[test]
fn mixtral_experts_match_transformers() {
    check("mixtral", None);
}

/// The same Mixtral with its experts in the hub's layout (`block_sparse_moe.experts.N.w1`,
/// `w3`, `w2`, `block_sparse_moe.gate`).
#[test]
fn mixtral_in_the_hub_layout_matches_transformers() {
    let reference = fixture("candle_reference_tiny.json");
    let model = &reference["models"]["mixtral"];
    let hf = weights(model, reference["seed"].as_u64().unwrap());
    let mut tensors = HashMap::new();
    for (name, t) in hf {
        let Some((layer, rest)) = name
            .strip_prefix("model.layers.")
            .and_then(|r| r.split_once('.'))
        else {
            tensors.insert(name, t);
            continue;
        };
        let moe = |s: &str| format!("model.layers.{layer}.block_sparse_moe.{s}");
        match rest {
            "mlp.gate.weight" => {
                tensors.insert(moe("gate.weight"), t);
            }
            "mlp.experts.gate_up_proj" => {
                let ff = t.dim(1).unwrap() / 2;
                for e in 0..t.dim(0).unwrap() {
                    let x = t.get(e).unwrap();
                    let w1 = x.narrow(0, 0, ff).unwrap().contiguous().unwrap();
                    let w3 = x.narrow(0, ff, ff).unwrap().contiguous().unwrap();
                    tensors.insert(moe(&format!("experts.{e}.w1.weight")), w1);
                    tensors.insert(moe(&format!("experts.{e}.w3.weight")), w3);
                }
            }
            "mlp.experts.down_proj" => {
                for e in 0..t.dim(0).unwrap() {
                    let w2 = t.get(e).unwrap().contiguous().unwrap();
                    tensors.insert(moe(&format!("experts.{e}.w2.weight")), w2);
                }
            }
            _ => {
                tensors.insert(name, t);
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write_folder(
        dir.path(),
        model,
        reference["seed"].as_u64().unwrap(),
        &model["config"],
    );
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let backend = CandleBackend::load(dir.path(), &CandleOptions::default()).unwrap();
    let prompts: Vec<Vec<u32>> = serde_json::from_value(reference["prompts"].clone()).unwrap();
    for (i, ids) in prompts.iter().enumerate() {
        let ours: f64 = backend.token_scores(ids).unwrap().iter().map(|s| s.1).sum();
        let expected = model["logprobs"][i].as_f64().unwrap();
        assert!(
            (ours - expected).abs() < 1e-4,
            "mixtral hub layout prompt {i}: ours {ours} transformers {expected}"
        );
    }
    check_greedy(&backend, &prompts, model, "mixtral hub layout");
}
