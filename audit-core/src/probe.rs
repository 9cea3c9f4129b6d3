//! The extension traits: Probe (makes cases), Transform (rewrites them into attack variants),
//! Detector (scores answers) and Metric (turns scored attempts into estimates and tests).

use crate::attempt::{Attempt, Score};
use crate::backend::Answer;
use crate::case::{Case, Query};
use crate::summary::{Estimate, Test};

/// A probe's failure to produce its cases (an unreadable dataset file, a malformed row).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

/// What every probe says about itself, in its suite file's words: the same three fields for
/// every family, defined once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeInfo {
    /// Unique within its suite, stable across versions: `family.name`.
    pub id: String,
    /// What the probe tries to make the model do, in the imperative.
    pub goal: String,
    /// Where the prompts come from (a paper, a dataset file, "Probity's own templates").
    pub source: String,
}

/// Makes the cases of one probe. A probe does not know what it attacks.
pub trait Probe: Send + Sync {
    /// Its id, goal and source.
    fn info(&self) -> &ProbeInfo;
    /// Unique within its suite, stable across versions: `family.name`.
    fn id(&self) -> &str {
        &self.info().id
    }
    /// What the probe tries to make the model do, in the imperative.
    fn goal(&self) -> &str {
        &self.info().goal
    }
    /// Where the prompts come from (a paper, a dataset file, "Probity's own templates").
    fn source(&self) -> &str {
        &self.info().source
    }
    /// The cases, deterministic for a seed. Ids are unique within the probe.
    fn cases(&self, seed: u64) -> Result<Vec<Case>, ProbeError>;
    /// The adaptive algorithm that answers this probe's `Query::Attack` cases (PAIR, TAP,
    /// Crescendo); None, the default, for probes that make none.
    fn attack(&self) -> Option<&dyn crate::attack::Attack> {
        None
    }
}

/// Rewrites a case into an attack variant (garak's "buff"). The variant's id extends the
/// original's and its attributes record the transform, so the plain and the transformed case
/// can be paired.
pub trait Transform: Send + Sync {
    /// The key of its variants' `transform` attribute and of their case ids.
    fn id(&self) -> &str;
    /// The variant of `case`, or None when the transform does not apply to its query kind.
    fn apply(&self, case: &Case) -> Option<Case>;
    /// The answer to one of its variants read as the attack asked the model to write it (a
    /// base64 or ROT13 answer decoded), each stage of decoding once; empty for transforms that
    /// ask for no encoding. The run loop calls it once per answer and detectors read the result
    /// through `Attempt::readings`.
    fn decode(&self, _response: &str) -> Vec<String> {
        Vec::new()
    }
}

/// Scores one attempt. Pure: the same attempt always gets the same score.
pub trait Detector: Send + Sync {
    /// The key of its value in `Attempt::scores`.
    fn id(&self) -> &str;
    /// The score, or None when the detector does not apply (a refusal detector on a Choice
    /// answer, any detector on an errored attempt).
    fn score(&self, attempt: &Attempt) -> Option<Score>;
}

/// A detector that asks a model (an LLM judge, a classifier): it turns an attempt into a query
/// for its judge backend, and the judge's answer into a score. Judges run as a second batched
/// pass through their own backend, batch by batch as attempts finish, never one call per item.
pub trait Judge: Send + Sync {
    /// The key of its value in `Attempt::scores`.
    fn id(&self) -> &str;
    /// What to ask the judge about this attempt, or None when the judge does not apply.
    fn query(&self, attempt: &Attempt) -> Option<Query>;
    /// The score from the judge's answer, or None when the answer cannot be read as one.
    fn score(&self, attempt: &Attempt, answer: &Answer) -> Option<Score>;
    /// The score, or why there is none, with the judge's raw reply: the run records the reason
    /// as the attempt's evidence for this judge (never a silent "no score"). The default reads
    /// `score` and quotes the reply (`unreadable`); judges whose parsers say more override it.
    fn verdict(&self, attempt: &Attempt, answer: &Answer) -> Result<Score, String> {
        self.score(attempt, answer)
            .ok_or_else(|| unreadable(answer))
    }
}

/// Why a judge's answer gave no score: the backend's error, or the raw reply that could not be
/// read as a verdict (its first `UNREADABLE_QUOTE` characters, quoted as JSON, so that a reply
/// of many lines stays on one).
pub fn unreadable(answer: &Answer) -> String {
    match answer {
        Answer::Error(reason) => format!("judge error: {reason}"),
        Answer::Response(text) => format!(
            "judge error: the reply could not be read as a verdict: {}",
            quote_reply(text)
        ),
        other => format!(
            "judge error: the judge answered {}, which it cannot read",
            match other {
                Answer::Logprobs(_) | Answer::TokenLogprobs { .. } => "log-probabilities",
                Answer::Embeddings(_) => "embeddings",
                Answer::Labels(_) => "labels",
                Answer::SuffixSearch { .. } => "a suffix search",
                Answer::Attack(_) => "an attack",
                Answer::Response(_) | Answer::Error(_) => "text",
            }
        ),
    }
}

/// The longest part of a raw judge reply that evidence quotes.
pub const UNREADABLE_QUOTE: usize = 500;

/// A raw reply as a one-line JSON string, cut at `UNREADABLE_QUOTE` characters.
pub fn quote_reply(text: &str) -> String {
    let cut: String = text.chars().take(UNREADABLE_QUOTE).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{more}", serde_json::Value::String(cut))
}

/// Where a metric's estimates and tests belong.
#[derive(Clone, Copy, Debug)]
pub struct MetricContext<'a> {
    /// The suite's id.
    pub suite: &'a str,
    /// The probe's id.
    pub probe: &'a str,
    /// For resampling; derived from the run's seed.
    pub seed: u64,
    /// The confidence level of every interval (`--confidence`).
    pub confidence: f64,
    /// Detector accuracies measured when the run started (judges), for corrected rates.
    pub accuracy: &'a [crate::stats::DetectorAccuracy],
}

impl<'a> MetricContext<'a> {
    /// A context with no measured detector accuracies (no judge ran).
    pub fn new(suite: &'a str, probe: &'a str, seed: u64, confidence: f64) -> Self {
        MetricContext {
            suite,
            probe,
            seed,
            confidence,
            accuracy: &[],
        }
    }
}

/// What a metric found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricOutput {
    /// Named estimates with their intervals.
    pub estimates: Vec<Estimate>,
    /// Tests before multiplicity correction: `q_holm` and `q_bh` are filled over the whole run.
    pub tests: Vec<Test>,
}

/// Turns the scored attempts of one probe into estimates with intervals and tests.
pub trait Metric: Send + Sync {
    /// The kind named in the suite file (`asr`, `crows-pairs-score`, …).
    fn id(&self) -> &str;
    /// One sentence for the report's methods section: the formula, the interval, the test.
    fn method(&self) -> String;
    /// `attempts` are the probe's attempts sorted by case id, errors included (a metric says
    /// how it treats them).
    fn compute(&self, attempts: &[&Attempt], context: &MetricContext<'_>) -> MetricOutput;
    /// The value an unbiased (or perfect) model would get, for each estimate name this metric
    /// produces that has one (CrowS-Pairs `pct_stereotype` 50, BBQ `s_dis` 0, …): reports show
    /// it next to the estimate. None by default.
    fn ideals(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
    /// What each estimate name this metric produces measures, where it is one of the roles
    /// reports treat specially (an attack-success rate, an over-refusal rate). None by default.
    fn roles(&self) -> Vec<(String, crate::summary::Role)> {
        Vec::new()
    }
}
