#!/usr/bin/env python3
"""Reference outputs of tiny random-weight decoders, for the candle backend's HF config paths
that no real weights here exercise: Qwen 2 (attention biases), Llama with `rope_scaling` of type
llama3 and linear, Gemma 3 (`gemma3_text`, sliding layers with a window of 8), and the families
of `runners/src/candle/family/` without real weights here: Qwen 3 (q/k norms), Mistral (window of
8 on every layer), Phi-3 (fused qkv and gate_up, window of 8), Gemma 2 (soft-capping small
enough to matter, every other layer sliding with a window of 8), Mixtral (4 experts, 2 per token).

Each model is built by transformers from a config, its weights are filled from a 64-bit linear
congruential generator that `runners/tests/it/candle_tiny.rs` reproduces bit for bit (so the fixture
holds no weights), and the config.json transformers writes is stored verbatim. The fixture holds,
per model: that config, the tensors in generation order with their shape and value range, token
prompts, the summed log-probability of each prompt's tokens after the first (f32, eager
attention), and 8 greedy tokens after each prompt.

  ~/.cache/probity/venv-torch/bin/python scripts/candle-tiny-reference.py [NAME ...]
      (writes fixtures/data/candle_reference_tiny.json; with names, only those models are
      rebuilt and the others kept as stored, each model recording the versions that made it)
"""

import json
import pathlib
import random
import sys
import tempfile

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    Gemma3TextConfig,
    LlamaConfig,
    MistralConfig,
    MixtralConfig,
    Phi3Config,
    Qwen2Config,
    Qwen3Config,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures/data/candle_reference_tiny.json"
SEED = 20240917
MASK = (1 << 64) - 1

COMMON = dict(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=None,
    pad_token_id=0,
)

CONFIGS = {
    "qwen2": Qwen2Config(**COMMON, num_hidden_layers=2, num_key_value_heads=2, rope_theta=1e6),
    "llama3_rope": LlamaConfig(
        **COMMON,
        num_hidden_layers=2,
        num_key_value_heads=2,
        rope_scaling={
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
    ),
    "linear_rope": LlamaConfig(
        **COMMON,
        num_hidden_layers=2,
        num_key_value_heads=4,
        rope_scaling={"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
    ),
    "gemma3": Gemma3TextConfig(
        **COMMON,
        num_hidden_layers=3,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=8,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
    ),
    "qwen3": Qwen3Config(**COMMON, num_hidden_layers=2, num_key_value_heads=2, head_dim=16, rope_theta=1e6),
    "mistral": MistralConfig(**COMMON, num_hidden_layers=2, num_key_value_heads=2, sliding_window=8),
    "phi3": Phi3Config(**COMMON, num_hidden_layers=2, num_key_value_heads=2, sliding_window=8),
    "mixtral": MixtralConfig(
        **COMMON, num_hidden_layers=2, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2
    ),
    "gemma2": Gemma2Config(
        **COMMON,
        num_hidden_layers=3,
        num_key_value_heads=2,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=8,
        attn_logit_softcapping=2.0,
        final_logit_softcapping=1.5,
    ),
}


class Lcg:
    """x <- x * 6364136223846793005 + 1442695040888963407 (mod 2^64); u = top 24 bits in [-1, 1)."""

    def __init__(self, seed):
        self.state = seed

    def uniform(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return (self.state >> 40) / float(1 << 24) * 2.0 - 1.0


def value_range(name, gemma):
    """(base, scale): values are base + scale * u, computed in f64 and rounded to f32."""
    if name.endswith("norm.weight"):
        return (0.0, 0.1) if gemma else (1.0, 0.1)
    if name.endswith(".bias"):
        return (0.0, 0.1)
    if "embed_tokens" in name:
        return (0.0, 0.1 if gemma else 0.5)
    return (0.0, 0.2)


def build(name, config):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32).eval()
    gemma = name.startswith("gemma")
    lcg = Lcg(SEED)
    tensors = []
    params = dict(model.named_parameters())  # tied weights appear once
    with torch.no_grad():
        for pname in sorted(params):
            p = params[pname]
            base, scale = value_range(pname, gemma)
            values = [base + scale * lcg.uniform() for _ in range(p.numel())]
            p.copy_(torch.tensor(values, dtype=torch.float64).reshape(p.shape).to(torch.float32))
            tensors.append({"name": pname, "shape": list(p.shape), "base": base, "scale": scale})
    with tempfile.TemporaryDirectory() as d:
        model.config.save_pretrained(d)
        saved = json.loads(pathlib.Path(d, "config.json").read_text())
    return model, tensors, saved


def main():
    only = sys.argv[1:]
    old = json.loads(OUT.read_text()) if only else None
    rng = random.Random(7)
    prompts = [[1] + [rng.randrange(3, 256) for _ in range(n)] for n in (5, 11, 23, 40)]
    out = {
        "script": "scripts/candle-tiny-reference.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "seed": SEED,
        "prompts": prompts,
        "models": {},
    }
    versions = out["versions"]
    if old is not None:
        out["versions"], out["models"] = old["versions"], old["models"]
    for name, config in CONFIGS.items():
        if only and name not in only:
            continue
        model, tensors, saved = build(name, config)
        model.generation_config.eos_token_id = None
        logprobs, greedy = [], []
        with torch.no_grad():
            for ids in prompts:
                x = torch.tensor([ids])
                lp = torch.log_softmax(model(x).logits[0].double(), dim=-1)
                logprobs.append(sum(lp[i - 1, ids[i]].item() for i in range(1, len(ids))))
                g = model.generate(x, max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=0)
                greedy.append(g[0, len(ids):].tolist())
        out["models"][name] = {"config": saved, "tensors": tensors, "logprobs": logprobs, "greedy": greedy}
        if only:
            out["models"][name]["versions"] = versions
        print(name, [round(v, 4) for v in logprobs], greedy[0])
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
