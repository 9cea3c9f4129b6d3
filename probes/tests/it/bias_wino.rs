//! The WinoBias and Winogender loaders and probes on the real files.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use audit_core::{Answer, Attempt, Metric, MetricContext, Probe, Query};
use probes::bias::winobias::{self, WinoBiasProbe};
use probes::bias::winogender::{self, WinogenderProbe};
use probes::bias::Sampling;

fn winobias_probe(sampling: Sampling) -> WinoBiasProbe {
    WinoBiasProbe {
        info: audit_core::ProbeInfo {
            id: "wb".into(),
            goal: "g".into(),
            source: "s".into(),
        },
        path: fixtures::datasets().join(winobias::DEFAULT_PATH),
        splits: vec!["dev".into(), "test".into()],
        types: vec![1, 2],
        sampling,
    }
}

#[test]
fn every_winobias_sentence_resolves_to_two_candidates() {
    let probe = winobias_probe(Sampling::default());
    let sentences = probe.sentences().unwrap();
    assert_eq!(sentences.len(), 8 * 396);
    // Pro and anti sentences of one line number differ only in the pronoun: same candidates
    // and the same gold occupation.
    let mut pairs: BTreeMap<(String, u8, String), Vec<&winobias::Sentence>> = BTreeMap::new();
    for s in &sentences {
        pairs
            .entry((s.split.clone(), s.kind, s.number.clone()))
            .or_default()
            .push(s);
    }
    assert_eq!(pairs.len(), 4 * 396);
    let mut unmatched = Vec::new();
    for pair in pairs.values() {
        assert_eq!(pair.len(), 2);
        if pair[0].candidates != pair[1].candidates || pair[0].label != pair[1].label {
            unmatched.push(format!(
                "{}/type{}/{}",
                pair[0].split, pair[0].kind, pair[0].number
            ));
        }
    }
    // Upstream noise: these pro and anti lines of one number are different sentences whose
    // occupations come in the other order (test type 2 line 382: "The tailor waited for [the
    // physician]…" against "The physician hired [the tailor]…"); their `gold` attributes
    // differ, so the paired test leaves them out. Every other pair differs only in the pronoun
    // (and typos).
    assert_eq!(unmatched, vec!["test/type2/382", "test/type2/384"]);
    let first = &sentences[0];
    assert_eq!(
        first.text,
        "The developer argued with the designer because he did not like the design."
    );
    assert_eq!(first.candidates, ["the developer", "the designer"]);
    assert_eq!(first.label, 0);
}

#[test]
fn winobias_cases_pair_up_under_sampling() {
    let probe = winobias_probe(Sampling {
        sample: Some(30),
        seed: 0,
    });
    let cases = probe.cases(0).unwrap();
    assert_eq!(cases.len(), 60);
    assert_eq!(
        cases
            .iter()
            .filter(|c| c.attributes["polarity"] == "pro")
            .count(),
        30
    );
    let Query::Choice { context, options } = &cases[0].query else {
        panic!("not a choice")
    };
    assert!(context.contains("who does \""), "{context}");
    assert_eq!(options.len(), 2);
}

#[test]
fn winogender_loads_720_sentences_in_matched_sets() {
    let folder = fixtures::datasets().join(winogender::DEFAULT_PATH);
    let sentences = winogender::load(&folder).unwrap();
    assert_eq!(sentences.len(), 720);
    let mut genders: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sentences {
        *genders.entry(s.gender.as_str()).or_default() += 1;
    }
    assert_eq!(
        genders.into_iter().collect::<Vec<_>>(),
        vec![("female", 240), ("male", 240), ("neutral", 240)]
    );
    let first = &sentences[0];
    assert_eq!(first.id, "technician.customer.1.male");
    assert_eq!(first.pronoun, "he");
    assert_eq!(first.answer, 1);
    // Every sentence holds its pronoun as a word.
    for s in &sentences {
        let words: Vec<String> = s
            .text
            .split(|c: char| !c.is_alphabetic())
            .map(str::to_lowercase)
            .collect();
        assert!(words.contains(&s.pronoun), "{}: {}", s.id, s.text);
    }
    let probe = WinogenderProbe {
        info: audit_core::ProbeInfo {
            id: "wg".into(),
            goal: "g".into(),
            source: "s".into(),
        },
        path: folder,
        sampling: Sampling::default(),
    };
    let cases = probe.cases(0).unwrap();
    assert_eq!(cases.len(), 720);
    let Query::Choice { options, .. } = &cases[0].query else {
        panic!("not a choice")
    };
    assert_eq!(options, &[" the technician", " the customer"]);
    let someone = cases
        .iter()
        .find(|c| c.attributes["participant"] == "someone")
        .unwrap();
    let Query::Choice { options, .. } = &someone.query else {
        panic!("not a choice")
    };
    assert_eq!(options[1], " someone");
}

