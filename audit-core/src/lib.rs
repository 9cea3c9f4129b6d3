//! Probity's core: the vocabulary (cases, queries, attempts, scores), the extension traits
//! (Probe, Transform, Detector, Metric, Backend), the run loop, the run-directory schema and the
//! statistics. It knows no model runtime, no network and no template engine: it is the API
//! boundary every other crate builds on.

// Every public item is documented (issue 17): this crate is the API the others speak.
#![warn(missing_docs)]

pub mod attack;
pub mod attempt;
pub mod backend;
pub mod case;
pub mod journal;
pub mod probe;
pub mod redact;
pub mod run;
pub mod rundir;
pub mod session;
pub mod stats;
pub mod suite;
pub mod summary;

pub use attempt::{Attempt, Score};
pub use backend::{
    case_seed, Answer, Backend, BackendError, FileDigest, Generation, ModelInfo, SharedBackend,
};
pub use case::{Attributes, Case, Message, Query, QueryKind, Role, SearchParams};
pub use probe::{
    Detector, Judge, Metric, MetricContext, MetricOutput, Probe, ProbeError, ProbeInfo, Transform,
};
pub use suite::{ProbePlan, Suite, SuiteRef};
pub use summary::{Estimate, Gate, Summary, Test};
