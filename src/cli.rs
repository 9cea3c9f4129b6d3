//! Command definitions (clap) and what each command does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use audit_core::run::{self, RunConfig, Shard};
use audit_core::rundir::{Host, Manifest, RunDir, RunStatus, Tool};
use audit_core::session;
use audit_core::summary::{summarise_with_accuracy, Statistics, SCHEMA_VERSION};
use audit_core::{Backend, Generation, SharedBackend, Suite};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;

/// Appends one formatted line to a `String` that `emit` writes to stdout at once.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

use crate::{compare, datasets, gate, history, merge, progress, shard};

#[derive(Debug, Parser)]
#[command(
    name = "probity",
    version,
    about = "Safety and bias audits of language models, with corrected statistics and evidence-grade reports"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the built-in suites, probe families, detectors and metrics
    List,
    /// Run suites against a model and write a run directory
    Run(Box<RunArgs>),
    /// Regenerate the reports of a run directory from its files alone
    Report {
        /// The run directory
        dir: PathBuf,
        /// Also print the rate of this binary detector per group of --by (a polars group-by
        /// over the attempts; any attributes, not only those the suite's metrics use)
        #[arg(long)]
        rate: Option<String>,
        /// Attributes to group --rate by, comma-separated
        #[arg(long, value_delimiter = ',', requires = "rate")]
        by: Vec<String>,
    },
    /// Evaluate a policy file on a run: exit 0 when every gate passes, 1 when one fails
    Gate {
        /// The run directory
        dir: PathBuf,
        /// The policy file (TOML, see docs/policy.md)
        #[arg(long)]
        policy: PathBuf,
        /// Evaluate a run that is not whole (a merge of some shards only, an interrupted run)
        #[arg(long)]
        allow_partial: bool,
    },
    /// Paired regression tests between two runs on the case ids they share
    Compare {
        /// The base run directory
        base: PathBuf,
        /// The new run directory
        new: PathBuf,
        /// Where to write compare.html, compare.json and compare.md (default NEW/compare-<base name>)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Headline estimates, gate verdicts and run-to-run comparisons over many runs
    History {
        /// Run directories, or folders holding run directories (one level down)
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write history.html and history.json
        #[arg(long)]
        out: PathBuf,
    },
    /// List, fetch and verify the benchmark datasets the built-in suites read
    Datasets {
        #[command(subcommand)]
        command: datasets::Command,
    },
    /// Merge the shards of one run (from --shard K/N) into one run directory
    Merge {
        /// The shard run directories, or one folder that holds them
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// The run directory to write
        #[arg(long)]
        out: PathBuf,
        /// Where dataset paths of suites resolve (default: $PROBITY_DATASETS, else the cache `probity datasets fetch` fills)
        #[arg(long)]
        datasets: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Suites to run: built-in ids or suite-file paths, comma-separated
    #[arg(long, value_delimiter = ',', required = true)]
    suite: Vec<String>,
    /// The model: a GGUF file or a Hugging Face folder (runs on the candle backend), or a
    /// word-vector folder (one .npy of vectors and one .parquet of words, for WEAT)
    #[arg(long, conflicts_with = "backend")]
    model: Option<PathBuf>,
    /// Another backend: `openai` (a served model, see --base-url) or `scripted:PROFILE.toml`
    #[arg(long)]
    backend: Option<String>,
    /// A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) applied to --model
    #[arg(long, requires = "model")]
    adapter: Option<PathBuf>,
    #[command(flatten)]
    served: ServedArgs,
    /// The run directory to write
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Seed of every random choice (sampling, resampling)
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device for the candle backend: cpu, cuda:N or metal
    #[arg(long, default_value = "cpu")]
    device: String,
    /// f32, bf16 or f16 (default: the best for the device)
    #[arg(long)]
    dtype: Option<String>,
    /// How a GGUF model's weights are held: quantized (its blocks stay in memory, about the
    /// file's size), or f32, bf16, f16 (dequantized at load). Default: dequantized when the dense
    /// weights take at most 2 GiB, else quantized; the manifest records the mode
    #[arg(long)]
    weights: Option<String>,
    /// Cases per batch, or `auto`
    #[arg(long, default_value = "auto")]
    batch_size: String,
    /// At most N cases per probe (the first in probe order)
    #[arg(long)]
    limit: Option<usize>,
    /// Run shard K of N (1-based), e.g. 2/4, or `auto`: from a Slurm job array, a Kubernetes
    /// Indexed Job or PROBITY_SHARD_INDEX/COUNT (docs/scale-out.md)
    #[arg(long)]
    shard: Option<String>,
    /// Continue an interrupted run in --out from its journal
    #[arg(long)]
    resume: bool,
    /// Longest generated answer, in tokens
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=MAX_NEW_TOKENS))]
    max_new_tokens: u32,
    /// Sampling temperature (0 = greedy)
    #[arg(long, default_value_t = 0.0, value_parser = temperature)]
    temperature: f64,
    /// Nucleus sampling threshold
    #[arg(long, default_value_t = 1.0, value_parser = probability)]
    top_p: f64,
    /// Top-k sampling
    #[arg(long)]
    top_k: Option<usize>,
    /// The date chat templates print where they ask for today's (`strftime_now`, e.g. the
    /// Llama 3 family's "Today Date:" line), as YYYY-MM-DD: an input of the run, recorded in the
    /// manifest, so that prompts do not change with the day. The default is the date those
    /// templates print when no clock is given
    #[arg(long, default_value_t = runners::candle::TemplateDate::DEFAULT, value_parser = template_date)]
    date: runners::candle::TemplateDate,
    /// Confidence level of every interval
    #[arg(long, default_value_t = 0.95, value_parser = finite)]
    confidence: f64,
    /// The smallest difference of rates worth detecting: comparisons that cannot detect it
    /// (α = 0.05, 80% power) are listed as underpowered in summary.json's warnings
    #[arg(long, default_value_t = audit_core::summary::STATED_EFFECT, value_parser = probability)]
    min_effect: f64,
    /// The model a judge detector asks, as JUDGE=MODEL (repeatable): a classifier folder for
    /// `toxicity`, a GGUF file or HF folder for `harm-judge`, or scripted:PROFILE.toml
    /// `openai:NAME@URL` names a served model (any OpenAI-compatible endpoint; docs/judges.md)
    #[arg(long = "judge", value_name = "JUDGE=MODEL")]
    judges: Vec<String>,
    /// A served judge's setting, as JUDGE.KEY=VALUE (repeatable): api-key-env, concurrency,
    /// cache (a folder, or off), timeout, max-retries, requests-per-minute, tokens-per-minute,
    /// logprob-prefix, logprob-alignment, extra-body, generate (N tokens generated and parsed
    /// instead of scored, for servers without prompt log-probs)
    #[arg(long = "judge-option", value_name = "JUDGE.KEY=VALUE")]
    judge_options: Vec<String>,
    /// The attacker model of adaptive attacks (PAIR, TAP, Crescendo): a GGUF file or HF folder,
    /// scripted:PROFILE.toml, openai:NAME@URL (its settings as --judge-option attacker.KEY=VALUE),
    /// or `target` for the model under audit. A model that plays two roles is loaded once
    #[arg(long, value_name = "MODEL")]
    attacker: Option<String>,
    /// Your own labelled answers to measure every judge on as well (CSV with columns prompt,
    /// response, label; label 1 when the judge should flag the response, 0 when not)
    #[arg(long)]
    judge_labels: Option<PathBuf>,
    /// Where dataset paths of suites resolve (default: $PROBITY_DATASETS, else the cache `probity datasets fetch` fills)
    #[arg(long)]
    datasets: Option<PathBuf>,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
    /// Evaluate this policy file at the end of the run (exit 1 when a gate fails)
    #[arg(long)]
    policy: Option<PathBuf>,
}

