//! The disparity of a binary detector's rate between groups that are not matched (different
//! prompts per group, as BOLD's): each group against the rest of its stratum.

use std::collections::BTreeMap;

use audit_core::stats::{fisher_exact, newcombe_difference};
use audit_core::{Attempt, Attributes, Metric, MetricContext, MetricOutput, Test};

use super::outcome;

pub const KIND: &str = "group-disparity";

/// `[[probe.metric]] kind = "group-disparity"`: `detector`, `between` (default `group`),
/// `within` (strata, optional, e.g. `["domain"]`) and `name` (the outcome's name in test
/// names, default the detector's id).
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
        name: Option<String>,
    }
    fn group() -> String {
        "group".to_string()
    }
    let p: Params = crate::registry::params(table)?;
    Ok(Box::new(GroupDisparity {
        name: p.name.unwrap_or_else(|| p.detector.clone()),
        detector: p.detector,
        between: p.between,
        within: p.within,
    }))
}

/// Within each stratum, every group (value of `between`) against all other groups of the
/// stratum pooled: the rate difference rate(group) − rate(rest) with Newcombe's hybrid score
/// interval for independent proportions, and a two-sided Fisher exact test. Every test joins
/// the run's Holm and Benjamini–Hochberg correction.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupDisparity {
    pub detector: String,
    pub between: String,
    pub within: Vec<String>,
    pub name: String,
}

/// (flagged, scored) per group of one stratum → (group, flagged, n, rest flagged, rest n).
pub fn against_rest(counts: &BTreeMap<String, (u64, u64)>) -> Vec<(String, u64, u64, u64, u64)> {
    let (all_k, all_n) = counts
        .values()
        .fold((0, 0), |(k, n), (gk, gn)| (k + gk, n + gn));
    counts
        .iter()
        .map(|(group, &(k, n))| (group.clone(), k, n, all_k - k, all_n - n))
        .collect()
}

impl Metric for GroupDisparity {
    fn id(&self) -> &str {
        KIND
    }

    fn method(&self) -> String {
        format!(
            "{n}_disparity: within each {w}, each {b} against the other {b}s pooled: {n} rate difference (rate(group) − rate(rest)) with Newcombe's hybrid score interval for independent proportions; two-sided Fisher exact test (statistic: the group's flagged count); groups with one value only are not tested",
            n = self.name,
            b = self.between,
            w = if self.within.is_empty() { "run".to_string() } else { self.within.join("/") },
        )
    }

    fn compute(&self, attempts: &[&Attempt], context: &MetricContext<'_>) -> MetricOutput {
        let mut strata: BTreeMap<Attributes, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
        for attempt in attempts {
            let (Some(flagged), Some(group)) = (
                outcome(attempt, &self.detector),
                attempt.attributes.get(&self.between),
            ) else {
                continue;
            };
            let stratum: Attributes = self
                .within
                .iter()
                .map(|k| (k.clone(), attempt.attribute(k).to_string()))
                .collect();
            let counts = strata
                .entry(stratum)
                .or_default()
                .entry(group.clone())
                .or_default();
            counts.0 += u64::from(flagged);
            counts.1 += 1;
        }
        let mut tests = Vec::new();
        for (stratum, counts) in &strata {
            if counts.len() < 2 {
                continue;
            }
            let where_ = if stratum.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> = stratum.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(" ({})", parts.join(", "))
            };
            for (group, k, n, rest_k, rest_n) in against_rest(counts) {
                let result = fisher_exact(k, n - k, rest_k, rest_n - rest_k);
                let effect = k as f64 / n as f64 - rest_k as f64 / rest_n as f64;
                let interval = newcombe_difference(k, n, rest_k, rest_n, context.confidence);
                let mut side = stratum.clone();
                side.insert(self.between.clone(), group.clone());
                tests.push(Test {
                    suite: context.suite.to_string(),
                    probe: context.probe.to_string(),
                    name: format!(
                        "{n}_disparity: {b}={group} vs the rest{where_}",
                        n = self.name,
                        b = self.between,
                    ),
                    method: "fisher-exact".to_string(),
                    statistic: k as f64,
                    p_value: result.p_value,
                    q_holm: result.p_value,
                    q_bh: result.p_value,
                    effect,
                    effect_ci_low: interval.low,
                    effect_ci_high: interval.high,
                    groups: vec![side, stratum.clone()],
                    n: n + rest_n,
                    min_detectable_effect: None,
                });
            }
        }
        MetricOutput {
            estimates: Vec::new(),
            tests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_core::{Answer, Case, Query};

    fn attempt(domain: &str, group: &str, index: usize, flagged: bool) -> Attempt {
        let case = Case {
            id: format!("p/{domain}/{group}/{index}"),
            probe: "p".into(),
            attributes: Attributes::from([
                ("domain".to_string(), domain.to_string()),
                ("group".to_string(), group.to_string()),
            ]),
            query: Query::Chat {
                system: None,
                history: Vec::new(),
                prompt: "x".into(),
            },
        };
        let mut a = Attempt::new("s", &case, Answer::Response("r".into()));
        a.scores
            .insert("negative".into(), if flagged { 1.0 } else { 0.0 });
        a
    }

    #[test]
    fn each_group_against_the_rest_of_its_stratum() {
        // race: a 4/4 flagged, b 0/4, c 0/4. a vs rest: 4/4 vs 0/8, difference 1; Fisher on
        // [[4, 0], [0, 8]]: only the observed table is as unlikely, p = 1/C(12, 4) = 1/495.
        // b vs rest: 0/4 vs 4/8 → −0.5, scipy.stats.fisher_exact([[0, 4], [4, 4]]) =
        // 0.2080808…. gender has one group: no test.
        let mut attempts = Vec::new();
        for i in 0..4 {
            attempts.push(attempt("race", "a", i, true));
            attempts.push(attempt("race", "b", i, false));
            attempts.push(attempt("race", "c", i, false));
            attempts.push(attempt("gender", "x", i, i < 2));
        }
        let refs: Vec<&Attempt> = attempts.iter().collect();
        let table: toml::Table =
            toml::from_str("detector = \"negative\"\nwithin = [\"domain\"]").expect("valid");
        let metric = build(&table).expect("valid");
        let context = MetricContext::new("s", "p", 0, 0.95);
        let tests = metric.compute(&refs, &context).tests;
        let got: Vec<(&str, f64, f64)> = tests
            .iter()
            .map(|t| (t.name.as_str(), t.effect, t.p_value))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[0].0,
            "negative_disparity: group=a vs the rest (domain=race)"
        );
        assert!((got[0].1 - 1.0).abs() < 1e-12);
        assert!((got[0].2 - 1.0 / 495.0).abs() < 1e-12, "{}", got[0].2);
        assert!((got[1].1 + 0.5).abs() < 1e-12);
        assert!(
            (got[1].2 - 0.208_080_808_080_808_1).abs() < 1e-9,
            "{}",
            got[1].2
        );
        assert_eq!(tests[0].n, 12);
    }
}
