//! Toxicity elicitation (after Gehman et al. 2020, "RealToxicityPrompts"): the model continues
//! the beginnings of sentences, several times each, and every continuation is scored by the
//! toxicity judge. RealToxicityPrompts is not staged; the prompts are BOLD's (Dhamala et al.
//! 2021: 23,679 beginnings of Wikipedia sentences about people and groups in five domains), the
//! only staged set of sentence beginnings, which Dhamala et al. also scored for toxicity. They are
//! neutral, not RealToxicityPrompts' toxic-leaning "challenging" prompts, so the numbers measure
//! unprompted toxicity on ordinary openings (docs/suites/toxicity.md).
//!
//! Each prompt is asked `samples` times (`draw` 0…k−1); the case ids differ by draw, so a
//! sampled run (`--temperature 1 --top-p 0.9`, the paper's nucleus sampling) draws independent
//! continuations from the per-case seeds. The `expected-max-toxicity` metric
//! (`crate::metrics::toxicity`) turns them into expected maximum toxicity and toxicity
//! probability.

use std::path::PathBuf;

use audit_core::{Attributes, Case, Probe, ProbeError, ProbeInfo, Query};
use serde::Deserialize;

use crate::bias::bold::{self, DOMAINS};
use crate::bias::Sampling;
use crate::registry::ProbeArgs;

pub const FAMILY: &str = "toxicity-elicitation";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    instruction: Option<String>,
    /// Prompts per group.
    /// Continuations per prompt (Gehman et al.: 25).
    #[serde(default = "one")]
    samples: usize,
}

fn one() -> usize {
    1
}

/// Builds the probe: `path` (BOLD's prompt folder), `domains` (default all five),
/// `instruction` (text put before each prompt), `sample` (prompts per group), `sample_seed`,
/// `samples` (continuations per prompt, 1 to 100).
pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    let (sampling, p): (Sampling, Params) = crate::sampling::params(args.params)?;
    for domain in &p.domains {
        if !DOMAINS.contains(&domain.as_str()) {
            return Err(format!(
                "unknown BOLD domain `{domain}` (known: {})",
                DOMAINS.join(", ")
            ));
        }
    }
    if !(1..=100).contains(&p.samples) {
        return Err(format!("`samples` must be 1 to 100, not {}", p.samples));
    }
    Ok(Box::new(ElicitationProbe {
        info: args.info(),
        path: crate::bias::resolve(
            args.datasets,
            p.path.as_deref().unwrap_or(bold::DEFAULT_PATH),
        ),
        domains: if p.domains.is_empty() {
            DOMAINS.iter().map(|d| d.to_string()).collect()
        } else {
            p.domains
        },
        instruction: p.instruction,
        sampling,
        samples: p.samples,
    }))
}

/// `samples` Chat queries per BOLD prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct ElicitationProbe {
    pub info: ProbeInfo,
    pub path: PathBuf,
    pub domains: Vec<String>,
    pub instruction: Option<String>,
    pub sampling: Sampling,
    pub samples: usize,
}

impl Probe for ElicitationProbe {
    fn info(&self) -> &ProbeInfo {
        &self.info
    }

    fn cases(&self, _seed: u64) -> Result<Vec<Case>, ProbeError> {
        let prompts =
            bold::sampled(&self.path, &self.domains, &self.sampling).map_err(ProbeError)?;
        let mut cases = Vec::new();
        for p in prompts {
            let (key, text) = (p.key(), p.asked(self.instruction.as_deref()));
            for draw in 0..self.samples {
                cases.push(Case {
                    id: format!("{}/{key}/d{draw}", self.info.id),
                    probe: self.info.id.clone(),
                    attributes: Attributes::from([
                        ("domain".to_string(), p.domain.clone()),
                        ("group".to_string(), p.group.clone()),
                        ("item".to_string(), key.clone()),
                        ("draw".to_string(), draw.to_string()),
                    ]),
                    query: Query::Chat {
                        system: None,
                        history: Vec::new(),
                        prompt: text.clone(),
                    },
                });
            }
        }
        Ok(cases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_prompt_is_asked_samples_times() {
        let datasets = fixtures::datasets();
        let table: toml::Table = toml::from_str(
            "domains = [\"gender\"]\nsample = 2\nsamples = 3\ninstruction = \"Continue: \"",
        )
        .expect("valid in this test");
        let args = ProbeArgs {
            id: "tox",
            goal: "g",
            source: "s",
            params: &table,
            datasets: &datasets,
            suite_dir: None,
        };
        let probe = build(&args).expect("valid in this test");
        let cases = probe.cases(0).expect("the BOLD files are staged");
        // Two groups (actors, actresses) × 2 prompts × 3 draws.
        assert_eq!(cases.len(), 12);
        let first = &cases[0];
        assert_eq!(first.attributes["draw"], "0");
        assert_eq!(cases[1].attributes["item"], first.attributes["item"]);
        assert_eq!(cases[1].query, first.query);
        assert_ne!(cases[1].id, first.id);
        let Query::Chat { prompt, .. } = &first.query else {
            panic!("not a chat")
        };
        assert!(prompt.starts_with("Continue: "));

        let bad: toml::Table = toml::from_str("samples = 0").expect("valid in this test");
        let args = ProbeArgs {
            params: &bad,
            ..args
        };
        assert!(build(&args).err().unwrap_or_default().contains("samples"));
    }
}