/// The longest answer `--max-new-tokens` accepts: far beyond any context window, and small
/// enough that no token budget overflows.
const MAX_NEW_TOKENS: i64 = 1 << 20;
/// The most requests `--concurrency` keeps in flight (one thread each).
const MAX_CONCURRENCY: i64 = 1024;
/// The longest `--timeout`, in seconds (a day).
const MAX_TIMEOUT: f64 = 86_400.0;

fn template_date(text: &str) -> Result<runners::candle::TemplateDate, String> {
    text.parse()
}

/// A finite number (JSON, and so the manifest, has no NaN or infinity).
fn finite(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| "expected a number".to_string())?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err("expected a finite number".to_string())
    }
}

/// A finite number in [0, 1].
fn probability(text: &str) -> Result<f64, String> {
    finite(text).and_then(|v| {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err("expected a number in [0, 1]".to_string())
        }
    })
}

/// A finite sampling temperature, 0 or more.
fn temperature(text: &str) -> Result<f64, String> {
    finite(text).and_then(|v| {
        if v >= 0.0 {
            Ok(v)
        } else {
            Err("expected a number of 0 or more (0 = greedy)".to_string())
        }
    })
}

/// Seconds: finite, more than 0, at most a day.
fn timeout(text: &str) -> Result<f64, String> {
    finite(text).and_then(|v| {
        if v > 0.0 && v <= MAX_TIMEOUT {
            Ok(v)
        } else {
            Err(format!("expected seconds in (0, {MAX_TIMEOUT}]"))
        }
    })
}

