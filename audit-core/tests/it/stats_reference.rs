//! Reference tests: every closed-form statistic against scipy/statsmodels values recorded by
//! `scripts/stats-reference.py` in `fixtures/data/stats_reference.json`, to 1e-9 relative.

use audit_core::stats::{self, distributions, MannWhitneyMethod, WilcoxonConfig, WilcoxonMethod};
use serde_json::Value;

const RELATIVE: f64 = 1e-9;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/data/stats_reference.json"
    );
    let text = std::fs::read_to_string(path).expect("reading the stats reference fixture");
    serde_json::from_str(&text).expect("parsing the stats reference fixture")
}

fn cases(name: &str) -> Vec<Value> {
    let all = reference();
    let list = all[name].as_array().expect("a list of cases").clone();
    assert!(list.len() >= 30, "{name}: only {} cases", list.len());
    list
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => other.as_f64().expect("a number"),
    }
}

fn int(v: &Value) -> u64 {
    v.as_u64().expect("a non-negative integer")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("a list").iter().map(num).collect()
}

/// Equal to 1e-9 relative, or within `absolute` (for values that are 0 in exact arithmetic).
fn close(actual: f64, expected: f64, absolute: f64) -> bool {
    if expected.is_nan() || actual.is_nan() {
        return expected.is_nan() && actual.is_nan();
    }
    if expected.is_infinite() {
        return actual == expected;
    }
    (actual - expected).abs() <= RELATIVE * expected.abs() + absolute
}

#[track_caller]
fn assert_close(what: &str, case: &Value, actual: f64, expected: f64, absolute: f64) {
    assert!(
        close(actual, expected, absolute),
        "{what}: {actual:e} != {expected:e} (relative error {:e}) for {case}",
        ((actual - expected) / expected).abs()
    );
}

fn check_interval(name: &str, f: impl Fn(&Value) -> stats::Interval) {
    for case in cases(name) {
        let got = f(&case);
        assert_close(name, &case, got.low, num(&case["low"]), 1e-15);
        assert_close(name, &case, got.high, num(&case["high"]), 1e-15);
    }
}

fn check_test(name: &str, f: impl Fn(&Value) -> stats::TestResult) {
    for case in cases(name) {
        let got = f(&case);
        assert_close(name, &case, got.statistic, num(&case["statistic"]), 1e-12);
        assert_close(name, &case, got.p_value, num(&case["p_value"]), 1e-300);
    }
}

#[test]
fn wilson() {
    check_interval("wilson", |c| {
        stats::wilson(int(&c["k"]), int(&c["n"]), num(&c["confidence"]))
    });
}

#[test]
fn clopper_pearson() {
    check_interval("clopper_pearson", |c| {
        stats::clopper_pearson(int(&c["k"]), int(&c["n"]), num(&c["confidence"]))
    });
}

#[test]
fn newcombe_difference() {
    check_interval("newcombe", |c| {
        stats::newcombe_difference(
            int(&c["k1"]),
            int(&c["n1"]),
            int(&c["k2"]),
            int(&c["n2"]),
            num(&c["confidence"]),
        )
    });
}

#[test]
fn newcombe_paired_difference() {
    check_interval("newcombe_paired", |c| {
        stats::newcombe_paired_difference(
            int(&c["a"]),
            int(&c["b"]),
            int(&c["c"]),
            int(&c["d"]),
            num(&c["confidence"]),
        )
    });
}

#[test]
fn mcnemar_exact() {
    check_test("mcnemar_exact", |c| {
        stats::mcnemar_exact(int(&c["b"]), int(&c["c"]))
    });
}

#[test]
fn mcnemar_midp() {
    check_test("mcnemar_midp", |c| {
        stats::mcnemar_midp(int(&c["b"]), int(&c["c"]))
    });
}

#[test]
fn fisher_exact() {
    check_test("fisher_exact", |c| {
        stats::fisher_exact(int(&c["a"]), int(&c["b"]), int(&c["c"]), int(&c["d"]))
    });
}

fn counts(v: &Value) -> Vec<u64> {
    v.as_array().expect("a list").iter().map(int).collect()
}

#[test]
fn chi_square_independence() {
    check_test("chi_square", |c| {
        stats::chi_square_independence(&counts(&c["successes"]), &counts(&c["totals"]))
    });
}

#[test]
fn cramers_v() {
    for case in cases("chi_square") {
        let got = stats::cramers_v(&counts(&case["successes"]), &counts(&case["totals"]));
        assert_close("cramers_v", &case, got, num(&case["cramers_v"]), 1e-12);
    }
}

