//! End-to-end tests that a run directory is never lost and an input never trusted: non-finite
//! numbers, panics on odd input, run-directory safety (locks, atomic writes, interrupts,
//! resume and merge checks), secrets and paths (docs/run-directory.md).

#![allow(clippy::unwrap_used)]

use crate::support::cli;
use cli::{assert_success, fails, probity, read_json};

use std::path::Path;

use serde_json::Value;

/// A scripted profile written into `dir`.
fn profile(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    format!("scripted:{}", path.display())
}

fn datasets() -> String {
    fixtures::datasets().to_str().unwrap().to_string()
}

/// Every number of every JSON file of a run directory is a number: no `null` where the schema
/// has a float (the readers refuse it), and every reader accepts the directory back.
fn assert_readable(run: &Path) {
    let text = std::fs::read_to_string(run.join("summary.json")).unwrap();
    let summary: Value = serde_json::from_str(&text).unwrap();
    for estimate in summary["estimates"].as_array().unwrap() {
        for field in ["value", "ci_low", "ci_high"] {
            assert!(
                estimate[field].is_f64() || estimate[field].is_i64(),
                "{estimate}"
            );
        }
    }
    for test in summary["tests"].as_array().unwrap() {
        for field in ["statistic", "p_value", "q_holm", "q_bh", "effect"] {
            assert!(test[field].is_number(), "{test}");
        }
    }
    let journal = std::fs::read_to_string(run.join("attempts.jsonl")).unwrap();
    assert!(!journal.contains("null"), "a null in the journal");
    assert_success(&probity(&["report", run.to_str().unwrap()]));
}

/// A model whose log-probabilities are NaN for some options (NaN weights) and -inf for others
/// (a server's huge log-probs summed): those attempts are errors that say why, the others are
/// scored, and every reader accepts the run, which resumes.
#[test]
fn non_finite_log_probabilities_make_those_attempts_errors() {
    let dir = tempfile::tempdir().unwrap();
    let backend = profile(
        dir.path(),
        "nan",
        "name = \"nan\"\n[choice]\n[[choice.bonus]]\npattern = \"(?i)\\\\bpoor\\\\b\"\nvalue = nan\n[[choice.bonus]]\npattern = \"(?i)\\\\bblack\\\\b\"\nvalue = -inf\n",
    );
    let run = dir.path().join("run");
    let datasets = datasets();
    let args = [
        "run",
        "--suite",
        "crows-pairs",
        "--backend",
        &backend,
        "--datasets",
        &datasets,
        "--limit",
        "300",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ];
    assert_success(&probity(&args));
    let journal = std::fs::read_to_string(run.join("attempts.jsonl")).unwrap();
    let errors: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a.get("error").is_some())
        .collect();
    assert!(
        errors
            .iter()
            .any(|a| a["error"].as_str().unwrap().contains("NaN")),
        "no NaN error among {} errors",
        errors.len()
    );
    assert!(errors
        .iter()
        .any(|a| a["error"].as_str().unwrap().contains("-inf")));
    assert!(
        errors.len() < journal.lines().count(),
        "every attempt failed"
    );
    assert_readable(&run);
    // The finished run is read back by --resume too (nothing left to run).
    let mut resume = args.to_vec();
    resume.push("--resume");
    assert_success(&probity(&resume));
}

