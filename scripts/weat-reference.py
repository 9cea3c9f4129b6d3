#!/usr/bin/env python3
"""Reference values for WEAT/SEAT (audit-core::stats::weat and the `weat` probe), computed here
independently with numpy and scipy from the published definitions (Caliskan et al. 2017, as
sent-bias' weat.py computes them: sample std with ddof=1; one-sided permutation p-value over
partitions of X u Y, exact when there are at most n_samples partitions).

Writes fixtures/data/weat_reference.json (with the library versions used). Run from the repo root
with a Python that has numpy, scipy and pyarrow (the lm-eval venv has all three):

    $HOME/.cache/probity/venv-lmeval/bin/python scripts/weat-reference.py

Two parts:
- `toy`: seeded random float32 vectors (stored in the fixture) with exact p-values (every
  partition enumerated with itertools) and one sampled case (its p-value is a Monte-Carlo value
  from numpy's generator: the Rust side draws its own partitions, so tests compare within the
  sampling error);
- `glove`: WEAT 1-10 of sent-bias' tests on GloVe 6B 50d (scripts/fetch-models.sh glove), words
  lower-cased (the vocabulary is uncased) and out-of-vocabulary words left out, as the Rust
  word-vector backend and metric do.
"""

import itertools
import json
import os
import platform
import sys

import numpy as np
import scipy
import scipy.special

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "fixtures", "data", "weat_reference.json")
MODELS = os.environ.get("PROBITY_MODELS", os.path.expanduser("~/.cache/probity/models"))
DATASETS = os.environ.get("PROBITY_DATASETS", os.path.join(ROOT, "..", "shared", "datasets"))
N_SAMPLES = 100_000


def cos(u, v):
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    return float(u @ v / np.sqrt((u @ u) * (v @ v)))


def assoc(w, A, B):
    return np.mean([cos(w, a) for a in A]) - np.mean([cos(w, b) for b in B])


def weat(X, Y, A, B, rng, n_samples=N_SAMPLES):
    sx = np.array([assoc(x, A, B) for x in X])
    sy = np.array([assoc(y, A, B) for y in Y])
    allv = np.concatenate([sx, sy])
    d = (sx.mean() - sy.mean()) / allv.std(ddof=1)
    observed = sx.sum()
    k, n = len(sx), len(allv)
    partitions = scipy.special.comb(n, k, exact=True)
    if partitions <= n_samples:
        hits = sum(1 for c in itertools.combinations(range(n), k) if allv[list(c)].sum() >= observed - 1e-12)
        p, exact = hits / partitions, True
    else:
        hits = 1
        for _ in range(n_samples - 1):
            perm = rng.permutation(n)[:k]
            if allv[perm].sum() >= observed - 1e-12:
                hits += 1
        p, exact = hits / n_samples, False
    return {
        "effect_size": float(d),
        "statistic": float(sx.sum() - sy.sum()),
        "p_value": float(p),
        "exact": exact,
        "partitions": float(partitions),
        "s_x": [float(v) for v in sx],
        "s_y": [float(v) for v in sy],
    }


def toy_cases(rng):
    cases = []
    for name, sizes, dim in [
        ("exact_4_4_5_6", (4, 4, 5, 6), 10),
        ("exact_8_8_8_8", (8, 8, 8, 8), 16),
        ("exact_unequal_5_7_6_6", (5, 7, 6, 6), 12),
        ("sampled_25_25_25_25", (25, 25, 25, 25), 20),
    ]:
        # A planted association: X leans towards A's mean direction, Y towards B's.
        a_dir, b_dir = rng.normal(size=dim), rng.normal(size=dim)
        sets = []
        for i, size in enumerate(sizes):
            lean = [a_dir, b_dir, a_dir, b_dir][i] * 0.4
            sets.append((rng.normal(size=(size, dim)) + lean).astype(np.float32))
        X, Y, A, B = sets
        result = weat(X, Y, A, B, rng)
        result.update({"name": name, "x": X.tolist(), "y": Y.tolist(), "a": A.tolist(), "b": B.tolist()})
        cases.append(result)
    return cases


def glove_cases(rng):
    import pyarrow.parquet as pq

    folder = os.path.join(MODELS, "glove-6b-50d")
    words = pq.read_table(os.path.join(folder, "glove_6B_index.parquet")).column("index").to_pylist()
    vectors = np.load(os.path.join(folder, "glove_6B_50d_emb.npy"))
    index = {w: i for i, w in enumerate(words)}
    out = []
    for t in range(1, 11):
        with open(os.path.join(DATASETS, "weat_seat", "tests", f"weat{t}.jsonl")) as f:
            test = json.load(f)
        sets, missing = [], []
        for key in ("targ1", "targ2", "attr1", "attr2"):
            keep = []
            for word in test[key]["examples"]:
                i = index.get(word.lower())
                if i is None:
                    missing.append(word)
                else:
                    keep.append(vectors[i])
            sets.append(keep)
        result = weat(*sets, rng)
        result.update({"test": f"weat{t}", "missing": missing, "sizes": [len(s) for s in sets]})
        del result["s_x"], result["s_y"]
        out.append(result)
    return out


def main():
    import pyarrow

    rng = np.random.default_rng(20261129)
    fixture = {
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "pyarrow": pyarrow.__version__,
        },
        "n_samples": N_SAMPLES,
        "toy": toy_cases(rng),
        "glove": glove_cases(rng),
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    for case in fixture["glove"]:
        print(case["test"], case["sizes"], "d=%.4f p=%.6g exact=%s missing=%s" % (
            case["effect_size"], case["p_value"], case["exact"], case["missing"]), file=sys.stderr)


if __name__ == "__main__":
    main()
