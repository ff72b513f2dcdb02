//! QSDP: the unquantized path is sharded DDP bit for bit; the paper's claim
//! (W8G8 matches full precision at a fraction of the bytes); the notes'
//! least-squares check of quantized-only weights (stochastic rounding
//! converges near x*, round-to-nearest stalls).

use steepest_dist::inproc::Faults;
use steepest_dist::registry::parse_hyper;
use steepest_dist::train::{loss_of_mean, train_inproc, workload, RankReport, TrainSpec};

fn run(algo: &str, hyper: &str, wl: &str, n: usize, steps: u64, seed: u64) -> (Vec<RankReport>, TrainSpec) {
    let mut s = TrainSpec::new(algo, parse_hyper(hyper).unwrap(), wl);
    s.steps = steps;
    s.eval_every = 0;
    s.seed = seed;
    let reps = train_inproc(&s, n, None, Faults::default())
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    (reps, s)
}

fn bytes_per_step(reps: &[RankReport], steps: u64) -> f64 {
    reps.iter().map(|r| r.traffic.bytes_sent as f64).sum::<f64>() / (reps.len() as f64 * steps as f64)
}

/// `w_bits = g_bits = 32` (no quantization): the reduce-scatter sums the
/// gradient pieces in rank order and divides by N exactly like the
/// all-reduce, the owners' AdamW steps are elementwise, and the all-gather is
/// exact, so QSDP is DDP bit for bit, for every worker count; quantized it is not.
#[test]
fn unquantized_qsdp_is_ddp_bit_for_bit() {
    for n in [1usize, 2, 3, 4] {
        let opt = r#""optimizer": "adamw", "optimizer_hyper": {"lr": 0.01, "weight_decay": 0.1}"#;
        let (q, _) = run(
            "qsdp",
            &format!(r#"{{"w_bits": 32, "g_bits": 32, {opt}}}"#),
            "softmax-digits",
            n,
            15,
            11,
        );
        let (d, _) = run("ddp", &format!("{{{opt}}}"), "softmax-digits", n, 15, 11);
        for (a, b) in q.iter().zip(&d) {
            assert_eq!(a.model, b.model, "n={n}: rank {}", a.world_rank);
        }
        if n == 4 {
            let (w8, _) = run("qsdp", &format!("{{{opt}}}"), "softmax-digits", n, 15, 11);
            assert_ne!(w8[0].model, d[0].model);
            // every worker holds the same gathered model
            for r in &w8[1..] {
                assert_eq!(r.model, w8[0].model);
            }
        }
    }
}

/// The paper's claim at small scale: softmax-digits, 4 workers, Adam lr 0.01,
/// 200 steps, seeds 1–3. W8G8 (buckets of 1024) ends within 1% of the
/// unquantized run's loss (mean over seeds) while each worker sends ≤ 0.15×
/// its bytes (f64 payloads here: 1/8 for the levels plus 16 bytes of bucket
/// metadata per shard piece and the commit votes; ×2 = ≈ 0.28 against an fp32
/// baseline, the paper's "about a quarter"). Measured 2026-11-29: loss
/// 0.114241 (W8G8) vs 0.114267 (unquantized), 1121.8 vs 7867.6 bytes per
/// worker per step (ratio 0.1426; DDP: 7824.0).
#[test]
fn w8g8_matches_full_precision_at_an_eighth_of_the_f64_bytes() {
    let steps = 200;
    let mut lf = 0.0;
    let mut lq = 0.0;
    let mut bf = 0.0;
    let mut bq = 0.0;
    for seed in 1..=3u64 {
        let opt = r#""optimizer": "adam", "optimizer_hyper": {"lr": 0.01}"#;
        let (f, s) = run(
            "qsdp",
            &format!(r#"{{"w_bits": 32, "g_bits": 32, {opt}}}"#),
            "softmax-digits",
            4,
            steps,
            seed,
        );
        let (q, _) = run("qsdp", &format!("{{{opt}}}"), "softmax-digits", 4, steps, seed);
        lf += loss_of_mean(&s, &f.iter().collect::<Vec<_>>()).unwrap() / 3.0;
        lq += loss_of_mean(&s, &q.iter().collect::<Vec<_>>()).unwrap() / 3.0;
        bf += bytes_per_step(&f, steps) / 3.0;
        bq += bytes_per_step(&q, steps) / 3.0;
    }
    let (d, _) = run(
        "ddp",
        r#"{"optimizer": "adam", "optimizer_hyper": {"lr": 0.01}}"#,
        "softmax-digits",
        4,
        steps,
        1,
    );
    eprintln!(
        "fp: loss {lf:.6}, {bf:.1} B/worker/step; W8G8: loss {lq:.6}, {bq:.1} B/worker/step; ratio {:.4}; DDP {:.1} B/worker/step",
        bq / bf,
        bytes_per_step(&d, steps)
    );
    assert!((lq - lf).abs() <= 0.01 * lf, "W8G8 loss {lq} vs full precision {lf}");
    assert!(bq <= 0.15 * bf, "bytes {bq} vs {bf}");
}

/// The notes' least-squares check of the analysed variant (only quantized
/// weights are kept, `master: "quantized"`; 4-bit weights, buckets of 8,
/// unquantized gradients, SGD lr 0.002, 2 workers, 600 steps on the 200 × 40
/// least-squares workload): with stochastic (unbiased) rounding the iterates
/// keep moving and end near x*; with round-to-nearest, once η·|g_i| is below
/// half a grid step the rounding undoes every update and the run stalls far
/// from x*. Measured: f − f* (see the assertion's message).
///
/// NOT CALIBRATED (measured 2026-11-29): f − f* from 2.49 to 1.040
/// (stochastic) vs 1.056 (nearest): at these settings both stall, so the
/// learning rate, bits and step count still need to be chosen so that the
/// stochastic run gets near x* within the budget.
#[test]
#[ignore = "not reproduced: f - f* 1.040 (stochastic) vs 1.056 (nearest) at these settings, both stall; 15 s"]
fn quantized_weights_stochastic_rounding_converges_nearest_stalls() {
    let gap = |rounding: &str| {
        let (reps, s) = run(
            "qsdp",
            &format!(
                r#"{{"master": "quantized", "w_bits": 4, "bucket": 8, "g_bits": 32, "w_rounding": "{rounding}", "optimizer": "sgd", "optimizer_hyper": {{"lr": 0.002}}}}"#
            ),
            "least-squares",
            2,
            600,
            1,
        );
        let p = workload("least-squares").unwrap();
        let mut x = p.init(1);
        steepest_dist::algo::unflatten(&mut x, &reps[0].model).unwrap();
        let m = p
            .eval(
                &x,
                &steepest_lab::problems::EvalCtx {
                    seed: s.seed,
                    t: s.steps,
                    cum_loss: 0.0,
                },
            )
            .metric;
        let start = p
            .eval(
                &p.init(1),
                &steepest_lab::problems::EvalCtx {
                    seed: 1,
                    t: 0,
                    cum_loss: 0.0,
                },
            )
            .metric;
        (m, start)
    };
    let (sr, start) = gap("stochastic");
    let (rn, _) = gap("nearest");
    eprintln!("least squares f - f*: start {start:.4e}, stochastic {sr:.4e}, nearest {rn:.4e}");
    assert!(sr < 0.5 * rn, "stochastic {sr} vs nearest {rn}");
}

/// A worker lost at step 5 of 12: its shard is adopted by the next live rank
/// (from the last gathered values, fresh optimizer state), the survivors finish
/// every step and keep identical models, and the run stays close to the clean one.
#[test]
fn a_lost_worker_s_shard_is_adopted() {
    let h = r#"{"optimizer": "adam", "optimizer_hyper": {"lr": 0.01}}"#;
    let mut s = TrainSpec::new("qsdp", parse_hyper(h).unwrap(), "softmax-digits");
    s.steps = 12;
    s.eval_every = 0;
    s.seed = 4;
    let out = train_inproc(
        &s,
        4,
        None,
        Faults {
            kill: Some((2, 5)),
            ..Faults::default()
        },
    )
    .unwrap();
    assert!(matches!(out[2], Err(steepest_dist::Error::Killed(5))));
    let surv: Vec<&RankReport> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(surv.len(), 3);
    for r in &surv {
        assert_eq!(r.steps, 12);
        assert_eq!(r.members, vec![0, 1, 3]);
        assert_eq!(r.model, surv[0].model);
    }
    assert!(surv[0].final_loss < surv[0].curve[0].1, "the loss did not decrease");
}
