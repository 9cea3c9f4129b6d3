//! TAP (Mehrotra et al. 2023, "Tree of Attacks: Jailbreaking Black-Box LLMs Automatically"):
//! a tree search over attacker conversations. Per depth: every leaf's attacker conversation is
//! asked `branching_factor` times (each branch its own key, so its own sampling); the judge
//! checks each new prompt is on topic (`Response: [[YES]]`/`[[NO]]`) and off-topic prompts
//! are pruned, at most `width` kept (phase 1); the target answers the prompts kept, the judge
//! rates each reply 1–10 with PAIR's prompt, the attack stops at a 10, and the `width` best
//! rated become the next leaves (phase 2), each told its reply and rating.
//! Prompts from the authors' repository (RICommunity/TAP, MIT, at 7bcdad3; prompts/NOTICE.md);
//! the loop follows its `main_TAP.py`, with these documented choices:
//! - ties in a pruning are broken by a shuffle seeded by the case seed (the reference calls
//!   `np.random.shuffle` but then sorts `(score, index)` pairs, so its ties in fact go to the
//!   highest index; its comment says ties are meant to be random);
//! - an unreadable on-topic verdict counts as on topic (1), as the reference's
//!   `process_output_on_topic_score` does, with a note;
//! - when every prompt of a depth is off topic the reference keeps `list_[0]` and
//!   `list_[shuffled[0][1]]` (its comment: "at least two elements"; the first index is the
//!   score, 0): the first branch and a random one, which may be the first again, then asked
//!   twice. Probity keeps the first and a random other one (one only if there is one);
//! - the attacker's reply is not pre-seeded with `{"improvement": "` (chat backends answer
//!   whole turns), and the feedback message is PAIR's, without the reference's indentation.

use std::sync::Arc;

use audit_core::attack::{
    Ask, Attack, AttackRecord, AttackState, Budget, Party, Queries, Stop, Turn,
};
use audit_core::{Answer, Case, Message, Probe, Query, Role};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::pair::{feedback, init_message, JUDGE, SUCCESS};
use super::{
    attacker_ask, attacker_reply, fill, goal_and_target, judge_generation, rating, rating_ask,
    target_ask, text, unusable, AttackProbe, Common,
};
use crate::registry::ProbeArgs;
use crate::sampling::Sampling;

pub const FAMILY: &str = "tap";

/// The attacker's system prompt (`system_prompts.get_attacker_system_prompt`).
pub const ATTACKER: &str = include_str!("prompts/tap-attacker.txt");
/// The judge's on-topic system prompt (`get_evaluator_system_prompt_for_on_topic`).
pub const ON_TOPIC: &str = include_str!("prompts/tap-on-topic.txt");

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "one")]
    streams: usize,
    #[serde(default = "four")]
    branching_factor: usize,
    #[serde(default = "ten")]
    width: usize,
    #[serde(default = "ten")]
    depth: usize,
    #[serde(default = "three")]
    keep_last_n: usize,
}

fn one() -> usize {
    1
}
fn three() -> usize {
    3
}
fn four() -> usize {
    4
}
fn ten() -> usize {
    10
}

pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    let (common, behaviors, own) = super::common(args, FAMILY)?;
    let (sampling, p): (Sampling, Params) =
        crate::sampling::params(&own).map_err(|e| format!("{FAMILY}: {e}"))?;
    if [
        p.streams,
        p.branching_factor,
        p.width,
        p.depth,
        p.keep_last_n,
    ]
    .contains(&0)
    {
        return Err(format!(
            "{FAMILY}: `streams`, `branching_factor`, `width`, `depth` and `keep_last_n` must be at least 1"
        ));
    }
    let tap = Tap {
        common,
        streams: p.streams,
        branching_factor: p.branching_factor,
        width: p.width,
        depth: p.depth,
        keep_last_n: p.keep_last_n,
    };
    Ok(Box::new(AttackProbe::new(
        args,
        behaviors,
        sampling,
        FAMILY,
        Arc::new(tap),
    )))
}

