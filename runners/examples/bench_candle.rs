//! Benchmark of the candle backend: scores CrowS-Pairs sentences (BOS-prefixed, as the Choice
//! query with an empty context does) and generates greedy chat answers, printing one JSON object
//! with tokens per second and every sentence's log-likelihood (for the agreement check in
//! `scripts/bench-candle.sh`).
//!
//! ```text
//! cargo run -p runners --example bench_candle -- MODEL.gguf CROWS.csv [--sentences N]
//!     [--batch N] [--gen-prompts N] [--gen-tokens N] [--bbq CATEGORY.jsonl --bbq-items N]
//!     [--device cpu|cuda:N] [--dtype f32|bf16] [--prompts FILE]
//!     [--weights quantized|f32|bf16]
//! ```
//!
//! `--prompts FILE` generates from the file's lines (one prompt each, through the chat template,
//! one batch) and reports every prompt's generated token ids (`gen_ids`), for the token-by-token
//! comparison of `scripts/gpu-check.py`. On a GPU, a short untimed warm-up (kernel loading,
//! cuBLAS handles) runs first, and batches default to the backend's GPU sizes.
//!
//! Models without a chat template (Gemma 3 270M base) generate from the raw prompt text, BOS
//! first where the tokenizer adds it. `--bbq` also scores BBQ items as the bbq probe asks them
//! (lm-eval's prompt, three options), as many cases per call as the runner batches them (32 on the CPU, 128 on GPUs).

use std::time::Instant;

use audit_core::{Answer, Backend, Case, Generation, Query, QueryKind};
use runners::candle::{CandleBackend, CandleOptions};

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas, doubled
/// quotes and newlines).
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// Both sentences of every CrowS-Pairs row, `sent_more` then `sent_less`.
fn crows_sentences(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut records = csv_records(&text).into_iter();
    let header = records.next().ok_or("empty CSV")?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or(format!("{path}: no column {name}"))
    };
    let (more, less) = (column("sent_more")?, column("sent_less")?);
    let mut out = Vec::new();
    for fields in records {
        if let (Some(a), Some(b)) = (fields.get(more), fields.get(less)) {
            out.push(a.clone());
            out.push(b.clone());
        }
    }
    Ok(out)
}

/// CPU seconds (user + system, all threads) this process has used, from `/proc/self/stat`
/// (Linux; 0 elsewhere). With other work on the machine, CPU time is steadier than wall time.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

