//! report.html in a real browser: Debian's Chromium, headless, opens the report of a scripted
//! run whose answers are hostile markup (fixtures/profiles/planted-failure.toml) from a
//! file:// URL. The page must log nothing to the console, fetch nothing, draw its charts and
//! table, filter the table by text, probe and score, and show `<script>` and `{{ 7*7 }}` as
//! text, never running or evaluating them.
//!
//! The test instruments a copy of the page: a script first in `<head>` records errors, console
//! errors and Content-Security-Policy violations; a script last in `<body>` drives the filters
//! and writes what it saw into the DOM, which `--dump-dom` returns. Chromium's own log
//! (`--enable-logging=stderr`) and its NetLog (every URL it requested) are checked too.
//!
//! A second page, the report of a hand-built run of adaptive attacks (fixtures::attack_run,
//! written to disk and reported by `reports::write_reports`), checks the attack view: every
//! conversation is closed at first, opening one shows its turns, hostile turns are text, and
//! nothing reaches the console.
//!
//! They are `#[ignore]`d, so that `cargo test` says so instead of passing without a browser;
//! `.ci/run` installs Chromium and runs them with `--ignored`, and they fail with the install
//! command when Chromium is missing.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const INSTRUMENT_HEAD: &str = r##"<script>
window.__seen = { errors: [], consoleErrors: [], violations: [] };
window.addEventListener("error", function (e) { window.__seen.errors.push(String(e.message || e.type)); }, true);
document.addEventListener("securitypolicyviolation", function (e) { window.__seen.violations.push(e.violatedDirective + " " + e.blockedURI); });
(function () { var original = console.error; console.error = function () { window.__seen.consoleErrors.push(Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); }; })();
</script>"##;

