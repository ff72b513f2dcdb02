#!/usr/bin/env python3
"""Generate golden trajectories for C-AdamW, C-Lion and AdaGC for `steepest replay`.

What it does
------------
Same machinery and file format as ``gen_classic.py`` (its helpers are imported
from there): for a fixed list of case *kinds* (optimizer x flag x dtype, see
``CASE_KINDS``) it draws, from ``--seed``, the parameter shapes, the
hyperparameter values, the data and the frozen steps, runs the *reference*
implementation on CPU and records the parameters after every step.  Each case
gives ``<case>.spec.json`` and ``<case>.expected.json``.

References (see ``wrappers_semantics.md`` beside this file for their exact
arithmetic and every way they differ from torch.optim.AdamW / the papers):

* ``c-adamw`` -- ``heavyball.AdamW(caution=True)`` (heavyball 3.2.1).  Run
  eagerly (``heavyball.utils.compile_mode = None``; heavyball otherwise
  torch.compiles every kernel), with ``storage_dtype`` equal to the parameter
  dtype (heavyball's default keeps the moments in float32 even for f64
  parameters) and, for f64 cases, ``torch.set_default_dtype(torch.float64)``
  (with the usual float32 default dtype heavyball rounds the warm-up learning
  rate and the caution scale to float32 even for f64 parameters).
* ``c-lion``  -- ``pytorch_optimizer.Lion(cautious=True)`` (pytorch-optimizer
  4.1.0).  Unmodified.
* ``adagc``   -- ``pytorch_optimizer.AdaGC`` (pytorch-optimizer 4.1.0).  The
  package accumulates the warm-up's global gradient norm in float32
  (``get_global_gradient_norm``), even for f64 parameters.  Every case says
  ``"global_norm_dtype": "param"``: f64 cases run the package with that helper
  replaced by one that accumulates in the parameter dtype (the only change);
  f32 cases run it unmodified (there the two agree).  The package's own f64
  behaviour (``"f32"``) is documented but not fixtured: it passes the norm
  through torch's float32 ``sqrt``, which is not correctly rounded on CPU, so
  no reimplementation could match it to 1e-10.

The base optimizers of these references do not behave like torch.optim's
AdamW in every respect (e.g. their bias-correction step counter counts
optimizer steps, not the parameter's own steps).  Every such difference is
written into each spec's ``hyper`` as an explicit knob (``caution_scale``,
``caution_mask``, ``step_counter``, ``bias_correction``, ``eps_mode``,
``global_norm_dtype``), defined in ``wrappers_semantics.md``.

Before running a reference the script runs its own NumPy model of the
documented formulas on the drawn data.  For the cautious optimizers it
redraws the gradients (deterministically, from the same stream) when a mask
decision is fragile, i.e. when the sign of the momentum-like quantity that the
mask tests comes out of a cancellation (``|result| < 1e-9`` (f64) or ``1e-4``
(f32) times the sum of the magnitudes of its terms), so a faithful
reimplementation cannot flip a mask bit by rounding differently.  After the
reference ran, the model must agree with it (worst per-tensor error relative
to the tensor's largest magnitude: <= 1e-12 in f64, <= 1e-5 in f32), else the
script stops: that checks the semantics document against the code.

How to run
----------
    /tmp/refvenv/bin/pip install torch numpy heavyball pytorch-optimizer
    /tmp/refvenv/bin/python tools/reference/gen_wrappers.py          # committed set
    /tmp/refvenv/bin/python tools/reference/gen_wrappers.py --seed 777 --out /tmp/holdout_wr

Versions used for the committed fixtures: torch 2.15.0+cu132 (CPU, one
thread), heavyball 3.2.1, pytorch-optimizer 4.1.0, numpy 2.4.6, Python
3.11.7; the versions are also written into every expected file under
``meta``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_classic as gc  # noqa: E402  (shared helpers and file format)
from fixture_io import draw_params_and_groups, report, write_case  # noqa: E402
from gen_classic import as_dtype_list, log_uniform, sig, uniform  # noqa: E402

import heavyball  # noqa: E402
import heavyball.utils  # noqa: E402
import pytorch_optimizer  # noqa: E402
import pytorch_optimizer.optimizer.adagc as po_adagc  # noqa: E402
from pytorch_optimizer import AdaGC, Lion  # noqa: E402

heavyball.utils.compile_mode = None  # eager kernels (heavyball compiles them by default)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "fixtures" / "reference" / "wrappers"
DEFAULT_SEED = 20261128

VERSIONS = {
    "torch": torch.__version__,
    "heavyball": importlib.metadata.version("heavyball"),
    "pytorch_optimizer": importlib.metadata.version("pytorch-optimizer"),
    "numpy": np.__version__,
}

# The knobs each reference implies (see wrappers_semantics.md).  Written into
# every spec of that optimizer, including the ref_defaults cases.
KNOBS = {
    "c-adamw": {"caution_scale": "numel_over_kept", "caution_mask": "signbit_equal",
                "step_counter": "global", "bias_correction": "debiased_beta", "eps_mode": "max"},
    "c-lion": {"caution_scale": "numel_over_kept_plus_one", "caution_mask": "product_positive"},
    "adagc": {"step_counter": "global"},   # + global_norm_dtype, per case
}

# Reference constructor defaults (what a spec's missing base key means).
DEFAULTS = {
    "c-adamw": dict(lr=0.0025, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, warmup_steps=0),
    "c-lion": dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, weight_decouple=True, fixed_decay=False,
                   maximize=False),
    "adagc": dict(lr=1e-3, betas=(0.9, 0.999), beta=0.98, lambda_abs=1.0, lambda_rel=1.05, warmup_steps=100,
                  weight_decay=0.1, weight_decouple=True, fixed_decay=False, eps=1e-8, maximize=False),
}
KNOB_KEYS = {"caution_scale", "caution_mask", "step_counter", "bias_correction", "eps_mode", "global_norm_dtype"}

# Fragility thresholds for mask decisions (see module docstring).
MARGIN = {"f64": 1e-9, "f32": 1e-4}
# Model-vs-reference agreement required (per-tensor, relative to the tensor's max |value|).
MODEL_TOL = {"f64": 1e-12, "f32": 1e-5}


# --------------------------------------------------------------------------
# the fixed list of case kinds: (optimizer, flag, dtype)
# --------------------------------------------------------------------------

CASE_KINDS = [
    # c-adamw: heavyball.AdamW(caution=True)
    ("c-adamw", "basic", "f64"), ("c-adamw", "weight_decay", "f64"), ("c-adamw", "warmup", "f64"),
    ("c-adamw", "large_eps", "f64"), ("c-adamw", "zero_grads", "f64"), ("c-adamw", "groups", "f64"),
    ("c-adamw", "ref_defaults", "f64"),
    ("c-adamw", "weight_decay", "f32"), ("c-adamw", "warmup", "f32"), ("c-adamw", "groups", "f32"),
    # c-lion: pytorch_optimizer.Lion(cautious=True)
    ("c-lion", "basic", "f64"), ("c-lion", "weight_decay", "f64"), ("c-lion", "fixed_decay", "f64"),
    ("c-lion", "coupled_decay", "f64"), ("c-lion", "maximize", "f64"), ("c-lion", "zero_grads", "f64"),
    ("c-lion", "groups", "f64"), ("c-lion", "ref_defaults", "f64"),
    ("c-lion", "weight_decay", "f32"), ("c-lion", "groups", "f32"),
    # adagc: pytorch_optimizer.AdaGC
    ("adagc", "basic", "f64"), ("adagc", "weight_decay", "f64"), ("adagc", "fixed_decay", "f64"),
    ("adagc", "no_warmup", "f64"), ("adagc", "long_warmup", "f64"), ("adagc", "maximize", "f64"),
    ("adagc", "groups", "f64"), ("adagc", "ref_defaults", "f64"),
    ("adagc", "basic", "f32"), ("adagc", "groups", "f32"),
]


def case_name(opt, flag, dtype):
    return f"{opt}_{flag}_{dtype}"


# --------------------------------------------------------------------------
# hyperparameter draws: (hyper, group_overrides or None)
# --------------------------------------------------------------------------
# ctx: {"grad_scale": typical |g|, "norm": typical global gradient norm, "n_steps": ...}

def betas(rng, lo1=0.5, hi1=0.95, lo2=0.9, hi2=0.9999):
    return [uniform(rng, lo1, hi1), uniform(rng, lo2, hi2)]


def hyper_c_adamw(flag, rng, ctx):
    lr = lambda: log_uniform(rng, 3e-4, 3e-2)  # noqa: E731
    eps = lambda: log_uniform(rng, 1e-10, 1e-4)  # noqa: E731
    h = {"lr": lr(), "betas": betas(rng), "eps": eps(), "weight_decay": 0.0, "warmup_steps": 0}
    if flag in ("basic", "zero_grads"):
        return h, None
    if flag == "weight_decay":
        h["weight_decay"] = log_uniform(rng, 1e-2, 1.0)
        return h, None
    if flag == "warmup":
        h["warmup_steps"] = int(rng.integers(3, 11))
        h["weight_decay"] = log_uniform(rng, 1e-2, 0.3)
        return h, None
    if flag == "large_eps":
        # eps comparable to sqrt(v_hat) ~ |g|, so max(sqrt(v_hat), eps) switches sides
        h["eps"] = sig(ctx["grad_scale"] * 10.0 ** rng.uniform(-0.5, 0.5))
        return h, None
    if flag == "groups":
        h["weight_decay"] = log_uniform(rng, 1e-2, 0.5)
        return h, [{"lr": lr(), "weight_decay": 0.0},
                   {"betas": betas(rng), "eps": eps(), "warmup_steps": int(rng.integers(2, 7))}]
    raise ValueError(flag)


def hyper_c_lion(flag, rng, ctx):
    lr = lambda: log_uniform(rng, 1e-4, 1e-2)  # noqa: E731
    lbetas = lambda: betas(rng, 0.5, 0.95, 0.9, 0.999)  # noqa: E731
    h = {"lr": lr(), "betas": lbetas(), "weight_decay": 0.0}
    if flag in ("basic", "zero_grads"):
        return h, None
    if flag == "weight_decay":
        h["weight_decay"] = log_uniform(rng, 1e-2, 1.0)
        return h, None
    if flag == "fixed_decay":
        h.update(weight_decay=log_uniform(rng, 1e-3, 3e-2), fixed_decay=True)
        return h, None
    if flag == "coupled_decay":
        h.update(weight_decay=log_uniform(rng, 1e-2, 1.0), weight_decouple=False)
        return h, None
    if flag == "maximize":
        h.update(weight_decay=log_uniform(rng, 1e-2, 1.0), maximize=True)
        return h, None
    if flag == "groups":
        h["weight_decay"] = log_uniform(rng, 1e-2, 1.0)
        return h, [{"lr": lr(), "betas": lbetas()},
                   {"weight_decay": log_uniform(rng, 1e-3, 3e-2), "fixed_decay": True}]
    raise ValueError(flag)


def hyper_adagc(flag, rng, ctx):
    lr = lambda: log_uniform(rng, 3e-4, 3e-2)  # noqa: E731
    lam_abs = lambda: sig(ctx["norm"] * rng.uniform(0.4, 1.5))  # noqa: E731  (clips on some steps)
    lam_rel = lambda: uniform(rng, 1.0, 1.3)  # noqa: E731
    beta = lambda: uniform(rng, 0.8, 0.99)  # noqa: E731
    eps = lambda: log_uniform(rng, 1e-10, 1e-6)  # noqa: E731
    warm = lambda: int(rng.integers(3, 11))  # noqa: E731
    h = {"lr": lr(), "betas": betas(rng), "beta": beta(), "lambda_abs": lam_abs(), "lambda_rel": lam_rel(),
         "warmup_steps": warm(), "weight_decay": 0.0, "eps": eps()}
    if flag == "basic":
        return h, None
    if flag == "weight_decay":
        h["weight_decay"] = log_uniform(rng, 1e-2, 0.5)
        return h, None
    if flag == "fixed_decay":
        h.update(weight_decay=log_uniform(rng, 1e-3, 2e-2), fixed_decay=True)
        return h, None
    if flag == "no_warmup":
        h["warmup_steps"] = 0
        return h, None
    if flag == "long_warmup":
        h["warmup_steps"] = ctx["n_steps"] + int(rng.integers(1, 20))
        return h, None
    if flag == "maximize":
        h.update(weight_decay=log_uniform(rng, 1e-2, 0.5), maximize=True)
        return h, None
    if flag == "groups":
        h["weight_decay"] = log_uniform(rng, 1e-2, 0.5)
        return h, [{"lr": lr(), "lambda_abs": lam_abs(), "beta": beta(), "eps": log_uniform(rng, 1e-7, 1e-4)},
                   {"lambda_rel": lam_rel(), "betas": betas(rng), "warmup_steps": warm(),
                    "weight_decay": 0.0}]
    raise ValueError(flag)


HYPER = {"c-adamw": hyper_c_adamw, "c-lion": hyper_c_lion, "adagc": hyper_adagc}


# --------------------------------------------------------------------------
# build one case
# --------------------------------------------------------------------------

def draw_grads(rng, names, shapes, n_steps, frozen, per_param_scale, dtype, zero_frac, zero_tensor, spikes):
    """Per-step gradients; always draws everything so the stream does not depend on `frozen`."""
    steps = []
    for t in range(n_steps):
        grads = {}
        for n, s in zip(names, shapes):
            g = rng.normal(0, per_param_scale[n], size=s)
            zmask = rng.random(size=s) < zero_frac
            spike = rng.random() < 0.2
            factor = rng.uniform(2.0, 8.0)
            if zero_frac > 0:
                g = np.where(zmask, 0.0, g)
            if spikes and spike:
                g = g * factor
            if n not in frozen[t]:
                grads[n] = as_dtype_list(g, dtype)
        steps.append({"grads": grads})
    if zero_tensor:
        # one step in which one (non-empty, present) gradient is all zeros
        cand = [(t, n) for t in range(3, n_steps) for n in steps[t]["grads"] if len(steps[t]["grads"][n]) > 0]
        t, n = cand[int(rng.integers(0, len(cand)))]
        steps[t]["grads"][n] = [0.0] * len(steps[t]["grads"][n])
    return steps


def build_spec(opt, flag, dtype, seed):
    name = case_name(opt, flag, dtype)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])

    shapes = gc.draw_shapes(rng)
    names = [str(n) for n in rng.permutation(gc.PARAM_NAMES)[: len(shapes)]]
    numels = [math.prod(s) for s in shapes]
    n_steps = int(rng.integers(20, 26))
    if opt == "adagc" and flag == "ref_defaults":
        grad_scale = 10.0 ** rng.uniform(-0.3, 0.3) / math.sqrt(sum(numels))  # global norm ~ lambda_abs = 1
    elif opt == "c-adamw" and flag == "large_eps":
        grad_scale = 10.0 ** rng.uniform(-3, -1.5)
    else:
        grad_scale = 10.0 ** rng.uniform(-3, 1)
    ctx = {"grad_scale": grad_scale, "norm": grad_scale * math.sqrt(sum(numels)), "n_steps": n_steps}
    if flag == "ref_defaults":
        hyper, group_overrides = {}, None
    else:
        hyper, group_overrides = HYPER[opt](flag, rng, ctx)
    hyper.update(KNOBS[opt])
    if opt == "adagc":
        hyper["global_norm_dtype"] = "param"   # "f32" (the package as shipped) is not fixtured: see the doc

    params, groups = draw_params_and_groups(rng, names, shapes, dtype, group_overrides)

    frozen = gc.draw_frozen(rng, names, numels, n_steps, want_frozen=flag != "ref_defaults",
                            want_empty_step=flag == "groups")
    per_param_scale = {n: grad_scale * 10.0 ** rng.uniform(-0.5, 0.5) for n in names}
    cautious = opt in ("c-adamw", "c-lion")
    zero_frac = 0.0 if flag == "ref_defaults" else (0.25 if flag == "zero_grads" else (0.03 if cautious else 0.0))
    zero_tensor = flag == "zero_grads" or (opt == "adagc" and flag == "basic")
    spikes = opt == "adagc"

    spec = {"optimizer": opt, "dtype": dtype, "hyper": hyper}
    if groups is not None:
        spec["groups"] = groups
    spec["params"] = params
    for attempt in range(50):
        spec["steps"] = draw_grads(rng, names, shapes, n_steps, frozen, per_param_scale, dtype,
                                   zero_frac, zero_tensor, spikes)
        _, margin = run_model(spec)
        if margin >= MARGIN[dtype]:
            break
    else:
        raise RuntimeError(f"{name}: could not draw gradients with robust mask decisions")
    spec["nonfinite"] = "error"
    return name, spec


# --------------------------------------------------------------------------
# run the references
# --------------------------------------------------------------------------

def torch_hyper(h):
    h = {k: v for k, v in h.items() if k not in KNOB_KEYS}
    if "betas" in h:
        h["betas"] = tuple(h["betas"])
    return h


def param_groups_for(spec, tensors):
    grouped = [n for g in spec.get("groups") or [] for n in g["params"]]
    assert len(grouped) == len(set(grouped)), "a parameter is in two groups"
    out = []
    first = [tensors[p["name"]] for p in spec["params"] if p["name"] not in grouped]
    if first:
        out.append({"params": first})
    for g in spec.get("groups") or []:
        assert not (set(g["hyper"]) & (KNOB_KEYS | {"maximize"})), "knobs and maximize are optimizer-wide"
        pg = {"params": [tensors[n] for n in g["params"]]}
        pg.update(torch_hyper(g["hyper"]))
        out.append(pg)
    return out


def global_norm_sq_param_dtype(param_groups, device=None, *, weight_adaptive=False):
    """pytorch_optimizer's get_global_gradient_norm, accumulated in the gradient dtype instead of float32."""
    assert not weight_adaptive
    grads = [p.grad for group in param_groups or [] for p in group["params"] if p.grad is not None]
    if not grads:
        return torch.zeros(1, dtype=torch.float32)
    norms = torch.stack([g.norm() for g in grads])
    return norms.square().sum().reshape(1)


