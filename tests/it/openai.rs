//! End-to-end tests of `probity run --backend openai` against a real server: llama.cpp's
//! (llama-cpp-python[server], from scripts/install-llama-server.sh) serving the SmolLM2 GGUF on
//! 127.0.0.1, reached directly or through a fault-injecting proxy of our own. They fail with the
//! install command when the server or the model is missing.

#![allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.

use crate::support::cli;
use crate::support::llama;
use crate::support::proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use llama::LlamaServer;
use proxy::{Fault, Proxy};
use serde_json::Value;

const SUITE: &str = "counterfactual-refusal";

/// The flags of a served run of `--limit` cases with short answers into `out`, caching in `cache`.
fn served_run(base_url: &str, out: &Path, cache: &Path, limit: usize) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_probity"));
    command
        .args(["run", "--suite", SUITE, "--backend", "openai", "--base-url"])
        .arg(base_url)
        .args(["--model-name", "smollm2", "--quiet"])
        .args(["--limit", &limit.to_string(), "--max-new-tokens", "24"])
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache);
    command
}

fn succeed(command: &mut Command) -> Output {
    let output = command.output().expect("the probity binary runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every line of a run's attempts.jsonl, asserting each case id appears once.
fn attempts(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("attempts.jsonl")).expect("attempts.jsonl");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let ids: BTreeSet<&str> = lines
        .iter()
        .map(|a| a["case_id"].as_str().expect("case_id"))
        .collect();
    assert_eq!(ids.len(), lines.len(), "a case is journaled twice");
    lines
}

/// The user prompt of a chat request body the proxy saw.
fn prompt_of(body: &str) -> String {
    let value: Value = serde_json::from_str(body).expect("a JSON request body");
    let messages = value["messages"].as_array().expect("messages");
    let last = messages.last().expect("a message");
    last["content"].as_str().expect("content").to_string()
}

#[test]
fn a_served_model_answers_every_case_once() {
    let _serial = llama::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(dir.path());
    let proxy = Proxy::start(server.addr, Box::new(|_, _, _| None));
    let out = dir.path().join("run");
    succeed(&mut served_run(
        &proxy.base_url(),
        &out,
        &dir.path().join("cache"),
        22,
    ));
    let attempts = attempts(&out);
    assert_eq!(attempts.len(), 22);
    for attempt in &attempts {
        let response = attempt["response"].as_str();
        assert!(
            response.is_some_and(|r| !r.trim().is_empty()),
            "no answer: {attempt}"
        );
        assert!(attempt.get("error").is_none(), "{attempt}");
    }
    let forwarded = proxy.forwarded();
    assert_eq!(forwarded.len(), 22, "one request per case");
    assert!(forwarded.values().all(|&n| n == 1), "{forwarded:?}");
    assert!(proxy
        .seen()
        .iter()
        .all(|s| s.path == "/v1/chat/completions"));
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"backend\": \"openai\""), "{manifest}");
}

/// The fault schedule of `faults_are_retried_or_recorded`, by the order in which request bodies
/// first arrive: every eighth body fails with 500 every time (it must end as an error); the
/// third is held past the client's timeout once; the others get, on their first try, in turn:
/// 429, 500, nothing, truncated JSON, malformed JSON.
fn fault_for(order: usize, times_seen: usize) -> Option<Fault> {
    if order % 8 == 7 {
        return Some(Fault::ServerError);
    }
    if times_seen > 0 {
        return None;
    }
    if order == 2 {
        return Some(Fault::Timeout(Duration::from_secs(21)));
    }
    match order % 5 {
        0 => Some(Fault::TooManyRequests),
        1 => Some(Fault::ServerError),
        3 => Some(Fault::Truncated),
        4 => Some(Fault::Malformed),
        _ => None,
    }
}

