//! Proportions: Wilson and Clopper–Pearson intervals, Newcombe intervals for differences of
//! independent and paired proportions, Fisher's exact test, the k × 2 chi-square test with
//! Cramér's V, Cohen's h and the exact binomial test.

use super::distributions::{
    binomial_cdf, binomial_pmf, binomial_sf_ge, bisect_probability, chi_square_sf,
    hypergeometric_pmf, normal_quantile,
};
use super::{Interval, TestResult};

/// Two-sided critical value `z = Φ⁻¹(1 − α/2)` for a confidence level, or `None` when the level
/// is not in (0, 1).
pub(crate) fn critical_value(confidence: f64) -> Option<f64> {
    if confidence.is_nan() || confidence <= 0.0 || confidence >= 1.0 {
        return None;
    }
    let alpha = 1.0 - confidence;
    Some(-normal_quantile(alpha / 2.0))
}

const NAN_INTERVAL: Interval = Interval {
    low: f64::NAN,
    high: f64::NAN,
};

/// Wilson score interval for a proportion `k / n` (as statsmodels `proportion_confint(method =
/// "wilson")`): centre `(p̂ + z²/2n) / (1 + z²/n)`, half-width
/// `z √(p̂(1 − p̂)/n + z²/4n²) / (1 + z²/n)`, clamped to [0, 1].
///
/// Edge cases: `n == 0` gives `[0, 1]`; `successes > n` is treated as `successes == n`; a
/// confidence outside (0, 1) gives a NaN interval.
pub fn wilson(successes: u64, n: u64, confidence: f64) -> Interval {
    let Some(z) = critical_value(confidence) else {
        return NAN_INTERVAL;
    };
    if n == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let k = successes.min(n) as f64;
    let nf = n as f64;
    let p = k / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let dist = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    let mut low = (center - dist).clamp(0.0, 1.0);
    let mut high = (center + dist).clamp(0.0, 1.0);
    // The bounds are exactly 0 and 1 at the extremes; rounding must not move them.
    if successes == 0 {
        low = 0.0;
    }
    if k == nf {
        high = 1.0;
    }
    Interval { low, high }
}

/// Clopper–Pearson ("exact") interval for `k / n` (as statsmodels `proportion_confint(method =
/// "beta")`): the lower bound is the `α/2` quantile of `Beta(k, n − k + 1)` and the upper bound
/// the `1 − α/2` quantile of `Beta(k + 1, n − k)`, found by inverting binomial tails
/// (`P(Bin(n, p) ≥ k) = α/2` and `P(Bin(n, p) ≤ k) = α/2`) by bisection.
///
/// Edge cases: `k == 0` gives low 0, `k == n` gives high 1, `n == 0` gives `[0, 1]`; a confidence
/// outside (0, 1) gives a NaN interval. Conservative: coverage is at least nominal.
pub fn clopper_pearson(successes: u64, n: u64, confidence: f64) -> Interval {
    if critical_value(confidence).is_none() {
        return NAN_INTERVAL;
    }
    if n == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let k = successes.min(n);
    let half_alpha = (1.0 - confidence) / 2.0;
    let low = if k == 0 {
        0.0
    } else {
        bisect_probability(half_alpha, true, |p| binomial_sf_ge(k, n, p))
    };
    let high = if k == n {
        1.0
    } else {
        bisect_probability(half_alpha, false, |p| binomial_cdf(k, n, p))
    };
    Interval { low, high }
}

