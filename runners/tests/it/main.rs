//! Integration tests of the backends, as one test binary: candle against transformers' reference values on the fetched weights (scripts/fetch-models.sh) and on tiny seeded models, the LoRA adapters, the MLM and classifier heads, word vectors; the load errors.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

mod candle_common;

mod candle_errors;
mod candle_gcg;
mod candle_gemma3;
mod candle_hf;
mod candle_hf_export;
mod candle_lora;
mod candle_mlm;
mod candle_qwen;
mod candle_reference;
mod candle_smollm2;
mod candle_tiny;
mod toxicity;
mod word_vectors;
