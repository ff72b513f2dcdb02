#!/usr/bin/env python3
"""Step time of the Python reference optimizers, to compare with steepest side by side.

    python tools/bench/torch_step_speed.py [NUMEL] [REPEATS] [DIM]

Run beside `cargo run --release -p steepest --example step_speed -- NUMEL REPEATS DIM`
on the same machine. Prints the median of REPEATS steps on one float32 tensor
of NUMEL elements (PyTorch's for-loop, foreach and fused implementations where
they exist, and the reference packages of the paper optimizers), and Muon /
AdaGO on one DIM x DIM matrix. Needs the reference venv (tools/reference/README.md);
packages that are missing are skipped.
"""
import sys
import time

import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 24
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 15
dim = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
print(f"numel {n}, {repeats} repeats, {torch.get_num_threads()} threads, torch {torch.__version__}")


def median_step(opt, r):
    """Median step time; every parameter's gradient is restored before each step
    (some packages consume or clear .grad)."""
    params = [p for g in opt.param_groups for p in g["params"]]
    grads = [p.grad.clone() for p in params]

    def restore():
        for p, g in zip(params, grads):
            p.grad = g

    restore()
    opt.step()
    times = []
    for _ in range(r):
        restore()
        t = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[r // 2]


def vector_param():
    p = torch.nn.Parameter(torch.full((n,), 0.5))
    p.grad = ((torch.arange(n) % 97).float() - 48.0) * 1e-3
    return p


def matrix_param():
    p = torch.nn.Parameter(((torch.arange(dim * dim) % 89).float() - 44.0).reshape(dim, dim) * 1e-3)
    p.grad = (((torch.arange(dim * dim) % 97).float() - 48.0) * 1e-3).reshape(dim, dim)
    return p


cases = [
    ("sgd", lambda p, **k: torch.optim.SGD([p], lr=0.05, momentum=0.9, **k), True),
    ("adam", lambda p, **k: torch.optim.Adam([p], lr=0.05, **k), True),
    ("adamw", lambda p, **k: torch.optim.AdamW([p], lr=0.05, **k), True),
    ("adamax", lambda p, **k: torch.optim.Adamax([p], lr=0.05, **k), True),
    ("adagrad", lambda p, **k: torch.optim.Adagrad([p], lr=0.5, **k), True),
    ("rmsprop", lambda p, **k: torch.optim.RMSprop([p], lr=0.05, **k), True),
]
for name, make, _ in cases:
    for impl, extra in (("forloop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        try:
            opt = make(vector_param(), **extra)
            print(f"{name:<10} {impl:<22} {median_step(opt, repeats) * 1e3:8.2f} ms")
        except (RuntimeError, TypeError, ValueError):
            pass

paper = []
try:
    import adabound

    paper.append(("adabound", "adabound.AdaBound", lambda p: adabound.AdaBound([p], lr=0.05, final_lr=0.1)))
except ImportError:
    pass
try:
    import lion_pytorch

    paper.append(("lion", "lion_pytorch.Lion", lambda p: lion_pytorch.Lion([p], lr=0.03)))
except ImportError:
    pass
try:
    import heavyball

    heavyball.utils.compile_mode = None
    paper.append(("c-adamw", "heavyball.AdamW(caution)", lambda p: heavyball.AdamW([p], lr=0.05, caution=True)))
except (ImportError, AttributeError):
    pass
try:
    import pytorch_optimizer as po

    paper.append(("c-lion", "pytorch_optimizer.Lion(cautious)", lambda p: po.Lion([p], lr=0.03, cautious=True)))
    paper.append(("adagc", "pytorch_optimizer.AdaGC", lambda p: po.AdaGC([p], lr=0.05, warmup_steps=5)))
except ImportError:
    po = None
for name, label, make in paper:
    try:
        print(f"{name:<10} {label:<22} {median_step(make(vector_param()), repeats) * 1e3:8.2f} ms")
    except Exception as e:  # noqa: BLE001 - report and go on
        print(f"{name:<10} {label:<22} failed: {e}")

r = min(repeats, 7)
flops = 5 * 3 * 2 * dim**3
opt = torch.optim.Muon([matrix_param()], lr=0.02)
t = median_step(opt, r)
print(f"muon       torch.optim.Muon (bf16 NS)  {t * 1e3:8.2f} ms {flops / t / 1e9:7.1f} GFLOP/s")
import torch.optim._muon as _m  # noqa: E402

orig = _m._zeropower_via_newtonschulz


def ns_same_dtype(grad, coeffs, steps, eps):
    a, b, c = coeffs
    x = grad.clone()
    if grad.size(0) > grad.size(1):
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        g = x @ x.T
        h = torch.addmm(g, g, g, beta=b, alpha=c)
        x = torch.addmm(x, h, x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


_m._zeropower_via_newtonschulz = ns_same_dtype
opt = torch.optim.Muon([matrix_param()], lr=0.02)
t = median_step(opt, r)
print(f"muon       torch.optim.Muon (f32 NS)   {t * 1e3:8.2f} ms {flops / t / 1e9:7.1f} GFLOP/s")
_m._zeropower_via_newtonschulz = orig
if po is not None and hasattr(po, "AdaGO"):
    try:
        opt = po.AdaGO([{"params": [matrix_param()], "use_muon": True}], lr=0.5)
        t = median_step(opt, r)
        print(f"adago      pytorch_optimizer.AdaGO     {t * 1e3:8.2f} ms {flops / t / 1e9:7.1f} GFLOP/s")
    except Exception as e:  # noqa: BLE001
        print(f"adago      pytorch_optimizer.AdaGO     failed: {e}")
