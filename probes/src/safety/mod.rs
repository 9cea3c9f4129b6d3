//! Safety probes: harmful requests from the published benchmarks (AdvBench, HarmBench,
//! JailbreakBench, Do-Not-Answer), XSTest's safe and unsafe prompts for over-refusal, and
//! Probity's own prompt-injection and system-prompt-leakage probes. Each source is a module
//! with its loader; the dataset probes share [`DatasetProbe`], which reads the file in place
//! when the cases are made, samples it (seeded, per category) and makes Chat cases whose
//! attributes are `item` (the row's stable key), `source` and the source's own columns
//! (`category`, …).
//!
//! Loaders never panic on a malformed row: they return one line naming the file, the line and
//! the problem.

pub mod advbench;
pub use crate::csv;
pub mod do_not_answer;
pub mod gcg;
pub mod harmbench;
pub mod injection;
pub mod jailbreakbench;
pub mod labelled;
pub mod leakage;
pub mod toxicity;
pub mod xstest;

use crate::sampling::Sampling;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use audit_core::{Attributes, Case, Probe, ProbeError, ProbeInfo, Query};

/// One prompt of a dataset: a key unique within the file, the prompt, and its attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub key: String,
    pub prompt: String,
    pub attributes: Attributes,
}

/// Reads a dataset file (or folder) into items, with a filter chosen by the suite.
pub type Loader = fn(&Path, &Filter) -> Result<Vec<Item>, String>;

/// What a suite keeps of a dataset: values of an attribute (`functional = ["standard"]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub keep: BTreeMap<String, Vec<String>>,
}

impl Filter {
    /// Whether an item's attributes pass the filter.
    pub fn passes(&self, attributes: &Attributes) -> bool {
        self.keep.iter().all(|(key, values)| {
            attributes
                .get(key)
                .is_some_and(|v| values.iter().any(|w| w == v))
        })
    }
}

/// A probe over one dataset file.
#[derive(Clone, Debug)]
pub struct DatasetProbe {
    pub info: ProbeInfo,
    /// The file (or folder) read when the cases are made.
    pub path: PathBuf,
    pub loader: Loader,
    pub filter: Filter,
    /// At most `sample` items per value of `category` (all when None), drawn with the suite's
    /// `sample_seed`.
    pub sampling: Sampling,
    pub system: Option<String>,
}

impl Probe for DatasetProbe {
    fn info(&self) -> &ProbeInfo {
        &self.info
    }

    fn cases(&self, _seed: u64) -> Result<Vec<Case>, ProbeError> {
        let items = (self.loader)(&self.path, &self.filter).map_err(ProbeError)?;
        let items = self.sampling.select_per(
            items,
            |item| item.key.clone(),
            |item| item.attributes.get("category").cloned().unwrap_or_default(),
        );
        Ok(items
            .into_iter()
            .map(|item| {
                let mut attributes = item.attributes;
                attributes.insert("item".to_string(), item.key.clone());
                Case {
                    id: format!("{}/{}", self.info.id, item.key),
                    probe: self.info.id.clone(),
                    attributes,
                    query: Query::Chat {
                        system: self.system.clone(),
                        history: Vec::new(),
                        prompt: item.prompt,
                    },
                }
            })
            .collect())
    }
}

/// The parameters every dataset family takes in a suite file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetParams {
    /// The file or folder, relative to `--datasets` unless absolute.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub system: Option<String>,
    /// Attribute → values to keep.
    #[serde(default)]
    pub keep: BTreeMap<String, Vec<String>>,
}

/// Builds a dataset probe from its suite-file parameters.
pub(crate) fn build_dataset(
    args: &crate::registry::ProbeArgs<'_>,
    default_path: &str,
    loader: Loader,
) -> Result<Box<dyn Probe>, String> {
    let (sampling, params): (crate::sampling::Sampling, DatasetParams) =
        crate::sampling::params(args.params)?;
    let path = params.path.as_deref().unwrap_or(default_path);
    Ok(Box::new(DatasetProbe {
        info: args.info(),
        path: args.datasets.join(path),
        loader,
        filter: Filter { keep: params.keep },
        sampling,
        system: params.system,
    }))
}

/// Reads a UTF-8 text file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<String, String> {
    let bytes = crate::provenance::read(path).map_err(|e| {
        format!(
            "{}: {e} ({})",
            path.display(),
            crate::catalogue::missing_hint(path)
        )
    })?;
    String::from_utf8(bytes).map_err(|_| format!("{}: the file is not UTF-8 text", path.display()))
}

/// Parses a CSV file with a header, naming the file in errors.
pub fn read_table(path: &Path) -> Result<csv::Table, String> {
    csv::Table::parse(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

/// An attribute map from pairs.
pub(crate) fn attributes<const N: usize>(pairs: [(&str, &str); N]) -> Attributes {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, category: &str) -> Item {
        Item {
            key: key.into(),
            prompt: key.into(),
            attributes: attributes([("category", category)]),
        }
    }

    fn twenty(_: &Path, _: &Filter) -> Result<Vec<Item>, String> {
        Ok((0..20)
            .map(|i| item(&i.to_string(), if i % 2 == 0 { "a" } else { "b" }))
            .collect())
    }

    fn probe(sample: Option<usize>, seed: u64) -> DatasetProbe {
        DatasetProbe {
            info: ProbeInfo::default(),
            path: PathBuf::new(),
            loader: twenty,
            filter: Filter::default(),
            sampling: Sampling { sample, seed },
            system: None,
        }
    }

    fn keys(probe: &DatasetProbe, run_seed: u64) -> Vec<String> {
        let cases = probe.cases(run_seed).expect("valid in this test");
        cases
            .into_iter()
            .map(|c| c.attributes["item"].clone())
            .collect()
    }

    #[test]
    fn sampling_is_per_category_by_the_suite_seed_and_in_file_order() {
        let a = keys(&probe(Some(3), 1), 0);
        assert_eq!(a.len(), 6);
        let evens = a
            .iter()
            .filter(|k| k.parse::<u32>().is_ok_and(|n| n % 2 == 0));
        assert_eq!(evens.count(), 3);
        assert_eq!(
            a,
            keys(&probe(Some(3), 1), 99),
            "the run's seed draws nothing"
        );
        assert_ne!(a, keys(&probe(Some(3), 2), 0), "sample_seed does");
        let positions: Vec<u32> = a.iter().filter_map(|k| k.parse().ok()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(keys(&probe(None, 1), 0).len(), 20);
        assert_eq!(keys(&probe(Some(100), 1), 0).len(), 20);
    }
}
