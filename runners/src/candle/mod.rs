//! The candle backend: real open weights (GGUF and HF safetensors) on CPU, CUDA or Metal.
//!
//! One batched decoder forward of our own (`model`) serves both query kinds: `Choice` scores
//! options by summed log-probability (lm-evaluation-harness's convention, see `score`) and
//! `Chat` renders the model's chat template and decodes greedily or with seeded sampling
//! (`generate`). Tokenizers and templates come from the model's own files (`tokenizer`,
//! `template`), so that token ids and prompts equal what transformers produces.

mod generate;
mod gguf;
pub mod gguf_header;
mod hf;
mod lora;
mod mlm;
mod model;
mod score;
mod template;
mod tokenizer;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use audit_core::{
    Answer, Backend, BackendError, Case, FileDigest, Generation, ModelInfo, Query, QueryKind,
};
use candle_core::{DType, Device};
use sha2::{Digest, Sha256};

use self::model::Model;
use self::template::ChatTemplate;
pub use self::template::TemplateDate;
use self::tokenizer::Specials;

/// How to run a model: the device, the working dtype and the batch size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandleOptions {
    /// `cpu`, `cuda:N` or `metal`.
    pub device: String,
    /// `f32`, `bf16` or `f16`; `None` picks f32 on CPU and bf16 on GPUs.
    pub dtype: Option<String>,
    /// How a GGUF file's weights are held: `quantized` (its blocks kept in memory), or `f32`,
    /// `bf16`, `f16` (dequantized at load, the same as `dtype`). `None`: dequantized when the
    /// dense weights take at most `DENSE_LIMIT` bytes, else quantized (see `weights_mode`).
    pub weights: Option<String>,
    /// Cases per call; `None` picks one from the device and the query kind.
    pub batch_size: Option<usize>,
    /// A PEFT LoRA adapter folder applied to the model at load (see `lora`).
    pub adapter: Option<PathBuf>,
    /// Apply the adapter unmerged even on dense weights (slower; checks the merge).
    pub adapter_unmerged: bool,
    /// The date chat templates print (`strftime_now`): an input of the run, not the clock.
    pub date: TemplateDate,
}

impl Default for CandleOptions {
    fn default() -> Self {
        CandleOptions {
            device: "cpu".to_string(),
            dtype: None,
            weights: None,
            batch_size: None,
            adapter: None,
            adapter_unmerged: false,
            date: TemplateDate::DEFAULT,
        }
    }
}

/// Why a model could not be loaded. Every message is one line that names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path} is corrupt or truncated: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{path}: unsupported architecture `{architecture}` (supported: llama, mistral, qwen2, gemma3, gemma3_text, bert)")]
    UnsupportedArchitecture { path: String, architecture: String },
    #[error("{path}: {what} is not supported by the candle backend")]
    Unsupported { path: String, what: String },
    #[error("{path}: no usable tokenizer: {reason}")]
    MissingTokenizer { path: String, reason: String },
    #[error("{path}: chat template does not compile: {reason}")]
    Template { path: String, reason: String },
    #[error("{path}: neither a .gguf file nor a folder with config.json and model.safetensors")]
    UnknownFormat { path: String },
    #[error("device `{device}`: {reason}")]
    Device { device: String, reason: String },
    #[error("dtype `{dtype}` is not one of f32, bf16, f16")]
    Dtype { dtype: String },
    #[error("{path}: --weights {weights}: {reason}")]
    Weights {
        path: String,
        weights: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Adapter { path: String, reason: String },
}

/// What runs the model: our decoder forward, a sentence encoder, or a masked LM.
enum Engine {
    Decoder(Model),
    Encoder(hf::Encoder),
    MaskedLm(Box<mlm::MaskedLm>),
}

pub use mlm::{aligned_positions, matching_blocks};

/// A model loaded for answering queries.
pub struct CandleBackend {
    engine: Engine,
    tokenizer: tokenizers::Tokenizer,
    specials: Specials,
    template: Option<ChatTemplate>,
    info: ModelInfo,
    batch_size: Option<usize>,
}

