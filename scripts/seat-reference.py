#!/usr/bin/env python3
"""Reference SEAT values on all-MiniLM-L6-v2 from transformers (tests/it/weat.rs): SEAT 6 and 9 with
sentence-transformers' pooling (mean over tokens, L2-normalized) computed by torch, and the WEAT
statistics of scripts/weat-reference.py (numpy/scipy) with 10,000 permutation samples.

Writes fixtures/data/seat_reference_minilm.json (with the library versions used):

    $HOME/.cache/probity/venv-lmeval/bin/python scripts/seat-reference.py   (torch, transformers, scipy)
"""

import importlib.util
import json
import os
import platform

import numpy as np
import torch
import transformers
from transformers import AutoModel, AutoTokenizer

HERE = os.path.dirname(__file__)
spec = importlib.util.spec_from_file_location("weat_reference", os.path.join(HERE, "weat-reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

MODEL = os.path.join(ref.MODELS, "all-MiniLM-L6-v2")
OUT = os.path.join(HERE, "..", "fixtures", "data", "seat_reference_minilm.json")
SAMPLES = 10_000


def main():
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModel.from_pretrained(MODEL).eval()

    def embed(texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)

    rng = np.random.default_rng(20261129)
    out = []
    for name in ["sent-weat6", "sent-weat9"]:
        with open(os.path.join(ref.DATASETS, "weat_seat", "tests", f"{name}.jsonl")) as f:
            test = json.load(f)
        sets = [embed(test[k]["examples"]) for k in ("targ1", "targ2", "attr1", "attr2")]
        result = ref.weat(*sets, rng, n_samples=SAMPLES)
        del result["s_x"], result["s_y"]
        result["test"] = name
        out.append(result)
        print(name, result)
    fixture = {
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "n_samples": SAMPLES,
        "seat": out,
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
