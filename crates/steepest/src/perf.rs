//! Step-time measurement against a bandwidth twin (the engine of `steepest perf`).
//!
//! An optimizer step is memory-bound: it reads the parameters, gradients and
//! state and writes the parameters and state. The *bandwidth twin* of a step
//! reads and writes exactly the same buffers with trivial arithmetic, so its
//! time is the memory limit for that step on this machine; the ratio
//! `twin time / step time` says how close the optimizer runs to it.
//! Timings are medians of repeated steps after a warm-up step; nothing here
//! asserts a time.

use std::time::Instant;

use crate::algorithm::Float;
use crate::error::{Error, Result};
use crate::hyper::Hyper;
use crate::kernel::zip_chunks;
use crate::mem::filled;
use crate::optimizer::NonFinite;
use crate::optimizer::Optimizer;
use crate::tensor::{GradSet, ParamSet};

/// What `measure` found.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PerfReport {
    /// Registry name.
    pub optimizer: String,
    /// Element type.
    pub dtype: String,
    /// Total parameters.
    pub numel: usize,
    /// Number of tensors they are split into.
    pub tensors: usize,
    /// Rayon threads.
    pub threads: usize,
    /// Timed steps.
    pub repeats: usize,
    /// Median optimizer step, milliseconds.
    pub step_ms: f64,
    /// Median twin step, milliseconds.
    pub twin_ms: f64,
    /// Bytes a step must move (parameters, gradients and state read; parameters and state written).
    pub bytes_per_step: f64,
    /// `bytes_per_step / step time`, GB/s.
    pub step_gbps: f64,
    /// `bytes_per_step / twin time`, GB/s.
    pub twin_gbps: f64,
    /// Optimizer state bytes per parameter.
    pub state_bytes_per_param: f64,
    /// `twin_ms / step_ms` (1.0 = at the memory limit).
    pub fraction_of_twin: f64,
    /// The non-finite policy the steps ran under (`error`, the default, reads
    /// every gradient once more to check it; `unchecked` does not).
    pub nonfinite: String,
}

