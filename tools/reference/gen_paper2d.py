#!/usr/bin/env python3
"""Golden trajectories for MGUP (``mgup-adamw``, ``mgup-lion``), the momentum-
gradient alignment update policy that steepest implements in place of the
withdrawn AlphaAdam (see paper2d_semantics.md).

Reference: an independent NumPy implementation written from the MGUP README's
equations (Chang & Yuan, "MGUP: A Momentum-Gradient Alignment Update Policy for
Stochastic Optimization", NeurIPS 2025; github.com/MaeChd/MGUP):

    s = u * g                       (u: the base optimizer's update direction)
    topk:  phi = alpha on the floor(mask_ratio * numel) largest s, gamma elsewhere
    sign:  phi = alpha where s >= 0, gamma elsewhere
    p <- p * decay - step * (phi * u)

with the two bases of the official code: Hugging Face-style AdamW (eps outside
the uncorrected sqrt(v), bias correction folded into the step size, decay
1 - lr*wd) and Lion (decoupled decay 1 - lr*wd, u = sign(b1 m + (1-b1) g),
m <- b2 m + (1-b2) g after the step).

The official code (MGUP_AdamW.py, MGUP_Lion.py) runs on a CPU. It is not part of
steepest; given ``--official DIR`` (a directory holding those two files, e.g.
extracted with ``git show`` from a clone of MaeChd/MGUP), this script also runs
it on every f64 case and on the f32 cases and requires agreement with the NumPy
model (<= 1e-12 relative per tensor in f64, <= 1e-5 in f32); the
``transformers.utils.versions.require_version`` import of MGUP_AdamW.py is
stubbed. The committed fixtures come from the NumPy model.

Mask decisions are made robust: a step's gradients are redrawn (from the same
stream) while any top-K cut falls between two scores closer than 1e-9 (f64) /
1e-4 (f32) relative, or the sign that a mask tests comes out of a cancellation
(|b1 m + (1-b1) g| < tol * (b1 |m| + (1-b1) |g|)), so a faithful
reimplementation cannot flip a mask bit by rounding differently.

Run:
    /tmp/refvenv/bin/python tools/reference/gen_paper2d.py                   # committed set
    /tmp/refvenv/bin/python tools/reference/gen_paper2d.py --seed 777 --out /tmp/holdout_p2d
    /tmp/refvenv/bin/python tools/reference/gen_paper2d.py --official /tmp/mgup_official --out /tmp/p2d_check
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import types
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_io import as_dtype_list, log_uniform, report, uniform, validate, write_case  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "fixtures" / "reference" / "paper2d"
DEFAULT_SEED = 20261129

NAMES = ["w", "b", "s", "e", "l2.weight"]

# (optimizer, flag, dtype)
CASES = [
    ("mgup-adamw", "defaults", "f64"),
    ("mgup-adamw", "topk", "f64"),
    ("mgup-adamw", "sign", "f64"),
    ("mgup-adamw", "nobias_frozen", "f64"),
    ("mgup-adamw", "low_ratio", "f64"),
    ("mgup-adamw", "topk", "f32"),
    ("mgup-adamw", "sign", "f32"),
    ("mgup-lion", "defaults", "f64"),
    ("mgup-lion", "topk", "f64"),
    ("mgup-lion", "sign", "f64"),
    ("mgup-lion", "frozen", "f64"),
    ("mgup-lion", "topk", "f32"),
]


def shapes(rng):
    """A matrix, a vector, a scalar, a zero-size tensor and another matrix."""
    return [[int(rng.integers(2, 5)), int(rng.integers(2, 6))], [int(rng.integers(3, 7))], [],
            [0, int(rng.integers(1, 4))], [int(rng.integers(1, 4)), int(rng.integers(2, 4))]]


def hyper_for(opt, flag, rng):
    if flag == "defaults":
        return {}
    h = {}
    if opt == "mgup-adamw":
        h.update(lr=log_uniform(rng, 1e-3, 5e-2), betas=[uniform(rng, 0.7, 0.95), uniform(rng, 0.9, 0.999)],
                 eps=log_uniform(rng, 1e-8, 1e-4), weight_decay=log_uniform(rng, 1e-3, 0.1))
        if flag == "nobias_frozen":
            h["correct_bias"] = False
    else:
        h.update(lr=log_uniform(rng, 1e-3, 3e-2), betas=[uniform(rng, 0.8, 0.95), uniform(rng, 0.9, 0.995)],
                 weight_decay=log_uniform(rng, 1e-3, 0.1))
    h.update(mask_ratio=uniform(rng, 0.2, 0.8), alpha=uniform(rng, 1.0, 2.5), gamma=uniform(rng, 0.05, 0.9))
    if flag == "sign":
        h["mgup_mask"] = "sign"
        del h["mask_ratio"]
    if flag == "low_ratio":
        # floor(0.15 * numel) is 0 for the scalar and the smaller tensors: all gamma there
        h["mask_ratio"] = 0.15
    return h


def full_hyper(opt, h):
    d = {"lr": 1e-3 if opt == "mgup-adamw" else 1e-4,
         "betas": [0.9, 0.999] if opt == "mgup-adamw" else [0.9, 0.99],
         "eps": 1e-6, "weight_decay": 0.0, "correct_bias": True,
         "mask_ratio": 0.5, "alpha": 2.0, "gamma": 0.1, "mgup_mask": "topk"}
    d.update(h)
    return d


class Model:
    """The NumPy model of the equations above; one instance per case."""

    def __init__(self, opt, h, dtype, params, f32_factors=False):
        self.opt, self.h = opt, full_hyper(opt, h)
        self.f32_factors = f32_factors
        self.dt = np.float64 if dtype == "f64" else np.float32
        self.tol = 1e-9 if dtype == "f64" else 1e-4
        self.p = {q["name"]: np.array(q["data"], dtype=self.dt).reshape(q["shape"]) for q in params}
        self.m = {n: np.zeros_like(x) for n, x in self.p.items()}
        self.v = {n: np.zeros_like(x) for n, x in self.p.items()}
        self.t = {n: 0 for n in self.p}

    def c(self, x):
        return self.dt(x)

    def direction(self, n, g):
        """(u, step size, decay, new m, new v, the quantity whose sign the mask relies on, its scale)."""
        b1, b2 = self.h["betas"]
        t = self.t[n] + 1
        m, v = self.m[n], self.v[n]
        if self.opt == "mgup-adamw":
            m2 = m * self.c(b1) + self.c(1 - b1) * g
            v2 = v * self.c(b2) + self.c(1 - b2) * g * g
            u = m2 / (np.sqrt(v2) + self.c(self.h["eps"]))
            lr = self.h["lr"]
            step = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) if self.h["correct_bias"] else lr
            sign_of, scale = m2, np.abs(m * self.c(b1)) + np.abs(self.c(1 - b1) * g)
            return u, step, 1.0 - lr * self.h["weight_decay"], m2, v2, sign_of, scale
        cc = m * self.c(b1) + self.c(1 - b1) * g
        u = np.sign(cc)
        m2 = m * self.c(b2) + self.c(1 - b2) * g
        lr = self.h["lr"]
        return u, lr, 1.0 - lr * self.h["weight_decay"], m2, v, cc, np.abs(m * self.c(b1)) + np.abs(self.c(1 - b1) * g)

    def factors(self, s):
        """phi, and whether the decision is fragile."""
        a, gm = self.c(self.h["alpha"]), self.c(self.h["gamma"])
        if self.f32_factors:
            a, gm = self.c(np.float32(self.h["alpha"])), self.c(np.float32(self.h["gamma"]))
        flat = s.reshape(-1)
        if self.h["mgup_mask"] == "sign":
            return np.where(s >= 0, a, gm).astype(self.dt), False
        k = int(self.h["mask_ratio"] * flat.size)
        order = sorted(range(flat.size), key=lambda i: (-float(flat[i]), i))
        phi = np.full(flat.size, gm, dtype=self.dt)
        phi[order[:k]] = a
        fragile = False
        if 0 < k < flat.size:
            hi, lo = float(flat[order[k - 1]]), float(flat[order[k]])
            fragile = hi - lo <= self.tol * max(abs(hi), abs(lo))
        return phi.reshape(s.shape), fragile

    def try_step(self, grads):
        """The step's new state, or None if a mask decision is fragile."""
        new = {}
        for n, g in grads.items():
            u, step, decay, m2, v2, sign_of, scale = self.direction(n, g)
            if np.any(np.abs(sign_of) <= self.tol * scale):
                return None
            phi, fragile = self.factors(u * g)
            if fragile:
                return None
            p = self.p[n] * self.c(decay) - self.c(step) * (phi * u)
            new[n] = (p, m2, v2)
        return new

    def commit(self, new):
        for n, (p, m2, v2) in new.items():
            self.p[n], self.m[n], self.v[n] = p, m2, v2
            self.t[n] += 1