/// The datasets folder: the flag, else `$PROBITY_DATASETS`, else the cache that `probity
/// datasets fetch` fills.
fn datasets_dir(flag: Option<&Path>) -> PathBuf {
    datasets::dir(flag)
}

/// What the suites' builders take from this process: the datasets folder (`datasets_dir`), and
/// the VADER lexicon folder (`$PROBITY_VADER`, else beside the datasets). The only place the
/// environment reaches them.
pub(crate) fn build_context(datasets: Option<&Path>) -> probes::Context {
    let context = probes::Context::new(&datasets_dir(datasets));
    match std::env::var_os("PROBITY_VADER") {
        Some(folder) => context.with_vader(Path::new(&folder)),
        None => context,
    }
}

/// Options of `--backend openai`.
#[derive(Debug, clap::Args)]
struct ServedArgs {
    /// The server's OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1
    #[arg(long)]
    base_url: Option<String>,
    /// The served model's name
    #[arg(long)]
    model_name: Option<String>,
    /// The environment variable that holds the API key (never written to any output)
    #[arg(long)]
    api_key_env: Option<String>,
    /// Requests in flight at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=MAX_CONCURRENCY))]
    concurrency: u32,
    /// Request-per-minute limit
    #[arg(long)]
    requests_per_minute: Option<u32>,
    /// Token-per-minute limit (estimated from text length)
    #[arg(long)]
    tokens_per_minute: Option<u32>,
    /// Seconds before a request times out (then it is retried)
    #[arg(long, default_value_t = 120.0, value_parser = timeout)]
    timeout: f64,
    /// Retries of a failed request (429, 5xx, timeouts, malformed replies), at most 100
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    max_retries: u32,
    /// The response cache (default: $PROBITY_CACHE/responses or ~/.cache/probity/responses)
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Send every request, even those answered before
    #[arg(long)]
    no_cache: bool,
    /// Text prepended to every scored prompt of a Choice query, e.g. the model's BOS token
    /// ("<|im_start|>" for SmolLM2 on llama-cpp-python; see docs/backends/openai.md)
    #[arg(long, default_value = "")]
    logprob_prefix: String,
    /// `check`: probe the server's prompt log-probs before the first Choice query and refuse
    /// misaligned ones; `trust`: use them unchecked
    #[arg(long, default_value = "check")]
    logprob_alignment: runners::openai::LogprobAlignment,
    /// A JSON object merged into every request body, e.g. '{"repeat_penalty": 1.0}' for
    /// llama-cpp-python, whose default repeat penalty changes greedy answers
    #[arg(long)]
    extra_body: Option<String>,
}

