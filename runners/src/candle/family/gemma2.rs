//! Gemma 2: (1 + w) RMS norms before and after attention and MLP, GELU (tanh) gate, embeddings
//! scaled by sqrt(d), attention scores and final logits soft-capped (`cap · tanh(x / cap)`), every
//! other layer sliding (layers 0, 2, …), attention scale from `query_pre_attn_scalar`.

use super::{Activation, Sliding, Spec};
use super::{LayerNames, GGUF_LLAMA, HF_LLAMA};

pub(super) const SPEC: Spec = Spec {
    hf_types: &["gemma2"],
    gguf_archs: &["gemma2"],
    activation: Activation::GeluTanh,
    norm_plus_one: true,
    embed_scale: true,
    local_rope: false,
    sliding: Sliding::Pattern(2),
    softcap: true,
    query_pre_attn_scalar: true,
    tied_default: true,
    experts: false,
    gguf_interleaved: &[],
    hf: LayerNames {
        ffn_norm: "pre_feedforward_layernorm",
        post_attn_norm: Some("post_attention_layernorm"),
        post_ffn_norm: Some("post_feedforward_layernorm"),
        ..HF_LLAMA
    },
    gguf: LayerNames {
        post_attn_norm: Some("post_attention_norm"),
        post_ffn_norm: Some("post_ffw_norm"),
        ..GGUF_LLAMA
    },
};
