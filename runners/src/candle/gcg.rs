//! Greedy Coordinate Gradient (GCG, Zou et al. 2023) adversarial suffix search through our own
//! decoder, after nanogcg 0.3.0: the gradient of the target loss with respect to a one-hot
//! suffix matrix (candle autograd over plain tensor ops), top-k substitutions per position,
//! a batch of candidates scored through the batched forward with the prompt before the suffix
//! computed once, the best candidate kept.
//!
//! The gradient path is a forward of its own (`grad_hidden`): the batched forward writes keys
//! into its cache in place (`slice_set`, no backward) and calls candle-nn's fused rms_norm,
//! softmax and rotary kernels, which have no backward in candle 0.11. Here every op is a plain
//! tensor op with a backward; the candidate losses run through the fast forward.

use candle_core::{DType, Tensor, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::{Cache, Family, Linear, Model, Vocab};

/// Candidates scored per forward call.
const CANDIDATE_CHUNK: usize = 64;

/// Rows of logits over the vocabulary held at once when candidates are scored (256 rows of a
/// 49k vocabulary: 50 MB).
const HEAD_ROWS: usize = 256;

/// The token ids of one search: the chat-templated prompt before the suffix, the suffix, what
/// follows it up to the assistant's turn, and the target the answer should begin with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchIds {
    pub before: Vec<u32>,
    pub after: Vec<u32>,
    pub target: Vec<u32>,
}

/// Why a model cannot run a gradient search, if it cannot: quantized weights, adapters kept
/// unmerged, and families whose gradient path is not written (Gemma 3).
pub(crate) fn gradient_support(model: &Model) -> Result<(), String> {
    // The gradient path is the plain decoder (no q/k norms, soft-caps, sliding windows,
    // fused projections or experts): the families whose forward is exactly that.
    if !matches!(model.cfg.family, Family::Llama | Family::Qwen2) {
        return Err(format!(
            "GCG supports the Llama and Qwen 2 families (Llama, SmolLM, Qwen 2.5) only, not {:?}",
            model.cfg.family
        ));
    }
    if model.dtype != DType::F32 {
        return Err("GCG needs f32 weights (--dtype f32)".into());
    }
    if !matches!(model.vocab, Vocab::Dense { .. }) {
        return Err(
            "GCG needs dense weights: quantized weights have no gradient (--weights f32)".into(),
        );
    }
    let dense = |l: &Linear| matches!(l, Linear::Dense(_));
    if model.layers.iter().any(|l| {
        ![&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]
            .iter()
            .all(|x| dense(x))
    }) {
        return Err(
            "GCG needs dense weights: quantized weights have no gradient (--weights f32)".into(),
        );
    }
    Ok(())
}

/// `x W` for a constant `W` `(k, n)`, whose backward gives the gradient of `x` only.
///
/// candle's `matmul` backward computes the gradient of both operands whether or not they need
/// one, and accumulates it into zeros: through a 135M-parameter decoder, every weight's
/// gradient (0.4 GB) was computed and thrown away, six times the forward's time. On the CPU
/// this op runs the same matmul and leaves the weights out of the backward; elsewhere the plain
/// matmul runs.
struct ConstMatmul {
    w: Tensor,
}

impl candle_core::CustomOp1 for ConstMatmul {
    fn name(&self) -> &'static str {
        "const-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("const-matmul: f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("const-matmul: contiguous input only");
        };
        let x = Tensor::from_slice(&data[start..end], layout.shape(), &candle_core::Device::Cpu)?;
        let y = x.matmul(&self.w)?;
        let shape = y.shape().clone();
        let values = y.flatten_all()?.to_vec1::<f32>()?;
        Ok((candle_core::CpuStorage::F32(values), shape))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.matmul(&self.w.t()?)?))
    }
}

/// `x W` (`x` `(m, k)`) with the gradient of `x` only where the device allows (see
/// `ConstMatmul`).
fn const_matmul(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1(ConstMatmul { w: w.clone() })
    } else {
        x.matmul(w)
    }
}

