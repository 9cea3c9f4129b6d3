//! The Word Embedding Association Test (Caliskan et al. 2017) and its sentence version SEAT
//! (May et al. 2019), computed as sent-bias' `weat.py` does: the effect size with the sample
//! standard deviation, and the one-sided permutation p-value over partitions of X ∪ Y, exact
//! when there are at most `samples` partitions and sampled otherwise.
//!
//! Definitions, with cosine similarity `cos`:
//! - `s(w, A, B) = mean_{a∈A} cos(w, a) − mean_{b∈B} cos(w, b)`;
//! - effect size `d = (mean_{x∈X} s(x) − mean_{y∈Y} s(y)) / std_{w∈X∪Y} s(w)`, std with `ddof = 1`;
//! - test statistic `Σ_{x∈X} s(x)` (sent-bias' `s_XAB`: for partitions of a fixed X ∪ Y it orders
//!   partitions exactly as `s(X, Y, A, B) = Σ_X s − Σ_Y s` does);
//! - p-value `P[Σ_{X'} s ≥ Σ_X s]` over partitions `(X', Y')` of X ∪ Y with `|X'| = |X|`: the share
//!   of all `C(|X|+|Y|, |X|)` partitions when there are at most `samples` of them (the observed
//!   partition counts), else `(1 + #{draws ≥ observed}) / samples` over `samples − 1` random
//!   partitions (sent-bias adds the one "hallucinated" positive observation so that p > 0).
//!
//! Two deliberate differences from sent-bias, neither of which changes a result on its inputs:
//! every partition sum is taken over the chosen items in index order, so the same subset always
//! gives the bit-identical sum (sent-bias sums in shuffle order, which can break a tie of the
//! observed partition with itself by one rounding); and `|X| ≠ |Y|` is allowed (sent-bias
//! asserts equal sizes; partitions then keep the two sizes, which is the same test when they are
//! equal). Draws come from ChaCha8 streams `(seed, draw)`, not numpy's generator, so sampled
//! p-values agree with sent-bias' in distribution, not digit for digit.

use rayon::prelude::*;

use super::bootstrap::quantile_sorted;
use super::resampling::{below, stream};
use super::Interval;

/// How the permutation p-value is computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeatConfig {
    /// sent-bias' `n_samples` (default 100,000): the exact test is used when the number of
    /// partitions is at most this, else this many partitions are drawn (one of them the
    /// hallucinated positive).
    pub samples: usize,
    /// The seed of the drawn partitions.
    pub seed: u64,
}

impl Default for WeatConfig {
    fn default() -> Self {
        WeatConfig {
            samples: 100_000,
            seed: 0,
        }
    }
}

/// One WEAT: the effect size, the test statistic and the p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeatResult {
    /// Caliskan's `d`.
    pub effect_size: f64,
    /// `s(X, Y, A, B) = Σ_{x∈X} s(x, A, B) − Σ_{y∈Y} s(y, A, B)`.
    pub statistic: f64,
    /// One-sided: the probability that a random partition associates X' at least as strongly.
    pub p_value: f64,
    /// Whether every partition was enumerated.
    pub exact: bool,
    /// `C(|X|+|Y|, |X|)`, the number of partitions (as a float: it can exceed 2⁶⁴).
    pub partitions: f64,
}

/// Cosine similarity in f64 (`x·y / √(x·x · y·y)`, as sent-bias); NaN for a zero vector or
/// vectors of different lengths.
pub fn cosine(x: &[f32], y: &[f32]) -> f64 {
    if x.len() != y.len() {
        return f64::NAN;
    }
    let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in x.iter().zip(y) {
        let (a, b) = (f64::from(a), f64::from(b));
        xy += a * b;
        xx += a * a;
        yy += b * b;
    }
    xy / (xx * yy).sqrt()
}

/// `s(w, A, B)` for every target `w`: mean cosine with A minus mean cosine with B. NaN for a
/// target when A or B is empty.
pub fn associations(targets: &[&[f32]], a: &[&[f32]], b: &[&[f32]]) -> Vec<f64> {
    let mean_cosine = |w: &[f32], set: &[&[f32]]| {
        set.iter().map(|v| cosine(w, v)).sum::<f64>() / set.len() as f64
    };
    targets
        .iter()
        .map(|w| mean_cosine(w, a) - mean_cosine(w, b))
        .collect()
}

