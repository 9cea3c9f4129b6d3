#!/usr/bin/env python3
"""llama.cpp's numbers on the same GGUF file, the reference of the candle backend's quantized mode.

llama.cpp runs GGUF blocks as they are stored and quantizes the activations to Q8 for each
product, which is what `--weights quantized` does for narrow batches (wide ones dequantize one
weight at a time to f32, see docs/backends/candle.md). For the sentences and prompts of
the first CrowS-Pairs sentences and, where fixtures/data/candle_reference_<model>.json exists
(scripts/candle-reference.py), its chat prompts, this writes fixtures/data/llama_reference_<model>.json:

  sentences    llama.cpp's token ids (BOS first) and the summed log p(token | tokens before) of
               each sentence after its BOS, from llama.cpp's raw logits in float64, evaluated as
               one sequence (KV cache in f32)
  generations  llama.cpp's greedy tokens after each chat prompt (the same stop tokens and length)

with llama-cpp-python's version. Threads: REFERENCE_THREADS (2).

  ~/.cache/probity/venv-llama/bin/python scripts/llama-reference.py qwen0.5b
"""

import argparse
import json
import math
import os
import pathlib
import sys

MODELS = {"qwen0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--out", default="fixtures/data")
    parser.add_argument("--sentences", type=int, default=100)
    args = parser.parse_args()
    models = pathlib.Path(os.environ.get("PROBITY_MODELS", pathlib.Path.home() / ".cache/probity/models"))
    path = models / MODELS[args.model]
    reference_path = pathlib.Path(args.out) / f"candle_reference_{args.model}.json"
    for p in (path,):
        if not p.exists():
            print(f"error: {p}: no such file", file=sys.stderr)
            return 2
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    reference = json.loads(reference_path.read_text()) if reference_path.exists() else None
    threads = int(os.environ.get("REFERENCE_THREADS", "2"))
    llm = Llama(
        model_path=str(path),
        n_ctx=1024,
        n_batch=1024,
        logits_all=True,
        verbose=False,
        n_threads=threads,
        n_threads_batch=threads,
        type_k=0,  # GGML_TYPE_F32
        type_v=0,
    )
    # The first SENTENCES CrowS-Pairs `sent_more` sentences, BOS first, tokenized by llama.cpp
    # (the test checks that the candle backend's ids are the same).
    import csv

    csv_path = os.environ.get("CROWS_PAIRS", "/work/shared/datasets/crows_pairs/crows_pairs_anonymized.csv")
    with open(csv_path, newline="") as f:
        texts = [r["sent_more"] for r in csv.DictReader(f)][: args.sentences]
    sentences = []
    for text in texts:
        ids = [llm.token_bos()] + llm.tokenize(text.encode(), add_bos=False, special=False)
        s = {"sentence": text}
        llm.reset()
        llm.eval(ids)
        total = 0.0
        for i in range(1, len(ids)):
            row = np.asarray(llm.scores[i - 1], dtype=np.float64)
            top = row.max()
            total += row[ids[i]] - top - math.log(np.exp(row - top).sum())
        sentences.append({"sentence": s["sentence"], "ids": ids, "logprob": total})
    stop = set(reference["stop_ids"]) if reference else set()
    generations = []
    for g in reference["generations"] if reference else []:
        if g["kind"] != "chat":
            continue
        llm.reset()
        llm.eval(g["prompt_ids"])
        out = []
        for _ in range(reference["max_new_tokens"]):
            row = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            token = int(row.argmax())
            if token in stop:
                break
            out.append(token)
            llm.eval([token])
        generations.append({"prompt": g["prompt"], "prompt_ids": g["prompt_ids"], "generated_ids": out})
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    target = pathlib.Path(args.out) / f"llama_reference_{args.model}.json"
    target.write_text(
        json.dumps(
            {
                "model": path.name,
                "how": "llama-cpp-python Llama(logits_all=True, KV cache f32), each sentence evaluated as one "
                "sequence of transformers' ids (BOS first), log-softmax of the raw logits in float64; "
                "greedy decoding by argmax of the last row",
                "versions": {"llama_cpp_python": llama_cpp.__version__, "python": sys.version.split()[0]},
                "threads": threads,
                "max_new_tokens": reference["max_new_tokens"] if reference else 0,
                "sentences": sentences,
                "generations": generations,
            },
            ensure_ascii=False,
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
