//! PEFT LoRA adapters on the real SmolLM2 GGUF: our merged logits against peft's merged model in
//! transformers (fixtures/data/lora_reference_smollm2.json, from scripts/make-lora-adapter.py),
//! the unmerged path against the merged one, the manifest record, and every malformed adapter
//! refused with a one-line error naming the file.

#![allow(clippy::unwrap_used)]

use crate::candle_common;

use std::path::{Path, PathBuf};

use audit_core::Backend;
use candle_common::{fixture, model_path, SMOLLM2};
use fixtures::lora;
use runners::candle::{CandleBackend, CandleOptions};
use sha2::{Digest, Sha256};

/// Largest allowed |ours − peft| of a token's log-probability (f32 weights), the quantity choice
/// scoring sums.
const TOLERANCE: f64 = 1e-4;
/// Largest allowed |ours − peft| of a token's raw logit: logits reach |30|, where f32 sums of
/// 576 to 1536 products in another order differ by about 1e-5 relative; the base alone (no
/// adapter) differs from transformers by up to 6e-5 (`base_logits_equal_transformers`).
const LOGIT_TOLERANCE: f64 = 2e-4;
/// Largest allowed |unmerged − merged|: the same sums in another order.
const UNMERGED_TOLERANCE: f64 = 1e-4;

fn write_adapter(spec: &lora::Spec, root: &Path) -> PathBuf {
    let dir = root.join(spec.name);
    lora::write(spec, &dir).unwrap();
    dir
}

fn load(adapter: &Path, unmerged: bool) -> Result<CandleBackend, runners::candle::LoadError> {
    let options = CandleOptions {
        adapter: Some(adapter.to_path_buf()),
        adapter_unmerged: unmerged,
        ..CandleOptions::default()
    };
    CandleBackend::load(&model_path(SMOLLM2, "smollm2"), &options)
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn reference(name: &str) -> serde_json::Value {
    let all = fixture("lora_reference_smollm2.json");
    all["adapters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the reference"))
        .clone()
}

/// Our (logit, log-prob) per token of each reference sentence.
fn scores(backend: &CandleBackend, sentences: &[serde_json::Value]) -> Vec<Vec<(f32, f64)>> {
    sentences
        .iter()
        .map(|s| {
            let ids: Vec<u32> = serde_json::from_value(s["ids"].clone()).unwrap();
            backend.token_scores(&ids).unwrap()
        })
        .collect()
}

/// Largest difference of logits and of log-probs against the reference sentences.
fn worst(ours: &[Vec<(f32, f64)>], sentences: &[serde_json::Value]) -> (f64, f64) {
    let (mut logit, mut lp) = (0.0f64, 0.0f64);
    for (o, s) in ours.iter().zip(sentences) {
        let logits = s["token_logits"].as_array().unwrap();
        let lps = s["token_logprobs"].as_array().unwrap();
        assert_eq!(o.len(), logits.len(), "{}", s["sentence"]);
        for ((ol, olp), (rl, rlp)) in o.iter().zip(logits.iter().zip(lps)) {
            logit = logit.max((f64::from(*ol) - rl.as_f64().unwrap()).abs());
            lp = lp.max((olp - rlp.as_f64().unwrap()).abs());
        }
    }
    (logit, lp)
}

fn check_against_peft(spec: lora::Spec) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_adapter(&spec, tmp.path());
    let reference = reference(spec.name);
    for file in ["adapter_config.json", "adapter_model.safetensors"] {
        assert_eq!(
            sha256(&dir.join(file)),
            reference["sha256"][file].as_str().unwrap(),
            "{file}: the adapter differs from the one the reference was made with; rerun scripts/make-lora-adapter.py"
        );
    }
    let sentences = reference["sentences"].as_array().unwrap();
    assert_eq!(sentences.len(), 20);
    let backend = load(&dir, false).unwrap();
    let ours = scores(&backend, sentences);
    let (logit, lp) = worst(&ours, sentences);
    assert!(
        logit <= LOGIT_TOLERANCE && lp <= TOLERANCE,
        "{}: largest |ours - peft| logit {logit:e}, log-prob {lp:e}",
        spec.name
    );
    // The adapter must matter: the base's log-probs are far from the merged model's.
    let base = fixture("lora_reference_smollm2.json")["base"].clone();
    let (_, moved) = worst(&ours, base.as_array().unwrap());
    assert!(
        moved > 0.05,
        "{}: the adapter moves log-probs by only {moved}",
        spec.name
    );
    eprintln!(
        "{}: |ours - peft| ≤ {logit:.2e} (logits), {lp:.2e} (log-probs); adapter moves log-probs by up to {moved:.3}",
        spec.name
    );
}

