//! Two independent samples: Mann–Whitney U, Welch's t test, the seeded two-sample permutation
//! test, Cohen's d and the rank-biserial correlation.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::distributions::{normal_sf, student_t_sf};
use super::paired::PermutationConfig;
use super::ranks::{average_ranks, tie_term};
use super::resampling::{below, stream};
use super::TestResult;

/// How [`mann_whitney_u`] computes its p-value (scipy's `method`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MannWhitneyMethod {
    /// scipy's `"auto"`: normal approximation when both samples exceed 8 or there are ties,
    /// exact otherwise.
    Auto,
    /// The exact null distribution of U (valid without ties). Above
    /// [`EXACT_MANN_WHITNEY_LIMIT`] for `n₁n₂` the normal approximation is used instead.
    Exact,
    /// Normal approximation with tie correction and continuity correction.
    Asymptotic,
}

fn nan_result() -> TestResult {
    TestResult {
        statistic: f64::NAN,
        p_value: f64::NAN,
    }
}

fn has_nan(values: &[f64]) -> bool {
    values.iter().any(|v| v.is_nan())
}

/// `U₁` (the Mann–Whitney statistic of `x`) and the tie-group sizes of the pooled sample.
fn u_statistic(x: &[f64], y: &[f64]) -> (f64, Vec<usize>) {
    let pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    let (ranks, ties) = average_ranks(&pooled);
    let n1 = x.len() as f64;
    let r1: f64 = ranks[..x.len()].iter().sum();
    (r1 - n1 * (n1 + 1.0) / 2.0, ties)
}

/// Mann–Whitney U test, two-sided, as `scipy.stats.mannwhitneyu(x, y, use_continuity = True,
/// method)`. The statistic is `U₁ = R₁ − n₁(n₁ + 1)/2` (for `x`). With `U = max(U₁, n₁n₂ − U₁)`:
/// asymptotic `z = (U − n₁n₂/2 − ½)/σ`, `σ² = n₁n₂/12 · ((n + 1) − Σ(t³ − t)/(n(n − 1)))`,
/// `p = 2(1 − Φ(z))`; exact `p = 2 P(U' ≥ U)` under the null distribution of U; capped at 1.
///
/// Edge cases: an empty sample or a NaN gives NaN statistic and p; all values equal give
/// `p = 1`. The exact variant is discrete and conservative.
pub fn mann_whitney_u(x: &[f64], y: &[f64], method: MannWhitneyMethod) -> TestResult {
    if x.is_empty() || y.is_empty() || has_nan(x) || has_nan(y) {
        return nan_result();
    }
    let (u1, ties) = u_statistic(x, y);
    let (n1, n2) = (x.len(), y.len());
    let product = (n1 * n2) as f64;
    let u = u1.max(product - u1);
    let has_ties = ties.iter().any(|&t| t > 1);
    let method = match method {
        MannWhitneyMethod::Auto if (n1 > 8 && n2 > 8) || has_ties => MannWhitneyMethod::Asymptotic,
        MannWhitneyMethod::Auto => MannWhitneyMethod::Exact,
        // The exact distribution costs O(n₁²n₂²) time; beyond this size the normal
        // approximation is used.
        MannWhitneyMethod::Exact if n1 * n2 > EXACT_MANN_WHITNEY_LIMIT => {
            MannWhitneyMethod::Asymptotic
        }
        other => other,
    };
    let p_value = match method {
        MannWhitneyMethod::Exact => {
            let pmf = mann_whitney_pmf(n1, n2);
            let start = (u as usize).min(pmf.len());
            2.0 * pmf[start..].iter().sum::<f64>()
        }
        _ => {
            let n = (n1 + n2) as f64;
            let variance = product / 12.0 * ((n + 1.0) - tie_term(&ties) / (n * (n - 1.0)));
            let s = variance.max(0.0).sqrt();
            let numerator = u - product / 2.0 - 0.5;
            if s > 0.0 {
                2.0 * normal_sf(numerator / s)
            } else {
                1.0
            }
        }
    };
    TestResult {
        statistic: u1,
        p_value: p_value.clamp(0.0, 1.0),
    }
}

/// Largest `n₁n₂` for which [`MannWhitneyMethod::Exact`] computes the exact null distribution.
pub const EXACT_MANN_WHITNEY_LIMIT: usize = 40_000;

/// Null distribution `P(U = u)`, `u = 0 ..= n₁n₂`, of the Mann–Whitney statistic without ties,
/// by the recursion `p(m, n; u) = m/(m+n) p(m−1, n; u−n) + n/(m+n) p(m, n−1; u)` over rows of m.
fn mann_whitney_pmf(n1: usize, n2: usize) -> Vec<f64> {
    // The distribution is symmetric in the two sizes; keeping the smaller one as the inner
    // dimension bounds the memory by n₁n₂·min(n₁, n₂)/2 values.
    let (n1, n2) = if n2 > n1 { (n2, n1) } else { (n1, n2) };
    // prev[j] holds p(m−1, j; ·) and current[j] holds p(m, j; ·) for j = 0 ..= n2.
    let mut prev: Vec<Vec<f64>> = (0..=n2).map(|_| vec![1.0]).collect();
    for m in 1..=n1 {
        let mut current: Vec<Vec<f64>> = Vec::with_capacity(n2 + 1);
        current.push(vec![1.0]);
        for j in 1..=n2 {
            let size = m * j + 1;
            let mut row = vec![0.0; size];
            let (wm, wj) = (m as f64 / (m + j) as f64, j as f64 / (m + j) as f64);
            for (u, &value) in prev[j].iter().enumerate() {
                row[u + j] += wm * value;
            }
            for (u, &value) in current[j - 1].iter().enumerate() {
                row[u] += wj * value;
            }
            current.push(row);
        }
        prev = current;
    }
    prev.pop().unwrap_or_else(|| vec![1.0])
}

