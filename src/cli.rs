//! Command definitions (clap) and what each command does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use audit_core::journal::{self, Journal};
use audit_core::run::{self, RunConfig, Shard};
use audit_core::rundir::{self, Host, Manifest, RunDir, RunStatus, Tool};
use audit_core::summary::{summarise_with_accuracy, SCHEMA_VERSION};
use audit_core::{Backend, Generation, Suite};
use clap::{Parser, Subcommand};

// The gate, compare and merge commands live beside this file (declared here, with the rest of
// the command wiring).
#[path = "compare.rs"]
mod compare;
#[path = "gate.rs"]
mod gate;
#[path = "merge.rs"]
mod merge;

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
    /// Merge the shards of one run (from --shard K/N) into one run directory
    Merge {
        /// The shard run directories
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// The run directory to write
        #[arg(long)]
        out: PathBuf,
        /// Where dataset paths of suites resolve (default: $PROBITY_DATASETS, else ./datasets)
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
    /// Run shard K of N (1-based), e.g. 2/4
    #[arg(long)]
    shard: Option<String>,
    /// Continue an interrupted run in --out from its journal
    #[arg(long)]
    resume: bool,
    /// Longest generated answer, in tokens
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Sampling temperature (0 = greedy)
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling threshold
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Top-k sampling
    #[arg(long)]
    top_k: Option<usize>,
    /// Confidence level of every interval
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// The smallest difference of rates worth detecting: comparisons that cannot detect it
    /// (α = 0.05, 80% power) are listed as underpowered in summary.json's warnings
    #[arg(long, default_value_t = audit_core::summary::STATED_EFFECT)]
    min_effect: f64,
    /// The model a judge detector asks, as JUDGE=MODEL (repeatable): a classifier folder for
    /// `toxicity`, a GGUF file or HF folder for `harm-judge`, or scripted:PROFILE.toml
    #[arg(long = "judge", value_name = "JUDGE=MODEL")]
    judges: Vec<String>,
    /// Where dataset paths of suites resolve (default: $PROBITY_DATASETS, else ./datasets)
    #[arg(long)]
    datasets: Option<PathBuf>,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
    /// Evaluate this policy file at the end of the run (exit 1 when a gate fails)
    #[arg(long)]
    policy: Option<PathBuf>,
}