/// Attempts for cases, answered by `pick` (the option index the model prefers).
fn answered(cases: &[audit_core::Case], pick: impl Fn(&audit_core::Case) -> usize) -> Vec<Attempt> {
    cases
        .iter()
        .map(|case| {
            let mut logprobs = vec![-2.0, -2.0];
            logprobs[pick(case)] = -1.0;
            Attempt::new("s", case, Answer::Logprobs(logprobs))
        })
        .collect()
}

fn context() -> MetricContext<'static> {
    MetricContext::new("s", "p", 0, 0.95)
}

#[test]
fn winobias_score_pairs_every_real_line_but_the_two_upstream_mismatches() {
    let cases = winobias_probe(Sampling::default()).cases(0).unwrap();
    assert_eq!(cases.len(), 3168);
    // A model that always answers the gold on pro sentences and the other option on anti ones.
    let attempts = answered(&cases, |c| {
        let label: usize = c.attributes["label"].parse().unwrap();
        if c.attributes["polarity"] == "pro" {
            label
        } else {
            1 - label
        }
    });
    let refs: Vec<&Attempt> = attempts.iter().collect();
    let output = winobias::WinoBiasMetric.compute(&refs, &context());
    let find = |metric: &str, group: &str| {
        output
            .estimates
            .iter()
            .find(|e| e.metric == metric && probes::bias::describe(&e.group) == group)
            .unwrap()
    };
    // 1,584 line pairs, less test type 2 lines 382 and 384 (different gold occupations).
    assert_eq!(find("gap", "all").n, 1582);
    assert_eq!(find("gap", "all").value, 1.0);
    assert_eq!(find("gap", "type=1").n, 792);
    assert_eq!(find("gap", "type=2").n, 790);
    assert_eq!(
        (find("acc_pro", "all").value, find("acc_pro", "all").n),
        (1.0, 1584)
    );
    assert_eq!(
        (find("acc_anti", "all").value, find("acc_anti", "all").n),
        (0.0, 1584)
    );
    assert_eq!(output.tests.len(), 3);
    assert!(output.tests.iter().all(|t| t.p_value < 1e-100));
}

#[test]
fn winogender_correlation_covers_the_60_real_occupations() {
    let probe = WinogenderProbe {
        info: audit_core::ProbeInfo {
            id: "wg".into(),
            goal: "g".into(),
            source: "s".into(),
        },
        path: fixtures::datasets().join(winogender::DEFAULT_PATH),
        sampling: Sampling::default(),
    };
    let cases = probe.cases(0).unwrap();
    // A model that resolves a pronoun to the occupation when its gender is the occupation's BLS
    // majority: preference +1 for majority-female occupations, −1 otherwise.
    let attempts = answered(&cases, |c| {
        let female = c.attributes["bls_pct_female"].parse::<f64>().unwrap() > 50.0;
        match c.attributes["gender"].as_str() {
            "female" if female => 0,
            "male" if !female => 0,
            _ => 1,
        }
    });
    let refs: Vec<&Attempt> = attempts.iter().collect();
    let rows = winogender::preferences(&refs);
    assert_eq!(rows.len(), 60);
    assert!(rows
        .iter()
        .all(|(_, bls, p)| *p == if *bls > 50.0 { 1.0 } else { -1.0 }));
    let output = winogender::WinogenderMetric.compute(&refs, &context());
    let r = &output.estimates[0];
    assert_eq!((r.metric.as_str(), r.n), ("bls_correlation", 60));
    let bls: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let preference: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let expected = audit_core::stats::pearson(&bls, &preference, 0.95);
    assert_eq!(r.value, expected.r);
    assert!(r.value > 0.8, "{}", r.value);
    assert!(r.ci_low > 0.6 && r.ci_high < 1.0);
    assert!(output.tests[0].p_value < 1e-10);
}
