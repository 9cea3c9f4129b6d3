//! The OpenAI-compatible HTTP backend: drives a served model (vLLM, TGI, SGLang, llama.cpp's
//! server, hosted APIs) through `/v1/chat/completions` and `/v1/completions`.
//!
//! - Chat queries go to `/chat/completions`; Choice queries to `/completions` with
//!   `echo: true, logprobs: 1, max_tokens: 1`, summing the prompt log-probabilities of the tokens
//!   that lie after the context (by `text_offset`, in characters). A server that returns no
//!   prompt log-probs makes every Choice an `Answer::Error` saying so: never silently dropped.
//! - Servers disagree on what `token_logprobs[i]` means: llama-cpp-python, for models that add no
//!   BOS token, returns the log-probability of token i under the distribution *after* token i
//!   (shifted by one). Before the first Choice query, a probe request on a counting sequence
//!   checks that the log-probability of each token comes from the distribution before it; a
//!   shifted or unclear server gets every Choice refused with the reason, never scored wrong.
//!   `logprob_prefix` (e.g. the BOS token's text, which llama-cpp-python then strips and aligns)
//!   is prepended to every scored prompt, probe included. See docs/backends/openai.md.
//! - A batch is sent by up to `concurrency` threads, under request-per-minute and
//!   token-per-minute limits.
//! - Retries with exponential backoff and full jitter on 429, 5xx, timeouts, broken connections
//!   and malformed bodies, honouring `Retry-After`; after the last retry the item is an
//!   `Answer::Error` with the reason. 401/403/404 stop the run (`BackendError`): they concern
//!   every request.
//! - The API key is read from an environment variable and is never written anywhere.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use audit_core::redact;
use audit_core::{
    case_seed, Answer, Backend, BackendError, Case, Generation, Message, ModelInfo, Query,
    QueryKind, Role,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::cache::ResponseCache;

/// How to reach and pace the server.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAiOptions {
    /// e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The served model's name, sent as `model`.
    pub model_name: String,
    /// The environment variable holding the API key (none: no Authorization header).
    pub api_key_env: Option<String>,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    /// Per request.
    pub timeout: Duration,
    /// Retries after the first try.
    pub max_retries: u32,
    /// The first backoff; it doubles at every retry, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Where answers are cached, each as soon as it arrives (none: no cache).
    pub cache: Option<std::path::PathBuf>,
    /// Text prepended to every `/completions` prompt of a Choice query (empty: none).
    pub logprob_prefix: String,
    /// Whether prompt log-probs are checked by a probe before the first Choice query.
    pub logprob_alignment: LogprobAlignment,
    /// Fields merged into every request body (server-specific sampling settings, such as
    /// llama-cpp-python's `repeat_penalty`, which is 1.1 there unless sent).
    pub extra_body: serde_json::Map<String, Value>,
}

/// What to do about the meaning of a server's prompt log-probs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogprobAlignment {
    /// Probe the server once before the first Choice query; refuse Choice queries unless the
    /// log-probs are aligned as OpenAI's API defines them.
    Check,
    /// Use the log-probs as they come (for servers the probe cannot judge).
    Trust,
}

impl std::str::FromStr for LogprobAlignment {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "check" => Ok(LogprobAlignment::Check),
            "trust" => Ok(LogprobAlignment::Trust),
            other => Err(format!("`{other}`: expected check or trust")),
        }
    }
}

impl Default for OpenAiOptions {
    fn default() -> Self {
        OpenAiOptions {
            base_url: "http://127.0.0.1:8000/v1".to_string(),
            model_name: "default".to_string(),
            api_key_env: None,
            concurrency: 4,
            requests_per_minute: None,
            tokens_per_minute: None,
            timeout: Duration::from_secs(120),
            max_retries: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            cache: None,
            logprob_prefix: String::new(),
            logprob_alignment: LogprobAlignment::Check,
            extra_body: serde_json::Map::new(),
        }
    }
}

/// The backend.
pub struct OpenAiBackend {
    options: OpenAiOptions,
    agent: ureq::Agent,
    api_key: Option<String>,
    limiter: Mutex<RateLimiter>,
    cache: Option<ResponseCache>,
    /// The verdict of the alignment probe, taken once before the first Choice query.
    alignment: std::sync::OnceLock<Result<(), String>>,
}

