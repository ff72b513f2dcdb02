#!/usr/bin/env python3
"""Generate golden FRUGAL and ASGO trajectories for `steepest replay` (independent NumPy references).

What it does
------------
Two optimizers of issue 4 ("Paper optimizers II"), each written here from its
paper's algorithm (and the conventions of its official code, read but not
run: FRUGAL's code needs `transformers` and a GPU-era torch stack, ASGO's
code approximates the inverse root iteratively), as plain NumPy:

* FRUGAL -- Zmushko et al., "FRUGAL: Memory-Efficient Optimization by
  Reducing State Overhead for Scalable Training" (arXiv 2411.07837),
  Algorithm 1: every `update_gap` steps choose a subspace of each matrix
  (top-r singular vectors of the gradient, or a cyclic window of columns),
  reset the state, run AdamW (or SGD with momentum) on the projected
  gradient and signSGD (or SGD) on the residual.  Non-matrices get AdamW on
  the whole tensor.
* ASGO -- An et al., "ASGO: Adaptive Structured Gradient Optimization"
  (arXiv 2503.20762) with its practical modifications: EMA momentum, EMA
  preconditioner on the smaller side, (V^{1/2} + eps I)^{-1} by an
  eigendecomposition, root refreshed every `precondition_frequency` steps,
  update rescaled to Frobenius norm 0.2 sqrt(mn), decoupled weight decay.
  Vectors and `*embed*`/`*head*` matrices go to AdamW (the `asgo` recipe).

`paper2a_semantics.md` beside this file lists the conventions (SVD sign
convention, refresh times, rounding of the rank, dtype of each quantity).

For a fixed list of case kinds it draws, from `--seed`, shapes,
hyperparameters, data and frozen steps and writes
`<opt>_<flag>_<dtype>.spec.json` / `.expected.json` into the output folder.
f64 cases are computed in float64; f32 cases keep tensors in float32 and do
the SVD / eigendecomposition in float64 of the float32 data, rounding the
projector / inverse root to float32 once (as steepest does).

How to run
----------
    /tmp/refvenv/bin/python tools/reference/gen_paper2a.py                    # committed set
    /tmp/refvenv/bin/python tools/reference/gen_paper2a.py --seed 777 --out /tmp/holdout_p2a

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
from fixture_io import as_dtype_list, log_uniform, report, uniform, validate, write_case  # noqa: E402
import fixture_io  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "fixtures" / "reference" / "paper2a"
DEFAULT_SEED = 20261129

FRUGAL_DEFAULTS = {
    "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01, "correct_bias": True,
    "density": 0.25, "update_gap": 200, "reset_statistics": True, "proj_type": "svd",
    "state_full": "adamw", "momentum": 0.9, "inactive_update_rule": "sign_sgd", "inactive_lr_scale": 1.0,
    "block_order": "cyclic", "seed": 0,
}
M64 = (1 << 64) - 1


def splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def fnv1a64(s: str) -> int:
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def window_start(h, name, j, k, n):
    """First column of the j-th state-full window (cyclic, or a seeded random draw)."""
    if h["block_order"] == "random":
        return splitmix64(splitmix64(int(h["seed"]) ^ fnv1a64(name)) ^ j) % n
    return (j * k) % n
ASGO_DEFAULTS = {
    "lr": 1e-2, "momentum": 0.9, "beta2": 0.8, "eps": 1e-10, "weight_decay": 0.1, "precondition_frequency": 1,
    "adamw_lr": 3e-4, "adamw_betas": [0.9, 0.95], "adamw_eps": 1e-8, "adamw_weight_decay": 0.0,
    "adamw_params": ["*embed*", "*head*"],
}


# --------------------------------------------------------------------------
# FRUGAL
# --------------------------------------------------------------------------

def svd_with_sign_convention(g64: np.ndarray):
    """Thin SVD; each right singular vector (row of Vt) and its left partner are
    flipped so that the row's first entry of largest magnitude is positive."""
    U, S, Vt = np.linalg.svd(g64, full_matrices=False)
    for i in range(Vt.shape[0]):
        j = int(np.argmax(np.abs(Vt[i])))
        if Vt[i, j] < 0:
            Vt[i] *= -1.0
            U[:, i] *= -1.0
    return U, S, Vt