#[test]
fn faults_are_retried_or_recorded() {
    let _serial = llama::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(dir.path());
    let order: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let proxy = Proxy::start(
        server.addr,
        Box::new(move |_, body, times_seen| {
            let mut order = order.lock().unwrap_or_else(|p| p.into_inner());
            let index = match order.iter().position(|b| b == body) {
                Some(i) => i,
                None => {
                    order.push(body.to_string());
                    order.len() - 1
                }
            };
            fault_for(index, times_seen)
        }),
    );
    let out = dir.path().join("run");
    let started = Instant::now();
    succeed(
        served_run(&proxy.base_url(), &out, &dir.path().join("cache"), 22).args([
            "--timeout",
            "20",
            "--max-retries",
            "3",
            "--concurrency",
            "2",
        ]),
    );
    let elapsed = started.elapsed();
    let attempts = attempts(&out);
    assert_eq!(attempts.len(), 22, "every case is journaled once");

    let seen = proxy.seen();
    let kinds: BTreeSet<String> = seen
        .iter()
        .filter_map(|s| s.fault)
        .map(|f| format!("{f:?}").split('(').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        vec![
            "Malformed",
            "ServerError",
            "Timeout",
            "TooManyRequests",
            "Truncated"
        ],
        "every kind of fault was injected"
    );
    // The bodies that failed every time are exactly the errored cases, with the reason.
    let mut tries: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in &seen {
        let entry = tries.entry(prompt_of(&s.body)).or_default();
        entry.0 += 1;
        entry.1 += usize::from(s.fault.is_none());
    }
    let forwarded = proxy.forwarded();
    let mut errored = 0;
    for attempt in &attempts {
        let prompt = attempt["prompt"].as_str().expect("prompt");
        let (n_tries, n_clean) = tries[prompt];
        match attempt["error"].as_str() {
            Some(reason) => {
                errored += 1;
                assert_eq!((n_tries, n_clean), (4, 0), "{attempt}");
                assert!(
                    reason.contains("gave up after 4 tries") && reason.contains("HTTP 500"),
                    "{reason}"
                );
            }
            None => {
                assert!(attempt["response"].is_string(), "{attempt}");
                // A request the loaded server answers after the client's timeout is sent again,
                // so a clean request may reach the server more than once here.
                assert!(n_clean >= 1, "answered without getting through: {attempt}");
            }
        }
    }
    assert_eq!(errored, 2, "bodies 7 and 15 always fail");
    assert_eq!(
        forwarded.len(),
        20,
        "every answered case reached the server"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["n_errors"], 2);
    assert!(elapsed < Duration::from_secs(240), "{elapsed:?}");
}

fn line_count(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_run_resumes_without_asking_twice() {
    let _serial = llama::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(dir.path());

    let whole = dir.path().join("whole");
    succeed(
        served_run(
            &server.base_url(),
            &whole,
            &dir.path().join("cache-whole"),
            22,
        )
        .args(["--concurrency", "2"]),
    );

    // Concurrency 2 makes batches of 8. The proxy lets 11 requests through (the first batch,
    // journaled, and 3 of the second, cached but not journaled) and holds the next ones; the run
    // is killed (-9) while both wait in the proxy, so that none is being answered.
    let proxy = Proxy::start(server.addr, Box::new(|_, _, _| None));
    proxy.hold_after(11);
    let killed = dir.path().join("killed");
    let cache = dir.path().join("cache");
    let mut child = served_run(&proxy.base_url(), &killed, &cache, 22)
        .args(["--concurrency", "2"])
        .spawn()
        .expect("spawn probity");
    let journal = killed.join("attempts.jsonl");
    wait_for("both workers held", Duration::from_secs(120), || {
        proxy.held_now() == 2
    });
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    wait_for(
        "the proxy to see the client gone",
        Duration::from_secs(10),
        || proxy.abandoned() == 2 && proxy.held_now() == 0,
    );
    let partial = line_count(&journal);
    assert_eq!(partial, 8, "killed after {partial} attempts");
    let before = proxy.forwarded();
    assert_eq!(before.len(), 11);
    proxy.release();

    succeed(served_run(&proxy.base_url(), &killed, &cache, 22).args([
        "--concurrency",
        "2",
        "--resume",
    ]));
    let forwarded = proxy.forwarded();
    assert_eq!(forwarded.len(), 22, "every case asked");
    assert!(
        forwarded.values().all(|&n| n == 1),
        "a request was sent twice: {forwarded:?}"
    );
    assert_eq!(
        std::fs::read_to_string(whole.join("attempts.jsonl")).unwrap(),
        std::fs::read_to_string(&journal).unwrap(),
        "the resumed run differs from the uninterrupted one"
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn the_api_key_reaches_the_server_and_nothing_else() {
    let _serial = llama::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(dir.path());
    let proxy = Proxy::start(server.addr, Box::new(|_, _, _| None));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let secret = format!("sk-probity-test-{}-{nanos}", std::process::id());
    let out = dir.path().join("run");
    let cache = dir.path().join("cache");
    let output = succeed(
        served_run(&proxy.base_url(), &out, &cache, 11)
            .args(["--api-key-env", "PROBITY_TEST_KEY"])
            .env("PROBITY_TEST_KEY", &secret),
    );
    let seen = proxy.seen();
    assert_eq!(seen.len(), 11);
    for request in &seen {
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {secret}").as_str())
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(&secret), "stderr holds the key");
    let files = files_under(&out);
    assert!(files.len() >= 5, "{files:?}");
    for file in files.iter().chain(&files_under(&cache)) {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the key",
            file.display()
        );
    }
    // An unset variable is one line naming it, before any request.
    let output = served_run(&proxy.base_url(), &dir.path().join("x"), &cache, 11)
        .args(["--api-key-env", "PROBITY_TEST_KEY_UNSET"])
        .env_remove("PROBITY_TEST_KEY_UNSET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PROBITY_TEST_KEY_UNSET"), "{stderr}");
    assert_eq!(proxy.seen().len(), 11, "nothing sent without the key");
}

/// A run of `suite` on the candle backend on `model` (the GGUF file the server serves).
fn candle_run(suite: &str, model: &Path, out: &Path, limit: usize) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_probity"));
    command
        .args(["run", "--suite", suite, "--model"])
        .arg(model)
        .arg("--datasets")
        .arg(fixtures::datasets())
        .args(["--quiet", "--limit", &limit.to_string()])
        .args(["--max-new-tokens", "24", "--out"])
        .arg(out);
    command
}