/// Why the backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiError {
    #[error("--base-url {0}: expected an http:// or https:// URL")]
    BaseUrl(String),
    #[error("the API key variable {0} is not set")]
    MissingKey(String),
    #[error("--concurrency must be at least 1")]
    Concurrency,
    #[error("{0}")]
    Cache(BackendError),
}

impl OpenAiBackend {
    pub fn new(options: OpenAiOptions) -> Result<OpenAiBackend, OpenAiError> {
        if !(options.base_url.starts_with("http://") || options.base_url.starts_with("https://")) {
            return Err(OpenAiError::BaseUrl(options.base_url));
        }
        if options.concurrency == 0 {
            return Err(OpenAiError::Concurrency);
        }
        let api_key = match &options.api_key_env {
            Some(name) => Some(
                std::env::var(name)
                    .ok()
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| OpenAiError::MissingKey(name.clone()))?,
            ),
            None => None,
        };
        let agent = ureq::AgentBuilder::new()
            .timeout(options.timeout)
            .max_idle_connections_per_host(options.concurrency)
            .build();
        let limiter = Mutex::new(RateLimiter::new(
            options.requests_per_minute,
            options.tokens_per_minute,
        ));
        let mut backend = OpenAiBackend {
            options,
            agent,
            api_key,
            limiter,
            cache: None,
            alignment: std::sync::OnceLock::new(),
        };
        if let Some(dir) = &backend.options.cache {
            backend.cache =
                Some(ResponseCache::new(dir, &backend.model()).map_err(OpenAiError::Cache)?);
        }
        Ok(backend)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.options.base_url.trim_end_matches('/'))
    }

    /// One request with retries; Ok(body) or Err(Outcome) saying whether the failure is fatal.
    fn post(&self, path: &str, body: &Value, seed: u64, tokens: u32) -> Result<Value, Failure> {
        let mut body = body.clone();
        if let Some(fields) = body.as_object_mut() {
            for (key, value) in &self.options.extra_body {
                fields.insert(key.clone(), value.clone());
            }
        }
        let text = body.to_string();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut last = String::new();
        for attempt in 0..=self.options.max_retries {
            self.wait_for_budget(tokens);
            let mut request = self
                .agent
                .post(&self.url(path))
                .set("Content-Type", "application/json");
            if let Some(key) = &self.api_key {
                request = request.set("Authorization", &format!("Bearer {key}"));
            }
            let mut retry_after = None;
            match request.send_string(&text) {
                Ok(response) => match response.into_string() {
                    Ok(body) => match serde_json::from_str::<Value>(&body) {
                        Ok(value) if value.get("error").is_none() => return Ok(value),
                        Ok(value) => last = format!("server error: {}", value["error"]),
                        Err(e) => last = format!("malformed JSON from the server: {e}"),
                    },
                    Err(e) => last = format!("reading the response: {e}"),
                },
                Err(ureq::Error::Status(code, response)) => {
                    retry_after = response
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(|s| Duration::from_secs_f64(s.min(600.0)));
                    let detail = response.into_string().unwrap_or_default();
                    let detail: String = detail.chars().take(200).collect();
                    match code {
                        401 | 403 => {
                            return Err(Failure::Fatal(format!(
                                "{} answered {code}: check the API key ({detail})",
                                self.url(path)
                            )))
                        }
                        404 => {
                            return Err(Failure::Fatal(format!(
                                "{} answered 404: check --base-url and --model-name ({detail})",
                                self.url(path)
                            )))
                        }
                        429 | 500..=599 => last = format!("HTTP {code}: {detail}"),
                        _ => return Err(Failure::Item(format!("HTTP {code}: {detail}"))),
                    }
                }
                Err(ureq::Error::Transport(e)) => last = format!("transport: {e}"),
            }
            if attempt < self.options.max_retries {
                let cap = self
                    .options
                    .base_backoff
                    .saturating_mul(1u32 << attempt.min(16))
                    .min(self.options.max_backoff);
                let jitter = cap.mul_f64(rng.gen::<f64>());
                std::thread::sleep(retry_after.map_or(jitter, |r| r.max(jitter)));
            }
        }
        Err(Failure::Item(format!(
            "gave up after {} tries: {last}",
            self.options.max_retries + 1
        )))
    }

    fn wait_for_budget(&self, tokens: u32) {
        loop {
            let wait = match self.limiter.lock() {
                Ok(mut limiter) => limiter.take(Instant::now(), tokens),
                Err(_) => None,
            };
            match wait {
                Some(wait) => std::thread::sleep(wait),
                None => return,
            }
        }
    }

    fn chat(&self, case: &Case, generation: &Generation) -> Result<Answer, Failure> {
        let Query::Chat {
            system,
            history,
            prompt,
        } = &case.query
        else {
            return Ok(Answer::Error("not a chat query".to_string()));
        };
        let mut messages = Vec::new();
        if let Some(system) = system {
            messages.push(json!({"role": "system", "content": system}));
        }
        for Message { role, content } in history {
            let role = match role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": content}));
        }
        messages.push(json!({"role": "user", "content": prompt}));
        let seed = case_seed(generation.seed, &case.id);
        let mut body = json!({
            "model": self.options.model_name,
            "messages": messages,
            "max_tokens": generation.max_new_tokens,
            "temperature": generation.temperature,
            "top_p": generation.top_p,
            "seed": seed % (1 << 53),
        });
        if let Some(k) = generation.top_k {
            body["top_k"] = json!(k);
        }
        if !generation.stop.is_empty() {
            body["stop"] = json!(generation.stop);
        }
        let answer_tokens = u32::try_from(generation.max_new_tokens).unwrap_or(u32::MAX);
        let tokens = estimate_tokens(&case.query).saturating_add(answer_tokens);
        let value = self.post("chat/completions", &body, seed, tokens)?;
        match value["choices"][0]["message"]["content"].as_str() {
            Some(text) => Ok(Answer::Response(text.to_string())),
            None => Ok(Answer::Error(format!(
                "the server's reply has no choices[0].message.content: {}",
                shorten(&value.to_string())
            ))),
        }
    }

    fn choice(&self, case: &Case, generation: &Generation) -> Result<Answer, Failure> {
        let Query::Choice { context, options } = &case.query else {
            return Ok(Answer::Error("not a choice query".to_string()));
        };
        let seed = case_seed(generation.seed, &case.id);
        let prefix = &self.options.logprob_prefix;
        let mut logprobs = Vec::with_capacity(options.len());
        let mut tokens = Vec::with_capacity(options.len());
        for option in options {
            let text = format!("{prefix}{context}{option}");
            let body = self.completion_body(&text);
            let value = self.post("completions", &body, seed, estimate_tokens(&case.query))?;
            // The option, and the context's trailing whitespace (which the tokenizer joins to
            // the option's first word), make up the end of the prompt.
            let tail_chars = option.chars().count() + context.chars().count()
                - context.trim_end().chars().count();
            match prompt_logprob_counted(&value, tail_chars) {
                Ok((lp, n)) => {
                    logprobs.push(lp);
                    tokens.push(n);
                }
                Err(reason) => return Ok(Answer::Error(reason)),
            }
        }
        Ok(Answer::TokenLogprobs { logprobs, tokens })
    }
}

