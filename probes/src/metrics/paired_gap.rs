//! The gap in a binary detector's rate between two groups, on matched cases: the same
//! template (and every other attribute) asked for each group.

use std::collections::{BTreeMap, BTreeSet};

use audit_core::stats::{mcnemar_exact, newcombe_paired_difference};
use audit_core::{Attempt, Attributes, Metric, MetricContext, MetricOutput, Test};

use super::outcome;

pub const KIND: &str = "paired-gap";

/// `[[probe.metric]] kind = "paired-gap"`: `detector`, `between` (default `group`),
/// `within` (strata, optional), `reference` (optional: compare every other value with this one
/// only, e.g. `transform = "none"`), `complement` (default false: count the attempts the
/// detector does not flag, e.g. attack success for the refusal detector) and `name` (the
/// outcome's name in test names, default the detector's id).
pub fn build(table: &toml::Table) -> Result<Box<dyn Metric>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        detector: String,
        #[serde(default = "group")]
        between: String,
        #[serde(default)]
        within: Vec<String>,
        #[serde(default)]
        reference: Option<String>,
        #[serde(default)]
        complement: bool,
        #[serde(default)]
        name: Option<String>,
    }
    fn group() -> String {
        "group".to_string()
    }
    let p: Params = crate::registry::params(table)?;
    Ok(Box::new(PairedGap {
        name: p.name.unwrap_or_else(|| p.detector.clone()),
        detector: p.detector,
        between: p.between,
        within: p.within,
        reference: p.reference,
        complement: p.complement,
    }))
}

/// For every pair of groups (values of `between`) within each stratum (values of `within`),
/// the cases that match on every other attribute form pairs; the gap is
/// rate(first) − rate(second) on those pairs, with Newcombe's paired-difference interval and an
/// exact McNemar test on the discordant pairs. With a `reference` value, every other value is
/// compared with it only (first = the other value, second = the reference).
#[derive(Clone, Debug, PartialEq)]
pub struct PairedGap {
    pub detector: String,
    /// The attribute whose values are compared (e.g. `group`).
    pub between: String,
    /// Attributes that define strata compared separately (e.g. `axis`).
    pub within: Vec<String>,
    /// The value every other one is compared with, instead of every pair of values.
    pub reference: Option<String>,
    /// Count the attempts the detector does not flag.
    pub complement: bool,
    /// The outcome's name in test names.
    pub name: String,
}

impl Metric for PairedGap {
    fn id(&self) -> &str {
        KIND
    }

    fn method(&self) -> String {
        let pairs = match &self.reference {
            Some(reference) => {
                format!("each {b} value against {b} = {reference}", b = self.between)
            }
            None => format!("each pair of {} values", self.between),
        };
        let outcome = if self.complement {
            format!("{} (attempts not flagged by {})", self.name, self.detector)
        } else {
            self.name.clone()
        };
        format!(
            "{n}_gap: for {pairs} within each {w}, cases matched on all other attributes; difference of {outcome} rates with Newcombe's paired (method 10) interval; exact two-sided McNemar test on the discordant pairs",
            n = self.name,
            w = if self.within.is_empty() { "run".to_string() } else { self.within.join("/") },
        )
    }

