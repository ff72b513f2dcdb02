#!/usr/bin/env python3
"""Generate golden AdaGO trajectories for `steepest replay` (independent NumPy reference).

What it does
------------
AdaGO is the optimizer of Zhang, Liu & Schaeffer, "AdaGrad Meets Muon: Adaptive
Stepsizes for Orthogonal Updates" (arXiv:2509.02981).  No framework ships it as
a reference (optax's main branch has no ``adago``; pytorch-optimizer's ``AdaGO``
divides by the accumulated squared norm without the square root, see
``adago_semantics.md``), so this script is a from-the-paper NumPy
implementation, written from the algorithm's pseudo-code and nothing else:

    M_t   = mu * M_{t-1} + (1 - mu) * G_t                 (M_0 = 0)
    v_t^2 = v_{t-1}^2 + min(||G_t||_F^2, gamma^2)          (v_0 = v0 > 0)
    O_t   = NewtonSchulz(M_t)        ~ Orth(M_t) = U V^T  for M_t = U S V^T
    a_t   = max(eps, lr * min(||G_t||_F, gamma) / v_t)
    W_t   = W_{t-1} - a_t * O_t

plus two documented extensions that default to off: decoupled weight decay
(``W *= 1 - lr*weight_decay`` before the step) and Nesterov momentum
(orthogonalize ``(1-mu) G_t + mu M_t`` instead of ``M_t``).  One scalar
accumulator per parameter matrix.  ``adago_semantics.md`` beside this file is
the specification, with every choice the paper leaves open.

For a fixed list of case kinds (``CASE_KINDS``) it draws, from ``--seed``, the
matrix shapes (square, tall, wide, 1 x n), hyperparameters, initial values,
per-step gradients and the frozen-step pattern, runs the reference and writes

* ``adago_<flag>_<dtype>.spec.json``     -- input of ``steepest replay --spec``;
* ``adago_<flag>_<dtype>.expected.json`` -- parameters after every step.

Each case's random stream is seeded from ``(seed, crc32(case name))``.  f64
cases are computed in float64; f32 cases keep every tensor (parameter,
momentum, Newton-Schulz iterates, update) in float32 and compute the scalars
(norms, accumulator, stepsize) in float64, rounding the stepsize to f32 once.

``--selfcheck`` re-runs every case with a second implementation that makes
different, equally valid floating-point choices (lerp momentum, another
Newton-Schulz association order, norms and stepsize in the tensor dtype) and
prints the worst per-tensor relative difference, to show the fixture tolerance
(1e-10 f64, 1e-5 f32, relative to the tensor's max |value|) has margin.

How to run
----------
    python3 tools/reference/gen_adago.py                           # committed set
    python3 tools/reference/gen_adago.py --seed 777  --out /tmp/holdout_adago
    python3 tools/reference/gen_adago.py --seed 4242 --out /tmp/holdout_adagob
    python3 tools/reference/gen_adago.py --selfcheck --out /tmp/x  # + robustness report

Needs numpy only.  The committed set (fixtures/reference/adago/adago_*) was
made with numpy 2.4.6, Python 3.11.7.
"""

from __future__ import annotations

import argparse
import math
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_io import as_dtype_list, log_uniform, report, sig, uniform, write_case  # noqa: E402
import fixture_io  # noqa: E402
from fixture_io import validate as _validate  # noqa: E402


def validate(out: Path, names: list[str]) -> None:
    def matrices_only(name, spec, _exp):
        assert all(len(p["shape"]) == 2 for p in spec["params"]), f"{name}: non-matrix"

    _validate(out, names, matrices_only)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "fixtures" / "reference" / "adago"
DEFAULT_SEED = 20261128

