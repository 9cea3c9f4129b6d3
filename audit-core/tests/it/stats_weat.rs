//! WEAT effect sizes and permutation p-values against the independent numpy/scipy implementation
//! of `scripts/weat-reference.py` (fixtures/data/weat_reference.json): effect sizes, statistics and
//! associations to 1e-9, exact p-values equal, sampled p-values within their Monte-Carlo error.

#![allow(clippy::unwrap_used)]

use audit_core::stats::weat::{associations, effect_size_interval, weat, WeatConfig};
use serde_json::Value;

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/data/weat_reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn vectors(value: &Value) -> Vec<Vec<f32>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * (1.0 + want.abs())
}

#[test]
fn toy_cases_match_the_reference() {
    let fixture = reference();
    let samples = fixture["n_samples"].as_u64().unwrap() as usize;
    let toy = fixture["toy"].as_array().unwrap();
    assert_eq!(toy.len(), 4);
    for case in toy {
        let name = case["name"].as_str().unwrap();
        let sets: Vec<Vec<Vec<f32>>> = ["x", "y", "a", "b"]
            .iter()
            .map(|k| vectors(&case[k]))
            .collect();
        let refs: Vec<Vec<&[f32]>> = sets
            .iter()
            .map(|s| s.iter().map(Vec::as_slice).collect())
            .collect();
        let config = WeatConfig { samples, seed: 11 };
        let result = weat(&refs[0], &refs[1], &refs[2], &refs[3], config);
        let s_x = associations(&refs[0], &refs[2], &refs[3]);
        for (got, want) in s_x.iter().zip(case["s_x"].as_array().unwrap()) {
            assert!(close(*got, want.as_f64().unwrap(), 1e-9), "{name}: s_x");
        }
        let want_d = case["effect_size"].as_f64().unwrap();
        assert!(
            close(result.effect_size, want_d, 1e-9),
            "{name}: d {} vs {want_d}",
            result.effect_size
        );
        assert!(
            close(result.statistic, case["statistic"].as_f64().unwrap(), 1e-9),
            "{name}"
        );
        assert_eq!(
            result.partitions,
            case["partitions"].as_f64().unwrap(),
            "{name}"
        );
        let want_p = case["p_value"].as_f64().unwrap();
        assert_eq!(result.exact, case["exact"].as_bool().unwrap(), "{name}");
        if result.exact {
            assert_eq!(result.p_value, want_p, "{name}");
        } else {
            // Two independent Monte-Carlo estimates of one p-value: within 5 standard errors.
            let n = samples as f64;
            let se = (want_p.max(1.0 / n) * (1.0 - want_p) * 2.0 / n).sqrt();
            assert!(
                (result.p_value - want_p).abs() <= 5.0 * se + 2.0 / n,
                "{name}: p {} vs {want_p}",
                result.p_value
            );
        }
        let interval = effect_size_interval(
            &s_x,
            &associations(&refs[1], &refs[2], &refs[3]),
            1000,
            0.95,
            5,
        );
        assert!(
            interval.low <= result.effect_size && result.effect_size <= interval.high,
            "{name}"
        );
    }
}
