//! Simulation tests, seeded: under the null every test rejects at alpha = 0.05 at a rate in
//! 0.035–0.065 over at least 2000 data sets (exact tests, conservative by construction, are
//! only bounded above); interval coverage is within 1.5 points of nominal; Benjamini–Hochberg
//! keeps the false discovery rate at or below alpha.

use audit_core::stats::{
    self, distributions, BootstrapConfig, Interval, MannWhitneyMethod, PermutationConfig,
    TestResult, WilcoxonConfig, WilcoxonMethod,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ALPHA: f64 = 0.05;
const DATA_SETS: usize = 2000;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A standard normal draw by the Box–Muller transform.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn normals(rng: &mut ChaCha8Rng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    (0..n).map(|_| mean + sd * normal(rng)).collect()
}

fn binomial(rng: &mut ChaCha8Rng, n: u64, p: f64) -> u64 {
    (0..n).filter(|_| rng.gen::<f64>() < p).count() as u64
}

/// Rejection rate at ALPHA over DATA_SETS data sets drawn by `test`.
fn rejection_rate(seed: u64, mut test: impl FnMut(&mut ChaCha8Rng) -> TestResult) -> f64 {
    let mut rng = rng(seed);
    let rejected = (0..DATA_SETS)
        .filter(|_| test(&mut rng).p_value <= ALPHA)
        .count();
    rejected as f64 / DATA_SETS as f64
}

#[track_caller]
fn assert_nominal(name: &str, rate: f64) {
    assert!(
        (0.035..=0.065).contains(&rate),
        "{name}: rejection rate {rate} under the null"
    );
}

#[track_caller]
fn assert_conservative(name: &str, rate: f64) {
    assert!(
        rate <= 0.065,
        "{name}: rejection rate {rate} under the null"
    );
}

#[test]
fn proportion_tests_under_the_null() {
    let chi = rejection_rate(1, |r| {
        let successes: Vec<u64> = (0..3).map(|_| binomial(r, 150, 0.3)).collect();
        stats::chi_square_independence(&successes, &[150, 150, 150])
    });
    assert_nominal("chi-square 3 × 2", chi);
    let fisher = rejection_rate(2, |r| {
        let (a, c) = (binomial(r, 40, 0.3), binomial(r, 40, 0.3));
        stats::fisher_exact(a, 40 - a, c, 40 - c)
    });
    assert_conservative("Fisher exact", fisher);
    let binomial_exact = rejection_rate(3, |r| stats::binomial_test(binomial(r, 60, 0.5), 60, 0.5));
    assert_conservative("binomial exact", binomial_exact);
}

/// Discordant counts of `pairs` pairs whose two outcomes are independent Bernoulli(0.4) draws.
fn discordant(r: &mut ChaCha8Rng, pairs: usize) -> (u64, u64) {
    let (mut b, mut c) = (0, 0);
    for _ in 0..pairs {
        let first = r.gen::<f64>() < 0.4;
        let second = r.gen::<f64>() < 0.4;
        b += u64::from(first && !second);
        c += u64::from(second && !first);
    }
    (b, c)
}

#[test]
fn paired_tests_under_the_null() {
    let exact = rejection_rate(4, |r| {
        let (b, c) = discordant(r, 80);
        stats::mcnemar_exact(b, c)
    });
    assert_conservative("McNemar exact", exact);
    let midp = rejection_rate(4, |r| {
        let (b, c) = discordant(r, 80);
        stats::mcnemar_midp(b, c)
    });
    assert_nominal("McNemar mid-p", midp);
    let asymptotic = WilcoxonConfig {
        method: WilcoxonMethod::Asymptotic,
        continuity_correction: true,
    };
    let wilcoxon = rejection_rate(5, |r| {
        stats::wilcoxon_signed_rank(&normals(r, 30, 0.0, 1.0), asymptotic)
    });
    assert_nominal("Wilcoxon asymptotic", wilcoxon);
    let exact_config = WilcoxonConfig {
        method: WilcoxonMethod::Exact,
        continuity_correction: false,
    };
    let wilcoxon_exact = rejection_rate(6, |r| {
        stats::wilcoxon_signed_rank(&normals(r, 12, 0.0, 1.0), exact_config)
    });
    assert_conservative("Wilcoxon exact", wilcoxon_exact);
    let sign = rejection_rate(7, |r| stats::sign_test(&normals(r, 25, 0.0, 1.0)));
    assert_conservative("sign test", sign);
    let mut index = 0u64;
    let permutation = rejection_rate(8, |r| {
        index += 1;
        let config = PermutationConfig {
            resamples: 400,
            seed: index,
        };
        stats::paired_permutation(&normals(r, 20, 0.0, 1.0), config)
    });
    assert_nominal("paired permutation", permutation);
}

#[test]
fn two_sample_tests_under_the_null() {
    let mann_whitney = rejection_rate(9, |r| {
        let (x, y) = (normals(r, 20, 0.0, 1.0), normals(r, 25, 0.0, 1.0));
        stats::mann_whitney_u(&x, &y, MannWhitneyMethod::Asymptotic)
    });
    assert_nominal("Mann–Whitney asymptotic", mann_whitney);
    let mann_whitney_exact = rejection_rate(10, |r| {
        let (x, y) = (normals(r, 6, 0.0, 1.0), normals(r, 7, 0.0, 1.0));
        stats::mann_whitney_u(&x, &y, MannWhitneyMethod::Exact)
    });
    assert_conservative("Mann–Whitney exact", mann_whitney_exact);
    let welch = rejection_rate(11, |r| {
        let (x, y) = (normals(r, 12, 0.0, 1.0), normals(r, 30, 0.0, 3.0));
        stats::welch_t_test(&x, &y)
    });
    assert_nominal("Welch t", welch);
    let mut index = 0u64;
    let permutation = rejection_rate(12, |r| {
        index += 1;
        let (x, y) = (normals(r, 15, 0.0, 1.0), normals(r, 20, 0.0, 1.0));
        let config = PermutationConfig {
            resamples: 400,
            seed: index,
        };
        stats::permutation_two_sample(&x, &y, config)
    });
    assert_nominal("two-sample permutation", permutation);
}

/// Exact coverage of a binomial interval: `Σₖ P(X = k) [p ∈ interval(k)]`.
fn exact_coverage(n: u64, p: f64, interval: impl Fn(u64) -> Interval) -> f64 {
    (0..=n)
        .map(|k| {
            let i = interval(k);
            if i.low <= p && p <= i.high {
                distributions::binomial_pmf(k, n, p)
            } else {
                0.0
            }
        })
        .sum()
}

#[test]
fn wilson_coverage_is_near_nominal() {
    // Coverage computed exactly (summing binomial probabilities), averaged over a grid of true
    // proportions as the coverage of a discrete interval oscillates with p.
    for n in [50u64, 200, 1000] {
        let grid: Vec<f64> = (1..=19).map(|i| f64::from(i) * 0.05).collect();
        let mean_coverage = grid
            .iter()
            .map(|&p| exact_coverage(n, p, |k| stats::wilson(k, n, 0.95)))
            .sum::<f64>()
            / grid.len() as f64;
        assert!(
            (mean_coverage - 0.95).abs() <= 0.015,
            "Wilson n = {n}: coverage {mean_coverage}"
        );
        let cp = grid
            .iter()
            .map(|&p| exact_coverage(n, p, |k| stats::clopper_pearson(k, n, 0.95)))
            .fold(1.0_f64, f64::min);
        assert!(
            cp >= 0.95 - 1e-9,
            "Clopper–Pearson n = {n}: minimum coverage {cp}"
        );
    }
}

#[test]
fn newcombe_coverage_is_near_nominal() {
    for (n1, n2) in [(60u64, 80u64), (200, 150)] {
        let mut total = 0.0;
        let mut cells = 0.0;
        for &(p1, p2) in &[(0.3, 0.3), (0.5, 0.4), (0.2, 0.35), (0.7, 0.6), (0.45, 0.5)] {
            let pmf1: Vec<f64> = (0..=n1)
                .map(|k| distributions::binomial_pmf(k, n1, p1))
                .collect();
            let pmf2: Vec<f64> = (0..=n2)
                .map(|k| distributions::binomial_pmf(k, n2, p2))
                .collect();
            let mut coverage = 0.0;
            for (k1, w1) in pmf1.iter().enumerate() {
                for (k2, w2) in pmf2.iter().enumerate() {
                    let i = stats::newcombe_difference(k1 as u64, n1, k2 as u64, n2, 0.95);
                    if i.low <= p1 - p2 && p1 - p2 <= i.high {
                        coverage += w1 * w2;
                    }
                }
            }
            total += coverage;
            cells += 1.0;
        }
        let mean_coverage = total / cells;
        assert!(
            (mean_coverage - 0.95).abs() <= 0.015,
            "Newcombe ({n1}, {n2}): coverage {mean_coverage}"
        );
    }
}

#[test]
fn newcombe_paired_coverage_is_near_nominal() {
    // Multinomial pairs: both 0.3, only first 0.15, only second 0.1, neither 0.45.
    let probabilities = [0.3, 0.15, 0.1, 0.45];
    let truth = probabilities[1] - probabilities[2];
    let mut rng = rng(13);
    let covered = (0..DATA_SETS)
        .filter(|_| {
            let mut cells = [0u64; 4];
            for _ in 0..120 {
                let u: f64 = rng.gen();
                let mut cumulative = 0.0;
                let mut cell = 3;
                for (i, p) in probabilities.iter().enumerate() {
                    cumulative += p;
                    if u < cumulative {
                        cell = i;
                        break;
                    }
                }
                cells[cell] += 1;
            }
            let i = stats::newcombe_paired_difference(cells[0], cells[1], cells[2], cells[3], 0.95);
            i.low <= truth && truth <= i.high
        })
        .count();
    let coverage = covered as f64 / DATA_SETS as f64;
    assert!((coverage - 0.95).abs() <= 0.015, "coverage {coverage}");
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn bootstrap_coverage_of_a_mean_is_near_nominal() {
    let mut rng = rng(14);
    let (mut percentile, mut bca) = (0usize, 0usize);
    for index in 0..DATA_SETS {
        let data = normals(&mut rng, 100, 1.0, 2.0);
        let config = BootstrapConfig {
            resamples: 1000,
            confidence: 0.95,
            seed: index as u64,
        };
        let result = stats::bootstrap(&data, mean, &config);
        percentile += usize::from(result.percentile.low <= 1.0 && 1.0 <= result.percentile.high);
        bca += usize::from(result.bca.low <= 1.0 && 1.0 <= result.bca.high);
    }
    for (name, covered) in [("percentile", percentile), ("BCa", bca)] {
        let coverage = covered as f64 / DATA_SETS as f64;
        assert!(
            (coverage - 0.95).abs() <= 0.015,
            "{name}: coverage {coverage}"
        );
    }
}

#[test]
fn benjamini_hochberg_controls_the_false_discovery_rate() {
    let mut rng = rng(15);
    let (m, m_null) = (20, 12);
    let mut fdp_sum = 0.0;
    let mut holm_family_errors = 0usize;
    for _ in 0..DATA_SETS {
        let p: Vec<f64> = (0..m)
            .map(|i| {
                let shift = if i < m_null { 0.0 } else { 2.5 };
                distributions::normal_two_sided(shift + normal(&mut rng))
            })
            .collect();
        let bh = stats::benjamini_hochberg(&p);
        let rejected = bh.iter().filter(|&&q| q <= ALPHA).count();
        let false_rejections = bh[..m_null].iter().filter(|&&q| q <= ALPHA).count();
        if rejected > 0 {
            fdp_sum += false_rejections as f64 / rejected as f64;
        }
        let holm = stats::holm(&p);
        holm_family_errors += usize::from(holm[..m_null].iter().any(|&q| q <= ALPHA));
    }
    let fdr = fdp_sum / DATA_SETS as f64;
    assert!(fdr <= ALPHA, "BH false discovery rate {fdr}");
    let fwer = holm_family_errors as f64 / DATA_SETS as f64;
    assert!(fwer <= 0.065, "Holm family-wise error rate {fwer}");
}

#[test]
fn judge_interval_covers_the_true_prevalence() {
    // True prevalence 0.2, detector sensitivity 0.85 and specificity 0.9: the observed rate is
    // 0.2·0.85 + 0.8·0.1 = 0.25.
    let mut rng = rng(16);
    let sets = 400;
    let covered = (0..sets)
        .filter(|&index| {
            let counts = stats::JudgeCounts {
                flagged: binomial(&mut rng, 800, 0.25),
                attempts: 800,
                true_positives: binomial(&mut rng, 150, 0.85),
                positives: 150,
                true_negatives: binomial(&mut rng, 250, 0.9),
                negatives: 250,
            };
            let config = BootstrapConfig {
                resamples: 500,
                confidence: 0.95,
                seed: index,
            };
            let result = stats::rogan_gladen_interval(&counts, &config);
            result.interval.low <= 0.2 && 0.2 <= result.interval.high
        })
        .count();
    let coverage = covered as f64 / sets as f64;
    // 400 data sets: a Monte-Carlo sd of 1.1 points; allow three.
    assert!((coverage - 0.95).abs() <= 0.035, "coverage {coverage}");
}
