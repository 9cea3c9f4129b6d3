#!/usr/bin/env python3
"""Reference outputs of PEFT LoRA adapters on SmolLM2-135M-Instruct, for the candle backend's
adapter tests (runners/tests/it/candle_lora.rs).

The adapters themselves are written without Python, deterministically, by the fixtures crate
(fixtures/src/lora.rs: seeded random A and B in PEFT's folder layout), so that CI needs no torch:

  cargo run -p fixtures --example make-lora-adapters      # -> ~/.cache/probity/models/lora-smollm2-*

This script loads the base the way scripts/candle-reference.py does (transformers, gguf_file=...,
dequantized to float32), applies each adapter with peft (PeftModel.from_pretrained, then
merge_and_unload), and writes fixtures/data/lora_reference_smollm2.json: for the first 20
CrowS-Pairs sentences (sent_more, BOS-prefixed), the per-token log-probabilities log p(token |
prefix) and the raw logits of those tokens, of the base and of each merged model, with the
adapters' sha256 and the library versions. Run it in venv-torch (pip install peft==0.21.2):

  ~/.cache/probity/venv-torch/bin/python scripts/make-lora-adapter.py
"""

import csv
import hashlib
import json
import os
import pathlib
import subprocess
import sys

BASE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ADAPTERS = ["lora-smollm2-test", "lora-smollm2-rslora"]
SENTENCES = 20


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    import torch
    import transformers
    import peft
    import safetensors
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import PeftModel

    torch.set_num_threads(int(os.environ.get("REFERENCE_THREADS", "2")))
    repo = pathlib.Path(__file__).resolve().parent.parent
    models = pathlib.Path(os.environ.get("PROBITY_MODELS", pathlib.Path.home() / ".cache/probity/models"))
    base_path = models / BASE
    if not base_path.exists():
        sys.exit(f"error: {base_path} is missing; run scripts/fetch-models.sh smollm2")
    if not all((models / a / "adapter_model.safetensors").exists() for a in ADAPTERS):
        subprocess.run(
            ["cargo", "run", "-q", "-p", "fixtures", "--example", "make-lora-adapters", "--", str(models)],
            cwd=repo,
            check=True,
        )

    tok = AutoTokenizer.from_pretrained(str(models), gguf_file=BASE)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    csv_path = pathlib.Path(os.environ.get("CROWS_PAIRS", "/work/shared/datasets/crows_pairs/crows_pairs_anonymized.csv"))
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    sentences = [r["sent_more"] for r in rows[:SENTENCES]]
    ids = [[bos] + tok(s, add_special_tokens=False)["input_ids"] for s in sentences]

    def load_base():
        m = AutoModelForCausalLM.from_pretrained(str(models), gguf_file=BASE, torch_dtype=torch.float32)
        return m.eval()

    def score(model):
        out = []
        with torch.no_grad():
            for s, row in zip(sentences, ids):
                logits = model(torch.tensor([row])).logits[0]
                lp = torch.log_softmax(logits.double(), dim=-1)
                targets = row[1:]
                out.append(
                    {
                        "sentence": s,
                        "ids": row,
                        "token_logprobs": [lp[i, t].item() for i, t in enumerate(targets)],
                        "token_logits": [logits[i, t].item() for i, t in enumerate(targets)],
                    }
                )
        return out

    result = {
        "model": BASE,
        "how": "transformers AutoModelForCausalLM.from_pretrained(gguf_file=..., torch_dtype=float32) "
        "(weights dequantized to float32); peft PeftModel.from_pretrained(base, adapter_dir) then "
        "merge_and_unload(); per sentence (BOS-prefixed CrowS-Pairs sent_more), for each token after "
        "the BOS: token_logprobs = log_softmax(logits)[token] in float64, token_logits = the raw "
        "float32 logit of that token",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "safetensors": safetensors.__version__,
            "python": sys.version.split()[0],
        },
        "bos": bos,
        "base": score(load_base()),
        "adapters": [],
    }
    for name in ADAPTERS:
        folder = models / name
        config = json.loads((folder / "adapter_config.json").read_text())
        model = PeftModel.from_pretrained(load_base(), str(folder)).eval()
        # The scale peft applied (alpha/r, or alpha/sqrt(r) with rsLoRA), read from a LoRA layer.
        scale = next(
            m.scaling["default"] for m in model.modules() if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling
        )
        n_adapted = sum(1 for m in model.modules() if hasattr(m, "lora_A") and hasattr(m.lora_A, "keys") and "default" in m.lora_A)
        merged = model.merge_and_unload().eval()
        result["adapters"].append(
            {
                "name": name,
                "config": config,
                "sha256": {
                    "adapter_config.json": sha256(folder / "adapter_config.json"),
                    "adapter_model.safetensors": sha256(folder / "adapter_model.safetensors"),
                },
                "scale": scale,
                "modules_adapted": n_adapted,
                "sentences": score(merged),
            }
        )
        print(f"{name}: scale {scale}, {n_adapted} modules")
    out = repo / "fixtures/data/lora_reference_smollm2.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
