//! Paired designs: exact and mid-p McNemar tests, the sign test, the Wilcoxon signed-rank test
//! and the seeded paired permutation (sign-flip) test.

use rand::RngCore;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bootstrap::{bootstrap, BootstrapConfig};
use super::distributions::{binomial_cdf, binomial_pmf, normal_two_sided};
use super::proportion::binomial_test;
use super::proportion::newcombe_paired_difference;
use super::ranks::{average_ranks, tie_term};
use super::resampling::stream;
use super::TestResult;

/// Exact McNemar test on the discordant pairs `b = only_first`, `c = only_second` (as statsmodels
/// `mcnemar(exact = True)`): `statistic = min(b, c)`, `p = min(1, 2 P(Bin(b + c, ½) ≤ min(b, c)))`.
///
/// Edge cases: `b + c == 0` gives `p = 1`. Conservative: its rejection rate under the null is at
/// most alpha, often well below it for few discordant pairs.
pub fn mcnemar_exact(only_first: u64, only_second: u64) -> TestResult {
    let n = only_first.saturating_add(only_second);
    let k = only_first.min(only_second);
    let p_value = if n == 0 {
        1.0
    } else {
        (2.0 * binomial_cdf(k, n, 0.5)).min(1.0)
    };
    TestResult {
        statistic: k as f64,
        p_value,
    }
}

/// Mid-p McNemar test (Fagerland, Lydersen and Laake 2013): the exact two-sided p-value minus
/// the probability of the observed count, `p = 2 P(X ≤ k) − P(X = k)` with
/// `X ~ Bin(b + c, ½)`, `k = min(b, c)`, capped at 1. Not guaranteed conservative but close
/// to nominal. Edge cases: `b + c == 0` gives `p = 1`.
pub fn mcnemar_midp(only_first: u64, only_second: u64) -> TestResult {
    let n = only_first.saturating_add(only_second);
    let k = only_first.min(only_second);
    let p_value = if n == 0 {
        1.0
    } else {
        (2.0 * binomial_cdf(k, n, 0.5) - binomial_pmf(k, n, 0.5)).min(1.0)
    };
    TestResult {
        statistic: k as f64,
        p_value,
    }
}

/// How [`wilcoxon_signed_rank`] computes its p-value (scipy's `method`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WilcoxonMethod {
    /// scipy's `"auto"`: exact null distribution when at most 50 differences and no ties or
    /// zeros; exact sign-flip enumeration (scipy's permutation test, which enumerates all
    /// `2ⁿ` flips for n ≤ 13) when ties or zeros and at most 13 differences; otherwise normal.
    Auto,
    /// The exact null distribution of `T⁺` for `n` untied non-zero differences; with ties the
    /// statistic is rounded conservatively as scipy does. Above [`EXACT_WILCOXON_LIMIT`]
    /// differences the normal approximation is used instead.
    Exact,
    /// Normal approximation with tie correction.
    Asymptotic,
}

/// Options of [`wilcoxon_signed_rank`]; zeros are always dropped (scipy's `zero_method =
/// "wilcox"`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WilcoxonConfig {
    /// Exact or normal-approximation p-value.
    pub method: WilcoxonMethod,
    /// Continuity correction of the normal approximation (scipy's `correction`).
    pub continuity_correction: bool,
}

impl Default for WilcoxonConfig {
    fn default() -> Self {
        Self {
            method: WilcoxonMethod::Auto,
            continuity_correction: false,
        }
    }
}