# Hyperparameter names and defaults (see adago_semantics.md, "Hyperparameters").
DEFAULTS = {
    "lr": 0.05,            # eta
    "momentum": 0.95,      # mu
    "gamma": 10.0,         # gamma: cap on ||G_t||_F in the accumulator and the stepsize
    "eps": 5e-4,           # epsilon: lower bound on the stepsize a_t
    "v0": 1e-3,            # v_0: initial accumulator (v_0^2 is the initial sum of squares)
    "weight_decay": 0.0,   # extension: decoupled, W *= 1 - lr*weight_decay
    "nesterov": False,     # extension: orthogonalize (1-mu) G + mu M
    "ns_steps": 5,
    "ns_coefficients": [3.4445, -4.7750, 2.0315],
}
NS_EPS = 1e-7  # Newton-Schulz input is divided by max(||X||_F, NS_EPS) (torch.optim.Muon)

PARAM_NAMES = ["w", "enc.weight", "head.w", "attn.q", "mlp.up", "gate", "proj"]


# --------------------------------------------------------------------------
# the reference implementation
# --------------------------------------------------------------------------

def newton_schulz(x: np.ndarray, coeffs, steps: int) -> np.ndarray:
    """Muon's quintic Newton-Schulz iteration, in x's dtype.

    X <- G (transposed if rows > cols); X <- X / max(||X||_F, 1e-7);
    repeat: A = X X^T; B = b A + c A A; X = a X + B X; transpose back.
    """
    dt = x.dtype
    a, b, c = (dt.type(v) for v in coeffs)
    transposed = x.shape[0] > x.shape[1]
    X = x.T.copy() if transposed else x.copy()
    nrm = math.sqrt(float(np.sum(X.astype(np.float64) ** 2)))
    X = X / dt.type(max(nrm, NS_EPS))
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X.T.copy() if transposed else X


class AdaGOReference:
    """AdaGO on named 2-D parameters; per-parameter state created on first gradient."""

    def __init__(self, params: dict, hyper_of: dict, dtype):
        self.dtype = np.dtype(dtype)
        self.params = {n: np.array(v, dtype=dtype) for n, v in params.items()}
        self.hyper_of = hyper_of          # name -> full hyper dict (defaults filled in)
        self.M = {}                       # momentum, dtype tensor
        self.v2 = {}                      # accumulator v_t^2, python float (f64)
        self.stats = {"clamped": 0, "floored": 0, "updates": 0}

    def step(self, grads: dict) -> None:
        dt = self.dtype
        for name, g in grads.items():
            h = self.hyper_of[name]
            W = self.params[name]
            G = np.asarray(g, dtype=dt).reshape(W.shape)
            lr, mu, gamma, eps = h["lr"], h["momentum"], h["gamma"], h["eps"]
            if name not in self.M:                       # state created at the first gradient
                self.M[name] = np.zeros_like(W)
                self.v2[name] = float(h["v0"]) ** 2
            if h["weight_decay"] != 0.0:                 # decoupled, on W_{t-1}
                W = W * dt.type(1.0 - lr * h["weight_decay"])
            M = dt.type(mu) * self.M[name] + dt.type(1.0 - mu) * G
            self.M[name] = M
            gnorm = math.sqrt(float(np.sum(G.astype(np.float64) ** 2)))   # ||G_t||_F
            clipped = min(gnorm, gamma)
            self.v2[name] += clipped * clipped                          # v_t^2
            D = dt.type(1.0 - mu) * G + dt.type(mu) * M if h["nesterov"] else M
            O = newton_schulz(D, h["ns_coefficients"], int(h["ns_steps"]))
            raw = lr * clipped / math.sqrt(self.v2[name])
            alpha = max(eps, raw)
            self.stats["updates"] += 1
            self.stats["clamped"] += gnorm > gamma
            self.stats["floored"] += raw < eps
            self.params[name] = W - dt.type(alpha) * O


def newton_schulz_alt(x: np.ndarray, coeffs, steps: int) -> np.ndarray:
    """Same iteration, other association order and a working-dtype norm (selfcheck only)."""
    dt = x.dtype
    a, b, c = (dt.type(v) for v in coeffs)
    transposed = x.shape[0] > x.shape[1]
    X = x.T if transposed else x
    X = X / np.maximum(np.linalg.norm(X), dt.type(NS_EPS))
    for _ in range(steps):
        AX = (X @ X.T) @ X
        X = a * X + b * AX + c * ((X @ X.T) @ AX)
    return X.T if transposed else X