pub fn main() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                error.print().context("writing to the terminal")?;
                return Ok(ExitCode::SUCCESS);
            }
            let text = error.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            bail!(
                "{} (see probity --help)",
                first.trim_start_matches("error: ")
            );
        }
    };
    match cli.command {
        Command::List => list(),
        Command::Run(args) => run_command(&args),
        Command::Report { dir, rate, by } => {
            let _lock = RunDir::new(&dir).lock()?;
            reports::write_reports(&dir)?;
            if let Some(detector) = rate {
                print_rates(&dir, &detector, &by)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gate {
            dir,
            policy,
            allow_partial,
        } => {
            let policy = gate::load(&policy)?;
            let _lock = RunDir::new(&dir).lock()?;
            gate::apply(&dir, &policy, allow_partial)
        }
        Command::Compare { base, new, out } => compare::compare(&base, &new, out.as_deref()),
        Command::Datasets { command } => datasets::run(command),
        Command::History { dirs, out } => history::history(&dirs, &out),
        Command::Merge {
            shards,
            out,
            datasets,
        } => merge::merge(
            &shard::shard_dirs(&shards)?,
            &out,
            &build_context(datasets.as_deref()),
        ),
    }
}

/// Prints the rate of a detector per group of any attributes, as a tab-separated table.
fn print_rates(dir: &Path, detector: &str, by: &[String]) -> Result<()> {
    let files = reports::read_run(dir)?;
    let confidence = files.summary.confidence;
    let rates = reports::aggregate::rates_by(&files.attempts, detector, by, confidence)
        .with_context(|| format!("grouping the attempts of {}", dir.display()))?;
    if rates.is_empty() {
        bail!("{}: no attempt has a `{detector}` score", dir.display());
    }
    let mut out = String::new();
    say!(
        out,
        "{}\t{detector}_rate\tci_low\tci_high\tn",
        by.join("\t")
    );
    for e in rates {
        let group: Vec<&str> = by
            .iter()
            .map(|k| e.group.get(k).map_or("", String::as_str))
            .collect();
        say!(
            out,
            "{}\t{:.4}\t{:.4}\t{:.4}\t{}",
            group.join("\t"),
            e.value,
            e.ci_low,
            e.ci_high,
            e.n
        );
    }
    emit(&out)
}

fn list() -> Result<ExitCode> {
    let context = build_context(None);
    let mut out = String::new();
    say!(out, "suites:");
    for (id, text) in suites::BUILTIN {
        let suite = suites::parse(text, &format!("builtin:{id}"), &context)?;
        say!(
            out,
            "  {id}@{}  {}",
            suite.reference.version,
            suite.description
        );
        for plan in &suite.probes {
            say!(out, "    probe {}: {}", plan.probe.id(), plan.probe.goal());
        }
    }
    use probes::registry;
    say!(out, "probe families:");
    for family in registry::FAMILIES {
        say!(out, "  {}  {}", family.name, family.about);
    }
    say!(out, "transforms:");
    for transform in registry::TRANSFORMS {
        say!(out, "  {}  {}", transform.id, transform.about);
    }
    say!(out, "detectors:");
    for detector in registry::DETECTORS {
        say!(out, "  {}  {}", detector.id, detector.about);
    }
    say!(
        out,
        "  [[detector]] in a suite file: kind = {} (docs/custom-benchmarks.md)",
        probes::declared::detectors::KINDS.join(" | ")
    );
    say!(out, "metrics:");
    for metric in registry::METRICS {
        say!(out, "  {}  {}", metric.name, metric.about);
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn open_backend(args: &RunArgs) -> Result<Box<dyn Backend>> {
    let batch_size = match args.batch_size.as_str() {
        "auto" => None,
        n => Some(
            n.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| {
                    format!("--batch-size {n}: expected a positive number or `auto`")
                })?,
        ),
    };
    match (&args.model, &args.backend) {
        // Word vectors (WEAT): a folder with one .npy of vectors and one .parquet of words.
        (Some(model), None) if runners::word_vectors::WordVectorBackend::recognises(model) => Ok(
            Box::new(runners::word_vectors::WordVectorBackend::load(model)?),
        ),
        (Some(model), None) => {
            let options = runners::candle::CandleOptions {
                device: args.device.clone(),
                dtype: args.dtype.clone(),
                weights: args.weights.clone(),
                batch_size,
                adapter: args.adapter.clone(),
                date: args.date,
                ..Default::default()
            };
            Ok(Box::new(runners::candle::CandleBackend::load(model, &options)?))
        }
        (None, Some(spec)) if spec == "openai" => {
            let served = &args.served;
            let (Some(base_url), Some(model_name)) = (&served.base_url, &served.model_name) else {
                bail!("--backend openai needs --base-url URL and --model-name NAME");
            };
            if served.api_key_env.is_some() && base_url.starts_with("http://") {
                eprintln!(
                    "warning: --api-key-env sends the key over plain http:// to {}: anyone on the path can read it; use https://",
                    audit_core::redact::url_userinfo(base_url)
                );
            }
            let options = runners::openai::OpenAiOptions {
                base_url: base_url.clone(),
                model_name: model_name.clone(),
                api_key: served.api_key_env.as_deref().map(|variable| {
                    runners::openai::ApiKey::new(variable, std::env::var(variable).ok())
                }),
                concurrency: served.concurrency as usize,
                requests_per_minute: served.requests_per_minute,
                tokens_per_minute: served.tokens_per_minute,
                timeout: std::time::Duration::from_secs_f64(served.timeout),
                max_retries: served.max_retries,
                cache: (!served.no_cache)
                    .then(|| served.cache.clone().unwrap_or_else(default_cache_dir)),
                logprob_prefix: served.logprob_prefix.clone(),
                logprob_alignment: served.logprob_alignment,
                extra_body: match &served.extra_body {
                    None => serde_json::Map::new(),
                    Some(text) => match serde_json::from_str(text) {
                        Ok(serde_json::Value::Object(fields)) => fields,
                        _ => bail!("--extra-body {text}: expected a JSON object, e.g. '{{\"repeat_penalty\": 1.0}}'"),
                    },
                },
                ..runners::openai::OpenAiOptions::default()
            };
            Ok(Box::new(runners::openai::OpenAiBackend::new(options)?))
        }
        (None, Some(spec)) => match spec.split_once(':') {
            Some(("scripted", profile)) => {
                Ok(Box::new(runners::scripted::ScriptedBackend::load(Path::new(profile))?))
            }
            _ => bail!("--backend {spec}: expected openai or scripted:PROFILE.toml"),
        },
        _ => bail!("give the model to audit: --model PATH (GGUF file or HF folder), --backend openai or --backend scripted:PROFILE"),
    }
}

/// `$PROBITY_CACHE/responses`, else `~/.cache/probity/responses`.
fn default_cache_dir() -> PathBuf {
    std::env::var_os("PROBITY_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/probity")))
        .unwrap_or_else(|| PathBuf::from(".probity-cache"))
        .join("responses")
}