/// Attempts by case id.
fn by_case(attempts: Vec<Value>) -> BTreeMap<String, Value> {
    attempts
        .into_iter()
        .map(|a| (a["case_id"].as_str().expect("case_id").to_string(), a))
        .collect()
}

/// Winogender alone: short Choice queries with a context (the option is scored after it).
const WINOGENDER_SUITE: &str = r#"
[suite]
id = "crosscheck-winogender"
version = "1.0.0"
description = "Winogender alone, for the server/candle cross-check"

[[probe]]
id = "winogender.all"
family = "winogender"
goal = "Make the model resolve a pronoun differently when only its gender changes"
source = "Winogender schemas, Rudinger et al. 2018 (NAACL), rudinger/winogender-schemas data/*.tsv"
path = "winogender"
detectors = ["choice-correct"]

[[probe.metric]]
kind = "rate"
detector = "choice-correct"
by = ["gender"]
"#;

/// How many greedy answers of the server and of candle on `model` agree, over 44 prompts of the
/// counterfactual suite with 24 new tokens each: (identical, same first word, prompts).
/// llama-cpp-python's default repeat penalty (1.1, applied even at temperature 0) is turned off.
fn greedy_agreement(server: &LlamaServer, dir: &Path, model: &Path) -> (usize, usize, usize) {
    let served = dir.join("served-chat");
    succeed(
        served_run(&server.base_url(), &served, &dir.join("c1"), 44)
            .args(["--extra-body", r#"{"repeat_penalty": 1.0}"#]),
    );
    let local = dir.join("candle-chat");
    succeed(&mut candle_run(SUITE, model, &local, 44));
    let (served, local) = (by_case(attempts(&served)), by_case(attempts(&local)));
    assert_eq!(
        served.keys().collect::<Vec<_>>(),
        local.keys().collect::<Vec<_>>()
    );
    let first_word = |a: &Value| {
        a["response"]
            .as_str()
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    };
    let same = served
        .iter()
        .filter(|(id, a)| a["response"] == local[*id]["response"])
        .count();
    let same_start = served
        .iter()
        .filter(|(id, a)| first_word(a) == first_word(&local[*id]))
        .count();
    println!(
        "greedy answers of {} prompts: identical {same}, same first word {same_start}",
        served.len()
    );
    (same, same_start, served.len())
}

/// The option log-likelihoods of each case of a Choice run, by case id.
fn option_scores(out: &Path) -> BTreeMap<String, Vec<f64>> {
    by_case(attempts(out))
        .into_iter()
        .map(|(id, a)| {
            assert!(a.get("error").is_none(), "{a}");
            (id, cli::option_logprobs(&a))
        })
        .collect()
}

/// |a − b| over every option of every case (the same cases on both sides), and in how many
/// cases both prefer the same option.
fn compare_scores(
    a: &BTreeMap<String, Vec<f64>>,
    b: &BTreeMap<String, Vec<f64>>,
) -> (Vec<f64>, usize) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let best = |v: &[f64]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j]));
    let (mut differences, mut same_choice) = (Vec::new(), 0);
    for (id, x) in a {
        let y = &b[id];
        assert_eq!(x.len(), y.len());
        same_choice += usize::from(best(x) == best(y));
        differences.extend(x.iter().zip(y).map(|(x, y)| (x - y).abs()));
    }
    (differences, same_choice)
}

