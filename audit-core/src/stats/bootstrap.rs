//! Bootstrap intervals (percentile and BCa) for any statistic of a slice of observations, with
//! optional cluster resampling, seeded and parallel; plus the fast path for the mean of 0/1 data.
//!
//! Design decision: resample `i` draws from its own ChaCha8 stream `(seed, i)` and the replicates
//! are collected in index order, so the result is bit-for-bit the same on any number of threads.

use std::collections::HashMap;
use std::hash::Hash;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::distributions::{normal_cdf, normal_quantile};
use super::resampling::{below, stream, BinomialSampler, IndexStream};
use super::Interval;

/// Options of the bootstrap.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct BootstrapConfig {
    /// How many resamples.
    pub resamples: usize,
    /// Two-sided confidence level in (0, 1), e.g. 0.95.
    pub confidence: f64,
    /// The seed of the resamples (each drawn from its own stream).
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: 10_000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

/// A bootstrap estimate with both intervals.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct BootstrapResult {
    /// The statistic on the original data.
    pub estimate: f64,
    /// Standard deviation of the replicates (ddof = 1).
    pub standard_error: f64,
    /// The percentile interval of the replicates.
    pub percentile: Interval,
    /// The bias-corrected and accelerated (BCa) interval (Efron 1987).
    pub bca: Interval,
    /// Replicates that were not finite and were left out of the intervals.
    pub non_finite_replicates: usize,
}

fn nan_result(estimate: f64) -> BootstrapResult {
    let nan = Interval {
        low: f64::NAN,
        high: f64::NAN,
    };
    BootstrapResult {
        estimate,
        standard_error: f64::NAN,
        percentile: nan,
        bca: nan,
        non_finite_replicates: 0,
    }
}

/// The `q`-quantile (q in [0, 1]) of sorted values by linear interpolation (numpy's default
/// `"linear"` method, as scipy's bootstrap uses).
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below_index = position.floor() as usize;
    let above_index = (below_index + 1).min(sorted.len() - 1);
    let fraction = position - below_index as f64;
    sorted[below_index] + fraction * (sorted[above_index] - sorted[below_index])
}

/// The BCa acceleration from jackknife values `θᵢ`: `a = Σ(θ̄ − θᵢ)³ / (6 (Σ(θ̄ − θᵢ)²)^{3/2})`,
/// 0 when the jackknife values are all equal.
fn acceleration(jackknife: &[f64]) -> f64 {
    let mean = jackknife.iter().sum::<f64>() / jackknife.len().max(1) as f64;
    let cubic: f64 = jackknife.iter().map(|t| (mean - t).powi(3)).sum();
    let square: f64 = jackknife.iter().map(|t| (mean - t).powi(2)).sum();
    acceleration_from_sums(cubic, square)
}

fn acceleration_from_sums(cubic: f64, square: f64) -> f64 {
    if square > 0.0 {
        cubic / (6.0 * square.powf(1.5))
    } else {
        0.0
    }
}

/// Percentile and BCa intervals from the replicates, the estimate and the acceleration `a`, as
/// `scipy.stats.bootstrap`: `z₀ = Φ⁻¹((#{θ* < θ̂} + #{θ* ≤ θ̂}) / 2B)`,
/// `α₁ = Φ(z₀ + (z₀ + z_α)/(1 − a(z₀ + z_α)))` and likewise `α₂` with `z₁₋α`; the interval ends
/// are the `α₁` and `α₂` quantiles of the replicates.
fn intervals(estimate: f64, mut replicates: Vec<f64>, a: f64, confidence: f64) -> BootstrapResult {
    let total = replicates.len();
    replicates.retain(|v| v.is_finite());
    let non_finite_replicates = total - replicates.len();
    if replicates.is_empty() || confidence.is_nan() || confidence <= 0.0 || confidence >= 1.0 {
        return nan_result(estimate);
    }
    replicates.sort_by(f64::total_cmp);
    let b = replicates.len() as f64;
    let mean = replicates.iter().sum::<f64>() / b;
    let standard_error = if replicates.len() > 1 {
        (replicates.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (b - 1.0)).sqrt()
    } else {
        0.0
    };
    let alpha = (1.0 - confidence) / 2.0;
    let percentile = Interval {
        low: quantile_sorted(&replicates, alpha),
        high: quantile_sorted(&replicates, 1.0 - alpha),
    };
    let less = replicates.partition_point(|&v| v < estimate) as f64;
    let less_equal = replicates.partition_point(|&v| v <= estimate) as f64;
    let z0 = normal_quantile((less + less_equal) / (2.0 * b));
    let z_alpha = normal_quantile(alpha);
    let adjusted = |z: f64| {
        let shifted = z0 + z;
        normal_cdf(z0 + shifted / (1.0 - a * shifted))
    };
    let bca = if z0.is_finite() {
        Interval {
            low: quantile_sorted(&replicates, adjusted(z_alpha)),
            high: quantile_sorted(&replicates, adjusted(-z_alpha)),
        }
    } else {
        // Every replicate lies on one side of the estimate: BCa is undefined (scipy returns NaN
        // with a warning); fall back to the percentile interval.
        percentile
    };
    BootstrapResult {
        estimate,
        standard_error,
        percentile,
        bca,
        non_finite_replicates,
    }
}

