#!/usr/bin/env python3
"""Golden trajectories for `muon-nalr` and `complex-momentum` (independent NumPy references).

What it does
------------
Neither method has a reference package, so this script implements both from
the papers' update rules, in NumPy, without looking at the Rust code:

* ``muon-nalr``: noise-adaptive layerwise learning rates (Hao et al., "Noise-
  Adaptive Layerwise Learning Rates: Accelerating Geometry-Aware Optimization
  for Deep Neural Network Training", arXiv:2510.14009, LANTON Algorithm 1,
  Option II) on top of Muon (torch.optim.Muon's step, Newton-Schulz in the
  parameter dtype).  Per layer l of a parameter group, every step:

      D     = G_t - G_{t-1}                         (G_0 = 0; in the parameter dtype)
      dual  = s(A, C) * nuclear_norm(D)             (f64; s = Muon's shape factor)
      H_t   = beta2 * H_{t-1} + (1 - beta2) * dual^2   (stored in the parameter dtype)
      a_l   = 1 / sqrt(H_t + noise_eps)
      lr_l  = lr * sqrt(a_l / max_{j in group, with a gradient} a_j)
      Muon step with lr_l (EMA momentum, optional Nesterov, NS, W(1 - lr_l wd) - s lr_l O)

  The group maximum is taken before any layer of the group is updated.

* ``complex-momentum``: Lorraine et al., "Complex Momentum for Optimization in
  Games" (arXiv:2102.08431), Algorithm 1 (SimCM) with real parameters:

      mu  = beta * mu - g          (complex; beta = beta_abs * exp(i beta_arg))
      w  += Re(alpha * mu)         (alpha = lr + i lr_imag)

  with ``maximize`` negating g.

``paper2b_semantics.md`` beside this file is the specification.

Files: ``<case>.spec.json`` / ``<case>.expected.json`` in ``fixtures/reference/paper2b``
(format: README.md).  Each case's random stream is seeded from
``(seed, crc32(case name))``.  ``--selfcheck`` replays every case with a
second implementation making other valid floating-point choices (complex
arithmetic with numpy's complex128/complex64, lerp written as a*(1-w)+b*w,
another Newton-Schulz association order) and prints the worst relative
difference, to show the fixture tolerance (1e-10 f64, 1e-5 f32) has margin.

How to run
----------
    python3 tools/reference/gen_paper2b.py                       # committed set
    python3 tools/reference/gen_paper2b.py --seed 777 --out /tmp/holdout_paper2b
    python3 tools/reference/gen_paper2b.py --selfcheck --out /tmp/x

Needs numpy only.
"""

from __future__ import annotations

import argparse
import math
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_io import as_dtype_list, log_uniform, report, sig, uniform, validate, write_case  # noqa: E402
import fixture_io  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "fixtures" / "reference" / "paper2b"
DEFAULT_SEED = 20261129

NALR_DEFAULTS = {
    "lr": 1e-3, "weight_decay": 0.1, "momentum": 0.95, "nesterov": False,
    "ns_coefficients": [3.4445, -4.7750, 2.0315], "eps": 1e-7, "ns_steps": 5,
    "adjust_lr_fn": "spectral_unclamped", "beta2": 0.99, "noise_eps": 1e-12,
}
CM_DEFAULTS = {"lr": 1e-3, "lr_imag": 0.0, "beta_abs": 0.9, "beta_arg": math.pi / 8, "maximize": False}

MATRIX_NAMES = ["w", "enc.weight", "attn.q", "mlp.up", "gate", "proj", "layer2.w"]
TENSOR_NAMES = ["w", "b", "scale", "conv.k", "emb", "gain", "bias2"]


# --------------------------------------------------------------------------
# muon-nalr reference
# --------------------------------------------------------------------------

def shape_factor(kind: str, a: int, c: int) -> float:
    if kind == "original":
        return math.sqrt(max(1.0, a / c))
    if kind == "match_rms_adamw":
        return 0.2 * math.sqrt(max(a, c))
    if kind == "spectral_unclamped":
        return math.sqrt(a / c)
    raise ValueError(kind)


def lerp(a, b, w: float, dt):
    """torch.lerp(a, b, w) with its two formulas (no FMA in NumPy)."""
    wf = dt.type(w)
    if abs(w) < 0.5:
        return a + wf * (b - a)
    return b + (wf - dt.type(1.0)) * (b - a)


