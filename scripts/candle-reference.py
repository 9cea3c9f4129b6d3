#!/usr/bin/env python3
"""Reference outputs for the candle backend's tests, from PyTorch transformers on the same GGUF.

transformers loads the GGUF file (gguf_file=...), dequantizes it to float32 and rebuilds the
tokenizer from the GGUF metadata. This script writes, for one model:

  fixtures/data/candle_tokenizer_<name>.json   token ids of test texts, rendered chat templates
  fixtures/data/candle_reference_<name>.json   per-sentence log-likelihoods of CrowS-Pairs
                                               sentences (BOS-prefixed, as lm-evaluation-harness
                                               scores an empty context) and greedy generations
                                               for chat prompts and raw prompts

with the library versions. Run it in the venv that scripts/bench-candle.sh also uses:

  python3 -m venv ~/.cache/probity/venv-torch
  ~/.cache/probity/venv-torch/bin/pip install torch transformers gguf accelerate sentencepiece protobuf
  ~/.cache/probity/venv-torch/bin/python scripts/candle-reference.py smollm2 [--sentences 240]
  ~/.cache/probity/venv-torch/bin/python scripts/candle-reference.py gemma3
  ~/.cache/probity/venv-torch/bin/python scripts/candle-reference.py qwen0.5b
  ~/.cache/probity/venv-torch/bin/python scripts/candle-reference.py minilm
"""

import argparse
import csv
import json
import os
import pathlib
import sys

MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
    "qwen0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
}

# Tool definitions for templates with a tools branch (Qwen 2.5). Every object's keys are in
# sorted order: Probity passes tools to the template as JSON objects whose keys it iterates in
# sorted order, while Python keeps insertion order; sorted keys make both the same.
TOOLS = [
    {
        "function": {
            "description": "Get the current weather in a city.",
            "name": "get_weather",
            "parameters": {
                "properties": {
                    "city": {"description": "The city, e.g. Zürich", "type": "string"},
                    "unit": {"enum": ["celsius", "fahrenheit"], "type": "string"},
                },
                "required": ["city"],
                "type": "object",
            },
        },
        "type": "function",
    },
    {
        "function": {
            "description": "Add two numbers.",
            "name": "add",
            "parameters": {
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
                "type": "object",
            },
        },
        "type": "function",
    },
]

# Texts that exercise the tokenizer: Unicode, digits, runs of spaces, newlines, special tokens.
TOKENIZER_TEXTS = [
    "The capital of France is",
    "The capital",
    " capital",
    "Hello, world!",
    "  two leading spaces",
    "trailing spaces   ",
    "a  b   c    d",
    "tabs\tand\nnewlines\n\nand\r\nCRLF",
    "1234567890 and 3.14159 and 1,000,000",
    "Ünïcödé: café, naïve, Straße, Œuvre",
    "日本語のテキストと中文文本",
    "emoji 🙂👍🏽 and symbols ∑∫√ ≠ ≤",
    "Привет, мир! Γειά σου Κόσμε",
    "don't can't won't I'm you're they've we'll he'd",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "code: fn main() { println!(\"{}\", x + 1); }",
    "    indented line\n        deeper",
    "",
    " ",
    "The nurse said that she would be late.",
    "<start_of_turn>user\nHello<end_of_turn>\n",
    "<bos>text",
    "mixed\u00a0no-break\u2009thin space",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Name a colour."},
    ],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about cats."},
    ],
    [{"role": "user", "content": "  spaces and\nnewlines\n"}],
    [{"role": "user", "content": "Ünïcödé 日本語 🙂"}],
]

CHAT_PROMPTS = [
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
    "Is it safe to mix bleach and ammonia?",
    "Tell me a fun fact about octopuses.",
    "What are the primary colours?",
    "Summarize the plot of Cinderella.",
    "How many legs does a spider have?",
    "What is the boiling point of water?",
    "Name a famous scientist.",
    "Why is the sky blue?",
    "Write a short greeting for a birthday card.",
]

MINILM_TEXTS = [
    "The nurse said that she would be late.",
    "The engineer fixed the bridge.",
    "A man is playing a guitar.",
    "Ünïcödé café naïve 日本語",
    "",
    "word " * 300,
    "Short.",
    "Women are bad at math.",
]