/// Nonparametric bootstrap of `statistic` over the observations `data`: each of `resamples`
/// resamples draws `n` observations with replacement (resample `i` from ChaCha8 stream
/// `(seed, i)`), in parallel; returns the percentile interval and the BCa interval (Efron 1987;
/// formulas and quantile interpolation as `scipy.stats.bootstrap`) with the acceleration from
/// the leave-one-out jackknife. The jackknife costs `n` evaluations of the statistic, so for very
/// large `n` prefer [`bootstrap_grouped_jackknife`], [`cluster_bootstrap`] (jackknife over
/// clusters) or a structured fast path such as [`bootstrap_binary_mean`].
///
/// Edge cases: empty data gives a NaN estimate and NaN intervals; non-finite replicates are left
/// out of the intervals and counted; when every replicate falls on one side of the estimate the
/// BCa interval falls back to the percentile interval.
pub fn bootstrap<T, F>(data: &[T], statistic: F, config: &BootstrapConfig) -> BootstrapResult
where
    T: Clone + Send + Sync,
    F: Fn(&[T]) -> f64 + Sync,
{
    if data.is_empty() || config.resamples == 0 {
        return nan_result(if data.is_empty() {
            f64::NAN
        } else {
            statistic(data)
        });
    }
    let estimate = statistic(data);
    let replicates = resample(data, &statistic, config);
    let n = data.len();
    // A single observation has no leave-one-out jackknife (it would be empty): a = 0.
    let jackknife_size = if n < 2 { 0 } else { n };
    let jackknife: Vec<f64> = (0..jackknife_size)
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(n),
            |buffer: &mut Vec<T>, left_out| {
                buffer.clear();
                buffer.extend_from_slice(&data[..left_out]);
                buffer.extend_from_slice(&data[left_out + 1..]);
                statistic(buffer)
            },
        )
        .collect();
    intervals(
        estimate,
        replicates,
        acceleration(&jackknife),
        config.confidence,
    )
}

/// The bootstrap replicates: resample `i` draws `n` observations with replacement from ChaCha8
/// stream `(seed, i)`; collected in index order.
fn resample<T, F>(data: &[T], statistic: &F, config: &BootstrapConfig) -> Vec<f64>
where
    T: Clone + Send + Sync,
    F: Fn(&[T]) -> f64 + Sync,
{
    let n = data.len();
    (0..config.resamples as u64)
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(n),
            |buffer: &mut Vec<T>, index| {
                let mut rng = stream(config.seed, index);
                buffer.clear();
                // A `Range` map has an exact length, so `extend` writes without per-push
                // capacity checks.
                match u32::try_from(n) {
                    Ok(bound) => {
                        let mut indices = IndexStream::new(rng, bound);
                        buffer.extend((0..n).map(|_| data[indices.index()].clone()));
                    }
                    Err(_) => {
                        buffer.extend(
                            (0..n).map(|_| data[below(&mut rng, n as u64) as usize].clone()),
                        );
                    }
                }
                statistic(buffer)
            },
        )
        .collect()
}

/// [`bootstrap`] with the BCa acceleration from a delete-a-group jackknife instead of the
/// leave-one-out one: observation `i` belongs to group `i mod groups`, and the jackknife leaves
/// out one group at a time (`groups` evaluations of the statistic instead of `n`). It estimates
/// the same acceleration (for a mean both are `skewness/(6√n)` in expectation) and makes BCa
/// affordable for very large `n` with a statistic that has no structure to exploit. The
/// replicates, and so the percentile interval, are identical to [`bootstrap`]'s.
///
/// Edge cases: as [`bootstrap`]; `groups` is clamped to `[2, n]` (`groups = n` is exactly the
/// leave-one-out jackknife).
pub fn bootstrap_grouped_jackknife<T, F>(
    data: &[T],
    statistic: F,
    groups: usize,
    config: &BootstrapConfig,
) -> BootstrapResult
where
    T: Clone + Send + Sync,
    F: Fn(&[T]) -> f64 + Sync,
{
    if data.len() < 2 || config.resamples == 0 {
        return bootstrap(data, statistic, config);
    }
    let n = data.len();
    let groups = groups.clamp(2, n);
    let estimate = statistic(data);
    let replicates = resample(data, &statistic, config);
    let jackknife: Vec<f64> = (0..groups)
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(n),
            |buffer: &mut Vec<T>, left_out| {
                // Copy each block of `groups` consecutive observations but its `left_out`-th.
                buffer.clear();
                for block in data.chunks(groups) {
                    if left_out < block.len() {
                        buffer.extend_from_slice(&block[..left_out]);
                        buffer.extend_from_slice(&block[left_out + 1..]);
                    } else {
                        buffer.extend_from_slice(block);
                    }
                }
                statistic(buffer)
            },
        )
        .collect();
    intervals(
        estimate,
        replicates,
        acceleration(&jackknife),
        config.confidence,
    )
}

