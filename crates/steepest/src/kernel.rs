//! Shared machinery of the fused kernels: one pass over memory, parallel over
//! fixed-size chunks with rayon.
//!
//! Chunk boundaries depend only on the buffer length, never on the number of
//! threads, and every element is updated by arithmetic that reads only its own
//! index, so results are bit-identical for any thread count.

use rayon::prelude::*;

use crate::real::Real;

/// Which implementation of an optimizer's update runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernel {
    /// Single pass, parallel over chunks; the default.
    #[default]
    Fused,
    /// The readable op-by-op loop that is the ground truth (mirrors the paper and PyTorch's loop).
    Reference,
}

impl Kernel {
    /// Parses `"fused"` or `"reference"`.
    pub fn parse(s: &str) -> Option<Kernel> {
        match s {
            "fused" => Some(Kernel::Fused),
            "reference" => Some(Kernel::Reference),
            _ => None,
        }
    }
}

/// Elements per parallel work item (64 KiB of f32).
pub const CHUNK: usize = 1 << 14;
/// Below this many elements the fused kernel runs on the calling thread.
pub const PAR_MIN: usize = 1 << 16;

#[derive(Clone, Copy)]
struct Ptr<T>(*mut T);
// SAFETY: the pointers are only dereferenced on disjoint index ranges (see `zip_chunks`).
unsafe impl<T: Send> Send for Ptr<T> {}
unsafe impl<T: Send> Sync for Ptr<T> {}
impl<T> Ptr<T> {
    #[inline(always)]
    fn get(self) -> *mut T {
        self.0
    }
}

/// Runs `f` over aligned chunks of a parameter, its gradient and `N` state
/// buffers of the same length, in parallel when the buffer is large.
///
/// `f` receives sub-slices covering the same index range of every buffer.
/// All buffers must have the same length as `p` (the optimizer allocates state
/// from the parameter's shape and checks gradients and data against it). A
/// mismatch is a bug in the caller: it panics rather than touch memory out of
/// bounds.
pub fn zip_chunks<F, const N: usize>(
    p: &mut [F],
    g: &[F],
    slots: [&mut [F]; N],
    f: impl Fn(&mut [F], &[F], [&mut [F]; N]) + Sync + Send,
) where
    F: Real,
{
    let n = p.len();
    assert!(
        g.len() == n && slots.iter().all(|s| s.len() == n),
        "zip_chunks: buffers of different lengths"
    );
    if n < PAR_MIN {
        f(p, g, slots);
        return;
    }
    let head = align_head::<F>(p.as_ptr() as usize).min(n);
    let pp = Ptr(p.as_mut_ptr());
    let gp = Ptr(g.as_ptr() as *mut F);
    let sp: [Ptr<F>; N] = slots.map(|s| Ptr(s.as_mut_ptr()));
    // Chunk c ≥ 1 starts at `head + c·CHUNK`, on a cache-line boundary of `p`
    // (chunk 0 also takes the `head` elements before the first boundary).
    // Buffers from the system allocator start 16 bytes past a page, so with
    // chunks at multiples of CHUNK every other 32-byte vector access would
    // straddle two cache lines; aligned, a 16M-element Adam step measured ~10%
    // faster. The results are the same: every kernel here is elementwise.
    let chunks = (n - head).div_ceil(CHUNK).max(1);
    (0..chunks).into_par_iter().for_each(|c| {
        let start = if c == 0 { 0 } else { head + c * CHUNK };
        let end = (head + (c + 1) * CHUNK).min(n);
        let len = end - start;
        // SAFETY: chunk `c` covers indices [start, start + len) of buffers of
        // length n; distinct chunks are disjoint, the borrows above outlive this
        // call, and `g` is only read.
        unsafe {
            let p = std::slice::from_raw_parts_mut(pp.get().add(start), len);
            let g = std::slice::from_raw_parts(gp.get().add(start) as *const F, len);
            let s = sp.map(|q| std::slice::from_raw_parts_mut(q.get().add(start), len));
            f(p, g, s);
        }
    });
}

/// Elements of `F` from address `addr` to the next 64-byte boundary (0 when
/// `addr` is on one, or is not even aligned to `F`).
fn align_head<F>(addr: usize) -> usize {
    let size = std::mem::size_of::<F>();
    if size == 0 || !addr.is_multiple_of(size) {
        return 0;
    }
    ((64 - addr % 64) % 64) / size
}

/// Sum of squares of `x` in `f64`, in a fixed order (chunk partials summed in
/// chunk order), so the result does not depend on the thread count.
pub fn sum_squares<F: Real>(x: &[F]) -> f64 {
    sum_squares_scaled(x, F::ONE)
}