def py_rank(d: int, density: float) -> int:
    return min(d, int(round(d * density)))   # Python's round: half to even


class Frugal:
    def __init__(self, params, hyper_of, dtype):
        self.dt = np.dtype(dtype)
        self.params = {n: np.array(v, dtype=dtype) for n, v in params.items()}
        self.h = hyper_of
        self.state = {}
        self.stats = {"refresh": 0, "updates": 0}

    def state_full(self, h, st, g, step):
        """One step of the state-full rule on `g` (any shape); returns the update."""
        dt = self.dt
        lr = h["lr"]
        if h["state_full"] == "adamw":
            b1, b2 = h["betas"]
            st["m"] = st["m"] * dt.type(b1) + dt.type(1 - b1) * g
            st["v"] = st["v"] * dt.type(b2) + dt.type(1 - b2) * g * g
            if h["correct_bias"]:
                step_size = lr / (1 - b1 ** step)
                bc2 = math.sqrt(1 - b2 ** step)
            else:
                step_size, bc2 = lr, 1.0
            denom = np.sqrt(st["v"]) / dt.type(bc2) + dt.type(h["eps"])
            return st["m"] / denom * dt.type(-step_size)
        st["m"] = st["m"] * dt.type(h["momentum"]) + g
        return st["m"] * dt.type(-lr)

    def state_free(self, h, g):
        ilr = self.dt.type(-(h["lr"] * h["inactive_lr_scale"]))
        rule = h["inactive_update_rule"]
        if rule == "sign_sgd":
            return ilr * np.sign(g)
        if rule == "sgd":
            return ilr * g
        return np.zeros_like(g)

    def zeros(self, shape):
        return {"m": np.zeros(shape, self.dt), "v": np.zeros(shape, self.dt)}

    def step(self, grads):
        dt = self.dt
        for name, gl in grads.items():
            h = self.h[name]
            W = self.params[name]
            G = np.asarray(gl, dtype=dt).reshape(W.shape)
            st = self.state.setdefault(name, {"t": 0})
            st["t"] += 1
            t = st["t"]
            self.stats["updates"] += 1
            W = W * dt.type(1.0 - h["lr"] * h["weight_decay"])
            if W.ndim != 2:
                if "m" not in st:
                    st.update(self.zeros(W.shape))
                self.params[name] = W + self.state_full(h, st, G, t)
                continue
            m, n = W.shape
            gap = int(h["update_gap"])
            t0 = t - 1
            refresh = t0 % gap == 0
            inner = t0 % gap + 1 if h["reset_statistics"] else t
            if h["proj_type"] == "blockwise":
                k = py_rank(n, h["density"])
                if "m" not in st or (refresh and h["reset_statistics"]):
                    st.update(self.zeros((m, k)))
                self.stats["refresh"] += refresh
                start = window_start(h, name, t0 // gap, k, n)
                cols = [(start + i) % n for i in range(k)]
                active = np.zeros(n, dtype=bool)
                active[cols] = True
                upd = np.zeros_like(W)
                if k:
                    upd[:, cols] = self.state_full(h, st, G[:, cols], inner)
                upd[:, ~active] = self.state_free(h, G[:, ~active])
                self.params[name] = W + upd
                continue
            right = m >= n
            r = py_rank(n if right else m, h["density"])
            if refresh:
                self.stats["refresh"] += 1
                U, _, Vt = svd_with_sign_convention(G.astype(np.float64))
                st["P"] = (Vt[:r, :] if right else U[:, :r]).astype(dt)
                if "m" not in st or h["reset_statistics"]:
                    st.update(self.zeros((m, r) if right else (r, n)))
            P = st["P"]
            low = G @ P.T if right else P.T @ G
            back = low @ P if right else P @ low
            u_low = self.state_full(h, st, low, inner)
            up = u_low @ P if right else P @ u_low
            self.params[name] = W + (up + self.state_free(h, G - back))


# --------------------------------------------------------------------------
# ASGO (+ AdamW for the recipe's other parameters)
# --------------------------------------------------------------------------

def glob_match(name: str, pattern: str) -> bool:
    import fnmatch
    return fnmatch.fnmatchcase(name, pattern)


class Asgo:
    def __init__(self, params, hyper_of, dtype):
        self.dt = np.dtype(dtype)
        self.params = {n: np.array(v, dtype=dtype) for n, v in params.items()}
        self.h = hyper_of
        self.state = {}
        self.stats = {"asgo": 0, "adamw": 0, "roots": 0}

    def adamw(self, name, h, W, G):
        dt = self.dt
        st = self.state.setdefault(name, {"t": 0, "m": np.zeros_like(W), "v": np.zeros_like(W)})
        st["t"] += 1
        t = st["t"]
        lr, (b1, b2), eps, wd = h["adamw_lr"], h["adamw_betas"], h["adamw_eps"], h["adamw_weight_decay"]
        W = W * dt.type(1 - lr * wd)
        st["m"] = st["m"] + dt.type(1 - b1) * (G - st["m"])
        st["v"] = st["v"] * dt.type(b2) + dt.type(1 - b2) * G * G
        denom = np.sqrt(st["v"]) / dt.type(math.sqrt(1 - b2 ** t)) + dt.type(eps)
        self.stats["adamw"] += 1
        return W - dt.type(lr / (1 - b1 ** t)) * (st["m"] / denom)

    def step(self, grads):
        dt = self.dt
        for name, gl in grads.items():
            h = self.h[name]
            W = self.params[name]
            G = np.asarray(gl, dtype=dt).reshape(W.shape)
            if W.ndim != 2 or any(glob_match(name, p) for p in h["adamw_params"]):
                self.params[name] = self.adamw(name, h, W, G)
                continue
            m, n = W.shape
            if m * n == 0:
                continue
            left = m < n
            d = m if left else n
            st = self.state.setdefault(name, {"t": 0, "M": np.zeros_like(W), "V": np.zeros((d, d), dt),
                                              "R": np.zeros((d, d), dt)})
            st["t"] += 1
            mu, b2 = h["momentum"], h["beta2"]
            st["M"] = st["M"] + dt.type(1 - mu) * (G - st["M"])
            GG = G @ G.T if left else G.T @ G
            st["V"] = st["V"] + dt.type(1 - b2) * (GG - st["V"])
            if (st["t"] - 1) % int(h["precondition_frequency"]) == 0:
                lam, Q = np.linalg.eigh(st["V"].astype(np.float64))
                f = 1.0 / (np.sqrt(np.maximum(lam, 0.0)) + h["eps"])
                st["R"] = ((Q * f) @ Q.T).astype(dt)
                self.stats["roots"] += 1
            U = st["R"] @ st["M"] if left else st["M"] @ st["R"]
            norm = math.sqrt(float(np.sum(U.astype(np.float64) ** 2)))
            s = 0.2 * math.sqrt(m * n) / norm if norm > 0 else 0.0
            if h["weight_decay"] > 0:
                W = W * dt.type(1 - h["lr"] * h["weight_decay"])
            self.params[name] = W + dt.type(-h["lr"]) * (U * dt.type(s))
            self.stats["asgo"] += 1


# --------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------

CASES = [
    # (optimizer, flag, dtype)
    ("frugal", "defaults", "f64"), ("frugal", "svd", "f64"), ("frugal", "svd_noreset", "f64"),
    ("frugal", "blockwise", "f64"), ("frugal", "sgdm", "f64"), ("frugal", "blockwise_sgdm", "f64"),
    ("frugal", "blockwise_random", "f64"), ("frugal", "groups", "f64"), ("frugal", "svd", "f32"), ("frugal", "blockwise", "f32"),
    ("asgo", "defaults", "f64"), ("asgo", "lr_momentum", "f64"), ("asgo", "beta2_eps", "f64"),
    ("asgo", "frequency", "f64"), ("asgo", "recipe", "f64"), ("asgo", "groups", "f64"),
    ("asgo", "defaults", "f32"), ("asgo", "frequency", "f32"),
]

MAT_NAMES = ["w", "attn.q", "mlp.up", "gate", "proj", "enc.weight"]


def draw_matrix_shapes(rng, k):
    out = []
    for i in range(k):
        a, b = int(rng.integers(2, 7)), int(rng.integers(2, 7))
        if i == 0:
            a, b = max(a, b) + 1, min(a, b)   # tall
        elif i == 1:
            a, b = min(a, b), max(a, b) + 2   # wide
        out.append([a, b])
    return out


def draw_frozen(rng, names, n_steps, want_frozen, want_empty_step):
    return fixture_io.draw_frozen(rng, names, n_steps, want_frozen, want_empty_step,
                                  late=(2, 6), gap_start=(8, 13), gap_len=(2, 5))


def frugal_hyper(flag, rng):
    lr = lambda: log_uniform(rng, 3e-3, 3e-2)   # noqa: E731
    if flag == "defaults":
        return {}, None
    if flag == "svd":
        return {"lr": lr(), "density": 0.5, "update_gap": int(rng.integers(3, 6)),
                "weight_decay": log_uniform(rng, 1e-3, 1e-1), "betas": [uniform(rng, 0.8, 0.95), 0.99]}, None
    if flag == "svd_noreset":
        return {"lr": lr(), "density": 0.6, "update_gap": 3, "reset_statistics": False,
                "correct_bias": False, "inactive_lr_scale": uniform(rng, 0.2, 0.8)}, None
    if flag == "blockwise":
        return {"lr": lr(), "proj_type": "blockwise", "density": 0.4, "update_gap": int(rng.integers(2, 5)),
                "eps": 1e-6}, None
    if flag == "blockwise_random":
        return {"lr": lr(), "proj_type": "blockwise", "block_order": "random", "seed": int(rng.integers(0, 1000)),
                "density": 0.34, "update_gap": 2}, None
    if flag == "sgdm":
        return {"lr": lr(), "state_full": "sgdm", "momentum": uniform(rng, 0.5, 0.9), "density": 0.5,
                "update_gap": 4, "inactive_update_rule": "sgd", "inactive_lr_scale": 0.5}, None
    if flag == "blockwise_sgdm":
        return {"lr": lr(), "proj_type": "blockwise", "state_full": "sgdm", "density": 0.5,
                "update_gap": 3, "inactive_update_rule": "no", "reset_statistics": False}, None
    if flag == "groups":
        return ({"lr": lr(), "density": 0.5, "update_gap": 4},
                [{"density": 0.34, "update_gap": 2, "lr": lr()},
                 {"proj_type": "blockwise", "density": 0.5, "update_gap": 3}])
    raise ValueError(flag)


def asgo_hyper(flag, rng):
    lr = lambda: log_uniform(rng, 3e-3, 3e-2)   # noqa: E731
    if flag == "defaults":
        return {}, None
    if flag == "lr_momentum":
        return {"lr": lr(), "momentum": uniform(rng, 0.5, 0.95), "weight_decay": 0.0}, None
    if flag == "beta2_eps":
        return {"lr": lr(), "beta2": uniform(rng, 0.9, 0.99), "eps": log_uniform(rng, 1e-4, 1e-2)}, None
    if flag == "frequency":
        return {"lr": lr(), "precondition_frequency": int(rng.integers(2, 5)),
                "weight_decay": log_uniform(rng, 1e-2, 3e-1)}, None
    if flag == "recipe":
        return {"lr": lr(), "adamw_lr": lr(), "adamw_weight_decay": 0.01, "adamw_betas": [0.9, 0.99]}, None
    if flag == "groups":
        return ({"lr": lr()}, [{"lr": lr(), "momentum": 0.5}, {"beta2": 0.95, "precondition_frequency": 2}])
    raise ValueError(flag)


def build_spec(opt, flag, dtype, seed):
    name = f"{opt}_{flag}_{dtype}"
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    k = int(rng.integers(3, 5))
    shapes = draw_matrix_shapes(rng, k)
    names = [str(n) for n in rng.permutation(MAT_NAMES)[:k]]
    if opt == "frugal" or flag == "recipe":
        shapes.append([int(rng.integers(2, 6))])
        names.append("bias")
    if flag == "recipe":
        shapes.append([3, 4])
        names.append("head.w")
    hyper, overrides = (frugal_hyper if opt == "frugal" else asgo_hyper)(flag, rng)
    n_steps = int(rng.integers(20, 26))
    grad_scale = 10.0 ** rng.uniform(-2.0, 0.0)
    pscale = {n: grad_scale * 10.0 ** rng.uniform(-0.5, 0.5) for n in names}
    params = []
    for n, s in zip(names, shapes):
        sc = 10.0 ** rng.uniform(-0.5 if dtype == "f32" else -1.0, 0.3)
        params.append({"name": n, "shape": s, "data": as_dtype_list(rng.normal(0, sc, size=s), dtype)})
    groups = None
    if overrides is not None:
        groups, pool = [], [n for n in rng.permutation(names)]
        for ov in overrides:
            members, pool = pool[:1], pool[1:]
            groups.append({"params": [str(m) for m in members], "hyper": ov})
    frozen = draw_frozen(rng, names, n_steps, want_frozen=flag != "defaults" or dtype == "f32",
                         want_empty_step=flag == "groups")
    steps = []
    for t in range(n_steps):
        grads = {}
        for n, s in zip(names, shapes):
            g = rng.normal(0, pscale[n], size=s)
            if n not in frozen[t]:
                grads[n] = as_dtype_list(g, dtype)
        steps.append({"grads": grads})
    spec = {"optimizer": opt, "dtype": dtype, "hyper": hyper}
    if groups is not None:
        spec["groups"] = groups
    spec.update({"params": params, "steps": steps, "nonfinite": "error"})
    return name, spec


def run(spec):
    dtype = np.float32 if spec["dtype"] == "f32" else np.float64
    cls, defaults = (Frugal, FRUGAL_DEFAULTS) if spec["optimizer"] == "frugal" else (Asgo, ASGO_DEFAULTS)
    base = dict(defaults)
    base.update(spec["hyper"])
    hyper_of = {p["name"]: dict(base) for p in spec["params"]}
    for g in spec.get("groups") or []:
        for n in g["params"]:
            hyper_of[n] = dict(base)
            hyper_of[n].update(g["hyper"])
    params = {p["name"]: np.array(p["data"], dtype=np.float64).reshape(p["shape"]) for p in spec["params"]}
    opt = cls(params, hyper_of, dtype)
    traj = []
    for step in spec["steps"]:
        opt.step(step["grads"])
        traj.append({p["name"]: [float(x) for x in opt.params[p["name"]].reshape(-1)] for p in spec["params"]})
    return traj, opt.stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    names = []
    for opt, flag, dtype in CASES:
        name, spec = build_spec(opt, flag, dtype, args.seed)
        traj, stats = run(spec)
        expected = {"trajectory": traj, "skipped_steps": 0,
                    "meta": {"reference": "tools/reference/gen_paper2a.py (numpy, from the papers)",
                             "numpy": np.__version__, "seed": args.seed, "case": name}}
        write_case(args.out, name, spec, expected)
        names.append(name)
        print(f"{name}: {len(spec['steps'])} steps, shapes {[p['shape'] for p in spec['params']]}, {stats}")
    validate(args.out, names)
    report(args.out, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
