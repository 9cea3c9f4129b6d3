//! Load errors of the candle backend: each is one line that names the file and the problem.

#![allow(clippy::unwrap_used)]

use crate::candle_common;

use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use runners::candle::{CandleBackend, CandleOptions, LoadError};

fn load(path: &Path) -> LoadError {
    match CandleBackend::load(path, &CandleOptions::default()) {
        Ok(_) => panic!("{} loaded, but an error was expected", path.display()),
        Err(e) => e,
    }
}

/// Checks that the message is one line, names the file and contains `what`.
fn check(error: &LoadError, path: &Path, what: &str) {
    let message = error.to_string();
    assert!(!message.contains('\n'), "not one line: {message:?}");
    assert!(
        message.contains(&path.display().to_string()),
        "does not name the file: {message}"
    );
    assert!(message.contains(what), "expected {what:?} in: {message}");
}

/// A tiny GGUF with the given metadata and a one-layer Llama's tensors.
fn write_gguf(path: &Path, metadata: &[(&str, gguf_file::Value)]) {
    let (vocab, d, kv) = (8usize, 8usize, 4usize);
    let t = |shape: &[usize]| {
        QTensor::quantize(
            &Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu).unwrap(),
            GgmlDType::F32,
        )
        .unwrap()
    };
    let tensors = vec![
        ("token_embd.weight", t(&[vocab, d])),
        ("output_norm.weight", t(&[d])),
        ("blk.0.attn_norm.weight", t(&[d])),
        ("blk.0.ffn_norm.weight", t(&[d])),
        ("blk.0.attn_q.weight", t(&[d, d])),
        ("blk.0.attn_k.weight", t(&[kv, d])),
        ("blk.0.attn_v.weight", t(&[kv, d])),
        ("blk.0.attn_output.weight", t(&[d, d])),
        ("blk.0.ffn_gate.weight", t(&[16, d])),
        ("blk.0.ffn_up.weight", t(&[16, d])),
        ("blk.0.ffn_down.weight", t(&[d, 16])),
    ];
    let meta: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (*k, v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta, &tensors).unwrap();
}

fn llama_metadata() -> Vec<(&'static str, gguf_file::Value)> {
    use gguf_file::Value;
    vec![
        ("llama.block_count", Value::U32(1)),
        ("llama.embedding_length", Value::U32(8)),
        ("llama.attention.head_count", Value::U32(2)),
        ("llama.attention.head_count_kv", Value::U32(1)),
        ("llama.context_length", Value::U32(16)),
    ]
}

#[test]
fn missing_file() {
    let path = Path::new("/nonexistent/model.gguf");
    check(&load(path), path, "no such file");
}

#[test]
fn not_a_gguf_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, "this is not a model\n").unwrap();
    check(&load(&path), &path, "not a readable GGUF file");
}

#[test]
fn truncated_gguf_header_and_data() {
    let source = candle_common::model_path(candle_common::SMOLLM2, "smollm2");
    let bytes = std::fs::read(source).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, len, what) in [
        ("header.gguf", 1 << 20, "not a readable GGUF file"),
        ("data.gguf", 20 << 20, "tensor"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes[..len]).unwrap();
        check(&load(&path), &path, what);
        check(&load(&path), &path, "corrupt or truncated");
    }
}

#[test]
fn missing_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let mut metadata = llama_metadata();
    metadata.push((
        "general.architecture",
        gguf_file::Value::String("llama".into()),
    ));
    write_gguf(&path, &metadata);
    check(
        &load(&path),
        &path,
        "no usable tokenizer: missing metadata key `tokenizer.ggml.model`",
    );
}

#[test]
fn unsupported_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let mut metadata = llama_metadata();
    metadata.push((
        "general.architecture",
        gguf_file::Value::String("mamba".into()),
    ));
    write_gguf(&path, &metadata);
    check(&load(&path), &path, "unsupported architecture `mamba`");
}

#[test]
fn unknown_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.bin");
    std::fs::write(&path, "x").unwrap();
    check(&load(&path), &path, "neither a .gguf file nor a folder");
}

#[test]
fn bad_device_and_dtype() {
    let path = candle_common::model_path(candle_common::SMOLLM2, "smollm2");
    let options = CandleOptions {
        device: "tpu".into(),
        ..CandleOptions::default()
    };
    let message = CandleBackend::load(&path, &options)
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("device `tpu`"), "{message}");
    let options = CandleOptions {
        dtype: Some("f8".into()),
        ..CandleOptions::default()
    };
    let message = CandleBackend::load(&path, &options)
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("dtype `f8`"), "{message}");
}

#[test]
fn bad_weights_mode() {
    let path = candle_common::model_path(candle_common::SMOLLM2, "smollm2");
    let with = |weights: &str, dtype: Option<&str>| {
        let options = CandleOptions {
            weights: Some(weights.into()),
            dtype: dtype.map(str::to_string),
            ..CandleOptions::default()
        };
        CandleBackend::load(&path, &options).err().unwrap()
    };
    check(
        &with("q3", None),
        &path,
        "--weights q3: expected quantized, f32, bf16 or f16",
    );
    check(
        &with("f32", Some("bf16")),
        &path,
        "conflicts with --dtype bf16",
    );
    check(
        &with("quantized", Some("bf16")),
        &path,
        "runs with f32 activations",
    );
    // An HF folder has no blocks to keep.
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data/tiny-mlm");
    let options = CandleOptions {
        weights: Some("quantized".into()),
        ..CandleOptions::default()
    };
    let error = CandleBackend::load(&folder, &options).err().unwrap();
    check(&error, &folder, "needs a GGUF file");
}

/// A GGUF whose tensor has a GGML type candle cannot read (IQ4_NL, id 20) is refused by name.
#[test]
fn unsupported_ggml_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iq4.gguf");
    write_gguf(&path, &llama_metadata());
    let mut bytes = std::fs::read(&path).unwrap();
    // The tensor info of blk.0.attn_q.weight: name, 2 dimensions (u32), two u64 sizes, then
    // the type (u32, 0 = F32).
    let name = b"blk.0.attn_q.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let type_at = at + 4 + 2 * 8;
    assert_eq!(bytes[type_at..type_at + 4], 0u32.to_le_bytes());
    bytes[type_at..type_at + 4].copy_from_slice(&20u32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    check(&load(&path), &path, "GGML tensor type IQ4_NL (id 20");
}

/// A tensor whose shape disagrees with the metadata is named with both shapes.
#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let mut metadata: Vec<_> = llama_metadata()
        .into_iter()
        .filter(|(k, _)| *k != "llama.attention.head_count_kv")
        .collect();
    metadata.push(("llama.attention.head_count_kv", gguf_file::Value::U32(2)));
    metadata.push((
        "tokenizer.ggml.model",
        gguf_file::Value::String("gpt2".into()),
    ));
    let tokens = (0..8).map(|i| gguf_file::Value::String(format!("t{i}")));
    metadata.push((
        "tokenizer.ggml.tokens",
        gguf_file::Value::Array(tokens.collect()),
    ));
    metadata.push(("tokenizer.ggml.merges", gguf_file::Value::Array(vec![])));
    metadata.push((
        "general.architecture",
        gguf_file::Value::String("llama".into()),
    ));
    write_gguf(&path, &metadata);
    check(
        &load(&path),
        &path,
        "tensor `blk.0.attn_k.weight` has shape [4, 8], expected [8, 8]",
    );
}
