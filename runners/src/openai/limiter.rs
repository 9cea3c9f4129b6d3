//! The rate limiter: a sliding one-minute window of requests and tokens.

use std::time::{Duration, Instant};

/// A sliding one-minute window of requests and tokens.
#[derive(Debug)]
pub(super) struct RateLimiter {
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u32>,
    sent: std::collections::VecDeque<(Instant, u32)>,
}

impl RateLimiter {
    pub(super) fn new(
        requests_per_minute: Option<u32>,
        tokens_per_minute: Option<u32>,
    ) -> RateLimiter {
        RateLimiter {
            requests_per_minute,
            tokens_per_minute,
            sent: std::collections::VecDeque::new(),
        }
    }

    /// Records a request of `tokens` now if the limits allow it (None), else says how long to
    /// wait before asking again.
    pub(super) fn take(&mut self, now: Instant, tokens: u32) -> Option<Duration> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

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
}
