"""Flower's simulation on steepest-fed's speed workload, for the side-by-side
client-updates-per-second comparison (tools/bench/fed_speed.sh runs both).

Workload (same as `cargo run --release -p steepest-fed --example fed_bench`):
multinomial logistic regression on a Gaussian mixture, d = 20 features,
C = 10 classes, 1,000 clients × 50 samples (IID), each round 100 clients
(fraction_fit = 0.1) run 5 local SGD steps (batch 16, lr 0.1) in NumPy;
FedAvg aggregation. The clients are NumPy (no torch), so Flower's cost is its
own machinery (Ray actors, message serialisation), not the model.

Flower runs with `flwr.simulation.run_simulation` (Ray backend) — the
framework's documented simulation path. Needs `pip install "flwr[simulation]"`
in a throw-away venv. Prints one JSON line:
{"rounds", "updates", "wall_s", "steady_updates_per_s", "total_updates_per_s"}.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, ndarrays_to_parameters
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation

D, C, PER_CLIENT, STEPS, BATCH, LR = 20, 10, 50, 5, 16, 0.1


def client_data(cid: int, seed: int):
    rng = np.random.default_rng(seed)
    means = 0.6 * rng.normal(size=(C, D))
    r = np.random.default_rng(seed * 100003 + cid + 1)
    y = r.integers(0, C, size=PER_CLIENT)
    x = means[y] + r.normal(size=(PER_CLIENT, D))
    return x, y


class LogRegClient(NumPyClient):
    def __init__(self, cid: int, seed: int):
        self.x, self.y = client_data(cid, seed)
        self.rng = np.random.default_rng(cid)

    def fit(self, parameters, config):
        w, b = (np.array(p, dtype=np.float64) for p in parameters)
        for _ in range(STEPS):
            idx = self.rng.integers(0, len(self.y), size=BATCH)
            xb, yb = self.x[idx], self.y[idx]
            z = xb @ w.T + b
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(BATCH), yb] -= 1.0
            p /= BATCH
            w -= LR * (p.T @ xb)
            b -= LR * p.sum(axis=0)
        return [w, b], len(self.y), {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpus-per-client", type=float, default=1.0)
    a = ap.parse_args()
    stamps: list[float] = []

    class TimedFedAvg(FedAvg):
        def aggregate_fit(self, server_round, results, failures):
            out = super().aggregate_fit(server_round, results, failures)
            stamps.append((time.perf_counter(), len(results)))
            return out

    def server_fn(context: Context):
        init = ndarrays_to_parameters([np.zeros((C, D)), np.zeros(C)])
        strategy = TimedFedAvg(fraction_fit=a.fraction, fraction_evaluate=0.0, min_fit_clients=1,
                               min_evaluate_clients=0, min_available_clients=a.clients,
                               initial_parameters=init)
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=a.rounds))

    def client_fn(context: Context):
        cid = int(context.node_config["partition-id"])
        return LogRegClient(cid, a.seed).to_client()

    t0 = time.perf_counter()
    run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                   num_supernodes=a.clients,
                   backend_config={"client_resources": {"num_cpus": a.cpus_per_client, "num_gpus": 0.0}})
    wall = time.perf_counter() - t0
    updates = sum(n for _, n in stamps)
    steady = (sum(n for _, n in stamps[1:]) / (stamps[-1][0] - stamps[0][0])) if len(stamps) > 1 else float("nan")
    print(json.dumps({"framework": f"flwr", "rounds": len(stamps), "updates": updates, "wall_s": wall,
                      "steady_updates_per_s": steady, "total_updates_per_s": updates / wall}))


if __name__ == "__main__":
    main()
