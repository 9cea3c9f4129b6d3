//! Loading a decoder from a GGUF file (the architectures of `family`): architecture metadata
//! to `Config`, tensors to weights.
//!
//! Tensors are dequantized to the working dtype at load, or kept as GGUF blocks
//! (`Quantized::Keep`: the matrices of the blocks, the embeddings and the head; norms and biases
//! are small and always f32).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{ggml_file, gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

use super::family::{self, check_shape, Dims, Family, Sliding, Source};
use super::model::{qrows, Blocks, Config, Linear, Model, Vocab};
use super::LoadError;

/// Whether the weights are dequantized at load or kept as GGUF blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quantized {
    Dequantize,
    Keep,
}

/// The GGML block formats kept quantized (the ones people ship); F32, F16 and BF16 tensors are
/// dense in every mode.
pub(crate) fn is_block_format(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_0
            | GgmlDType::Q4_1
            | GgmlDType::Q5_0
            | GgmlDType::Q5_1
            | GgmlDType::Q8_0
            | GgmlDType::Q2K
            | GgmlDType::Q3K
            | GgmlDType::Q4K
            | GgmlDType::Q5K
            | GgmlDType::Q6K
            | GgmlDType::Q8K
    )
}

/// The names GGML gives its tensor types (ggml.h), for errors about types candle cannot read.
fn ggml_type_name(id: u32) -> &'static str {
    match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => "unknown",
    }
}

