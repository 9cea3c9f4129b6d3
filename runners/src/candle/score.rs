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
//! Every sequence of a call (context + option, of every case) goes into one prefix tree, so a
//! token sequence that several of them start with runs once: the context shared by a case's
//! options (BBQ, StereoSet, WinoBias), the start of a minimal pair (CrowS-Pairs), and what
//! different cases happen to share (a BBQ context asked two questions, a sentence's first
//! words). The tree is cut into rows of about `ROW_TOKENS` nodes, in depth-first order; a row
//! holds a run of that order plus the ancestors of its first node, and each node attends to its
//! ancestors and itself, at its depth as its position. The LM head runs once per node that
//! predicts scored tokens, however many sequences continue from it.

use audit_core::{Answer, BackendError, Case, Query};

use super::model::{picked_logprobs, Model, TreeMasks};
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

/// Tokens per packed row, unless one sequence is longer: long enough that most rows start at
/// a shallow node (little of the tree is repeated), short enough that attention within a row
/// stays a small part of the work. Measured on 1,024 CrowS-Pairs sentences (SmolLM2, 2 threads,
/// tokens/s): 64 → 1031, 96 → 1113, 128 → 1057–1086, 160 → 1010, 192 → 955, 256 → 877.
const ROW_TOKENS: usize = 96;

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
fn score_sequences(
    backend: &CandleBackend,
    sequences: &[Sequence],
) -> candle_core::Result<Vec<f64>> {
    let model = backend.decoder().map_err(candle_core::Error::msg)?;
    score_tree(model, backend.specials.eos.unwrap_or(0), sequences)
}

/// `score_sequences` on a decoder, with `pad` filling rows out to their batch's width.
fn score_tree(model: &Model, pad: u32, sequences: &[Sequence]) -> candle_core::Result<Vec<f64>> {
    let tree = Tree::new(sequences);
    let longest = tree.depth.iter().max().map_or(0, |d| d + 1);
    let rows = tree.rows(ROW_TOKENS.max(longest));
    // Each row's nodes, longest rows first, batched up to TOKENS_PER_FORWARD padded tokens.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[b].len().cmp(&rows[a].len()).then(a.cmp(&b)));
    let mut out = vec![0.0; sequences.len()];
    let mut start = 0;
    while start < order.len() {
        let width = rows[order[start]].len();
        let n = (TOKENS_PER_FORWARD / width.max(1)).clamp(1, 256);
        let end = (start + n).min(order.len());
        let batch: Vec<&Row> = order[start..end].iter().map(|&r| &rows[r]).collect();
        score_rows(model, &tree, &batch, width, pad, &mut out)?;
        start = end;
    }
    Ok(out)
}

/// The inputs of every sequence (its tokens but the last) as a prefix tree, and the tokens each
/// node must predict.
struct Tree {
    token: Vec<u32>,
    parent: Vec<Option<usize>>,
    /// Ancestors above the node: its position in every sequence through it.
    depth: Vec<usize>,
    /// Nodes in depth-first order (children in the order they were first seen).
    preorder: Vec<usize>,
    /// Per node: the (sequence, target token) pairs it predicts.
    predicts: Vec<Vec<(usize, u32)>>,
}

impl Tree {
    fn new(sequences: &[Sequence]) -> Tree {
        let mut tree = Tree {
            token: Vec::new(),
            parent: Vec::new(),
            depth: Vec::new(),
            preorder: Vec::new(),
            predicts: Vec::new(),
        };
        let mut children: Vec<Vec<usize>> = Vec::new();
        let mut roots = Vec::new();
        let mut index: std::collections::HashMap<(Option<usize>, u32), usize> = Default::default();
        for (i, s) in sequences.iter().enumerate() {
            let n = s.tokens.len();
            let mut at: Option<usize> = None;
            for (p, &token) in s.tokens[..n - 1].iter().enumerate() {
                let node = *index.entry((at, token)).or_insert_with(|| {
                    let node = tree.token.len();
                    tree.token.push(token);
                    tree.parent.push(at);
                    tree.depth.push(p);
                    tree.predicts.push(Vec::new());
                    children.push(Vec::new());
                    match at {
                        Some(parent) => children[parent].push(node),
                        None => roots.push(node),
                    }
                    node
                });
                // Node at input p predicts token p + 1, scored when it is an option token.
                if p + 1 >= n - s.n_option {
                    tree.predicts[node].push((i, s.tokens[p + 1]));
                }
                at = Some(node);
            }
        }
        let mut stack: Vec<usize> = roots.into_iter().rev().collect();
        while let Some(node) = stack.pop() {
            tree.preorder.push(node);
            stack.extend(children[node].iter().rev());
        }
        tree
    }

