//! Symmetric eigendecomposition and thin SVD for the matrix optimizers ASGO
//! (inverse square root of its preconditioner) and FRUGAL (the GaLore-style
//! projection), always in `f64` whatever the parameter's dtype.
//!
//! - [`sym_eig`]: faer's self-adjoint eigensolver (fused kernels) or a cyclic
//!   Jacobi iteration run to machine precision (reference kernels). The two
//!   agree to a few ulps of the largest eigenvalue; functions of the matrix
//!   (`V^{-1/2}`) do not depend on the eigenvectors' signs or on the basis
//!   chosen inside repeated eigenvalues.
//! - [`thin_svd`]: faer's thin SVD for both kernels, followed by a sign
//!   convention that makes the singular vectors unique for distinct singular
//!   values: each right singular vector `v_i` (row `i` of `Vᵀ`) is flipped,
//!   together with `u_i`, so that its entry of largest magnitude (the first
//!   such entry on ties) is positive. FRUGAL's projection uses one side only;
//!   the fixture generator applies the same convention to NumPy's SVD.

use crate::linalg::MatmulImpl;

/// Eigenvalues (ascending) and eigenvectors (row-major `d × d`, column `j` is
/// the eigenvector of eigenvalue `j`) of the symmetric row-major `d × d` matrix `a`.
/// `None` if the solver fails (non-finite input).
pub fn sym_eig(how: MatmulImpl, a: &[f64], d: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    if a.iter().any(|x| !x.is_finite()) {
        return None;
    }
    match how {
        MatmulImpl::Faer => {
            let m = faer::MatRef::from_row_major_slice(a, d, d);
            let e = m.self_adjoint_eigen(faer::Side::Lower).ok()?;
            let s = e.S().column_vector();
            let u = e.U();
            let vals: Vec<f64> = (0..d).map(|i| s[i]).collect();
            let mut vecs = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    vecs[i * d + j] = u[(i, j)];
                }
            }
            Some((vals, vecs))
        }
        MatmulImpl::Naive => Some(jacobi(a, d)),
    }
}

/// Cyclic Jacobi eigenvalue iteration (Golub & Van Loan, Algorithm 8.5.3),
/// sweeping until no off-diagonal element is above round-off of its diagonal.
fn jacobi(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    // Symmetrize: the caller's matrix is symmetric up to round-off.
    for i in 0..d {
        for j in 0..i {
            let s = 0.5 * (a[i * d + j] + a[j * d + i]);
            a[i * d + j] = s;
            a[j * d + i] = s;
        }
    }
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    for _sweep in 0..100 {
        let mut off = 0.0;
        for p in 0..d {
            for q in p + 1..d {
                off += a[p * d + q] * a[p * d + q];
            }
        }
        if off == 0.0 {
            break;
        }
        let mut rotated = false;
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                let (app, aqq) = (a[p * d + p], a[q * d + q]);
                if apq == 0.0 || apq.abs() <= f64::EPSILON * 1e-3 * (app.abs() * aqq.abs()).sqrt() {
                    continue;
                }
                rotated = true;
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    // Sort ascending, like faer.
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| a[i * d + i].total_cmp(&a[j * d + j]));
    let vals = order.iter().map(|&i| a[i * d + i]).collect();
    let mut vecs = vec![0.0; d * d];
    for (jn, &jo) in order.iter().enumerate() {
        for k in 0..d {
            vecs[k * d + jn] = v[k * d + jo];
        }
    }
    (vals, vecs)
}

/// `Q diag(f(λ)) Qᵀ` for an eigendecomposition `(λ, Q)` (row-major `d × d`).
pub fn matrix_function(vals: &[f64], vecs: &[f64], d: usize, f: impl Fn(f64) -> f64, out: &mut [f64]) {
    let fv: Vec<f64> = vals.iter().map(|&l| f(l)).collect();
    for i in 0..d {
        for j in 0..d {
            let mut s = 0.0;
            for k in 0..d {
                s += vecs[i * d + k] * fv[k] * vecs[j * d + k];
            }
            out[i * d + j] = s;
        }
    }
}

