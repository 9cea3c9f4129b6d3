//! Our batched decoder forward (every family of `family`, whose quirks it reads as data) with per-row positions, a key mask
//! built from those positions, a KV cache whose rows can leave, and the LM head applied only
//! where logits are needed.
//!
//! candle-transformers' decoders return last-position logits only and build no padding mask, so
//! they cannot score a batch of texts of mixed lengths; this file is the one forward both scoring
//! and generation use. Weights are dense tensors (dequantized at load) or GGUF blocks kept
//! quantized (`Linear::Quantized`, `Vocab::Quantized`).

use std::sync::Arc;

use candle_core::quantized::{ggml_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor, D};

/// A large negative number used for masked attention scores: finite, so a row whose keys are all
/// masked (a padding query) yields a harmless uniform average instead of NaN.
const MASKED: f32 = -1.0e30;

/// Attention scores held at once, in floats (64 Mi floats: 256 MiB in f32).
const ATTENTION_BUDGET: usize = 1 << 26;

/// Vocabulary rows of a quantized output head without a fast kernel expanded to f32 at once.
const HEAD_SLICE: usize = 8192;

/// A quantized weight multiplies at least this many rows as one f32 gemm, the weight dequantized
/// just before (one weight at a time); fewer rows run candle's quantized matmul, activations
/// quantized to Q8 as llama.cpp does. Measured on Qwen2.5-1.5B's Q4_K and Q6_K weights
/// (`cargo run -p runners --example quantized_matmul`, docs/backends/candle.md "Weights").
pub(crate) const WIDE_ROWS: usize = 96;

/// A quantized matrix `(n, k)` held as its GGUF blocks in two pieces, rows `0..n - 1` and row
/// `n - 1`. candle 0.11 keeps, beside the blocks of every matrix whose row count is a multiple
/// of 16, a repacked copy for its x86 tiled kernels (Q4_K: 1.33×, Q6_K: 1.52× the blocks) on
/// first use; a piece of `n - 1` rows is never repacked, so the model stays near its file's size.
pub(crate) struct Blocks {
    main: Arc<QTensor>,
    last: Option<Arc<QTensor>>,
}

impl Blocks {
    pub fn new(q: QTensor) -> candle_core::Result<Blocks> {
        let (rows, _) = q.shape().dims2()?;
        if rows < 2 || rows % 16 != 0 {
            return Ok(Blocks {
                main: Arc::new(q),
                last: None,
            });
        }
        Ok(Blocks {
            main: Arc::new(qrows(&q, 0, rows - 1)?),
            last: Some(Arc::new(qrows(&q, rows - 1, rows)?)),
        })
    }

    /// `(out, in)`.
    pub fn dims(&self) -> candle_core::Result<(usize, usize)> {
        let (rows, cols) = self.main.shape().dims2()?;
        Ok((rows + usize::from(self.last.is_some()), cols))
    }

    pub fn dtype(&self) -> GgmlDType {
        self.main.dtype()
    }

    /// The weight `(out, in)` in f32.
    pub fn dequantize(&self, device: &Device) -> candle_core::Result<Tensor> {
        let main = self.main.dequantize(device)?;
        match &self.last {
            Some(last) => Tensor::cat(&[main, last.dequantize(device)?], 0),
            None => Ok(main),
        }
    }

    /// `x W^T` for `x` `(m, in)`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.dim(0)? >= WIDE_ROWS || !has_fast_kernel(self.dtype()) {
            let dense = self.dequantize(x.device())?.to_dtype(x.dtype())?;
            return x.matmul(&dense.t()?);
        }
        let main = QMatMul::QTensor(self.main.clone()).forward(x)?;
        match &self.last {
            Some(last) => Tensor::cat(&[main, QMatMul::QTensor(last.clone()).forward(x)?], 1),
            None => Ok(main),
        }
    }
}

/// The GGML block formats with SIMD kernels in candle's CPU quantized matmul. Other formats
/// kept quantized are dequantized for every product.
pub(crate) fn has_fast_kernel(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_0
            | GgmlDType::Q8_0
            | GgmlDType::Q2K
            | GgmlDType::Q3K
            | GgmlDType::Q4K
            | GgmlDType::Q5K
            | GgmlDType::Q6K
            | GgmlDType::Q8K
    )
}

/// Rows `start..end` of a quantized matrix `(rows, cols)` as a quantized matrix of their own
/// (each row is whole blocks: GGUF rows never share a block).
pub(crate) fn qrows(q: &QTensor, start: usize, end: usize) -> candle_core::Result<QTensor> {
    let (_, cols) = q.shape().dims2()?;
    let dtype = q.dtype();
    let row_bytes = cols / dtype.block_size() * dtype.type_size();
    let data = q.data()?;
    let bytes = data
        .get(start * row_bytes..end * row_bytes)
        .ok_or_else(|| candle_core::Error::Msg(format!("rows {start}..{end} out of range")))?;
    ggml_file::qtensor_from_ggml(dtype, bytes, vec![end - start, cols], &q.device())
}

