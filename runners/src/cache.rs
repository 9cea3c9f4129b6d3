//! A content-addressed response cache for served models: the sha256 of (who answers, the
//! query, the generation settings, the case's seed) names a file holding the answer. A re-run
//! or a resumed run sends nothing it already has. Errors are never cached, so they are retried.

use std::path::{Path, PathBuf};

use audit_core::{case_seed, Answer, BackendError, Case, Generation, ModelInfo};
use sha2::{Digest, Sha256};

/// Answers on disk, by the content hash of what was asked and who answered. The openai backend
/// consults it per request; local backends (candle) are not cached and recompute on a re-run.
#[derive(Clone, Debug)]
pub struct ResponseCache {
    dir: PathBuf,
    identity: String,
}

impl ResponseCache {
    /// A cache under `dir` (created when missing) for answers of this model.
    pub fn new(dir: &Path, model: &ModelInfo) -> Result<ResponseCache, BackendError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackendError(format!("response cache {}: {e}", dir.display())))?;
        // Who answers: everything in the model's identity except where its files live.
        let files: Vec<(&str, u64)> = model
            .files
            .iter()
            .map(|f| (f.sha256.as_str(), f.bytes))
            .collect();
        let identity = serde_json::json!({
            "backend": model.backend,
            "model": model.model,
            "device": model.device,
            "dtype": model.dtype,
            "files": files,
            "details": model.details,
        })
        .to_string();
        Ok(ResponseCache {
            dir: dir.to_path_buf(),
            identity,
        })
    }

    /// The key of a case's answer.
    pub fn key(&self, case: &Case, generation: &Generation) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.identity.as_bytes());
        hasher.update([0]);
        hasher.update(
            serde_json::to_string(&case.query)
                .unwrap_or_default()
                .as_bytes(),
        );
        hasher.update([0]);
        hasher.update(
            serde_json::to_string(generation)
                .unwrap_or_default()
                .as_bytes(),
        );
        hasher.update([0]);
        hasher.update(case_seed(generation.seed, &case.id).to_le_bytes());
        hex::encode(hasher.finalize())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{}.json", &key[2..]))
    }

    /// The cached answer, if any.
    pub fn get(&self, key: &str) -> Option<Answer> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores an answer; errors are not stored (they are asked again next time).
    pub fn put(&self, key: &str, answer: &Answer) -> Result<(), BackendError> {
        if matches!(answer, Answer::Error(_)) {
            return Ok(());
        }
        let path = self.path(key);
        let error =
            |e: std::io::Error| BackendError(format!("response cache {}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let text = serde_json::to_string(answer).map_err(|e| BackendError(e.to_string()))?;
        // Write then rename, so that a killed run never leaves a half-written answer.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text).map_err(error)?;
        std::fs::rename(&partial, &path).map_err(error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;
    use audit_core::{Attributes, FileDigest, Query};

    fn case(prompt: &str) -> Case {
        Case {
            id: prompt.to_string(),
            probe: "p".into(),
            attributes: Attributes::new(),
            query: Query::Chat {
                system: None,
                history: vec![],
                prompt: prompt.to_string(),
            },
        }
    }

    fn model(name: &str) -> ModelInfo {
        ModelInfo {
            backend: "openai".into(),
            model: name.into(),
            device: String::new(),
            dtype: String::new(),
            files: vec![FileDigest::of_bytes("m", name.as_bytes())],
            details: Default::default(),
        }
    }

    #[test]
    fn answers_come_back_and_errors_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::new(dir.path(), &model("m")).unwrap();
        let generation = Generation::default();
        let (a, b) = (case("a"), case("b"));
        let (key_a, key_b) = (cache.key(&a, &generation), cache.key(&b, &generation));
        assert_ne!(key_a, key_b);
        assert_eq!(cache.get(&key_a), None);
        let answer = Answer::Response("hello".into());
        cache.put(&key_a, &answer).unwrap();
        assert_eq!(cache.get(&key_a), Some(answer));
        cache.put(&key_b, &Answer::Error("boom".into())).unwrap();
        assert_eq!(cache.get(&key_b), None, "an error is asked again");
        // A second cache over the same folder (a re-run) finds the answer.
        let again = ResponseCache::new(dir.path(), &model("m")).unwrap();
        assert!(again.get(&key_a).is_some());
    }

    #[test]
    fn another_seed_settings_or_model_is_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::new(dir.path(), &model("m")).unwrap();
        let a = case("a");
        let generation = Generation::default();
        let key = cache.key(&a, &generation);
        assert_eq!(key, cache.key(&a, &generation), "the key is a function");
        let seeded = Generation {
            seed: 9,
            ..Generation::default()
        };
        assert_ne!(key, cache.key(&a, &seeded));
        let longer = Generation {
            max_new_tokens: generation.max_new_tokens + 1,
            ..Generation::default()
        };
        assert_ne!(key, cache.key(&a, &longer));
        let other = ResponseCache::new(dir.path(), &model("n")).unwrap();
        assert_ne!(key, other.key(&a, &generation));
    }
}
