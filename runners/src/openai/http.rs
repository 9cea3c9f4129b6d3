//! Requests to the server: one POST with retries, exponential backoff with full jitter and
//! `Retry-After`, pacing by the rate limiter, and the classification of failures (for one item
//! or fatal for the whole backend).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::OpenAiBackend;

/// Why a request failed: for this item only, or for the whole backend.
#[derive(Debug)]
pub(super) enum Failure {
    Item(String),
    Fatal(String),
}

impl OpenAiBackend {
    /// One request with retries; Ok(body) or Err(Outcome) saying whether the failure is fatal.
    pub(super) fn post(
        &self,
        path: &str,
        body: &Value,
        seed: u64,
        tokens: u32,
    ) -> Result<Value, Failure> {
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
}