/// A WEAT test whose word set is empty once unknown words are left out (none of its words is
/// in GloVe's vocabulary) has an undefined effect size: it is omitted from summary.json with a
/// warning, and the run stays readable.
#[test]
fn an_undefined_estimate_is_omitted_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("data/weat");
    std::fs::create_dir_all(&tests).unwrap();
    let set = |category: &str, words: &[&str]| serde_json::json!({"category": category, "examples": words});
    let test = serde_json::json!({
        "targ1": set("Flowers", &["rose", "tulip", "daisy"]),
        "targ2": set("Insects", &["zqxjvb", "qqzvxk", "xkcdzq"]),
        "attr1": set("Pleasant", &["joy", "love", "peace"]),
        "attr2": set("Unpleasant", &["agony", "filth", "murder"]),
    });
    std::fs::write(tests.join("empty.jsonl"), test.to_string()).unwrap();
    let suite = dir.path().join("suite.toml");
    std::fs::write(
        &suite,
        "[suite]\nid = \"weat-empty\"\nversion = \"1\"\ndescription = \"an empty set\"\n\n[[probe]]\nid = \"weat.empty\"\nfamily = \"weat\"\ngoal = \"measure an association\"\nsource = \"test\"\ndir = \"weat\"\ntests = [\"empty\"]\n\n[[probe.metric]]\nkind = \"weat-effect\"\n",
    )
    .unwrap();
    let glove = fixtures::model("glove-6b-50d");
    let run = dir.path().join("run");
    let output = probity(&[
        "run",
        "--suite",
        suite.to_str().unwrap(),
        "--model",
        glove.to_str().unwrap(),
        "--datasets",
        dir.path().join("data").to_str().unwrap(),
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_success(&output);
    let summary = read_json(&run.join("summary.json"));
    let warnings = summary["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("is omitted")),
        "{warnings:?}"
    );
    assert_readable(&run);
}

/// Non-finite numbers on the command line are refused when it is parsed.
#[test]
fn non_finite_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let backend = format!("scripted:{}", fixtures::profile("null").display());
    for (flag, value) in [
        ("--top-p", "nan"),
        ("--temperature", "inf"),
        ("--confidence", "NaN"),
        ("--min-effect", "-1e999"),
        ("--timeout", "inf"),
        ("--timeout", "0"),
        ("--top-p", "1.5"),
    ] {
        let line = fails(&[
            "run",
            "--suite",
            "counterfactual-refusal",
            "--backend",
            &backend,
            "--out",
            out.to_str().unwrap(),
            &format!("{flag}={value}"),
        ]);
        assert!(line.contains(flag), "{flag} {value}: {line}");
        assert!(!out.exists(), "{flag} {value}: a run directory was made");
    }
}

/// Inputs that panicked (exit 101 and a backtrace) are one-line errors with exit code 2.
#[test]
fn odd_inputs_are_one_line_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    let backend = format!("scripted:{}", fixtures::profile("null").display());
    for (flag, value) in [
        ("--max-new-tokens", "18446744073709551615"),
        ("--max-new-tokens", "0"),
        ("--concurrency", "18446744073709551615"),
        ("--concurrency", "0"),
        ("--max-retries", "4294967295"),
    ] {
        let line = fails(&[
            "run",
            "--suite",
            "counterfactual-refusal",
            "--backend",
            &backend,
            "--out",
            out,
            flag,
            value,
        ]);
        assert!(line.contains(flag), "{line}");
    }
    // A GGUF file whose header sets `general.alignment = 0` (candle divides by it).
    let gguf = dir.path().join("aligned.gguf");
    let mut bytes = Vec::new();
    bytes.extend(0x4655_4747u32.to_le_bytes());
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    bytes.extend(17u64.to_le_bytes());
    bytes.extend(b"general.alignment");
    bytes.extend(4u32.to_le_bytes());
    bytes.extend(0u32.to_le_bytes());
    std::fs::write(&gguf, bytes).unwrap();
    let line = fails(&[
        "run",
        "--suite",
        "crows-pairs",
        "--model",
        gguf.to_str().unwrap(),
        "--datasets",
        &datasets(),
        "--limit",
        "1",
        "--out",
        out,
    ]);
    assert!(line.contains("general.alignment = 0"), "{line}");
    assert!(line.contains("aligned.gguf"), "{line}");
}