/// Optimizer state bytes per parameter element, as allocated: the elements
/// of every state slot (sized per parameter by the algorithm, so FRUGAL's
/// low-rank moments and ASGO's `d × d` preconditioner count what they hold)
/// times the dtype's size, over the number of parameter elements. Parameters
/// without state yet (no gradient so far) count zero.
pub fn state_bytes_per_param<F: Float>(opt: &Optimizer<F>, params: &ParamSet<F>) -> f64 {
    let numel: usize = params.iter().map(|p| p.data.len()).sum();
    let elems: usize = params
        .iter()
        .map(|p| {
            opt.param_state(&p.name)
                .map_or(0, |s| s.slots.iter().map(Vec::len).sum())
        })
        .sum();
    if numel == 0 {
        0.0
    } else {
        (F::DTYPE.size() * elems) as f64 / numel as f64
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `repeats` steps of optimizer `name` on `numel` parameters split into
/// `tensors` equal tensors, and the same number of twin steps, under the
/// default non-finite policy.
pub fn measure<F: Float>(
    name: &str,
    hyper: &Hyper,
    numel: usize,
    tensors: usize,
    repeats: usize,
) -> Result<PerfReport> {
    measure_with::<F>(name, hyper, numel, tensors, repeats, NonFinite::default())
}

/// [`measure`] under a given non-finite policy.
pub fn measure_with<F: Float>(
    name: &str,
    hyper: &Hyper,
    numel: usize,
    tensors: usize,
    repeats: usize,
    nonfinite: NonFinite,
) -> Result<PerfReport> {
    if tensors == 0 || numel < tensors {
        return Err(Error::Spec(format!(
            "need 1 <= tensors <= numel, got {tensors} tensors of {numel}"
        )));
    }
    if repeats == 0 {
        return Err(Error::Spec("repeats must be at least 1".into()));
    }
    let per = numel / tensors;
    let mut params = ParamSet::<F>::new();
    let mut grads = GradSet::<F>::new();
    for i in 0..tensors {
        let n = if i + 1 == tensors {
            numel - per * (tensors - 1)
        } else {
            per
        };
        let name = format!("t{i}");
        // Buffers from `crate::mem`, as `ParamSet::push` does for parameters.
        let mut p = filled(n, F::ZERO);
        p.iter_mut()
            .enumerate()
            .for_each(|(j, x)| *x = F::from_f64(((j % 89) as f64 - 44.0) * 1e-3));
        let mut g = filled(n, F::ZERO);
        g.iter_mut()
            .enumerate()
            .for_each(|(j, x)| *x = F::from_f64(((j % 97) as f64 - 48.0) * 1e-3));
        params.push(name.clone(), &[n], p)?;
        grads.insert(name, g);
    }
    let mut opt = Optimizer::new(name, hyper, &params)?;
    opt.set_nonfinite(nonfinite);
    // Inputs beyond the gradient for optimizers that need them: a loss of 1 and
    // four per-sample copies of the gradient.
    let needs = opt.needs();
    let mut samples = crate::tensor::SampleGrads::<F>::new();
    if needs.sample_grads {
        for p in params.iter() {
            samples.insert(p.name.clone(), vec![grads.get(&p.name).unwrap_or(&[]).to_vec(); 4]);
        }
    }
    let inputs = crate::optimizer::StepInputs {
        loss: needs.loss.then_some(1.0),
        sample_grads: needs.sample_grads.then_some(&samples),
    };
    opt.step_with(&mut params, &mut grads, inputs)?; // allocates state
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        opt.step_with(&mut params, &mut grads, inputs)?;
        times.push(t.elapsed().as_secs_f64());
    }
    let step = median(times);
    // State: count the elements the optimizer keeps per parameter.
    let state_elems: usize = params
        .iter()
        .map(|p| {
            opt.param_state(&p.name)
                .map_or(0, |s| s.slots.iter().map(Vec::len).sum())
        })
        .sum();
    let mut slots: Vec<Vec<Vec<F>>> = params
        .iter()
        .map(|p| {
            // Parameter-shaped slots only (a scalar such as AdaGC's γ costs nothing).
            let k = opt
                .param_state(&p.name)
                .map_or(0, |s| s.slots.iter().filter(|x| x.len() == p.data.len()).count());
            (0..k.min(3)).map(|_| filled(p.data.len(), F::ZERO)).collect()
        })
        .collect();
    let c = F::from_f64(1e-7);
    let mut twin = |params: &mut ParamSet<F>| {
        for (p, s) in params.params_mut().iter_mut().zip(slots.iter_mut()) {
            let g = grads.get(&p.name).unwrap_or(&[]);
            match s.as_mut_slice() {
                [] => zip_chunks(&mut p.data, g, [], move |p, g, []| {
                    for i in 0..p.len() {
                        p[i] += g[i] * c;
                    }
                }),
                [a] => zip_chunks(&mut p.data, g, [&mut a[..]], move |p, g, [a]| {
                    for i in 0..p.len() {
                        a[i] += g[i];
                        p[i] += a[i] * c;
                    }
                }),
                [a, b] => zip_chunks(&mut p.data, g, [&mut a[..], &mut b[..]], move |p, g, [a, b]| {
                    for i in 0..p.len() {
                        a[i] += g[i];
                        b[i] += g[i];
                        p[i] += (a[i] + b[i]) * c;
                    }
                }),
                [a, b, d, ..] => zip_chunks(
                    &mut p.data,
                    g,
                    [&mut a[..], &mut b[..], &mut d[..]],
                    move |p, g, [a, b, d]| {
                        for i in 0..p.len() {
                            a[i] += g[i];
                            b[i] += g[i];
                            d[i] += g[i];
                            p[i] += (a[i] + b[i] + d[i]) * c;
                        }
                    },
                ),
            }
        }
    };
    twin(&mut params);
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        twin(&mut params);
        times.push(t.elapsed().as_secs_f64());
    }
    let twin_s = median(times);
    let size = F::DTYPE.size() as f64;
    // read p, g, state; write p, state
    let bytes = size * (3 * numel + 2 * state_elems) as f64;
    Ok(PerfReport {
        optimizer: name.to_string(),
        dtype: F::DTYPE.name().to_string(),
        numel,
        tensors,
        threads: rayon::current_num_threads(),
        repeats,
        step_ms: step * 1e3,
        twin_ms: twin_s * 1e3,
        bytes_per_step: bytes,
        step_gbps: bytes / step / 1e9,
        twin_gbps: bytes / twin_s / 1e9,
        state_bytes_per_param: state_bytes_per_param(&opt, &params),
        fraction_of_twin: twin_s / step,
        nonfinite: nonfinite.name().to_string(),
    })
}