/// Rank-biserial correlation `r = 2U₁/(n₁n₂) − 1` (Kerby 2014): positive when `x` tends to
/// exceed `y`, in [−1, 1]. Edge cases: an empty sample or a NaN gives NaN.
pub fn rank_biserial(x: &[f64], y: &[f64]) -> f64 {
    if x.is_empty() || y.is_empty() || has_nan(x) || has_nan(y) {
        return f64::NAN;
    }
    let (u1, _) = u_statistic(x, y);
    2.0 * u1 / (x.len() * y.len()) as f64 - 1.0
}

fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    let variance = if values.len() > 1 {
        ss / (n - 1.0)
    } else {
        0.0
    };
    (mean, variance)
}

/// Welch's two-sample t test, two-sided, as `scipy.stats.ttest_ind(x, y, equal_var = False)`:
/// `t = (x̄ − ȳ)/√(s²ₓ/nₓ + s²ᵧ/nᵧ)` with Welch–Satterthwaite degrees of freedom
/// `ν = (s²ₓ/nₓ + s²ᵧ/nᵧ)² / ((s²ₓ/nₓ)²/(nₓ − 1) + (s²ᵧ/nᵧ)²/(nᵧ − 1))`, `p = 2 P(T_ν > |t|)`.
///
/// Edge cases: fewer than two values in a sample, a NaN, or zero variance in both samples gives
/// NaN statistic and p.
pub fn welch_t_test(x: &[f64], y: &[f64]) -> TestResult {
    if x.len() < 2 || y.len() < 2 || has_nan(x) || has_nan(y) {
        return nan_result();
    }
    let (mx, vx) = mean_and_variance(x);
    let (my, vy) = mean_and_variance(y);
    let (ax, ay) = (vx / x.len() as f64, vy / y.len() as f64);
    let se2 = ax + ay;
    if se2 <= 0.0 {
        return nan_result();
    }
    let statistic = (mx - my) / se2.sqrt();
    let df = se2 * se2 / (ax * ax / (x.len() as f64 - 1.0) + ay * ay / (y.len() as f64 - 1.0));
    TestResult {
        statistic,
        p_value: (2.0 * student_t_sf(statistic.abs(), df)).min(1.0),
    }
}

/// Cohen's d with the pooled standard deviation:
/// `d = (x̄ − ȳ) / √(((nₓ − 1)s²ₓ + (nᵧ − 1)s²ᵧ)/(nₓ + nᵧ − 2))`.
/// Edge cases: an empty sample, fewer than three values in all, a NaN, or a zero pooled standard
/// deviation gives NaN.
pub fn cohens_d(x: &[f64], y: &[f64]) -> f64 {
    if x.is_empty() || y.is_empty() || x.len() + y.len() < 3 || has_nan(x) || has_nan(y) {
        return f64::NAN;
    }
    let (mx, vx) = mean_and_variance(x);
    let (my, vy) = mean_and_variance(y);
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    let pooled = (((nx - 1.0) * vx + (ny - 1.0) * vy) / (nx + ny - 2.0)).sqrt();
    if pooled > 0.0 {
        (mx - my) / pooled
    } else {
        f64::NAN
    }
}

/// Two-sample permutation test of the difference of means, two-sided. The statistic is
/// `x̄ − ȳ`; each resample reassigns the pooled values to the two groups by a partial
/// Fisher–Yates shuffle driven by its own ChaCha8 stream `(seed, index)`;
/// `p = (1 + #{|T*| ≥ |T|})/(1 + R)` with relative tolerance 1e-12 (Phipson and Smyth 2010).
///
/// Edge cases: an empty sample or a NaN gives NaN statistic and p. Valid (conservative by at most
/// `1/(R + 1)`).
pub fn permutation_two_sample(x: &[f64], y: &[f64], config: PermutationConfig) -> TestResult {
    if x.is_empty() || y.is_empty() || has_nan(x) || has_nan(y) {
        return nan_result();
    }
    let pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    let total: f64 = pooled.iter().sum();
    let (n1, n) = (x.len(), pooled.len());
    let difference = |sum_first: f64| sum_first / n1 as f64 - (total - sum_first) / (n - n1) as f64;
    let observed = difference(x.iter().sum());
    let threshold = observed.abs() * (1.0 - 1e-12);
    let count = (0..config.resamples as u64)
        .into_par_iter()
        .map_init(
            || pooled.clone(),
            |buffer, index| {
                buffer.copy_from_slice(&pooled);
                let mut rng = stream(config.seed, index);
                let mut sum_first = 0.0;
                for i in 0..n1 {
                    let j = i + below(&mut rng, (n - i) as u64) as usize;
                    buffer.swap(i, j);
                    sum_first += buffer[i];
                }
                difference(sum_first).abs() >= threshold
            },
        )
        .filter(|&hit| hit)
        .count();
    TestResult {
        statistic: observed,
        p_value: (1 + count) as f64 / (1 + config.resamples) as f64,
    }
}