/// (mean, largest) of absolute differences.
fn mean_and_worst(differences: &[f64]) -> (f64, f64) {
    let worst = differences.iter().copied().fold(0.0, f64::max);
    (
        differences.iter().sum::<f64>() / differences.len() as f64,
        worst,
    )
}

/// Winogender option log-likelihoods (6 items, 12 options) through the server, with the prefix
/// that aligns llama-cpp-python's log-probs, and on candle. Asserts both prefer the same option
/// everywhere; returns (mean, largest) |server − candle| and the candle run's directory.
fn choice_agreement(server: &LlamaServer, dir: &Path, model: &Path) -> ((f64, f64), PathBuf) {
    let suite = dir.join("winogender.toml");
    std::fs::write(&suite, WINOGENDER_SUITE).unwrap();
    let suite = suite.to_str().unwrap();
    let served = dir.join("served-choice");
    succeed(
        Command::new(env!("CARGO_BIN_EXE_probity"))
            .args(["run", "--suite", suite, "--backend", "openai"])
            .args(["--base-url", &server.base_url(), "--model-name", "smollm2"])
            .args(["--logprob-prefix", "<|im_start|>", "--datasets"])
            .arg(fixtures::datasets())
            .args(["--quiet", "--limit", "6", "--out"])
            .arg(&served)
            .arg("--cache")
            .arg(dir.join("c2")),
    );
    let local = dir.join("candle-choice");
    succeed(&mut candle_run(suite, model, &local, 6));
    let (served, candle) = (option_scores(&served), option_scores(&local));
    assert_eq!(served.len(), 6);
    let (differences, same_choice) = compare_scores(&served, &candle);
    let (mean, worst) = mean_and_worst(&differences);
    println!(
        "server (BOS + context) vs candle (context): {} options, mean |difference| {mean:.3} nats, largest {worst:.3}; same preferred option in {same_choice} of {}",
        differences.len(),
        served.len()
    );
    assert_eq!(same_choice, served.len(), "the preferred option differs");
    ((mean, worst), local)
}

/// llama.cpp in process (the library the server runs) scores the options of candle's Choice run
/// on the very tokens candle scored (scripts/llama-choice-logprobs.py; with `bos`, a BOS in front
/// as the server is sent): option log-likelihoods by case id. `kv` is llama.cpp's KV cache
/// type, f32 or f16.
fn in_process_scores(
    model: &Path,
    candle_run: &Path,
    kv: &str,
    bos: bool,
) -> BTreeMap<String, Vec<f64>> {
    let mut command = Command::new(llama::python());
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/llama-choice-logprobs.py"
        ))
        .arg(model)
        .arg(candle_run)
        .args(["--kv", kv]);
    if bos {
        command.arg("--bos");
    }
    let output = succeed(&mut command);
    serde_json::from_slice(&output.stdout).expect("the script's JSON")
}

/// llama.cpp in process against candle on the tokens candle scored (no BOS): (mean, largest)
/// |llama.cpp − candle|.
fn arithmetic_agreement(model: &Path, candle_run: &Path, kv: &str) -> (f64, f64) {
    let llama = in_process_scores(model, candle_run, kv, false);
    let (differences, same_choice) = compare_scores(&llama, &option_scores(candle_run));
    let (mean, worst) = mean_and_worst(&differences);
    println!(
        "llama.cpp in process (KV {kv}) vs candle, same tokens: mean |difference| {mean:.6} nats, largest {worst:.6}; same preferred option in {same_choice} of {}",
        llama.len()
    );
    (mean, worst)
}

/// The issue's cross-check, on the unquantized file: llama.cpp's server and the candle backend
/// on SmolLM2 in float32 (weights dequantized from the Q4_1 file by scripts/install-llama-server.sh,
/// KV cache in float32 on the server: `--type_k 0 --type_v 0`) give identical greedy answers on
/// at least 90% of prompts (measured: 44 of 44, and 132 of 132 at 48 tokens). Option
/// log-likelihoods differ by what the server must be sent (a BOS in front, see
/// docs/backends/openai.md), and on the same tokens by float32 summation order alone.
#[test]
fn the_server_agrees_with_candle_on_an_f32_gguf() {
    let _serial = llama::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let model = llama::f32_model();
    let server = LlamaServer::start_with(dir.path(), &model, &["--type_k", "0", "--type_v", "0"]);
    let (same, _, n) = greedy_agreement(&server, dir.path(), &model);
    assert!(
        same * 10 >= n * 9,
        "identical greedy answers on only {same} of {n}"
    );
    let ((mean, worst), candle_choice) = choice_agreement(&server, dir.path(), &model);
    assert!(worst <= 1.0, "largest difference {worst} nats");
    assert!(mean <= 0.5, "mean difference {mean} nats");
    let (_, worst) = arithmetic_agreement(&model, &candle_choice, "f32");
    assert!(
        worst <= 1e-3,
        "same tokens, float32: largest difference {worst} nats"
    );
}

