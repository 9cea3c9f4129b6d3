//! A real HTTP mirror for the datasets tests (std::net only, 127.0.0.1 only): it serves a folder
//! (../shared/datasets) as `GET /NAME/FILE`, honours `Range: bytes=N-` with 206, and on request
//! corrupts one file (a flipped byte) or drops the connection half-way through one file's first
//! download. It records the path and Range header of every request.
//!
//! Bounded: at most `MAX_CONNECTIONS` connections, every socket read times out.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MAX_CONNECTIONS: usize = 2000;

/// What the mirror does to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Every download of the file has one byte changed (the middle one).
    Corrupt(String),
    /// The first download of the file stops after half of it and the connection closes.
    DropHalf(String),
}

/// A running mirror; its thread ends with the test process.
pub struct Mirror {
    pub addr: SocketAddr,
    /// (path, Range header or "") of every request, in order.
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Mirror {
    pub fn start(root: &Path, faults: Vec<Fault>) -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port on 127.0.0.1");
        let addr = listener.local_addr().expect("the mirror's address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let root = root.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(stream) = stream else { continue };
                let (root, faults, seen) = (root.clone(), faults.clone(), Arc::clone(&seen));
                std::thread::spawn(move || serve(stream, &root, &faults, &seen));
            }
        });
        Mirror { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Range headers of the requests for `path` ("" for none).
    pub fn ranges_of(&self, path: &str) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

fn serve(stream: TcpStream, root: &Path, faults: &[Fault], seen: &Mutex<Vec<(String, String)>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    // One request per connection: the reply says `Connection: close`.
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = value.trim().to_string();
            }
        }
    }
    let earlier = {
        let mut seen = seen.lock().unwrap();
        let earlier = seen.iter().filter(|(p, _)| *p == path).count();
        seen.push((path.clone(), range.clone()));
        earlier
    };
    let relative = path.trim_start_matches('/');
    let file: PathBuf = root.join(relative);
    let ok = !relative.split('/').any(|c| c == ".." || c.is_empty()) && file.is_file();
    let Some(mut body) = ok.then(|| std::fs::read(&file).ok()).flatten() else {
        let _ = writer
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    if faults.contains(&Fault::Corrupt(relative.to_string())) {
        let middle = body.len() / 2;
        body[middle] ^= 0x20;
    }
    let total = body.len();
    let start = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n <= total);
    let (status, slice) = match start {
        Some(n) if n == total => {
            let _ = writer.write_all(
                format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            return;
        }
        Some(n) => (
            format!(
                "206 Partial Content\r\nContent-Range: bytes {n}-{}/{total}",
                total - 1
            ),
            &body[n..],
        ),
        None => ("200 OK".to_string(), &body[..]),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        slice.len()
    );
    if writer.write_all(head.as_bytes()).is_err() {
        return;
    }
    let drop_half = earlier == 0 && faults.contains(&Fault::DropHalf(relative.to_string()));
    let sent = if drop_half {
        &slice[..slice.len() / 2]
    } else {
        slice
    };
    let _ = writer.write_all(sent);
    let _ = writer.flush();
    // Dropping both halves closes the connection: a dropped transfer ends short.
}
