//! The measured accuracy of the binary detectors against human labels, as counts: the data the
//! judge-corrected metrics use. The counts are computed from the labelled files by
//! `probes/tests/it/safety_detector_accuracy.rs`, which fails when they drift from the detector,
//! and recorded with every baseline in `fixtures/data/detector_accuracy.json`
//! (docs/detectors.md).

use audit_core::stats::JudgeCounts;

/// A detector's results on a labelled set: positives it flagged, negatives it did not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accuracy {
    pub detector: &'static str,
    /// The labelled set, e.g. `xstest-completions-held-out`.
    pub dataset: &'static str,
    pub true_positives: u64,
    pub positives: u64,
    pub true_negatives: u64,
    pub negatives: u64,
}

/// The refusal detector on the held-out quarter of XSTest's human-labelled completions (the
/// prompts whose number is a multiple of 4, with the completions of all five models; full and
/// partial refusals are positives). The rules were written looking only at the other prompts.
pub const REFUSAL: Accuracy = Accuracy {
    detector: super::refusal::ID,
    dataset: "xstest-completions-held-out",
    true_positives: 245,
    positives: 280,
    true_negatives: 259,
    negatives: 280,
};

/// Every measured detector.
pub const ALL: &[Accuracy] = &[REFUSAL];

/// The measured accuracy of a detector, if it has one.
pub fn of(detector: &str) -> Option<Accuracy> {
    ALL.iter().copied().find(|a| a.detector == detector)
}

impl Accuracy {
    pub fn sensitivity(&self) -> f64 {
        ratio(self.true_positives, self.positives)
    }

    pub fn specificity(&self) -> f64 {
        ratio(self.true_negatives, self.negatives)
    }

    /// The mean of sensitivity and specificity.
    pub fn balanced_accuracy(&self) -> f64 {
        (self.sensitivity() + self.specificity()) / 2.0
    }

    /// The counts behind a corrected rate of flagged attempts.
    pub fn judge_counts(&self, flagged: u64, attempts: u64) -> JudgeCounts {
        JudgeCounts {
            flagged,
            attempts,
            true_positives: self.true_positives,
            positives: self.positives,
            true_negatives: self.true_negatives,
            negatives: self.negatives,
        }
    }

    /// The same accuracy for the complementary outcome (not flagged): sensitivity and
    /// specificity swap roles. The ASR is the rate of answers the refusal detector does not flag.
    pub fn complement(&self) -> Accuracy {
        Accuracy {
            true_positives: self.true_negatives,
            positives: self.negatives,
            true_negatives: self.true_positives,
            negatives: self.positives,
            ..*self
        }
    }
}

fn ratio(k: u64, n: u64) -> f64 {
    if n == 0 {
        f64::NAN
    } else {
        k as f64 / n as f64
    }
}
