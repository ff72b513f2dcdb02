//! `steepest fed …`: the command-line front end (argument parsing lives
//! here so the CLI binary only forwards its arguments).
//!
//! ```text
//! steepest fed sim [--strategy fedavg] [--clients 1000] [--rounds 20]
//!     [--participation uniform:100] [--partition iid|dirichlet:A|shards:S] [--shift shift:K:P]
//!     [--fraction 1.0] [--local-steps 5] [--batch 16] [--optimizer sgd]
//!     [--hyper '{"lr":0.1}'] [--opt key=value]... [--attack signflip:10]
//!     [--malicious 0.2] [--dropout 0.0] [--threads N] [--seed 0]
//!     [--eval-every 5] [--json PATH]
//! steepest fed tokens --clients N --out tokens.txt
//! steepest fed serve --port 7878 --tokens tokens.txt [--state-dir DIR] [--round-timeout-ms T] [sim options]
//! steepest fed client --server 127.0.0.1:7878 --id K --token T [workload options, same as the server's]
//!     [--strategy NAME --opt KEY=VALUE… as the server's, for strategies with their own client side]
//! steepest fed strategies
//! steepest fed admm [--variant continual|non-continual|standard] [--dim 32] [--clients 50] [--samples 12:22]
//!     [--selected 4] [--rho 1] [--noise-var 6.25e-4] [--iters 300] [--runs 10] [--seed 0]
//! steepest fed psofed [--shared 4] [--features 200] [--clients 100] [--selected 4] [--mu 0.4]
//!     [--byzantine 20] [--attack-prob 0.5] [--attack-var 0.25] [--iters 2000] [--runs 5] [--seed 0]
//! steepest fed cdfl [--method cdfl|fedavg|ifca|all] [--clients 40] [--clusters 4] [--horizon 40]
//!     [--rate 1] [--shift-rate 0.02] [--concentration 0.3] [--beta 10] [--lookahead 4]
//!     [--server-lr 1] [--init-noise 0.01] [--samples-per-client 100] [--local-steps 20]
//!     [--batch 16] [--optimizer sgd] [--hyper JSON] [--seed 0]   (prints a JSON summary)
//! ```

use std::collections::BTreeMap;

use crate::attack::{malicious_set, Attack};
use crate::logreg::{LogReg, LogRegSpec};
use crate::participation::Participation;
use crate::partition::{ClusterShift, Partition};
use crate::sim::SimConfig;
use crate::strategy::{parse_hyper, ClientConfig, Sampling};
use crate::{algorithms, Error, Result};

const USAGE: &str = "usage: steepest fed sim [--strategy NAME] [--clients N] [--rounds R] \
[--participation all|uniform:K|bernoulli:P|markov:PI:LAMBDA|cyclic:G|onoff:ON:OFF] \
[--partition iid|dirichlet:A|shards:S] [--shift shift:K:P] [--fraction F] [--min-fit N] [--local-steps S] [--batch B] \
[--optimizer NAME] [--hyper JSON] [--opt KEY=VALUE]... [--attack signflip:S|scale:S|gaussian:SIGMA] \
[--malicious FRACTION] [--dropout P] [--threads N] [--seed S] [--eval-every E] [--json PATH]\n       \
steepest fed tokens --clients N --out FILE\n       \
steepest fed serve --port P --tokens FILE [--state-dir DIR] [--round-timeout-ms T] [sim options]\n       \
steepest fed client --server 127.0.0.1:P --id K --token T [workload options]\n       \
steepest fed strategies\n       \
steepest fed cdfl [--method cdfl|fedavg|ifca|all] [--clients N] [--clusters K] [--horizon T] [--rate R] \
[--shift-rate S] [--concentration A] [--beta B] [--lookahead L] [--server-lr E] [--init-noise N] [--seed S]";

/// Runs `steepest fed ARGS…`; returns the text to print.
pub fn run(args: &[String]) -> Result<String> {
    match args.first().map(String::as_str) {
        Some("sim") => sim_cmd(&args[1..]),
        Some("strategies") => Ok(format!("{}\n", algorithms::NAMES.join(" "))),
        Some("serve") => serve_cmd(&args[1..]),
        Some("client") => client_cmd(&args[1..]),
        Some("tokens") => tokens_cmd(&args[1..]),
        Some("admm") => admm_cmd(&args[1..]),
        Some("psofed") => psofed_cmd(&args[1..]),
        Some("cdfl") => cdfl_cmd(&args[1..]),
        _ => Err(Error::Config(USAGE.into())),
    }
}

type Kv = BTreeMap<String, String>;

