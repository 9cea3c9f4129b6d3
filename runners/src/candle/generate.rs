//! Chat queries: the chat template renders the conversation, then a batch of prompts is decoded
//! together with a KV cache.
//!
//! Prompts are left-padded; padding keys are masked and every row keeps its own positions, so a
//! row decodes as it would alone. A row stops at a stop token (EOS, `<|im_end|>`, …), a stop
//! string, `max_new_tokens` or the context window, and then leaves the batch. Sampling draws
//! from a ChaCha generator seeded per case (`audit_core::case_seed`), one draw per token, so an
//! answer does not depend on the batch it was in.

use audit_core::{case_seed, Answer, BackendError, Case, Generation, Query};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::Cache;
use super::CandleBackend;

/// The state of one row being decoded.
struct Row {
    case: usize,
    prompt: Vec<u32>,
    generated: Vec<u32>,
    budget: usize,
    rng: ChaCha8Rng,
    /// The text, cut at a stop string, once one has appeared.
    stopped_text: Option<String>,
}

pub(crate) fn answer(
    backend: &CandleBackend,
    batch: &[&Case],
    generation: &Generation,
) -> Result<Vec<Answer>, BackendError> {
    let context_len = backend.context_len();
    let mut answers: Vec<Option<Answer>> = vec![None; batch.len()];
    let mut rows = Vec::new();
    for (index, case) in batch.iter().enumerate() {
        let Query::Chat {
            system,
            history,
            prompt,
        } = &case.query
        else {
            answers[index] = Some(Answer::Error("not a chat query".into()));
            continue;
        };
        let ids = backend
            .render_chat(system.as_deref(), history, prompt)
            .and_then(|text| backend.encode(&text));
        match ids {
            Err(reason) => answers[index] = Some(Answer::Error(reason)),
            Ok(ids) if ids.is_empty() => {
                answers[index] = Some(Answer::Error("the prompt has no tokens".into()))
            }
            Ok(ids) if ids.len() >= context_len => {
                answers[index] = Some(Answer::Error(format!(
                    "the prompt has {} tokens; the context window is {context_len}",
                    ids.len()
                )))
            }
            Ok(ids) => {
                let budget = generation.max_new_tokens.min(context_len - ids.len());
                rows.push(Row {
                    case: index,
                    prompt: ids,
                    generated: Vec::new(),
                    budget,
                    rng: ChaCha8Rng::seed_from_u64(case_seed(generation.seed, &case.id)),
                    stopped_text: None,
                })
            }
        }
    }
    let finished = decode(backend, rows, generation).map_err(|e| {
        BackendError(format!(
            "candle generation failed: {}",
            super::gguf::one_line(e)
        ))
    })?;
    let generated: usize = finished.iter().map(|row| row.generated.len()).sum();
    backend
        .generated_tokens
        .fetch_add(generated as u64, std::sync::atomic::Ordering::Relaxed);
    for row in finished {
        let text = match row.stopped_text {
            Some(text) => Ok(text),
            None => backend.decode(&row.generated),
        };
        answers[row.case] = Some(match text {
            Ok(text) => Answer::Response(text),
            Err(reason) => Answer::Error(format!("decoding the answer: {reason}")),
        });
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Answer::Error("no answer was produced".into())))
        .collect())
}

/// Continues raw token ids (no chat template): one seed per prompt; returns the generated ids
/// without the stop token.
pub(crate) fn complete(
    backend: &CandleBackend,
    prompts: &[Vec<u32>],
    generation: &Generation,
    seeds: &[u64],
) -> Result<Vec<Vec<u32>>, String> {
    let context_len = backend.context_len();
    let mut rows = Vec::with_capacity(prompts.len());
    for (case, (prompt, seed)) in prompts.iter().zip(seeds).enumerate() {
        if prompt.is_empty() || prompt.len() >= context_len {
            return Err(format!(
                "prompt {case} has {} tokens; it needs 1 to {} tokens",
                prompt.len(),
                context_len.saturating_sub(1)
            ));
        }
        rows.push(Row {
            case,
            prompt: prompt.clone(),
            generated: Vec::new(),
            budget: generation.max_new_tokens.min(context_len - prompt.len()),
            rng: ChaCha8Rng::seed_from_u64(*seed),
            stopped_text: None,
        });
    }
    let done = decode(backend, rows, generation).map_err(super::gguf::one_line)?;
    Ok(done.into_iter().map(|r| r.generated).collect())
}

