//! A content-addressed response cache around any backend: the sha256 of (who answers, the
//! query, the generation settings, the case's seed) names a file holding the answer. A re-run
//! or a resumed run sends nothing it already has. Errors are never cached, so they are retried.

use std::path::{Path, PathBuf};

use audit_core::{
    case_seed, Answer, Backend, BackendError, Case, Generation, ModelInfo, QueryKind,
};
use sha2::{Digest, Sha256};

/// Answers on disk, by the content hash of what was asked and who answered.
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

/// A backend whose answers are remembered on disk (for backends that answer a batch at once;
/// the openai backend uses a `ResponseCache` per request instead).
pub struct Cached {
    inner: Box<dyn Backend>,
    cache: ResponseCache,
    /// Answers served from the cache and sent to the backend, for the run's log and tests.
    pub hits: usize,
    pub misses: usize,
}

impl Cached {
    /// Wraps `inner`, storing answers under `dir` (created when missing).
    pub fn new(inner: Box<dyn Backend>, dir: &Path) -> Result<Cached, BackendError> {
        let cache = ResponseCache::new(dir, &inner.model())?;
        Ok(Cached {
            inner,
            cache,
            hits: 0,
            misses: 0,
        })
    }
}

impl Backend for Cached {
    fn model(&self) -> ModelInfo {
        self.inner.model()
    }

    fn batch_size(&self, kind: QueryKind) -> usize {
        self.inner.batch_size(kind)
    }

    fn answer(
        &mut self,
        batch: &[&Case],
        generation: &Generation,
    ) -> Result<Vec<Answer>, BackendError> {
        let keys: Vec<String> = batch
            .iter()
            .map(|c| self.cache.key(c, generation))
            .collect();
        let mut answers: Vec<Option<Answer>> = keys.iter().map(|k| self.cache.get(k)).collect();
        let missing: Vec<usize> = (0..batch.len()).filter(|&i| answers[i].is_none()).collect();
        self.hits += batch.len() - missing.len();
        self.misses += missing.len();
        if !missing.is_empty() {
            let cases: Vec<&Case> = missing.iter().map(|&i| batch[i]).collect();
            let fresh = self.inner.answer(&cases, generation)?;
            if fresh.len() != cases.len() {
                return Err(BackendError(format!(
                    "backend returned {} answers for {} cases",
                    fresh.len(),
                    cases.len()
                )));
            }
            for (&i, answer) in missing.iter().zip(fresh) {
                self.cache.put(&keys[i], &answer)?;
                answers[i] = Some(answer);
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Answer::Error("no answer".to_string())))
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;
    use crate::scripted::ScriptedBackend;
    use audit_core::{Attributes, FileDigest, Query};

    #[test]
    fn a_second_pass_is_served_from_the_cache() {
        let profile = "[chat]\nrefuse_probability = 0.5\n[[chat.rule]]\nprompt_matches = \"fail\"\nerror = \"boom\"";
        let inner =
            ScriptedBackend::parse(profile, "t", FileDigest::of_bytes("t", profile.as_bytes()))
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cached = Cached::new(Box::new(inner), dir.path()).unwrap();
        let cases: Vec<Case> = ["a", "b", "fail"]
            .iter()
            .map(|p| Case {
                id: p.to_string(),
                probe: "p".into(),
                attributes: Attributes::new(),
                query: Query::Chat {
                    system: None,
                    history: vec![],
                    prompt: p.to_string(),
                },
            })
            .collect();
        let refs: Vec<&Case> = cases.iter().collect();
        let generation = Generation::default();
        let first = cached.answer(&refs, &generation).unwrap();
        assert_eq!((cached.hits, cached.misses), (0, 3));
        let second = cached.answer(&refs, &generation).unwrap();
        assert_eq!(first, second);
        assert_eq!(
            (cached.hits, cached.misses),
            (2, 4),
            "the error is asked again"
        );
        let other = Generation {
            seed: 9,
            ..Generation::default()
        };
        cached.answer(&refs[..1], &other).unwrap();
        assert_eq!(cached.misses, 5, "another seed is another request");
    }
}
