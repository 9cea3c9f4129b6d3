//! Property test of the run-directory round trip: seeded random attempts (every answer kind,
//! hostile text, numbers that include NaN and infinities) go through the run loop's finiteness
//! policy, the journal and a torn-line resume, and come back exactly; a summary made of random
//! estimates and tests always serializes to JSON that reads back.

#![allow(clippy::unwrap_used)]

use audit_core::journal::{self, Journal};
use audit_core::summary::Summary;
use audit_core::{Answer, Attempt, Attributes, Case, Query};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn number(rng: &mut ChaCha8Rng) -> f64 {
    match rng.gen_range(0..10) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => f64::MAX,
        4 => -0.0,
        5 => f64::MIN_POSITIVE,
        _ => rng.gen_range(-1e6..1e6),
    }
}

fn text(rng: &mut ChaCha8Rng) -> String {
    const PIECES: &[&str] = &[
        "a", "\n", "\"", "\\", "{{ x }}", "<script>", "é", "\u{0}", "💥", " ", "null", "NaN",
    ];
    (0..rng.gen_range(0..12))
        .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
        .collect()
}

fn attempt(rng: &mut ChaCha8Rng, index: usize) -> Attempt {
    let options: Vec<String> = (0..rng.gen_range(1..4)).map(|_| text(rng)).collect();
    let n = options.len();
    let case = Case {
        id: format!("p/{index}/{}", text(rng)),
        probe: "p".into(),
        attributes: Attributes::from([("group".to_string(), text(rng))]),
        query: Query::Choice {
            context: text(rng),
            options,
        },
    };
    let answer = match rng.gen_range(0..6) {
        0 => Answer::Response(text(rng)),
        1 => Answer::Logprobs((0..n).map(|_| number(rng)).collect()),
        2 => Answer::TokenLogprobs {
            logprobs: (0..n).map(|_| number(rng)).collect(),
            tokens: (0..n).map(|_| rng.gen()).collect(),
        },
        3 => Answer::Embeddings(vec![(0..4).map(|_| number(rng) as f32).collect()]),
        4 => Answer::Labels(vec![vec![(text(rng), number(rng))]]),
        _ => Answer::Error(text(rng)),
    };
    let mut attempt = Attempt::new("s", &case, answer);
    if !attempt.is_error() {
        for d in 0..rng.gen_range(0..3) {
            attempt.scores.insert(format!("d{d}"), number(rng));
            attempt.evidence.insert(format!("d{d}"), text(rng));
        }
    }
    attempt
}

#[test]
fn attempts_round_trip_through_the_journal() {
    for seed in 0..40 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let attempts: Vec<Attempt> = (0..rng.gen_range(1..60))
            .map(|i| attempt(&mut rng, i).into_finite())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attempts.jsonl");
        let mut journal = Journal::create(&path).unwrap();
        let cut = rng.gen_range(0..=attempts.len());
        journal.append(&attempts[..cut]).unwrap();
        drop(journal);
        // A crash mid-line: a torn tail is dropped by resume, and the rest is appended again.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"suite\":\"s\",\"case_");
        std::fs::write(&path, &bytes).unwrap();
        let (mut journal, read) = Journal::resume(&path).unwrap();
        assert_eq!(read, attempts[..cut], "seed {seed}");
        journal.append(&attempts[cut..]).unwrap();
        let back = journal::read(&path).unwrap();
        assert_eq!(back, attempts, "seed {seed}");
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(!has_null_number(&value), "seed {seed}: {line}");
        }
    }
}

/// Whether a JSON value holds `null` where a number was serialized (any `null` at all: the
/// attempt schema has no nullable field).
fn has_null_number(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Array(items) => items.iter().any(has_null_number),
        serde_json::Value::Object(map) => map.values().any(has_null_number),
        _ => false,
    }
}

#[test]
fn a_summary_with_undefined_numbers_still_reads_back() {
    use audit_core::probe::{Metric, MetricContext, MetricOutput};
    /// A metric whose estimates and tests carry the random numbers of its seed.
    struct Random(u64);
    impl Metric for Random {
        fn id(&self) -> &str {
            "random"
        }
        fn method(&self) -> String {
            "random numbers".into()
        }
        fn compute(&self, _: &[&Attempt], context: &MetricContext<'_>) -> MetricOutput {
            let mut rng = ChaCha8Rng::seed_from_u64(self.0);
            let mut output = MetricOutput::default();
            for i in 0..20 {
                output.estimates.push(audit_core::Estimate {
                    suite: context.suite.into(),
                    probe: context.probe.into(),
                    metric: format!("e{i}"),
                    group: Attributes::new(),
                    value: number(&mut rng),
                    ci_low: number(&mut rng),
                    ci_high: number(&mut rng),
                    ci_method: "m".into(),
                    n: 1,
                });
                output.tests.push(audit_core::Test {
                    suite: context.suite.into(),
                    probe: context.probe.into(),
                    name: format!("t{i}"),
                    method: "m".into(),
                    statistic: number(&mut rng),
                    p_value: number(&mut rng),
                    q_holm: 0.0,
                    q_bh: 0.0,
                    effect: number(&mut rng),
                    effect_ci_low: number(&mut rng),
                    effect_ci_high: number(&mut rng),
                    groups: Vec::new(),
                    n: 1,
                    min_detectable_effect: Some(number(&mut rng)),
                });
            }
            output
        }
    }
    struct NoCases(audit_core::ProbeInfo);
    impl audit_core::Probe for NoCases {
        fn info(&self) -> &audit_core::ProbeInfo {
            &self.0
        }
        fn cases(&self, _: u64) -> Result<Vec<Case>, audit_core::ProbeError> {
            Ok(Vec::new())
        }
    }
    for seed in 0..20 {
        let suite = audit_core::Suite {
            reference: audit_core::SuiteRef {
                id: "s".into(),
                version: "1".into(),
                source: "test".into(),
                sha256: String::new(),
            },
            description: String::new(),
            probes: vec![audit_core::ProbePlan {
                probe: Box::new(NoCases(audit_core::ProbeInfo {
                    id: "p".into(),
                    goal: "g".into(),
                    source: "s".into(),
                })),
                transforms: Vec::new(),
                detectors: Vec::new(),
                judges: Vec::new(),
                metrics: vec![Box::new(Random(seed))],
            }],
        };
        let summary = audit_core::summary::summarise(&[suite], &[], seed, 0.95);
        let text = serde_json::to_string(&summary).unwrap();
        let back: Summary =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("seed {seed}: {e}: {text}"));
        assert_eq!(back.estimates.len(), summary.estimates.len());
        assert!(
            summary.estimates.len() < 20 && summary.warnings.iter().any(|w| w.contains("omitted"))
        );
    }
}
