//! Newton–Schulz orthogonalization, shared by Muon and AdaGO.
//!
//! Papers: *"Muon: Training and Trade-offs with Latent Attention and MoE"* and
//! *"Understanding Gradient Orthogonalization for Deep Learning via
//! Non-Euclidean Trust-Region Optimization"* (the orthogonalized update
//! `U V^T` of `G = U Σ V^T`, approximated by an odd matrix polynomial).
//!
//! For an `r × c` matrix `G` (transposed first when `r > c`, so that the Gram
//! matrices are the small side):
//! ```text
//! X_0 = G / max(‖G‖_F, ε)
//! A_k = X_k X_kᵀ
//! X_{k+1} = a X_k + (b A_k + c A_k²) X_k          (k = 0 .. steps-1)
//! ```
//! with the quintic coefficients `(a, b, c) = (3.4445, −4.7750, 2.0315)` by
//! default. This is `torch.optim.Muon`'s iteration, but in the parameter's
//! dtype: PyTorch runs it in bfloat16.

use crate::algorithm::{Float, Workspace};
use crate::linalg::MatmulImpl;

/// The quintic coefficients `(a, b, c)`, Muon's and AdaGO's default.
pub const QUINTIC: [f64; 3] = [3.4445, -4.7750, 2.0315];

/// Orthogonalizes the row-major `rows × cols` matrix `u` into `out` (same shape).
#[allow(clippy::too_many_arguments)]
pub fn orthogonalize<F: Float>(
    how: MatmulImpl,
    u: &[F],
    rows: usize,
    cols: usize,
    coeffs: [f64; 3],
    steps: usize,
    eps: f64,
    work: &mut Workspace<F>,
    out: &mut [F],
) {
    let n = rows * cols;
    if n == 0 {
        return;
    }
    let tall = rows > cols;
    let (r, c) = if tall { (cols, rows) } else { (rows, cols) };
    let big = n.max(r * r);
    let (bufs, _) = work.take(4, big);
    let [x, xn, a, b] = bufs else {
        unreachable!("take(4) returns four buffers")
    };
    let (mut x, mut xn, a, b) = (&mut x[..n], &mut xn[..n], &mut a[..r * r], &mut b[..r * r]);
    if tall {
        transpose(u, rows, cols, x);
    } else {
        x.copy_from_slice(u);
    }
    // Frobenius norm accumulated in f64, rounded once to F, clamped below at ε.
    let norm = F::from_f64(x.iter().map(|v| v.to_f64() * v.to_f64()).sum::<f64>().sqrt());
    let denom = norm.maximum(F::from_f64(eps));
    for v in x.iter_mut() {
        *v = *v / denom;
    }
    let [ca, cb, cc] = coeffs.map(F::from_f64);
    for _ in 0..steps {
        // A = X Xᵀ and A·A are symmetric: only their lower triangles are
        // computed (half the flops of two of the three products).
        F::gemm_symmetric(how, a, F::ZERO, F::ONE, x, (r, c), false, x, (r, c), true);
        // B = b A + c A A
        b.copy_from_slice(a);
        F::gemm_symmetric(how, b, cb, cc, a, (r, r), false, a, (r, r), false);
        // X' = a X + B X
        xn.copy_from_slice(x);
        F::gemm(how, xn, ca, F::ONE, b, (r, r), false, x, (r, c), false);
        std::mem::swap(&mut x, &mut xn);
    }
    if tall {
        transpose(x, cols, rows, out);
    } else {
        out.copy_from_slice(x);
    }
}

/// `dst` (cols × rows) = `srcᵀ` for a row-major `rows × cols` `src`.
fn transpose<F: Copy>(src: &[F], rows: usize, cols: usize, dst: &mut [F]) {
    for i in 0..rows {
        for j in 0..cols {
            dst[j * rows + i] = src[i * cols + j];
        }
    }
}
