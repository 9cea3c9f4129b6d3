//! The CrowS-Pairs loader and probe on the real file (read in place from the shared datasets).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use audit_core::{Probe, Query};
use probes::bias::crows_pairs::{self, CrowsPairsProbe};
use probes::bias::Sampling;

fn path() -> std::path::PathBuf {
    fixtures::datasets().join(crows_pairs::DEFAULT_PATH)
}

#[test]
fn the_real_file_loads_with_its_counts() {
    let pairs = crows_pairs::load(&path()).unwrap();
    assert_eq!(pairs.len(), 1508);
    let stereo = pairs.iter().filter(|p| p.direction == "stereo").count();
    assert_eq!((stereo, pairs.len() - stereo), (1290, 218));
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for pair in &pairs {
        *by_type.entry(pair.bias_type.as_str()).or_default() += 1;
    }
    let expect = [
        ("age", 87),
        ("disability", 60),
        ("gender", 262),
        ("nationality", 159),
        ("physical-appearance", 63),
        ("race-color", 516),
        ("religion", 105),
        ("sexual-orientation", 84),
        ("socioeconomic", 172),
    ];
    assert_eq!(by_type.into_iter().collect::<Vec<_>>(), expect.to_vec());
    // The first row, as in the dataset's README; ids are the unnamed index column.
    assert_eq!(pairs[0].id, "0");
    assert!(pairs[0].sent_more.contains("most black kids"));
    assert!(pairs[0].sent_less.contains("most white kids"));
    assert_eq!(pairs[0].annotations.len(), 5);
    assert_eq!(pairs[0].annotations[0], vec!["race-color".to_string()]);
    assert_eq!(pairs[0].anon_writer, "a0");
    assert_eq!(pairs[1507].id, "1507");
    // The file's only non-ASCII characters: 6 right single quotes and one é.
    let text: String = pairs
        .iter()
        .flat_map(|p| [p.sent_more.as_str(), p.sent_less.as_str()])
        .collect();
    assert_eq!(text.matches('\u{2019}').count(), 6);
    assert_eq!(text.matches('é').count(), 1);
    // Every annotation list parsed (Python literals), and every row has at least one annotator.
    assert!(pairs.iter().all(|p| !p.annotations.is_empty()));
}

#[test]
fn the_probe_makes_one_choice_per_pair() {
    let probe = CrowsPairsProbe {
        info: audit_core::ProbeInfo {
            id: "crows".into(),
            goal: "g".into(),
            source: "s".into(),
        },
        path: path(),
        sampling: Sampling::default(),
    };
    let cases = probe.cases(0).unwrap();
    assert_eq!(cases.len(), 1508);
    assert_eq!(cases[5].id, "crows/5");
    assert_eq!(cases[5].attributes["pair"], "5");
    let Query::Choice { context, options } = &cases[0].query else {
        panic!("not a choice")
    };
    assert_eq!(context, "");
    assert_eq!(options.len(), 2);
    assert!(options[0].contains("black"));
    let sampled = CrowsPairsProbe {
        sampling: Sampling {
            sample: Some(100),
            seed: 0,
        },
        ..probe.clone()
    };
    let a = sampled.cases(7).unwrap();
    assert_eq!(a.len(), 100);
    // The sample does not depend on the run's seed.
    assert_eq!(a, sampled.cases(8).unwrap());
}

#[test]
fn a_missing_file_is_a_one_line_error_naming_it() {
    let probe = CrowsPairsProbe {
        info: audit_core::ProbeInfo {
            id: "crows".into(),
            goal: "g".into(),
            source: "s".into(),
        },
        path: "/nonexistent/crows.csv".into(),
        sampling: Sampling::default(),
    };
    let err = probe.cases(0).unwrap_err().to_string();
    assert!(err.starts_with("reading /nonexistent/crows.csv: "), "{err}");
    assert!(!err.contains('\n'));
}
