#!/usr/bin/env python3
"""Reference values for audit-core's statistics, from scipy and statsmodels.

Writes fixtures/data/stats_reference.json (with the library versions used). Run from the repo root:

    python3 -m venv $HOME/.cache/probity/venv-stats
    $HOME/.cache/probity/venv-stats/bin/pip install scipy statsmodels numpy
    $HOME/.cache/probity/venv-stats/bin/python scripts/stats-reference.py

Every case is deterministic (fixed numpy seeds). Functions without a library implementation
(Newcombe's paired interval, mid-p McNemar, McNemar power, Rogan-Gladen) are computed here from
their published formulas on top of statsmodels' Wilson interval and scipy's distributions; the
Rust tests also check the published worked examples for those.
"""

import json
import math
import os
import platform
import sys

import numpy as np
import scipy
import scipy.stats as st
import statsmodels
from scipy.optimize import brentq
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.descriptivestats import sign_test
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
)

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "data", "stats_reference.json")
rng = np.random.RandomState(20260129)
CONF = [0.95, 0.9, 0.99, 0.8, 0.999]


def f(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def proportion_cases():
    cases = [(0, 10), (10, 10), (0, 1), (1, 1), (1, 2), (5, 10), (1, 100), (99, 100), (0, 1000),
             (1, 1000000), (500000, 1000000), (999999, 1000000), (3, 7), (17, 40), (2, 3),
             (0, 2), (250, 251), (12345, 67890), (1, 10000000), (7, 1000000)]
    for _ in range(20):
        n = int(rng.choice([5, 20, 50, 200, 1000, 100000]))
        cases.append((int(rng.randint(0, n + 1)), n))
    return cases


def wilson_and_cp():
    w, cp = [], []
    for i, (k, n) in enumerate(proportion_cases()):
        c = CONF[i % len(CONF)]
        lo, hi = proportion_confint(k, n, alpha=1 - c, method="wilson")
        w.append(dict(k=k, n=n, confidence=c, low=f(lo), high=f(hi)))
        lo, hi = proportion_confint(k, n, alpha=1 - c, method="beta")
        if k == 0:
            lo = 0.0
        if k == n:
            hi = 1.0
        cp.append(dict(k=k, n=n, confidence=c, low=f(lo), high=f(hi)))
    return w, cp


def two_group_cases():
    cases = [(0, 10, 0, 10), (10, 10, 10, 10), (0, 10, 10, 10), (10, 10, 0, 10), (1, 1, 0, 1),
             (5, 10, 5, 10), (56, 70, 48, 80), (9, 10, 3, 10), (6, 7, 2, 7), (5, 56, 0, 29),
             (0, 10, 0, 20), (10, 10, 0, 20), (10, 10, 10, 20), (1, 1000000, 0, 1000000),
             (500000, 1000000, 499000, 1000000), (3, 3, 0, 5), (2, 50, 3, 60), (1, 2, 1, 3),
             (100, 200, 80, 190), (0, 1, 1, 1)]
    for _ in range(20):
        n1 = int(rng.choice([5, 20, 100, 1000]))
        n2 = int(rng.choice([5, 20, 100, 1000]))
        cases.append((int(rng.randint(0, n1 + 1)), n1, int(rng.randint(0, n2 + 1)), n2))
    return cases


def newcombe():
    out = []
    for i, (k1, n1, k2, n2) in enumerate(two_group_cases()):
        c = CONF[i % len(CONF)]
        lo, hi = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff",
                                            alpha=1 - c)
        out.append(dict(k1=k1, n1=n1, k2=k2, n2=n2, confidence=c, low=f(lo), high=f(hi)))
    return out