def newton_schulz(x: np.ndarray, coeffs, steps: int, eps: float) -> np.ndarray:
    dt = x.dtype
    a, b, c = (dt.type(v) for v in coeffs)
    tall = x.shape[0] > x.shape[1]
    X = x.T.copy() if tall else x.copy()
    nrm = dt.type(math.sqrt(float(np.sum(X.astype(np.float64) ** 2))))
    X = X / max(nrm, dt.type(eps))
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X.T.copy() if tall else X


class NalrReference:
    def __init__(self, params, hyper_of, group_of, dtype):
        self.dt = np.dtype(dtype)
        self.params = {n: np.array(v, dtype=dtype) for n, v in params.items()}
        self.hyper_of, self.group_of = hyper_of, group_of
        self.buf, self.prev, self.H = {}, {}, {}
        self.stats = {"ratios": []}

    def noise(self, name, G):
        h, dt = self.hyper_of[name], self.dt
        D = G - self.prev[name]                                    # dtype subtraction
        nuc = float(np.sum(np.linalg.svd(D.astype(np.float64), compute_uv=False)))
        a, c = G.shape
        dual = shape_factor(h["adjust_lr_fn"], a, c) * nuc
        Hn = h["beta2"] * float(self.H[name]) + (1.0 - h["beta2"]) * dual * dual
        Hn = dt.type(Hn)                                           # stored in the dtype
        return Hn, 1.0 / math.sqrt(float(Hn) + h["noise_eps"])

    def step(self, grads):
        dt = self.dt
        G = {n: np.asarray(g, dtype=dt).reshape(self.params[n].shape) for n, g in grads.items()}
        for n in G:
            if n not in self.buf:
                self.buf[n] = np.zeros_like(self.params[n])
                self.prev[n] = np.zeros_like(self.params[n])
                self.H[n] = dt.type(0.0)
        noise = {n: self.noise(n, G[n]) for n in G}                  # pre-pass: all before any update
        best = {}
        for n, (_, alpha) in noise.items():
            g = self.group_of[n]
            best[g] = max(best.get(g, alpha), alpha)
        for n in G:
            h = self.hyper_of[n]
            Hn, alpha = noise[n]
            self.H[n], self.prev[n] = Hn, G[n].copy()
            ratio = math.sqrt(alpha / best[self.group_of[n]])
            self.stats["ratios"].append(ratio)
            lr = h["lr"] * ratio
            mu = h["momentum"]
            self.buf[n] = lerp(self.buf[n], G[n], 1.0 - mu, dt)
            U = lerp(G[n], self.buf[n], mu, dt) if h["nesterov"] else self.buf[n]
            O = newton_schulz(U, h["ns_coefficients"], int(h["ns_steps"]), h["eps"])
            a, c = G[n].shape
            W = self.params[n] * dt.type(1.0 - lr * h["weight_decay"])
            self.params[n] = W + dt.type(-(lr * shape_factor(h["adjust_lr_fn"], a, c))) * O


class NalrAlt(NalrReference):
    """Other rounding choices (selfcheck only): lerp as a(1-w)+bw, NS as X(a + bXᵀX... ) order."""

    def step(self, grads):
        global lerp, newton_schulz
        saved = (lerp, newton_schulz)

        def lerp_alt(a, b, w, dt):
            return a * dt.type(1.0 - w) + b * dt.type(w)

        def ns_alt(x, coeffs, steps, eps):
            dt = x.dtype
            a, b, c = (dt.type(v) for v in coeffs)
            tall = x.shape[0] > x.shape[1]
            X = x.T if tall else x
            X = X / np.maximum(np.linalg.norm(X), dt.type(eps))
            for _ in range(steps):
                AX = (X @ X.T) @ X
                X = a * X + b * AX + c * ((X @ X.T) @ AX)
            return X.T if tall else X

        lerp, newton_schulz = lerp_alt, ns_alt
        try:
            super().step(grads)
        finally:
            lerp, newton_schulz = saved


# --------------------------------------------------------------------------
# complex-momentum reference
# --------------------------------------------------------------------------

