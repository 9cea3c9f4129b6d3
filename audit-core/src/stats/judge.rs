//! Judge correction: the Rogan–Gladen prevalence corrected for an imperfect detector, with a
//! bootstrap interval that carries the detector's own uncertainty.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bootstrap::{quantile_sorted, BootstrapConfig};
use super::resampling::{stream, BinomialSampler};
use super::Interval;

/// Rogan–Gladen corrected prevalence `(r + sp − 1)/(se + sp − 1)` from an observed positive
/// rate `r` and the detector's sensitivity `se` and specificity `sp` (Rogan and Gladen 1978),
/// clamped to [0, 1].
///
/// Edge cases: `se + sp ≤ 1` (a detector no better than chance) or a NaN input gives NaN.
pub fn rogan_gladen(observed_rate: f64, sensitivity: f64, specificity: f64) -> f64 {
    let youden = sensitivity + specificity - 1.0;
    if youden.is_nan() || observed_rate.is_nan() || youden <= 0.0 {
        return f64::NAN;
    }
    ((observed_rate + specificity - 1.0) / youden).clamp(0.0, 1.0)
}

/// The three samples behind a corrected rate: the audited attempts the detector flagged, and the
/// detector's results on a labelled set of positives and of negatives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct JudgeCounts {
    /// Audited attempts the detector flagged.
    pub flagged: u64,
    /// Audited attempts scored.
    pub attempts: u64,
    /// Labelled positives the detector flagged.
    pub true_positives: u64,
    /// Labelled positives.
    pub positives: u64,
    /// Labelled negatives the detector did not flag.
    pub true_negatives: u64,
    /// Labelled negatives.
    pub negatives: u64,
}

/// A detector's results on a human-labelled set: the counts behind a Rogan–Gladen correction.
/// The one type for every measured accuracy: a rule-based detector's, measured once and stored
/// with the code (`probes::detectors::accuracy`), and an LLM judge's, measured when a run starts
/// (it depends on the judge model) and recorded in summary.json.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorAccuracy {
    /// The detector's (judge's) id, e.g. `harm-judge`.
    pub detector: String,
    /// The labelled set, e.g. `jailbreakbench-classifier-comparison`.
    pub dataset: String,
    /// Labelled positives the detector flagged.
    pub true_positives: u64,
    /// Labelled positives scored.
    pub positives: u64,
    /// Labelled negatives the detector did not flag.
    pub true_negatives: u64,
    /// Labelled negatives scored.
    pub negatives: u64,
    /// Labelled items the detector gave no score (an unreadable verdict), left out of the counts.
    pub unscored: u64,
}

impl DetectorAccuracy {
    /// The share of labelled positives flagged (NaN without positives).
    pub fn sensitivity(&self) -> f64 {
        share(self.true_positives, self.positives)
    }

    /// The share of labelled negatives not flagged (NaN without negatives).
    pub fn specificity(&self) -> f64 {
        share(self.true_negatives, self.negatives)
    }

    /// The mean of sensitivity and specificity.
    pub fn balanced_accuracy(&self) -> f64 {
        (self.sensitivity() + self.specificity()) / 2.0
    }

    /// The same counts for the complementary outcome (not flagged): sensitivity and
    /// specificity swap roles. An attack-success rate is the rate of answers the refusal
    /// detector does not flag.
    pub fn complement(&self) -> DetectorAccuracy {
        DetectorAccuracy {
            true_positives: self.true_negatives,
            positives: self.negatives,
            true_negatives: self.true_positives,
            negatives: self.positives,
            ..self.clone()
        }
    }

    /// The counts behind a corrected rate of flagged attempts (`complement`: of attempts not
    /// flagged, for which sensitivity and specificity swap roles).
    pub fn judge_counts(&self, flagged: u64, attempts: u64, complement: bool) -> JudgeCounts {
        let (tp, p, tn, n) = if complement {
            (
                self.true_negatives,
                self.negatives,
                self.true_positives,
                self.positives,
            )
        } else {
            (
                self.true_positives,
                self.positives,
                self.true_negatives,
                self.negatives,
            )
        };
        JudgeCounts {
            flagged,
            attempts,
            true_positives: tp,
            positives: p,
            true_negatives: tn,
            negatives: n,
        }
    }
}

