//! Cases and queries: what a probe asks a model, independent of who answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Attributes of a case (`axis`, `group`, `template`, `pair`, …): they drive the statistics.
/// A `BTreeMap` so that every serialization is in one stable order.
pub type Attributes = BTreeMap<String, String>;

/// One item a probe asks: a stable id, a query, and the attributes that the metrics group by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Stable across runs of the same suite version: `probe/item[/transform]`.
    pub id: String,
    /// The id of the probe that made it.
    pub probe: String,
    /// What the metrics group and pair by (`axis`, `group`, `item`, `transform`, …).
    pub attributes: Attributes,
    /// What is asked.
    pub query: Query,
}

/// Who speaks a message of a chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The system prompt.
    System,
    /// The user (the auditor's prompt).
    User,
    /// The model.
    Assistant,
}

/// One message of a chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

/// The closed set of request kinds a backend answers, each batched by the runner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Query {
    /// Generate a reply to `prompt`, after an optional system prompt and earlier turns
    /// (few-shot and many-shot priming put their examples in `history`).
    Chat {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// The system prompt, if any.
        system: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        /// Earlier turns, oldest first.
        history: Vec<Message>,
        /// The user's last message, which the model answers.
        prompt: String,
    },
    /// Score each option as a continuation of `context`: the answer is, per option, the summed
    /// log-probability of the option's tokens given the context. An empty context scores the
    /// option as a whole sentence, conditioned on the beginning-of-sequence token only.
    Choice {
        /// The text the options continue (empty: each option is scored as a whole sentence).
        context: String,
        /// The continuations to score, in order.
        options: Vec<String>,
    },
    /// Embed each text into one vector.
    Embed {
        /// The texts, one vector each.
        texts: Vec<String>,
    },
    /// Label probabilities for each text (model-based detectors).
    Classify {
        /// The texts, one set of label probabilities each.
        texts: Vec<String>,
    },
    /// White-box search (GCG) for a suffix that, appended to `prompt` after a space, makes the
    /// chat-templated answer begin with `target`; answered by `Answer::SuffixSearch` with the
    /// greedy reply to the prompt and the suffix found. Only backends with gradients answer it
    /// (`Backend::supports`).
    SuffixSearch {
        /// The system prompt, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system: Option<String>,
        /// The request the suffix is appended to.
        prompt: String,
        /// The text the answer should begin with.
        target: String,
        /// How to search.
        search: SearchParams,
    },
    /// An adaptive attack on one behavior (PAIR, TAP, Crescendo: `crate::attack`): the
    /// probe's algorithm asks an attacker model, the target and a judge model until the judge
    /// rates a reply a success or the budget is spent; answered by `Answer::Attack`.
    Attack {
        /// The behavior the attack tries to elicit, as the attacker is told it.
        goal: String,
        /// The text the attacker aims for the target's reply to begin with.
        target: String,
    },
}

/// The settings of one suffix search (GCG, as nanogcg 0.3.0 names them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchParams {
    /// Optimisation steps at most.
    pub steps: usize,
    /// Candidates sampled and scored per step.
    pub search_width: usize,
    /// Substitutions kept per suffix position (the best by gradient).
    pub topk: usize,
    /// Positions replaced per candidate.
    #[serde(default = "one")]
    pub n_replace: usize,
    /// The initial suffix (its tokens are the suffix length).
    pub init: String,
    /// Seeds candidate sampling.
    pub seed: u64,
    /// Tokens a suffix may use: `ascii` (printable ASCII, no special tokens) or `all` (no
    /// special tokens).
    #[serde(default = "ascii")]
    pub allowed: String,
    /// Stop when greedy decoding produces the target.
    #[serde(default = "yes")]
    pub early_stop: bool,
}

fn one() -> usize {
    1
}

fn ascii() -> String {
    "ascii".to_string()
}

fn yes() -> bool {
    true
}

/// The kind of a query, used to batch like with like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// [`Query::Chat`].
    Chat,
    /// [`Query::Choice`].
    Choice,
    /// [`Query::Embed`].
    Embed,
    /// [`Query::Classify`].
    Classify,
    /// [`Query::SuffixSearch`].
    SuffixSearch,
    /// [`Query::Attack`].
    Attack,
}

impl Query {
    /// The kind of this query.
    pub fn kind(&self) -> QueryKind {
        match self {
            Query::Chat { .. } => QueryKind::Chat,
            Query::Choice { .. } => QueryKind::Choice,
            Query::Embed { .. } => QueryKind::Embed,
            Query::Classify { .. } => QueryKind::Classify,
            Query::SuffixSearch { .. } => QueryKind::SuffixSearch,
            Query::Attack { .. } => QueryKind::Attack,
        }
    }

    /// A cheap, backend-independent size of the query in characters, used to sort batches so
    /// that texts of similar length are padded together.
    pub fn size_hint(&self) -> usize {
        match self {
            Query::Chat {
                system,
                history,
                prompt,
            } => {
                system.as_deref().map_or(0, str::len)
                    + history.iter().map(|m| m.content.len()).sum::<usize>()
                    + prompt.len()
            }
            Query::Choice { context, options } => {
                context.len() + options.iter().map(String::len).max().unwrap_or(0)
            }
            Query::Embed { texts } | Query::Classify { texts } => {
                texts.iter().map(String::len).max().unwrap_or(0)
            }
            Query::SuffixSearch {
                system,
                prompt,
                target,
                ..
            } => system.as_deref().map_or(0, str::len) + prompt.len() + target.len(),
            Query::Attack { goal, target } => goal.len() + target.len(),
        }
    }
}

impl QueryKind {
    /// Every kind, in the order runs process them.
    pub const ALL: [QueryKind; 6] = [
        QueryKind::Chat,
        QueryKind::Choice,
        QueryKind::Embed,
        QueryKind::Classify,
        QueryKind::SuffixSearch,
        QueryKind::Attack,
    ];

    /// The kind's name as written in attempts.jsonl (`chat`, `choice`, …).
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::Chat => "chat",
            QueryKind::Choice => "choice",
            QueryKind::Embed => "embed",
            QueryKind::Classify => "classify",
            QueryKind::SuffixSearch => "suffix_search",
            QueryKind::Attack => "attack",
        }
    }
}
