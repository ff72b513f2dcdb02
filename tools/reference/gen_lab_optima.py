"""Exact optima of the lab's logistic-regression workloads, from scikit-learn.

The lab (crates/steepest-lab) solves L2-regularized multinomial logistic
regression with its own Newton method:

    f(W, b) = mean_i CE(softmax(W x_i + b), y_i) + (l2/2) ||W||_F^2

on z-scored features (population standard deviation), intercept unpenalized.
This script solves the same problems with scikit-learn's lbfgs to a tight
tolerance, evaluates f at sklearn's solution with the formula above, and
writes fixtures/lab/optima.json; crates/steepest-lab/tests/optima.rs checks
that Newton's optimum is at least as low and agrees to 1e-9 relative.

Binary problems: sklearn fits one weight vector w (sigmoid). The lab's
2-class softmax with penalty (l2/2)(|W0|^2+|W1|^2) has W1 = -W0 at the
optimum, so it equals the sigmoid model w = W1 - W0 with penalty (l2/4)|w|^2,
i.e. sklearn's C = 2/(n*l2).

Run: /tmp/refvenv/bin/python tools/reference/gen_lab_optima.py
"""
import csv, gzip, json, os, sys
import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data")


def load_csv(name):
    rows = []
    with open(os.path.join(DATA, name)) as f:
        for i, line in enumerate(csv.reader(f)):
            try:
                vals = [float(v) for v in line]
            except ValueError:
                continue
            rows.append(vals)
    # scikit-learn's header line (n_samples, n_features, names) has a different width.
    width = len(rows[-1])
    rows = [r for r in rows if len(r) == width]
    a = np.array(rows)
    return a[:, :-1], a[:, -1]


def load_libsvm(name):
    xs, ys, d = [], [], 0
    for line in open(os.path.join(DATA, name)):
        parts = line.split()
        if not parts:
            continue
        ys.append(float(parts[0]))
        row = {}
        for tok in parts[1:]:
            i, v = tok.split(":")
            row[int(i) - 1] = float(v)
            d = max(d, int(i))
        xs.append(row)
    x = np.zeros((len(xs), d))
    for r, row in enumerate(xs):
        for i, v in row.items():
            x[r, i] = v
    return x, np.array(ys)


def objective(x, y, l2, w, b):
    z = x @ w.T + b
    zmax = z.max(axis=1, keepdims=True)
    lse = (zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1)))
    ce = lse - z[np.arange(len(y)), y]
    return ce.mean() + 0.5 * l2 * (w ** 2).sum()


def solve(x, y, l2):
    n = len(y)
    classes = np.unique(y)
    yi = np.searchsorted(classes, y)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    x[:, x.std(axis=0) == 0] = 0.0
    k = len(classes)
    if k == 2:
        m = LogisticRegression(C=2.0 / (n * l2), tol=1e-14, max_iter=1000000, solver="lbfgs")
        m.fit(x, yi)
        w1 = m.coef_[0] / 2
        w = np.stack([-w1, w1])
        b = np.array([-m.intercept_[0] / 2, m.intercept_[0] / 2])
    else:
        m = LogisticRegression(C=1.0 / (n * l2), tol=1e-14, max_iter=1000000, solver="lbfgs")
        m.fit(x, yi)
        w, b = m.coef_, m.intercept_
    return objective(x, yi, l2, w, b)


def main():
    out = []
    for name, loader, file, l2 in [
        ("breast-cancer", load_csv, "breast_cancer.csv", 1e-2),
        ("heart-scale", load_libsvm, "heart_scale", 1e-2),
        ("digits", load_csv, "digits.csv", 1e-3),
        ("wine", load_csv, "wine_data.csv", 1e-2),
        ("breast-cancer", load_csv, "breast_cancer.csv", 1e-4),
    ]:
        x, y = loader(file)
        f = solve(x, y, l2)
        out.append({"dataset": name, "l2": l2, "f_star_sklearn": f})
        print(f"{name:14s} l2={l2:g}  f* = {f:.15f}")
    path = os.path.join(ROOT, "fixtures", "lab", "optima.json")
    with open(path, "w") as fh:
        json.dump({"generator": "tools/reference/gen_lab_optima.py", "sklearn": __import__("sklearn").__version__, "cases": out}, fh, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    sys.exit(main())