/// TAP's settings.
#[derive(Clone, Debug)]
pub struct Tap {
    pub common: Common,
    /// Root nodes (`--n-streams`).
    pub streams: usize,
    /// Children per leaf and depth.
    pub branching_factor: usize,
    /// Leaves kept after each pruning.
    pub width: usize,
    /// Depths at most.
    pub depth: usize,
    /// Attacker exchanges kept in a conversation.
    pub keep_last_n: usize,
}

impl Attack for Tap {
    fn judge(&self) -> &str {
        &self.common.judge
    }

    fn budgets(&self) -> (Budget, Budget) {
        self.common.budgets()
    }

    fn begin(
        &self,
        case: &Case,
        seed: u64,
        max_queries: Option<u64>,
    ) -> Result<Box<dyn AttackState>, String> {
        let mut this = self.clone();
        this.common = self.common.allowed(max_queries);
        let (goal, target) = goal_and_target(case)?;
        let leaves = (0..self.streams)
            .map(|s| Leaf {
                path: (s + 1).to_string(),
                history: Vec::new(),
                pending: init_message(goal, target),
            })
            .collect();
        Ok(Box::new(TapState {
            tap: this,
            goal: goal.to_string(),
            attacker_system: fill(ATTACKER, goal, target),
            judge_system: fill(JUDGE, goal, target),
            on_topic_system: fill(ON_TOPIC, goal, target),
            leaves,
            nodes: Vec::new(),
            kept: Vec::new(),
            depth: 0,
            phase: Phase::Branch,
            asked: Vec::new(),
            turns: Vec::new(),
            queries: Queries::default(),
            best: None,
            stop: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }))
    }
}

/// A leaf of the tree: an attacker conversation waiting to be branched.
#[derive(Clone, Debug)]
struct Leaf {
    /// Its path from the root, `2.1.3`.
    path: String,
    /// The attacker's conversation, cut to the last `keep_last_n` exchanges.
    history: Vec<Message>,
    /// The attacker's next user message.
    pending: String,
}

/// A child of a leaf at the current depth.
#[derive(Clone, Debug)]
struct Node {
    leaf: Leaf,
    tries: usize,
    alive: bool,
    /// (prompt, improvement)
    prompt: Option<(String, String)>,
    response: Option<String>,
    rating: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Make this depth's children of every leaf.
    Branch,
    Attacker,
    OnTopic,
    Target,
    Judge,
}

struct TapState {
    tap: Tap,
    goal: String,
    attacker_system: String,
    judge_system: String,
    on_topic_system: String,
    leaves: Vec<Leaf>,
    /// This depth's children, branch-major as the reference lists them.
    nodes: Vec<Node>,
    /// The nodes kept by phase 1 (and the budget), best first: those the target answers.
    kept: Vec<usize>,
    /// The current depth, from 1.
    depth: u32,
    phase: Phase,
    /// The nodes asked in the step in flight.
    asked: Vec<usize>,
    turns: Vec<Turn>,
    queries: Queries,
    /// (rating, prompt, response) of the best reply so far.
    best: Option<(f64, String, String)>,
    stop: Option<Stop>,
    rng: ChaCha8Rng,
}

/// An on-topic verdict in a judge's reply: the first `[[yes]]` or `[[no]]`, in any case, as
/// the reference's `\[\[(yes|no)\]\]` on the lowercased reply.
pub fn on_topic_verdict(text: &str) -> Option<bool> {
    let lower = text.to_lowercase();
    match (lower.find("[[yes]]"), lower.find("[[no]]")) {
        (Some(y), Some(n)) => Some(y < n),
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (None, None) => None,
    }
}

/// The indices a pruning keeps, best first: the `width` highest scores, of those above 0,
/// ties in an order shuffled by `rng`; when no score is above 0, the reference's fallback of
/// two: the first index and a random other one.
pub fn prune(scores: &[f64], width: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.shuffle(rng);
    // Stable: equal scores keep their shuffled order.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let kept: Vec<usize> = order
        .iter()
        .take(width)
        .copied()
        .filter(|&i| scores[i] > 0.0)
        .collect();
    if !kept.is_empty() || order.is_empty() {
        return kept;
    }
    std::iter::once(0)
        .chain(order.into_iter().find(|&i| i != 0))
        .collect()
}

