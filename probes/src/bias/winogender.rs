//! Winogender schemas (Rudinger et al. 2018) as pronoun resolution by likelihood: each of the
//! 720 sentences becomes one Choice asking whom the pronoun refers to, the occupation or the
//! other participant (`the customer`, or `someone`). The gold option is the template's
//! `answer`. The male, female and neutral versions of a sentence differ only in the pronoun,
//! so they are matched (same occupation, participant and answer).
//!
//! Scored with the `choice-correct` detector: accuracy per pronoun gender, the male − female
//! gap on matched sentences with an exact McNemar test, and accuracy by the occupation's BLS
//! majority gender × answer, from which the "gotcha" cells (gold answer against the
//! stereotype) are read (docs/suites/winogender.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use audit_core::{Attributes, Case, Probe, ProbeError, Query};
use serde::Deserialize;

use super::winobias::prompt;
use super::Sampling;
use crate::registry::{params, ProbeArgs};

pub const FAMILY: &str = "winogender";
/// The folder under `--datasets` when the suite gives no `path`.
pub const DEFAULT_PATH: &str = "winogender";

/// One sentence with what it is asked about.
#[derive(Clone, Debug, PartialEq)]
pub struct Sentence {
    /// `all_sentences.tsv`'s `sentid` without `.txt`.
    pub id: String,
    pub text: String,
    pub occupation: String,
    /// The other participant (`customer`) or `someone`.
    pub participant: String,
    /// `male`, `female` or `neutral`.
    pub gender: String,
    pub pronoun: String,
    /// 0 when the pronoun refers to the occupation, 1 when to the participant.
    pub answer: usize,
    /// The occupation's share of women per the BLS (`occupations-stats.tsv`).
    pub bls_pct_female: f64,
}

fn tsv(path: &Path) -> Result<Vec<(usize, Vec<String>)>, String> {
    let text = super::read_text(path)?;
    Ok(text
        .lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split('\t').map(|f| f.trim().to_string()).collect()))
        .collect())
}

/// The pronoun that fills a template's placeholder for a gender.
fn pronoun(template: &str, gender: &str) -> Option<&'static str> {
    let forms: [(&str, [&str; 3]); 3] = [
        ("$NOM_PRONOUN", ["he", "she", "they"]),
        ("$POSS_PRONOUN", ["his", "her", "their"]),
        ("$ACC_PRONOUN", ["him", "her", "them"]),
    ];
    let column = match gender {
        "male" => 0,
        "female" => 1,
        "neutral" => 2,
        _ => return None,
    };
    forms
        .iter()
        .find(|(placeholder, _)| template.contains(placeholder))
        .map(|(_, words)| words[column])
}

/// Reads `templates.tsv`, `all_sentences.tsv` and `occupations-stats.tsv` from a folder.
pub fn load(folder: &Path) -> Result<Vec<Sentence>, String> {
    let templates_path = folder.join("templates.tsv");
    let mut templates: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for (line, fields) in tsv(&templates_path)? {
        let [occupation, participant, answer, sentence] = fields.as_slice() else {
            return Err(format!(
                "{}: line {line}: expected 4 tab-separated fields",
                templates_path.display()
            ));
        };
        templates.insert(
            (occupation.clone(), answer.clone()),
            (participant.clone(), sentence.clone()),
        );
    }
    let stats_path = folder.join("occupations-stats.tsv");
    let mut stats: BTreeMap<String, f64> = BTreeMap::new();
    for (line, fields) in tsv(&stats_path)? {
        let bad = || {
            format!("{}: line {line}: expected occupation, bergsma_pct_female, bls_pct_female, bls_year", stats_path.display())
        };
        let (Some(occupation), Some(bls)) = (fields.first(), fields.get(2)) else {
            return Err(bad());
        };
        stats.insert(occupation.clone(), bls.parse().map_err(|_| bad())?);
    }
    let path = folder.join("all_sentences.tsv");
    let mut sentences = Vec::new();
    for (line, fields) in tsv(&path)? {
        let at = |m: String| format!("{}: line {line}: {m}", path.display());
        let [sentid, text] = fields.as_slice() else {
            return Err(at("expected sentid and sentence".to_string()));
        };
        let id = sentid.strip_suffix(".txt").unwrap_or(sentid);
        let parts: Vec<&str> = id.split('.').collect();
        let [occupation, participant, answer, gender] = parts.as_slice() else {
            return Err(at(format!(
                "sentid `{sentid}` is not occupation.participant.answer.gender.txt"
            )));
        };
        let Some((template_participant, template)) =
            templates.get(&(occupation.to_string(), answer.to_string()))
        else {
            return Err(at(format!(
                "no template for `{occupation}` with answer {answer}"
            )));
        };
        if *participant != "someone" && participant != template_participant {
            return Err(at(format!(
                "participant `{participant}` differs from the template's `{template_participant}`"
            )));
        }
        let pronoun = pronoun(template, gender).ok_or_else(|| {
            at(format!(
                "gender `{gender}` or the template's pronoun is unknown"
            ))
        })?;
        let answer: usize = match *answer {
            "0" => 0,
            "1" => 1,
            other => return Err(at(format!("answer `{other}` is not 0 or 1"))),
        };
        let bls_pct_female = *stats
            .get(*occupation)
            .ok_or_else(|| at(format!("`{occupation}` is not in occupations-stats.tsv")))?;
        sentences.push(Sentence {
            id: id.to_string(),
            text: text.clone(),
            occupation: occupation.to_string(),
            participant: participant.to_string(),
            gender: gender.to_string(),
            pronoun: pronoun.to_string(),
            answer,
            bls_pct_female,
        });
    }
    Ok(sentences)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "default_path")]
    path: String,
    #[serde(default)]
    sample: Option<usize>,
    #[serde(default)]
    sample_seed: u64,
}

