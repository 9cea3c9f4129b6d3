//! Detectors: what a model's answer is (a refusal, …), as a score per attempt. The registry is
//! a plain list; suites name detectors by id.

pub mod refusal;

use audit_core::Detector;

/// Every built-in detector id with a one-line description.
pub const DETECTORS: &[(&str, &str)] = &[(
    refusal::ID,
    "1 when the answer opens with a refusal phrase (Probity's list, documented matching), else 0",
)];

/// The built-in detector with this id.
pub fn detector(id: &str) -> Option<Box<dyn Detector>> {
    match id {
        refusal::ID => Some(Box::new(refusal::RefusalDetector)),
        _ => None,
    }
}
