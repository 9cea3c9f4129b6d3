//! Loading an HF model folder: `config.json`, `model.safetensors` (or shards listed in
//! `model.safetensors.index.json`), `tokenizer.json` and `tokenizer_config.json`.
//!
//! Llama-family decoders run through our own forward (`model`), with RoPE on the two halves as
//! HF stores q/k; BERT encoders (sentence-transformers folders) run through candle-transformers'
//! `BertModel` with mean pooling and L2 normalization.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::family::{self, check_shape, Dims, Family, Sliding, Source};
use super::gguf::one_line;
use super::model::{Config, Linear, Model};
use super::tokenizer::Specials;
use super::LoadError;

/// The fields of `config.json` we read for decoders. Both layouts of RoPE settings are read:
/// `rope_theta` + `rope_scaling` (transformers 4 and the hub's folders) and `rope_parameters`
/// (transformers 5, flat or keyed by layer type).
#[derive(Debug, Deserialize)]
struct HfConfig {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    rope_scaling: Option<serde_json::Value>,
    rope_parameters: Option<serde_json::Value>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    hidden_activation: Option<String>,
    /// Mistral: every layer; Gemma 3: the sliding layers; Qwen 2: only with `use_sliding_window`.
    sliding_window: Option<usize>,
    use_sliding_window: Option<bool>,
    /// Gemma 3.
    layer_types: Option<Vec<String>>,
    query_pre_attn_scalar: Option<f64>,
    rope_local_base_freq: Option<f64>,
    final_logit_softcapping: Option<f64>,
    attn_logit_softcapping: Option<f64>,
    /// Phi-3 (Phi-4-mini: 0.75, not supported).
    partial_rotary_factor: Option<f64>,
    /// Mixtral.
    num_local_experts: Option<usize>,
    num_experts_per_tok: Option<usize>,
}

/// RoPE of one kind of layer: base, linear scale, per-frequency divisors (Llama 3 scaling).
struct Rope {
    theta: f64,
    scale: f64,
    freq_factors: Option<Vec<f32>>,
}

impl HfConfig {
    /// The RoPE settings of `layer_type` (`full_attention` or `sliding_attention`).
    fn rope(&self, layer_type: &str, path: &Path) -> Result<Rope, LoadError> {
        let sliding = layer_type == "sliding_attention";
        let (theta, params) = match &self.rope_parameters {
            Some(all) if !all.is_null() => {
                let p = all.get(layer_type).unwrap_or(all);
                (
                    p.get("rope_theta").and_then(|v| v.as_f64()),
                    Some(p.clone()),
                )
            }
            _ if sliding => (self.rope_local_base_freq, None),
            _ => (self.rope_theta, self.rope_scaling.clone()),
        };
        let theta = theta.unwrap_or(if sliding {
            10_000.0
        } else {
            self.default_theta()
        });
        let params = params.filter(|p| !p.is_null());
        let kind = params
            .as_ref()
            .and_then(|p| p.get("rope_type").or_else(|| p.get("type")))
            .and_then(|v| v.as_str())
            .unwrap_or("default")
            .to_string();
        let number = |key: &str| -> Result<f64, LoadError> {
            params
                .as_ref()
                .and_then(|p| p.get(key))
                .and_then(|v| v.as_f64())
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| LoadError::Unsupported {
                    path: path.display().to_string(),
                    what: format!("rope scaling `{kind}` without a positive `{key}`"),
                })
        };
        match kind.as_str() {
            "default" => Ok(Rope {
                theta,
                scale: 1.0,
                freq_factors: None,
            }),
            "linear" => Ok(Rope {
                theta,
                scale: number("factor")?,
                freq_factors: None,
            }),
            "llama3" => {
                let head_dim = self
                    .head_dim
                    .unwrap_or(self.hidden_size / self.num_attention_heads.max(1));
                Ok(Rope {
                    theta,
                    scale: 1.0,
                    freq_factors: Some(llama3_factors(
                        theta,
                        head_dim,
                        number("factor")?,
                        number("low_freq_factor")?,
                        number("high_freq_factor")?,
                        number("original_max_position_embeddings")?,
                    )),
                })
            }
            other => Err(LoadError::Unsupported {
                path: path.display().to_string(),
                what: format!("rope scaling `{other}` (supported: default, linear, llama3)"),
            }),
        }
    }

    fn default_theta(&self) -> f64 {
        10_000.0
    }
}

