//! A fault-injecting HTTP proxy for the openai backend's tests (std::net only, 127.0.0.1 only):
//! it answers some requests itself with 429, 500, a held connection, truncated JSON or malformed
//! JSON on a deterministic schedule (a function of the request body and of how often that body
//! was seen), forwards the others to the real server, and records every request it saw and every
//! one it forwarded. It can also hold requests until the client goes away, so that a test can
//! kill the client while nothing is being computed for it.
//!
//! Bounded: at most `MAX_CONNECTIONS` connections, every socket read times out, every hold ends.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAX_CONNECTIONS: usize = 5000;
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a held request waits for the client to go away or for `release`.
const MAX_HOLD: Duration = Duration::from_secs(120);

/// What the proxy does instead of forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: 0`.
    TooManyRequests,
    /// 500 with a JSON error body.
    ServerError,
    /// Holds the connection this long without answering, then closes it.
    Timeout(Duration),
    /// 200 with the first part of a JSON body.
    Truncated,
    /// 200 with a body that is not JSON.
    Malformed,
}

/// Decides the fault of a request from its path, its body and how many times that body was
/// seen before (0 the first time); None forwards it.
pub type Schedule = dyn Fn(&str, &str, usize) -> Option<Fault> + Send + Sync;

/// One request the proxy received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    /// The Authorization header, as sent.
    pub authorization: Option<String>,
    pub body: String,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    /// Forwarded requests (the server answered them) per distinct body.
    forwarded: BTreeMap<String, usize>,
    times_seen: BTreeMap<String, usize>,
}

struct Shared {
    upstream: SocketAddr,
    schedule: Box<Schedule>,
    log: Mutex<Log>,
    stop: AtomicBool,
    /// Requests to forward from this one on (0-based, in arrival order) wait until released or
    /// until their client is gone.
    hold_after: AtomicUsize,
    admitted: AtomicUsize,
    held_now: AtomicUsize,
    abandoned: AtomicUsize,
}

impl Shared {
    fn holds(&self, ticket: usize) -> bool {
        ticket >= self.hold_after.load(Ordering::SeqCst)
    }
}

/// The running proxy; stops accepting on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1, forwarding to `upstream`.
    pub fn start(upstream: SocketAddr, schedule: Box<Schedule>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy's port");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            schedule,
            log: Mutex::new(Log::default()),
            stop: AtomicBool::new(false),
            hold_after: AtomicUsize::new(usize::MAX),
            admitted: AtomicUsize::new(0),
            held_now: AtomicUsize::new(0),
            abandoned: AtomicUsize::new(0),
        });
        let state = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                if state.stop.load(Ordering::SeqCst) || n >= MAX_CONNECTIONS {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&state);
                std::thread::spawn(move || handle(&state, stream));
            }
        });
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The API root to give `--base-url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Forwarded requests per distinct body.
    pub fn forwarded(&self) -> BTreeMap<String, usize> {
        self.lock().forwarded.clone()
    }

    /// The first `n` requests to forward go through; later ones wait until `release`.
    pub fn hold_after(&self, n: usize) {
        self.shared.hold_after.store(n, Ordering::SeqCst);
    }

    pub fn release(&self) {
        self.shared.hold_after.store(usize::MAX, Ordering::SeqCst);
    }

    /// Requests waiting in a hold now.
    pub fn held_now(&self) -> usize {
        self.shared.held_now.load(Ordering::SeqCst)
    }

    /// Held requests dropped because their client went away (never forwarded).
    pub fn abandoned(&self) -> usize {
        self.shared.abandoned.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.release();
        // Wakes the acceptor, which then sees the stop flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// An HTTP/1.1 request as read from the client.
struct Request {
    head: String,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 || buffer.len() > 1 << 20 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_string();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    let length: usize = header("content-length").map_or(Some(0), |v| v.parse().ok())?;
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Request {
        authorization: header("authorization"),
        head,
        path,
        body,
    })
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// Whether the client closed its side of the connection.
fn client_gone(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let gone = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    gone
}

fn handle(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    let body = String::from_utf8_lossy(&request.body).to_string();
    let fault = {
        let mut log = shared
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let times = log.times_seen.entry(body.clone()).or_insert(0);
        let fault = (shared.schedule)(&request.path, &body, *times);
        *times += 1;
        log.seen.push(Seen {
            path: request.path.clone(),
            authorization: request.authorization.clone(),
            body: body.clone(),
            fault,
        });
        fault
    };
    match fault {
        Some(Fault::TooManyRequests) => respond(
            &mut stream,
            "429 Too Many Requests",
            "Retry-After: 0\r\n",
            r#"{"error":{"message":"injected: rate limited","type":"rate_limit"}}"#,
        ),
        Some(Fault::ServerError) => respond(
            &mut stream,
            "500 Internal Server Error",
            "",
            r#"{"error":{"message":"injected: server error"}}"#,
        ),
        Some(Fault::Timeout(hold)) => {
            std::thread::sleep(hold.min(MAX_HOLD));
            let _ = stream.shutdown(Shutdown::Both);
        }
        Some(Fault::Truncated) => respond(
            &mut stream,
            "200 OK",
            "",
            r#"{"id":"cmpl-injected","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Sure, here is"#,
        ),
        Some(Fault::Malformed) => respond(
            &mut stream,
            "200 OK",
            "",
            "<html><body>502 Bad Gateway (injected)</body></html>",
        ),
        None => forward(shared, &mut stream, &request, body),
    }
}

fn forward(shared: &Shared, stream: &mut TcpStream, request: &Request, body: String) {
    let ticket = shared.admitted.fetch_add(1, Ordering::SeqCst);
    if shared.holds(ticket) {
        shared.held_now.fetch_add(1, Ordering::SeqCst);
        let since = Instant::now();
        let mut gone = false;
        while shared.holds(ticket) && since.elapsed() < MAX_HOLD {
            if client_gone(stream) {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if gone {
            shared.abandoned.fetch_add(1, Ordering::SeqCst);
        }
        shared.held_now.fetch_sub(1, Ordering::SeqCst);
        if gone {
            return;
        }
    }
    let Ok(mut upstream) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))
    else {
        respond(
            stream,
            "502 Bad Gateway",
            "",
            r#"{"error":{"message":"proxy: upstream unreachable"}}"#,
        );
        return;
    };
    let _ = upstream.set_read_timeout(Some(IO_TIMEOUT));
    // One request per connection: the proxy closes after every answer.
    let head: String = request
        .head
        .trim_end()
        .lines()
        .filter(|line| {
            !line
                .split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        })
        .map(|line| format!("{line}\r\n"))
        .collect();
    let sent = upstream
        .write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .and_then(|()| upstream.write_all(&request.body));
    let mut response = Vec::new();
    if sent.is_err() || upstream.read_to_end(&mut response).is_err() || response.is_empty() {
        respond(
            stream,
            "502 Bad Gateway",
            "",
            r#"{"error":{"message":"proxy: upstream failed"}}"#,
        );
        return;
    }
    {
        let mut log = shared
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *log.forwarded.entry(body).or_insert(0) += 1;
    }
    let _ = stream.write_all(&response);
    let _ = stream.flush();
}
