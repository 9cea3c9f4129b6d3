//! `probity datasets` against a real HTTP mirror started by each test on 127.0.0.1, serving the
//! staged ../shared/datasets: a fetch checked file for file, a connection dropped half-way and
//! resumed with a Range request, a corrupted file refused with nothing kept, no network as one
//! line, `verify` on a user's copy, and a suite whose file is missing naming the fetch command.

#![allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.

use crate::support::cli;
use crate::support::mirror;

use std::path::Path;
use std::process::{Command, Output};

use mirror::{Fault, Mirror};

/// `probity datasets ARGS…` with the datasets folder `dir`, without the caller's mirror variable.
fn datasets(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_probity"))
        .arg("datasets")
        .args(args)
        .arg("--datasets")
        .arg(dir)
        .env_remove("PROBITY_DATASETS_MIRROR")
        .output()
        .expect("the probity binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// The files of `name` under `dir` are byte-identical to the staged ones, and no `.part` is left.
fn assert_same_files(dir: &Path, name: &str) {
    let staged = fixtures::datasets().join(name);
    let dataset = probes::catalogue::find(name).unwrap();
    for file in &dataset.files {
        let got = std::fs::read(dir.join(name).join(&file.file)).unwrap();
        assert_eq!(
            got,
            std::fs::read(staged.join(&file.file)).unwrap(),
            "{}",
            file.file
        );
    }
    let parts = walk(&dir.join(name))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "part"))
        .count();
    assert_eq!(parts, 0);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(walk(&path));
        } else {
            all.push(path);
        }
    }
    all
}

#[test]
fn fetch_from_a_mirror_resumes_a_dropped_connection_and_checks_every_file() {
    let big = "crows_pairs/crows_pairs_anonymized.csv";
    let mirror = Mirror::start(&fixtures::datasets(), vec![Fault::DropHalf(big.into())]);
    let dir = tempfile::tempdir().unwrap();
    let output = datasets(
        dir.path(),
        &[
            "fetch",
            "crows_pairs",
            "winogender",
            "--mirror",
            &mirror.url(),
        ],
    );
    cli::assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("crows_pairs: 4 files"), "{stdout}");
    assert!(
        stdout.contains("SHARE-ALIKE"),
        "the license is flagged: {stdout}"
    );
    assert_same_files(dir.path(), "crows_pairs");
    assert_same_files(dir.path(), "winogender");
    // The first request got half of the file; the second asked for the rest.
    let half = 437_764 / 2;
    assert_eq!(
        mirror.ranges_of(&format!("/{big}")),
        ["".to_string(), format!("bytes={half}-")]
    );

    // A second fetch downloads nothing: every file is there with its sha256.
    let before = mirror.requests.lock().unwrap().len();
    let again = datasets(
        dir.path(),
        &["fetch", "crows_pairs", "--mirror", &mirror.url()],
    );
    cli::assert_success(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 downloaded, 4 already there"));
    assert_eq!(mirror.requests.lock().unwrap().len(), before);

    let verified = datasets(dir.path(), &["verify"]);
    cli::assert_success(&verified);
    let stdout = String::from_utf8_lossy(&verified.stdout);
    assert!(stdout.contains("crows_pairs: 4 files verified"), "{stdout}");
    assert!(stdout.contains("winogender: 5 files verified"), "{stdout}");
    let listed = datasets(dir.path(), &["list"]);
    cli::assert_success(&listed);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        stdout.contains("winogender  Winogender schemas: 5 files, 0.1 MB, present"),
        "{stdout}"
    );
    assert!(stdout.contains("bbq  BBQ"), "{stdout}");
    assert!(
        stdout.contains("CC BY-NC-SA 4.0 [NON-COMMERCIAL, SHARE-ALIKE]"),
        "{stdout}"
    );
}