/// Compiles and renders a chat template from a model file once, under the limits every
/// template runs with (`template::TEMPLATE_FUEL`, …): the fuzzer's entry point.
pub fn render_chat_template(
    source: &str,
    messages: &[audit_core::Message],
) -> Result<String, String> {
    ChatTemplate::new(source, "<s>", "</s>", TemplateDate::DEFAULT)?.render(messages)
}

fn parse_device(device: &str) -> Result<Device, LoadError> {
    let err = |reason: String| LoadError::Device {
        device: device.to_string(),
        reason,
    };
    match device {
        "cpu" => Ok(Device::Cpu),
        "metal" => Device::new_metal(0).map_err(|e| err(gguf::one_line(e))),
        d if d == "cuda" || d.starts_with("cuda:") => {
            let index = d
                .strip_prefix("cuda:")
                .map_or(Ok(0), str::parse::<usize>)
                .map_err(|_| err("expected cuda:N".into()))?;
            Device::new_cuda(index).map_err(|e| err(gguf::one_line(e)))
        }
        _ => Err(err("expected cpu, cuda:N or metal".into())),
    }
}

fn parse_dtype(dtype: Option<&str>, device: &Device) -> Result<DType, LoadError> {
    match dtype {
        None if device.is_cpu() => Ok(DType::F32),
        None => Ok(DType::BF16),
        Some("f32") => Ok(DType::F32),
        Some("bf16") => Ok(DType::BF16),
        Some("f16") => Ok(DType::F16),
        Some(other) => Err(LoadError::Dtype {
            dtype: other.to_string(),
        }),
    }
}

/// Dense weights up to this many bytes are the default for a GGUF file (exact with respect to
/// transformers, and the fastest on the CPU); above it the blocks stay quantized, so that a
/// model needs about its file's size in memory. 2 GiB: a 0.5B model in f32.
pub const DENSE_LIMIT: u64 = 2 << 30;

/// The weights mode of a load: GGUF blocks kept, and the working dtype.
fn weights_mode(
    path: &Path,
    options: &CandleOptions,
    device: &Device,
    gguf: Option<&gguf::GgufFile>,
) -> Result<(gguf::Quantized, DType), LoadError> {
    let dtype = parse_dtype(options.dtype.as_deref(), device)?;
    let err = |weights: &str, reason: String| LoadError::Weights {
        path: path.display().to_string(),
        weights: weights.to_string(),
        reason,
    };
    match options.weights.as_deref() {
        Some("quantized") => {
            if gguf.is_none() {
                return Err(err(
                    "quantized",
                    "needs a GGUF file (an HF folder's weights are dense)".into(),
                ));
            }
            if dtype != DType::F32 && options.dtype.is_some() {
                return Err(err(
                    "quantized",
                    format!(
                        "runs with f32 activations; --dtype {} does not apply",
                        dtype_name(dtype)
                    ),
                ));
            }
            Ok((gguf::Quantized::Keep, DType::F32))
        }
        Some(w @ ("f32" | "bf16" | "f16")) => {
            let wanted = parse_dtype(Some(w), device)?;
            if options.dtype.is_some() && wanted != dtype {
                return Err(err(
                    w,
                    format!("conflicts with --dtype {}", dtype_name(dtype)),
                ));
            }
            Ok((gguf::Quantized::Dequantize, wanted))
        }
        Some(other) => Err(err(other, "expected quantized, f32, bf16 or f16".into())),
        None => match gguf {
            Some(file) if options.dtype.is_none() && file.dense_bytes(dtype) > DENSE_LIMIT => {
                Ok((gguf::Quantized::Keep, DType::F32))
            }
            _ => Ok((gguf::Quantized::Dequantize, dtype)),
        },
    }
}

fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        _ => "other",
    }
}

