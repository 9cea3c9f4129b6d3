//! Detectors: what a model's answer is (a refusal, a leaked canary, personal data), as a score
//! per attempt. Suites name them by id through `crate::registry::DETECTORS`.

pub mod accuracy;
pub mod canary;
pub mod judge_accuracy;
pub mod phrase_list;
pub mod pii;
pub mod refusal;
pub mod target_string;
pub mod vader;