/// Caliskan's effect size from the associations of X and of Y: the difference of their means
/// over the sample standard deviation (`ddof = 1`) of all of them. NaN when a side is empty or
/// there are fewer than two values; ±∞ or NaN when every association is equal (as numpy).
pub fn effect_size(s_x: &[f64], s_y: &[f64]) -> f64 {
    if s_x.is_empty() || s_y.is_empty() {
        return f64::NAN;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let all: Vec<f64> = s_x.iter().chain(s_y).copied().collect();
    let m = mean(&all);
    let variance = all.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (all.len() as f64 - 1.0);
    (mean(s_x) - mean(s_y)) / variance.sqrt()
}

/// `C(n, k)` as a float (exact while it fits in 53 bits).
fn binomial_coefficient(n: usize, k: usize) -> f64 {
    let k = k.min(n - k.min(n));
    (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64)
}

/// The permutation p-value of the associations of X (`s_x`) against those of Y (`s_y`), and
/// whether it was exact. NaN when a side is empty or an association is NaN.
pub fn permutation_p_value(s_x: &[f64], s_y: &[f64], config: WeatConfig) -> (f64, bool) {
    if s_x.is_empty() || s_y.is_empty() || s_x.iter().chain(s_y).any(|v| v.is_nan()) {
        return (f64::NAN, false);
    }
    let pooled: Vec<f64> = s_x.iter().chain(s_y).copied().collect();
    let (k, n) = (s_x.len(), pooled.len());
    // The observed partition is the first k items; summed in index order like every other.
    let observed = pooled[..k].iter().fold(0.0, |sum, v| sum + v);
    let partitions = binomial_coefficient(n, k);
    if partitions <= config.samples as f64 {
        let (hits, total) = enumerate(&pooled, k, observed);
        return (hits as f64 / total as f64, true);
    }
    let draws = config.samples.saturating_sub(1);
    let hits = (0..draws as u64)
        .into_par_iter()
        .map_init(
            || (Vec::with_capacity(n), vec![false; n]),
            |(order, chosen), draw| {
                let mut rng = stream(config.seed, draw);
                order.clear();
                order.extend(0..n);
                chosen.fill(false);
                for i in 0..k {
                    let j = i + below(&mut rng, (n - i) as u64) as usize;
                    order.swap(i, j);
                    chosen[order[i]] = true;
                }
                let sum = pooled
                    .iter()
                    .zip(chosen.iter())
                    .filter(|(_, &c)| c)
                    .fold(0.0, |sum, (v, _)| sum + v);
                sum >= observed
            },
        )
        .filter(|&hit| hit)
        .count();
    ((1 + hits) as f64 / (1 + draws) as f64, false)
}

/// Every k-subset of `pooled` in lexicographic order of indices, each summed in index order:
/// (how many sums reach `observed`, how many subsets).
fn enumerate(pooled: &[f64], k: usize, observed: f64) -> (u64, u64) {
    fn walk(
        pooled: &[f64],
        start: usize,
        left: usize,
        sum: f64,
        observed: f64,
        counts: &mut (u64, u64),
    ) {
        if left == 0 {
            counts.1 += 1;
            if sum >= observed {
                counts.0 += 1;
            }
            return;
        }
        for i in start..=pooled.len() - left {
            walk(pooled, i + 1, left - 1, sum + pooled[i], observed, counts);
        }
    }
    let mut counts = (0, 0);
    walk(pooled, 0, k, 0.0, observed, &mut counts);
    counts
}

/// The whole test on vectors: X and Y the target sets, A and B the attribute sets.
pub fn weat(
    x: &[&[f32]],
    y: &[&[f32]],
    a: &[&[f32]],
    b: &[&[f32]],
    config: WeatConfig,
) -> WeatResult {
    let s_x = associations(x, a, b);
    let s_y = associations(y, a, b);
    weat_from_associations(&s_x, &s_y, config)
}

/// The whole test from the associations `s(w, A, B)` of X and of Y.
pub fn weat_from_associations(s_x: &[f64], s_y: &[f64], config: WeatConfig) -> WeatResult {
    let (p_value, exact) = permutation_p_value(s_x, s_y, config);
    WeatResult {
        effect_size: effect_size(s_x, s_y),
        statistic: s_x.iter().sum::<f64>() - s_y.iter().sum::<f64>(),
        p_value,
        exact,
        partitions: binomial_coefficient(s_x.len() + s_y.len(), s_x.len()),
    }
}

/// A percentile bootstrap interval of the effect size over the target items (Probity's addition:
/// sent-bias reports none). Each resample draws |X| associations from X and |Y| from Y with
/// replacement (A and B stay fixed), from ChaCha8 stream `(seed, resample)`; resamples whose
/// effect size is not finite (all draws equal) are left out. NaN when a side is empty.
pub fn effect_size_interval(
    s_x: &[f64],
    s_y: &[f64],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Interval {
    let nan = Interval {
        low: f64::NAN,
        high: f64::NAN,
    };
    if s_x.is_empty() || s_y.is_empty() || resamples == 0 || !(0.0..1.0).contains(&confidence) {
        return nan;
    }
    let mut replicates: Vec<f64> = (0..resamples as u64)
        .into_par_iter()
        .map(|r| {
            let mut rng = stream(seed, r);
            let mut draw = |side: &[f64]| -> Vec<f64> {
                (0..side.len())
                    .map(|_| side[below(&mut rng, side.len() as u64) as usize])
                    .collect()
            };
            let (rx, ry) = (draw(s_x), draw(s_y));
            effect_size(&rx, &ry)
        })
        .collect();
    replicates.retain(|v| v.is_finite());
    if replicates.is_empty() {
        return nan;
    }
    replicates.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    Interval {
        low: quantile_sorted(&replicates, alpha),
        high: quantile_sorted(&replicates, 1.0 - alpha),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn cosine_of_hand_picked_vectors() {
        assert!(close(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0, 1e-15));
        assert!(close(cosine(&[1.0, 1.0], &[2.0, 2.0]), 1.0, 1e-15));
        assert!(close(cosine(&[3.0, 4.0], &[4.0, 3.0]), 24.0 / 25.0, 1e-15));
        assert!(cosine(&[0.0, 0.0], &[1.0, 0.0]).is_nan());
        assert!(cosine(&[1.0], &[1.0, 0.0]).is_nan());
    }

    /// A toy worked by hand: A = {e1}, B = {e2}; X = {e1, (1,1)}, Y = {e2, (3,4)}.
    /// s(e1) = 1 − 0 = 1; s((1,1)) = 1/√2 − 1/√2 = 0; s(e2) = 0 − 1 = −1;
    /// s((3,4)) = 3/5 − 4/5 = −0.2. Means 0.5 and −0.6, so the numerator is 1.1; the four values
    /// {1, 0, −1, −0.2} have mean −0.05 and sample variance (1.1025 + 0.0025 + 0.9025 + 0.0225)/3
    /// = 0.6766…, std 0.822597…, d = 1.1 / 0.822597… = 1.337228…
    /// Partitions of 4 into 2+2: 6; Σ over X = 1; subsets with sum ≥ 1: {1, 0} only (1 + −0.2 =
    /// 0.8), so p = 1/6.
    #[test]
    fn hand_computed_toy() {
        let (e1, e2, d, f): (&[f32], &[f32], &[f32], &[f32]) =
            (&[1.0, 0.0], &[0.0, 1.0], &[1.0, 1.0], &[3.0, 4.0]);
        let result = weat(&[e1, d], &[e2, f], &[e1], &[e2], WeatConfig::default());
        let s = associations(&[e1, d, e2, f], &[e1], &[e2]);
        for (got, want) in s.iter().zip([1.0, 0.0, -1.0, -0.2]) {
            assert!(close(*got, want, 1e-7), "{s:?}");
        }
        let std = ((1.1025f64 + 0.0025 + 0.9025 + 0.0225) / 3.0).sqrt();
        assert!(close(result.effect_size, 1.1 / std, 1e-7), "{result:?}");
        assert!(close(result.statistic, 1.0 - (-1.2), 1e-7));
        assert_eq!(result.p_value, 1.0 / 6.0);
        assert!(result.exact);
        assert_eq!(result.partitions, 6.0);
    }

    #[test]
    fn exact_p_value_counts_ties_and_the_observed_partition() {
        // All associations equal: every partition ties, p = 1 (sent-bias' conservative test).
        let (p, exact) = permutation_p_value(&[0.5, 0.5], &[0.5, 0.5], WeatConfig::default());
        assert!(exact);
        assert_eq!(p, 1.0);
        // X holds the two largest of four: only the observed partition reaches it.
        let (p, _) = permutation_p_value(&[3.0, 4.0], &[1.0, 2.0], WeatConfig::default());
        assert_eq!(p, 1.0 / 6.0);
        // X holds the two smallest: every partition reaches it.
        let (p, _) = permutation_p_value(&[1.0, 2.0], &[3.0, 4.0], WeatConfig::default());
        assert_eq!(p, 1.0);
        // Unequal sizes: 1 of C(5, 2) = 10.
        let (p, _) = permutation_p_value(&[9.0, 8.0], &[1.0, 2.0, 3.0], WeatConfig::default());
        assert_eq!(p, 0.1);
    }

    #[test]
    fn sampled_p_value_has_the_hallucinated_positive_and_is_seeded() {
        // 20 vs 20 perfectly separated: C(40, 20) ≈ 1.4e11 partitions, sampled; no draw reaches
        // the observed sum, so p = 1 / samples exactly.
        let x: Vec<f64> = (0..20).map(|i| 10.0 + f64::from(i)).collect();
        let y: Vec<f64> = (0..20).map(f64::from).collect();
        let config = WeatConfig {
            samples: 1000,
            seed: 7,
        };
        let (p, exact) = permutation_p_value(&x, &y, config);
        assert!(!exact);
        assert_eq!(p, 1.0 / 1000.0);
        // No separation: about half the draws reach the observed sum; same seed, same p.
        let evens: Vec<f64> = (0..20).map(|i| f64::from(2 * i)).collect();
        let odds: Vec<f64> = (0..20).map(|i| f64::from(2 * i + 1)).collect();
        let (p1, _) = permutation_p_value(&evens, &odds, config);
        let (p2, _) = permutation_p_value(&evens, &odds, config);
        assert_eq!(p1, p2);
        assert!(p1 > 0.05 && p1 < 0.95, "{p1}");
        let (p3, _) = permutation_p_value(&evens, &odds, WeatConfig { seed: 8, ..config });
        assert_ne!(p1, p3);
    }

    #[test]
    fn exact_and_sampled_agree_on_the_same_problem() {
        // 8 vs 8: C(16, 8) = 12,870 partitions; exact with the default, sampled with 5,000.
        let x = [0.3, 0.1, 0.25, -0.05, 0.2, 0.15, 0.05, 0.12];
        let y = [0.0, 0.1, -0.2, 0.04, 0.11, -0.1, 0.02, 0.06];
        let (exact_p, exact) = permutation_p_value(&x, &y, WeatConfig::default());
        assert!(exact);
        let (sampled_p, sampled) = permutation_p_value(
            &x,
            &y,
            WeatConfig {
                samples: 5000,
                seed: 1,
            },
        );
        assert!(!sampled);
        let se = (exact_p * (1.0 - exact_p) / 5000.0).sqrt();
        assert!((sampled_p - exact_p).abs() < 5.0 * se + 1.0 / 5000.0);
    }

    #[test]
    fn degenerate_inputs_give_nan_not_panics() {
        assert!(effect_size(&[], &[1.0]).is_nan());
        assert!(permutation_p_value(&[1.0], &[], WeatConfig::default())
            .0
            .is_nan());
        assert!(
            permutation_p_value(&[f64::NAN], &[1.0], WeatConfig::default())
                .0
                .is_nan()
        );
        assert!(effect_size_interval(&[], &[1.0], 100, 0.95, 0).low.is_nan());
        assert!(!effect_size(&[1.0, 1.0], &[1.0]).is_finite());
    }

    #[test]
    fn the_interval_brackets_the_effect_and_is_seeded() {
        let x = [0.3, 0.1, 0.25, -0.05, 0.2, 0.15, 0.05, 0.12];
        let y = [0.0, 0.1, -0.2, 0.04, 0.11, -0.1, 0.02, 0.06];
        let d = effect_size(&x, &y);
        let i = effect_size_interval(&x, &y, 2000, 0.95, 3);
        assert!(i.low < d && d < i.high, "{i:?} {d}");
        assert_eq!(i, effect_size_interval(&x, &y, 2000, 0.95, 3));
    }
}