impl OpenAiBackend {
    /// The `/completions` request that echoes `prompt` with its log-probs and generates nothing.
    fn completion_body(&self, prompt: &str) -> Value {
        json!({
            "model": self.options.model_name,
            "prompt": prompt,
            "echo": true,
            "logprobs": 1,
            "max_tokens": 1,
            "temperature": 0.0,
        })
    }

    /// Whether the server's prompt log-probs mean what OpenAI's API says (taken once).
    fn alignment(&self) -> Result<(), Failure> {
        if self.options.logprob_alignment == LogprobAlignment::Trust {
            return Ok(());
        }
        if let Some(verdict) = self.alignment.get() {
            return verdict.clone().map_err(Failure::Item);
        }
        let text = format!("{}{ALIGNMENT_PROBE}", self.options.logprob_prefix);
        let value = match self.post("completions", &self.completion_body(&text), 0, 64) {
            Ok(value) => value,
            Err(Failure::Fatal(reason)) => return Err(Failure::Fatal(reason)),
            Err(Failure::Item(reason)) => {
                // Not cached: the next Choice query asks again.
                return Err(Failure::Item(format!(
                    "checking the server's prompt log-probs failed: {reason}"
                )));
            }
        };
        let verdict = judge_alignment(&value);
        let verdict = self.alignment.get_or_init(|| verdict);
        verdict.clone().map_err(Failure::Item)
    }

