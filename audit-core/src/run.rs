//! The run loop: expand suites into cases, group them by query kind, sort by size, batch them
//! through a backend, score the answers with the detectors (in parallel), and journal every
//! finished attempt as its batch completes.

use std::collections::BTreeSet;

use rayon::prelude::*;

use crate::attempt::Attempt;
use crate::backend::{Answer, Backend, BackendError, Generation};
use crate::case::{Case, QueryKind};
use crate::journal::{Journal, JournalError};
use crate::probe::ProbeError;
use crate::suite::Suite;

/// How to run: everything that changes the attempts is here, and recorded in the manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    pub seed: u64,
    pub generation: Generation,
    /// At most this many cases per probe (before transforms), the first in probe order.
    pub limit: Option<usize>,
    pub shard: Option<Shard>,
}

/// One shard of a run: the cases whose id hashes to `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether a case belongs to this shard (by a stable hash of its suite and id).
    pub fn contains(&self, suite: &str, case_id: &str) -> bool {
        let hash = crate::backend::case_seed(0, &format!("{suite}\u{1f}{case_id}"));
        hash % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// A case with the suite and probe plan it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedCase {
    pub suite: usize,
    pub probe: usize,
    pub case: Case,
}

/// Why a run stopped. Every attempt journaled before the error is kept.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("probe {probe}: {source}")]
    Probe { probe: String, source: ProbeError },
    #[error("probe {probe}: case id {case_id} appears twice")]
    DuplicateCase { probe: String, case_id: String },
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    #[error("backend returned {got} answers for a batch of {expected}")]
    AnswerCount { expected: usize, got: usize },
    #[error("journal {0}")]
    Journal(#[from] JournalError),
}

/// Every case of the run, in a deterministic order: suites, probes, probe order, and each
/// case followed by its transformed variants. When a probe has transforms, its plain cases get
/// the attribute `transform = "none"` (unless the probe set one), so that metrics can pair
/// every variant with its plain case.
pub fn plan(suites: &[Suite], config: &RunConfig) -> Result<Vec<PlannedCase>, RunError> {
    let mut planned = Vec::new();
    for (suite_index, suite) in suites.iter().enumerate() {
        for (probe_index, plan) in suite.probes.iter().enumerate() {
            let probe_id = plan.probe.id().to_string();
            let mut cases = plan
                .probe
                .cases(config.seed)
                .map_err(|source| RunError::Probe {
                    probe: probe_id.clone(),
                    source,
                })?;
            if let Some(limit) = config.limit {
                cases.truncate(limit);
            }
            let mut seen = BTreeSet::new();
            for mut case in cases {
                // With transforms, the plain case is the reference every variant is paired with.
                if !plan.transforms.is_empty() {
                    case.attributes
                        .entry("transform".to_string())
                        .or_insert_with(|| "none".to_string());
                }
                let variants: Vec<Case> = plan
                    .transforms
                    .iter()
                    .filter_map(|t| t.apply(&case))
                    .collect();
                for case in std::iter::once(case).chain(variants) {
                    if !seen.insert(case.id.clone()) {
                        return Err(RunError::DuplicateCase {
                            probe: probe_id,
                            case_id: case.id,
                        });
                    }
                    let in_shard = config
                        .shard
                        .is_none_or(|s| s.contains(&suite.reference.id, &case.id));
                    if in_shard {
                        planned.push(PlannedCase {
                            suite: suite_index,
                            probe: probe_index,
                            case,
                        });
                    }
                }
            }
        }
    }
    Ok(planned)
}

/// Answers, scores and journals every planned case the journal does not hold yet. Batches are
/// formed per query kind from cases sorted by size (longest first, so that a batch size too
/// large fails early), and each batch is journaled, in order, as soon as it is scored.
/// `on_progress` is called with the number of attempts each batch finished.
pub fn execute(
    suites: &[Suite],
    planned: &[PlannedCase],
    backend: &mut dyn Backend,
    config: &RunConfig,
    journal: &mut Journal,
    on_progress: &mut dyn FnMut(usize),
) -> Result<(), RunError> {
    for kind in QueryKind::ALL {
        let mut todo: Vec<&PlannedCase> = planned
            .iter()
            .filter(|p| p.case.query.kind() == kind)
            .filter(|p| !journal.contains(&suites[p.suite].reference.id, &p.case.id))
            .collect();
        // Stable sort: equal sizes keep plan order, so the journal's order is deterministic.
        todo.sort_by_key(|p| std::cmp::Reverse(p.case.query.size_hint()));
        let batch_size = backend.batch_size(kind).max(1);
        for batch in todo.chunks(batch_size) {
            let cases: Vec<&Case> = batch.iter().map(|p| &p.case).collect();
            let answers = backend.answer(&cases, &config.generation)?;
            if answers.len() != batch.len() {
                return Err(RunError::AnswerCount {
                    expected: batch.len(),
                    got: answers.len(),
                });
            }
            let attempts: Vec<Attempt> = batch
                .par_iter()
                .zip(answers)
                .map(|(planned, answer)| score(suites, planned, answer))
                .collect();
            journal.append(&attempts)?;
            on_progress(attempts.len());
        }
    }
    Ok(())
}

/// The attempt of a planned case with every detector of its probe applied (none on errors).
fn score(suites: &[Suite], planned: &PlannedCase, answer: Answer) -> Attempt {
    let suite = &suites[planned.suite];
    let mut attempt = Attempt::new(&suite.reference.id, &planned.case, answer);
    if attempt.is_error() {
        return attempt;
    }
    for detector in &suite.probes[planned.probe].detectors {
        if let Some(score) = detector.score(&attempt) {
            attempt
                .scores
                .insert(detector.id().to_string(), score.value);
            if let Some(evidence) = score.evidence {
                attempt.evidence.insert(detector.id().to_string(), evidence);
            }
        }
    }
    attempt
}