/// The audited model's record in the manifest, with every judge's model: its files (and their
/// hashes) join the model's, and `details` says which judge used which model (a served judge:
/// its endpoint, model name and settings, `judges::identity`).
fn with_judges(
    mut model: audit_core::ModelInfo,
    judges: &run::JudgeBackends,
    attacker: Option<&SharedBackend>,
) -> audit_core::ModelInfo {
    for (id, judge) in judges {
        let info = judge.model();
        model.details.extend(crate::judges::identity(id, &info));
        model.files.extend(info.files);
    }
    if let Some(attacker) = attacker {
        let info = attacker.model();
        model.details.extend(
            crate::judges::identity(ATTACKER, &info)
                .into_iter()
                .map(|(key, value)| (key.replacen("judge:", "", 1), value)),
        );
        model.files.extend(info.files);
    }
    model
        .files
        .sort_by(|a, b| (&a.path, &a.sha256).cmp(&(&b.path, &b.sha256)));
    model.files.dedup();
    model
}

/// The id under which `--judge-option` takes the attacker's settings, and the manifest
/// names its model.
const ATTACKER: &str = "attacker";

/// Models already loaded from files, so that a model playing two roles (target, attacker,
/// judge) is loaded once.
#[derive(Default)]
struct Loaded(Vec<(PathBuf, SharedBackend)>);

impl Loaded {
    fn get(&self, path: &Path) -> Option<SharedBackend> {
        let key = std::fs::canonicalize(path).ok()?;
        self.0
            .iter()
            .find(|(p, _)| *p == key)
            .map(|(_, b)| b.clone())
    }

    fn insert(&mut self, path: &Path, backend: SharedBackend) {
        if let Ok(key) = std::fs::canonicalize(path) {
            self.0.push((key, backend));
        }
    }
}

/// The backend of a judge or attacker model spec, shared with a role that already loaded the
/// same file.
fn open_role(
    id: &str,
    model: &crate::judges::JudgeModel,
    served: Option<BTreeMap<String, String>>,
    args: &RunArgs,
    loaded: &mut Loaded,
) -> Result<SharedBackend> {
    use crate::judges::JudgeModel;
    if served.is_some() && !matches!(model, JudgeModel::Served { .. }) {
        bail!("--judge-option {id}.…: only a served model (openai:NAME@URL) takes options");
    }
    Ok(match model {
        JudgeModel::Scripted(profile) => {
            SharedBackend::new(Box::new(runners::scripted::ScriptedBackend::load(profile)?))
        }
        JudgeModel::Served {
            model_name,
            base_url,
        } => {
            let options = crate::judges::served_options(
                id,
                model_name,
                base_url,
                &served.unwrap_or_default(),
                default_cache_dir(),
                &|variable| std::env::var(variable).ok(),
            )?;
            SharedBackend::new(Box::new(
                runners::openai::OpenAiBackend::new(options)
                    .with_context(|| format!("--judge {id}"))?,
            ))
        }
        JudgeModel::File(path) => {
            if let Some(backend) = loaded.get(path) {
                return Ok(backend);
            }
            let backend: Box<dyn Backend> = if runners::toxicity::ToxicityBackend::recognises(path)
            {
                Box::new(runners::toxicity::ToxicityBackend::load(path)?)
            } else {
                let options = runners::candle::CandleOptions {
                    device: args.device.clone(),
                    dtype: args.dtype.clone(),
                    date: args.date,
                    ..Default::default()
                };
                Box::new(runners::candle::CandleBackend::load(path, &options)?)
            };
            let backend = SharedBackend::new(backend);
            loaded.insert(path, backend.clone());
            backend
        }
    })
}

