//! Detectors: what a model's answer is (a refusal, …), as a score per attempt. Suites name
//! them by id through `crate::registry::DETECTORS`.

pub mod refusal;
