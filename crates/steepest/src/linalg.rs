//! Dense matrix products for matrix optimizers (Muon, AdaGO): a plain triple
//! loop as the reference and faer's GEMM (blocked, SIMD, parallel) as the fast path.
//!
//! Matrices are row-major slices. faer parallelizes over blocks of the output,
//! never over the inner dimension, so each output element is summed in an
//! order that does not depend on the thread count.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Which implementation computes a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulImpl {
    /// Triple loop, `k` innermost, ascending: the readable ground truth.
    Naive,
    /// faer's GEMM on the rayon pool.
    Faer,
}

/// `C = beta·C + alpha·op(A)·op(B)` on row-major buffers, where `op(X)` is `X`
/// or `Xᵀ`. `A` is stored `ar × ac` and `B` is stored `br × bc`; with
/// `beta = 0` the old contents of `C` are ignored (even if NaN).
pub trait Gemm: Sized + Copy {
    /// See the trait documentation.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        how: MatmulImpl,
        c: &mut [Self],
        beta: Self,
        alpha: Self,
        a: &[Self],
        a_shape: (usize, usize),
        ta: bool,
        b: &[Self],
        b_shape: (usize, usize),
        tb: bool,
    );

    /// [`Gemm::gemm`] for a square result known to be symmetric (`X Xᵀ`, or
    /// `A A` for a symmetric `A`) into a symmetric `C`: only the lower
    /// triangle is computed, then mirrored, which halves the work and makes
    /// the result exactly symmetric.
    #[allow(clippy::too_many_arguments)]
    fn gemm_symmetric(
        how: MatmulImpl,
        c: &mut [Self],
        beta: Self,
        alpha: Self,
        a: &[Self],
        a_shape: (usize, usize),
        ta: bool,
        b: &[Self],
        b_shape: (usize, usize),
        tb: bool,
    );
}

/// Copies the strict lower triangle of the row-major `n × n` matrix `c` onto its upper one.
fn mirror_lower<T: Copy>(c: &mut [T], n: usize) {
    for i in 0..n {
        for j in 0..i {
            c[j * n + i] = c[i * n + j];
        }
    }
}

macro_rules! impl_gemm {
    ($t:ty) => {
        impl Gemm for $t {
            fn gemm(
                how: MatmulImpl,
                c: &mut [$t],
                beta: $t,
                alpha: $t,
                a: &[$t],
                (ar, ac): (usize, usize),
                ta: bool,
                b: &[$t],
                (br, bc): (usize, usize),
                tb: bool,
            ) {
                let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
                let n = if tb { br } else { bc };
                debug_assert_eq!(if tb { bc } else { br }, k);
                debug_assert_eq!(c.len(), m * n);
                if beta == 0.0 {
                    c.iter_mut().for_each(|x| *x = 0.0);
                } else if beta != 1.0 {
                    c.iter_mut().for_each(|x| *x *= beta);
                }
                if m == 0 || n == 0 || k == 0 {
                    return;
                }
                match how {
                    MatmulImpl::Naive => {
                        let at = |i: usize, p: usize| if ta { a[p * ac + i] } else { a[i * ac + p] };
                        let bt = |p: usize, j: usize| if tb { b[j * bc + p] } else { b[p * bc + j] };
                        for i in 0..m {
                            for j in 0..n {
                                let mut s: $t = 0.0;
                                for p in 0..k {
                                    s += at(i, p) * bt(p, j);
                                }
                                c[i * n + j] += alpha * s;
                            }
                        }
                    }
                    MatmulImpl::Faer => {
                        let a = MatRef::from_row_major_slice(a, ar, ac);
                        let b = MatRef::from_row_major_slice(b, br, bc);
                        let a = if ta { a.transpose() } else { a };
                        let b = if tb { b.transpose() } else { b };
                        let c = MatMut::from_row_major_slice_mut(c, m, n);
                        let par = if m * n * k >= 1 << 18 && rayon::current_num_threads() > 1 {
                            Par::rayon(0)
                        } else {
                            Par::Seq
                        };
                        matmul(c, Accum::Add, a, b, alpha, par);
                    }
                }
            }

            fn gemm_symmetric(
                how: MatmulImpl,
                c: &mut [$t],
                beta: $t,
                alpha: $t,
                a: &[$t],
                (ar, ac): (usize, usize),
                ta: bool,
                b: &[$t],
                (br, bc): (usize, usize),
                tb: bool,
            ) {
                let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
                let n = if tb { br } else { bc };
                debug_assert_eq!(m, n, "a symmetric product is square");
                debug_assert_eq!(c.len(), m * n);
                if beta == 0.0 {
                    c.iter_mut().for_each(|x| *x = 0.0);
                } else if beta != 1.0 {
                    c.iter_mut().for_each(|x| *x *= beta);
                }
                if m == 0 || k == 0 {
                    return;
                }
                match how {
                    MatmulImpl::Naive => {
                        let at = |i: usize, p: usize| if ta { a[p * ac + i] } else { a[i * ac + p] };
                        let bt = |p: usize, j: usize| if tb { b[j * bc + p] } else { b[p * bc + j] };
                        for i in 0..m {
                            for j in 0..=i {
                                let mut s: $t = 0.0;
                                for p in 0..k {
                                    s += at(i, p) * bt(p, j);
                                }
                                c[i * n + j] += alpha * s;
                            }
                        }
                    }
                    MatmulImpl::Faer => {
                        use faer::linalg::matmul::triangular::{matmul as tri, BlockStructure};
                        let a = MatRef::from_row_major_slice(a, ar, ac);
                        let b = MatRef::from_row_major_slice(b, br, bc);
                        let a = if ta { a.transpose() } else { a };
                        let b = if tb { b.transpose() } else { b };
                        let cm = MatMut::from_row_major_slice_mut(c, m, n);
                        let par = if m * n * k >= 1 << 18 && rayon::current_num_threads() > 1 {
                            Par::rayon(0)
                        } else {
                            Par::Seq
                        };
                        tri(
                            cm,
                            BlockStructure::TriangularLower,
                            Accum::Add,
                            a,
                            BlockStructure::Rectangular,
                            b,
                            BlockStructure::Rectangular,
                            alpha,
                            par,
                        );
                    }
                }
                mirror_lower(c, n);
            }
        }
    };
}

