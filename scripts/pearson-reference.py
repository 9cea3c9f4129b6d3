#!/usr/bin/env python3
"""Reference values for audit-core's Pearson correlation (stats/correlation.rs), from scipy.

Writes fixtures/data/pearson_reference.json (with the library versions used). Run from the repo
root:

    $HOME/.cache/probity/venv-stats/bin/python scripts/pearson-reference.py

Each case holds x, y, scipy.stats.pearsonr's r and two-sided p-value, and its Fisher-z
confidence interval (`result.confidence_interval(level)`, scipy's default method) at 95% and
90%. One case is the real Winogender file: BLS against Bergsma % female of its 60 occupations
(read from ../shared/datasets/winogender/occupations-stats.tsv when present).
"""

import csv
import json
import os
import platform
import sys

import numpy as np
import scipy
import scipy.stats as st

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "fixtures", "data", "pearson_reference.json")
STATS = os.path.join(ROOT, "..", "shared", "datasets", "winogender", "occupations-stats.tsv")
rng = np.random.RandomState(20261129)

cases = []


def add(name, x, y):
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    result = st.pearsonr(x, y)
    case = {"name": name, "x": x, "y": y, "r": float(result.statistic), "p": float(result.pvalue)}
    for level in (0.95, 0.9):
        ci = result.confidence_interval(level)
        case[f"ci_{int(level * 100)}"] = [float(ci.low), float(ci.high)]
    cases.append(case)


add("hand: perfect line", [1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
add("hand: negative", [1, 2, 3, 4, 5], [5, 3, 4, 1, 2])
add("hand: four points", [0, 1, 2, 3], [1, 3, 2, 5])
for n in (5, 12, 60, 200):
    x = rng.normal(size=n)
    add(f"random independent n={n}", x, rng.normal(size=n))
    add(f"random correlated n={n}", x, 0.6 * x + rng.normal(size=n))
with open(STATS) as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
add(
    "winogender occupations-stats.tsv: bls vs bergsma % female",
    [r["bls_pct_female"] for r in rows],
    [r["bergsma_pct_female"] for r in rows],
)

with open(OUT, "w") as f:
    json.dump(
        {
            "generator": "scripts/pearson-reference.py",
            "python": platform.python_version(),
            "scipy": scipy.__version__,
            "numpy": np.__version__,
            "cases": cases,
        },
        f,
        indent=1,
    )
    f.write("\n")
print(f"wrote {len(cases)} cases to {OUT}", file=sys.stderr)
