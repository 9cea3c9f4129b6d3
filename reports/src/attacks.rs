//! The adaptive attacks of a run (PAIR, TAP, Crescendo: attempts answered by
//! [`Answer::Attack`]), for the reports: each probe's counts (behaviors attacked, successes by
//! the attack's own judge, target queries per success, queries per party), and each attack as a
//! conversation, its turns grouped by stream, capped so that the page stays small (the full
//! text of every turn is in attempts.jsonl).

use audit_core::attack::{AttackRecord, Stop, Turn};
use audit_core::{Answer, Attempt, Query};
use serde::Serialize;

use crate::number;

/// The characters of one turn's text (and note) the report shows at most.
pub(crate) const TEXT_CHARS: usize = 2000;
/// The turns of one attack the report shows at most (the first ones, in the order they
/// happened).
pub(crate) const TURNS: usize = 60;
/// The characters of turn text (and notes) the whole page shows at most: an attack whose shown
/// turns would pass it shows none (its summary stays).
pub(crate) const PAGE_CHARS: usize = 4_000_000;

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
                    if record.failure.is_some() {
                        counts.errors += 1;
                    } else if record.stop == Stop::Success {
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
    /// Whether the best reply was said in this stream.
    best: bool,
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
    /// Tokens generated, every party's, where counted: `, tokens N` or nothing.
    tokens: String,
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
    /// Whether the conversation is left out, the page's budget being spent.
    omitted: bool,
}

/// One probe's attacks as the page shows them.
#[derive(Debug, Serialize)]
pub(crate) struct ProbeView {
    suite: String,
    probe: String,
    line: String,
    attacks: Vec<AttackView>,
}

/// The stream of the best reply: that of the target turn whose text is the record's response
/// and whose rating (a judge turn of the same stream and round) is the record's, else of the
/// first target turn with that text.
fn best_stream(record: &AttackRecord) -> Option<&str> {
    let replies = || {
        record
            .turns
            .iter()
            .filter(|t| t.party == "target" && t.text == record.response)
    };
    let rated = |reply: &&Turn| {
        record.turns.iter().any(|t| {
            t.party == "judge"
                && t.stream == reply.stream
                && t.round == reply.round
                && t.score == Some(record.rating)
        })
    };
    replies()
        .find(rated)
        .or_else(|| replies().next())
        .map(|t| t.stream.as_str())
}

/// The turns the page shows of one attack, grouped by stream: the best reply's stream first,
/// then the others in the order they first speak; at most [`TURNS`] turns (the best stream's
/// first, then the others' in the order they happened), each cut at [`TEXT_CHARS`]. Nothing
/// when they would take more than `budget` characters, which pays for what is shown.
fn streams(record: &AttackRecord, budget: &mut usize) -> Vec<StreamView> {
    let best = best_stream(record);
    let is_best = |turn: &Turn| Some(turn.stream.as_str()) == best;
    let mut chosen: Vec<usize> = (0..record.turns.len())
        .filter(|&i| is_best(&record.turns[i]))
        .take(TURNS)
        .collect();
    let room = TURNS - chosen.len();
    chosen.extend(
        (0..record.turns.len())
            .filter(|&i| !is_best(&record.turns[i]))
            .take(room),
    );
    chosen.sort_unstable();
    let mut streams: Vec<StreamView> = Vec::new();
    let mut cost = 0;
    for turn in chosen.iter().map(|&i| &record.turns[i]) {
        let (text, cut) = capped(&turn.text);
        let note = turn
            .note
            .as_deref()
            .map(|note| capped(note).0)
            .unwrap_or_default();
        cost += text.chars().count() + note.chars().count();
        let view = TurnView {
            party: turn.party.clone(),
            round: turn.round,
            text,
            cut,
            score: turn.score.map(rating).unwrap_or_default(),
            note,
        };
        match streams.iter_mut().find(|s| s.stream == turn.stream) {
            Some(stream) => stream.turns.push(view),
            None => streams.push(StreamView {
                stream: turn.stream.clone(),
                best: is_best(turn),
                turns: vec![view],
            }),
        }
    }
    if cost > *budget {
        return Vec::new();
    }
    *budget -= cost;
    // The best stream first; the others keep the order in which they first speak.
    streams.sort_by_key(|s| !s.best);
    streams
}