def build_case(opt, flag, dtype, seed):
    rng = np.random.default_rng([seed, zlib.crc32(f"{opt}/{flag}/{dtype}".encode())])
    shp = shapes(rng)
    params = []
    for n, s in zip(NAMES, shp):
        params.append({"name": n, "shape": s, "data": as_dtype_list(rng.normal(0, 10 ** rng.uniform(-1, 0.3), s), dtype)})
    hyper = hyper_for(opt, flag, rng)
    model = Model(opt, hyper, dtype, params)
    n_steps = int(rng.integers(12, 19))
    gscale = {n: 10 ** rng.uniform(-1.5, 0.5) for n in NAMES}
    steps, traj = [], []
    for t in range(n_steps):
        active = list(NAMES)
        if flag in ("frozen", "nobias_frozen") or dtype == "f32":
            if t < 3:
                active.remove("b")            # state created late
            if 6 <= t < 9:
                active.remove("l2.weight")    # frozen in the middle
        for _attempt in range(200):
            grads = {}
            for n, s in zip(NAMES, shp):
                if n in active:
                    grads[n] = np.array(as_dtype_list(rng.normal(0, gscale[n], s), dtype),
                                        dtype=model.dt).reshape(s)
            new = model.try_step(grads)
            if new is not None:
                break
        else:
            raise SystemExit(f"{opt}/{flag}/{dtype}: no robust gradients at step {t}")
        model.commit(new)
        steps.append({"grads": {n: as_dtype_list(g, dtype) for n, g in grads.items()}})
        traj.append({q["name"]: as_dtype_list(model.p[q["name"]], dtype) for q in params})
    spec = {"optimizer": opt, "dtype": dtype, "hyper": hyper, "params": params, "steps": steps, "nonfinite": "error"}
    return spec, traj