#[test]
fn a_part_left_by_an_earlier_broken_fetch_is_resumed() {
    let file = "winogender/all_sentences.tsv";
    let mirror = Mirror::start(&fixtures::datasets(), Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let staged = std::fs::read(fixtures::datasets().join(file)).unwrap();
    std::fs::create_dir_all(dir.path().join("winogender")).unwrap();
    std::fs::write(dir.path().join(format!("{file}.part")), &staged[..1000]).unwrap();
    cli::assert_success(&datasets(
        dir.path(),
        &["fetch", "winogender", "--mirror", &mirror.url()],
    ));
    assert_eq!(mirror.ranges_of(&format!("/{file}")), ["bytes=1000-"]);
    assert_same_files(dir.path(), "winogender");
}

#[test]
fn a_corrupted_download_exits_2_and_keeps_nothing() {
    let bad = "winogender/templates.tsv";
    let mirror = Mirror::start(&fixtures::datasets(), vec![Fault::Corrupt(bad.into())]);
    let dir = tempfile::tempdir().unwrap();
    let output = datasets(
        dir.path(),
        &["fetch", "winogender", "--mirror", &mirror.url()],
    );
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("templates.tsv: sha256"), "{error}");
    assert!(error.contains("deleted"), "{error}");
    assert!(!dir.path().join(bad).exists());
    assert!(!dir.path().join(format!("{bad}.part")).exists());
}

#[test]
fn no_network_is_one_line() {
    // A port nobody listens on: the connection is refused, as with no route to the mirror.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let output = datasets(
        dir.path(),
        &[
            "fetch",
            "bbq",
            "--mirror",
            &format!("http://127.0.0.1:{port}"),
        ],
    );
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains("no network?") && error.contains("--mirror"),
        "{error}"
    );
    assert!(!error.contains("panicked"), "{error}");
}

#[test]
fn the_mirror_variable_is_read() {
    let mirror = Mirror::start(&fixtures::datasets(), Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["datasets", "fetch", "jailbreakbench", "--datasets"])
        .arg(dir.path())
        .env("PROBITY_DATASETS_MIRROR", mirror.url())
        .output()
        .unwrap();
    cli::assert_success(&output);
    assert_same_files(dir.path(), "jailbreakbench");
}

#[test]
fn a_file_that_is_no_single_upstream_file_needs_a_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let output = datasets(dir.path(), &["fetch", "jailbreakbench"]);
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains("no single upstream file") && error.contains("--mirror"),
        "{error}"
    );
}

#[test]
fn verify_names_each_file_that_differs_or_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("winogender");
    std::fs::create_dir_all(&copy).unwrap();
    let staged = fixtures::datasets().join("winogender");
    for file in ["all_sentences.tsv", "templates.tsv", "LICENSE", "README.md"] {
        std::fs::copy(staged.join(file), copy.join(file)).unwrap();
    }
    let mut text = std::fs::read_to_string(copy.join("templates.tsv")).unwrap();
    text.push('\n');
    std::fs::write(copy.join("templates.tsv"), text).unwrap();
    let output = datasets(dir.path(), &["verify"]);
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("2 files"), "{error}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("occupations-stats.tsv: missing"),
        "{stdout}"
    );
    assert!(stdout.contains("templates.tsv: sha256"), "{stdout}");
    // The staged copy itself verifies.
    cli::assert_success(&datasets(&fixtures::datasets(), &["verify"]));
    let unknown = datasets(dir.path(), &["fetch", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("no dataset named `nope`"));
}

#[test]
fn a_suite_whose_file_is_missing_names_the_fetch_command() {
    let empty = tempfile::tempdir().unwrap();
    let profile = fixtures::profile("null");
    for (suite, name) in [
        ("crows-pairs", "crows_pairs"),
        ("bbq", "bbq"),
        ("advbench", "advbench"),
    ] {
        let error = cli::fails(&[
            "run",
            "--suite",
            suite,
            "--backend",
            &format!("scripted:{}", profile.display()),
            "--datasets",
            empty.path().to_str().unwrap(),
            "--out",
            empty.path().join("run").to_str().unwrap(),
        ]);
        assert!(
            error.contains(&format!("probity datasets fetch {name}")),
            "{suite}: {error}"
        );
        assert!(error.contains(empty.path().to_str().unwrap()), "{error}");
    }
}
