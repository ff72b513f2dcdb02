#!/usr/bin/env python3
"""Generate golden optimizer trajectories from PyTorch for `steepest replay`.

What it does
------------
For a fixed list of case *kinds* (optimizer x flags x dtype, see ``CASE_KINDS``)
it draws, from ``--seed``, the parameter shapes, the hyperparameter values
(within valid ranges), the initial parameter values, the per-step gradients and
which parameters are frozen (no gradient) at which steps.  It then runs the
real ``torch.optim`` optimizer on CPU and records the parameters after every
step.  Each case gives two files:

* ``<case>.spec.json``     -- the input of ``steepest replay --spec``;
* ``<case>.expected.json`` -- the trajectory PyTorch produced.

Every case is self-contained and independent of the others: its random stream
is seeded from ``(seed, crc32(case name))``, so adding a case does not change
the existing ones.  The set of case names is the same for every seed; only
shapes, hyperparameter values and data change.  See README.md beside this
file for the file format and the conventions.

How to run
----------
    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch safetensors numpy
    /tmp/refvenv/bin/python tools/reference/gen_classic.py            # committed set
    /tmp/refvenv/bin/python tools/reference/gen_classic.py --seed 777 --out /tmp/holdout

Torch version used for the committed fixtures
---------------------------------------------
torch 2.15.0+cu132 (run on CPU, one thread, the single-tensor "for-loop"
implementation: foreach=False), numpy 2.4.6, Python 3.11.7.  The exact version
is also written into every expected file under ``meta.torch``.
"""

from __future__ import annotations

import argparse
import math
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
from fixture_io import as_dtype_list, log_uniform, report, sig, uniform, validate, write_case  # noqa: E402,F401
import fixture_io  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "fixtures" / "reference" / "classic"
DEFAULT_SEED = 20261128

TORCH_CLASSES = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adamax": torch.optim.Adamax,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}

# Names given to the parameters of a case (the first ones are used, in a
# seed-dependent order).  Some contain dots, as safetensors names do.
PARAM_NAMES = ["w", "b", "enc.weight", "enc.bias", "head.w", "gain", "scale"]


# --------------------------------------------------------------------------
# random helpers (all draws go through one numpy Generator per case)
# --------------------------------------------------------------------------

# --------------------------------------------------------------------------
# hyperparameter draws, one function per (optimizer, flag)
# --------------------------------------------------------------------------
# Each function returns (hyper, groups_overrides) where groups_overrides is a
# list of override dicts (the parameters they apply to are drawn later), or
# None when the case has no "groups" key.

def lr_for(opt: str, rng) -> float:
    return {
        "sgd": lambda: log_uniform(rng, 1e-3, 1e-1),
        "adam": lambda: log_uniform(rng, 3e-4, 3e-2),
        "adamw": lambda: log_uniform(rng, 3e-4, 3e-2),
        "adamax": lambda: log_uniform(rng, 1e-3, 3e-2),
        "adagrad": lambda: log_uniform(rng, 3e-3, 3e-1),
        "rmsprop": lambda: log_uniform(rng, 3e-4, 1e-2),
    }[opt]()


def betas(rng):
    return [uniform(rng, 0.5, 0.95), uniform(rng, 0.9, 0.9999)]


