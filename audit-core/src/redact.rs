//! Secrets kept out of everything a run writes: the user and password of a URL
//! (`https://user:pw@host` → `https://[redacted]@host`), bearer tokens and authorization
//! headers a server echoes back in an error body, and a known API key wherever it appears.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// `text` with the userinfo of every URL in it replaced.
pub fn url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; userinfo ends at its
        // last '@'.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// `text` with URL userinfo, `Bearer` tokens, the values of `Authorization`, `api-key` and
/// `x-api-key` headers, and `key` itself (when given and not trivially short) replaced.
pub fn secrets(text: &str, key: Option<&str>) -> String {
    let mut out = url_userinfo(text);
    if let Some(key) = key.filter(|k| k.len() >= 4) {
        out = out.replace(key, REDACTED);
    }
    for marker in [
        "bearer ",
        "authorization:",
        "authorization\":",
        "api-key:",
        "api-key\":",
        "api_key\":",
    ] {
        out = redact_after(&out, marker);
    }
    out
}

/// Replaces the token after every case-insensitive occurrence of `marker` (skipping spaces
/// and an opening quote) up to the next whitespace, quote, comma or brace.
fn redact_after(text: &str, marker: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(found) = lower[from..].find(marker) {
        let start = from + found + marker.len();
        out.push_str(&text[from..start]);
        let mut at = start;
        loop {
            let after = &text[at..];
            let skip = after.len() - after.trim_start_matches([' ', '"']).len();
            out.push_str(&after[..skip]);
            let token = &after[skip..];
            if token.starts_with(REDACTED) {
                out.push_str(REDACTED);
                at += skip + REDACTED.len();
                break;
            }
            let end = token
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | ']'))
                .unwrap_or(token.len());
            at += skip + end;
            // "Authorization: Basic x": the scheme word is kept, the credential after it goes.
            let scheme = ["bearer", "basic", "token", "digest"]
                .iter()
                .any(|s| token[..end].eq_ignore_ascii_case(s));
            if scheme {
                out.push_str(&token[..end]);
                continue;
            }
            if end > 0 {
                out.push_str(REDACTED);
            }
            break;
        }
        from = at;
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_removed_from_urls() {
        assert_eq!(
            url_userinfo("--base-url=https://alice:s3cret@api.example.com/v1"),
            "--base-url=https://[redacted]@api.example.com/v1"
        );
        assert_eq!(
            url_userinfo("http://h:8000/v1 and http://u@x"),
            "http://h:8000/v1 and http://[redacted]@x"
        );
        assert_eq!(url_userinfo("no url"), "no url");
        // An '@' in the path is not userinfo.
        assert_eq!(url_userinfo("https://h/a@b"), "https://h/a@b");
    }

    #[test]
    fn echoed_headers_and_keys_are_removed() {
        let body = r#"{"error": "bad request", "headers": {"Authorization": "Bearer sk-live-123"}, "api_key": "sk-live-123"}"#;
        let clean = secrets(body, None);
        assert!(!clean.contains("sk-live-123"), "{clean}");
        assert!(clean.contains("bad request"));
        let clean = secrets("rejected key sk-abcdef for org", Some("sk-abcdef"));
        assert_eq!(clean, "rejected key [redacted] for org");
        let clean = secrets("authorization: Bearer abc.def", None);
        assert_eq!(clean, "authorization: Bearer [redacted]");
        let clean = secrets("Authorization: Basic dXNlcjpwdw== next", None);
        assert_eq!(clean, "Authorization: Basic [redacted] next");
    }
}