RAW_PROMPTS = [
    "The capital of France is",
    "Once upon a time",
    "The nurse said that",
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=sorted(MODELS) + ["minilm"])
    parser.add_argument("--sentences", type=int, default=240)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--out", default="fixtures/data")
    args = parser.parse_args()
    if args.model == "minilm":
        minilm_reference()
        return

    import torch
    import transformers
    import tokenizers
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(int(os.environ.get("REFERENCE_THREADS", "2")))
    models = pathlib.Path(os.environ.get("PROBITY_MODELS", pathlib.Path.home() / ".cache/probity/models"))
    path = models / MODELS[args.model]
    if not path.exists():
        sys.exit(f"error: {path} is missing; run scripts/fetch-models.sh {args.model}")

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, torch_dtype=torch.float32
    )
    model.eval()
    versions = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "gguf": gguf.__version__ if hasattr(gguf, "__version__") else "unknown",
        "python": sys.version.split()[0],
    }
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    tokenizer_cases = [
        {"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in TOKENIZER_TEXTS
    ]
    # A text whose ids fall outside the vocabulary exposes a bug of transformers' GGUF tokenizer
    # conversion (Gemma: a run of two spaces maps to id 262144); such texts are kept with a flag
    # and not compared.
    vocab = model_vocab_size(path)
    for case in tokenizer_cases:
        case["out_of_vocabulary"] = any(i >= vocab for i in case["ids"])
    templates = []
    for conv in CONVERSATIONS if tok.chat_template else []:
        templates.append(
            {
                "messages": conv,
                "rendered": tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True),
            }
        )
    # The tools branch, where the template has one (Qwen 2.5), with and without a system message.
    for conv in CONVERSATIONS[:3] if tok.chat_template and "tools" in tok.chat_template else []:
        templates.append(
            {
                "messages": conv,
                "tools": TOOLS,
                "rendered": tok.apply_chat_template(
                    conv, tools=TOOLS, tokenize=False, add_generation_prompt=True
                ),
            }
        )
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"candle_tokenizer_{args.model}.json").write_text(
        json.dumps(
            {
                "model": path.name,
                "source": "transformers AutoTokenizer.from_pretrained(gguf_file=...): the tokenizer rebuilt from GGUF metadata",
                "versions": versions,
                "tokens": tokenizer_cases,
                "chat_templates": templates,
            },
            ensure_ascii=False,
            indent=1,
        )
        + "\n"
    )

    csv_path = pathlib.Path(os.environ.get("CROWS_PAIRS", "/work/shared/datasets/crows_pairs/crows_pairs_anonymized.csv"))
    if not csv_path.exists():
        csv_path = pathlib.Path(__file__).resolve().parent.parent.parent / "shared/datasets/crows_pairs/crows_pairs_anonymized.csv"
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    sentences = [r["sent_more"] for r in rows[: args.sentences]]
    scored = []
    skipped = []
    with torch.no_grad():
        for s in sentences:
            ids = [bos] + tok(s, add_special_tokens=False)["input_ids"]
            if any(i >= vocab for i in ids):
                skipped.append(s)
                continue
            x = torch.tensor([ids])
            logits = model(x).logits[0].double()
            lp = torch.log_softmax(logits, dim=-1)
            token_lp = [lp[i - 1, ids[i]].item() for i in range(1, len(ids))]
            scored.append({"sentence": s, "ids": ids, "logprob": sum(token_lp)})

        stop_ids = [tok.eos_token_id]
        for name in ["<|im_end|>", "<end_of_turn>", "<|endoftext|>", "<eos>"]:
            i = tok.convert_tokens_to_ids(name)
            if isinstance(i, int) and i != tok.unk_token_id and i not in stop_ids and i is not None:
                stop_ids.append(i)
        generations = []
        for prompt in CHAT_PROMPTS if tok.chat_template else []:
            text = tok.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            ids = tok(text, add_special_tokens=False)["input_ids"]
            generations.append(generate(model, tok, prompt, "chat", ids, stop_ids, args.max_new_tokens))
        for prompt in RAW_PROMPTS + ([] if tok.chat_template else CHAT_PROMPTS):
            ids = ([bos] if tok.add_bos_token else []) if hasattr(tok, "add_bos_token") else []
            ids = ids + tok(prompt, add_special_tokens=False)["input_ids"]
            generations.append(generate(model, tok, prompt, "raw", ids, stop_ids, args.max_new_tokens))

    (out / f"candle_reference_{args.model}.json").write_text(
        json.dumps(
            {
                "model": path.name,
                "how": "transformers AutoModelForCausalLM.from_pretrained(gguf_file=..., torch_dtype=float32): "
                "weights dequantized to float32; sentence log-likelihood = sum of log p(token | prefix) "
                "with the BOS id as the first prefix (lm-evaluation-harness, empty context); greedy "
                "generation with do_sample=False",
                "versions": versions,
                "bos": bos,
                "stop_ids": stop_ids,
                "max_new_tokens": args.max_new_tokens,
                "sentences": scored,
                "skipped_out_of_vocabulary": skipped,
                "generations": generations,
            },
            ensure_ascii=False,
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out}/candle_tokenizer_{args.model}.json and candle_reference_{args.model}.json")


def minilm_reference():
    """all-MiniLM-L6-v2 as sentence-transformers runs it (modules.json): BERT, mean pooling over
    real tokens, L2 normalization; written to fixtures/data/candle_reference_minilm.json."""
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(2)
    models = pathlib.Path(os.environ.get("PROBITY_MODELS", pathlib.Path.home() / ".cache/probity/models"))
    folder = models / "all-MiniLM-L6-v2"
    if not folder.exists():
        sys.exit(f"error: {folder} is missing; run scripts/fetch-models.sh minilm")
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for text in MINILM_TEXTS:
            enc = tok([text], return_tensors="pt", truncation=True, max_length=256)
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out.append({"text": text, "ids": enc["input_ids"][0].tolist(), "embedding": pooled[0].tolist()})
    path = pathlib.Path("fixtures/data/candle_reference_minilm.json")
    path.write_text(
        json.dumps(
            {
                "model": "all-MiniLM-L6-v2",
                "how": "transformers AutoModel, mean pooling over the attention mask, L2 normalization, max_length 256",
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
                "embeddings": out,
            },
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"wrote {path}")



def model_vocab_size(path):
    import gguf

    reader = gguf.GGUFReader(str(path))
    return len(reader.fields["tokenizer.ggml.tokens"].data)


def generate(model, tok, prompt, kind, ids, stop_ids, max_new_tokens):
    import torch

    x = torch.tensor([ids])
    y = model.generate(
        x,
        attention_mask=torch.ones_like(x),
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=stop_ids,
        pad_token_id=stop_ids[0],
    )
    new = y[0, len(ids):].tolist()
    if new and new[-1] in stop_ids:
        new = new[:-1]
    return {
        "kind": kind,
        "prompt": prompt,
        "prompt_ids": ids,
        "generated_ids": new,
        "text": tok.decode(new, skip_special_tokens=True),
    }


if __name__ == "__main__":
    main()
