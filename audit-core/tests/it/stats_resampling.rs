//! Resampling references: the bootstrap and the permutation tests against scipy's
//! `bootstrap` and `permutation_test` (recorded in `fixtures/data/stats_reference.json`), within
//! Monte-Carlo error, and their independence from the number of threads, bit for bit.

use audit_core::stats::{self, BootstrapConfig, JudgeCounts, PermutationConfig, WilcoxonConfig};
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/data/stats_reference.json"
    );
    let text = std::fs::read_to_string(path).expect("reading the stats reference fixture");
    serde_json::from_str(&text).expect("parsing the stats reference fixture")
}

fn cases(name: &str) -> Vec<Value> {
    let list = reference()[name].as_array().expect("a list").clone();
    assert!(list.len() >= 30, "{name}: only {} cases", list.len());
    list
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn bootstrap_mean_matches_scipy_within_monte_carlo_error() {
    let config = BootstrapConfig {
        resamples: 20_000,
        confidence: 0.95,
        seed: 11,
    };
    for case in cases("bootstrap_mean") {
        let data = floats(&case["data"]);
        let got = stats::bootstrap(&data, mean, &config);
        let se = num(&case["standard_error"]);
        // An interval end of B = 20,000 resamples has a Monte-Carlo sd near 0.02 se; scipy's
        // (100,000 resamples) less than half of that. Allow about five of them; for 0/1 data the
        // replicates sit on a lattice of step 1/n and an end may land on the neighbouring atom.
        let binary = data.iter().all(|&v| v == 0.0 || v == 1.0);
        let lattice = if binary { 1.0 / data.len() as f64 } else { 0.0 };
        let tolerance = 0.1 * se + lattice;
        for (what, ours, theirs) in [
            (
                "percentile low",
                got.percentile.low,
                num(&case["percentile_low"]),
            ),
            (
                "percentile high",
                got.percentile.high,
                num(&case["percentile_high"]),
            ),
            ("bca low", got.bca.low, num(&case["bca_low"])),
            ("bca high", got.bca.high, num(&case["bca_high"])),
            ("standard error", got.standard_error, se),
        ] {
            assert!(
                (ours - theirs).abs() <= tolerance,
                "{what}: {ours} vs scipy {theirs} (tolerance {tolerance})"
            );
        }
        assert!((got.estimate - mean(&data)).abs() < 1e-12);
    }
}

#[test]
fn paired_permutation_matches_scipy_exactly_when_enumerated() {
    for case in cases("paired_permutation") {
        let d = floats(&case["d"]);
        // 2^n ≤ resamples: every sign pattern is enumerated, as scipy does with n_resamples=inf.
        let got = stats::paired_permutation(
            &d,
            PermutationConfig {
                resamples: 1 << d.len(),
                seed: 3,
            },
        );
        let expected = num(&case["p_value"]);
        assert!((got.statistic - num(&case["statistic"])).abs() < 1e-12);
        assert!(
            (got.p_value - expected).abs() < 1e-12,
            "p {} vs scipy {expected} for {d:?}",
            got.p_value
        );
    }
}

#[test]
fn paired_permutation_sampled_is_close_to_exact() {
    for case in cases("paired_permutation") {
        let d = floats(&case["d"]);
        let resamples = 20_000;
        let got = stats::paired_permutation(&d, PermutationConfig { resamples, seed: 5 });
        let expected = num(&case["p_value"]);
        let sd = (expected * (1.0 - expected) / resamples as f64).sqrt();
        assert!(
            (got.p_value - expected).abs() <= 5.0 * sd + 2.0 / resamples as f64,
            "p {} vs exact {expected}",
            got.p_value
        );
    }
}

#[test]
fn two_sample_permutation_matches_scipy_within_monte_carlo_error() {
    for case in cases("two_sample_permutation") {
        let (x, y) = (floats(&case["x"]), floats(&case["y"]));
        let resamples = 20_000;
        let got = stats::permutation_two_sample(&x, &y, PermutationConfig { resamples, seed: 9 });
        let expected = num(&case["p_value"]);
        let sd = (expected * (1.0 - expected) / resamples as f64).sqrt();
        assert!((got.statistic - num(&case["statistic"])).abs() < 1e-12);
        assert!(
            (got.p_value - expected).abs() <= 5.0 * sd + 2.0 / resamples as f64,
            "p {} vs scipy exact {expected}",
            got.p_value
        );
    }
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("building a thread pool")
        .install(f)
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let data: Vec<f64> = (0..300).map(|i| ((i * 37) % 101) as f64 / 7.0).collect();
    let clusters: Vec<u32> = (0..300).map(|i| i / 7).collect();
    let config = BootstrapConfig {
        resamples: 3_000,
        confidence: 0.9,
        seed: 42,
    };
    let permutation = PermutationConfig {
        resamples: 2_000,
        seed: 42,
    };
    let run = || {
        let plain = stats::bootstrap(&data, mean, &config);
        let clustered = stats::cluster_bootstrap(&data, &clusters, mean, &config);
        let binary = stats::bootstrap_binary_mean(1234, 5000, &config);
        let paired = stats::paired_permutation(&data[..40], permutation);
        let two = stats::permutation_two_sample(&data[..30], &data[30..70], permutation);
        let judge = stats::rogan_gladen_interval(
            &JudgeCounts {
                flagged: 120,
                attempts: 1000,
                true_positives: 90,
                positives: 100,
                true_negatives: 190,
                negatives: 200,
            },
            &config,
        );
        serde_json::to_string(&(plain, clustered, binary, paired, two, judge))
            .expect("serializing results")
    };
    let one = in_pool(1, run);
    let two = in_pool(2, run);
    let three = in_pool(3, run);
    assert_eq!(one, two);
    assert_eq!(one, three);
    // serde_json writes shortest round-trip floats, so equal strings are equal bits; check one
    // value's bits directly as well.
    let a = in_pool(1, || stats::bootstrap(&data, mean, &config));
    let b = in_pool(2, || stats::bootstrap(&data, mean, &config));
    assert_eq!(a.bca.low.to_bits(), b.bca.low.to_bits());
    assert_eq!(a.percentile.high.to_bits(), b.percentile.high.to_bits());
}

#[test]
fn binary_fast_path_agrees_with_the_generic_bootstrap() {
    let (k, n) = (300u64, 1000u64);
    let data: Vec<f64> = (0..n).map(|i| if i < k { 1.0 } else { 0.0 }).collect();
    let config = BootstrapConfig {
        resamples: 20_000,
        confidence: 0.95,
        seed: 1,
    };
    let generic = stats::bootstrap(&data, mean, &config);
    let fast = stats::bootstrap_binary_mean(k, n, &config);
    let se = (0.3f64 * 0.7 / 1000.0).sqrt();
    assert!((generic.estimate - fast.estimate).abs() < 1e-15);
    for (g, f) in [
        (generic.percentile.low, fast.percentile.low),
        (generic.percentile.high, fast.percentile.high),
        (generic.bca.low, fast.bca.low),
        (generic.bca.high, fast.bca.high),
        (generic.standard_error, fast.standard_error),
    ] {
        assert!((g - f).abs() < 0.1 * se, "generic {g} vs fast {f}");
    }
}

#[test]
fn cluster_bootstrap_with_singleton_clusters_matches_the_plain_bootstrap() {
    let data: Vec<f64> = (0..50).map(|i| (i as f64).sqrt()).collect();
    let ids: Vec<usize> = (0..50).collect();
    let config = BootstrapConfig {
        resamples: 2_000,
        confidence: 0.95,
        seed: 4,
    };
    // One observation per cluster draws the same indices from the same streams.
    let plain = stats::bootstrap(&data, mean, &config);
    let clustered = stats::cluster_bootstrap(&data, &ids, mean, &config);
    assert_eq!(plain, clustered);
}

#[test]
fn cluster_bootstrap_widens_the_interval_for_correlated_clusters() {
    // Twenty clusters of ten identical values: the effective sample size is 20, not 200.
    let data: Vec<f64> = (0..200).map(|i| ((i / 10) * 7 % 13) as f64).collect();
    let ids: Vec<usize> = (0..200).map(|i| i / 10).collect();
    let config = BootstrapConfig {
        resamples: 4_000,
        confidence: 0.95,
        seed: 8,
    };
    let plain = stats::bootstrap(&data, mean, &config);
    let clustered = stats::cluster_bootstrap(&data, &ids, mean, &config);
    let ratio = (clustered.percentile.high - clustered.percentile.low)
        / (plain.percentile.high - plain.percentile.low);
    assert!(
        ratio > 2.5 && ratio < 3.8,
        "width ratio {ratio}, expected about √10"
    );
}

#[test]
fn wilcoxon_auto_with_ties_enumerates_like_the_permutation_test() {
    // Ties and a zero, n ≤ 13: scipy's auto uses an exhaustive permutation test; the exact
    // sign-flip distribution of T+ must give the same p-value as enumerating all 2^n patterns.
    let d = [1.0, 1.0, 2.0, -2.0, 0.0, 3.0, 3.0, 3.0, -1.0];
    let got = stats::wilcoxon_signed_rank(&d, WilcoxonConfig::default());
    let nonzero: Vec<f64> = d.iter().copied().filter(|v| *v != 0.0).collect();
    let ranks = [2.0, 2.0, 4.5, 4.5, 7.0, 7.0, 7.0, 2.0];
    let observed: f64 = nonzero
        .iter()
        .zip(&ranks)
        .filter(|(v, _)| **v > 0.0)
        .map(|(_, r)| r)
        .sum();
    let m = nonzero.len();
    let (mut le, mut ge) = (0u32, 0u32);
    for signs in 0u32..(1 << m) {
        let t: f64 = (0..m)
            .filter(|i| signs >> i & 1 == 1)
            .map(|i| ranks[i])
            .sum();
        le += u32::from(t <= observed + 1e-9);
        ge += u32::from(t >= observed - 1e-9);
    }
    let expected = (2.0 * f64::from(le.min(ge)) / f64::from(1u32 << m)).min(1.0);
    assert!((got.p_value - expected).abs() < 1e-12);
}

#[test]
fn grouped_jackknife_with_one_observation_per_group_is_the_plain_bootstrap() {
    let data: Vec<f64> = (0..120).map(|i| ((i * 13) % 29) as f64).collect();
    let config = BootstrapConfig {
        resamples: 1_000,
        confidence: 0.95,
        seed: 21,
    };
    let plain = stats::bootstrap(&data, mean, &config);
    assert_eq!(
        plain,
        stats::bootstrap_grouped_jackknife(&data, mean, 120, &config)
    );
    // Twenty groups estimate the same acceleration: BCa ends within a tenth of a standard error.
    let grouped = stats::bootstrap_grouped_jackknife(&data, mean, 20, &config);
    assert_eq!(plain.percentile, grouped.percentile);
    assert!((plain.bca.low - grouped.bca.low).abs() < 0.1 * plain.standard_error);
    assert!((plain.bca.high - grouped.bca.high).abs() < 0.1 * plain.standard_error);
}