/// The attacker of `--attacker` (`target`: the model under audit).
fn open_attacker(
    args: &RunArgs,
    target: &SharedBackend,
    served: Option<BTreeMap<String, String>>,
    loaded: &mut Loaded,
) -> Result<Option<SharedBackend>> {
    let Some(spec) = &args.attacker else {
        if served.is_some() {
            bail!("--judge-option {ATTACKER}.…: no --attacker MODEL is given");
        }
        return Ok(None);
    };
    if spec == "target" {
        if served.is_some() {
            bail!("--judge-option {ATTACKER}.…: --attacker target takes the target's settings");
        }
        return Ok(Some(target.clone()));
    }
    let (_, model) = crate::judges::parse_spec(&format!("{ATTACKER}={spec}")).map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.to_string()
                .replacen("--judge attacker=", "--attacker ", 1)
        )
    })?;
    open_role(ATTACKER, &model, served, args, loaded).map(Some)
}

/// `--resume` with another model or judge (`Manifest::differences` on the model record alone):
/// the one-line error the session gives, before anything is measured.
fn refuse_another_model(out: &Path, model: &audit_core::ModelInfo) -> Result<()> {
    let path = out.join(audit_core::rundir::MANIFEST);
    if !path.is_file() {
        return Ok(());
    }
    let previous = session::read_manifest(&path)?;
    let mut this = previous.clone();
    this.model = model.clone();
    let differences = previous.differences(&this, audit_core::rundir::Sameness::Resume);
    if !differences.is_empty() {
        bail!(
            "--resume: {}: its {} differ from this command's; start a new run with another --out",
            path.display(),
            differences.join(", ")
        );
    }
    Ok(())
}

/// The judge backends of `--judge ID=MODEL` (and `--judge-option`), by judge id: a built-in
/// judge or one the suites declare (a `rubric` detector).
fn open_judges(
    args: &RunArgs,
    suites: &[Suite],
    loaded: &mut Loaded,
) -> Result<(run::JudgeBackends, Option<BTreeMap<String, String>>)> {
    let declared: std::collections::BTreeSet<&str> = suites
        .iter()
        .flat_map(|s| &s.probes)
        .flat_map(|p| &p.judges)
        .map(|j| j.id())
        .filter(|id| probes::registry::judge(id).is_none())
        .collect();
    let mut judges = run::JudgeBackends::new();
    let mut options = crate::judges::parse_options(&args.judge_options)?;
    let attacker_options = options.remove(ATTACKER);
    for spec in &args.judges {
        let (id, model) = crate::judges::parse_spec(spec)?;
        if probes::registry::judge(&id).is_none() && !declared.contains(id.as_str()) {
            let known: Vec<&str> = probes::registry::JUDGES
                .iter()
                .map(|j| j.id)
                .chain(declared.iter().copied())
                .collect();
            bail!(
                "--judge {id}={}: unknown judge `{id}` (known: {})",
                crate::judges::describe(&model),
                known.join(", ")
            );
        }
        let served = options.remove(&id);
        let backend: Box<dyn Backend> = Box::new(open_role(&id, &model, served, args, loaded)?);
        if judges.insert(id.to_string(), backend).is_some() {
            bail!("--judge {id}: given twice");
        }
    }
    if let Some(id) = options.keys().next() {
        bail!("--judge-option {id}.…: no --judge {id}=MODEL is given");
    }
    Ok((judges, attacker_options))
}

