//! The run loop: expand suites into cases, group them by query kind, sort by size, batch them
//! through a backend, score the answers with the detectors (in parallel), and journal every
//! finished attempt as its batch completes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use crate::attack::{Lockstep, Parties};
use crate::attempt::Attempt;
use crate::backend::{Answer, Backend, BackendError, Generation};
use crate::case::{Case, QueryKind};
use crate::journal::{Journal, JournalError};
use crate::probe::ProbeError;
use crate::suite::Suite;

/// How to run: everything that changes the attempts is here, and recorded in the manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// The run's seed: generation sampling and resampling derive from it.
    pub seed: u64,
    /// How Chat answers are generated.
    pub generation: Generation,
    /// At most this many cases per probe (before transforms), the first in probe order.
    pub limit: Option<usize>,
    /// Run only this shard of the cases (`--shard K/N`).
    pub shard: Option<Shard>,
}

/// One shard of a run: the cases whose id hashes to `index` (1-based) of `count`. Written as
/// `K/N` (the form of `--shard`) in manifest.json.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shard {
    /// K: which shard, 1-based.
    pub index: u32,
    /// N: how many shards the run is split into.
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N` with 1 ≤ K ≤ N.
    fn from_str(spec: &str) -> Result<Shard, String> {
        spec.split_once('/')
            .and_then(|(k, n)| {
                let (index, count) = (k.parse::<u32>().ok()?, n.parse::<u32>().ok()?);
                (count >= 1 && (1..=count).contains(&index)).then_some(Shard { index, count })
            })
            .ok_or_else(|| format!("shard `{spec}`: expected K/N with 1 ≤ K ≤ N"))
    }
}

impl TryFrom<String> for Shard {
    type Error = String;
    fn try_from(spec: String) -> Result<Shard, String> {
        spec.parse()
    }
}

impl From<Shard> for String {
    fn from(shard: Shard) -> String {
        shard.to_string()
    }
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
    /// The index of its suite in the run.
    pub suite: usize,
    /// The index of its probe plan in the suite.
    pub probe: usize,
    /// The case, transformed where a transform made it.
    pub case: Case,
}

/// Why a run stopped. Every attempt journaled before the error is kept.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `reason` is not a `source`: the message already holds it, and error chains print
    /// sources again (the message would repeat).
    #[error("probe {probe}: {reason}")]
    Probe {
        /// The probe's id.
        probe: String,
        /// What went wrong.
        reason: ProbeError,
    },
    /// A probe made two cases with one id.
    #[error("probe {probe}: case id {case_id} appears twice")]
    DuplicateCase {
        /// The probe's id.
        probe: String,
        /// The repeated case id.
        case_id: String,
    },
    #[error("backend: {0}")]
    /// The backend failed as a whole (not one item: those become error attempts).
    Backend(#[from] BackendError),
    /// The backend answered a batch with the wrong number of answers.
    #[error("backend returned {got} answers for a batch of {expected}")]
    AnswerCount {
        /// The batch's size.
        expected: usize,
        /// How many answers came back.
        got: usize,
    },
    #[error("journal {0}")]
    /// The journal could not be written.
    Journal(#[from] JournalError),
    /// A probe uses a judge no `--judge` gave a model.
    #[error("probe {probe} uses the judge `{judge}`, but no judge model was given: add --judge {judge}=MODEL")]
    NoJudge {
        /// The probe's id.
        probe: String,
        /// The judge's id.
        judge: String,
    },
    /// A probe attacks adaptively (PAIR, TAP, Crescendo) and no attacker model was given.
    #[error("{0} needs an attacker model: add --attacker MODEL (a model file or folder, scripted:PROFILE.toml or openai:NAME@URL)")]
    NoAttacker(String),
    /// The backend cannot answer a kind of query the run holds (`Backend::supports`).
    #[error("{0}")]
    Unsupported(String),
    #[error("suite {0} is given twice: every case would run twice and every count be doubled")]
    /// A suite id given twice.
    DuplicateSuite(String),
    /// A stop was requested (`stop_flag`): every batch before it is journaled.
    #[error("interrupted")]
    Interrupted,
}

/// The process-wide request to stop a run after the batch in flight, set by the signal
/// handlers of the command line (SIGINT, SIGTERM): signals are process-wide too. The run loop
/// checks it before each batch and returns `RunError::Interrupted`.
pub fn stop_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone()
}

fn stop_requested() -> bool {
    stop_flag().load(Ordering::SeqCst)
}

/// Every case of the run, in a deterministic order: suites, probes, probe order, and each
/// case followed by its transformed variants. When a probe has transforms, its plain cases get
/// the attribute `transform = "none"` (unless the probe set one), so that metrics can pair
/// every variant with its plain case.
pub fn plan(suites: &[Suite], config: &RunConfig) -> Result<Vec<PlannedCase>, RunError> {
    let mut ids = BTreeSet::new();
    if let Some(twice) = suites.iter().find(|s| !ids.insert(&s.reference.id)) {
        return Err(RunError::DuplicateSuite(twice.reference.id.clone()));
    }
    let mut planned = Vec::new();
    for (suite_index, suite) in suites.iter().enumerate() {
        for (probe_index, plan) in suite.probes.iter().enumerate() {
            let probe_id = plan.probe.id().to_string();
            let mut cases = plan
                .probe
                .cases(config.seed)
                .map_err(|reason| RunError::Probe {
                    probe: probe_id.clone(),
                    reason,
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
/// `on_progress` is called with the number of attempts each batch finished and the tokens the
/// backend generated for it (where it counts them).
pub fn execute(
    suites: &[Suite],
    planned: &[PlannedCase],
    backend: &mut dyn Backend,
    config: &RunConfig,
    journal: &mut Journal,
    on_progress: &mut dyn FnMut(usize, Option<u64>),
) -> Result<(), RunError> {
    execute_with_judges(
        suites,
        planned,
        backend,
        &mut Parties {
            attacker: None,
            judges: &mut JudgeBackends::new(),
        },
        config,
        journal,
        on_progress,
    )
}

/// The backends that answer judges, by judge id.
pub type JudgeBackends = BTreeMap<String, Box<dyn Backend>>;

/// How judges generate: greedy and short (a verdict, not an essay).
pub fn judge_generation(seed: u64) -> Generation {
    Generation {
        max_new_tokens: 16,
        temperature: 0.0,
        top_p: 1.0,
        top_k: None,
        seed,
        stop: Vec::new(),
    }
}

/// How many attacks (`Query::Attack`) run in lockstep: each step batches their requests to
/// each party. More fill wider batches; each attack is journaled as soon as it ends, so a
/// killed run resumes after the last finished behavior whatever this is.
pub const ATTACKS_IN_FLIGHT: usize = 8;

/// `execute`, with a second pass per batch: every judge of a probe asks its backend (from
/// `judges`, by judge id) about the batch's attempts, in batches, before the attempts are
/// journaled. A judge the suite uses without a backend is an error before anything runs.
/// Adaptive attacks ask the attacker of `parties` and the judge their algorithm names as well
/// (`crate::attack`).
pub fn execute_with_judges(
    suites: &[Suite],
    planned: &[PlannedCase],
    backend: &mut dyn Backend,
    parties: &mut Parties<'_, '_>,
    config: &RunConfig,
    journal: &mut Journal,
    on_progress: &mut dyn FnMut(usize, Option<u64>),
) -> Result<(), RunError> {
    for suite in suites {
        for plan in &suite.probes {
            for judge in &plan.judges {
                if !parties.judges.contains_key(judge.id()) {
                    return Err(RunError::NoJudge {
                        probe: plan.probe.id().to_string(),
                        judge: judge.id().to_string(),
                    });
                }
            }
        }
    }
    check_support(planned, backend)?;
    check_attacks(suites, planned, parties.attacker.is_some(), &|id| {
        parties.judges.contains_key(id)
    })?;
    check_token_budgets(suites, planned, backend, parties)?;
    for kind in QueryKind::ALL {
        if kind == QueryKind::Attack {
            attack_pass(
                suites,
                planned,
                backend,
                parties,
                config,
                journal,
                on_progress,
            )?;
            continue;
        }
        let mut todo: Vec<&PlannedCase> = planned
            .iter()
            .filter(|p| p.case.query.kind() == kind)
            .filter(|p| !journal.contains(&suites[p.suite].reference.id, &p.case.id))
            .collect();
        // Stable sort: equal sizes keep plan order, so the journal's order is deterministic.
        todo.sort_by_key(|p| std::cmp::Reverse(p.case.query.size_hint()));
        let batch_size = backend.batch_size(kind).max(1);
        for batch in todo.chunks(batch_size) {
            if stop_requested() {
                return Err(RunError::Interrupted);
            }
            let cases: Vec<&Case> = batch.iter().map(|p| &p.case).collect();
            let tokens_before = backend.generated_tokens();
            let answers = backend.answer(&cases, &config.generation)?;
            let tokens = backend
                .generated_tokens()
                .map(|after| after.saturating_sub(tokens_before.unwrap_or(0)));
            if answers.len() != batch.len() {
                return Err(RunError::AnswerCount {
                    expected: batch.len(),
                    got: answers.len(),
                });
            }
            let mut attempts: Vec<Attempt> = batch
                .par_iter()
                .zip(answers)
                .map(|(planned, answer)| score(suites, planned, answer))
                .collect();
            judge_pass(suites, batch, &mut attempts, parties.judges, config.seed)?;
            let n = journal_scored(journal, attempts)?;
            on_progress(n, tokens);
        }
    }
    Ok(())
}

/// Every attack of the plan has its algorithm, an attacker model and its judge's backend
/// (`has_judge` by judge id): checked before any case runs, and by the command line before
/// any model is loaded.
pub fn check_attacks(
    suites: &[Suite],
    planned: &[PlannedCase],
    has_attacker: bool,
    has_judge: &dyn Fn(&str) -> bool,
) -> Result<(), RunError> {
    let mut seen = BTreeSet::new();
    for p in planned
        .iter()
        .filter(|p| p.case.query.kind() == QueryKind::Attack)
    {
        if !seen.insert((p.suite, p.probe)) {
            continue;
        }
        let probe = &suites[p.suite].probes[p.probe].probe;
        let Some(attack) = probe.attack() else {
            return Err(RunError::Probe {
                probe: probe.id().to_string(),
                reason: ProbeError("it makes attack cases but has no attack algorithm".into()),
            });
        };
        if !has_attacker {
            return Err(RunError::NoAttacker(format!("probe {}", probe.id())));
        }
        if !has_judge(attack.judge()) {
            return Err(RunError::NoJudge {
                probe: probe.id().to_string(),
                judge: attack.judge().to_string(),
            });
        }
    }
    Ok(())
}

/// Runs the plan's attacks, probe by probe, in lockstep groups of [`ATTACKS_IN_FLIGHT`]
/// behaviors in plan order; each attack is scored (detectors, then judges) and journaled in the
/// step it ends, so the journal's order is deterministic and a killed run loses only the
/// attacks in flight.
///
/// Run budgets (`Attack::budgets`) are shared out group by group: each behavior of a group may
/// spend what the probe's earlier groups left, divided evenly among the behaviors from this
/// group on, the remainder to the first ones (and no more than its own budget). The groups are
/// fixed by the plan, not by what a resumed run still has to do, and what earlier groups spent
/// is read from their journaled records, so a resumed run gives every behavior the allowance it
/// had. A behavior whose share is nothing is journaled as an error saying so.
fn attack_pass(
    suites: &[Suite],
    planned: &[PlannedCase],
    target: &mut dyn Backend,
    parties: &mut Parties<'_, '_>,
    config: &RunConfig,
    journal: &mut Journal,
    on_progress: &mut dyn FnMut(usize, Option<u64>),
) -> Result<(), RunError> {
    // Each probe's attack cases, in plan order.
    let mut probes: Vec<((usize, usize), Vec<&PlannedCase>)> = Vec::new();
    for p in planned
        .iter()
        .filter(|p| p.case.query.kind() == QueryKind::Attack)
    {
        match probes
            .iter_mut()
            .find(|(key, _)| *key == (p.suite, p.probe))
        {
            Some((_, cases)) => cases.push(p),
            None => probes.push(((p.suite, p.probe), vec![p])),
        }
    }
    for ((suite, probe), cases) in probes {
        let suite_id = &suites[suite].reference.id;
        let probe = &suites[suite].probes[probe].probe;
        let attack = probe.attack().ok_or_else(|| RunError::Probe {
            probe: probe.id().to_string(),
            reason: ProbeError("it makes attack cases but has no attack algorithm".into()),
        })?;
        let (own, run) = attack.budgets();
        // What the probe's groups so far spent: (target queries, tokens).
        let mut spent = (0u64, 0u64);
        for (g, group) in cases.chunks(ATTACKS_IN_FLIGHT).enumerate() {
            let first = g * ATTACKS_IN_FLIGHT;
            let mut begun = Vec::new();
            let mut unattacked = Vec::new();
            for (k, p) in group.iter().enumerate() {
                if journal.contains(suite_id, &p.case.id) {
                    continue;
                }
                let queries = allowance(own.queries, run.queries, spent.0, cases.len() - first, k);
                let tokens = allowance(own.tokens, run.tokens, spent.1, cases.len() - first, k);
                match (queries, tokens) {
                    (Some(0), _) | (_, Some(0)) => {
                        let which = if queries == Some(0) {
                            "run_max_queries"
                        } else {
                            "run_max_tokens"
                        };
                        let answer = Answer::Error(format!(
                            "not attacked: the probe's run budget ({which}) leaves this behavior no share"
                        ));
                        unattacked.push(score(suites, p, answer));
                    }
                    _ => begun.push((*p, queries, tokens)),
                }
            }
            if !unattacked.is_empty() {
                let n = journal_scored(journal, unattacked)?;
                on_progress(n, None);
            }
            run_group(
                suites,
                &begun,
                attack,
                target,
                parties,
                config,
                journal,
                on_progress,
            )?;
            for p in group {
                if let Some((q, t)) = journal.attack_spend(suite_id, &p.case.id) {
                    spent = (spent.0 + q, spent.1 + t);
                }
            }
        }
    }
    Ok(())
}

/// What the `k`th behavior of a group may spend: its own budget, or less where the run's
/// budget bounds it: what is left of the run's (`run` − `spent`), divided evenly among the
/// `left` behaviors from the group's first on, the remainder going to the first ones.
fn allowance(own: Option<u64>, run: Option<u64>, spent: u64, left: usize, k: usize) -> Option<u64> {
    let Some(run) = run else { return own };
    let rest = run.saturating_sub(spent);
    let left = left.max(1) as u64;
    let share = rest / left + u64::from((k as u64) < rest % left);
    Some(own.map_or(share, |own| own.min(share)))
}

/// Token budgets count every reply: an attack probe with one needs every party's backend to
/// count tokens. Checked before any case runs.
fn check_token_budgets(
    suites: &[Suite],
    planned: &[PlannedCase],
    target: &dyn Backend,
    parties: &Parties<'_, '_>,
) -> Result<(), RunError> {
    let mut seen = BTreeSet::new();
    for p in planned
        .iter()
        .filter(|p| p.case.query.kind() == QueryKind::Attack)
    {
        let probe = &suites[p.suite].probes[p.probe].probe;
        let Some(attack) = probe.attack() else {
            continue;
        };
        let (own, run) = attack.budgets();
        if own.tokens.or(run.tokens).is_some() && seen.insert((p.suite, p.probe)) {
            check_token_counts(probe.id(), target, parties)?;
        }
    }
    Ok(())
}

fn check_token_counts(
    probe: &str,
    target: &dyn Backend,
    parties: &Parties<'_, '_>,
) -> Result<(), RunError> {
    let mut uncounted = Vec::new();
    if target.count_tokens("").is_none() {
        uncounted.push("the target".to_string());
    }
    if let Some(attacker) = parties.attacker.as_deref() {
        if attacker.count_tokens("").is_none() {
            uncounted.push("the attacker".to_string());
        }
    }
    for (id, judge) in parties.judges.iter() {
        if judge.count_tokens("").is_none() {
            uncounted.push(format!("judge {id}"));
        }
    }
    if uncounted.is_empty() {
        return Ok(());
    }
    Err(RunError::Probe {
        probe: probe.to_string(),
        reason: ProbeError(format!(
            "its token budget needs token counts, and {} has no tokenizer (a served model): use max_queries instead",
            uncounted.join(", ")
        )),
    })
}

/// One lockstep group: its attacks begun with their allowances (target queries, tokens),
/// stepped until every one ends.
#[allow(clippy::too_many_arguments)]
fn run_group(
    suites: &[Suite],
    group: &[(&PlannedCase, Option<u64>, Option<u64>)],
    attack: &dyn crate::attack::Attack,
    target: &mut dyn Backend,
    parties: &mut Parties<'_, '_>,
    config: &RunConfig,
    journal: &mut Journal,
    on_progress: &mut dyn FnMut(usize, Option<u64>),
) -> Result<(), RunError> {
    let mut begun = Vec::new();
    for (planned, max_queries, max_tokens) in group {
        let seed = crate::backend::case_seed(config.seed, &planned.case.id);
        let state = attack
            .begin(&planned.case, seed, *max_queries)
            .map_err(|reason| RunError::Probe {
                probe: planned.case.probe.clone(),
                reason: ProbeError(format!("case {}: {reason}", planned.case.id)),
            })?;
        begun.push((planned.case.id.clone(), state, *max_tokens));
    }
    let mut lockstep = Lockstep::new(begun);
    while !lockstep.is_done() {
        if stop_requested() {
            return Err(RunError::Interrupted);
        }
        let finished = lockstep.step(target, parties, &config.generation)?;
        if finished.is_empty() {
            continue;
        }
        let batch: Vec<&PlannedCase> = finished.iter().map(|(i, _)| group[*i].0).collect();
        let mut attempts: Vec<Attempt> = finished
            .into_iter()
            .zip(&batch)
            .map(|((_, answer), planned)| score(suites, planned, answer))
            .collect();
        judge_pass(suites, &batch, &mut attempts, parties.judges, config.seed)?;
        let n = journal_scored(journal, attempts)?;
        on_progress(n, None);
    }
    Ok(())
}

/// Journals scored attempts, their decodings dropped (evidence is the answer as written) and
/// any non-finite number turned into an error that says why (JSON has no NaN or infinity);
/// returns how many.
fn journal_scored(journal: &mut Journal, attempts: Vec<Attempt>) -> Result<usize, RunError> {
    let attempts: Vec<Attempt> = attempts
        .into_iter()
        .map(|mut attempt| {
            attempt.decoded.clear();
            attempt.into_finite()
        })
        .collect();
    journal.append(&attempts)?;
    Ok(attempts.len())
}

/// Every query kind of the plan must be one the backend answers: checked before any case runs.
pub fn check_support(planned: &[PlannedCase], backend: &dyn Backend) -> Result<(), RunError> {
    let kinds: BTreeSet<QueryKind> = planned.iter().map(|p| p.case.query.kind()).collect();
    for kind in kinds {
        backend.supports(kind).map_err(RunError::Unsupported)?;
    }
    Ok(())
}

/// Asks every judge of each attempt's probe, in batches per judge and query kind, and records
/// the scores (or, when the judge failed or answered something unreadable, why not, with the raw
/// reply, as evidence: `Judge::verdict`).
fn judge_pass(
    suites: &[Suite],
    batch: &[&PlannedCase],
    attempts: &mut [Attempt],
    judges: &mut JudgeBackends,
    seed: u64,
) -> Result<(), RunError> {
    let generation = judge_generation(seed);
    for (judge_id, backend) in judges.iter_mut() {
        // (attempt index, the judge, the question) for every attempt this judge applies to.
        let mut asks: Vec<(usize, &dyn crate::probe::Judge, Case)> = Vec::new();
        for (i, (planned, attempt)) in batch.iter().zip(attempts.iter()).enumerate() {
            if attempt.is_error() {
                continue;
            }
            let plan = &suites[planned.suite].probes[planned.probe];
            for judge in plan.judges.iter().filter(|j| j.id() == judge_id) {
                if let Some(query) = judge.query(attempt) {
                    let case = Case {
                        id: format!("{}#{}", attempt.case_id, judge_id),
                        probe: attempt.probe.clone(),
                        attributes: attempt.attributes.clone(),
                        query,
                    };
                    asks.push((i, judge.as_ref(), case));
                }
            }
        }
        for kind in QueryKind::ALL {
            let of_kind: Vec<&(usize, &dyn crate::probe::Judge, Case)> =
                asks.iter().filter(|a| a.2.query.kind() == kind).collect();
            for chunk in of_kind.chunks(backend.batch_size(kind).max(1)) {
                let cases: Vec<&Case> = chunk.iter().map(|a| &a.2).collect();
                let answers = backend.answer(&cases, &generation)?;
                if answers.len() != chunk.len() {
                    return Err(RunError::AnswerCount {
                        expected: chunk.len(),
                        got: answers.len(),
                    });
                }
                for ((i, judge, _), answer) in chunk.iter().map(|a| (a.0, a.1, &a.2)).zip(answers) {
                    let attempt = &mut attempts[i];
                    match judge.verdict(attempt, &answer) {
                        Ok(score) => {
                            attempt.scores.insert(judge_id.clone(), score.value);
                            if let Some(evidence) = score.evidence {
                                attempt.evidence.insert(judge_id.clone(), evidence);
                            }
                        }
                        // No score, and the reason with the raw reply as its evidence.
                        Err(reason) => {
                            attempt.evidence.insert(judge_id.clone(), reason);
                        }
                    }
                }
            }
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
    let plan = &suite.probes[planned.probe];
    // Decoded once, by the transform that asked for the encoding.
    let transform = attempt.attribute("transform");
    if let (Some(t), Some(response)) = (
        plan.transforms.iter().find(|t| t.id() == transform),
        attempt.response(),
    ) {
        attempt.decoded = t.decode(response);
    }
    for detector in &plan.detectors {
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

#[cfg(test)]
mod tests {
    use super::allowance;

    #[test]
    fn run_budgets_are_shared_evenly_the_remainder_first() {
        // 12 for 10 behaviors: 1 each, the 2 left over to the first two.
        let shares: Vec<_> = (0..8)
            .map(|k| allowance(None, Some(12), 0, 10, k))
            .collect();
        assert_eq!(shares, [2, 2, 1, 1, 1, 1, 1, 1].map(Some));
        // The behavior's own budget bounds its share, and no run budget leaves it as it is.
        assert_eq!(allowance(Some(1), Some(12), 0, 10, 0), Some(1));
        assert_eq!(allowance(Some(3), None, 5, 10, 0), Some(3));
        assert_eq!(allowance(None, None, 5, 10, 0), None);
        // Spent (or overspent): nothing left.
        assert_eq!(allowance(None, Some(12), 12, 2, 0), Some(0));
        assert_eq!(allowance(None, Some(12), 20, 2, 0), Some(0));
        // 5 for 10: the first five get one.
        let shares: Vec<_> = (0..10)
            .map(|k| allowance(None, Some(5), 0, 10, k))
            .collect();
        assert_eq!(shares.iter().flatten().sum::<u64>(), 5);
        assert_eq!(shares[4..6], [Some(1), Some(0)]);
    }
}
