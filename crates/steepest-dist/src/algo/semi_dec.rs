//! Semi-decentralized learning: "A Unified Convergence Analysis for
//! Semi-Decentralized Learning: Sampled-to-Sampled vs. Sampled-to-All
//! Communication" (Rodio, Neglia, Chen, Larsson, AAAI 2026, arXiv 2511.11560).
//!
//! N devices train with local stochastic-gradient steps and device-to-device
//! (D2D) gossip over a graph that may be disconnected into components; every
//! `H` steps a server samples `K` devices, averages their models and sends the
//! average back either to the sampled devices only (**S2S**) or to every
//! device (**S2A**). Per step, on every device `i`:
//! 1. local step: x_i ← x_i − η·∇f_i(x_i; ξ) (any registry optimizer, default
//!    plain `sgd`; its state, if any, stays on the device);
//! 2. gossip: x_i ← Σ_j W_ij·x_j over i's D2D neighbours and itself, the
//!    values sent point-to-point to neighbours only;
//! 3. if t mod H = 0: the server draws S (|S| = K) and computes
//!    x̄_S = (1/K) Σ_{j∈S} x_j; S2S sets x_i ← x̄_S for i ∈ S, S2A for every i.
//!
//! S2S leaves the network mean (1/N) Σ_i x_i unchanged (the K sampled models are
//! replaced by K copies of their own mean); S2A moves it to the sample's mean.
//!
//! **Mixing matrix.** Metropolis–Hastings weights W_ij = 1/(1 + max(deg_i,
//! deg_j)) for each D2D edge and W_ii = 1 − Σ_{j≠i} W_ij: symmetric and doubly
//! stochastic within each connected component. A complete component of n
//! devices gets W = (1/n)·11ᵀ exactly (then gossip is exact averaging); a ring
//! of n ≥ 3 gets 1/3 on the self-loop and on each of the two neighbours.
//!
//! **Graph** (`graph`, `components`): the world ranks are cut into
//! `components` contiguous blocks (sizes differ by at most one); each block is a
//! `"ring"` (i ↔ i+1, closed when the block has ≥ 3 devices) or `"complete"`.
//! `components: 2, graph: "ring"` with 10 devices is the notes' two 5-device
//! rings; no D2D edge crosses a block, only the server does.
//!
//! Defaults: `h` 10, `k` 2 (at most N), `mode` `"s2s"`, `graph` `"ring"`,
//! `components` 1, optimizer `sgd` with the registry's defaults, `seed` 0.
//!
//! Choices the paper's text would settle but which could not be checked here
//! (only the abstract and the research notes, which mark the ordering as a
//! recollection, were available; the official code `arodio/SemiDec` could not
//! be fetched):
//! - order (`order`): `"step-then-gossip"` (default, the notes' order, the
//!   adapt-then-combine form x ← W(x − η∇f(x))) or `"gossip-then-step"`
//!   (D-PSGD's combine-then-adapt x ← Wx − η∇f(x): the gradient at the
//!   pre-gossip point, the step applied to the mixed model);
//! - the server round follows the step and gossip of every H-th step;
//! - sampling: K devices uniformly **without replacement, globally** (not per
//!   component) among the live devices, from a permutation drawn from
//!   `(seed, round)` that every device computes identically; equal weights 1/K;
//! - the server is played by the lowest-ranked sampled device: the others upload
//!   to it point-to-point, it sends the mean back (S2S: to the other K−1 sampled
//!   devices; S2A: to every other live device). Its own upload is local, so a
//!   round moves (K−1)·d values up and (K−1)·d (S2S) or (N−1)·d (S2A) down.
//!
//! **Faults.** The gossip exchange and the server round each go through
//! [`committed`]: every live device votes (an 8-byte flag to every member:
//! the vote is the only global message), a corrupt message makes every device
//! retry the exchange from its unchanged model, and a lost device is voted
//! out. The survivors drop it from the graph: its D2D edges disappear (a ring
//! becomes a path; a component may split in two) and the Metropolis weights are
//! recomputed from the surviving degrees, so W stays symmetric and doubly
//! stochastic within each surviving component (the lost device's weight goes
//! to the self-loops). It is never sampled again.

use steepest::hyper::{Hyper, HyperReader};
use steepest::{GradSet, Optimizer, ParamSet};

use super::{
    build_optimizer, flatten, flatten_grads, grads_from_flat, permutation, split_nested, unflatten, DistAlgorithm,
    Oracle, SYNC_ATTEMPTS,
};
use crate::collective::{bytes_to_f64s, chunk_bounds, committed, f64s_to_bytes, Collective};
use crate::error::{Error, Result};