    /// Cuts the depth-first order into runs, each with at most `capacity` nodes together with
    /// the ancestors of its first node (which precede it in the order, so every node of a run
    /// finds all its ancestors in the row). Where a run could end is chosen to fill this row
    /// and leave the next row a shallow first node: the end `b` maximizing
    /// `(b - a) - depth(b)`, the later on ties.
    fn rows(&self, capacity: usize) -> Vec<Row> {
        let n = self.preorder.len();
        let depth_at = |b: usize| {
            if b == n {
                0
            } else {
                self.depth[self.preorder[b]]
            }
        };
        let mut rows = Vec::new();
        let mut a = 0;
        while a < n {
            let first = self.preorder[a];
            let last = (a + capacity - self.depth[first]).min(n);
            let b = (a + 1..=last)
                .max_by_key(|&b| (b - a) as isize - depth_at(b) as isize)
                .unwrap_or(last);
            let mut ancestors = Vec::with_capacity(self.depth[first]);
            let mut at = self.parent[first];
            while let Some(node) = at {
                ancestors.push(node);
                at = self.parent[node];
            }
            ancestors.reverse();
            rows.push(Row {
                ancestors,
                run: self.preorder[a..b].to_vec(),
            });
            a = b;
        }
        rows
    }
}

/// One packed row: the ancestors of its run's first node (already scored in an earlier row),
/// then the run.
struct Row {
    ancestors: Vec<usize>,
    run: Vec<usize>,
}

impl Row {
    fn len(&self) -> usize {
        self.ancestors.len() + self.run.len()
    }

    fn nodes(&self) -> impl Iterator<Item = usize> + '_ {
        self.ancestors.iter().chain(&self.run).copied()
    }
}