/// GGML's name of a type candle reads (`Q4_K`, not candle's `Q4K`).
fn ggml_name(dtype: GgmlDType) -> &'static str {
    match dtype {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

const SUPPORTED_TYPES: &str =
    "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K";

/// Q5_0 blocks rewritten as Q8_0 blocks with the same scale: every value is the same (a Q5_0
/// value is `d·(q − 16)`, `q` in 0..32; a Q8_0 value `d·q`, `q` an i8), and candle has a SIMD
/// kernel for Q8_0 but not for Q5_0. Both multiply Q8_0-quantized activations, so the products
/// are llama.cpp's for Q5_0.
pub(crate) fn q5_0_as_q8_0(q: &QTensor, device: &Device) -> candle_core::Result<QTensor> {
    const Q5_0_BYTES: usize = 22;
    let data = q.data()?;
    if data.len() % Q5_0_BYTES != 0 {
        candle_core::bail!("Q5_0 data of {} bytes is not whole blocks", data.len());
    }
    let mut out = Vec::with_capacity(data.len() / Q5_0_BYTES * 34);
    for block in data.chunks_exact(Q5_0_BYTES) {
        out.extend_from_slice(&block[..2]);
        let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
        let qs = &block[6..];
        let mut values = [0u8; 32];
        for j in 0..16 {
            let high0 = (((qh >> j) << 4) & 0x10) as u8;
            let high1 = ((qh >> (j + 12)) & 0x10) as u8;
            values[j] = (((qs[j] & 0x0f) | high0) as i8 - 16) as u8;
            values[j + 16] = (((qs[j] >> 4) | high1) as i8 - 16) as u8;
        }
        out.extend_from_slice(&values);
    }
    ggml_file::qtensor_from_ggml(GgmlDType::Q8_0, &out, q.shape().dims().to_vec(), device)
}

/// An open GGUF file: its parsed header and a reader for tensor data.
pub(crate) struct GgufFile {
    pub content: gguf_file::Content,
    reader: BufReader<File>,
    path: String,
}

/// One line, no trailing period: candle errors can span lines and carry a backtrace (when
/// `RUST_BACKTRACE` is set), which is cut off.
pub(crate) fn one_line(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim) {
        let frame = line
            .split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if frame {
            break;
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines.join("; ").trim_end_matches('.').to_string()
}

/// The error for a GGML tensor type candle cannot read, by its GGML name.
fn unsupported_type(path: &str, id: u32) -> LoadError {
    LoadError::Unsupported {
        path: path.to_string(),
        what: format!(
            "GGML tensor type {} (id {id}; the candle backend reads {SUPPORTED_TYPES})",
            ggml_type_name(id)
        ),
    }
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<GgufFile, LoadError> {
        let shown = path.display().to_string();
        // The header decides what candle allocates: it is checked against the file first.
        // A tensor type the header check does not know is named, as candle's own error is below.
        super::gguf_header::check_file(path).map_err(|reason| {
            match reason
                .rsplit_once("has unknown or unsupported type ")
                .and_then(|(_, n)| n.parse::<u32>().ok())
                .filter(|&id| ggml_type_name(id) != "unknown")
            {
                Some(id) => unsupported_type(&shown, id),
                None => LoadError::Corrupt {
                    path: shown.clone(),
                    reason: format!("not a readable GGUF file ({reason})"),
                },
            }
        })?;
        let file = File::open(path).map_err(|e| LoadError::Io {
            path: shown.clone(),
            reason: one_line(e),
        })?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| {
            let reason = one_line(e);
            // candle's words for a tensor type it does not know: "unknown dtype for tensor N",
            // where N is the GGML type id.
            match reason
                .strip_prefix("unknown dtype for tensor ")
                .and_then(|n| n.parse::<u32>().ok())
            {
                Some(id) => unsupported_type(&shown, id),
                None => LoadError::Corrupt {
                    path: shown.clone(),
                    reason: format!("not a readable GGUF file ({reason})"),
                },
            }
        })?;
        Ok(GgufFile {
            content,
            reader,
            path: shown,
        })
    }

    /// Bytes of every tensor dequantized to `dtype`.
    pub fn dense_bytes(&self, dtype: DType) -> u64 {
        self.content
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count() as u64 * dtype.size_in_bytes() as u64)
            .sum()
    }

    /// How many tensors of each GGML type the file holds, e.g. `Q4_K ×169, Q6_K ×29, F32 ×141`.
    pub fn type_counts(&self) -> String {
        let mut counts = std::collections::BTreeMap::new();
        for info in self.content.tensor_infos.values() {
            *counts.entry(ggml_name(info.ggml_dtype)).or_insert(0usize) += 1;
        }
        let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        counts
            .iter()
            .map(|(t, n)| format!("{t} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn architecture(&self) -> Result<String, LoadError> {
        self.content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .ok_or_else(|| LoadError::Corrupt {
                path: self.path.clone(),
                reason: "GGUF metadata has no `general.architecture`".into(),
            })
    }

    fn meta_u32(&self, key: &str) -> Result<u32, LoadError> {
        self.content
            .metadata
            .get(key)
            .and_then(|v| {
                v.to_u32()
                    .ok()
                    .or_else(|| v.to_u64().ok().map(|x| x as u32))
            })
            .ok_or_else(|| LoadError::Corrupt {
                path: self.path.clone(),
                reason: format!("GGUF metadata `{key}` is missing or not an integer"),
            })
    }

    fn meta_f32(&self, key: &str) -> Option<f32> {
        self.content.metadata.get(key).and_then(|v| v.to_f32().ok())
    }

    pub fn meta_string(&self, key: &str) -> Option<String> {
        self.content
            .metadata
            .get(key)
            .and_then(|v| v.to_string().ok())
            .cloned()
    }

    fn qtensor(&mut self, name: &str, device: &Device) -> Result<QTensor, LoadError> {
        let path = self.path.clone();
        if !self.content.tensor_infos.contains_key(name) {
            return Err(LoadError::Corrupt {
                path,
                reason: format!("tensor `{name}` is missing"),
            });
        }
        self.content
            .tensor(&mut self.reader, name, device)
            .map_err(|e| LoadError::Corrupt {
                path,
                reason: format!("tensor `{name}`: {}", one_line(e)),
            })
    }

    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn dense(&mut self, name: &str, dtype: DType, device: &Device) -> Result<Tensor, LoadError> {
        let q = self.qtensor(name, device)?;
        let path = self.path.clone();
        q.dequantize(device)
            .and_then(|t| t.to_dtype(dtype))
            .map_err(|e| LoadError::Corrupt {
                path,
                reason: format!("tensor `{name}`: {}", one_line(e)),
            })
    }

    /// A tensor kept as it is stored, for the quantized mode; Q5_0 becomes the same values in
    /// Q8_0 (see `q5_0_as_q8_0`). Refuses GGML types the quantized path does not run.
    fn kept(&mut self, name: &str, device: &Device) -> Result<QTensor, LoadError> {
        let q = self.qtensor(name, device)?;
        let err = |reason: String| LoadError::Corrupt {
            path: self.path.clone(),
            reason: format!("tensor `{name}`: {reason}"),
        };
        match q.dtype() {
            GgmlDType::Q5_0 => q5_0_as_q8_0(&q, device).map_err(|e| err(one_line(e))),
            GgmlDType::Q8_1 => Err(LoadError::Unsupported {
                path: self.path.clone(),
                what: format!(
                    "tensor `{name}` of GGML type Q8_1 (the candle backend reads {SUPPORTED_TYPES})"
                ),
            }),
            _ => {
                q.shape().dims2().map_err(|e| err(one_line(e)))?;
                Ok(q)
            }
        }
    }

    /// The decoder family of this file, or the error naming an architecture we do not run.
    /// A `llama` or `mistral` file with experts (`<arch>.expert_count`) is Mixtral, as
    /// llama.cpp's converter writes it.
    pub fn family(&self) -> Result<Family, LoadError> {
        let arch = self.architecture()?;
        let family =
            Family::from_gguf(&arch).ok_or_else(|| LoadError::UnsupportedArchitecture {
                path: self.path.clone(),
                architecture: arch.clone(),
                supported: family::supported(),
            })?;
        let experts = self
            .meta_u32(&format!("{arch}.expert_count"))
            .is_ok_and(|n| n > 0);
        match family {
            _ if !experts => Ok(family),
            Family::Llama | Family::Mistral => Ok(Family::Mixtral),
            _ => Err(LoadError::Unsupported {
                path: self.path.clone(),
                what: format!("a mixture of experts in a `{arch}` file"),
            }),
        }
    }

    /// Builds the decoder described by this file.
    pub fn model(
        &mut self,
        dtype: DType,
        device: &Device,
        quantized: Quantized,
    ) -> Result<Model, LoadError> {
        let arch = self.architecture()?;
        let family = self.family()?;
        let spec = family.spec();
        let key = |s: &str| format!("{arch}.{s}");
        let n_layers = self.meta_u32(&key("block_count"))? as usize;
        let d_model = self.meta_u32(&key("embedding_length"))? as usize;
        let n_heads = self.meta_u32(&key("attention.head_count"))? as usize;
        let n_kv_heads = self.meta_u32(&key("attention.head_count_kv"))? as usize;
        let head_dim = self
            .meta_u32(&key("attention.key_length"))
            .map(|v| v as usize)
            .unwrap_or(d_model / n_heads.max(1));
        let context_len = self.meta_u32(&key("context_length"))? as usize;
        let rms_eps = f64::from(
            self.meta_f32(&key("attention.layer_norm_rms_epsilon"))
                .unwrap_or(1e-6),
        );
        let rope_theta = f64::from(self.meta_f32(&key("rope.freq_base")).unwrap_or(10_000.0));
        let sliding_window = self
            .meta_u32(&key("attention.sliding_window"))
            .ok()
            .map(|v| v as usize);
        if n_heads == 0 || n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(LoadError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "{n_heads} attention heads do not divide into {n_kv_heads} KV heads"
                ),
            });
        }
        if let Ok(rotated) = self.meta_u32(&key("rope.dimension_count")) {
            if rotated as usize != head_dim {
                return Err(LoadError::Unsupported {
                    path: self.path.clone(),
                    what: format!("partial RoPE ({rotated} of {head_dim} head dimensions)"),
                });
            }
        }
        if let Some(name) = ["rope_factors_long.weight", "rope_factors_short.weight"]
            .into_iter()
            .find(|n| self.has(n))
        {
            return Err(LoadError::Unsupported {
                path: self.path.clone(),
                what: format!("LongRoPE (tensor `{name}`)"),
            });
        }
        let embed_name = "token_embd.weight";
        let vocab = self
            .content
            .tensor_infos
            .get(embed_name)
            .and_then(|t| t.shape.dims().first().copied())
            .unwrap_or(0);
        {
            let src = GgufSource {
                file: self,
                dtype,
                device,
                quantized,
            };
            check_shape(&src, embed_name, &[vocab, d_model])?;
            if src.shape("output.weight").is_some() {
                check_shape(&src, "output.weight", &[vocab, d_model])?;
            }
        }
        let tables = match quantized {
            Quantized::Dequantize => {
                let embed = self.dense(embed_name, dtype, device)?;
                let head = if self.has("output.weight") {
                    Some(self.dense("output.weight", dtype, device)?)
                } else {
                    None
                };
                Tables::Dense(embed, head)
            }
            Quantized::Keep => {
                let embed = Arc::new(self.kept(embed_name, device)?);
                let head = if self.has("output.weight") {
                    Arc::new(self.kept("output.weight", device)?)
                } else {
                    embed.clone()
                };
                Tables::Kept(embed, head)
            }
        };
        let (rope_local_theta, rope_scale) = if spec.local_rope {
            (
                f64::from(
                    self.meta_f32(&key("rope.local_freq_base"))
                        .unwrap_or(10_000.0),
                ),
                f64::from(self.meta_f32(&key("rope.scaling.factor")).unwrap_or(1.0)),
            )
        } else {
            (rope_theta, 1.0)
        };
        let (sliding_window, sliding_pattern) = match spec.sliding {
            Sliding::Never => (None, 0),
            Sliding::Every => (sliding_window, usize::MAX),
            Sliding::Pattern(every) => (sliding_window, every),
        };
        // llama.cpp scales Gemma 2 27B's (46 layers) queries by d_model / heads, the others by
        // head_dim, as `query_pre_attn_scalar` does in their config.json.
        let query_scalar = if family == Family::Gemma2 && n_layers == 46 {
            d_model / n_heads
        } else {
            head_dim
        };
        let softcap = |f: &Self, k: &str| {
            if spec.softcap {
                f.meta_f32(&key(k)).map(f64::from)
            } else {
                None
            }
        };
        let attn_softcap = softcap(self, "attn_logit_softcapping");
        let final_softcap = softcap(self, "final_logit_softcapping");
        let rope_freq_factors = if self.has("rope_freqs.weight") {
            let t = self.dense("rope_freqs.weight", DType::F32, device)?;
            let path = self.path.clone();
            Some(
                t.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| LoadError::Corrupt {
                        path,
                        reason: format!("tensor `rope_freqs.weight`: {}", one_line(e)),
                    })?,
            )
        } else {
            None
        };
        let cfg = Config {
            family,
            n_layers,
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
            vocab,
            rms_eps,
            rope_theta,
            rope_local_theta,
            rope_scale,
            // llama.cpp's converter permutes the q/k rows of Llama and Mistral only; the others
            // keep the HF layout (llama.cpp runs them with NeoX RoPE).
            rope_interleaved: spec.gguf_interleaved.contains(&arch.as_str()),
            context_len,
            sliding_window,
            sliding_pattern,
            attn_scale: 1.0 / (query_scalar as f64).sqrt(),
            rope_freq_factors,
            attn_softcap,
            final_softcap,
        };
        let dims = Dims {
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
        };
        let experts = if spec.experts {
            let n = self.meta_u32(&key("expert_count"))? as usize;
            let k = self.meta_u32(&key("expert_used_count"))? as usize;
            if k == 0 || k > n {
                return Err(LoadError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("{k} experts used per token of {n}"),
                });
            }
            Some((n, k))
        } else {
            None
        };
        let mut src = GgufSource {
            file: self,
            dtype,
            device,
            quantized,
        };
        let layers = (0..n_layers)
            .map(|i| family::load_layer(&mut src, &spec.gguf, i, dims, experts))
            .collect::<Result<Vec<_>, _>>()?;
        check_shape(&src, "output_norm.weight", &[d_model])?;
        let norm = self.dense("output_norm.weight", DType::F32, device)?;
        let path = self.path.clone();
        let vocab = match tables {
            Tables::Dense(embed, head) => Vocab::dense(embed, head),
            Tables::Kept(embed, head) => Ok(Vocab::Quantized { embed, head }),
        };
        vocab
            .and_then(|vocab| Model::with_vocab(cfg, vocab, layers, norm, dtype, device.clone()))
            .map_err(|e| LoadError::Corrupt {
                path,
                reason: one_line(e),
            })
    }
}

