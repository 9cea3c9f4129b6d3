//! Property tests (seeded loops, no extra crates) and documented edge cases: adjusted p-values
//! are ordered and monotone, intervals contain their point estimate, degenerate input returns
//! the documented values instead of panicking, and published worked examples are reproduced.

use audit_core::stats::{
    self, BootstrapConfig, Interval, JudgeCounts, MannWhitneyMethod, PermutationConfig,
    WilcoxonConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn contains(interval: Interval, value: f64) -> bool {
    interval.low <= value + 1e-12 && value <= interval.high + 1e-12
}

#[test]
fn holm_is_at_least_bh_which_is_at_least_raw() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..500 {
        let m = rng.gen_range(0..60);
        let power = [1.0, 2.0, 5.0][rng.gen_range(0..3)];
        let mut p: Vec<f64> = (0..m).map(|_| rng.gen::<f64>().powf(power)).collect();
        if m > 2 && rng.gen_bool(0.3) {
            p[1] = p[0];
        }
        if m > 3 && rng.gen_bool(0.3) {
            p[2] = f64::NAN;
        }
        let holm = stats::holm(&p);
        let bh = stats::benjamini_hochberg(&p);
        assert_eq!(holm.len(), p.len());
        for i in 0..p.len() {
            if p[i].is_nan() {
                assert!(holm[i].is_nan() && bh[i].is_nan());
                continue;
            }
            assert!((0.0..=1.0).contains(&holm[i]) && (0.0..=1.0).contains(&bh[i]));
            assert!(holm[i] >= bh[i] - 1e-15, "holm {} < bh {}", holm[i], bh[i]);
            assert!(bh[i] >= p[i] - 1e-15, "bh {} < raw {}", bh[i], p[i]);
            for j in 0..p.len() {
                if !p[j].is_nan() && p[i] <= p[j] {
                    assert!(holm[i] <= holm[j] && bh[i] <= bh[j], "not monotone");
                }
            }
        }
    }
}

#[test]
fn nan_p_values_are_not_counted() {
    let with_nan = stats::holm(&[0.01, f64::NAN, 0.02]);
    let without = stats::holm(&[0.01, 0.02]);
    assert_eq!(with_nan[0], without[0]);
    assert_eq!(with_nan[2], without[1]);
    assert!(with_nan[1].is_nan());
    assert!(stats::benjamini_hochberg(&[]).is_empty());
    assert!(stats::holm(&[f64::NAN])[0].is_nan());
}

#[test]
fn intervals_contain_the_point_estimate() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for _ in 0..2000 {
        let n = rng.gen_range(1..2000u64);
        let k = rng.gen_range(0..=n);
        let confidence = [0.8, 0.9, 0.95, 0.99][rng.gen_range(0..4)];
        let p = k as f64 / n as f64;
        for interval in [
            stats::wilson(k, n, confidence),
            stats::clopper_pearson(k, n, confidence),
        ] {
            assert!(contains(interval, p), "{interval:?} misses {p}");
            assert!(interval.low >= 0.0 && interval.high <= 1.0);
        }
        let n2 = rng.gen_range(1..500u64);
        let k2 = rng.gen_range(0..=n2);
        let d = p - k2 as f64 / n2 as f64;
        let newcombe = stats::newcombe_difference(k, n, k2, n2, confidence);
        assert!(contains(newcombe, d), "{newcombe:?} misses {d}");
        let cells: Vec<u64> = (0..4).map(|_| rng.gen_range(0..100u64)).collect();
        let total: u64 = cells.iter().sum();
        if total > 0 {
            let paired = stats::newcombe_paired_difference(
                cells[0], cells[1], cells[2], cells[3], confidence,
            );
            let diff = (cells[1] as f64 - cells[2] as f64) / total as f64;
            assert!(
                contains(paired, diff),
                "{paired:?} misses {diff} for {cells:?}"
            );
            assert!(paired.low >= -1.0 && paired.high <= 1.0);
        }
    }
}

#[test]
fn bootstrap_intervals_contain_the_estimate() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for seed in 0..30 {
        let n = rng.gen_range(5..80);
        let data: Vec<f64> = (0..n).map(|_| rng.gen::<f64>().powi(3)).collect();
        let config = BootstrapConfig {
            resamples: 500,
            confidence: 0.95,
            seed,
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let result = stats::bootstrap(&data, mean, &config);
        assert!(contains(result.percentile, result.estimate));
        assert!(contains(result.bca, result.estimate));
    }
}

#[test]
fn newcombe_paired_reproduces_published_examples() {
    // Fagerland, Lydersen and Laake (2017), chapter 8: Bentur et al. (2009) and Cavo et al.
    // (2012), Newcombe square-and-add intervals (-0.507, -0.026) and (-0.119, -0.005).
    let bentur = stats::newcombe_paired_difference(1, 1, 7, 12, 0.95);
    assert!((bentur.low + 0.507).abs() < 5e-4 && (bentur.high + 0.026).abs() < 5e-4);
    let cavo = stats::newcombe_paired_difference(59, 6, 16, 80, 0.95);
    assert!((cavo.low + 0.119).abs() < 5e-4 && (cavo.high + 0.005).abs() < 5e-4);
}

