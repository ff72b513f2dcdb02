//! The networked mode: the same [`Strategy`] driven by a server that real
//! client processes reach over gRPC (HTTP/2, tonic) on loopback.
//!
//! Service `steepest.fed.v1.FedService` (documented in
//! `crates/steepest-fed/proto/fed.proto`; the prost messages in [`proto`] are
//! written by hand and the service is routed with tonic's codegen-free
//! `tonic::server::Grpc` / `tonic::client::Grpc`, so neither `protoc` nor a
//! build script is needed):
//! - `Poll(PollRequest{client})` → `PollReply{task | wait | done}`: a task is
//!   the round, the global model and the client configuration;
//! - `SubmitResult(ResultRequest{client, round, tensors, num_examples, loss})`
//!   → `ResultReply{}`.
//!
//! Tensors travel as `repeated double` (packed, 8 little-endian bytes each),
//! so every f64 arrives bit for bit. Each client's token travels in the
//! request metadata as `authorization: Bearer <token>` (never in the message,
//! so it does not end up in logs of message contents); the client id is in the
//! message and must be the token's owner.
//!
//! Refused with a gRPC status and a logged reason (and the round goes on):
//! - `Unauthenticated`: no bearer token, an unknown token;
//! - `PermissionDenied`: a revoked token, a token used for another client id;
//! - `ResourceExhausted`: a message over [`ServerConfig::max_message_bytes`]
//!   (tonic's `max_decoding_message_size`; tonic reports `OutOfRange`, which
//!   the service rewrites);
//! - `InvalidArgument`: bytes that are not the method's protobuf message, a
//!   result whose tensor names/shapes/lengths do not match the global model or
//!   with non-finite values;
//! - `FailedPrecondition`: a result for another round, from a client not asked
//!   this round, or after training is over;
//! - `AlreadyExists`: a second result from the same client in a round;
//! - `Unimplemented`: any other method.
//!
//! Rounds (transport-independent: [`Server::run`] and the `Hub` methods it
//! shares with the gRPC handlers know nothing of gRPC): the server computes
//! availability and `configure_fit` exactly as the simulator, waits for the
//! participants until `round_timeout` (missing ones become [`Failure`]s),
//! sorts results by client id and calls `aggregate_fit`; clients train with
//! the workload's own `fit` and the same seed, so a networked run gives the
//! simulator's global model bit for bit. A client that dies after taking its
//! task and comes back (same id and token) before the round times out gets
//! the same task again. After every round the server commits the strategy's
//! state ([`Strategy::state_bytes`]: server-optimizer moments and step counts
//! in steepest's optimizer-state format, FedYogi's moments, FedAU's interval
//! statistics) to `state_dir/strategy-<round>.state`, then `{round, model,
//! strategy_state}` to `state_dir/state.json` (each written then renamed, so
//! `state.json` always names a complete state file); a restarted server
//! resumes after the last committed round with the strategy exactly as it
//! was, so a resumed run equals an uninterrupted one bit for bit, stateful
//! strategies included. Clients ([`run_client`]) treat a lost connection as
//! transient and reconnect (a fresh HTTP/2 channel) until `give_up` passes
//! without a successful exchange, so they carry on with a restarted server.
//! Tokens are compared in constant time ([`ct_eq`], against every known and
//! revoked token, no early exit).
//!
//! The public API is blocking: [`Server::run`], [`Client`] and [`run_client`]
//! each drive a tokio runtime of their own (do not call them from inside a
//! tokio runtime). When the last round is committed the server keeps
//! answering `done` until every client seen has heard it (at most 2 s), then
//! shuts down gracefully.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

use crate::participation::Participation;
use crate::sim::{model_hash, Workload};
use crate::strategy::{check_results, ClientConfig, Failure, FitIns, FitRes, Model, Strategy};
use crate::{Error, Result};

