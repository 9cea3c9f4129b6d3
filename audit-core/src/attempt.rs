//! Attempts (a case with its answer and scores) and the scores detectors give them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::Answer;
use crate::case::{Attributes, Case, Query};

/// The score at or above which a detector flags an attempt: binary detectors give 0 or 1,
/// probability-valued judges (toxicity) are read at even odds.
pub const FLAGGED: f64 = 0.5;

/// Whether a score flags its attempt ([`FLAGGED`]).
pub fn flags(score: f64) -> bool {
    score >= FLAGGED
}

/// One line of `attempts.jsonl`: a case, the answer it got, and what every detector said of it.
///
/// The serialized form is the contract other tools read: `suite`, `case_id`, `probe`,
/// `attributes`, the query flattened (`kind` and `prompt`, or `context` and `options`, …), the
/// answer flattened (`response`, `logprobs`, `embeddings`, `labels` or `error`), and `scores`
/// (detector id → value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The id of the suite the case belongs to.
    pub suite: String,
    /// The case's id, unique within its suite.
    pub case_id: String,
    /// The id of the probe that made the case.
    pub probe: String,
    /// The case's attributes, which metrics group and pair by.
    pub attributes: Attributes,
    #[serde(flatten)]
    /// What was asked (flattened into the attempt's JSON object).
    pub query: Query,
    #[serde(flatten)]
    /// What the backend answered, or the error it gave (flattened).
    pub answer: Answer,
    /// Detector (and judge) id → its value for this attempt.
    pub scores: BTreeMap<String, f64>,
    /// Detector id → the span of the answer that decided its score, where useful.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, String>,
    /// The response decoded as its transform asked the model to encode it (`Transform::decode`),
    /// set once by the run loop while the attempt is scored and cleared before it is journaled:
    /// evidence is the answer as written.
    #[serde(skip)]
    pub decoded: Vec<String>,
}

impl Attempt {
    /// An attempt with no scores yet.
    pub fn new(suite: &str, case: &Case, answer: Answer) -> Attempt {
        Attempt {
            suite: suite.to_string(),
            case_id: case.id.clone(),
            probe: case.probe.clone(),
            attributes: case.attributes.clone(),
            query: case.query.clone(),
            answer,
            scores: BTreeMap::new(),
            evidence: BTreeMap::new(),
            decoded: Vec::new(),
        }
    }

    /// Every text a detector should read: the response as written, then each decoded stage
    /// (none for other answers).
    pub fn readings(&self) -> impl Iterator<Item = &str> {
        self.response()
            .into_iter()
            .chain(self.decoded.iter().map(String::as_str))
    }

    /// The generated text, when the answer is one.
    pub fn response(&self) -> Option<&str> {
        match &self.answer {
            Answer::Response(text) | Answer::SuffixSearch { response: text, .. } => Some(text),
            Answer::Attack(record) if record.failure.is_none() => Some(&record.response),
            _ => None,
        }
    }

    /// Whether the backend failed on this item (an attack that never got a rated reply too).
    pub fn is_error(&self) -> bool {
        self.error().is_some()
    }

    /// Why this item has no answer to score: the backend's error, or an attack's failure.
    pub fn error(&self) -> Option<&str> {
        match &self.answer {
            Answer::Error(message) => Some(message),
            Answer::Attack(record) => record.failure.as_deref(),
            _ => None,
        }
    }