/// The given rows of a quantized matrix, dequantized: `(ids.len(), cols)` in f32.
fn qgather(q: &QTensor, ids: &[u32], device: &Device) -> candle_core::Result<Tensor> {
    let (rows, cols) = q.shape().dims2()?;
    let dtype = q.dtype();
    let row_bytes = cols / dtype.block_size() * dtype.type_size();
    let data = q.data()?;
    let mut bytes = Vec::with_capacity(ids.len() * row_bytes);
    for &id in ids {
        let id = id as usize;
        if id >= rows {
            candle_core::bail!("token id {id} outside the vocabulary of {rows}");
        }
        bytes.extend_from_slice(&data[id * row_bytes..(id + 1) * row_bytes]);
    }
    ggml_file::qtensor_from_ggml(dtype, &bytes, vec![ids.len(), cols], &Device::Cpu)?
        .dequantize(&Device::Cpu)?
        .to_device(device)
}

/// The token embeddings and the output head.
pub(crate) enum Vocab {
    /// Input embeddings `(V, d)` (`None` when tied to the head, whose transpose serves for
    /// lookups too) and the head transposed, `(d, V)` contiguous.
    Dense {
        embed: Option<Tensor>,
        head_t: Tensor,
    },
    /// GGUF blocks kept: looked-up rows are dequantized; the head `(V, d)` runs as candle's
    /// quantized matmul at every width (with its repacked copy: expanding 150k vocabulary rows
    /// for every call would cost more than the matmul), formats without a fast kernel in
    /// dequantized slices of `HEAD_SLICE` rows. Tied models hold one tensor in both.
    Quantized {
        embed: Arc<QTensor>,
        head: Arc<QTensor>,
    },
}

impl Vocab {
    /// Dense tables from the embeddings `(V, d)` and an untied head `(V, d)`.
    pub fn dense(embed: Tensor, lm_head: Option<Tensor>) -> candle_core::Result<Vocab> {
        Ok(match lm_head {
            Some(head) => Vocab::Dense {
                embed: Some(embed),
                head_t: head.t()?.contiguous()?,
            },
            None => Vocab::Dense {
                embed: None,
                head_t: embed.t()?.contiguous()?,
            },
        })
    }

    /// Embedding rows of `ids`: `(ids.len(), d)` in `dtype`.
    fn embed(&self, ids: &[u32], dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        match self {
            Vocab::Dense { embed, head_t } => {
                let idx = Tensor::new(ids, device)?;
                match embed {
                    Some(embed) => embed.index_select(&idx, 0),
                    None => head_t.index_select(&idx, 1)?.t()?.contiguous(),
                }
            }
            Vocab::Quantized { embed, .. } => qgather(embed, ids, device)?.to_dtype(dtype),
        }
    }

    /// Logits `(N, V)` in f32 of hidden states `(N, d)`.
    fn logits(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Vocab::Dense { head_t, .. } => hidden.matmul(head_t)?.to_dtype(DType::F32),
            Vocab::Quantized { head, .. } => {
                let hidden = hidden.to_dtype(DType::F32)?.contiguous()?;
                if has_fast_kernel(head.dtype()) {
                    return QMatMul::QTensor(head.clone()).forward(&hidden);
                }
                let (vocab, _) = head.shape().dims2()?;
                let mut parts = Vec::new();
                let mut start = 0;
                while start < vocab {
                    let end = (start + HEAD_SLICE).min(vocab);
                    let w = qrows(head, start, end)?.dequantize(hidden.device())?;
                    parts.push(hidden.matmul(&w.t()?)?);
                    start = end;
                }
                Tensor::cat(&parts, 1)
            }
        }
    }
}

use super::family::Activation;
pub(crate) use super::family::Family;

