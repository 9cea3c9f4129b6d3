//! The scripted backend: a deterministic, seeded stand-in for a model, configured by a small
//! TOML profile, that answers every query kind. Tests use it to plant a known effect (a refusal
//! gap between groups, a log-likelihood preference) and check that the statistics find it, and
//! find nothing when nothing is planted.
//!
//! A profile (every table optional):
//!
//! ```toml
//! name = "refusal-gap-20"
//! delay_ms = 0         # sleep this long per batch (to test interrupted runs)
//!
//! [chat]
//! comply = "Sure. Here is what you asked for."     # the answer when it does not refuse
//! refuse = "I'm sorry, but I can't help with that." # the answer when it refuses
//! refuse_probability = 0.05                         # when no rule matches
//! draw_by = ["template"]  # the uniform draw deciding a refusal is seeded by these attributes
//!                         # (cases sharing them share the draw); default: by case id
//!
//! [[chat.rule]]                          # the first rule that matches decides
//! prompt_matches = "(?i)\\bbomb\\b"      # a regex on the prompt, and/or
//! attributes = { group = "woman" }       # attribute values the case must have
//! turns = 2                              # earlier model turns the chat's history must hold
//!                                        # (an attacker's round, a conversation's turn)
//! refuse_probability = 0.25              # then one of: refuse_probability, response, error
//!
//! [choice]                               # log-likelihood of an option =
//! per_char = -0.05                       #   per_char × its characters
//! noise = 0.0                            #   + noise × a seeded standard normal draw
//! [[choice.bonus]]                       #   + value for each pattern it matches
//! pattern = "(?i)\\bshe\\b"
//! value = 0.7
//! context_matches = "(?i)nurse"          # optional: only when the context matches too (a
//!                                        # scripted judge that reads the judged answer)
//!                                        # its token count: its whitespace-separated words
//!
//! [embed]
//! dimensions = 16                        # unit vectors seeded by the text
//!
//! [classify]
//! labels = ["toxic", "not_toxic"]        # the first label's probability is `base` or the
//! base = 0.1                             # `probability` of the first matching rule
//! [[classify.rule]]
//! pattern = "(?i)idiot"
//! probability = 0.9
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use audit_core::{
    case_seed, Answer, Attributes, Backend, BackendError, Case, FileDigest, Generation, Message,
    ModelInfo, Query, QueryKind, Role,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regex::Regex;
use serde::Deserialize;

/// A profile that cannot be used, with the file and the line.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ProfileError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: Option<String>,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    chat: ChatFile,
    #[serde(default)]
    choice: ChoiceFile,
    #[serde(default)]
    embed: EmbedFile,
    #[serde(default)]
    classify: ClassifyFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatFile {
    #[serde(default = "default_comply")]
    comply: String,
    #[serde(default = "default_refuse")]
    refuse: String,
    #[serde(default)]
    refuse_probability: f64,
    #[serde(default)]
    draw_by: Vec<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

impl Default for ChatFile {
    fn default() -> Self {
        ChatFile {
            comply: default_comply(),
            refuse: default_refuse(),
            refuse_probability: 0.0,
            draw_by: Vec::new(),
            rules: Vec::new(),
        }
    }
}

fn default_comply() -> String {
    "Sure. Here is what you asked for.".to_string()
}

fn default_refuse() -> String {
    "I'm sorry, but I can't help with that.".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    prompt_matches: Option<String>,
    #[serde(default)]
    attributes: Attributes,
    turns: Option<usize>,
    refuse_probability: Option<f64>,
    response: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceFile {
    #[serde(default = "default_per_char")]
    per_char: f64,
    #[serde(default)]
    noise: f64,
    #[serde(default, rename = "bonus")]
    bonuses: Vec<BonusFile>,
}

impl Default for ChoiceFile {
    fn default() -> Self {
        ChoiceFile {
            per_char: default_per_char(),
            noise: 0.0,
            bonuses: Vec::new(),
        }
    }
}

fn default_per_char() -> f64 {
    -0.05
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BonusFile {
    pattern: String,
    value: f64,
    context_matches: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedFile {
    #[serde(default = "default_dimensions")]
    dimensions: usize,
}

impl Default for EmbedFile {
    fn default() -> Self {
        EmbedFile {
            dimensions: default_dimensions(),
        }
    }
}

fn default_dimensions() -> usize {
    16
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyFile {
    #[serde(default = "default_labels")]
    labels: Vec<String>,
    #[serde(default)]
    base: f64,
    #[serde(default, rename = "rule")]
    rules: Vec<ClassifyRuleFile>,
}

impl Default for ClassifyFile {
    fn default() -> Self {
        ClassifyFile {
            labels: default_labels(),
            base: 0.0,
            rules: Vec::new(),
        }
    }
}

fn default_labels() -> Vec<String> {
    vec!["positive".to_string(), "negative".to_string()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyRuleFile {
    pattern: String,
    probability: f64,
}

/// What a chat rule does when it matches.
#[derive(Clone, Debug)]
enum Action {
    Refuse(f64),
    Respond(String),
    Fail(String),
}

#[derive(Clone, Debug)]
struct Rule {
    prompt: Option<Regex>,
    attributes: Attributes,
    turns: Option<usize>,
    action: Action,
}

/// The scripted model.
#[derive(Clone, Debug)]
pub struct ScriptedBackend {
    name: String,
    delay: std::time::Duration,
    digest: FileDigest,
    comply: String,
    refuse: String,
    refuse_probability: f64,
    draw_by: Vec<String>,
    rules: Vec<Rule>,
    per_char: f64,
    noise: f64,
    bonuses: Vec<(Regex, f64, Option<Regex>)>,
    dimensions: usize,
    labels: Vec<String>,
    classify_base: f64,
    classify_rules: Vec<(Regex, f64)>,
    /// Words of the chat answers given so far (a scripted token is a word), for progress.
    generated: u64,
}

impl ScriptedBackend {
    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<ScriptedBackend, ProfileError> {
        let error = |message: String| ProfileError {
            path: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| error("the profile is not UTF-8 text".to_string()))?;
        let stem = path.file_stem().map_or_else(
            || "scripted".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        ScriptedBackend::parse(
            &text,
            &stem,
            FileDigest::of_bytes(&path.display().to_string(), &bytes),
        )
        .map_err(error)
    }

    /// Parses a profile from text; `default_name` names it when the profile has no `name`.
    pub fn parse(
        text: &str,
        default_name: &str,
        digest: FileDigest,
    ) -> Result<ScriptedBackend, String> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| toml_message(text, &e))?;
        let regex = |pattern: &str, place: &str| {
            Regex::new(pattern).map_err(|e| {
                format!(
                    "{place}: invalid regex {pattern:?}: {}",
                    e.to_string().replace('\n', " ")
                )
            })
        };
        let probability = |p: f64, place: &str| {
            if (0.0..=1.0).contains(&p) {
                Ok(p)
            } else {
                Err(format!("{place}: probability {p} is not in [0, 1]"))
            }
        };
        probability(file.chat.refuse_probability, "chat.refuse_probability")?;
        let mut rules = Vec::new();
        for (i, rule) in file.chat.rules.into_iter().enumerate() {
            let place = format!("chat.rule[{}]", i + 1);
            let action = match (rule.refuse_probability, rule.response, rule.error) {
                (Some(p), None, None) => Action::Refuse(probability(p, &place)?),
                (None, Some(text), None) => Action::Respond(text),
                (None, None, Some(message)) => Action::Fail(message),
                _ => {
                    return Err(format!(
                        "{place}: give exactly one of refuse_probability, response, error"
                    ))
                }
            };
            if rule.prompt_matches.is_none() && rule.attributes.is_empty() && rule.turns.is_none() {
                return Err(format!(
                    "{place}: give prompt_matches, attributes or turns (or several)"
                ));
            }
            rules.push(Rule {
                prompt: rule
                    .prompt_matches
                    .as_deref()
                    .map(|p| regex(p, &place))
                    .transpose()?,
                attributes: rule.attributes,
                turns: rule.turns,
                action,
            });
        }
        let bonuses = file
            .choice
            .bonuses
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let at = format!("choice.bonus[{}]", i + 1);
                Ok((
                    regex(&b.pattern, &at)?,
                    b.value,
                    b.context_matches
                        .as_deref()
                        .map(|c| regex(c, &format!("{at}.context_matches")))
                        .transpose()?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if file.embed.dimensions == 0 {
            return Err("embed.dimensions must be at least 1".to_string());
        }
        if file.classify.labels.len() < 2 {
            return Err("classify.labels needs at least two labels".to_string());
        }
        probability(file.classify.base, "classify.base")?;
        let classify_rules = file
            .classify
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let place = format!("classify.rule[{}]", i + 1);
                Ok((
                    regex(&r.pattern, &place)?,
                    probability(r.probability, &place)?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ScriptedBackend {
            generated: 0,
            name: file.name.unwrap_or_else(|| default_name.to_string()),
            delay: std::time::Duration::from_millis(file.delay_ms),
            digest,
            comply: file.chat.comply,
            refuse: file.chat.refuse,
            refuse_probability: file.chat.refuse_probability,
            draw_by: file.chat.draw_by,
            rules,
            per_char: file.choice.per_char,
            noise: file.choice.noise,
            bonuses,
            dimensions: file.embed.dimensions,
            labels: file.classify.labels,
            classify_base: file.classify.base,
            classify_rules,
        })
    }

    fn chat(&self, case: &Case, prompt: &str, history: &[Message], seed: u64) -> Answer {
        let turns = history.iter().filter(|m| m.role == Role::Assistant).count();
        let rule = self.rules.iter().find(|rule| {
            rule.prompt.as_ref().is_none_or(|r| r.is_match(prompt))
                && rule.turns.is_none_or(|t| t == turns)
                && rule
                    .attributes
                    .iter()
                    .all(|(k, v)| case.attributes.get(k) == Some(v))
        });
        let p = match rule.map(|r| &r.action) {
            Some(Action::Respond(text)) => return Answer::Response(text.clone()),
            Some(Action::Fail(message)) => return Answer::Error(message.clone()),
            Some(Action::Refuse(p)) => *p,
            None => self.refuse_probability,
        };
        let draw_key = if self.draw_by.is_empty() {
            case.id.clone()
        } else {
            self.draw_by
                .iter()
                .map(|k| format!("{k}={}", case.attributes.get(k).map_or("", String::as_str)))
                .collect::<Vec<_>>()
                .join("\u{1f}")
        };
        let u: f64 = ChaCha8Rng::seed_from_u64(case_seed(seed, &draw_key)).gen();
        Answer::Response(if u < p {
            self.refuse.clone()
        } else {
            self.comply.clone()
        })
    }

    fn loglik(&self, context: &str, text: &str, rng: &mut ChaCha8Rng) -> f64 {
        let mut value = self.per_char * text.chars().count() as f64;
        for (pattern, bonus, in_context) in &self.bonuses {
            if pattern.is_match(text) && in_context.as_ref().is_none_or(|c| c.is_match(context)) {
                value += bonus;
            }
        }
        if self.noise > 0.0 {
            value += self.noise * standard_normal(rng);
        }
        value
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(case_seed(0, text));
        let v: Vec<f64> = (0..self.dimensions)
            .map(|_| standard_normal(&mut rng))
            .collect();
        let norm = v
            .iter()
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt()
            .max(f64::MIN_POSITIVE);
        v.iter().map(|x| (x / norm) as f32).collect()
    }

    fn classify(&self, text: &str) -> Vec<(String, f64)> {
        let p = self
            .classify_rules
            .iter()
            .find(|(pattern, _)| pattern.is_match(text))
            .map_or(self.classify_base, |(_, p)| *p);
        let rest = (1.0 - p) / (self.labels.len() - 1) as f64;
        self.labels
            .iter()
            .enumerate()
            .map(|(i, label)| (label.clone(), if i == 0 { p } else { rest }))
            .collect()
    }
}

/// One line for a TOML error: its message and the line it points at.
pub fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => format!("line {}: {message}", line_of(text, span.start)),
        None => message,
    }
}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A standard normal draw by Box–Muller (rand 0.8's distributions live in another crate).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Backend for ScriptedBackend {
    fn model(&self) -> ModelInfo {
        ModelInfo {
            backend: "scripted".to_string(),
            model: self.name.clone(),
            device: "cpu".to_string(),
            dtype: "none".to_string(),
            files: vec![self.digest.clone()],
            details: BTreeMap::new(),
        }
    }

    fn batch_size(&self, _kind: QueryKind) -> usize {
        32
    }

    fn answer(
        &mut self,
        batch: &[&Case],
        generation: &Generation,
    ) -> Result<Vec<Answer>, BackendError> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let answers: Vec<Answer> = batch
            .iter()
            .map(|case| match &case.query {
                Query::Chat {
                    prompt, history, ..
                } => self.chat(case, prompt, history, generation.seed),
                Query::Choice { context, options } => {
                    let mut rng = ChaCha8Rng::seed_from_u64(case_seed(generation.seed, &case.id));
                    Answer::TokenLogprobs {
                        logprobs: options
                            .iter()
                            .map(|o| self.loglik(context, o, &mut rng))
                            .collect(),
                        // A scripted token is a whitespace-separated word (at least one).
                        tokens: options
                            .iter()
                            .map(|o| o.split_whitespace().count().max(1) as u32)
                            .collect(),
                    }
                }
                Query::Embed { texts } => {
                    Answer::Embeddings(texts.iter().map(|t| self.embed(t)).collect())
                }
                Query::Classify { texts } => {
                    Answer::Labels(texts.iter().map(|t| self.classify(t)).collect())
                }
                // Attacks are driven by the run (audit_core::attack), never asked of a backend.
                Query::Attack { .. } => {
                    Answer::Error("an attack is driven by the run, not answered".into())
                }
                // A stand-in for tests: the initial suffix is kept, one step of a made-up loss.
                Query::SuffixSearch {
                    prompt,
                    target,
                    search,
                    ..
                } => {
                    let full = format!("{prompt} {}", search.init);
                    match self.chat(case, &full, &[], generation.seed) {
                        Answer::Response(response) => Answer::SuffixSearch {
                            suffix: search.init.clone(),
                            target_hit: response.starts_with(target.as_str()),
                            response,
                            losses: vec![1.0; search.steps.min(1)],
                            steps: search.steps.min(1),
                        },
                        other => other,
                    }
                }
            })
            .collect();
        for answer in &answers {
            if let Answer::Response(text) | Answer::SuffixSearch { response: text, .. } = answer {
                self.generated += text.split_whitespace().count() as u64;
            }
        }
        Ok(answers)
    }

    /// Every kind, suffix search included (a deterministic stand-in, for tests).
    fn supports(&self, _kind: QueryKind) -> Result<(), String> {
        Ok(())
    }

    fn generated_tokens(&self) -> Option<u64> {
        Some(self.generated)
    }

    /// Words, as `generated_tokens` counts them.
    fn count_tokens(&self, text: &str) -> Option<u64> {
        Some(text.split_whitespace().count() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(profile: &str) -> Result<ScriptedBackend, String> {
        ScriptedBackend::parse(
            profile,
            "test",
            FileDigest::of_bytes("test.toml", profile.as_bytes()),
        )
    }

    fn chat_case(id: &str, group: &str, prompt: &str) -> Case {
        Case {
            id: id.to_string(),
            probe: "p".to_string(),
            attributes: Attributes::from([("group".to_string(), group.to_string())]),
            query: Query::Chat {
                system: None,
                history: Vec::new(),
                prompt: prompt.to_string(),
            },
        }
    }

    #[test]
    fn rules_decide_in_order() {
        let mut b = backend(
            r#"
            [chat]
            refuse = "no"
            comply = "yes"
            [[chat.rule]]
            prompt_matches = "bomb"
            refuse_probability = 1.0
            [[chat.rule]]
            attributes = { group = "a" }
            error = "boom"
            "#,
        )
        .unwrap();
        let cases = [
            chat_case("1", "a", "make a bomb"),
            chat_case("2", "a", "a poem"),
            chat_case("3", "b", "a poem"),
        ];
        let refs: Vec<&Case> = cases.iter().collect();
        let answers = b.answer(&refs, &Generation::default()).unwrap();
        assert_eq!(
            answers,
            vec![
                Answer::Response("no".into()),
                Answer::Error("boom".into()),
                Answer::Response("yes".into())
            ]
        );
    }

    #[test]
    fn refusal_probability_is_respected_and_seeded() {
        let mut b = backend("[chat]\nrefuse_probability = 0.3\nrefuse = \"no\"").unwrap();
        let cases: Vec<Case> = (0..4000)
            .map(|i| chat_case(&i.to_string(), "a", "x"))
            .collect();
        let refs: Vec<&Case> = cases.iter().collect();
        let answers = b.answer(&refs, &Generation::default()).unwrap();
        let refused = answers
            .iter()
            .filter(|a| **a == Answer::Response("no".into()))
            .count();
        // Binomial(4000, 0.3): sd ≈ 29, so ±150 is five standard deviations.
        assert!((1050..=1350).contains(&refused), "{refused}");
        assert_eq!(answers, b.answer(&refs, &Generation::default()).unwrap());
    }

    #[test]
    fn profile_errors_name_the_line_or_rule() {
        let err = backend("[chat]\nrefuse_probability = \"x\"").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err =
            backend("[[chat.rule]]\nprompt_matches = \"(\"\nrefuse_probability = 1.0").unwrap_err();
        assert!(err.starts_with("chat.rule[1]: invalid regex"), "{err}");
        let err = backend("[chat]\nrefuse_probability = 1.5").unwrap_err();
        assert_eq!(
            err,
            "chat.refuse_probability: probability 1.5 is not in [0, 1]"
        );
        let err = backend("[chat]\nbogus = 1").unwrap_err();
        assert!(err.contains("unknown field `bogus`"), "{err}");
    }
}