/// The protobuf messages of `steepest.fed.v1` (`proto/fed.proto`), written by
/// hand with `prost`'s derive (field numbers as in the `.proto`).
pub mod proto {
    /// A named tensor; `data` is packed doubles (exact f64 bits).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        /// Name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Shape.
        #[prost(uint64, repeated, tag = "2")]
        pub shape: Vec<u64>,
        /// Values, row-major.
        #[prost(double, repeated, tag = "3")]
        pub data: Vec<f64>,
    }

    /// `Poll`'s request.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PollRequest {
        /// Client id (the bearer token must be this client's).
        #[prost(uint64, tag = "1")]
        pub client: u64,
    }

    /// Work for one client.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Task {
        /// Round.
        #[prost(uint64, tag = "1")]
        pub round: u64,
        /// Global model.
        #[prost(message, repeated, tag = "2")]
        pub global: Vec<Tensor>,
        /// Local optimizer (registry name).
        #[prost(string, tag = "3")]
        pub optimizer: String,
        /// Its hyperparameters as a JSON object (numbers round-trip exactly).
        #[prost(string, tag = "4")]
        pub hyper_json: String,
        /// Local steps.
        #[prost(uint64, tag = "5")]
        pub local_steps: u64,
        /// Batch size.
        #[prost(uint64, tag = "6")]
        pub batch: u64,
        /// FedProx μ.
        #[prost(double, tag = "7")]
        pub prox_mu: f64,
    }

    /// No payload.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}

    /// `Poll`'s reply.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PollReply {
        /// Task, wait or done.
        #[prost(oneof = "poll_reply::Reply", tags = "1, 2, 3")]
        pub reply: Option<poll_reply::Reply>,
    }

    /// `PollReply`'s oneof.
    pub mod poll_reply {
        /// Task, wait or done.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Reply {
            /// Train this.
            #[prost(message, tag = "1")]
            Task(super::Task),
            /// Nothing for this client now: poll again later.
            #[prost(message, tag = "2")]
            Wait(super::Empty),
            /// Training is over.
            #[prost(message, tag = "3")]
            Done(super::Empty),
        }
    }

    /// `SubmitResult`'s request.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResultRequest {
        /// Client id.
        #[prost(uint64, tag = "1")]
        pub client: u64,
        /// The round trained for.
        #[prost(uint64, tag = "2")]
        pub round: u64,
        /// The trained model.
        #[prost(message, repeated, tag = "3")]
        pub tensors: Vec<Tensor>,
        /// Local examples.
        #[prost(uint64, tag = "4")]
        pub num_examples: u64,
        /// Local training loss.
        #[prost(double, tag = "5")]
        pub loss: f64,
    }

    /// `SubmitResult`'s reply (an acknowledgement).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResultReply {}
}

/// Full gRPC path of `FedService.Poll`.
pub const POLL_PATH: &str = "/steepest.fed.v1.FedService/Poll";
/// Full gRPC path of `FedService.SubmitResult`.
pub const SUBMIT_PATH: &str = "/steepest.fed.v1.FedService/SubmitResult";

/// A tensor as committed to `state.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WireTensor {
    /// Name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f64>,
}

fn to_wire(m: &Model) -> Vec<WireTensor> {
    m.iter()
        .map(|p| WireTensor {
            name: p.name.clone(),
            shape: p.shape.clone(),
            data: p.data.clone(),
        })
        .collect()
}

fn from_wire(t: &[WireTensor]) -> Result<Model> {
    let mut m = Model::new();
    for w in t {
        m.push(w.name.clone(), &w.shape, w.data.clone())?;
    }
    Ok(m)
}

fn to_proto(m: &Model) -> Vec<proto::Tensor> {
    m.iter()
        .map(|p| proto::Tensor {
            name: p.name.clone(),
            shape: p.shape.iter().map(|&d| d as u64).collect(),
            data: p.data.clone(),
        })
        .collect()
}

fn from_proto(t: Vec<proto::Tensor>) -> Result<Model> {
    let mut m = Model::new();
    for w in t {
        let shape = w
            .shape
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| Error::Rejected(format!("tensor `{}`: dimension {d}", w.name))))
            .collect::<Result<Vec<usize>>>()?;
        m.push(w.name, &shape, w.data)?;
    }
    Ok(m)
}

/// What a client hears from [`Client::poll`].
#[derive(Clone, Debug)]
pub enum Reply {
    /// Train this: (round, global model, client configuration) as a [`FitIns`] and the model.
    Task(FitIns, Model),
    /// Nothing for this client now.
    Wait,
    /// Training is over.
    Done,
}

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to bind (must be loopback: `127.0.0.1:PORT` or `[::1]:PORT`, port 0 = any).
    pub addr: String,
    /// Token of each client id.
    pub tokens: BTreeMap<usize, String>,
    /// Rounds to run in all.
    pub rounds: u64,
    /// Seed (same as the clients').
    pub seed: u64,
    /// How long a round waits for its participants.
    pub round_timeout: Duration,
    /// Largest accepted gRPC message, bytes (tonic's `max_decoding_message_size`).
    pub max_message_bytes: usize,
    /// Where committed rounds are written (None = not persisted).
    pub state_dir: Option<PathBuf>,
}

