//! The WinoBias and Winogender loaders and probes on the real files.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use audit_core::{Probe, Query};
use probes::bias::winobias::{self, WinoBiasProbe};
use probes::bias::winogender::{self, WinogenderProbe};
use probes::bias::Sampling;

fn winobias_probe(sampling: Sampling) -> WinoBiasProbe {
    WinoBiasProbe {
        id: "wb".into(),
        goal: "g".into(),
        source: "s".into(),
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
        id: "wg".into(),
        goal: "g".into(),
        source: "s".into(),
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