def newcombe_paired_formula(a, b, c, d, conf):
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = proportion_confint(a + b, n, alpha=1 - conf, method="wilson")
    l2, u2 = proportion_confint(a + c, n, alpha=1 - conf, method="wilson")
    l1, u1, l2, u2 = max(l1, 0.0), min(u1, 1.0), max(l2, 0.0), min(u2, 1.0)
    if a + b == 0:
        l1 = 0.0
    if a + c == 0:
        l2 = 0.0
    if a + b == n:
        u1 = 1.0
    if a + c == n:
        u2 = 1.0
    den = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    # Newcombe's correlation estimate with his correction towards zero, as R's
    # contingencytables::Newcombe_square_and_add_CI_paired_2x2.
    if den == 0:
        phi = 0.0
    elif cross > n / 2:
        phi = (cross - n / 2) / math.sqrt(den)
    elif cross >= 0:
        phi = 0.0
    else:
        phi = cross / math.sqrt(den)
    diff = p1 - p2
    dl2 = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    du2 = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return max(diff - math.sqrt(max(dl2, 0)), -1.0), min(diff + math.sqrt(max(du2, 0)), 1.0)


def paired_tables():
    cases = [(0, 0, 0, 10), (10, 0, 0, 0), (0, 5, 0, 0), (0, 0, 5, 0), (1, 0, 0, 0), (0, 1, 0, 0),
             (43, 8, 0, 5), (36, 12, 2, 6), (5, 5, 5, 5), (29, 5, 4, 12), (0, 0, 0, 1),
             (1000, 30, 10, 5000), (2, 3, 4, 5), (100000, 5000, 4800, 200000), (0, 7, 3, 0),
             (1, 1, 1, 1), (50, 0, 10, 40), (3, 0, 0, 7), (0, 25, 25, 0), (12, 9, 2, 1)]
    for _ in range(20):
        t = rng.randint(0, int(rng.choice([5, 30, 200])), size=4)
        cases.append(tuple(int(v) for v in t))
    return cases


def newcombe_paired():
    out = []
    for i, (a, b, c, d) in enumerate(paired_tables()):
        conf = CONF[i % len(CONF)]
        if a + b + c + d == 0:
            continue
        lo, hi = newcombe_paired_formula(a, b, c, d, conf)
        out.append(dict(a=a, b=b, c=c, d=d, confidence=conf, low=f(lo), high=f(hi)))
    return out


def mcnemar_cases():
    cases = [(0, 0), (1, 0), (0, 1), (1, 1), (5, 0), (10, 2), (2, 10), (25, 25), (100, 80),
             (1000, 900), (3, 12), (0, 30), (7, 8), (50, 1), (10000, 9800), (123456, 122000),
             (1, 2), (4, 9), (17, 3), (60, 40)]
    for _ in range(20):
        cases.append((int(rng.randint(0, 60)), int(rng.randint(0, 60))))
    exact, midp = [], []
    for b, c in cases:
        r = mcnemar(np.array([[10, b], [c, 10]]), exact=True)
        exact.append(dict(b=b, c=c, statistic=f(r.statistic), p_value=f(r.pvalue)))
        n, k = b + c, min(b, c)
        p = 1.0 if n == 0 else min(1.0, 2 * st.binom.cdf(k, n, 0.5) - st.binom.pmf(k, n, 0.5))
        midp.append(dict(b=b, c=c, statistic=f(k), p_value=f(p)))
    return exact, midp


def fisher():
    cases = [(1, 9, 11, 3), (8, 2, 1, 5), (0, 5, 5, 0), (5, 0, 0, 5), (3, 3, 3, 3), (0, 0, 5, 5),
             (1, 0, 0, 1), (0, 1, 1, 0), (10, 10, 10, 11), (100, 50, 60, 120), (2, 7, 8, 2),
             (1000, 980, 950, 1010), (0, 10, 1, 9), (20, 0, 15, 5), (1, 1, 1, 1), (7, 12, 0, 3),
             (3, 1, 1, 3), (50, 50, 50, 50), (9, 1, 1, 9), (4, 0, 0, 1)]
    for _ in range(20):
        cases.append(tuple(int(v) for v in rng.randint(0, int(rng.choice([6, 30, 300])), size=4)))
    out = []
    for a, b, c, d in cases:
        if (a + b) == 0 or (c + d) == 0 or (a + c) == 0 or (b + d) == 0:
            continue
        stat, p = st.fisher_exact([[a, b], [c, d]])
        out.append(dict(a=a, b=b, c=c, d=d, statistic=f(stat), p_value=f(p)))
    return out


