//! The measured accuracy of the rule-based binary detectors against human labels, as counts
//! (`audit_core::stats::DetectorAccuracy`, the one type judges measured at run time use too):
//! the data the corrected metrics use. The counts are computed from the labelled files by
//! `probes/tests/it/safety_detector_accuracy.rs`, which fails when they drift from the
//! detector, and recorded with every baseline in `fixtures/data/detector_accuracy.json`
//! (docs/detectors.md).

use audit_core::stats::DetectorAccuracy;

/// The refusal detector on the held-out quarter of XSTest's human-labelled completions (the
/// prompts whose number is a multiple of 4, with the completions of all five models; full and
/// partial refusals are positives). The rules were written looking only at the other prompts.
pub fn refusal() -> DetectorAccuracy {
    DetectorAccuracy {
        detector: super::refusal::ID.to_string(),
        dataset: "xstest-completions-held-out".to_string(),
        true_positives: 245,
        positives: 280,
        true_negatives: 259,
        negatives: 280,
        unscored: 0,
    }
}

/// The detectors with a stored accuracy.
pub const MEASURED: &[&str] = &[super::refusal::ID];

/// The stored accuracy of a detector, if it has one.
pub fn of(detector: &str) -> Option<DetectorAccuracy> {
    (detector == super::refusal::ID).then(refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measured_detector_has_its_counts() {
        for id in MEASURED {
            let a = of(id).expect("stored");
            assert_eq!(a.detector, *id);
            assert!(a.true_positives <= a.positives && a.true_negatives <= a.negatives);
        }
        assert!(of("no-such-detector").is_none());
    }

    #[test]
    fn the_complement_swaps_the_roles() {
        let a = refusal();
        let c = a.complement();
        assert_eq!(c.sensitivity(), a.specificity());
        assert_eq!(c.specificity(), a.sensitivity());
        assert_eq!(c.complement(), a);
    }
}
