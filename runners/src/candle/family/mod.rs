//! The decoder families: one module per family holds its names (HF `model_type`, GGUF
//! `general.architecture`), its tensor names in both layouts and its quirks, as data that the
//! shared config readers (`hf`, `gguf`), the shared layer loader below and the one forward in
//! `model` read. No other file branches on the family.

mod gemma2;
mod gemma3;
mod llama;
mod mistral;
mod mixtral;
mod phi3;
mod qwen2;
mod qwen3;

use candle_core::Tensor;

use super::model::{Biases, Layer, Linear};
use super::LoadError;

/// Which decoder family a model belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// Llama, SmolLM: pre-norm, SiLU gate.
    Llama,
    /// Mistral: Llama with a sliding window on every layer.
    Mistral,
    /// Qwen 2: Llama with q/k/v biases.
    Qwen2,
    /// Qwen 3: Llama with q/k RMS norms per head.
    Qwen3,
    /// Phi-3: fused qkv and gate/up projections, optional sliding window on every layer.
    Phi3,
    /// Gemma 2: (1 + w) norms, post-norms, GELU, scaled embeddings, attention and final logit
    /// soft-capping, every other layer sliding.
    Gemma2,
    /// Mixtral: Mistral with a sparse mixture of experts for the MLP (HF folders).
    Mixtral,
    /// Gemma 3: Gemma 2's block without soft-capping, with q/k norms, five sliding layers in six
    /// with their own RoPE base.
    Gemma3,
}

/// Every family, in the order errors list them.
const ALL: [Family; 8] = [
    Family::Llama,
    Family::Mistral,
    Family::Mixtral,
    Family::Qwen2,
    Family::Qwen3,
    Family::Phi3,
    Family::Gemma2,
    Family::Gemma3,
];

/// The gated MLP's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    Silu,
    GeluTanh,
}

impl Activation {
    /// The `hidden_act` / `hidden_activation` name transformers gives it.
    pub fn hf_name(self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::GeluTanh => "gelu_pytorch_tanh",
        }
    }
}

/// Which layers attend through a sliding window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sliding {
    /// None (a window the config turns on is refused).
    Never,
    /// Every layer, when the config sets a window.
    Every,
    /// Every `n`-th layer is global, the others slide (HF `layer_types` may say so instead).
    Pattern(usize),
}

/// The tensor names of one decoder block, as stems without `.weight` / `.bias`, after the
/// layer prefix (`model.layers.N.` in HF folders, `blk.N.` in GGUF files).
#[derive(Debug)]
pub(crate) struct LayerNames {
    pub prefix: &'static str,
    pub q: &'static str,
    pub k: &'static str,
    pub v: &'static str,
    /// Fused q, k, v rows (Phi-3); `q`, `k`, `v` then unused.
    pub qkv: Option<&'static str>,
    pub o: &'static str,
    pub gate: &'static str,
    pub up: &'static str,
    /// Fused gate and up rows, gate first (Phi-3); `gate`, `up` then unused.
    pub gate_up: Option<&'static str>,
    pub down: &'static str,
    pub attn_norm: &'static str,
    pub ffn_norm: &'static str,
    pub post_attn_norm: Option<&'static str>,
    pub post_ffn_norm: Option<&'static str>,
    pub q_norm: Option<&'static str>,
    pub k_norm: Option<&'static str>,
}

/// The Llama block's names in HF folders.
pub(crate) const HF_LLAMA: LayerNames = LayerNames {
    prefix: "model.layers",
    q: "self_attn.q_proj",
    k: "self_attn.k_proj",
    v: "self_attn.v_proj",
    qkv: None,
    o: "self_attn.o_proj",
    gate: "mlp.gate_proj",
    up: "mlp.up_proj",
    gate_up: None,
    down: "mlp.down_proj",
    attn_norm: "input_layernorm",
    ffn_norm: "post_attention_layernorm",
    post_attn_norm: None,
    post_ffn_norm: None,
    q_norm: None,
    k_norm: None,
};

