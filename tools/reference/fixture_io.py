"""File format and random helpers shared by the fixture generators (numpy only).

The spec / expected JSON layout (one parameter or step per line) is documented
in README.md beside this file. Every generator writes through `write_spec` and
`write_expected` and checks its output with `validate`, so the committed sets
share one format.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def sig(x: float, digits: int = 3) -> float:
    """Round to `digits` significant digits, so hyperparameters read nicely."""
    return float(f"{x:.{digits}g}")


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return sig(10.0 ** rng.uniform(math.log10(lo), math.log10(hi)))


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return sig(rng.uniform(lo, hi))


def as_dtype_list(a: np.ndarray, dtype: str) -> list[float]:
    np_dtype = np.float32 if dtype == "f32" else np.float64
    return [float(x) for x in np.asarray(a, dtype=np_dtype).reshape(-1)]


def dumps(x) -> str:
    return json.dumps(x, separators=(",", ":"), allow_nan=False)


def write_spec(path: Path, spec: dict) -> None:
    """JSON with one parameter / one step per line (diff-friendly, compact)."""
    lines = ["{"]
    for key in ("optimizer", "dtype", "hyper", "groups"):
        if key in spec:
            lines.append(f'  "{key}": {dumps(spec[key])},')
    lines.append('  "params": [')
    lines.append(",\n".join(f"    {dumps(p)}" for p in spec["params"]))
    lines.append("  ],")
    lines.append('  "steps": [')
    lines.append(",\n".join(f"    {dumps(s)}" for s in spec["steps"]))
    lines.append("  ],")
    lines.append(f'  "nonfinite": {dumps(spec["nonfinite"])}')
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")


def write_expected(path: Path, expected: dict) -> None:
    lines = ["{", '  "trajectory": [']
    lines.append(",\n".join(f"    {dumps(s)}" for s in expected["trajectory"]))
    lines.append("  ],")
    lines.append(f'  "skipped_steps": {dumps(expected["skipped_steps"])},')
    lines.append(f'  "meta": {dumps(expected["meta"])}')
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")


def validate(out: Path, names: list[str], extra=None) -> None:
    """Re-reads every case: lengths match shapes, values finite (and exact f32
    values for f32 cases), one trajectory entry per step, frozen parameters do
    not move. `extra(name, spec, expected)` adds generator-specific checks."""
    for name in names:
        spec = json.loads((out / f"{name}.spec.json").read_text())
        exp = json.loads((out / f"{name}.expected.json").read_text())
        numel = {p["name"]: math.prod(p["shape"]) for p in spec["params"]}
        f32 = spec["dtype"] == "f32"

        def check(vals, n, what):
            assert len(vals) == numel[n], f"{name}: {what} {n}: length {len(vals)} != {numel[n]}"
            for v in vals:
                assert isinstance(v, float) and math.isfinite(v), f"{name}: {what} {n}: {v!r}"
                if f32:
                    assert float(np.float32(v)) == v, f"{name}: {what} {n}: {v!r} is not an f32 value"

        for p in spec["params"]:
            check(p["data"], p["name"], "init")
        for t, s in enumerate(spec["steps"]):
            for n, g in s["grads"].items():
                check(g, n, f"grad[{t}]")
        assert len(exp["trajectory"]) == len(spec["steps"]), f"{name}: trajectory length"
        prev = {p["name"]: p["data"] for p in spec["params"]}
        for t, s in enumerate(exp["trajectory"]):
            assert set(s) == set(numel), f"{name}: trajectory[{t}] keys"
            for n, v in s.items():
                check(v, n, f"trajectory[{t}]")
                if n not in spec["steps"][t]["grads"]:
                    assert v == prev[n], f"{name}: frozen {n} moved at step {t}"
            prev = s
        assert exp["skipped_steps"] == 0 and exp["meta"]["case"] == name
        if extra is not None:
            extra(name, spec, exp)


def write_case(out: Path, name: str, spec: dict, expected: dict) -> None:
    """Writes `<name>.spec.json` and `<name>.expected.json` into `out`."""
    write_spec(out / f"{name}.spec.json", spec)
    write_expected(out / f"{name}.expected.json", expected)


def report(out: Path, names: list[str]) -> None:
    """Checks the case names are unique and prints what was written."""
    assert len(names) == len(set(names)), "duplicate case names"
    total = sum((out / f"{n}.{k}.json").stat().st_size for n in names for k in ("spec", "expected"))
    print(f"wrote {2 * len(names)} files ({len(names)} cases, {total} bytes) to {out}")


def draw_params_and_groups(rng, names, shapes, dtype, group_overrides):
    """Initial parameters (normal, per-parameter scale) and, if `group_overrides`
    is given, one group per override with 1-2 randomly chosen members."""
    params = []
    for n, s in zip(names, shapes):
        scale = 10.0 ** rng.uniform(-1, 0.3)
        params.append({"name": n, "shape": s, "data": as_dtype_list(rng.normal(0, scale, size=s), dtype)})
    groups = None
    if group_overrides is not None:
        groups = []
        pool = list(rng.permutation(names))
        for i, ov in enumerate(group_overrides):
            room = len(pool) - (len(group_overrides) - i - 1) - 1
            k = int(rng.integers(1, min(2, room) + 1))
            members, pool = pool[:k], pool[k:]
            groups.append({"params": [str(m) for m in members], "hyper": ov})
    return params, groups


def draw_frozen(rng, names, n_steps, want_frozen, want_empty_step, *, numels=None,
                late=(3, 9), gap_start=(8, 13), gap_len=(2, 6)):
    """Per step, the set of parameter names WITHOUT a gradient: one parameter
    whose state is created late (frozen for `late` steps), one with a gap in
    the middle (starting in `gap_start`, lasting `gap_len`), sporadic single
    misses, and optionally one step on which nothing has a gradient. With
    `numels`, the late and gap parameters are drawn among the non-empty ones.
    Ranges are numpy `integers` bounds (high exclusive)."""
    frozen = [set() for _ in range(n_steps)]
    if want_frozen:
        pool = names if numels is None else [n for n, k in zip(names, numels) if k > 0]
        late_name, mid = rng.choice(pool, size=2, replace=False)
        for t in range(int(rng.integers(*late))):
            frozen[t].add(str(late_name))
        start = int(rng.integers(*gap_start))
        for t in range(start, start + int(rng.integers(*gap_len))):
            frozen[t].add(str(mid))
        for t in range(n_steps):
            for n in names:
                if rng.random() < 0.04:
                    frozen[t].add(n)
    if want_empty_step:
        frozen[int(rng.integers(14, n_steps))] = set(names)
    return frozen