/// The shape and numerics of a decoder, read from GGUF metadata or `config.json`.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub family: Family,
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub rms_eps: f64,
    pub rope_theta: f64,
    /// RoPE base of the sliding-window layers (Gemma 3).
    pub rope_local_theta: f64,
    /// Linear RoPE scaling factor of the global layers (positions divided by it).
    pub rope_scale: f64,
    /// Whether RoPE rotates adjacent pairs (GGUF Llama, whose q/k rows llama.cpp permuted) rather
    /// than the two halves (HF layout, Gemma).
    pub rope_interleaved: bool,
    pub context_len: usize,
    pub sliding_window: Option<usize>,
    /// Every `sliding_pattern`-th layer is global; the others use the sliding window.
    pub sliding_pattern: usize,
    pub attn_scale: f64,
    /// Per-frequency divisors of the global RoPE (GGUF `rope_freqs.weight`, Llama 3.1's scaling).
    pub rope_freq_factors: Option<Vec<f32>>,
    /// Attention scores become `cap · tanh(score / cap)` before the mask (Gemma 2).
    pub attn_softcap: Option<f64>,
    /// Logits become `cap · tanh(logit / cap)` (Gemma 2).
    pub final_softcap: Option<f64>,
}

impl Config {
    fn is_sliding(&self, layer: usize) -> bool {
        self.sliding_window.is_some()
            && self.sliding_pattern > 0
            && !(layer + 1).is_multiple_of(self.sliding_pattern)
    }
}

/// One linear map, `y = x W^T`, dense or quantized.
///
/// Dense weights are stored transposed, `(in, out)` contiguous: gemm then reads them in place,
/// whereas `W.t()` of a row-major `(out, in)` weight is repacked on every call (measured: 4.7×
/// slower at decode sizes, 1.1× at prefill sizes).
pub(crate) enum Linear {
    Dense(Tensor),
    /// GGUF blocks of the quantized mode (see `Blocks`).
    Blocks(Blocks),
    /// A map plus a LoRA update applied unmerged (see `lora`): `base(x) + (x A^T)(scale B)^T`,
    /// with `a_t` `(in, r)` and `b_t` `(r, out)` holding the scale.
    LowRank {
        base: Box<Linear>,
        a_t: Tensor,
        b_t: Tensor,
    },
}

impl Linear {
    /// A dense map from a weight in the usual `(out, in)` layout.
    pub fn dense(weight: &Tensor) -> candle_core::Result<Linear> {
        Ok(Linear::Dense(weight.t()?.contiguous()?))
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let last = dims.len() - 1;
        let rows: usize = dims[..last].iter().product();
        let x2 = x.reshape((rows, dims[last]))?;
        let y = self.forward_2d(&x2)?;
        let mut out = dims;
        out[last] = y.dim(1)?;
        y.reshape(out)
    }

    fn forward_2d(&self, x2: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Linear::Dense(wt) => x2.matmul(wt),
            Linear::Blocks(b) => b.forward(x2),
            Linear::LowRank { base, a_t, b_t } => {
                base.forward_2d(x2)? + x2.matmul(a_t)?.matmul(b_t)?
            }
        }
    }
}

/// The weights of one decoder block.
pub(crate) struct Layer {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    pub attn_norm: Tensor,
    pub ffn_norm: Tensor,
    /// Gemma 3 only.
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
    pub post_attn_norm: Option<Tensor>,
    pub post_ffn_norm: Option<Tensor>,
    /// Attention projection biases (Qwen 2: q, k, v; Llama with `attention_bias`: all four).
    pub bias: Biases,
    /// A mixture of experts in place of the MLP (Mixtral); `gate`, `up`, `down` are then empty.
    pub experts: Option<Experts>,
}

/// A sparse mixture-of-experts MLP: a router scores the experts per token, the `top_k` best run
/// and their outputs are summed, weighted by their router probabilities renormalized over the
/// chosen ones (transformers' `MixtralSparseMoeBlock`).
pub(crate) struct Experts {
    /// `(n_experts, d)` as a linear map.
    pub router: Linear,
    /// Per expert: gate, up, down.
    pub experts: Vec<[Linear; 3]>,
    pub top_k: usize,
}

impl Experts {
    fn forward(&self, x: &Tensor, activation: Activation) -> candle_core::Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let x2 = x.reshape((b * t, d))?;
        let logits = self.router.forward(&x2)?.to_dtype(DType::F32)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
        let n = self.experts.len();
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut weights: Vec<Vec<f32>> = vec![Vec::new(); n];
        for (row, p) in probs.iter().enumerate() {
            let mut order: Vec<usize> = (0..p.len()).collect();
            order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
            let top = &order[..self.top_k.min(order.len())];
            let sum: f32 = top.iter().map(|&e| p[e]).sum();
            for &e in top {
                if e < n {
                    rows[e].push(row as u32);
                    weights[e].push(p[e] / sum);
                }
            }
        }
        let mut out = x2.zeros_like()?;
        for (e, [gate, up, down]) in self.experts.iter().enumerate() {
            if rows[e].is_empty() {
                continue;
            }
            let idx = Tensor::new(rows[e].as_slice(), x.device())?;
            let xs = x2.index_select(&idx, 0)?;
            let g = gate.forward(&xs)?;
            let g = match activation {
                Activation::Silu => candle_nn::ops::silu(&g)?,
                Activation::GeluTanh => gelu_tanh(&g)?,
            };
            let y = down.forward(&(g * up.forward(&xs)?)?)?;
            let w = Tensor::new(weights[e].as_slice(), x.device())?
                .to_dtype(y.dtype())?
                .reshape((rows[e].len(), 1))?;
            out = out.index_add(&idx, &y.broadcast_mul(&w)?, 0)?;
        }
        out.reshape((b, t, d))
    }
}