/// The control: the base without adapter against transformers on the same sentences.
#[test]
fn base_logits_equal_transformers() {
    let reference = fixture("lora_reference_smollm2.json");
    let sentences = reference["base"].as_array().unwrap();
    let backend = candle_common::smollm2()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (logit, lp) = worst(&scores(&backend, sentences), sentences);
    assert!(
        logit <= LOGIT_TOLERANCE && lp <= TOLERANCE,
        "base: logit {logit:e}, log-prob {lp:e}"
    );
    eprintln!("base: |ours - transformers| ≤ {logit:.2e} (logits), {lp:.2e} (log-probs)");
}

#[test]
fn merged_logits_equal_peft_merged_model() {
    check_against_peft(lora::test_adapter());
}

#[test]
fn rslora_scale_and_regex_targets_equal_peft() {
    let reference = reference("lora-smollm2-rslora");
    assert_eq!(reference["scale"].as_f64().unwrap(), 4.0, "16 / sqrt(16)");
    check_against_peft(lora::rslora_adapter());
}

#[test]
fn unmerged_path_equals_merged_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_adapter(&lora::test_adapter(), tmp.path());
    let reference = reference("lora-smollm2-test");
    let sentences = &reference["sentences"].as_array().unwrap()[..5];
    let merged = scores(&load(&dir, false).unwrap(), sentences);
    let unmerged_backend = load(&dir, true).unwrap();
    let detail = unmerged_backend.model().details["adapter"].clone();
    assert!(
        detail.contains("applied unmerged on 120 weights"),
        "{detail}"
    );
    let unmerged = scores(&unmerged_backend, sentences);
    let mut gap = 0.0f64;
    for (m, u) in merged.iter().zip(&unmerged) {
        for ((ml, mlp), (ul, ulp)) in m.iter().zip(u) {
            gap = gap.max(f64::from((ml - ul).abs())).max((mlp - ulp).abs());
        }
    }
    assert!(gap <= UNMERGED_TOLERANCE, "unmerged vs merged: {gap:e}");
    eprintln!("unmerged vs merged: ≤ {gap:.2e}");
}

#[test]
fn manifest_names_the_adapter_and_hashes_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_adapter(&lora::test_adapter(), tmp.path());
    let info = load(&dir, false).unwrap().model();
    assert_eq!(info.model, "SmolLM2-135M-Instruct.Q4_1+lora-smollm2-test");
    let reference = reference("lora-smollm2-test");
    let files: Vec<(String, String)> = info
        .files
        .iter()
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files[0].0.ends_with(SMOLLM2));
    for (i, file) in ["adapter_config.json", "adapter_model.safetensors"]
        .iter()
        .enumerate()
    {
        assert!(files[i + 1].0.ends_with(file));
        assert_eq!(files[i + 1].1, reference["sha256"][file].as_str().unwrap());
    }
    let detail = &info.details["adapter"];
    assert!(
        detail.contains("r 8, lora_alpha 16, scale 2 (alpha/r), 120 modules (q_proj, k_proj, v_proj, down_proj), merged into 120 f32 weights"),
        "{detail}"
    );
}

/// The test adapter in a fresh folder, with `edit` applied to its config.
fn adapter_with(edit: impl FnOnce(&mut serde_json::Value)) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = lora::test_adapter();
    let dir = write_adapter(&spec, tmp.path());
    let mut config = lora::config_json(&spec);
    edit(&mut config);
    std::fs::write(dir.join("adapter_config.json"), config.to_string()).unwrap();
    (tmp, dir)
}

/// Loading fails with one line that names `file` and says `what`.
fn refused(dir: &Path, file: &Path, what: &str) {
    let message = match load(dir, false) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    };
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains(what), "{message}");
}

