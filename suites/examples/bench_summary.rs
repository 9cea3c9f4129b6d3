//! The Rust side of scripts/bench-summary.py: reads a suite file and an attempts journal, and
//! prints the summary (as JSON) that `probity run` would compute from them.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, suite, journal] = args.as_slice() else {
        return Err("usage: bench_summary SUITE.toml ATTEMPTS.jsonl".into());
    };
    let suite = suites::load(suite, &probes::Context::new(Path::new(".")))?;
    let attempts = audit_core::journal::read(Path::new(journal))?;
    let summary = audit_core::summary::summarise(&[suite], &attempts, 0, 0.95);
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