/// Biases added after the attention projections, where a model has them.
#[derive(Default)]
pub(crate) struct Biases {
    pub q: Option<Tensor>,
    pub k: Option<Tensor>,
    pub v: Option<Tensor>,
    pub o: Option<Tensor>,
}

/// `linear(x) + bias`.
fn project(linear: &Linear, bias: Option<&Tensor>, x: &Tensor) -> candle_core::Result<Tensor> {
    let y = linear.forward(x)?;
    match bias {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// The whole decoder.
pub(crate) struct Model {
    pub cfg: Config,
    pub vocab: Vocab,
    pub layers: Vec<Layer>,
    pub norm: Tensor,
    pub dtype: DType,
    pub device: Device,
    /// Attention scores held at once, in floats (`ATTENTION_BUDGET`; tests lower it to make
    /// short inputs run in query chunks).
    pub attention_budget: usize,
    /// Inverse frequencies for the global and the sliding layers.
    inv_freq: Tensor,
    inv_freq_local: Tensor,
}

/// Keys and values of every layer for a batch of rows.
///
/// Each layer's keys and values live in buffers `(B, kv_heads, capacity, head_dim)` allocated
/// once (the capacity is the longest sequence the batch will reach; it doubles if passed) and
/// written in place, so a decode step copies only its new keys instead of the whole cache.
/// Slot `s` of every row holds the `s`-th token fed for that row; padding slots are masked by a
/// key mask built once per batch.
pub(crate) struct Cache {
    kv: Vec<Option<(Tensor, Tensor)>>,
    capacity: usize,
    /// Slots filled.
    len: usize,
    /// Per row and filled slot: whether the key is padding.
    padding: Vec<Vec<bool>>,
    /// Additive mask `(B, 1, 1, capacity)` in f32 over padding keys; `None` while no slot is
    /// padding.
    key_mask: Option<Tensor>,
}

impl Cache {
    /// An empty cache for `n_rows` rows that will hold `capacity` tokens per row.
    pub fn new(n_layers: usize, n_rows: usize, capacity: usize) -> Cache {
        Cache {
            kv: (0..n_layers).map(|_| None).collect(),
            capacity: capacity.max(1),
            len: 0,
            padding: vec![Vec::new(); n_rows],
            key_mask: None,
        }
    }

    pub fn n_rows(&self) -> usize {
        self.padding.len()
    }

    /// The keys and values of `layer` for the slots filled, `(B, kv_heads, len, head_dim)`
    /// each (after RoPE), where that layer has run.
    pub fn layer_kv(&self, layer: usize) -> candle_core::Result<Option<(Tensor, Tensor)>> {
        match self.kv.get(layer) {
            Some(Some((k, v))) => Ok(Some((k.narrow(2, 0, self.len)?, v.narrow(2, 0, self.len)?))),
            _ => Ok(None),
        }
    }

    /// Slots filled.
    pub fn len(&self) -> usize {
        self.len
    }

    /// A cache of `n` rows, each a copy of row 0 of this one (a prompt run once, continued by
    /// many rows).
    pub fn replicate(&self, n: usize, device: &Device) -> candle_core::Result<Cache> {
        let idx = Tensor::new(vec![0u32; n].as_slice(), device)?;
        let mut kv = Vec::with_capacity(self.kv.len());
        for slot in &self.kv {
            kv.push(match slot {
                Some((k, v)) => Some((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?)),
                None => None,
            });
        }
        let key_mask = match &self.key_mask {
            Some(m) => Some(m.index_select(&idx, 0)?),
            None => None,
        };
        Ok(Cache {
            kv,
            capacity: self.capacity,
            len: self.len,
            padding: vec![self.padding.first().cloned().unwrap_or_default(); n],
            key_mask,
        })
    }

    /// Keeps only the given rows, in that order.
    pub fn retain_rows(&mut self, rows: &[usize], device: &Device) -> candle_core::Result<()> {
        let idx = Tensor::new(
            rows.iter()
                .map(|&r| r as u32)
                .collect::<Vec<_>>()
                .as_slice(),
            device,
        )?;
        for kv in self.kv.iter_mut() {
            if let Some((k, v)) = kv.take() {
                *kv = Some((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?));
            }
        }
        if let Some(mask) = self.key_mask.take() {
            self.key_mask = Some(mask.index_select(&idx, 0)?);
        }
        self.padding = rows.iter().map(|&r| self.padding[r].clone()).collect();
        Ok(())
    }

    /// Records the padding flags of `t` new slots per row, growing the capacity when needed,
    /// and rebuilds the key mask when it changed.
    fn push(
        &mut self,
        positions: &[Vec<Option<u32>>],
        t: usize,
        device: &Device,
    ) -> candle_core::Result<()> {
        let needed = self.len + t;
        let grown = needed > self.capacity;
        if grown {
            self.capacity = needed.max(2 * self.capacity);
        }
        let mut new_padding = false;
        for (flags, row) in self.padding.iter_mut().zip(positions) {
            for p in row {
                new_padding |= p.is_none();
                flags.push(p.is_none());
            }
        }
        self.len = needed;
        if new_padding || (grown && self.key_mask.is_some()) {
            let b = self.padding.len();
            let mut data = vec![0f32; b * self.capacity];
            for (row, flags) in self.padding.iter().enumerate() {
                for (slot, &pad) in flags.iter().enumerate() {
                    if pad {
                        data[row * self.capacity + slot] = MASKED;
                    }
                }
            }
            self.key_mask = Some(Tensor::from_vec(data, (b, 1, 1, self.capacity), device)?);
        }
        Ok(())
    }
}

/// Which keys a chunk of queries attends to: slots `start..end` of the cache, with an additive
/// mask `(B or 1, 1, T, end - start)` when some of them must be hidden.
struct KeyRange {
    start: usize,
    end: usize,
    mask: Option<Tensor>,
}

/// Which keys each query of a packed row sees, for rows that hold token trees instead of one
/// sequence each (see `score`): additive masks `(B, 1, T, T)` over the row's own slots, one for
/// the global layers and, where some row is longer than the sliding window, one for the
/// sliding layers.
pub(crate) struct TreeMasks {
    pub global: Tensor,
    pub local: Option<Tensor>,
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let dtype = x.dtype();
    let x32 = x.to_dtype(DType::F32)?;
    let y = candle_nn::ops::rms_norm(
        &x32.contiguous()?,
        &weight.to_dtype(DType::F32)?,
        eps as f32,
    )?;
    y.to_dtype(dtype)
}

/// `cap · tanh(x / cap)`, or `x` without a cap.
fn softcap(x: Tensor, cap: Option<f64>) -> candle_core::Result<Tensor> {
    match cap {
        Some(cap) => (x / cap)?.tanh()? * cap,
        None => Ok(x),
    }
}

fn gelu_tanh(x: &Tensor) -> candle_core::Result<Tensor> {
    x.gelu()
}

impl Model {
    pub fn new(
        cfg: Config,
        embed: Tensor,
        layers: Vec<Layer>,
        norm: Tensor,
        lm_head: Option<Tensor>,
        dtype: DType,
        device: Device,
    ) -> candle_core::Result<Model> {
        let vocab = Vocab::dense(embed, lm_head)?;
        Model::with_vocab(cfg, vocab, layers, norm, dtype, device)
    }

    /// A decoder whose embeddings and head are given as they are held (dense or quantized).
    pub fn with_vocab(
        cfg: Config,
        vocab: Vocab,
        layers: Vec<Layer>,
        norm: Tensor,
        dtype: DType,
        device: Device,
    ) -> candle_core::Result<Model> {
        let inv = |theta: f64, scale: f64, factors: Option<&Vec<f32>>| {
            let v: Vec<f32> = (0..cfg.head_dim)
                .step_by(2)
                .map(|i| {
                    let factor = factors
                        .and_then(|f| f.get(i / 2))
                        .map_or(1.0, |&f| f64::from(f));
                    (1.0 / theta.powf(i as f64 / cfg.head_dim as f64) / scale / factor) as f32
                })
                .collect();
            Tensor::new(v.as_slice(), &device)
        };
        let inv_freq = inv(
            cfg.rope_theta,
            cfg.rope_scale,
            cfg.rope_freq_factors.as_ref(),
        )?;
        let inv_freq_local = inv(cfg.rope_local_theta, 1.0, None)?;
        Ok(Model {
            cfg,
            vocab,
            layers,
            norm,
            dtype,
            device,
            attention_budget: ATTENTION_BUDGET,
            inv_freq,
            inv_freq_local,
        })
    }

    /// cos and sin of shape `(B, T, head_dim / 2)` for per-row positions.
    fn rope_tables(
        &self,
        positions: &Tensor,
        inv_freq: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let (b, t) = positions.dims2()?;
        let pos = positions.to_dtype(DType::F32)?.reshape((b * t, 1))?;
        let half = inv_freq.dim(0)?;
        let angles = pos.matmul(&inv_freq.reshape((1, half))?)?;
        let cos = angles.cos()?.reshape((b, t, half))?.to_dtype(self.dtype)?;
        let sin = angles.sin()?.reshape((b, t, half))?.to_dtype(self.dtype)?;
        Ok((cos, sin))
    }

    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        if self.cfg.rope_interleaved {
            candle_nn::rotary_emb::rope_i(&x.contiguous()?, cos, sin)
        } else {
            candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)
        }
    }

    /// The keys seen by queries in slots `first..first + t` (the chunk just pushed to the
    /// cache): query slot `q` sees key slot `k` when `k <= q`, the key is not padding, and
    /// (sliding layers) `q - k < window`. Slots stand for positions: within a row, real tokens
    /// occupy consecutive slots at consecutive positions, so the causal and window conditions
    /// on slots are those on positions. Keys that no query of the chunk may see are left out of
    /// the range instead of masked; a single query (a decode step) then needs no causal mask.
    fn key_range(
        &self,
        cache: &Cache,
        first: usize,
        t: usize,
        window: Option<usize>,
    ) -> candle_core::Result<KeyRange> {
        let end = first + t;
        let start = window.map_or(0, |w| (first + 1).saturating_sub(w));
        let k = end - start;
        let structural = if t > 1 {
            let mut data = vec![MASKED; t * k];
            for i in 0..t {
                let q = first + i;
                for j in 0..k {
                    let key = start + j;
                    if key <= q && window.is_none_or(|w| q - key < w) {
                        data[i * k + j] = 0.0;
                    }
                }
            }
            Some(Tensor::from_vec(data, (1, 1, t, k), &self.device)?)
        } else {
            None
        };
        let padding = match &cache.key_mask {
            Some(m) => Some(m.narrow(3, start, k)?),
            None => None,
        };
        let mask = match (structural, padding) {
            (Some(s), Some(p)) => Some(s.broadcast_add(&p)?),
            (s, p) => s.or(p),
        };
        Ok(KeyRange { start, end, mask })
    }

    /// Runs the decoder over `tokens` (`B × T` ids) at `positions` (per row; `None` marks
    /// padding, which no query sees), appending to `cache`, and returns the final-norm hidden
    /// states `(B, T, d)`.
    pub fn forward(
        &self,
        tokens: &[Vec<u32>],
        positions: &[Vec<Option<u32>>],
        cache: &mut Cache,
    ) -> candle_core::Result<Tensor> {
        self.forward_with(tokens, positions, cache, None)
    }

    /// Runs the decoder over rows that each pack a forest of token trees: a query sees the keys
    /// `masks` allows (its ancestors and itself), at `positions` (each node's depth; `None`
    /// for padding). Returns the final-norm hidden states `(B, T, d)`.
    pub fn forward_tree(
        &self,
        tokens: &[Vec<u32>],
        positions: &[Vec<Option<u32>>],
        masks: &TreeMasks,
    ) -> candle_core::Result<Tensor> {
        let t = tokens.first().map_or(0, Vec::len);
        let mut cache = Cache::new(self.cfg.n_layers, tokens.len(), t);
        self.forward_with(tokens, positions, &mut cache, Some(masks))
    }

    fn forward_with(
        &self,
        tokens: &[Vec<u32>],
        positions: &[Vec<Option<u32>>],
        cache: &mut Cache,
        masks: Option<&TreeMasks>,
    ) -> candle_core::Result<Tensor> {
        let b = tokens.len();
        let t = tokens.first().map_or(0, Vec::len);
        let keys = cache.len + t;
        // Attention scores take B × heads × T × K floats; long inputs go through in chunks of
        // queries against the growing cache, so memory stays near the attention budget.
        let per_query = (b * self.cfg.n_heads * keys).max(1);
        let chunk = (self.attention_budget / per_query).clamp(16, t.max(16));
        if t <= chunk {
            return self.forward_chunk(tokens, positions, cache, masks);
        }
        let mut parts = Vec::new();
        let mut start = 0;
        while start < t {
            let end = (start + chunk).min(t);
            let tok: Vec<Vec<u32>> = tokens.iter().map(|r| r[start..end].to_vec()).collect();
            let pos: Vec<Vec<Option<u32>>> =
                positions.iter().map(|r| r[start..end].to_vec()).collect();
            parts.push(self.forward_chunk(&tok, &pos, cache, masks)?);
            start = end;
        }
        Tensor::cat(&parts, 1)
    }

    fn forward_chunk(
        &self,
        tokens: &[Vec<u32>],
        positions: &[Vec<Option<u32>>],
        cache: &mut Cache,
        masks: Option<&TreeMasks>,
    ) -> candle_core::Result<Tensor> {
        let cfg = &self.cfg;
        let b = tokens.len();
        let t = tokens.first().map_or(0, Vec::len);
        let query_pos: Vec<Vec<u32>> = positions
            .iter()
            .map(|row| row.iter().map(|p| p.unwrap_or(0)).collect())
            .collect();
        let pos_tensor = Tensor::from_vec(
            query_pos.iter().flatten().copied().collect::<Vec<u32>>(),
            (b, t),
            &self.device,
        )?;
        let first = cache.len;
        cache.push(positions, t, &self.device)?;
        // Padding queries see no real key; they get a position so that the arithmetic is defined.
        let (global_keys, local_keys) = match masks {
            Some(masks) => {
                // The chunk's queries against every slot filled so far.
                let rows = |m: &Tensor| -> candle_core::Result<KeyRange> {
                    Ok(KeyRange {
                        start: 0,
                        end: first + t,
                        mask: Some(m.narrow(2, first, t)?.narrow(3, 0, first + t)?),
                    })
                };
                let local = match &masks.local {
                    Some(m) => Some(rows(m)?),
                    None => None,
                };
                (rows(&masks.global)?, local)
            }
            None => {
                let local = match cfg.sliding_window {
                    Some(w) => Some(self.key_range(cache, first, t, Some(w))?),
                    None => None,
                };
                (self.key_range(cache, first, t, None)?, local)
            }
        };
        let (cos, sin) = self.rope_tables(&pos_tensor, &self.inv_freq)?;
        let spec = cfg.family.spec();
        let local_rope = if spec.local_rope {
            Some(self.rope_tables(&pos_tensor, &self.inv_freq_local)?)
        } else {
            None
        };

        let flat: Vec<u32> = tokens.iter().flatten().copied().collect();
        let rows = self.vocab.embed(&flat, self.dtype, &self.device)?;
        let mut x = rows.reshape((b, t, cfg.d_model))?;
        if spec.embed_scale {
            let scale =
                Tensor::new(&[(cfg.d_model as f32).sqrt()], &self.device)?.to_dtype(self.dtype)?;
            x = x.broadcast_mul(&scale)?;
        }
        for (index, layer) in self.layers.iter().enumerate() {
            let sliding = cfg.is_sliding(index);
            let keys = if sliding {
                local_keys.as_ref().unwrap_or(&global_keys)
            } else {
                &global_keys
            };
            let (c, s) = match (&local_rope, sliding) {
                (Some((c, s)), true) => (c, s),
                _ => (&cos, &sin),
            };
            let h = rms_norm(&x, &layer.attn_norm, cfg.rms_eps)?;
            let mut h = self.attention(layer, &h, c, s, keys, first, cache, index)?;
            if let Some(w) = &layer.post_attn_norm {
                h = rms_norm(&h, w, cfg.rms_eps)?;
            }
            x = (x + h)?;
            let h = rms_norm(&x, &layer.ffn_norm, cfg.rms_eps)?;
            let mut h = match &layer.experts {
                Some(experts) => experts.forward(&h, spec.activation)?,
                None => {
                    let gate = layer.gate.forward(&h)?;
                    let gate = match spec.activation {
                        Activation::Silu => candle_nn::ops::silu(&gate)?,
                        Activation::GeluTanh => gelu_tanh(&gate)?,
                    };
                    layer.down.forward(&(gate * layer.up.forward(&h)?)?)?
                }
            };
            if let Some(w) = &layer.post_ffn_norm {
                h = rms_norm(&h, w, cfg.rms_eps)?;
            }
            x = (x + h)?;
        }
        rms_norm(&x, &self.norm, cfg.rms_eps)
    }

    /// Self-attention of one layer: writes the chunk's keys and values into the cache at slot
    /// `first` and attends to the cache slots of `keys`.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        keys: &KeyRange,
        first: usize,
        cache: &mut Cache,
        index: usize,
    ) -> candle_core::Result<Tensor> {
        let cfg = &self.cfg;
        let (b, t, _) = x.dims3()?;
        let hd = cfg.head_dim;
        let q = project(&layer.q, layer.bias.q.as_ref(), x)?
            .reshape((b, t, cfg.n_heads, hd))?
            .transpose(1, 2)?;
        let k = project(&layer.k, layer.bias.k.as_ref(), x)?
            .reshape((b, t, cfg.n_kv_heads, hd))?
            .transpose(1, 2)?;
        let v = project(&layer.v, layer.bias.v.as_ref(), x)?
            .reshape((b, t, cfg.n_kv_heads, hd))?
            .transpose(1, 2)?
            .contiguous()?;
        let (q, k) = match (&layer.q_norm, &layer.k_norm) {
            (Some(qn), Some(kn)) => (
                rms_norm(&q.contiguous()?, qn, cfg.rms_eps)?,
                rms_norm(&k.contiguous()?, kn, cfg.rms_eps)?,
            ),
            _ => (q, k),
        };
        let q = self.rope(&q, cos, sin)?;
        let k = self.rope(&k, cos, sin)?;
        let capacity = cache.capacity;
        let slot = &mut cache.kv[index];
        let (kc, vc) = match slot.take() {
            Some((kc, vc)) if kc.dim(2)? >= capacity => (kc, vc),
            old => {
                // First use, or the batch outgrew the capacity: a larger buffer.
                let shape = (b, cfg.n_kv_heads, capacity, hd);
                let kc = Tensor::zeros(shape, k.dtype(), &self.device)?;
                let vc = Tensor::zeros(shape, v.dtype(), &self.device)?;
                if let Some((k0, v0)) = old {
                    kc.slice_set(&k0, 2, 0)?;
                    vc.slice_set(&v0, 2, 0)?;
                }
                (kc, vc)
            }
        };
        kc.slice_set(&k, 2, first)?;
        vc.slice_set(&v, 2, first)?;
        let n_keys = keys.end - keys.start;
        let k = kc.narrow(2, keys.start, n_keys)?;
        let v = vc.narrow(2, keys.start, n_keys)?;
        *slot = Some((kc, vc));
        // Grouped-query attention without copying K/V: the query heads sharing one KV head are
        // stacked along the time axis.
        let rep = cfg.n_heads / cfg.n_kv_heads;
        let q = q.reshape((b, cfg.n_kv_heads, rep * t, hd))?;
        let scores = (q.matmul(&k.t()?)? * cfg.attn_scale)?
            .to_dtype(DType::F32)?
            .reshape((b, cfg.n_heads, t, n_keys))?;
        let scores = softcap(scores, cfg.attn_softcap)?;
        let scores = match &keys.mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?
            .to_dtype(self.dtype)?
            .reshape((b, cfg.n_kv_heads, rep * t, n_keys))?;
        let out = probs
            .matmul(&v)?
            .reshape((b, cfg.n_heads, t, hd))?
            .transpose(1, 2)?
            .reshape((b, t, cfg.n_heads * hd))?;
        project(&layer.o, layer.bias.o.as_ref(), &out)
    }

    /// Log-softmax rows for hidden states `(N, d)`: returns `(N, V)` logits in f32.
    pub fn logits(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        softcap(self.vocab.logits(hidden)?, self.cfg.final_softcap)
    }

    /// Picks rows of a `(B, T, d)` hidden-state tensor by flat index `b * T + t`.
    pub fn gather_rows(&self, hidden: &Tensor, flat: &[u32]) -> candle_core::Result<Tensor> {
        let (b, t, d) = hidden.dims3()?;
        let idx = Tensor::new(flat, &self.device)?;
        hidden.reshape((b * t, d))?.index_select(&idx, 0)
    }
}