class CmReference:
    def __init__(self, params, hyper_of, group_of, dtype):
        self.dt = np.dtype(dtype)
        self.params = {n: np.array(v, dtype=dtype) for n, v in params.items()}
        self.hyper_of = hyper_of
        self.re, self.im = {}, {}
        self.stats = {"ratios": []}

    def step(self, grads):
        dt = self.dt
        for n, g in grads.items():
            h = self.hyper_of[n]
            p = self.params[n]
            g = np.asarray(g, dtype=dt).reshape(p.shape)
            if h["maximize"]:
                g = -g
            if n not in self.re:
                self.re[n], self.im[n] = np.zeros_like(p), np.zeros_like(p)
            br = dt.type(h["beta_abs"] * math.cos(h["beta_arg"]))
            bi = dt.type(h["beta_abs"] * math.sin(h["beta_arg"]))
            re, im = self.re[n], self.im[n]
            re_new = br * re - bi * im - g                 # Re(beta mu - g)
            im_new = bi * re + br * im                     # Im(beta mu)
            self.re[n], self.im[n] = re_new, im_new
            # w += Re(alpha mu) = Re(alpha) Re(mu) - Im(alpha) Im(mu)
            self.params[n] = (p + dt.type(h["lr"]) * re_new) + dt.type(-h["lr_imag"]) * im_new


class CmAlt(CmReference):
    """numpy complex arithmetic (selfcheck only)."""

    def step(self, grads):
        dt = self.dt
        ct = np.complex64 if dt == np.float32 else np.complex128
        for n, g in grads.items():
            h = self.hyper_of[n]
            p = self.params[n]
            g = np.asarray(g, dtype=dt).reshape(p.shape) * (-1 if h["maximize"] else 1)
            if n not in self.re:
                self.re[n] = np.zeros(p.shape, dtype=ct)
            beta = ct(h["beta_abs"] * np.exp(1j * h["beta_arg"]))
            alpha = ct(h["lr"] + 1j * h["lr_imag"])
            self.re[n] = beta * self.re[n] - g
            self.params[n] = (p + (alpha * self.re[n]).real).astype(dt)


# --------------------------------------------------------------------------
# running a spec
# --------------------------------------------------------------------------

def run(spec, cls):
    dtype = np.float32 if spec["dtype"] == "f32" else np.float64
    defaults = NALR_DEFAULTS if spec["optimizer"] == "muon-nalr" else CM_DEFAULTS
    base = dict(defaults)
    base.update(spec["hyper"])
    hyper_of = {p["name"]: dict(base) for p in spec["params"]}
    group_of = {p["name"]: 0 for p in spec["params"]}
    for gi, g in enumerate(spec.get("groups") or []):
        for n in g["params"]:
            hyper_of[n] = dict(base)
            hyper_of[n].update(g["hyper"])
            group_of[n] = gi + 1
    params = {p["name"]: np.array(p["data"], dtype=np.float64).reshape(p["shape"]) for p in spec["params"]}
    opt = cls(params, hyper_of, group_of, dtype)
    traj = []
    for step in spec["steps"]:
        opt.step(step["grads"])
        traj.append({p["name"]: [float(x) for x in opt.params[p["name"]].reshape(-1)] for p in spec["params"]})
    return traj, opt.stats


# --------------------------------------------------------------------------
# random cases
# --------------------------------------------------------------------------

NALR_KINDS = [
    ("defaults", "f64"), ("lr_wd_momentum", "f64"), ("beta2_eps", "f64"), ("nesterov_original", "f64"),
    ("match_rms", "f64"), ("ns_steps", "f64"), ("noise_levels", "f64"), ("groups", "f64"),
    ("defaults", "f32"), ("groups", "f32"),
]
CM_KINDS = [
    ("defaults", "f64"), ("beta", "f64"), ("lr_imag", "f64"), ("maximize", "f64"), ("negative_arg", "f64"),
    ("groups", "f64"), ("defaults", "f32"), ("lr_imag", "f32"),
]