/// Newcombe's hybrid score interval for `p1 − p2` of two independent proportions (Newcombe
/// 1998, method 10; statsmodels `confint_proportions_2indep(method = "newcomb")`): with Wilson
/// limits `(l1, u1)` and `(l2, u2)`, `low = d − √((p1 − l1)² + (u2 − p2)²)` and
/// `high = d + √((u1 − p1)² + (p2 − l2)²)`.
///
/// Edge cases: an empty group (`n == 0`) gives `[−1, 1]`; a confidence outside (0, 1) gives a
/// NaN interval.
pub fn newcombe_difference(k1: u64, n1: u64, k2: u64, n2: u64, confidence: f64) -> Interval {
    if critical_value(confidence).is_none() {
        return NAN_INTERVAL;
    }
    if n1 == 0 || n2 == 0 {
        return Interval {
            low: -1.0,
            high: 1.0,
        };
    }
    let p1 = k1.min(n1) as f64 / n1 as f64;
    let p2 = k2.min(n2) as f64 / n2 as f64;
    let w1 = wilson(k1, n1, confidence);
    let w2 = wilson(k2, n2, confidence);
    let d = p1 - p2;
    let d_low = ((p1 - w1.low).powi(2) + (w2.high - p2).powi(2)).sqrt();
    let d_high = ((w1.high - p1).powi(2) + (p2 - w2.low).powi(2)).sqrt();
    Interval {
        low: (d - d_low).max(-1.0),
        high: (d + d_high).min(1.0),
    }
}

/// Newcombe's score interval for the difference of paired proportions `p_first − p_second`
/// (Newcombe 1998b, method 10, no continuity correction) from the 2 × 2 table `a = both`,
/// `b = only_first`, `c = only_second`, `d = neither`, `n = a + b + c + d`.
///
/// With `p1 = (a + b)/n`, `p2 = (a + c)/n`, Wilson limits `(l1, u1)`, `(l2, u2)`,
/// `M = (a + b)(c + d)(a + c)(b + d)`, `A = ad − bc` and Newcombe's corrected correlation
/// `φ = (A − n/2)/√M` if `A > n/2`, `0` if `0 ≤ A ≤ n/2`, `A/√M` if `A < 0` (0 when `M = 0`):
/// `low = D − √((p1 − l1)² − 2φ(p1 − l1)(u2 − p2) + (u2 − p2)²)`,
/// `high = D + √((u1 − p1)² − 2φ(u1 − p1)(p2 − l2) + (p2 − l2)²)`, `D = p1 − p2`.
///
/// The same as R's `contingencytables::Newcombe_square_and_add_CI_paired_2x2` (Fagerland,
/// Lydersen and Laake 2017) and `biostatUZH::confIntPairedProportion` (Altman et al. 2000).
///
/// Edge cases: `n == 0` gives `[−1, 1]`; a confidence outside (0, 1) gives a NaN interval.
pub fn newcombe_paired_difference(
    both: u64,
    only_first: u64,
    only_second: u64,
    neither: u64,
    confidence: f64,
) -> Interval {
    if critical_value(confidence).is_none() {
        return NAN_INTERVAL;
    }
    let n = both
        .saturating_add(only_first)
        .saturating_add(only_second)
        .saturating_add(neither);
    if n == 0 {
        return Interval {
            low: -1.0,
            high: 1.0,
        };
    }
    let (a, b, c, d) = (
        both as f64,
        only_first as f64,
        only_second as f64,
        neither as f64,
    );
    let nf = n as f64;
    let p1 = (a + b) / nf;
    let p2 = (a + c) / nf;
    let w1 = wilson(both.saturating_add(only_first), n, confidence);
    let w2 = wilson(both.saturating_add(only_second), n, confidence);
    // Newcombe's correlation estimate with his correction towards 0: with A = ad − bc,
    // φ = (A − n/2)/√margins when A > n/2, 0 when 0 ≤ A ≤ n/2, A/√margins when A < 0.
    let margins = (a + b) * (c + d) * (a + c) * (b + d);
    let cross = a * d - b * c;
    let phi = if margins <= 0.0 {
        0.0
    } else if cross > nf / 2.0 {
        (cross - nf / 2.0) / margins.sqrt()
    } else if cross >= 0.0 {
        0.0
    } else {
        cross / margins.sqrt()
    };
    let diff = p1 - p2;
    let (e1, f2) = (p1 - w1.low, w2.high - p2);
    let (g1, h2) = (w1.high - p1, p2 - w2.low);
    let dl2 = (e1 * e1 - 2.0 * phi * e1 * f2 + f2 * f2).max(0.0);
    let du2 = (g1 * g1 - 2.0 * phi * g1 * h2 + h2 * h2).max(0.0);
    Interval {
        low: (diff - dl2.sqrt()).max(-1.0),
        high: (diff + du2.sqrt()).min(1.0),
    }
}