#[test]
fn degenerate_inputs_return_documented_values() {
    let full = Interval {
        low: 0.0,
        high: 1.0,
    };
    assert_eq!(stats::wilson(0, 0, 0.95), full);
    assert_eq!(stats::clopper_pearson(0, 0, 0.95), full);
    assert_eq!(
        stats::newcombe_difference(0, 0, 3, 5, 0.95),
        Interval {
            low: -1.0,
            high: 1.0
        }
    );
    assert_eq!(
        stats::newcombe_paired_difference(0, 0, 0, 0, 0.95),
        Interval {
            low: -1.0,
            high: 1.0
        }
    );
    assert!(stats::wilson(3, 10, f64::NAN).low.is_nan());
    assert!(stats::wilson(3, 10, 1.0).low.is_nan());
    assert_eq!(stats::wilson(12, 10, 0.95), stats::wilson(10, 10, 0.95));
    assert_eq!(stats::mcnemar_exact(0, 0).p_value, 1.0);
    assert_eq!(stats::mcnemar_midp(0, 0).p_value, 1.0);
    assert_eq!(stats::fisher_exact(0, 0, 3, 4).p_value, 1.0);
    assert_eq!(stats::chi_square_independence(&[], &[]).p_value, 1.0);
    assert_eq!(
        stats::chi_square_independence(&[0, 0], &[5, 5]).p_value,
        1.0
    );
    assert_eq!(stats::cramers_v(&[], &[]), 0.0);
    assert_eq!(stats::binomial_test(0, 0, 0.5).p_value, 1.0);
    assert!(stats::binomial_test(1, 2, f64::NAN).p_value.is_nan());
    assert!(stats::cohens_h(1.5, 0.2).is_nan());

    let nan_only = [f64::NAN];
    let wilcoxon = WilcoxonConfig::default();
    assert!(stats::wilcoxon_signed_rank(&nan_only, wilcoxon)
        .p_value
        .is_nan());
    assert_eq!(stats::wilcoxon_signed_rank(&[], wilcoxon).p_value, 1.0);
    assert_eq!(
        stats::wilcoxon_signed_rank(&[0.0, 0.0], wilcoxon).p_value,
        1.0
    );
    assert_eq!(stats::sign_test(&[]).p_value, 1.0);
    let permutation = PermutationConfig::default();
    assert!(stats::paired_permutation(&[], permutation).p_value.is_nan());
    assert_eq!(
        stats::paired_permutation(&[0.0; 5], permutation).p_value,
        1.0
    );
    assert!(stats::mann_whitney_u(&[], &[1.0], MannWhitneyMethod::Auto)
        .p_value
        .is_nan());
    assert_eq!(
        stats::mann_whitney_u(&[2.0; 10], &[2.0; 12], MannWhitneyMethod::Auto).p_value,
        1.0
    );
    assert!(stats::welch_t_test(&[1.0], &[1.0, 2.0]).p_value.is_nan());
    assert!(stats::welch_t_test(&[1.0, 1.0], &[2.0, 2.0])
        .p_value
        .is_nan());
    assert!(stats::cohens_d(&[1.0, 1.0], &[1.0, 1.0]).is_nan());
    assert!(stats::rank_biserial(&[], &[1.0]).is_nan());
    assert!(stats::permutation_two_sample(&[], &[1.0], permutation)
        .p_value
        .is_nan());

    let config = BootstrapConfig::default();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(stats::bootstrap(&[] as &[f64], mean, &config)
        .percentile
        .low
        .is_nan());
    assert!(stats::cluster_bootstrap(&[1.0, 2.0], &[1], mean, &config)
        .bca
        .low
        .is_nan());
    assert!(stats::bootstrap_binary_mean(0, 0, &config)
        .estimate
        .is_nan());
    let constant = stats::bootstrap(&[3.0; 20], mean, &config);
    assert_eq!(
        (constant.percentile.low, constant.percentile.high),
        (3.0, 3.0)
    );
    assert_eq!((constant.bca.low, constant.bca.high), (3.0, 3.0));
    // A single observation or a single cluster: no jackknife, zero-width interval.
    let strict_mean = |v: &[f64]| {
        assert!(
            !v.is_empty(),
            "the statistic is never called on an empty slice"
        );
        v.iter().sum::<f64>() / v.len() as f64
    };
    let single = stats::bootstrap(&[5.0], strict_mean, &config);
    assert_eq!((single.bca.low, single.bca.high), (5.0, 5.0));
    let one_cluster = stats::cluster_bootstrap(&[1.0, 2.0], &["a", "a"], strict_mean, &config);
    assert_eq!((one_cluster.bca.low, one_cluster.bca.high), (1.5, 1.5));
    let all_ones = stats::bootstrap_binary_mean(50, 50, &config);
    assert_eq!((all_ones.bca.low, all_ones.bca.high), (1.0, 1.0));

    assert!(stats::rogan_gladen(0.3, 0.4, 0.5).is_nan());
    assert_eq!(stats::rogan_gladen(0.01, 0.9, 0.95), 0.0);
    assert_eq!(stats::rogan_gladen(0.99, 0.9, 0.95), 1.0);
    let empty = JudgeCounts {
        flagged: 0,
        attempts: 0,
        true_positives: 1,
        positives: 1,
        true_negatives: 1,
        negatives: 1,
    };
    assert!(stats::rogan_gladen_interval(&empty, &config)
        .interval
        .low
        .is_nan());

    assert!(stats::min_detectable_difference(0, 0.05, 0.8, 0.5).is_nan());
    assert!(stats::min_detectable_paired_difference(100, 0.05, 0.8, 0.0).is_nan());
    assert!(stats::underpowered(0, 0.05, 0.8, 0.5, 0.1));
}