    /// One case: from the cache, else from the server (then cached at once, so that a run
    /// killed mid-batch never sends it again).
    fn answer_one(&self, case: &Case, generation: &Generation) -> Result<Answer, Failure> {
        let key = self.cache.as_ref().map(|c| c.key(case, generation));
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            if let Some(answer) = cache.get(key) {
                return Ok(answer);
            }
        }
        let answer = match case.query.kind() {
            QueryKind::Chat => self.chat(case, generation)?,
            QueryKind::Choice => {
                self.alignment()?;
                self.choice(case, generation)?
            }
            kind => Answer::Error(format!(
                "the openai backend does not answer {} queries",
                kind.name()
            )),
        };
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            cache.put(key, &answer).map_err(|e| Failure::Fatal(e.0))?;
        }
        Ok(answer)
    }
}

/// Why a request failed: for this item only, or for the whole backend.
#[derive(Debug)]
enum Failure {
    Item(String),
    Fatal(String),
}

/// How many echoed entries belong to the prompt: the server generates at least one token
/// (`max_tokens: 1`, as lm-evaluation-harness asks; llama-cpp-python reads 0 as "no limit") and
/// echoes it after the prompt, and `usage.completion_tokens` says how many it generated.
fn prompt_entries(value: &Value) -> Result<usize, String> {
    let logprobs = &value["choices"][0]["logprobs"];
    let n_echoed = logprobs["tokens"]
        .as_array()
        .or_else(|| logprobs["token_logprobs"].as_array())
        .map_or(0, Vec::len);
    let Some(generated) = value["usage"]["completion_tokens"].as_u64() else {
        return Err("the server's reply has no usage.completion_tokens, so the echoed prompt cannot be told from the generated token".to_string());
    };
    usize::try_from(generated)
        .ok()
        .and_then(|g| n_echoed.checked_sub(g))
        .filter(|&n| n > 0)
        .ok_or_else(|| "the server echoed no prompt tokens".to_string())
}

/// Where the echoed prompt ends, in `text_offset` units (characters): its last token's offset
/// plus its length. Counting from the end makes the boundary independent of whether the
/// server's offsets include a prefix it strips (llama-cpp-python drops a leading BOS token from
/// the echo and counts offsets after it).
fn echo_end(logprobs: &Value, n_prompt: usize) -> Option<u64> {
    let last = n_prompt.checked_sub(1)?;
    let last_offset = logprobs["text_offset"].as_array()?.get(last)?.as_u64()?;
    let last_token = logprobs["tokens"].as_array()?.get(last)?.as_str()?;
    Some(last_offset + last_token.chars().count() as u64)
}

/// The summed log-probability of the echoed prompt tokens that make up its last `tail_chars`
/// characters (the option, with the context's trailing whitespace, which lm-evaluation-harness
/// moves to the option). `text_offset` counts characters on OpenAI, vLLM and llama-cpp-python.
/// Tokens without a log-probability (the first token of the prompt, which nothing conditions)
/// are left out, which is why an empty context scores the sentence without its first token on
/// servers (the candle backend conditions it on BOS).
pub fn prompt_logprob(value: &Value, tail_chars: usize) -> Result<f64, String> {
    prompt_logprob_counted(value, tail_chars).map(|(total, _)| total)
}

/// `prompt_logprob` and the number of tokens it summed.
pub fn prompt_logprob_counted(value: &Value, tail_chars: usize) -> Result<(f64, u32), String> {
    let logprobs = &value["choices"][0]["logprobs"];
    let (Some(values), Some(offsets)) = (
        logprobs["token_logprobs"].as_array(),
        logprobs["text_offset"].as_array(),
    ) else {
        return Err(
            "the server returned no prompt log-probabilities (echo + logprobs unsupported): Choice queries cannot be scored on it"
                .to_string(),
        );
    };
    if values.len() != offsets.len() || values.is_empty() {
        return Err("the server's log-probabilities and offsets do not line up".to_string());
    }
    let n_prompt = prompt_entries(value)?;
    let Some(end) = echo_end(logprobs, n_prompt) else {
        return Err("the server's echo has no tokens with text offsets".to_string());
    };
    let boundary = end.saturating_sub(tail_chars as u64);
    let mut total = 0.0;
    let mut counted = 0;
    for (value, offset) in values.iter().zip(offsets).take(n_prompt) {
        let Some(offset) = offset.as_u64() else {
            return Err("a text_offset is not a number".to_string());
        };
        if offset < boundary {
            continue;
        }
        if let Some(lp) = value.as_f64() {
            total += lp;
            counted += 1;
        }
    }
    if counted == 0 || tail_chars == 0 {
        return Err("no scored token lies after the context".to_string());
    }
    Ok((total, counted))
}

