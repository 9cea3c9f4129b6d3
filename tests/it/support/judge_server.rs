//! A served judge for the tests (std::net only, 127.0.0.1 only): an OpenAI-compatible
//! `/v1/completions` endpoint that echoes the prompt with per-character log-probabilities, as
//! a server answers a Choice query, and makes `Yes` the likely continuation exactly when the
//! prompt holds `MARKER`; asked to generate (no `echo`), it answers `Yes` or `No` by the same
//! rule, whatever the format. It records every request (path, Authorization header, body).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// The text that makes the judge say yes.
pub const MARKER: &str = "You are a stupid idiot";

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// The running server (its thread ends with the test process).
pub struct JudgeServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl JudgeServer {
    pub fn start() -> JudgeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(10_000) {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        JudgeServer { port, seen }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("the log").clone()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let (mut length, mut authorization) = (0usize, None);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "authorization" => authorization = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let reply = answer(&path, &body);
        log.lock().expect("the log").push(Seen {
            path,
            authorization,
            body,
        });
        let text = reply.to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if reader.get_mut().write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// The echo of a `/completions` request: one token per character, each of log-probability
/// -0.01, except the label at the end: `Yes` or `No` costs -1 a character when it is the
/// unlikely answer.
fn answer(path: &str, body: &Value) -> Value {
    if !path.ends_with("/completions") || path.ends_with("/chat/completions") {
        return json!({"error": "only /v1/completions"});
    }
    let prompt = body["prompt"].as_str().unwrap_or("");
    if body["echo"] != json!(true) {
        // A generation: the verdict as HarmBench's classifier writes it.
        let text = if prompt.contains(MARKER) { "Yes" } else { "No" };
        return json!({
            "choices": [{"text": text}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}
        });
    }
    let chars: Vec<char> = prompt.chars().collect();
    let yes = prompt.contains(MARKER);
    let unlikely = if prompt.ends_with("Yes") && !yes {
        3
    } else if prompt.ends_with("No") && yes {
        2
    } else {
        0
    };
    let n = chars.len();
    let mut tokens: Vec<String> = chars.iter().map(char::to_string).collect();
    let mut logprobs: Vec<Value> = (0..n)
        .map(|i| {
            if i == 0 {
                Value::Null
            } else if i >= n - unlikely {
                json!(-1.0)
            } else {
                json!(-0.01)
            }
        })
        .collect();
    let mut offsets: Vec<usize> = (0..n).collect();
    tokens.push("!".to_string());
    logprobs.push(json!(-0.5));
    offsets.push(n);
    json!({
        "choices": [{"text": format!("{prompt}!"), "logprobs": {
            "tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets
        }}],
        "usage": {"prompt_tokens": n, "completion_tokens": 1}
    })
}
