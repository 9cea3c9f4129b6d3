//! Suites: named, versioned sets of probes, each with its transforms, detectors and metrics.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::probe::{Detector, Judge, Metric, Probe, Transform};

/// One probe of a suite with everything that runs with it.
pub struct ProbePlan {
    /// The probe that makes the cases.
    pub probe: Box<dyn Probe>,
    /// Each transform adds one variant of every case; the plain case always runs too.
    pub transforms: Vec<Box<dyn Transform>>,
    /// Rule-based detectors, scoring every attempt in the first pass.
    pub detectors: Vec<Box<dyn Detector>>,
    /// Model-based detectors, answered by a judge backend in a second pass.
    pub judges: Vec<Box<dyn Judge>>,
    /// The metrics computed over the probe's attempts.
    pub metrics: Vec<Box<dyn Metric>>,
}

/// A suite ready to run.
pub struct Suite {
    /// How the run names it.
    pub reference: SuiteRef,
    /// One sentence on what it audits.
    pub description: String,
    /// Its probes, in suite-file order.
    pub probes: Vec<ProbePlan>,
}

/// How a run names the suite it ran: recorded in manifest.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteRef {
    /// The suite's id (`safety-core`, or the suite file's `id`).
    pub id: String,
    /// The suite's version, as its file states it.
    pub version: String,
    /// `builtin:<id>` or the path of the user's suite file.
    pub source: String,
    /// sha256 of the suite file's bytes.
    pub sha256: String,
}

impl fmt::Debug for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suite")
            .field("reference", &self.reference)
            .field(
                "probes",
                &self.probes.iter().map(|p| p.probe.id()).collect::<Vec<_>>(),
            )
            .finish()
    }
}
