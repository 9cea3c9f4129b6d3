#!/usr/bin/env python3
"""The transformers side of the GPU check (scripts/gpu-check.sh): makes seeded random models of
real shapes as HF folders, scores and generates with transformers as the reference, and compares
the candle results with it.

  python3 scripts/gpu-check.py make-model SHAPE TOKENIZER_DIR OUT_DIR [--device cuda] [--seed 0]
  python3 scripts/gpu-check.py reference MODEL_DIR --dtype f32|bf16 --device cuda --crows CSV
          --sentences N --bbq JSONL --bbq-items N --prompts FILE --gen-tokens N --json OUT
  python3 scripts/gpu-check.py compare CANDLE.json REFERENCE.json [--json OUT]

Shapes: `llama-3.2-1b` and `qwen2.5-1.5b` (the released configs' sizes), `tiny-llama` and
`tiny-qwen2` (two layers, for the CPU dry run that keeps this script from rotting).

What the reference does, so that both sides do the same work:
- CrowS-Pairs: every sentence whole, BOS first (lm-evaluation-harness's empty-context
  convention), sorted by length, batches of 64, the default attention implementation (sdpa),
  summed log-probability of every token after BOS.
- BBQ: every option as context + " " + answer (lm-eval's prompt: context, a blank line,
  `Q: question`, `A:`), the option's tokens after the context's, batches of 64 sorted by length.
- Generation: the prompts through the chat template, left-padded, one batch, greedy, stopping at
  the same stop tokens candle stops at; the top-2 logit gap of every step is kept, so that a
  prompt whose tokens differ from candle's can be checked for a near-tie where they diverge.
Tokens are counted as candle's bench counts them (BOS + sentence; context + option for BBQ), and
peak memory is torch's allocator peak (max_memory_reserved; nvidia-smi sampling is the script's).
"""

import argparse
import csv
import json
import pathlib
import sys
import time

SHAPES = {
    # meta-llama/Llama-3.2-1B's config.json (tied embeddings, llama3 RoPE scaling).
    "llama-3.2-1b": dict(
        model_type="llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
        max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                      "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        tie_word_embeddings=True, hidden_act="silu", attention_bias=False, mlp_bias=False,
    ),
    # Qwen/Qwen2.5-1.5B-Instruct's config.json (q/k/v biases, tied embeddings).
    "qwen2.5-1.5b": dict(
        model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
        num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
        max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
        tie_word_embeddings=True, hidden_act="silu", use_sliding_window=False,
    ),
    "tiny-llama": dict(
        model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=49152,
        max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=True, hidden_act="silu",
    ),
    "tiny-qwen2": dict(
        model_type="qwen2", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, vocab_size=151936,
        max_position_embeddings=2048, rms_norm_eps=1e-6, rope_theta=1000000.0,
        tie_word_embeddings=True, hidden_act="silu", use_sliding_window=False,
    ),
}
# Candle stops a row at these tokens where the vocabulary has them (docs/backends/candle.md).
STOP_TOKENS = ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"]
BATCH = 64


def make_model(args):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = dict(SHAPES[args.shape])
    model_type = shape.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **shape)
    tok_dir = pathlib.Path(args.tokenizer)
    tok_cfg = json.loads((tok_dir / "tokenizer_config.json").read_text())
    vocab = json.loads((tok_dir / "tokenizer.json").read_text())["model"]["vocab"]
    # The tokenizer's special tokens as the model's BOS/EOS/pad ids.
    for key in ("bos_token", "eos_token", "pad_token"):
        token = tok_cfg.get(key)
        if isinstance(token, dict):
            token = token.get("content")
        token_id = vocab.get(token) if token else None
        if token_id is None:
            added = json.loads((tok_dir / "tokenizer.json").read_text()).get("added_tokens", [])
            token_id = next((t["id"] for t in added if t["content"] == token), None)
        setattr(cfg, f"{key}_id", token_id)
    torch.manual_seed(args.seed)
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    out = pathlib.Path(args.out)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="20GB")
    for f in tok_dir.iterdir():  # tokenizer.json, tokenizer_config.json, chat_template.jinja
        (out / f.name).write_bytes(f.read_bytes())
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({"shape": args.shape, "parameters": n, "out": str(out)}))