def check_knobs(spec):
    opt, h = spec["optimizer"], spec["hyper"]
    for k, v in KNOBS[opt].items():
        assert h.get(k) == v, f"{opt}: knob {k} must be {v!r} for this reference"
    if opt == "adagc":
        assert h["global_norm_dtype"] in ("f32", "param")
        assert h.get("weight_decouple", True), "coupled weight decay is not generated for adagc (see the doc)"


def run_reference(spec):
    check_knobs(spec)
    tdtype = torch.float32 if spec["dtype"] == "f32" else torch.float64
    tensors = {p["name"]: torch.nn.Parameter(torch.tensor(p["data"], dtype=tdtype).reshape(p["shape"]))
               for p in spec["params"]}
    opt = spec["optimizer"]
    base = torch_hyper(spec["hyper"])
    groups = param_groups_for(spec, tensors)
    saved_default, saved_norm = torch.get_default_dtype(), po_adagc.get_global_gradient_norm
    try:
        if opt == "c-adamw":
            torch.set_default_dtype(tdtype)
            o = heavyball.AdamW(groups, caution=True, storage_dtype=str(tdtype).removeprefix("torch."), **base)
        elif opt == "c-lion":
            o = Lion(groups, cautious=True, **base)
        else:
            if spec["hyper"]["global_norm_dtype"] == "param" and spec["dtype"] == "f64":
                po_adagc.get_global_gradient_norm = global_norm_sq_param_dtype
            o = AdaGC(groups, **base)
        trajectory = []
        for step in spec["steps"]:
            for n, t in tensors.items():
                t.grad = (torch.tensor(step["grads"][n], dtype=tdtype).reshape(t.shape)
                          if n in step["grads"] else None)
            o.step()
            trajectory.append({p["name"]: [float(x) for x in tensors[p["name"]].detach().reshape(-1).tolist()]
                               for p in spec["params"]})
    finally:
        torch.set_default_dtype(saved_default)
        po_adagc.get_global_gradient_norm = saved_norm
    return trajectory


