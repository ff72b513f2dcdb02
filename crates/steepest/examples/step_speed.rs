//! Step time of every registered optimizer on one large f32 tensor, and of
//! the matrix optimizers (Muon, AdaGO) on one square matrix.
//!
//! `cargo run --release -p steepest --example step_speed -- [NUMEL] [REPEATS] [DIM]`
//! prints, per optimizer, the median step time and the effective memory
//! bandwidth (bytes of parameter, gradient and state read and written per
//! step); matrix optimizers run on a DIM × DIM matrix (default 1024) and report
//! GFLOP/s of the Newton–Schulz products. Run `tools/bench/torch_step_speed.py`
//! with the same arguments beside it for the Python references' numbers.

use std::time::Instant;

use steepest::registry::registry;
use steepest::{GradSet, Optimizer, ParamSet};

fn main() -> Result<(), steepest::Error> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1 << 24);
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(15);
    let dim: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024);
    println!("numel {n}, {repeats} repeats, {} threads", rayon::current_num_threads());
    for e in registry() {
        if e.capabilities.elementwise {
            continue;
        }
        // Muon's recipe and AdaGO on a square matrix: 5 Newton-Schulz iterations of
        // three products (X Xᵀ, A·A, B·X), 2·dim³ flops each.
        let h = steepest::hyper::hyper_from_json(e.demo).unwrap_or_default();
        let mut params = ParamSet::<f32>::new();
        params.push(
            "w",
            &[dim, dim],
            (0..dim * dim).map(|i| ((i % 89) as f32 - 44.0) * 1e-3).collect(),
        )?;
        let mut opt = Optimizer::new(e.name, &h, &params)?;
        let mut grads = GradSet::new();
        grads.insert("w", (0..dim * dim).map(|i| ((i % 97) as f32 - 48.0) * 1e-3).collect());
        opt.step(&mut params, &mut grads)?;
        let r = repeats.min(7);
        let mut times = Vec::with_capacity(r);
        for _ in 0..r {
            let t = Instant::now();
            opt.step(&mut params, &mut grads)?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let med = times[r / 2];
        let flops = 5.0 * 3.0 * 2.0 * (dim as f64).powi(3);
        println!(
            "{:<10} {dim}x{dim} matrix                                             {:>8.2} ms {:>7.1} GFLOP/s",
            e.name,
            med * 1e3,
            flops / med / 1e9
        );
    }
    for e in registry() {
        if !e.capabilities.elementwise {
            continue;
        }
        for (label, json) in std::iter::once(("demo", e.demo)).chain(e.variants.iter().map(|v| ("variant", *v))) {
            let h = steepest::hyper::hyper_from_json(json).unwrap_or_default();
            let mut params = ParamSet::<f32>::new();
            params.push("w", &[n], vec![0.5; n])?;
            let mut opt = Optimizer::new(e.name, &h, &params)?;
            let mut grads = GradSet::new();
            grads.insert("w", (0..n).map(|i| ((i % 97) as f32 - 48.0) * 1e-3).collect());
            // Inputs beyond the gradient: a loss of 1, four per-sample copies of the gradient.
            let needs = opt.needs();
            let mut samples = steepest::SampleGrads::new();
            if needs.sample_grads {
                samples.insert("w", vec![grads.get("w").unwrap_or(&[]).to_vec(); 4]);
            }
            let inputs = steepest::StepInputs {
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
            times.sort_by(f64::total_cmp);
            let med = times[repeats / 2];
            let slots = opt.param_state("w").map_or(0, |s| s.slots.len());
            // read p, g, slots; write p, slots
            let bytes = (n * 4) as f64 * (3 + 2 * slots) as f64;
            println!(
                "{:<10} {:<7} {:<60} {:>8.2} ms {:>7.1} GB/s",
                e.name,
                label,
                json,
                med * 1e3,
                bytes / med / 1e9
            );
        }
    }
    Ok(())
}