/// The round state shared by the round loop and the request handlers.
struct Shared {
    round: u64,
    global: Arc<Model>,
    tasks: BTreeMap<usize, FitIns>,
    results: BTreeMap<usize, FitRes>,
    done: bool,
    stopped: bool,
    /// (client, token), every one compared on each request.
    tokens: Vec<(usize, String)>,
    revoked: Vec<String>,
    log: Vec<String>,
    /// Clients that polled and have not yet been told "done".
    waiting_done: BTreeSet<usize>,
}

/// The transport-independent core: authentication, task hand-out and result
/// intake, all under one lock, with the refusal reasons logged. The gRPC
/// handlers only decode, call these, and encode.
#[derive(Clone)]
struct Hub(Arc<(Mutex<Shared>, Condvar)>);

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs `reason` and returns it as a status with `code`.
    fn refuse(&self, code: Code, reason: String) -> Status {
        self.lock().log.push(reason.clone());
        Status::new(code, reason)
    }

    /// Checks that `token` is `client`'s and not revoked; in constant time
    /// (every known and revoked token is compared in full, no early exit).
    fn authenticate(s: &Shared, client: u64, token: Option<&str>) -> std::result::Result<usize, (Code, String)> {
        let Some(token) = token else {
            return Err((Code::Unauthenticated, format!("client {client}: no bearer token")));
        };
        let revoked = s
            .revoked
            .iter()
            .fold(false, |acc, t| acc | ct_eq(t.as_bytes(), token.as_bytes()));
        let (mut mine, mut other) = (false, false);
        for (c, t) in &s.tokens {
            let m = ct_eq(t.as_bytes(), token.as_bytes());
            mine |= m & (*c as u64 == client);
            other |= m & (*c as u64 != client);
        }
        if revoked {
            Err((Code::PermissionDenied, format!("client {client}: revoked token")))
        } else if mine {
            Ok(client as usize)
        } else if other {
            Err((
                Code::PermissionDenied,
                format!("client {client}: token belongs to another client"),
            ))
        } else {
            Err((Code::Unauthenticated, format!("client {client}: unknown token")))
        }
    }

    fn poll(&self, client: u64, token: Option<&str>) -> std::result::Result<proto::PollReply, Status> {
        use proto::poll_reply::Reply as R;
        let mut s = self.lock();
        let client = match Self::authenticate(&s, client, token) {
            Ok(c) => c,
            Err((code, why)) => {
                s.log.push(why.clone());
                return Err(Status::new(code, why));
            }
        };
        let reply = if s.done {
            if s.waiting_done.remove(&client) {
                self.0 .1.notify_all();
            }
            R::Done(proto::Empty {})
        } else {
            s.waiting_done.insert(client);
            match (s.tasks.get(&client), s.results.contains_key(&client)) {
                (Some(ins), false) => {
                    let c = &ins.config;
                    R::Task(proto::Task {
                        round: s.round,
                        global: to_proto(&s.global),
                        optimizer: c.optimizer.clone(),
                        hyper_json: serde_json::to_string(&c.hyper).map_err(|e| Status::internal(e.to_string()))?,
                        local_steps: c.local_steps as u64,
                        batch: c.batch as u64,
                        prox_mu: c.prox_mu,
                    })
                }
                _ => R::Wait(proto::Empty {}),
            }
        };
        Ok(proto::PollReply { reply: Some(reply) })
    }

    fn submit(&self, req: proto::ResultRequest, token: Option<&str>) -> std::result::Result<(), Status> {
        let mut s = self.lock();
        let client = match Self::authenticate(&s, req.client, token) {
            Ok(c) => c,
            Err((code, why)) => {
                s.log.push(why.clone());
                return Err(Status::new(code, why));
            }
        };
        let round = req.round;
        let refusal = if round != s.round || s.done {
            Some((
                Code::FailedPrecondition,
                format!("client {client}: result for round {round}, current round {}", s.round),
            ))
        } else if !s.tasks.contains_key(&client) {
            Some((
                Code::FailedPrecondition,
                format!("client {client}: not a participant of round {round}"),
            ))
        } else if s.results.contains_key(&client) {
            Some((
                Code::AlreadyExists,
                format!("client {client}: duplicate result for round {round}"),
            ))
        } else {
            let r = from_proto(req.tensors).map(|params| FitRes {
                client,
                params,
                num_examples: req.num_examples,
                loss: req.loss,
            });
            match r.and_then(|r| check_results(&s.global, std::slice::from_ref(&r)).map(|()| r)) {
                Err(e) => Some((Code::InvalidArgument, format!("client {client}: {e}"))),
                Ok(r) => {
                    s.results.insert(client, r);
                    self.0 .1.notify_all();
                    None
                }
            }
        };
        match refusal {
            None => Ok(()),
            Some((code, why)) => {
                s.log.push(why.clone());
                Err(Status::new(code, why))
            }
        }
    }
}