/// A dense linear map on `(1, T, k)` through `const_matmul`.
fn linear(l: &Linear, x: &Tensor) -> candle_core::Result<Tensor> {
    let Linear::Dense(wt) = l else {
        candle_core::bail!("GCG needs dense weights");
    };
    let (b, t, k) = x.dims3()?;
    let y = const_matmul(&x.reshape((b * t, k))?, wt)?;
    let n = y.dim(1)?;
    y.reshape((b, t, n))
}

/// The embedding matrix `(V, d)`.
fn embedding_matrix(model: &Model) -> candle_core::Result<Tensor> {
    match &model.vocab {
        Vocab::Dense {
            embed: Some(embed), ..
        } => Ok(embed.clone()),
        Vocab::Dense {
            embed: None,
            head_t,
        } => head_t.t(),
        Vocab::Quantized { .. } => candle_core::bail!("quantized embeddings have no gradient"),
    }
}

fn head_t(model: &Model) -> candle_core::Result<&Tensor> {
    match &model.vocab {
        Vocab::Dense { head_t, .. } => Ok(head_t),
        Vocab::Quantized { .. } => candle_core::bail!("quantized head has no gradient"),
    }
}

/// `x / sqrt(mean(x²) + eps) * w` over the last dimension, in plain ops.
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let r = (ms + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&r)?.broadcast_mul(w)
}

/// Softmax over the last dimension, in plain ops (the max is a constant shift).
fn softmax(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

/// RoPE on `(1, H, T, hd)` with cos/sin `(T, hd/2)`, adjacent pairs or halves.
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, interleaved: bool) -> candle_core::Result<Tensor> {
    let (b, h, t, hd) = x.dims4()?;
    let half = hd / 2;
    if interleaved {
        let x = x.reshape((b, h, t, half, 2))?;
        let x0 = x.narrow(4, 0, 1)?;
        let x1 = x.narrow(4, 1, 1)?;
        let c = cos.reshape((1, 1, t, half, 1))?;
        let s = sin.reshape((1, 1, t, half, 1))?;
        let y0 = (x0.broadcast_mul(&c)? - x1.broadcast_mul(&s)?)?;
        let y1 = (x0.broadcast_mul(&s)? + x1.broadcast_mul(&c)?)?;
        Tensor::cat(&[y0, y1], 4)?.reshape((b, h, t, hd))
    } else {
        let x0 = x.narrow(3, 0, half)?;
        let x1 = x.narrow(3, half, half)?;
        let c = cos.reshape((1, 1, t, half))?;
        let s = sin.reshape((1, 1, t, half))?;
        let y0 = (x0.broadcast_mul(&c)? - x1.broadcast_mul(&s)?)?;
        let y1 = (x0.broadcast_mul(&s)? + x1.broadcast_mul(&c)?)?;
        Tensor::cat(&[y0, y1], 3)
    }
}

