//! Mixtral: the Mistral block with a sparse mixture of experts in place of the MLP. HF folders in
//! the transformers 5 layout (`mlp.gate` + `mlp.experts.{gate_up,down}_proj`) or the hub's
//! (`block_sparse_moe.gate` + `block_sparse_moe.experts.N.w{1,3,2}`); GGUF files as llama.cpp
//! writes them: architecture `llama` with `llama.expert_count`, `blk.N.ffn_gate_inp` and stacked
//! `blk.N.ffn_{gate,up,down}_exps` (q/k permuted, like Llama's; experts dequantized at load).

use candle_core::Tensor;

use super::{check_shape, Activation, Dims, Sliding, Source, Spec, GGUF_LLAMA, HF_LLAMA};
use crate::candle::model::{Experts, Linear};
use crate::candle::LoadError;

pub(super) const SPEC: Spec = Spec {
    hf_types: &["mixtral"],
    gguf_archs: &[],
    activation: Activation::Silu,
    norm_plus_one: false,
    embed_scale: false,
    local_rope: false,
    sliding: Sliding::Every,
    softcap: false,
    query_pre_attn_scalar: false,
    tied_default: false,
    experts: true,
    gguf_interleaved: &["llama", "mistral"],
    hf: HF_LLAMA,
    gguf: GGUF_LLAMA,
};

fn corrupt(src: &dyn Source, name: &str, e: candle_core::Error) -> LoadError {
    LoadError::Corrupt {
        path: src.shown(name),
        reason: format!("tensor `{name}`: {}", super::super::gguf::one_line(e)),
    }
}

/// The experts of layer `i`: `n` experts, `top_k` run per token; `gguf` for llama.cpp's names.
pub(super) fn load_experts(
    src: &mut dyn Source,
    i: usize,
    dims: Dims,
    n: usize,
    top_k: usize,
    gguf: bool,
) -> Result<Experts, LoadError> {
    let d = dims.d_model;
    if gguf {
        let name = |s: &str| format!("blk.{i}.{s}.weight");
        let router_name = name("ffn_gate_inp");
        check_shape(src, &router_name, &[n, d])?;
        let router = super::one(src.linears(&router_name, &[n])?, src, &router_name)?;
        let (gate_name, up_name, down_name) = (
            name("ffn_gate_exps"),
            name("ffn_up_exps"),
            name("ffn_down_exps"),
        );
        let ff = src
            .shape(&gate_name)
            .and_then(|s| s.get(1).copied())
            .unwrap_or(0);
        check_shape(src, &gate_name, &[n, ff, d])?;
        check_shape(src, &up_name, &[n, ff, d])?;
        check_shape(src, &down_name, &[n, d, ff])?;
        let gate = src.tensor(&gate_name)?;
        let up = src.tensor(&up_name)?;
        let down = src.tensor(&down_name)?;
        let mut experts = Vec::with_capacity(n);
        for e in 0..n {
            let one = |t: &Tensor, name: &str| {
                t.get(e)
                    .and_then(|w| Linear::dense(&w))
                    .map_err(|err| corrupt(src, name, err))
            };
            experts.push([
                one(&gate, &gate_name)?,
                one(&up, &up_name)?,
                one(&down, &down_name)?,
            ]);
        }
        return Ok(Experts {
            router,
            experts,
            top_k,
        });
    }
    let new = format!("model.layers.{i}.mlp.gate.weight");
    let (router_name, fused) = if src.shape(&new).is_some() {
        (new, true)
    } else {
        (
            format!("model.layers.{i}.block_sparse_moe.gate.weight"),
            false,
        )
    };
    check_shape(src, &router_name, &[n, d])?;
    let router = super::one(src.linears(&router_name, &[n])?, src, &router_name)?;
    let mut experts = Vec::with_capacity(n);
    if fused {
        let gu_name = format!("model.layers.{i}.mlp.experts.gate_up_proj");
        let down_name = format!("model.layers.{i}.mlp.experts.down_proj");
        let ff = src
            .shape(&gu_name)
            .and_then(|s| s.get(1).copied())
            .unwrap_or(0)
            / 2;
        check_shape(src, &gu_name, &[n, 2 * ff, d])?;
        check_shape(src, &down_name, &[n, d, ff])?;
        let gate_up = src.tensor(&gu_name)?;
        let down = src.tensor(&down_name)?;
        for e in 0..n {
            let part = |t: &Tensor, start: usize, len: usize| -> candle_core::Result<Linear> {
                Linear::dense(&t.get(e)?.narrow(0, start, len)?)
            };
            let gate = part(&gate_up, 0, ff).map_err(|err| corrupt(src, &gu_name, err))?;
            let up = part(&gate_up, ff, ff).map_err(|err| corrupt(src, &gu_name, err))?;
            let down = part(&down, 0, d).map_err(|err| corrupt(src, &down_name, err))?;
            experts.push([gate, up, down]);
        }
    } else {
        for e in 0..n {
            let name =
                |w: &str| format!("model.layers.{i}.block_sparse_moe.experts.{e}.{w}.weight");
            let ff = src
                .shape(&name("w1"))
                .and_then(|s| s.first().copied())
                .unwrap_or(0);
            let mut get = |w: &str, shape: [usize; 2]| -> Result<Linear, LoadError> {
                let name = name(w);
                check_shape(src, &name, &shape)?;
                let parts = src.linears(&name, &[shape[0]])?;
                super::one(parts, src, &name)
            };
            let gate = get("w1", [ff, d])?;
            let up = get("w3", [ff, d])?;
            let down = get("w2", [d, ff])?;
            experts.push([gate, up, down]);
        }
    }
    Ok(Experts {
        router,
        experts,
        top_k,
    })
}
