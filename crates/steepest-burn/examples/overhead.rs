//! Per-step cost of steepest's AdamW through the burn adapter against burn's own
//! AdamW, on the CPU flex backend (an MLP 64 → H → H → 10, batch 64).
//!
//! ```text
//! cargo run --release -p steepest-burn --example overhead [hidden=256] [steps=50] [repeats=7]
//! ```
//!
//! Reports the median over `repeats` runs of the mean optimizer-step time (the
//! `step` call alone) and of the mean full training step (forward, backward,
//! optimizer), and their ratios steepest / burn.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use steepest_burn::data::{digits, SplitMix64};
use steepest_burn::models::Mlp;
use steepest_burn::SteepestOptimizer;

enum Opt {
    Burn(ModuleOptimizer),
    Ours(SteepestOptimizer),
}

fn run(opt: &mut Opt, hidden: usize, steps: usize) -> (f64, f64) {
    let data = digits().expect("data/digits.csv");
    let device = Device::flex().autodiff();
    device.seed(1);
    let mut model = Mlp::new(64, hidden, 10, &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut rng = SplitMix64::new(3);
    let (mut opt_s, mut total_s) = (0.0, 0.0);
    for step in 0..steps + 10 {
        let t0 = Instant::now();
        let idx: Vec<usize> = (0..64).map(|_| rng.below(data.len())).collect();
        let b = data.select(&idx);
        let x = Tensor::<2>::from_data(TensorData::new(b.x, [64, 64]), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(b.y, [64]), &device);
        let loss = loss_fn.forward(model.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t1 = Instant::now();
        model = match opt {
            Opt::Burn(o) => o.step(1e-3, model, grads),
            Opt::Ours(o) => o.step(1e-3, model, grads),
        };
        // Make sure the update has run (the backend may be lazy).
        let _ = model.head.bias.as_ref().map(|b| b.val().into_data());
        if step >= 10 {
            opt_s += t1.elapsed().as_secs_f64();
            total_s += t0.elapsed().as_secs_f64();
        }
    }
    (opt_s / steps as f64, total_s / steps as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (hidden, steps, repeats) = (arg(1, 256), arg(2, 50), arg(3, 7));
    let device = Device::flex().autodiff();
    let (mut bo, mut bt, mut so, mut st) = (vec![], vec![], vec![], vec![]);
    for _ in 0..repeats {
        // Alternate to spread machine noise over both.
        let mut burn = Opt::Burn(AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.01).init());
        let (o, t) = run(&mut burn, hidden, steps);
        bo.push(o);
        bt.push(t);
        device.seed(1);
        let model = Mlp::new(64, hidden, 10, &device);
        let mut ours = Opt::Ours(
            SteepestOptimizer::from_json(&model, "adamw", r#"{"lr": 1e-3, "eps": 1e-8, "weight_decay": 0.01}"#)
                .expect("adamw"),
        );
        let (o, t) = run(&mut ours, hidden, steps);
        so.push(o);
        st.push(t);
    }
    let (bo, bt, so, st) = (median(bo), median(bt), median(so), median(st));
    println!("MLP 64-{hidden}-{hidden}-10, batch 64, {steps} steps x {repeats} runs (medians), flex CPU backend");
    println!(
        "optimizer step: burn AdamW {:.1} us, steepest adamw {:.1} us, ratio {:.3}",
        bo * 1e6,
        so * 1e6,
        so / bo
    );
    println!(
        "full train step: burn AdamW {:.1} us, steepest adamw {:.1} us, ratio {:.3}",
        bt * 1e6,
        st * 1e6,
        st / bt
    );
}
