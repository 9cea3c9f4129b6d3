//! The Backend trait: whatever answers queries (candle, an HTTP server, a scripted model).

use serde::{Deserialize, Serialize};

use crate::case::{Case, QueryKind};

/// What a backend returns for one case. Errors that concern one item only (a prompt longer than
/// the context window, a server that returned garbage for this request) are `Error`, recorded in
/// the journal with their reason; the run goes on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Generated text (Chat).
    Response(String),
    /// Summed log-probability of each option's tokens, one per option (Choice), from a backend
    /// that does not say how many tokens each option had.
    Logprobs(Vec<f64>),
    /// Summed log-probability of each option's tokens and the number of tokens summed, one of
    /// each per option (Choice): what per-token averages and perplexities need.
    TokenLogprobs {
        /// Summed log-probability of each option's tokens.
        logprobs: Vec<f64>,
        /// How many tokens each option's sum covers.
        tokens: Vec<u32>,
    },
    /// One vector per text (Embed).
    Embeddings(Vec<Vec<f32>>),
    /// Label probabilities per text, labels in the model's order (Classify).
    Labels(Vec<Vec<(String, f64)>>),
    /// The outcome of a suffix search (SuffixSearch): the suffix of the lowest target loss,
    /// the loss of each step's best candidate, the steps run, whether greedy decoding produced
    /// the target, and the greedy reply to the prompt with the suffix (what detectors read).
    SuffixSearch {
        /// The suffix of the lowest target loss.
        suffix: String,
        /// The greedy reply to the prompt with the suffix.
        response: String,
        /// The target loss of each step's best candidate, in nats.
        losses: Vec<f64>,
        /// The steps run.
        steps: usize,
        /// Whether greedy decoding produced the target.
        target_hit: bool,
    },
    /// The outcome of an adaptive attack (Attack): every turn, and the best target reply,
    /// which detectors and judges read.
    Attack(crate::attack::AttackRecord),
    /// This item could not be answered, and why.
    Error(String),
}

impl Answer {
    /// The summed log-probability of each option of a Choice answer, with or without counts.
    pub fn logprobs(&self) -> Option<&[f64]> {
        match self {
            Answer::Logprobs(values)
            | Answer::TokenLogprobs {
                logprobs: values, ..
            } => Some(values),
            _ => None,
        }
    }

    /// The number of tokens scored for each option, where the backend counted them.
    pub fn option_tokens(&self) -> Option<&[u32]> {
        match self {
            Answer::TokenLogprobs { tokens, .. } => Some(tokens),
            _ => None,
        }
    }
}

/// How to generate text for Chat queries. The per-case seed is derived from `seed` and the case
/// id, so a sampled answer does not depend on which batch the case landed in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The longest answer, in tokens.
    pub max_new_tokens: usize,
    /// 0 means greedy decoding.
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this (1.0 keeps all).
    pub top_p: f64,
    /// Keep only the k most likely tokens when sampling (None keeps all).
    pub top_k: Option<usize>,
    /// The run's seed; each case's sampling seed is derived from it and the case id.
    pub seed: u64,
    /// Texts that end an answer where they appear (the text is cut before them).
    pub stop: Vec<String>,
}