/// The sha256 and size of a file, read in chunks.
pub(crate) fn digest(path: &Path) -> Result<FileDigest, LoadError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| LoadError::Io {
        path: shown.clone(),
        reason: gguf::one_line(e),
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(FileDigest {
        path: shown.clone(),
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

impl CandleBackend {
    /// Loads a `.gguf` file or an HF folder (config.json, model.safetensors, tokenizer.json).
    pub fn load(path: &Path, options: &CandleOptions) -> Result<CandleBackend, LoadError> {
        let device = parse_device(&options.device)?;
        let is_gguf = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        if !path.exists() {
            return Err(LoadError::Io {
                path: path.display().to_string(),
                reason: "no such file or folder".into(),
            });
        }
        let mut backend = if is_gguf {
            Self::load_gguf(path, &device, options)?
        } else if path.is_dir() {
            let (_, dtype) = weights_mode(path, options, &device, None)?;
            Self::load_folder(path, &device, dtype, options.date)?
        } else {
            return Err(LoadError::UnknownFormat {
                path: path.display().to_string(),
            });
        };
        backend.batch_size = options.batch_size;
        backend.info.device = options.device.clone();
        if let Some(dir) = &options.adapter {
            backend.apply_adapter(dir, options.adapter_unmerged)?;
        }
        Ok(backend)
    }

    /// Applies a PEFT LoRA adapter to the decoder; its files join the model's in the manifest
    /// and the model is named `BASE+ADAPTER`.
    fn apply_adapter(&mut self, dir: &Path, unmerged: bool) -> Result<(), LoadError> {
        let Engine::Decoder(model) = &mut self.engine else {
            return Err(LoadError::Unsupported {
                path: dir.display().to_string(),
                what: format!(
                    "a LoRA adapter on {} (a sentence encoder; adapters apply to decoders)",
                    self.info.model
                ),
            });
        };
        let adapter = lora::Adapter::open(dir, model.cfg.n_layers)?;
        let applied = lora::apply(model, &adapter, unmerged)?;
        let how = match (applied.merged, applied.unmerged) {
            (m, 0) => format!("merged into {m} {} weights", self.info.dtype),
            (0, u) => format!("applied unmerged on {u} weights"),
            (m, u) => format!("merged into {m} weights, unmerged on {u} quantized ones"),
        };
        self.info
            .details
            .insert("adapter".to_string(), adapter.describe(&how));
        for file in adapter.files() {
            self.info.files.push(digest(&file)?);
        }
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.info.model = format!("{}+{name}", self.info.model);
        Ok(())
    }

    fn load_gguf(
        path: &Path,
        device: &Device,
        options: &CandleOptions,
    ) -> Result<CandleBackend, LoadError> {
        let shown = path.display().to_string();
        let mut file = gguf::GgufFile::open(path)?;
        let (quantized, dtype) = weights_mode(path, options, device, Some(&file))?;
        let architecture = file.architecture()?;
        file.family()?;
        let (tokenizer, specials) =
            tokenizer::from_gguf(&file.content).map_err(|reason| LoadError::MissingTokenizer {
                path: shown.clone(),
                reason,
            })?;
        let token_text = |id: Option<u32>| {
            id.and_then(|id| tokenizer.id_to_token(id))
                .unwrap_or_default()
        };
        let template = match file.meta_string("tokenizer.chat_template") {
            Some(source) => Some(
                ChatTemplate::new(
                    &source,
                    &token_text(specials.bos),
                    &token_text(specials.eos),
                    options.date,
                )
                .map_err(|reason| LoadError::Template {
                    path: shown.clone(),
                    reason,
                })?,
            ),
            None => None,
        };
        let model = file.model(dtype, device, quantized)?;
        let mut details = BTreeMap::new();
        details.insert("format".to_string(), "gguf".to_string());
        details.insert("architecture".to_string(), architecture);
        let chosen = if options.weights.is_some() || options.dtype.is_some() {
            "chosen"
        } else {
            "default"
        };
        let (mode, how) = match quantized {
            gguf::Quantized::Keep => (
                "quantized",
                format!(
                    "GGUF blocks kept in memory ({}; Q5_0 held as Q8_0, the same values); candle's quantized matmul with activations quantized to Q8 (as llama.cpp) for Q4_0, Q8_0 and k-quants, Q4_1/Q5_1 dequantized per product; activations f32 ({chosen}: dense f32 weights would take {:.2} GB)",
                    file.type_counts(),
                    file.dense_bytes(DType::F32) as f64 / 1e9
                ),
            ),
            gguf::Quantized::Dequantize => (
                dtype_name(dtype),
                format!(
                    "dequantized to {} at load ({}; {chosen}: {:.2} GB dense)",
                    dtype_name(dtype),
                    file.type_counts(),
                    file.dense_bytes(dtype) as f64 / 1e9
                ),
            ),
        };
        details.insert("weights_mode".to_string(), mode.to_string());
        details.insert("weights".to_string(), how);
        details.insert(
            "tokenizer".to_string(),
            "rebuilt from GGUF metadata (tokenizer.ggml.*)".to_string(),
        );
        details.insert(
            "chat_template".to_string(),
            if template.is_some() {
                "tokenizer.chat_template".to_string()
            } else {
                "none (chat queries are answered with an error)".to_string()
            },
        );
        details.insert(
            "choice_scoring".to_string(),
            "lm-evaluation-harness: summed log-prob of the option's tokens after the context's; empty context = BOS-prefixed sentence".to_string(),
        );
        let model_name = path
            .file_stem()
            .map_or_else(|| shown.clone(), |s| s.to_string_lossy().into_owned());
        let info = ModelInfo {
            backend: "candle".to_string(),
            model: model_name,
            device: String::new(),
            dtype: dtype_name(dtype).to_string(),
            files: vec![digest(path)?],
            details,
        };
        Ok(CandleBackend {
            engine: Engine::Decoder(model),
            tokenizer,
            specials,
            template,
            info,
            batch_size: None,
        })
    }

    fn load_folder(
        dir: &Path,
        device: &Device,
        dtype: DType,
        date: TemplateDate,
    ) -> Result<CandleBackend, LoadError> {
        let shown = dir.display().to_string();
        let folder = hf::Folder::open(dir)?;
        let (mut tokenizer, specials, template_source) = folder.tokenizer()?;
        let engine = match folder.model_type.as_str() {
            "llama" | "mistral" | "qwen2" | "gemma3_text" => {
                Engine::Decoder(folder.decoder(dtype, device)?)
            }
            "bert" if folder.is_masked_lm() => {
                Engine::MaskedLm(Box::new(folder.masked_lm(&tokenizer, dtype, device)?))
            }
            "bert" => {
                let encoder = folder.encoder(dtype, device)?;
                // sentence-transformers truncates every text at its maximum sequence length.
                let _ = tokenizer.with_truncation(Some(tokenizers::TruncationParams {
                    max_length: encoder.max_len,
                    ..Default::default()
                }));
                let _ = tokenizer.with_padding(None);
                Engine::Encoder(encoder)
            }
            other => {
                return Err(LoadError::UnsupportedArchitecture {
                    path: folder.dir.join("config.json").display().to_string(),
                    architecture: other.to_string(),
                })
            }
        };
        let token_text = |id: Option<u32>| {
            id.and_then(|id| tokenizer.id_to_token(id))
                .unwrap_or_default()
        };
        let template = match (&engine, template_source) {
            (Engine::Decoder(_), Some(source)) => Some(
                ChatTemplate::new(
                    &source,
                    &token_text(specials.bos),
                    &token_text(specials.eos),
                    date,
                )
                .map_err(|reason| LoadError::Template {
                    path: shown.clone(),
                    reason,
                })?,
            ),
            _ => None,
        };
        let mut details = BTreeMap::new();
        details.insert("format".to_string(), "hf-safetensors".to_string());
        details.insert("architecture".to_string(), folder.model_type.clone());
        details.insert(
            "weights".to_string(),
            format!("{} at load", dtype_name(dtype)),
        );
        details.insert("tokenizer".to_string(), "tokenizer.json".to_string());
        if let Engine::Encoder(e) = &engine {
            details.insert(
                "pooling".to_string(),
                format!(
                    "mean over tokens{}, max {} tokens",
                    if e.normalize { ", L2-normalized" } else { "" },
                    e.max_len
                ),
            );
        }
        if let Engine::MaskedLm(_) = &engine {
            details.insert(
                "choice_scoring".to_string(),
                "masked LM: pseudo-log-likelihood of the tokens the options share (difflib alignment), each masked in turn (Nangia et al. 2020)".to_string(),
            );
        }
        let files = folder
            .files
            .iter()
            .map(|f| digest(f))
            .collect::<Result<Vec<_>, _>>()?;
        let model_name = dir
            .file_name()
            .map_or_else(|| shown.clone(), |s| s.to_string_lossy().into_owned());
        Ok(CandleBackend {
            engine,
            tokenizer,
            specials,
            template,
            info: ModelInfo {
                backend: "candle".to_string(),
                model: model_name,
                device: String::new(),
                dtype: dtype_name(dtype).to_string(),
                files,
                details,
            },
            batch_size: None,
        })
    }

    /// The tokenizer (built from GGUF metadata, or the folder's tokenizer.json).
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// The decoder, or why this model cannot answer decoder queries.
    pub(crate) fn decoder(&self) -> Result<&Model, String> {
        match &self.engine {
            Engine::Decoder(m) => Ok(m),
            Engine::Encoder(_) => Err(format!(
                "{} is a sentence encoder: it answers embed queries only",
                self.info.model
            )),
            Engine::MaskedLm(_) => Err(format!(
                "{} is a masked LM: it answers choice queries only",
                self.info.model
            )),
        }
    }

    /// The context window in tokens (the encoder's maximum length for encoders).
    pub fn context_len(&self) -> usize {
        match &self.engine {
            Engine::Decoder(m) => m.cfg.context_len,
            Engine::Encoder(e) => e.max_len,
            Engine::MaskedLm(m) => m.max_len,
        }
    }

    /// One vector per text (encoders only): sentence-transformers' pooling of the folder.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let Engine::Encoder(encoder) = &self.engine else {
            return Err(format!(
                "{} is not a sentence encoder: embed queries need one",
                self.info.model
            ));
        };
        let ids = texts
            .iter()
            .map(|t| {
                self.tokenizer
                    .encode(t.as_str(), true)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(gguf::one_line)
            })
            .collect::<Result<Vec<_>, _>>()?;
        encoder.embed(&ids).map_err(gguf::one_line)
    }

    /// Token ids of `text` without added BOS/EOS (special tokens written in the text match).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(gguf::one_line)
    }

    /// Text of token ids, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.tokenizer.decode(ids, true).map_err(gguf::one_line)
    }

    /// The prompt a chat query becomes, through the model's chat template.
    pub fn render_chat(
        &self,
        system: Option<&str>,
        history: &[audit_core::Message],
        prompt: &str,
    ) -> Result<String, String> {
        let template = self
            .template
            .as_ref()
            .ok_or_else(|| "the model has no chat template".to_string())?;
        let mut messages = Vec::with_capacity(history.len() + 2);
        if let Some(system) = system {
            messages.push(audit_core::Message {
                role: audit_core::Role::System,
                content: system.to_string(),
            });
        }
        messages.extend_from_slice(history);
        messages.push(audit_core::Message {
            role: audit_core::Role::User,
            content: prompt.to_string(),
        });
        template.render(&messages)
    }

    /// A whole conversation through the model's chat template, with tool definitions for
    /// templates that have a tools branch (Qwen 2.5); for checks against transformers.
    pub fn render_messages(
        &self,
        messages: &[audit_core::Message],
        tools: Option<&serde_json::Value>,
    ) -> Result<String, String> {
        let template = self
            .template
            .as_ref()
            .ok_or_else(|| "the model has no chat template".to_string())?;
        template.render_with_tools(messages, tools)
    }

    /// Continues raw prompts (token ids, no chat template) as `Chat` does; one seed per prompt.
    /// Returns the generated ids of each prompt, without the stop token.
    pub fn complete(
        &self,
        prompts: &[Vec<u32>],
        generation: &Generation,
        seeds: &[u64],
    ) -> Result<Vec<Vec<u32>>, String> {
        if seeds.len() != prompts.len() {
            return Err("complete: one seed per prompt".into());
        }
        on_pool(|| generate::complete(self, prompts, generation, seeds))
    }

    /// For each token of `ids` after the first: its raw logit and its log-probability given the
    /// tokens before it (one row, no padding). For checks against transformers' logits.
    pub fn token_scores(&self, ids: &[u32]) -> Result<Vec<(f32, f64)>, String> {
        let model = self.decoder()?;
        let run = || -> candle_core::Result<Vec<(f32, f64)>> {
            let n = ids.len().saturating_sub(1);
            let positions = vec![(0..n as u32).map(Some).collect::<Vec<_>>()];
            let mut cache = model::Cache::new(model.cfg.n_layers, 1, n);
            let hidden = model.forward(&[ids[..n].to_vec()], &positions, &mut cache)?;
            let rows: Vec<u32> = (0..n as u32).collect();
            let logits = model.logits(&model.gather_rows(&hidden, &rows)?)?;
            let targets = &ids[1..];
            let lp = model::target_logprobs(&logits, targets)?;
            let idx = candle_core::Tensor::new(targets, logits.device())?.unsqueeze(1)?;
            let picked = logits.gather(&idx, candle_core::D::Minus1)?.squeeze(1)?;
            Ok(picked.to_vec1::<f32>()?.into_iter().zip(lp).collect())
        };
        run().map_err(gguf::one_line)
    }

    /// The ids a sentence is scored after when a choice has an empty context (BOS, else EOS).
    pub fn sentence_prefix(&self) -> Option<u32> {
        self.specials.prefix_id()
    }

    /// Whether the tokenizer puts BOS in front of every text (Gemma).
    pub fn add_bos(&self) -> bool {
        self.specials.add_bos
    }

    fn answer_choices(&self, batch: &[&Case]) -> Result<Vec<Answer>, BackendError> {
        on_pool(|| score::answer(self, batch))
    }

    fn answer_chats(
        &self,
        batch: &[&Case],
        generation: &Generation,
    ) -> Result<Vec<Answer>, BackendError> {
        on_pool(|| generate::answer(self, batch, generation))
    }
}

