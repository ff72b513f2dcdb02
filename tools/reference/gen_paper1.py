#!/usr/bin/env python3
"""Generate golden trajectories for AdaBound, Lion and Muon for `steepest replay`.

What it does
------------
Same machinery and file format as ``gen_classic.py`` (its helpers are imported
from there): for a fixed list of case *kinds* (optimizer x flag x dtype, see
``CASE_KINDS``) it draws, from ``--seed``, the parameter shapes, the
hyperparameter values, the data and the frozen steps, runs the *reference*
implementation on CPU and records the parameters after every step.  Each case
gives ``<case>.spec.json`` and ``<case>.expected.json``.

References (the code a paper's authors or PyTorch ship, not a re-derivation):

* ``adabound`` -- ``adabound.AdaBound`` from the ``adabound`` package (the
  authors' code, Luo et al. 2019).
* ``lion``     -- ``lion_pytorch.Lion`` from the ``lion-pytorch`` package
  (default flags: ``use_triton=False``, ``decoupled_weight_decay=False``).
* ``muon``     -- ``torch.optim.Muon`` (torch/optim/_muon.py).  Its
  Newton-Schulz iteration casts to bfloat16; this script replaces
  ``torch.optim._muon._zeropower_via_newtonschulz`` by an otherwise identical
  copy that keeps the input dtype (f64 in f64 cases, f32 in f32 cases).
  ``muon_aux_*`` cases are the "Muon with auxiliary AdamW" recipe: parameters
  that are not 2-D, and 2-D parameters whose name matches a glob in
  ``hyper.adamw_params``, are stepped by ``torch.optim.AdamW(lr=adamw_lr,
  betas=adamw_betas, eps=adamw_eps, weight_decay=adamw_weight_decay)``; the
  other parameters by ``torch.optim.Muon``.  Plain muon cases only have 2-D
  parameters whose names match no default pattern (no "embed"/"head").

See tools/reference/paper1_semantics.md for the arithmetic of each reference.

How to run
----------
    /tmp/refvenv/bin/pip install torch numpy adabound lion-pytorch
    /tmp/refvenv/bin/python tools/reference/gen_paper1.py           # committed set
    /tmp/refvenv/bin/python tools/reference/gen_paper1.py --seed 777 --out /tmp/holdout_p1

Versions used for the committed fixtures: torch 2.15.0+cu132 (CPU, one
thread), adabound 0.0.5, lion-pytorch 0.2.5, numpy 2.4.6, Python 3.11.7; the
versions are also written into every expected file under ``meta``.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata
import math
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_classic as gc  # noqa: E402  (shared helpers and file format)
from fixture_io import draw_params_and_groups, report, write_case  # noqa: E402
from gen_classic import as_dtype_list, log_uniform, uniform  # noqa: E402

import adabound  # noqa: E402

# adabound 0.0.5 uses torch's deprecated positional-alpha overloads of add_/addcmul_;
# they still compute the same thing (checked), so keep the output quiet.
warnings.filterwarnings("ignore", message="This overload of add")
import lion_pytorch  # noqa: E402
import torch.optim._muon as torch_muon  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "fixtures" / "reference" / "paper1"
DEFAULT_SEED = 20261128

VERSIONS = {
    "torch": torch.__version__,
    "adabound": importlib.metadata.version("adabound"),
    "lion_pytorch": importlib.metadata.version("lion-pytorch"),
}

# Muon: default routing patterns and the AdamW hyperparameter defaults that
# steepest documents for the auxiliary-AdamW recipe (written explicitly into
# every aux spec anyway).
AUX_DEFAULTS = {
    "adamw_params": ["*embed*", "*head*"],
    "adamw_lr": 3e-4,
    "adamw_betas": [0.9, 0.95],
    "adamw_eps": 1e-8,
    "adamw_weight_decay": 0.0,
}

# Names for the plain (all-Muon) cases: none contains "embed" or "head".
MUON_NAMES = ["w", "l1.weight", "l2.weight", "attn.q", "attn.o", "mlp.up", "mlp.down", "proj"]

# Newton-Schulz (a, b, c) alternatives to the default quintic.
NS_COEFFS = [
    [1.5, -0.5, 0.0],            # the classic cubic Newton-Schulz (c = 0)
    [1.875, -1.25, 0.375],       # the convergent quintic (15/8, -10/8, 3/8)
    [3.4445, -4.775, 2.0315],    # torch's default, written out
    [2.0, -1.5, 0.5],
]


# --------------------------------------------------------------------------
# ---------------------------------------------------------------- the Muon NS
# --------------------------------------------------------------------------

def zeropower_same_dtype(grad, ns_coefficients, ns_steps, eps):
    """torch.optim._muon._zeropower_via_newtonschulz without the bfloat16 cast.

    Identical to torch 2.15's function (same checks, same op sequence) except
    that the working copy keeps ``grad.dtype``.
    """
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(grad.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    x = grad.to(dtype=grad.dtype, copy=True)          # <- the only change (was bfloat16)
    if grad.size(0) > grad.size(1):
        x = x.T
    x.div_(x.norm().clamp(min=eps))
    for _ in range(ns_steps):
        gram = x @ x.T
        gram_update = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, gram_update, x, beta=a)
    if grad.size(0) > grad.size(1):
        x = x.T
    return x


torch_muon._zeropower_via_newtonschulz = zeropower_same_dtype


# --------------------------------------------------------------------------
# hyperparameter draws
# --------------------------------------------------------------------------
# Return (hyper, group_overrides or None).

def betas(rng):
    return [uniform(rng, 0.5, 0.95), uniform(rng, 0.9, 0.9999)]


def hyper_adabound(flag, rng):
    lr = log_uniform(rng, 3e-4, 3e-2)
    if flag == "defaults":
        return {}, None
    if flag == "amsbound":
        return {"lr": lr, "betas": betas(rng), "amsbound": True}, None
    if flag == "weight_decay":
        return {"lr": lr, "weight_decay": log_uniform(rng, 1e-3, 1e-1)}, None
    if flag == "final_lr_gamma":
        # a large gamma makes both bounds bind within 20 steps
        return {"lr": lr, "final_lr": log_uniform(rng, 1e-2, 0.5),
                "gamma": log_uniform(rng, 1e-2, 0.5)}, None
    if flag == "betas_eps":
        return {"lr": lr, "betas": betas(rng), "eps": log_uniform(rng, 1e-10, 1e-4),
                "final_lr": log_uniform(rng, 1e-2, 0.5)}, None
    if flag == "groups":
        return ({"lr": lr, "final_lr": log_uniform(rng, 1e-2, 0.5), "gamma": log_uniform(rng, 1e-3, 1e-1)},
                [{"lr": log_uniform(rng, 3e-4, 3e-2)},
                 {"gamma": log_uniform(rng, 1e-2, 0.5), "amsbound": True,
                  "weight_decay": log_uniform(rng, 1e-3, 1e-1)}])
    raise ValueError(flag)


def hyper_lion(flag, rng):
    lr = log_uniform(rng, 1e-4, 3e-3)
    if flag == "defaults":
        return {}, None
    if flag == "weight_decay":
        return {"lr": lr, "weight_decay": log_uniform(rng, 1e-2, 1.0)}, None
    if flag == "betas":
        return {"lr": lr, "betas": [uniform(rng, 0.5, 0.95), uniform(rng, 0.9, 0.999)]}, None
    if flag == "groups":
        return ({"lr": lr, "weight_decay": log_uniform(rng, 1e-2, 1.0)},
                [{"lr": log_uniform(rng, 1e-4, 3e-3), "betas": [uniform(rng, 0.5, 0.95), uniform(rng, 0.9, 0.999)]},
                 {"weight_decay": 0.0}])
    raise ValueError(flag)


def muon_lr(rng):
    return log_uniform(rng, 1e-3, 5e-2)


def hyper_muon(flag, rng):
    lr = muon_lr(rng)
    mom = lambda: uniform(rng, 0.5, 0.99)  # noqa: E731
    wd = lambda: log_uniform(rng, 1e-2, 0.5)  # noqa: E731
    if flag in ("defaults", "aux_defaults"):
        h = {}
    elif flag == "no_nesterov":
        h = {"lr": lr, "momentum": mom(), "nesterov": False}
    elif flag in ("original", "match_rms_adamw", "spectral_unclamped"):
        h = {"lr": lr, "momentum": mom(), "adjust_lr_fn": flag}
    elif flag == "ns_coefficients":
        h = {"lr": lr, "ns_coefficients": NS_COEFFS[int(rng.integers(0, len(NS_COEFFS)))],
             "ns_steps": int(rng.choice([1, 2, 3, 4, 7, 10]))}
    elif flag == "no_weight_decay":
        h = {"lr": lr, "weight_decay": 0.0}
    elif flag == "weight_decay":
        h = {"lr": lr, "weight_decay": uniform(rng, 0.2, 1.0), "nesterov": bool(rng.integers(0, 2))}
    elif flag == "vectors":
        h = {"lr": lr, "weight_decay": wd(), "adjust_lr_fn": "spectral_unclamped"}
    elif flag == "vectors_rms":
        h = {"lr": lr, "adjust_lr_fn": "match_rms_adamw", "nesterov": False}
    elif flag == "large_eps":
        h = {"lr": lr, "eps": log_uniform(rng, 0.3, 3.0)}
    elif flag == "zero_grad":
        h = {"lr": lr, "momentum": mom(), "weight_decay": wd()}
    elif flag == "large":
        h = {"lr": lr, "adjust_lr_fn": "match_rms_adamw", "weight_decay": wd()}
    elif flag == "groups":
        return ({"lr": lr, "momentum": mom(), "weight_decay": wd()},
                [{"lr": muon_lr(rng), "nesterov": False, "adjust_lr_fn": "spectral_unclamped",
                  "ns_steps": int(rng.choice([2, 3, 6]))},
                 {"momentum": 0.0, "weight_decay": 0.0, "adjust_lr_fn": "match_rms_adamw",
                  "ns_coefficients": NS_COEFFS[1]}])
    elif flag == "aux":
        h = {"lr": muon_lr(rng), "momentum": mom(), "weight_decay": wd(),
             "adamw_params": list(AUX_DEFAULTS["adamw_params"]),
             "adamw_lr": log_uniform(rng, 3e-4, 3e-2), "adamw_betas": betas(rng),
             "adamw_eps": log_uniform(rng, 1e-10, 1e-4), "adamw_weight_decay": log_uniform(rng, 1e-3, 0.3)}
        return h, None
    elif flag == "aux_patterns":
        # replaces (does not extend) the default patterns: "embed.weight" goes to Muon here
        h = {"lr": muon_lr(rng), "adjust_lr_fn": "match_rms_adamw",
             "adamw_params": ["tok_*", "*.gate"],
             "adamw_lr": log_uniform(rng, 3e-4, 3e-2), "adamw_betas": betas(rng),
             "adamw_eps": log_uniform(rng, 1e-10, 1e-4), "adamw_weight_decay": 0.0}
        return h, None
    else:
        raise ValueError(flag)
    if flag == "aux_defaults":
        h = {k: (list(v) if isinstance(v, list) else v) for k, v in AUX_DEFAULTS.items()}
    return h, None


HYPER = {"adabound": hyper_adabound, "lion": hyper_lion, "muon": hyper_muon}


# --------------------------------------------------------------------------
# the fixed list of case kinds
# --------------------------------------------------------------------------

CASE_KINDS = [
    # adabound
    ("adabound", "defaults", "f64"), ("adabound", "amsbound", "f64"),
    ("adabound", "weight_decay", "f64"), ("adabound", "final_lr_gamma", "f64"),
    ("adabound", "betas_eps", "f64"), ("adabound", "groups", "f64"),
    ("adabound", "defaults", "f32"), ("adabound", "amsbound", "f32"),
    ("adabound", "final_lr_gamma", "f32"), ("adabound", "groups", "f32"),
    # lion
    ("lion", "defaults", "f64"), ("lion", "weight_decay", "f64"),
    ("lion", "betas", "f64"), ("lion", "groups", "f64"),
    ("lion", "defaults", "f32"), ("lion", "weight_decay", "f32"), ("lion", "groups", "f32"),
    # muon (plain: every parameter 2-D)
    ("muon", "defaults", "f64"), ("muon", "no_nesterov", "f64"),
    ("muon", "original", "f64"), ("muon", "match_rms_adamw", "f64"),
    ("muon", "spectral_unclamped", "f64"), ("muon", "ns_coefficients", "f64"),
    ("muon", "no_weight_decay", "f64"), ("muon", "weight_decay", "f64"),
    ("muon", "vectors", "f64"), ("muon", "vectors_rms", "f64"),
    ("muon", "large_eps", "f64"), ("muon", "zero_grad", "f64"),
    ("muon", "groups", "f64"), ("muon", "large", "f64"),
    ("muon", "defaults", "f32"), ("muon", "no_nesterov", "f32"),
    ("muon", "match_rms_adamw", "f32"), ("muon", "ns_coefficients", "f32"),
    ("muon", "vectors", "f32"), ("muon", "groups", "f32"),
    # muon with auxiliary AdamW
    ("muon", "aux_defaults", "f64"), ("muon", "aux", "f64"),
    ("muon", "aux_patterns", "f64"), ("muon", "aux", "f32"),
]


def case_name(opt, flag, dtype):
    return f"{opt}_{flag}_{dtype}"


# --------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------

def muon_shape(rng, kind):
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    if kind == "square":
        n = r(2, 4)
        return [n, n]
    if kind == "tall":
        c = r(2, 3)
        return [r(c + 1, 6), c]
    if kind == "wide":
        rr = r(2, 3)
        return [rr, r(rr + 1, 6)]
    if kind == "row":
        return [1, r(2, 6)]
    if kind == "col":
        return [r(2, 6), 1]
    if kind == "one":
        return [1, 1]
    if kind == "empty":   # [0, k]: a [k, 0] matrix makes torch's _adjust_lr divide by zero
        return [0, r(1, 4)]
    if kind == "big":
        return [12, 20]
    raise ValueError(kind)


def muon_kinds(flag, rng):
    if flag in ("vectors", "vectors_rms"):
        return ["row", "col", "one", "empty", "row", "col"]
    if flag == "large":
        return ["big", "one"]
    kinds = ["square", "tall", "wide", ["row", "col", "one"][int(rng.integers(0, 3))]]
    if flag in ("groups", "zero_grad"):
        kinds.append(["square", "tall", "wide"][int(rng.integers(0, 3))])
    if flag == "defaults":
        kinds.append("empty")
    return kinds


def aux_params(flag, rng):
    """(name, shape) list of an aux case, and the names that go to AdamW."""
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    d = r(2, 4)
    if flag == "aux_patterns":
        ps = [("tok_emb.weight", [r(3, 5), d]), ("embed.weight", [r(2, 4), d]),
              ("mlp.gate", [d, r(2, 3)]), ("layer1.weight", [r(2, 4), d]),
              ("layer1.bias", [d]), ("norm.scale", [0])]
    else:
        ps = [("embed.weight", [r(3, 5), d]), ("layer1.weight", [r(2, 4), d]),
              ("layer1.bias", [d]), ("layer2.weight", [d, r(2, 4)]),
              ("lm_head.weight", [r(2, 3), d]), ("norm.scale", [[0], [0, 2], [0, 3, 1]][r(0, 2)]),
              ("logit_scale", [])]
    order = rng.permutation(len(ps))
    return [ps[i] for i in order]


def muon_routes_to_adamw(name, shape, patterns):
    return len(shape) != 2 or any(fnmatch.fnmatchcase(name, g) for g in patterns)


# --------------------------------------------------------------------------
# build one case
# --------------------------------------------------------------------------

def build_spec(opt, flag, dtype, seed):
    name = case_name(opt, flag, dtype)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])

    hyper, group_overrides = HYPER[opt](flag, rng)
    if opt != "muon":
        shapes = gc.draw_shapes(rng)
        names = [str(n) for n in rng.permutation(gc.PARAM_NAMES)[: len(shapes)]]
    elif flag.startswith("aux"):
        ps = aux_params(flag, rng)
        names, shapes = [n for n, _ in ps], [s for _, s in ps]
    else:
        shapes = [muon_shape(rng, k) for k in muon_kinds(flag, rng)]
        names = [str(n) for n in rng.permutation(MUON_NAMES)[: len(shapes)]]
    numels = [math.prod(s) for s in shapes]
    n_steps = 20 if opt == "muon" else int(rng.integers(20, 24))
    grad_scale = 10.0 ** rng.uniform(-3, 1)
    if flag == "large_eps":   # Frobenius norms straddle eps
        grad_scale = hyper["eps"] * 10.0 ** rng.uniform(-1.3, -0.7)

    params, groups = draw_params_and_groups(rng, names, shapes, dtype, group_overrides)

    frozen = gc.draw_frozen(rng, names, numels, n_steps,
                            want_frozen=flag not in ("defaults", "aux_defaults") or dtype == "f32",
                            want_empty_step=flag == "groups")
    per_param_scale = {n: grad_scale * 10.0 ** rng.uniform(-0.5, 0.5) for n in names}
    if flag == "large_eps":
        per_param_scale = {n: grad_scale * 10.0 ** rng.uniform(-0.3, 0.3) / math.sqrt(max(k, 1))
                           for n, k in zip(names, numels)}

    # exact zeros in gradients:
    #  lion: one element of one parameter gets 0 for its first 3-6 steps (sign(0) = 0),
    #        plus sporadic single zero elements;
    #  muon zero_grad: one matrix gets an all-zero gradient on its first 1-3 steps
    #        (zero momentum -> the norm clamp at eps), another one mid-run.
    zero = [dict() for _ in range(n_steps)]   # step -> name -> "all" | set of flat indices
    nonempty = [n for n, k in zip(names, numels) if k > 0]
    if opt == "lion" and flag != "defaults":
        n0 = str(rng.choice(nonempty))
        idx = int(rng.integers(0, numels[names.index(n0)]))
        for t in range(int(rng.integers(3, 7))):
            zero[t].setdefault(n0, set()).add(idx)
        for t in range(n_steps):
            for n, k in zip(names, numels):
                if k > 0 and rng.random() < 0.03:
                    zero[t].setdefault(n, set()).add(int(rng.integers(0, k)))
    if flag == "zero_grad":
        a, b = rng.choice(nonempty, size=2, replace=False)
        for t in range(int(rng.integers(1, 4))):
            zero[t][str(a)] = "all"
        zero[int(rng.integers(8, 14))][str(b)] = "all"

    steps = []
    for t in range(n_steps):
        grads = {}
        for n, s in zip(names, shapes):
            g = rng.normal(0, per_param_scale[n], size=s)   # always drawn: stable stream
            z = zero[t].get(n)
            if z == "all":
                g = np.zeros(s)
            elif z:
                g = g.reshape(-1).copy()
                g[list(z)] = 0.0
                g = g.reshape(s)
            if n not in frozen[t]:
                grads[n] = as_dtype_list(g, dtype)
        steps.append({"grads": grads})

    spec = {"optimizer": opt, "dtype": dtype, "hyper": hyper}
    if groups is not None:
        spec["groups"] = groups
    spec["params"] = params
    spec["steps"] = steps
    spec["nonfinite"] = "error"
    return name, spec


# --------------------------------------------------------------------------
# run the references
# --------------------------------------------------------------------------

def torch_hyper(h):
    h = dict(h)
    for k in ("betas", "ns_coefficients"):
        if k in h:
            h[k] = tuple(h[k])
    return h


def param_groups_for(spec, tensors, names):
    """torch param groups over `names` (spec order): base group first, then one per spec group."""
    grouped = [n for g in spec.get("groups") or [] for n in g["params"]]
    assert len(grouped) == len(set(grouped)), "a parameter is in two groups"
    out = []
    first = [tensors[n] for n in names if n not in grouped]
    if first:
        out.append({"params": first})
    for g in spec.get("groups") or []:
        members = [tensors[n] for n in g["params"] if n in names]
        if members:
            pg = {"params": members}
            pg.update(torch_hyper(g["hyper"]))
            out.append(pg)
    return out


def make_optimizers(spec, tensors):
    opt = spec["optimizer"]
    names = [p["name"] for p in spec["params"]]
    shapes = {p["name"]: p["shape"] for p in spec["params"]}
    base = torch_hyper(spec["hyper"])
    if opt == "adabound":
        return [adabound.AdaBound(param_groups_for(spec, tensors, names), **base)]
    if opt == "lion":
        return [lion_pytorch.Lion(param_groups_for(spec, tensors, names), **base)]
    assert opt == "muon"
    aux = {k: base.pop(k) for k in list(base) if k.startswith("adamw_")}
    patterns = aux.get("adamw_params", AUX_DEFAULTS["adamw_params"])
    to_adamw = [n for n in names if muon_routes_to_adamw(n, shapes[n], patterns)]
    to_muon = [n for n in names if n not in to_adamw]
    opts = []
    if to_muon:
        opts.append(torch.optim.Muon(param_groups_for(spec, tensors, to_muon), **base))
    if to_adamw:
        assert "groups" not in spec, "groups are not generated together with auxiliary AdamW"
        assert set(aux) == set(AUX_DEFAULTS), "aux specs write every adamw_* key"
        opts.append(torch.optim.AdamW([tensors[n] for n in to_adamw], lr=aux["adamw_lr"],
                                      betas=tuple(aux["adamw_betas"]), eps=aux["adamw_eps"],
                                      weight_decay=aux["adamw_weight_decay"], foreach=False))
    return opts


def run_reference(spec):
    tdtype = torch.float32 if spec["dtype"] == "f32" else torch.float64
    tensors = {}
    for p in spec["params"]:
        tensors[p["name"]] = torch.nn.Parameter(torch.tensor(p["data"], dtype=tdtype).reshape(p["shape"]))
    opts = make_optimizers(spec, tensors)
    trajectory = []
    for step in spec["steps"]:
        for name, t in tensors.items():
            if name in step["grads"]:
                t.grad = torch.tensor(step["grads"][name], dtype=tdtype).reshape(t.shape)
            else:
                t.grad = None
        for o in opts:
            o.step()
        trajectory.append({p["name"]: [float(x) for x in tensors[p["name"]].detach().reshape(-1).tolist()]
                           for p in spec["params"]})
    return trajectory


def meta_for(spec, seed, name):
    m = {"torch": VERSIONS["torch"]}
    opt = spec["optimizer"]
    if opt == "adabound":
        m["adabound"] = VERSIONS["adabound"]
        m["reference"] = "adabound.AdaBound"
    elif opt == "lion":
        m["lion_pytorch"] = VERSIONS["lion_pytorch"]
        m["reference"] = "lion_pytorch.Lion"
    else:
        m["reference"] = "torch.optim.Muon, Newton-Schulz in the parameter dtype (no bfloat16)"
        if any(k.startswith("adamw_") for k in spec["hyper"]):
            m["reference"] += " + torch.optim.AdamW"
    m["seed"] = seed
    m["case"] = name
    return m


# --------------------------------------------------------------------------
# validation beyond gen_classic.validate
# --------------------------------------------------------------------------

def validate_more(out, names):
    import json
    for name in names:
        spec = json.loads((out / f"{name}.spec.json").read_text())
        exp = json.loads((out / f"{name}.expected.json").read_text())
        assert len(spec["steps"]) >= 20, f"{name}: fewer than 20 steps"
        # every parameter with elements moves at some point; frozen ones do not move on their frozen steps
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
        if spec["optimizer"] == "muon":
            aux = any(k.startswith("adamw_") for k in spec["hyper"])
            pats = spec["hyper"].get("adamw_params", AUX_DEFAULTS["adamw_params"])
            routed = [p["name"] for p in spec["params"] if muon_routes_to_adamw(p["name"], p["shape"], pats)]
            if aux:
                assert set(spec["hyper"]) >= set(AUX_DEFAULTS), f"{name}: aux spec must write every adamw_* key"
                assert routed and len(routed) < len(spec["params"]), f"{name}: routing"
            else:
                assert not routed, f"{name}: plain muon case has AdamW-routed params {routed}"
        assert exp["meta"]["torch"] == VERSIONS["torch"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed (default {DEFAULT_SEED})")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    names = []
    for opt, flag, dtype in CASE_KINDS:
        name, spec = build_spec(opt, flag, dtype, args.seed)
        trajectory = run_reference(spec)
        expected = {"trajectory": trajectory, "skipped_steps": 0, "meta": meta_for(spec, args.seed, name)}
        write_case(args.out, name, spec, expected)
        names.append(name)
    gc.validate(args.out, names)
    validate_more(args.out, names)
    report(args.out, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