impl_gemm!(f32);
impl_gemm!(f64);

/// Nuclear norm `‖A‖_* = Σ σ_i(A)` of the row-major `rows × cols` matrix `a`,
/// computed in f64 from its values (the dual norm of the spectral norm, used by
/// noise-adaptive layerwise learning rates). `Naive`: one-sided Jacobi (below);
/// `Faer`: faer's SVD (singular values only), falling back to Jacobi if it
/// does not converge. The two agree to ~1e-15 relative.
pub fn nuclear_norm<F: crate::real::Real>(how: MatmulImpl, a: &[F], rows: usize, cols: usize) -> f64 {
    if rows == 0 || cols == 0 {
        return 0.0;
    }
    match how {
        MatmulImpl::Naive => nuclear_norm_jacobi(a, rows, cols),
        MatmulImpl::Faer => {
            let m = faer::Mat::<f64>::from_fn(rows, cols, |i, j| a[i * cols + j].to_f64());
            match m.singular_values() {
                Ok(s) => s.iter().sum(),
                Err(_) => nuclear_norm_jacobi(a, rows, cols),
            }
        }
    }
}

/// One-sided (Hestenes) Jacobi: rotate pairs of columns of `A` (of the
/// transpose if it is wide) until they are orthogonal; the singular values are
/// then the column norms. Readable, and accurate to a few ulps.
fn nuclear_norm_jacobi<F: crate::real::Real>(a: &[F], rows: usize, cols: usize) -> f64 {
    // Columns of A (or of Aᵀ when A is wide), each `m` long, `n <= m` of them.
    let (m, n) = if rows >= cols { (rows, cols) } else { (cols, rows) };
    let mut u: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            (0..m)
                .map(|i| if rows >= cols { a[i * cols + j] } else { a[j * cols + i] }.to_f64())
                .collect()
        })
        .collect();
    for _sweep in 0..100 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let alpha: f64 = u[p].iter().map(|x| x * x).sum();
                let beta: f64 = u[q].iter().map(|x| x * x).sum();
                let gamma: f64 = u[p].iter().zip(&u[q]).map(|(x, y)| x * y).sum();
                if gamma == 0.0 || gamma.abs() <= 1e-15 * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                let (lo, hi) = u.split_at_mut(q);
                for (x, y) in lo[p].iter_mut().zip(hi[0].iter_mut()) {
                    let (xp, yq) = (*x, *y);
                    *x = c * xp - s * yq;
                    *y = s * xp + c * yq;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    u.iter().map(|col| col.iter().map(|x| x * x).sum::<f64>().sqrt()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nuclear_norm_jacobi_and_faer_agree() {
        // diag(3, -2) rotated: singular values 3 and 2.
        let (c, s) = (0.6f64, 0.8f64);
        let a = [3.0 * c, -3.0 * s, 2.0 * s, 2.0 * c];
        assert!((nuclear_norm(MatmulImpl::Naive, &a, 2, 2) - 5.0).abs() < 1e-14);
        for (r, k) in [(5, 3), (3, 5), (1, 4), (4, 1), (6, 6)] {
            let a: Vec<f64> = (0..r * k)
                .map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.3 + (i as f64).sin())
                .collect();
            let x = nuclear_norm(MatmulImpl::Naive, &a, r, k);
            let y = nuclear_norm(MatmulImpl::Faer, &a, r, k);
            assert!((x - y).abs() <= 1e-13 * y, "{r}x{k}: {x} vs {y}");
            // ‖A‖_F <= ‖A‖_* <= sqrt(rank) ‖A‖_F
            let f = a.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(f <= x * (1.0 + 1e-14) && x <= f * (r.min(k) as f64).sqrt() * (1.0 + 1e-14));
        }
        assert_eq!(nuclear_norm(MatmulImpl::Faer, &[0.0f32; 0], 0, 3), 0.0);
    }

    #[test]
    fn naive_and_faer_agree_with_transposes() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 37 % 11) as f64) - 5.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 13 % 7) as f64) * 0.5).collect();
        let bt: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        for (bb, shape, t) in [(&b, (k, n), false), (&bt, (n, k), true)] {
            let mut c1 = vec![1.0; m * n];
            let mut c2 = vec![1.0; m * n];
            f64::gemm(MatmulImpl::Naive, &mut c1, 2.0, 0.5, &a, (m, k), false, bb, shape, t);
            f64::gemm(MatmulImpl::Faer, &mut c2, 2.0, 0.5, &a, (m, k), false, bb, shape, t);
            assert_eq!(c1, c2, "integers: both exact");
            // c[0] = 2 + 0.5 * sum_p a[0,p] b[p,0]
            let want: f64 = 2.0 + 0.5 * (0..k).map(|p| a[p] * b[p * n]).sum::<f64>();
            assert_eq!(c1[0], want);
        }
    }

    #[test]
    fn symmetric_products_match_the_full_product() {
        for (m, k) in [(1, 1), (4, 9), (33, 17), (70, 70)] {
            let x: Vec<f64> = (0..m * k).map(|i| ((i * 37 % 11) as f64) - 5.0).collect();
            for how in [MatmulImpl::Naive, MatmulImpl::Faer] {
                // X Xᵀ into a symmetric C with beta = 0.5 (integers: exact).
                let c0: Vec<f64> = (0..m * m).map(|i| ((i / m) * (i % m) % 5) as f64).collect();
                let (mut full, mut sym) = (c0.clone(), c0.clone());
                f64::gemm(how, &mut full, 0.5, 2.0, &x, (m, k), false, &x, (m, k), true);
                f64::gemm_symmetric(how, &mut sym, 0.5, 2.0, &x, (m, k), false, &x, (m, k), true);
                assert_eq!(full, sym, "{m}x{k} {how:?}");
                // A A for symmetric A, and Xᵀ X.
                let a = sym.clone();
                let (mut f2, mut s2) = (vec![0.0; m * m], vec![0.0; m * m]);
                f64::gemm(how, &mut f2, 0.0, 1.0, &a, (m, m), false, &a, (m, m), false);
                f64::gemm_symmetric(how, &mut s2, 0.0, 1.0, &a, (m, m), false, &a, (m, m), false);
                assert_eq!(f2, s2, "{m}x{k} {how:?} A·A");
                let (mut f3, mut s3) = (vec![0.0; k * k], vec![0.0; k * k]);
                f64::gemm(how, &mut f3, 0.0, 1.0, &x, (m, k), true, &x, (m, k), false);
                f64::gemm_symmetric(how, &mut s3, 0.0, 1.0, &x, (m, k), true, &x, (m, k), false);
                assert_eq!(f3, s3, "{m}x{k} {how:?} XᵀX");
            }
        }
    }
}
