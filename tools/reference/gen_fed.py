"""Golden fixtures for steepest-fed's aggregation, from Flower's own strategies.

Run with a throw-away venv that has Flower (never needed by CI or the tests):

    python3 -m venv /tmp/flwrvenv && /tmp/flwrvenv/bin/pip install flwr numpy
    /tmp/flwrvenv/bin/python tools/reference/gen_fed.py

Each case builds one of Flower's strategies (`flwr.server.strategy`) with the
case's options and calls its `aggregate_fit(server_round, results, failures)`
for several rounds on random client models (drawn around the current global
model, random `num_examples`, several tensor shapes), feeding each round's
output back as the next round's global model exactly as Flower's server does.
The fixture stores the inputs and Flower's output after every round, as f64
JSON (Python's repr round-trips). `crates/steepest-fed/tests/flower_goldens.rs`
replays them without Flower. Conventions: fed_semantics.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import flwr
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import strategy as fs

OUT = Path(__file__).resolve().parents[2] / "fixtures" / "fed"

SHAPES = [[3, 4], [5], [2, 2, 3]]


def fit_res(arrs, n):
    return FitRes(status=Status(code=Code.OK, message=""), parameters=ndarrays_to_parameters(arrs),
                  num_examples=int(n), metrics={})


def make(name, opts, init):
    p0 = ndarrays_to_parameters(init)
    if name == "fedavg":
        return fs.FedAvg(**opts)
    if name == "fedavg-noinplace":
        return fs.FedAvg(inplace=False, **opts)
    if name == "fedavgm":
        return fs.FedAvgM(initial_parameters=p0, **opts)
    if name == "fedadam":
        return fs.FedAdam(initial_parameters=p0, **opts)
    if name == "fedyogi":
        return fs.FedYogi(initial_parameters=p0, **opts)
    if name == "fedadagrad":
        return fs.FedAdagrad(initial_parameters=p0, **opts)
    if name == "median":
        return fs.FedMedian(**opts)
    if name == "trimmed-mean":
        return fs.FedTrimmedAvg(**opts)
    if name in ("krum", "multi-krum"):
        return fs.Krum(initial_parameters=p0, **opts)
    raise ValueError(name)


def case(name, strategy, opts, seed, clients, rounds, spread=1.0, outliers=0):
    rng = np.random.default_rng(seed)
    glob = [rng.normal(size=s) for s in SHAPES]
    st = make(strategy, opts, glob)
    out_rounds = []
    for r in range(1, rounds + 1):
        ids = sorted(rng.choice(100, size=clients, replace=False).tolist())
        res, inp = [], []
        for k, cid in enumerate(ids):
            arrs = [g + spread * rng.normal(size=g.shape) for g in glob]
            if k < outliers:
                arrs = [a * 25.0 + 10.0 for a in arrs]
            n = int(rng.integers(1, 200))
            res.append((None, fit_res(arrs, n)))
            inp.append({"client": cid, "num_examples": n, "tensors": [a.ravel().tolist() for a in arrs]})
        failures = [RuntimeError("client 999 dropped")] if r % 2 == 0 else []
        params, _ = st.aggregate_fit(r, res, failures)
        new = parameters_to_ndarrays(params)
        out_rounds.append({
            "round": r,
            "global": [g.ravel().tolist() for g in glob],
            "results": inp,
            "failures": len(failures),
            "expected": [a.ravel().tolist() for a in new],
        })
        glob = [np.asarray(a, dtype=np.float64).reshape(s) for a, s in zip(new, SHAPES)]
    doc = {"name": name, "strategy": strategy, "options": opts, "shapes": SHAPES, "flwr": flwr.__version__,
           "rounds": out_rounds}
    (OUT / f"{name}.json").write_text(json.dumps(doc))
    return name


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    names = [
        case("fedavg", "fedavg", {}, 1, 6, 3),
        case("fedavg_noinplace", "fedavg-noinplace", {}, 2, 5, 3),
        case("fedavgm", "fedavgm", {"server_learning_rate": 0.7, "server_momentum": 0.9}, 3, 5, 5),
        case("fedavgm_lr_only", "fedavgm", {"server_learning_rate": 1.5}, 4, 4, 3),
        case("fedadam", "fedadam", {}, 5, 5, 6),
        case("fedadam_custom", "fedadam", {"eta": 0.03, "beta_1": 0.8, "beta_2": 0.95, "tau": 1e-3}, 6, 7, 6),
        case("fedyogi", "fedyogi", {}, 7, 5, 6),
        case("fedyogi_custom", "fedyogi", {"eta": 0.05, "beta_1": 0.5, "beta_2": 0.9, "tau": 1e-2}, 8, 6, 6),
        case("fedadagrad", "fedadagrad", {}, 9, 5, 6),
        case("fedadagrad_custom", "fedadagrad", {"eta": 0.3, "tau": 1e-3}, 10, 4, 6),
        case("median_odd", "median", {}, 11, 7, 3, outliers=2),
        case("median_even", "median", {}, 12, 8, 3, outliers=3),
        case("trimmed_mean", "trimmed-mean", {}, 13, 10, 3, outliers=2),
        case("trimmed_mean_beta", "trimmed-mean", {"beta": 0.3}, 14, 9, 3, outliers=2),
        case("krum", "krum", {"num_malicious_clients": 2}, 15, 9, 3, outliers=2),
        case("krum_f0", "krum", {}, 16, 5, 3),
        case("multi_krum", "krum", {"num_malicious_clients": 2, "num_clients_to_keep": 4}, 17, 10, 3, outliers=2),
    ]
    print(f"wrote {len(names)} cases to {OUT} (flwr {flwr.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