/// The accuracy of every judge a suite uses, measured through the judge's backend before the
/// run on human labels (docs/judges.md): the user's own file (`--judge-labels`) first, then the
/// built-in sets of the judge (`judge_accuracy::sets`). The judged rates are corrected with the
/// first. Deterministic (greedy verdicts, or log-likelihoods), so a resumed run measures the same.
fn measure_judges(
    suites: &[Suite],
    judges: &mut run::JudgeBackends,
    datasets: &Path,
    labels: Option<&Path>,
    seed: u64,
    quiet: bool,
) -> Result<Vec<audit_core::stats::DetectorAccuracy>> {
    use probes::detectors::judge_accuracy;
    // Read before any model time is spent, so that a typo in it costs none.
    let user = labels
        .map(|path| {
            judge_accuracy::user_labels(path)
                .map(|items| (judge_accuracy::user_dataset(path), items))
                .map_err(|e| anyhow::anyhow!("--judge-labels {e}"))
        })
        .transpose()?;
    let mut used: std::collections::BTreeMap<&str, &dyn audit_core::Judge> = Default::default();
    for judge in suites
        .iter()
        .flat_map(|s| &s.probes)
        .flat_map(|p| &p.judges)
    {
        used.entry(judge.id()).or_insert(judge.as_ref());
    }
    let mut measured = Vec::new();
    for (id, judge) in used {
        let Some(backend) = judges.get_mut(id) else {
            continue;
        };
        let mut sets = Vec::new();
        if let Some((name, items)) = &user {
            sets.push((name.clone(), items.clone()));
        }
        for set in judge_accuracy::sets(id) {
            let file = datasets.join(judge_accuracy::set_file(set));
            if !file.exists() {
                // Not an error: the judged rates are still reported, only not corrected.
                eprintln!(
                    "warning: {} is missing, so {id}'s accuracy is not measured on {set} and its rates are not corrected with it",
                    file.display()
                );
                continue;
            }
            let items = judge_accuracy::load_set(set, datasets).map_err(|e| {
                anyhow::anyhow!(
                    "--judge {id}: measuring its accuracy needs the labelled answers: {e}"
                )
            })?;
            sets.push((set.to_string(), items));
        }
        for (set, items) in sets {
            if !quiet {
                eprintln!(
                    "measuring {id} on {} human-labelled answers of {set}",
                    items.len()
                );
            }
            let accuracy = judge_accuracy::measure(judge, backend.as_mut(), &set, &items, seed)
                .with_context(|| format!("--judge {id}: measuring its accuracy on {set}"))?;
            if !quiet {
                let c = audit_core::summary::JudgeCalibration::of(&accuracy, 0.95);
                let share = |s: &Option<audit_core::summary::LabelledShare>| {
                    s.as_ref().map_or("–".to_string(), |s| {
                        format!(
                            "{}/{} = {:.3} [{:.3}, {:.3}]",
                            s.k, s.n, s.value, s.ci_low, s.ci_high
                        )
                    })
                };
                eprintln!(
                    "{id} on {set}: sensitivity {}, specificity {} (Wilson 95%), {} unreadable verdicts",
                    share(&c.sensitivity),
                    share(&c.specificity),
                    accuracy.unscored
                );
            }
            measured.push(accuracy);
        }
    }
    Ok(measured)
}

fn parse_shard(spec: &str) -> Result<Shard> {
    spec.parse::<Shard>()
        .ok()
        .with_context(|| format!("--shard {spec}: expected K/N with 1 ≤ K ≤ N"))
}

/// Writes text to stdout. A reader that went away (`probity list | head`) is not an error:
/// what it did not read, it did not want.
pub(crate) fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

