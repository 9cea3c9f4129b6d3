//! Attempts (a case with its answer and scores) and the scores detectors give them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::Answer;
use crate::case::{Attributes, Case, Query};

/// One line of `attempts.jsonl`: a case, the answer it got, and what every detector said of it.
///
/// The serialized form is the contract other tools read: `suite`, `case_id`, `probe`,
/// `attributes`, the query flattened (`kind` and `prompt`, or `context` and `options`, …), the
/// answer flattened (`response`, `logprobs`, `embeddings`, `labels` or `error`), and `scores`
/// (detector id → value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub suite: String,
    pub case_id: String,
    pub probe: String,
    pub attributes: Attributes,
    #[serde(flatten)]
    pub query: Query,
    #[serde(flatten)]
    pub answer: Answer,
    pub scores: BTreeMap<String, f64>,
    /// Detector id → the span of the answer that decided its score, where useful.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, String>,
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
        }
    }

    /// The generated text, when the answer is one.
    pub fn response(&self) -> Option<&str> {
        match &self.answer {
            Answer::Response(text) => Some(text),
            _ => None,
        }
    }

    /// Whether the backend failed on this item.
    pub fn is_error(&self) -> bool {
        matches!(self.answer, Answer::Error(_))
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
    pub value: f64,
    pub evidence: Option<String>,
}
