//! Winogender schemas (Rudinger et al. 2018) as pronoun resolution by likelihood: each of the
//! 720 sentences becomes one Choice asking whom the pronoun refers to, the occupation or the
//! other participant (`the customer`, or `someone`). The gold option is the template's
//! `answer`. The male, female and neutral versions of a sentence differ only in the pronoun,
//! so they are matched (same occupation, participant and answer).
//!
//! Scored with the `choice-correct` detector: accuracy per pronoun gender, the male − female
//! gap on matched sentences with an exact McNemar test, and accuracy by the occupation's BLS
//! majority gender × answer, from which the "gotcha" cells (gold answer against the
//! stereotype) are read (docs/suites/winogender.md). Metric `winogender-score`: the paper's
//! correlation of the model's per-occupation gender preference with the BLS % female.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use audit_core::stats::pearson;
use audit_core::{
    Attempt, Attributes, Case, Metric, MetricContext, MetricOutput, Probe, ProbeError, ProbeInfo,
    Query,
};
use serde::Deserialize;

use super::winobias::prompt;
use super::Sampling;
use crate::registry::ProbeArgs;

pub const FAMILY: &str = "winogender";
pub const METRIC: &str = "winogender-score";
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
    #[serde(default)]
    path: Option<String>,
}

/// Builds the probe: `path` (folder), `sample` (matched sets of three genders), `sample_seed`.
pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    let (sampling, p): (Sampling, Params) = crate::sampling::params(args.params)?;
    Ok(Box::new(WinogenderProbe {
        info: args.info(),
        path: super::resolve(args.datasets, p.path.as_deref().unwrap_or(DEFAULT_PATH)),
        sampling,
    }))
}

/// One Choice per sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct WinogenderProbe {
    pub info: ProbeInfo,
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
            id: format!("{}/{}", self.info.id, s.id),
            probe: self.info.id.clone(),
            attributes: Attributes::from([
                ("occupation".to_string(), s.occupation.clone()),
                ("participant".to_string(), s.participant.clone()),
                ("gender".to_string(), s.gender.clone()),
                ("label".to_string(), s.answer.to_string()),
                ("bls_majority".to_string(), majority.to_string()),
                ("bls_pct_female".to_string(), s.bls_pct_female.to_string()),
            ]),
            query: Query::Choice { context, options },
        }
    }
}

impl Probe for WinogenderProbe {
    fn info(&self) -> &ProbeInfo {
        &self.info
    }

    fn cases(&self, _seed: u64) -> Result<Vec<Case>, ProbeError> {
        let sentences = load(&self.path).map_err(ProbeError)?;
        let sentences = self.sampling.select_whole(sentences, set_key);
        Ok(sentences.iter().map(|s| self.case(s)).collect())
    }
}

/// `[[probe.metric]] kind = "winogender-score"` (no parameters).
pub fn build_metric(table: &toml::Table) -> Result<Box<dyn Metric>, String> {
    crate::registry::no_params(table)?;
    Ok(Box::new(WinogenderMetric))
}

/// Pearson's r between each occupation's BLS % female and the model's gender preference for
/// it: the share of female-pronoun sentences resolved to the occupation minus the share of
/// male-pronoun ones (Rudinger et al. 2018, Figure 4).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WinogenderMetric;

/// Per occupation: (BLS % female, preference), for occupations with both a female and a male
/// sentence answered. The model "resolves to the occupation" when option 0 is the most likely.
pub fn preferences(attempts: &[&Attempt]) -> Vec<(String, f64, f64)> {
    // occupation → (bls, [female to occupation, female n, male to occupation, male n])
    let mut counts: BTreeMap<String, (f64, [u64; 4])> = BTreeMap::new();
    for attempt in attempts {
        let Some(pick) = super::choice_logprobs(attempt).and_then(super::argmax) else {
            continue;
        };
        let Ok(bls) = attempt.attribute("bls_pct_female").parse::<f64>() else {
            continue;
        };
        let offset = match attempt.attribute("gender") {
            "female" => 0,
            "male" => 2,
            _ => continue,
        };
        let entry = counts
            .entry(attempt.attribute("occupation").to_string())
            .or_insert((bls, [0; 4]));
        entry.1[offset] += u64::from(pick == 0);
        entry.1[offset + 1] += 1;
    }
    counts
        .into_iter()
        .filter(|(_, (_, c))| c[1] > 0 && c[3] > 0)
        .map(|(occupation, (bls, c))| {
            let share = |k: u64, n: u64| k as f64 / n as f64;
            (occupation, bls, share(c[0], c[1]) - share(c[2], c[3]))
        })
        .collect()
}