#[test]
fn cohens_h() {
    for case in cases("cohens_h") {
        let got = stats::cohens_h(num(&case["p1"]), num(&case["p2"]));
        assert_close("cohens_h", &case, got, num(&case["h"]), 1e-15);
    }
}

#[test]
fn binomial_test() {
    check_test("binomial_test", |c| {
        stats::binomial_test(int(&c["k"]), int(&c["n"]), num(&c["p0"]))
    });
}

#[test]
fn wilcoxon_signed_rank() {
    check_test("wilcoxon", |c| {
        let method = match c["method"].as_str() {
            Some("exact") => WilcoxonMethod::Exact,
            Some("asymptotic") => WilcoxonMethod::Asymptotic,
            _ => WilcoxonMethod::Auto,
        };
        let config = WilcoxonConfig {
            method,
            continuity_correction: c["correction"].as_bool() == Some(true),
        };
        stats::wilcoxon_signed_rank(&floats(&c["d"]), config)
    });
}

#[test]
fn sign_test() {
    check_test("sign_test", |c| stats::sign_test(&floats(&c["d"])));
}

#[test]
fn mann_whitney_u() {
    check_test("mann_whitney", |c| {
        let method = match c["method"].as_str() {
            Some("exact") => MannWhitneyMethod::Exact,
            Some("asymptotic") => MannWhitneyMethod::Asymptotic,
            _ => MannWhitneyMethod::Auto,
        };
        stats::mann_whitney_u(&floats(&c["x"]), &floats(&c["y"]), method)
    });
}

#[test]
fn welch_t_test() {
    check_test("welch", |c| {
        stats::welch_t_test(&floats(&c["x"]), &floats(&c["y"]))
    });
}

#[test]
fn cohens_d() {
    for case in cases("cohens_d") {
        let got = stats::cohens_d(&floats(&case["x"]), &floats(&case["y"]));
        assert_close("cohens_d", &case, got, num(&case["d"]), 1e-14);
    }
}

#[test]
fn rank_biserial() {
    for case in cases("rank_biserial") {
        let got = stats::rank_biserial(&floats(&case["x"]), &floats(&case["y"]));
        assert_close("rank_biserial", &case, got, num(&case["r"]), 1e-14);
    }
}

fn check_adjusted(name: &str, f: impl Fn(&[f64]) -> Vec<f64>) {
    for case in cases("multiplicity") {
        let got = f(&floats(&case["p"]));
        let expected = floats(&case[name]);
        assert_eq!(got.len(), expected.len(), "{name}: length for {case}");
        for (g, e) in got.iter().zip(&expected) {
            assert_close(name, &case, *g, *e, 1e-300);
        }
    }
}

#[test]
fn holm() {
    check_adjusted("holm", stats::holm);
}

#[test]
fn benjamini_hochberg() {
    check_adjusted("bh", stats::benjamini_hochberg);
}

#[test]
fn min_detectable_difference() {
    for case in cases("power_independent") {
        let (n, alpha, power) = (int(&case["n"]), num(&case["alpha"]), num(&case["power"]));
        let h = stats::detectable_cohens_h(n, alpha, power);
        assert_close("detectable h", &case, h, num(&case["h"]), 1e-12);
        let got = stats::min_detectable_difference(n, alpha, power, num(&case["baseline"]));
        assert_close("mdd", &case, got, num(&case["difference"]), 1e-12);
    }
}

#[test]
fn min_detectable_paired_difference() {
    for case in cases("power_paired") {
        let got = stats::min_detectable_paired_difference(
            int(&case["n"]),
            num(&case["alpha"]),
            num(&case["power"]),
            num(&case["discordance"]),
        );
        assert_close("paired mdd", &case, got, num(&case["difference"]), 1e-12);
    }
}

#[test]
fn distribution_tails() {
    let all = reference();
    for case in all["chi_square_sf"].as_array().expect("a list") {
        let got = distributions::chi_square_sf(num(&case["x"]), num(&case["df"]));
        assert_close("chi2 sf", case, got, num(&case["sf"]), 1e-300);
    }
    for case in all["student_t_sf"].as_array().expect("a list") {
        let got = distributions::student_t_sf(num(&case["x"]), num(&case["df"]));
        assert_close("t sf", case, got, num(&case["sf"]), 1e-300);
    }
}

#[test]
fn fixture_records_library_versions() {
    let all = reference();
    for library in ["scipy", "statsmodels", "numpy"] {
        assert!(
            all["versions"][library].is_string(),
            "{library} version missing"
        );
    }
}