def replay_model(spec, f32_factors):
    """The model's trajectory on a spec's recorded gradients (no redraws)."""
    model = Model(spec["optimizer"], spec["hyper"], spec["dtype"], spec["params"], f32_factors)
    shape = {q["name"]: q["shape"] for q in spec["params"]}
    traj = []
    for step in spec["steps"]:
        grads = {n: np.array(g, dtype=model.dt).reshape(shape[n]) for n, g in step["grads"].items()}
        new = model.try_step(grads)
        assert new is not None, "a recorded step became fragile"
        model.commit(new)
        traj.append({n: as_dtype_list(model.p[n], spec["dtype"]) for n in shape})
    return traj


def load_official(directory: Path):
    """Imports the official MGUP_AdamW / MGUP_Lion modules from `directory`."""
    if "transformers" not in sys.modules:
        tr = types.ModuleType("transformers")
        utils = types.ModuleType("transformers.utils")
        versions = types.ModuleType("transformers.utils.versions")
        versions.require_version = lambda *a, **k: None
        tr.utils, utils.versions = utils, versions
        sys.modules.update({"transformers": tr, "transformers.utils": utils, "transformers.utils.versions": versions})
    mods = {}
    for name in ("MGUP_AdamW", "MGUP_Lion"):
        spec = importlib.util.spec_from_file_location(name, directory / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods[name] = mod
    return mods


def run_official(mods, spec):
    import torch
    dt = torch.float64 if spec["dtype"] == "f64" else torch.float32
    h = full_hyper(spec["optimizer"], spec["hyper"])
    ts = [torch.nn.Parameter(torch.tensor(p["data"], dtype=dt).reshape(p["shape"])) for p in spec["params"]]
    if spec["optimizer"] == "mgup-adamw":
        kw = dict(lr=h["lr"], betas=tuple(h["betas"]), eps=h["eps"], weight_decay=h["weight_decay"],
                  correct_bias=h["correct_bias"], alpha=h["alpha"], gamma=h["gamma"], no_deprecation_warning=True)
        if h["mgup_mask"] == "sign":
            opt = mods["MGUP_AdamW"].CMGUP_AdamW(ts, **kw)
        else:
            opt = mods["MGUP_AdamW"].AdamW(ts, mask_ratio=h["mask_ratio"], **kw)
    else:
        if h["mgup_mask"] != "topk":
            return None          # the official Lion has no sign variant
        opt = mods["MGUP_Lion"].Lion(ts, lr=h["lr"], betas=tuple(h["betas"]), weight_decay=h["weight_decay"],
                                     mask_ratio=h["mask_ratio"], alpha=h["alpha"], gamma=h["gamma"])
    traj = []
    for step in spec["steps"]:
        for p, t in zip(spec["params"], ts):
            g = step["grads"].get(p["name"])
            t.grad = None if g is None else torch.tensor(g, dtype=dt).reshape(p["shape"])
        opt.step()
        traj.append({p["name"]: [float(x) for x in t.detach().reshape(-1)] for p, t in zip(spec["params"], ts)})
    return traj


def worst_rel(a, b):
    worst = 0.0
    for sa, sb in zip(a, b):
        for n in sa:
            x, y = np.array(sa[n]), np.array(sb[n])
            if x.size:
                worst = max(worst, float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-300)))
    return worst


