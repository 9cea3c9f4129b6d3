//! Mistral: the Llama block with a sliding window on every layer (`sliding_window`).

use super::{Activation, Sliding, Spec};
use super::{GGUF_LLAMA, HF_LLAMA};

pub(super) const SPEC: Spec = Spec {
    hf_types: &["mistral"],
    gguf_archs: &["mistral"],
    activation: Activation::Silu,
    norm_plus_one: false,
    embed_scale: false,
    local_rope: false,
    sliding: Sliding::Every,
    softcap: false,
    query_pre_attn_scalar: false,
    tied_default: false,
    experts: false,
    gguf_interleaved: &["mistral"],
    hf: HF_LLAMA,
    gguf: GGUF_LLAMA,
};
