//! Metrics: estimates with intervals and tests, computed from a probe's scored attempts.
//! Group-by is automatic: a metric names the attributes to group by, never the groups.

pub mod paired_gap;
pub mod rate;

pub use paired_gap::PairedGap;
pub use rate::Rate;

/// Every built-in metric kind with a one-line description.
pub const METRICS: &[(&str, &str)] = &[
    (
        rate::KIND,
        "share of attempts a binary detector flags, overall and per group, with Wilson intervals",
    ),
    (
        paired_gap::KIND,
        "difference of a binary detector's rate between two groups on matched cases, exact McNemar test, Newcombe paired interval",
    ),
];

/// The binary outcome of an attempt for a detector: None when the detector did not score it
/// (an errored attempt, or an answer the detector does not apply to).
pub(crate) fn outcome(attempt: &audit_core::Attempt, detector: &str) -> Option<bool> {
    attempt.scores.get(detector).map(|&value| value >= 0.5)
}
