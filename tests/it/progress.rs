//! Progress on stderr: plain lines per phase and at an interval when stderr is no terminal (as
//! in CI), a bar on a terminal (a pseudo-terminal from util-linux's `script`), nothing with
//! `--quiet`.

#![allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.

use crate::support::cli;

use std::process::Command;

fn run(out: &std::path::Path, quiet: bool) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_probity"));
    command
        .args(["run", "--suite", "counterfactual-refusal", "--backend"])
        .arg(format!("scripted:{}", fixtures::profile("null").display()))
        .args(["--limit", "40", "--out"])
        .arg(out)
        // A line after every batch instead of every 30 seconds.
        .env("PROBITY_PROGRESS_SECONDS", "0");
    if quiet {
        command.arg("--quiet");
    }
    let output = command.output().unwrap();
    cli::assert_success(&output);
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn without_a_terminal_each_phase_prints_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run(&dir.path().join("run"), false);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].starts_with("loading: done in "), "{stderr}");
    let n = 40;
    // A line after each batch but the last (the interval is 0 here), with rate and time left.
    let updates: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("chat: ") && l.contains(" items, ") && l.contains("/s, "))
        .collect();
    assert!(!updates.is_empty(), "{stderr}");
    assert!(updates[0].ends_with(" elapsed"), "{stderr}");
    assert!(updates[0].contains(" left, "), "{stderr}");
    // The scripted backend counts words as tokens.
    assert!(updates[0].contains(" items/s, "), "{stderr}");
    assert!(updates[0].contains(" tokens/s, "), "{stderr}");
    let done = format!("chat: {n}/{n} done in ");
    assert!(lines.iter().any(|l| l.starts_with(&done)), "{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("statistics and reports: done in ")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "no terminal codes in a log"
    );
}

#[test]
fn quiet_prints_no_progress() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run(&dir.path().join("run"), true);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("wrote "), "{stderr}");
}

#[test]
fn on_a_terminal_a_bar_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let command = format!(
        "{} run --suite counterfactual-refusal --backend scripted:{} --limit 40 --out {}",
        env!("CARGO_BIN_EXE_probity"),
        fixtures::profile("slow-null").display(),
        out.display()
    );
    // `script` gives the command a pseudo-terminal and copies what it drew to stdout.
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .unwrap();
    cli::assert_success(&output);
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(screen.contains("chat"), "{screen}");
    assert!(screen.contains("/40 "), "{screen}");
    assert!(screen.contains("tokens/s"), "{screen}");
    assert!(
        screen.contains("=>") || screen.contains("=="),
        "a bar: {screen}"
    );
    assert!(
        !screen.contains("chat: 40 items"),
        "no plain lines on a terminal: {screen}"
    );
}
