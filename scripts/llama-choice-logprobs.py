#!/usr/bin/env python3
"""Option log-likelihoods of a run's Choice attempts, recomputed by llama.cpp in process.

For each Choice attempt of RUN/attempts.jsonl (context, options), this scores every option the
way the candle backend does for a model that adds no BOS (lm-evaluation-harness's convention):
the context's trailing whitespace moves to the option, context and context + option are
tokenized by llama.cpp's tokenizer without BOS (`--bos` puts one in front of both), the model
evaluates context + option, and the option's score is the sum of log p(token | tokens before it)
over the option's tokens, from llama.cpp's raw logits in float64.

llama-cpp-python's server cannot return these for SmolLM2 without a BOS in front (its prompt
log-probs are shifted by one token when no BOS was dropped, see docs/backends/openai.md), so this
is how tests/it/openai.rs checks candle's log-likelihoods against llama.cpp on the very tokens candle
scores. `--kv f32` (the default) keeps llama.cpp's KV cache in float32; `--kv f16` is llama.cpp's
own default. Prints one JSON object: {"case_id": [score, ...], ...}.

  ~/.cache/probity/venv-llama/bin/python scripts/llama-choice-logprobs.py MODEL.gguf RUN [--bos] [--kv f16]
"""

import argparse
import json
import math
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("run")
    parser.add_argument("--bos", action="store_true")
    parser.add_argument("--kv", choices=["f32", "f16"], default="f32")
    args = parser.parse_args()
    attempts_path = os.path.join(args.run, "attempts.jsonl")
    for path in (args.model, attempts_path):
        if not os.path.isfile(path):
            print(f"error: {path}: no such file", file=sys.stderr)
            return 2
    import numpy as np
    from llama_cpp import Llama

    kv = {"f32": 0, "f16": 1}[args.kv]  # GGML_TYPE_F32, GGML_TYPE_F16
    llm = Llama(
        model_path=args.model,
        n_ctx=2048,
        logits_all=True,
        verbose=False,
        n_threads=1,
        type_k=kv,
        type_v=kv,
    )
    prefix = [llm.token_bos()] if args.bos else []
    tokenize = lambda text: prefix + llm.tokenize(text.encode(), add_bos=False, special=True)  # noqa: E731
    out = {}
    with open(attempts_path, encoding="utf-8") as lines:
        for line in lines:
            attempt = json.loads(line)
            if attempt.get("kind") != "choice" or "context" not in attempt:
                continue
            context = attempt["context"]
            trimmed = context.rstrip()
            scores = []
            for option in attempt["options"]:
                context_ids = tokenize(trimmed)
                if not context_ids:
                    print(f"error: {attempt['case_id']}: empty context (nothing to condition on)", file=sys.stderr)
                    return 2
                whole = tokenize(trimmed + context[len(trimmed) :] + option)
                if whole[: len(context_ids)] != context_ids or len(whole) == len(context_ids):
                    print(f"error: {attempt['case_id']}: the context's tokens are not a prefix", file=sys.stderr)
                    return 2
                llm.reset()
                llm.eval(whole)
                total = 0.0
                for i in range(len(context_ids), len(whole)):
                    row = np.asarray(llm.scores[i - 1], dtype=np.float64)
                    top = row.max()
                    total += row[whole[i]] - top - math.log(np.exp(row - top).sum())
                scores.append(total)
            out[attempt["case_id"]] = scores
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