def chi_square():
    cases = [([10, 20], [50, 50]), ([5, 5, 5], [10, 10, 10]), ([0, 3, 6], [10, 10, 10]),
             ([1, 2, 3, 4], [10, 10, 10, 10]), ([100, 150, 120], [1000, 1000, 900]),
             ([7, 0], [7, 10]), ([50, 40, 30, 20, 10], [60, 60, 60, 60, 60]),
             ([1, 1], [2, 3]), ([10000, 10100, 9900], [100000, 100000, 100000]), ([3, 9], [4, 10])]
    while len(cases) < 35:
        k = int(rng.randint(2, 7))
        totals = [int(v) for v in rng.randint(1, int(rng.choice([10, 100, 1000])), size=k)]
        succ = [int(rng.randint(0, t + 1)) for t in totals]
        if 0 < sum(succ) < sum(totals):
            cases.append((succ, totals))
    out = []
    for succ, totals in cases:
        table = np.array([[s, t - s] for s, t in zip(succ, totals)])
        chi, p, dof, _ = st.chi2_contingency(table, correction=False)
        v = st.contingency.association(table, method="cramer", correction=False)
        out.append(dict(successes=succ, totals=totals, statistic=f(chi), p_value=f(p),
                        cramers_v=f(v)))
    return out


def cohens_h():
    out = []
    pts = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.5, 0.5), (0.2, 0.1), (0.99, 0.01), (0.5, 0.45)]
    while len(pts) < 30:
        pts.append((float(rng.uniform()), float(rng.uniform())))
    for p1, p2 in pts:
        out.append(dict(p1=p1, p2=p2, h=f(proportion_effectsize(p1, p2))))
    return out


def binomtest():
    cases = [(0, 10, 0.5), (10, 10, 0.5), (5, 10, 0.5), (1, 1, 0.5), (0, 1, 0.5), (3, 20, 0.5),
             (682, 925, 0.75), (7, 10, 0.3), (0, 100, 0.01), (50, 100, 0.01), (1, 2, 0.5),
             (520, 1000, 0.5), (51000, 100000, 0.5), (2, 9, 0.1), (9, 9, 0.9), (3, 1000, 0.001),
             (40, 50, 0.25), (500, 1000, 0.5), (12, 30, 0.4), (1, 100000, 0.00001)]
    for _ in range(20):
        n = int(rng.choice([5, 30, 300, 3000]))
        cases.append((int(rng.randint(0, n + 1)), n, float(round(rng.uniform(0.05, 0.95), 3))))
    return [dict(k=k, n=n, p0=p0, statistic=f(k / n), p_value=f(st.binomtest(k, n, p0).pvalue))
            for k, n, p0 in cases]


def samples_for_paired():
    cases = [
        [1.0, -2.0, 3.0, 4.0, -5.0, 6.0, 7.0, 8.0],
        [0.5, 1.5, 2.5, -0.25, 3.0, 4.5, 5.5, 6.5, 7.5, -8.5],
        [1.0, 2.0, 3.0, 4.0, 5.0],
        [-1.0, -2.0, -3.0],
        [1.0, 1.0, -1.0, 2.0, 2.0, -2.0, 3.0, 0.0, 0.0, 4.0, 5.0, 5.0, 6.0, -7.0, 8.0],
        [0.1],
        [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, -2.0],
        [1.0, 1.0, 2.0, -2.0, 0.0, 3.0, 3.0, 3.0, -1.0],
        [0.0, 0.0, 1.5, 2.5, -0.5, 1.5],
        [4.0, 4.0, 4.0, 4.0],
        [1.0, -1.0, 1.0, -1.0, 2.0, 2.0, 0.0, 5.0, 5.0, -5.0, 6.0, 7.0, 7.0],
    ]
    for i in range(33):
        n = int([6, 10, 20, 30, 49, 60, 120][i % 7])
        x = rng.normal(0.3 * (i % 3), 1.0, size=n)
        if i % 4 == 0:
            x = np.round(x * 2) / 2  # ties and zeros
        cases.append([float(v) for v in x])
    return cases


