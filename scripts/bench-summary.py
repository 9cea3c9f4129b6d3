#!/usr/bin/env python3
"""Benchmarks Probity's summary of a 100,000-attempt run against the same statistics computed
with pandas, scipy and statsmodels, on the same attempts, in one invocation.

    scripts/bench-summary.py            (uses $HOME/.cache/probity/venv-stats for scipy)

It writes a counterfactual suite of 9,091 templates × 11 groups (100,001 cases), runs it through
the scripted backend (refusal gap planted for one group), then times
  - `bench_summary` (suites/examples, release): read attempts.jsonl, parse the suite, summarise();
  - Python: read attempts.jsonl, Wilson interval per group (statsmodels proportion_confint),
    exact McNemar per group pair within each axis (statsmodels), Holm and BH (multipletests);
and checks that both give the same numbers.
"""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/probity/target"))


def write_suite(path, n_templates):
    builtin = (ROOT / "suites/builtin/counterfactual-refusal.toml").read_text()
    head = builtin.split("[[probe.template]]")[0].replace('id = "counterfactual-refusal"', 'id = "bench"')
    lines = [head]
    for i in range(n_templates):
        lines.append(f'[[probe.template]]\nid = "t{i:05d}"\ntext = "Request number {i} for {{a_group}}."\n')
    path.write_text("\n".join(lines))


def python_summary(journal):
    import numpy as np, pandas as pd
    from statsmodels.stats.proportion import proportion_confint
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.multitest import multipletests
    rows = [json.loads(l) for l in open(journal)]
    df = pd.DataFrame({
        "axis": [r["attributes"]["axis"] for r in rows],
        "group": [r["attributes"]["group"] for r in rows],
        "template": [r["attributes"]["template"] for r in rows],
        "refused": [r["scores"]["refusal"] >= 0.5 for r in rows],
    })
    rates = df.groupby(["axis", "group"])["refused"].agg(["sum", "count"])
    lo, hi = proportion_confint(rates["sum"], rates["count"], alpha=0.05, method="wilson")
    pvals, names = [], []
    for axis, part in df.groupby("axis"):
        wide = part.pivot(index="template", columns="group", values="refused")
        groups = sorted(wide.columns)
        for i, a in enumerate(groups):
            for b in groups[i + 1:]:
                x, y = wide[a], wide[b]
                table = [[int((x & y).sum()), int((x & ~y).sum())], [int((~x & y).sum()), int((~x & ~y).sum())]]
                pvals.append(mcnemar(table, exact=True).pvalue)
                names.append(f"{axis}:{a}:{b}")
    holm = multipletests(pvals, method="holm")[1]
    bh = multipletests(pvals, method="fdr_bh")[1]
    return dict(zip(names, zip(pvals, holm, bh))), rates, lo, hi


def main():
    n_templates = 9091
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        suite = tmp / "bench.toml"
        write_suite(suite, n_templates)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "suites", "--example", "bench_summary"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "-q", "-p", "probity"], cwd=ROOT, check=True)
        probity = TARGET / "debug/probity"  # only writes the attempts; not timed
        run = tmp / "run"
        subprocess.run([str(probity), "run", "--suite", str(suite), "--backend",
                        f"scripted:{ROOT}/fixtures/profiles/refusal-gap-20.toml", "--quiet", "--out", str(run)], check=True)
        journal = run / "attempts.jsonl"
        n = sum(1 for _ in open(journal))
        t0 = time.perf_counter()
        out = subprocess.run([str(TARGET / "release/examples/bench_summary"), str(suite), str(journal)],
                             check=True, capture_output=True, text=True).stdout
        rust = time.perf_counter() - t0
        t0 = time.perf_counter()
        tests, rates, lo, hi = python_summary(journal)
        py = time.perf_counter() - t0
        ours = json.loads(out)
        worst = 0.0
        for t in ours["tests"]:
            g = [s["group"] for s in t["groups"]]
            key = f'{t["groups"][0]["axis"]}:{g[0]}:{g[1]}'
            p, holm, bh = tests[key]
            worst = max(worst, abs(t["p_value"] - p), abs(t["q_holm"] - holm), abs(t["q_bh"] - bh))
        print(f"attempts: {n}")
        print(f"probity summary (read + parse + summarise, release, 2 cores): {rust:.2f} s")
        print(f"pandas + statsmodels (read + Wilson + exact McNemar + Holm/BH): {py:.2f} s")
        print(f"ratio: {py / rust:.1f}x; largest difference in p/q values: {worst:.2e}")


if __name__ == "__main__":
    sys.exit(main())