/// Sum of squares of `x·s` (each product rounded to `F`, as a tensor `x * s`
/// would be) in `f64`, without materializing the product; the same fixed order
/// as [`sum_squares`] (`sum_squares_scaled(x, 1) == sum_squares(x)`).
pub fn sum_squares_scaled<F: Real>(x: &[F], s: F) -> f64 {
    if x.len() < PAR_MIN {
        return x.chunks(CHUNK).map(|c| chunk_sum_squares(c, s)).sum();
    }
    let parts: Vec<f64> = x.par_chunks(CHUNK).map(|c| chunk_sum_squares(c, s)).collect();
    parts.iter().sum()
}

/// One chunk's sum of squares in a fixed order, so the result is
/// deterministic. The chunk is read as four quarter streams in lockstep (one
/// core keeps more memory reads in flight for four streams than for one: a
/// 64 MiB pass measured ~3.8 ms against ~6 ms for a single stream on this
/// project's machine), each into eight interleaved `f64` lanes that do not
/// wait on one another's additions. Lane `acc[k][j]` takes the elements
/// `k·q + 8i + j` (`q` = the quarter length, a multiple of 8); the tail after
/// the four quarters goes to `acc[0][r mod 8]`.
#[inline]
fn chunk_sum_squares<F: Real>(c: &[F], s: F) -> f64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    if std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>() {
        // SAFETY: `F` is `f32` (same type id), so the cast is the identity.
        let c32 = unsafe { std::slice::from_raw_parts(c.as_ptr().cast::<f32>(), c.len()) };
        return sum_squares_f32_avx2(c32, s.to_f64() as f32);
    }
    chunk_sum_squares_generic(c, s)
}

/// The portable form of [`chunk_sum_squares`].
fn chunk_sum_squares_generic<F: Real>(c: &[F], s: F) -> f64 {
    let q = c.len() / 32 * 8;
    let mut acc = [[0.0f64; 8]; 4];
    let quarters: [&[F]; 4] = std::array::from_fn(|k| &c[k * q..(k + 1) * q]);
    for i in (0..q).step_by(8) {
        for (a, x) in acc.iter_mut().zip(&quarters) {
            for j in 0..8 {
                let v = (x[i + j] * s).to_f64();
                a[j] += v * v;
            }
        }
    }
    finish_sum_squares(acc, &c[4 * q..], s)
}

/// Adds the tail into the lanes and combines them in a fixed order.
#[inline]
fn finish_sum_squares<F: Real>(mut acc: [[f64; 8]; 4], tail: &[F], s: F) -> f64 {
    for (r, &x) in tail.iter().enumerate() {
        let v = (x * s).to_f64();
        acc[0][r % 8] += v * v;
    }
    let t: [f64; 8] = std::array::from_fn(|j| (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]));
    ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))
}

/// [`chunk_sum_squares_generic`] for `f32` in AVX2: the same lanes and the
/// same roundings (an `f32` multiply, exact widening, an `f64` multiply and
/// add, no fused multiply-add), so the same bits. The compiler's own
/// vectorization of the portable loop shuffles lanes between registers.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
fn sum_squares_f32_avx2(c: &[f32], s: f32) -> f64 {
    use std::arch::x86_64::*;
    let q = c.len() / 32 * 8;
    let mut acc = [[0.0f64; 8]; 4];
    // SAFETY: AVX2 is enabled at compile time (the cfg above); every load reads
    // 8 f32 at `k·q + i` with `i + 8 <= q`, so within the first `4q <= len`
    // elements, and the stores write 4 f64 into each half of a row of `acc`.
    unsafe {
        let sv = _mm256_set1_ps(s);
        let mut lo = [_mm256_setzero_pd(); 4];
        let mut hi = [_mm256_setzero_pd(); 4];
        let p = c.as_ptr();
        let mut i = 0;
        while i < q {
            for k in 0..4 {
                let x = _mm256_mul_ps(_mm256_loadu_ps(p.add(k * q + i)), sv);
                let a = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
                let b = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x));
                lo[k] = _mm256_add_pd(lo[k], _mm256_mul_pd(a, a));
                hi[k] = _mm256_add_pd(hi[k], _mm256_mul_pd(b, b));
            }
            i += 8;
        }
        for k in 0..4 {
            _mm256_storeu_pd(acc[k].as_mut_ptr(), lo[k]);
            _mm256_storeu_pd(acc[k].as_mut_ptr().add(4), hi[k]);
        }
    }
    finish_sum_squares(acc, &c[4 * q..], s)
}

