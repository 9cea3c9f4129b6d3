//! Qwen 3: the Llama block without biases, with an RMS norm over each head of q and k before RoPE.

use super::{Activation, Sliding, Spec};
use super::{LayerNames, GGUF_LLAMA, HF_LLAMA};

pub(super) const SPEC: Spec = Spec {
    hf_types: &["qwen3"],
    gguf_archs: &["qwen3"],
    activation: Activation::Silu,
    norm_plus_one: false,
    embed_scale: false,
    local_rope: false,
    sliding: Sliding::Never,
    softcap: false,
    query_pre_attn_scalar: false,
    tied_default: false,
    experts: false,
    gguf_interleaved: &[],
    hf: LayerNames {
        q_norm: Some("self_attn.q_norm"),
        k_norm: Some("self_attn.k_norm"),
        ..HF_LLAMA
    },
    gguf: LayerNames {
        q_norm: Some("attn_q_norm"),
        k_norm: Some("attn_k_norm"),
        ..GGUF_LLAMA
    },
};
