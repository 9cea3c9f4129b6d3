//! Masked language models (BERT with its MLM head): a `Choice` is scored by pseudo-log-likelihood
//! as the CrowS-Pairs paper does for masked LMs (Nangia et al. 2020, metric.py `mask_unigram`).
//!
//! For options `[s1, s2]` (the context must be empty): both are tokenized with their special
//! tokens, the token ids are aligned with Python's `difflib.SequenceMatcher(None, ids1, ids2)`
//! (ported below, autojunk included, because metric.py's notion of "unmodified tokens" is exactly
//! difflib's `equal` blocks), and each sentence's score is `Σ log p(t_i | sentence with t_i
//! masked)` over the aligned tokens except the first and the last aligned one ([CLS] and [SEP]).
//! One option alone scores every token but the first and the last. The option order is the
//! alignment order: metric.py aligns (sent1, sent2), which is (sent_more, sent_less) for stereo
//! pairs and (sent_less, sent_more) for anti-stereo ones; difflib's result can depend on the order
//! only through ties between equally long matches.
//!
//! Each sentence is one batch of masked copies (chunked), and the MLM head runs only at the
//! masked positions (BERT's vocabulary is 30k: the head over every position of every copy would
//! be most of the work and memory); log-softmax in f64.

use std::collections::HashMap;

use audit_core::{Answer, Case, Query};
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_transformers::models::bert::{BertModel, BertOnlyMLMHead};

/// The encoder, its MLM head and what scoring needs.
pub(crate) struct MaskedLm {
    pub bert: BertModel,
    pub head: BertOnlyMLMHead,
    pub mask_id: u32,
    pub max_len: usize,
    pub device: Device,
}

/// Masked copies per forward pass.
const CHUNK: usize = 64;

impl MaskedLm {
    /// `Σ log p(ids[p] | ids with p masked)` over `positions`.
    pub fn pseudo_log_likelihood(
        &self,
        ids: &[u32],
        positions: &[usize],
    ) -> candle_core::Result<f64> {
        let t = ids.len();
        let mut total = 0.0;
        for chunk in positions.chunks(CHUNK) {
            let rows = chunk.len();
            let mut flat = Vec::with_capacity(rows * t);
            for &p in chunk {
                flat.extend(
                    ids.iter()
                        .enumerate()
                        .map(|(i, &id)| if i == p { self.mask_id } else { id }),
                );
            }
            let input = Tensor::from_vec(flat, (rows, t), &self.device)?;
            let types = input.zeros_like()?;
            let mask = input.ones_like()?;
            let hidden = self.bert.forward(&input, &types, Some(&mask))?;
            // The hidden state of each row at its masked position: (rows, hidden).
            let picked = chunk
                .iter()
                .enumerate()
                .map(|(r, &p)| hidden.i((r, p)))
                .collect::<candle_core::Result<Vec<Tensor>>>()?;
            let logits = self
                .head
                .forward(&Tensor::stack(&picked, 0)?)?
                .to_dtype(DType::F32)?
                .to_vec2::<f32>()?;
            for (row, &p) in logits.iter().zip(chunk) {
                let max = row
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
                let log_sum = row
                    .iter()
                    .map(|&v| (f64::from(v) - max).exp())
                    .sum::<f64>()
                    .ln()
                    + max;
                total += f64::from(row[ids[p] as usize]) - log_sum;
            }
        }
        Ok(total)
    }
}

/// `difflib.SequenceMatcher(None, a, b).get_matching_blocks()`, without the final `(la, lb, 0)`:
/// `(i, j, size)` with `a[i..i+size] == b[j..j+size]`, in order. Written by hand because metric.py
/// defines the unmodified tokens by this exact algorithm (longest matches first, ties to the
/// earliest in `a` then in `b`, and for `b` of 200 items or more, items occurring more than
/// `len(b)/100 + 1` times are "popular": never the seed of a match, only extended into).
pub fn matching_blocks(a: &[u32], b: &[u32]) -> Vec<(usize, usize, usize)> {
    let mut b2j: HashMap<u32, Vec<usize>> = HashMap::new();
    for (j, &x) in b.iter().enumerate() {
        b2j.entry(x).or_default().push(j);
    }
    if b.len() >= 200 {
        let limit = b.len() / 100 + 1;
        b2j.retain(|_, js| js.len() <= limit);
    }
    let mut queue = vec![(0, a.len(), 0, b.len())];
    let mut blocks = Vec::new();
    while let Some((alo, ahi, blo, bhi)) = queue.pop() {
        let (i, j, k) = longest_match(a, b, &b2j, alo, ahi, blo, bhi);
        if k > 0 {
            blocks.push((i, j, k));
            if alo < i && blo < j {
                queue.push((alo, i, blo, j));
            }
            if i + k < ahi && j + k < bhi {
                queue.push((i + k, ahi, j + k, bhi));
            }
        }
    }
    blocks.sort_unstable();
    // Collapse adjacent blocks.
    let mut merged: Vec<(usize, usize, usize)> = Vec::new();
    for (i, j, k) in blocks {
        match merged.last_mut() {
            Some(last) if last.0 + last.2 == i && last.1 + last.2 == j => last.2 += k,
            _ => merged.push((i, j, k)),
        }
    }
    merged
}

