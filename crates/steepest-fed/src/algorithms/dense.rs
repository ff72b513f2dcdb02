//! Small dense linear algebra for the problem simulators of FedPCA
//! ([`super::fedpca`]) and FA-LD ([`super::fald`]): row-major `f64` matrices,
//! a Householder thin QR, a cyclic Jacobi eigen-solver for symmetric
//! matrices, the SPD square root and the 2-Wasserstein distance between
//! Gaussians. steepest's `linalg` exposes only GEMM kernels and the nuclear
//! norm, so these are written here; all are for matrices of a few dozen rows.

/// `c = a·b` with `a` m×k and `b` k×n, all row-major.
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for l in 0..k {
            let ail = a[i * k + l];
            if ail == 0.0 {
                continue;
            }
            for j in 0..n {
                c[i * n + j] += ail * b[l * n + j];
            }
        }
    }
    c
}

/// `aᵀ·b` with `a` k×m and `b` k×n (result m×n).
pub fn matmul_tn(a: &[f64], b: &[f64], k: usize, m: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for l in 0..k {
        for i in 0..m {
            let ali = a[l * m + i];
            for j in 0..n {
                c[i * n + j] += ali * b[l * n + j];
            }
        }
    }
    c
}

/// Transpose of an m×n matrix.
pub fn transpose(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut t = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            t[j * m + i] = a[i * n + j];
        }
    }
    t
}

/// Identity n×n.
pub fn eye(n: usize) -> Vec<f64> {
    let mut e = vec![0.0; n * n];
    for i in 0..n {
        e[i * n + i] = 1.0;
    }
    e
}

/// Thin QR of an m×n matrix (m ≥ n) by Householder reflections: `Q` m×n with
/// orthonormal columns and `R` n×n upper triangular, signs chosen so that
/// `diag(R) ≥ 0` (the unique QR when `A` has full column rank).
pub fn qr_thin(a: &[f64], m: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    assert!(m >= n && a.len() == m * n, "qr_thin: need m >= n");
    let mut r = a.to_vec();
    let mut vs: Vec<Vec<f64>> = Vec::with_capacity(n);
    for k in 0..n {
        let mut v: Vec<f64> = (k..m).map(|i| r[i * n + k]).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            vs.push(vec![0.0; m - k]);
            continue;
        }
        let alpha = if v[0] >= 0.0 { -norm } else { norm };
        v[0] -= alpha;
        let vn = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for x in &mut v {
            *x /= vn;
        }
        for j in k..n {
            let dot: f64 = (k..m).map(|i| v[i - k] * r[i * n + j]).sum();
            for i in k..m {
                r[i * n + j] -= 2.0 * v[i - k] * dot;
            }
        }
        vs.push(v);
    }
    // Q = H_0 … H_{n−1} applied to the first n columns of I.
    let mut q = vec![0.0; m * n];
    for j in 0..n {
        q[j * n + j] = 1.0;
    }
    for k in (0..n).rev() {
        let v = &vs[k];
        for j in 0..n {
            let dot: f64 = (k..m).map(|i| v[i - k] * q[i * n + j]).sum();
            for i in k..m {
                q[i * n + j] -= 2.0 * v[i - k] * dot;
            }
        }
    }
    let mut rr = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            rr[i * n + j] = r[i * n + j];
        }
    }
    for k in 0..n {
        if rr[k * n + k] < 0.0 {
            for j in 0..n {
                rr[k * n + j] = -rr[k * n + j];
            }
            for i in 0..m {
                q[i * n + k] = -q[i * n + k];
            }
        }
    }
    (q, rr)
}

/// Eigen-decomposition of a symmetric n×n matrix by cyclic Jacobi rotations:
/// eigenvalues in decreasing order and the matrix whose *columns* are the
/// matching unit eigenvectors (row-major n×n). Sweeps until the off-diagonal
/// mass is below 1e-30 relative to the total, at most 100 sweeps.
pub fn sym_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut s = a.to_vec();
    let mut v = eye(n);
    let total: f64 = s.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += s[p * n + q] * s[p * n + q];
            }
        }
        if off <= 1e-30 * total {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = s[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (s[q * n + q] - s[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let sn = t * c;
                for k in 0..n {
                    let skp = s[k * n + p];
                    let skq = s[k * n + q];
                    s[k * n + p] = c * skp - sn * skq;
                    s[k * n + q] = sn * skp + c * skq;
                }
                for k in 0..n {
                    let spk = s[p * n + k];
                    let sqk = s[q * n + k];
                    s[p * n + k] = c * spk - sn * sqk;
                    s[q * n + k] = sn * spk + c * sqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - sn * vkq;
                    v[k * n + q] = sn * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| s[j * n + j].total_cmp(&s[i * n + i]).then(i.cmp(&j)));
    let vals: Vec<f64> = order.iter().map(|&i| s[i * n + i]).collect();
    let mut vecs = vec![0.0; n * n];
    for (newj, &j) in order.iter().enumerate() {
        for k in 0..n {
            vecs[k * n + newj] = v[k * n + j];
        }
    }
    (vals, vecs)
}

/// `f(A) = V f(Λ) Vᵀ` for a symmetric A (eigenvalues clamped at 0 first).
fn sym_apply(a: &[f64], n: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let (vals, vecs) = sym_eigen(a, n);
    let mut out = vec![0.0; n * n];
    for (k, &lam) in vals.iter().enumerate() {
        let fl = f(lam.max(0.0));
        for i in 0..n {
            let vik = vecs[i * n + k] * fl;
            for j in 0..n {
                out[i * n + j] += vik * vecs[j * n + k];
            }
        }
    }
    out
}

/// Square root of a symmetric positive semi-definite matrix.
pub fn sqrtm_psd(a: &[f64], n: usize) -> Vec<f64> {
    sym_apply(a, n, f64::sqrt)
}

/// 2-Wasserstein distance between `N(m1, s1)` and `N(m2, s2)`:
/// `W₂² = ‖m1 − m2‖² + tr(s1 + s2 − 2 (s2^{1/2} s1 s2^{1/2})^{1/2})`.
pub fn w2_gaussian(m1: &[f64], s1: &[f64], m2: &[f64], s2: &[f64]) -> f64 {
    let n = m1.len();
    let dm: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b) * (a - b)).sum();
    let r2 = sqrtm_psd(s2, n);
    let mid = matmul(&matmul(&r2, s1, n, n, n), &r2, n, n, n);
    let sym: Vec<f64> = (0..n * n).map(|k| 0.5 * (mid[k] + mid[(k % n) * n + k / n])).collect();
    let cross = sqrtm_psd(&sym, n);
    let tr = (0..n)
        .map(|i| s1[i * n + i] + s2[i * n + i] - 2.0 * cross[i * n + i])
        .sum::<f64>();
    (dm + tr).max(0.0).sqrt()
}

/// Sample mean and (1/(n−1)) covariance of row vectors of length `d`.
pub fn sample_moments(samples: &[Vec<f64>], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = samples.len() as f64;
    let mut mean = vec![0.0; d];
    for s in samples {
        for (m, x) in mean.iter_mut().zip(s) {
            *m += x;
        }
    }
    for m in &mut mean {
        *m /= n;
    }
    let mut cov = vec![0.0; d * d];
    for s in samples {
        for i in 0..d {
            let di = s[i] - mean[i];
            for j in 0..d {
                cov[i * d + j] += di * (s[j] - mean[j]);
            }
        }
    }
    for c in &mut cov {
        *c /= (n - 1.0).max(1.0);
    }
    (mean, cov)
}