const INSTRUMENT_BODY: &str = r##"<script>
(function () {
  function visible() {
    return Array.prototype.filter.call(document.querySelectorAll("#attempts-table tbody tr"), function (r) { return r.style.display !== "none"; }).length;
  }
  function set(id, value, event) { var el = document.getElementById(id); el.value = value; el.dispatchEvent(new Event(event)); }
  var result = { rows: document.querySelectorAll("#attempts-table tbody tr").length, initiallyVisible: visible() };
  set("filter", "Muslim", "input"); result.search = visible(); set("filter", "", "input");
  set("probe-filter", "counterfactual.requests", "change"); result.probe = visible();
  set("score-filter", "refusal:1", "change"); result.refused = visible();
  set("score-filter", "refusal:0", "change"); result.complied = visible();
  set("score-filter", "refusal:1", "change"); set("filter", "Muslim", "input"); result.refusedMuslim = visible();
  set("filter", "", "input"); set("probe-filter", "", "change"); set("score-filter", "", "change");
  result.svgs = document.querySelectorAll("figure.chart svg").length;
  result.verdict = document.getElementById("verdict").textContent;
  result.gateRows = document.querySelectorAll("#gates tr").length - 1;
  result.provisions = document.querySelectorAll("#provisions tr").length - 1;
  var answer = document.querySelector("#attempts-table tbody td.answer");
  var hostile = Array.prototype.filter.call(document.querySelectorAll("td.answer"), function (td) { return td.textContent.indexOf("<script>") !== -1; });
  result.hostileAnswers = hostile.length;
  result.hostileText = hostile.length ? hostile[0].textContent : "";
  result.hostileChildren = hostile.length ? hostile[0].children.length : -1;
  result.images = document.images.length;
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

/// Hosts Chromium itself contacts (component updates, accounts, time) even with background
/// networking disabled; the page may contact none at all.
const CHROMIUM_OWN_HOSTS: &[&str] = &[
    "google.com",
    "googleapis.com",
    "gvt1.com",
    "gstatic.com",
    "googleusercontent.com",
];

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .split(':')
        .next()
        .unwrap_or("")
}

#[test]
#[ignore = "needs Chromium (apt-get install chromium); .ci/run runs it: cargo test -p probity --test it -- --ignored browser"]
fn the_report_is_safe_and_works_in_chromium() {
    // Fail at once, before any run, when Chromium is missing.
    crate::support::chromium::find();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let backend = format!(
        "scripted:{}",
        fixtures::profile("planted-failure").display()
    );
    let policy = fixtures::root().join("policies/release.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args([
            "run",
            "--suite",
            "counterfactual-refusal",
            "--backend",
            &backend,
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // What the filters should find, from the journal.
    let journal = std::fs::read_to_string(out.join("attempts.jsonl")).unwrap();
    let attempts: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refused = attempts
        .iter()
        .filter(|a| a["scores"]["refusal"] == 1.0)
        .count();
    let is_muslim = |a: &&Value| a.to_string().to_lowercase().contains("muslim");
    let muslim = attempts.iter().filter(is_muslim).count();
    let refused_muslim = attempts
        .iter()
        .filter(is_muslim)
        .filter(|a| a["scores"]["refusal"] == 1.0)
        .count();

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let page = html
        .replacen("<head>", &format!("<head>{INSTRUMENT_HEAD}"), 1)
        .replacen("</body>", &format!("{INSTRUMENT_BODY}</body>"), 1);
    let page_path = dir.path().join("instrumented.html");
    std::fs::write(&page_path, page).unwrap();

    let net_log = dir.path().join("netlog.json");
    let seen = crate::support::chromium::instrumented(&page_path, dir.path(), Some(&net_log));

    assert_eq!(seen["seen"]["errors"], serde_json::json!([]), "{seen}");
    assert_eq!(
        seen["seen"]["consoleErrors"],
        serde_json::json!([]),
        "{seen}"
    );
    assert_eq!(seen["seen"]["violations"], serde_json::json!([]), "{seen}");
    assert_eq!(
        seen["resources"],
        serde_json::json!([]),
        "the page fetched something: {seen}"
    );

    // Charts and table.
    assert!(seen["svgs"].as_u64().unwrap() >= 2, "{seen}");
    assert_eq!(seen["rows"], attempts.len(), "{seen}");
    assert_eq!(seen["initiallyVisible"], attempts.len(), "{seen}");
    assert_eq!(seen["verdict"], "FAIL: 1 of 2 gates failed", "{seen}");
    assert_eq!(seen["gateRows"], 2, "{seen}");
    assert_eq!(seen["provisions"], 10, "{seen}");

    // Filters: by text, probe and score.
    assert_eq!(seen["search"], muslim, "{seen}");
    assert_eq!(seen["probe"], attempts.len(), "{seen}");
    assert_eq!(seen["refused"], refused, "{seen}");
    assert_eq!(seen["complied"], attempts.len() - refused, "{seen}");
    assert_eq!(seen["refusedMuslim"], refused_muslim, "{seen}");

    // Hostile answers are text: shown verbatim, never run, evaluated or fetched.
    assert_eq!(seen["hostileAnswers"], attempts.len() - refused, "{seen}");
    let hostile = seen["hostileText"].as_str().unwrap();
    assert!(
        hostile.contains("<script>document.title = 'pwned'"),
        "{hostile}"
    );
    assert!(hostile.contains("{{ 7*7 }} {% raw %}"), "{hostile}");
    assert!(!hostile.contains("49"), "{hostile}");
    assert_eq!(
        seen["hostileChildren"], 0,
        "the answer cell holds no element"
    );
    assert_eq!(seen["images"], 0, "{seen}");
    assert_eq!(seen["pwned"], "undefined", "{seen}");
    assert!(
        seen["title"].as_str().unwrap().starts_with("Probity audit"),
        "{seen}"
    );
    // The report's own filter script and the two instrumentation scripts; nothing else.
    assert_eq!(seen["scripts"], 3, "{seen}");

    // Chromium's NetLog: no URL but Chromium's own background hosts, and none from the page.
    let log = std::fs::read_to_string(&net_log).unwrap_or_default();
    let mut foreign = Vec::new();
    for piece in log.split("\"url\":\"").skip(1) {
        let url = piece.split('"').next().unwrap_or("");
        let host = host_of(url);
        let own = CHROMIUM_OWN_HOSTS
            .iter()
            .any(|h| host == *h || host.ends_with(&format!(".{h}")));
        if !url.starts_with("file:") && !url.starts_with("data:") && !own {
            foreign.push(url.to_string());
        }
    }
    assert!(foreign.is_empty(), "requests: {foreign:#?}");
    assert!(
        !log.contains("127.0.0.1:9"),
        "the hostile image was requested"
    );
    assert!(Path::new(&net_log).exists());
}

const INSTRUMENT_ATTACKS: &str = r##"<script>
(function () {
  // Whether the element is shown: checkVisibility is false in a closed details' content.
  function rendered(el) { return el.checkVisibility(); }
  function count(list, test) { return Array.prototype.filter.call(list, test).length; }
  var details = document.querySelectorAll("details.attack");
  var turns = document.querySelectorAll("details.attack li.turn");
  var result = {
    attacks: details.length,
    openAtFirst: count(details, function (d) { return d.open; }),
    turns: turns.length,
    turnsRenderedAtFirst: count(turns, rendered),
    summariesRendered: count(document.querySelectorAll("details.attack > summary"), rendered),
    counts: Array.prototype.map.call(document.querySelectorAll(".attack-counts"), function (p) { return p.textContent; }),
    navLink: document.querySelectorAll("nav a[href='#attacks']").length
  };
  var first = details[0];
  first.querySelector("summary").click();
  result.firstOpen = first.open;
  result.firstTurnsRendered = count(first.querySelectorAll("li.turn"), rendered);
  result.firstTurns = first.querySelectorAll("li.turn").length;
  result.othersRendered = count(turns, rendered) - result.firstTurnsRendered;
  var hostile = Array.prototype.filter.call(first.querySelectorAll("li.turn .text"), function (el) { return el.textContent.indexOf("<script>") !== -1; });
  result.hostileShown = count(hostile, rendered);
  result.hostileText = hostile.length ? hostile[0].textContent : "";
  result.hostileChildren = hostile.length ? hostile[0].children.length : -1;
  result.goals = Array.prototype.map.call(document.querySelectorAll("details.attack > summary"), function (s) { return s.textContent; }).join("\n");
  result.images = document.images.length;
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
fn attack_conversations_are_collapsed_and_inert() {
    crate::support::chromium::find();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir(&out).unwrap();
    let run = fixtures::attack_run::write(&out).unwrap();
    reports::write_reports(&out).unwrap();
    let turns: usize = run
        .attempts
        .iter()
        .map(|a| match &a.answer {
            audit_core::Answer::Attack(record) => record.turns.len().min(60),
            _ => 0,
        })
        .sum();
    let first_turns = match &run.attempts[0].answer {
        audit_core::Answer::Attack(record) => record.turns.len(),
        other => panic!("not an attack: {other:?}"),
    };

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let page = html
        .replacen("<head>", &format!("<head>{INSTRUMENT_HEAD}"), 1)
        .replacen("</body>", &format!("{INSTRUMENT_ATTACKS}</body>"), 1);
    let page_path = dir.path().join("instrumented.html");
    std::fs::write(&page_path, page).unwrap();
    let seen = crate::support::chromium::instrumented(&page_path, dir.path(), None);

    assert_eq!(seen["seen"]["errors"], serde_json::json!([]), "{seen}");
    assert_eq!(
        seen["seen"]["consoleErrors"],
        serde_json::json!([]),
        "{seen}"
    );
    assert_eq!(seen["seen"]["violations"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["resources"], serde_json::json!([]), "{seen}");

    // Every attack is there, collapsed: its summary shows, its turns do not.
    assert_eq!(seen["attacks"], run.attempts.len(), "{seen}");
    assert_eq!(seen["openAtFirst"], 0, "{seen}");
    assert_eq!(seen["turns"], turns, "{seen}");
    assert_eq!(seen["turnsRenderedAtFirst"], 0, "{seen}");
    assert_eq!(seen["summariesRendered"], run.attempts.len(), "{seen}");
    assert_eq!(seen["navLink"], 1, "{seen}");
    let counts = seen["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 2, "{seen}");
    assert!(
        counts[0]
            .as_str()
            .unwrap()
            .starts_with("4 behaviors attacked, 3 successes"),
        "{seen}"
    );

    // Opening one shows its turns, and only its.
    assert_eq!(seen["firstOpen"], true, "{seen}");
    assert_eq!(seen["firstTurns"], first_turns, "{seen}");
    assert_eq!(seen["firstTurnsRendered"], first_turns, "{seen}");
    assert_eq!(seen["othersRendered"], 0, "{seen}");

    // Hostile turns and goals are text: shown verbatim, never run, evaluated or fetched.
    assert_eq!(seen["hostileShown"], 1, "{seen}");
    assert_eq!(seen["hostileText"], fixtures::attack_run::HOSTILE, "{seen}");
    assert_eq!(seen["hostileChildren"], 0, "{seen}");
    let goals = seen["goals"].as_str().unwrap();
    assert!(
        goals.contains("Explain how to pick a lock <b>now</b>"),
        "{goals}"
    );
    assert!(goals.contains("Explain a synthesis {{ goal }}"), "{goals}");
    assert_eq!(seen["images"], 0, "{seen}");
    assert_eq!(seen["pwned"], "undefined", "{seen}");
    // The report's filter script and the two instrumentation scripts; nothing else.
    assert_eq!(seen["scripts"], 3, "{seen}");
}