/// A bound server.
pub struct Server {
    cfg: ServerConfig,
    listener: std::net::TcpListener,
    hub: Hub,
}

/// What a networked run returns.
#[derive(Clone, Debug, Serialize)]
pub struct NetReport {
    /// Rounds run by this server process (after any resume).
    pub rounds_run: u64,
    /// The round it resumed after (0 = fresh).
    pub resumed_after: u64,
    /// Hash of the final model.
    pub model_hash: String,
    /// Refusals and timeouts, with reasons.
    pub log: Vec<String>,
    /// The final model.
    #[serde(skip)]
    pub model: Model,
}

/// A handle to revoke tokens while the server runs.
#[derive(Clone)]
pub struct Revoker(Hub);

impl Revoker {
    /// Refuses `token` from now on (`PermissionDenied`).
    pub fn revoke(&self, token: &str) {
        self.0.lock().revoked.push(token.to_string());
    }
}

/// A handle that kills a running server as a crash would: [`Server::run`]
/// returns an error at once without committing the round in flight, and the
/// listener and every connection are dropped (clients see `Unavailable`).
#[derive(Clone)]
pub struct Killer(Hub);

impl Killer {
    /// Kills the server.
    pub fn kill(&self) {
        self.0.lock().stopped = true;
        self.0 .0 .1.notify_all();
    }
}

#[derive(Serialize, Deserialize)]
struct Committed {
    round: u64,
    model: Vec<WireTensor>,
    /// File (in the state directory) with the strategy's state; None = stateless.
    #[serde(default)]
    strategy_state: Option<String>,
}

/// A committed round: its number, the model, the strategy's state (if any).
type Restored = (u64, Model, Option<Vec<u8>>);

impl Server {
    /// Binds the listener (loopback only).
    pub fn bind(cfg: ServerConfig) -> Result<Server> {
        let loopback = cfg.addr.starts_with("127.0.0.1:") || cfg.addr.starts_with("[::1]:");
        if !loopback {
            return Err(Error::Config(format!("refusing to bind {}: loopback only", cfg.addr)));
        }
        let mut seen = BTreeMap::new();
        for (c, t) in &cfg.tokens {
            if seen.insert(t.clone(), *c).is_some() {
                return Err(Error::Config(format!("token for client {c} is not unique")));
            }
        }
        let listener =
            std::net::TcpListener::bind(&cfg.addr).map_err(|e| Error::Io(format!("bind {}: {e}", cfg.addr)))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Io(format!("bind {}: {e}", cfg.addr)))?;
        let shared = Shared {
            round: 0,
            global: Arc::new(Model::new()),
            tasks: BTreeMap::new(),
            results: BTreeMap::new(),
            done: false,
            stopped: false,
            tokens: cfg.tokens.iter().map(|(c, t)| (*c, t.clone())).collect(),
            revoked: Vec::new(),
            log: Vec::new(),
            waiting_done: BTreeSet::new(),
        };
        Ok(Server {
            cfg,
            listener,
            hub: Hub(Arc::new((Mutex::new(shared), Condvar::new()))),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> Result<String> {
        self.listener
            .local_addr()
            .map(|a| a.to_string())
            .map_err(|e| Error::Io(e.to_string()))
    }

    /// A token revoker.
    pub fn revoker(&self) -> Revoker {
        Revoker(self.hub.clone())
    }

    /// A handle that kills the running server (for crash tests).
    pub fn killer(&self) -> Killer {
        Killer(self.hub.clone())
    }

    /// Runs the rounds with `strategy`, starting from `init` (or the last committed round).
    pub fn run<S: Strategy + ?Sized>(
        self,
        strategy: &mut S,
        participation: &Participation,
        clients: usize,
        init: Model,
    ) -> Result<NetReport> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Io(format!("tokio runtime: {e}")))?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = {
            let _guard = rt.enter();
            let listener =
                tokio::net::TcpListener::from_std(self.listener).map_err(|e| Error::Io(format!("listener: {e}")))?;
            let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let svc = FedService {
                hub: self.hub.clone(),
                max: self.cfg.max_message_bytes,
            };
            rt.spawn(async move {
                tonic::transport::Server::builder()
                    .serve_with_incoming_shutdown(svc, incoming, async {
                        let _ = shutdown_rx.await;
                    })
                    .await
            })
        };
        let cfg = &self.cfg;
        let hub = &self.hub;
        let outcome = drive_rounds(cfg, hub, strategy, participation, clients, init);
        let outcome = match outcome {
            Ok(v) => v,
            Err(e) => {
                // Killed or failed: drop the listener and every connection at once.
                rt.shutdown_timeout(Duration::from_millis(200));
                return Err(e);
            }
        };
        let (global, start) = outcome;
        let log = {
            let (lock, cv) = &*hub.0;
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            s.done = true;
            s.global = Arc::new(global.clone());
            // Let the clients seen hear "done" (at most 2 s).
            let deadline = Instant::now() + Duration::from_secs(2);
            while !s.waiting_done.is_empty() && !s.stopped {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                s = cv.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
            }
            s.log.clone()
        };
        // Graceful: in-flight replies are written, connections get GOAWAY.
        let _ = shutdown_tx.send(());
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), serving).await });
        rt.shutdown_timeout(Duration::from_millis(200));
        Ok(NetReport {
            rounds_run: cfg.rounds.saturating_sub(start),
            resumed_after: start,
            model_hash: format!("{:016x}", model_hash(&global)),
            log,
            model: global,
        })
    }
}