/// The Llama block's names in GGUF files (llama.cpp's converter).
pub(crate) const GGUF_LLAMA: LayerNames = LayerNames {
    prefix: "blk",
    q: "attn_q",
    k: "attn_k",
    v: "attn_v",
    qkv: None,
    o: "attn_output",
    gate: "ffn_gate",
    up: "ffn_up",
    gate_up: None,
    down: "ffn_down",
    attn_norm: "attn_norm",
    ffn_norm: "ffn_norm",
    post_attn_norm: None,
    post_ffn_norm: None,
    q_norm: None,
    k_norm: None,
};

/// Everything that sets one family apart.
#[derive(Debug)]
pub(crate) struct Spec {
    /// HF `model_type` values.
    pub hf_types: &'static [&'static str],
    /// GGUF `general.architecture` values.
    pub gguf_archs: &'static [&'static str],
    pub activation: Activation,
    /// RMS norms scale by `1 + w` with `w` as HF stores it (GGUF files hold `1 + w` already).
    pub norm_plus_one: bool,
    /// Embeddings are multiplied by `sqrt(d_model)`.
    pub embed_scale: bool,
    /// Sliding layers have a RoPE of their own (`rope_local_base_freq`, `rope.local_freq_base`).
    pub local_rope: bool,
    pub sliding: Sliding,
    /// `attn_logit_softcapping` / `final_logit_softcapping` are read (refused elsewhere).
    pub softcap: bool,
    /// Attention scale from `query_pre_attn_scalar` (Gemma), not `head_dim`.
    pub query_pre_attn_scalar: bool,
    /// `tie_word_embeddings` when config.json does not say.
    pub tied_default: bool,
    /// A mixture of experts replaces the MLP (`num_local_experts`, `num_experts_per_tok`).
    pub experts: bool,
    /// Whether the GGUF converter permuted the q/k rows for adjacent-pair RoPE, per
    /// architecture name (`llama`, `mistral`); the others keep the HF layout (NeoX RoPE).
    pub gguf_interleaved: &'static [&'static str],
    pub hf: LayerNames,
    pub gguf: LayerNames,
}

impl Family {
    pub fn spec(self) -> &'static Spec {
        match self {
            Family::Llama => &llama::SPEC,
            Family::Mistral => &mistral::SPEC,
            Family::Mixtral => &mixtral::SPEC,
            Family::Qwen2 => &qwen2::SPEC,
            Family::Qwen3 => &qwen3::SPEC,
            Family::Phi3 => &phi3::SPEC,
            Family::Gemma2 => &gemma2::SPEC,
            Family::Gemma3 => &gemma3::SPEC,
        }
    }

    /// The family of an HF `model_type`.
    pub fn from_hf(model_type: &str) -> Option<Family> {
        ALL.into_iter()
            .find(|f| f.spec().hf_types.contains(&model_type))
    }

    /// The family of a GGUF `general.architecture`.
    pub fn from_gguf(arch: &str) -> Option<Family> {
        ALL.into_iter()
            .find(|f| f.spec().gguf_archs.contains(&arch))
    }
}

/// The architectures the candle backend loads, for errors: GGUF names and HF model types.
pub(crate) fn supported() -> String {
    let gguf: Vec<&str> = ALL
        .iter()
        .flat_map(|f| f.spec().gguf_archs.iter().copied())
        .collect();
    let mut hf: Vec<&str> = ALL
        .iter()
        .flat_map(|f| f.spec().hf_types.iter().copied())
        .collect();
    hf.push("bert");
    format!("GGUF {}; config.json {}", gguf.join(", "), hf.join(", "))
}

/// The sizes a block's tensors must have.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

/// Where a layer's tensors come from: an HF folder's safetensors or a GGUF file.
pub(crate) trait Source {
    /// The file errors about tensor `name` name (the folder when it cannot tell).
    fn shown(&self, name: &str) -> String;
    /// The shape of a tensor, `None` when it is missing.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// A matrix `(out, in)` as linear maps over consecutive row ranges of the given sizes.
    fn linears(&mut self, name: &str, rows: &[usize]) -> Result<Vec<Linear>, LoadError>;
    /// A vector in f32 (norm weights).
    fn norm(&mut self, name: &str) -> Result<Tensor, LoadError>;
    /// A vector in the working dtype (biases).
    fn bias(&mut self, name: &str) -> Result<Tensor, LoadError>;
    /// Any tensor in the working dtype (stacked expert matrices).
    fn tensor(&mut self, name: &str) -> Result<Tensor, LoadError>;
}