/// A text whose every token after the first few is easy to predict: on it, a model's top
/// choice before each token is that token far more often than chance.
pub const ALIGNMENT_PROBE: &str = "one, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, thirteen, fourteen, fifteen, sixteen, seventeen, eighteen, nineteen, twenty";

/// Judges an echoed `/completions` answer on `ALIGNMENT_PROBE` (after a prefix, if any): Ok when `token_logprobs[i]` and `top_logprobs[i]` are the distribution before
/// token i (OpenAI's meaning), Err with the reason when they are the one after it (shifted) or
/// when the answer cannot tell.
pub fn judge_alignment(value: &Value) -> Result<(), String> {
    let logprobs = &value["choices"][0]["logprobs"];
    let (Some(tokens), Some(tops), Some(offsets)) = (
        logprobs["tokens"].as_array(),
        logprobs["top_logprobs"].as_array(),
        logprobs["text_offset"].as_array(),
    ) else {
        return Err(
            "the server returned no prompt tokens with top log-probabilities, so their alignment cannot be checked: Choice queries are refused (--logprob-alignment trust uses them unchecked)"
                .to_string(),
        );
    };
    // The most likely token of a position's distribution, as the server spells it.
    let top = |i: usize| -> Option<&str> {
        tops.get(i)?
            .as_object()?
            .iter()
            .filter_map(|(token, lp)| Some((token.as_str(), lp.as_f64()?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(token, _)| token)
    };
    let n_prompt = prompt_entries(value)?;
    let probe_start = echo_end(logprobs, n_prompt)
        .unwrap_or(0)
        .saturating_sub(ALIGNMENT_PROBE.chars().count() as u64);
    let (mut aligned, mut shifted, mut compared) = (0usize, 0usize, 0usize);
    for (i, token) in tokens.iter().enumerate().take(n_prompt).skip(1) {
        // Only the probe's own tokens are judged, not those of a prefix.
        if offsets.get(i - 1).and_then(Value::as_u64).unwrap_or(0) < probe_start {
            continue;
        }
        let (Some(token), Some(here), Some(before)) = (token.as_str(), top(i), top(i - 1)) else {
            continue;
        };
        compared += 1;
        aligned += usize::from(here == token);
        shifted += usize::from(before == token);
    }
    let detail = format!(
        "a probe on a counting sequence: of {compared} tokens, {aligned} are the top choice of the distribution reported at their own position, {shifted} of the one reported at the position before"
    );
    if compared >= 10 && aligned * 2 >= compared && aligned >= 3 * shifted.max(1) {
        return Ok(());
    }
    if compared >= 10 && shifted * 2 >= compared && shifted >= 3 * aligned.max(1) {
        return Err(format!(
            "the server's prompt log-probs are shifted by one token ({detail}), so Choice queries would be scored wrong and are refused; llama-cpp-python does this for models that add no BOS token: pass --logprob-prefix with the model's BOS text (\"<|im_start|>\" for SmolLM2), or score with the candle backend (--model FILE)"
        ));
    }
    Err(format!(
        "the alignment of the server's prompt log-probs is unclear ({detail}), so Choice queries are refused; --logprob-alignment trust uses them unchecked"
    ))
}

/// About four characters per token: enough to pace a token-per-minute limit.
fn estimate_tokens(query: &Query) -> u32 {
    u32::try_from(query.size_hint() / 4 + 1).unwrap_or(u32::MAX)
}

fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
}

/// A sliding one-minute window of requests and tokens.
#[derive(Debug)]
struct RateLimiter {
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u32>,
    sent: std::collections::VecDeque<(Instant, u32)>,
}

impl RateLimiter {
    fn new(requests_per_minute: Option<u32>, tokens_per_minute: Option<u32>) -> RateLimiter {
        RateLimiter {
            requests_per_minute,
            tokens_per_minute,
            sent: std::collections::VecDeque::new(),
        }
    }

    /// Records a request of `tokens` now if the limits allow it (None), else says how long to
    /// wait before asking again.
    fn take(&mut self, now: Instant, tokens: u32) -> Option<Duration> {
        let minute = Duration::from_secs(60);
        while self
            .sent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= minute)
        {
            self.sent.pop_front();
        }
        let requests = self.sent.len() as u32;
        let used: u64 = self.sent.iter().map(|(_, n)| u64::from(*n)).sum();
        let over_requests = self
            .requests_per_minute
            .is_some_and(|r| requests >= r.max(1));
        // A single request larger than the whole budget is let through alone.
        let over_tokens = self
            .tokens_per_minute
            .is_some_and(|t| used > 0 && used + u64::from(tokens) > u64::from(t));
        if over_requests || over_tokens {
            let oldest = self.sent.front().map_or(now, |(t, _)| *t);
            return Some(
                (oldest + minute)
                    .saturating_duration_since(now)
                    .max(Duration::from_millis(10)),
            );
        }
        self.sent.push_back((now, tokens));
        None
    }
}

