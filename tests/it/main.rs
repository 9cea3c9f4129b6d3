//! End-to-end tests of the `probity` binary, as one test binary (one link instead of one per
//! file). Tiers: most need nothing; `openai` needs the llama.cpp server
//! (scripts/install-llama-server.sh) and, with `bias_crows`, `crows_mlm`, `lora`, `weat`, the
//! fetched weights (scripts/fetch-models.sh); `report_browser` needs Chromium and is ignored
//! unless asked for (`.ci/run` runs it). docs/testing.md has the table.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

mod support;

mod attacks;
mod attacks_tree;
mod bias_bold;
mod bias_crows;
mod compare;
mod crows_mlm;
mod datasets;
mod declared;
mod gate;
mod gcg;
mod history;
mod history_browser;
mod integrity;
mod judges;
mod lora;
mod merge;
mod openai;
mod progress;
mod report_browser;
mod run;
mod safety_core;
mod scale_out;
mod shard;
mod tidy;
mod weat;
