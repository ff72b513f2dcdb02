#!/usr/bin/env python3
"""PyTorch's step time for the classic optimizers on one large float32 tensor.

Run beside `cargo run --release -p steepest --example step_speed` on the same
machine (same NUMEL and REPEATS) to compare. Needs torch (see
tools/reference/README.md for the venv). Prints the median of REPEATS steps for
PyTorch's for-loop, foreach and (where it exists) fused implementations.
"""
import sys
import time

import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 24
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 15
print(f"numel {n}, {repeats} repeats, {torch.get_num_threads()} threads, torch {torch.__version__}")
cases = [
    ("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    ("adam", torch.optim.Adam, {"lr": 0.05}),
    ("adamw", torch.optim.AdamW, {"lr": 0.05}),
    ("adamax", torch.optim.Adamax, {"lr": 0.05}),
    ("adagrad", torch.optim.Adagrad, {"lr": 0.5}),
    ("rmsprop", torch.optim.RMSprop, {"lr": 0.05}),
]
for name, cls, kw in cases:
    for impl in ("forloop", "foreach", "fused"):
        extra = {"forloop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[impl]
        p = torch.nn.Parameter(torch.full((n,), 0.5))
        p.grad = ((torch.arange(n) % 97).float() - 48.0) * 1e-3
        try:
            opt = cls([p], **kw, **extra)
            opt.step()
        except (RuntimeError, TypeError, ValueError):
            continue
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - t)
        times.sort()
        print(f"{name:<8} {impl:<8} {times[repeats // 2] * 1e3:8.2f} ms")