/// Decodes every row to its end and returns the rows, finished.
fn decode(
    backend: &CandleBackend,
    rows: Vec<Row>,
    generation: &Generation,
) -> candle_core::Result<Vec<Row>> {
    let model = backend.decoder().map_err(candle_core::Error::msg)?;
    let mut done = Vec::with_capacity(rows.len());
    let (mut rows, empty): (Vec<Row>, Vec<Row>) = rows.into_iter().partition(|r| r.budget > 0);
    done.extend(empty);
    if rows.is_empty() {
        return Ok(done);
    }
    let longest = rows.iter().map(|r| r.prompt.len()).max().unwrap_or(0);
    let pad = backend.specials.eos.unwrap_or(0);
    let tokens: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| {
            let mut t = vec![pad; longest - r.prompt.len()];
            t.extend_from_slice(&r.prompt);
            t
        })
        .collect();
    let positions: Vec<Vec<Option<u32>>> = rows
        .iter()
        .map(|r| {
            let pad_len = longest - r.prompt.len();
            (0..longest)
                .map(|i| i.checked_sub(pad_len).map(|p| p as u32))
                .collect()
        })
        .collect();
    let most_new = rows.iter().map(|r| r.budget).max().unwrap_or(0);
    let mut cache = Cache::new(model.cfg.n_layers, rows.len(), longest + most_new);
    let hidden = model.forward(&tokens, &positions, &mut cache)?;
    let last: Vec<u32> = (0..rows.len())
        .map(|r| (r * longest + longest - 1) as u32)
        .collect();
    let mut logits = model.logits(&model.gather_rows(&hidden, &last)?)?;
    loop {
        // Greedy picks are taken on the device (argmax keeps the lowest id on ties, as
        // `sample` does) instead of copying every row's logits out.
        let picks: Vec<u32> = if is_greedy(generation) {
            logits.argmax(candle_core::D::Minus1)?.to_vec1::<u32>()?
        } else {
            logits
                .to_vec2::<f32>()?
                .iter()
                .zip(rows.iter_mut())
                .map(|(scores, row)| sample(scores, generation, &mut row.rng))
                .collect()
        };
        let mut keep = Vec::with_capacity(rows.len());
        let mut still = Vec::with_capacity(rows.len());
        for (index, (mut row, next)) in rows.into_iter().zip(picks).enumerate() {
            let stop_token = backend.specials.stop_ids.contains(&next);
            if !stop_token {
                row.generated.push(next);
            }
            let mut finished = stop_token || row.generated.len() >= row.budget;
            if !generation.stop.is_empty() && !stop_token {
                let text = backend.decode(&row.generated).unwrap_or_default();
                if let Some(cut) = generation
                    .stop
                    .iter()
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| text.find(s.as_str()))
                    .min()
                {
                    row.stopped_text = Some(text[..cut].to_string());
                    finished = true;
                }
            }
            if finished {
                done.push(row);
            } else {
                keep.push(index);
                still.push(row);
            }
        }
        rows = still;
        if rows.is_empty() {
            break;
        }
        if keep.len() != cache.n_rows() {
            cache.retain_rows(&keep, &model.device)?;
        }
        let tokens: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| vec![*r.generated.last().unwrap_or(&pad)])
            .collect();
        let positions: Vec<Vec<Option<u32>>> = rows
            .iter()
            .map(|r| vec![Some((r.prompt.len() + r.generated.len() - 1) as u32)])
            .collect();
        let hidden = model.forward(&tokens, &positions, &mut cache)?;
        let (b, _, d) = hidden.dims3()?;
        logits = model.logits(&hidden.reshape((b, d))?)?;
    }
    done.sort_by_key(|r| r.case);
    Ok(done)
}