/// The tensors of a GGUF file, read as the layers are built.
struct GgufSource<'a> {
    file: &'a mut GgufFile,
    dtype: DType,
    device: &'a Device,
    quantized: Quantized,
}

impl Source for GgufSource<'_> {
    fn shown(&self, _name: &str) -> String {
        self.file.path.clone()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.file
            .content
            .tensor_infos
            .get(name)
            .map(|t| t.shape.dims().to_vec())
    }

    fn linears(&mut self, name: &str, rows: &[usize]) -> Result<Vec<Linear>, LoadError> {
        let path = self.file.path.clone();
        let err = |e: candle_core::Error| LoadError::Corrupt {
            path: path.clone(),
            reason: format!("tensor `{name}`: {}", one_line(e)),
        };
        let dense = if self.quantized == Quantized::Keep {
            let q = self.file.kept(name, self.device)?;
            if is_block_format(q.dtype()) {
                if rows.len() == 1 {
                    return Ok(vec![Linear::Blocks(Blocks::new(q).map_err(err)?)]);
                }
                let mut out = Vec::with_capacity(rows.len());
                let mut start = 0;
                for &n in rows {
                    let part = qrows(&q, start, start + n).and_then(Blocks::new);
                    out.push(Linear::Blocks(part.map_err(err)?));
                    start += n;
                }
                return Ok(out);
            }
            q.dequantize(self.device).map_err(err)?
        } else {
            let q = self.file.qtensor(name, self.device)?;
            q.dequantize(self.device)
                .and_then(|t| t.to_dtype(self.dtype))
                .map_err(err)?
        };
        if rows.len() == 1 {
            return Ok(vec![Linear::dense(&dense).map_err(err)?]);
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut start = 0;
        for &n in rows {
            let part = dense.narrow(0, start, n).and_then(|p| Linear::dense(&p));
            out.push(part.map_err(err)?);
            start += n;
        }
        Ok(out)
    }

    fn norm(&mut self, name: &str) -> Result<Tensor, LoadError> {
        self.file.dense(name, DType::F32, self.device)
    }

    fn bias(&mut self, name: &str) -> Result<Tensor, LoadError> {
        self.file.dense(name, self.dtype, self.device)
    }

    fn tensor(&mut self, name: &str) -> Result<Tensor, LoadError> {
        self.file.dense(name, self.dtype, self.device)
    }
}