def wilcoxon():
    out = []
    for i, d in enumerate(samples_for_paired()):
        arr = np.array(d)
        nz = arr[arr != 0]
        if len(nz) == 0:
            continue
        for method, corr in [("auto", False), ("asymptotic", True), ("asymptotic", False),
                             ("exact", False)]:
            if method == "exact" and len(nz) > 60:
                continue
            untied = len(np.unique(np.abs(nz))) == len(nz) and len(nz) == len(arr)
            if method == "auto" and not (len(arr) <= 13 or (len(arr) <= 50 and untied)):
                # Larger auto cases are the asymptotic ones, tested as "asymptotic".
                continue
            r = st.wilcoxon(arr, zero_method="wilcox", correction=corr, method=method)
            out.append(dict(d=d, method=method, correction=corr, statistic=f(r.statistic),
                            p_value=f(r.pvalue)))
    return out


def sign():
    out = []
    for d in samples_for_paired():
        m, p = sign_test(np.array(d), 0.0)
        out.append(dict(d=d, statistic=f(m), p_value=f(p)))
    return out


def two_sample_cases():
    cases = [
        ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),
        ([1.0, 2.0, 3.0, 4.0], [1.5, 2.5]),
        ([1.0, 1.0, 2.0, 2.0, 3.0], [2.0, 3.0, 3.0, 4.0]),
        ([5.0], [1.0, 2.0, 3.0]),
        ([1.0, 2.0], [1.0, 2.0]),
        ([0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0, 1.0]),
        ([3.1, 2.7, 4.4, 5.0, 3.3, 2.2, 4.1, 3.9, 4.8, 5.2],
         [2.0, 1.5, 3.2, 2.8, 2.2, 3.0, 1.9, 2.6, 3.4, 2.4, 2.1]),
    ]
    for i in range(33):
        n1 = int([4, 6, 8, 9, 15, 30, 100][i % 7])
        n2 = int([5, 3, 8, 12, 15, 40, 80][(i + 2) % 7])
        x = rng.normal(0.0, 1.0, size=n1)
        y = rng.normal(0.4 * (i % 3), 1.0 + 0.5 * (i % 2), size=n2)
        if i % 5 == 0:
            x, y = np.round(x), np.round(y)
        cases.append(([float(v) for v in x], [float(v) for v in y]))
    return cases


def two_sample():
    mwu, welch, d_out, rb = [], [], [], []
    for x, y in two_sample_cases():
        xa, ya = np.array(x), np.array(y)
        ties = len(np.unique(np.concatenate([xa, ya]))) < len(xa) + len(ya)
        for method in ["asymptotic", "exact", "auto"]:
            if method == "exact" and (ties or len(x) * len(y) > 2500):
                continue
            if len(np.unique(np.concatenate([xa, ya]))) == 1:
                continue
            r = st.mannwhitneyu(xa, ya, method=method, use_continuity=True)
            mwu.append(dict(x=x, y=y, method=method, statistic=f(r.statistic), p_value=f(r.pvalue)))
        if len(x) >= 2 and len(y) >= 2 and (np.var(xa) > 0 or np.var(ya) > 0):
            r = st.ttest_ind(xa, ya, equal_var=False)
            welch.append(dict(x=x, y=y, statistic=f(r.statistic), p_value=f(r.pvalue)))
        if len(x) + len(y) > 2:
            pooled = math.sqrt(((len(x) - 1) * np.var(xa, ddof=1 if len(x) > 1 else 0)
                                + (len(y) - 1) * np.var(ya, ddof=1 if len(y) > 1 else 0))
                               / (len(x) + len(y) - 2))
            if pooled > 0:
                d_out.append(dict(x=x, y=y, d=f((xa.mean() - ya.mean()) / pooled)))
        u1 = st.mannwhitneyu(xa, ya, method="asymptotic").statistic
        rb.append(dict(x=x, y=y, r=f(2 * u1 / (len(x) * len(y)) - 1)))
    return mwu, welch, d_out, rb