def case_name(opt, flag, dtype):
    return f"{opt.replace('-', '_')}_{flag}_{dtype}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--official", type=Path, default=None,
                    help="directory with the official MGUP_AdamW.py and MGUP_Lion.py to cross-check against")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    mods = load_official(args.official) if args.official else None
    if mods is not None:
        import torch
        torch.set_num_threads(1)
    names = []
    for opt, flag, dtype in CASES:
        name = case_name(opt, flag, dtype)
        spec, traj = build_case(opt, flag, dtype, args.seed)
        meta = {"case": name, "seed": args.seed,
                "reference": "numpy model of the MGUP README equations (gen_paper2d.py)",
                "versions": {"numpy": np.__version__}}
        if mods is not None:
            off = run_official(mods, spec)
            if off is not None:
                assert worst_rel(replay_model(spec, False), traj) == 0.0
                # CMGUP_AdamW builds its factors from a float32 0/1 tensor
                # (`(u * g >= 0).float()`), so alpha and gamma are float32 there
                # even for f64 parameters; compare with the model doing the same.
                quirk = spec["optimizer"] == "mgup-adamw" and full_hyper(opt, spec["hyper"])["mgup_mask"] == "sign"
                e = worst_rel(off, replay_model(spec, True) if quirk else traj)
                tol = 1e-12 if dtype == "f64" else 1e-5
                print(f"{name}: official MGUP code vs numpy model{' (alpha, gamma in f32)' if quirk else ''}: "
                      f"worst relative error {e:.2e}")
                if e > tol:
                    raise SystemExit(f"{name}: the official code disagrees with the model ({e:.2e} > {tol:e})")
        write_case(args.out, name, spec, {"trajectory": traj, "skipped_steps": 0, "meta": meta})
        names.append(name)
    validate(args.out, names, None)
    report(args.out, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