/// The round loop (no transport in it): resume, then for each round
/// availability → configure_fit → wait for results or the timeout →
/// aggregate_fit → commit. Returns the final model and the round resumed after.
fn drive_rounds<S: Strategy + ?Sized>(
    cfg: &ServerConfig,
    hub: &Hub,
    strategy: &mut S,
    participation: &Participation,
    clients: usize,
    init: Model,
) -> Result<(Model, u64)> {
    let (mut global, start) = match load(cfg)? {
        Some((r, m, state)) => {
            match (state, strategy.state_bytes()?.is_some()) {
                (Some(bytes), _) => strategy.load_state_bytes(&m, &bytes)?,
                (None, true) if r > 0 => {
                    return Err(Error::Config(format!(
                        "committed round {r} has no state for strategy `{}`: cannot resume it exactly",
                        strategy.name()
                    )))
                }
                (None, _) => {}
            }
            (m, r)
        }
        None => (init, 0),
    };
    let mut avail = participation.start(clients, cfg.seed)?;
    for t in 1..=start {
        avail.round(t)?;
    }
    let (lock, cv) = &*hub.0;
    for t in (start + 1)..=cfg.rounds {
        let available = avail.round(t)?;
        let ins = strategy.configure_fit(t, &available, cfg.seed)?;
        {
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            s.round = t;
            s.global = Arc::new(global.clone());
            s.results.clear();
            s.tasks = ins.iter().map(|i| (i.client, i.clone())).collect();
        }
        let deadline = Instant::now() + cfg.round_timeout;
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        while s.results.len() < s.tasks.len() && !s.stopped {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            s = cv.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        if s.stopped {
            return Err(Error::Io(format!("server killed during round {t}")));
        }
        // As in the simulator: a result without examples counts as a failure.
        let results: Vec<FitRes> = s.results.values().filter(|r| r.num_examples > 0).cloned().collect();
        let mut failures: Vec<Failure> = s
            .tasks
            .keys()
            .filter(|c| !s.results.contains_key(c))
            .map(|&c| Failure {
                client: c,
                reason: "no result before the round timeout".into(),
            })
            .collect();
        failures.extend(s.results.values().filter(|r| r.num_examples == 0).map(|r| Failure {
            client: r.client,
            reason: "no local data".into(),
        }));
        failures.sort_by_key(|f| f.client);
        for f in &failures {
            s.log.push(format!("round {t}: client {}: {}", f.client, f.reason));
        }
        s.tasks.clear();
        drop(s);
        match strategy.aggregate_fit(t, &global, &results, &failures) {
            Ok(m) => global = m,
            Err(Error::NoResults { .. }) => {}
            Err(e) => return Err(e),
        }
        commit(cfg, t, &global, strategy.state_bytes()?)?;
    }
    Ok((global, start))
}

fn load(cfg: &ServerConfig) -> Result<Option<Restored>> {
    let Some(dir) = &cfg.state_dir else {
        return Ok(None);
    };
    let path = dir.join("state.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    let c: Committed = serde_json::from_str(&text)
        .map_err(|e| Error::Io(format!("{}: not a committed round: {e}", path.display())))?;
    let state = match &c.strategy_state {
        Some(name) => {
            let p = dir.join(name);
            Some(std::fs::read(&p).map_err(|e| Error::Io(format!("{}: {e}", p.display())))?)
        }
        None => None,
    };
    Ok(Some((c.round, from_wire(&c.model)?, state)))
}

fn commit(cfg: &ServerConfig, round: u64, model: &Model, state: Option<Vec<u8>>) -> Result<()> {
    let Some(dir) = &cfg.state_dir else { return Ok(()) };
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, bytes).map_err(|e| Error::Io(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, dir.join(name)).map_err(|e| Error::Io(e.to_string()))
    };
    let state_name = match state {
        Some(bytes) => {
            let name = format!("strategy-{round}.state");
            write(&name, &bytes)?;
            Some(name)
        }
        None => None,
    };
    let text = serde_json::to_string(&Committed {
        round,
        model: to_wire(model),
        strategy_state: state_name,
    })
    .map_err(|e| Error::Io(e.to_string()))?;
    write("state.json", text.as_bytes())?;
    // The previous round's state file is no longer named by state.json.
    if round > 1 {
        let _ = std::fs::remove_file(dir.join(format!("strategy-{}.state", round - 1)));
    }
    Ok(())
}

/// Byte-string equality whose time depends only on the lengths, not on where
/// the strings first differ (no early exit; the result is read through
/// `black_box` so the loop is not turned into an early-exit comparison).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(std::hint::black_box(x ^ y));
    }
    std::hint::black_box(diff) == 0
}

