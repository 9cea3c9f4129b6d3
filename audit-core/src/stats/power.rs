//! Power: the smallest difference a suite can detect at its size, for independent and for paired
//! proportions, and the underpowered warning.

use super::distributions::{normal_cdf, normal_quantile, normal_sf};

/// Finds the root of an increasing function on `[lo, hi]` by bisection to the last bit.
fn bisect(lo: f64, hi: f64, f: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (lo, hi);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn valid_probability(p: f64) -> bool {
    p > 0.0 && p < 1.0
}

/// The Cohen's h two independent groups of `n_per_group` can detect, two-sided, at `alpha` with
/// `power`, as statsmodels `NormalIndPower().solve_power(nobs1 = n, ratio = 1)`: solves
/// `Φ(h√(n/2) − z₁₋α/2) + Φ(−h√(n/2) − z₁₋α/2) = power` for `h`.
///
/// Edge cases: `n == 0`, or `alpha` or `power` outside (0, 1), gives NaN; `power ≤ alpha` gives 0.
pub fn detectable_cohens_h(n_per_group: u64, alpha: f64, power: f64) -> f64 {
    if n_per_group == 0 || !valid_probability(alpha) || !valid_probability(power) {
        return f64::NAN;
    }
    if power <= alpha {
        return 0.0;
    }
    let crit = -normal_quantile(alpha / 2.0);
    let root_n = (n_per_group as f64 / 2.0).sqrt();
    let achieved = |h: f64| normal_sf(crit - h * root_n) + normal_cdf(-crit - h * root_n);
    let mut hi = 1.0;
    while achieved(hi) < power && hi < 1e6 {
        hi *= 2.0;
    }
    bisect(0.0, hi, |h| achieved(h) - power)
}

/// Minimum detectable difference `p₂ − p₁` of two independent proportions with `n_per_group`
/// each, two-sided at `alpha` with `power`, at baseline `p₁ = baseline`: the detectable Cohen's
/// h ([`detectable_cohens_h`]) mapped back by `p₂ = sin²(asin √p₁ + h/2)` (capped at 1).
///
/// Edge cases: invalid inputs (n = 0, alpha/power outside (0, 1), baseline outside [0, 1]) give
/// NaN.
pub fn min_detectable_difference(n_per_group: u64, alpha: f64, power: f64, baseline: f64) -> f64 {
    let h = detectable_cohens_h(n_per_group, alpha, power);
    if h.is_nan() || !(0.0..=1.0).contains(&baseline) {
        return f64::NAN;
    }
    let phi = 2.0 * baseline.sqrt().asin();
    let angle = ((phi + h) / 2.0).min(std::f64::consts::FRAC_PI_2);
    angle.sin().powi(2) - baseline
}

/// Minimum detectable difference of paired proportions (`p₁₀ − p₀₁`) with `n_pairs` pairs and
/// discordance rate `ψ = p₁₀ + p₀₁`, two-sided at `alpha` with `power`, for McNemar's test by
/// the normal approximation of Connor (1987): solves
/// `√n δ = z₁₋α/2 √ψ + z_power √(ψ − δ²)` for `δ` in [0, ψ] (ψ when unreachable).
///
/// Edge cases: invalid inputs (n = 0, alpha/power/ψ outside (0, 1], ψ = 0) give NaN.
pub fn min_detectable_paired_difference(
    n_pairs: u64,
    alpha: f64,
    power: f64,
    discordance: f64,
) -> f64 {
    if n_pairs == 0
        || !valid_probability(alpha)
        || !valid_probability(power)
        || discordance.is_nan()
        || discordance <= 0.0
        || discordance > 1.0
    {
        return f64::NAN;
    }
    let za = -normal_quantile(alpha / 2.0);
    let zb = -normal_quantile(1.0 - power);
    let root_n = (n_pairs as f64).sqrt();
    let gap =
        |d: f64| root_n * d - za * discordance.sqrt() - zb * (discordance - d * d).max(0.0).sqrt();
    if gap(discordance) <= 0.0 {
        return discordance;
    }
    if gap(0.0) >= 0.0 {
        return 0.0;
    }
    bisect(0.0, discordance, gap)
}

/// Whether a suite of `n_per_group` per group is underpowered for the `stated_effect` (a
/// difference of proportions at `baseline`): true when the minimum detectable difference at
/// `alpha` and `power` exceeds `|stated_effect|`, or when it cannot be computed.
pub fn underpowered(
    n_per_group: u64,
    alpha: f64,
    power: f64,
    baseline: f64,
    stated_effect: f64,
) -> bool {
    let mdd = min_detectable_difference(n_per_group, alpha, power, baseline);
    mdd.is_nan() || stated_effect.is_nan() || mdd > stated_effect.abs()
}