#[test]
fn malformed_adapters_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-adapter");
    refused(&missing, &missing, "no such adapter folder");

    let (_t, dir) = adapter_with(|_| {});
    std::fs::remove_file(dir.join("adapter_config.json")).unwrap();
    refused(&dir, &dir.join("adapter_config.json"), "missing");

    let (_t, dir) = adapter_with(|_| {});
    std::fs::remove_file(dir.join("adapter_model.safetensors")).unwrap();
    refused(&dir, &dir.join("adapter_model.safetensors"), "missing");

    let (_t, dir) = adapter_with(|_| {});
    std::fs::write(dir.join("adapter_config.json"), "{\"r\": 8,").unwrap();
    refused(&dir, &dir.join("adapter_config.json"), "not valid JSON");

    let (_t, dir) = adapter_with(|_| {});
    std::fs::write(dir.join("adapter_model.safetensors"), b"not safetensors").unwrap();
    refused(
        &dir,
        &dir.join("adapter_model.safetensors"),
        "not a readable safetensors file",
    );

    // r in the config disagrees with the tensors.
    let (_t, dir) = adapter_with(|c| c["r"] = 4.into());
    refused(
        &dir,
        &dir.join("adapter_model.safetensors"),
        "expected [r, in] with r = 4",
    );

    let (_t, dir) = adapter_with(|c| c["target_modules"] = serde_json::json!(["q_proj", "c_attn"]));
    refused(
        &dir,
        &dir.join("adapter_config.json"),
        "target module `c_attn` is not a module of the base",
    );

    let (_t, dir) = adapter_with(|c| c["target_modules"] = serde_json::json!(r".*\.attn\.c_proj"));
    refused(
        &dir,
        &dir.join("adapter_config.json"),
        "matches no module of the base",
    );

    // Selected by the config but absent from the file.
    let (_t, dir) = adapter_with(|c| {
        c["target_modules"] =
            serde_json::json!(["q_proj", "k_proj", "v_proj", "down_proj", "up_proj"])
    });
    refused(
        &dir,
        &dir.join("adapter_model.safetensors"),
        "no lora_A/lora_B for `model.layers.0.mlp.up_proj`",
    );

    // In the file but not selected by the config.
    let (_t, dir) =
        adapter_with(|c| c["target_modules"] = serde_json::json!(["q_proj", "k_proj", "v_proj"]));
    refused(
        &dir,
        &dir.join("adapter_model.safetensors"),
        "which target_modules (q_proj, k_proj, v_proj) does not select",
    );

    for (key, value, what) in [
        (
            "use_dora",
            serde_json::json!(true),
            "use_dora (DoRA) is not supported",
        ),
        (
            "bias",
            serde_json::json!("all"),
            "bias \"all\" (only \"none\") is not supported",
        ),
        (
            "rank_pattern",
            serde_json::json!({"q_proj": 4}),
            "rank_pattern",
        ),
        ("peft_type", serde_json::json!("IA3"), "peft_type \"IA3\""),
        (
            "modules_to_save",
            serde_json::json!(["lm_head"]),
            "modules_to_save",
        ),
        (
            "target_modules",
            serde_json::json!(["q_proj", "lm_head"]),
            "adapting `lm_head`",
        ),
    ] {
        let (_t, dir) = adapter_with(|c| c[key] = value);
        refused(&dir, &dir.join("adapter_config.json"), what);
    }
}

/// A tensor of the wrong shape for the base (q_proj's A with 575 input features).
#[test]
fn wrong_shapes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = lora::test_adapter();
    let dir = write_adapter(&spec, tmp.path());
    let mut tensors = lora::tensors(&spec);
    let (name, shape, bytes) = &mut tensors[0];
    assert!(
        name.ends_with("layers.0.self_attn.q_proj.lora_A.weight"),
        "{name}"
    );
    shape[1] -= 1;
    bytes.truncate(shape[0] * shape[1] * 4);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, None, &dir.join("adapter_model.safetensors"))
        .unwrap();
    refused(
        &dir,
        &dir.join("adapter_model.safetensors"),
        "`model.layers.0.self_attn.q_proj`: lora_A is [8, 575] and lora_B [576, 8], but the base's map is 576 → 576",
    );
}
