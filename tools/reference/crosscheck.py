#!/usr/bin/env python3
"""Replay reference fixtures with an independent numpy implementation.

Usage:  python3 tools/reference/crosscheck.py [DIR] [--verbose]
        (DIR defaults to fixtures/reference/classic; needs only numpy)

This is a second, torch-free reading of the update rules documented in
README.md.  It mirrors PyTorch's single-tensor CPU code op by op, including its
dtype rules: scalar arithmetic (bias corrections, lr / bias_correction,
1 - beta, ...) is done in Python float (f64) and the result is cast to the
tensor dtype only when it enters a tensor op.  It does not reproduce where
PyTorch's vectorized CPU kernels use a fused multiply-add, so it is not
expected to be bit-exact; it reports, per case, the largest difference from
the expected trajectory in units in the last place (ULP) of the dtype and as
a relative error.  A wrong formula shows up as a difference many orders of
magnitude above rounding.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "reference" / "classic"

# PyTorch's constructor defaults (torch 2.15); README.md lists the same table.
DEFAULTS = {
    "sgd": dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    "adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False),
    "adamw": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False),
    "adamax": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False),
    "adagrad": dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                    maximize=False),
    "rmsprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                    maximize=False),
}


def lerp(s, e, w, T):
    """torch.lerp with a scalar weight (non-FMA form of ATen's formula)."""
    w = T(w)
    if abs(w) < 0.5:
        return s + w * (e - s)
    return e - (e - s) * (T(1) - w)


def step_param(opt, h, st, p, g, T):
    """One update of one parameter; st is its state dict (mutated). Returns new p."""
    c = T  # cast a Python float to the tensor dtype
    if h["maximize"]:
        g = -g
    if opt == "sgd":
        if h["weight_decay"] != 0:
            g = g + c(h["weight_decay"]) * p
        if h["momentum"] != 0:
            if "buf" not in st:
                st["buf"] = g.copy()
            else:
                st["buf"] = st["buf"] * c(h["momentum"]) + c(1 - h["dampening"]) * g
            g = g + c(h["momentum"]) * st["buf"] if h["nesterov"] else st["buf"]
        return p + c(-h["lr"]) * g

    st["step"] = st.get("step", 0.0) + 1.0
    step = st["step"]
    if opt in ("adam", "adamw"):
        b1, b2 = h["betas"]
        if h["weight_decay"] != 0:
            if opt == "adamw":
                p = p * c(1 - h["lr"] * h["weight_decay"])
            else:
                g = g + c(h["weight_decay"]) * p
        m = st.setdefault("m", np.zeros_like(p))
        v = st.setdefault("v", np.zeros_like(p))
        st["m"] = m = lerp(m, g, 1 - b1, T)
        st["v"] = v = v * c(b2) + c(1 - b2) * g * g
        bc1 = 1 - b1 ** step
        bc2 = 1 - b2 ** step
        step_size = h["lr"] / bc1
        bc2_sqrt = bc2 ** 0.5
        if h["amsgrad"]:
            st["vmax"] = v = np.maximum(st.get("vmax", np.zeros_like(p)), v)
        denom = np.sqrt(v) / c(bc2_sqrt) + c(h["eps"])
        return p + c(-step_size) * m / denom
    if opt == "adamax":
        b1, b2 = h["betas"]
        if h["weight_decay"] != 0:
            g = g + c(h["weight_decay"]) * p
        m = st.setdefault("m", np.zeros_like(p))
        u = st.setdefault("u", np.zeros_like(p))
        st["m"] = m = lerp(m, g, 1 - b1, T)
        st["u"] = u = np.maximum(u * c(b2), np.abs(g) + c(h["eps"]))
        clr = h["lr"] / (1 - b1 ** step)
        return p + c(-clr) * m / u
    if opt == "adagrad":
        if h["weight_decay"] != 0:
            g = g + c(h["weight_decay"]) * p
        clr = h["lr"] / (1 + (step - 1) * h["lr_decay"])
        st["sum"] = s = st["sum"] + c(1) * g * g
        std = np.sqrt(s) + c(h["eps"])
        return p + c(-clr) * g / std
    if opt == "rmsprop":
        a = h["alpha"]
        if h["weight_decay"] != 0:
            g = g + c(h["weight_decay"]) * p
        sq = st.setdefault("sq", np.zeros_like(p))
        st["sq"] = sq = sq * c(a) + c(1 - a) * g * g
        if h["centered"]:
            ga = st.setdefault("ga", np.zeros_like(p))
            st["ga"] = ga = lerp(ga, g, 1 - a, T)
            avg = np.sqrt(sq + c(-1) * ga * ga)
        else:
            avg = np.sqrt(sq)
        avg = avg + c(h["eps"])
        if h["momentum"] > 0:
            buf = st.setdefault("buf", np.zeros_like(p))
            st["buf"] = buf = buf * c(h["momentum"]) + g / avg
            return p + c(-h["lr"]) * buf
        return p + c(-h["lr"]) * g / avg
    raise ValueError(opt)


def ulps(a: np.ndarray, b: np.ndarray, T) -> int:
    if a.size == 0:
        return 0
    it = np.int32 if T == np.float32 else np.int64
    ia, ib = a.astype(T).view(it).astype(np.int64), b.astype(T).view(it).astype(np.int64)
    # map the sign-magnitude integers onto a monotone line
    ia = np.where(ia < 0, np.iinfo(it).min - ia, ia)
    ib = np.where(ib < 0, np.iinfo(it).min - ib, ib)
    return int(np.max(np.abs(ia - ib)))


def replay(spec: dict):
    opt = spec["optimizer"]
    T = np.float32 if spec["dtype"] == "f32" else np.float64
    base = {**DEFAULTS[opt], **spec["hyper"]}
    hyper = {p["name"]: base for p in spec["params"]}
    for g in spec.get("groups") or []:
        for n in g["params"]:
            hyper[n] = {**base, **g["hyper"]}
    params = {p["name"]: np.array(p["data"], dtype=T) for p in spec["params"]}
    state = {n: {} for n in params}
    if opt == "adagrad":  # torch creates Adagrad state in __init__, from the constructor value
        for n, p in params.items():
            state[n]["sum"] = np.full_like(p, T(base["initial_accumulator_value"]))
    out = []
    for s in spec["steps"]:
        for n, g in s["grads"].items():
            params[n] = step_param(opt, hyper[n], state[n], params[n], np.array(g, dtype=T), T)
        out.append({n: p.copy() for n, p in params.items()})
    return out, T


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    worst = {}
    for sp in sorted(args.dir.glob("*.spec.json")):
        name = sp.name[: -len(".spec.json")]
        spec = json.loads(sp.read_text())
        exp = json.loads((args.dir / f"{name}.expected.json").read_text())
        got, T = replay(spec)
        max_ulp, max_rel, max_abs = 0, 0.0, 0.0
        for g, e in zip(got, exp["trajectory"]):
            for n, v in e.items():
                ev = np.array(v, dtype=np.float64)
                gv = g[n].astype(np.float64)
                max_ulp = max(max_ulp, ulps(gv, ev, T))
                if ev.size:
                    rel = np.abs(gv - ev) / np.maximum(np.abs(ev), 1e-300)
                    max_rel = max(max_rel, float(np.max(rel)))
                    max_abs = max(max_abs, float(np.max(np.abs(gv - ev))))
        worst[name] = (max_ulp, max_rel, max_abs)
        if args.verbose:
            print(f"{name:40s} max {max_ulp:6d} ulp  rel {max_rel:.3e}  abs {max_abs:.3e}")
    for dt in ("f64", "f32"):
        sel = {k: v for k, v in worst.items() if k.endswith(dt)}
        if sel:
            k = max(sel, key=lambda k: sel[k][1])
            print(f"{dt}: {len(sel)} cases, worst {k}: {sel[k][0]} ulp, rel {sel[k][1]:.3e};"
                  f" largest abs diff {max(v[2] for v in sel.values()):.3e}")
    limit = {"f64": 1e-9, "f32": 1e-3}
    bad = [k for k, (u, r, a) in worst.items() if r > limit[k[-3:]]]
    if bad:
        print("FORMULA MISMATCH:", ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
