//! The networked mode: same strategy, same seed → the simulator's model bit
//! for bit; unauthenticated, revoked, malformed, oversized and out-of-round
//! messages refused while the rounds go on; a server restarted from its
//! committed state loses no round; a silent client becomes a failure.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use steepest_fed::algorithms;
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::net::{exchange, run_client, Reply, Request, Server, ServerConfig};
use steepest_fed::participation::Participation;
use steepest_fed::partition::Partition;
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::{ClientConfig, Sampling};

const N: usize = 12;
const SEED: u64 = 21;

fn workload() -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients: N,
            samples_per_client: 30,
            test: 500,
            partition: Partition::Dirichlet { alpha: 1.0 },
            ..LogRegSpec::default()
        },
        SEED,
    )
    .unwrap()
}

fn tokens() -> BTreeMap<usize, String> {
    (0..N).map(|c| (c, format!("tok-{c}-{}", c * 7919 + 13))).collect()
}

fn config(rounds: u64, state_dir: Option<std::path::PathBuf>, timeout_ms: u64) -> ServerConfig {
    ServerConfig {
        addr: "127.0.0.1:0".into(),
        tokens: tokens(),
        rounds,
        seed: SEED,
        round_timeout: Duration::from_millis(timeout_ms),
        max_message_bytes: 1 << 20,
        state_dir,
    }
}

fn strategy(name: &str) -> Box<dyn steepest_fed::Strategy> {
    let sampling = Sampling {
        fraction: 0.5,
        ..Sampling::default()
    };
    algorithms::build(name, sampling, ClientConfig::default(), &Default::default()).unwrap()
}

fn participation() -> Participation {
    Participation::Bernoulli { p: vec![0.8; N] }
}

/// Starts clients `ids` against `addr` on threads.
fn clients(addr: &str, ids: impl Iterator<Item = usize>) -> Vec<std::thread::JoinHandle<()>> {
    let toks = tokens();
    ids.map(|c| {
        let (addr, tok) = (addr.to_string(), toks[&c].clone());
        std::thread::spawn(move || {
            let w = workload();
            let _ = run_client(
                &addr,
                c,
                &tok,
                &w,
                SEED,
                Duration::from_millis(5),
                Duration::from_secs(20),
            );
        })
    })
    .collect()
}

fn sim_hash(name: &str, rounds: u64) -> String {
    let w = workload();
    let cfg = SimConfig {
        rounds,
        seed: SEED,
        ..SimConfig::default()
    };
    let mut s = strategy(name);
    sim::run(&w, &mut s, &participation(), &cfg).unwrap().model_hash
}

#[test]
fn networked_run_equals_simulation_bit_for_bit() {
    for name in ["fedavg", "fedadam"] {
        let server = Server::bind(config(5, None, 20_000)).unwrap();
        let addr = server.addr().unwrap();
        let hs = clients(&addr, 0..N);
        let w = workload();
        let mut s = strategy(name);
        let rep = server.run(&mut s, &participation(), N, w.init()).unwrap();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(rep.model_hash, sim_hash(name, 5), "{name}: network vs simulation");
    }
}

#[test]
fn bad_clients_are_refused_and_rounds_go_on() {
    // Client 11 never delivers, so rounds where it takes part end on the timeout.
    let server = Server::bind(config(4, None, 1_500)).unwrap();
    let addr = server.addr().unwrap();
    let revoker = server.revoker();
    // Client 11's token is revoked before it ever connects; the other clients run.
    revoker.revoke(&tokens()[&11]);
    let hs = clients(&addr, 0..N - 1);
    let bad = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let toks = tokens();
            let poll = |client: usize, token: &str| {
                exchange(
                    &addr,
                    &Request::Poll {
                        client,
                        token: token.into(),
                    },
                )
                .unwrap()
            };
            let refused = |r: Reply| matches!(r, Reply::Refused(_));
            assert!(refused(poll(3, "guess")), "unknown token");
            assert!(refused(poll(4, &toks[&3])), "another client's token");
            assert!(refused(poll(11, &toks[&11])), "revoked token");
            // Malformed and oversized messages.
            let raw = |bytes: &[u8]| {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.write_all(bytes).unwrap();
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line).unwrap();
                serde_json::from_str::<Reply>(&line).unwrap()
            };
            assert!(refused(raw(b"{\"poll\": {\"client\": \"x\"}}\n")), "malformed");
            let mut big = vec![b' '; (1 << 20) + 10];
            big.push(b'\n');
            assert!(refused(raw(&big)), "oversized");
            // A result for a round that is not the current one.
            let r = exchange(
                &addr,
                &Request::Result {
                    client: 2,
                    token: toks[&2].clone(),
                    round: 999,
                    tensors: vec![],
                    num_examples: 1,
                    loss: 0.0,
                },
            )
            .unwrap();
            assert!(refused(r), "out-of-round result");
        })
    };
    let w = workload();
    let mut s = strategy("fedavg");
    let rep = server.run(&mut s, &participation(), N, w.init()).unwrap();
    bad.join().unwrap();
    for h in hs {
        h.join().unwrap();
    }
    let log = rep.log.join("\n");
    for what in [
        "unknown token",
        "another client",
        "revoked",
        "malformed",
        "over",
        "round 999",
    ] {
        assert!(log.contains(what), "log lacks `{what}`:\n{log}");
    }
    assert_eq!(rep.rounds_run, 4);
}