/// The embeddings and the untied head as read: dense, or kept as blocks (tied: one tensor).
enum Tables {
    Dense(Tensor, Option<Tensor>),
    Kept(Arc<QTensor>, Arc<QTensor>),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Q5_0 rewritten as Q8_0 holds exactly the same values, block for block.
    #[test]
    fn q5_0_as_q8_0_keeps_every_value() {
        let device = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (64, 256), &device).unwrap();
        let scale = (Tensor::arange(1f32, 65.0, &device).unwrap() / 8.0).unwrap();
        let x = x.broadcast_mul(&scale.reshape((64, 1)).unwrap()).unwrap();
        let q5 = QTensor::quantize(&x, GgmlDType::Q5_0).unwrap();
        let q8 = q5_0_as_q8_0(&q5, &device).unwrap();
        assert_eq!(q8.dtype(), GgmlDType::Q8_0);
        let a = q5.dequantize(&device).unwrap().flatten_all().unwrap();
        let b = q8.dequantize(&device).unwrap().flatten_all().unwrap();
        let (a, b) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
        assert_eq!(a, b);
        // Not a trivial tensor: the values span the 32 levels of Q5_0.
        let distinct: std::collections::BTreeSet<u32> = a.iter().map(|v| v.to_bits()).collect();
        assert!(distinct.len() > 1000, "{} distinct values", distinct.len());
    }

    #[test]
    fn ggml_type_names_follow_ggml() {
        assert_eq!(ggml_type_name(12), "Q4_K");
        assert_eq!(ggml_type_name(20), "IQ4_NL");
        assert_eq!(ggml_type_name(99), "unknown");
        assert_eq!(ggml_name(GgmlDType::Q6K), "Q6_K");
    }
}