/// What [`newton_schulz`] found.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NsReport {
    /// Matrix rows.
    pub rows: usize,
    /// Matrix columns.
    pub cols: usize,
    /// Newton–Schulz iterations per call.
    pub steps: usize,
    /// Element type.
    pub dtype: String,
    /// Rayon threads.
    pub threads: usize,
    /// Timed calls.
    pub repeats: usize,
    /// Median time of one orthogonalization (all `steps` iterations), milliseconds.
    pub ms: f64,
    /// The three products' nominal flops per iteration, `2(2 r² c + r³)` with
    /// `r = min(rows, cols)`, over the median time, GFLOP/s. steepest computes
    /// the two symmetric products' lower triangles only, so it does fewer.
    pub nominal_gflops: f64,
}

/// Times Muon's Newton–Schulz orthogonalization (quintic coefficients,
/// `steps` iterations, faer GEMM) on a `rows × cols` matrix: the median of
/// `repeats` calls after one warm-up.
pub fn newton_schulz<F: Float>(rows: usize, cols: usize, steps: usize, repeats: usize) -> Result<NsReport> {
    if rows == 0 || cols == 0 || repeats == 0 {
        return Err(Error::Spec(format!(
            "need a non-empty matrix and at least one repeat, got {rows}x{cols}, {repeats} repeats"
        )));
    }
    let n = rows * cols;
    let mut g = filled(n, F::ZERO);
    g.iter_mut()
        .enumerate()
        .for_each(|(j, x)| *x = F::from_f64(((j % 89) as f64 - 44.0) * 1e-3 + ((j % 7) as f64) * 1e-4));
    let mut out = filled(n, F::ZERO);
    let mut work = crate::algorithm::Workspace::<F>::default();
    let coeffs = crate::optim::newton_schulz::QUINTIC;
    let mut call = || {
        crate::optim::newton_schulz::orthogonalize(
            crate::linalg::MatmulImpl::Faer,
            &g,
            rows,
            cols,
            coeffs,
            steps,
            1e-7,
            &mut work,
            &mut out,
        )
    };
    call();
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        call();
        times.push(t.elapsed().as_secs_f64());
    }
    let s = median(times);
    let (r, c) = (rows.min(cols) as f64, rows.max(cols) as f64);
    Ok(NsReport {
        rows,
        cols,
        steps,
        dtype: F::DTYPE.name().to_string(),
        threads: rayon::current_num_threads(),
        repeats,
        ms: s * 1e3,
        nominal_gflops: steps as f64 * 2.0 * (2.0 * r * r * c + r * r * r) / s / 1e9,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_state_and_bytes() {
        let r = measure::<f32>("adam", &Hyper::new(), 1000, 3, 3).unwrap();
        assert_eq!(r.state_bytes_per_param, 8.0, "adam keeps two f32 moments");
        assert_eq!(r.bytes_per_step, 4.0 * (3.0 * 1000.0 + 2.0 * 2000.0));
        assert!(r.step_ms > 0.0 && r.twin_ms > 0.0 && r.fraction_of_twin > 0.0);
        let r = measure::<f64>("sgd", &Hyper::new(), 10, 1, 1).unwrap();
        assert_eq!(r.state_bytes_per_param, 0.0);
        assert!(measure::<f32>("adam", &Hyper::new(), 2, 3, 1).is_err());
        assert!(measure::<f32>("nope", &Hyper::new(), 10, 1, 1).is_err());
        let r = measure_with::<f32>("adam", &Hyper::new(), 1000, 2, 2, NonFinite::Unchecked).unwrap();
        assert_eq!(r.nonfinite, "unchecked");
    }

    #[test]
    fn newton_schulz_reports() {
        let r = newton_schulz::<f32>(8, 20, 5, 2).unwrap();
        assert_eq!((r.rows, r.cols, r.steps), (8, 20, 5));
        assert!(r.ms > 0.0 && r.nominal_gflops > 0.0);
        assert!(newton_schulz::<f64>(0, 3, 5, 1).is_err());
    }
}
