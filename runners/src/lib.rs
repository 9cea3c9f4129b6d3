//! Backends that answer Probity's queries: candle (real weights on CPU/CUDA/Metal), static word
//! vectors (GloVe, for WEAT), an
//! OpenAI-compatible HTTP client for served models, and a scripted, seeded model for tests;
//! plus a content-addressed response cache around any of them. Runners see cases, never probes.

pub mod cache;
pub mod candle;
pub mod openai;
pub mod scripted;
pub mod toxicity;
pub mod word_vectors;
