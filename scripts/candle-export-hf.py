#!/usr/bin/env python3
"""Exports a GGUF model to an HF folder with transformers (dequantized to f32, `save_pretrained`),
so the candle backend's HF-folder path can be checked against its GGUF path on real weights.

  ~/.cache/probity/venv-torch/bin/python scripts/candle-export-hf.py [gemma3]
      (writes ${PROBITY_MODELS:-~/.cache/probity/models}/gemma-3-270m-hf)

The folder holds config.json (transformers 5 layout: `rope_parameters` keyed by layer type),
model.safetensors (f32, HF norm convention: Gemma's RMS weights without the +1 llama.cpp adds),
tokenizer.json and tokenizer_config.json, and export.json with the library versions.
`runners/tests/it/candle_hf_export.rs` loads it (`cargo test -p runners --test it --
--ignored candle_hf_export`).
"""

import json
import os
import pathlib
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

MODELS = {"gemma3": ("gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-hf")}


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "gemma3"
    if name not in MODELS:
        sys.exit(f"error: unknown model {name!r}; one of {sorted(MODELS)}")
    gguf, folder = MODELS[name]
    models = pathlib.Path(os.environ.get("PROBITY_MODELS", pathlib.Path.home() / ".cache/probity/models"))
    if not (models / gguf).exists():
        sys.exit(f"error: {models / gguf} is missing; run scripts/fetch-models.sh")
    out = models / folder
    model = AutoModelForCausalLM.from_pretrained(str(models), gguf_file=gguf, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(models), gguf_file=gguf)
    # The GGUF origin is not part of the exported folder: drop the quantization record.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    (out / "export.json").write_text(
        json.dumps(
            {
                "script": "scripts/candle-export-hf.py",
                "from": gguf,
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
            },
            indent=1,
        )
        + "\n"
    )
    print("wrote", out, sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main()