def crows_sentences(path, n):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [s for r in rows for s in (r["sent_more"], r["sent_less"])][:n]


def bbq_items(path, n):
    items = []
    with open(path) as f:
        for line in f:
            if line.strip() and len(items) < n:
                items.append(json.loads(line))
    return items


def sync(torch, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def score(model, torch, seqs, pad, device):
    """Summed log-prob of tokens[n_ctx:] of each (tokens, n_ctx), batches of 64 sorted by length."""
    out = [0.0] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
    for b in range(0, len(order), BATCH):
        idx = order[b : b + BATCH]
        width = max(len(seqs[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad, device=device)
        mask = torch.zeros((len(idx), width), dtype=torch.long, device=device)
        for r, i in enumerate(idx):
            ids[r, : len(seqs[i][0])] = torch.tensor(seqs[i][0], device=device)
            mask[r, : len(seqs[i][0])] = 1
        logits = model(ids, attention_mask=mask).logits
        for r, i in enumerate(idx):
            toks, n_ctx = seqs[i]
            # log-softmax (in f32) of the positions that predict the scored tokens only
            lp = torch.log_softmax(logits[r, n_ctx - 1 : len(toks) - 1].float(), dim=-1)
            t = torch.tensor(toks[n_ctx:], device=device)
            out[i] = lp.gather(1, t.unsqueeze(1)).sum().item()
    return out


def reference(args):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = args.device
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 means f32 (also torch's default)
    started = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(device).eval()
    sync(torch, device)
    load_s = time.perf_counter() - started
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    result = {"dtype": args.dtype, "device": device, "load_s": load_s,
              "parameters": sum(p.numel() for p in model.parameters()),
              "attention": model.config._attn_implementation,
              "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
    if device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name(0)

    sentences = crows_sentences(args.crows, args.sentences)
    seqs = [([bos] + tok(s, add_special_tokens=False)["input_ids"], 1) for s in sentences]
    items = bbq_items(args.bbq, args.bbq_items)
    bbq_seqs = []
    for it in items:
        context = f"{it['context']}\n\nQ: {it['question']}\nA:"
        n_ctx = len(tok(context, add_special_tokens=False)["input_ids"])
        for k in ("ans0", "ans1", "ans2"):
            bbq_seqs.append((tok(context + " " + it[k], add_special_tokens=False)["input_ids"], n_ctx))
    prompts = [p for p in pathlib.Path(args.prompts).read_text().splitlines() if p.strip()]
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                     add_generation_prompt=True) for p in prompts]
    tok.padding_side = "left"
    batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    vocab = tok.get_vocab()
    stop = sorted({tok.eos_token_id} | {vocab[t] for t in STOP_TOKENS if t in vocab})

    with torch.no_grad():
        # Warm-up: kernels, cuBLAS handles and the allocator, outside the timings.
        score(model, torch, seqs[: 2 * BATCH], pad, device)
        model.generate(**{k: v[:4] for k, v in batch.items()}, do_sample=False, max_new_tokens=4,
                       eos_token_id=stop, pad_token_id=pad)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        sync(torch, device)
        t = time.perf_counter()
        crows_lp = score(model, torch, seqs, pad, device)
        sync(torch, device)
        crows_s = time.perf_counter() - t
        t = time.perf_counter()
        bbq_lp = score(model, torch, bbq_seqs, pad, device)
        sync(torch, device)
        bbq_s = time.perf_counter() - t
        score_peak = torch.cuda.max_memory_reserved() if device.startswith("cuda") else None
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        out = model.generate(**batch, do_sample=False, max_new_tokens=args.gen_tokens,
                             min_new_tokens=0, eos_token_id=stop, pad_token_id=pad,
                             output_scores=True, return_dict_in_generate=True)
        sync(torch, device)
        gen_s = time.perf_counter() - t
        gen_peak = torch.cuda.max_memory_reserved() if device.startswith("cuda") else None
    new = out.sequences[:, batch["input_ids"].shape[1] :].tolist()
    # Top-2 gap of each step's logits (greedy: scores are the raw logits).
    gaps = []
    for step in out.scores:
        top = torch.topk(step.float(), 2, dim=-1).values
        gaps.append((top[:, 0] - top[:, 1]).tolist())
    gen_ids, gen_gaps = [], []
    for r, row in enumerate(new):
        ids = []
        for t_ in row:
            if t_ in stop:
                break
            ids.append(t_)
        gen_ids.append(ids)
        gen_gaps.append([gaps[s][r] for s in range(min(len(ids) + 1, len(gaps)))])
    crows_tokens = sum(len(s[0]) for s in seqs)
    bbq_tokens = sum(len(s[0]) for s in bbq_seqs)
    gen_tokens = sum(len(i) for i in gen_ids)
    result.update({
        "sentences": len(sentences), "crows_tokens": crows_tokens, "crows_s": crows_s,
        "crows_tokens_per_s": crows_tokens / crows_s, "crows_logprobs": crows_lp,
        "bbq_items": len(items), "bbq_tokens": bbq_tokens, "bbq_s": bbq_s,
        "bbq_tokens_per_s": bbq_tokens / bbq_s,
        "bbq_logprobs": [bbq_lp[3 * i : 3 * i + 3] for i in range(len(items))],
        "score_peak_bytes": score_peak, "gen_prompts": len(prompts), "gen_tokens": gen_tokens,
        "gen_s": gen_s, "gen_tokens_per_s": gen_tokens / gen_s, "gen_peak_bytes": gen_peak,
        "gen_ids": gen_ids, "gen_gaps": gen_gaps,
    })
    pathlib.Path(args.json).write_text(json.dumps(result) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}))


def compare(args):
    c = json.loads(pathlib.Path(args.candle).read_text())
    r = json.loads(pathlib.Path(args.reference).read_text())
    crows = [abs(a - b) for a, b in zip(c["logprobs"], r["crows_logprobs"])]
    bbq = [abs(a - b) for x, y in zip(c["bbq"]["logprobs"], r["bbq_logprobs"]) for a, b in zip(x, y)]
    same_pick = sum(x.index(max(x)) == y.index(max(y))
                    for x, y in zip(c["bbq"]["logprobs"], r["bbq_logprobs"]))
    same_pref = sum((c["logprobs"][i] > c["logprobs"][i + 1]) == (r["crows_logprobs"][i] > r["crows_logprobs"][i + 1])
                    for i in range(0, len(crows) - 1, 2))
    identical, diverged = 0, []
    for k, (a, b) in enumerate(zip(c["gen_ids"], r["gen_ids"])):
        if a == b:
            identical += 1
            continue
        step = next((s for s, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        gap = r["gen_gaps"][k][step] if step < len(r["gen_gaps"][k]) else None
        diverged.append({"prompt": k, "step": step, "reference_top2_gap": gap})
    summary = {
        "dtype": r["dtype"],
        "crows_sentences": len(crows),
        "crows_max_abs_diff": max(crows), "crows_mean_abs_diff": sum(crows) / len(crows),
        "crows_same_preference": f"{same_pref}/{len(crows) // 2}",
        "bbq_options": len(bbq), "bbq_max_abs_diff": max(bbq), "bbq_mean_abs_diff": sum(bbq) / len(bbq),
        "bbq_same_argmax": f"{same_pick}/{len(c['bbq']['logprobs'])}",
        "gen_identical_prompts": f"{identical}/{len(r['gen_ids'])}",
        "gen_diverged": diverged,
        "candle_crows_tokens_per_s": c["score_tokens_per_s"],
        "reference_crows_tokens_per_s": r["crows_tokens_per_s"],
        "crows_ratio": c["score_tokens_per_s"] / r["crows_tokens_per_s"],
        "candle_bbq_tokens_per_s": c["bbq"]["tokens_per_s"],
        "reference_bbq_tokens_per_s": r["bbq_tokens_per_s"],
        "bbq_ratio": c["bbq"]["tokens_per_s"] / r["bbq_tokens_per_s"],
        "candle_gen_tokens_per_s": c["gen_tokens_per_s"],
        "reference_gen_tokens_per_s": r["gen_tokens_per_s"],
        "gen_ratio": c["gen_tokens_per_s"] / r["gen_tokens_per_s"],
        "candle_gen_tokens": c["gen_tokens"], "reference_gen_tokens": r["gen_tokens"],
        "reference_score_peak_bytes": r["score_peak_bytes"], "reference_gen_peak_bytes": r["gen_peak_bytes"],
        "candle_load_s": c["load_s"], "reference_load_s": r["load_s"],
        "token_counts_match": c["score_tokens"] == r["crows_tokens"] and c["bbq"]["tokens"] == r["bbq_tokens"],
    }
    # Distance from the roofline (H200: about 790 TFLOP/s dense bf16 measured, 4.3 TB/s): scoring
    # does about 2 × parameters FLOP per token (attention over these short rows adds < 5 %);
    # a greedy decode step reads every weight once, so with every row in the batch a step moves
    # parameters × bytes, and the steps per second are the tokens per second over the rows.
    n, width = r["parameters"], 4 if r["dtype"] == "f32" else 2
    rows = max(1, len(r["gen_ids"]))
    for side, key in (("candle", "candle"), ("reference", "reference")):
        summary[f"{side}_crows_tflops"] = summary[f"{key}_crows_tokens_per_s"] * 2 * n / 1e12
        summary[f"{side}_bbq_tflops"] = summary[f"{key}_bbq_tokens_per_s"] * 2 * n / 1e12
        summary[f"{side}_gen_weight_tb_per_s"] = summary[f"{key}_gen_tokens_per_s"] / rows * n * width / 1e12
    summary["parameters"] = n
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        pathlib.Path(args.json).write_text(text + "\n")
    # f32 must agree within 1e-3 nats and give the same greedy tokens except at near-ties.
    if r["dtype"] == "f32":
        bad = max(summary["crows_max_abs_diff"], summary["bbq_max_abs_diff"]) > 1e-3
        ties = all(d["reference_top2_gap"] is not None and d["reference_top2_gap"] < 1e-3 for d in diverged)
        if bad or not ties or not summary["token_counts_match"]:
            sys.exit("error: candle f32 does not agree with transformers f32 (see above)")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-model")
    m.add_argument("shape", choices=sorted(SHAPES))
    m.add_argument("tokenizer")
    m.add_argument("out")
    m.add_argument("--device", default="cuda")
    m.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("reference")
    r.add_argument("model")
    r.add_argument("--dtype", choices=["f32", "bf16"], required=True)
    r.add_argument("--device", default="cuda")
    r.add_argument("--crows", required=True)
    r.add_argument("--sentences", type=int, default=3016)
    r.add_argument("--bbq", required=True)
    r.add_argument("--bbq-items", type=int, default=1000)
    r.add_argument("--prompts", required=True)
    r.add_argument("--gen-tokens", type=int, default=128)
    r.add_argument("--json", required=True)
    c = sub.add_parser("compare")
    c.add_argument("candle")
    c.add_argument("reference")
    c.add_argument("--json")
    args = parser.parse_args()
    {"make-model": make_model, "reference": reference, "compare": compare}[args.cmd](args)


if __name__ == "__main__":
    main()
