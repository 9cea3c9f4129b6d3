//! Llama (and SmolLM 2): pre-norm blocks, SiLU gate, attention biases where the weights have them
//! (`attention_bias`); llama.cpp permutes q/k rows for adjacent-pair RoPE.

use super::{Activation, Sliding, Spec};
use super::{GGUF_LLAMA, HF_LLAMA};

pub(super) const SPEC: Spec = Spec {
    hf_types: &["llama"],
    gguf_archs: &["llama"],
    activation: Activation::Silu,
    norm_plus_one: false,
    embed_scale: false,
    local_rope: false,
    sliding: Sliding::Never,
    softcap: false,
    query_pre_attn_scalar: false,
    tied_default: false,
    experts: false,
    gguf_interleaved: &["llama"],
    hf: HF_LLAMA,
    gguf: GGUF_LLAMA,
};