/// Llama 3.1's RoPE scaling as divisors of each inverse frequency (transformers'
/// `_compute_llama3_parameters`): wavelengths above `original / low` are divided by `factor`,
/// those below `original / high` kept, and those between interpolated.
fn llama3_factors(
    theta: f64,
    head_dim: usize,
    factor: f64,
    low: f64,
    high: f64,
    original: f64,
) -> Vec<f32> {
    let low_wavelen = original / low;
    let high_wavelen = original / high;
    (0..head_dim)
        .step_by(2)
        .map(|i| {
            let inv = 1.0 / theta.powf(i as f64 / head_dim as f64);
            let wavelen = 2.0 * std::f64::consts::PI / inv;
            let scaled = if wavelen > low_wavelen {
                inv / factor
            } else if wavelen < high_wavelen {
                inv
            } else {
                let smooth = (original / wavelen - low) / (high - low);
                (1.0 - smooth) * inv / factor + smooth * inv
            };
            (inv / scaled) as f32
        })
        .collect()
}

/// The tensors of a folder, taken one by one as the layers are built.
struct HfSource<'a> {
    tensors: HashMap<String, Tensor>,
    /// The safetensors file of each tensor, which errors name.
    files: HashMap<String, PathBuf>,
    /// The folder's safetensors files.
    weight_files: Vec<PathBuf>,
    dir: &'a Path,
    dtype: DType,
    /// Norm weights are stored as `w` and scale by `1 + w` (Gemma).
    plus_one: bool,
}

impl HfSource<'_> {
    /// The file that holds `name`; for a missing tensor, the folder's one safetensors file, or
    /// the folder when the weights are sharded.
    fn file(&self, name: &str) -> PathBuf {
        if let Some(path) = self.files.get(name) {
            return path.clone();
        }
        match self.weight_files.as_slice() {
            [one] => one.clone(),
            _ => self.dir.to_path_buf(),
        }
    }

    fn take(&mut self, name: &str, dtype: DType) -> Result<Tensor, LoadError> {
        let file = self.file(name);
        self.tensors
            .remove(name)
            .ok_or_else(|| corrupt(&file, format!("tensor `{name}` is missing")))?
            .to_dtype(dtype)
            .map_err(|e| corrupt(&file, format!("tensor `{name}`: {}", one_line(e))))
    }
}

impl Source for HfSource<'_> {
    fn shown(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|t| t.dims().to_vec())
    }

    fn linears(&mut self, name: &str, rows: &[usize]) -> Result<Vec<Linear>, LoadError> {
        let w = self.take(name, self.dtype)?;
        let file = self.file(name);
        let mut start = 0;
        let mut out = Vec::with_capacity(rows.len());
        for &n in rows {
            let part = if rows.len() == 1 {
                Linear::dense(&w)
            } else {
                w.narrow(0, start, n).and_then(|p| Linear::dense(&p))
            };
            out.push(
                part.map_err(|e| corrupt(&file, format!("tensor `{name}`: {}", one_line(e))))?,
            );
            start += n;
        }
        Ok(out)
    }

    fn norm(&mut self, name: &str) -> Result<Tensor, LoadError> {
        let t = self.take(name, DType::F32)?;
        if self.plus_one {
            (t + 1.0).map_err(|e| corrupt(&self.file(name), one_line(e)))
        } else {
            Ok(t)
        }
    }

    fn bias(&mut self, name: &str) -> Result<Tensor, LoadError> {
        self.take(name, self.dtype)
    }

    fn tensor(&mut self, name: &str) -> Result<Tensor, LoadError> {
        self.take(name, self.dtype)
    }
}

