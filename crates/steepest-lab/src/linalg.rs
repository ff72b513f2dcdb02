//! Small dense f64 linear algebra for the lab's exact solvers and metrics
//! (sizes in the hundreds): Cholesky solves and singular values by the
//! cyclic Jacobi eigenvalue method on the Gram matrix.

/// Solves `A x = b` for a symmetric positive definite `n × n` matrix `A`
/// (row-major) by Cholesky; `None` when `A` is not positive definite.
pub fn cholesky_solve(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * n + i];
    }
    Some(x)
}

/// Eigenvalues of a symmetric `n × n` matrix (cyclic Jacobi; unsorted).
pub fn sym_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j].powi(2))
            .sum();
        let diag: f64 = (0..n).map(|i| m[i * n + i].powi(2)).sum();
        if off <= 1e-30 * diag.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * akp - s * akq;
                    m[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * apk - s * aqk;
                    m[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| m[i * n + i]).collect()
}

/// Singular values of a row-major `rows × cols` matrix (from the Gram matrix
/// of the smaller side; accurate to ~1e-8 relative of the largest, enough for metrics).
pub fn singular_values(g: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let (k, gram) = if rows <= cols {
        let mut s = vec![0.0; rows * rows];
        for i in 0..rows {
            for j in 0..rows {
                s[i * rows + j] = (0..cols).map(|c| g[i * cols + c] * g[j * cols + c]).sum();
            }
        }
        (rows, s)
    } else {
        let mut s = vec![0.0; cols * cols];
        for i in 0..cols {
            for j in 0..cols {
                s[i * cols + j] = (0..rows).map(|r| g[r * cols + i] * g[r * cols + j]).sum();
            }
        }
        (cols, s)
    };
    sym_eigenvalues(&gram, k)
        .into_iter()
        .map(|l| l.max(0.0).sqrt())
        .collect()
}

/// Nuclear norm (sum of singular values).
pub fn nuclear_norm(g: &[f64], rows: usize, cols: usize) -> f64 {
    singular_values(g, rows, cols).iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_and_rejects_indefinite() {
        let a = [4.0, 1.0, 1.0, 3.0];
        let x = cholesky_solve(&a, &[1.0, 2.0], 2).unwrap();
        assert!((4.0 * x[0] + x[1] - 1.0).abs() < 1e-14 && (x[0] + 3.0 * x[1] - 2.0).abs() < 1e-14);
        assert!(cholesky_solve(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn singular_values_of_known_matrices() {
        // diag(3, 2) embedded in 2×3, and its transpose.
        let g = [3.0, 0.0, 0.0, 0.0, -2.0, 0.0];
        let mut s = singular_values(&g, 2, 3);
        s.sort_by(|a, b| b.total_cmp(a));
        assert!((s[0] - 3.0).abs() < 1e-12 && (s[1] - 2.0).abs() < 1e-12);
        let gt = [3.0, 0.0, 0.0, -2.0, 0.0, 0.0];
        assert!((nuclear_norm(&gt, 3, 2) - 5.0).abs() < 1e-12);
        // Rank one: u vᵀ has one singular value |u||v|.
        let u = [1.0, 2.0, 2.0];
        let v = [3.0, 4.0];
        let g: Vec<f64> = u.iter().flat_map(|a| v.iter().map(move |b| a * b)).collect();
        assert!((nuclear_norm(&g, 3, 2) - 15.0).abs() < 1e-9);
    }
}
