#!/usr/bin/env python3
"""Benchmark: audit-core's BCa bootstrap against scipy.stats.bootstrap on the same binary data.

Run from the repo root with the stats venv (see scripts/stats-reference.py):

    cargo build --release -p audit-core --example bench_bootstrap
    $HOME/.cache/probity/venv-stats/bin/python scripts/bench-bootstrap.py

One invocation draws n binary attempts (numpy, seed 0, rate 0.3), writes them to a temporary
file, runs the Rust example on that file and times scipy on the same array:

* like for like at --small-n (default 20,000): scipy BCa (leave-one-out jackknife) vs audit-core's
  generic `bootstrap` (leave-one-out jackknife), both 10,000 resamples;
* full size (n = 1,000,000): scipy's BCa is O(n^2) in its jackknife (n leave-one-out copies of
  n - 1 values, 10^12 element copies), which does not finish in reasonable time on 2 cores. The
  script measures scipy's resampling part at full size (method="percentile", same 10,000
  resamples, batched) and times scipy's jackknife on --jackknife-rows rows, extrapolating to n
  rows; the estimate is printed as such. Rust runs the generic path at full size (BCa with a
  1,000-group jackknife) and the binary fast path (BCa, exact closed-form jackknife).

`batch` bounds scipy's memory: `batch` resamples of n float64 values at a time (--batch, default
20 at full size: 20 x 10^6 x 8 bytes = 160 MB for the values plus as much for the indices).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy
from scipy import stats

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def mean(x, axis=-1):
    return np.mean(x, axis=axis)


def time_scipy(data, method, n_resamples, batch):
    start = time.perf_counter()
    res = stats.bootstrap((data,), mean, n_resamples=n_resamples, method=method, batch=batch,
                          vectorized=True, confidence_level=0.95, rng=np.random.default_rng(1))
    elapsed = time.perf_counter() - start
    ci = res.confidence_interval
    return elapsed, (float(ci.low), float(ci.high))


def time_jackknife_rows(data, rows, batch):
    """Times scipy's own jackknife generator on the first `rows` leave-one-out rows."""
    from scipy.stats._resampling import _jackknife_resample
    import scipy._lib.array_api_compat.numpy as xp

    start = time.perf_counter()
    done = 0
    for resample in _jackknife_resample(data, batch, xp=xp):
        np.mean(resample, axis=-1)
        done += resample.shape[0]
        if done >= rows:
            break
    return (time.perf_counter() - start) / done


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--small-n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--small-batch", type=int, default=500)
    parser.add_argument("--jackknife-rows", type=int, default=100)
    parser.add_argument("--skip-full-scipy", action="store_true")
    parser.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
        "release", "examples", "bench_bootstrap"))
    args = parser.parse_args()

    data = (np.random.default_rng(0).uniform(size=args.n) < 0.3).astype(np.float64)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("".join("1" if v else "0" for v in data.astype(np.uint8)))
        path = fh.name
    try:
        start = time.perf_counter()
        out = subprocess.run([args.binary, "--data", path, "--resamples", str(args.resamples),
                              "--small-n", str(args.small_n)], check=True, capture_output=True,
                             text=True).stdout
        rust_wall = time.perf_counter() - start
    finally:
        os.unlink(path)
    print(out, end="")
    rust = json.loads(out.strip().splitlines()[-1])
    print(f"rust process wall time {rust_wall:.1f} s (includes reading the data)")

    small = data[: args.small_n]
    scipy_small, ci_small = time_scipy(small, "BCa", args.resamples, args.small_batch)
    print(f"scipy {scipy.__version__} BCa n={args.small_n}: {scipy_small:.2f} s, CI {ci_small}")
    ours_small = rust["generic_small"]["seconds"]
    print(f"ratio (scipy BCa / audit-core generic BCa, n={args.small_n}, leave-one-out both): "
          f"{scipy_small / ours_small:.1f}x")
    fast_small = rust["fast_binary_small"]["seconds"]
    print(f"ratio (scipy BCa / audit-core binary fast path, n={args.small_n}): "
          f"{scipy_small / fast_small:.0f}x")

    if not args.skip_full_scipy:
        per_row = time_jackknife_rows(data, args.jackknife_rows, args.jackknife_rows)
        jackknife_estimate = per_row * args.n
        print(f"scipy jackknife at n={args.n}: {per_row * 1e3:.1f} ms per leave-one-out row, "
              f"estimated {jackknife_estimate:.0f} s for all {args.n} rows")
        scipy_full, ci_full = time_scipy(data, "percentile", args.resamples, args.batch)
        print(f"scipy percentile n={args.n}, {args.resamples} resamples, batch={args.batch}: "
              f"{scipy_full:.1f} s, CI {ci_full}")
        scipy_bca = scipy_full + jackknife_estimate
        print(f"scipy BCa n={args.n} (measured resampling + estimated jackknife): "
              f"{scipy_bca:.0f} s")
        for key, label in [("generic_grouped_jackknife", "generic path"),
                           ("fast_binary", "binary fast path")]:
            seconds = rust[key]["seconds"]
            print(f"ratio (scipy resampling only / audit-core {label} BCa, n={args.n}): "
                  f"{scipy_full / seconds:.1f}x")
            print(f"ratio (scipy BCa estimated / audit-core {label} BCa, n={args.n}): "
                  f"{scipy_bca / seconds:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