fn add_bias(y: Tensor, b: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match b {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// The decoder over one row of input embeddings `(1, T, d)` after the tokens held in `past`
/// (a one-row cache of the prompt before the suffix, constant: no gradient flows into it), at
/// positions `P..P + T`, in ops that all have a backward. Returns the final-norm hidden states
/// `(1, T, d)`.
fn grad_hidden(model: &Model, x: &Tensor, past: &Cache) -> candle_core::Result<Tensor> {
    let cfg = &model.cfg;
    let device = x.device();
    let (_, t, _) = x.dims3()?;
    let p = past.len();
    let half = cfg.head_dim / 2;
    let inv: Vec<f32> = (0..cfg.head_dim)
        .step_by(2)
        .map(|i| {
            let factor = cfg
                .rope_freq_factors
                .as_ref()
                .and_then(|f| f.get(i / 2))
                .map_or(1.0, |&f| f64::from(f));
            (1.0 / cfg.rope_theta.powf(i as f64 / cfg.head_dim as f64) / cfg.rope_scale / factor)
                as f32
        })
        .collect();
    let pos: Vec<f32> = (p..p + t).map(|q| q as f32).collect();
    let angles = Tensor::new(pos.as_slice(), device)?
        .reshape((t, 1))?
        .matmul(&Tensor::new(inv.as_slice(), device)?.reshape((1, half))?)?;
    let (cos, sin) = (angles.cos()?, angles.sin()?);
    // Every query sees the whole prefix and the new keys up to itself.
    let keys = p + t;
    let mut mask = vec![0f32; t * keys];
    for q in 0..t {
        for k in p + q + 1..keys {
            mask[q * keys + k] = f32::NEG_INFINITY;
        }
    }
    let mask = Tensor::from_vec(mask, (1, 1, t, keys), device)?;
    let hd = cfg.head_dim;
    let rep = cfg.n_heads / cfg.n_kv_heads;
    let mut x = x.clone();
    for (index, layer) in model.layers.iter().enumerate() {
        let h = rms_norm(&x, &layer.attn_norm, cfg.rms_eps)?;
        let q = add_bias(linear(&layer.q, &h)?, layer.bias.q.as_ref())?
            .reshape((1, t, cfg.n_heads, hd))?
            .transpose(1, 2)?;
        let k = add_bias(linear(&layer.k, &h)?, layer.bias.k.as_ref())?
            .reshape((1, t, cfg.n_kv_heads, hd))?
            .transpose(1, 2)?;
        let v = add_bias(linear(&layer.v, &h)?, layer.bias.v.as_ref())?
            .reshape((1, t, cfg.n_kv_heads, hd))?
            .transpose(1, 2)?;
        let q = rope(&q.contiguous()?, &cos, &sin, cfg.rope_interleaved)?;
        let k = rope(&k.contiguous()?, &cos, &sin, cfg.rope_interleaved)?;
        let (k, v) = match past.layer_kv(index)? {
            Some((pk, pv)) if p > 0 => (
                Tensor::cat(&[pk.detach(), k], 2)?,
                Tensor::cat(&[pv.detach(), v.contiguous()?], 2)?,
            ),
            _ => (k, v),
        };
        // Grouped-query attention: each KV head serves `rep` query heads stacked along time.
        let q = q.contiguous()?.reshape((1, cfg.n_kv_heads, rep * t, hd))?;
        let scores = (q.matmul(&k.contiguous()?.t()?)? * cfg.attn_scale)?
            .reshape((1, cfg.n_heads, t, keys))?
            .broadcast_add(&mask)?;
        let probs = softmax(&scores)?.reshape((1, cfg.n_kv_heads, rep * t, keys))?;
        let out = probs
            .matmul(&v.contiguous()?)?
            .reshape((1, cfg.n_heads, t, hd))?
            .transpose(1, 2)?
            .reshape((1, t, cfg.n_heads * hd))?;
        let h = add_bias(linear(&layer.o, &out)?, layer.bias.o.as_ref())?;
        x = (x + h)?;
        let h = rms_norm(&x, &layer.ffn_norm, cfg.rms_eps)?;
        let gate = linear(&layer.gate, &h)?.silu()?;
        let h = linear(&layer.down, &(gate * linear(&layer.up, &h)?)?)?;
        x = (x + h)?;
    }
    rms_norm(&x, &model.norm, cfg.rms_eps)
}

/// Mean cross-entropy of `targets` under logits `(N, V)`, as a scalar tensor.
fn cross_entropy(logits: &Tensor, targets: &[u32]) -> candle_core::Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let lse = (logits
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + max)?;
    let idx = Tensor::new(targets, logits.device())?.unsqueeze(1)?;
    let picked = logits.gather(&idx, D::Minus1)?;
    (lse - picked)?.mean_all()
}

/// The target loss of `suffix` and its gradient with respect to the one-hot suffix matrix,
/// `suffix.len()` rows of `V` values, row-major.
pub fn token_gradient(
    model: &Model,
    ids: &SearchIds,
    prefix: &Prefix,
    suffix: &[u32],
) -> candle_core::Result<(f32, Vec<f32>)> {
    let device = &model.device;
    if ids.target.is_empty() {
        candle_core::bail!("the target has no tokens");
    }
    let embed = embedding_matrix(model)?;
    let vocab = embed.dim(0)?;
    let n = suffix.len();
    let mut hot = vec![0f32; n * vocab];
    for (i, &id) in suffix.iter().enumerate() {
        let id = id as usize;
        if id >= vocab {
            candle_core::bail!("token id {id} outside the vocabulary of {vocab}");
        }
        hot[i * vocab + id] = 1.0;
    }
    let one_hot = candle_core::Var::from_vec(hot, (n, vocab), device)?;
    let rows = |t: &[u32]| -> candle_core::Result<Tensor> {
        let idx = Tensor::new(t, device)?;
        match &model.vocab {
            Vocab::Dense {
                embed: Some(embed), ..
            } => embed.index_select(&idx, 0),
            Vocab::Dense {
                embed: None,
                head_t,
            } => head_t.index_select(&idx, 1)?.t(),
            Vocab::Quantized { .. } => candle_core::bail!("quantized embeddings have no gradient"),
        }
    };
    let suffix_embeds = const_matmul(one_hot.as_tensor(), &embed)?;
    // The prompt before the suffix is in `prefix`'s cache.
    let parts: Vec<Tensor> = [
        suffix_embeds,
        rows(&ids.after)?,
        // The last target token predicts nothing the loss reads.
        rows(&ids.target[..ids.target.len().saturating_sub(1)])?,
    ]
    .into_iter()
    .filter(|t| t.dim(0).is_ok_and(|n| n > 0))
    .collect();
    let x = Tensor::cat(&parts, 0)?.unsqueeze(0)?;
    let hidden = grad_hidden(model, &x, &prefix.cache)?;

    let total = x.dim(1)?;
    let first = total - ids.target.len();
    let h = hidden.squeeze(0)?.narrow(0, first, ids.target.len())?;
    let logits = const_matmul(&h, head_t(model)?)?;
    let loss = cross_entropy(&logits, &ids.target)?;
    let grads = loss.backward()?;
    let grad = grads
        .get(one_hot.as_tensor())
        .ok_or_else(|| candle_core::Error::Msg("no gradient reached the suffix".into()))?;
    Ok((
        loss.to_scalar::<f32>()?,
        grad.flatten_all()?.to_vec1::<f32>()?,
    ))
}

/// The prompt before the suffix, run once: a one-row cache the candidate batches copy.
pub struct Prefix {
    cache: Cache,
    len: usize,
}

/// Runs the tokens before the suffix once, leaving room for `rest` more tokens per row.
pub fn prefix(model: &Model, ids: &SearchIds, rest: usize) -> candle_core::Result<Prefix> {
    let len = ids.before.len();
    let mut cache = Cache::new(model.cfg.n_layers, 1, len + rest);
    if len > 0 {
        let positions = vec![(0..len as u32).map(Some).collect::<Vec<_>>()];
        model.forward(std::slice::from_ref(&ids.before), &positions, &mut cache)?;
    }
    Ok(Prefix { cache, len })
}

/// Per candidate suffix: the target loss (mean cross-entropy over the target tokens) and
/// whether greedy decoding would produce the target (each target token is its position's
/// argmax). Candidates run in batches after a copy of the prefix cache; all candidates have
/// the same length.
pub fn candidate_losses(
    model: &Model,
    ids: &SearchIds,
    prefix: &Prefix,
    candidates: &[Vec<u32>],
) -> candle_core::Result<Vec<(f32, bool)>> {
    if ids.target.is_empty() {
        candle_core::bail!("the target has no tokens");
    }
    let mut out = Vec::with_capacity(candidates.len());
    let nt = ids.target.len();
    for chunk in candidates.chunks(CANDIDATE_CHUNK) {
        let b = chunk.len();
        let rows: Vec<Vec<u32>> = chunk
            .iter()
            .map(|c| {
                let mut r = c.clone();
                r.extend_from_slice(&ids.after);
                r.extend_from_slice(&ids.target[..nt - 1]);
                r
            })
            .collect();
        let t = rows[0].len();
        if rows.iter().any(|r| r.len() != t) {
            candle_core::bail!("GCG candidates differ in length");
        }
        let mut cache = prefix.cache.replicate(b, &model.device)?;
        let start = prefix.len as u32;
        let positions: Vec<Vec<Option<u32>>> = (0..b)
            .map(|_| (start..start + t as u32).map(Some).collect())
            .collect();
        let hidden = model.forward(&rows, &positions, &mut cache)?;
        // The hidden state before each target token predicts it (the last target token is not
        // fed: nothing reads what it predicts).
        let first = t - nt;
        let flat: Vec<u32> = (0..b)
            .flat_map(|r| (first..first + nt).map(move |i| (r * t + i) as u32))
            .collect();
        let picked = model.gather_rows(&hidden, &flat)?;
        let targets: Vec<u32> = (0..b).flat_map(|_| ids.target.iter().copied()).collect();
        // Per predicted row: its log-probability of the target token and whether the target
        // is its argmax, in one pass over the logits of `HEAD_ROWS` rows at a time.
        let mut scored = Vec::with_capacity(targets.len());
        let mut start = 0;
        while start < targets.len() {
            let n = HEAD_ROWS.min(targets.len() - start);
            let logits = model.logits(&picked.narrow(0, start, n)?)?;
            let vocab = logits.dim(1)?;
            let values = logits.flatten_all()?.to_vec1::<f32>()?;
            for (row, &target) in values.chunks(vocab).zip(&targets[start..start + n]) {
                scored.push(row_score(row, target));
            }
            start += n;
        }
        for r in 0..b {
            let span = &scored[r * nt..(r + 1) * nt];
            let loss = -span.iter().map(|s| s.0).sum::<f64>() / nt as f64;
            let hit = span.iter().all(|s| s.1);
            out.push((loss as f32, hit));
        }
    }
    Ok(out)
}

/// The log-probability of `target` under one row of logits, and whether `target` is the row's
/// argmax (ties: the lowest id, as greedy decoding picks).
fn row_score(row: &[f32], target: u32) -> (f64, bool) {
    let mut max = f32::NEG_INFINITY;
    let mut arg = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > max {
            max = v;
            arg = i;
        }
    }
    let sum: f64 = row.iter().map(|&v| f64::from((v - max).exp())).sum();
    let t = target as usize;
    let logit = row.get(t).copied().unwrap_or(f32::NEG_INFINITY);
    (f64::from(logit - max) - sum.ln(), arg == t)
}

