//! A real OpenAI-compatible server for tests: llama.cpp through `llama-cpp-python[server]`
//! (installed by scripts/install-llama-server.sh) serving the SmolLM2 GGUF on 127.0.0.1, started
//! per test on a free port and killed when the guard drops, panics included.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The GGUF file every served-model test uses (fetched by scripts/fetch-models.sh).
pub const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The same model with every tensor dequantized to float32, for the cross-check (derived from
/// `MODEL_FILE` by scripts/install-llama-server.sh).
pub const F32_MODEL_FILE: &str = "SmolLM2-135M-Instruct.F32.gguf";

/// The path of `F32_MODEL_FILE` in the model cache; panics with the command that makes it.
pub fn f32_model() -> PathBuf {
    let path = fixtures::models().join(F32_MODEL_FILE);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-llama-server.sh (it derives it from the Q4_1 file)",
        path.display()
    );
    path
}

/// How long the server may take to load the model and answer `/v1/models`.
const READY_WITHIN: Duration = Duration::from_secs(180);

/// Tests that start a server hold this lock: on two cores, two servers generating at once
/// would only make both slow enough to time out.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The venv's python: `PROBITY_LLAMA_PYTHON`, else `$PROBITY_CACHE/venv-llama/bin/python`,
/// else `~/.cache/probity/venv-llama/bin/python`. Panics with the install command when missing.
pub fn python() -> PathBuf {
    let path = std::env::var_os("PROBITY_LLAMA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("PROBITY_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    let home = std::env::var_os("HOME").map_or_else(|| ".".into(), PathBuf::from);
                    home.join(".cache/probity")
                });
            cache.join("venv-llama/bin/python")
        });
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-llama-server.sh (or set PROBITY_LLAMA_PYTHON to a python with llama-cpp-python[server])",
        path.display()
    );
    path
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A running server; killed on drop.
pub struct LlamaServer {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl LlamaServer {
    /// Starts the server on `MODEL_FILE` with its default settings; see `start_with`.
    pub fn start(log_dir: &std::path::Path) -> LlamaServer {
        Self::start_with(log_dir, &fixtures::model(MODEL_FILE), &[])
    }

    /// Starts the server on `model` with `extra` server flags on a free port and waits until
    /// `/v1/models` answers.
    pub fn start_with(
        log_dir: &std::path::Path,
        model: &std::path::Path,
        extra: &[&str],
    ) -> LlamaServer {
        let python = python();
        let port = free_port();
        let log = log_dir.join(format!("llama-server-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("the server log");
        let child = Command::new(&python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--n_ctx", "2048", "--logits_all", "true"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("the server log"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} -m llama_cpp.server: {e}", python.display()));
        let mut server = LlamaServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "the llama.cpp server exited ({status}) before it was ready; run scripts/install-llama-server.sh. Its log:\n{}",
                    server.log_tail()
                );
            }
            if get(server.addr, "/v1/models").is_some_and(|(code, _)| code == 200) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the llama.cpp server did not answer /v1/models within {READY_WITHIN:?}. Its log:\n{}",
                server.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The API root to give `--base-url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET on 127.0.0.1: the status code and body, or None when nothing answers.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((code, body))
}
