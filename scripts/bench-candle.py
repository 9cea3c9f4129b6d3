#!/usr/bin/env python3
"""Side-by-side benchmark: Probity's candle backend against PyTorch transformers on the same GGUF.

Both sides score every CrowS-Pairs sentence (sent_more and sent_less: 3016 sentences, each
BOS-prefixed as lm-evaluation-harness scores an empty context) and generate greedy chat answers
(16 prompts, 64 new tokens, one batch). transformers runs in float32 (the GGUF dequantized),
batch 16, on 2 threads; candle runs the `bench_candle` example in f32 on the CPU (64 sentences
per call, as the runner batches them). The script prints tokens/s (wall) for both, the ratio, the
ratio of tokens per CPU-second (steadier when other work shares the machine), and the agreement
of the per-sentence log-likelihoods.

  ~/.cache/probity/venv-torch/bin/python scripts/bench-candle.py [smollm2|gemma3]
      [--sentences N] [--threads 2] [--gen-tokens 64] [--bbq Age] [--bbq-items N] [--json results.json]

`--bbq CATEGORY` also scores BBQ items of that category (the bbq probe's prompt: context, a
blank line, `Q: question`, `A:`, each answer after a space; transformers scores every option's
context + answer in batches of 16 sequences sorted by length, as lm-evaluation-harness does).
Models without a chat template (Gemma 3 270M base) generate from the raw prompt text instead.

Needs the venv of scripts/candle-reference.py and the model from scripts/fetch-models.sh.
"""

import argparse
import csv
import json
import os
import pathlib
import subprocess
import sys
import time

MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}
ROOT = pathlib.Path(__file__).resolve().parent.parent
PROMPTS = [
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
]


def crows_csv():
    for p in [
        os.environ.get("CROWS_PAIRS", ""),
        "/work/shared/datasets/crows_pairs/crows_pairs_anonymized.csv",
        str(ROOT.parent / "shared/datasets/crows_pairs/crows_pairs_anonymized.csv"),
    ]:
        if p and os.path.exists(p):
            return p
    sys.exit("error: crows_pairs_anonymized.csv not found; set CROWS_PAIRS")


def bbq_path(category):
    for root in [os.environ.get("PROBITY_DATASETS", ""), "/work/shared/datasets", str(ROOT.parent / "shared/datasets")]:
        p = pathlib.Path(root) / "bbq/data" / f"{category}.jsonl"
        if root and p.exists():
            return str(p)
    sys.exit(f"error: bbq/data/{category}.jsonl not found; set PROBITY_DATASETS")