fn parse_kv(args: &[String]) -> Result<(Kv, BTreeMap<String, f64>)> {
    let mut kv: BTreeMap<String, String> = BTreeMap::new();
    let mut opts: BTreeMap<String, f64> = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let key = args[i]
            .strip_prefix("--")
            .ok_or_else(|| Error::Config(format!("unexpected argument `{}`\n{USAGE}", args[i])))?;
        let val = args
            .get(i + 1)
            .ok_or_else(|| Error::Config(format!("--{key} needs a value")))?
            .clone();
        if key == "opt" {
            let (k, v) = val
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("--opt {val}: expected KEY=VALUE")))?;
            let v: f64 = v
                .parse()
                .map_err(|_| Error::Config(format!("--opt {val}: value must be a number")))?;
            opts.insert(k.to_string(), v);
        } else {
            kv.insert(key.to_string(), val);
        }
        i += 2;
    }
    let known = [
        "strategy",
        "clients",
        "rounds",
        "participation",
        "partition",
        "fraction",
        "min-fit",
        "local-steps",
        "batch",
        "optimizer",
        "hyper",
        "attack",
        "malicious",
        "dropout",
        "threads",
        "seed",
        "eval-every",
        "json",
        "samples-per-client",
        "shift",
        "port",
        "tokens",
        "state-dir",
        "round-timeout-ms",
        "server",
        "id",
        "token",
        "out",
        "method",
        "clusters",
        "horizon",
        "rate",
        "shift-rate",
        "concentration",
        "beta",
        "lookahead",
        "server-lr",
        "init-noise",
    ];
    if let Some(k) = kv.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::Config(format!("unknown option --{k}\n{USAGE}")));
    }
    Ok((kv, opts))
}

fn num<T: std::str::FromStr>(kv: &Kv, k: &str, d: T) -> Result<T> {
    match kv.get(k) {
        None => Ok(d),
        Some(v) => v
            .parse()
            .map_err(|_| Error::Config(format!("--{k} {v}: not a valid number"))),
    }
}

fn workload(kv: &Kv) -> Result<LogReg> {
    let spec = LogRegSpec {
        clients: num(kv, "clients", 1000)?,
        samples_per_client: num(kv, "samples-per-client", 50)?,
        partition: Partition::parse(kv.get("partition").map_or("iid", String::as_str))?,
        shift: kv.get("shift").map(|s| ClusterShift::parse(s)).transpose()?,
        ..LogRegSpec::default()
    };
    LogReg::new(spec, num(kv, "seed", 0)?)
}

fn strategy_of(kv: &Kv, opts: &mut BTreeMap<String, f64>, clients: usize) -> Result<Box<dyn crate::Strategy>> {
    let client = ClientConfig {
        optimizer: kv.get("optimizer").cloned().unwrap_or_else(|| "sgd".into()),
        hyper: parse_hyper(kv.get("hyper").map_or(r#"{"lr": 0.1}"#, String::as_str))?,
        local_steps: num(kv, "local-steps", 5)?,
        batch: num(kv, "batch", 16)?,
        prox_mu: 0.0,
    };
    let sampling = Sampling {
        fraction: num(kv, "fraction", 1.0)?,
        min_fit_clients: num(kv, "min-fit", 1)?,
        min_available: 1,
    };
    let name = kv.get("strategy").map_or("fedavg", String::as_str);
    opts.entry("clients".to_string()).or_insert(clients as f64);
    algorithms::build(name, sampling, client, opts)
}

fn sim_cmd(args: &[String]) -> Result<String> {
    let (kv, mut opts) = parse_kv(args)?;
    let clients: usize = num(&kv, "clients", 1000)?;
    let seed: u64 = num(&kv, "seed", 0)?;
    let workload = workload(&kv)?;
    let participation = Participation::parse(kv.get("participation").map_or("uniform:100", String::as_str), clients)?;
    let mut strategy = strategy_of(&kv, &mut opts, clients)?;
    let malicious: f64 = num(&kv, "malicious", 0.0)?;
    let attack = match kv.get("attack") {
        Some(a) => Some((Attack::parse(a)?, malicious_set(clients, malicious, seed))),
        None if malicious > 0.0 => return Err(Error::Config("--malicious needs --attack".into())),
        None => None,
    };
    let cfg = SimConfig {
        rounds: num(&kv, "rounds", 20)?,
        seed,
        eval_every: num(&kv, "eval-every", 5)?,
        threads: kv
            .get("threads")
            .map(|t| t.parse())
            .transpose()
            .map_err(|_| Error::Config("--threads: not a whole number".into()))?,
        dropout: num(&kv, "dropout", 0.0)?,
        attack,
    };
    if cfg.threads == Some(0) {
        return Err(Error::Config("--threads must be at least 1".into()));
    }
    let name = kv.get("strategy").map_or("fedavg", String::as_str);
    let report = algorithms::simulate(name, &opts, &workload, &mut strategy, &participation, &cfg)?;
    if let Some(path) = kv.get("json") {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Io(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| Error::Io(format!("{path}: {e}")))?;
    }
    let mut out = format!("strategy {}\n", report.strategy);
    for r in &report.rounds {
        if let Some(e) = r.eval {
            out += &format!(
                "round {:>4}  results {:>4}  failures {:>3}  train loss {:.4}  test loss {:.4}  accuracy {:.4}\n",
                r.round, r.results, r.failures, r.train_loss, e.loss, e.accuracy
            );
        }
    }
    out += &format!(
        "final accuracy {:.4}  loss {:.4}  |  {} client updates in {:.3} s = {:.0} updates/s  |  model {}\n",
        report.final_eval.accuracy,
        report.final_eval.loss,
        report.client_updates,
        report.total_seconds,
        report.updates_per_sec,
        report.model_hash
    );
    Ok(out)
}

/// Reads a token file: one `CLIENT_ID TOKEN` per line (`#` comments allowed).
fn read_tokens(path: &str) -> Result<BTreeMap<usize, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{path}: {e}")))?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(id), Some(tok), None) = (it.next(), it.next(), it.next()) else {
            return Err(Error::Config(format!("{path}:{}: expected `CLIENT_ID TOKEN`", n + 1)));
        };
        let id: usize = id
            .parse()
            .map_err(|_| Error::Config(format!("{path}:{}: bad client id `{id}`", n + 1)))?;
        out.insert(id, tok.to_string());
    }
    Ok(out)
}

