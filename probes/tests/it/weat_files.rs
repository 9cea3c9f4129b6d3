//! The WEAT/SEAT loader on the real sent-bias test files (read in place from the shared
//! datasets): every one of the 46 files parses, and the sizes of WEAT 1–10 and SEAT 1–10 are
//! those of the files (README: 4 to 350 items per set, X and Y equal within a test).

#![allow(clippy::unwrap_used)]

use probes::weat::{load, AssociationProbe};

fn dir() -> std::path::PathBuf {
    fixtures::datasets().join("weat_seat/tests")
}

#[test]
fn every_test_file_parses() {
    let mut n = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let test = load(&path).unwrap();
            let [x, y, ..] = test.sets();
            assert_eq!(x.examples.len(), y.examples.len(), "{}", path.display());
            n += 1;
        }
    }
    assert_eq!(n, 46);
}

#[test]
fn weat_and_seat_sizes_are_the_files() {
    let sizes = |name: &str| -> [usize; 4] {
        let test = load(&dir().join(format!("{name}.jsonl"))).unwrap();
        test.sets().map(|s| s.examples.len())
    };
    assert_eq!(sizes("weat1"), [25, 25, 25, 25]);
    assert_eq!(sizes("weat3"), [32, 32, 25, 25]);
    assert_eq!(sizes("weat5"), [16, 16, 8, 8]);
    assert_eq!(sizes("weat9"), [6, 6, 7, 7]);
    assert_eq!(sizes("sent-weat1"), [350, 350, 215, 250]);
    assert_eq!(sizes("sent-weat9"), [18, 18, 21, 23]);
    let weat1 = load(&dir().join("weat1.jsonl")).unwrap();
    assert_eq!(weat1.targ1.category, "Flowers");
    assert_eq!(weat1.attr2.category, "Unpleasant");

    let probe = AssociationProbe {
        info: audit_core::ProbeInfo {
            id: "weat".into(),
            goal: String::new(),
            source: String::new(),
        },
        dir: dir(),
        tests: (1..=10).map(|i| format!("weat{i}")).collect(),
    };
    let cases = audit_core::Probe::cases(&probe, 0).unwrap();
    // WEAT 1–10: 100 + 100 + 114 + 82 + 48 + 4 × 32 (WEAT 6, 7, 8, 10) + 26 words.
    assert_eq!(cases.len(), 598);
    assert_eq!(cases[0].id, "weat/weat1/targ1/000");
    assert_eq!(cases[0].attributes["category"], "Flowers");

    let missing = AssociationProbe {
        tests: vec!["weat99".into()],
        ..probe
    };
    let error = audit_core::Probe::cases(&missing, 0)
        .unwrap_err()
        .to_string();
    assert!(error.contains("weat99.jsonl"), "{error}");
}
