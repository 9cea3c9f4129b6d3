#!/usr/bin/env python3
"""Creates the tiny synthetic masked LM of fixtures/data/tiny-mlm/ and the reference
pseudo-log-likelihoods of fixtures/data/tiny_mlm_reference.json, with transformers.

No masked LM with its prediction head (BERT/RoBERTa MLM weights) is available here, so the
CrowS-Pairs masked-LM path (Nangia et al. 2020) is tested on this model: a BertForMaskedLM with 2
layers, hidden size 16, 2 heads and seeded random weights (scaled up so that predictions are far
from uniform), and a character-level WordPiece tokenizer (lower-cased letters, digits and ASCII
punctuation, `##` continuations). It knows no language; it exists to check that the candle
implementation computes the same numbers as transformers. Its weights are Probity's own (about
60 KB), committed so that CI needs no torch.

Reference values: for the first N_PAIRS rows of CrowS-Pairs (read in place from the shared
datasets; no text is written to the fixture, only row ids and numbers), each sentence's
pseudo-log-likelihood of the unmodified tokens exactly as the paper's metric.py computes it:
token ids aligned with difflib.SequenceMatcher(None, ids(sent_more), ids(sent_less)), each token
of an `equal` block except the first ([CLS]) and the last ([SEP]) masked in turn, and
log_softmax of the masked position's logits at the original token summed. Also difflib's matching
blocks for seeded random id sequences, long ones included (autojunk applies from 200 items).

    $HOME/.cache/probity/venv-torch/bin/python scripts/tiny-mlm.py
"""

import csv
import difflib
import json
import os
import platform
import random
import string

import safetensors
import safetensors.torch
import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForMaskedLM

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT_DIR = os.path.join(ROOT, "fixtures", "data", "tiny-mlm")
OUT_REF = os.path.join(ROOT, "fixtures", "data", "tiny_mlm_reference.json")
DATASETS = os.environ.get("PROBITY_DATASETS", os.path.join(ROOT, "..", "shared", "datasets"))
N_PAIRS = 40
SEED = 20261129


def build_tokenizer():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = specials + chars + ["##" + c for c in string.ascii_lowercase + string.digits]
    vocab = {p: i for i, p in enumerate(pieces)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return tok, vocab


def build_model(vocab_size):
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        pad_token_id=0,
        tie_word_embeddings=True,
    )
    config.architectures = ["BertForMaskedLM"]
    torch.manual_seed(SEED)
    model = BertForMaskedLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    model.eval()
    return config, model


def span(a, b):
    """metric.py's get_span: the indices of both sequences inside difflib's `equal` blocks."""
    matcher = difflib.SequenceMatcher(None, [str(x) for x in a], [str(x) for x in b])
    t1, t2 = [], []
    for op in matcher.get_opcodes():
        if op[0] == "equal":
            t1 += list(range(op[1], op[2]))
            t2 += list(range(op[3], op[4]))
    return t1, t2


def pll(model, ids, template, mask_id):
    total = 0.0
    for i in range(1, len(template) - 1):
        masked = list(ids)
        masked[template[i]] = mask_id
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([masked])).logits[0, template[i]]
        total += torch.log_softmax(logits.double(), dim=-1)[ids[template[i]]].item()
    return total


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    tok, vocab = build_tokenizer()
    tok.save(os.path.join(OUT_DIR, "tokenizer.json"))
    config, model = build_model(len(vocab))
    config.to_json_file(os.path.join(OUT_DIR, "config.json"))
    # Every tensor under its own name (tied ones cloned), so that any reader finds
    # cls.predictions.decoder.{weight,bias} without knowing about tying.
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(state, os.path.join(OUT_DIR, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(OUT_DIR, "README.md"), "w") as f:
        f.write(
            "# tiny-mlm: a synthetic masked LM for tests\n\n"
            "Created by `scripts/tiny-mlm.py` (transformers BertForMaskedLM, seeded random weights, "
            "character-level WordPiece tokenizer). It knows no language: it exists to check that "
            "Probity's candle masked-LM path computes the same pseudo-log-likelihoods as transformers. "
            "No real masked LM with its prediction head was available. Probity's own weights, "
            "Apache-2.0.\n"
        )

    mask_id = vocab["[MASK]"]
    pairs = []
    with open(os.path.join(DATASETS, "crows_pairs", "crows_pairs_anonymized.csv"), newline="") as f:
        for row in csv.DictReader(f):
            if len(pairs) == N_PAIRS:
                break
            more = tok.encode(row["sent_more"]).ids
            less = tok.encode(row["sent_less"]).ids
            t1, t2 = span(more, less)
            pairs.append(
                {
                    "id": row[""],
                    "tokens": [len(more), len(less)],
                    "masked": len(t1) - 2,
                    "pll": [pll(model, more, t1, mask_id), pll(model, less, t2, mask_id)],
                }
            )

    rng = random.Random(SEED)
    blocks = []
    for n in [5, 12, 40, 150, 230, 300]:
        for alphabet in [3, 20]:
            a = [rng.randrange(alphabet) for _ in range(n)]
            b = list(a)
            for _ in range(max(1, n // 10)):
                op = rng.randrange(3)
                k = rng.randrange(len(b) + 1)
                if op == 0 and b:
                    del b[min(k, len(b) - 1)]
                elif op == 1:
                    b.insert(k, rng.randrange(alphabet))
                elif b:
                    b[min(k, len(b) - 1)] = rng.randrange(alphabet)
            m = difflib.SequenceMatcher(None, [str(x) for x in a], [str(x) for x in b])
            blocks.append({"a": a, "b": b, "blocks": [list(x) for x in m.get_matching_blocks()]})

    reference = {
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
        },
        "seed": SEED,
        "pairs": pairs,
        "difflib": blocks,
    }
    with open(OUT_REF, "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    print("wrote", OUT_DIR, OUT_REF, sum(os.path.getsize(os.path.join(OUT_DIR, x)) for x in os.listdir(OUT_DIR)), "bytes")


if __name__ == "__main__":
    main()