/// Runs `f` on a thread of rayon's global pool, whose threads candle's CPU matmul splits work
/// over. Called from outside the pool, every matmul would wake the pool and put the caller to
/// sleep on a latch, and the ops between matmuls would run on a third thread competing with the
/// pool's idle-spinning workers (on a 2-core machine: 3 busy threads for 2 cores). From inside,
/// the caller is one of the pool's threads and takes its share of every matmul.
fn on_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}

impl Backend for CandleBackend {
    fn model(&self) -> ModelInfo {
        self.info.clone()
    }

    fn batch_size(&self, kind: QueryKind) -> usize {
        if let Some(n) = self.batch_size {
            return n.max(1);
        }
        let gpu = match &self.engine {
            Engine::Decoder(m) => !m.device.is_cpu(),
            Engine::Encoder(e) => !e.device.is_cpu(),
            Engine::MaskedLm(m) => !m.device.is_cpu(),
        };
        match (kind, gpu) {
            (QueryKind::Choice, false) => 32,
            (QueryKind::Choice, true) => 128,
            (QueryKind::Chat, false) => 16,
            (QueryKind::Chat, true) => 64,
            (_, false) => 32,
            (_, true) => 128,
        }
    }

    fn answer(
        &mut self,
        batch: &[&Case],
        generation: &Generation,
    ) -> Result<Vec<Answer>, BackendError> {
        let kind = match batch.first() {
            Some(case) => case.query.kind(),
            None => return Ok(Vec::new()),
        };
        if batch.iter().any(|c| c.query.kind() != kind) {
            return Err(BackendError(
                "candle: a batch mixes query kinds; the runner sends one kind per call".into(),
            ));
        }
        if let (QueryKind::Choice, Engine::MaskedLm(model)) = (kind, &self.engine) {
            return Ok(mlm::answer(model, &self.tokenizer, &self.info.model, batch));
        }
        if let (QueryKind::Choice | QueryKind::Chat, Err(reason)) = (kind, self.decoder()) {
            return Ok(batch
                .iter()
                .map(|_| Answer::Error(reason.clone()))
                .collect());
        }
        match kind {
            QueryKind::Choice => self.answer_choices(batch),
            QueryKind::Chat => self.answer_chats(batch, generation),
            QueryKind::Embed => Ok(batch
                .iter()
                .map(|case| match &case.query {
                    Query::Embed { texts } => match self.embed(texts) {
                        Ok(vectors) => Answer::Embeddings(vectors),
                        Err(reason) => Answer::Error(reason),
                    },
                    _ => Answer::Error("not an embed query".into()),
                })
                .collect()),
            QueryKind::Classify => Ok(batch
                .iter()
                .map(|_| {
                    Answer::Error(format!(
                        "candle: {} has no classification head",
                        self.info.model
                    ))
                })
                .collect()),
        }
    }
}