def draw_matrix_shapes(rng, dtype):
    while True:
        n = int(rng.integers(3, 6))
        k = int(rng.integers(2, 6))
        r = int(rng.integers(2, 6))
        c = int(rng.integers(2, 6))
        shapes = [[k, k], [r + int(rng.integers(1, 4)), r], [c, c + int(rng.integers(1, 4))]]
        if n >= 4:
            shapes.append([1, int(rng.integers(3, 9))])
        while len(shapes) < n:
            shapes.append([int(d) for d in rng.integers(1, 7, size=2)])
        if dtype == "f32" and min(a * b for a, b in shapes) < 3:
            continue
        if sum(a * b for a, b in shapes) <= 90:
            return [shapes[i] for i in rng.permutation(len(shapes))]


def draw_tensor_shapes(rng):
    shapes = [[], [int(rng.integers(2, 8))], [int(rng.integers(2, 5)), int(rng.integers(2, 5))],
              [int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(2, 4))], [0]]
    return [shapes[i] for i in rng.permutation(len(shapes))]


def draw_frozen(rng, names, n_steps, want_frozen, want_empty_step):
    return fixture_io.draw_frozen(rng, names, n_steps, want_frozen, want_empty_step,
                                  late=(3, 8), gap_start=(8, 12), gap_len=(2, 5))


