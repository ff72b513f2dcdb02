//! The distributed test matrix: every entry of the distributed registry runs
//! the same checks on the in-process backend (an algorithm joins by its
//! registry entry; see `steepest_dist::registry`).

use steepest_dist::inproc::Faults;
use steepest_dist::registry::{self, parse_hyper, DistEntry};
use steepest_dist::train::{loss_of_mean, train_inproc, RankReport, TrainSpec};

const WORKLOAD: &str = "softmax-digits";
const STEPS: u64 = 60;

fn spec(e: &DistEntry) -> TrainSpec {
    let mut s = TrainSpec::new(e.name, parse_hyper(e.demo).unwrap(), WORKLOAD);
    s.steps = STEPS;
    s.eval_every = 0;
    s.seed = 3;
    s
}

fn run(s: &TrainSpec, n: usize, faults: Faults) -> Vec<RankReport> {
    train_inproc(s, n, None, faults)
        .unwrap_or_else(|e| panic!("{}: {e}", s.algo))
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", s.algo)))
        .collect()
}

fn each(f: impl Fn(&DistEntry)) {
    for e in registry::registry() {
        f(e);
    }
}

#[test]
fn names_are_lowercase_hyphenated_and_unique() {
    let mut seen = std::collections::BTreeSet::new();
    each(|e| {
        assert!(e
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert!(!e.paper.is_empty() && !e.summary.is_empty());
    });
    for e in registry::registry() {
        assert!(seen.insert(e.name), "duplicate {}", e.name);
    }
}

#[test]
fn runs_are_deterministic() {
    each(|e| {
        let s = spec(e);
        let a = run(&s, 3, Faults::default());
        let b = run(&s, 3, Faults::default());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                x.model, y.model,
                "{}: rank {} differs between runs",
                e.name, x.world_rank
            );
            assert_eq!(x.traffic, y.traffic, "{}", e.name);
        }
    });
}

#[test]
fn loss_decreases() {
    each(|e| {
        let s = spec(e);
        let reps = run(&s, 3, Faults::default());
        let refs: Vec<&RankReport> = reps.iter().collect();
        let start = reps[0].curve[0].1;
        let end = loss_of_mean(&s, &refs).unwrap();
        assert!(end < 0.7 * start, "{}: loss {start} -> {end}", e.name);
        for r in &reps {
            assert!(
                r.final_loss < 0.8 * start,
                "{}: rank {} loss {start} -> {}",
                e.name,
                r.world_rank,
                r.final_loss
            );
        }
    });
}

#[test]
fn bytes_are_counted_and_conserved() {
    each(|e| {
        let s = spec(e);
        for n in [2usize, 3, 4] {
            let reps = run(&s, n, Faults::default());
            let sent: u64 = reps.iter().map(|r| r.traffic.bytes_sent).sum();
            let recv: u64 = reps.iter().map(|r| r.traffic.bytes_recv).sum();
            assert!(sent > 0, "{}: no bytes counted with {n} workers", e.name);
            assert_eq!(
                sent, recv,
                "{}: bytes sent and received disagree with {n} workers",
                e.name
            );
            for r in &reps {
                assert!(
                    r.traffic.bytes_sent > 0,
                    "{}: rank {} sent nothing",
                    e.name,
                    r.world_rank
                );
                assert_eq!(r.traffic.retries, 0, "{}", e.name);
            }
        }
        // one worker: nothing to send
        let reps = run(&s, 1, Faults::default());
        assert_eq!(reps[0].traffic.bytes_sent, 0, "{}", e.name);
    });
}

#[test]
fn bad_configs_are_rejected_naming_the_field() {
    each(|e| {
        assert!(!e.invalid.is_empty(), "{} lists no invalid configurations", e.name);
        let init = steepest_dist::train::workload(WORKLOAD).unwrap().init(0);
        for (json, field) in e.invalid {
            let h = parse_hyper(json).unwrap();
            match registry::build(e.name, &h, &init, 4) {
                Ok(_) => panic!("{}: {json} was accepted", e.name),
                Err(steepest_dist::Error::Steepest(steepest::Error::InvalidHyper { field: f, .. })) => {
                    assert_eq!(&f, field, "{}: {json}", e.name)
                }
                Err(other) => panic!("{}: {json} gave {other}, not an invalid hyperparameter", e.name),
            }
            // and the driver reports it before starting any thread
            let mut s = spec(e);
            s.hyper = h;
            assert!(
                train_inproc(&s, 2, None, Faults::default()).is_err(),
                "{}: {json}",
                e.name
            );
        }
        let s = spec(e);
        assert!(train_inproc(&s, 0, None, Faults::default()).is_err());
        let mut bad = spec(e);
        bad.workload = "no-such-workload".into();
        assert!(train_inproc(&bad, 2, None, Faults::default()).is_err());
    });
    assert!(registry::lookup("no-such-algo").is_err());
}

/// A corrupted message is detected by its checksum, the synchronization is
/// rolled back and retried, and the run ends with exactly the parameters of a
/// clean run: the corruption never reaches the parameters.
#[test]
fn corrupted_messages_never_reach_the_parameters() {
    each(|e| {
        let s = spec(e);
        let clean = run(&s, 3, Faults::default());
        let faulty = run(
            &s,
            3,
            Faults {
                corrupt: vec![(1, 2), (0, 7)],
                ..Faults::default()
            },
        );
        // Each corruption is either detected (checksum: the synchronization is
        // retried) or, when it hit a redundantly coded flag, corrected.
        let retries: u64 = faulty.iter().map(|r| r.traffic.retries).sum();
        let corrected: u64 = faulty.iter().map(|r| r.traffic.corrected).sum();
        assert!(retries + corrected > 0, "{}: no corruption seen", e.name);
        for (c, f) in clean.iter().zip(&faulty) {
            assert_eq!(
                c.model, f.model,
                "{}: rank {} differs after a corrupted message",
                e.name, c.world_rank
            );
        }
    });
}

/// A rank killed mid-run: the survivors finish every step, and the final loss
/// stays within 5% of the unfaulted run's (one of four i.i.d. data streams is
/// lost for the last 60% of the run; the models are averages over the others).
#[test]
fn a_killed_rank_does_not_stop_the_run() {
    each(|e| {
        let s = spec(e);
        let clean = run(&s, 4, Faults::default());
        let out = train_inproc(
            &s,
            4,
            None,
            Faults {
                kill: Some((2, 25)),
                ..Faults::default()
            },
        )
        .unwrap();
        assert!(matches!(out[2], Err(steepest_dist::Error::Killed(25))), "{}", e.name);
        let survivors: Vec<&RankReport> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(
            survivors.len(),
            3,
            "{}: {:?}",
            e.name,
            out.iter()
                .map(|r| r.as_ref().err().map(|e| e.to_string()))
                .collect::<Vec<_>>()
        );
        for r in &survivors {
            assert_eq!(r.steps, STEPS, "{}", e.name);
        }
        let refs: Vec<&RankReport> = clean.iter().collect();
        let l_clean = loss_of_mean(&s, &refs).unwrap();
        let l_fault = loss_of_mean(&s, &survivors).unwrap();
        assert!(
            (l_fault - l_clean).abs() <= 0.05 * l_clean,
            "{}: loss {l_fault} with a killed rank vs {l_clean}",
            e.name
        );
    });
}