/// Runs one batch of rows, right-padded to `width`, and adds each scored token's log-prob to
/// its sequence's sum.
fn score_rows(
    model: &Model,
    tree: &Tree,
    rows: &[&Row],
    width: usize,
    pad: u32,
    out: &mut [f64],
) -> candle_core::Result<()> {
    let window = model
        .cfg
        .sliding_window
        .filter(|&w| rows.iter().any(|r| r.len() > w));
    let mut tokens = Vec::with_capacity(rows.len());
    let mut positions = Vec::with_capacity(rows.len());
    // Hidden keys get -inf rather than model::MASKED: glibc's expf returns 0 for -inf at once
    // but takes its slow underflow path (`__math_uflowf`) for any other x below -104, and most
    // of a packed row is hidden. No query may then see no key
    // at all (its softmax would be NaN, and NaN keys poison the rows that hide them with
    // weight 0), so each padding slot sees itself.
    let mut global = vec![f32::NEG_INFINITY; rows.len() * width * width];
    let mut local = window.map(|_| vec![f32::NEG_INFINITY; rows.len() * width * width]);
    for (r, row) in rows.iter().enumerate() {
        for slot in row.len()..width {
            let diagonal = (r * width + slot) * width + slot;
            global[diagonal] = 0.0;
            if let Some(local) = local.as_mut() {
                local[diagonal] = 0.0;
            }
        }
    }
    // Flat positions whose hidden state predicts scored tokens, and the picks from each.
    let mut heads: Vec<u32> = Vec::new();
    let mut picks: Vec<(u32, u32, usize)> = Vec::new();
    let mut slot_of: std::collections::HashMap<usize, usize> = Default::default();
    for (r, row) in rows.iter().enumerate() {
        slot_of.clear();
        let mut ids = Vec::with_capacity(width);
        let mut pos = Vec::with_capacity(width);
        for (slot, node) in row.nodes().enumerate() {
            slot_of.insert(node, slot);
            ids.push(tree.token[node]);
            pos.push(Some(tree.depth[node] as u32));
            // The node sees itself and its ancestors, all earlier in the row.
            let base = (r * width + slot) * width;
            let mut at = Some(node);
            while let Some(key) = at {
                let k = slot_of[&key];
                global[base + k] = 0.0;
                if let (Some(local), Some(w)) = (local.as_mut(), window) {
                    if tree.depth[node] - tree.depth[key] < w {
                        local[base + k] = 0.0;
                    }
                }
                at = tree.parent[key];
            }
            if slot >= row.ancestors.len() && !tree.predicts[node].is_empty() {
                let head = heads.len() as u32;
                heads.push((r * width + slot) as u32);
                for &(sequence, target) in &tree.predicts[node] {
                    picks.push((head, target, sequence));
                }
            }
        }
        ids.resize(width, pad);
        pos.resize(width, None);
        tokens.push(ids);
        positions.push(pos);
    }
    let device = &model.device;
    let shape = (rows.len(), 1, width, width);
    let masks = TreeMasks {
        global: candle_core::Tensor::from_vec(global, shape, device)?,
        local: match local {
            Some(l) => Some(candle_core::Tensor::from_vec(l, shape, device)?),
            None => None,
        },
    };
    let hidden = model.forward_tree(&tokens, &positions, &masks)?;
    // The LM head over chunks of the predicting positions (its logits are `vocab` floats a row).
    let chunk = ((1usize << 25) / model.cfg.vocab.max(1)).max(16);
    let mut p = 0;
    for (c, chunk_heads) in heads.chunks(chunk).enumerate() {
        let first = (c * chunk) as u32;
        let logits = model.logits(&model.gather_rows(&hidden, chunk_heads)?)?;
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        let mut owners = Vec::new();
        while p < picks.len() && (picks[p].0 as usize) < first as usize + chunk_heads.len() {
            rows.push(picks[p].0 - first);
            targets.push(picks[p].1);
            owners.push(picks[p].2);
            p += 1;
        }
        for (lp, sequence) in picked_logprobs(&logits, &rows, &targets)?
            .into_iter()
            .zip(owners)
        {
            out[sequence] += lp;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(tokens: Vec<u32>, n_option: usize) -> Sequence {
        Sequence {
            case: 0,
            option: 0,
            tokens,
            n_option,
        }
    }

    /// Seeded sequences over a small alphabet, so that many share starts.
    fn sequences(seed: u64, n: usize) -> Vec<Sequence> {
        let mut x = seed;
        let mut next = move |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        (0..n)
            .map(|_| {
                let len = 2 + next(40) as usize;
                let tokens: Vec<u32> = (0..len).map(|_| next(3) as u32).collect();
                let n_option = 1 + next(len as u64 - 1) as usize;
                sequence(tokens, n_option)
            })
            .collect()
    }

    /// A random two-layer decoder (the first layer sliding, window 5).
    fn tiny_model() -> Model {
        use super::super::model::{Biases, Config, Family, Layer, Linear};
        use candle_core::{DType, Device, Tensor};
        let device = Device::Cpu;
        let (d, heads, kv, hd, ff, vocab) = (16, 2, 1, 8, 32, 40);
        let mut seed = 7u64;
        let mut t = |shape: (usize, usize)| {
            seed += 1;
            let n = shape.0 * shape.1;
            let v: Vec<f32> = sequences(seed, 1)[0]
                .tokens
                .iter()
                .cycle()
                .take(n)
                .enumerate()
                .map(|(i, &x)| (x as f32 - 1.0) * 0.3 + ((i * 37 % 11) as f32 - 5.0) * 0.05)
                .collect();
            Tensor::from_vec(v, shape, &device).unwrap()
        };
        let layers = (0..2)
            .map(|_| Layer {
                q: Linear::dense(&t((heads * hd, d))).unwrap(),
                k: Linear::dense(&t((kv * hd, d))).unwrap(),
                v: Linear::dense(&t((kv * hd, d))).unwrap(),
                o: Linear::dense(&t((d, heads * hd))).unwrap(),
                gate: Linear::dense(&t((ff, d))).unwrap(),
                up: Linear::dense(&t((ff, d))).unwrap(),
                down: Linear::dense(&t((d, ff))).unwrap(),
                attn_norm: Tensor::ones(d, DType::F32, &device).unwrap(),
                ffn_norm: Tensor::ones(d, DType::F32, &device).unwrap(),
                q_norm: None,
                k_norm: None,
                post_attn_norm: None,
                post_ffn_norm: None,
                bias: Biases::default(),
                experts: None,
            })
            .collect();
        let cfg = Config {
            family: Family::Llama,
            n_layers: 2,
            d_model: d,
            n_heads: heads,
            n_kv_heads: kv,
            head_dim: hd,
            vocab,
            rms_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_local_theta: 10_000.0,
            rope_scale: 1.0,
            rope_interleaved: false,
            context_len: 512,
            sliding_window: Some(5),
            sliding_pattern: 2,
            attn_scale: 1.0 / (hd as f64).sqrt(),
            rope_freq_factors: None,
            attn_softcap: None,
            final_softcap: None,
        };
        let embed = t((vocab, d));
        let norm = Tensor::ones(d, DType::F32, &device).unwrap();
        Model::new(cfg, embed, layers, norm, None, DType::F32, device).unwrap()
    }

    /// Tree scores equal each sequence run alone through the plain causal forward, also when
    /// rows run in chunks of 16 queries (each chunk with its slice of the masks) and across
    /// the sliding window.
    #[test]
    fn tree_scores_equal_whole_sequences_also_in_query_chunks() {
        use super::super::model::{target_logprobs, Cache};
        let mut model = tiny_model();
        let mut s = sequences(11, 30);
        // A sequence longer than a row: one row of its own, run in chunks below.
        s.push(sequence(
            (0..150).map(|i| (i * 7 % 40) as u32).collect(),
            20,
        ));
        let whole: Vec<f64> = s
            .iter()
            .map(|s| {
                let n = s.tokens.len() - 1;
                let positions = vec![(0..n as u32).map(Some).collect::<Vec<_>>()];
                let mut cache = Cache::new(2, 1, n);
                let hidden = model
                    .forward(&[s.tokens[..n].to_vec()], &positions, &mut cache)
                    .unwrap();
                let rows: Vec<u32> = (n - s.n_option..n).map(|p| p as u32).collect();
                let logits = model
                    .logits(&model.gather_rows(&hidden, &rows).unwrap())
                    .unwrap();
                let targets = &s.tokens[n + 1 - s.n_option..];
                target_logprobs(&logits, targets).unwrap().iter().sum()
            })
            .collect();
        let tree = score_tree(&model, 0, &s).unwrap();
        model.attention_budget = 1;
        let chunked = score_tree(&model, 0, &s).unwrap();
        for (i, w) in whole.iter().enumerate() {
            assert!(
                (tree[i] - w).abs() < 1e-4,
                "{i}: tree {} whole {w}",
                tree[i]
            );
            assert!(
                (chunked[i] - w).abs() < 1e-4,
                "{i}: chunked {} whole {w}",
                chunked[i]
            );
        }
    }

    #[test]
    fn the_tree_holds_each_shared_start_once() {
        let s = vec![
            sequence(vec![1, 5, 6, 7], 1),
            sequence(vec![1, 5, 8, 7], 2),
            sequence(vec![1, 9], 1),
        ];
        let tree = Tree::new(&s);
        // Inputs 1 5 6 | 1 5 8 | 1: nodes 1, 5, 6, 8.
        assert_eq!(tree.token, vec![1, 5, 6, 8]);
        assert_eq!(tree.depth, vec![0, 1, 2, 2]);
        assert_eq!(tree.parent, vec![None, Some(0), Some(1), Some(1)]);
        assert_eq!(tree.preorder, vec![0, 1, 2, 3]);
        // Node 1 predicts 9 for sequence 2; node 5 predicts 8 for sequence 1 (scored: its
        // last two tokens); nodes 6 and 8 predict 7.
        assert_eq!(tree.predicts[0], vec![(2, 9)]);
        assert_eq!(tree.predicts[1], vec![(1, 8)]);
        assert_eq!(tree.predicts[2], vec![(0, 7)]);
        assert_eq!(tree.predicts[3], vec![(1, 7)]);
    }

    /// Every node is in exactly one run; every row holds each of its nodes' ancestors before
    /// the node; no row is longer than its capacity; and every scored token is predicted once.
    #[test]
    fn rows_cover_the_tree_and_carry_their_ancestors() {
        for (seed, capacity) in [(1, 41), (2, 48), (3, 96), (4, 200)] {
            let s = sequences(seed, 60);
            let tree = Tree::new(&s);
            let rows = tree.rows(capacity);
            let mut seen = vec![0; tree.token.len()];
            for row in &rows {
                assert!(row.len() <= capacity, "row of {} > {capacity}", row.len());
                let nodes: Vec<usize> = row.nodes().collect();
                for (slot, &node) in nodes.iter().enumerate() {
                    let mut at = tree.parent[node];
                    while let Some(a) = at {
                        let k = nodes.iter().position(|&x| x == a);
                        assert!(
                            k.is_some_and(|k| k < slot),
                            "ancestor {a} of {node} missing"
                        );
                        at = tree.parent[a];
                    }
                }
                for &node in &row.run {
                    seen[node] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "seed {seed}: {seen:?}");
            let scored: usize = s.iter().map(|s| s.n_option).sum();
            let predicted: usize = tree.predicts.iter().map(Vec::len).sum();
            assert_eq!(scored, predicted);
        }
    }
}