#[test]
fn rogan_gladen_matches_its_formula_and_is_perfect_for_a_perfect_judge() {
    assert!((stats::rogan_gladen(0.37, 1.0, 1.0) - 0.37).abs() < 1e-15);
    let expected = (0.25 + 0.9 - 1.0) / (0.85 + 0.9 - 1.0);
    assert!((stats::rogan_gladen(0.25, 0.85, 0.9) - expected).abs() < 1e-15);
    let counts = JudgeCounts {
        flagged: 200,
        attempts: 800,
        true_positives: 170,
        positives: 200,
        true_negatives: 270,
        negatives: 300,
    };
    let result = stats::rogan_gladen_interval(&counts, &BootstrapConfig::default());
    assert!((result.corrected_rate - expected).abs() < 1e-12);
    assert!(contains(result.interval, result.corrected_rate));
    // The judge's uncertainty widens the interval beyond the audit's own Wilson interval.
    let wilson = stats::wilson(200, 800, 0.95);
    let rescaled = (wilson.high - wilson.low) / (0.85 + 0.9 - 1.0);
    assert!(result.interval.high - result.interval.low > rescaled);
}

#[test]
fn power_is_monotone_and_underpowered_warns() {
    let mut previous = f64::INFINITY;
    for n in [10u64, 50, 100, 500, 1000, 10_000] {
        let mdd = stats::min_detectable_difference(n, 0.05, 0.8, 0.3);
        assert!(mdd < previous && mdd > 0.0);
        previous = mdd;
    }
    // Textbook value: 0.5 vs 0.6 needs about 385 per group at 80% power (arcsine method).
    let at_388 = stats::min_detectable_difference(388, 0.05, 0.8, 0.5);
    assert!((at_388 - 0.1).abs() < 0.002, "{at_388}");
    assert!(stats::underpowered(100, 0.05, 0.8, 0.5, 0.1));
    assert!(!stats::underpowered(1000, 0.05, 0.8, 0.5, 0.1));
    let paired_small = stats::min_detectable_paired_difference(50, 0.05, 0.8, 0.2);
    let paired_large = stats::min_detectable_paired_difference(5000, 0.05, 0.8, 0.2);
    assert!(paired_large < paired_small && paired_small <= 0.2);
}

#[test]
fn exact_tests_agree_with_their_definitions_on_small_tables() {
    // McNemar exact equals the two-sided binomial test of min(b, c) out of b + c at ½.
    for b in 0..15u64 {
        for c in 0..15u64 {
            let mcnemar = stats::mcnemar_exact(b, c);
            if b + c > 0 {
                let binomial = stats::binomial_test(b.min(c), b + c, 0.5);
                assert!((mcnemar.p_value - binomial.p_value).abs() < 1e-12);
            }
            assert!(stats::mcnemar_midp(b, c).p_value <= mcnemar.p_value + 1e-15);
        }
    }
}

#[test]
fn exact_rank_tests_handle_lopsided_and_large_samples() {
    // One observation against many: the exact U distribution is uniform on 0..=n₂.
    let x = [0.5];
    let y: Vec<f64> = (0..300).map(f64::from).collect();
    let result = stats::mann_whitney_u(&x, &y, MannWhitneyMethod::Exact);
    assert_eq!(result.statistic, 1.0);
    assert!((result.p_value - 2.0 * 2.0 / 301.0).abs() < 1e-12);
    // Above the exact limits the normal approximation answers at once.
    let big: Vec<f64> = (0..3000).map(|i| f64::from(i) - 1400.5).collect();
    let exact = WilcoxonConfig {
        method: stats::WilcoxonMethod::Exact,
        continuity_correction: false,
    };
    let asymptotic = WilcoxonConfig {
        method: stats::WilcoxonMethod::Asymptotic,
        continuity_correction: false,
    };
    assert_eq!(
        stats::wilcoxon_signed_rank(&big, exact),
        stats::wilcoxon_signed_rank(&big, asymptotic)
    );
}
