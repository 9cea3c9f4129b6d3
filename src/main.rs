//! The `probity` command line: list, run, report. Every error is one line on stderr naming what
//! is wrong, with exit code 2; a failed gate exits 1.

mod cli;
mod compare;
mod datasets;
mod gate;
mod history;
mod judges;
mod merge;
mod progress;
mod shard;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::main() {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line.
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
