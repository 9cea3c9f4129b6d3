//! Debian's Chromium, headless, for the browser tests: open an instrumented page from a
//! file:// URL and read back what its instrumentation wrote into `<pre id="probe-result">`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The Chromium binary, or a panic with the install command.
pub fn find() -> &'static str {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: run .ci/run's install step (apt-get install chromium)"
            )
        })
}

/// Opens `page` headless (profile under `scratch`, the NetLog into `net_log` where given) and
/// returns the JSON the instrumentation wrote, after checking that Chromium succeeded and that
/// nothing reached the console (no error, no CSP violation, no log line at all).
pub fn instrumented(page: &Path, scratch: &Path, net_log: Option<&Path>) -> Value {
    let mut command = Command::new(find());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("profile").display()
        ));
    if let Some(net_log) = net_log {
        command.arg(format!("--log-net-log={}", net_log.display()));
    }
    let output = command
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed: {stderr}");
    let dom = String::from_utf8_lossy(&output.stdout);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");

    let start = dom
        .find("<pre id=\"probe-result\">")
        .expect("the instrumentation ran")
        + 23;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}