fn attack_view(attempt: &Attempt, goal: &str, budget: &mut usize) -> AttackView {
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
        tokens: String::new(),
        rating: "—".to_string(),
        scores,
        error: String::new(),
        streams: Vec::new(),
        n_turns: 0,
        hidden: 0,
        omitted: false,
    };
    match &attempt.answer {
        Answer::Attack(record) => {
            let streams = streams(record, budget);
            let shown: usize = streams.iter().map(|s| s.turns.len()).sum();
            AttackView {
                stop: stop_name(record.stop),
                success: record.stop == Stop::Success,
                attacker: record.queries.attacker,
                target: record.queries.target,
                judge: record.queries.judge,
                tokens: record
                    .tokens
                    .as_ref()
                    .map(|t| format!(" · tokens {}", t.total()))
                    .unwrap_or_default(),
                rating: match record.failure {
                    None => rating(record.rating),
                    Some(_) => "—".to_string(),
                },
                error: record
                    .failure
                    .as_deref()
                    .map(|f| capped(f).0)
                    .unwrap_or_default(),
                omitted: shown == 0 && !record.turns.is_empty(),
                hidden: record.turns.len() - shown,
                n_turns: record.turns.len(),
                streams,
                ..base
            }
        }
        Answer::Error(message) => AttackView {
            error: capped(message).0,
            ..base
        },
        _ => base,
    }
}

/// Every probe with attack attempts, in the order of `probes` (suite, probe), its attacks in
/// the order of `attempts`; their conversations show at most `budget` characters in all
/// ([`PAGE_CHARS`] on the page).
pub(crate) fn views(
    probes: &[(String, String)],
    attempts: &[&Attempt],
    mut budget: usize,
) -> Vec<ProbeView> {
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
                        Query::Attack { goal, .. } => Some(attack_view(a, goal, &mut budget)),
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

    fn fixture_views(budget: usize) -> Vec<ProbeView> {
        let run = fixtures::attack_run::build();
        let attempts: Vec<&Attempt> = run.attempts.iter().collect();
        let probes = [("pair", "adaptive"), ("tap", "adaptive")]
            .map(|(p, s)| (s.to_string(), p.to_string()));
        views(&probes, &attempts, budget)
    }

    #[test]
    fn the_best_reply_stream_comes_first() {
        let views = fixture_views(PAGE_CHARS);
        let b1 = &views[0].attacks[0];
        let order: Vec<(&str, bool)> = b1
            .streams
            .iter()
            .map(|s| (s.stream.as_str(), s.best))
            .collect();
        assert_eq!(order, [("2", true), ("1", false)]);
        let b4 = &views[0].attacks[3];
        assert_eq!((b4.n_turns, b4.hidden, b4.omitted), (76, 16, false));
        assert_eq!(b4.streams[0].turns.len(), TURNS);
    }

    #[test]
    fn the_page_budget_leaves_out_whole_conversations() {
        // b1 and b2 fit in 800 characters; b3 then b4 do not, the smaller t1 does.
        let views = fixture_views(800);
        let shown: Vec<(&str, usize, bool)> = views
            .iter()
            .flat_map(|p| &p.attacks)
            .map(|a| {
                let turns = a.streams.iter().map(|s| s.turns.len()).sum();
                (a.case_id.as_str(), turns, a.omitted)
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("b1", 6, false),
                ("b2", 9, false),
                ("b3", 0, true),
                ("b4", 0, true),
                ("t1", 18, false)
            ]
        );
    }

    #[test]
    fn a_failed_attack_counts_as_attacked_and_shows_its_error() {
        let mut run = fixtures::attack_run::build();
        run.attempts[4].answer = Answer::Error("backend down".to_string());
        let tap: Vec<&Attempt> = run.attempts[4..].iter().collect();
        let counts = Counts::of(tap.iter().copied()).unwrap();
        assert!(
            counts
                .line()
                .starts_with("1 behavior attacked (1 failed in the backend), 0 successes"),
            "{}",
            counts.line()
        );
        let views = views(&[("adaptive".into(), "tap".into())], &tap, PAGE_CHARS);
        let t1 = &views[0].attacks[0];
        assert_eq!(
            (t1.stop.as_str(), t1.error.as_str()),
            ("error", "backend down")
        );
        assert!(t1.streams.is_empty() && !t1.omitted);
        assert!(Counts::of(run.attempts[..0].iter()).is_none());
    }

    #[test]
    fn ratings_drop_needless_decimals() {
        assert_eq!(rating(10.0), "10");
        assert_eq!(rating(7.5), "7.50");
        assert_eq!(rating(f64::NAN), "—");
    }
}
