//! history.html in a real browser: Debian's Chromium, headless, opens the history of two runs
//! whose answers are hostile markup (fixtures/profiles/planted-failure.toml) from a file://
//! URL. The page must log nothing, fetch nothing, run no script of its own, draw a chart per
//! headline estimate and link every run's report.html by a relative path that resolves. No
//! model text appears on the page (answers are not shown); the page must still hold no script
//! from a run.
//!
//! It is `#[ignore]`d (it needs Chromium); `.ci/run` installs Chromium and runs it with
//! `--ignored`, and it fails with the install command when Chromium is missing.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

use std::process::Command;

const INSTRUMENT_HEAD: &str = r##"<script>
window.__seen = { errors: [], violations: [] };
window.addEventListener("error", function (e) { window.__seen.errors.push(String(e.message || e.type)); }, true);
document.addEventListener("securitypolicyviolation", function (e) { window.__seen.violations.push(e.violatedDirective + " " + e.blockedURI); });
</script>"##;

const INSTRUMENT_BODY: &str = r##"<script>
(function () {
  var result = {};
  result.svgs = document.querySelectorAll("figure svg").length;
  result.links = Array.prototype.map.call(document.querySelectorAll("#run-table a"), function (a) { return a.href; });
  result.runRows = document.querySelectorAll("#run-table tr").length - 1;
  result.stepRows = document.querySelectorAll("#step-table tr").length - 1;
  result.title = document.title;
  result.pwned = typeof window.pwned;
  result.scripts = document.scripts.length;
  result.resources = performance.getEntriesByType("resource").map(function (r) { return r.name; });
  setTimeout(function () {
    result.seen = window.__seen;
    var out = document.createElement("pre");
    out.id = "probe-result";
    out.textContent = JSON.stringify(result);
    document.body.appendChild(out);
  }, 300);
})();
</script>"##;

#[test]
#[ignore = "needs Chromium (apt-get install chromium); .ci/run runs it: cargo test -p probity --test it -- --ignored browser"]
fn the_history_is_safe_and_works_in_chromium() {
    // Fail at once, before any run, when Chromium is missing.
    crate::support::chromium::find();

    let dir = tempfile::tempdir().unwrap();
    let backend = format!(
        "scripted:{}",
        fixtures::profile("planted-failure").display()
    );
    for name in ["a", "b"] {
        let output = Command::new(env!("CARGO_BIN_EXE_probity"))
            .args([
                "run",
                "--suite",
                "counterfactual-refusal",
                "--backend",
                &backend,
                "--quiet",
                "--limit",
                "40",
            ])
            .arg("--out")
            .arg(dir.path().join("runs").join(name))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let out = dir.path().join("history");
    let output = Command::new(env!("CARGO_BIN_EXE_probity"))
        .arg("history")
        .arg(dir.path().join("runs"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let html = std::fs::read_to_string(out.join("history.html")).unwrap();
    assert!(!html.contains("<script"), "the page holds a script");
    // The page allows no script at all; the instrumented copy allows its own inline ones.
    let csp = "default-src 'none';";
    assert!(
        html.contains(csp),
        "the page has its Content-Security-Policy"
    );
    let page = html
        .replacen(csp, "default-src 'none'; script-src 'unsafe-inline';", 1)
        .replacen("<head>", &format!("<head>{INSTRUMENT_HEAD}"), 1)
        .replacen("</body>", &format!("{INSTRUMENT_BODY}</body>"), 1);
    // Beside history.html, so that its relative links resolve as they would.
    let page_path = out.join("instrumented.html");
    std::fs::write(&page_path, page).unwrap();

    let seen = crate::support::chromium::instrumented(&page_path, dir.path(), None);

    assert_eq!(seen["seen"]["errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["seen"]["violations"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["resources"], serde_json::json!([]), "{seen}");
    assert!(seen["svgs"].as_u64().unwrap() >= 1, "{seen}");
    assert_eq!(seen["runRows"], 2, "{seen}");
    assert_eq!(seen["stepRows"], 1, "{seen}");
    // Only the two instrumentation scripts run; nothing from a run does.
    assert_eq!(seen["scripts"], 2, "{seen}");
    assert_eq!(seen["pwned"], "undefined", "{seen}");
    // Each link resolves to that run's report.html.
    let links = seen["links"].as_array().unwrap();
    assert_eq!(links.len(), 2, "{seen}");
    for (link, name) in links.iter().zip(["a", "b"]) {
        let link = link
            .as_str()
            .unwrap()
            .trim_start_matches("file://")
            .to_string();
        let path = std::path::Path::new(&link);
        assert!(path.is_file(), "{link} does not resolve");
        assert_eq!(
            path.canonicalize().unwrap(),
            dir.path()
                .join("runs")
                .join(name)
                .join("report.html")
                .canonicalize()
                .unwrap()
        );
    }
}
