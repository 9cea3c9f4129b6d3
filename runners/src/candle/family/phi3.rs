//! Phi-3: q, k, v in one matrix (`qkv_proj`, GGUF `attn_qkv`) and gate and up in one
//! (`gate_up_proj`, GGUF `ffn_up`, gate rows first), split at load; a sliding window on every layer
//! where the config sets one.

use super::{Activation, Sliding, Spec};
use super::{LayerNames, GGUF_LLAMA, HF_LLAMA};

pub(super) const SPEC: Spec = Spec {
    hf_types: &["phi3"],
    gguf_archs: &["phi3"],
    activation: Activation::Silu,
    norm_plus_one: false,
    embed_scale: false,
    local_rope: false,
    sliding: Sliding::Every,
    softcap: false,
    query_pre_attn_scalar: false,
    tied_default: false,
    experts: false,
    gguf_interleaved: &[],
    hf: LayerNames {
        qkv: Some("self_attn.qkv_proj"),
        gate_up: Some("mlp.gate_up_proj"),
        ..HF_LLAMA
    },
    gguf: LayerNames {
        qkv: Some("attn_qkv"),
        gate_up: Some("ffn_up"),
        ..GGUF_LLAMA
    },
};