/// `true` if every element is finite (parallel for large buffers).
pub fn all_finite<F: Real>(x: &[F]) -> bool {
    if x.len() < PAR_MIN {
        return F::all_finite_slice(x);
    }
    x.par_chunks(CHUNK).all(F::all_finite_slice)
}

/// Runs `f` over fixed-size chunks of `x`, in parallel when `x` is large.
pub fn for_each_chunk_mut<F: Real>(x: &mut [F], f: impl Fn(&mut [F]) + Sync + Send) {
    if x.len() < PAR_MIN {
        f(x)
    } else {
        x.par_chunks_mut(CHUNK).for_each(f)
    }
}

#[cfg(test)]
mod finite_tests {
    use super::all_finite;

    #[test]
    fn all_finite_finds_every_kind_of_non_finite_anywhere() {
        for n in [0usize, 1, 7, 1 << 17] {
            let clean: Vec<f32> = (0..n).map(|i| (i as f32 - 3.0) * 1e30).collect();
            assert!(all_finite(&clean));
            let wide: Vec<f64> = clean.iter().map(|&v| v as f64 * 1e270).collect();
            assert!(wide.iter().all(|v| v.is_finite()) == all_finite(&wide));
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
                for at in [0, n / 2, n.saturating_sub(1)] {
                    if n == 0 {
                        continue;
                    }
                    let mut x = clean.clone();
                    x[at] = bad;
                    assert!(!all_finite(&x), "{bad} at {at} of {n}");
                    let mut y: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                    y[at] = bad as f64;
                    assert!(!all_finite(&y));
                }
            }
        }
        assert!(all_finite(&[f32::MAX, f32::MIN_POSITIVE, 1e-45, -0.0]));
        assert!(all_finite(&[f64::MAX, 5e-324]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorized f32 sum of squares gives the portable loop's bits.
    #[test]
    fn chunk_sum_squares_matches_the_portable_lanes_bit_for_bit() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e3
        };
        for n in [0usize, 1, 15, 16, 17, 31, 32, 33, 63, 1000, CHUNK, CHUNK + 7] {
            let v: Vec<f32> = (0..n).map(|_| next() as f32).collect();
            for s in [1.0f32, 0.37, -3.0e-5] {
                let want = chunk_sum_squares_generic(&v, s);
                assert_eq!(chunk_sum_squares(&v, s).to_bits(), want.to_bits(), "n {n}, s {s}");
                let exact: f64 = v.iter().map(|&a| ((a * s) as f64).powi(2)).sum();
                assert!(
                    (want - exact).abs() <= 1e-12 * exact.max(1e-300),
                    "n {n}: {want} vs {exact}"
                );
            }
        }
        assert_eq!(sum_squares_scaled(&[3.0f32, 4.0], 1.0), 25.0);
        assert!(sum_squares(&[f32::NAN, 1.0]).is_nan());
        assert!(sum_squares(&[1e200f64, 1.0]).is_infinite());
    }

    /// Every index is visited exactly once whatever the buffer's alignment,
    /// and every chunk but the first starts on a 64-byte boundary of `p`.
    #[test]
    fn zip_chunks_covers_every_index_once_on_aligned_chunks() {
        let n = 3 * CHUNK + 123 + PAR_MIN;
        for off in 0..17 {
            let mut pbuf = vec![0.0f32; n + off];
            let p = &mut pbuf[off..];
            let g: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let mut s = vec![0.0f32; n];
            let base = p.as_ptr() as usize;
            let starts = std::sync::Mutex::new(Vec::new());
            zip_chunks(p, &g, [&mut s[..]], |p, g, [s]| {
                starts.lock().unwrap().push((p.as_ptr() as usize - base) / 4);
                for i in 0..p.len() {
                    p[i] += g[i] + 1.0;
                    s[i] += 1.0;
                }
            });
            assert!(p.iter().enumerate().all(|(i, &v)| v == i as f32 + 1.0), "offset {off}");
            assert!(s.iter().all(|&v| v == 1.0), "offset {off}");
            let mut starts = starts.into_inner().unwrap();
            starts.sort_unstable();
            assert_eq!(starts[0], 0);
            assert!(
                starts[1..].iter().all(|&i| (base + 4 * i).is_multiple_of(64)),
                "offset {off}: {starts:?}"
            );
        }
        assert_eq!(align_head::<f32>(64), 0);
        assert_eq!(align_head::<f32>(80), 12);
        assert_eq!(align_head::<f64>(72), 7);
        assert_eq!(align_head::<f64>(3), 0);
    }
}
