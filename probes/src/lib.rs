//! Probity's probes (one module per family), detectors, transforms and metrics. Nothing here
//! knows what model it attacks: probes make cases, detectors and metrics read attempts.

pub mod attacks;
pub mod bias;
pub mod catalogue;
pub mod context;
pub mod counterfactual;
pub mod csv;
pub mod declared;
pub mod detectors;
pub mod judges;
pub mod metrics;
pub mod provenance;
pub mod registry;
pub mod safety;
pub mod sampling;
pub mod transforms;
pub mod weat;

pub use context::Context;