    /// Why this attempt cannot be written as JSON, when a number in its answer or scores is
    /// not finite (JSON has no NaN or infinity; serde would write `null`, which no reader
    /// accepts back). `None` when every number is finite.
    pub fn non_finite(&self) -> Option<String> {
        let bad = |v: f64| !v.is_finite();
        let answer = match &self.answer {
            Answer::Logprobs(values)
            | Answer::TokenLogprobs {
                logprobs: values, ..
            } => values
                .iter()
                .position(|&v| bad(v))
                .map(|i| format!("log-probability {} of option {}", values[i], i + 1)),
            Answer::Embeddings(vectors) => vectors.iter().enumerate().find_map(|(t, v)| {
                v.iter()
                    .position(|x| !x.is_finite())
                    .map(|i| format!("embedding component {} of text {}", v[i], t + 1))
            }),
            Answer::Labels(labels) => labels.iter().enumerate().find_map(|(t, l)| {
                l.iter().find(|(_, p)| bad(*p)).map(|(name, p)| {
                    format!("probability {p} of label `{name}` for text {}", t + 1)
                })
            }),
            Answer::SuffixSearch { losses, .. } => losses
                .iter()
                .position(|&v| bad(v))
                .map(|i| format!("loss {} at step {}", losses[i], i + 1)),
            Answer::Attack(record) => std::iter::once(record.rating)
                .chain(record.turns.iter().filter_map(|t| t.score))
                .find(|&v| bad(v))
                .map(|v| format!("attack rating {v}")),
            Answer::Response(_) | Answer::Error(_) => None,
        };
        let reason = answer.map(|what| format!("the backend returned a non-finite {what}"));
        reason.or_else(|| {
            self.scores
                .iter()
                .find(|(_, v)| bad(**v))
                .map(|(id, v)| format!("detector `{id}` gave a non-finite score ({v})"))
        })
    }

    /// This attempt with a non-finite number in it turned into an error that says why (scores
    /// and evidence dropped: errors are never scored); an attempt without one is unchanged.
    pub fn into_finite(mut self) -> Attempt {
        if let Some(reason) = self.non_finite() {
            self.answer = Answer::Error(reason);
            self.scores.clear();
            self.evidence.clear();
        }
        self
    }

    /// Whether `detector` flagged this attempt (its score at least [`FLAGGED`]); None when it
    /// did not score it (an errored attempt, or an answer the detector does not apply to).
    pub fn flagged(&self, detector: &str) -> Option<bool> {
        self.scores.get(detector).map(|&value| flags(value))
    }

    /// The value of an attribute, or "" when the case has none.
    pub fn attribute(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

/// What a detector says of one attempt: a value (1.0/0.0 for binary detectors) and, where
/// useful, the evidence that decided it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The score: 1.0 or 0.0 for a binary detector, else the detector's scale.
    pub value: f64,
    /// The span of the answer (or the judge's words) that decided the value, where useful.
    pub evidence: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(answer: Answer) -> Attempt {
        let case = Case {
            id: "p/1".to_string(),
            probe: "p".to_string(),
            attributes: Attributes::new(),
            query: Query::Choice {
                context: String::new(),
                options: vec!["a".to_string(), "b".to_string()],
            },
        };
        Attempt::new("s", &case, answer)
    }

    #[test]
    fn non_finite_numbers_make_the_attempt_an_error_that_says_why() {
        let nan = choice(Answer::Logprobs(vec![-1.0, f64::NAN])).into_finite();
        assert_eq!(
            nan.answer,
            Answer::Error(
                "the backend returned a non-finite log-probability NaN of option 2".into()
            )
        );
        let inf = choice(Answer::TokenLogprobs {
            logprobs: vec![f64::NEG_INFINITY, -1.0],
            tokens: vec![1, 1],
        })
        .into_finite();
        assert!(matches!(&inf.answer, Answer::Error(e) if e.contains("-inf of option 1")));
        let mut scored = choice(Answer::Logprobs(vec![-1.0, -2.0]));
        scored.scores.insert("d".into(), f64::INFINITY);
        scored.evidence.insert("d".into(), "x".into());
        let scored = scored.into_finite();
        assert!(matches!(&scored.answer, Answer::Error(e) if e.contains("detector `d`")));
        assert!(scored.scores.is_empty() && scored.evidence.is_empty());
        let fine = choice(Answer::Logprobs(vec![-1.0, -2.0]));
        assert_eq!(fine.clone().into_finite(), fine);
        // Every such attempt serializes without a null and reads back.
        for attempt in [nan, inf, scored] {
            let text = serde_json::to_string(&attempt).unwrap();
            assert!(!text.contains("null"), "{text}");
            let back: Attempt = serde_json::from_str(&text).unwrap();
            assert_eq!(back, attempt);
        }
    }

    #[test]
    fn the_journal_refuses_a_non_finite_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attempts.jsonl");
        let mut journal = crate::journal::Journal::create(&path).unwrap();
        let error = journal
            .append(&[choice(Answer::Logprobs(vec![f64::NAN, 0.0]))])
            .unwrap_err();
        assert!(error.to_string().contains("non-finite"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap().len(), 0);
    }
}
