//! What the builders of probes and detectors take from the run, instead of globals or the
//! environment: where the dataset files are, and where the VADER lexicon is (read once per
//! context, on the first build of a VADER detector).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::detectors::vader::Vader;

/// The run's inputs for builders. Cloning shares the lexicon once read.
#[derive(Clone)]
pub struct Context {
    datasets: PathBuf,
    vader: PathBuf,
    lexicon: Arc<OnceLock<Result<Arc<Vader>, String>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("datasets", &self.datasets)
            .field("vader", &self.vader)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Dataset paths resolve under `datasets`; the VADER lexicon is looked for beside them,
    /// in `<datasets>/../models/vader` (the layout of `../shared`), unless [`Context::with_vader`].
    pub fn new(datasets: &Path) -> Context {
        Context {
            datasets: datasets.to_path_buf(),
            vader: datasets.join("../models/vader"),
            lexicon: Arc::default(),
        }
    }

    /// The folder that holds `vader_lexicon.txt` and `emoji_utf8_lexicon.txt`.
    pub fn with_vader(self, folder: &Path) -> Context {
        Context {
            vader: folder.to_path_buf(),
            lexicon: Arc::default(),
            ..self
        }
    }

    pub fn datasets(&self) -> &Path {
        &self.datasets
    }

    /// The VADER analyser, or why its lexicon cannot be read (one line naming the file, with
    /// the `PROBITY_VADER` hint).
    pub fn vader(&self) -> Result<Arc<Vader>, String> {
        self.lexicon
            .get_or_init(|| {
                Vader::load(&self.vader).map(Arc::new).map_err(|error| {
                    format!("the VADER sentiment detectors cannot read their lexicon: {error}")
                })
            })
            .clone()
    }
}