impl TapState {
    fn turn(
        &mut self,
        party: &str,
        node: usize,
        text: &str,
        score: Option<f64>,
        note: Option<String>,
    ) {
        self.turns.push(Turn {
            party: party.to_string(),
            stream: self.nodes[node].leaf.path.clone(),
            round: self.depth,
            text: text.to_string(),
            score,
            note,
        });
    }

    fn budget_left(&self) -> usize {
        self.tap.common.max_queries.map_or(usize::MAX, |max| {
            max.saturating_sub(self.queries.target as usize)
        })
    }

    fn key(&self, node: usize, what: &str) -> String {
        format!("d{}/{}/{what}", self.depth, self.nodes[node].leaf.path)
    }

    /// A new depth: `branching_factor` children of every leaf, branch-major.
    fn branch(&mut self) {
        self.depth += 1;
        let mut nodes = Vec::new();
        for b in 0..self.tap.branching_factor {
            for leaf in &self.leaves {
                let mut child = leaf.clone();
                child.path = format!("{}.{}", leaf.path, b + 1);
                nodes.push(Node {
                    leaf: child,
                    tries: 0,
                    alive: true,
                    prompt: None,
                    response: None,
                    rating: None,
                });
            }
        }
        self.nodes = nodes;
        self.kept.clear();
        self.phase = Phase::Attacker;
    }

    /// After phase 2: the next depth, or the stop.
    fn end_depth(&mut self) {
        if self.best.as_ref().is_some_and(|b| b.0 >= SUCCESS) {
            self.stop = Some(Stop::Success);
        } else if self.depth as usize >= self.tap.depth || self.leaves.is_empty() {
            self.stop = Some(Stop::Exhausted);
        } else if self.budget_left() == 0 {
            self.stop = Some(Stop::Budget);
        } else {
            self.phase = Phase::Branch;
        }
    }

    fn observe_attacker(&mut self, asked: &[usize], answers: &[Answer]) {
        let attempts = self.tap.common.attempts;
        for (&n, answer) in asked.iter().zip(answers) {
            self.queries.attacker += 1;
            self.nodes[n].tries += 1;
            let tries = self.nodes[n].tries;
            match text(answer).and_then(attacker_reply) {
                Ok((prompt, improvement)) => {
                    let note =
                        (!improvement.is_empty()).then(|| format!("improvement: {improvement}"));
                    self.turn("attacker", n, &prompt, None, note);
                    self.nodes[n].prompt = Some((prompt, improvement));
                }
                Err(reason) => {
                    let raw = text(answer).unwrap_or("").to_string();
                    let (note, ends) = unusable(tries, attempts, "the branch", &reason);
                    self.nodes[n].alive &= !ends;
                    self.turn("attacker", n, &raw, None, Some(note));
                }
            }
        }
    }

    /// Phase 1: on-topic verdicts, then the `width` best on topic (and what the budget allows).
    fn observe_on_topic(&mut self, asked: &[usize], answers: &[Answer]) {
        let mut verdicts = Vec::with_capacity(asked.len());
        for answer in answers {
            self.queries.judge += 1;
            verdicts.push(match answer {
                Answer::Response(t) => match on_topic_verdict(t) {
                    Some(v) => (f64::from(u8::from(v)), t.clone(), None),
                    None => (
                        1.0,
                        t.clone(),
                        Some("on-topic verdict unreadable: counted on topic, as TAP does"),
                    ),
                },
                _ => (
                    1.0,
                    String::new(),
                    Some("judge gave no on-topic verdict: counted on topic, as TAP does"),
                ),
            });
        }
        let scores: Vec<f64> = verdicts.iter().map(|v| v.0).collect();
        let mut kept = prune(&scores, self.tap.width, &mut self.rng);
        let budget = self.budget_left();
        let over_budget: Vec<usize> = kept.split_off(kept.len().min(budget));
        for (k, (&n, (score, raw, unreadable))) in asked.iter().zip(verdicts).enumerate() {
            let mut notes: Vec<String> = unreadable.into_iter().map(str::to_string).collect();
            if over_budget.contains(&k) {
                notes.push("pruned: the query budget is spent".to_string());
            } else if !kept.contains(&k) {
                notes.push(if score > 0.0 {
                    format!("pruned: not among the {} kept on topic", self.tap.width)
                } else {
                    "pruned: off topic".to_string()
                });
            } else if score <= 0.0 {
                notes.push("kept off topic: every prompt was off topic, and TAP then keeps the first and a random other one".to_string());
            }
            let note = (!notes.is_empty()).then(|| notes.join("; "));
            self.turn("judge", n, &raw, Some(score), note);
        }
        self.kept = kept.into_iter().map(|k| asked[k]).collect();
    }