impl Backend for OpenAiBackend {
    fn model(&self) -> ModelInfo {
        ModelInfo {
            backend: "openai".to_string(),
            model: self.options.model_name.clone(),
            device: redact::url_userinfo(&self.options.base_url),
            dtype: "server".to_string(),
            files: Vec::new(),
            details: BTreeMap::from([
                (
                    "base_url".to_string(),
                    redact::url_userinfo(&self.options.base_url),
                ),
                (
                    "choice_scoring".to_string(),
                    "/completions echo+logprobs: summed prompt log-probs of the tokens after the context".to_string(),
                ),
                (
                    "logprob_prefix".to_string(),
                    self.options.logprob_prefix.clone(),
                ),
                (
                    "extra_body".to_string(),
                    Value::Object(self.options.extra_body.clone()).to_string(),
                ),
                (
                    "logprob_alignment".to_string(),
                    format!("{:?}", self.options.logprob_alignment).to_lowercase(),
                ),
            ]),
        }
    }

    fn batch_size(&self, _kind: QueryKind) -> usize {
        self.options.concurrency.saturating_mul(4)
    }

    fn answer(
        &mut self,
        batch: &[&Case],
        generation: &Generation,
    ) -> Result<Vec<Answer>, BackendError> {
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<Result<Answer, Failure>>>> =
            batch.iter().map(|_| Mutex::new(None)).collect();
        let workers = self.options.concurrency.min(batch.len()).max(1);
        let this = &*self;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = batch.get(i) else { break };
                    let result = this.answer_one(case, generation);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(result);
                    }
                });
            }
        });
        let mut answers = Vec::with_capacity(batch.len());
        for slot in results {
            let result = slot
                .into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(Failure::Item("a worker thread died".to_string())));
            // A server may echo the request (its Authorization header, the key) in an
            // error body: nothing of it reaches the journal or the terminal.
            let clean = |reason: &str| redact::secrets(reason, self.api_key.as_deref());
            match result {
                Ok(answer) => answers.push(answer),
                Err(Failure::Item(reason)) => answers.push(Answer::Error(clean(&reason))),
                Err(Failure::Fatal(reason)) => return Err(BackendError(clean(&reason))),
            }
        }
        Ok(answers)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    #[test]
    fn prompt_logprobs_after_the_context() {
        // The prompt "The cat sat", then one generated token (left out).
        let value = json!({"choices": [{"logprobs": {
            "tokens": ["The", " cat", " sat", " down"],
            "token_logprobs": [null, -2.0, -0.5, -9.0],
            "text_offset": [0, 3, 7, 11]
        }}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}});
        assert_eq!(prompt_logprob(&value, " cat sat".len()), Ok(-2.5));
        assert_eq!(
            prompt_logprob_counted(&value, " cat sat".len()),
            Ok((-2.5, 2))
        );
        assert_eq!(prompt_logprob(&value, " sat".len()), Ok(-0.5));
        assert_eq!(prompt_logprob(&value, "t sat".len()), Ok(-0.5));
        assert_eq!(prompt_logprob(&value, 100), Ok(-2.5));
        assert!(prompt_logprob(&value, 0).is_err());
        let mut no_usage = value.clone();
        no_usage["usage"] = Value::Null;
        assert!(prompt_logprob(&no_usage, 4)
            .unwrap_err()
            .contains("usage.completion_tokens"));
        assert!(prompt_logprob(&json!({"choices": [{"text": "x"}]}), 0)
            .unwrap_err()
            .contains("no prompt log-probabilities"));
    }

    /// An echoed answer on `ALIGNMENT_PROBE`'s words: `shift` 0 reports each token's own
    /// distribution at its position (OpenAI's meaning), 1 the distribution after it.
    fn probe_answer(shift: usize) -> Value {
        let words: Vec<String> = ALIGNMENT_PROBE
            .split(", ")
            .enumerate()
            .flat_map(|(i, w)| {
                let w = if i == 0 {
                    w.to_string()
                } else {
                    format!(" {w}")
                };
                [w, ",".to_string()]
            })
            .collect();
        let mut offsets = Vec::new();
        let mut at = 0;
        for w in &words {
            offsets.push(at);
            at += w.chars().count();
        }
        let tops: Vec<Value> = (0..words.len())
            .map(|i| match words.get(i + shift) {
                Some(top) if i > 0 => json!({ top.as_str(): -0.1, "x": -5.0 }),
                _ => Value::Null,
            })
            .collect();
        json!({"choices": [{"logprobs": {
            "tokens": words,
            "text_offset": offsets,
            "token_logprobs": vec![-0.1; words.len()],
            "top_logprobs": tops,
        }}], "usage": {"completion_tokens": 0}})
    }

    #[test]
    fn the_alignment_probe_tells_shifted_from_aligned() {
        assert_eq!(judge_alignment(&probe_answer(0)), Ok(()));
        let shifted = judge_alignment(&probe_answer(1)).unwrap_err();
        assert!(shifted.contains("shifted by one token"), "{shifted}");
        assert!(shifted.contains("--logprob-prefix"), "{shifted}");
        let unclear = judge_alignment(&json!({"choices": [{"text": ""}]})).unwrap_err();
        assert!(unclear.contains("cannot be checked"), "{unclear}");
        let mut noise = probe_answer(0);
        noise["choices"][0]["logprobs"]["top_logprobs"] = json!(vec![json!({"x": -0.1}); 40]);
        let unclear = judge_alignment(&noise).unwrap_err();
        assert!(unclear.contains("unclear"), "{unclear}");
    }

    #[test]
    fn text_offsets_count_characters() {
        let value = json!({"choices": [{"logprobs": {
            "tokens": ["Café", " olé"],
            "token_logprobs": [null, -1.5],
            "text_offset": [0, 4]
        }}], "usage": {"completion_tokens": 0}});
        assert_eq!(prompt_logprob(&value, " olé".chars().count()), Ok(-1.5));
    }

    #[test]
    fn the_rate_limiter_spaces_requests() {
        let mut limiter = RateLimiter::new(Some(2), Some(100));
        let t0 = Instant::now();
        assert_eq!(limiter.take(t0, 10), None);
        assert_eq!(limiter.take(t0, 10), None);
        let wait = limiter.take(t0, 10).unwrap();
        assert!(wait > Duration::from_secs(59));
        assert_eq!(limiter.take(t0 + Duration::from_secs(61), 10), None);
        let mut tokens = RateLimiter::new(None, Some(100));
        assert_eq!(
            tokens.take(t0, 500),
            None,
            "one oversized request goes alone"
        );
        assert!(tokens.take(t0, 1).is_some());
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = OpenAiOptions {
            base_url: "localhost:8000".into(),
            ..OpenAiOptions::default()
        };
        assert!(matches!(
            OpenAiBackend::new(bad),
            Err(OpenAiError::BaseUrl(_))
        ));
        let missing = OpenAiOptions {
            api_key_env: Some("PROBITY_TEST_SURELY_UNSET_KEY".into()),
            ..OpenAiOptions::default()
        };
        assert!(matches!(
            OpenAiBackend::new(missing),
            Err(OpenAiError::MissingKey(_))
        ));
    }
}
