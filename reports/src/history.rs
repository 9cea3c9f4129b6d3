//! `probity history`: many runs of the same suites over time, read from their run directories
//! (through `read_run` only) into history.json and one self-contained history.html: each
//! headline estimate per run with its interval (chart and table), the gate verdicts summary.json
//! records, the paired comparison of each run with the one before it (`compare::compare`), and a
//! link to each run's report.html. Runs of another suite version (suite sha256) or another model
//! (model name and files' sha256) form their own series; nothing is compared across series.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use audit_core::rundir::{self, RunStatus};
use audit_core::summary::Gate;
use minijinja::value::Serde;
use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};

use crate::compare::{compare, Comparison};
use crate::{number, write, ReportError, RunFiles};

/// File names written into the history directory.
pub const HISTORY_JSON: &str = "history.json";
pub const HISTORY_HTML: &str = "history.html";

const TEMPLATE: &str = include_str!("../templates/history.html");

/// One headline estimate (a metric over all cases, no group) of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub suite: String,
    pub probe: String,
    pub metric: String,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub ci_method: String,
    pub n: u64,
}

/// One run of the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRun {
    /// The run directory, relative to the history directory.
    pub dir: String,
    /// Its report.html, relative to the history directory (a link).
    pub report: String,
    pub started_at: String,
    /// Index into `series`.
    pub series: usize,
    pub n_attempts: u64,
    pub n_errors: u64,
    /// Whether summary.json holds gate verdicts (`probity gate` or `run --policy` was applied).
    pub gates_recorded: bool,
    pub gates: Vec<Gate>,
    pub headline: Vec<Headline>,
}

/// Runs of one model on one version of the suites.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub label: String,
    pub model: String,
    pub backend: String,
    /// (path, sha256) of every model file.
    pub model_files: Vec<(String, String)>,
    /// (suite id@version, sha256) of every suite.
    pub suites: Vec<(String, String)>,
    /// Indices into `runs`, in time order.
    pub runs: Vec<usize>,
}

/// The paired comparison of a run with the one before it in its series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub series: usize,
    pub base: usize,
    pub new: usize,
    pub comparison: Comparison,
}

/// history.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub runs: Vec<HistoryRun>,
    pub series: Vec<Series>,
    pub steps: Vec<Step>,
    /// Run directories left out, and why (one line each).
    pub skipped: Vec<String>,
}

/// The run directories among `args`: a directory with a manifest is a run; any other directory
/// is scanned one level down for runs (sorted by name).
pub fn find_runs(args: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for arg in args {
        if arg.join(rundir::MANIFEST).is_file() {
            runs.push(arg.clone());
            continue;
        }
        let entries = match std::fs::read_dir(arg) {
            Ok(entries) => entries,
            Err(e) => {
                skipped.push(format!("{}: {e}", arg.display()));
                continue;
            }
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(rundir::MANIFEST).is_file())
            .collect();
        if found.is_empty() {
            skipped.push(format!(
                "{}: no run directory (no {} in it or one level down)",
                arg.display(),
                rundir::MANIFEST
            ));
        }
        found.sort();
        runs.append(&mut found);
    }
    (runs, skipped)
}

/// `p` made absolute with symbolic links resolved as far as it exists.
fn absolute(p: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(p) {
        return real;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => absolute(parent).join(name),
        _ => std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf()),
    }
}

