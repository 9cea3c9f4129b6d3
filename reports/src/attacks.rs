//! The adaptive attacks of a run (PAIR, TAP, Crescendo: attempts answered by
//! [`Answer::Attack`]), for the reports: each probe's counts (behaviors attacked, successes by
//! the attack's own judge, target queries per success, queries per party), and each attack as a
//! conversation, its turns grouped by stream, capped so that the page stays small (the full
//! text of every turn is in attempts.jsonl).

use audit_core::attack::{AttackRecord, Stop};
use audit_core::{Answer, Attempt, Query};
use serde::Serialize;

use crate::number;

/// The characters of one turn's text (and note) the report shows at most.
pub(crate) const TEXT_CHARS: usize = 2000;
/// The turns of one attack the report shows at most (the first ones, in the order they
/// happened).
pub(crate) const TURNS: usize = 60;

/// One probe's attacks, counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Counts {
    /// Behaviors attacked: the probe's attack attempts, errors included.
    pub behaviors: usize,
    /// Attacks that failed in the backend (no record).
    pub errors: usize,
    /// Attacks that stopped because their judge gave the top rating.
    pub successes: usize,
    /// The target queries of each success, in attempt order.
    pub success_queries: Vec<u32>,
    /// Queries per party, over every attack of the probe.
    pub attacker: u64,
    pub target: u64,
    pub judge: u64,
}

impl Counts {
    /// The counts of `attempts` that are attacks; `None` when none is.
    pub fn of<'a>(attempts: impl IntoIterator<Item = &'a Attempt>) -> Option<Counts> {
        let mut counts = Counts::default();
        for attempt in attempts {
            if !matches!(attempt.query, Query::Attack { .. }) {
                continue;
            }
            counts.behaviors += 1;
            match &attempt.answer {
                Answer::Attack(record) => {
                    counts.attacker += u64::from(record.queries.attacker);
                    counts.target += u64::from(record.queries.target);
                    counts.judge += u64::from(record.queries.judge);
                    if record.stop == Stop::Success {
                        counts.successes += 1;
                        counts.success_queries.push(record.queries.target);
                    }
                }
                _ => counts.errors += 1,
            }
        }
        (counts.behaviors > 0).then_some(counts)
    }

    /// Mean and median target queries per success, `—` without a success.
    pub fn per_success(&self) -> (String, String) {
        let n = self.success_queries.len();
        if n == 0 {
            return ("—".to_string(), "—".to_string());
        }
        let mut sorted = self.success_queries.clone();
        sorted.sort_unstable();
        let mean = sorted.iter().map(|&q| f64::from(q)).sum::<f64>() / n as f64;
        let median = if n % 2 == 1 {
            f64::from(sorted[n / 2])
        } else {
            (f64::from(sorted[n / 2 - 1]) + f64::from(sorted[n / 2])) / 2.0
        };
        (number(mean, 1), number(median, 1))
    }

    /// The probe's line: `4 behaviors attacked, 3 successes (by the attack's judge); target
    /// queries per success: mean 5.0, median 3.0; queries: attacker 42, target 40, judge 40.`
    pub fn line(&self) -> String {
        let (mean, median) = self.per_success();
        let errors = if self.errors == 0 {
            String::new()
        } else {
            format!(" ({} failed in the backend)", self.errors)
        };
        format!(
            "{} attacked{errors}, {} (by the attack's own judge); target queries per success: mean {mean}, median {median}; queries: attacker {}, target {}, judge {}.",
            plural(self.behaviors, "behavior", "behaviors"),
            plural(self.successes, "success", "successes"),
            self.attacker,
            self.target,
            self.judge
        )
    }
}

