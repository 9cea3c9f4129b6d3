//! Metrics: estimates with intervals and tests, computed from a probe's scored attempts.
//! Group-by is automatic: a metric names the attributes to group by, never the groups.

pub mod asr;
pub mod group_disparity;
pub mod paired_gap;
pub mod rate;
pub mod toxicity;

pub use paired_gap::PairedGap;
pub use rate::Rate;

/// The binary outcome of an attempt for a detector: None when the detector did not score it
/// (an errored attempt, or an answer the detector does not apply to).
pub(crate) fn outcome(attempt: &audit_core::Attempt, detector: &str) -> Option<bool> {
    attempt.flagged(detector)
}