/// Positions of the `k` best substitutions per suffix position: the tokens with the most
/// negative gradient among the allowed ones (ties: the lower id first).
pub fn top_k(grad: &[f32], vocab: usize, allowed: &[bool], k: usize) -> Vec<Vec<u32>> {
    grad.chunks(vocab)
        .map(|row| {
            let mut ids: Vec<u32> = (0..vocab as u32)
                .filter(|&i| allowed.get(i as usize).copied().unwrap_or(false))
                .collect();
            ids.sort_by(|&a, &b| row[a as usize].total_cmp(&row[b as usize]).then(a.cmp(&b)));
            ids.truncate(k);
            ids
        })
        .collect()
}

/// `width` candidates, each the suffix with `n_replace` distinct positions replaced by a token
/// drawn uniformly from that position's top-k, drawn from `rng`.
pub fn sample_candidates(
    suffix: &[u32],
    top: &[Vec<u32>],
    width: usize,
    n_replace: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<u32>> {
    let n = suffix.len();
    let n_replace = n_replace.clamp(1, n.max(1));
    (0..width)
        .map(|_| {
            let mut c = suffix.to_vec();
            let mut positions: Vec<usize> = (0..n).collect();
            for i in 0..n_replace.min(n) {
                let j = rng.gen_range(i..n);
                positions.swap(i, j);
                let p = positions[i];
                if let Some(choices) = top.get(p).filter(|c| !c.is_empty()) {
                    c[p] = choices[rng.gen_range(0..choices.len())];
                }
            }
            c
        })
        .collect()
}

/// What one search returns.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// The suffix of the lowest loss seen.
    pub suffix: Vec<u32>,
    /// The loss of each step's best candidate.
    pub losses: Vec<f32>,
    pub steps: usize,
    /// Whether greedy decoding produces the target after the final suffix.
    pub target_hit: bool,
}

