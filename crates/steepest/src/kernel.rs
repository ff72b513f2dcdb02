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

/// One chunk's sum of squares over eight interleaved accumulators (lane `j`
/// takes the elements `≡ j mod 8`), combined in a fixed order at the end: the
/// order is fixed, so the result is deterministic, and the independent lanes
/// vectorize and do not wait on one another's additions (a single running
/// sum is bound by the latency of one addition per element).
#[inline]
fn chunk_sum_squares<F: Real>(c: &[F], s: F) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let mut it = c.chunks_exact(LANES);
    for w in &mut it {
        for j in 0..LANES {
            let v = (w[j] * s).to_f64();
            acc[j] += v * v;
        }
    }
    for (j, &x) in it.remainder().iter().enumerate() {
        let v = (x * s).to_f64();
        acc[j] += v * v;
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
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
