//! The toxicity classifier: the Jigsaw 6-label BiLSTM (Embedding → BiLSTM → GlobalMaxPool1D →
//! Dense(relu) → Dense(sigmoid)) on candle, answering Classify queries with the six label
//! probabilities. It is the backend of the `toxicity` judge (`--judge toxicity=DIR`), where DIR
//! holds config.json, model.safetensors and word_index.json (see the model's SOURCE.md).
//!
//! Tokenization follows the Keras tokenizer it was trained with, exactly: lowercase, every
//! character of `keras_filters` becomes a space, split on spaces, words outside the first
//! `vocab_size` ids dropped, then left-truncated and left-padded with 0 to `max_len`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use audit_core::{
    Answer, Backend, BackendError, Case, FileDigest, Generation, ModelInfo, Query, QueryKind,
};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::rnn::{Direction, LSTMConfig, RNN};
use candle_nn::{Embedding, Linear, Module, VarBuilder};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Config {
    vocab_size: usize,
    embedding_dim: usize,
    lstm_units: usize,
    dense_units: usize,
    labels: Vec<String>,
    max_len: usize,
    keras_filters: String,
    #[serde(default = "yes")]
    lower: bool,
}

fn yes() -> bool {
    true
}

/// The classifier, loaded.
pub struct ToxicityBackend {
    config: Config,
    words: HashMap<String, u32>,
    embedding: Embedding,
    forward: candle_nn::LSTM,
    backward: candle_nn::LSTM,
    dense1: Linear,
    dense2: Linear,
    device: Device,
    files: Vec<FileDigest>,
}

/// A classifier folder that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ToxicityError {
    pub path: String,
    pub message: String,
}

impl ToxicityBackend {
    /// Whether a folder looks like this classifier (it has a word index).
    pub fn recognises(dir: &Path) -> bool {
        dir.join("word_index.json").is_file()
    }