def multiplicity():
    out = []
    fams = [[0.01, 0.02, 0.03, 0.04, 0.05], [0.5], [0.0, 1.0], [0.001, 0.001, 0.001],
            [0.04, 0.01, float("nan"), 0.03], [1.0, 1.0, 1.0], [0.2, 0.1, 0.05, 0.3, 0.01, 0.6],
            [1e-10, 0.5, 0.049, 0.051], [float("nan"), float("nan"), 0.02], []]
    while len(fams) < 35:
        m = int(rng.randint(1, 40))
        p = rng.uniform(size=m) ** float(rng.choice([1, 2, 4]))
        if m > 3 and rng.uniform() < 0.3:
            p[0] = p[1]
        fams.append([float(v) for v in p])
    for p in fams:
        arr = np.array(p, dtype=float)
        mask = ~np.isnan(arr)
        holm = np.full(len(arr), np.nan)
        bh = np.full(len(arr), np.nan)
        if mask.any():
            holm[mask] = multipletests(arr[mask], method="holm")[1]
            bh[mask] = multipletests(arr[mask], method="fdr_bh")[1]
        out.append(dict(p=[f(v) for v in p], holm=[f(v) for v in holm], bh=[f(v) for v in bh]))
    return out


def power():
    ind, paired = [], []
    combos = []
    for n in [20, 50, 100, 500, 1000, 10000]:
        for alpha, pw, base in [(0.05, 0.8, 0.5), (0.05, 0.9, 0.1), (0.01, 0.8, 0.3),
                                (0.1, 0.8, 0.05), (0.05, 0.5, 0.9)]:
            combos.append((n, alpha, pw, base))
    for n, alpha, pw, base in combos:
        solver = NormalIndPower()
        h_statsmodels = solver.solve_power(effect_size=None, nobs1=n, alpha=alpha, power=pw,
                                           ratio=1.0, alternative="two-sided")
        # solve_power stops at brentq's default tolerance (about 1e-7 relative); the reference
        # is the root of statsmodels' own power function solved to machine precision.
        h = brentq(lambda e: solver.power(e, n, alpha, ratio=1.0, alternative="two-sided") - pw,
                   1e-12, 20.0, xtol=1e-15, rtol=1e-15)
        assert abs(h - h_statsmodels) < 1e-4 * h, (h, h_statsmodels)
        phi = 2 * math.asin(math.sqrt(base))
        p2 = math.sin(min((phi + h) / 2, math.pi / 2)) ** 2
        ind.append(dict(n=n, alpha=alpha, power=pw, baseline=base, h=f(h),
                        h_solve_power=f(h_statsmodels), difference=f(p2 - base)))
    for n in [20, 50, 100, 500, 1000, 10000]:
        for alpha, pw, disc in [(0.05, 0.8, 0.2), (0.05, 0.9, 0.1), (0.01, 0.8, 0.3),
                                (0.1, 0.8, 0.05), (0.05, 0.5, 0.5)]:
            za, zb = st.norm.isf(alpha / 2), st.norm.isf(1 - pw)
            # Connor (1987): sqrt(n)|delta| = za sqrt(pd) + zb sqrt(pd - delta^2).
            g = lambda dl: math.sqrt(n) * dl - za * math.sqrt(disc) - zb * math.sqrt(disc - dl * dl)
            delta = brentq(g, 0.0, disc, xtol=1e-15, rtol=1e-15) if g(disc) > 0 else disc
            paired.append(dict(n=n, alpha=alpha, power=pw, discordance=disc, difference=f(delta)))
    return ind, paired


def distributions():
    chi, t = [], []
    for x, df in [(0.5, 1), (3.84, 1), (10.0, 1), (50.0, 1), (200.0, 3), (1e-5, 2), (30.0, 10),
                  (100.0, 5), (7.0, 4), (0.1, 7), (400.0, 2), (1.0, 1), (25.0, 25), (60.0, 20)]:
        chi.append(dict(x=x, df=df, sf=f(st.chi2.sf(x, df))))
    for x, df in [(0.5, 3.3), (2.0, 10.0), (5.0, 4.5), (10.0, 30.2), (30.0, 2.0), (1.0, 1.0),
                  (3.0, 200.0), (8.0, 57.3), (0.01, 5.0), (15.0, 12.7), (50.0, 100.0),
                  (4.0, 1000.0)]:
        t.append(dict(x=x, df=df, sf=f(st.t.sf(x, df))))
    return chi, t


