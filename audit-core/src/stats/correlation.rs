//! Pearson's correlation coefficient with its t-test p-value and Fisher-z interval, as
//! scipy.stats.pearsonr computes them (checked against it in tests/stats_pearson.rs). Written
//! here because the statistics crates in the workspace (statrs) have no correlation test.

use super::distributions::{normal_quantile, student_t_sf};
use super::Interval;

/// Pearson's r of paired samples, its two-sided p-value against r = 0 and its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pearson {
    /// The sample correlation coefficient.
    pub r: f64,
    /// Two-sided, from Student's t with n − 2 degrees of freedom (scipy's exact beta
    /// distribution is the same distribution).
    pub p_value: f64,
    /// Fisher's z interval: tanh(atanh(r) ± z·/√(n − 3)), scipy's default.
    pub interval: Interval,
    /// The number of pairs.
    pub n: usize,
}

/// Pearson's correlation of `x` and `y`. NaN r, p and interval when the lengths differ, when
/// there are fewer than 2 pairs or when either sample is constant; NaN interval below 4 pairs
/// (Fisher's z needs n > 3); p = 1 at 2 pairs, as scipy.
pub fn pearson(x: &[f64], y: &[f64], confidence: f64) -> Pearson {
    let n = x.len();
    let nan = Pearson {
        r: f64::NAN,
        p_value: f64::NAN,
        interval: Interval {
            low: f64::NAN,
            high: f64::NAN,
        },
        n,
    };
    if n != y.len() || n < 2 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return nan;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return nan;
    }
    // Two points always lie on a line: ±1 exactly, as scipy.
    let r = if n == 2 {
        sxy.signum()
    } else {
        (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
    };
    let p_value = if n == 2 {
        1.0
    } else if r.abs() == 1.0 {
        0.0
    } else {
        let df = (n - 2) as f64;
        let t = r * (df / (1.0 - r * r)).sqrt();
        (2.0 * student_t_sf(t.abs(), df)).min(1.0)
    };
    let interval = if n > 3 {
        let z = r.atanh();
        let half = normal_quantile(0.5 + confidence / 2.0) / ((n - 3) as f64).sqrt();
        Interval {
            low: (z - half).tanh(),
            high: (z + half).tanh(),
        }
    } else {
        nan.interval
    };
    Pearson {
        r,
        p_value,
        interval,
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // x = 1..5, y = 5,3,4,1,2: Sxy = −8, Sxx = Syy = 10, r = −0.8; t = −0.8·√(3/0.36).
        let got = pearson(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 3.0, 4.0, 1.0, 2.0], 0.95);
        assert!((got.r + 0.8).abs() < 1e-15);
        let z = (-0.8f64).atanh();
        let half = 1.959_963_984_540_054 / 2f64.sqrt();
        assert!((got.interval.low - (z - half).tanh()).abs() < 1e-12);
        assert!((got.interval.high - (z + half).tanh()).abs() < 1e-12);
        assert!(got.p_value > 0.1 && got.p_value < 0.11, "{}", got.p_value);
    }

    #[test]
    fn degenerate_inputs_are_nan() {
        assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], 0.95).r.is_nan());
        assert!(pearson(&[1.0, 2.0], &[1.0], 0.95).r.is_nan());
        assert!(pearson(&[], &[], 0.95).r.is_nan());
        let two = pearson(&[1.0, 2.0], &[2.0, 1.0], 0.95);
        assert_eq!((two.r, two.p_value), (-1.0, 1.0));
        assert!(two.interval.low.is_nan());
    }
}
