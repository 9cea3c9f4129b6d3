#!/usr/bin/env python3
"""Who is closer to the exact value where candle and transformers disagree most.

Takes the JSON line `bench_candle --pairs` prints (every CrowS-Pairs sentence's log-likelihood
from candle, f32), scores every sentence with transformers in f32 (one sentence per call, no
padding), then the K sentences with the largest difference again with the model in float64, and
prints each side's error against the float64 value.

  B=$CARGO_TARGET_DIR/debug/examples/bench_candle
  RAYON_NUM_THREADS=2 $B ~/.cache/probity/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      ../shared/datasets/crows_pairs/crows_pairs_anonymized.csv --pairs --gen-prompts 0 \\
      --gen-tokens 0 > /tmp/candle-all.json
  ~/.cache/probity/venv-torch/bin/python scripts/candle-f64-check.py /tmp/candle-all.json [K]
"""

import csv
import json
import pathlib
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    candle = json.loads(open(sys.argv[1]).read().splitlines()[-1])
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    path = pathlib.Path(candle["model"])
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval()
    crows = ROOT.parent / "shared/datasets/crows_pairs/crows_pairs_anonymized.csv"
    with open(crows, newline="") as f:
        rows = list(csv.DictReader(f))
    sentences = [s for r in rows for s in (r["sent_more"], r["sent_less"])]
    sentences = sentences[: len(candle["logprobs"])]
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    encoded = [[bos] + tok(s, add_special_tokens=False)["input_ids"] for s in sentences]

    def score(m, ids):
        with torch.no_grad():
            logits = m(torch.tensor([ids])).logits.to(torch.float64)
        lp = torch.log_softmax(logits, -1)[0]
        return lp[:-1].gather(1, torch.tensor(ids[1:]).unsqueeze(1)).sum().item()

    f32 = [score(model, ids) for ids in encoded]
    worst = sorted(range(len(f32)), key=lambda i: -abs(candle["logprobs"][i] - f32[i]))[:k]
    model = model.to(torch.float64)
    for i in worst:
        exact = score(model, encoded[i])
        c, t = candle["logprobs"][i], f32[i]
        print(json.dumps({
            "sentence": i, "tokens": len(encoded[i]), "candle_minus_transformers": c - t,
            "candle_error": abs(c - exact), "transformers_f32_error": abs(t - exact),
        }))


if __name__ == "__main__":
    main()