def meta_for(spec, seed, name):
    opt = spec["optimizer"]
    m = {"torch": VERSIONS["torch"]}
    if opt == "c-adamw":
        m["heavyball"] = VERSIONS["heavyball"]
        m["reference"] = "heavyball.AdamW(caution=True)"
        m["run"] = (f"eager (heavyball.utils.compile_mode=None), storage_dtype={spec['dtype']}, "
                    f"torch default dtype {spec['dtype']}")
    else:
        m["pytorch_optimizer"] = VERSIONS["pytorch_optimizer"]
        if opt == "c-lion":
            m["reference"] = "pytorch_optimizer.Lion(cautious=True)"
            m["run"] = "unmodified"
        else:
            m["reference"] = "pytorch_optimizer.AdaGC"
            if spec["hyper"]["global_norm_dtype"] == "f32" or spec["dtype"] == "f32":
                m["run"] = "unmodified"
            else:
                m["run"] = "get_global_gradient_norm accumulates in the parameter dtype (not float32)"
    m["seed"] = seed
    m["case"] = name
    return m


# --------------------------------------------------------------------------
# NumPy model of wrappers_semantics.md (f64 arithmetic; f32 inputs are exact in f64)
# --------------------------------------------------------------------------

def f32(x):
    return np.float32(x)


