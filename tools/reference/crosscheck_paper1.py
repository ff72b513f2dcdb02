#!/usr/bin/env python3
"""Replay the AdaBound / Lion / Muon fixtures with an independent numpy implementation.

Usage:  python3 tools/reference/crosscheck_paper1.py [DIR] [--verbose]
        (DIR defaults to fixtures/reference/paper1; needs only numpy)

A torch-free reading of tools/reference/paper1_semantics.md, op by op, with
the same dtype rules (Python-float scalars cast once to the tensor dtype).  It
does not reproduce torch's fused multiply-adds nor BLAS summation order, so it
is not bit-exact.  Per case it reports the worst difference as the Rust
fixture test measures it (per tensor: max |got - want| / max |want|) and in
ULP.  It also reports, for AdaBound, how many element updates were clamped at
the lower / upper bound (coverage of both branches), and for Muon how often
the Frobenius norm was below eps (the clamp branch).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crosscheck import step_param as classic_step, ulps  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "reference" / "paper1"

DEFAULTS = {
    "adabound": dict(lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8,
                     weight_decay=0.0, amsbound=False),
    "lion": dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0),
    "muon": dict(lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(3.4445, -4.775, 2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None,
                 adamw_params=["*embed*", "*head*"], adamw_lr=3e-4, adamw_betas=(0.9, 0.95),
                 adamw_eps=1e-8, adamw_weight_decay=0.0),
}

STATS = {"ab_lower": 0, "ab_upper": 0, "ab_inside": 0, "ns_eps_clamp": 0, "ns_calls": 0}


def lerp(s, e, w, T):
    w = T(w)
    if abs(w) < 0.5:
        return s + w * (e - s)
    return e - (e - s) * (T(1) - w)


def adabound(h, st, p, g, T, base_lr):
    b1, b2 = h["betas"]
    if not st:
        st.update(step=0, m=np.zeros_like(p), v=np.zeros_like(p))
        if h["amsbound"]:
            st["vmax"] = np.zeros_like(p)
    st["step"] += 1
    t = st["step"]
    if h["weight_decay"] != 0:
        g = g + T(h["weight_decay"]) * p
    st["m"] = m = st["m"] * T(b1) + T(1 - b1) * g
    st["v"] = v = st["v"] * T(b2) + T(1 - b2) * g * g
    if h["amsbound"]:
        st["vmax"] = v = np.maximum(st["vmax"], v)
    denom = np.sqrt(v) + T(h["eps"])
    step_size = h["lr"] * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    final_lr = h["final_lr"] * h["lr"] / base_lr
    lower = final_lr * (1 - 1 / (h["gamma"] * t + 1))
    upper = final_lr * (1 + 1 / (h["gamma"] * t))
    s = np.full_like(p, T(step_size)) / denom
    STATS["ab_lower"] += int(np.sum(s < T(lower)))
    STATS["ab_upper"] += int(np.sum(s > T(upper)))
    STATS["ab_inside"] += int(np.sum((s >= T(lower)) & (s <= T(upper))))
    s = np.minimum(np.maximum(s, T(lower)), T(upper)) * m
    return p + (-s)


def lion(h, st, p, g, T):
    b1, b2 = h["betas"]
    m = st.setdefault("m", np.zeros_like(p))
    p = p * T(1 - h["lr"] * h["weight_decay"])
    c = m * T(b1) + T(1 - b1) * g
    u = np.sign(c)                       # sign(0) = 0
    p = p + T(-h["lr"]) * u
    st["m"] = m * T(b2) + T(1 - b2) * g
    return p


def newton_schulz(x, coeffs, steps, eps, T):
    a, b, c = (T(v) for v in coeffs)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    nrm = T(np.sqrt(np.sum(x.astype(np.float64) ** 2))) if x.size else T(0)
    STATS["ns_calls"] += 1
    if nrm < T(eps):
        STATS["ns_eps_clamp"] += 1
    x = x / max(nrm, T(eps))
    for _ in range(steps):
        gram = x @ x.T
        gram_update = b * gram + c * (gram @ gram)
        x = a * x + gram_update @ x
    return x.T if tall else x


def adjust_lr(lr, fn, shape):
    A, B = shape
    if fn in (None, "original"):
        return lr * math.sqrt(max(1, A / B))
    if fn == "match_rms_adamw":
        return lr * (0.2 * math.sqrt(max(A, B)))
    if fn == "spectral_unclamped":
        return lr * math.sqrt(A / B)
    return lr


def muon(h, st, p, g, T):
    buf = st.setdefault("buf", np.zeros_like(p))
    st["buf"] = buf = lerp(buf, g, 1 - h["momentum"], T)
    upd = lerp(g, buf, h["momentum"], T) if h["nesterov"] else buf
    o = newton_schulz(upd, h["ns_coefficients"], h["ns_steps"], h["eps"], T)
    adj = adjust_lr(h["lr"], h["adjust_lr_fn"], p.shape)
    p = p * T(1 - h["lr"] * h["weight_decay"])
    return p + T(-adj) * o


def replay(spec):
    opt = spec["optimizer"]
    T = np.float32 if spec["dtype"] == "f32" else np.float64
    base = {**DEFAULTS[opt], **spec["hyper"]}
    hyper = {p["name"]: base for p in spec["params"]}
    for grp in spec.get("groups") or []:
        for n in grp["params"]:
            hyper[n] = {**base, **grp["hyper"]}
    params = {p["name"]: np.array(p["data"], dtype=T).reshape(p["shape"]) for p in spec["params"]}
    route = {}
    for n, p in params.items():
        if opt == "muon":
            h = hyper[n]
            aux = p.ndim != 2 or any(fnmatch.fnmatchcase(n, pat) for pat in h["adamw_params"])
            route[n] = "adamw" if aux else "muon"
        else:
            route[n] = opt
    state = {n: {} for n in params}
    out = []
    for s in spec["steps"]:
        for n, g in s["grads"].items():
            g = np.array(g, dtype=T).reshape(params[n].shape)
            h, p = hyper[n], params[n]
            if route[n] == "adabound":
                params[n] = adabound(h, state[n], p, g, T, base_lr=h["lr"])
            elif route[n] == "lion":
                params[n] = lion(h, state[n], p, g, T)
            elif route[n] == "muon":
                params[n] = muon(h, state[n], p, g, T)
            else:
                ah = dict(lr=h["adamw_lr"], betas=tuple(h["adamw_betas"]), eps=h["adamw_eps"],
                          weight_decay=h["adamw_weight_decay"], amsgrad=False, maximize=False)
                params[n] = classic_step("adamw", ah, state[n], p, g, T)
        out.append({n: p.reshape(-1).copy() for n, p in params.items()})
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
        max_ulp, max_rel = 0, 0.0
        for g, e in zip(got, exp["trajectory"]):
            for n, v in e.items():
                ev = np.array(v, dtype=np.float64)
                gv = g[n].astype(np.float64)
                max_ulp = max(max_ulp, ulps(gv, ev, T))
                if ev.size:
                    scale = max(float(np.max(np.abs(ev))), sys.float_info.min)
                    max_rel = max(max_rel, float(np.max(np.abs(gv - ev))) / scale)
        worst[name] = (max_ulp, max_rel)
        if args.verbose:
            print(f"{name:34s} max {max_ulp:6d} ulp  tensor-rel {max_rel:.3e}")
    for dt in ("f64", "f32"):
        for opt in ("adabound", "lion", "muon"):
            sel = {k: v for k, v in worst.items() if k.endswith(dt) and k.startswith(opt + "_")}
            if sel:
                k = max(sel, key=lambda k: sel[k][1])
                print(f"{opt} {dt}: {len(sel)} cases, worst {k}: {sel[k][0]} ulp, tensor-rel {sel[k][1]:.3e}")
    print("adabound element updates: clamped at lower %(ab_lower)d, at upper %(ab_upper)d, inside %(ab_inside)d;"
          " muon NS calls %(ns_calls)d, norm < eps in %(ns_eps_clamp)d" % STATS)
    limit = {"f64": 1e-9, "f32": 1e-3}
    bad = [k for k, (u, r) in worst.items() if r > limit[k[-3:]]]
    if bad:
        print("FORMULA MISMATCH:", ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