class AdaGOAlt(AdaGOReference):
    """Second implementation with different rounding choices (selfcheck only)."""

    def step(self, grads: dict) -> None:
        dt = self.dtype
        for name, g in grads.items():
            h = self.hyper_of[name]
            W = self.params[name]
            G = np.asarray(g, dtype=dt).reshape(W.shape)
            lr, mu, gamma, eps = (dt.type(h[k]) for k in ("lr", "momentum", "gamma", "eps"))
            if name not in self.M:
                self.M[name] = np.zeros_like(W)
                self.v2[name] = dt.type(h["v0"]) * dt.type(h["v0"])
            if h["weight_decay"] != 0.0:
                W = W - (lr * dt.type(h["weight_decay"])) * W
            M = self.M[name] + (dt.type(1) - mu) * (G - self.M[name])      # lerp form
            self.M[name] = M
            gnorm = np.linalg.norm(G)
            self.v2[name] = self.v2[name] + np.minimum(gnorm * gnorm, gamma * gamma)
            D = G + mu * (M - G) if h["nesterov"] else M
            O = newton_schulz_alt(D, h["ns_coefficients"], int(h["ns_steps"]))
            alpha = np.maximum(eps, lr * np.minimum(gnorm, gamma) / np.sqrt(self.v2[name]))
            self.params[name] = W - alpha * O


def run(spec: dict, cls=AdaGOReference):
    dtype = np.float32 if spec["dtype"] == "f32" else np.float64
    base = dict(DEFAULTS)
    base.update(spec["hyper"])
    hyper_of = {p["name"]: dict(base) for p in spec["params"]}
    for g in spec.get("groups") or []:
        for n in g["params"]:
            hyper_of[n] = dict(base)
            hyper_of[n].update(g["hyper"])
    params = {p["name"]: np.array(p["data"], dtype=np.float64).reshape(p["shape"])
              for p in spec["params"]}
    opt = cls(params, hyper_of, dtype)
    trajectory = []
    for step in spec["steps"]:
        opt.step(step["grads"])
        trajectory.append({p["name"]: [float(x) for x in opt.params[p["name"]].reshape(-1)]
                           for p in spec["params"]})
    return trajectory, opt.stats


# --------------------------------------------------------------------------
# random cases
# --------------------------------------------------------------------------

# (flag, dtype); "frozen" everywhere except the f64 defaults case, "empty step" in groups.
CASE_KINDS = [
    ("defaults", "f64"), ("lr_momentum", "f64"), ("clamp", "f64"), ("eps_floor", "f64"),
    ("v0", "f64"), ("weight_decay", "f64"), ("nesterov", "f64"), ("ns_steps", "f64"),
    ("ns_coefficients", "f64"), ("all", "f64"), ("groups", "f64"),
    ("defaults", "f32"), ("clamp", "f32"), ("eps_floor", "f32"), ("weight_decay", "f32"),
    ("nesterov", "f32"), ("groups", "f32"),
]


def case_name(flag: str, dtype: str) -> str:
    return f"adago_{flag}_{dtype}"


def draw_shapes(rng, dtype: str) -> list[list[int]]:
    """3-5 matrices: one square, one tall, one wide, one 1 x n (if 4+), rest random; <= 90 numel.

    f32 cases have no matrix under 3 elements: a 1 x 1 or 1 x 2 parameter can
    drift through zero, and the per-tensor relative error (scaled by its own
    max |value|) then measures nothing but how close to zero it landed.
    """
    while True:
        n = int(rng.integers(3, 6))
        k = int(rng.integers(1, 6))
        square = [k, k]
        r = int(rng.integers(2, 7))
        tall = [r + int(rng.integers(1, 4)), r] if rng.random() < 0.8 else [r + 2, 1]
        c = int(rng.integers(2, 7))
        wide = [c, c + int(rng.integers(1, 4))]
        shapes = [square, tall, wide]
        if n >= 4:
            shapes.append([1, int(rng.integers(2, 9))])
        while len(shapes) < n:
            shapes.append([int(d) for d in rng.integers(1, 7, size=2)])
        if dtype == "f32" and min(a * b for a, b in shapes) < 3:
            continue
        if sum(a * b for a, b in shapes) <= 90:
            order = rng.permutation(len(shapes))
            return [shapes[i] for i in order]