/// What a folder holds, read and checked.
pub(crate) struct Folder {
    pub dir: PathBuf,
    pub model_type: String,
    config_text: String,
    pub files: Vec<PathBuf>,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> LoadError {
    LoadError::Io {
        path: path.display().to_string(),
        reason: one_line(e),
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Corrupt {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

impl Folder {
    pub fn open(dir: &Path) -> Result<Folder, LoadError> {
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            return Err(LoadError::UnknownFormat {
                path: dir.display().to_string(),
            });
        }
        let config_text =
            std::fs::read_to_string(&config_path).map_err(|e| io_error(&config_path, e))?;
        let value: serde_json::Value = serde_json::from_str(&config_text)
            .map_err(|e| corrupt(&config_path, format!("invalid JSON ({})", one_line(e))))?;
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let mut files = vec![config_path];
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        if single.exists() {
            files.push(single);
        } else if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| io_error(&index, e))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| corrupt(&index, format!("invalid JSON ({})", one_line(e))))?;
            let mut shards: Vec<String> = value
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| corrupt(&index, "no `weight_map`"))?
                .values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            shards.sort();
            shards.dedup();
            files.push(index);
            files.extend(shards.into_iter().map(|s| dir.join(s)));
        } else {
            return Err(LoadError::UnknownFormat {
                path: dir.display().to_string(),
            });
        }
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            let path = dir.join(name);
            if path.exists() {
                files.push(path);
            }
        }
        Ok(Folder {
            dir: dir.to_path_buf(),
            model_type,
            config_text,
            files,
        })
    }

    /// Every tensor of the folder's safetensors files.
    fn tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>, LoadError> {
        Ok(self.tensors_and_files(device)?.0)
    }

    /// Every tensor of the folder's safetensors files, and the file that holds each.
    #[allow(clippy::type_complexity)]
    fn tensors_and_files(
        &self,
        device: &Device,
    ) -> Result<(HashMap<String, Tensor>, HashMap<String, PathBuf>), LoadError> {
        let mut all = HashMap::new();
        let mut files = HashMap::new();
        for path in self
            .files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        {
            let tensors = candle_core::safetensors::load(path, device).map_err(|e| {
                corrupt(
                    path,
                    format!("not a readable safetensors file ({})", one_line(e)),
                )
            })?;
            files.extend(tensors.keys().map(|k| (k.clone(), path.clone())));
            all.extend(tensors);
        }
        Ok((all, files))
    }

    /// The tokenizer, its special ids and the chat template source, if any.
    pub fn tokenizer(
        &self,
    ) -> Result<(tokenizers::Tokenizer, Specials, Option<String>), LoadError> {
        let path = self.dir.join("tokenizer.json");
        if !path.exists() {
            return Err(LoadError::MissingTokenizer {
                path: self.dir.display().to_string(),
                reason: "no tokenizer.json in the folder".into(),
            });
        }
        let tokenizer =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| LoadError::MissingTokenizer {
                path: path.display().to_string(),
                reason: one_line(e),
            })?;
        let config_path = self.dir.join("tokenizer_config.json");
        let config: serde_json::Value = if config_path.exists() {
            let text =
                std::fs::read_to_string(&config_path).map_err(|e| io_error(&config_path, e))?;
            serde_json::from_str(&text)
                .map_err(|e| corrupt(&config_path, format!("invalid JSON ({})", one_line(e))))?
        } else {
            serde_json::Value::Null
        };
        let token = |key: &str| -> Option<u32> {
            let v = config.get(key)?;
            let text = v
                .as_str()
                .or_else(|| v.get("content").and_then(|c| c.as_str()))?;
            tokenizer.token_to_id(text)
        };
        let bos = token("bos_token");
        let eos = token("eos_token");
        let add_bos = match config.get("add_bos_token").and_then(|v| v.as_bool()) {
            Some(b) => b,
            None => bos.is_some_and(|bos| {
                tokenizer
                    .encode("a", true)
                    .map(|e| e.get_ids().first() == Some(&bos))
                    .unwrap_or(false)
            }),
        };
        let mut stop_ids: Vec<u32> = eos.into_iter().collect();
        for name in ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"] {
            if let Some(id) = tokenizer.token_to_id(name) {
                if !stop_ids.contains(&id) {
                    stop_ids.push(id);
                }
            }
        }
        let template = match config.get("chat_template") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template"))
                .and_then(|t| t.as_str())
                .map(str::to_string),
            _ => std::fs::read_to_string(self.dir.join("chat_template.jinja")).ok(),
        };
        Ok((
            tokenizer,
            Specials {
                bos,
                eos,
                add_bos,
                stop_ids,
            },
            template,
        ))
    }

    /// A decoder from the folder's weights, of the family its `model_type` names (`family`).
    pub fn decoder(&self, dtype: DType, device: &Device) -> Result<Model, LoadError> {
        let config_path = self.dir.join("config.json");
        let c: HfConfig = serde_json::from_str(&self.config_text)
            .map_err(|e| corrupt(&config_path, format!("config.json: {}", one_line(e))))?;
        let unsupported = |what: String| LoadError::Unsupported {
            path: config_path.display().to_string(),
            what,
        };
        let family = Family::from_hf(&self.model_type).ok_or_else(|| {
            LoadError::UnsupportedArchitecture {
                path: config_path.display().to_string(),
                architecture: self.model_type.clone(),
                supported: family::supported(),
            }
        })?;
        let spec = family.spec();
        if c.mlp_bias == Some(true) {
            return Err(unsupported("`mlp_bias`".into()));
        }
        let expected = spec.activation.hf_name();
        let activation = c
            .hidden_activation
            .clone()
            .or_else(|| c.hidden_act.clone())
            .unwrap_or_else(|| expected.into());
        if activation != expected {
            return Err(unsupported(format!("activation `{activation}`")));
        }
        if !spec.softcap
            && (c.final_logit_softcapping.is_some() || c.attn_logit_softcapping.is_some())
        {
            return Err(unsupported("logit soft-capping".into()));
        }
        let partial = c.partial_rotary_factor.or_else(|| {
            c.rope_parameters
                .as_ref()
                .and_then(|p| p.get("partial_rotary_factor"))
                .and_then(|v| v.as_f64())
        });
        if partial.is_some_and(|f| f != 1.0) {
            return Err(unsupported("`partial_rotary_factor` other than 1".into()));
        }
        let n_kv_heads = c.num_key_value_heads.unwrap_or(c.num_attention_heads);
        if c.num_attention_heads == 0
            || n_kv_heads == 0
            || !c.num_attention_heads.is_multiple_of(n_kv_heads)
        {
            return Err(corrupt(
                &config_path,
                "attention heads do not divide into KV heads",
            ));
        }
        let head_dim = c.head_dim.unwrap_or(c.hidden_size / c.num_attention_heads);
        let global = c.rope("full_attention", &config_path)?;
        // Which layers use a sliding window (see `family::Sliding`).
        let (sliding_window, sliding_pattern, local_theta) = match spec.sliding {
            Sliding::Never => {
                if c.use_sliding_window == Some(true) {
                    return Err(unsupported(format!(
                        "`use_sliding_window` for `{}`",
                        self.model_type
                    )));
                }
                (None, 0, global.theta)
            }
            // Every layer slides (pattern larger than any layer count).
            Sliding::Every => (c.sliding_window, usize::MAX, global.theta),
            Sliding::Pattern(every) => {
                let types = c.layer_types.clone().unwrap_or_else(|| {
                    (0..c.num_hidden_layers)
                        .map(|i| {
                            if (i + 1) % every == 0 {
                                "full_attention"
                            } else {
                                "sliding_attention"
                            }
                            .to_string()
                        })
                        .collect()
                });
                let pattern = types
                    .iter()
                    .position(|t| t == "full_attention")
                    .map_or(0, |p| p + 1);
                let regular = types.len() == c.num_hidden_layers
                    && types.iter().enumerate().all(|(i, t)| {
                        let full = pattern > 0 && (i + 1) % pattern == 0;
                        t == if full {
                            "full_attention"
                        } else {
                            "sliding_attention"
                        }
                    });
                if !regular {
                    return Err(unsupported(
                        "`layer_types` other than every n-th layer global".into(),
                    ));
                }
                let local_theta = if spec.local_rope {
                    let local = c.rope("sliding_attention", &config_path)?;
                    if local.scale != 1.0 || local.freq_factors.is_some() {
                        return Err(unsupported("rope scaling on sliding layers".into()));
                    }
                    local.theta
                } else {
                    global.theta
                };
                let pattern = if pattern == 0 { usize::MAX } else { pattern };
                (c.sliding_window, pattern, local_theta)
            }
        };
        let (tensors, files) = self.tensors_and_files(device)?;
        let mut src = HfSource {
            tensors,
            files,
            weight_files: self
                .files
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                .cloned()
                .collect(),
            dir: &self.dir,
            dtype,
            plus_one: spec.norm_plus_one,
        };
        let embed_name = "model.embed_tokens.weight";
        let vocab = src
            .shape(embed_name)
            .and_then(|s| s.first().copied())
            .unwrap_or(0);
        check_shape(&src, embed_name, &[vocab, c.hidden_size])?;
        let embed = src.take(embed_name, dtype)?;
        let dims = Dims {
            d_model: c.hidden_size,
            n_heads: c.num_attention_heads,
            n_kv_heads,
            head_dim,
        };
        let experts = if spec.experts {
            match (c.num_local_experts, c.num_experts_per_tok) {
                (Some(n), Some(k)) if n > 0 && k > 0 && k <= n => Some((n, k)),
                _ => return Err(corrupt(
                    &config_path,
                    "`num_local_experts` and `num_experts_per_tok` must be 1 ≤ per token ≤ experts",
                )),
            }
        } else {
            None
        };
        let layers = (0..c.num_hidden_layers)
            .map(|i| family::load_layer(&mut src, &spec.hf, i, dims, experts))
            .collect::<Result<Vec<_>, _>>()?;
        check_shape(&src, "model.norm.weight", &[c.hidden_size])?;
        let final_norm = src.norm("model.norm.weight")?;
        // A folder without `lm_head.weight` ties the head to the embeddings.
        let lm_head = if c.tie_word_embeddings.unwrap_or(spec.tied_default)
            || src.shape("lm_head.weight").is_none()
        {
            None
        } else {
            check_shape(&src, "lm_head.weight", &[vocab, c.hidden_size])?;
            Some(src.take("lm_head.weight", dtype)?)
        };
        let query_scalar = if spec.query_pre_attn_scalar {
            c.query_pre_attn_scalar.unwrap_or(head_dim as f64)
        } else {
            head_dim as f64
        };
        let cfg = Config {
            family,
            n_layers: c.num_hidden_layers,
            d_model: c.hidden_size,
            n_heads: c.num_attention_heads,
            n_kv_heads,
            head_dim,
            vocab,
            rms_eps: c.rms_norm_eps.unwrap_or(1e-6),
            rope_theta: global.theta,
            rope_local_theta: local_theta,
            rope_scale: global.scale,
            rope_interleaved: false,
            context_len: c.max_position_embeddings.unwrap_or(2048),
            sliding_window,
            sliding_pattern,
            attn_scale: 1.0 / query_scalar.sqrt(),
            rope_freq_factors: global.freq_factors,
            attn_softcap: c.attn_logit_softcapping.filter(|_| spec.softcap),
            final_softcap: c.final_logit_softcapping.filter(|_| spec.softcap),
        };
        Model::new(
            cfg,
            embed,
            layers,
            final_norm,
            lm_head,
            dtype,
            device.clone(),
        )
        .map_err(|e| corrupt(&self.dir, one_line(e)))
    }

    /// Whether config.json names a masked-LM architecture (`BertForMaskedLM`).
    pub fn is_masked_lm(&self) -> bool {
        serde_json::from_str::<serde_json::Value>(&self.config_text)
            .ok()
            .and_then(|v| v.get("architectures").cloned())
            .and_then(|a| a.as_array().cloned())
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some("BertForMaskedLM")))
    }

    /// A BERT masked LM (encoder and `cls.predictions` head) from the folder's weights.
    pub fn masked_lm(
        &self,
        tokenizer: &tokenizers::Tokenizer,
        dtype: DType,
        device: &Device,
    ) -> Result<super::mlm::MaskedLm, LoadError> {
        let config_path = self.dir.join("config.json");
        let config: candle_transformers::models::bert::Config =
            serde_json::from_str(&self.config_text)
                .map_err(|e| corrupt(&config_path, format!("config.json: {}", one_line(e))))?;
        let tensors = self.tensors(device)?;
        let vb = candle_nn::VarBuilder::from_tensors(tensors, dtype, device);
        let bert = candle_transformers::models::bert::BertModel::load(vb.pp("bert"), &config)
            .map_err(|e| corrupt(&self.dir, one_line(e)))?;
        let head = candle_transformers::models::bert::BertOnlyMLMHead::load(vb.pp("cls"), &config)
            .map_err(|e| corrupt(&self.dir, format!("no masked-LM head: {}", one_line(e))))?;
        let mask_id =
            tokenizer
                .token_to_id("[MASK]")
                .ok_or_else(|| LoadError::MissingTokenizer {
                    path: self.dir.join("tokenizer.json").display().to_string(),
                    reason: "no [MASK] token".into(),
                })?;
        let max_len = serde_json::from_str::<serde_json::Value>(&self.config_text)
            .ok()
            .and_then(|v| v.get("max_position_embeddings").and_then(|m| m.as_u64()))
            .unwrap_or(512) as usize;
        Ok(super::mlm::MaskedLm {
            bert,
            head,
            mask_id,
            max_len,
            device: device.clone(),
        })
    }

    /// A BERT encoder (sentence-transformers) from the folder's weights.
    pub fn encoder(&self, dtype: DType, device: &Device) -> Result<Encoder, LoadError> {
        let config_path = self.dir.join("config.json");
        let config: candle_transformers::models::bert::Config =
            serde_json::from_str(&self.config_text)
                .map_err(|e| corrupt(&config_path, format!("config.json: {}", one_line(e))))?;
        let tensors = self.tensors(device)?;
        let vb = candle_nn::VarBuilder::from_tensors(tensors, dtype, device);
        let model = candle_transformers::models::bert::BertModel::load(vb, &config)
            .map_err(|e| corrupt(&self.dir, one_line(e)))?;
        let max_len = serde_json::from_str::<serde_json::Value>(&self.config_text)
            .ok()
            .and_then(|v| v.get("max_position_embeddings").and_then(|m| m.as_u64()))
            .unwrap_or(512) as usize;
        // sentence-transformers truncates at `max_seq_length` (256 for all-MiniLM-L6-v2).
        let max_seq = std::fs::read_to_string(self.dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("max_seq_length").and_then(|m| m.as_u64()))
            .map_or(max_len, |m| m as usize);
        let normalize = std::fs::read_to_string(self.dir.join("modules.json"))
            .map(|t| t.contains("Normalize"))
            .unwrap_or(false);
        Ok(Encoder {
            model,
            max_len: max_seq.min(max_len),
            normalize,
            device: device.clone(),
        })
    }
}