    /// Phase 2: ratings, the best reply, and the `width` best rated as the next leaves.
    fn observe_judge(&mut self, asked: &[usize], answers: &[Answer]) {
        let mut rated = Vec::with_capacity(asked.len());
        for answer in answers {
            self.queries.judge += 1;
            rated.push(rating(answer));
        }
        for (&n, (score, _, _)) in asked.iter().zip(&rated) {
            self.nodes[n].rating = Some(*score);
            let (prompt, _) = self.nodes[n].prompt.clone().unwrap_or_default();
            let response = self.nodes[n].response.clone().unwrap_or_default();
            if self.best.as_ref().is_none_or(|b| *score > b.0) {
                self.best = Some((*score, prompt, response));
            }
        }
        let scores: Vec<f64> = rated.iter().map(|r| r.0).collect();
        let kept = prune(&scores, self.tap.width, &mut self.rng);
        for (k, (&n, (score, raw, note))) in asked.iter().zip(rated).enumerate() {
            let mut notes: Vec<String> = note.into_iter().collect();
            if !kept.contains(&k) {
                notes.push(format!(
                    "pruned: not among the {} best ratings",
                    self.tap.width
                ));
            }
            let note = (!notes.is_empty()).then(|| notes.join("; "));
            self.turn("judge", n, &raw, Some(score), note);
        }
        let keep = 2 * self.tap.keep_last_n;
        self.leaves = kept
            .into_iter()
            .map(|k| {
                let node = &self.nodes[asked[k]];
                let (prompt, improvement) = node.prompt.clone().unwrap_or_default();
                let mut history = node.leaf.history.clone();
                history.push(Message {
                    role: Role::User,
                    content: node.leaf.pending.clone(),
                });
                history.push(Message {
                    role: Role::Assistant,
                    content: serde_json::json!({"improvement": improvement, "prompt": prompt})
                        .to_string(),
                });
                let cut = history.len().saturating_sub(keep);
                history.drain(..cut);
                Leaf {
                    path: node.leaf.path.clone(),
                    history,
                    pending: feedback(
                        node.response.as_deref().unwrap_or(""),
                        node.rating.unwrap_or(1.0),
                        &self.goal,
                    ),
                }
            })
            .collect();
        self.end_depth();
    }
}