const PROMPTS: [&str; 16] = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "How do I make a cup of tea?",
    "Give me three tips for staying focused.",
    "What is 17 times 23?",
    "Explain photosynthesis in one sentence.",
    "Who wrote Romeo and Juliet?",
    "Translate 'good morning' into Spanish.",
    "What should I do if I feel sad?",
    "Describe a nurse in one sentence.",
    "Describe an engineer in one sentence.",
    "Tell me a fun fact about octopuses.",
    "What are the primary colours?",
    "Summarize the plot of Cinderella.",
    "How many legs does a spider have?",
    "Why is the sky blue?",
];

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: usize| -> Result<usize, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .ok_or(format!("{name} needs a value"))?
                .parse()
                .map_err(|e| format!("{name}: {e}")),
            None => Ok(default),
        }
    };
    let (Some(model), Some(csv)) = (args.first(), args.get(1)) else {
        return Err("usage: bench_candle MODEL CROWS.csv [--sentences N] [--batch N] [--pairs] [--gen-prompts N] [--gen-tokens N]".into());
    };
    let text_flag = |name: &str| -> Result<Option<String>, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(Some(
                args.get(i + 1)
                    .ok_or(format!("{name} needs a value"))?
                    .clone(),
            )),
            None => Ok(None),
        }
    };
    let options = CandleOptions {
        device: text_flag("--device")?.unwrap_or_else(|| "cpu".into()),
        dtype: text_flag("--dtype")?,
        weights: text_flag("--weights")?,
        ..CandleOptions::default()
    };
    let gpu = options.device != "cpu";
    let n_sentences = flag("--sentences", usize::MAX)?;
    let batch = flag("--batch", if gpu { 256 } else { 64 })?;
    let gen_prompts = flag("--gen-prompts", 16)?.min(PROMPTS.len());
    let gen_tokens = flag("--gen-tokens", 64)?;
    // `--pairs`: each CrowS-Pairs row as one Choice of its two sentences (as the crows-pairs
    // probe asks it), so the pair's common start runs once; otherwise each sentence alone.
    let pairs = args.iter().any(|a| a == "--pairs");

    let started = Instant::now();
    let mut backend =
        CandleBackend::load(std::path::Path::new(model), &options).map_err(|e| e.to_string())?;
    let load_s = started.elapsed().as_secs_f64();
    if gpu {
        warm_up(&mut backend)?;
    }

    let sentences: Vec<String> = crows_sentences(csv)?
        .into_iter()
        .take(n_sentences)
        .collect();
    // Each case's sentences (indices into `sentences`).
    let groups: Vec<Vec<usize>> = if pairs {
        (0..sentences.len())
            .collect::<Vec<_>>()
            .chunks(2)
            .map(<[usize]>::to_vec)
            .collect()
    } else {
        (0..sentences.len()).map(|i| vec![i]).collect()
    };
    let cases: Vec<Case> = groups
        .iter()
        .enumerate()
        .map(|(i, group)| Case {
            id: format!("crows/{i}"),
            probe: "bench".into(),
            attributes: Default::default(),
            query: Query::Choice {
                context: String::new(),
                options: group.iter().map(|&k| sentences[k].clone()).collect(),
            },
        })
        .collect();
    // Tokens processed: the BOS prefix and every sentence token.
    let mut n_tokens = 0usize;
    for s in &sentences {
        n_tokens += 1 + backend.encode(s)?.len();
    }
    // The runner sorts cases by length before batching; do the same.
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.sort_by_key(|&i| groups[i].iter().map(|&k| sentences[k].len()).max());
    let mut logprobs = vec![f64::NAN; sentences.len()];
    let cpu = cpu_seconds();
    let started = Instant::now();
    // `--batch` counts sentences, so a batch of pairs holds as many sequences.
    let per_call = if pairs { batch / 2 } else { batch }.max(1);
    for chunk in order.chunks(per_call) {
        let refs: Vec<&Case> = chunk.iter().map(|&i| &cases[i]).collect();
        let answers = backend
            .answer(&refs, &Generation::default())
            .map_err(|e| e.to_string())?;
        for (&i, answer) in chunk.iter().zip(answers) {
            let lp = answer
                .logprobs()
                .ok_or_else(|| format!("crows/{i}: {answer:?}"))?;
            for (&k, &value) in groups[i].iter().zip(lp) {
                logprobs[k] = value;
            }
        }
    }
    let score_s = started.elapsed().as_secs_f64();
    let score_cpu_s = cpu_seconds() - cpu;

    let generation = Generation {
        max_new_tokens: gen_tokens,
        ..Generation::default()
    };
    let chat_template = backend.render_chat(None, &[], "x").is_ok();
    // Token prompts (the `--prompts` file through the chat template, or raw prompts for a model
    // without one) are continued by `complete`, which gives the generated ids; otherwise the
    // built-in prompts are asked as `Chat` cases.
    let token_prompts: Option<Vec<Vec<u32>>> = if let Some(file) = text_flag("--prompts")? {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
        Some(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|p| backend.encode(&backend.render_chat(None, &[], p)?))
                .collect::<Result<_, String>>()?,
        )
    } else if chat_template {
        None
    } else {
        // Raw prompts: BOS (where the tokenizer adds it) and the prompt's tokens.
        let bos = backend.sentence_prefix().filter(|_| backend.add_bos());
        Some(
            PROMPTS[..gen_prompts]
                .iter()
                .map(|p| {
                    let mut ids: Vec<u32> = bos.into_iter().collect();
                    ids.extend(backend.encode(p)?);
                    Ok(ids)
                })
                .collect::<Result<_, String>>()?,
        )
    };
    let mut gen_ids: Option<Vec<Vec<u32>>> = None;
    let (generated, gen_s, gen_cpu_s) = if let Some(prompts) = token_prompts {
        let seeds = vec![0; prompts.len()];
        let cpu = cpu_seconds();
        let started = Instant::now();
        let out = backend.complete(&prompts, &generation, &seeds)?;
        let gen_s = started.elapsed().as_secs_f64();
        let gen_cpu_s = cpu_seconds() - cpu;
        let n = out.iter().map(Vec::len).sum();
        gen_ids = Some(out);
        (n, gen_s, gen_cpu_s)
    } else {
        let chats: Vec<Case> = PROMPTS[..gen_prompts]
            .iter()
            .enumerate()
            .map(|(i, p)| Case {
                id: format!("chat/{i}"),
                probe: "bench".into(),
                attributes: Default::default(),
                query: Query::Chat {
                    system: None,
                    history: Vec::new(),
                    prompt: (*p).to_string(),
                },
            })
            .collect();
        let cpu = cpu_seconds();
        let started = Instant::now();
        let refs: Vec<&Case> = chats.iter().collect();
        let answers = backend
            .answer(&refs, &generation)
            .map_err(|e| e.to_string())?;
        let gen_s = started.elapsed().as_secs_f64();
        let gen_cpu_s = cpu_seconds() - cpu;
        let mut generated = 0usize;
        for answer in &answers {
            if let Answer::Response(text) = answer {
                generated += backend.encode(text)?.len();
            }
        }
        (generated, gen_s, gen_cpu_s)
    };

    let bbq = match args.iter().position(|a| a == "--bbq") {
        Some(i) => {
            let path = args.get(i + 1).ok_or("--bbq needs a file")?;
            let per_call = backend.batch_size(QueryKind::Choice);
            Some(bench_bbq(
                &mut backend,
                path,
                flag("--bbq-items", usize::MAX)?,
                per_call,
            )?)
        }
        None => None,
    };

    let report = serde_json::json!({
        "model": model,
        "load_s": load_s,
        "sentences": sentences.len(),
        "score_tokens": n_tokens,
        "score_s": score_s,
        "score_tokens_per_s": n_tokens as f64 / score_s,
        "score_cpu_s": score_cpu_s,
        "gen_prompts": gen_ids.as_ref().map_or(gen_prompts, Vec::len),
        "gen_tokens": generated,
        "gen_s": gen_s,
        "gen_tokens_per_s": generated as f64 / gen_s,
        "gen_cpu_s": gen_cpu_s,
        "gen_ids": gen_ids,
        "device": options.device,
        "dtype": options.dtype,
        "logprobs": logprobs,
        "bbq": bbq,
    });
    println!("{report}");
    Ok(())
}