/// A sentence encoder: BERT, mean pooling over real tokens, optional L2 normalization.
pub(crate) struct Encoder {
    model: candle_transformers::models::bert::BertModel,
    pub max_len: usize,
    pub normalize: bool,
    pub device: Device,
}

impl Encoder {
    /// One vector per text; `ids` are the tokenized texts with their special tokens.
    pub fn embed(&self, ids: &[Vec<u32>]) -> candle_core::Result<Vec<Vec<f32>>> {
        let b = ids.len();
        let t = ids.iter().map(Vec::len).max().unwrap_or(0);
        if b == 0 || t == 0 {
            return Ok(vec![Vec::new(); b]);
        }
        let mut flat = vec![0u32; b * t];
        let mut mask = vec![0u32; b * t];
        for (row, seq) in ids.iter().enumerate() {
            flat[row * t..row * t + seq.len()].copy_from_slice(seq);
            for m in &mut mask[row * t..row * t + seq.len()] {
                *m = 1;
            }
        }
        let input = Tensor::from_vec(flat, (b, t), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, t), &self.device)?;
        let types = input.zeros_like()?;
        let hidden = self
            .model
            .forward(&input, &types, Some(&mask))?
            .to_dtype(DType::F32)?;
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?;
        let mut pooled = summed.broadcast_div(&counts)?;
        if self.normalize {
            let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
            pooled = pooled.broadcast_div(&norm.clamp(1e-12, f64::MAX)?)?;
        }
        pooled.to_vec2::<f32>()
    }
}
