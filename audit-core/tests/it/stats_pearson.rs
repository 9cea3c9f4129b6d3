//! Pearson's r, p-value and Fisher-z interval against scipy.stats.pearsonr, recorded by
//! `scripts/pearson-reference.py` in `fixtures/data/pearson_reference.json` (one case is the
//! real Winogender occupation statistics), to 1e-9 relative.

use audit_core::stats::pearson;
use serde_json::Value;

fn close(got: f64, want: f64, what: &str) {
    let tolerance = 1e-9 * want.abs().max(1e-12);
    assert!(
        (got - want).abs() <= tolerance.max(1e-14),
        "{what}: got {got}, scipy {want}"
    );
}

#[test]
fn matches_scipy_pearsonr() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/data/pearson_reference.json"
    );
    let text = std::fs::read_to_string(path).expect("reading the Pearson fixture");
    let reference: Value = serde_json::from_str(&text).expect("parsing the Pearson fixture");
    let cases = reference["cases"].as_array().expect("a list of cases");
    assert!(cases.len() >= 10);
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|x| x.as_f64().expect("a number"))
            .collect()
    };
    for case in cases {
        let name = case["name"].as_str().expect("a name");
        let (x, y) = (floats(&case["x"]), floats(&case["y"]));
        for (key, level) in [("ci_95", 0.95), ("ci_90", 0.9)] {
            let got = pearson(&x, &y, level);
            close(got.r, case["r"].as_f64().expect("r"), &format!("{name}: r"));
            close(
                got.p_value,
                case["p"].as_f64().expect("p"),
                &format!("{name}: p"),
            );
            let ci = floats(&case[key]);
            close(got.interval.low, ci[0], &format!("{name}: {key} low"));
            close(got.interval.high, ci[1], &format!("{name}: {key} high"));
        }
    }
}
