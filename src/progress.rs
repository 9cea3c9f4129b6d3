//! Progress of a run on stderr, phase by phase (loading, each query kind the run answers with
//! its judges, statistics and reports): on a terminal an indicatif bar per phase with items
//! done, items per second and time left; otherwise (CI logs), once the run has lasted
//! `PROBITY_PROGRESS_SECONDS` (default 30), one line when a phase ends and one every such
//! interval while it runs, with the same figures. `--quiet` silences both.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds between two progress lines when stderr is no terminal.
const DEFAULT_INTERVAL: u64 = 30;

enum Mode {
    Hidden,
    Bars,
    Lines { every: Duration, last: Instant },
}

pub struct Progress {
    mode: Mode,
    /// The counted phases still to come (name, items), in run order.
    queue: Vec<(String, u64)>,
    /// The current phase: name, items (None for an uncounted one), done, start.
    name: String,
    total: Option<u64>,
    done: u64,
    /// Tokens generated in the current phase, where the backend counts them.
    tokens: Option<u64>,
    started: Instant,
    run_started: Instant,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Hidden
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            let every = std::env::var("PROBITY_PROGRESS_SECONDS")
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(DEFAULT_INTERVAL);
            Mode::Lines {
                every: Duration::from_secs(every),
                last: Instant::now(),
            }
        };
        Progress {
            mode,
            queue: Vec::new(),
            name: String::new(),
            total: None,
            done: 0,
            tokens: None,
            started: Instant::now(),
            run_started: Instant::now(),
            bar: None,
        }
    }

    /// Starts an uncounted phase (loading a model, statistics); ends the current one.
    pub fn phase(&mut self, name: &str) {
        self.start(name.to_string(), None);
    }

    /// The counted phases that `advance` moves through, in order; empty ones are skipped.
    pub fn counted(&mut self, phases: Vec<(String, u64)>) {
        self.queue = phases.into_iter().filter(|(_, n)| *n > 0).rev().collect();
        if let Some((name, total)) = self.queue.pop() {
            self.start(name, Some(total));
        }
    }

    /// `n` more items of the counted phases done.
    pub fn advance(&mut self, mut n: u64) {
        while n > 0 {
            let Some(total) = self.total else { return };
            let step = n.min(total - self.done);
            self.done += step;
            n -= step;
            if let Some(bar) = &self.bar {
                bar.inc(step);
                bar.set_message(self.rates());
            }
            if self.done == total {
                match self.queue.pop() {
                    Some((name, total)) => self.start(name, Some(total)),
                    None => self.end(),
                }
            } else if step == 0 {
                return;
            }
        }
        // A line for a phase under way (not one that just ended or has just begun).
        let under_way = self.total.is_some() && self.done > 0;
        if let Mode::Lines { every, last } = &mut self.mode {
            if under_way && last.elapsed() >= *every {
                *last = Instant::now();
                let line = self.figures();
                eprintln!("{line}");
            }
        }
    }

    /// A batch of `n` items done, with the tokens generated for it where the backend counts
    /// them (shown as tokens per second beside items per second).
    pub fn advance_batch(&mut self, n: u64, tokens: Option<u64>) {
        if let (Some(t), Some(_)) = (tokens, self.total) {
            self.tokens = Some(self.tokens.unwrap_or(0) + t);
        }
        self.advance(n);
    }

    /// Ends the last phase.
    pub fn finish(&mut self) {
        self.end();
    }

    fn start(&mut self, name: String, total: Option<u64>) {
        self.end();
        self.name = name;
        self.total = total;
        self.done = 0;
        self.tokens = None;
        self.started = Instant::now();
        match &mut self.mode {
            Mode::Hidden => {}
            Mode::Bars => {
                let bar = match total {
                    Some(n) => {
                        let bar = indicatif::ProgressBar::new(n);
                        if let Ok(style) = indicatif::ProgressStyle::with_template(
                            "{prefix:>16} [{bar:30}] {pos}/{len} items, {msg} ({eta} left, {elapsed} elapsed)",
                        ) {
                            bar.set_style(style.progress_chars("=> "));
                        }
                        bar
                    }
                    None => {
                        let bar = indicatif::ProgressBar::new_spinner();
                        bar.enable_steady_tick(Duration::from_millis(200));
                        bar
                    }
                };
                bar.set_prefix(self.name.clone());
                if total.is_none() {
                    bar.set_message(self.name.clone());
                }
                self.bar = Some(bar);
            }
            // No line when a phase starts: a run that then fails prints its one error line
            // alone (the phase's own line comes when it ends, or after the interval).
            Mode::Lines { last, .. } => *last = Instant::now(),
        }
    }

    fn end(&mut self) {
        if self.name.is_empty() {
            return;
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        // In a log, a run shorter than the interval prints nothing (and a run that fails early
        // prints its one error line alone).
        let log =
            matches!(self.mode, Mode::Lines { every, .. } if self.run_started.elapsed() >= every);
        if log {
            let elapsed = self.started.elapsed();
            match self.total {
                Some(n) => eprintln!(
                    "{}: {}/{n} done in {}",
                    self.name,
                    self.done,
                    human(elapsed)
                ),
                None => eprintln!("{}: done in {}", self.name, human(elapsed)),
            }
        }
        self.name.clear();
        self.total = None;
    }

    /// "3.2 items/s, 41.0 tokens/s" (tokens where counted).
    fn rates(&self) -> String {
        rates(self.done, self.tokens, self.started.elapsed())
    }

    /// "chat: 120/660 items, 3.2 items/s, 41.0 tokens/s, 2m 48s left, 37s elapsed".
    fn figures(&self) -> String {
        figures(
            &self.name,
            self.done,
            self.total,
            self.tokens,
            self.started.elapsed(),
        )
    }
}