/// `steepest fed tokens --clients N --out FILE`: random per-client tokens (from /dev/urandom).
fn tokens_cmd(args: &[String]) -> Result<String> {
    let (kv, _) = parse_kv(args)?;
    let n: usize = num(&kv, "clients", 0)?;
    let out = kv
        .get("out")
        .ok_or_else(|| Error::Config("tokens: --out FILE is required".into()))?;
    let mut bytes = vec![0u8; 16 * n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| Error::Io(format!("/dev/urandom: {e}")))?;
    let mut text = String::new();
    for (c, chunk) in bytes.chunks(16).enumerate() {
        let hex: String = chunk.iter().map(|b| format!("{b:02x}")).collect();
        text += &format!("{c} {hex}\n");
    }
    std::fs::write(out, text).map_err(|e| Error::Io(format!("{out}: {e}")))?;
    Ok(format!("wrote {n} tokens to {out}\n"))
}

/// `steepest fed serve --port P --tokens FILE [--rounds R] [--state-dir DIR]
/// [--round-timeout-ms T] [workload and strategy options as for sim]`.
fn serve_cmd(args: &[String]) -> Result<String> {
    let (kv, mut opts) = parse_kv(args)?;
    let clients: usize = num(&kv, "clients", 1000)?;
    let w = workload(&kv)?;
    let participation = Participation::parse(kv.get("participation").map_or("uniform:100", String::as_str), clients)?;
    let mut strategy = strategy_of(&kv, &mut opts, clients)?;
    let tokens = read_tokens(
        kv.get("tokens")
            .ok_or_else(|| Error::Config("serve: --tokens FILE is required".into()))?,
    )?;
    let cfg = crate::net::ServerConfig {
        addr: format!("127.0.0.1:{}", num::<u16>(&kv, "port", 7878)?),
        tokens,
        rounds: num(&kv, "rounds", 20)?,
        seed: num(&kv, "seed", 0)?,
        round_timeout: std::time::Duration::from_millis(num(&kv, "round-timeout-ms", 30_000)?),
        max_message_bytes: 64 << 20,
        state_dir: kv.get("state-dir").map(std::path::PathBuf::from),
    };
    let server = crate::net::Server::bind(cfg)?;
    eprintln!("steepest fed serve: listening on {}", server.addr()?);
    let rep = server.run(&mut strategy, &participation, clients, w.init())?;
    for l in &rep.log {
        eprintln!("refused/failed: {l}");
    }
    let e = w.evaluate(&rep.model);
    Ok(format!(
        "served rounds {}..={}  final accuracy {:.4}  loss {:.4}  model {}\n",
        rep.resumed_after + 1,
        rep.resumed_after + rep.rounds_run,
        e.accuracy,
        e.loss,
        rep.model_hash
    ))
}

