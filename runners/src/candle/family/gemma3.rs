//! Gemma 3 (`gemma3_text`): Gemma 2's block with q/k norms and without soft-capping by default,
//! every sixth layer global, the sliding layers with a RoPE base of their own.

use super::{Activation, Sliding, Spec};
use super::{LayerNames, GGUF_LLAMA, HF_LLAMA};

pub(super) const SPEC: Spec = Spec {
    hf_types: &["gemma3_text"],
    gguf_archs: &["gemma3"],
    activation: Activation::GeluTanh,
    norm_plus_one: true,
    embed_scale: true,
    local_rope: true,
    sliding: Sliding::Pattern(6),
    softcap: true,
    query_pre_attn_scalar: true,
    tied_default: true,
    experts: false,
    gguf_interleaved: &[],
    hf: LayerNames {
        ffn_norm: "pre_feedforward_layernorm",
        post_attn_norm: Some("post_attention_layernorm"),
        post_ffn_norm: Some("post_feedforward_layernorm"),
        q_norm: Some("self_attn.q_norm"),
        k_norm: Some("self_attn.k_norm"),
        ..HF_LLAMA
    },
    gguf: LayerNames {
        post_attn_norm: Some("post_attention_norm"),
        post_ffn_norm: Some("post_ffw_norm"),
        q_norm: Some("attn_q_norm"),
        k_norm: Some("attn_k_norm"),
        ..GGUF_LLAMA
    },
};