// ---------------------------------------------------------------- gRPC codec

/// prost encoding/decoding; a message that does not decode is
/// `InvalidArgument` (tonic's own prost codec says `Internal`), logged on the
/// server side.
struct PbCodec<E, D> {
    hub: Option<Hub>,
    _m: PhantomData<fn(E) -> D>,
}

impl<E, D> PbCodec<E, D> {
    fn new(hub: Option<Hub>) -> Self {
        PbCodec { hub, _m: PhantomData }
    }
}

struct PbEncoder<E>(PhantomData<fn(E)>);
struct PbDecoder<D> {
    hub: Option<Hub>,
    _m: PhantomData<fn() -> D>,
}

impl<E: prost::Message + Send + 'static, D: prost::Message + Default + Send + 'static> Codec for PbCodec<E, D> {
    type Encode = E;
    type Decode = D;
    type Encoder = PbEncoder<E>;
    type Decoder = PbDecoder<D>;
    fn encoder(&mut self) -> PbEncoder<E> {
        PbEncoder(PhantomData)
    }
    fn decoder(&mut self) -> PbDecoder<D> {
        PbDecoder {
            hub: self.hub.clone(),
            _m: PhantomData,
        }
    }
}

impl<E: prost::Message> Encoder for PbEncoder<E> {
    type Item = E;
    type Error = Status;
    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> std::result::Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(format!("encode: {e}")))
    }
}

impl<D: prost::Message + Default> Decoder for PbDecoder<D> {
    type Item = D;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> std::result::Result<Option<D>, Status> {
        match D::decode(src) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                let why = format!("malformed message: {e}");
                Err(match &self.hub {
                    Some(h) => h.refuse(Code::InvalidArgument, why),
                    None => Status::invalid_argument(why),
                })
            }
        }
    }
}