/// The datasets folder: the flag, else `$PROBITY_DATASETS`, else `./datasets`.
fn datasets_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("PROBITY_DATASETS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("datasets"))
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
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Request-per-minute limit
    #[arg(long)]
    requests_per_minute: Option<u32>,
    /// Token-per-minute limit (estimated from text length)
    #[arg(long)]
    tokens_per_minute: Option<u32>,
    /// Seconds before a request times out (then it is retried)
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Retries of a failed request (429, 5xx, timeouts, malformed replies)
    #[arg(long, default_value_t = 5)]
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
            reports::write_reports(&dir)?;
            if let Some(detector) = rate {
                print_rates(&dir, &detector, &by)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gate { dir, policy } => gate::apply(&dir, &gate::load(&policy)?),
        Command::Compare { base, new, out } => compare::compare(&base, &new, out.as_deref()),
        Command::Merge {
            shards,
            out,
            datasets,
        } => merge::merge(&shards, &out, &datasets_dir(datasets.as_deref())),
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
    println!("{}\t{detector}_rate\tci_low\tci_high\tn", by.join("\t"));
    for e in rates {
        let group: Vec<&str> = by
            .iter()
            .map(|k| e.group.get(k).map_or("", String::as_str))
            .collect();
        println!(
            "{}\t{:.4}\t{:.4}\t{:.4}\t{}",
            group.join("\t"),
            e.value,
            e.ci_low,
            e.ci_high,
            e.n
        );
    }
    Ok(())
}

fn list() -> Result<ExitCode> {
    println!("suites:");
    for (id, text) in suites::BUILTIN {
        let suite = suites::parse(text, &format!("builtin:{id}"), &datasets_dir(None))?;
        println!("  {id}@{}  {}", suite.reference.version, suite.description);
        for plan in &suite.probes {
            println!("    probe {}: {}", plan.probe.id(), plan.probe.goal());
        }
    }
    use probes::registry;
    println!("probe families:");
    for family in registry::FAMILIES {
        println!("  {}  {}", family.name, family.about);
    }
    println!("transforms:");
    for transform in registry::TRANSFORMS {
        println!("  {}  {}", transform.id, transform.about);
    }
    println!("detectors:");
    for detector in registry::DETECTORS {
        println!("  {}  {}", detector.id, detector.about);
    }
    println!("metrics:");
    for metric in registry::METRICS {
        println!("  {}  {}", metric.name, metric.about);
    }
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
                ..Default::default()
            };
            Ok(Box::new(runners::candle::CandleBackend::load(model, &options)?))
        }
        (None, Some(spec)) if spec == "openai" => {
            let served = &args.served;
            let (Some(base_url), Some(model_name)) = (&served.base_url, &served.model_name) else {
                bail!("--backend openai needs --base-url URL and --model-name NAME");
            };
            let options = runners::openai::OpenAiOptions {
                base_url: base_url.clone(),
                model_name: model_name.clone(),
                api_key_env: served.api_key_env.clone(),
                concurrency: served.concurrency,
                requests_per_minute: served.requests_per_minute,
                tokens_per_minute: served.tokens_per_minute,
                timeout: std::time::Duration::from_secs_f64(served.timeout.max(0.001)),
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
/// hashes) join the model's, and `details` says which judge used which model.
fn with_judges(
    mut model: audit_core::ModelInfo,
    judges: &run::JudgeBackends,
) -> audit_core::ModelInfo {
    for (id, judge) in judges {
        let info = judge.model();
        model.details.insert(
            format!("judge:{id}"),
            format!(
                "{} {} on {} ({})",
                info.backend, info.model, info.device, info.dtype
            ),
        );
        model.files.extend(info.files);
    }
    model
}

/// The judge backends of `--judge ID=MODEL`, by judge id.
fn open_judges(args: &RunArgs) -> Result<run::JudgeBackends> {
    let mut judges = run::JudgeBackends::new();
    for spec in &args.judges {
        let Some((id, model)) = spec.split_once('=') else {
            bail!("--judge {spec}: expected JUDGE=MODEL, e.g. toxicity=models/toxic-comment-classifier-bilstm");
        };
        if probes::registry::judge(id).is_none() {
            let known: Vec<&str> = probes::registry::JUDGES.iter().map(|j| j.id).collect();
            bail!(
                "--judge {spec}: unknown judge `{id}` (known: {})",
                known.join(", ")
            );
        }
        let path = Path::new(model);
        let backend: Box<dyn Backend> = if let Some(profile) = model.strip_prefix("scripted:") {
            Box::new(runners::scripted::ScriptedBackend::load(Path::new(
                profile,
            ))?)
        } else if runners::toxicity::ToxicityBackend::recognises(path) {
            Box::new(runners::toxicity::ToxicityBackend::load(path)?)
        } else {
            let options = runners::candle::CandleOptions {
                device: args.device.clone(),
                dtype: args.dtype.clone(),
                ..Default::default()
            };
            Box::new(runners::candle::CandleBackend::load(path, &options)?)
        };
        if judges.insert(id.to_string(), backend).is_some() {
            bail!("--judge {id}: given twice");
        }
    }
    Ok(judges)
}

/// The accuracy of every LLM judge a suite uses, measured on JailbreakBench's human labels
/// through the judge's backend before the run (docs/detectors.md): the judged rates are
/// corrected with it. Deterministic (greedy verdicts), so a resumed run measures the same.
fn measure_judges(
    suites: &[Suite],
    judges: &mut run::JudgeBackends,
    datasets: &Path,
    seed: u64,
    quiet: bool,
) -> Result<Vec<audit_core::stats::DetectorAccuracy>> {
    use probes::detectors::judge_accuracy;
    let mut measured = Vec::new();
    let harm_judge = probes::judges::HARM_JUDGE;
    let used = suites
        .iter()
        .flat_map(|s| &s.probes)
        .flat_map(|p| &p.judges)
        .any(|j| j.id() == harm_judge);
    if let (true, Some(backend)) = (used, judges.get_mut(harm_judge)) {
        if !datasets.join(judge_accuracy::FILE).is_file() {
            // Not an error: the judged rates are still reported, only not corrected.
            eprintln!(
                "warning: {} is missing, so {harm_judge}'s accuracy is not measured and its rates are not corrected",
                datasets.join(judge_accuracy::FILE).display()
            );
            return Ok(measured);
        }
        let items = judge_accuracy::jailbreakbench(datasets).map_err(|e| {
            anyhow::anyhow!(
                "--judge {harm_judge}: measuring its accuracy needs the labelled answers: {e}"
            )
        })?;
        if !quiet {
            eprintln!(
                "measuring {harm_judge} on {} human-labelled answers of {}",
                items.len(),
                judge_accuracy::FILE
            );
        }
        let accuracy =
            judge_accuracy::measure(&probes::judges::HarmJudge, backend.as_mut(), &items, seed)
                .with_context(|| format!("--judge {harm_judge}: measuring its accuracy"))?;
        if !quiet {
            eprintln!(
                "{harm_judge}: sensitivity {}/{}, specificity {}/{}, {} unreadable verdicts",
                accuracy.true_positives,
                accuracy.positives,
                accuracy.true_negatives,
                accuracy.negatives,
                accuracy.unscored
            );
        }
        measured.push(accuracy);
    }
    Ok(measured)
}

fn parse_shard(spec: &str) -> Result<Shard> {
    let parsed = spec.split_once('/').and_then(|(k, n)| {
        let (index, count) = (k.parse::<u32>().ok()?, n.parse::<u32>().ok()?);
        (count >= 1 && (1..=count).contains(&index)).then_some(Shard { index, count })
    });
    parsed.with_context(|| format!("--shard {spec}: expected K/N with 1 ≤ K ≤ N"))
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
    let datasets = datasets_dir(args.datasets.as_deref());
    let suites = args
        .suite
        .iter()
        .map(|name| suites::load(name, &datasets).map_err(anyhow::Error::from))
        .collect::<Result<Vec<Suite>>>()?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let config = RunConfig {
        seed: args.seed,
        generation: Generation {
            max_new_tokens: args.max_new_tokens,
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
    // The VADER detectors read their lexicon beside the datasets; a run that needs it and
    // cannot read it stops here rather than reporting empty sentiment rates.
    probes::bias::bold::use_datasets(&datasets);
    let uses_vader = suites.iter().flat_map(|s| &s.probes).any(|p| {
        p.detectors
            .iter()
            .any(|d| probes::bias::bold::is_vader(d.id()))
    });
    if uses_vader {
        if let Some(error) = probes::bias::bold::lexicon_error() {
            bail!("the VADER sentiment detectors cannot read their lexicon: {error} (set PROBITY_VADER to the folder that holds vader_lexicon.txt)");
        }
    }

    let dir = RunDir::new(&args.out);
    let journal_path = dir.file(rundir::ATTEMPTS_JSONL);
    if !args.resume && journal_path.exists() {
        bail!(
            "{} already holds a run: use --resume to continue it, or choose another --out",
            dir.path().display()
        );
    }
    if args.resume && !journal_path.exists() {
        bail!(
            "--resume: {} has no run to continue ({} is missing)",
            dir.path().display(),
            journal_path.display()
        );
    }
    std::fs::create_dir_all(dir.path())
        .with_context(|| format!("creating {}", dir.path().display()))?;

    let mut backend = open_backend(args)?;
    let mut judges = open_judges(args)?;
    let accuracy = measure_judges(&suites, &mut judges, &datasets, args.seed, args.quiet)?;
    let mut manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "probity".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_sha: env!("PROBITY_GIT_SHA").to_string(),
        },
        command_line: std::env::args().collect(),
        suites: suites.iter().map(|s| s.reference.clone()).collect(),
        model: with_judges(backend.model(), &judges),
        seed: args.seed,
        generation: config.generation.clone(),
        limit: args.limit,
        shard: args.shard.clone(),
        confidence: args.confidence,
        host: host(),
        started_at: now(),
        finished_at: None,
        status: RunStatus::Running,
        n_cases: planned.len() as u64,
    };
    let manifest_path = dir.file(rundir::MANIFEST);
    let mut journal = if args.resume {
        let previous: Manifest = read_json(&manifest_path)?;
        check_same_run(&previous, &manifest)?;
        manifest.started_at = previous.started_at;
        let (journal, _) = Journal::resume(&journal_path)?;
        journal
    } else {
        Journal::create(&journal_path)?
    };
    write_json(&manifest_path, &manifest)?;

    let remaining = planned
        .iter()
        .filter(|p| !journal.contains(&suites[p.suite].reference.id, &p.case.id))
        .count();
    let bar = progress_bar(remaining as u64, args.quiet);
    run::execute_with_judges(
        &suites,
        &planned,
        backend.as_mut(),
        &mut judges,
        &config,
        &mut journal,
        &mut |n| bar.inc(n as u64),
    )?;
    bar.finish_and_clear();

    let attempts = journal::read(&journal_path)?;
    let mut summary =
        summarise_with_accuracy(&suites, &attempts, args.seed, args.confidence, &accuracy);
    summary.warnings = audit_core::summary::power_warnings(&summary.tests, args.min_effect);
    write_json(&dir.file(rundir::SUMMARY), &summary)?;
    manifest.finished_at = Some(now());
    manifest.status = RunStatus::Complete;
    write_json(&manifest_path, &manifest)?;
    reports::write_reports(dir.path())?;
    eprintln!(
        "wrote {} ({} attempts, {} errors)",
        dir.path().display(),
        summary.n_attempts,
        summary.n_errors
    );
    match &policy {
        Some(policy) => gate::apply(dir.path(), policy),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// A resumed run must be the same run: same suites, model files, seed and settings.
fn check_same_run(previous: &Manifest, current: &Manifest) -> Result<()> {
    let same = previous.suites == current.suites
        && previous.model.files == current.model.files
        && previous.seed == current.seed
        && previous.generation == current.generation
        && previous.limit == current.limit
        && previous.shard == current.shard;
    if !same {
        bail!("--resume: the suites, model, seed or settings differ from the run being resumed; start a new run with another --out");
    }
    Ok(())
}

fn progress_bar(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} attempts ({eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serializing JSON")?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