/// difflib's `find_longest_match` (no junk function, so only the non-junk extension applies).
fn longest_match(
    a: &[u32],
    b: &[u32],
    b2j: &HashMap<u32, Vec<usize>>,
    alo: usize,
    ahi: usize,
    blo: usize,
    bhi: usize,
) -> (usize, usize, usize) {
    let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0);
    let mut j2len: HashMap<usize, usize> = HashMap::new();
    for (i, x) in a.iter().enumerate().take(ahi).skip(alo) {
        let mut next: HashMap<usize, usize> = HashMap::new();
        if let Some(js) = b2j.get(x) {
            for &j in js {
                if j < blo {
                    continue;
                }
                if j >= bhi {
                    break;
                }
                let k = j
                    .checked_sub(1)
                    .and_then(|p| j2len.get(&p))
                    .copied()
                    .unwrap_or(0)
                    + 1;
                next.insert(j, k);
                if k > bestsize {
                    (besti, bestj, bestsize) = (i + 1 - k, j + 1 - k, k);
                }
            }
        }
        j2len = next;
    }
    while besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1] {
        (besti, bestj, bestsize) = (besti - 1, bestj - 1, bestsize + 1);
    }
    while besti + bestsize < ahi
        && bestj + bestsize < bhi
        && a[besti + bestsize] == b[bestj + bestsize]
    {
        bestsize += 1;
    }
    (besti, bestj, bestsize)
}

/// metric.py's `get_span`: the positions of both sequences inside difflib's `equal` blocks.
pub fn aligned_positions(a: &[u32], b: &[u32]) -> (Vec<usize>, Vec<usize>) {
    let mut left = Vec::new();
    let mut right = Vec::new();
    for (i, j, k) in matching_blocks(a, b) {
        left.extend(i..i + k);
        right.extend(j..j + k);
    }
    (left, right)
}

/// The inner positions of an alignment: all but its first and last (metric.py's
/// `range(1, N - 1)`, which skips [CLS] and [SEP]).
fn inner(positions: &[usize]) -> &[usize] {
    if positions.len() < 2 {
        &[]
    } else {
        &positions[1..positions.len() - 1]
    }
}

/// The answers of a batch of Choice cases.
pub(crate) fn answer(
    model: &MaskedLm,
    tokenizer: &tokenizers::Tokenizer,
    name: &str,
    batch: &[&Case],
) -> Vec<Answer> {
    batch
        .iter()
        .map(|case| match score(model, tokenizer, &case.query) {
            Ok(values) => Answer::Logprobs(values),
            Err(reason) => Answer::Error(format!("{name}: {reason}")),
        })
        .collect()
}

fn score(
    model: &MaskedLm,
    tokenizer: &tokenizers::Tokenizer,
    query: &Query,
) -> Result<Vec<f64>, String> {
    let Query::Choice { context, options } = query else {
        return Err("a masked LM answers choice queries only".into());
    };
    if !context.is_empty() {
        return Err("a masked LM scores whole sentences: the choice context must be empty".into());
    }
    let ids = options
        .iter()
        .map(|o| {
            tokenizer
                .encode(o.as_str(), true)
                .map(|e| e.get_ids().to_vec())
                .map_err(super::gguf::one_line)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(long) = ids.iter().find(|s| s.len() > model.max_len) {
        return Err(format!(
            "{} tokens, more than the model's {} positions",
            long.len(),
            model.max_len
        ));
    }
    let positions: Vec<Vec<usize>> = match &ids[..] {
        [one] => vec![(0..one.len()).collect()],
        [first, second] => {
            let (left, right) = aligned_positions(first, second);
            vec![left, right]
        }
        _ => {
            return Err(format!(
                "masked-LM scoring compares one or two sentences (CrowS-Pairs), not {}",
                ids.len()
            ))
        }
    };
    ids.iter()
        .zip(&positions)
        .map(|(s, p)| {
            model
                .pseudo_log_likelihood(s, inner(p))
                .map_err(super::gguf::one_line)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_blocks_of_hand_made_sequences() {
        // [CLS] the man is tall [SEP] vs [CLS] the woman is tall [SEP].
        let a = [2, 10, 11, 12, 13, 3];
        let b = [2, 10, 14, 12, 13, 3];
        assert_eq!(matching_blocks(&a, &b), vec![(0, 0, 2), (3, 3, 3)]);
        let (l, r) = aligned_positions(&a, &b);
        assert_eq!(l, vec![0, 1, 3, 4, 5]);
        assert_eq!(r, vec![0, 1, 3, 4, 5]);
        assert_eq!(inner(&l), &[1, 3, 4]);
        // An insertion shifts the right side's positions.
        let c = [2, 10, 20, 21, 12, 13, 3];
        assert_eq!(aligned_positions(&a, &c).1, vec![0, 1, 4, 5, 6]);
        // Ties between equally long matches go to the earliest in `a`, then in `b`.
        assert_eq!(matching_blocks(&[1, 2, 1, 2], &[1, 2]), vec![(0, 0, 2)]);
        assert!(matching_blocks(&[1], &[2]).is_empty());
        assert!(matching_blocks(&[], &[2]).is_empty());
    }
}
