//! Loading a decoder from a GGUF file (`llama`, `mistral`, `qwen2`, `gemma3`): architecture
//! metadata to `Config`, tensors to weights.
//!
//! Tensors are dequantized to the working dtype at load, except where candle has a fast
//! quantized kernel and the caller asked to keep blocks quantized (see `Quantized`). Q4_1 in
//! particular has no SIMD kernel in candle: dequantized f32 is about 8× faster per token.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Tensor};

use super::model::{Biases, Config, Family, Layer, Linear, Model};
use super::LoadError;

/// Whether to keep quantized blocks (QMatMul over blocks) for the formats with fast kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quantized {
    Dequantize,
    KeepFast,
}

/// The formats whose candle CPU kernels are SIMD (see STACK.md).
fn has_fast_kernel(dtype: GgmlDType) -> bool {
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

impl GgufFile {
    pub fn open(path: &Path) -> Result<GgufFile, LoadError> {
        let shown = path.display().to_string();
        // The header decides what candle allocates: it is checked against the file first.
        super::gguf_header::check_file(path).map_err(|reason| LoadError::Corrupt {
            path: shown.clone(),
            reason: format!("not a readable GGUF file ({reason})"),
        })?;
        let file = File::open(path).map_err(|e| LoadError::Io {
            path: shown.clone(),
            reason: one_line(e),
        })?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| LoadError::Corrupt {
            path: shown.clone(),
            reason: format!("not a readable GGUF file ({})", one_line(e)),
        })?;
        Ok(GgufFile {
            content,
            reader,
            path: shown,
        })
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

    /// A bias vector where the file has one (Qwen 2's q, k and v projections).
    fn bias(
        &mut self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> Result<Option<Tensor>, LoadError> {
        if self.has(name) {
            self.dense(name, dtype, device).map(Some)
        } else {
            Ok(None)
        }
    }

    fn linear(
        &mut self,
        name: &str,
        dtype: DType,
        device: &Device,
        quantized: Quantized,
    ) -> Result<Linear, LoadError> {
        let q = self.qtensor(name, device)?;
        if quantized == Quantized::KeepFast && has_fast_kernel(q.dtype()) && dtype == DType::F32 {
            return Ok(Linear::Quantized(QMatMul::QTensor(Arc::new(q))));
        }
        let path = self.path.clone();
        let t = q
            .dequantize(device)
            .and_then(|t| t.to_dtype(dtype))
            .map_err(|e| LoadError::Corrupt {
                path,
                reason: format!("tensor `{name}`: {}", one_line(e)),
            })?;
        let path = self.path.clone();
        Linear::dense(&t).map_err(|e| LoadError::Corrupt {
            path,
            reason: format!("tensor `{name}`: {}", one_line(e)),
        })
    }

    /// The decoder family of this file, or the error naming an architecture we do not run.
    pub fn family(&self) -> Result<Family, LoadError> {
        let arch = self.architecture()?;
        match arch.as_str() {
            "llama" | "mistral" | "qwen2" => Ok(Family::Llama),
            "gemma3" => Ok(Family::Gemma3),
            other => Err(LoadError::UnsupportedArchitecture {
                path: self.path.clone(),
                architecture: other.to_string(),
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
        if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(LoadError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "{n_heads} attention heads do not divide into {n_kv_heads} KV heads"
                ),
            });
        }
        let embed = self.dense("token_embd.weight", dtype, device)?;
        let vocab = embed.dims().first().copied().unwrap_or(0);
        let (rope_local_theta, rope_scale, sliding_pattern, attn_scale) = match family {
            Family::Llama => (rope_theta, 1.0, 0, 1.0 / (head_dim as f64).sqrt()),
            Family::Gemma3 => (
                f64::from(
                    self.meta_f32(&key("rope.local_freq_base"))
                        .unwrap_or(10_000.0),
                ),
                f64::from(self.meta_f32(&key("rope.scaling.factor")).unwrap_or(1.0)),
                6,
                1.0 / (head_dim as f64).sqrt(),
            ),
        };
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
            // llama.cpp's converter permutes the q/k rows of Llama and Mistral only; Qwen 2 keeps
            // the HF layout (llama.cpp runs it with NeoX RoPE).
            rope_interleaved: matches!(arch.as_str(), "llama" | "mistral"),
            context_len,
            sliding_window: if family == Family::Gemma3 {
                sliding_window
            } else {
                None
            },
            sliding_pattern,
            attn_scale,
            rope_freq_factors,
        };
        let mut layers = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            let gemma = family == Family::Gemma3;
            let norm = |f: &mut Self, s: &str| f.dense(&p(s), DType::F32, device);
            layers.push(Layer {
                q: self.linear(&p("attn_q"), dtype, device, quantized)?,
                k: self.linear(&p("attn_k"), dtype, device, quantized)?,
                v: self.linear(&p("attn_v"), dtype, device, quantized)?,
                o: self.linear(&p("attn_output"), dtype, device, quantized)?,
                gate: self.linear(&p("ffn_gate"), dtype, device, quantized)?,
                up: self.linear(&p("ffn_up"), dtype, device, quantized)?,
                down: self.linear(&p("ffn_down"), dtype, device, quantized)?,
                attn_norm: norm(self, "attn_norm")?,
                ffn_norm: norm(self, "ffn_norm")?,
                q_norm: if gemma {
                    Some(norm(self, "attn_q_norm")?)
                } else {
                    None
                },
                k_norm: if gemma {
                    Some(norm(self, "attn_k_norm")?)
                } else {
                    None
                },
                post_attn_norm: if gemma {
                    Some(norm(self, "post_attention_norm")?)
                } else {
                    None
                },
                post_ffn_norm: if gemma {
                    Some(norm(self, "post_ffw_norm")?)
                } else {
                    None
                },
                bias: Biases {
                    q: self.bias(&format!("blk.{i}.attn_q.bias"), dtype, device)?,
                    k: self.bias(&format!("blk.{i}.attn_k.bias"), dtype, device)?,
                    v: self.bias(&format!("blk.{i}.attn_v.bias"), dtype, device)?,
                    o: self.bias(&format!("blk.{i}.attn_output.bias"), dtype, device)?,
                },
            });
        }
        let norm = self.dense("output_norm.weight", DType::F32, device)?;
        let lm_head = if self.has("output.weight") {
            Some(self.dense("output.weight", dtype, device)?)
        } else {
            None
        };
        let path = self.path.clone();
        Model::new(cfg, embed, layers, norm, lm_head, dtype, device.clone()).map_err(|e| {
            LoadError::Corrupt {
                path,
                reason: one_line(e),
            }
        })
    }
}
