//! GCG through our own forward against PyTorch autograd on the same weights
//! (`scripts/gcg-reference.py`, nanogcg 0.3.0's code): the chat-template split, the target
//! loss of a suffix, the token gradient, the allowed-token filter, and one step's choice among
//! the same candidates.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use crate::candle_common::{fixture, qwen05, smollm2};
use runners::candle::{CandleBackend, SearchIds};

/// Target losses (mean cross-entropy, nats) agree within this.
const LOSS_TOLERANCE: f64 = 1e-4;

/// A gradient entry agrees within this fraction of its row's largest |gradient|.
const GRAD_TOLERANCE: f64 = 1e-3;

/// Of each position's reference top-k substitutions, at least this many are in ours
/// (near-ties at the boundary may swap).
const TOPK_OVERLAP: usize = 14;

fn ids(v: &serde_json::Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

fn check(backend: &Mutex<CandleBackend>, reference: &serde_json::Value) {
    let backend = backend
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let r = &reference["ids"];
    let search = backend
        .search_ids(
            None,
            reference["prompt"].as_str().unwrap(),
            reference["target"].as_str().unwrap(),
        )
        .unwrap();
    assert_eq!(
        search,
        SearchIds {
            before: ids(&r["before"]),
            after: ids(&r["after"]),
            target: ids(&r["target"]),
        },
        "the chat template split at the suffix"
    );
    let suffix = ids(&r["suffix"]);
    assert_eq!(
        backend.encode(reference["init"].as_str().unwrap()).unwrap(),
        suffix
    );

    // The loss and gradient of the initial suffix.
    let (loss, grad) = backend.suffix_gradient(&search, &suffix).unwrap();
    let expected = reference["loss"].as_f64().unwrap();
    assert!(
        (f64::from(loss) - expected).abs() <= LOSS_TOLERANCE,
        "loss {loss} vs transformers {expected}"
    );
    let vocab = reference["vocab"].as_u64().unwrap() as usize;
    assert_eq!(grad.len(), suffix.len() * vocab);
    let allowed = backend.allowed_suffix_tokens("ascii").unwrap();
    let not_allowed = allowed.iter().filter(|a| !**a).count();
    assert_eq!(
        not_allowed as u64,
        reference["not_allowed"].as_u64().unwrap(),
        "ids excluded by the ASCII filter"
    );
    let topk = reference["topk"].as_u64().unwrap() as usize;
    let mut worst_grad = 0f64;
    let mut worst_loss = (f64::from(loss) - expected).abs();
    for (p, row) in reference["grad"].as_array().unwrap().iter().enumerate() {
        let ours = &grad[p * vocab..(p + 1) * vocab];
        let scale = row["max_abs"].as_f64().unwrap();
        let top = ids(&row["top_ids"]);
        for (&id, g) in top.iter().zip(row["grad_at_top"].as_array().unwrap()) {
            let g = g.as_f64().unwrap();
            let d = (f64::from(ours[id as usize]) - g).abs();
            worst_grad = worst_grad.max(d / scale);
            assert!(
                d <= GRAD_TOLERANCE * scale,
                "position {p}, token {id}: gradient {} vs {g} (row scale {scale})",
                ours[id as usize]
            );
        }
        let mut mine: Vec<u32> = (0..vocab as u32).filter(|&i| allowed[i as usize]).collect();
        mine.sort_by(|&a, &b| ours[a as usize].total_cmp(&ours[b as usize]));
        mine.truncate(topk);
        let overlap = top.iter().filter(|i| mine.contains(i)).count();
        assert!(
            overlap >= TOPK_OVERLAP,
            "position {p}: top-{topk} overlap {overlap} ({mine:?} vs {top:?})"
        );
    }

    // One step: the same candidates, their losses through the batched forward with the
    // prefix run once, and the same best one.
    let candidates: Vec<Vec<u32>> =
        serde_json::from_value(reference["candidates"].clone()).unwrap();
    let scored = backend.suffix_losses(&search, &candidates).unwrap();
    let expected: Vec<f64> = serde_json::from_value(reference["candidate_losses"].clone()).unwrap();
    for (i, ((l, _), e)) in scored.iter().zip(&expected).enumerate() {
        worst_loss = worst_loss.max((f64::from(*l) - e).abs());
        assert!(
            (f64::from(*l) - e).abs() <= LOSS_TOLERANCE,
            "candidate {i}: loss {l} vs transformers {e}"
        );
    }
    let best = scored
        .iter()
        .enumerate()
        .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .unwrap()
        .0;
    assert_eq!(
        best as u64,
        reference["best"].as_u64().unwrap(),
        "the best candidate"
    );
    eprintln!(
        "{}: worst loss difference {worst_loss:.2e} nats, worst gradient difference {worst_grad:.2e} of the row scale",
        reference["model"]
    );
    // The gradient path and the batched path give one loss for one suffix.
    let again = backend
        .suffix_losses(&search, std::slice::from_ref(&suffix))
        .unwrap();
    assert!((f64::from(again[0].0) - f64::from(loss)).abs() <= LOSS_TOLERANCE);
}

#[test]
fn smollm2_gcg_gradient_loss_and_step_match_pytorch() {
    check(smollm2(), &fixture("gcg_reference_smollm2.json"));
}

#[test]
fn qwen05_gcg_gradient_loss_and_step_match_pytorch() {
    check(qwen05(), &fixture("gcg_reference_qwen0.5b.json"));
}