impl Default for Generation {
    fn default() -> Self {
        Generation {
            max_new_tokens: 64,
            temperature: 0.0,
            top_p: 1.0,
            top_k: None,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// One file that defines the model's behaviour, with its digest (weights, tokenizer, template,
/// scripted profile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// The file's path as given (or its name inside the model folder).
    pub path: String,
    /// The sha256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// Who answered: recorded in manifest.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// e.g. `candle`, `openai`, `scripted`.
    pub backend: String,
    /// A human name for the model (file stem, served model name, profile name).
    pub model: String,
    /// Where it ran: `cpu`, `cuda:0`, `metal`, or the server's URL for a served model.
    pub device: String,
    /// The numeric type of the computation (`f32`, `bf16`, …), as the backend reports it.
    pub dtype: String,
    /// Every file that defines the model's behaviour, with its digest.
    pub files: Vec<FileDigest>,
    /// Free-form facts worth recording (architecture, quantization, chat template source).
    #[serde(default)]
    pub details: std::collections::BTreeMap<String, String>,
}

/// A failure of the backend as a whole (device lost, server unreachable after retries): the run
/// stops, keeping every attempt already journaled, and can be resumed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Answers batches of cases. Implementations never see probes, only cases.
pub trait Backend: Send {
    /// Who answers (for the manifest).
    fn model(&self) -> ModelInfo;

    /// The number of cases of this kind worth sending in one call.
    fn batch_size(&self, kind: QueryKind) -> usize;

    /// Answers every case of `batch` (all of one query kind), in order: the result has exactly
    /// `batch.len()` answers.
    fn answer(
        &mut self,
        batch: &[&Case],
        generation: &Generation,
    ) -> Result<Vec<Answer>, BackendError>;

    /// Whether this backend answers queries of `kind`, and why not: asked for every kind of a
    /// run before any case runs, so that a run it cannot finish stops with one line. The
    /// default answers every kind but `SuffixSearch`, which needs gradients through the weights.
    fn supports(&self, kind: QueryKind) -> Result<(), String> {
        match kind {
            QueryKind::SuffixSearch => Err(format!(
                "{} backend `{}` has no gradients: suffix search (GCG) needs open weights on the candle backend",
                self.model().backend,
                self.model().model
            )),
            // The run drives attacks itself, asking the target for Chat answers.
            QueryKind::Attack => self.supports(QueryKind::Chat),
            _ => Ok(()),
        }
    }

    /// Tokens this backend has generated so far, all calls together, where it counts them
    /// (progress shows tokens per second from it); None, the default, where it does not.
    fn generated_tokens(&self) -> Option<u64> {
        None
    }

    /// How many tokens `text` is in this model's tokenizer, where the backend has one (attack
    /// token budgets count replies with it); None, the default, where it does not.
    fn count_tokens(&self, _text: &str) -> Option<u64> {
        None
    }
}

/// A seed for one case, from the run's seed and the case id (FNV-1a over the id, mixed with the
/// run seed by SplitMix64), so that sampling is independent of batching and thread count.
pub fn case_seed(run_seed: u64, case_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in case_id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h ^ run_seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl FileDigest {
    /// The sha256 and size of a file, read in chunks.
    pub fn of_file(path: &std::path::Path) -> std::io::Result<FileDigest> {
        use sha2::Digest;
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            bytes += n as u64;
        }
        Ok(FileDigest {
            path: path.display().to_string(),
            sha256: hex::encode(hasher.finalize()),
            bytes,
        })
    }

    /// The digest of bytes already in memory (an embedded file).
    pub fn of_bytes(path: &str, data: &[u8]) -> FileDigest {
        use sha2::Digest;
        FileDigest {
            path: path.to_string(),
            sha256: hex::encode(sha2::Sha256::digest(data)),
            bytes: data.len() as u64,
        }
    }
}

/// One loaded model answering for several roles (the target, an attacker, a judge): each role
/// holds a clone, and every call locks the one backend. The run asks one role at a time, so
/// the lock is never contended; it only makes the sharing safe.
#[derive(Clone)]
pub struct SharedBackend(std::sync::Arc<std::sync::Mutex<Box<dyn Backend>>>);

impl SharedBackend {
    /// Shares `backend`.
    pub fn new(backend: Box<dyn Backend>) -> SharedBackend {
        SharedBackend(std::sync::Arc::new(std::sync::Mutex::new(backend)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Backend>> {
        // A poisoned lock means a call panicked; the backend's state is still what it was.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Backend for SharedBackend {
    fn model(&self) -> ModelInfo {
        self.lock().model()
    }
    fn batch_size(&self, kind: QueryKind) -> usize {
        self.lock().batch_size(kind)
    }
    fn answer(
        &mut self,
        batch: &[&Case],
        generation: &Generation,
    ) -> Result<Vec<Answer>, BackendError> {
        self.lock().answer(batch, generation)
    }
    fn supports(&self, kind: QueryKind) -> Result<(), String> {
        self.lock().supports(kind)
    }
    fn generated_tokens(&self) -> Option<u64> {
        self.lock().generated_tokens()
    }
    fn count_tokens(&self, text: &str) -> Option<u64> {
        self.lock().count_tokens(text)
    }
}