/// Fisher's exact test for the 2 × 2 table `[[a, b], [c, d]]`, two-sided as
/// `scipy.stats.fisher_exact`: the p-value sums the hypergeometric probabilities (margins fixed)
/// of every table no more likely than the observed one, with scipy's relative tolerance 1e-14.
/// The statistic is the sample odds ratio `ad / bc` (infinite when `bc == 0`, as scipy).
///
/// Edge cases: an empty row or column gives `statistic = NaN, p = 1`. Conservative (discrete).
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> TestResult {
    let (row1, row2) = (a.saturating_add(b), c.saturating_add(d));
    let col1 = a.saturating_add(c);
    if row1 == 0 || row2 == 0 || col1 == 0 || b.saturating_add(d) == 0 {
        return TestResult {
            statistic: f64::NAN,
            p_value: 1.0,
        };
    }
    let statistic = if b > 0 && c > 0 {
        (a as f64 * d as f64) / (b as f64 * c as f64)
    } else {
        f64::INFINITY
    };
    // Draw col1 items from row1 marked and row2 unmarked; `a` is the number marked.
    let pmf = |x: u64| hypergeometric_pmf(x, row1, row2, col1);
    let observed = pmf(a) * (1.0 + 1e-14);
    let lo = col1.saturating_sub(row2);
    let hi = col1.min(row1);
    // The pmf is unimodal, so the tables no more likely than the observed one form a prefix and
    // a suffix of the support: walk inwards from both ends.
    let mut p_value = 0.0;
    let mut x = lo;
    let mut everything = true;
    while x <= hi {
        let px = pmf(x);
        if px > observed {
            everything = false;
            break;
        }
        p_value += px;
        x += 1;
    }
    if !everything {
        let mut y = hi;
        while y > x {
            let py = pmf(y);
            if py > observed {
                break;
            }
            p_value += py;
            y -= 1;
        }
    }
    TestResult {
        statistic,
        p_value: p_value.min(1.0),
    }
}