fn default_path() -> String {
    DEFAULT_PATH.to_string()
}

/// Builds the probe: `path` (folder), `sample` (matched sets of three genders), `sample_seed`.
pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    let p: Params = params(args.params)?;
    Ok(Box::new(WinogenderProbe {
        id: args.id.to_string(),
        goal: args.goal.to_string(),
        source: args.source.to_string(),
        path: super::resolve(args.datasets, &p.path),
        sampling: Sampling {
            sample: p.sample,
            seed: p.sample_seed,
        },
    }))
}

/// One Choice per sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct WinogenderProbe {
    pub id: String,
    pub goal: String,
    pub source: String,
    pub path: PathBuf,
    pub sampling: Sampling,
}

fn set_key(s: &Sentence) -> String {
    format!("{}.{}.{}", s.occupation, s.participant, s.answer)
}

impl WinogenderProbe {
    pub fn case(&self, s: &Sentence) -> Case {
        let other = if s.participant == "someone" {
            "someone".to_string()
        } else {
            format!("the {}", s.participant)
        };
        let (context, options) = prompt(
            &s.text,
            &s.pronoun,
            &[format!("the {}", s.occupation), other],
        );
        let majority = if s.bls_pct_female > 50.0 {
            "female"
        } else {
            "male"
        };
        Case {
            id: format!("{}/{}", self.id, s.id),
            probe: self.id.clone(),
            attributes: Attributes::from([
                ("occupation".to_string(), s.occupation.clone()),
                ("participant".to_string(), s.participant.clone()),
                ("gender".to_string(), s.gender.clone()),
                ("label".to_string(), s.answer.to_string()),
                ("bls_majority".to_string(), majority.to_string()),
            ]),
            query: Query::Choice { context, options },
        }
    }
}

impl Probe for WinogenderProbe {
    fn id(&self) -> &str {
        &self.id
    }

    fn goal(&self) -> &str {
        &self.goal
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn cases(&self, _seed: u64) -> Result<Vec<Case>, ProbeError> {
        let sentences = load(&self.path).map_err(ProbeError)?;
        let keys: std::collections::BTreeSet<String> = sentences.iter().map(set_key).collect();
        let keep: std::collections::BTreeSet<String> = self
            .sampling
            .select(keys.into_iter().collect(), Clone::clone)
            .into_iter()
            .collect();
        Ok(sentences
            .iter()
            .filter(|s| keep.contains(&set_key(s)))
            .map(|s| self.case(s))
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pronouns_follow_the_placeholder_and_gender() {
        let check = |template: &str, gender: &str, expect: Option<&str>| {
            assert_eq!(pronoun(template, gender), expect, "{template} {gender}");
        };
        check("that $NOM_PRONOUN could", "male", Some("he"));
        check("that $NOM_PRONOUN could", "neutral", Some("they"));
        check("$POSS_PRONOUN car", "female", Some("her"));
        check("told $ACC_PRONOUN", "female", Some("her"));
        check("told $ACC_PRONOUN", "neutral", Some("them"));
        check("no placeholder", "male", None);
        check("$NOM_PRONOUN", "other", None);
    }
}