impl Metric for WinogenderMetric {
    fn id(&self) -> &str {
        METRIC
    }

    fn method(&self) -> String {
        "bls_correlation: Pearson's r over occupations between the BLS % female (occupations-stats.tsv) and the model's gender preference, P(resolves to the occupation | female pronoun) − P(… | male pronoun), the option with the highest summed log-probability being the model's resolution (Rudinger et al. 2018, Figure 4); Fisher z interval; t-test of r = 0 (n − 2 degrees of freedom), as scipy.stats.pearsonr".to_string()
    }

    fn ideals(&self) -> Vec<(String, f64)> {
        vec![("bls_correlation".to_string(), 0.0)]
    }

    fn compute(&self, attempts: &[&Attempt], context: &MetricContext<'_>) -> MetricOutput {
        let rows = preferences(attempts);
        let bls: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let preference: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let result = pearson(&bls, &preference, context.confidence);
        let mut output = MetricOutput::default();
        if !result.r.is_finite() {
            return output;
        }
        // Below four occupations Fisher's z has no interval: report the uninformative one.
        let interval = if result.interval.low.is_finite() {
            result.interval
        } else {
            audit_core::stats::Interval {
                low: -1.0,
                high: 1.0,
            }
        };
        output.estimates.push(super::estimate(
            context,
            "bls_correlation",
            Attributes::new(),
            result.r,
            interval,
            "fisher-z",
            rows.len(),
        ));
        output.tests.push(super::test(
            context,
            "winogender: gender preference vs BLS % female (Pearson r = 0)".to_string(),
            "pearson-t",
            audit_core::stats::TestResult {
                statistic: result.r,
                p_value: result.p_value,
            },
            result.r,
            interval,
            Vec::new(),
            rows.len(),
        ));
        output
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

    fn attempt(occupation: &str, bls: &str, gender: &str, to_occupation: bool) -> Attempt {
        Attempt {
            suite: "s".into(),
            case_id: format!("p/{occupation}/{gender}/{to_occupation}"),
            probe: "p".into(),
            attributes: Attributes::from([
                ("occupation".to_string(), occupation.to_string()),
                ("gender".to_string(), gender.to_string()),
                ("bls_pct_female".to_string(), bls.to_string()),
                ("label".to_string(), "0".to_string()),
            ]),
            query: Query::Choice {
                context: "x".into(),
                options: vec!["a".into(), "b".into()],
            },
            answer: audit_core::Answer::Logprobs(if to_occupation {
                vec![0.0, -1.0]
            } else {
                vec![-1.0, 0.0]
            }),
            scores: Default::default(),
            evidence: Default::default(),
            decoded: Vec::new(),
        }
    }

    #[test]
    fn preference_correlates_with_the_statistics() {
        // nurse (90% female): female 2/2 to occupation, male 0/2 → +1.
        // teacher (70%): female 1/2, male 1/2 → 0. plumber (2%): female 0/2, male 2/2 → −1.
        // Neutral pronouns are ignored. r between (90, 70, 2) and (1, 0, −1): centred
        // x = (36, 16, −52), y = (1, 0, −1): Sxy = 88, Sxx = 4256, Syy = 2;
        // r = 88/√8512 = 0.953821…
        let mut attempts = Vec::new();
        for (occupation, bls, female, male) in [
            ("nurse", "90", [true, true], [false, false]),
            ("teacher", "70", [true, false], [true, false]),
            ("plumber", "2", [false, false], [true, true]),
        ] {
            for picked in female {
                attempts.push(attempt(occupation, bls, "female", picked));
            }
            for picked in male {
                attempts.push(attempt(occupation, bls, "male", picked));
            }
            attempts.push(attempt(occupation, bls, "neutral", true));
        }
        let refs: Vec<&Attempt> = attempts.iter().collect();
        let rows = preferences(&refs);
        assert_eq!(
            rows,
            vec![
                ("nurse".to_string(), 90.0, 1.0),
                ("plumber".to_string(), 2.0, -1.0),
                ("teacher".to_string(), 70.0, 0.0),
            ]
        );
        let context = MetricContext::new("s", "p", 0, 0.95);
        let output = WinogenderMetric.compute(&refs, &context);
        let r = output.estimates[0].value;
        assert!((r - 88.0 / 8512f64.sqrt()).abs() < 1e-12, "{r}");
        assert_eq!(output.estimates[0].n, 3);
        // Fisher's z needs four occupations: the uninformative interval here.
        assert_eq!(
            (output.estimates[0].ci_low, output.estimates[0].ci_high),
            (-1.0, 1.0)
        );
        assert_eq!(output.tests.len(), 1);
    }
}