/// `path` relative to the directory `from` (both made absolute), with `/` separators.
fn relative(path: &Path, from: &Path) -> String {
    let (path, from) = (absolute(path), absolute(from));
    let a: Vec<Component> = path.components().collect();
    let b: Vec<Component> = from.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(
        a[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// What makes a series: the model's name, its files' sha256 (sorted; not their paths) and
/// every suite's id@version with its sha256.
type SeriesKey = (String, Vec<String>, Vec<(String, String)>);

fn series_key(files: &RunFiles) -> SeriesKey {
    let mut shas: Vec<String> = files
        .manifest
        .model
        .files
        .iter()
        .map(|f| f.sha256.clone())
        .collect();
    shas.sort();
    let suites = files
        .manifest
        .suites
        .iter()
        .map(|s| (format!("{}@{}", s.id, s.version), s.sha256.clone()))
        .collect();
    (files.manifest.model.model.clone(), shas, suites)
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Reads the runs (skipping, with a line in `skipped`, any unreadable or unfinished one), orders
/// them by started_at then path, groups them into series and compares each run with the one
/// before it in its series. Paths in the result are relative to `out`.
pub fn history(dirs: &[PathBuf], out: &Path) -> History {
    let (found, mut skipped) = find_runs(dirs);
    let mut read: Vec<(PathBuf, RunFiles)> = Vec::new();
    for dir in found {
        match crate::read_run(&dir) {
            Ok(files) if files.manifest.status == RunStatus::Complete => read.push((dir, files)),
            Ok(files) => skipped.push(format!(
                "{}: the run is {}, not complete",
                dir.display(),
                files.manifest.status.name()
            )),
            Err(e) => skipped.push(format!("{}: {e}", dir.display())),
        }
    }
    read.sort_by(|(a, fa), (b, fb)| {
        (&fa.manifest.started_at, a).cmp(&(&fb.manifest.started_at, b))
    });
    let mut keys: Vec<SeriesKey> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    let mut runs = Vec::new();
    let mut steps = Vec::new();
    let mut last_of: BTreeMap<usize, usize> = BTreeMap::new();
    for (index, (dir, files)) in read.iter().enumerate() {
        let key = series_key(files);
        let s = match keys.iter().position(|k| *k == key) {
            Some(s) => s,
            None => {
                let (model, shas, suites) = key.clone();
                let label = format!(
                    "{} ({}) on {}",
                    model,
                    shas.iter()
                        .map(|sha| short(sha))
                        .collect::<Vec<_>>()
                        .join(", "),
                    suites
                        .iter()
                        .map(|(id, sha)| format!("{id} ({})", short(sha)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let model_files = files
                    .manifest
                    .model
                    .files
                    .iter()
                    .map(|f| (f.path.clone(), f.sha256.clone()))
                    .collect();
                keys.push(key);
                series.push(Series {
                    label: format!("series {}: {label}", series.len() + 1),
                    model,
                    backend: files.manifest.model.backend.clone(),
                    model_files,
                    suites,
                    runs: Vec::new(),
                });
                series.len() - 1
            }
        };
        series[s].runs.push(index);
        let name = relative(dir, out);
        if let Some(&base) = last_of.get(&s) {
            let (base_dir, base_files) = &read[base];
            steps.push(Step {
                series: s,
                base,
                new: index,
                comparison: compare(&relative(base_dir, out), base_files, &name, files),
            });
        }
        last_of.insert(s, index);
        let summary = &files.summary;
        runs.push(HistoryRun {
            report: format!("{name}/report.html"),
            dir: name,
            started_at: files.manifest.started_at.clone(),
            series: s,
            n_attempts: summary.n_attempts,
            n_errors: summary.n_errors,
            gates_recorded: !summary.gates.is_empty(),
            gates: summary.gates.clone(),
            headline: summary
                .estimates
                .iter()
                .filter(|e| e.group.is_empty())
                .map(|e| Headline {
                    suite: e.suite.clone(),
                    probe: e.probe.clone(),
                    metric: e.metric.clone(),
                    value: e.value,
                    ci_low: e.ci_low,
                    ci_high: e.ci_high,
                    ci_method: e.ci_method.clone(),
                    n: e.n,
                })
                .collect(),
        });
    }
    History {
        runs,
        series,
        steps,
        skipped,
    }
}

#[derive(Serialize)]
struct Cell {
    run: usize,
    started_at: String,
    report: String,
    value: String,
    interval: String,
    n: u64,
}

#[derive(Serialize)]
struct Chart {
    estimate: String,
    /// SVG from `chart::bars` (its labels escaped by the SVG backend), inserted unescaped.
    svg: String,
    cells: Vec<Cell>,
}

#[derive(Serialize)]
struct SeriesView {
    label: String,
    charts: Vec<Chart>,
}

#[derive(Serialize)]
struct StepRow {
    series: usize,
    base: usize,
    new: usize,
    n_shared: u64,
    n_tests: usize,
    n_significant: usize,
    changes: Vec<String>,
}

/// history.html: self-contained, autoescaped; the charts are SVG drawn by `chart::bars`.
pub fn render_history_html(history: &History) -> Result<String, ReportError> {
    let render_error = |message: String| ReportError::Render {
        what: HISTORY_HTML.to_string(),
        message,
    };
    let mut views = Vec::new();
    for s in &history.series {
        // Estimates in the order they first appear, each with its value in every run.
        let mut order: Vec<(String, String, String)> = Vec::new();
        for &r in &s.runs {
            for h in &history.runs[r].headline {
                let key = (h.suite.clone(), h.probe.clone(), h.metric.clone());
                if !order.contains(&key) {
                    order.push(key);
                }
            }
        }
        let mut charts = Vec::new();
        for (suite, probe, metric) in order {
            let mut bars = Vec::new();
            let mut cells = Vec::new();
            for &r in &s.runs {
                let run = &history.runs[r];
                let found = run
                    .headline
                    .iter()
                    .find(|h| h.suite == suite && h.probe == probe && h.metric == metric);
                let Some(h) = found else { continue };
                bars.push(crate::chart::Bar {
                    label: format!("run {} · {}", r + 1, run.started_at),
                    value: h.value,
                    low: h.ci_low,
                    high: h.ci_high,
                });
                cells.push(Cell {
                    run: r + 1,
                    started_at: run.started_at.clone(),
                    report: run.report.clone(),
                    value: number(h.value, 3),
                    interval: format!("[{}, {}]", number(h.ci_low, 3), number(h.ci_high, 3)),
                    n: h.n,
                });
            }
            let svg = crate::chart::bars(&bars, &format!("{probe} {metric}, run by run"))
                .map_err(render_error)?;
            charts.push(Chart {
                estimate: format!("{suite} / {probe} / {metric}"),
                svg,
                cells,
            });
        }
        views.push(SeriesView {
            label: s.label.clone(),
            charts,
        });
    }
    let steps: Vec<StepRow> = history
        .steps
        .iter()
        .map(|step| {
            let significant: Vec<_> = step
                .comparison
                .tests
                .iter()
                .filter(|t| t.is_significant())
                .collect();
            StepRow {
                series: step.series + 1,
                base: step.base + 1,
                new: step.new + 1,
                n_shared: step.comparison.n_shared,
                n_tests: step.comparison.tests.len(),
                n_significant: significant.len(),
                changes: significant
                    .iter()
                    .map(|t| {
                        format!(
                            "{} {}: {} → {} ({})",
                            t.probe,
                            t.detector,
                            number(t.base_mean, 3),
                            number(t.new_mean, 3),
                            number(t.effect, 3)
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let mut env = Environment::new();
    env.add_template(HISTORY_HTML, TEMPLATE)
        .map_err(|e| render_error(e.to_string()))?;
    let template = env
        .get_template(HISTORY_HTML)
        .map_err(|e| render_error(e.to_string()))?;
    template
        .render(context! {
            history => Value::from(Serde(history)),
            series => Value::from(Serde(&views)),
            steps => Value::from(Serde(&steps)),
        })
        .map_err(|e| render_error(e.to_string()))
}

/// Writes history.json and history.html into `out` (created if needed).
pub fn write_history(history: &History, out: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(out).map_err(|e| ReportError::File {
        path: out.display().to_string(),
        message: e.to_string(),
    })?;
    let mut json = serde_json::to_string_pretty(history).map_err(|e| ReportError::Render {
        what: HISTORY_JSON.to_string(),
        message: e.to_string(),
    })?;
    json.push('\n');
    write(&out.join(HISTORY_JSON), &json)?;
    write(&out.join(HISTORY_HTML), &render_history_html(history)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_out_of_the_history_directory() {
        let root = std::env::temp_dir();
        assert_eq!(
            relative(&root.join("runs/a"), &root.join("history")),
            "../runs/a"
        );
        assert_eq!(relative(&root.join("h/a"), &root.join("h")), "a");
    }
}