/// The error for a tensor that is missing or has the wrong shape.
pub(crate) fn check_shape(
    src: &dyn Source,
    name: &str,
    expected: &[usize],
) -> Result<(), LoadError> {
    match src.shape(name) {
        None => Err(LoadError::Corrupt {
            path: src.shown(name),
            reason: format!("tensor `{name}` is missing"),
        }),
        Some(found) if found != expected => Err(LoadError::Corrupt {
            path: src.shown(name),
            reason: format!("tensor `{name}` has shape {found:?}, expected {expected:?}"),
        }),
        Some(_) => Ok(()),
    }
}

fn rows_of(src: &dyn Source, name: &str) -> Result<usize, LoadError> {
    match src.shape(name) {
        Some(shape) => Ok(shape.first().copied().unwrap_or(0)),
        None => Err(LoadError::Corrupt {
            path: src.shown(name),
            reason: format!("tensor `{name}` is missing"),
        }),
    }
}

fn one(mut v: Vec<Linear>, src: &dyn Source, name: &str) -> Result<Linear, LoadError> {
    v.pop().ok_or_else(|| LoadError::Corrupt {
        path: src.shown(name),
        reason: format!("tensor `{name}` is empty"),
    })
}

/// Loads decoder block `i` by the names `n`, checking every shape against `dims`; with
/// `experts` (count, used per token), a Mixtral mixture of experts in place of the MLP.
pub(crate) fn load_layer(
    src: &mut dyn Source,
    n: &LayerNames,
    i: usize,
    dims: Dims,
    experts: Option<(usize, usize)>,
) -> Result<Layer, LoadError> {
    let w = |stem: &str| format!("{}.{i}.{stem}.weight", n.prefix);
    let b = |stem: &str| format!("{}.{i}.{stem}.bias", n.prefix);
    let d = dims.d_model;
    let (q_rows, kv_rows) = (
        dims.n_heads * dims.head_dim,
        dims.n_kv_heads * dims.head_dim,
    );
    let (q, k, v) = match n.qkv {
        Some(stem) => {
            let name = w(stem);
            check_shape(src, &name, &[q_rows + 2 * kv_rows, d])?;
            let mut parts = src.linears(&name, &[q_rows, kv_rows, kv_rows])?.into_iter();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(q), Some(k), Some(v)) => (q, k, v),
                _ => {
                    return Err(LoadError::Corrupt {
                        path: src.shown(&name),
                        reason: format!("tensor `{name}` did not split into q, k, v"),
                    })
                }
            }
        }
        None => {
            let mut get = |stem: &str, rows: usize| -> Result<Linear, LoadError> {
                let name = w(stem);
                check_shape(src, &name, &[rows, d])?;
                let parts = src.linears(&name, &[rows])?;
                one(parts, src, &name)
            };
            (get(n.q, q_rows)?, get(n.k, kv_rows)?, get(n.v, kv_rows)?)
        }
    };
    let o_name = w(n.o);
    check_shape(src, &o_name, &[d, q_rows])?;
    let o = one(src.linears(&o_name, &[d])?, src, &o_name)?;
    let moe = match experts {
        Some((count, top_k)) => Some(mixtral::load_experts(
            src,
            i,
            dims,
            count,
            top_k,
            n.prefix == GGUF_LLAMA.prefix,
        )?),
        None => None,
    };
    let empty = || -> Result<Linear, LoadError> {
        Tensor::zeros((0, 0), candle_core::DType::F32, &candle_core::Device::Cpu)
            .map(Linear::Dense)
            .map_err(|e| LoadError::Corrupt {
                path: src.shown(n.o),
                reason: super::gguf::one_line(e),
            })
    };
    let (gate, up, down) = if moe.is_some() {
        (empty()?, empty()?, empty()?)
    } else {
        dense_mlp(src, n, i, dims)?
    };
    let mut norm = |stem: &str, size: usize| -> Result<Tensor, LoadError> {
        let name = w(stem);
        check_shape(src, &name, &[size])?;
        src.norm(&name)
    };
    let attn_norm = norm(n.attn_norm, d)?;
    let ffn_norm = norm(n.ffn_norm, d)?;
    let mut optional = |stem: Option<&str>, size: usize| -> Result<Option<Tensor>, LoadError> {
        stem.map(|s| norm(s, size)).transpose()
    };
    let post_attn_norm = optional(n.post_attn_norm, d)?;
    let post_ffn_norm = optional(n.post_ffn_norm, d)?;
    let q_norm = optional(n.q_norm, dims.head_dim)?;
    let k_norm = optional(n.k_norm, dims.head_dim)?;
    // Biases where the weights have them (Qwen 2: q, k, v; Llama with `attention_bias`: all).
    let mut bias = |stem: Option<&str>, size: usize| -> Result<Option<Tensor>, LoadError> {
        let Some(stem) = stem else { return Ok(None) };
        let name = b(stem);
        if src.shape(&name).is_none() {
            return Ok(None);
        }
        check_shape(src, &name, &[size])?;
        src.bias(&name).map(Some)
    };
    let fused = n.qkv.is_some();
    let bias = Biases {
        q: bias((!fused).then_some(n.q), q_rows)?,
        k: bias((!fused).then_some(n.k), kv_rows)?,
        v: bias((!fused).then_some(n.v), kv_rows)?,
        o: bias(Some(n.o), d)?,
    };
    Ok(Layer {
        q,
        k,
        v,
        o,
        gate,
        up,
        down,
        attn_norm,
        ffn_norm,
        q_norm,
        k_norm,
        post_attn_norm,
        post_ffn_norm,
        bias,
        experts: moe,
    })
}

