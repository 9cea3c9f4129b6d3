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
//! positions that predict option tokens.

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
    let scores = score_sequences(backend, &mut sequences).map_err(|e| {
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

/// Scores sequences (sorted in place, longest first) and returns the sums in that order.
fn score_sequences(
    backend: &CandleBackend,
    sequences: &mut [Sequence],
) -> candle_core::Result<Vec<f64>> {
    sequences.sort_by(|a, b| {
        b.tokens
            .len()
            .cmp(&a.tokens.len())
            .then(a.case.cmp(&b.case))
    });
    let model = backend.decoder().map_err(candle_core::Error::msg)?;
    let pad = backend.specials.eos.unwrap_or(0);
    let head_rows = (1usize << 25) / model.cfg.vocab.max(1);
    let mut out = Vec::with_capacity(sequences.len());
    let mut start = 0;
    while start < sequences.len() {
        let longest = sequences[start].tokens.len() - 1;
        let rows = (TOKENS_PER_FORWARD / longest.max(1)).clamp(1, 256);
        let end = (start + rows).min(sequences.len());
        let chunk = &sequences[start..end];
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
        let mut cache = Cache::new(model.cfg.n_layers, chunk.len());
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
        let mut logprobs = Vec::with_capacity(flat.len());
        for (f, t) in flat
            .chunks(head_rows.max(16))
            .zip(targets.chunks(head_rows.max(16)))
        {
            let h = model.gather_rows(&hidden, f)?;
            let logits = model.logits(&h)?;
            logprobs.extend(target_logprobs(&logits, t)?);
        }
        let mut k = 0;
        for s in chunk {
            out.push(logprobs[k..k + s.n_option].iter().sum());
            k += s.n_option;
        }
        start = end;
    }
    Ok(out)
}
