//! Choice queries: the summed log-probability of each option's tokens given the context, and
//! how many tokens were summed.
//!
//! The convention is lm-evaluation-harness's: trailing spaces of the context move to the option;
//! context and context + option are tokenized, and the option's tokens are those of the joint
//! encoding after the context's token count. An empty context scores the option as a whole
//! sentence after the BOS token (EOS where the model has no BOS). Models whose tokenizer adds
//! BOS to every text (Gemma) get BOS in front of non-empty contexts too; lm-eval's double BOS for
//! empty contexts on such models is not reproduced.
//!
//! Sequences of a batch are sorted by length and right-padded: with a causal mask, no real token
//! attends to the padding after it, so no padding mask is needed. The LM head runs only at the
//! positions that predict option tokens. The options of one case that share at least 8 leading
//! tokens (a BBQ context, the start of a CrowS-Pairs pair) run that prefix once: its keys and
//! values are copied to each option's cache row, and only the options' own tokens run again.

use audit_core::{Answer, BackendError, Case, Query};

use super::model::{target_logprobs, Cache};
use super::CandleBackend;

/// One option of one case, tokenized: `tokens[..]` is context + option; the last `n_option`
/// tokens are scored.
struct Sequence {
    case: usize,
    option: usize,
    tokens: Vec<u32>,
    n_option: usize,
}

/// At most this many rows × padded length per forward call.
const TOKENS_PER_FORWARD: usize = 8192;

/// Splits a choice into the token ids of the context and of the option, or says why it cannot
/// be scored.
pub(crate) fn encode_pair(
    backend: &CandleBackend,
    context: &str,
    option: &str,
) -> Result<(Vec<u32>, Vec<u32>), String> {
    if option.is_empty() {
        return Err("empty option: nothing to score".into());
    }
    let trimmed = context.trim_end();
    let (context, option) = (trimmed, format!("{}{option}", &context[trimmed.len()..]));
    let bos: Vec<u32> = if backend.specials.add_bos {
        backend.specials.bos.into_iter().collect()
    } else {
        Vec::new()
    };
    if context.is_empty() {
        let prefix = backend
            .specials
            .prefix_id()
            .ok_or("the model has neither a BOS nor an EOS token to condition a sentence on")?;
        let option_ids = backend.encode(&option)?;
        return Ok((vec![prefix], option_ids));
    }
    let mut whole = bos.clone();
    whole.extend(backend.encode(&format!("{context}{option}"))?);
    let mut context_ids = bos;
    context_ids.extend(backend.encode(context)?);
    let n = context_ids.len().min(whole.len());
    Ok((whole[..n].to_vec(), whole[n..].to_vec()))
}

pub(crate) fn answer(
    backend: &CandleBackend,
    batch: &[&Case],
) -> Result<Vec<Answer>, BackendError> {
    let context_len = backend.context_len();
    let mut answers: Vec<Option<Answer>> = vec![None; batch.len()];
    let mut sums: Vec<Vec<f64>> = Vec::with_capacity(batch.len());
    let mut counts: Vec<Vec<u32>> = Vec::with_capacity(batch.len());
    let mut sequences = Vec::new();
    for (index, case) in batch.iter().enumerate() {
        let Query::Choice { context, options } = &case.query else {
            answers[index] = Some(Answer::Error("not a choice query".into()));
            sums.push(Vec::new());
            counts.push(Vec::new());
            continue;
        };
        sums.push(vec![0.0; options.len()]);
        counts.push(vec![0; options.len()]);
        if options.is_empty() {
            answers[index] = Some(Answer::Error("no options to score".into()));
            continue;
        }
        let mut case_sequences = Vec::with_capacity(options.len());
        for (o, option) in options.iter().enumerate() {
            match encode_pair(backend, context, option) {
                Ok((_, option_ids)) if option_ids.is_empty() => {
                    answers[index] = Some(Answer::Error(format!(
                        "option {o} has no tokens after the context"
                    )));
                    break;
                }
                Ok((mut tokens, option_ids)) => {
                    let n_option = option_ids.len();
                    tokens.extend(option_ids);
                    if tokens.len() > context_len + 1 {
                        answers[index] = Some(Answer::Error(format!(
                            "option {o} needs {} tokens; the context window is {context_len}",
                            tokens.len() - 1
                        )));
                        break;
                    }
                    case_sequences.push(Sequence {
                        case: index,
                        option: o,
                        tokens,
                        n_option,
                    });
                }
                Err(reason) => {
                    answers[index] = Some(Answer::Error(format!("option {o}: {reason}")));
                    break;
                }
            }
        }
        if answers[index].is_none() {
            sequences.extend(case_sequences);
        }
    }
    let scores = score_sequences(backend, &sequences).map_err(|e| {
        BackendError(format!(
            "candle forward failed: {}",
            super::gguf::one_line(e)
        ))
    })?;
    for (sequence, score) in sequences.iter().zip(scores) {
        sums[sequence.case][sequence.option] = score;
        counts[sequence.case][sequence.option] = sequence.n_option as u32;
    }
    Ok(answers
        .into_iter()
        .zip(sums.into_iter().zip(counts))
        .map(|(answer, (logprobs, tokens))| {
            answer.unwrap_or(Answer::TokenLogprobs { logprobs, tokens })
        })
        .collect())
}