/// The same cross-check on the quantized file users serve: llama.cpp multiplies Q4_1 weights by
/// activations quantized to 8 bits, candle dequantizes the weights to float32, and near-ties
/// flip. Greedy answers start alike but part early.
///
/// Option scores through the server differ from candle's by two things: the BOS the server must
/// be sent (a property of the model, the same on every CPU) and llama.cpp's quantized arithmetic,
/// whose SIMD kernels round differently per instruction set: on the same machine and the same 6
/// items, server − candle averaged 0.453 nats with an AVX-512 build of llama.cpp and 0.521 with
/// an AVX2 build (the figure reported from an AVX2-only EPYC, over the former bound of 0.5). So
/// no fixed bound on server − candle holds on every CPU, and the test checks each part against
/// what it is compared with instead (numbers: docs/backends/openai.md, both builds):
/// - the server against llama.cpp in process with a BOS, on the same tokens: the same library
///   on the same CPU, so the quantized kernels cancel and only the server's batching and
///   KV-cache reuse remain (largest 10⁻⁶ nats on both builds; bound 10⁻³, the float32 test's);
/// - llama.cpp in process without BOS against candle on the same tokens: the quantization
///   effect itself, ≤ 0.6 nats (largest 0.392 with the AVX-512 build, 0.162 with AVX2);
/// - both prefer the same option everywhere.
///
/// Run with `-- --nocapture` to print the numbers.
#[test]
fn the_server_agrees_with_candle_on_the_q4_1_gguf() {
    let _serial = llama::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures::model(llama::MODEL_FILE);
    let server = LlamaServer::start(dir.path());
    let (same, same_start, n) = greedy_agreement(&server, dir.path(), &model);
    assert!(
        same_start * 10 >= n * 9,
        "same first word on only {same_start} of {n}"
    );
    assert!(
        same * 10 >= n * 3,
        "identical answers on only {same} of {n}"
    );
    let (_, candle_choice) = choice_agreement(&server, dir.path(), &model);
    let served = option_scores(&dir.path().join("served-choice"));
    let with_bos = in_process_scores(&model, &candle_choice, "f16", true);
    let (differences, same_choice) = compare_scores(&served, &with_bos);
    let (mean, worst) = mean_and_worst(&differences);
    println!(
        "server vs llama.cpp in process with BOS (KV f16), same build: mean {mean:.6}, largest {worst:.6} nats"
    );
    assert_eq!(same_choice, served.len());
    assert!(
        worst <= 1e-3,
        "the server's log-probs are not llama.cpp's own: largest difference {worst} nats"
    );
    let (_, worst) = arithmetic_agreement(&model, &candle_choice, "f16");
    assert!(
        worst <= 0.6,
        "same tokens, Q4_1: largest difference {worst} nats"
    );
}

/// Without the prefix, llama-cpp-python's prompt log-probs on SmolLM2 (which adds no BOS) are
/// shifted by one token: the backend's probe says so and every Choice is refused with the reason.
#[test]
fn shifted_prompt_logprobs_are_refused() {
    let _serial = llama::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(dir.path());
    let out = dir.path().join("run");
    succeed(
        Command::new(env!("CARGO_BIN_EXE_probity"))
            .args(["run", "--suite", "bias-core", "--backend", "openai"])
            .args(["--base-url", &server.base_url(), "--model-name", "smollm2"])
            .arg("--datasets")
            .arg(fixtures::datasets())
            .args(["--quiet", "--limit", "3", "--out"])
            .arg(&out)
            .arg("--cache")
            .arg(dir.path().join("cache")),
    );
    let attempts = attempts(&out);
    assert_eq!(attempts.len(), 9);
    for attempt in &attempts {
        let reason = attempt["error"].as_str().unwrap_or_default();
        assert!(
            reason.contains("shifted by one token") && reason.contains("--logprob-prefix"),
            "{attempt}"
        );
        assert!(attempt.get("logprobs").is_none(), "{attempt}");
    }
}
