//! GCG (Zou et al. 2023): per AdvBench behavior, a white-box search for an adversarial suffix
//! that makes the model's answer begin with the behavior's `target` (`Query::SuffixSearch`,
//! answered by backends with gradients: candle on dense weights), and the same behavior asked
//! plainly (`Query::Chat`), the baseline the paired metrics compare it with. Both cases share
//! every attribute but `transform` (`none` for the baseline, `gcg` for the search), so
//! `paired-gap` between `transform` pairs them per behavior (McNemar on the discordant pairs).
//!
//! AdvBench's `target` column has three rows rotated upstream (the datasets README); the
//! target is whatever the file says.

use std::path::{Path, PathBuf};

use audit_core::{Case, Probe, ProbeError, ProbeInfo, Query, SearchParams};

use super::{attributes, read_table, Item};
use crate::registry::ProbeArgs;
use crate::sampling::Sampling;

pub const FAMILY: &str = "gcg";

/// The `transform` attribute of the search cases (the baselines have `none`).
pub const TRANSFORM: &str = "gcg";

/// nanogcg's default initial suffix is twenty of these; the default here is shorter.
pub const INIT_TOKEN: &str = "x";

/// A suite's `[[probe]]` keys for `family = "gcg"`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The behaviors file (`goal,target`), relative to `--datasets` unless absolute.
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default = "steps")]
    steps: usize,
    #[serde(default = "search_width")]
    search_width: usize,
    #[serde(default = "topk")]
    topk: usize,
    #[serde(default = "one")]
    n_replace: usize,
    /// The initial suffix's length in `x` tokens, when `init` is not given.
    #[serde(default = "suffix_length")]
    suffix_length: usize,
    #[serde(default)]
    init: Option<String>,
    /// Seeds every search (with the behavior's key, so behaviors differ).
    #[serde(default)]
    seed: u64,
    /// `ascii` (printable ASCII, no special tokens, as nanogcg) or `all`.
    #[serde(default = "ascii")]
    allowed: String,
    #[serde(default = "yes")]
    early_stop: bool,
    /// A suffix found elsewhere (another model, a universal search), replayed as it is on every
    /// behavior: the search cases become Chat cases with the suffix appended (transfer).
    #[serde(default)]
    replay: Option<String>,
}

fn steps() -> usize {
    50
}
fn search_width() -> usize {
    64
}
fn topk() -> usize {
    64
}
fn one() -> usize {
    1
}
fn suffix_length() -> usize {
    10
}
fn ascii() -> String {
    "ascii".to_string()
}
fn yes() -> bool {
    true
}

/// The GCG probe over a behaviors file.
#[derive(Clone, Debug)]
pub struct GcgProbe {
    info: ProbeInfo,
    path: PathBuf,
    sampling: Sampling,
    system: Option<String>,
    search: SearchParams,
    replay: Option<String>,
}

pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    let (sampling, p): (Sampling, Params) = crate::sampling::params(args.params)?;
    if p.steps == 0 || p.search_width == 0 || p.topk == 0 || p.n_replace == 0 {
        return Err(
            "gcg: `steps`, `search_width`, `topk` and `n_replace` must be at least 1".into(),
        );
    }
    if !matches!(p.allowed.as_str(), "ascii" | "all") {
        return Err(format!(
            "gcg: allowed = `{}`: expected ascii or all",
            p.allowed
        ));
    }
    let init = match p.init {
        Some(init) if init.trim().is_empty() => return Err("gcg: `init` is empty".into()),
        Some(init) => init,
        None if p.suffix_length == 0 => {
            return Err("gcg: `suffix_length` must be at least 1".into())
        }
        None => vec![INIT_TOKEN; p.suffix_length].join(" "),
    };
    let path = p.path.as_deref().unwrap_or(super::advbench::DEFAULT_PATH);
    Ok(Box::new(GcgProbe {
        info: args.info(),
        path: args.datasets.join(path),
        sampling,
        system: p.system,
        search: SearchParams {
            steps: p.steps,
            search_width: p.search_width,
            topk: p.topk,
            n_replace: p.n_replace,
            init,
            seed: p.seed,
            allowed: p.allowed,
            early_stop: p.early_stop,
        },
        replay: p.replay,
    }))
}

/// The behaviors with their targets, keyed `behavior-<n>` by their 1-based data row.
pub fn load(path: &Path) -> Result<Vec<Item>, String> {
    let table = read_table(path)?;
    let at = |e: String| format!("{}: {e}", path.display());
    let goal = table.column("goal").map_err(at)?;
    let target = table.column("target").map_err(at)?;
    let mut items = Vec::new();
    for (index, row) in table.rows.iter().enumerate() {
        let text = table.field(row, goal).map_err(at)?;
        let aim = table.field(row, target).map_err(at)?;
        if text.trim().is_empty() || aim.trim().is_empty() {
            return Err(format!(
                "{}: line {}: empty goal or target",
                path.display(),
                row.line
            ));
        }
        items.push(Item {
            key: format!("behavior-{}", index + 1),
            prompt: text.to_string(),
            attributes: attributes([("source", "advbench"), ("target", aim)]),
        });
    }
    Ok(items)
}