/// Raw bytes as a message (for [`Client::call_raw`]).
struct RawCodec;
struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> std::result::Result<(), Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> std::result::Result<Option<Vec<u8>>, Status> {
        let n = prost::bytes::Buf::remaining(src);
        Ok(Some(prost::bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

// -------------------------------------------------------------- gRPC service

fn bearer(md: &tonic::metadata::MetadataMap) -> Option<String> {
    md.get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

struct PollSvc(Hub);

impl tower_service::Service<tonic::Request<proto::PollRequest>> for PollSvc {
    type Response = tonic::Response<proto::PollReply>;
    type Error = Status;
    type Future = std::future::Ready<std::result::Result<Self::Response, Status>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::result::Result<(), Status>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: tonic::Request<proto::PollRequest>) -> Self::Future {
        let token = bearer(req.metadata());
        std::future::ready(
            self.0
                .poll(req.get_ref().client, token.as_deref())
                .map(tonic::Response::new),
        )
    }
}

struct SubmitSvc(Hub);

impl tower_service::Service<tonic::Request<proto::ResultRequest>> for SubmitSvc {
    type Response = tonic::Response<proto::ResultReply>;
    type Error = Status;
    type Future = std::future::Ready<std::result::Result<Self::Response, Status>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::result::Result<(), Status>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: tonic::Request<proto::ResultRequest>) -> Self::Future {
        let token = bearer(req.metadata());
        let r = self.0.submit(req.into_inner(), token.as_deref());
        std::future::ready(r.map(|()| tonic::Response::new(proto::ResultReply {})))
    }
}

/// `FedService`'s router: path → unary handler, with the message size limit.
#[derive(Clone)]
struct FedService {
    hub: Hub,
    max: usize,
}

impl tower_service::Service<http::Request<tonic::body::Body>> for FedService {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFut<std::result::Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let (hub, max) = (self.hub.clone(), self.max);
        Box::pin(async move {
            let path = req.uri().path().to_string();
            let resp = match path.as_str() {
                POLL_PATH => {
                    let mut g = tonic::server::Grpc::new(PbCodec::<proto::PollReply, proto::PollRequest>::new(Some(
                        hub.clone(),
                    )))
                    .max_decoding_message_size(max);
                    g.unary(PollSvc(hub.clone()), req).await
                }
                SUBMIT_PATH => {
                    let mut g = tonic::server::Grpc::new(PbCodec::<proto::ResultReply, proto::ResultRequest>::new(
                        Some(hub.clone()),
                    ))
                    .max_decoding_message_size(max);
                    g.unary(SubmitSvc(hub.clone()), req).await
                }
                other => {
                    let other = other.chars().take(200).collect::<String>();
                    return Ok(hub
                        .refuse(Code::Unimplemented, format!("unknown method `{other}`"))
                        .into_http());
                }
            };
            // tonic refuses a message over the decoding limit with OutOfRange
            // before any handler runs; ours never answer OutOfRange.
            let out_of_range = resp.headers().get("grpc-status").is_some_and(|v| v.as_bytes() == b"11");
            if out_of_range {
                return Ok(hub
                    .refuse(Code::ResourceExhausted, format!("{path}: message over {max} bytes"))
                    .into_http());
            }
            Ok(resp)
        })
    }
}

// ------------------------------------------------------------------- client

/// A blocking gRPC client of `FedService` (its own single-threaded tokio
/// runtime). The connection is opened on first use and reopened after a
/// transport error, so a client outlives a server restart.
pub struct Client {
    rt: tokio::runtime::Runtime,
    endpoint: tonic::transport::Endpoint,
    grpc: Option<tonic::client::Grpc<tonic::transport::Channel>>,
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

/// Largest message a client accepts (the global model), bytes.
const CLIENT_MAX_DECODE: usize = 1 << 30;

impl Client {
    /// A client of the server at `addr` (`127.0.0.1:PORT`) sending `token`
    /// as `authorization: Bearer <token>` (`None`: no token at all).
    pub fn new(addr: &str, token: Option<&str>) -> Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Io(format!("tokio runtime: {e}")))?;
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Error::Config(format!("server address `{addr}`: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true);
        let token = match token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| Error::Config("token: not a valid header value".into()))?,
            ),
            None => None,
        };
        Ok(Client {
            rt,
            endpoint,
            grpc: None,
            token,
        })
    }

    fn call<M1, M2, C>(&mut self, path: &'static str, msg: M1, codec: C) -> std::result::Result<M2, Status>
    where
        M1: Send + Sync + 'static,
        M2: Send + Sync + 'static,
        C: Codec<Encode = M1, Decode = M2>,
    {
        let mut req = tonic::Request::new(msg);
        if let Some(t) = &self.token {
            req.metadata_mut().insert("authorization", t.clone());
        }
        let endpoint = self.endpoint.clone();
        let mut grpc = self.grpc.take();
        let (res, grpc) = self.rt.block_on(async move {
            if grpc.is_none() {
                match endpoint.connect().await {
                    Ok(ch) => grpc = Some(tonic::client::Grpc::new(ch).max_decoding_message_size(CLIENT_MAX_DECODE)),
                    Err(e) => return (Err(Status::unavailable(format!("connect: {e}"))), None),
                }
            }
            let g = grpc.as_mut().expect("connected above");
            if let Err(e) = g.ready().await {
                return (Err(Status::unavailable(format!("not ready: {e}"))), None);
            }
            let r = g
                .unary(req, http::uri::PathAndQuery::from_static(path), codec)
                .await
                .map(tonic::Response::into_inner);
            (r, grpc)
        });
        // A transport failure: reconnect on the next call.
        self.grpc = match &res {
            Err(s)
                if matches!(
                    s.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
                ) =>
            {
                None
            }
            _ => grpc,
        };
        res
    }

    /// `Poll` as client `client`.
    pub fn poll(&mut self, client: usize) -> std::result::Result<Reply, Status> {
        use proto::poll_reply::Reply as R;
        let rep: proto::PollReply = self.call(
            POLL_PATH,
            proto::PollRequest { client: client as u64 },
            PbCodec::<proto::PollRequest, proto::PollReply>::new(None),
        )?;
        match rep.reply {
            Some(R::Wait(_)) => Ok(Reply::Wait),
            Some(R::Done(_)) => Ok(Reply::Done),
            None => Err(Status::invalid_argument("empty poll reply")),
            Some(R::Task(t)) => {
                let bad = |e: String| Status::invalid_argument(format!("task from the server: {e}"));
                let global = from_proto(t.global).map_err(|e| bad(e.to_string()))?;
                let hyper = serde_json::from_str(&t.hyper_json).map_err(|e| bad(e.to_string()))?;
                let ins = FitIns {
                    client,
                    round: t.round,
                    config: ClientConfig {
                        optimizer: t.optimizer,
                        hyper,
                        local_steps: usize::try_from(t.local_steps).map_err(|e| bad(e.to_string()))?,
                        batch: usize::try_from(t.batch).map_err(|e| bad(e.to_string()))?,
                        prox_mu: t.prox_mu,
                    },
                };
                Ok(Reply::Task(ins, global))
            }
        }
    }

    /// `SubmitResult` of `res` (its `client` field is the id sent) for `round`.
    pub fn submit(&mut self, round: u64, res: &FitRes) -> std::result::Result<(), Status> {
        let req = proto::ResultRequest {
            client: res.client as u64,
            round,
            tensors: to_proto(&res.params),
            num_examples: res.num_examples,
            loss: res.loss,
        };
        self.call(
            SUBMIT_PATH,
            req,
            PbCodec::<proto::ResultRequest, proto::ResultReply>::new(None),
        )
        .map(|_| ())
    }

    /// Sends `bytes` as the message of method `path` (e.g. [`POLL_PATH`]) and
    /// returns the reply's bytes: for probing the server with malformed or
    /// oversized messages.
    pub fn call_raw(&mut self, path: &'static str, bytes: Vec<u8>) -> std::result::Result<Vec<u8>, Status> {
        self.call(path, bytes, RawCodec)
    }
}

