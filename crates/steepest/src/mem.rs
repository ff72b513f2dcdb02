//! Allocation of large buffers (parameters, gradients, optimizer state) on
//! transparent huge pages.
//!
//! An optimizer step streams every parameter, gradient and state element
//! through memory once. With 4 KiB pages a 16M-element step touches ~115,000
//! pages and the TLB misses cost a measurable share of the bandwidth (much
//! more inside a virtual machine, where a miss walks two page tables). Linux
//! backs a region with 2 MiB pages when asked with `madvise(MADV_HUGEPAGE)`
//! *before* the pages are first touched, which is what [`filled`] does for
//! buffers of at least [`HUGE_MIN_BYTES`]. PyTorch offers the same for its
//! CPU tensors behind `THP_MEM_ALLOC_ENABLE=1` (off by default).
//!
//! The buffers are ordinary `Vec`s from the global allocator: the advice only
//! changes which physical pages back them, never their contents, so it is safe
//! whatever the allocator. Elsewhere than Linux, or when the kernel refuses
//! the advice (`transparent_hugepage` set to `never`), nothing changes but speed.

/// Buffers of at least this many bytes are advised onto huge pages (4 MiB:
/// smaller ones would mostly round to partial huge pages).
pub const HUGE_MIN_BYTES: usize = 4 << 20;

/// A vector of `n` copies of `value`, on huge pages when it is large.
pub fn filled<T: Copy>(n: usize, value: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise_huge(&mut v);
    v.resize(n, value);
    v
}

/// A copy of `src` in a vector allocated by [`filled`]'s rule; returns `src`
/// itself when it is too small to benefit.
pub fn rehome<T: Copy + Default>(src: Vec<T>) -> Vec<T> {
    if std::mem::size_of_val(src.as_slice()) < HUGE_MIN_BYTES {
        return src;
    }
    let mut v: Vec<T> = Vec::with_capacity(src.len());
    advise_huge(&mut v);
    v.extend_from_slice(&src);
    v
}

/// Advises the huge-page-aligned interior of `v`'s (untouched) capacity.
#[allow(unused_variables)]
fn advise_huge<T>(v: &mut Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < HUGE_MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_mut_ptr() as usize;
        let lo = start.next_multiple_of(HUGE);
        let hi = (start + bytes) / HUGE * HUGE;
        if hi > lo {
            // SAFETY: [lo, hi) lies inside this vector's allocation, which we own
            // and have not touched; MADV_HUGEPAGE is advice about physical backing
            // and never changes memory contents. Its result is ignored: a refusal
            // only means 4 KiB pages.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_and_rehomed_keep_values() {
        let v = filled(3 << 20, 1.5f32);
        assert_eq!(v.len(), 3 << 20);
        assert!(v.iter().all(|&x| x == 1.5));
        let src: Vec<f64> = (0..(1 << 20)).map(|i| i as f64).collect();
        let r = rehome(src.clone());
        assert_eq!(r, src);
        let small = vec![1.0f32; 10];
        assert_eq!(rehome(small.clone()), small);
        assert!(filled::<f32>(0, 0.0).is_empty());
    }
}
