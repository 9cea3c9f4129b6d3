//! Helpers shared by the end-to-end tests: the binary, servers, mirrors and proxies they start.

pub mod chromium;
pub mod cli;
pub mod judge_server;
pub mod llama;
pub mod mirror;
pub mod proxy;
