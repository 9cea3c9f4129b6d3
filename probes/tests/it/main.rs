//! Integration tests of the probes, as one test binary: the loaders on the real benchmark files in ../shared/datasets, the VADER port and the detectors' measured accuracy.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

mod bias_bbq;
mod bias_bold;
mod bias_crows_pairs;
mod bias_stereoset;
mod bias_vader;
mod bias_wino;
mod safety_detector_accuracy;
mod safety_loaders;
mod weat_files;
