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

mod http;
mod limiter;
mod reply;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use audit_core::redact;
use audit_core::{
    case_seed, Answer, Backend, BackendError, Case, Generation, Message, ModelInfo, Query,
    QueryKind, Role,
};
use serde_json::{json, Value};

use crate::cache::ResponseCache;
use http::Failure;
use limiter::RateLimiter;
pub use reply::{judge_alignment, prompt_logprob, prompt_logprob_counted, ALIGNMENT_PROBE};

/// How to reach and pace the server.
/// An API key and the environment variable it was read from (`--api-key-env`); its `Debug`
/// shows the variable only, so the key never reaches a log or an error.
#[derive(Clone, PartialEq)]
pub struct ApiKey {
    pub variable: String,
    value: Option<String>,
}

impl ApiKey {
    /// The key in `variable`, or `None` when it is unset (the backend then refuses to start).
    pub fn new(variable: &str, value: Option<String>) -> ApiKey {
        ApiKey {
            variable: variable.to_string(),
            value,
        }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey(${})", self.variable)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OpenAiOptions {
    /// e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The served model's name, sent as `model`.
    pub model_name: String,
    /// The API key, read by the caller from the environment variable the user named (none: no
    /// Authorization header). The library reads no environment itself.
    pub api_key: Option<ApiKey>,
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
    /// For judges on servers without prompt log-probs: answer a Choice query by generating up
    /// to this many tokens greedily after its context (`/completions`, the context as the raw
    /// prompt) and returning the text (`Answer::Response`), which the judge's parser reads.
    /// None (the default): Choice queries are scored.
    pub choice_by_generation: Option<u32>,
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
            api_key: None,
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
            choice_by_generation: None,
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
        let api_key = match &options.api_key {
            Some(key) => Some(
                key.value
                    .clone()
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| OpenAiError::MissingKey(key.variable.clone()))?,
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
    /// A Choice query answered by generation (`choice_by_generation`): the context as a raw
    /// `/completions` prompt, greedy, at most `max_tokens` tokens; the text as the answer.
    fn continue_context(
        &self,
        case: &Case,
        generation: &Generation,
        max_tokens: u32,
    ) -> Result<Answer, Failure> {
        let Query::Choice { context, .. } = &case.query else {
            return Ok(Answer::Error("not a choice query".to_string()));
        };
        let seed = case_seed(generation.seed, &case.id);
        let body = json!({
            "model": self.options.model_name,
            "prompt": context,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "seed": seed % (1 << 53),
        });
        let tokens = estimate_tokens(&case.query).saturating_add(max_tokens);
        let value = self.post("completions", &body, seed, tokens)?;
        match value["choices"][0]["text"].as_str() {
            Some(text) => Ok(Answer::Response(text.to_string())),
            None => Ok(Answer::Error(format!(
                "the server's reply has no choices[0].text: {}",
                shorten(&value.to_string())
            ))),
        }
    }

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
            QueryKind::Choice => match self.options.choice_by_generation {
                Some(max_tokens) => self.continue_context(case, generation, max_tokens)?,
                None => {
                    self.alignment()?;
                    self.choice(case, generation)?
                }
            },
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

/// About four characters per token: enough to pace a token-per-minute limit.
fn estimate_tokens(query: &Query) -> u32 {
    u32::try_from(query.size_hint() / 4 + 1).unwrap_or(u32::MAX)
}

fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
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
                    match self.options.choice_by_generation {
                        None => "/completions echo+logprobs: summed prompt log-probs of the tokens after the context".to_string(),
                        Some(n) => format!("/completions generation of at most {n} tokens after the context, read by the judge's parser"),
                    },
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
            api_key: Some(ApiKey::new("PROBITY_TEST_SURELY_UNSET_KEY", None)),
            ..OpenAiOptions::default()
        };
        assert!(matches!(
            OpenAiBackend::new(missing),
            Err(OpenAiError::MissingKey(_))
        ));
    }
}
