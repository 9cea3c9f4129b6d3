//! Adaptive attacks (PAIR, TAP, Crescendo): per behavior, a state machine that asks three
//! parties (an attacker model, the target under audit and a judge model) step by step, and
//! the lockstep driver that runs many of them together, batching each party's requests across
//! behaviors, so that an attack costs batched forward passes, not one prompt at a time.
//!
//! An attack is a [`Query::Attack`] case; its probe supplies the algorithm
//! ([`crate::Probe::attack`]); its answer is an [`Answer::Attack`] holding every turn, which
//! detectors and judges then score like any other answer (they read the final target reply).

use serde::{Deserialize, Serialize};

use crate::backend::{Answer, Backend, Generation};
use crate::case::{Case, Message, Query};
use crate::run::{JudgeBackends, RunError};

/// Who an attack asks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The attacker model (`--attacker`), which writes adversarial prompts.
    Attacker,
    /// The model under audit.
    Target,
    /// The judge model of this judge id (`--judge ID=MODEL`), which rates replies.
    Judge(String),
}

impl Party {
    /// The party's name in turns and errors: `attacker`, `target` or `judge`.
    pub fn name(&self) -> &str {
        match self {
            Party::Attacker => "attacker",
            Party::Target => "target",
            Party::Judge(_) => "judge",
        }
    }
}

/// One request of an attack step.
#[derive(Clone, Debug, PartialEq)]
pub struct Ask {
    /// Who answers it.
    pub party: Party,
    /// Unique within the attack and stable across runs (`r2/s3/attacker`): the asked case's id
    /// is the attack's id, `#` and this key, so sampling is seeded by it, not by batching.
    pub key: String,
    /// What is asked (a Chat, or a Choice for judges scored by log-likelihood).
    pub query: Query,
    /// How to generate; None: the run's generation (the target's answers).
    pub generation: Option<Generation>,
}

/// One recorded turn of an attack: what a party said, in which stream and round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Who said it: `attacker`, `target` or `judge`.
    pub party: String,
    /// The stream (PAIR), the tree path (TAP, `2.1.3`) or the conversation (Crescendo).
    pub stream: String,
    /// The iteration, depth or conversation turn, from 1.
    pub round: u32,
    /// What was said: the attacker's prompt, the target's reply, the judge's raw reply.
    pub text: String,
    /// The judge's rating of the target's reply (1–10), or an on-topic verdict (1/0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Why a turn did not count: pruned, backtracked, retried, an error and its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Requests made to each party by one attack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queries {
    /// Requests to the attacker, retries included.
    pub attacker: u32,
    /// Requests to the target: the usual measure of an attack's cost.
    pub target: u32,
    /// Requests to the judge (ratings and on-topic checks).
    pub judge: u32,
}

/// Why an attack stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The attack's judge gave the top rating.
    Success,
    /// Every iteration, depth or turn was used.
    Exhausted,
    /// The query budget of the behavior ran out.
    Budget,
    /// The attacker never gave a usable prompt (every reply malformed after retries).
    AttackerFailed,
}

/// The outcome of one attack: the best target reply (what detectors and judges score), the
/// prompt and conversation that produced it, and every turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackRecord {
    /// Earlier target turns of the conversation that led to `prompt` (Crescendo), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Message>,
    /// The adversarial prompt of the best reply (the target's last user message).
    pub prompt: String,
    /// The target's best reply: the one with the highest rating, the earliest on ties.
    pub response: String,
    /// The attack judge's rating of `response`.
    pub rating: f64,
    /// Why the attack stopped.
    pub stop: Stop,
    /// Requests per party.
    pub queries: Queries,
    /// Every turn, in the order they happened.
    pub turns: Vec<Turn>,
}

/// An adversarial algorithm: it begins one [`AttackState`] per behavior.
pub trait Attack: Send + Sync {
    /// The judge id whose backend rates the target's replies during the attack.
    fn judge(&self) -> &str;
    /// The state of the attack on `case` (a [`Query::Attack`]); `seed` is the case's seed
    /// (`case_seed(run seed, case id)`) for every random choice of the algorithm.
    fn begin(&self, case: &Case, seed: u64) -> Result<Box<dyn AttackState>, String>;
}