    /// Loads the classifier from its folder.
    pub fn load(dir: &Path) -> Result<ToxicityBackend, ToxicityError> {
        let error = |path: &Path, message: String| ToxicityError {
            path: path.display().to_string(),
            message,
        };
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| error(&path, e.to_string()))
        };
        let config_bytes = read("config.json")?;
        let config: Config = serde_json::from_slice(&config_bytes).map_err(|e| {
            error(
                &dir.join("config.json"),
                format!("not a classifier config: {e}"),
            )
        })?;
        let words_bytes = read("word_index.json")?;
        let words: HashMap<String, u32> = serde_json::from_slice(&words_bytes).map_err(|e| {
            error(
                &dir.join("word_index.json"),
                format!("not a word index: {e}"),
            )
        })?;
        let weights_path = dir.join("model.safetensors");
        let weights_bytes = read("model.safetensors")?;
        let device = Device::Cpu;
        let tensors =
            candle_core::safetensors::load_buffer(&weights_bytes, &device).map_err(|e| {
                error(
                    &weights_path,
                    format!("corrupt or truncated safetensors: {e}"),
                )
            })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let build = || -> candle_core::Result<_> {
            let embedding =
                candle_nn::embedding(config.vocab_size, config.embedding_dim, vb.pp("embedding"))?;
            let lstm = |direction| {
                candle_nn::lstm(
                    config.embedding_dim,
                    config.lstm_units,
                    LSTMConfig {
                        direction,
                        ..LSTMConfig::default()
                    },
                    vb.pp("lstm"),
                )
            };
            let forward = lstm(Direction::Forward)?;
            let backward = lstm(Direction::Backward)?;
            let dense1 =
                candle_nn::linear(2 * config.lstm_units, config.dense_units, vb.pp("dense1"))?;
            let dense2 =
                candle_nn::linear(config.dense_units, config.labels.len(), vb.pp("dense2"))?;
            Ok((embedding, forward, backward, dense1, dense2))
        };
        let (embedding, forward, backward, dense1, dense2) = build().map_err(|e| {
            error(
                &weights_path,
                format!("weights do not fit config.json: {e}"),
            )
        })?;
        let files = vec![
            FileDigest::of_bytes(&weights_path.display().to_string(), &weights_bytes),
            FileDigest::of_bytes(
                &dir.join("word_index.json").display().to_string(),
                &words_bytes,
            ),
            FileDigest::of_bytes(
                &dir.join("config.json").display().to_string(),
                &config_bytes,
            ),
        ];
        Ok(ToxicityBackend {
            config,
            words,
            embedding,
            forward,
            backward,
            dense1,
            dense2,
            device,
            files,
        })
    }

    /// Token ids of a text, left-padded/truncated to `max_len`, as the Keras tokenizer does.
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        let lowered = if self.config.lower {
            text.to_lowercase()
        } else {
            text.to_string()
        };
        let cleaned: String = lowered
            .chars()
            .map(|c| {
                if self.config.keras_filters.contains(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        let ids: Vec<u32> = cleaned
            .split(' ')
            .filter(|w| !w.is_empty())
            .filter_map(|w| self.words.get(w).copied())
            .filter(|&id| (id as usize) < self.config.vocab_size)
            .collect();
        let keep = &ids[ids.len().saturating_sub(self.config.max_len)..];
        let mut padded = vec![0u32; self.config.max_len - keep.len()];
        padded.extend_from_slice(keep);
        padded
    }

    /// The label probabilities of each text.
    pub fn classify(&self, texts: &[String]) -> candle_core::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<u32> = texts.iter().flat_map(|t| self.token_ids(t)).collect();
        let ids = Tensor::from_vec(ids, (texts.len(), self.config.max_len), &self.device)?;
        let embedded = self.embedding.forward(&ids)?;
        let forward = self
            .forward
            .states_to_tensor(&self.forward.seq(&embedded)?)?;
        // The backward LSTM reads the sequence time-reversed; max-pooling over time makes the
        // order of its outputs irrelevant.
        let reversed: Vec<u32> = (0..self.config.max_len as u32).rev().collect();
        let reversed = Tensor::from_vec(reversed, self.config.max_len, &self.device)?;
        let backward_input = embedded.index_select(&reversed, 1)?;
        let backward = self
            .backward
            .states_to_tensor(&self.backward.seq(&backward_input)?)?;
        let pooled = Tensor::cat(&[forward.max(1)?, backward.max(1)?], D::Minus1)?;
        let hidden = self.dense1.forward(&pooled)?.relu()?;
        let logits = self.dense2.forward(&hidden)?;
        candle_nn::ops::sigmoid(&logits)?.to_vec2::<f32>()
    }
}

impl Backend for ToxicityBackend {
    fn model(&self) -> ModelInfo {
        ModelInfo {
            backend: "candle".to_string(),
            model: "toxic-comment-classifier-bilstm".to_string(),
            device: "cpu".to_string(),
            dtype: "f32".to_string(),
            files: self.files.clone(),
            details: BTreeMap::from([("labels".to_string(), self.config.labels.join(","))]),
        }
    }

    fn batch_size(&self, _kind: QueryKind) -> usize {
        64
    }

    fn answer(
        &mut self,
        batch: &[&Case],
        _generation: &Generation,
    ) -> Result<Vec<Answer>, BackendError> {
        batch
            .iter()
            .map(|case| match &case.query {
                Query::Classify { texts } => {
                    let probabilities = self
                        .classify(texts)
                        .map_err(|e| BackendError(format!("toxicity classifier: {e}")))?;
                    Ok(Answer::Labels(
                        probabilities
                            .into_iter()
                            .map(|row| {
                                self.config
                                    .labels
                                    .iter()
                                    .cloned()
                                    .zip(row.into_iter().map(f64::from))
                                    .collect()
                            })
                            .collect(),
                    ))
                }
                other => Ok(Answer::Error(format!(
                    "the toxicity classifier answers classify queries only, not {}",
                    other.kind().name()
                ))),
            })
            .collect()
    }
}