def draw_frozen(rng, names, n_steps, want_frozen, want_empty_step):
    return fixture_io.draw_frozen(rng, names, n_steps, want_frozen, want_empty_step)


def hyper_for(flag: str, rng, typical_norm: float):
    """Return (hyper, group_overrides or None, per-step gradient decay factor)."""
    lr = lambda: log_uniform(rng, 3e-3, 1e-1)          # noqa: E731
    mom = lambda: uniform(rng, 0.5, 0.98)              # noqa: E731
    tn = typical_norm
    if flag == "defaults":
        return {}, None, 1.0
    if flag == "lr_momentum":
        return {"lr": lr(), "momentum": mom()}, None, 1.0
    if flag == "clamp":  # gamma below most gradient norms: min(.,gamma) active
        return {"lr": lr(), "gamma": sig(tn * rng.uniform(0.3, 0.8)),
                "v0": log_uniform(rng, 1e-3, 1e-1)}, None, 1.0
    if flag == "eps_floor":  # decaying gradients: the floor eps takes over mid-run
        l = lr()
        return ({"lr": l, "eps": sig(l * rng.uniform(0.1, 0.3)), "momentum": mom()},
                None, uniform(rng, 0.6, 0.8))
    if flag == "v0":  # v0 comparable to or larger than the gradient norms
        return {"lr": lr(), "v0": sig(tn * 10.0 ** rng.uniform(-0.3, 1.0))}, None, 1.0
    if flag == "weight_decay":
        return {"lr": lr(), "weight_decay": log_uniform(rng, 1e-2, 1.0)}, None, 1.0
    if flag == "nesterov":
        return {"lr": lr(), "momentum": mom(), "nesterov": True}, None, 1.0
    if flag == "ns_steps":
        return {"lr": lr(), "ns_steps": int(rng.choice([1, 2, 3, 7]))}, None, 1.0
    if flag == "ns_coefficients":  # the classic convergent quintic (O -> U V^T exactly)
        return ({"lr": lr(), "ns_steps": int(rng.integers(6, 11)),
                 "ns_coefficients": [1.875, -1.25, 0.375]}, None, 1.0)
    if flag == "all":
        return ({"lr": lr(), "momentum": mom(), "gamma": sig(tn * rng.uniform(0.5, 1.5)),
                 "eps": log_uniform(rng, 1e-4, 3e-3), "v0": sig(tn * rng.uniform(0.05, 1.0)),
                 "weight_decay": log_uniform(rng, 1e-2, 3e-1), "nesterov": True,
                 "ns_steps": int(rng.integers(4, 7))}, None, uniform(rng, 0.9, 1.0))
    if flag == "groups":
        return ({"lr": lr(), "gamma": sig(tn * rng.uniform(0.5, 1.2))},
                [{"lr": lr(), "momentum": mom(), "eps": log_uniform(rng, 1e-3, 1e-2)},
                 {"gamma": sig(tn * rng.uniform(2.0, 5.0)), "v0": sig(tn * rng.uniform(0.1, 1.0)),
                  "weight_decay": log_uniform(rng, 1e-2, 3e-1), "nesterov": True}],
                1.0)
    raise ValueError(flag)