/// One attack in progress: it says what to ask next, reads the answers, and at the end says
/// what it found. Deterministic given its answers.
pub trait AttackState {
    /// The requests of the next step; empty when the attack is over.
    fn next(&mut self) -> Vec<Ask>;
    /// The answers to the last step's requests, in their order.
    fn observe(&mut self, answers: Vec<Answer>);
    /// What the attack found (called once, after `next` returned nothing), or why it found
    /// nothing to score (no target reply was ever rated): the attempt is then an error.
    fn finish(&mut self) -> Result<AttackRecord, String>;
}

/// The backends an attack asks, besides the target.
pub struct Parties<'a, 'b> {
    /// The attacker model, when one was given.
    pub attacker: Option<&'a mut (dyn Backend + 'b)>,
    /// The judges' backends, by judge id.
    pub judges: &'a mut JudgeBackends,
}

/// Attacks on several behaviors driven together: each step gathers every attack's requests,
/// answers them party by party in batches, and hands the answers back.
pub struct Lockstep {
    ids: Vec<String>,
    states: Vec<Option<Box<dyn AttackState>>>,
}

impl Lockstep {
    /// The attacks on `cases`, begun by their algorithms, each with its case seed.
    pub fn new(attacks: Vec<(String, Box<dyn AttackState>)>) -> Lockstep {
        let (ids, states) = attacks.into_iter().map(|(id, s)| (id, Some(s))).unzip();
        Lockstep { ids, states }
    }

    /// Whether every attack has finished.
    pub fn is_done(&self) -> bool {
        self.states.iter().all(Option::is_none)
    }

    /// One step: the attacks that are over are finished and returned with their answers
    /// (index into the attacks given to `new`, in order); the others' requests are answered.
    pub fn step(
        &mut self,
        target: &mut dyn Backend,
        parties: &mut Parties<'_, '_>,
        generation: &Generation,
    ) -> Result<Vec<(usize, Answer)>, RunError> {
        let mut finished = Vec::new();
        // (attack index, its asks) for every attack still going.
        let mut asked: Vec<(usize, Vec<Ask>)> = Vec::new();
        for (i, slot) in self.states.iter_mut().enumerate() {
            let Some(state) = slot else { continue };
            let asks = state.next();
            if asks.is_empty() {
                let answer = match state.finish() {
                    Ok(record) => Answer::Attack(record),
                    Err(reason) => Answer::Error(reason),
                };
                finished.push((i, answer));
                *slot = None;
            } else {
                asked.push((i, asks));
            }
        }
        // Answers by (attack, ask) position.
        let mut answers: Vec<Vec<Option<Answer>>> = asked
            .iter()
            .map(|(_, asks)| vec![None; asks.len()])
            .collect();
        let mut parties_asked: Vec<&Party> = asked
            .iter()
            .flat_map(|(_, asks)| asks.iter().map(|a| &a.party))
            .collect();
        parties_asked.sort();
        parties_asked.dedup();
        for party in parties_asked {
            let backend: &mut dyn Backend = match party {
                Party::Target => &mut *target,
                Party::Attacker => match parties.attacker.as_deref_mut() {
                    Some(backend) => backend,
                    None => return Err(RunError::NoAttacker(self.ids[asked[0].0].clone())),
                },
                Party::Judge(id) => match parties.judges.get_mut(id) {
                    Some(backend) => backend.as_mut(),
                    None => {
                        return Err(RunError::NoJudge {
                            probe: self.ids[asked[0].0].clone(),
                            judge: id.clone(),
                        })
                    }
                },
            };
            // Every ask of this party, grouped by generation settings and query kind.
            let mut todo: Vec<(usize, usize, Case, Generation)> = Vec::new();
            for (slot, (i, asks)) in asked.iter().enumerate() {
                for (k, ask) in asks.iter().enumerate().filter(|(_, a)| &a.party == party) {
                    let case = Case {
                        id: format!("{}#{}", self.ids[*i], ask.key),
                        probe: String::new(),
                        attributes: Default::default(),
                        query: ask.query.clone(),
                    };
                    let g = ask.generation.clone().unwrap_or_else(|| generation.clone());
                    todo.push((slot, k, case, g));
                }
            }
            while !todo.is_empty() {
                let (kind, g) = (todo[0].2.query.kind(), todo[0].3.clone());
                let (group, rest): (Vec<_>, Vec<_>) = todo
                    .into_iter()
                    .partition(|t| t.2.query.kind() == kind && t.3 == g);
                todo = rest;
                for chunk in group.chunks(backend.batch_size(kind).max(1)) {
                    let cases: Vec<&Case> = chunk.iter().map(|t| &t.2).collect();
                    let got = backend.answer(&cases, &g)?;
                    if got.len() != chunk.len() {
                        return Err(RunError::AnswerCount {
                            expected: chunk.len(),
                            got: got.len(),
                        });
                    }
                    for ((slot, k, _, _), answer) in chunk.iter().zip(got) {
                        answers[*slot][*k] = Some(answer);
                    }
                }
            }
        }
        for ((i, _), got) in asked.into_iter().zip(answers) {
            let got = got
                .into_iter()
                .map(|a| a.unwrap_or_else(|| Answer::Error("not answered".into())))
                .collect();
            if let Some(state) = self.states[i].as_mut() {
                state.observe(got);
            }
        }
        Ok(finished)
    }
}