/// Rounds 1..=3 on one server, then 4..=6 on a fresh server process (fresh
/// strategy object) over the same state directory; returns the second report.
fn run_with_restart(name: &str, dir: &std::path::Path) -> steepest_fed::net::NetReport {
    let _ = std::fs::remove_dir_all(dir);
    // First server: rounds 1..=3, then it stops (as if killed after committing round 3).
    let server = Server::bind(config(3, Some(dir.to_path_buf()), 20_000)).unwrap();
    let addr = server.addr().unwrap();
    let hs = clients(&addr, 0..N);
    let w = workload();
    let mut s = strategy(name);
    let first = server.run(&mut s, &participation(), N, w.init()).unwrap();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(first.rounds_run, 3);
    // A new server process with the same state directory runs rounds 4..=6.
    let server = Server::bind(config(6, Some(dir.to_path_buf()), 20_000)).unwrap();
    let addr = server.addr().unwrap();
    let hs = clients(&addr, 0..N);
    let mut s = strategy(name);
    let second = server.run(&mut s, &participation(), N, w.init()).unwrap();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(second.resumed_after, 3);
    assert_eq!(second.rounds_run, 3);
    second
}

#[test]
fn restarted_server_resumes_from_its_last_committed_round() {
    let dir = std::env::temp_dir().join(format!("steepest-fed-net-{}", std::process::id()));
    let second = run_with_restart("fedavg", &dir);
    assert_eq!(
        second.model_hash,
        sim_hash("fedavg", 6),
        "resumed run vs uninterrupted simulation"
    );
    // FedAvg keeps no state, so none is written.
    assert!(!dir.join("strategy-6.state").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn restarted_server_restores_server_optimizer_state() {
    for name in ["fedadam", "fedyogi", "fedavgm", "ferret"] {
        let dir = std::env::temp_dir().join(format!("steepest-fed-net-{name}-{}", std::process::id()));
        let second = run_with_restart(name, &dir);
        assert_eq!(
            second.model_hash,
            sim_hash(name, 6),
            "{name}: resumed run vs uninterrupted simulation"
        );
        // Only the last committed round's state file is kept.
        assert!(dir.join("strategy-6.state").exists(), "{name}");
        assert!(!dir.join("strategy-5.state").exists(), "{name}");
        if name == "fedadam" {
            // The server optimizer's state is steepest's optimizer-state file,
            // after a 1-byte "no inner state" tag.
            let bytes = std::fs::read(dir.join("strategy-6.state")).unwrap();
            assert_eq!(bytes[0], 0);
            let meta = steepest::state::read_metadata(&bytes[1..]).unwrap();
            assert_eq!(meta["format"], steepest::state::FORMAT);
            assert_eq!(meta["optimizer"], "adam");
            assert_eq!(meta["steps"], "6");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn a_stateful_strategy_refuses_a_commit_without_its_state() {
    let dir = std::env::temp_dir().join(format!("steepest-fed-net-nostate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A round committed by a stateless run (or an older server): no strategy state.
    let model: Vec<serde_json::Value> = workload()
        .init()
        .iter()
        .map(|p| serde_json::json!({"name": p.name, "shape": p.shape, "data": p.data}))
        .collect();
    let text = serde_json::json!({"round": 2, "model": model}).to_string();
    std::fs::write(dir.join("state.json"), text).unwrap();
    let server = Server::bind(config(4, Some(dir.clone()), 1_000)).unwrap();
    let mut s = strategy("fedadam");
    let err = server
        .run(&mut s, &participation(), N, workload().init())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot resume it exactly"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_silent_client_is_a_failure_not_a_stall() {
    let server = Server::bind(config(3, None, 300)).unwrap();
    let addr = server.addr().unwrap();
    // Client 0 never shows up (killed); the rounds finish on the timeout.
    let hs = clients(&addr, 1..N);
    let w = workload();
    let mut s = algorithms::build(
        "fedavg",
        Sampling::default(),
        ClientConfig::default(),
        &Default::default(),
    )
    .unwrap();
    let rep = server.run(&mut s, &Participation::All, N, w.init()).unwrap();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(rep.rounds_run, 3);
    assert!(
        rep.log.iter().any(|l| l.contains("client 0") && l.contains("timeout")),
        "{:?}",
        rep.log
    );
    assert!(Server::bind(ServerConfig {
        addr: "0.0.0.0:0".into(),
        ..config(1, None, 10)
    })
    .is_err());
}

#[test]
fn constant_time_token_equality_is_equality() {
    use steepest_fed::net::ct_eq;
    let t = tokens()[&3].clone();
    assert!(ct_eq(t.as_bytes(), t.clone().as_bytes()));
    assert!(ct_eq(b"", b""));
    let mut last = t.clone().into_bytes();
    *last.last_mut().unwrap() ^= 1;
    assert!(!ct_eq(t.as_bytes(), &last), "differs in the last byte");
    assert!(!ct_eq(t.as_bytes(), &t.as_bytes()[..t.len() - 1]), "a prefix");
    let mut longer = t.clone().into_bytes();
    longer.push(0);
    assert!(!ct_eq(t.as_bytes(), &longer), "a zero-padded extension");
    assert!(!ct_eq(t.as_bytes(), tokens()[&4].as_bytes()));
}
