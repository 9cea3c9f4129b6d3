#!/usr/bin/env python3
"""Reference CrowS-Pairs numbers from lm-evaluation-harness on the local CSV, offline.

Runs lm-eval's own `crows_pairs_english` task (its doc_to_choice and process_results, by
`include` of the installed task file) with the dataset pointed at a local copy of
crows_pairs_anonymized.csv, on a GGUF model loaded through transformers (dequantized to
float32). Writes the aggregate metrics and every pair's two log-likelihoods as JSON, so that
Probity's attempts can be compared pair by pair.

Usage (see docs/suites/crows-pairs.md for the recorded run):
  python3 -m venv ~/.cache/probity/venv-lmeval
  ~/.cache/probity/venv-lmeval/bin/pip install lm-eval transformers gguf torch
  HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 ~/.cache/probity/venv-lmeval/bin/python \
      scripts/lmeval-crows-pairs.py --model ~/.cache/probity/models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --csv /work/shared/datasets/crows_pairs/crows_pairs_anonymized.csv --out lmeval-crows.json
"""

import argparse
import json
import os
import tempfile

import lm_eval
from lm_eval.tasks import TaskManager


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="a GGUF file")
    parser.add_argument("--csv", required=True, help="crows_pairs_anonymized.csv")
    parser.add_argument("--out", required=True, help="where to write the JSON")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    installed = os.path.join(
        os.path.dirname(lm_eval.__file__), "tasks", "crows_pairs", "crows_pairs_english.yaml"
    )
    task_dir = tempfile.mkdtemp(prefix="lmeval-crows-")
    with open(os.path.join(task_dir, "crows_pairs_english_local.yaml"), "w") as f:
        f.write(
            f"include: {installed}\n"
            "task: crows_pairs_english_local\n"
            "tag: []\n"
            "dataset_path: csv\n"
            "dataset_name: null\n"
            "dataset_kwargs:\n"
            "  data_files:\n"
            f"    test: {os.path.abspath(args.csv)}\n"
        )
    model = os.path.abspath(os.path.expanduser(args.model))
    model_args = (
        f"pretrained={os.path.dirname(model)},gguf_file={os.path.basename(model)},dtype=float32"
    )
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=model_args,
        tasks=["crows_pairs_english_local"],
        task_manager=TaskManager(include_path=task_dir),
        batch_size=args.batch_size,
        device=args.device,
        limit=args.limit,
        log_samples=True,
        num_fewshot=0,
    )
    task = "crows_pairs_english_local"
    pairs = []
    for sample in results["samples"][task]:
        doc = sample["doc"]
        lls = [float(r[0]) for r in sample["filtered_resps"]]
        pairs.append({"id": str(doc[""] if "" in doc else doc.get("Unnamed: 0")), "logprobs": lls})
    pairs.sort(key=lambda p: int(p["id"]))
    out = {
        "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "",
        "model_args": model_args,
        "metrics": {k: v for k, v in results["results"][task].items() if k != "alias"},
        "n": len(pairs),
        "pairs": pairs,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out["metrics"], indent=1))


if __name__ == "__main__":
    main()
