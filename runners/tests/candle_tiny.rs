//! HF folders of architectures and RoPE settings no real weights here exercise (Qwen 2 with
//! attention biases, Llama with llama3 and linear `rope_scaling`, Gemma 3 `gemma3_text` with
//! sliding layers), against transformers on tiny random-weight models: the folders are rebuilt
//! from `fixtures/data/candle_reference_tiny.json` (the config.json transformers wrote, and the
//! weights from the generator `scripts/candle-tiny-reference.py` used).

#![allow(clippy::unwrap_used)]

mod candle_common;

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

/// Writes an HF folder: the stored config.json, the generated weights, and a word-level
/// tokenizer whose token `tN` is id N (so text "t5 t9" is the ids 5, 9), BOS `t1`.
fn write_folder(dir: &Path, model: &serde_json::Value, seed: u64, config: &serde_json::Value) {
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

/// Loads the folder and checks every prompt's summed log-probability (within 1e-3 nats) and its
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
    for (i, answer) in answers.iter().enumerate() {
        let Some(lp) = answer.logprobs() else {
            panic!("{name} prompt {i}: {answer:?}")
        };
        let expected = model["logprobs"][i].as_f64().unwrap();
        assert!(
            (lp[0] - expected).abs() < 1e-3,
            "{name} prompt {i}: ours {} transformers {expected}",
            lp[0]
        );
    }
    let generation = Generation {
        max_new_tokens: 8,
        ..Generation::default()
    };
    let seeds = vec![0; prompts.len()];
    let greedy = backend.complete(&prompts, &generation, &seeds).unwrap();
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

/// Options sharing a long context (prefix run once, left-padded, its cache copied per option)
/// score as each option run whole, also across Gemma 3's sliding window of 8 tokens.
#[test]
fn shared_prefixes_score_as_whole_sequences() {
    use audit_core::{Case, Query};
    let reference = fixture("candle_reference_tiny.json");
    for name in ["qwen2", "gemma3"] {
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
        let cases: Vec<Case> = (0..4u32)
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
        let refs: Vec<&Case> = cases.iter().collect();
        let shared = backend.answer(&refs, &Generation::default()).unwrap();
        for (case, answer) in cases.iter().zip(&shared) {
            let Query::Choice { context, options } = &case.query else {
                unreachable!()
            };
            let Some(lp) = answer.logprobs() else {
                panic!("{answer:?}")
            };
            for (o, option) in options.iter().enumerate() {
                let single = choice("one".into(), context.clone(), vec![option.clone()]);
                let alone = backend.answer(&[&single], &Generation::default()).unwrap();
                let Some(one) = alone[0].logprobs() else {
                    panic!("{alone:?}")
                };
                assert!(
                    (lp[o] - one[0]).abs() <= 1e-4,
                    "{name} {} option {o}: shared {} whole {}",
                    case.id,
                    lp[o],
                    one[0]
                );
            }
        }
    }
}