def nalr_hyper(flag, rng):
    lr = lambda: log_uniform(rng, 3e-3, 1e-1)  # noqa: E731
    if flag == "defaults":
        return {}, None
    if flag == "lr_wd_momentum":
        return {"lr": lr(), "weight_decay": log_uniform(rng, 1e-2, 0.5), "momentum": uniform(rng, 0.5, 0.98)}, None
    if flag == "beta2_eps":
        return {"lr": lr(), "beta2": uniform(rng, 0.0, 0.9), "noise_eps": log_uniform(rng, 1e-4, 1e-2)}, None
    if flag == "nesterov_original":
        return {"lr": lr(), "nesterov": True, "adjust_lr_fn": "original", "beta2": uniform(rng, 0.5, 0.99)}, None
    if flag == "match_rms":
        return {"lr": lr(), "adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.0}, None
    if flag == "ns_steps":
        return {"lr": lr(), "ns_steps": int(rng.choice([1, 2, 3, 7]))}, None
    if flag == "noise_levels":
        return {"lr": lr(), "beta2": uniform(rng, 0.8, 0.95), "momentum": uniform(rng, 0.5, 0.9)}, None
    if flag == "groups":
        # One override group of exactly two layers (each group takes its own maximum).
        return ({"lr": lr(), "beta2": uniform(rng, 0.5, 0.99)},
                [{"lr": lr(), "beta2": uniform(rng, 0.0, 0.5), "nesterov": True, "momentum": uniform(rng, 0.5, 0.9),
                  "weight_decay": 0.0, "adjust_lr_fn": "original"}])
    raise ValueError(flag)


def cm_hyper(flag, rng):
    lr = lambda: log_uniform(rng, 1e-2, 2e-1)  # noqa: E731
    if flag == "defaults":
        return {}, None
    if flag == "beta":
        return {"lr": lr(), "beta_abs": uniform(rng, 0.3, 0.99), "beta_arg": uniform(rng, 0.1, 3.0)}, None
    if flag == "lr_imag":
        return {"lr": lr(), "lr_imag": sig(rng.uniform(-0.2, 0.2)), "beta_arg": uniform(rng, 0.2, 1.5)}, None
    if flag == "maximize":
        return {"lr": lr(), "maximize": True, "beta_abs": uniform(rng, 0.5, 0.95)}, None
    if flag == "negative_arg":
        return {"lr": lr(), "beta_arg": -uniform(rng, 0.1, 3.1), "beta_abs": uniform(rng, 0.0, 0.9)}, None
    if flag == "groups":
        return ({"lr": lr()},
                [{"beta_arg": uniform(rng, 0.5, 2.0), "lr_imag": sig(rng.uniform(-0.1, 0.1))},
                 {"maximize": True, "beta_abs": uniform(rng, 0.1, 0.9), "lr": lr()}])
    raise ValueError(flag)


def build_spec(optimizer, flag, dtype, seed):
    short = "nalr" if optimizer == "muon-nalr" else "cm"
    name = f"{short}_{flag}_{dtype}"
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if optimizer == "muon-nalr":
        shapes = draw_matrix_shapes(rng, dtype)
        names = [str(n) for n in rng.permutation(MATRIX_NAMES)[: len(shapes)]]
        hyper, overrides = nalr_hyper(flag, rng)
    else:
        shapes = draw_tensor_shapes(rng)
        names = [str(n) for n in rng.permutation(TENSOR_NAMES)[: len(shapes)]]
        hyper, overrides = cm_hyper(flag, rng)
    n_steps = int(rng.integers(20, 26))
    grad_scale = 10.0 ** rng.uniform(-2.0, 0.0)
    scale = {n: grad_scale * 10.0 ** rng.uniform(-0.5, 0.5) for n in names}
    # Gradients = a per-layer drift plus per-layer noise; "noise_levels" spreads the
    # noise over two decades so the layerwise rates differ a lot.
    noise_rel = {n: (10.0 ** rng.uniform(-2.0, 0.5) if flag == "noise_levels" else rng.uniform(0.2, 1.0)) for n in names}
    mean = {n: rng.normal(0, 1, size=s) for n, s in zip(names, shapes)}

    params = []
    for n, s in zip(names, shapes):
        sc = 10.0 ** rng.uniform(-1.0 if dtype == "f64" else -0.5, 0.3)
        params.append({"name": n, "shape": s, "data": as_dtype_list(rng.normal(0, sc, size=s), dtype)})
    groups = None
    if overrides is not None:
        groups, pool = [], list(rng.permutation(names))
        for i, ov in enumerate(overrides):
            room = len(pool) - (len(overrides) - i - 1) - 1
            k = 2 if len(overrides) == 1 else int(rng.integers(1, min(2, room) + 1))
            members, pool = pool[:k], pool[k:]
            groups.append({"params": [str(m) for m in members], "hyper": ov})
    frozen = draw_frozen(rng, names, n_steps, want_frozen=not (flag == "defaults" and dtype == "f64"),
                         want_empty_step=flag == "groups")
    steps = []
    for t in range(n_steps):
        grads = {}
        for n, s in zip(names, shapes):
            g = scale[n] * (mean[n] + noise_rel[n] * rng.normal(0, 1, size=s))
            if n not in frozen[t]:
                grads[n] = as_dtype_list(g, dtype)
        steps.append({"grads": grads})
    spec = {"optimizer": optimizer, "dtype": dtype, "hyper": hyper}
    if groups is not None:
        spec["groups"] = groups
    spec["params"], spec["steps"], spec["nonfinite"] = params, steps, "error"
    return name, spec


def rel_error(got, want):
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if not w.size:
        return 0.0
    return float(np.max(np.abs(g - w))) / max(float(np.max(np.abs(w))), np.finfo(float).tiny)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--selfcheck", action="store_true")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    names, worst = [], {"f64": 0.0, "f32": 0.0}
    for optimizer, kinds, ref, alt in [("muon-nalr", NALR_KINDS, NalrReference, NalrAlt),
                                       ("complex-momentum", CM_KINDS, CmReference, CmAlt)]:
        for flag, dtype in kinds:
            name, spec = build_spec(optimizer, flag, dtype, args.seed)
            traj, stats = run(spec, ref)
            line = f"{name}: {len(spec['steps'])} steps, shapes {[p['shape'] for p in spec['params']]}"
            if stats["ratios"]:
                r = np.array(stats["ratios"])
                line += f", layer lr ratio min {r.min():.3f} mean {r.mean():.3f}"
                assert r.min() < 0.9, f"{name}: layerwise rates never differ"
            expected = {"trajectory": traj, "skipped_steps": 0,
                        "meta": {"reference": "tools/reference/gen_paper2b.py (numpy, from the papers)",
                                 "numpy": np.__version__, "seed": args.seed, "case": name}}
            write_case(args.out, name, spec, expected)
            names.append(name)
            if args.selfcheck:
                other, _ = run(spec, alt)
                e = max(rel_error(a[n], b[n]) for a, b in zip(other, traj) for n in a)
                worst[dtype] = max(worst[dtype], e)
                line += f", alt-impl rel diff {e:.2e}"
            print(line)
    validate(args.out, names)
    report(args.out, names)
    if args.selfcheck:
        print(f"selfcheck: worst relative difference f64 {worst['f64']:.2e} (tol 1e-10), "
              f"f32 {worst['f32']:.2e} (tol 1e-5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
