//! The networked mode: the same [`Strategy`] driven by a server that real
//! client processes reach over TCP on loopback.
//!
//! Transport (not gRPC yet — see the crate's status notes): one request per
//! connection, one JSON line each way (`serde_json` with exact f64
//! round-trips), so a client that drops simply reconnects on its next poll.
//! - `{"poll": {"client", "token"}}` → a task (round, global model, client
//!   configuration), `"wait"` or `"done"`;
//! - `{"result": {"client", "token", "round", "tensors", "num_examples", "loss"}}` → `"ack"`.
//!
//! Refused with a logged reason (and the round goes on): unknown tokens, a
//! token used for another client id, revoked tokens, messages over the size
//! limit, malformed JSON, results for another round or from a client not asked
//! this round, duplicates, and results whose names/shapes/values do not match
//! the global model.
//!
//! Rounds: the server computes availability and `configure_fit` exactly as the
//! simulator, waits for the participants until `round_timeout` (missing ones
//! become [`Failure`]s), sorts results by client id and calls `aggregate_fit`;
//! clients train with the workload's own `fit` and the same seed, so a
//! networked run gives the simulator's global model bit for bit. After every
//! round the server commits the strategy's state ([`Strategy::state_bytes`]:
//! server-optimizer moments and step counts in steepest's optimizer-state
//! format, FedYogi's moments, FedAU's interval statistics) to
//! `state_dir/strategy-<round>.state`, then `{round, model, strategy_state}`
//! to `state_dir/state.json` (each written then renamed, so `state.json`
//! always names a complete state file); a restarted server resumes after the
//! last committed round with the strategy exactly as it was, so a resumed run
//! equals an uninterrupted one bit for bit, stateful strategies included.
//! Tokens are compared in constant time ([`ct_eq`], against every known and
//! revoked token, no early exit).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::participation::Participation;
use crate::sim::{model_hash, Workload};
use crate::strategy::{check_results, ClientConfig, Failure, FitIns, FitRes, Model, Strategy};
use crate::{Error, Result};

/// A tensor on the wire.
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

/// Client → server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Ask for work.
    Poll {
        /// Client id.
        client: usize,
        /// Its token.
        token: String,
    },
    /// Deliver a result.
    Result {
        /// Client id.
        client: usize,
        /// Its token.
        token: String,
        /// The round trained for.
        round: u64,
        /// The trained model.
        tensors: Vec<WireTensor>,
        /// Local examples.
        num_examples: u64,
        /// Local training loss.
        loss: f64,
    },
}

/// Server → client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Train this.
    Task {
        /// Round.
        round: u64,
        /// Global model.
        global: Vec<WireTensor>,
        /// Client configuration.
        optimizer: String,
        /// Local optimizer hyperparameters.
        hyper: steepest::hyper::Hyper,
        /// Local steps.
        local_steps: usize,
        /// Batch size.
        batch: usize,
        /// FedProx μ.
        prox_mu: f64,
    },
    /// Nothing for you now.
    Wait,
    /// Training is over.
    Done,
    /// Result accepted.
    Ack,
    /// Refused, with the reason.
    Refused(String),
}

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to bind (must be loopback: 127.0.0.1:PORT, port 0 = any).
    pub addr: String,
    /// Token of each client id.
    pub tokens: BTreeMap<usize, String>,
    /// Rounds to run in all.
    pub rounds: u64,
    /// Seed (same as the clients').
    pub seed: u64,
    /// How long a round waits for its participants.
    pub round_timeout: Duration,
    /// Largest accepted request, bytes.
    pub max_message_bytes: usize,
    /// Where committed rounds are written (None = not persisted).
    pub state_dir: Option<PathBuf>,
}

struct Shared {
    round: u64,
    global: Arc<Model>,
    tasks: BTreeMap<usize, FitIns>,
    results: BTreeMap<usize, FitRes>,
    done: bool,
    /// (client, token), every one compared on each request.
    tokens: Vec<(usize, String)>,
    revoked: Vec<String>,
    log: Vec<String>,
    max_bytes: usize,
}

