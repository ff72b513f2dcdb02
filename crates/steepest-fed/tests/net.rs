//! The networked mode over gRPC: same strategy, same seed → the simulator's
//! model bit for bit; unauthenticated, revoked, malformed, oversized,
//! shape-mismatched, out-of-round and duplicate messages refused with the
//! right gRPC status while the rounds go on; a server killed mid-round and
//! restarted from its committed state loses no round; a killed client that
//! comes back changes nothing; a silent client becomes a failure.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tonic::Code;

use steepest_fed::algorithms;
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::net::{run_client, Client, Reply, Server, ServerConfig, POLL_PATH, SUBMIT_PATH};
use steepest_fed::participation::Participation;
use steepest_fed::partition::Partition;
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::{ClientConfig, FitRes, Model, Sampling};

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

/// The participants of round 1 (as the server will compute them).
fn round1_participants(name: &str) -> Vec<usize> {
    let avail = participation().start(N, SEED).unwrap().round(1).unwrap();
    let mut s = strategy(name);
    s.configure_fit(1, &avail, SEED)
        .unwrap()
        .iter()
        .map(|i| i.client)
        .collect()
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.expect_err("should be refused").code()
}

#[test]
fn bad_clients_are_refused_with_grpc_codes_and_rounds_go_on() {
    let round1 = round1_participants("fedavg");
    // `bad` takes part in round 1 and is driven by hand; `outsider` does not.
    // `holder`, another participant, starts only after the probe, so round 1
    // is still open for the duplicate.
    assert!(round1.len() >= 2, "{round1:?}");
    let (bad, holder) = (round1[round1.len() - 1], round1[0]);
    let outsider = (0..N).find(|c| !round1.contains(c)).unwrap();
    let server = Server::bind(config(4, None, 5_000)).unwrap();
    let addr = server.addr().unwrap();
    let revoker = server.revoker();
    let hs = clients(&addr, (0..N).filter(|&c| c != bad && c != holder));
    let probe = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let toks = tokens();
            let client = |tok: Option<&str>| Client::new(&addr, tok).unwrap();
            assert_eq!(code(client(None).poll(3)), Code::Unauthenticated, "no token");
            assert_eq!(
                code(client(Some("guess")).poll(3)),
                Code::Unauthenticated,
                "unknown token"
            );
            assert_eq!(
                code(client(Some(&toks[&3])).poll(4)),
                Code::PermissionDenied,
                "another client's token"
            );
            let mut c2 = client(Some(&toks[&2]));
            // Bytes that are not a PollRequest (field 1 with the wrong wire type).
            assert_eq!(
                code(c2.call_raw(POLL_PATH, vec![0x0a, 0xff, 0x01])),
                Code::InvalidArgument,
                "malformed"
            );
            assert_eq!(
                code(c2.call_raw(SUBMIT_PATH, vec![0u8; (1 << 20) + 10])),
                Code::ResourceExhausted,
                "oversized"
            );
            assert_eq!(
                code(c2.call_raw("/steepest.fed.v1.FedService/Nope", vec![])),
                Code::Unimplemented,
                "unknown method"
            );
            // Not HTTP/2 at all: the connection is closed, nothing else happens.
            let mut raw = TcpStream::connect(&addr).unwrap();
            raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            raw.write_all(b"{\"poll\": {\"client\": 1}}\n").unwrap();
            let _ = raw.read_to_end(&mut Vec::new());
            // The hand-driven participant of round 1.
            let mut me = client(Some(&toks[&bad]));
            let (ins, global) = loop {
                match me.poll(bad).unwrap() {
                    Reply::Task(ins, global) => break (ins, global),
                    Reply::Wait => std::thread::sleep(Duration::from_millis(5)),
                    Reply::Done => panic!("done before round 1"),
                }
            };
            assert_eq!(ins.round, 1);
            let w = workload();
            let good = w.fit(&ins, &global, SEED).unwrap();
            // The same tensors, the first one flattened.
            let mut wrong_shape = Model::new();
            for (i, p) in good.params.iter().enumerate() {
                let shape = if i == 0 { vec![p.data.len()] } else { p.shape.clone() };
                wrong_shape.push(p.name.clone(), &shape, p.data.clone()).unwrap();
            }
            let with = |params: Model| FitRes { params, ..good.clone() };
            assert_eq!(
                code(me.submit(1, &with(wrong_shape))),
                Code::InvalidArgument,
                "wrong shapes"
            );
            let mut nan = good.params.clone();
            nan.params_mut()[0].data[0] = f64::NAN;
            assert_eq!(code(me.submit(1, &with(nan))), Code::InvalidArgument, "non-finite");
            assert_eq!(code(me.submit(999, &good)), Code::FailedPrecondition, "out of round");
            let mut out = client(Some(&toks[&outsider]));
            let not_asked = FitRes {
                client: outsider,
                ..good.clone()
            };
            assert_eq!(
                code(out.submit(1, &not_asked)),
                Code::FailedPrecondition,
                "not a participant"
            );
            me.submit(1, &good).unwrap();
            assert_eq!(code(me.submit(1, &good)), Code::AlreadyExists, "duplicate");
            // Its token is revoked: replaying it is refused.
            revoker.revoke(&toks[&bad]);
            assert_eq!(code(me.poll(bad)), Code::PermissionDenied, "revoked token replayed");
            assert_eq!(
                code(me.submit(1, &good)),
                Code::PermissionDenied,
                "revoked token replayed"
            );
            clients(&addr, std::iter::once(holder))
        })
    };
    let w = workload();
    let mut s = strategy("fedavg");
    let rep = server.run(&mut s, &participation(), N, w.init()).unwrap();
    for h in probe.join().unwrap().into_iter().chain(hs) {
        h.join().unwrap();
    }
    let log = rep.log.join("\n");
    for what in [
        "no bearer token",
        "unknown token",
        "another client",
        "malformed message",
        "message over 1048576 bytes",
        "unknown method",
        "expected `",
        "non-finite",
        "round 999",
        "not a participant",
        "duplicate",
        "revoked token",
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

fn committed_round(dir: &std::path::Path) -> u64 {
    std::fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["round"].as_u64())
        .unwrap_or(0)
}

