//! Benchmarks declared in a suite file, without Rust (docs/custom-benchmarks.md): the `table`
//! probe family over the user's own CSV or JSONL file, its prompt templates, and the detectors
//! a suite declares in `[[detector]]` tables (regular expressions, phrase lists, judge rubrics).

pub mod detectors;
pub mod table;
pub mod template;
