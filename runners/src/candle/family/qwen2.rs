//! Qwen 2 (and 2.5): the Llama block with q/k/v biases, NeoX RoPE in GGUF; `use_sliding_window` is
//! refused.

use super::{Activation, Sliding, Spec};
use super::{GGUF_LLAMA, HF_LLAMA};

pub(super) const SPEC: Spec = Spec {
    hf_types: &["qwen2"],
    gguf_archs: &["qwen2"],
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
    hf: HF_LLAMA,
    gguf: GGUF_LLAMA,
};