/// `steepest fed client --server 127.0.0.1:P --id N --token T [workload options as for serve]`.
fn client_cmd(args: &[String]) -> Result<String> {
    let (kv, opts) = parse_kv(args)?;
    let w = workload(&kv)?;
    let addr = kv
        .get("server")
        .ok_or_else(|| Error::Config("client: --server ADDR is required".into()))?;
    let id: usize = num(&kv, "id", usize::MAX)?;
    if id >= w.spec.clients {
        return Err(Error::Config(format!(
            "client: --id must be below --clients {}",
            w.spec.clients
        )));
    }
    let token = kv
        .get("token")
        .ok_or_else(|| Error::Config("client: --token is required".into()))?;
    let seed = num(&kv, "seed", 0)?;
    // the client side of the server's strategy (plain local training unless
    // the strategy needs more: FedSpeed, FedHyper-CL/FULL, MCI)
    let name = kv.get("strategy").map_or("fedavg", String::as_str);
    let rounds = algorithms::with_client_side(name, &opts, &w, |cw| {
        crate::net::run_client(
            addr,
            id,
            token,
            cw,
            seed,
            std::time::Duration::from_millis(20),
            std::time::Duration::from_secs(60),
        )
    })?;
    Ok(format!("client {id}: trained {rounds} rounds\n"))
}

/// `--key value` pairs of the problem-simulator commands (`admm`, `psofed`), checked against `known`.
fn flags(args: &[String], known: &[&str], usage: &str) -> Result<Kv> {
    let mut kv = Kv::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = a
            .strip_prefix("--")
            .filter(|k| known.contains(k))
            .ok_or_else(|| Error::Config(format!("unexpected argument `{a}`\nusage: {usage}")))?;
        let val = it
            .next()
            .ok_or_else(|| Error::Config(format!("--{key} needs a value")))?;
        kv.insert(key.to_string(), val.clone());
    }
    Ok(kv)
}

fn curve_json(name: &str, metric: &str, curve: &[f64], steady: f64) -> Result<String> {
    let v = serde_json::json!({ "algorithm": name, "metric": metric, "steady_state_db": steady, "curve_db": curve });
    serde_json::to_string(&v)
        .map(|s| s + "\n")
        .map_err(|e| Error::Io(e.to_string()))
}

/// `steepest fed admm …`: RERCE-Fed / ADMM-FL on the synthetic WLS problem;
/// prints the Monte-Carlo NMSD curve (dB) as JSON.
fn admm_cmd(args: &[String]) -> Result<String> {
    use crate::algorithms::admm;
    const U: &str = "steepest fed admm [--variant continual|non-continual|standard] [--dim L] [--clients N] \
[--samples MIN:MAX] [--selected C] [--rho R] [--noise-var S2] [--iters T] [--runs R] [--seed S]";
    let known = [
        "variant",
        "dim",
        "clients",
        "samples",
        "selected",
        "rho",
        "noise-var",
        "iters",
        "runs",
        "seed",
    ];
    let kv = flags(args, &known, U)?;
    let samples = match kv.get("samples") {
        None => (12, 22),
        Some(s) => {
            let (a, b) = s
                .split_once(':')
                .ok_or_else(|| Error::Config(format!("--samples {s}: expected MIN:MAX")))?;
            let p = |x: &str| {
                x.parse::<usize>()
                    .map_err(|_| Error::Config(format!("--samples {s}: not whole numbers")))
            };
            (p(a)?, p(b)?)
        }
    };
    let spec = admm::AdmmSpec {
        dim: num(&kv, "dim", 32)?,
        clients: num(&kv, "clients", 50)?,
        samples,
        ..admm::AdmmSpec::default()
    };
    let cfg = admm::AdmmConfig {
        variant: admm::Variant::parse(kv.get("variant").map_or("continual", String::as_str))?,
        selected: num(&kv, "selected", 4)?,
        rho: num(&kv, "rho", 1.0)?,
        noise_var: num(&kv, "noise-var", 6.25e-4)?,
        iters: num(&kv, "iters", 300)?,
        ..admm::AdmmConfig::default()
    };
    let seed = num(&kv, "seed", 0)?;
    let p = admm::AdmmProblem::synthetic(&spec, seed)?;
    let curve = admm::monte_carlo(&p, &cfg, seed, num(&kv, "runs", 10)?)?;
    let name = format!("admm-{}", kv.get("variant").map_or("continual", String::as_str));
    curve_json(&name, "nmsd", &curve, admm::steady_state_db(&curve, 100))
}