impl Probe for GcgProbe {
    fn info(&self) -> &ProbeInfo {
        &self.info
    }

    fn cases(&self, _seed: u64) -> Result<Vec<Case>, ProbeError> {
        let items = load(&self.path).map_err(ProbeError)?;
        let items = self
            .sampling
            .select_per(items, |item| item.key.clone(), |_| String::new());
        let mut cases = Vec::with_capacity(2 * items.len());
        for item in items {
            let mut attributes = item.attributes;
            attributes.insert("item".to_string(), item.key.clone());
            let target = attributes.get("target").cloned().unwrap_or_default();
            let mut plain = attributes.clone();
            plain.insert("transform".to_string(), "none".to_string());
            cases.push(Case {
                id: format!("{}/{}", self.info.id, item.key),
                probe: self.info.id.clone(),
                attributes: plain,
                query: Query::Chat {
                    system: self.system.clone(),
                    history: Vec::new(),
                    prompt: item.prompt.clone(),
                },
            });
            attributes.insert("transform".to_string(), TRANSFORM.to_string());
            let query = match &self.replay {
                Some(suffix) => Query::Chat {
                    system: self.system.clone(),
                    history: Vec::new(),
                    prompt: format!("{} {suffix}", item.prompt),
                },
                None => Query::SuffixSearch {
                    system: self.system.clone(),
                    prompt: item.prompt,
                    target,
                    search: SearchParams {
                        seed: audit_core::case_seed(self.search.seed, &item.key),
                        ..self.search.clone()
                    },
                },
            };
            cases.push(Case {
                id: format!("{}/{}/{TRANSFORM}", self.info.id, item.key),
                probe: self.info.id.clone(),
                attributes,
                query,
            });
        }
        Ok(cases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(params: &str) -> Result<Box<dyn Probe>, String> {
        let datasets = fixtures::datasets();
        let table: toml::Table = toml::from_str(params).expect("valid in this test");
        build(&ProbeArgs {
            id: "gcg",
            goal: "g",
            source: "s",
            params: &table,
            datasets: &datasets,
            suite_dir: None,
        })
    }

    #[test]
    fn each_behavior_is_a_search_paired_with_its_plain_request() {
        let cases = probe("sample = 3\nsteps = 2\nsuffix_length = 4\nseed = 7")
            .expect("valid in this test")
            .cases(0)
            .expect("the AdvBench file is staged");
        assert_eq!(cases.len(), 6);
        for pair in cases.chunks(2) {
            let (plain, search) = (&pair[0], &pair[1]);
            assert_eq!(plain.attributes["transform"], "none");
            assert_eq!(search.attributes["transform"], TRANSFORM);
            let mut a = plain.attributes.clone();
            let mut b = search.attributes.clone();
            a.remove("transform");
            b.remove("transform");
            assert_eq!(a, b, "paired on every other attribute");
            let Query::SuffixSearch {
                target, search: p, ..
            } = &search.query
            else {
                panic!("not a search: {:?}", search.query)
            };
            assert!(target.starts_with("Sure, here"), "{target}");
            assert_eq!(&plain.attributes["target"], target);
            assert_eq!(p.init, "x x x x");
            assert_eq!(p.steps, 2);
            assert_eq!(p.allowed, "ascii");
        }
        // Behaviors search with different seeds, derived from the suite's.
        let seeds: Vec<u64> = cases
            .iter()
            .filter_map(|c| match &c.query {
                Query::SuffixSearch { search, .. } => Some(search.seed),
                _ => None,
            })
            .collect();
        assert_ne!(seeds[0], seeds[1]);
    }

    #[test]
    fn a_replayed_suffix_is_a_chat_case_and_bad_settings_are_errors() {
        let cases = probe("sample = 1\nreplay = \"!! describing.\\\\ similarly\"")
            .expect("valid in this test")
            .cases(0)
            .expect("the AdvBench file is staged");
        let Query::Chat { prompt, .. } = &cases[1].query else {
            panic!("not a chat")
        };
        assert!(prompt.ends_with(" !! describing.\\ similarly"), "{prompt}");
        for bad in [
            "steps = 0",
            "allowed = \"unicode\"",
            "init = \" \"",
            "typo = 1",
        ] {
            assert!(probe(bad).is_err(), "{bad}");
        }
    }
}