/// `1 behavior`, `2 behaviors`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Why an attack stopped, as attempts.jsonl spells it (`success`, `budget`, …).
pub(crate) fn stop_name(stop: Stop) -> String {
    serde_json::to_value(stop)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A rating or score for people: whole numbers without decimals, else two.
pub(crate) fn rating(value: f64) -> String {
    if value.fract() == 0.0 && value.is_finite() {
        number(value, 0)
    } else {
        number(value, 2)
    }
}

/// At most [`TEXT_CHARS`] characters of `text`, and how many were left out.
fn capped(text: &str) -> (String, usize) {
    match text.char_indices().nth(TEXT_CHARS) {
        Some((cut, _)) => (text[..cut].to_string(), text[cut..].chars().count()),
        None => (text.to_string(), 0),
    }
}

/// One turn as the page shows it.
#[derive(Debug, Serialize)]
pub(crate) struct TurnView {
    party: String,
    round: u32,
    text: String,
    /// Characters of the text left out (0: all shown).
    cut: usize,
    score: String,
    note: String,
}

/// The turns of one stream (PAIR stream, TAP tree path, Crescendo conversation).
#[derive(Debug, Serialize)]
pub(crate) struct StreamView {
    stream: String,
    turns: Vec<TurnView>,
}

/// One attacked behavior as the page shows it.
#[derive(Debug, Serialize)]
pub(crate) struct AttackView {
    case_id: String,
    attributes: String,
    goal: String,
    /// `success`, `exhausted`, `budget`, `attacker_failed`, or `error` for a backend failure.
    stop: String,
    success: bool,
    attacker: u32,
    target: u32,
    judge: u32,
    /// The attack judge's best rating.
    rating: String,
    /// The run's detectors and judges on the final reply: `id=value, …`.
    scores: String,
    /// The backend's error, for an attack that failed.
    error: String,
    streams: Vec<StreamView>,
    n_turns: usize,
    /// Turns left out by the cap.
    hidden: usize,
}

/// One probe's attacks as the page shows them.
#[derive(Debug, Serialize)]
pub(crate) struct ProbeView {
    suite: String,
    probe: String,
    line: String,
    attacks: Vec<AttackView>,
}

fn streams(record: &AttackRecord) -> Vec<StreamView> {
    let mut streams: Vec<StreamView> = Vec::new();
    for turn in record.turns.iter().take(TURNS) {
        let (text, cut) = capped(&turn.text);
        let view = TurnView {
            party: turn.party.clone(),
            round: turn.round,
            text,
            cut,
            score: turn.score.map(rating).unwrap_or_default(),
            note: turn
                .note
                .as_deref()
                .map(|note| capped(note).0)
                .unwrap_or_default(),
        };
        // Streams in the order they first speak.
        match streams.iter_mut().find(|s| s.stream == turn.stream) {
            Some(stream) => stream.turns.push(view),
            None => streams.push(StreamView {
                stream: turn.stream.clone(),
                turns: vec![view],
            }),
        }
    }
    streams
}

fn attack_view(attempt: &Attempt, goal: &str) -> AttackView {
    let scores = attempt
        .scores
        .iter()
        .map(|(k, v)| format!("{k}={}", number(*v, 3)))
        .collect::<Vec<_>>()
        .join(", ");
    let base = AttackView {
        case_id: attempt.case_id.clone(),
        attributes: crate::group_label(&attempt.attributes),
        goal: capped(goal).0,
        stop: "error".to_string(),
        success: false,
        attacker: 0,
        target: 0,
        judge: 0,
        rating: "—".to_string(),
        scores,
        error: String::new(),
        streams: Vec::new(),
        n_turns: 0,
        hidden: 0,
    };
    match &attempt.answer {
        Answer::Attack(record) => AttackView {
            stop: stop_name(record.stop),
            success: record.stop == Stop::Success,
            attacker: record.queries.attacker,
            target: record.queries.target,
            judge: record.queries.judge,
            rating: rating(record.rating),
            streams: streams(record),
            n_turns: record.turns.len(),
            hidden: record.turns.len().saturating_sub(TURNS),
            ..base
        },
        Answer::Error(message) => AttackView {
            error: capped(message).0,
            ..base
        },
        _ => base,
    }
}

/// Every probe with attack attempts, in the order of `probes` (suite, probe), its attacks in
/// the order of `attempts`.
pub(crate) fn views(probes: &[(String, String)], attempts: &[&Attempt]) -> Vec<ProbeView> {
    probes
        .iter()
        .filter_map(|(suite, probe)| {
            let mine: Vec<&Attempt> = attempts
                .iter()
                .copied()
                .filter(|a| &a.suite == suite && &a.probe == probe)
                .collect();
            let counts = Counts::of(mine.iter().copied())?;
            Some(ProbeView {
                suite: suite.clone(),
                probe: probe.clone(),
                line: counts.line(),
                attacks: mine
                    .iter()
                    .filter_map(|a| match &a.query {
                        Query::Attack { goal, .. } => Some(attack_view(a, goal)),
                        _ => None,
                    })
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_success_is_mean_and_median() {
        let counts = |q: &[u32]| Counts {
            success_queries: q.to_vec(),
            ..Counts::default()
        };
        assert_eq!(counts(&[]).per_success(), ("—".into(), "—".into()));
        assert_eq!(
            counts(&[10, 2, 3]).per_success(),
            ("5.0".into(), "3.0".into())
        );
        assert_eq!(counts(&[4, 1]).per_success(), ("2.5".into(), "2.5".into()));
    }

    #[test]
    fn texts_are_capped_at_a_character_boundary() {
        let text = "é".repeat(TEXT_CHARS + 3);
        let (shown, cut) = capped(&text);
        assert_eq!(shown.chars().count(), TEXT_CHARS);
        assert_eq!(cut, 3);
        assert_eq!(capped("short"), ("short".to_string(), 0));
    }

    #[test]
    fn ratings_drop_needless_decimals() {
        assert_eq!(rating(10.0), "10");
        assert_eq!(rating(7.5), "7.50");
        assert_eq!(rating(f64::NAN), "—");
    }
}