/// Scores every sequence; returns the sums in the order of `sequences`.
///
/// The options of a case usually share their context: when they share at least
/// `MIN_SHARED_PREFIX` tokens, the shared part is run once per case and its keys and values are
/// copied to each option's row of the cache, then only the options' own tokens are run. The
/// other sequences are run whole.
fn score_sequences(
    backend: &CandleBackend,
    sequences: &[Sequence],
) -> candle_core::Result<Vec<f64>> {
    let model = backend.decoder().map_err(candle_core::Error::msg)?;
    let pad = backend.specials.eos.unwrap_or(0);
    let mut out = vec![0.0; sequences.len()];
    let mut by_case: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, s) in sequences.iter().enumerate() {
        by_case.entry(s.case).or_default().push(i);
    }
    let mut plain = Vec::new();
    let mut shared = Vec::new();
    for (_, members) in by_case {
        let prefix = shared_prefix(sequences, &members);
        if members.len() >= 2 && prefix >= MIN_SHARED_PREFIX {
            shared.push((prefix, members));
        } else {
            plain.extend(members);
        }
    }
    score_whole(model, sequences, &mut plain, pad, &mut out)?;
    score_shared(model, sequences, &mut shared, pad, &mut out)?;
    Ok(out)
}

/// Shared prefixes shorter than this are run once per option (copying a cache costs more).
const MIN_SHARED_PREFIX: usize = 8;

/// The number of leading tokens the sequences of one case can run once: their common prefix,
/// leaving every sequence at least one input of its own. The outputs at shared positions serve
/// every option (CrowS-Pairs sentences share their start, and some of those tokens are scored).
fn shared_prefix(sequences: &[Sequence], members: &[usize]) -> usize {
    let first = &sequences[members[0]].tokens;
    let mut common = first.len();
    let mut shortest = first.len();
    for &m in &members[1..] {
        let other = &sequences[m].tokens;
        common = common.min(first.iter().zip(other).take_while(|(a, b)| a == b).count());
        shortest = shortest.min(other.len());
    }
    common.min(shortest.saturating_sub(2))
}

/// The log-probabilities of `targets` predicted by the hidden states at the flat positions
/// `flat` of `hidden` (`(B, T, d)`), with the LM head applied only there.
fn head_logprobs(
    model: &super::model::Model,
    hidden: &candle_core::Tensor,
    flat: &[u32],
    targets: &[u32],
) -> candle_core::Result<Vec<f64>> {
    if flat.is_empty() {
        return Ok(Vec::new());
    }
    let head_rows = ((1usize << 25) / model.cfg.vocab.max(1)).max(16);
    let mut logprobs = Vec::with_capacity(flat.len());
    for (f, t) in flat.chunks(head_rows).zip(targets.chunks(head_rows)) {
        let h = model.gather_rows(hidden, f)?;
        let logits = model.logits(&h)?;
        logprobs.extend(target_logprobs(&logits, t)?);
    }
    Ok(logprobs)
}

/// Runs sequences whole: sorted by length, right-padded, up to `TOKENS_PER_FORWARD` padded
/// tokens per forward pass.
fn score_whole(
    model: &super::model::Model,
    sequences: &[Sequence],
    order: &mut [usize],
    pad: u32,
    out: &mut [f64],
) -> candle_core::Result<()> {
    order.sort_by(|&a, &b| {
        let (a, b) = (&sequences[a], &sequences[b]);
        b.tokens
            .len()
            .cmp(&a.tokens.len())
            .then(a.case.cmp(&b.case))
            .then(a.option.cmp(&b.option))
    });
    let mut start = 0;
    while start < order.len() {
        let longest = sequences[order[start]].tokens.len() - 1;
        let rows = (TOKENS_PER_FORWARD / longest.max(1)).clamp(1, 256);
        let end = (start + rows).min(order.len());
        let chunk: Vec<&Sequence> = order[start..end].iter().map(|&i| &sequences[i]).collect();
        let tokens: Vec<Vec<u32>> = chunk
            .iter()
            .map(|s| {
                let mut input = s.tokens[..s.tokens.len() - 1].to_vec();
                input.resize(longest, pad);
                input
            })
            .collect();
        let positions: Vec<Vec<Option<u32>>> = chunk
            .iter()
            .map(|_| (0..longest as u32).map(Some).collect())
            .collect();
        let mut cache = Cache::new(model.cfg.n_layers, chunk.len(), longest);
        let hidden = model.forward(&tokens, &positions, &mut cache)?;
        let mut flat = Vec::new();
        let mut targets = Vec::new();
        for (row, s) in chunk.iter().enumerate() {
            let n = s.tokens.len();
            for p in n - s.n_option..n {
                flat.push((row * longest + p - 1) as u32);
                targets.push(s.tokens[p]);
            }
        }
        let logprobs = head_logprobs(model, &hidden, &flat, &targets)?;
        let mut k = 0;
        for &i in &order[start..end] {
            let n = sequences[i].n_option;
            out[i] = logprobs[k..k + n].iter().sum();
            k += n;
        }
        start = end;
    }
    Ok(())
}

