//! The toxicity BiLSTM on candle against the reference outputs shipped with its weights
//! (computed from the original Keras weights by an independent NumPy implementation).

use std::path::PathBuf;

use runners::toxicity::ToxicityBackend;

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("PROBITY_TOXICITY_MODEL").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/models/toxic-comment-classifier-bilstm")
        },
        PathBuf::from,
    );
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is missing",
        dir.display()
    );
    dir
}

#[test]
fn matches_the_reference_outputs() {
    let dir = model_dir();
    let model = ToxicityBackend::load(&dir).unwrap();
    let reference: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference_outputs.json")).unwrap())
            .unwrap();
    let texts: Vec<String> = reference.keys().cloned().collect();
    let got = model.classify(&texts).unwrap();
    let mut worst = 0f64;
    for (text, row) in texts.iter().zip(&got) {
        let expected: Vec<f64> = reference[text]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (g, e) in row.iter().zip(&expected) {
            worst = worst.max((f64::from(*g) - e).abs());
        }
    }
    assert!(worst < 1e-5, "largest difference {worst}");
    // One at a time gives the same as in a batch, up to float summation order.
    let alone = model.classify(&texts[2..3]).unwrap();
    for (a, b) in alone[0].iter().zip(&got[2]) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn tokenization_follows_keras() {
    let model = ToxicityBackend::load(&model_dir()).unwrap();
    let ids = model.token_ids("The, THE!the");
    assert_eq!(ids.len(), 100);
    assert_eq!(&ids[97..], &[1, 1, 1]);
    assert!(ids[..97].iter().all(|&i| i == 0));
    assert!(model.token_ids("").iter().all(|&i| i == 0));
    let long = "the ".repeat(150) + "you";
    assert_eq!(
        model.token_ids(&long)[99],
        6,
        "left truncation keeps the end"
    );
}

#[test]
fn broken_folders_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = ToxicityBackend::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("config.json") && !err.contains('\n'), "{err}");
    let source = model_dir();
    for name in ["config.json", "word_index.json"] {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    let weights = std::fs::read(source.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("model.safetensors"),
        &weights[..weights.len() / 2],
    )
    .unwrap();
    let err = ToxicityBackend::load(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("truncated"),
        "{err}"
    );
}
