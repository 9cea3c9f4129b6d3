//! Statistics: intervals, tests, bootstrap, multiplicity corrections, judge correction and power.
//!
//! Every function is pure and total: invalid or degenerate input returns a documented value
//! (NaN, `[0, 1]`, `p = 1`), never a panic. Closed forms are validated against scipy and
//! statsmodels to 1e-9 relative (`scripts/stats-reference.py`); everything random is seeded with
//! ChaCha and derives each resample's generator from `(seed, resample index)`, so results do not
//! depend on the number of threads.

use serde::{Deserialize, Serialize};

pub mod bootstrap;
pub mod correlation;
pub mod distributions;
pub mod judge;
pub mod multiplicity;
pub mod paired;
pub mod power;
pub mod proportion;
mod ranks;
mod resampling;
pub mod two_sample;
pub mod weat;

pub use bootstrap::{
    bootstrap, bootstrap_binary_mean, bootstrap_grouped_jackknife, cluster_bootstrap,
    BootstrapConfig, BootstrapResult,
};
pub use correlation::{pearson, Pearson};
pub use judge::{
    rogan_gladen, rogan_gladen_interval, DetectorAccuracy, JudgeCorrection, JudgeCounts,
};
pub use multiplicity::{benjamini_hochberg, holm};
pub use paired::{
    mcnemar_exact, mcnemar_midp, paired_difference, paired_permutation, sign_test,
    wilcoxon_signed_rank, PairedDifference, PermutationConfig, WilcoxonConfig, WilcoxonMethod,
};
pub use power::{
    detectable_cohens_h, min_detectable_difference, min_detectable_paired_difference, underpowered,
};
pub use proportion::{
    binomial_test, chi_square_independence, clopper_pearson, cohens_h, cramers_v, fisher_exact,
    newcombe_difference, newcombe_paired_difference, wilson,
};
pub use two_sample::{
    cohens_d, mann_whitney_u, permutation_two_sample, rank_biserial, welch_t_test,
    MannWhitneyMethod,
};
pub use weat::{weat, weat_from_associations, WeatConfig, WeatResult};

/// A two-sided interval `[low, high]`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// The lower bound.
    pub low: f64,
    /// The upper bound.
    pub high: f64,
}

/// A test statistic and its p-value.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct TestResult {
    /// The test statistic (its scale depends on the test).
    pub statistic: f64,
    /// The p-value.
    pub p_value: f64,
}