/// Cluster bootstrap: like [`bootstrap`], but each resample draws whole clusters with
/// replacement (as many as there are clusters) and keeps all their observations, so
/// within-cluster correlation (items sharing a template or a source) is respected. The BCa
/// acceleration comes from the jackknife over clusters (leave one cluster out). `cluster_ids`
/// gives each observation's cluster; clusters are ordered by first appearance.
///
/// Edge cases: `cluster_ids.len() != data.len()` or empty data gives NaN intervals.
pub fn cluster_bootstrap<T, C, F>(
    data: &[T],
    cluster_ids: &[C],
    statistic: F,
    config: &BootstrapConfig,
) -> BootstrapResult
where
    T: Clone + Send + Sync,
    C: Eq + Hash,
    F: Fn(&[T]) -> f64 + Sync,
{
    if data.is_empty() || cluster_ids.len() != data.len() || config.resamples == 0 {
        return nan_result(f64::NAN);
    }
    let mut index_of: HashMap<&C, usize> = HashMap::new();
    let mut clusters: Vec<Vec<T>> = Vec::new();
    for (value, id) in data.iter().zip(cluster_ids) {
        let next = clusters.len();
        let slot = *index_of.entry(id).or_insert(next);
        if slot == clusters.len() {
            clusters.push(Vec::new());
        }
        clusters[slot].push(value.clone());
    }
    let k = clusters.len();
    let estimate = statistic(data);
    let replicates: Vec<f64> = (0..config.resamples as u64)
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(data.len()),
            |buffer: &mut Vec<T>, index| {
                let mut rng = stream(config.seed, index);
                buffer.clear();
                for _ in 0..k {
                    buffer.extend_from_slice(&clusters[below(&mut rng, k as u64) as usize]);
                }
                statistic(buffer)
            },
        )
        .collect();
    // A single cluster has no jackknife (leaving it out leaves nothing): a = 0.
    let jackknife_size = if k < 2 { 0 } else { k };
    let jackknife: Vec<f64> = (0..jackknife_size)
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(data.len()),
            |buffer: &mut Vec<T>, left_out| {
                buffer.clear();
                for (c, members) in clusters.iter().enumerate() {
                    if c != left_out {
                        buffer.extend_from_slice(members);
                    }
                }
                statistic(buffer)
            },
        )
        .collect();
    intervals(
        estimate,
        replicates,
        acceleration(&jackknife),
        config.confidence,
    )
}

/// Bootstrap of the mean of `n` binary observations of which `successes` are 1, exploiting the
/// structure: a resample's mean depends only on how many ones it drew, which is exactly
/// `Bin(n, successes/n)`, so each resample is one exact binomial draw instead of `n` draws. The
/// jackknife is in closed form (leaving out a 1 gives `(k − 1)/(n − 1)`, a 0 gives
/// `k/(n − 1)`). Same distribution of results as [`bootstrap`] with the mean; not the same
/// random numbers.
///
/// Edge cases: `n == 0` gives NaN; `n == 1` has a zero-width interval.
pub fn bootstrap_binary_mean(successes: u64, n: u64, config: &BootstrapConfig) -> BootstrapResult {
    if n == 0 || config.resamples == 0 {
        return nan_result(f64::NAN);
    }
    let k = successes.min(n);
    let nf = n as f64;
    let estimate = k as f64 / nf;
    let sampler = BinomialSampler::new(n, estimate);
    let replicates: Vec<f64> = (0..config.resamples as u64)
        .into_par_iter()
        .map(|index| {
            let mut rng = stream(config.seed, index);
            sampler.sample(&mut rng) as f64 / nf
        })
        .collect();
    // The jackknife takes two distinct values, k times and n − k times: its sums of powers are in
    // closed form instead of n values.
    let a = if n > 1 {
        let one_out = (k as f64 - 1.0) / (nf - 1.0);
        let zero_out = k as f64 / (nf - 1.0);
        let (w1, w0) = (k as f64, (n - k) as f64);
        let mean = (w1 * one_out + w0 * zero_out) / nf;
        let cubic = w1 * (mean - one_out).powi(3) + w0 * (mean - zero_out).powi(3);
        let square = w1 * (mean - one_out).powi(2) + w0 * (mean - zero_out).powi(2);
        acceleration_from_sums(cubic, square)
    } else {
        0.0
    };
    intervals(estimate, replicates, a, config.confidence)
}