/// One small scoring call and one short generation, untimed: on a GPU the first use of each
/// kernel loads (and JIT-compiles) its module.
fn warm_up(backend: &mut CandleBackend) -> Result<(), String> {
    let case = |id: &str, query: Query| Case {
        id: id.into(),
        probe: "bench".into(),
        attributes: Default::default(),
        query,
    };
    let choice = case(
        "warm/choice",
        Query::Choice {
            context: "The weather today is".into(),
            options: vec![" sunny and warm.".into(), " cold.".into()],
        },
    );
    backend
        .answer(&[&choice], &Generation::default())
        .map_err(|e| e.to_string())?;
    let prompt = vec![backend.encode("Hello, how are you?")?; 2];
    let generation = Generation {
        max_new_tokens: 4,
        ..Generation::default()
    };
    backend.complete(&prompt, &generation, &[0, 0])?;
    Ok(())
}

/// Scores BBQ items (the bbq probe's prompt: context, a blank line, `Q: question`, `A:`; each
/// answer after a space), the backend's batch size per call, and reports tokens/s over every option's context +
/// option tokens (what a scorer without shared prefixes processes) and each option's log-prob.
fn bench_bbq(
    backend: &mut CandleBackend,
    path: &str,
    items: usize,
    per_call: usize,
) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut cases = Vec::new();
    let mut n_tokens = 0usize;
    for (i, line) in text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(items)
        .enumerate()
    {
        let item: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{path}: line {}: {e}", i + 1))?;
        let field = |k: &str| item[k].as_str().unwrap_or_default().to_string();
        let context = format!("{}\n\nQ: {}\nA:", field("context"), field("question"));
        let options: Vec<String> = ["ans0", "ans1", "ans2"]
            .iter()
            .map(|k| format!(" {}", field(k)))
            .collect();
        for o in &options {
            let mut whole: Vec<u32> = Vec::new();
            if backend.add_bos() {
                whole.extend(backend.sentence_prefix());
            }
            whole.extend(backend.encode(&format!("{context}{o}"))?);
            n_tokens += whole.len();
        }
        cases.push(Case {
            id: format!("bbq/{i}"),
            probe: "bench".into(),
            attributes: Default::default(),
            query: Query::Choice { context, options },
        });
    }
    let mut logprobs = Vec::with_capacity(cases.len());
    let cpu = cpu_seconds();
    let started = Instant::now();
    for chunk in cases.chunks(per_call) {
        let refs: Vec<&Case> = chunk.iter().collect();
        for answer in backend
            .answer(&refs, &Generation::default())
            .map_err(|e| e.to_string())?
        {
            match answer.logprobs() {
                Some(lp) => logprobs.push(lp.to_vec()),
                None => return Err(format!("bbq: {answer:?}")),
            }
        }
    }
    let score_s = started.elapsed().as_secs_f64();
    let score_cpu_s = cpu_seconds() - cpu;
    Ok(serde_json::json!({
        "items": cases.len(),
        "tokens": n_tokens,
        "score_s": score_s,
        "score_cpu_s": score_cpu_s,
        "tokens_per_s": n_tokens as f64 / score_s,
        "logprobs": logprobs,
    }))
}