/// Where the server's average goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Sampled-to-sampled: only the sampled devices receive the average.
    S2S,
    /// Sampled-to-all: every device receives the average.
    S2A,
}

/// The D2D graph inside each component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Graph {
    /// i ↔ i+1 (closed when the component has at least 3 devices).
    Ring,
    /// Every pair.
    Complete,
}

/// Local step and gossip order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// x ← W(x − η∇f(x)).
    StepThenGossip,
    /// x ← Wx − η∇f(x).
    GossipThenStep,
}

/// The D2D topology over world ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Devices at start.
    pub world: usize,
    /// Graph inside each component.
    pub graph: Graph,
    /// Number of components (contiguous blocks of world ranks).
    pub components: usize,
}

impl Topology {
    /// The block `[a, b)` of world ranks holding `r`.
    pub fn component(&self, r: usize) -> (usize, usize) {
        chunk_bounds(self.world, self.components)
            .into_iter()
            .find(|&(a, b)| r >= a && r < b)
            .unwrap_or((r, r + 1))
    }

    /// D2D neighbours of world rank `r` in the full graph (ascending, itself excluded).
    pub fn neighbours(&self, r: usize) -> Vec<usize> {
        let (a, b) = self.component(r);
        let n = b - a;
        let mut out: Vec<usize> = match self.graph {
            Graph::Complete => (a..b).filter(|&j| j != r).collect(),
            Graph::Ring if n <= 1 => Vec::new(),
            Graph::Ring if n == 2 => vec![if r == a { a + 1 } else { a }],
            Graph::Ring => {
                let i = r - a;
                vec![a + (i + 1) % n, a + (i + n - 1) % n]
            }
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Row `r` of the Metropolis–Hastings mixing matrix of the graph restricted
    /// to the `live` world ranks: `(j, W_rj)` ascending in `j`, `r` itself included.
    pub fn weights(&self, r: usize, live: &[usize]) -> Vec<(usize, f64)> {
        let live_nb = |i: usize| -> Vec<usize> {
            self.neighbours(i)
                .into_iter()
                .filter(|j| live.binary_search(j).is_ok())
                .collect()
        };
        let mine = live_nb(r);
        let deg = mine.len();
        let degs: Vec<usize> = mine.iter().map(|&j| live_nb(j).len()).collect();
        let mut row: Vec<(usize, f64)> = mine
            .iter()
            .zip(&degs)
            .map(|(&j, &dj)| (j, 1.0 / (1.0 + deg.max(dj) as f64)))
            .collect();
        // 1 − Σ_j W_rj; when every neighbour has this device's degree (a
        // complete component, a ring) that is 1/(1 + deg), written exactly so
        // that a complete component mixes with exactly (1/n)·11ᵀ.
        let self_w = if degs.iter().all(|&dj| dj == deg) {
            1.0 / (1.0 + deg as f64)
        } else {
            1.0 - row.iter().map(|(_, w)| w).sum::<f64>()
        };
        row.push((r, self_w));
        row.sort_by_key(|(j, _)| *j);
        row
    }
}

/// The server's sample at `round`: `k` of the `live` world ranks (ascending),
/// uniformly without replacement, identical on every device.
pub fn sample(live: &[usize], k: usize, seed: u64, round: u64) -> Vec<usize> {
    let perm = permutation(live.len(), seed, round.wrapping_add(1) ^ 0x5E41_DEC0);
    let mut s: Vec<usize> = perm.iter().take(k.min(live.len())).map(|&i| live[i]).collect();
    s.sort_unstable();
    s
}

/// Σ_j w_j·x_j in the order given (ascending ranks).
pub fn mix(terms: &[(f64, &[f64])]) -> Vec<f64> {
    let d = terms.first().map_or(0, |t| t.1.len());
    let mut acc = vec![0.0; d];
    for (w, x) in terms {
        for (a, v) in acc.iter_mut().zip(x.iter()) {
            *a += w * v;
        }
    }
    acc
}

/// The mean of the models in the order given: a rank-order sum divided by their number.
pub fn mean_of(models: &[&[f64]]) -> Vec<f64> {
    let mut acc = models.first().map(|m| m.to_vec()).unwrap_or_default();
    for m in models.iter().skip(1) {
        for (a, v) in acc.iter_mut().zip(m.iter()) {
            *a += v;
        }
    }
    let k = models.len().max(1) as f64;
    for a in &mut acc {
        *a /= k;
    }
    acc
}

/// One server round on all models at once (index = world rank; used by the
/// tests as the reference): returns the models after it.
pub fn server_round(models: &[Vec<f64>], sampled: &[usize], mode: Mode) -> Vec<Vec<f64>> {
    let refs: Vec<&[f64]> = sampled.iter().map(|&j| models[j].as_slice()).collect();
    let m = mean_of(&refs);
    models
        .iter()
        .enumerate()
        .map(|(i, x)| {
            if mode == Mode::S2A || sampled.contains(&i) {
                m.clone()
            } else {
                x.clone()
            }
        })
        .collect()
}

/// Semi-decentralized state of one device.
pub struct SemiDec {
    params: ParamSet<f64>,
    opt: Optimizer<f64>,
    grads: GradSet<f64>,
    topo: Topology,
    h: u64,
    k: usize,
    mode: Mode,
    order: Order,
    seed: u64,
    t: u64,
}

impl SemiDec {
    /// Builds from hyperparameters, the initial (shared) parameters and the number of devices.
    pub fn new(hy: &Hyper, init: &ParamSet<f64>, world: usize) -> Result<SemiDec> {
        let world = world.max(1);
        let (flat, nested) = split_nested("semi-dec", hy, &["optimizer_hyper"])?;
        let mut r = HyperReader::new("semi-dec", &flat);
        let h = r.usize("h", 10)?;
        r.check(h >= 1, "h", "must be at least 1 step between server rounds")?;
        let k = r.usize("k", 2.min(world))?;
        r.check(k >= 1, "k", "the server must sample at least one device")?;
        // A single device has no one to sample but itself (as NoLoCo's group).
        r.check(
            k <= world || world == 1,
            "k",
            format!("{k} is more than the {world} devices"),
        )?;
        let k = k.min(world);
        let mode = match r.string("mode", "s2s")?.as_str() {
            "s2s" => Mode::S2S,
            "s2a" => Mode::S2A,
            other => {
                return Err(r
                    .error("mode", format!("expected \"s2s\" or \"s2a\", got {other:?}"))
                    .into())
            }
        };
        let graph = match r.string("graph", "ring")?.as_str() {
            "ring" => Graph::Ring,
            "complete" => Graph::Complete,
            other => {
                return Err(r
                    .error("graph", format!("expected \"ring\" or \"complete\", got {other:?}"))
                    .into())
            }
        };
        let components = r.usize("components", 1)?;
        r.check(
            (1..=world).contains(&components),
            "components",
            format!("must be between 1 and the {world} devices, got {components}"),
        )?;
        let order = match r.string("order", "step-then-gossip")?.as_str() {
            "step-then-gossip" => Order::StepThenGossip,
            "gossip-then-step" => Order::GossipThenStep,
            other => {
                return Err(r
                    .error(
                        "order",
                        format!("expected \"step-then-gossip\" or \"gossip-then-step\", got {other:?}"),
                    )
                    .into())
            }
        };
        let seed = r.usize("seed", 0)? as u64;
        let name = r.string("optimizer", "sgd")?;
        r.finish()?;
        let oh = nested.get("optimizer_hyper").cloned().unwrap_or_default();
        Ok(SemiDec {
            opt: build_optimizer("semi-dec", "optimizer", &name, &oh, init)?,
            params: init.clone(),
            grads: GradSet::new(),
            topo: Topology {
                world,
                graph,
                components,
            },
            h: h as u64,
            k,
            mode,
            order,
            seed,
            t: 0,
        })
    }

    /// The topology.
    pub fn topology(&self) -> Topology {
        self.topo
    }

    /// One gossip exchange with the live neighbours: the mixed model.
    fn gossip(&self, comm: &mut dyn Collective, x: &[f64]) -> Result<Vec<f64>> {
        committed(comm, SYNC_ATTEMPTS, |c| {
            let me = c.world_rank();
            let live = c.members();
            let row = self.topo.weights(me, &live);
            let bytes = f64s_to_bytes(x);
            let mut err: Option<Error> = None;
            // Send to every neighbour, then receive from every neighbour, draining
            // all before reporting (channels stay aligned for the retry).
            for &(j, _) in &row {
                if j != me {
                    if let Err(e) = c.send_bytes(j, &bytes) {
                        err.get_or_insert(e);
                    }
                }
            }
            let mut got: Vec<Vec<f64>> = Vec::with_capacity(row.len());
            for &(j, _) in &row {
                if j == me {
                    got.push(Vec::new());
                    continue;
                }
                match c.recv_bytes(j).and_then(|b| bytes_to_f64s(&b)) {
                    Ok(v) if v.len() == x.len() => got.push(v),
                    Ok(v) => {
                        err.get_or_insert(Error::Transport(format!(
                            "gossip: {} values from rank {j}, expected {}",
                            v.len(),
                            x.len()
                        )));
                        got.push(Vec::new());
                    }
                    Err(e) => {
                        err.get_or_insert(e);
                        got.push(Vec::new());
                    }
                }
            }
            if let Some(e) = err {
                return Err(e);
            }
            let terms: Vec<(f64, &[f64])> = row
                .iter()
                .zip(&got)
                .map(|(&(j, w), v)| (w, if j == me { x } else { v.as_slice() }))
                .collect();
            Ok(mix(&terms))
        })
    }

    /// The server round: `Some(x̄_S)` if this device receives the average.
    fn server(&self, comm: &mut dyn Collective, x: &[f64], round: u64) -> Result<Option<Vec<f64>>> {
        committed(comm, SYNC_ATTEMPTS, |c| {
            let me = c.world_rank();
            let live = c.members();
            let s = sample(&live, self.k, self.seed, round);
            let agg = s[0];
            let targets: Vec<usize> = match self.mode {
                Mode::S2S => s.iter().copied().filter(|&j| j != agg).collect(),
                Mode::S2A => live.iter().copied().filter(|&j| j != agg).collect(),
            };
            let mut err: Option<Error> = None;
            let mut out = None;
            if me == agg {
                let mut ups: Vec<Vec<f64>> = Vec::with_capacity(s.len());
                for &j in &s {
                    if j == me {
                        ups.push(x.to_vec());
                        continue;
                    }
                    match c.recv_bytes(j).and_then(|b| bytes_to_f64s(&b)) {
                        Ok(v) if v.len() == x.len() => ups.push(v),
                        Ok(_) => {
                            err.get_or_insert(Error::Transport(format!("server: wrong upload length from rank {j}")));
                        }
                        Err(e) => {
                            err.get_or_insert(e);
                        }
                    }
                }
                // Always answer (a failed round still keeps the channels aligned).
                let m = if err.is_none() {
                    let refs: Vec<&[f64]> = ups.iter().map(|v| v.as_slice()).collect();
                    mean_of(&refs)
                } else {
                    x.to_vec()
                };
                let bytes = f64s_to_bytes(&m);
                for &j in &targets {
                    if let Err(e) = c.send_bytes(j, &bytes) {
                        err.get_or_insert(e);
                    }
                }
                if s.contains(&me) {
                    out = Some(m);
                }
            } else {
                if s.contains(&me) {
                    if let Err(e) = c.send_bytes(agg, &f64s_to_bytes(x)) {
                        err.get_or_insert(e);
                    }
                }
                if targets.contains(&me) {
                    match c.recv_bytes(agg).and_then(|b| bytes_to_f64s(&b)) {
                        Ok(v) if v.len() == x.len() => out = Some(v),
                        Ok(_) => {
                            err.get_or_insert(Error::Transport("server: wrong average length".into()));
                        }
                        Err(e) => {
                            err.get_or_insert(e);
                        }
                    }
                }
            }
            match err {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })
    }
}

impl DistAlgorithm for SemiDec {
    fn name(&self) -> &'static str {
        "semi-dec"
    }

    fn step(&mut self, comm: &mut dyn Collective, oracle: &mut Oracle) -> Result<f64> {
        let loss = oracle(&self.params, &mut self.grads);
        match self.order {
            Order::StepThenGossip => {
                self.opt.step(&mut self.params, &mut self.grads)?;
                let mixed = self.gossip(comm, &flatten(&self.params))?;
                unflatten(&mut self.params, &mixed)?;
            }
            Order::GossipThenStep => {
                // the gradient was taken at the pre-gossip point
                let g = flatten_grads(&self.params, &self.grads)?;
                let mixed = self.gossip(comm, &flatten(&self.params))?;
                unflatten(&mut self.params, &mixed)?;
                grads_from_flat(&self.params, &g, &mut self.grads);
                self.opt.step(&mut self.params, &mut self.grads)?;
            }
        }
        self.t += 1;
        if self.t.is_multiple_of(self.h) {
            let round = self.t / self.h;
            if let Some(m) = self.server(comm, &flatten(&self.params), round)? {
                unflatten(&mut self.params, &m)?;
            }
        }
        Ok(loss)
    }

    fn model(&self) -> &ParamSet<f64> {
        &self.params
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn optimizers(&self) -> Vec<(&'static str, &Optimizer<f64>)> {
        vec![("optimizer", &self.opt)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(world: usize, graph: Graph, components: usize) -> Topology {
        Topology {
            world,
            graph,
            components,
        }
    }

    /// W is symmetric and doubly stochastic within each component, on every
    /// graph and after any one device is lost.
    #[test]
    fn metropolis_weights_are_symmetric_and_doubly_stochastic() {
        for world in 1..=10 {
            for graph in [Graph::Ring, Graph::Complete] {
                for comps in 1..=world.min(3) {
                    let t = topo(world, graph, comps);
                    let mut lives: Vec<Vec<usize>> = vec![(0..world).collect()];
                    for dead in 0..world {
                        lives.push((0..world).filter(|&r| r != dead).collect());
                    }
                    for live in lives {
                        let mut w = vec![vec![0.0; world]; world];
                        for &r in &live {
                            for (j, x) in t.weights(r, &live) {
                                assert!(live.contains(&j));
                                assert!(x >= 0.0);
                                w[r][j] = x;
                            }
                        }
                        for &r in &live {
                            let row: f64 = w[r].iter().sum();
                            let col: f64 = w.iter().map(|row| row[r]).sum();
                            assert!((row - 1.0).abs() < 1e-14 && (col - 1.0).abs() < 1e-14);
                            for &j in &live {
                                assert_eq!(w[r][j], w[j][r]);
                                if t.component(r) != t.component(j) {
                                    assert_eq!(w[r][j], 0.0, "an edge crosses components");
                                }
                            }
                        }
                    }
                }
            }
        }
        // complete: exactly 1/n; ring of 5: 1/3 each
        let c = topo(4, Graph::Complete, 1).weights(2, &[0, 1, 2, 3]);
        assert_eq!(c, vec![(0, 0.25), (1, 0.25), (2, 0.25), (3, 0.25)]);
        let r = topo(10, Graph::Ring, 2).weights(5, &(0..10).collect::<Vec<_>>());
        let third = 1.0 / 3.0;
        assert_eq!(r, vec![(5, third), (6, third), (9, third)]);
        // a lost device turns the ring into a path: the ends keep 2/3
        let p = topo(5, Graph::Ring, 1).weights(1, &[0, 1, 3, 4]);
        assert_eq!(p, vec![(0, third), (1, 1.0 - third)]);
    }

    #[test]
    fn samples_agree_have_k_distinct_live_members_and_vary() {
        let live = vec![0, 2, 3, 5, 7, 8];
        for round in 0..20 {
            let s = sample(&live, 3, 4, round);
            assert_eq!(s.len(), 3);
            assert!(s.windows(2).all(|w| w[0] < w[1]));
            assert!(s.iter().all(|j| live.contains(j)));
            assert_eq!(s, sample(&live, 3, 4, round));
        }
        assert_ne!(sample(&live, 3, 4, 0), sample(&live, 3, 4, 1));
        assert_eq!(sample(&live, 99, 0, 0), live);
    }

    /// S2S leaves the network mean unchanged (up to one rounding of the sum);
    /// S2A moves it to the sample's mean; with K = N they coincide.
    #[test]
    fn s2s_preserves_the_network_mean_and_s2a_moves_it() {
        let n = 10;
        let models: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                (0..7)
                    .map(|k| ((i * 7 + k) as f64 * 0.37).sin() * (1.0 + i as f64))
                    .collect()
            })
            .collect();
        let net_mean = |ms: &[Vec<f64>]| mean_of(&ms.iter().map(|m| m.as_slice()).collect::<Vec<_>>());
        let before = net_mean(&models);
        for round in 0..10 {
            let s = sample(&(0..n).collect::<Vec<_>>(), 3, 1, round);
            let after = net_mean(&server_round(&models, &s, Mode::S2S));
            for (a, b) in after.iter().zip(&before) {
                assert!(
                    (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                    "S2S moved the mean: {a} vs {b}"
                );
            }
            let s2a = net_mean(&server_round(&models, &s, Mode::S2A));
            let sample_mean = mean_of(&s.iter().map(|&j| models[j].as_slice()).collect::<Vec<_>>());
            for (a, b) in s2a.iter().zip(&sample_mean) {
                assert!(
                    (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                    "S2A: {a} vs the sample mean {b}"
                );
            }
            assert!(s2a.iter().zip(&before).any(|(a, b)| (a - b).abs() > 1e-3));
        }
        let all: Vec<usize> = (0..n).collect();
        assert_eq!(
            server_round(&models, &all, Mode::S2S),
            server_round(&models, &all, Mode::S2A)
        );
    }
}
