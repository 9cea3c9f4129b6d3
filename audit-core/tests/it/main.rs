//! Integration tests of audit-core, as one test binary: the statistics against scipy/statsmodels reference values, by property and by simulation, and the run directory's round trip.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

mod rundir_roundtrip;
mod stats_pearson;
mod stats_properties;
mod stats_reference;
mod stats_resampling;
mod stats_simulation;
mod stats_weat;