/// Settings of one search (see `audit_core::SearchParams`).
pub struct Settings<'a> {
    pub steps: usize,
    pub search_width: usize,
    pub topk: usize,
    pub n_replace: usize,
    pub seed: u64,
    pub early_stop: bool,
    pub allowed: &'a [bool],
}

/// The GCG loop from `init`: per step the gradient, `search_width` sampled candidates (those
/// that change under decode and re-encode dropped by `retokenizes`), their losses, the best one
/// kept; stops early when the best candidate makes greedy decoding produce the target.
pub fn search(
    model: &Model,
    ids: &SearchIds,
    init: &[u32],
    settings: &Settings<'_>,
    retokenizes: &dyn Fn(&[u32]) -> bool,
) -> candle_core::Result<SearchResult> {
    let vocab = embedding_matrix(model)?.dim(0)?;
    let rest = init.len() + ids.after.len() + ids.target.len();
    let prefix = prefix(model, ids, rest)?;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut current = init.to_vec();
    let mut best = (f32::INFINITY, init.to_vec(), false);
    let mut losses = Vec::new();
    for _ in 0..settings.steps {
        let (_, grad) = token_gradient(model, ids, &prefix, &current)?;
        let top = top_k(&grad, vocab, settings.allowed, settings.topk);
        let candidates: Vec<Vec<u32>> = sample_candidates(
            &current,
            &top,
            settings.search_width,
            settings.n_replace,
            &mut rng,
        )
        .into_iter()
        .filter(|c| retokenizes(c))
        .collect();
        if candidates.is_empty() {
            candle_core::bail!(
                "no candidate suffix survives decoding and re-encoding; try another initial suffix"
            );
        }
        let scored = candidate_losses(model, ids, &prefix, &candidates)?;
        let mut pick = 0;
        for (i, s) in scored.iter().enumerate() {
            if s.0 < scored[pick].0 {
                pick = i;
            }
        }
        let (loss, hit) = scored[pick];
        current = candidates[pick].clone();
        losses.push(loss);
        if loss < best.0 {
            best = (loss, current.clone(), hit);
        }
        if settings.early_stop && hit {
            best = (loss, current.clone(), hit);
            break;
        }
    }
    Ok(SearchResult {
        suffix: best.1,
        steps: losses.len(),
        losses,
        target_hit: best.2,
    })
}

/// Which token ids a suffix may use: those that decode to printable ASCII (space to `~`, not
/// empty), minus special tokens: nanogcg's `get_nonascii_toks`.
pub fn ascii_tokens(
    tokenizer: &tokenizers::Tokenizer,
    vocab: usize,
    specials: &[u32],
) -> Vec<bool> {
    (0..vocab as u32)
        .map(|id| {
            if specials.contains(&id) {
                return false;
            }
            match tokenizer.decode(&[id], false) {
                Ok(s) => s.chars().all(|c| (' '..='~').contains(&c)),
                Err(_) => false,
            }
        })
        .collect()
}