def hyper_for(opt: str, flag: str, rng):
    lr = lr_for(opt, rng)
    wd = lambda: log_uniform(rng, 1e-3, 1e-1)  # noqa: E731
    eps = lambda: log_uniform(rng, 1e-10, 1e-4)  # noqa: E731
    if flag == "defaults":
        return {}, None
    if flag == "lr_only":
        return {"lr": lr}, None

    if opt == "sgd":
        mom = uniform(rng, 0.5, 0.95)
        if flag == "plain":
            return {"lr": lr, "momentum": 0.0}, []
        if flag == "momentum_dampening":
            return {"lr": lr, "momentum": mom, "dampening": uniform(rng, 0.05, 0.5)}, None
        if flag == "nesterov":
            return {"lr": lr, "momentum": mom, "dampening": 0.0, "nesterov": True}, None
        if flag == "weight_decay":
            return {"lr": lr, "momentum": mom, "weight_decay": wd()}, None
        if flag == "maximize":
            return {"lr": lr, "momentum": mom, "weight_decay": wd(), "maximize": True}, None
        if flag == "groups":
            return ({"lr": lr, "momentum": mom},
                    [{"lr": lr_for(opt, rng), "momentum": uniform(rng, 0.5, 0.95),
                      "dampening": uniform(rng, 0.05, 0.5)},
                     {"lr": lr_for(opt, rng), "momentum": 0.0}])

    if opt in ("adam", "adamw"):
        if flag == "amsgrad":
            return {"lr": lr, "betas": betas(rng), "amsgrad": True}, None
        if flag == "weight_decay":  # adam: coupled L2
            return {"lr": lr, "weight_decay": wd()}, None
        if flag == "large_weight_decay":  # adamw: decoupled, lr*wd up to ~0.03
            return {"lr": lr, "weight_decay": uniform(rng, 0.3, 1.0)}, None
        if flag == "maximize":
            return {"lr": lr, "betas": betas(rng), "weight_decay": wd(), "maximize": True}, None
        if flag == "groups":
            if opt == "adam":
                return ({"lr": lr, "betas": betas(rng), "eps": eps()},
                        [{"betas": betas(rng), "eps": eps()},
                         {"lr": lr_for(opt, rng), "amsgrad": True}])
            return ({"lr": lr, "weight_decay": uniform(rng, 0.05, 0.5)},
                    [{"weight_decay": 0.0}])

    if opt == "adamax":
        if flag == "weight_decay":
            return {"lr": lr, "weight_decay": wd()}, None
        if flag == "betas_eps":
            return {"lr": lr, "betas": betas(rng), "eps": eps()}, None
        if flag == "maximize":
            return {"lr": lr, "maximize": True}, None
        if flag == "groups":
            return ({"lr": lr, "betas": betas(rng)},
                    [{"lr": lr_for(opt, rng), "weight_decay": wd()}])

    if opt == "adagrad":
        if flag == "lr_decay":
            return {"lr": lr, "lr_decay": log_uniform(rng, 1e-3, 2e-1)}, None
        if flag == "init_acc":
            return {"lr": lr, "initial_accumulator_value": uniform(rng, 0.05, 1.0)}, None
        if flag == "weight_decay":
            return {"lr": lr, "weight_decay": wd()}, None
        if flag == "large_eps":
            return {"lr": lr, "eps": log_uniform(rng, 1e-4, 1e-1)}, None
        if flag == "maximize":
            return {"lr": lr, "maximize": True, "lr_decay": log_uniform(rng, 1e-3, 1e-1)}, None
        if flag == "groups":
            # NOTE: initial_accumulator_value is deliberately not overridden in
            # a group: torch's Adagrad creates its state in __init__ from the
            # *constructor* value and ignores a per-group override.
            return ({"lr": lr, "initial_accumulator_value": uniform(rng, 0.05, 0.5)},
                    [{"lr": lr_for(opt, rng), "lr_decay": log_uniform(rng, 1e-3, 1e-1),
                      "eps": log_uniform(rng, 1e-6, 1e-2)}])

    if opt == "rmsprop":
        mom = uniform(rng, 0.3, 0.9)
        if flag == "centered":
            return {"lr": lr, "centered": True}, None
        if flag == "momentum":
            return {"lr": lr, "momentum": mom}, None
        if flag == "centered_momentum":
            return {"lr": lr, "centered": True, "momentum": mom, "eps": eps()}, None
        if flag == "weight_decay":
            return {"lr": lr, "weight_decay": wd()}, None
        if flag == "alpha":
            return {"lr": lr, "alpha": uniform(rng, 0.8, 0.98), "eps": eps()}, None
        if flag == "maximize":
            return {"lr": lr, "maximize": True, "momentum": mom}, None
        if flag == "groups":
            return ({"lr": lr, "alpha": uniform(rng, 0.9, 0.999)},
                    [{"centered": True, "momentum": mom},
                     {"lr": lr_for(opt, rng), "weight_decay": wd()}])

    raise ValueError(f"unknown case kind {opt}/{flag}")


