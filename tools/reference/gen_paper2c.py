#!/usr/bin/env python3
"""Golden trajectories for optimizers that need more than the mean gradient:
AEGD (needs the loss) and DP-SGD (needs per-sample gradients).

References:

* ``aegd``   -- ``torchzero.m.AEGD`` inside ``torchzero.Optimizer`` (checked
  against the AEGD paper's update first: identical, see
  paper2c_semantics.md). The closure sets the recorded gradients and returns
  the recorded loss of the step.
* ``dp-sgd`` -- opacus 1.6 ``DPOptimizer`` wrapping ``torch.optim.SGD``, with
  ``noise_multiplier = 0`` (opacus's noise comes from torch's generator and is
  not reproducible elsewhere; steepest's seeded noise is tested in Rust). The
  per-sample gradients are fed by setting ``p.grad_sample``; a parameter frozen
  on a step has ``requires_grad = False`` and no ``grad_sample`` then, so it is
  left out of the joint per-sample norm, as steepest does. The number of
  samples varies between steps; without ``expected_batch_size`` in the spec,
  opacus's ``expected_batch_size`` is set to that step's sample count.
* ``dice-sgd`` -- an independent NumPy implementation of DiceSGD's Algorithm 1
  (Zhang et al., "Differentially Private SGD Without Clipping Bias: An
  Error-Feedback Approach"), noise 0.

Run:
    /tmp/refvenv/bin/python tools/reference/gen_paper2c.py            # committed set
    /tmp/refvenv/bin/python tools/reference/gen_paper2c.py --seed 777 --out /tmp/holdout_p2c
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_io import as_dtype_list, log_uniform, report, sig, uniform, validate, write_case  # noqa: E402

warnings.filterwarnings("ignore")
import torchzero as tz  # noqa: E402
from opacus.optimizers import DPOptimizer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "fixtures" / "reference" / "paper2c"
DEFAULT_SEED = 20261129

VERSIONS = {
    "torch": torch.__version__,
    "torchzero": importlib.metadata.version("torchzero"),
    "opacus": importlib.metadata.version("opacus"),
    "numpy": np.__version__,
}

NAMES = ["w", "b", "s", "e", "l2.weight"]

# (optimizer, flag, dtype)
CASES = [
    ("aegd", "defaults", "f64"),
    ("aegd", "lr_c", "f64"),
    ("aegd", "frozen", "f64"),
    ("aegd", "small_c", "f64"),
    ("aegd", "defaults", "f32"),
    ("aegd", "lr_c", "f32"),
    ("dp-sgd", "plain", "f64"),
    ("dp-sgd", "clip_all", "f64"),
    ("dp-sgd", "momentum", "f64"),
    ("dp-sgd", "nesterov_wd", "f64"),
    ("dp-sgd", "batch_size", "f64"),
    ("dp-sgd", "frozen", "f64"),
    ("dp-sgd", "plain", "f32"),
    ("dp-sgd", "momentum", "f32"),
    ("dice-sgd", "plain", "f64"),
    ("dice-sgd", "tight", "f64"),
    ("dice-sgd", "batch_size", "f64"),
    ("dice-sgd", "frozen", "f64"),
    ("dice-sgd", "plain", "f32"),
]


def shapes(rng):
    """A matrix, a vector, a scalar, a zero-size tensor and another matrix."""
    return [[int(rng.integers(2, 5)), int(rng.integers(2, 6))], [int(rng.integers(3, 7))], [],
            [0, int(rng.integers(1, 4))], [int(rng.integers(1, 4)), int(rng.integers(2, 4))]]


def hyper_for(opt, flag, rng):
    if opt == "aegd":
        if flag == "defaults":
            return {}
        if flag == "small_c":
            return {"lr": log_uniform(rng, 0.05, 0.5), "c": log_uniform(rng, 0.01, 0.1)}
        return {"lr": log_uniform(rng, 0.01, 0.5), "c": log_uniform(rng, 0.3, 5.0)}
    lr = log_uniform(rng, 1e-2, 0.3)
    if opt == "dice-sgd":
        c1 = log_uniform(rng, 0.3, 3.0)
        h = {"lr": lr, "noise_multiplier": 0.0, "max_grad_norm": c1, "max_ef_norm": sig3(c1 * uniform(rng, 1.0, 4.0))}
        if flag == "tight":   # both clips bind on most steps
            h.update(max_grad_norm=log_uniform(rng, 0.01, 0.1), max_ef_norm=log_uniform(rng, 0.01, 0.1))
        if flag == "batch_size":
            h["expected_batch_size"] = int(rng.integers(3, 9))
        return h
    h = {"lr": lr, "noise_multiplier": 0.0, "max_grad_norm": log_uniform(rng, 0.3, 3.0)}
    if flag == "clip_all":
        h["max_grad_norm"] = log_uniform(rng, 1e-3, 1e-2)   # every sample is clipped
    if flag in ("momentum", "frozen"):
        h.update(momentum=uniform(rng, 0.5, 0.95), dampening=uniform(rng, 0.0, 0.3))
    if flag == "nesterov_wd":
        h.update(momentum=uniform(rng, 0.5, 0.95), nesterov=True, weight_decay=log_uniform(rng, 1e-3, 1e-1))
    if flag == "batch_size":
        h.update(expected_batch_size=int(rng.integers(3, 9)), weight_decay=log_uniform(rng, 1e-3, 1e-1),
                 maximize=True)
    return h


def sig3(x):
    return sig(x, 3)


def build_spec(opt, flag, dtype, seed):
    rng = np.random.default_rng([seed, zlib.crc32(f"{opt}/{flag}/{dtype}".encode())])
    shp = shapes(rng)
    params = []
    for n, s in zip(NAMES, shp):
        params.append({"name": n, "shape": s, "data": as_dtype_list(rng.normal(0, 10 ** rng.uniform(-1, 0.3), s), dtype)})
    hyper = hyper_for(opt, flag, rng)
    n_steps = int(rng.integers(12, 19))
    steps = []
    for t in range(n_steps):
        active = list(NAMES)
        if flag == "frozen" or (dtype == "f32" and flag != "defaults"):
            if t < 3 and opt != "aegd":
                # state created late (not for AEGD: torchzero starts every parameter's
                # energy at the first step's loss, steepest at the parameter's first
                # gradient; see paper2c_semantics.md)
                active.remove("b")
            if 6 <= t < 9:
                active.remove("l2.weight")     # frozen in the middle
        step = {"grads": {}}
        if opt == "aegd":
            step["loss"] = float(np.asarray(10 ** rng.uniform(-1.5, 1), dtype=np.float64))
            for n, s in zip(NAMES, shp):
                if n in active:
                    g = rng.normal(0, 10 ** rng.uniform(-1, 0.5), s)
                    step["grads"][n] = as_dtype_list(g, dtype)
        else:
            k = int(rng.integers(2, 6))
            step["sample_grads"] = {}
            for n, s in zip(NAMES, shp):
                if n in active:
                    gs = rng.normal(0, 10 ** rng.uniform(-1, 0.5), [k] + list(s))
                    gs = np.asarray(gs, dtype=np.float32 if dtype == "f32" else np.float64)
                    step["sample_grads"][n] = [as_dtype_list(x, dtype) for x in gs]
                    step["grads"][n] = as_dtype_list(gs.mean(axis=0) if k else gs.sum(axis=0), dtype)
        steps.append(step)
    return {"optimizer": opt, "dtype": dtype, "hyper": hyper, "params": params, "steps": steps,
            "nonfinite": "error"}


def tensors_of(spec):
    dt = torch.float64 if spec["dtype"] == "f64" else torch.float32
    return [torch.nn.Parameter(torch.tensor(p["data"], dtype=dt).reshape(p["shape"])) for p in spec["params"]], dt


def snapshot(spec, ts):
    return {p["name"]: as_dtype_list(t.detach().numpy(), spec["dtype"]) for p, t in zip(spec["params"], ts)}


def run_aegd(spec):
    ts, dt = tensors_of(spec)
    h = spec["hyper"]
    opt = tz.Optimizer(ts, tz.m.AEGD(lr=h.get("lr", 0.1), c=h.get("c", 1.0)))
    traj = []
    for step in spec["steps"]:
        def closure(backward=True, step=step):
            if backward:
                for p, t in zip(spec["params"], ts):
                    g = step["grads"].get(p["name"])
                    t.grad = None if g is None else torch.tensor(g, dtype=dt).reshape(p["shape"])
            return torch.tensor(step["loss"], dtype=torch.float64)
        opt.step(closure)
        traj.append(snapshot(spec, ts))
    return traj


def run_dp_sgd(spec):
    ts, dt = tensors_of(spec)
    h = dict(spec["hyper"])
    sgd_keys = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
    sgd = torch.optim.SGD(ts, **{k: h[k] for k in sgd_keys if k in h})
    fixed_b = h.get("expected_batch_size")
    dp = DPOptimizer(sgd, noise_multiplier=h["noise_multiplier"], max_grad_norm=h["max_grad_norm"],
                     expected_batch_size=fixed_b or 1, loss_reduction="mean")
    traj = []
    for step in spec["steps"]:
        sg = step["sample_grads"]
        k = len(next(iter(sg.values())))
        dp.expected_batch_size = fixed_b or k
        for p, t in zip(spec["params"], ts):
            if p["name"] in sg:
                t.requires_grad_(True)
                t.grad_sample = torch.tensor(sg[p["name"]], dtype=dt).reshape([k] + p["shape"])
                t.grad = torch.tensor(step["grads"][p["name"]], dtype=dt).reshape(p["shape"])
            else:
                t.requires_grad_(False)
                t.grad_sample = None
                t.grad = None
        dp.step()
        dp.zero_grad(set_to_none=True)
        traj.append(snapshot(spec, ts))
    return traj


def run_dice_sgd(spec):
    """DiceSGD, Algorithm 1 of the paper, in NumPy (noise 0), written from the
    paper: v = (1/B) sum_s clip(g_s, C1) + clip(e, C2); x -= lr (v + w);
    e += (1/B) sum_s g_s - v; clip(x, C) = min(1, C/||x||) x with norms over
    all parameters updated this step."""
    h = spec["hyper"]
    np_dt = np.float64 if spec["dtype"] == "f64" else np.float32
    x = {p["name"]: np.array(p["data"], dtype=np_dt) for p in spec["params"]}
    e = {}
    def clipf(c, norm):
        return min(1.0, c / norm) if norm > 0 else 1.0
    traj = []
    for step in spec["steps"]:
        sg = {n: np.array(v, dtype=np_dt).reshape(len(v), -1) for n, v in step["sample_grads"].items()}
        k = len(next(iter(sg.values())))
        b = h.get("expected_batch_size", k)
        norms = np.sqrt(sum((sg[n].astype(np.float64) ** 2).sum(axis=1) for n in sg))
        f = np.array([clipf(h["max_grad_norm"], nr) for nr in norms])
        enorm = np.sqrt(sum(float((e[n].astype(np.float64) ** 2).sum()) for n in sg if n in e))
        fe = clipf(h["max_ef_norm"], enorm)
        for n in sg:
            e.setdefault(n, np.zeros_like(x[n]))
            clipped = (f[:, None].astype(np_dt) * sg[n]).sum(axis=0)
            plain = sg[n].sum(axis=0)
            v = clipped * np_dt(1.0 / b) + np_dt(fe) * e[n]
            x[n] = x[n] - np_dt(h["lr"]) * v
            e[n] = e[n] + plain * np_dt(1.0 / b) - v
        traj.append({p["name"]: as_dtype_list(x[p["name"]], spec["dtype"]) for p in spec["params"]})
    return traj


def case_name(opt, flag, dtype):
    return f"{opt.replace('-', '_')}_{flag}_{dtype}"


def validate_more(out, names):
    """Step inputs: a loss on every AEGD step, per-sample gradients for every
    parameter with a gradient on every DP step, one sample count per step."""
    import json
    for name in names:
        spec = json.loads((out / f"{name}.spec.json").read_text())
        numel = {p["name"]: int(np.prod(p["shape"])) for p in spec["params"]}
        for t, s in enumerate(spec["steps"]):
            if spec["optimizer"] == "aegd":
                assert isinstance(s["loss"], float) and s["loss"] + spec["hyper"].get("c", 1.0) > 0, (name, t)
            else:
                assert set(s["sample_grads"]) == set(s["grads"]), (name, t)
                counts = {len(v) for v in s["sample_grads"].values()}
                assert len(counts) == 1 and counts.pop() >= 1, (name, t)
                for n, v in s["sample_grads"].items():
                    assert all(len(x) == numel[n] for x in v), (name, t, n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    names = []
    for opt, flag, dtype in CASES:
        name = case_name(opt, flag, dtype)
        spec = build_spec(opt, flag, dtype, args.seed)
        run, reference = {
            "aegd": (run_aegd, "torchzero.m.AEGD"),
            "dp-sgd": (run_dp_sgd, "opacus.DPOptimizer(torch.optim.SGD)"),
            "dice-sgd": (run_dice_sgd, "numpy implementation of DiceSGD Algorithm 1 (this script)"),
        }[opt]
        traj = run(spec)
        meta = {"case": name, "seed": args.seed, "reference": reference, "versions": VERSIONS}
        write_case(args.out, name, spec, {"trajectory": traj, "skipped_steps": 0, "meta": meta})
        names.append(name)
    validate(args.out, names, None)
    validate_more(args.out, names)
    report(args.out, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