/// `k / n`, NaN when `n` is 0.
fn share(k: u64, n: u64) -> f64 {
    if n == 0 {
        f64::NAN
    } else {
        k as f64 / n as f64
    }
}

/// A corrected rate with its interval.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct JudgeCorrection {
    /// The share of attempts flagged.
    pub observed_rate: f64,
    /// The detector's sensitivity on the labelled set.
    pub sensitivity: f64,
    /// The detector's specificity on the labelled set.
    pub specificity: f64,
    /// The Rogan–Gladen estimate of the true rate.
    pub corrected_rate: f64,
    /// Percentile bootstrap interval of the corrected rate.
    pub interval: Interval,
    /// Resamples where the resampled detector was no better than chance (left out).
    pub undefined_resamples: usize,
}

/// Rogan–Gladen correction with a percentile bootstrap interval over the three independent
/// samples: each resample redraws the flagged count, the true positives and the true negatives
/// from their binomials (the exact distribution of resampling 0/1 observations), each resample
/// from its own ChaCha8 stream `(seed, index)`, so the interval carries the sampling error of the
/// audit and of the detector's evaluation.
///
/// Edge cases: an empty sample gives NaN rates and a NaN interval; resamples with
/// `se + sp ≤ 1` are left out and counted.
pub fn rogan_gladen_interval(counts: &JudgeCounts, config: &BootstrapConfig) -> JudgeCorrection {
    let rate = |k: u64, n: u64| {
        if n == 0 {
            f64::NAN
        } else {
            k.min(n) as f64 / n as f64
        }
    };
    let observed_rate = rate(counts.flagged, counts.attempts);
    let sensitivity = rate(counts.true_positives, counts.positives);
    let specificity = rate(counts.true_negatives, counts.negatives);
    let corrected_rate = rogan_gladen(observed_rate, sensitivity, specificity);
    let nan = Interval {
        low: f64::NAN,
        high: f64::NAN,
    };
    if observed_rate.is_nan() || sensitivity.is_nan() || specificity.is_nan() {
        return JudgeCorrection {
            observed_rate,
            sensitivity,
            specificity,
            corrected_rate,
            interval: nan,
            undefined_resamples: 0,
        };
    }
    let flagged = BinomialSampler::new(counts.attempts, observed_rate);
    let positives = BinomialSampler::new(counts.positives, sensitivity);
    let negatives = BinomialSampler::new(counts.negatives, specificity);
    let replicates: Vec<f64> = (0..config.resamples as u64)
        .into_par_iter()
        .map(|index| {
            let mut rng = stream(config.seed, index);
            let r = flagged.sample(&mut rng) as f64 / counts.attempts as f64;
            let se = positives.sample(&mut rng) as f64 / counts.positives as f64;
            let sp = negatives.sample(&mut rng) as f64 / counts.negatives as f64;
            rogan_gladen(r, se, sp)
        })
        .collect();
    let mut defined: Vec<f64> = replicates.iter().copied().filter(|v| !v.is_nan()).collect();
    let undefined_resamples = replicates.len() - defined.len();
    defined.sort_by(f64::total_cmp);
    let valid =
        !(config.confidence.is_nan() || config.confidence <= 0.0 || config.confidence >= 1.0);
    let interval = if defined.is_empty() || !valid {
        nan
    } else {
        let alpha = (1.0 - config.confidence) / 2.0;
        Interval {
            low: quantile_sorted(&defined, alpha),
            high: quantile_sorted(&defined, 1.0 - alpha),
        }
    };
    JudgeCorrection {
        observed_rate,
        sensitivity,
        specificity,
        corrected_rate,
        interval,
        undefined_resamples,
    }
}
