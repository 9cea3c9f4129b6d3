//! Integration tests of audit-core, as one test binary: the statistics against scipy/statsmodels reference values, by property and by simulation, and the run directory's round trip.

mod rundir_roundtrip;
mod stats_pearson;
mod stats_properties;
mod stats_reference;
mod stats_resampling;
mod stats_simulation;
mod stats_weat;