/// `steepest fed psofed …`: PSO-Fed (Online-Fed at `--shared` = `--features`)
/// under Byzantine clients; prints the Monte-Carlo test-MSE curve (dB) as JSON.
fn psofed_cmd(args: &[String]) -> Result<String> {
    use crate::algorithms::psofed;
    const U: &str = "steepest fed psofed [--shared M] [--features D] [--clients N] [--selected C] [--mu MU] \
[--byzantine B] [--attack-prob P] [--attack-var S2] [--iters T] [--runs R] [--seed S]";
    let known = [
        "shared",
        "features",
        "clients",
        "selected",
        "mu",
        "byzantine",
        "attack-prob",
        "attack-var",
        "iters",
        "runs",
        "seed",
    ];
    let kv = flags(args, &known, U)?;
    let d = psofed::PsoFedConfig::default();
    let cfg = psofed::PsoFedConfig {
        shared: num(&kv, "shared", d.shared)?,
        features: num(&kv, "features", d.features)?,
        clients: num(&kv, "clients", d.clients)?,
        selected: num(&kv, "selected", d.selected)?,
        mu: num(&kv, "mu", d.mu)?,
        byzantine: num(&kv, "byzantine", d.byzantine)?,
        attack_prob: num(&kv, "attack-prob", d.attack_prob)?,
        attack_var: num(&kv, "attack-var", d.attack_var)?,
        iters: num(&kv, "iters", d.iters)?,
        ..d
    };
    let curve = psofed::monte_carlo(&cfg, num(&kv, "seed", 0)?, num(&kv, "runs", 5)?)?;
    let name = if cfg.shared == cfg.features {
        "online-fed"
    } else {
        "pso-fed"
    };
    curve_json(name, "test_mse", &curve, psofed::steady_state_db(&curve, 500))
}

/// `steepest fed cdfl …`: client-driven FL ([`algorithms::cdfl`]) and its
/// baselines on the same Poisson arrivals; prints a JSON summary.
fn cdfl_cmd(args: &[String]) -> Result<String> {
    use crate::algorithms::cdfl::{self, Arrivals, CdflConfig, DistanceSoftmax};
    let (kv, _) = parse_kv(args)?;
    let clients: usize = num(&kv, "clients", 40)?;
    let seed: u64 = num(&kv, "seed", 0)?;
    let clusters: usize = num(&kv, "clusters", 4)?;
    let w = LogReg::new(
        LogRegSpec {
            clients,
            samples_per_client: num(&kv, "samples-per-client", 100)?,
            test: 1000,
            ..LogRegSpec::default()
        },
        seed,
    )?;
    let cfg = CdflConfig {
        clusters,
        server_lr: num(&kv, "server-lr", 1.0)?,
        init_noise: num(&kv, "init-noise", 0.01)?,
        horizon: num(&kv, "horizon", 40.0)?,
        seed,
        client: ClientConfig {
            optimizer: kv.get("optimizer").cloned().unwrap_or_else(|| "sgd".into()),
            hyper: parse_hyper(kv.get("hyper").map_or(r#"{"lr": 0.1}"#, String::as_str))?,
            local_steps: num(&kv, "local-steps", 20)?,
            batch: num(&kv, "batch", 16)?,
            prox_mu: 0.0,
        },
        arrivals: Arrivals::uniform(clients, num(&kv, "rate", 1.0)?),
        mixture: crate::partition::ClusterMixture {
            clusters,
            shift_rate: num(&kv, "shift-rate", 0.02)?,
            concentration: num(&kv, "concentration", 0.3)?,
        },
    };
    let est = DistanceSoftmax {
        beta: num(&kv, "beta", DistanceSoftmax::default().beta)?,
        lookahead: num(&kv, "lookahead", DistanceSoftmax::default().lookahead)?,
    };
    let method = kv.get("method").map_or("cdfl", String::as_str);
    let mut runs = Vec::new();
    for m in ["cdfl", "fedavg", "ifca"] {
        if method != m && method != "all" {
            continue;
        }
        let mut r = match m {
            "cdfl" => cdfl::run_cdfl(&w, &cfg, Box::new(est))?,
            "fedavg" => cdfl::run_fedavg(&w, &cfg)?,
            _ => cdfl::run_ifca(&w, &cfg)?,
        };
        r.estimates.clear();
        r.last_mixture.clear();
        r.per_client.clear();
        runs.push(r);
    }
    if runs.is_empty() {
        return Err(Error::Config(format!(
            "--method {method}: expected cdfl, fedavg, ifca or all"
        )));
    }
    let text = serde_json::to_string_pretty(&runs).map_err(|e| Error::Io(e.to_string()))?;
    Ok(text + "\n")
}