/// Runs cases whose options share a prefix: the prefixes of a chunk of cases, left-padded, in
/// one pass; the cache rows copied to each option; then the options' remaining tokens,
/// right-padded, in a second pass that attends to the prefix's keys.
fn score_shared(
    model: &super::model::Model,
    sequences: &[Sequence],
    groups: &mut [(usize, Vec<usize>)],
    pad: u32,
    out: &mut [f64],
) -> candle_core::Result<()> {
    groups.sort_by(|a, b| b.0.cmp(&a.0).then(a.1[0].cmp(&b.1[0])));
    // The suffix inputs of option `i` of a case with prefix `p`: tokens[p..len - 1].
    let suffix_len = |p: usize, i: usize| sequences[i].tokens.len() - 1 - p;
    let mut start = 0;
    while start < groups.len() {
        let prefix_len = groups[start].0;
        let mut end = start;
        let mut rows = 0;
        let mut longest_suffix = 0;
        while end < groups.len() {
            let (p, members) = &groups[end];
            let suffix = members
                .iter()
                .map(|&i| suffix_len(*p, i))
                .max()
                .unwrap_or(0)
                .max(longest_suffix);
            let n = rows + members.len();
            if end > start && (n > 256 || n * (prefix_len + suffix) > TOKENS_PER_FORWARD) {
                break;
            }
            rows = n;
            longest_suffix = suffix;
            end += 1;
        }
        let chunk = &groups[start..end];
        // Pass 1: one left-padded prefix per case.
        let tokens: Vec<Vec<u32>> = chunk
            .iter()
            .map(|(p, members)| {
                let mut row = vec![pad; prefix_len - p];
                row.extend_from_slice(&sequences[members[0]].tokens[..*p]);
                row
            })
            .collect();
        let positions: Vec<Vec<Option<u32>>> = chunk
            .iter()
            .map(|(p, _)| {
                (0..prefix_len)
                    .map(|i| i.checked_sub(prefix_len - p).map(|q| q as u32))
                    .collect()
            })
            .collect();
        let mut cache = Cache::new(model.cfg.n_layers, chunk.len(), prefix_len + longest_suffix);
        let prefix_hidden = model.forward(&tokens, &positions, &mut cache)?;
        // Every option gets a copy of its case's prefix.
        let owners: Vec<usize> = chunk
            .iter()
            .enumerate()
            .flat_map(|(g, (_, members))| std::iter::repeat_n(g, members.len()))
            .collect();
        cache.retain_rows(&owners, &model.device)?;
        // Pass 2: each option's own inputs, right-padded, at positions after its prefix.
        let mut tokens = Vec::with_capacity(rows);
        let mut positions = Vec::with_capacity(rows);
        // Scored tokens predicted inside the prefix come from pass 1 (row of the case), the
        // others from pass 2 (row of the option); each list records whose sum it adds to.
        let mut flat = Vec::new();
        let mut targets = Vec::new();
        let mut order = Vec::new();
        let mut shared_flat = Vec::new();
        let mut shared_targets = Vec::new();
        let mut shared_owner = Vec::new();
        for (g, (p, members)) in chunk.iter().enumerate() {
            for &i in members {
                let s = &sequences[i];
                let n = s.tokens.len();
                let mut input = s.tokens[*p..n - 1].to_vec();
                input.resize(longest_suffix, pad);
                let row = tokens.len();
                tokens.push(input);
                positions.push((0..longest_suffix).map(|j| Some((p + j) as u32)).collect());
                out[i] = 0.0;
                for q in n - s.n_option..n {
                    if q - 1 < *p {
                        shared_flat.push((g * prefix_len + prefix_len - p + q - 1) as u32);
                        shared_targets.push(s.tokens[q]);
                        shared_owner.push(i);
                    } else {
                        flat.push((row * longest_suffix + q - 1 - p) as u32);
                        targets.push(s.tokens[q]);
                        order.push(i);
                    }
                }
            }
        }
        let hidden = model.forward(&tokens, &positions, &mut cache)?;
        let logprobs = head_logprobs(model, &hidden, &flat, &targets)?;
        let shared_logprobs = head_logprobs(model, &prefix_hidden, &shared_flat, &shared_targets)?;
        for (k, i) in order.into_iter().enumerate() {
            out[i] += logprobs[k];
        }
        for (k, i) in shared_owner.into_iter().enumerate() {
            out[i] += shared_logprobs[k];
        }
        start = end;
    }
    Ok(())
}
