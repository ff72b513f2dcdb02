#!/usr/bin/env python3
"""Side-by-side step times: steepest vs PyTorch (default, foreach, fused) and
the Python reference packages of the paper optimizers, on the same machine in
the same run.

    python tools/bench/compare_torch.py [--numel N] [--threads 1,2] [--rounds 3]
        [--repeats 15] [--steepest target/release/steepest] [--ns 1024x1024,2048x512]
        [--no-paper] [--no-thp] [--json results.json]

Each measurement runs in its own process (steepest via `steepest perf --json`,
PyTorch via this script's worker mode), and the rounds interleave them, so
slow drifts of a noisy machine hit every contender alike. A cell is the
median over rounds of each process's median step time. PyTorch runs twice:
as it comes, and with THP_MEM_ALLOC_ENABLE=1 (its allocator's opt-in to
transparent huge pages, which steepest uses for large buffers by default).

Needs torch (and optionally lion-pytorch, adabound, heavyball,
pytorch-optimizer) in the Python that runs it; see tools/reference/README.md.
Build steepest first: cargo build --release -p steepest-cli
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# (steepest name, steepest hyper, torch variants) for the elementwise classics.
CLASSIC = [
    ("adamw", {"lr": 1e-3}, "AdamW", {"lr": 1e-3}),
    ("adam", {"lr": 1e-3}, "Adam", {"lr": 1e-3}),
    ("sgd", {"lr": 1e-3, "momentum": 0.9}, "SGD", {"lr": 1e-3, "momentum": 0.9}),
    ("adagrad", {"lr": 1e-2}, "Adagrad", {"lr": 1e-2}),
    ("rmsprop", {"lr": 1e-3}, "RMSprop", {"lr": 1e-3}),
    ("adamax", {"lr": 1e-3}, "Adamax", {"lr": 1e-3}),
]
# (steepest name, steepest hyper, reference label) for the paper optimizers.
PAPER = [
    ("lion", {"lr": 1e-4}, "lion_pytorch.Lion"),
    ("adabound", {"lr": 1e-3}, "adabound.AdaBound"),
    ("c-adamw", {"lr": 1e-3}, "heavyball.AdamW(caution)"),
    ("c-lion", {"lr": 1e-4}, "pytorch_optimizer.Lion(cautious)"),
    ("adagc", {"lr": 1e-3}, "pytorch_optimizer.AdaGC"),
    ("aegd", {"lr": 0.1}, "torchzero AEGD"),
]


# ---------------------------------------------------------------- torch worker
def worker(args):
    import torch

    torch.set_num_threads(args.threads_one)
    n, reps = args.numel, args.repeats
    out = {}

    def vector_param():
        p = torch.nn.Parameter(((torch.arange(n) % 89).float() - 44.0) * 1e-3)
        p.grad = ((torch.arange(n) % 97).float() - 48.0) * 1e-3
        return p

    def median_step(opt, closure=None):
        params = [p for g in opt.param_groups for p in g["params"]]
        grads = [p.grad for p in params]

        def restore():
            for p, g in zip(params, grads):
                p.grad = g

        restore()
        opt.step(closure) if closure else opt.step()
        ts = []
        for _ in range(reps):
            restore()
            t = time.perf_counter()
            opt.step(closure) if closure else opt.step()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1e3

    for name, _, cls, kw in CLASSIC:
        for impl, extra in (("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
            try:
                out[f"{name}/{impl}"] = median_step(getattr(torch.optim, cls)([vector_param()], **kw, **extra))
            except (RuntimeError, TypeError, ValueError):
                pass
    if args.paper:
        makers = {}
        try:
            import lion_pytorch

            makers["lion"] = lambda p: lion_pytorch.Lion([p], lr=1e-4)
        except ImportError:
            pass
        try:
            import adabound

            makers["adabound"] = lambda p: adabound.AdaBound([p], lr=1e-3)
        except ImportError:
            pass
        try:
            import heavyball

            heavyball.utils.compile_mode = None
            makers["c-adamw"] = lambda p: heavyball.AdamW([p], lr=1e-3, caution=True)
        except (ImportError, AttributeError):
            pass
        try:
            import pytorch_optimizer as po

            makers["c-lion"] = lambda p: po.Lion([p], lr=1e-4, cautious=True)
            makers["adagc"] = lambda p: po.AdaGC([p], lr=1e-3)
        except ImportError:
            pass
        for name, make in makers.items():
            try:
                out[f"{name}/reference"] = median_step(make(vector_param()))
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"{name}: {e}", file=sys.stderr)
        try:
            import torchzero as tz

            p = vector_param()
            opt = tz.Modular([p], tz.m.AEGD(lr=0.1))

            def closure(backward=True):
                return torch.tensor(1.0)

            out["aegd/reference"] = median_step(opt, closure)
        except Exception as e:  # noqa: BLE001
            print(f"aegd: {e}", file=sys.stderr)

    def ns(x, steps=5, eps=1e-7):
        # The quintic Newton–Schulz iteration in float32 (Muon's, written from its formula).
        a, b, c = 3.4445, -4.7750, 2.0315
        tall = x.size(0) > x.size(1)
        if tall:
            x = x.T
        x = x / x.norm().clamp(min=eps)
        for _ in range(steps):
            g = x @ x.T
            h = torch.addmm(g, g, g, beta=b, alpha=c)
            x = torch.addmm(x, h, x, beta=a)
        return x.T if tall else x

    for shape in args.ns_shapes:
        r, c = shape
        g = (((torch.arange(r * c) % 89).float() - 44.0) * 1e-3).reshape(r, c)
        ns(g)
        ts = []
        for _ in range(max(3, reps // 2)):
            t = time.perf_counter()
            ns(g)
            ts.append(time.perf_counter() - t)
        out[f"ns/{r}x{c}"] = statistics.median(ts) * 1e3
    print(json.dumps(out))


# ---------------------------------------------------------------- orchestration
def run_torch(args, threads, thp):
    env = dict(os.environ)
    if thp:
        env["THP_MEM_ALLOC_ENABLE"] = "1"
    else:
        env.pop("THP_MEM_ALLOC_ENABLE", None)
    cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--numel", str(args.numel),
           "--repeats", str(args.repeats), "--ns", args.ns] + ([] if args.paper else ["--no-paper"])
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_steepest(args, threads):
    out = {}
    base = [args.steepest, "perf", "--numel", str(args.numel), "--threads", str(threads),
            "--repeats", str(args.repeats), "--json"]
    cases = [(n, h) for n, h, _, _ in CLASSIC] + ([(n, h) for n, h, _ in PAPER] if args.paper else [])
    for name, hyper in cases:
        for policy in ("error", "unchecked"):
            r = json.loads(subprocess.run(base + ["--optimizer", name, "--hyper", json.dumps(hyper),
                                                  "--nonfinite", policy],
                                          capture_output=True, text=True, check=True).stdout)
            out[f"{name}/{policy}"] = r["step_ms"]
            out[f"{name}/{policy}/twin"] = r["twin_ms"]
    for r, c in args.ns_shapes:
        res = json.loads(subprocess.run([args.steepest, "perf", "--newton-schulz", f"{r}x{c}", "--threads",
                                         str(threads), "--repeats", str(max(3, args.repeats // 2)), "--json"],
                                        capture_output=True, text=True, check=True).stdout)
        out[f"ns/{r}x{c}"] = res["ms"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numel", type=int, default=1 << 24)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steepest", default="target/release/steepest")
    ap.add_argument("--ns", default="1024x1024,2048x512")
    ap.add_argument("--no-paper", dest="paper", action="store_false")
    ap.add_argument("--no-thp", dest="thp", action="store_false")
    ap.add_argument("--json", help="write all medians here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.ns_shapes = [tuple(int(v) for v in s.split("x")) for s in args.ns.split(",") if s]
    if args.worker:
        args.threads_one = int(args.threads)
        return worker(args)
    if not os.path.exists(args.steepest):
        sys.exit(f"{args.steepest} not found: cargo build --release -p steepest-cli")
    results = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        rounds = {"steepest": [], "torch": [], "torch+thp": []}
        for i in range(args.rounds):
            print(f"threads {threads}, round {i + 1}/{args.rounds}", file=sys.stderr)
            rounds["steepest"].append(run_steepest(args, threads))
            rounds["torch"].append(run_torch(args, threads, False))
            if args.thp:
                rounds["torch+thp"].append(run_torch(args, threads, True))
        med = {}
        for who, rs in rounds.items():
            for k in sorted({k for r in rs for k in r}):
                vals = [r[k] for r in rs if k in r]
                med[f"{who}:{k}"] = statistics.median(vals)
        results[threads] = med
        report(args, threads, med)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


def report(args, threads, m):
    def g(k):
        return m.get(k)

    def ms(v):
        return "–" if v is None else f"{v:.2f}"

    def ratio(a, b):
        return "–" if a is None or b is None else f"{a / b:.2f}"

    print(f"\n## {args.numel:,} f32 parameters, one tensor, {threads} thread(s); medians of {args.rounds} rounds"
          f" × {args.repeats} steps, ms\n")
    print("| optimizer | steepest | steepest unchecked | twin | step/twin | torch default | torch foreach "
          "| torch fused | torch fused +THP | steepest ÷ torch fused | unchecked ÷ torch fused |")
    print("|---" * 11 + "|")
    for name, *_ in CLASSIC:
        s, u, tw = g(f"steepest:{name}/error"), g(f"steepest:{name}/unchecked"), g(f"steepest:{name}/unchecked/twin")
        fused = g(f"torch:{name}/fused")
        print(f"| {name} | {ms(s)} | {ms(u)} | {ms(tw)} | {ratio(tw, u)} | {ms(g(f'torch:{name}/default'))} "
              f"| {ms(g(f'torch:{name}/foreach'))} | {ms(fused)} | {ms(g(f'torch+thp:{name}/fused'))} "
              f"| {ratio(s, fused)} | {ratio(u, fused)} |")
    if args.paper:
        print("\n| optimizer | steepest | steepest unchecked | twin | unchecked/twin | Python reference "
              "| reference ms | speed-up | unchecked speed-up |")
        print("|---" * 9 + "|")
        for name, _, label in PAPER:
            s, u = g(f"steepest:{name}/error"), g(f"steepest:{name}/unchecked")
            tw, ref = g(f"steepest:{name}/unchecked/twin"), g(f"torch:{name}/reference")
            print(f"| {name} | {ms(s)} | {ms(u)} | {ms(tw)} | {ratio(tw, u)} | {label} | {ms(ref)} "
                  f"| {ratio(ref, s)}× | {ratio(ref, u)}× |")
    print("\n| Newton–Schulz, 5 steps f32 | steepest (faer) | torch (MKL) | steepest ÷ torch |")
    print("|---|---|---|---|")
    for r, c in args.ns_shapes:
        s, t = g(f"steepest:ns/{r}x{c}"), g(f"torch:ns/{r}x{c}")
        print(f"| {r}×{c} | {ms(s)} | {ms(t)} | {ratio(s, t)} |")


if __name__ == "__main__":
    main()