def resolved_groups(spec):
    """[(hyper dict with defaults filled, [param names])] in torch param-group order."""
    opt = spec["optimizer"]
    base = {**DEFAULTS[opt], **spec["hyper"]}
    grouped = [n for g in spec.get("groups") or [] for n in g["params"]]
    out = []
    first = [p["name"] for p in spec["params"] if p["name"] not in grouped]
    if first:
        out.append((base, first))
    for g in spec.get("groups") or []:
        out.append(({**base, **g["hyper"]}, list(g["params"])))
    return out


def margin_of(new, terms_abs):
    """min over elements of |new| / (sum of |terms|); exact zeros (all terms 0) do not count."""
    if new.size == 0:
        return math.inf
    ok = terms_abs > 0
    if not ok.any():
        return math.inf
    return float(np.min(np.abs(new[ok]) / terms_abs[ok]))


def run_model(spec):
    """Returns (trajectory as {name: np.array} per step, smallest mask margin)."""
    opt = spec["optimizer"]
    shapes = {p["name"]: p["shape"] for p in spec["params"]}
    x = {p["name"]: np.array(p["data"], dtype=np.float64).reshape(p["shape"]) for p in spec["params"]}
    st = {}
    groups = resolved_groups(spec)
    margin = math.inf
    out = []
    for t, step in enumerate(spec["steps"], start=1):
        g_all = {n: np.array(v, dtype=np.float64).reshape(shapes[n]) for n, v in step["grads"].items()}
        if opt == "adagc":
            # warm-up global norm over every parameter with a gradient, in spec param-group order
            norms = [math.sqrt(float(np.sum(g_all[n] ** 2))) for _, ns in groups for n in ns if n in g_all]
            if spec["hyper"]["global_norm_dtype"] == "f32" or spec["dtype"] == "f32":
                s = f32(0.0)
                for nm in norms:
                    s = f32(s + f32(f32(nm) * f32(nm)))
                gnorm = float(np.sqrt(s))
            else:
                gnorm = math.sqrt(sum(nm * nm for nm in norms))
        for h, ns in groups:
            for n in ns:
                if n not in g_all:
                    continue
                g = g_all[n]
                if opt == "c-adamw":
                    margin = min(margin, step_c_adamw(h, st.setdefault(n, {}), x, n, g, t))
                elif opt == "c-lion":
                    margin = min(margin, step_c_lion(h, st.setdefault(n, {}), x, n, g))
                else:
                    step_adagc(h, st.setdefault(n, {}), x, n, g, t, gnorm, spec)
        out.append({n: v.copy() for n, v in x.items()})
    return out, margin


