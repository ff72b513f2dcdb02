//! Checkpoints of the committed state, and restarting lost ranks from them.

use std::path::PathBuf;

use steepest_dist::inproc::Faults;
use steepest_dist::registry::parse_hyper;
use steepest_dist::train::{train_inproc, RankReport, TrainSpec};

fn spec(steps: u64) -> TrainSpec {
    let mut s = TrainSpec::new(
        "diloco",
        parse_hyper(r#"{"h": 5, "inner": "adam", "inner_hyper": {"lr": 0.01}}"#).unwrap(),
        "softmax-digits",
    );
    s.steps = steps;
    s.eval_every = 0;
    s.seed = 2;
    s
}

fn run(s: &TrainSpec, faults: Faults) -> Vec<Result<RankReport, steepest_dist::Error>> {
    train_inproc(s, 3, None, faults).unwrap()
}

fn models(r: Vec<Result<RankReport, steepest_dist::Error>>) -> Vec<Vec<f64>> {
    r.into_iter().map(|r| r.unwrap().model).collect()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("steepest-dist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn resuming_from_a_checkpoint_reproduces_the_run_bit_for_bit() {
    let straight = models(run(&spec(30), Faults::default()));
    let dir = tmp("resume");
    let mut first = spec(15);
    first.checkpoint = Some((dir.clone(), 15));
    models(run(&first, Faults::default()));
    let mut second = spec(30);
    second.resume = Some(dir.clone());
    assert_eq!(models(run(&second, Faults::default())), straight);

    // a damaged checkpoint is refused, naming the failed checksum
    let f = dir.join("step-15").join("model.safetensors");
    let mut b = std::fs::read(&f).unwrap();
    let n = b.len();
    b[n - 3] ^= 0x40;
    std::fs::write(&f, b).unwrap();
    let err = run(&second, Faults::default()).into_iter().next().unwrap().unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rank 1 dies at step 22; the survivors finish the run (continuing with
/// fewer). Restarting every rank, the lost one included, from the last
/// committed checkpoint (step 20) reproduces the unfaulted run bit for bit:
/// no committed progress is lost.
#[test]
fn a_lost_rank_restarts_from_the_last_committed_step() {
    let straight = models(run(&spec(30), Faults::default()));
    let dir = tmp("restart");
    let mut faulty = spec(25);
    faulty.checkpoint = Some((dir.clone(), 10));
    let out = run(
        &faulty,
        Faults {
            kill: Some((1, 22)),
            ..Faults::default()
        },
    );
    assert!(matches!(out[1], Err(steepest_dist::Error::Killed(22))));
    assert!(out[0].is_ok() && out[2].is_ok());
    assert_eq!(std::fs::read_to_string(dir.join("LATEST")).unwrap().trim(), "20");
    let mut resume = spec(30);
    resume.resume = Some(dir.clone());
    assert_eq!(models(run(&resume, Faults::default())), straight);
    let _ = std::fs::remove_dir_all(&dir);
}