# --------------------------------------------------------------------------
# the fixed list of case kinds: (optimizer, flag, dtype)
# --------------------------------------------------------------------------
# "frozen": draw frozen steps (a late-starting parameter and a mid-run gap).
# "empty_step": one step in which no parameter has a gradient at all.

CASE_KINDS = [
    # sgd
    ("sgd", "defaults", "f64"), ("sgd", "plain", "f64"),
    ("sgd", "momentum_dampening", "f64"), ("sgd", "nesterov", "f64"),
    ("sgd", "weight_decay", "f64"), ("sgd", "maximize", "f64"),
    ("sgd", "groups", "f64"),
    ("sgd", "momentum_dampening", "f32"), ("sgd", "nesterov", "f32"),
    ("sgd", "groups", "f32"),
    # adam
    ("adam", "defaults", "f64"), ("adam", "amsgrad", "f64"),
    ("adam", "weight_decay", "f64"), ("adam", "maximize", "f64"),
    ("adam", "groups", "f64"),
    ("adam", "lr_only", "f32"), ("adam", "amsgrad", "f32"),
    ("adam", "weight_decay", "f32"),
    # adamw
    ("adamw", "defaults", "f64"), ("adamw", "amsgrad", "f64"),
    ("adamw", "large_weight_decay", "f64"), ("adamw", "groups", "f64"),
    ("adamw", "maximize", "f64"),
    ("adamw", "defaults", "f32"), ("adamw", "groups", "f32"),
    # adamax
    ("adamax", "defaults", "f64"), ("adamax", "weight_decay", "f64"),
    ("adamax", "betas_eps", "f64"), ("adamax", "maximize", "f64"),
    ("adamax", "groups", "f64"),
    ("adamax", "lr_only", "f32"), ("adamax", "weight_decay", "f32"),
    # adagrad
    ("adagrad", "defaults", "f64"), ("adagrad", "lr_decay", "f64"),
    ("adagrad", "init_acc", "f64"), ("adagrad", "weight_decay", "f64"),
    ("adagrad", "large_eps", "f64"), ("adagrad", "maximize", "f64"),
    ("adagrad", "groups", "f64"),
    ("adagrad", "defaults", "f32"), ("adagrad", "lr_decay", "f32"),
    # rmsprop
    ("rmsprop", "defaults", "f64"), ("rmsprop", "centered", "f64"),
    ("rmsprop", "momentum", "f64"), ("rmsprop", "centered_momentum", "f64"),
    ("rmsprop", "weight_decay", "f64"), ("rmsprop", "alpha", "f64"),
    ("rmsprop", "maximize", "f64"), ("rmsprop", "groups", "f64"),
    ("rmsprop", "centered", "f32"), ("rmsprop", "centered_momentum", "f32"),
]


def case_name(opt: str, flag: str, dtype: str) -> str:
    return f"{opt}_{flag}_{dtype}"


# --------------------------------------------------------------------------
# shapes, data, frozen schedule
# --------------------------------------------------------------------------

def draw_shapes(rng) -> list[list[int]]:
    """3-5 shapes: one 0-size, one 1-element, the rest rank 0..3; total numel 20..40."""
    while True:
        n_params = int(rng.integers(3, 6))
        zero_rank = int(rng.integers(1, 4))
        zero = [int(d) for d in rng.integers(1, 4, size=zero_rank)]
        zero[int(rng.integers(0, zero_rank))] = 0
        one = [[], [1], [1, 1]][int(rng.integers(0, 3))]
        others = []
        for _ in range(n_params - 2):
            rank = int(rng.choice([0, 1, 2, 2, 3]))
            others.append([int(d) for d in rng.integers(1, 6, size=rank)])
        total = 1 + sum(math.prod(s) for s in others)
        if 20 <= total <= 40:
            shapes = [zero, one] + others
            order = rng.permutation(len(shapes))
            return [shapes[i] for i in order]