def caution(u, g, mask_rule, scale_rule):
    n = u.size
    keep = (np.signbit(u) == np.signbit(g)) if mask_rule == "signbit_equal" else (u * g > 0)
    k = int(keep.sum())
    if scale_rule == "numel_over_kept":
        s = (1.0 / max(k, 1)) * n
    elif scale_rule == "numel_over_kept_plus_one":
        s = n / (k + 1.0)
    else:
        raise ValueError(scale_rule)
    return np.where(keep, u, 0.0) * s


def step_c_adamw(h, s, x, n, g, t):
    b1, b2 = h["betas"]
    if "m" not in s:
        s["m"], s["v"] = np.zeros_like(g), np.zeros_like(g)
    lr_t = h["lr"] * t / max(t, h["warmup_steps"] + 1)
    a1 = (1 - b1) / (1 - b1 ** t)
    a2 = (1 - b2) / (1 - b2 ** t)
    t1, t2 = s["m"] * (1 - a1), g * a1
    s["m"] = t1 + t2
    mg = margin_of(s["m"], np.abs(t1) + np.abs(t2))
    s["v"] = s["v"] * (1 - a2) + g * g * a2
    u = s["m"] / np.maximum(np.sqrt(np.maximum(s["v"], 0.0)), h["eps"])
    u = caution(u, g, "signbit_equal", "numel_over_kept")
    x[n] = x[n] * (1 - h["weight_decay"] * lr_t) + u * (-lr_t)
    return mg