/// Chi-square test of independence for `k` groups × 2 outcomes without continuity correction
/// (as `scipy.stats.chi2_contingency(correction = False)`): `X² = Σ (O − E)²/E` over the
/// `k × 2` cells, `df = k − 1` after dropping groups with no observations.
///
/// Edge cases: fewer than two non-empty groups, or an outcome column that is all zero, gives
/// `statistic = 0, p = 1` (no evidence of association; scipy raises here instead). Successes
/// above their total count as the total; entries beyond the shorter slice are ignored.
pub fn chi_square_independence(successes: &[u64], totals: &[u64]) -> TestResult {
    let groups: Vec<(f64, f64)> = successes
        .iter()
        .zip(totals)
        .filter(|(_, &n)| n > 0)
        .map(|(&k, &n)| (k.min(n) as f64, n as f64))
        .collect();
    let grand: f64 = groups.iter().map(|g| g.1).sum();
    let col1: f64 = groups.iter().map(|g| g.0).sum();
    let col2 = grand - col1;
    if groups.len() < 2 || col1 == 0.0 || col2 == 0.0 {
        return TestResult {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    let statistic: f64 = groups
        .iter()
        .map(|&(k, n)| {
            let e1 = n * col1 / grand;
            let e2 = n * col2 / grand;
            (k - e1).powi(2) / e1 + ((n - k) - e2).powi(2) / e2
        })
        .sum();
    let df = (groups.len() - 1) as f64;
    TestResult {
        statistic,
        p_value: chi_square_sf(statistic, df),
    }
}

/// Cramér's V for a `k × 2` table: `√(X² / (N · min(k − 1, 1)))` = `√(X²/N)`, from the
/// uncorrected chi-square statistic. Edge cases as [`chi_square_independence`] (0 when degenerate).
pub fn cramers_v(successes: &[u64], totals: &[u64]) -> f64 {
    let grand: u64 = successes
        .iter()
        .zip(totals)
        .filter(|(_, &n)| n > 0)
        .map(|(_, &n)| n)
        .sum();
    if grand == 0 {
        return 0.0;
    }
    let chi = chi_square_independence(successes, totals).statistic;
    (chi / grand as f64).sqrt()
}

/// Cohen's h effect size `2 asin √p1 − 2 asin √p2` for two proportions (NaN outside [0, 1]).
pub fn cohens_h(p1: f64, p2: f64) -> f64 {
    if !(0.0..=1.0).contains(&p1) || !(0.0..=1.0).contains(&p2) {
        return f64::NAN;
    }
    2.0 * p1.sqrt().asin() - 2.0 * p2.sqrt().asin()
}

/// Exact binomial test of `H0: p = p0`, two-sided as `scipy.stats.binomtest`: the p-value sums
/// the probabilities of every outcome no more likely than the observed one (relative tolerance
/// 1 + 1e-7, as scipy). The statistic is `k / n`.
///
/// Edge cases: `n == 0` gives `statistic = NaN, p = 1`; `p0` outside [0, 1] gives NaN p.
/// Conservative (discrete).
pub fn binomial_test(successes: u64, n: u64, p0: f64) -> TestResult {
    if n == 0 {
        return TestResult {
            statistic: f64::NAN,
            p_value: 1.0,
        };
    }
    let k = successes.min(n);
    let statistic = k as f64 / n as f64;
    if p0.is_nan() || !(0.0..=1.0).contains(&p0) {
        return TestResult {
            statistic,
            p_value: f64::NAN,
        };
    }
    if p0 == 0.0 || p0 == 1.0 {
        let certain = if p0 == 0.0 { k == 0 } else { k == n };
        return TestResult {
            statistic,
            p_value: if certain { 1.0 } else { 0.0 },
        };
    }
    let nf = n as f64;
    let d = binomial_pmf(k, n, p0);
    let rerr = 1.0 + 1e-7;
    let expected = p0 * nf;
    let p_value = if k as f64 == expected {
        1.0
    } else if (k as f64) < expected {
        // Count outcomes y ≥ ceil(expected) with pmf(y) ≤ d · rerr (scipy's binary search).
        let start = expected.ceil() as u64;
        let first = first_index(start, n, |y| binomial_pmf(y, n, p0) <= d * rerr);
        let upper = match first {
            Some(y) => binomial_sf_ge(y, n, p0),
            None => 0.0,
        };
        binomial_cdf(k, n, p0) + upper
    } else {
        let end = expected.floor() as u64;
        let last = last_index(0, end, |y| binomial_pmf(y, n, p0) <= d * rerr);
        let lower = match last {
            Some(y) => binomial_cdf(y, n, p0),
            None => 0.0,
        };
        lower + binomial_sf_ge(k, n, p0)
    };
    TestResult {
        statistic,
        p_value: p_value.min(1.0),
    }
}

/// First `y` in `[lo, hi]` with `pred(y)` true, for a predicate that is false then true.
fn first_index(lo: u64, hi: u64, pred: impl Fn(u64) -> bool) -> Option<u64> {
    if lo > hi || !pred(hi) {
        return None;
    }
    let (mut a, mut b) = (lo, hi);
    while a < b {
        let mid = a + (b - a) / 2;
        if pred(mid) {
            b = mid;
        } else {
            a = mid + 1;
        }
    }
    Some(a)
}

/// Last `y` in `[lo, hi]` with `pred(y)` true, for a predicate that is true then false.
fn last_index(lo: u64, hi: u64, pred: impl Fn(u64) -> bool) -> Option<u64> {
    if lo > hi || !pred(lo) {
        return None;
    }
    let (mut a, mut b) = (lo, hi);
    while a < b {
        let mid = a + (b - a).div_ceil(2);
        if pred(mid) {
            a = mid;
        } else {
            b = mid - 1;
        }
    }
    Some(a)
}