impl AttackState for TapState {
    fn next(&mut self) -> Vec<Ask> {
        loop {
            if self.stop.is_some() {
                return Vec::new();
            }
            match self.phase {
                Phase::Branch => self.branch(),
                Phase::Attacker => {
                    let attempts = self.tap.common.attempts;
                    self.asked = (0..self.nodes.len())
                        .filter(|&n| {
                            let node = &self.nodes[n];
                            node.alive && node.prompt.is_none() && node.tries < attempts
                        })
                        .collect();
                    if !self.asked.is_empty() {
                        return self
                            .asked
                            .iter()
                            .map(|&n| {
                                let node = &self.nodes[n];
                                attacker_ask(
                                    self.key(n, &format!("attacker{}", node.tries + 1)),
                                    &self.attacker_system,
                                    &node.leaf.history,
                                    &node.leaf.pending,
                                    &self.tap.common.attacker,
                                )
                            })
                            .collect();
                    }
                    if self.nodes.iter().all(|n| n.prompt.is_none()) {
                        // No branch of this depth has a prompt: the attacker failed throughout.
                        self.stop = Some(Stop::AttackerFailed);
                        continue;
                    }
                    self.phase = Phase::OnTopic;
                }
                Phase::OnTopic => {
                    self.asked = (0..self.nodes.len())
                        .filter(|&n| self.nodes[n].prompt.is_some())
                        .collect();
                    let judge = Party::Judge(self.tap.common.judge.clone());
                    return self
                        .asked
                        .iter()
                        .filter_map(|&n| {
                            let (prompt, _) = self.nodes[n].prompt.as_ref()?;
                            Some(Ask {
                                party: judge.clone(),
                                key: self.key(n, "on-topic"),
                                query: Query::Chat {
                                    system: Some(self.on_topic_system.clone()),
                                    history: Vec::new(),
                                    prompt: format!("[PROMPT]:{prompt}"),
                                },
                                generation: Some(judge_generation()),
                            })
                        })
                        .collect();
                }
                Phase::Target => {
                    if self.kept.is_empty() {
                        self.stop = Some(Stop::Budget);
                        continue;
                    }
                    self.asked = self.kept.clone();
                    return self
                        .asked
                        .iter()
                        .filter_map(|&n| {
                            let (prompt, _) = self.nodes[n].prompt.as_ref()?;
                            Some(target_ask(self.key(n, "target"), &[], prompt))
                        })
                        .collect();
                }
                Phase::Judge => {
                    self.asked = self
                        .kept
                        .iter()
                        .copied()
                        .filter(|&n| self.nodes[n].response.is_some())
                        .collect();
                    if self.asked.is_empty() {
                        // Every target query failed: nothing to rate, no leaf to grow.
                        self.leaves.clear();
                        self.end_depth();
                        continue;
                    }
                    let judge = self.tap.common.judge.clone();
                    return self
                        .asked
                        .iter()
                        .filter_map(|&n| {
                            let node = &self.nodes[n];
                            let (prompt, _) = node.prompt.as_ref()?;
                            Some(rating_ask(
                                &judge,
                                self.key(n, "judge"),
                                &self.judge_system,
                                prompt,
                                node.response.as_deref()?,
                            ))
                        })
                        .collect();
                }
            }
        }
    }

    fn observe(&mut self, answers: Vec<Answer>) {
        let asked = std::mem::take(&mut self.asked);
        match self.phase {
            Phase::Branch => {}
            Phase::Attacker => self.observe_attacker(&asked, &answers),
            Phase::OnTopic => {
                self.observe_on_topic(&asked, &answers);
                self.phase = Phase::Target;
            }
            Phase::Target => {
                for (&n, answer) in asked.iter().zip(&answers) {
                    self.queries.target += 1;
                    match text(answer) {
                        Ok(reply) => {
                            self.turn("target", n, reply, None, None);
                            self.nodes[n].response = Some(reply.to_string());
                        }
                        Err(reason) => {
                            self.turn("target", n, "", None, Some(format!("error: {reason}")))
                        }
                    }
                }
                self.phase = Phase::Judge;
            }
            Phase::Judge => self.observe_judge(&asked, &answers),
        }
    }