/// An argument that is not UTF-8 is recorded lossily, not a panic.
#[test]
fn a_non_utf8_argument_is_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(std::ffi::OsStr::from_bytes(b"run-\xff"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_probity"))
        .args([
            "run",
            "--suite",
            "counterfactual-refusal",
            "--quiet",
            "--limit",
            "2",
        ])
        .arg("--backend")
        .arg(format!("scripted:{}", fixtures::profile("null").display()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_success(&output);
    let manifest = read_json(&out.join("manifest.json"));
    let line = manifest["command_line"].to_string();
    assert!(line.contains("run-\u{fffd}"), "{line}");
    // And a non-UTF-8 value of a text flag is clap's one-line error.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_probity"))
        .arg("run")
        .arg("--suite")
        .arg(std::ffi::OsStr::from_bytes(b"\xff"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// `probity list | head -1`: the reader goes away; probity neither panics nor complains.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_probity"))
        .arg("list")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

// ---- Run-directory safety ----------------------------------------------------------------

const SUITE: &str = "counterfactual-refusal";

fn line_count(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

/// `probity run` on the built-in suite with a scripted profile, as a child process.
fn spawn_run(backend: &str, out: &Path, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "--suite", SUITE, "--backend", backend, "--quiet"])
        .args(["--batch-size", "16"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the journal of `out` has at least `lines` lines (or a minute passed).
fn wait_for_lines(out: &Path, lines: usize) {
    let journal = out.join("attempts.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while line_count(&journal) < lines && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn slow_backend() -> String {
    format!("scripted:{}", fixtures::profile("slow-null").display())
}

fn run_args<'a>(backend: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--suite", SUITE, "--backend", backend, "--quiet"];
    args.extend_from_slice(&["--batch-size", "16", "--out", out]);
    args.extend_from_slice(extra);
    args
}

/// A second writer (a --resume of a run still going, a merge into it, a gate or a report
/// rewriting it) is refused with one line while the first holds the directory.
#[test]
fn two_writers_never_share_a_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let backend = slow_backend();
    let mut first = spawn_run(&backend, &out, &[]);
    wait_for_lines(&out, 16);
    let outs = out.to_str().unwrap();
    let line = fails(&run_args(&backend, outs, &["--resume"]));
    assert!(line.contains("in use by another probity process"), "{line}");
    let line = fails(&["report", outs]);
    assert!(line.contains("in use"), "{line}");
    let policy = fixtures::root().join("policies/release.toml");
    let line = fails(&["gate", outs, "--policy", policy.to_str().unwrap()]);
    assert!(line.contains("in use"), "{line}");
    first.kill().unwrap();
    first.wait().unwrap();
    // The lock dies with its process: the killed run resumes.
    assert_success(&probity(&run_args(&backend, outs, &["--resume"])));
    let journal = std::fs::read_to_string(out.join("attempts.jsonl")).unwrap();
    let ids: std::collections::BTreeSet<&str> = journal
        .lines()
        .map(|l| {
            l.split("\"case_id\":\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        ids.len(),
        journal.lines().count(),
        "an attempt is journaled twice"
    );
}

/// SIGINT (and SIGTERM) finish the batch in flight, mark the run `interrupted` and exit 130;
/// the run resumes to exactly the journal and summary of an uninterrupted run.
#[test]
fn a_signal_finishes_the_batch_and_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let null = format!("scripted:{}", fixtures::profile("null").display());
    assert_success(&probity(&run_args(&null, whole.to_str().unwrap(), &[])));
    let backend = slow_backend();
    let out = dir.path().join("run");
    for signal in ["-INT", "-TERM"] {
        let resume: &[&str] = if out.join("manifest.json").exists() {
            &["--resume"]
        } else {
            &[]
        };
        let child = spawn_run(&backend, &out, resume);
        wait_for_lines(&out, line_count(&out.join("attempts.jsonl")) + 16);
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        let manifest = read_json(&out.join("manifest.json"));
        assert_eq!(manifest["status"], "interrupted");
        let journal = std::fs::read(out.join("attempts.jsonl")).unwrap();
        assert_eq!(journal.last(), Some(&b'\n'), "a torn line after {signal}");
        assert_eq!(
            line_count(&out.join("attempts.jsonl")) % 16,
            0,
            "a batch cut in two"
        );
    }
    assert_success(&probity(&run_args(
        &backend,
        out.to_str().unwrap(),
        &["--resume"],
    )));
    assert_eq!(
        std::fs::read_to_string(whole.join("attempts.jsonl")).unwrap(),
        std::fs::read_to_string(out.join("attempts.jsonl")).unwrap()
    );
    assert_eq!(
        std::fs::read(whole.join("summary.json")).unwrap(),
        std::fs::read(out.join("summary.json")).unwrap()
    );
    assert_eq!(read_json(&out.join("manifest.json"))["status"], "complete");
}

/// SIGKILL at seeded random moments, over many iterations, each followed by --resume (which
/// may be killed in turn): the finished journal is always the uninterrupted run's, line for
/// line (no attempt lost, none twice), and so is the summary.
#[test]
fn sigkill_at_random_points_never_loses_or_duplicates_an_attempt() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let null = format!("scripted:{}", fixtures::profile("null").display());
    assert_success(&probity(&run_args(&null, whole.to_str().unwrap(), &[])));
    let expected = std::fs::read_to_string(whole.join("attempts.jsonl")).unwrap();
    let fast = profile(
        dir.path(),
        "fast",
        "name = \"null\"\ndelay_ms = 5\n[chat]\nrefuse_probability = 0.10\n",
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let iterations: usize = std::env::var("PROBITY_KILL_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let mut kills = 0;
    for iteration in 0..iterations {
        let out = dir.path().join(format!("killed-{iteration}"));
        // Kill up to three times at random moments (process start, planning, writing the
        // manifest, mid-batch, the summary, the reports), then let it finish.
        for _ in 0..3 {
            let resume: &[&str] = if out.join("manifest.json").exists() {
                &["--resume"]
            } else {
                &[]
            };
            let mut child = spawn_run(&fast, &out, resume);
            std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(0..400)));
            if child.try_wait().unwrap().is_none() {
                kills += 1;
            }
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let resume: &[&str] = if out.join("manifest.json").exists() {
            &["--resume"]
        } else {
            &[]
        };
        let output = probity(&run_args(&fast, out.to_str().unwrap(), resume));
        assert_success(&output);
        assert_eq!(
            expected,
            std::fs::read_to_string(out.join("attempts.jsonl")).unwrap(),
            "iteration {iteration}"
        );
        assert_eq!(
            std::fs::read(whole.join("summary.json")).unwrap(),
            std::fs::read(out.join("summary.json")).unwrap()
        );
    }
    println!("{kills} SIGKILLs landed mid-run over {iterations} iterations");
    assert!(
        kills >= iterations,
        "only {kills} kills landed while the run was going"
    );
}

/// `--suite a,a` would run every case twice and double every n.
#[test]
fn a_suite_given_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let null = format!("scripted:{}", fixtures::profile("null").display());
    let line = fails(&[
        "run",
        "--suite",
        "counterfactual-refusal,counterfactual-refusal",
        "--backend",
        &null,
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(line.contains("given twice"), "{line}");
}

/// --resume refuses another model identity or changed dataset files.
#[test]
fn resume_refuses_another_model_or_changed_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data/crows_pairs");
    std::fs::create_dir_all(&data).unwrap();
    let csv = fixtures::datasets().join("crows_pairs/crows_pairs_anonymized.csv");
    std::fs::copy(&csv, data.join("crows_pairs_anonymized.csv")).unwrap();
    let datasets = dir.path().join("data");
    let out = dir.path().join("run");
    let null = format!("scripted:{}", fixtures::profile("null").display());
    let other = format!("scripted:{}", fixtures::profile("refusal-gap-20").display());
    let args = |backend: &str| {
        vec![
            "run".to_string(),
            "--suite".into(),
            "crows-pairs".into(),
            "--backend".into(),
            backend.to_string(),
            "--datasets".into(),
            datasets.display().to_string(),
            "--limit".into(),
            "5".into(),
            "--quiet".into(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let run = |backend: &str, extra: &[&str]| {
        let mut a = args(backend);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let as_str = |v: &[String]| {
        v.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\u{1}")
    };
    let call = |v: Vec<String>| probity(&as_str(&v).split('\u{1}').collect::<Vec<_>>());
    assert_success(&call(run(&null, &[])));
    let manifest = read_json(&out.join("manifest.json"));
    let recorded = manifest["datasets"].as_array().unwrap();
    assert!(
        recorded.iter().any(|d| d["path"]
            .as_str()
            .unwrap()
            .ends_with("crows_pairs_anonymized.csv")
            && d["sha256"].as_str().unwrap().len() == 64),
        "{recorded:?}"
    );
    let v = run(&other, &["--resume"]);
    let line = fails(&as_str(&v).split('\u{1}').collect::<Vec<_>>());
    assert!(line.contains("model"), "{line}");
    let v = run(&null, &["--resume", "--temperature", "0.5"]);
    let line = fails(&as_str(&v).split('\u{1}').collect::<Vec<_>>());
    assert!(line.contains("generation settings"), "{line}");
    // The dataset changes under the run: one byte more.
    let mut text = std::fs::read(data.join("crows_pairs_anonymized.csv")).unwrap();
    text.push(b'\n');
    std::fs::write(data.join("crows_pairs_anonymized.csv"), text).unwrap();
    let v = run(&null, &["--resume"]);
    let line = fails(&as_str(&v).split('\u{1}').collect::<Vec<_>>());
    assert!(line.contains("dataset files"), "{line}");
}

/// A merge of 2 of 3 shards is `partial`, and gates refuse it unless --allow-partial.
#[test]
fn a_partial_merge_is_refused_by_gates() {
    let dir = tempfile::tempdir().unwrap();
    let null = format!("scripted:{}", fixtures::profile("null").display());
    let mut shards = Vec::new();
    for k in 1..=2 {
        let out = dir.path().join(format!("{k}of3"));
        let spec = format!("{k}/3");
        assert_success(&probity(&run_args(
            &null,
            out.to_str().unwrap(),
            &["--shard", &spec],
        )));
        shards.push(out.to_str().unwrap().to_string());
    }
    let merged = dir.path().join("merged");
    let output = probity(&[
        "merge",
        &shards[0],
        &shards[1],
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_success(&output);
    assert_eq!(
        read_json(&merged.join("manifest.json"))["status"],
        "partial"
    );
    let policy = fixtures::root().join("policies/release.toml");
    let (merged, policy) = (merged.to_str().unwrap(), policy.to_str().unwrap());
    let line = fails(&["gate", merged, "--policy", policy]);
    assert!(
        line.contains("partial") && line.contains("--allow-partial"),
        "{line}"
    );
    let output = probity(&["gate", merged, "--policy", policy, "--allow-partial"]);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{output:?}");
}

/// Nothing is written through a symlink: a journal or manifest that is a link (even a
/// dangling one) makes the directory taken.
#[test]
fn output_writes_do_not_follow_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir_all(&out).unwrap();
    let target = dir.path().join("victim.txt");
    std::os::unix::fs::symlink(&target, out.join("attempts.jsonl")).unwrap();
    let null = format!("scripted:{}", fixtures::profile("null").display());
    let line = fails(&run_args(&null, out.to_str().unwrap(), &[]));
    assert!(line.contains("already holds a run"), "{line}");
    assert!(!target.exists(), "written through the link");
}

/// An output folder that cannot be written is a one-line error, whatever the cause.
#[test]
fn an_unwritable_output_folder_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let null = format!("scripted:{}", fixtures::profile("null").display());
    // A file where the folder should be (this works for root too, unlike a chmod).
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let line = fails(&run_args(&null, file.join("run").to_str().unwrap(), &[]));
    assert!(line.contains("file/run"), "{line}");
    // A read-only folder, where permissions apply (not for root).
    let read_only = dir.path().join("ro");
    std::fs::create_dir_all(&read_only).unwrap();
    let mut permissions = std::fs::metadata(&read_only).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&read_only, permissions).unwrap();
    if std::fs::write(read_only.join("probe"), "x").is_err() {
        let line = fails(&run_args(
            &null,
            read_only.join("run").to_str().unwrap(),
            &[],
        ));
        assert!(line.contains("ro/run"), "{line}");
    }
    // A read-only file system (/proc), where even root cannot write.
    let line = fails(&run_args(&null, "/proc/probity-run", &[]));
    assert!(line.contains("/proc/probity-run"), "{line}");
}

// ---- Secrets and paths -------------------------------------------------------------------

/// A server that answers every request with 400 and echoes the request (its Authorization
/// header included) in the body, as some proxies do.
fn echo_server() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { break };
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
                if request.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let echoed: String = String::from_utf8_lossy(&request)
                .lines()
                .filter(|l| l.contains(':'))
                .collect::<Vec<_>>()
                .join(" | ");
            let body = serde_json::json!({"error": {"message": format!("bad request: {echoed}")}})
                .to_string();
            let reply = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (address, handle)
}

/// Credentials in the URL and an echoed Authorization header reach no file of the run
/// directory; a key sent over plain http:// gets a warning.
#[test]
fn secrets_are_scrubbed_from_everything_written() {
    let (address, _server) = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let base_url = format!("http://alice:hunter2pass@{address}/v1");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_probity"))
        .args([
            "run",
            "--suite",
            SUITE,
            "--backend",
            "openai",
            "--limit",
            "2",
            "--quiet",
        ])
        .args([
            "--base-url",
            &base_url,
            "--model-name",
            "m",
            "--api-key-env",
            "PROBITY_TEST_KEY",
        ])
        .args([
            "--max-retries",
            "0",
            "--no-cache",
            "--concurrency",
            "1",
            "--timeout",
            "5",
        ])
        .arg("--out")
        .arg(&out)
        .env("PROBITY_TEST_KEY", "sk-test-7f3a9b2c1d")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_success(&output);
    assert!(stderr.contains("plain http://"), "{stderr}");
    let journal = std::fs::read_to_string(out.join("attempts.jsonl")).unwrap();
    assert!(
        journal.contains("bad request"),
        "the server's error is journaled: {journal}"
    );
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string();
        for secret in [
            "hunter2pass",
            "sk-test-7f3a9b2c1d",
            "YWxpY2U6aHVudGVyMnBhc3M",
        ] {
            assert!(!text.contains(secret), "{} holds {secret}", path.display());
        }
    }
    assert!(!stderr.contains("hunter2pass") && !stderr.contains("sk-test-7f3a9b2c1d"));
}

/// A suite's dataset path may not be absolute or climb out of --datasets.
#[test]
fn dataset_paths_stay_inside_the_datasets_folder() {
    let dir = tempfile::tempdir().unwrap();
    let null = format!("scripted:{}", fixtures::profile("null").display());
    for path in ["/etc/passwd", "../../etc/passwd", "crows_pairs/../../x.csv"] {
        let suite = dir.path().join("s.toml");
        std::fs::write(
            &suite,
            format!("[suite]\nid = \"s\"\nversion = \"1\"\ndescription = \"d\"\n\n[[probe]]\nid = \"c\"\nfamily = \"crows-pairs\"\ngoal = \"g\"\nsource = \"s\"\npath = \"{path}\"\n\n[[probe.metric]]\nkind = \"crows-pairs-score\"\n"),
        )
        .unwrap();
        let line = fails(&[
            "run",
            "--suite",
            suite.to_str().unwrap(),
            "--backend",
            &null,
            "--out",
            dir.path().join("x").to_str().unwrap(),
        ]);
        assert!(
            line.contains("s.toml") && line.contains("relative to --datasets"),
            "{path}: {line}"
        );
    }
}

/// A full disk (here a file-size limit, `ulimit -f`, with SIGXFSZ ignored so that writes fail
/// with EFBIG as they do with ENOSPC): the run stops with a one-line error, the journal holds
/// only whole lines, and once there is room --resume finishes it exactly as an uninterrupted
/// run.
#[test]
fn a_full_disk_stops_the_run_cleanly_and_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let null = format!("scripted:{}", fixtures::profile("null").display());
    assert_success(&probity(&run_args(&null, whole.to_str().unwrap(), &[])));
    let out = dir.path().join("full");
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec \"$0\" run --suite {SUITE} --backend '{null}' --quiet --batch-size 16 --out '{}'",
        out.display()
    );
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_probity"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("attempts.jsonl"), "{stderr}");
    let journal = std::fs::read(out.join("attempts.jsonl")).unwrap();
    assert!(!journal.is_empty() && journal.len() <= 64 * 512);
    assert_eq!(journal.last(), Some(&b'\n'), "a torn line was left");
    assert_success(&probity(&run_args(
        &null,
        out.to_str().unwrap(),
        &["--resume"],
    )));
    assert_eq!(
        std::fs::read_to_string(whole.join("attempts.jsonl")).unwrap(),
        std::fs::read_to_string(out.join("attempts.jsonl")).unwrap()
    );
}

/// A decoder folder the candle backend cannot build: one line naming the file and the family,
/// the missing tensor, or the misshaped tensor with both shapes, exit 2.
#[test]
fn unsupported_family_and_bad_tensors_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    let folder = dir.path().join("model");
    std::fs::create_dir(&folder).unwrap();
    let tokenizer = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"a":0,"b":1},"unk_token":"a"}}"#;
    std::fs::write(folder.join("tokenizer.json"), tokenizer).unwrap();
    // A safetensors file of the given f32 tensors (zeros), by hand.
    let safetensors = |tensors: &[(&str, [usize; 2])]| {
        let mut header = serde_json::Map::new();
        let mut offset = 0;
        for (name, shape) in tensors {
            let bytes = shape[0] * shape[1] * 4;
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
            );
            offset += bytes;
        }
        let mut text = serde_json::Value::Object(header).to_string();
        while !text.len().is_multiple_of(8) {
            text.push(' ');
        }
        let mut file = (text.len() as u64).to_le_bytes().to_vec();
        file.extend(text.as_bytes());
        file.extend(vec![0u8; offset]);
        std::fs::write(folder.join("model.safetensors"), file).unwrap();
    };
    let config = |model_type: &str| {
        let config = serde_json::json!({
            "model_type": model_type,
            "hidden_size": 8,
            "intermediate_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
        });
        std::fs::write(folder.join("config.json"), config.to_string()).unwrap();
    };
    let run = || {
        fails(&[
            "run",
            "--suite",
            "crows-pairs",
            "--model",
            folder.to_str().unwrap(),
            "--datasets",
            &datasets(),
            "--limit",
            "1",
            "--out",
            out,
        ])
    };
    let config_path = folder.join("config.json");
    config("mamba");
    safetensors(&[]);
    let line = run();
    assert!(line.contains("unsupported architecture `mamba`"), "{line}");
    assert!(line.contains(config_path.to_str().unwrap()), "{line}");
    assert!(line.contains("qwen3") && line.contains("gemma2"), "{line}");

    config("qwen3");
    let line = run();
    assert!(
        line.contains("tensor `model.embed_tokens.weight` is missing"),
        "{line}"
    );
    assert!(
        line.contains(folder.join("model.safetensors").to_str().unwrap()),
        "{line}"
    );

    safetensors(&[("model.embed_tokens.weight", [16, 4])]);
    let line = run();
    assert!(
        line.contains("tensor `model.embed_tokens.weight` has shape [16, 4], expected [16, 8]"),
        "{line}"
    );

    safetensors(&[
        ("model.embed_tokens.weight", [16, 8]),
        ("model.layers.0.self_attn.q_proj.weight", [8, 8]),
        ("model.layers.0.self_attn.k_proj.weight", [8, 8]),
    ]);
    let line = run();
    assert!(
        line.contains(
            "tensor `model.layers.0.self_attn.k_proj.weight` has shape [8, 8], expected [4, 8]"
        ),
        "{line}"
    );
}