/// A bound server.
pub struct Server {
    cfg: ServerConfig,
    listener: TcpListener,
    shared: Arc<(Mutex<Shared>, Condvar)>,
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
pub struct Revoker(Arc<(Mutex<Shared>, Condvar)>);

impl Revoker {
    /// Refuses `token` from now on.
    pub fn revoke(&self, token: &str) {
        let mut s = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        s.revoked.push(token.to_string());
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
        let listener = TcpListener::bind(&cfg.addr).map_err(|e| Error::Io(format!("bind {}: {e}", cfg.addr)))?;
        let mut seen = BTreeMap::new();
        for (c, t) in &cfg.tokens {
            if seen.insert(t.clone(), *c).is_some() {
                return Err(Error::Config(format!("token for client {c} is not unique")));
            }
        }
        let shared = Shared {
            round: 0,
            global: Arc::new(Model::new()),
            tasks: BTreeMap::new(),
            results: BTreeMap::new(),
            done: false,
            tokens: cfg.tokens.iter().map(|(c, t)| (*c, t.clone())).collect(),
            revoked: Vec::new(),
            log: Vec::new(),
            max_bytes: cfg.max_message_bytes,
        };
        Ok(Server {
            cfg,
            listener,
            shared: Arc::new((Mutex::new(shared), Condvar::new())),
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
        Revoker(self.shared.clone())
    }

    /// Runs the rounds with `strategy`, starting from `init` (or the last committed round).
    pub fn run<S: Strategy + ?Sized>(
        self,
        strategy: &mut S,
        participation: &Participation,
        clients: usize,
        init: Model,
    ) -> Result<NetReport> {
        let listener = self.listener.try_clone().map_err(|e| Error::Io(e.to_string()))?;
        let shared = self.shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sh = shared.clone();
                std::thread::spawn(move || handle(stream, &sh));
            }
        });
        let (mut global, start) = match self.load()? {
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
        let mut avail = participation.start(clients, self.cfg.seed)?;
        for t in 1..=start {
            avail.round(t)?;
        }
        let (lock, cv) = &*self.shared;
        for t in (start + 1)..=self.cfg.rounds {
            let available = avail.round(t)?;
            let ins = strategy.configure_fit(t, &available, self.cfg.seed)?;
            {
                let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
                s.round = t;
                s.global = Arc::new(global.clone());
                s.results.clear();
                s.tasks = ins.iter().map(|i| (i.client, i.clone())).collect();
            }
            let deadline = Instant::now() + self.cfg.round_timeout;
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            while s.results.len() < s.tasks.len() {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                s = cv.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
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
            self.commit(t, &global, strategy.state_bytes()?)?;
        }
        let log = {
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            s.done = true;
            s.global = Arc::new(global.clone());
            s.log.clone()
        };
        Ok(NetReport {
            rounds_run: self.cfg.rounds.saturating_sub(start),
            resumed_after: start,
            model_hash: format!("{:016x}", model_hash(&global)),
            log,
            model: global,
        })
    }

    fn load(&self) -> Result<Option<Restored>> {
        let Some(dir) = &self.cfg.state_dir else {
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

    fn commit(&self, round: u64, model: &Model, state: Option<Vec<u8>>) -> Result<()> {
        let Some(dir) = &self.cfg.state_dir else { return Ok(()) };
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

fn send(stream: &mut TcpStream, r: &Reply) {
    if let Ok(mut text) = serde_json::to_string(r) {
        text.push('\n');
        let _ = stream.write_all(text.as_bytes());
    }
}

fn handle(mut stream: TcpStream, sh: &Arc<(Mutex<Shared>, Condvar)>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let max = sh.0.lock().unwrap_or_else(|e| e.into_inner()).max_bytes;
    let mut line = Vec::new();
    let read = stream
        .try_clone()
        .map(|s| BufReader::new(s).take(max as u64 + 1).read_until(b'\n', &mut line));
    let refuse = |stream: &mut TcpStream, why: String| {
        sh.0.lock().unwrap_or_else(|e| e.into_inner()).log.push(why.clone());
        send(stream, &Reply::Refused(why));
    };
    if read.is_err() || matches!(read, Ok(Err(_))) {
        return;
    }
    if line.len() > max {
        return refuse(&mut stream, format!("message over {max} bytes"));
    }
    let req: Request = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => return refuse(&mut stream, format!("malformed message: {e}")),
    };
    let (lock, cv) = &**sh;
    let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
    let (client, token) = match &req {
        Request::Poll { client, token } | Request::Result { client, token, .. } => (*client, token.clone()),
    };
    // Constant time: every known and revoked token is compared in full,
    // without early exit, whichever matches.
    let revoked = s
        .revoked
        .iter()
        .fold(false, |acc, t| acc | ct_eq(t.as_bytes(), token.as_bytes()));
    let (mut mine, mut other) = (false, false);
    for (c, t) in &s.tokens {
        let m = ct_eq(t.as_bytes(), token.as_bytes());
        mine |= m & (*c == client);
        other |= m & (*c != client);
    }
    let why = if revoked {
        Some(format!("client {client}: revoked token"))
    } else if mine {
        None
    } else if other {
        Some(format!("client {client}: token belongs to another client"))
    } else {
        Some(format!("client {client}: unknown token"))
    };
    if let Some(why) = why {
        drop(s);
        return refuse(&mut stream, why);
    }
    match req {
        Request::Poll { client, .. } => {
            let reply = if s.done {
                Reply::Done
            } else if let (Some(ins), false) = (s.tasks.get(&client), s.results.contains_key(&client)) {
                let c = &ins.config;
                Reply::Task {
                    round: s.round,
                    global: to_wire(&s.global),
                    optimizer: c.optimizer.clone(),
                    hyper: c.hyper.clone(),
                    local_steps: c.local_steps,
                    batch: c.batch,
                    prox_mu: c.prox_mu,
                }
            } else {
                Reply::Wait
            };
            drop(s);
            send(&mut stream, &reply);
        }
        Request::Result {
            client,
            round,
            tensors,
            num_examples,
            loss,
            ..
        } => {
            let why = if round != s.round || s.done {
                Some(format!(
                    "client {client}: result for round {round}, current round {}",
                    s.round
                ))
            } else if !s.tasks.contains_key(&client) {
                Some(format!("client {client}: not a participant of round {round}"))
            } else if s.results.contains_key(&client) {
                Some(format!("client {client}: duplicate result for round {round}"))
            } else {
                match from_wire(&tensors).map(|params| FitRes {
                    client,
                    params,
                    num_examples,
                    loss,
                }) {
                    Err(e) => Some(format!("client {client}: {e}")),
                    Ok(r) => match check_results(&s.global, std::slice::from_ref(&r)) {
                        Err(e) => Some(format!("client {client}: {e}")),
                        Ok(()) => {
                            s.results.insert(client, r);
                            cv.notify_all();
                            None
                        }
                    },
                }
            };
            drop(s);
            match why {
                Some(w) => refuse(&mut stream, w),
                None => send(&mut stream, &Reply::Ack),
            }
        }
    }
}

/// One request/reply exchange on a fresh connection.
pub fn exchange(addr: &str, req: &Request) -> Result<Reply> {
    let mut s = TcpStream::connect(addr).map_err(|e| Error::Io(format!("connect {addr}: {e}")))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut text = serde_json::to_string(req).map_err(|e| Error::Io(e.to_string()))?;
    text.push('\n');
    s.write_all(text.as_bytes()).map_err(|e| Error::Io(e.to_string()))?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| Error::Io(format!("read from {addr}: {e}")))?;
    serde_json::from_str(&line).map_err(|e| Error::Io(format!("bad reply from {addr}: {e}")))
}

/// Runs one client until the server says done: poll, train, submit; a lost
/// connection (server restart, network) is retried until `give_up` passes
/// without any successful exchange. Returns the rounds trained.
pub fn run_client<W: Workload + ?Sized>(
    addr: &str,
    client: usize,
    token: &str,
    w: &W,
    seed: u64,
    poll: Duration,
    give_up: Duration,
) -> Result<u64> {
    let mut trained = 0;
    let mut last_ok = Instant::now();
    loop {
        let reply = match exchange(
            addr,
            &Request::Poll {
                client,
                token: token.to_string(),
            },
        ) {
            Ok(r) => {
                last_ok = Instant::now();
                r
            }
            Err(e) => {
                if last_ok.elapsed() > give_up {
                    return Err(e);
                }
                std::thread::sleep(poll);
                continue;
            }
        };
        match reply {
            Reply::Done => return Ok(trained),
            Reply::Wait | Reply::Ack => std::thread::sleep(poll),
            Reply::Refused(why) => return Err(Error::Rejected(why)),
            Reply::Task {
                round,
                global,
                optimizer,
                hyper,
                local_steps,
                batch,
                prox_mu,
            } => {
                let g = from_wire(&global)?;
                let ins = FitIns {
                    client,
                    round,
                    config: ClientConfig {
                        optimizer,
                        hyper,
                        local_steps,
                        batch,
                        prox_mu,
                    },
                };
                let r = w.fit(&ins, &g, seed)?;
                let req = Request::Result {
                    client,
                    token: token.to_string(),
                    round,
                    tensors: to_wire(&r.params),
                    num_examples: r.num_examples,
                    loss: r.loss,
                };
                match exchange(addr, &req) {
                    Ok(Reply::Ack) => trained += 1,
                    Ok(Reply::Refused(why)) => return Err(Error::Rejected(why)),
                    _ => std::thread::sleep(poll),
                }
            }
        }
    }
}