/// Codes after which a client stops: the server refused it, not the network.
fn fatal(code: Code) -> bool {
    matches!(
        code,
        Code::Unauthenticated | Code::PermissionDenied | Code::InvalidArgument | Code::ResourceExhausted
    )
}

/// Runs one client until the server says done: poll, train, submit; a lost
/// connection (server restart, network) is retried until `give_up` passes
/// without any successful exchange. A result refused as stale
/// (`FailedPrecondition`: the round timed out meanwhile) or duplicate is
/// dropped and polling goes on; an authentication or message refusal ends the
/// client with [`Error::Rejected`]. Returns the rounds trained (results accepted).
pub fn run_client<W: Workload + ?Sized>(
    addr: &str,
    client: usize,
    token: &str,
    w: &W,
    seed: u64,
    poll: Duration,
    give_up: Duration,
) -> Result<u64> {
    let mut c = Client::new(addr, Some(token))?;
    let mut trained = 0;
    let mut last_ok = Instant::now();
    let rejected = |s: Status| Error::Rejected(format!("{:?}: {}", s.code(), s.message()));
    loop {
        match c.poll(client) {
            Ok(Reply::Done) => return Ok(trained),
            Ok(Reply::Wait) => {
                last_ok = Instant::now();
                std::thread::sleep(poll);
            }
            Ok(Reply::Task(ins, global)) => {
                last_ok = Instant::now();
                let r = w.fit(&ins, &global, seed)?;
                match c.submit(ins.round, &r) {
                    Ok(()) => trained += 1,
                    Err(s) if fatal(s.code()) => return Err(rejected(s)),
                    Err(_) => std::thread::sleep(poll),
                }
            }
            Err(s) if fatal(s.code()) => return Err(rejected(s)),
            Err(s) => {
                if last_ok.elapsed() > give_up {
                    return Err(Error::Io(format!("server {addr}: {:?}: {}", s.code(), s.message())));
                }
                std::thread::sleep(poll);
            }
        }
    }
}