def resampling():
    """Monte-Carlo references: scipy's bootstrap and permutation tests on small data sets."""
    boot, paired_perm, two_perm = [], [], []
    local = np.random.RandomState(7)
    datasets = [local.normal(1.0, 2.0, size=40), local.exponential(1.0, size=60),
                (local.uniform(size=80) < 0.3).astype(float), local.lognormal(0, 1, size=30),
                local.normal(0, 1, size=25)]
    while len(datasets) < 30:
        i = len(datasets)
        n = [20, 35, 50, 70][i % 4]
        kind = i % 3
        if kind == 0:
            datasets.append(local.normal(0.5, 1.5, size=n))
        elif kind == 1:
            datasets.append(local.gamma(2.0, 1.0, size=n))
        else:
            datasets.append((local.uniform(size=n) < 0.2 + 0.02 * i).astype(float))
    for data in datasets:
        res_p = st.bootstrap((data,), np.mean, n_resamples=100000, method="percentile",
                             confidence_level=0.95, rng=np.random.default_rng(1))
        res_b = st.bootstrap((data,), np.mean, n_resamples=100000, method="BCa",
                             confidence_level=0.95, rng=np.random.default_rng(1))
        boot.append(dict(data=[float(v) for v in data], statistic="mean",
                         percentile_low=f(res_p.confidence_interval.low),
                         percentile_high=f(res_p.confidence_interval.high),
                         bca_low=f(res_b.confidence_interval.low),
                         bca_high=f(res_b.confidence_interval.high),
                         standard_error=f(res_b.standard_error)))
    for i in range(30):
        n = [6, 8, 10, 12, 11, 9, 7, 12][i % 8]
        d = local.normal(0.4 * (i % 3), 1.0, size=n)
        res = st.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis),
                                  permutation_type="samples", n_resamples=np.inf,
                                  alternative="two-sided", vectorized=True)
        paired_perm.append(dict(d=[float(v) for v in d], statistic=f(np.mean(d)),
                                p_value=f(res.pvalue)))
    for i in range(30):
        n1, n2 = [(5, 6), (4, 7), (6, 6), (8, 5), (3, 9), (7, 7), (5, 5), (6, 8)][i % 8]
        x = local.normal(0.5 * (i % 3), 1.0, size=n1)
        y = local.normal(0.0, 1.0, size=n2)
        res = st.permutation_test(
            (x, y), lambda a, b, axis: np.abs(np.mean(a, axis=axis) - np.mean(b, axis=axis)),
            permutation_type="independent", n_resamples=np.inf, alternative="greater",
            vectorized=True)
        two_perm.append(dict(x=[float(v) for v in x], y=[float(v) for v in y],
                             statistic=f(np.mean(x) - np.mean(y)), p_value=f(res.pvalue)))
    return boot, paired_perm, two_perm


def main():
    w, cp = wilson_and_cp()
    ex, midp = mcnemar_cases()
    mwu, welch, dd, rb = two_sample()
    ind, paired = power()
    chi_d, t_d = distributions()
    boot, paired_perm, two_perm = resampling()
    ref = dict(
        versions=dict(python=platform.python_version(), numpy=np.__version__,
                      scipy=scipy.__version__, statsmodels=statsmodels.__version__),
        wilson=w, clopper_pearson=cp, newcombe=newcombe(), newcombe_paired=newcombe_paired(),
        mcnemar_exact=ex, mcnemar_midp=midp, fisher_exact=fisher(), chi_square=chi_square(),
        cohens_h=cohens_h(), binomial_test=binomtest(), wilcoxon=wilcoxon(), sign_test=sign(),
        mann_whitney=mwu, welch=welch, cohens_d=dd, rank_biserial=rb,
        multiplicity=multiplicity(), power_independent=ind, power_paired=paired,
        chi_square_sf=chi_d, student_t_sf=t_d, bootstrap_mean=boot,
        paired_permutation=paired_perm, two_sample_permutation=two_perm,
    )
    with open(OUT, "w") as fh:
        json.dump(ref, fh, indent=1, sort_keys=True)
        fh.write("\n")
    counts = {k: len(v) for k, v in ref.items() if isinstance(v, list)}
    print(json.dumps(counts), file=sys.stderr)


if __name__ == "__main__":
    main()