/// Whether `sample` is an argmax for these settings.
fn is_greedy(generation: &Generation) -> bool {
    generation.temperature <= 0.0 || !generation.temperature.is_finite()
}

/// Picks the next token: argmax when `temperature` is 0, else a draw from the temperature-scaled
/// distribution restricted to the top-k tokens and the top-p nucleus (transformers' order:
/// temperature, top-k, top-p).
pub(crate) fn sample(logits: &[f32], generation: &Generation, rng: &mut ChaCha8Rng) -> u32 {
    if logits.is_empty() {
        return 0;
    }
    if is_greedy(generation) {
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        return best as u32;
    }
    // Tokens more than 40 nats (after temperature) below the best have weight under 1e-17 of
    // it; leaving them out before sorting keeps a 262k vocabulary cheap.
    let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let floor = f64::from(top) - 40.0 * generation.temperature;
    let mut order: Vec<usize> = (0..logits.len())
        .filter(|&i| f64::from(logits[i]) >= floor)
        .collect();
    if order.is_empty() {
        order = (0..logits.len()).collect();
    }
    order.sort_by(|&a, &b| {
        logits[b]
            .partial_cmp(&logits[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    if let Some(k) = generation.top_k.filter(|&k| k > 0) {
        order.truncate(k);
    }
    let max = order.first().map_or(0.0, |&i| f64::from(logits[i]));
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((f64::from(logits[i]) - max) / generation.temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut n = weights.len();
    if generation.top_p < 1.0 {
        let mut cumulative = 0.0;
        for (i, w) in weights.iter().enumerate() {
            cumulative += w / total;
            if cumulative >= generation.top_p {
                n = i + 1;
                break;
            }
        }
    }
    let kept: f64 = weights[..n].iter().sum();
    let mut u = rng.gen::<f64>() * kept;
    for (i, w) in weights[..n].iter().enumerate() {
        if u < *w {
            return order[i] as u32;
        }
        u -= w;
    }
    order.get(n.saturating_sub(1)).map_or(0, |&i| i as u32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn draw(logits: &[f32], generation: &Generation, seed: u64, n: usize) -> Vec<u32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| sample(logits, generation, &mut rng))
            .collect()
    }

    #[test]
    fn greedy_is_argmax_with_lowest_id_on_ties() {
        let g = Generation::default();
        assert_eq!(draw(&[0.0, 2.0, 2.0, 1.0], &g, 0, 1), [1]);
        assert_eq!(draw(&[], &g, 0, 1), [0]);
    }

    #[test]
    fn sampling_is_seeded_and_respects_top_k_and_top_p() {
        let logits = [1.0, 0.5, 0.0, -0.5, -1.0];
        let g = Generation {
            temperature: 1.0,
            ..Generation::default()
        };
        assert_eq!(draw(&logits, &g, 7, 50), draw(&logits, &g, 7, 50));
        assert_ne!(draw(&logits, &g, 7, 50), draw(&logits, &g, 8, 50));
        let all = draw(&logits, &g, 1, 2000);
        assert!((0..5).all(|t| all.contains(&t)));
        let top2 = Generation {
            top_k: Some(2),
            ..g.clone()
        };
        assert!(draw(&logits, &top2, 1, 500).iter().all(|&t| t < 2));
        let nucleus = Generation {
            top_p: 0.3,
            ..g.clone()
        };
        assert!(draw(&logits, &nucleus, 1, 500).iter().all(|&t| t == 0));
    }
}