#[test]
fn a_server_killed_mid_round_and_restarted_loses_no_committed_round() {
    // FedAdam: the server optimizer's moments must survive the crash too.
    let name = "fedadam";
    // 8 rounds: the kill comes once round 3 is committed, well before the last.
    let dir = std::env::temp_dir().join(format!("steepest-fed-net-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::bind(config(8, Some(dir.clone()), 20_000)).unwrap();
    let addr = server.addr().unwrap();
    let killer = server.killer();
    // The same client threads serve both server processes: they reconnect.
    let hs = clients(&addr, 0..N);
    let watcher = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while committed_round(&dir) < 3 {
                assert!(t0.elapsed() < Duration::from_secs(60), "round 3 never committed");
                std::thread::sleep(Duration::from_millis(1));
            }
            killer.kill();
        })
    };
    let w = workload();
    let mut s = strategy(name);
    let err = server
        .run(&mut s, &participation(), N, w.init())
        .unwrap_err()
        .to_string();
    watcher.join().unwrap();
    assert!(err.contains("killed"), "{err}");
    let committed = committed_round(&dir);
    assert!((3..8).contains(&committed), "committed {committed}");
    // A fresh server process (fresh strategy object) on the same address.
    let cfg = ServerConfig {
        addr: addr.clone(),
        ..config(8, Some(dir.clone()), 20_000)
    };
    let t0 = Instant::now();
    let server = loop {
        match Server::bind(cfg.clone()) {
            Ok(s) => break s,
            Err(e) if t0.elapsed() < Duration::from_secs(10) => {
                eprintln!("rebinding {addr}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    let mut s = strategy(name);
    let second = server.run(&mut s, &participation(), N, w.init()).unwrap();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(second.resumed_after, committed);
    assert_eq!(second.rounds_run, 8 - committed);
    assert_eq!(
        second.model_hash,
        sim_hash(name, 8),
        "killed and resumed vs uninterrupted"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_killed_client_that_comes_back_changes_nothing() {
    let round1 = round1_participants("fedavgm");
    let victim = round1[0];
    let server = Server::bind(config(4, None, 20_000)).unwrap();
    let addr = server.addr().unwrap();
    let hs = clients(&addr, (0..N).filter(|&c| c != victim));
    let comeback = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let tok = tokens()[&victim].clone();
            // First life: takes its round-1 task and dies without a result.
            let mut first = Client::new(&addr, Some(&tok)).unwrap();
            loop {
                match first.poll(victim).unwrap() {
                    Reply::Task(ins, _) => {
                        assert_eq!(ins.round, 1);
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            drop(first);
            // Second life: same id and token; it gets the same task again.
            let w = workload();
            run_client(
                &addr,
                victim,
                &tok,
                &w,
                SEED,
                Duration::from_millis(5),
                Duration::from_secs(20),
            )
            .unwrap()
        })
    };
    let w = workload();
    let mut s = strategy("fedavgm");
    let rep = server.run(&mut s, &participation(), N, w.init()).unwrap();
    let trained = comeback.join().unwrap();
    for h in hs {
        h.join().unwrap();
    }
    assert!(trained >= 1);
    assert!(rep.log.is_empty(), "{:?}", rep.log);
    assert_eq!(
        rep.model_hash,
        sim_hash("fedavgm", 4),
        "network with a client restart vs simulation"
    );
}

#[test]
fn tensors_cross_the_wire_bit_for_bit() {
    use prost::Message;
    use steepest_fed::net::proto;
    let data = vec![
        -0.0,
        f64::MIN_POSITIVE / 3.0,
        f64::from_bits(0x7ff8_0000_dead_beef),
        f64::INFINITY,
        0.1 + 0.2,
        f64::MAX,
    ];
    let t = proto::Tensor {
        name: "w".into(),
        shape: vec![2, 3],
        data: data.clone(),
    };
    let bytes = t.encode_to_vec();
    // Packed: one length-delimited field of 8 bytes per value.
    assert!(bytes.windows(2).any(|w| w == [0x1a, 48]), "{bytes:?}");
    let back = proto::Tensor::decode(bytes.as_slice()).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back.data), bits(&data));
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
