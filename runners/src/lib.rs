//! Backends that answer Probity's queries: candle (real weights on CPU/CUDA/Metal) and a
//! scripted, seeded model for tests. Runners see cases, never probes.

pub mod candle;
pub mod scripted;