/// The dense gated MLP of block `i`: gate, up (or both fused) and down.
fn dense_mlp(
    src: &mut dyn Source,
    n: &LayerNames,
    i: usize,
    dims: Dims,
) -> Result<(Linear, Linear, Linear), LoadError> {
    let w = |stem: &str| format!("{}.{i}.{stem}.weight", n.prefix);
    let d = dims.d_model;
    let (gate, up, ff) = match n.gate_up {
        Some(stem) => {
            let name = w(stem);
            let rows = rows_of(src, &name)?;
            let ff = rows / 2;
            check_shape(src, &name, &[2 * ff.max(1), d])?;
            let mut parts = src.linears(&name, &[ff, ff])?.into_iter();
            match (parts.next(), parts.next()) {
                (Some(g), Some(u)) => (g, u, ff),
                _ => {
                    return Err(LoadError::Corrupt {
                        path: src.shown(&name),
                        reason: format!("tensor `{name}` did not split into gate and up"),
                    })
                }
            }
        }
        None => {
            let gate_name = w(n.gate);
            let ff = rows_of(src, &gate_name)?;
            check_shape(src, &gate_name, &[ff, d])?;
            let gate = one(src.linears(&gate_name, &[ff])?, src, &gate_name)?;
            let up_name = w(n.up);
            check_shape(src, &up_name, &[ff, d])?;
            let up = one(src.linears(&up_name, &[ff])?, src, &up_name)?;
            (gate, up, ff)
        }
    };
    let down_name = w(n.down);
    check_shape(src, &down_name, &[d, ff])?;
    let down = one(src.linears(&down_name, &[d])?, src, &down_name)?;
    Ok((gate, up, down))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_maps_to_one_family() {
        for f in ALL {
            for t in f.spec().hf_types {
                assert_eq!(Family::from_hf(t), Some(f));
            }
            for a in f.spec().gguf_archs {
                assert_eq!(Family::from_gguf(a), Some(f));
            }
        }
        assert_eq!(Family::from_hf("mamba"), None);
        assert!(supported().contains("qwen3"));
    }
}
