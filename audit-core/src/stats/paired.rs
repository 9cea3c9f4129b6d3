//! Paired designs: exact and mid-p McNemar tests, the sign test, the Wilcoxon signed-rank test
//! and the seeded paired permutation (sign-flip) test.

use super::distributions::{binomial_cdf, binomial_pmf};
use super::TestResult;

/// Exact McNemar test on the discordant pairs `b = only_first`, `c = only_second` (as statsmodels
/// `mcnemar(exact = True)`): `statistic = min(b, c)`, `p = min(1, 2 P(Bin(b + c, ½) ≤ min(b, c)))`.
///
/// Edge cases: `b + c == 0` gives `p = 1`. Conservative: its rejection rate under the null is at
/// most alpha, often well below it for few discordant pairs.
pub fn mcnemar_exact(only_first: u64, only_second: u64) -> TestResult {
    let n = only_first + only_second;
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
    let n = only_first + only_second;
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
