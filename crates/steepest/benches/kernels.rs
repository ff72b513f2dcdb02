//! Criterion benchmarks of the update kernels: one optimizer step on 1M f32
//! parameters (one tensor, and 64 tensors of the same total size), and
//! Newton–Schulz on a few matrix shapes. `cargo bench -p steepest`.
//!
//! For the bandwidth twin and the side-by-side comparison with PyTorch use
//! `steepest perf` and `tools/bench/compare_torch.py` (see PERFORMANCE.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use steepest::algorithm::Workspace;
use steepest::linalg::MatmulImpl;
use steepest::optim::newton_schulz::{orthogonalize, QUINTIC};
use steepest::{hyper, GradSet, Optimizer, ParamSet};

const NUMEL: usize = 1 << 20;

fn setup(tensors: usize) -> (ParamSet<f32>, GradSet<f32>) {
    let per = NUMEL / tensors;
    let mut params = ParamSet::new();
    let mut grads = GradSet::new();
    for t in 0..tensors {
        let name = format!("t{t}");
        params
            .push(
                name.clone(),
                &[per],
                (0..per).map(|j| ((j % 89) as f32 - 44.0) * 1e-3).collect(),
            )
            .unwrap();
        grads.insert(name, (0..per).map(|j| ((j % 97) as f32 - 48.0) * 1e-3).collect());
    }
    (params, grads)
}

fn steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("step_1M_f32");
    // Bytes a step reads and writes at minimum: p, g, state read; p, state written.
    for (name, h, slots) in [
        ("sgd", hyper([("lr", 0.01), ("momentum", 0.9)]), 1),
        ("adamw", hyper([("lr", 1e-3)]), 2),
        ("lion", hyper([("lr", 1e-4)]), 1),
        ("adagrad", hyper([("lr", 0.01)]), 1),
        ("rmsprop", hyper([("lr", 0.01)]), 1),
        ("c-adamw", hyper([("lr", 1e-3)]), 2),
    ] {
        group.throughput(Throughput::Bytes((4 * (3 + 2 * slots) * NUMEL) as u64));
        for tensors in [1, 64] {
            let (mut params, mut grads) = setup(tensors);
            let mut opt = Optimizer::new(name, &h, &params).unwrap();
            opt.step(&mut params, &mut grads).unwrap();
            group.bench_with_input(BenchmarkId::new(name, format!("{tensors}t")), &tensors, |b, _| {
                b.iter(|| opt.step(&mut params, &mut grads).unwrap())
            });
        }
    }
    group.finish();
}

fn newton_schulz(c: &mut Criterion) {
    let mut group = c.benchmark_group("newton_schulz_5_f32");
    group.sample_size(10);
    for (r, k) in [(256, 256), (512, 128), (512, 512)] {
        let g: Vec<f32> = (0..r * k).map(|j| ((j % 89) as f32 - 44.0) * 1e-3).collect();
        let mut out = vec![0.0f32; r * k];
        let mut work = Workspace::default();
        group.bench_function(format!("{r}x{k}"), |b| {
            b.iter(|| orthogonalize(MatmulImpl::Faer, &g, r, k, QUINTIC, 5, 1e-7, &mut work, &mut out))
        });
    }
    group.finish();
}

criterion_group!(benches, steps, newton_schulz);
criterion_main!(benches);
