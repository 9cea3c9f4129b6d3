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
pub mod harmbench;
pub mod injection;
pub mod jailbreakbench;
pub mod labelled;
pub mod leakage;
pub mod toxicity;
pub mod xstest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use audit_core::{case_seed, Attributes, Case, Probe, ProbeError, Query};

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
    pub id: String,
    pub goal: String,
    pub source: String,
    /// The file (or folder) read when the cases are made.
    pub path: PathBuf,
    pub loader: Loader,
    pub filter: Filter,
    /// At most this many items per value of `category` (all when None), drawn with the seed.
    pub sample: Option<usize>,
    pub system: Option<String>,
}

impl Probe for DatasetProbe {
    fn id(&self) -> &str {
        &self.id
    }

    fn goal(&self) -> &str {
        &self.goal
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn cases(&self, seed: u64) -> Result<Vec<Case>, ProbeError> {
        let items = (self.loader)(&self.path, &self.filter).map_err(ProbeError)?;
        let items = sample(items, self.sample, seed);
        Ok(items
            .into_iter()
            .map(|item| {
                let mut attributes = item.attributes;
                attributes.insert("item".to_string(), item.key.clone());
                Case {
                    id: format!("{}/{}", self.id, item.key),
                    probe: self.id.clone(),
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

/// At most `per_category` items of each `category` value (items without one form one group),
/// chosen by the smallest `case_seed(seed, key)`, returned in file order. Every item's draw
/// depends only on its key and the seed, so a sample does not change when other rows do.
pub fn sample(items: Vec<Item>, per_category: Option<usize>, seed: u64) -> Vec<Item> {
    let Some(per_category) = per_category else {
        return items;
    };
    let mut by_category: BTreeMap<String, Vec<(u64, usize)>> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let category = item.attributes.get("category").cloned().unwrap_or_default();
        by_category
            .entry(category)
            .or_default()
            .push((case_seed(seed, &item.key), index));
    }
    let mut keep: Vec<usize> = by_category
        .into_values()
        .flat_map(|mut draws| {
            draws.sort_unstable();
            draws.into_iter().take(per_category).map(|(_, index)| index)
        })
        .collect();
    keep.sort_unstable();
    let mut items: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    keep.into_iter()
        .filter_map(|index| items.get_mut(index).and_then(Option::take))
        .collect()
}

/// The parameters every dataset family takes in a suite file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetParams {
    /// The file or folder, relative to `--datasets` unless absolute.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub sample: Option<usize>,
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
    let params: DatasetParams = crate::registry::params(args.params)?;
    if params.sample == Some(0) {
        return Err("`sample` must be at least 1".to_string());
    }
    let path = params.path.as_deref().unwrap_or(default_path);
    Ok(Box::new(DatasetProbe {
        id: args.id.to_string(),
        goal: args.goal.to_string(),
        source: args.source.to_string(),
        path: args.datasets.join(path),
        loader,
        filter: Filter { keep: params.keep },
        sample: params.sample,
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

    #[test]
    fn sampling_is_per_category_seeded_and_in_file_order() {
        let items: Vec<Item> = (0..20)
            .map(|i| item(&i.to_string(), if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        let a = sample(items.clone(), Some(3), 1);
        assert_eq!(a.len(), 6);
        assert_eq!(a, sample(items.clone(), Some(3), 1));
        assert_ne!(a, sample(items.clone(), Some(3), 2));
        let positions: Vec<usize> = a
            .iter()
            .map(|x| {
                items
                    .iter()
                    .position(|y| y == x)
                    .expect("valid in this test")
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample(items.clone(), None, 1), items);
        assert_eq!(sample(items.clone(), Some(100), 1), items);
    }
}