def step_c_lion(h, s, x, n, g):
    b1, b2 = h["betas"]
    lr, wd = h["lr"], h["weight_decay"]
    if h["maximize"]:
        g = -g
    if "m" not in s:
        s["m"] = np.zeros_like(g)
    if wd != 0.0:
        if h["weight_decouple"]:
            x[n] = x[n] * (1.0 - wd * (1.0 if h["fixed_decay"] else lr))
        else:
            g = g + wd * x[n]
    t1, t2 = s["m"] * b1, g * (1 - b1)
    c = s["m"] + (1 - b1) * (g - s["m"])
    mg = margin_of(c, np.abs(t1) + np.abs(t2))
    u = np.sign(c)
    s["m"] = s["m"] + (1 - b2) * (g - s["m"])
    u = caution(u, g, "product_positive", "numel_over_kept_plus_one")
    x[n] = x[n] + (-lr) * u
    return mg


def step_adagc(h, s, x, n, g, t, gnorm, spec):
    b1, b2 = h["betas"]
    lr, wd, eps = h["lr"], h["weight_decay"], h["eps"]
    if h["maximize"]:
        g = -g
    if "m" not in s:
        s["m"], s["v"], s["gamma"] = np.zeros_like(g), np.zeros_like(g), None
    if wd != 0.0:
        x[n] = x[n] * (1.0 - wd * (1.0 if h["fixed_decay"] else lr))
    if s["gamma"] is None or t < h["warmup_steps"]:
        if spec["hyper"]["global_norm_dtype"] == "f32" or spec["dtype"] == "f32":
            d = f32(f32(gnorm) + f32(eps))
            scale = float(f32(f32(1.0) / d) * f32(h["lambda_abs"]))
        else:
            scale = (1.0 / (gnorm + eps)) * h["lambda_abs"]
        scale = min(scale, 1.0)
        gh = g * scale
        nh = math.sqrt(float(np.sum(gh ** 2)))
        s["gamma"] = nh if s["gamma"] is None else min(s["gamma"], nh)
    else:
        hh = min(h["lambda_rel"] * max(s["gamma"], eps) / max(math.sqrt(float(np.sum(g ** 2))), eps), 1.0)
        gh = g * hh
        nh = math.sqrt(float(np.sum(gh ** 2)))
        s["gamma"] = s["gamma"] + (1 - h["beta"]) * (nh - s["gamma"])
    s["m"] = s["m"] + (1 - b1) * (gh - s["m"])
    s["v"] = s["v"] * b2 + (1 - b2) * gh * gh
    bc1 = 1 - b1 ** t
    bc2_sqrt = math.sqrt(1 - b2 ** t)
    x[n] = x[n] + (-lr / bc1) * s["m"] / (np.sqrt(s["v"]) / bc2_sqrt + eps)