/// The command line as given, for the manifest: arguments that are not UTF-8 are written
/// lossily (U+FFFD for what cannot be decoded) rather than refused, and the user and password
/// of a URL (`--base-url https://user:pw@host`) are redacted.
pub(crate) fn command_line() -> Vec<String> {
    std::env::args_os()
        .map(|a| audit_core::redact::url_userinfo(&a.to_string_lossy()))
        .collect()
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn host() -> Host {
    let hostname = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    Host {
        hostname,
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

fn run_command(args: &RunArgs) -> Result<ExitCode> {
    if !(0.5..1.0).contains(&args.confidence) {
        bail!(
            "--confidence {}: expected a level in [0.5, 1)",
            args.confidence
        );
    }
    // The policy is read before the run, so that a typo in it costs no model time.
    let policy = args.policy.as_deref().map(gate::load).transpose()?;
    let context = build_context(args.datasets.as_deref());
    let datasets = context.datasets().to_path_buf();
    let suites = args
        .suite
        .iter()
        .map(|name| suites::load(name, &context).map_err(anyhow::Error::from))
        .collect::<Result<Vec<Suite>>>()?;
    // `auto` is resolved here, and the manifest records the shard it resolved to.
    let shard = match args.shard.as_deref() {
        Some("auto") => {
            let found = shard::from_env(&|name| std::env::var(name).ok())?;
            eprintln!("--shard auto: shard {} from {}", found.shard, found.source);
            Some(found.shard)
        }
        Some(spec) => Some(parse_shard(spec)?),
        None => None,
    };
    let config = RunConfig {
        seed: args.seed,
        generation: Generation {
            max_new_tokens: args.max_new_tokens as usize,
            temperature: args.temperature,
            top_p: args.top_p,
            top_k: args.top_k,
            seed: args.seed,
            stop: Vec::new(),
        },
        limit: args.limit,
        shard,
    };
    let planned = run::plan(&suites, &config)?;
    // An attack without its attacker or judge stops here, before any model is loaded.
    let judge_ids = args
        .judges
        .iter()
        .map(|spec| crate::judges::parse_spec(spec).map(|(id, _)| id))
        .collect::<Result<Vec<String>>>()?;
    run::check_attacks(&suites, &planned, args.attacker.is_some(), &|id| {
        judge_ids.iter().any(|j| j == id)
    })?;
    // The VADER detectors read their lexicon beside the datasets; a run that needs it and
    // cannot read it stops here rather than reporting empty sentiment rates.
    let uses_vader = suites.iter().flat_map(|s| &s.probes).any(|p| {
        p.detectors
            .iter()
            .any(|d| probes::bias::bold::is_vader(d.id()))
    });
    if uses_vader {
        context.vader().map_err(anyhow::Error::msg)?;
    }

    // One writer per run directory, held until this process ends (a second run, a --resume
    // of a run still going, a merge, gate or report into it: one-line error).
    let mode = if args.resume {
        session::Mode::Resume
    } else {
        session::Mode::New
    };
    let reserved = session::reserve(&args.out, mode)?;

    let mut progress = progress::Progress::new(args.quiet);
    progress.phase("loading");
    let mut backend = SharedBackend::new(open_backend(args)?);
    // A kind of query the backend cannot answer (a suffix search without gradients) stops
    // here, before any model work.
    run::check_support(&planned, &backend)?;
    // The model under audit serves other roles given the same file (not with an adapter).
    let mut loaded = Loaded::default();
    if let (Some(path), None) = (&args.model, &args.adapter) {
        loaded.insert(path, backend.clone());
    }
    let (mut judges, attacker_options) = open_judges(args, &suites, &mut loaded)?;
    let mut attacker = open_attacker(args, &backend, attacker_options, &mut loaded)?;
    let model = with_judges(backend.model(), &judges, attacker.as_ref());
    if args.resume {
        // Before the judges spend time on their labelled sets: another model or judge is
        // refused at once (the session checks everything else when it begins).
        refuse_another_model(&args.out, &model)?;
    }
    let accuracy = measure_judges(
        &suites,
        &mut judges,
        &datasets,
        args.judge_labels.as_deref(),
        args.seed,
        args.quiet,
    )?;
    let statistics = Statistics {
        confidence: args.confidence,
        min_effect: args.min_effect,
    };
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "probity".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_sha: env!("PROBITY_GIT_SHA").to_string(),
        },
        command_line: command_line(),
        suites: suites.iter().map(|s| s.reference.clone()).collect(),
        model,
        // Read while the cases were planned and the judges measured.
        datasets: probes::provenance::files_read(),
        seed: args.seed,
        generation: config.generation.clone(),
        limit: args.limit,
        shard,
        date: args.date.to_string(),
        statistics,
        host: host(),
        started_at: now(),
        finished_at: None,
        status: RunStatus::Running,
        n_cases: planned.len() as u64,
    };
    let mut session = reserved.begin(manifest)?;

    // One counted phase per query kind, in the order the run loop answers them.
    let phases = audit_core::QueryKind::ALL
        .iter()
        .map(|&kind| {
            let journal = session.journal();
            let remaining = planned
                .iter()
                .filter(|p| p.case.query.kind() == kind)
                .filter(|p| !journal.contains(&suites[p.suite].reference.id, &p.case.id))
                .count();
            let judged = if judges.is_empty() { "" } else { " + judges" };
            (format!("{}{judged}", kind.name()), remaining as u64)
        })
        .collect();
    progress.counted(phases);
    catch_signals()?;
    let result = run::execute_with_judges(
        &suites,
        &planned,
        &mut backend,
        &mut audit_core::attack::Parties {
            attacker: attacker.as_mut().map(|a| a as &mut dyn Backend),
            judges: &mut judges,
        },
        &config,
        session.journal(),
        &mut |n, tokens| progress.advance_batch(n as u64, tokens),
    );
    if let Err(run::RunError::Interrupted) = result {
        progress.finish();
        let dir = session.path().display().to_string();
        let journaled = session.interrupt()?;
        eprintln!(
            "interrupted: {journaled} attempts are journaled in {dir}; continue with --resume"
        );
        return Ok(ExitCode::from(130));
    }
    result?;
    progress.phase("statistics and reports");

    let attempts = session.attempts()?;
    let summary = summarise_with_accuracy(&suites, &attempts, args.seed, statistics, &accuracy);
    session.finish(&summary, RunStatus::Complete, now())?;
    reports::write_reports(&args.out)?;
    progress.finish();
    eprintln!(
        "wrote {} ({} attempts, {} errors)",
        args.out.display(),
        summary.n_attempts,
        summary.n_errors
    );
    match &policy {
        Some(policy) => gate::apply(&args.out, policy, false),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// SIGINT and SIGTERM stop the run after the batch in flight (`run::stop_flag`); a second
/// one ends the process at once.
fn catch_signals() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = run::stop_flag();
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, flag.clone())
            .and_then(|_| signal_hook::flag::register(signal, flag.clone()))
            .context("installing the signal handlers")?;
    }
    Ok(())
}