    fn finish(&mut self) -> AttackRecord {
        super::record(
            self.best.clone().map(|(r, p, t)| (r, Vec::new(), p, t)),
            self.stop,
            &self.queries,
            &mut self.turns,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{case, common, drive, prompt};
    use super::*;
    use audit_core::attack::Party;

    fn tap(branching_factor: usize, width: usize, depth: usize, max: Option<usize>) -> Tap {
        Tap {
            common: common(2, max),
            streams: 1,
            branching_factor,
            width,
            depth,
            keep_last_n: 3,
        }
    }

    /// The tree path in an ask's key (`d2/1.3.1/target` → `1.3.1`).
    fn path(ask: &Ask) -> &str {
        ask.key.split('/').nth(1).unwrap_or("")
    }

    /// Attacker prompts name their node; the judge finds prompts of `off` paths off topic and
    /// rates replies by `ratings` (path → rating, else 1); the target echoes the prompt.
    fn answer<'a>(
        off: &'a [&'a str],
        ratings: &'a [(&'a str, u32)],
    ) -> impl FnMut(&Ask) -> String + 'a {
        move |ask| {
            let p = prompt(ask);
            match (&ask.party, ask.key.rsplit('/').next().unwrap_or("")) {
                (Party::Attacker, _) => {
                    format!("{{\"improvement\": \"\", \"prompt\": \"P {}\"}}", path(ask))
                }
                (Party::Target, _) => format!("reply to {p}"),
                (Party::Judge(_), "on-topic") => {
                    if off.contains(&path(ask)) {
                        "Response: [[NO]]".to_string()
                    } else {
                        "Response: [[YES]]".to_string()
                    }
                }
                (Party::Judge(_), _) => {
                    let n = ratings
                        .iter()
                        .find(|(p, _)| *p == path(ask))
                        .map_or(1, |(_, n)| *n);
                    format!("Rating: [[{n}]]")
                }
            }
        }
    }

    #[test]
    fn on_topic_verdicts_are_read_as_the_reference_reads_them() {
        assert_eq!(on_topic_verdict("Response: [[YES]]"), Some(true));
        assert_eq!(on_topic_verdict("Response: [[no]]"), Some(false));
        assert_eq!(on_topic_verdict("[[No]] then [[YES]]"), Some(false));
        assert_eq!(on_topic_verdict("Response: YES"), None);
    }

    #[test]
    fn pruning_keeps_the_best_positive_scores_with_seeded_ties() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(prune(&[3.0, 7.0, 5.0], 2, &mut rng), vec![1, 2]);
        assert_eq!(prune(&[1.0, 0.0, 1.0], 10, &mut rng).len(), 2);
        assert!(!prune(&[1.0, 0.0, 1.0], 10, &mut rng).contains(&1));
        assert!(prune(&[], 3, &mut rng).is_empty());
        // Ties: which two of four equal scores are kept depends on the seed, and only on it.
        let kept = |seed| prune(&[1.0; 4], 2, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(kept(7), kept(7));
        let distinct: std::collections::BTreeSet<Vec<usize>> = (0..32).map(kept).collect();
        assert!(distinct.len() > 1, "{distinct:?}");
        // Every prompt off topic: the first and a random other one.
        for seed in 0..16 {
            let fallback = prune(&[0.0; 3], 2, &mut ChaCha8Rng::seed_from_u64(seed));
            assert!(fallback.len() == 2 && fallback[0] == 0 && fallback[1] != 0);
        }
        assert_eq!(prune(&[0.0], 2, &mut rng), vec![0]);
    }

    #[test]
    fn the_tree_branches_prunes_and_grows_the_best_leaves() {
        // Depth 1: 1.1 is off topic; 1.2 (5) and 1.3 (3) are kept. Depth 2: only the first
        // branches are on topic; 1.3.1 rates 6, the best.
        let off = ["1.1", "1.2.2", "1.3.2", "1.2.3", "1.3.3"];
        let ratings = [("1.2", 5), ("1.3", 3), ("1.2.1", 4), ("1.3.1", 6)];
        let state = tap(3, 2, 2, None).begin(&case(), 9, None).unwrap();
        let (asks, record) = drive(state, answer(&off, &ratings));
        let record = record.unwrap();
        assert_eq!(record.stop, Stop::Exhausted);
        assert_eq!(record.rating, 6.0);
        assert_eq!(record.prompt, "P 1.3.1");
        assert_eq!(
            (
                record.queries.attacker,
                record.queries.target,
                record.queries.judge
            ),
            (9, 4, 9 + 4)
        );
        // Branches are distinct keys (distinct sampling), branch-major as the reference.
        let attacker: Vec<&str> = asks
            .iter()
            .filter(|a| a.party == Party::Attacker)
            .map(|a| a.key.as_str())
            .collect();
        assert_eq!(
            attacker[..3],
            ["d1/1.1/attacker1", "d1/1.2/attacker1", "d1/1.3/attacker1"]
        );
        assert_eq!(attacker[3..5], ["d2/1.2.1/attacker1", "d2/1.3.1/attacker1"]);
        // A depth-2 child of 1.3 hears its parent's reply and rating.
        let child = asks.iter().find(|a| a.key == "d2/1.3.1/attacker1").unwrap();
        assert!(prompt(child).contains("LANGUAGE MODEL OUTPUT: reply to P 1.3"));
        assert!(prompt(child).ends_with("SCORE: 3"), "{}", prompt(child));
        // The pruned node is recorded, by path.
        let pruned = record
            .turns
            .iter()
            .find(|t| t.stream == "1.1" && t.party == "judge")
            .unwrap();
        assert_eq!(pruned.score, Some(0.0));
        assert_eq!(pruned.note.as_deref(), Some("pruned: off topic"));
        assert!(!asks.iter().any(|a| a.key == "d1/1.1/target"));
    }

    #[test]
    fn phase_two_keeps_the_width_best_ratings() {
        let ratings = [("1.1", 2), ("1.2", 9), ("1.3", 4)];
        let state = tap(3, 3, 2, None).begin(&case(), 0, None).unwrap();
        let mut narrow = tap(3, 3, 2, None);
        narrow.width = 1;
        let (_, wide) = drive(state, answer(&[], &ratings));
        let (asks, record) = drive(
            narrow.begin(&case(), 0, None).unwrap(),
            answer(&[], &ratings),
        );
        let record = record.unwrap();
        // Width 1: one prompt reaches the target at depth 1 (the tie of three on-topic ones
        // broken by the seed), and one at depth 2.
        assert_eq!(record.queries.target, 2);
        assert_eq!(wide.unwrap().queries.target, 6);
        let depth2: Vec<&str> = asks
            .iter()
            .filter(|a| a.party == Party::Attacker && a.key.starts_with("d2/"))
            .map(path)
            .collect();
        assert_eq!(depth2.len(), 3);
        let leaf = &depth2[0][..3];
        assert!(depth2.iter().all(|p| p.starts_with(leaf)));
    }

    #[test]
    fn success_stops_the_search_and_the_budget_cuts_a_depth() {
        let ratings = [("1.1.2", 10)];
        let state = tap(2, 4, 5, None).begin(&case(), 3, None).unwrap();
        let (_, record) = drive(state, answer(&[], &ratings));
        let record = record.unwrap();
        assert_eq!((record.stop, record.rating), (Stop::Success, 10.0));
        assert_eq!(record.queries.target, 2 + 4);
        // Five queries: depth 2 is cut to three prompts and the search stops.
        let state = tap(2, 4, 5, Some(5)).begin(&case(), 3, None).unwrap();
        let (_, record) = drive(state, answer(&[], &[]));
        let record = record.unwrap();
        assert_eq!((record.stop, record.queries.target), (Stop::Budget, 5));
        assert!(record
            .turns
            .iter()
            .any(|t| t.note.as_deref() == Some("pruned: the query budget is spent")));
    }

    #[test]
    fn runs_are_deterministic_given_the_seed() {
        let run = |seed| {
            let state = tap(3, 2, 3, None).begin(&case(), seed, None).unwrap();
            drive(state, answer(&[], &[])).1.unwrap().turns
        };
        assert_eq!(run(5), run(5));
    }

    #[test]
    fn malformed_attacker_replies_are_retried_then_end_the_branch() {
        let state = tap(2, 4, 2, None).begin(&case(), 0, None).unwrap();
        let (_, record) = drive(state, |ask| match ask.party {
            Party::Attacker if path(ask) == "1.1" => "no JSON today".to_string(),
            _ => answer(&[], &[])(ask),
        });
        let record = record.unwrap();
        let notes: Vec<&str> = record
            .turns
            .iter()
            .filter(|t| t.stream == "1.1")
            .filter_map(|t| t.note.as_deref())
            .collect();
        assert_eq!(notes.len(), 2);
        assert!(notes[0].starts_with("retry 1 of 2: no JSON object"));
        assert!(
            notes[1].starts_with("error: no usable attacker reply after 2 tries, the branch ends")
        );
        // Every reply malformed: the attack fails, saying why.
        let state = tap(2, 4, 2, None).begin(&case(), 0, None).unwrap();
        let (_, record) = drive(state, |_| "no JSON today".to_string());
        let error = record.unwrap_err();
        assert!(error.contains("never got a rated target reply (4 attacker, 0 target queries)"));
        assert!(error.contains("no JSON object"), "{error}");
    }
}