def rel_error(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if want.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(want))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(got - want)) / scale)


def check_model(name, spec, trajectory):
    model, _ = run_model(spec)
    worst = 0.0
    for t, (m, r) in enumerate(zip(model, trajectory)):
        for n in r:
            worst = max(worst, rel_error(m[n].reshape(-1), r[n]))
    assert worst <= MODEL_TOL[spec["dtype"]], f"{name}: model disagrees with the reference ({worst:.3g})"
    return worst


# --------------------------------------------------------------------------
# validation beyond gen_classic.validate
# --------------------------------------------------------------------------

def validate_more(out, names):
    for name in names:
        spec = json.loads((out / f"{name}.spec.json").read_text())
        exp = json.loads((out / f"{name}.expected.json").read_text())
        opt = spec["optimizer"]
        assert len(spec["steps"]) >= 20, f"{name}: fewer than 20 steps"
        shapes = [p["shape"] for p in spec["params"]]
        assert any(math.prod(s) == 0 for s in shapes), f"{name}: no 0-size tensor"
        assert any(math.prod(s) == 1 for s in shapes), f"{name}: no 1-element tensor"
        for k, v in KNOBS[opt].items():
            assert spec["hyper"][k] == v, f"{name}: knob {k}"
        if not name.endswith("ref_defaults_f64"):
            assert any(len(s["grads"]) < len(spec["params"]) for s in spec["steps"]), f"{name}: no frozen step"
        prev = {p["name"]: p["data"] for p in spec["params"]}
        moved = set()
        for t, (s, after) in enumerate(zip(spec["steps"], exp["trajectory"])):
            for n, v in after.items():
                if n not in s["grads"]:
                    assert v == prev[n], f"{name}: frozen {n} changed at step {t}"
                elif v != prev[n]:
                    moved.add(n)
            prev = after
        for p in spec["params"]:
            if p["data"]:
                assert p["name"] in moved, f"{name}: {p['name']} never moved"
        for k in ("torch", "seed", "case", "reference"):
            assert k in exp["meta"], f"{name}: meta.{k}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed (default {DEFAULT_SEED})")
    ap.add_argument("--verbose", action="store_true", help="print the model-vs-reference error per case")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    names = []
    for opt, flag, dtype in CASE_KINDS:
        name, spec = build_spec(opt, flag, dtype, args.seed)
        trajectory = run_reference(spec)
        worst = check_model(name, spec, trajectory)
        if args.verbose:
            print(f"{name:32s} model vs reference {worst:.3g}")
        expected = {"trajectory": trajectory, "skipped_steps": 0, "meta": meta_for(spec, args.seed, name)}
        write_case(args.out, name, spec, expected)
        names.append(name)
    gc.validate(args.out, names)
    validate_more(args.out, names)
    report(args.out, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
