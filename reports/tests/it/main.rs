//! Integration tests of the reports, as one test binary: every format of scripted runs by insta snapshot, the bias report and the comparison of two runs; the JUnit schema check (xmllint) is ignored unless asked for.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

mod attack_view;
mod bias_report;
mod compare_changes;
mod formats;
mod support;