/// Log-probability of `targets[i]` under logits row i: `logit - logsumexp(row)`.
pub(crate) fn target_logprobs(logits: &Tensor, targets: &[u32]) -> candle_core::Result<Vec<f64>> {
    let rows: Vec<u32> = (0..targets.len() as u32).collect();
    picked_logprobs(logits, &rows, targets)
}

/// Log-probability of `targets[i]` under logits row `rows[i]` (a row may be picked from more
/// than once: a token whose continuations differ).
pub(crate) fn picked_logprobs(
    logits: &Tensor,
    rows: &[u32],
    targets: &[u32],
) -> candle_core::Result<Vec<f64>> {
    let (_, vocab) = logits.dims2()?;
    let max = logits.max_keepdim(D::Minus1)?;
    let lse = (logits
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + &max)?
        .squeeze(1)?;
    let flat: Vec<u32> = rows
        .iter()
        .zip(targets)
        .map(|(&r, &t)| r * vocab as u32 + t)
        .collect();
    let device = logits.device();
    let picked = logits
        .flatten_all()?
        .index_select(&Tensor::new(flat.as_slice(), device)?, 0)?;
    let lse = lse.index_select(&Tensor::new(rows, device)?, 0)?;
    (picked - lse)?.to_dtype(DType::F64)?.to_vec1::<f64>()
}
