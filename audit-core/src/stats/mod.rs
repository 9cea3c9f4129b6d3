//! Statistics: intervals, tests, bootstrap, multiplicity corrections, judge correction and power.
//!
//! Every function is pure and total: invalid or degenerate input returns a documented value
//! (NaN, `[0, 1]`, `p = 1`), never a panic. Closed forms are validated against scipy and
//! statsmodels to 1e-9 relative (`scripts/stats-reference.py`); everything random is seeded with
//! ChaCha and derives each resample's generator from `(seed, resample index)`, so results do not
//! depend on the number of threads.

use serde::{Deserialize, Serialize};

pub mod distributions;
pub mod multiplicity;
pub mod paired;
pub mod proportion;

pub use multiplicity::{benjamini_hochberg, holm};
pub use paired::{mcnemar_exact, mcnemar_midp};
pub use proportion::{
    binomial_test, chi_square_independence, clopper_pearson, cohens_h, cramers_v, fisher_exact,
    newcombe_difference, newcombe_paired_difference, wilson,
};

/// A two-sided interval `[low, high]`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// A test statistic and its p-value.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
}