/// Thin SVD of the row-major `m × n` matrix `g`: `(U` row-major `m × k`, `σ`,
/// `Vᵀ` row-major `k × n)` with `k = min(m, n)`, σ descending, under the sign
/// convention of the module documentation. `None` if the solver fails.
pub fn thin_svd(g: &[f64], m: usize, n: usize) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    if g.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let k = m.min(n);
    let a = faer::MatRef::from_row_major_slice(g, m, n);
    let svd = a.thin_svd().ok()?;
    let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
    let mut uu = vec![0.0; m * k];
    let mut vt = vec![0.0; k * n];
    let sig: Vec<f64> = (0..k).map(|i| s[i]).collect();
    for i in 0..k {
        // Largest-magnitude entry of v_i (first on ties) made positive.
        let mut best = 0usize;
        for j in 0..n {
            if v[(j, i)].abs() > v[(best, i)].abs() {
                best = j;
            }
        }
        let flip = if n > 0 && v[(best, i)] < 0.0 { -1.0 } else { 1.0 };
        for j in 0..n {
            vt[i * n + j] = flip * v[(j, i)];
        }
        for r in 0..m {
            uu[r * k + i] = flip * u[(r, i)];
        }
    }
    Some((uu, sig, vt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_and_faer_agree() {
        let d = 5;
        let b: Vec<f64> = (0..d * 7)
            .map(|i| ((i * 37 % 11) as f64) - 5.0 + 0.1 * i as f64)
            .collect();
        let mut a = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                a[i * d + j] = (0..7).map(|k| b[i * 7 + k] * b[j * 7 + k]).sum();
            }
        }
        let (l1, q1) = sym_eig(MatmulImpl::Naive, &a, d).unwrap();
        let (l2, q2) = sym_eig(MatmulImpl::Faer, &a, d).unwrap();
        let top = l2[d - 1];
        for (x, y) in l1.iter().zip(&l2) {
            assert!((x - y).abs() <= 1e-13 * top, "{x} vs {y}");
        }
        let (mut r1, mut r2) = (vec![0.0; d * d], vec![0.0; d * d]);
        matrix_function(&l1, &q1, d, |l| 1.0 / l.sqrt(), &mut r1);
        matrix_function(&l2, &q2, d, |l| 1.0 / l.sqrt(), &mut r2);
        let scale = r2.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (x, y) in r1.iter().zip(&r2) {
            assert!((x - y).abs() <= 1e-11 * scale, "{x} vs {y}");
        }
        // A Q = Q Λ
        for j in 0..d {
            for i in 0..d {
                let aq: f64 = (0..d).map(|k| a[i * d + k] * q1[k * d + j]).sum();
                assert!((aq - l1[j] * q1[i * d + j]).abs() <= 1e-11 * top);
            }
        }
    }

    #[test]
    fn svd_reconstructs_with_sign_convention() {
        let (m, n) = (4, 3);
        let g: Vec<f64> = (0..m * n)
            .map(|i| ((i * 7 % 5) as f64) - 2.0 + 0.01 * (i * i) as f64)
            .collect();
        let (u, s, vt) = thin_svd(&g, m, n).unwrap();
        for i in 0..m {
            for j in 0..n {
                let r: f64 = (0..3).map(|k| u[i * 3 + k] * s[k] * vt[k * n + j]).sum();
                assert!((r - g[i * n + j]).abs() < 1e-12);
            }
        }
        for k in 0..3 {
            let row = &vt[k * n..(k + 1) * n];
            let big = row.iter().fold(0.0f64, |a, &x| if x.abs() > a.abs() { x } else { a });
            assert!(big > 0.0);
        }
    }
}