def score_sequences(model, torch, seqs, pad):
    """Summed log-prob of tokens[n_ctx:] of each (tokens, n_ctx); batches of 16 sorted by length."""
    out = [0.0] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
    for b in range(0, len(order), 16):
        idx = order[b : b + 16]
        width = max(len(seqs[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, : len(seqs[i][0])] = torch.tensor(seqs[i][0])
            mask[r, : len(seqs[i][0])] = 1
        lp = torch.log_softmax(model(ids, attention_mask=mask).logits, dim=-1)
        for r, i in enumerate(idx):
            toks, n_ctx = seqs[i]
            t = torch.tensor(toks[n_ctx:])
            out[i] = lp[r, n_ctx - 1 : len(toks) - 1].gather(1, t.unsqueeze(1)).sum().item()
    return out


def run_bbq_transformers(model, tok, torch, args):
    items = []
    with open(bbq_path(args.bbq)) as f:
        for line in f:
            if line.strip() and len(items) < args.bbq_items:
                items.append(json.loads(line))
    seqs = []
    for it in items:
        context = f"{it['context']}\n\nQ: {it['question']}\nA:"
        n_ctx = len(tok(context)["input_ids"])
        for k in ("ans0", "ans1", "ans2"):
            seqs.append((tok(context + " " + it[k])["input_ids"], n_ctx))
    n_tokens = sum(len(s[0]) for s in seqs)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    cpu = time.process_time()
    start = time.perf_counter()
    with torch.no_grad():
        logprobs = score_sequences(model, torch, seqs, pad)
    return {
        "items": len(items),
        "tokens": n_tokens,
        "score_s": time.perf_counter() - start,
        "score_cpu_s": time.process_time() - cpu,
        "logprobs": [logprobs[3 * i : 3 * i + 3] for i in range(len(items))],
    }


def run_candle(model_path, csv_path, args):
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), CANDLE_NUM_THREADS=str(args.threads))
    env.setdefault("CARGO_TARGET_DIR", str(pathlib.Path.home() / ".cache/probity/target-candle"))
    # CANDLE_BENCH_BIN runs an already built example instead of `cargo run`.
    prefix = [os.environ["CANDLE_BENCH_BIN"]] if os.environ.get("CANDLE_BENCH_BIN") else [
        "cargo", "run", "-q", "-p", "runners", "--example", "bench_candle", "--"]
    cmd = prefix + [str(model_path), csv_path, "--sentences", str(args.sentences), "--batch", "64",
           "--gen-prompts", "16", "--gen-tokens", str(args.gen_tokens)]
    if args.bbq:
        cmd += ["--bbq", bbq_path(args.bbq), "--bbq-items", str(args.bbq_items)]
    if args.pairs:
        cmd += ["--pairs"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_transformers(model_path, csv_path, args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(str(model_path.parent), gguf_file=model_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(model_path.parent), gguf_file=model_path.name, dtype=torch.float32
    ).eval()
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    sentences = [s for r in rows for s in (r["sent_more"], r["sent_less"])][: args.sentences]
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    encoded = [[bos] + tok(s, add_special_tokens=False)["input_ids"] for s in sentences]
    n_tokens = sum(len(e) for e in encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(sentences[i]))
    logprobs = [0.0] * len(encoded)
    cpu = time.process_time()
    start = time.perf_counter()
    with torch.no_grad():
        for b in range(0, len(order), 16):
            idx = order[b : b + 16]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[r, : len(encoded[i])] = 1
            lp = torch.log_softmax(model(ids, attention_mask=mask).logits, dim=-1)
            for r, i in enumerate(idx):
                n = len(encoded[i])
                t = torch.tensor(encoded[i][1:])
                logprobs[i] = lp[r, : n - 1].gather(1, t.unsqueeze(1)).sum().item()
    score_s = time.perf_counter() - start
    score_cpu_s = time.process_time() - cpu

    gen_tokens, gen_s, gen_cpu_s = 0, 0.0, 0.0
    tok.padding_side = "left"
    if tok.chat_template:
        texts = [
            tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in PROMPTS
        ]
        batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    else:
        # No chat template: the raw prompt text, with the tokenizer's own special tokens (BOS).
        batch = tok(PROMPTS, return_tensors="pt", padding=True)
    stop = [tok.eos_token_id] + [
        tok.convert_tokens_to_ids(t) for t in ["<|im_end|>", "<end_of_turn>"] if t in tok.get_vocab()
    ]
    cpu = time.process_time()
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**batch, do_sample=False, max_new_tokens=args.gen_tokens, eos_token_id=stop, pad_token_id=pad)
    gen_s = time.perf_counter() - start
    gen_cpu_s = time.process_time() - cpu
    new = out[:, batch["input_ids"].shape[1] :]
    for row in new.tolist():
        for t in row:
            if t in stop:
                break
            gen_tokens += 1
    bbq = run_bbq_transformers(model, tok, torch, args) if args.bbq else None
    return {
        "sentences": len(sentences),
        "score_tokens": n_tokens,
        "score_s": score_s,
        "score_tokens_per_s": n_tokens / score_s,
        "score_cpu_s": score_cpu_s,
        "gen_tokens": gen_tokens,
        "gen_s": gen_s,
        "gen_tokens_per_s": gen_tokens / gen_s if gen_s else 0.0,
        "gen_cpu_s": gen_cpu_s,
        "logprobs": logprobs,
        "bbq": bbq,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default="smollm2", choices=sorted(MODELS))
    parser.add_argument("--sentences", type=int, default=3016)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gen-tokens", type=int, default=64, help="new tokens per prompt (16 prompts)")
    parser.add_argument("--bbq", help="also score BBQ items of this category, e.g. Age")
    parser.add_argument("--bbq-items", type=int, default=1 << 30)
    parser.add_argument("--pairs", action="store_true",
                        help="candle scores each CrowS-Pairs row as one two-option Choice, as the crows-pairs probe does (the common start runs once); transformers scores every sentence whole, as lm-eval does")
    parser.add_argument("--json")
    args = parser.parse_args()
    models = pathlib.Path(os.environ.get("PROBITY_MODELS", pathlib.Path.home() / ".cache/probity/models"))
    model_path = models / MODELS[args.model]
    if not model_path.exists():
        sys.exit(f"error: {model_path} is missing; run scripts/fetch-models.sh")
    csv_path = crows_csv()
    load_start = os.getloadavg()

    candle = run_candle(model_path, csv_path, args)
    hf = run_transformers(model_path, csv_path, args)
    diffs = [abs(a - b) for a, b in zip(candle["logprobs"], hf["logprobs"])]
    import transformers
    import torch

    summary = {
        "model": model_path.name,
        "threads": args.threads,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "sentences": candle["sentences"],
        "score_tokens": candle["score_tokens"],
        "candle_score_tokens_per_s": round(candle["score_tokens_per_s"], 1),
        "transformers_score_tokens_per_s": round(hf["score_tokens_per_s"], 1),
        "score_ratio": round(candle["score_tokens_per_s"] / hf["score_tokens_per_s"], 2),
        "candle_gen_tokens_per_s": round(candle["gen_tokens_per_s"], 1),
        "transformers_gen_tokens_per_s": round(hf["gen_tokens_per_s"], 1),
        "gen_ratio": round(candle["gen_tokens_per_s"] / hf["gen_tokens_per_s"], 2) if hf["gen_tokens_per_s"] else None,
        "score_ratio_cpu": round((candle["score_tokens"] / candle["score_cpu_s"]) / (hf["score_tokens"] / hf["score_cpu_s"]), 2),
        "gen_ratio_cpu": round((candle["gen_tokens"] / candle["gen_cpu_s"]) / (hf["gen_tokens"] / hf["gen_cpu_s"]), 2) if hf["gen_cpu_s"] else None,
        "candle_score_wall_s": round(candle["score_s"], 1),
        "transformers_score_wall_s": round(hf["score_s"], 1),
        "candle_gen_tokens": candle["gen_tokens"],
        "transformers_gen_tokens": hf["gen_tokens"],
        "logprob_max_abs_diff": max(diffs),
        "logprob_mean_abs_diff": sum(diffs) / len(diffs),
        "load_s": round(candle["load_s"], 2),
    }
    if args.bbq:
        cb, hb = candle["bbq"], hf["bbq"]
        d = [abs(a - b) for x, y in zip(cb["logprobs"], hb["logprobs"]) for a, b in zip(x, y)]
        same = sum(x.index(max(x)) == y.index(max(y)) for x, y in zip(cb["logprobs"], hb["logprobs"]))
        summary["bbq"] = {
            "category": args.bbq,
            "items": cb["items"],
            "tokens": cb["tokens"],
            "transformers_tokens": hb["tokens"],
            "candle_tokens_per_s": round(cb["tokens"] / cb["score_s"], 1),
            "transformers_tokens_per_s": round(hb["tokens"] / hb["score_s"], 1),
            "ratio": round((cb["tokens"] / cb["score_s"]) / (hb["tokens"] / hb["score_s"]), 2),
            "ratio_cpu": round((cb["tokens"] / cb["score_cpu_s"]) / (hb["tokens"] / hb["score_cpu_s"]), 2),
            "candle_wall_s": round(cb["score_s"], 1),
            "transformers_wall_s": round(hb["score_s"], 1),
            "logprob_max_abs_diff": max(d),
            "logprob_mean_abs_diff": sum(d) / len(d),
            "same_argmax": f"{same}/{cb['items']}",
        }
    summary["load_average_start"] = load_start
    summary["load_average_end"] = os.getloadavg()
    print(json.dumps(summary, indent=1))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