/// Wilcoxon signed-rank test of the paired differences `d` against 0, two-sided, as
/// `scipy.stats.wilcoxon(d, zero_method = "wilcox", correction, method)`. Zeros are dropped;
/// `|d|` is ranked with average ranks; `T⁺` is the sum of ranks of positive differences and the
/// statistic is `min(T⁺, T⁻)`. The normal approximation uses `μ = n(n + 1)/4` and
/// `σ² = (n(n + 1)(2n + 1) − Σ(t³ − t)/2)/24`, `z = (T⁺ − μ ∓ ½)/σ` with the continuity
/// correction. The exact p-value is `2 min(P(T ≥ ⌊T⁺⌋), P(T ≤ ⌈T⁺⌉))`, capped at 1.
///
/// Edge cases: a NaN difference gives NaN statistic and p (scipy's `nan_policy = "propagate"`);
/// an empty slice or only zeros gives `statistic = 0, p = 1`. The exact variants are discrete and
/// conservative.
pub fn wilcoxon_signed_rank(differences: &[f64], config: WilcoxonConfig) -> TestResult {
    if differences.iter().any(|d| d.is_nan()) {
        return TestResult {
            statistic: f64::NAN,
            p_value: f64::NAN,
        };
    }
    let n_total = differences.len();
    let nonzero: Vec<f64> = differences.iter().copied().filter(|&d| d != 0.0).collect();
    let n = nonzero.len();
    if n == 0 {
        return TestResult {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    let magnitudes: Vec<f64> = nonzero.iter().map(|d| d.abs()).collect();
    let (ranks, ties) = average_ranks(&magnitudes);
    let r_plus: f64 = nonzero
        .iter()
        .zip(&ranks)
        .filter(|(d, _)| **d > 0.0)
        .map(|(_, r)| r)
        .sum();
    let total = (n * (n + 1)) as f64 / 2.0;
    let r_minus = total - r_plus;
    let statistic = r_plus.min(r_minus);
    let has_ties = ties.iter().any(|&t| t > 1);
    let has_zeros = n < n_total;
    let method = match config.method {
        WilcoxonMethod::Auto if n_total > 50 => WilcoxonMethod::Asymptotic,
        WilcoxonMethod::Auto if !has_ties && !has_zeros => WilcoxonMethod::Exact,
        WilcoxonMethod::Auto if n_total <= 13 => {
            return TestResult {
                statistic,
                p_value: sign_flip_exact_p(&ranks, r_plus),
            };
        }
        WilcoxonMethod::Auto => WilcoxonMethod::Asymptotic,
        // The exact distribution costs O(n³) time; beyond this size the normal approximation
        // is used (its error is far below any decision threshold there).
        WilcoxonMethod::Exact if n > EXACT_WILCOXON_LIMIT => WilcoxonMethod::Asymptotic,
        other => other,
    };
    let p_value = match method {
        WilcoxonMethod::Exact => {
            let pmf = signed_rank_pmf(n);
            let floor = r_plus.floor() as usize;
            let ceil = (r_plus.ceil() as usize).min(pmf.len() - 1);
            let sf: f64 = pmf[floor.min(pmf.len())..].iter().sum();
            let cdf: f64 = pmf[..=ceil].iter().sum();
            (2.0 * sf.min(cdf)).clamp(0.0, 1.0)
        }
        _ => {
            let nf = n as f64;
            let mean = nf * (nf + 1.0) / 4.0;
            let se = ((nf * (nf + 1.0) * (2.0 * nf + 1.0) - tie_term(&ties) / 2.0) / 24.0).sqrt();
            if se <= 0.0 {
                1.0
            } else {
                let mut z = (r_plus - mean) / se;
                if config.continuity_correction {
                    z -= z.signum() * 0.5 / se;
                }
                normal_two_sided(z)
            }
        }
    };
    TestResult { statistic, p_value }
}

/// Largest number of non-zero differences for which [`WilcoxonMethod::Exact`] computes the exact
/// null distribution.
pub const EXACT_WILCOXON_LIMIT: usize = 1000;

/// Null distribution of the signed-rank sum `T⁺` for `n` untied ranks: `P(T⁺ = s)` for
/// `s = 0 ..= n(n + 1)/2`, by the subset-sum recursion in probabilities.
fn signed_rank_pmf(n: usize) -> Vec<f64> {
    let max = n * (n + 1) / 2;
    let mut pmf = vec![0.0; max + 1];
    pmf[0] = 1.0;
    let mut reach = 0;
    for rank in 1..=n {
        reach += rank;
        for s in (0..=reach).rev() {
            let with = if s >= rank { pmf[s - rank] } else { 0.0 };
            pmf[s] = 0.5 * (pmf[s] + with);
        }
    }
    pmf
}

/// Exact two-sided sign-flip p-value of `T⁺` with tied (average) ranks: enumerates the
/// distribution of the sum of doubled ranks (integers) over all `2ⁿ` sign patterns by dynamic
/// programming; `p = min(1, 2 min(P(T ≤ t), P(T ≥ t)))` as scipy's permutation test.
fn sign_flip_exact_p(ranks: &[f64], r_plus: f64) -> f64 {
    let doubled: Vec<usize> = ranks.iter().map(|r| (2.0 * r).round() as usize).collect();
    let max: usize = doubled.iter().sum();
    let mut pmf = vec![0.0; max + 1];
    pmf[0] = 1.0;
    let mut reach = 0;
    for &r in &doubled {
        reach += r;
        for s in (0..=reach).rev() {
            let with = if s >= r { pmf[s - r] } else { 0.0 };
            pmf[s] = 0.5 * (pmf[s] + with);
        }
    }
    let observed = (2.0 * r_plus).round() as usize;
    let observed = observed.min(max);
    let le: f64 = pmf[..=observed].iter().sum();
    let ge: f64 = pmf[observed..].iter().sum();
    (2.0 * le.min(ge)).min(1.0)
}

/// Sign test of the paired differences against 0 (as statsmodels `sign_test(d, mu0 = 0)`):
/// zeros dropped, `statistic = (n₊ − n₋)/2`, p from the two-sided exact binomial test of
/// `min(n₊, n₋)` out of `n₊ + n₋` at ½ (scipy `binomtest`).
///
/// Edge cases: NaN differences are ignored; no non-zero difference gives `statistic = 0, p = 1`.
/// Conservative (discrete).
pub fn sign_test(differences: &[f64]) -> TestResult {
    let positive = differences.iter().filter(|&&d| d > 0.0).count() as u64;
    let negative = differences.iter().filter(|&&d| d < 0.0).count() as u64;
    let statistic = (positive as f64 - negative as f64) / 2.0;
    if positive + negative == 0 {
        return TestResult {
            statistic,
            p_value: 1.0,
        };
    }
    TestResult {
        statistic,
        p_value: binomial_test(positive.min(negative), positive + negative, 0.5).p_value,
    }
}

/// Options of the seeded permutation tests.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermutationConfig {
    /// Number of random permutations; when the complete enumeration is no larger, it is used.
    pub resamples: usize,
    /// The seed of the permutations.
    pub seed: u64,
}

impl Default for PermutationConfig {
    fn default() -> Self {
        Self {
            resamples: 10_000,
            seed: 0,
        }
    }
}

/// Paired permutation (sign-flip) test of the mean difference against 0, two-sided. The
/// statistic is the mean of `d`. Each resample flips the sign of every difference with
/// probability ½ from its own ChaCha8 stream `(seed, index)`; the p-value counts resamples with
/// `|mean*| ≥ |mean|` (relative tolerance 1e-12): `p = (1 + count)/(1 + R)` (Phipson and Smyth
/// 2010), so it is never 0. When `2ⁿ ≤ R` all sign patterns are enumerated and `p = count/2ⁿ`.
///
/// Edge cases: empty input or a NaN difference gives NaN statistic and p; all-zero
/// differences give `p = 1`. Randomised p-values of this form are valid (conservative by at most
/// `1/(R + 1)`).
pub fn paired_permutation(differences: &[f64], config: PermutationConfig) -> TestResult {
    let n = differences.len();
    if n == 0 || differences.iter().any(|d| d.is_nan()) {
        return TestResult {
            statistic: f64::NAN,
            p_value: f64::NAN,
        };
    }
    let sum: f64 = differences.iter().sum();
    let statistic = sum / n as f64;
    let threshold = sum.abs() * (1.0 - 1e-12);
    let exceeds = |signs: u64| -> bool {
        let mut s = 0.0;
        for (i, d) in differences.iter().enumerate() {
            if (signs >> (i % 64)) & 1 == 1 {
                s -= d;
            } else {
                s += d;
            }
        }
        s.abs() >= threshold
    };
    if n < 63 && (1u64 << n) <= config.resamples as u64 {
        let patterns = 1u64 << n;
        let count = (0..patterns)
            .into_par_iter()
            .filter(|&signs| exceeds(signs))
            .count();
        return TestResult {
            statistic,
            p_value: count as f64 / patterns as f64,
        };
    }
    let count = (0..config.resamples as u64)
        .into_par_iter()
        .filter(|&index| {
            let mut rng = stream(config.seed, index);
            let mut s = 0.0;
            let mut bits = 0u64;
            for (i, d) in differences.iter().enumerate() {
                if i % 64 == 0 {
                    bits = rng.next_u64();
                }
                if (bits >> (i % 64)) & 1 == 1 {
                    s -= d;
                } else {
                    s += d;
                }
            }
            s.abs() >= threshold
        })
        .count();
    TestResult {
        statistic,
        p_value: (1 + count) as f64 / (1 + config.resamples) as f64,
    }
}

/// The comparison of paired values `(first, second)` (e.g. one score of the same case in two
/// runs), as `probity compare` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedDifference {
    /// `"binary"` when every value is 0 or 1, else `"continuous"`.
    pub scale: &'static str,
    /// The number of pairs.
    pub n: u64,
    /// Means of the first and second values (NaN when there are no pairs).
    pub first_mean: f64,
    /// The mean of the second values.
    pub second_mean: f64,
    /// `second_mean − first_mean`.
    pub effect: f64,
    /// The interval of the effect and its method (`newcombe-paired` or `bootstrap-bca`).
    pub effect_ci_low: f64,
    /// The upper bound of the effect's interval.
    pub effect_ci_high: f64,
    /// How the interval was computed.
    pub ci_method: &'static str,
    /// The test of no difference (`mcnemar-exact` or `wilcoxon-signed-rank`).
    pub method: &'static str,
    /// The test statistic.
    pub statistic: f64,
    /// The two-sided p-value.
    pub p_value: f64,
    /// Binary scale: the discordant pairs, 1 only in the first / only in the second (0 else).
    pub first_only: u64,
    /// Discordant pairs with 1 only in the second.
    pub second_only: u64,
}