    fn compute(&self, attempts: &[&Attempt], context: &MetricContext<'_>) -> MetricOutput {
        // stratum → pair key (every other attribute) → group → outcome
        type Matched = BTreeMap<Attributes, BTreeMap<String, bool>>;
        let mut strata: BTreeMap<Attributes, Matched> = BTreeMap::new();
        for attempt in attempts {
            let Some(flagged) = outcome(attempt, &self.detector) else {
                continue;
            };
            let flagged = flagged != self.complement;
            let Some(group) = attempt.attributes.get(&self.between) else {
                continue;
            };
            let stratum: Attributes = self
                .within
                .iter()
                .map(|k| (k.clone(), attempt.attribute(k).to_string()))
                .collect();
            let key: Attributes = attempt
                .attributes
                .iter()
                .filter(|(k, _)| **k != self.between && !self.within.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            strata
                .entry(stratum)
                .or_default()
                .entry(key)
                .or_default()
                .insert(group.clone(), flagged);
        }

        let mut tests = Vec::new();
        for (stratum, matched) in &strata {
            let groups: BTreeSet<&String> = matched.values().flat_map(|g| g.keys()).collect();
            let groups: Vec<&String> = groups.into_iter().collect();
            let comparisons: Vec<(&String, &String)> = match &self.reference {
                Some(reference) => groups
                    .iter()
                    .filter(|g| **g != reference)
                    .filter_map(|g| groups.iter().find(|r| **r == reference).map(|r| (*g, *r)))
                    .collect(),
                None => groups
                    .iter()
                    .enumerate()
                    .flat_map(|(i, first)| {
                        groups[i + 1..].iter().map(move |second| (*first, *second))
                    })
                    .collect(),
            };
            {
                for (first, second) in comparisons {
                    let (mut both, mut only_first, mut only_second, mut neither) = (0, 0, 0, 0);
                    for outcomes in matched.values() {
                        let (Some(&a), Some(&b)) = (outcomes.get(first), outcomes.get(second))
                        else {
                            continue;
                        };
                        match (a, b) {
                            (true, true) => both += 1,
                            (true, false) => only_first += 1,
                            (false, true) => only_second += 1,
                            (false, false) => neither += 1,
                        }
                    }
                    let n = both + only_first + only_second + neither;
                    if n == 0 {
                        continue;
                    }
                    let test = mcnemar_exact(only_first, only_second);
                    let interval = newcombe_paired_difference(
                        both,
                        only_first,
                        only_second,
                        neither,
                        context.confidence,
                    );
                    let side = |g: &str| {
                        let mut a = stratum.clone();
                        a.insert(self.between.clone(), g.to_string());
                        a
                    };
                    let where_ = if stratum.is_empty() {
                        String::new()
                    } else {
                        let parts: Vec<String> =
                            stratum.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!(" ({})", parts.join(", "))
                    };
                    tests.push(Test {
                        suite: context.suite.to_string(),
                        probe: context.probe.to_string(),
                        name: format!(
                            "{n}_gap: {b}={first} vs {b}={second}{where_}",
                            n = self.name,
                            b = self.between,
                        ),
                        method: "mcnemar-exact".to_string(),
                        statistic: test.statistic,
                        p_value: test.p_value,
                        q_holm: test.p_value,
                        q_bh: test.p_value,
                        effect: (only_first as f64 - only_second as f64) / n as f64,
                        effect_ci_low: interval.low,
                        effect_ci_high: interval.high,
                        groups: vec![side(first), side(second)],
                        n,
                        min_detectable_effect: detectable(n, both, only_first + only_second),
                    });
                }
            }
        }
        MetricOutput {
            estimates: Vec::new(),
            tests,
        }
    }
}

/// The smallest rate difference this comparison could detect at α = 0.05 with 80% power:
/// Connor's McNemar formula at the observed discordance, or, with no discordant pair to go by,
/// the (more conservative) independent-samples difference at the pooled rate.
fn detectable(n: u64, both: u64, discordant: u64) -> Option<f64> {
    use audit_core::stats::{min_detectable_difference, min_detectable_paired_difference};
    let value = if discordant > 0 {
        min_detectable_paired_difference(n, 0.05, 0.8, discordant as f64 / n as f64)
    } else {
        let pooled = (2 * both) as f64 / (2 * n) as f64;
        min_detectable_difference(n, 0.05, 0.8, pooled)
    };
    value.is_finite().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_core::{Answer, Case, Query};

    /// An attempt of item `item` under `transform`, refused or not.
    fn attempt(item: &str, transform: &str, refused: bool) -> Attempt {
        let case = Case {
            id: format!("p/{item}/{transform}"),
            probe: "p".into(),
            attributes: Attributes::from([
                ("item".to_string(), item.to_string()),
                ("transform".to_string(), transform.to_string()),
            ]),
            query: Query::Chat {
                system: None,
                history: Vec::new(),
                prompt: "x".into(),
            },
        };
        let mut a = Attempt::new("s", &case, Answer::Response("r".into()));
        a.scores
            .insert("refusal".into(), if refused { 1.0 } else { 0.0 });
        a
    }

    fn check(table: &str, expect: &[(&str, f64, u64)]) {
        let mut attempts = Vec::new();
        for i in 0..6 {
            let item = i.to_string();
            attempts.push(attempt(&item, "none", true));
            attempts.push(attempt(&item, "a", i < 2));
            attempts.push(attempt(&item, "b", true));
        }
        let refs: Vec<&Attempt> = attempts.iter().collect();
        let metric =
            build(&toml::from_str(table).expect("valid in this test")).expect("valid in this test");
        let context = MetricContext::new("s", "p", 1, 0.95);
        let got: Vec<(String, f64, u64)> = metric
            .compute(&refs, &context)
            .tests
            .iter()
            .map(|t| (t.name.clone(), (t.effect * 1000.0).round() / 1000.0, t.n))
            .collect();
        let expect: Vec<(String, f64, u64)> = expect
            .iter()
            .map(|(name, effect, n)| (name.to_string(), *effect, *n))
            .collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn every_pair_or_against_a_reference() {
        check(
            "detector = \"refusal\"\nbetween = \"transform\"",
            &[
                ("refusal_gap: transform=a vs transform=b", -0.667, 6),
                ("refusal_gap: transform=a vs transform=none", -0.667, 6),
                ("refusal_gap: transform=b vs transform=none", 0.0, 6),
            ],
        );
        check(
            "detector = \"refusal\"\nbetween = \"transform\"\nreference = \"none\"\ncomplement = true\nname = \"asr\"",
            &[
                ("asr_gap: transform=a vs transform=none", 0.667, 6),
                ("asr_gap: transform=b vs transform=none", 0.0, 6),
            ],
        );
    }
}