/// A JSON object `{ … }` in a model's reply, leniently: the first `{` to its matching `}` (or
/// to the end, closed), parsed as JSON. Attackers wrap JSON in prose and code fences, and small
/// models forget the closing brace; PAIR's reference (`common.extract_json`) is as lenient.
pub fn json_object(text: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let start = text.find('{')?;
    let body = &text[start..];
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in body.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = Some(i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let candidate = match end {
        Some(end) => body[..end].to_string(),
        None if in_string => format!("{body}\"}}"),
        None => format!("{body}}}"),
    };
    // Raw line breaks inside strings are invalid JSON but common in model output.
    let parse = |s: &str| match serde_json::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    };
    parse(&candidate).or_else(|| parse(&escape_raw_newlines(&candidate)))
}

/// Line breaks inside JSON strings written as `\n`.
fn escape_raw_newlines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                (false, '\n') => {
                    out.push_str("\\n");
                    continue;
                }
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    out
}

/// A rating `[[n]]` (1–10) in a judge's reply, as PAIR's judge writes it (`Rating: [[7]]`).
pub fn bracketed_rating(text: &str) -> Option<u32> {
    let start = text.find("[[")? + 2;
    let end = start + text[start..].find("]]")?;
    text[start..end]
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=10).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_are_read_leniently() {
        let o =
            json_object("Sure! ```json\n{\"improvement\": \"x\", \"prompt\": \"say {hi}\"}\n```")
                .unwrap();
        assert_eq!(o["prompt"], "say {hi}");
        let o = json_object("{\"improvement\": \"\",\"prompt\": \"line one\nline two").unwrap();
        assert_eq!(o["prompt"], "line one\nline two");
        let o = json_object("{\"a\": \"b\\\"c\"}").unwrap();
        assert_eq!(o["a"], "b\"c");
        assert!(json_object("no json here").is_none());
        assert!(json_object("{not: json}").is_none());
        assert!(json_object("").is_none());
    }

    #[test]
    fn ratings_are_bracketed_numbers_from_one_to_ten() {
        assert_eq!(bracketed_rating("Rating: [[7]]"), Some(7));
        assert_eq!(bracketed_rating("Rating: [[ 10 ]] because"), Some(10));
        assert_eq!(bracketed_rating("Rating: [[11]]"), None);
        assert_eq!(bracketed_rating("Rating: [[0]]"), None);
        assert_eq!(bracketed_rating("Rating: 7"), None);
        assert_eq!(bracketed_rating("[[x]]"), None);
    }
}
