//! Benchmark of the BCa bootstrap of a mean over binary attempts: the structured fast path
//! (one binomial draw per resample), the generic path at full size (resampling every
//! observation; BCa acceleration from a 1,000-group jackknife) and the generic path with the
//! exact leave-one-out jackknife at a size scipy can also run.
//!
//! `cargo run --release -p audit-core --example bench_bootstrap -- [--n 1000000]
//! [--resamples 10000] [--small-n 20000] [--data FILE] [--seed 0]`. `--data` reads one `0`/`1`
//! character per observation (what `scripts/bench-bootstrap.py` writes); otherwise the data are
//! drawn with ChaCha8 at rate 0.3. The last line of output is a JSON summary.

use std::time::Instant;

use audit_core::stats::{self, BootstrapConfig, BootstrapResult};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Options {
    n: usize,
    resamples: usize,
    small_n: usize,
    data: Option<String>,
    seed: u64,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        n: 1_000_000,
        resamples: 10_000,
        small_n: 20_000,
        data: None,
        seed: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{} needs a value", args[i]))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{}: {e}", args[i]))
        };
        match args[i].as_str() {
            "--n" => options.n = number()? as usize,
            "--resamples" => options.resamples = number()? as usize,
            "--small-n" => options.small_n = number()? as usize,
            "--seed" => options.seed = number()?,
            "--data" => options.data = Some(value.clone()),
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
    }
    Ok(options)
}

fn mean(values: &[u8]) -> f64 {
    values.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / values.len() as f64
}

fn report(name: &str, seconds: f64, result: &BootstrapResult) -> String {
    println!(
        "{name:<34} {seconds:>9.3} s   estimate {:.6}   percentile [{:.6}, {:.6}]   BCa [{:.6}, {:.6}]",
        result.estimate,
        result.percentile.low,
        result.percentile.high,
        result.bca.low,
        result.bca.high
    );
    format!(
        "\"{name}\": {{\"seconds\": {seconds}, \"result\": {}}}",
        serde_json::to_string(result).unwrap_or_default()
    )
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    let data: Vec<u8> = match &options.data {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => bytes
                .into_iter()
                .filter(|b| *b == b'0' || *b == b'1')
                .map(|b| b - b'0')
                .collect(),
            Err(e) => {
                eprintln!("error: reading {path}: {e}");
                std::process::exit(2);
            }
        },
        None => {
            let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
            (0..options.n)
                .map(|_| u8::from(rng.gen::<f64>() < 0.3))
                .collect()
        }
    };
    let n = data.len();
    let small_n = options.small_n.min(n);
    let ones = data.iter().filter(|&&v| v == 1).count() as u64;
    let config = BootstrapConfig {
        resamples: options.resamples,
        confidence: 0.95,
        seed: options.seed,
    };
    println!(
        "BCa bootstrap of a mean: n = {n} binary attempts ({ones} ones), {} resamples, {} threads",
        options.resamples,
        rayon::current_num_threads()
    );
    let mut entries = Vec::new();

    let start = Instant::now();
    let fast = stats::bootstrap_binary_mean(ones, n as u64, &config);
    entries.push(report("fast_binary", start.elapsed().as_secs_f64(), &fast));

    let start = Instant::now();
    let generic = stats::bootstrap_grouped_jackknife(&data, mean, 1000, &config);
    entries.push(report(
        "generic_grouped_jackknife",
        start.elapsed().as_secs_f64(),
        &generic,
    ));

    let small = &data[..small_n];
    let small_ones = small.iter().filter(|&&v| v == 1).count() as u64;
    let start = Instant::now();
    let generic_small = stats::bootstrap(small, mean, &config);
    entries.push(report(
        "generic_small",
        start.elapsed().as_secs_f64(),
        &generic_small,
    ));
    let start = Instant::now();
    let fast_small = stats::bootstrap_binary_mean(small_ones, small_n as u64, &config);
    entries.push(report(
        "fast_binary_small",
        start.elapsed().as_secs_f64(),
        &fast_small,
    ));
    println!(
        "{{\"n\": {n}, \"small_n\": {small_n}, \"resamples\": {}, \"threads\": {}, {}}}",
        options.resamples,
        rayon::current_num_threads(),
        entries.join(", ")
    );
}