/// Tests and estimates the difference of paired values. Binary values (all 0 or 1): the exact
/// McNemar test on the discordant pairs and Newcombe's interval for the paired difference of
/// proportions. Otherwise: the Wilcoxon signed-rank test (default settings) on the differences
/// `second − first` and the BCa bootstrap interval (2000 resamples, `seed`) of their mean.
pub fn paired_difference(values: &[(f64, f64)], confidence: f64, seed: u64) -> PairedDifference {
    let n = values.len();
    let mean = |f: fn(&(f64, f64)) -> f64| {
        if n == 0 {
            f64::NAN
        } else {
            values.iter().map(f).sum::<f64>() / n as f64
        }
    };
    let first_mean = mean(|v| v.0);
    let second_mean = mean(|v| v.1);
    let binary = values
        .iter()
        .all(|(b, n)| (*b == 0.0 || *b == 1.0) && (*n == 0.0 || *n == 1.0));
    if binary {
        let count = |f: &dyn Fn(bool, bool) -> bool| {
            values
                .iter()
                .filter(|(b, n)| f(*b == 1.0, *n == 1.0))
                .count() as u64
        };
        let both = count(&|b, n| b && n);
        let first_only = count(&|b, n| b && !n);
        let second_only = count(&|b, n| !b && n);
        let neither = count(&|b, n| !b && !n);
        let result = mcnemar_exact(second_only, first_only);
        let interval =
            newcombe_paired_difference(both, second_only, first_only, neither, confidence);
        PairedDifference {
            scale: "binary",
            n: n as u64,
            first_mean,
            second_mean,
            effect: second_mean - first_mean,
            effect_ci_low: interval.low,
            effect_ci_high: interval.high,
            ci_method: "newcombe-paired",
            method: "mcnemar-exact",
            statistic: result.statistic,
            p_value: result.p_value,
            first_only,
            second_only,
        }
    } else {
        let differences: Vec<f64> = values.iter().map(|(b, n)| n - b).collect();
        let result = wilcoxon_signed_rank(&differences, WilcoxonConfig::default());
        let interval = bootstrap(
            &differences,
            |d: &[f64]| d.iter().sum::<f64>() / d.len().max(1) as f64,
            &BootstrapConfig {
                resamples: 2000,
                confidence,
                seed,
            },
        );
        PairedDifference {
            scale: "continuous",
            n: n as u64,
            first_mean,
            second_mean,
            effect: second_mean - first_mean,
            effect_ci_low: interval.bca.low,
            effect_ci_high: interval.bca.high,
            ci_method: "bootstrap-bca",
            method: "wilcoxon-signed-rank",
            statistic: result.statistic,
            p_value: result.p_value,
            first_only: 0,
            second_only: 0,
        }
    }
}
