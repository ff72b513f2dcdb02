"""Reference values for steepest's Rényi-DP accountant (`steepest::privacy`).

Writes `fixtures/privacy/opacus_rdp.json` from opacus 1.6:

* `epsilon`: (sigma, q, steps, delta) -> (epsilon, best order) from
  `opacus.accountants.RDPAccountant` (default orders);
* `composition`: accountant histories of several (sigma, q, steps) entries;
* `sigma`: (target epsilon, delta, q, steps) -> noise multiplier from
  `opacus.accountants.utils.get_noise_multiplier` (accountant "rdp",
  `epsilon_tolerance` 0.01 unless the case sets another), or the error opacus
  raises when the target cannot be reached;
* `rdp`: the per-order RDP vector of one step,
  `opacus.accountants.analysis.rdp.compute_rdp(q, sigma, 1, DEFAULT_ALPHAS)`;
* `log_erfc`: log(erfc(x)) to 17 digits from mpmath (50 digits working
  precision), an independent check of steepest's own erfc.

Usage: /tmp/refvenv/bin/python tools/reference/gen_privacy.py [--seed N] [--out FILE]
The committed file uses the default seed. Semantics: privacy_semantics.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import mpmath
import opacus
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis.rdp import compute_rdp
from opacus.accountants.utils import get_noise_multiplier

ROOT = Path(__file__).resolve().parents[2]


def sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def log_uniform(rng, lo, hi):
    return sig(10.0 ** rng.uniform(math.log10(lo), math.log10(hi)))


def eps_of(history, delta):
    acc = RDPAccountant()
    acc.history = [tuple(h) for h in history]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the smallest/largest alpha"
        eps, order = acc.get_privacy_spent(delta=delta)
    return float(eps), float(order)


# Hand-picked cases: the two, q = 1, extreme sigma / T / delta.
FIXED_EPS = [
    (1.1, 0.01, 10000, 1e-5),
    (0.8, 0.001, 1000, 1e-6),
    (1.0, 1.0, 1, 1e-5),
    (3.0, 1.0, 100, 1e-6),
    (10.0, 1.0, 1000000, 1e-9),
    (0.3, 1.0, 10, 1e-3),
    (0.3, 0.0001, 1, 1e-9),
    (0.3, 0.5, 1000, 1e-5),
    (0.5, 0.99, 100, 1e-5),
    (10.0, 0.0001, 1, 1e-3),
    (10.0, 0.0001, 1000000, 1e-5),
    (0.6, 0.004, 1000000, 1e-7),
    (2.0, 0.25, 50000, 1e-8),
    (0.7, 0.02, 3, 1e-4),
    (1.5, 0.5, 7, 1e-5),
    (4.0, 0.9, 20000, 1e-6),
]

FIXED_SIGMA = [
    # (target epsilon, delta, q, steps[, tolerance])
    (8.0, 1e-5, 0.01, 10000),
    (1.0, 1e-5, 0.004, 10000),
    (3.0, 1e-6, 0.001, 1000),
    (0.5, 1e-3, 1.0, 1),
    (20.0, 1e-5, 1.0, 100),
    (10.0, 1e-9, 0.0001, 1000000),
    (0.3, 1e-5, 0.0001, 100),
    (2.0, 1e-5, 0.5, 50),
    (5.0, 1e-7, 0.05, 2000, 0.001),
    (1.0, 1e-5, 0.01, 1000, 0.1),
    (0.1, 1e-3, 0.0001, 1),
    (0.01, 1e-5, 0.01, 1000),  # unreachable: opacus raises
    (0.05, 1e-9, 1.0, 1000000),  # unreachable
]

COMPOSITION = [
    ([(1.1, 0.01, 5000), (0.8, 0.02, 2000), (2.0, 0.005, 10000)], 1e-5),
    ([(0.5, 0.001, 100), (5.0, 1.0, 10)], 1e-6),
    ([(1.0, 0.1, 1), (1.0, 0.2, 1), (1.0, 0.1, 1), (3.0, 0.99, 30)], 1e-4),
]

RDP_CASES = [(1.1, 0.01), (0.8, 0.001), (0.3, 0.0001), (0.3, 0.5), (0.5, 0.99), (10.0, 0.0001), (2.0, 0.25), (1.0, 1.0)]

LOG_ERFC_X = [-30.0, -8.0, -3.0, -1.0, -0.5, -1e-3, 0.0, 1e-8, 1e-3, 0.1, 0.3, 0.4769, 0.5, 0.7, 0.9, 1.0, 1.2, 1.5,
              1.9, 2.0, 2.3, 2.5, 2.7, 3.0, 3.5, 4.0, 5.0, 6.0, 7.5, 10.0, 15.0, 26.0, 27.5, 40.0, 100.0, 1e3, 1e5, 1e8,
              1e150]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--out", type=Path, default=ROOT / "fixtures/privacy/opacus_rdp.json")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.time()

    eps_cases = [list(c) for c in FIXED_EPS] if args.seed == 20261129 else []
    qs = [1e-4, 1e-3, 1e-2, 0.1, 0.5, 0.9, 1.0]
    while len(eps_cases) < 48:
        q = float(rng.choice(qs)) if rng.random() < 0.2 else log_uniform(rng, 1e-4, 1.0)
        sigma = log_uniform(rng, 0.3, 10.0)
        steps = int(round(10.0 ** rng.uniform(0, 6)))
        delta = 10.0 ** -int(rng.integers(3, 10))
        eps_cases.append([sigma, q, steps, delta])
    epsilon = []
    for sigma, q, steps, delta in eps_cases:
        eps, order = eps_of([(sigma, q, steps)], delta)
        epsilon.append({"sigma": sigma, "sample_rate": q, "steps": steps, "delta": delta, "epsilon": eps,
                        "order": order})

    sig_cases = [list(c) for c in FIXED_SIGMA] if args.seed == 20261129 else []
    while len(sig_cases) < 24:
        e = log_uniform(rng, 0.3, 20.0)
        delta = 10.0 ** -int(rng.integers(3, 10))
        q = log_uniform(rng, 1e-4, 1.0)
        steps = int(round(10.0 ** rng.uniform(0, 5)))
        sig_cases.append([e, delta, q, steps])
    sigma_out = []
    for c in sig_cases:
        e, delta, q, steps = c[:4]
        tol = c[4] if len(c) > 4 else 0.01
        row = {"target_epsilon": e, "delta": delta, "sample_rate": q, "steps": steps, "epsilon_tolerance": tol}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = get_noise_multiplier(target_epsilon=e, target_delta=delta, sample_rate=q, steps=steps,
                                         accountant="rdp", epsilon_tolerance=tol)
            row["sigma"] = float(s)
            row["epsilon"], row["order"] = eps_of([(s, q, steps)], delta)
        except ValueError as err:
            row["error"] = str(err)
        sigma_out.append(row)

    composition = []
    for hist, delta in COMPOSITION:
        eps, order = eps_of(hist, delta)
        composition.append({"history": [list(h) for h in hist], "delta": delta, "epsilon": eps, "order": order})

    rdp = []
    for sigma, q in RDP_CASES:
        v = compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=RDPAccountant.DEFAULT_ALPHAS)
        rdp.append({"sigma": sigma, "sample_rate": q, "rdp": [float(x) for x in v]})

    mpmath.mp.dps = 50
    log_erfc = [{"x": x, "log_erfc": float(mpmath.log(mpmath.erfc(mpmath.mpf(x))))} for x in LOG_ERFC_X]

    out = {
        "meta": {
            "opacus": opacus.__version__,
            "mpmath": mpmath.__version__,
            "python": sys.version.split()[0],
            "seed": args.seed,
            "orders": [float(a) for a in RDPAccountant.DEFAULT_ALPHAS],
        },
        "epsilon": epsilon,
        "composition": composition,
        "sigma": sigma_out,
        "rdp": rdp,
        "log_erfc": log_erfc,
    }
    for group in ("epsilon", "composition", "sigma", "rdp", "log_erfc"):
        for row in out[group]:
            for k, v in row.items():
                if isinstance(v, float) and not math.isfinite(v):
                    raise SystemExit(f"{group}: non-finite {k} in {row}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["{", f'  "meta": {json.dumps(out["meta"])},']
    for i, group in enumerate(("epsilon", "composition", "sigma", "rdp", "log_erfc")):
        lines.append(f'  "{group}": [')
        lines.append(",\n".join("    " + json.dumps(r) for r in out[group]))
        lines.append("  ]" + ("," if i < 4 else ""))
    lines.append("}")
    args.out.write_text("\n".join(lines) + "\n")
    n_err = sum("error" in r for r in sigma_out)
    print(f"{args.out}: {len(epsilon)} epsilon, {len(composition)} composition, {len(sigma_out)} sigma "
          f"({n_err} unreachable), {len(rdp)} rdp vectors, {len(log_erfc)} log_erfc; {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