/// Items (and tokens, where counted) per second over `elapsed`.
fn rates(done: u64, tokens: Option<u64>, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let items = format!("{:.1} items/s", done as f64 / seconds);
    match tokens {
        Some(t) => format!("{items}, {:.1} tokens/s", t as f64 / seconds),
        None => items,
    }
}

/// The progress line of a phase: items done of `total`, rates, time left (at the phase's
/// rate so far) and time elapsed; an uncounted phase (`total` None) says its time only.
fn figures(
    name: &str,
    done: u64,
    total: Option<u64>,
    tokens: Option<u64>,
    elapsed: Duration,
) -> String {
    let Some(total) = total else {
        return format!("{name}: {} elapsed", human(elapsed));
    };
    let left = if done == 0 {
        "time left unknown".to_string()
    } else {
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        let seconds = total.saturating_sub(done) as f64 / rate;
        format!("{} left", human(Duration::from_secs_f64(seconds)))
    };
    format!(
        "{name}: {done}/{total} items, {}, {left}, {} elapsed",
        rates(done, tokens, elapsed),
        human(elapsed)
    )
}

/// "1h 2m", "3m 4s", "5s".
fn human(duration: Duration) -> String {
    let s = duration.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(184)), "3m 4s");
        assert_eq!(human(Duration::from_secs(3720)), "1h 2m");
    }

    #[test]
    fn the_log_line_gives_rates_and_time_left() {
        let elapsed = Duration::from_secs(40);
        assert_eq!(
            figures("chat", 100, Some(400), Some(2000), elapsed),
            "chat: 100/400 items, 2.5 items/s, 50.0 tokens/s, 2m 0s left, 40s elapsed"
        );
        assert_eq!(
            figures("choice", 100, Some(400), None, elapsed),
            "choice: 100/400 items, 2.5 items/s, 2m 0s left, 40s elapsed"
        );
        assert_eq!(
            figures("chat", 0, Some(400), None, elapsed),
            "chat: 0/400 items, 0.0 items/s, time left unknown, 40s elapsed"
        );
        assert_eq!(
            figures("loading", 0, None, None, elapsed),
            "loading: 40s elapsed"
        );
    }

    #[test]
    fn counted_phases_advance_in_order_and_skip_empty_ones() {
        let mut p = Progress::new(true);
        p.counted(vec![
            ("chat".into(), 3),
            ("choice".into(), 0),
            ("embed".into(), 2),
        ]);
        assert_eq!((p.name.as_str(), p.total), ("chat", Some(3)));
        p.advance(2);
        assert_eq!(p.done, 2);
        // A batch that crosses a phase boundary finishes one and counts into the next.
        p.advance(2);
        assert_eq!((p.name.as_str(), p.done), ("embed", 1));
        p.advance(1);
        assert!(p.name.is_empty());
        p.advance(5);
        assert!(p.name.is_empty());
    }
}
