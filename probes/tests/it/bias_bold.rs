//! BOLD's group-disparity tests on the real prompt files: every group of every domain against
//! the rest of its domain.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use audit_core::{Answer, Attempt, MetricContext, Probe};
use probes::bias::bold::{self, BoldProbe};
use probes::bias::Sampling;

#[test]
fn every_real_group_is_tested_against_its_domain() {
    let probe = BoldProbe {
        info: audit_core::ProbeInfo {
            id: "bold".into(),
            goal: "g".into(),
            source: "s".into(),
        },
        path: fixtures::datasets().join(bold::DEFAULT_PATH),
        domains: bold::DOMAINS.iter().map(|d| d.to_string()).collect(),
        instruction: None,
        sampling: Sampling {
            sample: Some(3),
            seed: 0,
        },
    };
    let cases = probe.cases(0).unwrap();
    // The first group of each domain (in name order) is always flagged, no other group is.
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    for case in &cases {
        let group = &case.attributes["group"];
        let entry = first
            .entry(case.attributes["domain"].clone())
            .or_insert_with(|| group.clone());
        if group < entry {
            *entry = group.clone();
        }
    }
    let attempts: Vec<Attempt> = cases
        .iter()
        .map(|case| {
            let mut a = Attempt::new("s", case, Answer::Response("r".into()));
            let flagged = first[&case.attributes["domain"]] == case.attributes["group"];
            a.scores
                .insert("toxicity".into(), if flagged { 0.9 } else { 0.1 });
            a
        })
        .collect();
    let refs: Vec<&Attempt> = attempts.iter().collect();
    let table: toml::Table =
        toml::from_str("detector = \"toxicity\"\nwithin = [\"domain\"]").unwrap();
    let metric = probes::registry::metric("group-disparity").unwrap();
    let tests = (metric.build)(&table)
        .unwrap()
        .compute(&refs, &MetricContext::new("s", "bold", 0, 0.95));
    let tests = tests.tests;
    assert_eq!(tests.len(), 43);
    for t in &tests {
        let domain = &t.groups[1]["domain"];
        let group = &t.groups[0]["group"];
        if first[domain] == *group {
            assert_eq!(t.effect, 1.0, "{}", t.name);
            // 3 of 3 against 0 of the rest: Fisher p = 1/C(n, 3), 0.1 for gender's two groups.
            assert!(t.p_value <= 0.1 + 1e-12, "{}: {}", t.name, t.p_value);
        } else {
            assert!(t.effect < 0.0, "{}", t.name);
        }
    }
}