def build_spec(flag: str, dtype: str, seed: int):
    name = case_name(flag, dtype)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])

    shapes = draw_shapes(rng, dtype)
    names = [str(n) for n in rng.permutation(PARAM_NAMES)[: len(shapes)]]
    n_steps = int(rng.integers(20, 26))
    grad_scale = 10.0 ** rng.uniform(-2.5, 0.0)
    per_param_scale = {n: grad_scale * 10.0 ** rng.uniform(-0.5, 0.5) for n in names}
    norms = [per_param_scale[n] * math.sqrt(s[0] * s[1]) for n, s in zip(names, shapes)]
    typical_norm = float(np.median(norms))

    hyper, group_overrides, decay = hyper_for(flag, rng, typical_norm)

    params = []
    for n, s in zip(names, shapes):
        # f32: no tiny parameters, so that f32 rounding in the Newton-Schulz
        # matmuls (~1e-6 of O, times a_t up to 0.1) stays well inside 1e-5 of max|W|
        scale = 10.0 ** rng.uniform(-1.0 if dtype == "f64" else -0.5, 0.3)
        params.append({"name": n, "shape": s,
                       "data": as_dtype_list(rng.normal(0, scale, size=s), dtype)})

    groups = None
    if group_overrides is not None:
        groups = []
        pool = list(rng.permutation(names))
        for i, ov in enumerate(group_overrides):
            room = len(pool) - (len(group_overrides) - i - 1) - 1
            k = int(rng.integers(1, min(2, room) + 1))
            members, pool = pool[:k], pool[k:]
            groups.append({"params": [str(m) for m in members], "hyper": ov})

    frozen = draw_frozen(rng, names, n_steps,
                         want_frozen=not (flag == "defaults" and dtype == "f64"),
                         want_empty_step=flag == "groups")
    steps = []
    for t in range(n_steps):
        grads = {}
        for n, s in zip(names, shapes):
            g = rng.normal(0, per_param_scale[n] * decay ** t, size=s)  # always drawn
            if n not in frozen[t]:
                grads[n] = as_dtype_list(g, dtype)
        steps.append({"grads": grads})

    spec = {"optimizer": "adago", "dtype": dtype, "hyper": hyper}
    if groups is not None:
        spec["groups"] = groups
    spec["params"] = params
    spec["steps"] = steps
    spec["nonfinite"] = "error"
    return name, spec


# --------------------------------------------------------------------------
# writing and validation (same layout as gen_classic.py)
# --------------------------------------------------------------------------

def rel_error(got, want) -> float:
    """max_i |got_i - want_i| / max_i |want_i| (the tests' per-tensor measure)."""
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(float(np.max(np.abs(w))) if w.size else 0.0, np.finfo(float).tiny)
    return float(np.max(np.abs(g - w))) / scale if w.size else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed (default {DEFAULT_SEED})")
    ap.add_argument("--selfcheck", action="store_true",
                    help="also replay every case with a second implementation and report the differences")
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    names, worst = [], {"f64": 0.0, "f32": 0.0}
    for flag, dtype in CASE_KINDS:
        name, spec = build_spec(flag, dtype, args.seed)
        trajectory, stats = run(spec)
        # coverage: the flag's branch must actually be taken
        if flag == "clamp":
            assert stats["clamped"] >= stats["updates"] // 3, f"{name}: clamp rarely active {stats}"
        if flag == "eps_floor":
            assert stats["floored"] >= 5, f"{name}: floor never active {stats}"
        expected = {"trajectory": trajectory, "skipped_steps": 0,
                    "meta": {"reference": "tools/reference/gen_adago.py (numpy, from the paper)",
                             "numpy": np.__version__, "seed": args.seed, "case": name}}
        write_case(args.out, name, spec, expected)
        names.append(name)
        line = (f"{name}: {len(spec['steps'])} steps, shapes {[p['shape'] for p in spec['params']]}, "
                f"clamped {stats['clamped']}/{stats['updates']}, floored {stats['floored']}/{stats['updates']}")
        if args.selfcheck:
            alt, _ = run(spec, AdaGOAlt)
            e = max(rel_error(a[n], b[n]) for a, b in zip(alt, trajectory) for n in a)
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
