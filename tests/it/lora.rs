//! `probity run --model BASE --adapter DIR` end to end on SmolLM2 with the test LoRA adapter:
//! the manifest names the adapter and hashes its files beside the base's, `probity compare` of
//! the base run against it shows "What the fine-tune changed" with both sides' files, and a bad
//! adapter is one line with exit code 2.

#![allow(clippy::unwrap_used)]

use crate::support::cli;
use cli::{fails, probity, read_json};

use std::path::Path;

const BASE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn run(out: &Path, adapter: Option<&Path>) {
    let model = fixtures::model(BASE);
    let datasets = fixtures::datasets();
    let mut args = vec![
        "run".to_string(),
        "--suite".into(),
        "bias-core".into(),
        "--model".into(),
        model.display().to_string(),
        "--datasets".into(),
        datasets.display().to_string(),
        "--limit".into(),
        "3".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    if let Some(adapter) = adapter {
        args.extend(["--adapter".to_string(), adapter.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = probity(&args);
    crate::support::cli::assert_success(&output);
}

#[test]
fn a_run_with_an_adapter_records_it_and_compares_with_the_base() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixtures::lora::test_adapter();
    let adapter = tmp.path().join(spec.name);
    fixtures::lora::write(&spec, &adapter).unwrap();
    run(&tmp.path().join("base"), None);
    run(&tmp.path().join("tuned"), Some(&adapter));

    let manifest = read_json(&tmp.path().join("tuned/manifest.json"));
    let model = &manifest["model"];
    assert_eq!(
        model["model"],
        "SmolLM2-135M-Instruct.Q4_1+lora-smollm2-test"
    );
    let files = model["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(paths[0].ends_with(BASE), "{paths:?}");
    assert!(
        paths[1].ends_with("lora-smollm2-test/adapter_config.json"),
        "{paths:?}"
    );
    assert!(
        paths[2].ends_with("lora-smollm2-test/adapter_model.safetensors"),
        "{paths:?}"
    );
    let reference = read_json(&fixtures::data("lora_reference_smollm2.json"));
    assert_eq!(
        files[2]["sha256"],
        reference["adapters"][0]["sha256"]["adapter_model.safetensors"]
    );
    assert!(model["details"]["adapter"]
        .as_str()
        .unwrap()
        .contains("merged into 120 f32 weights"));

    let out = tmp.path().join("compare");
    let output = probity(&[
        "compare",
        &tmp.path().join("base").display().to_string(),
        &tmp.path().join("tuned").display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert!(output.status.success());
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("## What the fine-tune changed"), "{md}");
    let sha = files[2]["sha256"].as_str().unwrap();
    assert!(
        md.contains(&format!("adapter_model.safetensors` sha256 `{sha}`")),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
    assert!(html.contains("What the fine-tune changed") && html.contains(sha));
}

#[test]
fn a_bad_adapter_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixtures::model(BASE).display().to_string();
    let missing = tmp.path().join("nowhere");
    let datasets = fixtures::datasets().display().to_string();
    let args = |adapter: &Path| {
        vec![
            "run".to_string(),
            "--suite".into(),
            "bias-core".into(),
            "--model".into(),
            model.clone(),
            "--datasets".into(),
            datasets.clone(),
            "--adapter".into(),
            adapter.display().to_string(),
            "--out".into(),
            tmp.path().join("run").display().to_string(),
        ]
    };
    let a = args(&missing);
    let line = fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        line.contains(&missing.display().to_string()) && line.contains("no such adapter folder"),
        "{line}"
    );

    let spec = fixtures::lora::test_adapter();
    let adapter = tmp.path().join(spec.name);
    fixtures::lora::write(&spec, &adapter).unwrap();
    let config = adapter.join("adapter_config.json");
    let mut json = fixtures::lora::config_json(&spec);
    json["target_modules"] = serde_json::json!(["q_proj", "c_attn"]);
    std::fs::write(&config, json.to_string()).unwrap();
    let a = args(&adapter);
    let line = fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        line.contains(&config.display().to_string())
            && line.contains("`c_attn` is not a module of the base"),
        "{line}"
    );
}