def draw_frozen(rng, names, numels, n_steps, want_frozen, want_empty_step):
    """Return, per step, the set of parameter names WITHOUT a gradient."""
    return fixture_io.draw_frozen(rng, names, n_steps, want_frozen, want_empty_step, numels=numels)


# --------------------------------------------------------------------------
# build one case
# --------------------------------------------------------------------------

def build_spec(opt: str, flag: str, dtype: str, seed: int):
    name = case_name(opt, flag, dtype)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])

    hyper, group_overrides = hyper_for(opt, flag, rng)
    shapes = draw_shapes(rng)
    names = [str(n) for n in rng.permutation(PARAM_NAMES)[: len(shapes)]]
    numels = [math.prod(s) for s in shapes]
    n_steps = int(rng.integers(20, 26))
    grad_scale = 10.0 ** rng.uniform(-3, 1)

    params = []
    for n, s in zip(names, shapes):
        scale = 10.0 ** rng.uniform(-1, 0.3)
        params.append({"name": n, "shape": s,
                       "data": as_dtype_list(rng.normal(0, scale, size=s), dtype)})

    groups = None
    if group_overrides is not None:
        groups = []
        pool = list(rng.permutation(names))
        for i, ov in enumerate(group_overrides):
            # 1-2 members each, leaving at least one parameter in the base group
            room = len(pool) - (len(group_overrides) - i - 1) - 1
            k = int(rng.integers(1, min(2, room) + 1))
            members, pool = pool[:k], pool[k:]
            groups.append({"params": [str(m) for m in members], "hyper": ov})

    frozen = draw_frozen(rng, names, numels, n_steps,
                         want_frozen=flag not in ("defaults", "lr_only") or dtype == "f32",
                         want_empty_step=flag == "groups")
    per_param_scale = {n: grad_scale * 10.0 ** rng.uniform(-0.5, 0.5) for n in names}
    steps = []
    for t in range(n_steps):
        grads = {}
        for n, s in zip(names, shapes):
            g = rng.normal(0, per_param_scale[n], size=s)  # always drawn: stable stream
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
# run torch
# --------------------------------------------------------------------------

def torch_hyper(h: dict) -> dict:
    h = dict(h)
    if "betas" in h:
        h["betas"] = tuple(h["betas"])
    return h


def run_torch(spec: dict) -> list[dict]:
    tdtype = torch.float32 if spec["dtype"] == "f32" else torch.float64
    tensors = {}
    for p in spec["params"]:
        t = torch.tensor(p["data"], dtype=tdtype).reshape(p["shape"])
        tensors[p["name"]] = torch.nn.Parameter(t)

    base = torch_hyper(spec["hyper"])
    grouped = [n for g in spec.get("groups") or [] for n in g["params"]]
    assert len(grouped) == len(set(grouped)), "a parameter is in two groups"
    param_groups = []
    first = [tensors[p["name"]] for p in spec["params"] if p["name"] not in grouped]
    if first:
        param_groups.append({"params": first})
    for g in spec.get("groups") or []:
        pg = {"params": [tensors[n] for n in g["params"]]}
        pg.update(torch_hyper(g["hyper"]))
        param_groups.append(pg)

    cls = TORCH_CLASSES[spec["optimizer"]]
    # CPU already defaults to the single-tensor implementation; say it anyway.
    opt = cls(param_groups, foreach=False, **base)

    trajectory = []
    for step in spec["steps"]:
        for name, t in tensors.items():
            if name in step["grads"]:
                t.grad = torch.tensor(step["grads"][name], dtype=tdtype).reshape(t.shape)
            else:
                t.grad = None
        opt.step()
        trajectory.append({p["name"]: [float(x) for x in tensors[p["name"]].detach().reshape(-1).tolist()]
                           for p in spec["params"]})
    return trajectory


# --------------------------------------------------------------------------
# writing and validation
# --------------------------------------------------------------------------

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
        trajectory = run_torch(spec)
        expected = {"trajectory": trajectory, "skipped_steps": 0,
                    "meta": {"torch": torch.__version__, "seed": args.seed, "case": name}}
        write_case(args.out, name, spec, expected)
        names.append(name)
    validate(args.out, names)
    report(args.out, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
