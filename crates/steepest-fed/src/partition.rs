//! Seeded data partitions: which sample indices each client holds.
//!
//! - [`Partition::Iid`]: a seeded shuffle cut into `N` near-equal parts.
//! - [`Partition::Dirichlet`]: label skew as in Hsu, Qi & Brown, *Measuring
//!   the Effects of Non-Identical Data Distribution for Federated Visual
//!   Classification* (2019): client `n` draws class proportions
//!   `q_n ~ Dir(α·1_C)`; each class's samples are dealt to clients in
//!   proportion to `q_{n,c}` (the per-class split of the FedAU and FedAST
//!   code). Choice left open by the papers: steepest cuts class `c`'s shuffled
//!   samples at `⌊cumsum(q_{·,c}/Σ_n q_{n,c})·|c|⌋`, so every sample is used
//!   exactly once; a client may end up empty for tiny α (reported by
//!   [`sizes`]; the simulator skips empty clients' updates with zero weight).
//! - [`Partition::Shards`]: McMahan et al., *Communication-Efficient Learning
//!   of Deep Networks from Decentralized Data* (2017), §3: sort by label, cut
//!   into `N·s` shards, give each client `s` random shards.
//!
//! Time-varying shifts (rotation/cluster swaps) are applied by the workload,
//! not here (see [`crate::logreg`]).

use crate::rng::{Purpose, Rng};
use crate::{Error, Result};

/// A partition rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Partition {
    /// Uniformly at random, equal sizes (±1).
    Iid,
    /// Dirichlet(α) label skew.
    Dirichlet {
        /// Concentration α > 0 (small = skewed).
        alpha: f64,
    },
    /// Label-sorted shards, `per_client` shards each.
    Shards {
        /// Shards per client (≥ 1).
        per_client: usize,
    },
}

impl Partition {
    /// Parses `iid`, `dirichlet:<alpha>`, `shards:<s>`.
    pub fn parse(s: &str) -> Result<Partition> {
        let (head, arg) = s.split_once(':').unwrap_or((s, ""));
        let num = |what: &str| -> Result<f64> {
            arg.parse::<f64>()
                .map_err(|_| Error::Config(format!("partition `{s}`: {what} must be a number")))
        };
        let p = match head {
            "iid" => Partition::Iid,
            "dirichlet" => Partition::Dirichlet { alpha: num("alpha")? },
            "shards" => Partition::Shards {
                per_client: num("shards per client")? as usize,
            },
            _ => {
                return Err(Error::Config(format!(
                    "unknown partition `{s}` (iid, dirichlet:A, shards:S)"
                )))
            }
        };
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<()> {
        match *self {
            Partition::Dirichlet { alpha } if !(alpha > 0.0 && alpha.is_finite()) => {
                Err(Error::Config(format!("dirichlet alpha must be > 0, got {alpha}")))
            }
            Partition::Shards { per_client: 0 } => Err(Error::Config("shards per client must be ≥ 1".into())),
            _ => Ok(()),
        }
    }

    /// Splits samples with labels `labels` (classes `0..classes`) among
    /// `clients` clients; each client's indices are sorted.
    pub fn split(&self, labels: &[usize], classes: usize, clients: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
        self.validate()?;
        if clients == 0 {
            return Err(Error::Config("need at least one client".into()));
        }
        let n = labels.len();
        let mut out = vec![Vec::new(); clients];
        match *self {
            Partition::Iid => {
                let mut idx: Vec<usize> = (0..n).collect();
                Rng::stream(seed, Purpose::Partition, 0, 0).shuffle(&mut idx);
                for (k, i) in idx.into_iter().enumerate() {
                    out[k % clients].push(i);
                }
            }
            Partition::Dirichlet { alpha } => {
                let q: Vec<Vec<f64>> = (0..clients)
                    .map(|c| Rng::stream(seed, Purpose::Partition, c as u64 + 1, 0).dirichlet(alpha, classes))
                    .collect();
                for class in 0..classes {
                    let mut idx: Vec<usize> = (0..n).filter(|&i| labels[i] == class).collect();
                    Rng::stream(seed, Purpose::Partition, 0, class as u64 + 1).shuffle(&mut idx);
                    let total: f64 = q.iter().map(|qc| qc[class]).sum();
                    let mut cum = 0.0;
                    let mut start = 0;
                    for (c, qc) in q.iter().enumerate() {
                        cum += qc[class] / total;
                        let end = if c + 1 == clients {
                            idx.len()
                        } else {
                            ((cum * idx.len() as f64).floor() as usize).min(idx.len())
                        };
                        out[c].extend_from_slice(&idx[start..end.max(start)]);
                        start = end.max(start);
                    }
                }
            }
            Partition::Shards { per_client } => {
                let mut idx: Vec<usize> = (0..n).collect();
                idx.sort_by_key(|&i| (labels[i], i));
                let shards = clients * per_client;
                if shards > n {
                    return Err(Error::Config(format!("{shards} shards but only {n} samples")));
                }
                let mut order: Vec<usize> = (0..shards).collect();
                Rng::stream(seed, Purpose::Partition, 0, 0).shuffle(&mut order);
                for (k, s) in order.into_iter().enumerate() {
                    let (a, b) = (s * n / shards, (s + 1) * n / shards);
                    out[k / per_client].extend_from_slice(&idx[a..b]);
                }
            }
        }
        for v in &mut out {
            v.sort_unstable();
        }
        Ok(out)
    }
}

/// Sizes of the parts.
pub fn sizes(parts: &[Vec<usize>]) -> Vec<usize> {
    parts.iter().map(Vec::len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize, c: usize) -> Vec<usize> {
        (0..n).map(|i| (i * 7 + i / 3) % c).collect()
    }

    fn check_cover(parts: &[Vec<usize>], n: usize) {
        let mut all: Vec<usize> = parts.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "every sample exactly once");
    }

    #[test]
    fn iid_covers_and_balances() {
        let y = labels(1003, 10);
        let p = Partition::Iid.split(&y, 10, 10, 5).unwrap();
        check_cover(&p, 1003);
        let s = sizes(&p);
        assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
        assert_eq!(p, Partition::Iid.split(&y, 10, 10, 5).unwrap());
        assert_ne!(p, Partition::Iid.split(&y, 10, 10, 6).unwrap());
    }

    /// Mean over clients of the largest class share: ~1/C for IID, near 1 for
    /// small α. The measured skew must order as α does.
    fn skew(parts: &[Vec<usize>], y: &[usize], c: usize) -> f64 {
        let mut tot = 0.0;
        let mut k = 0;
        for p in parts.iter().filter(|p| !p.is_empty()) {
            let mut h = vec![0usize; c];
            for &i in p {
                h[y[i]] += 1;
            }
            tot += *h.iter().max().unwrap() as f64 / p.len() as f64;
            k += 1;
        }
        tot / k as f64
    }

    #[test]
    fn dirichlet_skew_follows_alpha() {
        let y = labels(20_000, 10);
        let iid = Partition::Iid.split(&y, 10, 50, 1).unwrap();
        let d10 = Partition::Dirichlet { alpha: 10.0 }.split(&y, 10, 50, 1).unwrap();
        let d01 = Partition::Dirichlet { alpha: 0.1 }.split(&y, 10, 50, 1).unwrap();
        check_cover(&d01, 20_000);
        check_cover(&d10, 20_000);
        let (a, b, c) = (skew(&iid, &y, 10), skew(&d10, &y, 10), skew(&d01, &y, 10));
        assert!(a < 0.2, "iid skew {a}");
        assert!(b < 0.4 && b > a, "Dir(10) skew {b} (iid {a})");
        assert!(c > 0.6, "Dir(0.1) skew {c}");
    }

    #[test]
    fn shards_give_few_labels() {
        let y: Vec<usize> = (0..6000).map(|i| (i * 7) % 10).collect();
        let p = Partition::Shards { per_client: 2 }.split(&y, 10, 100, 3).unwrap();
        check_cover(&p, 6000);
        for part in &p {
            let mut l: Vec<usize> = part.iter().map(|&i| y[i]).collect();
            l.dedup();
            l.sort_unstable();
            l.dedup();
            assert!(l.len() <= 2, "client has labels {l:?}");
        }
    }

    #[test]
    fn bad_configs_are_errors() {
        assert!(Partition::parse("dirichlet:-1").is_err());
        assert!(Partition::parse("shards:0").is_err());
        assert!(Partition::parse("zipf").is_err());
        assert!(Partition::Iid.split(&[0, 1], 2, 0, 1).is_err());
        assert!(Partition::Shards { per_client: 5 }.split(&[0, 1], 2, 2, 1).is_err());
    }
}

/// Distribution shift over time (for client-driven FL): `clusters` feature
/// rotations (cluster 0 is the identity, cluster `k > 0` a seeded permutation
/// of the feature coordinates — a rotation that keeps Gaussian data Gaussian,
/// as rotated MNIST keeps digits digits); each client starts in a seeded
/// cluster and, at every round, moves to another uniformly chosen cluster with
/// probability `switch_prob` (from its stream `(seed, Partition, client, round)`),
/// so a client's cluster at round `t` depends only on its own draws.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterShift {
    /// Number of clusters K ≥ 1.
    pub clusters: usize,
    /// Per-round switching probability in [0, 1].
    pub switch_prob: f64,
}

impl ClusterShift {
    /// Parses `shift:K:P`.
    pub fn parse(s: &str) -> Result<ClusterShift> {
        let p: Vec<&str> = s.split(':').collect();
        let bad = || Error::Config(format!("shift `{s}`: expected shift:CLUSTERS:SWITCH_PROB"));
        if p.len() != 3 || p[0] != "shift" {
            return Err(bad());
        }
        let c = ClusterShift {
            clusters: p[1].parse().map_err(|_| bad())?,
            switch_prob: p[2].parse().map_err(|_| bad())?,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if self.clusters == 0 || !(0.0..=1.0).contains(&self.switch_prob) {
            return Err(Error::Config(format!(
                "shift needs ≥ 1 cluster and switch_prob in [0, 1], got {self:?}"
            )));
        }
        Ok(())
    }

    /// The cluster of `client` in `round` (round 0 = the start).
    pub fn cluster(&self, client: usize, round: u64, seed: u64) -> usize {
        let k = self.clusters;
        let mut c = Rng::stream(seed, Purpose::Partition, client as u64, u64::MAX).below(k);
        if k == 1 {
            return 0;
        }
        for t in 1..=round {
            let mut r = Rng::stream(seed, Purpose::Partition, client as u64, t);
            if r.bernoulli(self.switch_prob) {
                c = (c + 1 + r.below(k - 1)) % k;
            }
        }
        c
    }

    /// Cluster `k`'s feature permutation of `d` coordinates (`x'_j = x_{perm[j]}`).
    pub fn permutation(&self, k: usize, d: usize, seed: u64) -> Vec<usize> {
        let mut p: Vec<usize> = (0..d).collect();
        if k > 0 {
            Rng::stream(seed, Purpose::Partition, u64::MAX - 1, k as u64).shuffle(&mut p);
        }
        p
    }
}

#[cfg(test)]
mod shift_tests {
    use super::*;

    #[test]
    fn clusters_switch_at_the_stated_rate() {
        let s = ClusterShift {
            clusters: 4,
            switch_prob: 0.1,
        };
        let (mut switches, mut steps) = (0, 0);
        for c in 0..50 {
            let mut prev = s.cluster(c, 0, 1);
            for t in 1..200 {
                let now = s.cluster(c, t, 1);
                assert!(now < 4);
                switches += usize::from(now != prev);
                steps += 1;
                prev = now;
            }
        }
        let rate = switches as f64 / steps as f64;
        assert!((rate - 0.1).abs() < 0.015, "switch rate {rate}");
        let never = ClusterShift {
            clusters: 3,
            switch_prob: 0.0,
        };
        assert_eq!(never.cluster(5, 0, 2), never.cluster(5, 100, 2));
        assert_eq!(s.permutation(0, 5, 1), vec![0, 1, 2, 3, 4]);
        assert_ne!(s.permutation(1, 20, 1), s.permutation(2, 20, 1));
        assert!(ClusterShift::parse("shift:0:0.1").is_err());
        assert!(ClusterShift::parse("shift:2:1.5").is_err());
        assert_eq!(ClusterShift::parse("shift:2:0.5").unwrap().clusters, 2);
    }
}

/// A time-varying *mixture* of clusters per client (client-driven FL,
/// [`crate::algorithms::cdfl`]), on continuous simulated time: the clusters
/// are [`ClusterShift`]'s feature permutations (`permutation(k, d, seed)`);
/// client `c`'s data at time `t` follows a mixture `π_c(e) ∈ Δ_K`, where the
/// epoch `e` counts the shifts of `c` in `(0, t]`, a Poisson process of rate
/// `shift_rate` (gaps drawn from the stream `(seed, Arrival, c, 1)`). At every
/// epoch the client draws a new mixture from `(seed, Arrival, c, 2 + 2e)`:
/// `concentration == 0` gives a pure cluster (`π = e_k`, `k` uniform);
/// `concentration > 0` gives `π ~ Dir(concentration · 1_K)`; then each of its
/// samples is assigned a cluster `~ π` from `(seed, Arrival, c, 3 + 2e)`.
/// (Stream `(seed, Arrival, c, 0)` is left to the client's arrival process.)
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterMixture {
    /// Number of clusters K ≥ 1.
    pub clusters: usize,
    /// Shifts per unit of simulated time, per client (≥ 0; 0 = never).
    pub shift_rate: f64,
    /// Dirichlet concentration of a client's mixture (0 = one pure cluster).
    pub concentration: f64,
}

impl ClusterMixture {
    /// Checks the fields (errors name the field).
    pub fn validate(&self) -> Result<()> {
        if self.clusters == 0 {
            return Err(Error::Config("mixture: clusters must be ≥ 1".into()));
        }
        if !(self.shift_rate >= 0.0 && self.shift_rate.is_finite()) {
            return Err(Error::Config(format!(
                "mixture: shift_rate must be finite and ≥ 0, got {}",
                self.shift_rate
            )));
        }
        if !(self.concentration >= 0.0 && self.concentration.is_finite()) {
            return Err(Error::Config(format!(
                "mixture: concentration must be finite and ≥ 0, got {}",
                self.concentration
            )));
        }
        Ok(())
    }

    /// The epoch of `client` at time `t` (shifts in `(0, t]`).
    pub fn epoch(&self, client: usize, t: f64, seed: u64) -> u64 {
        if self.shift_rate <= 0.0 {
            return 0;
        }
        let mut r = Rng::stream(seed, Purpose::Arrival, client as u64, 1);
        let (mut at, mut e) = (r.exponential(1.0 / self.shift_rate), 0u64);
        while at <= t {
            e += 1;
            at += r.exponential(1.0 / self.shift_rate);
        }
        e
    }

    /// The mixture of `client` in `epoch` (a probability vector of length K).
    pub fn mixture(&self, client: usize, epoch: u64, seed: u64) -> Vec<f64> {
        let k = self.clusters;
        let mut r = Rng::stream(seed, Purpose::Arrival, client as u64, 2 + 2 * epoch);
        if self.concentration == 0.0 || k == 1 {
            let mut p = vec![0.0; k];
            p[r.below(k)] = 1.0;
            return p;
        }
        r.dirichlet(self.concentration, k)
    }

    /// The cluster of each of the client's `n` samples in `epoch`.
    pub fn assign(&self, client: usize, epoch: u64, n: usize, seed: u64) -> Vec<usize> {
        let p = self.mixture(client, epoch, seed);
        let mut r = Rng::stream(seed, Purpose::Arrival, client as u64, 3 + 2 * epoch);
        (0..n)
            .map(|_| {
                let u = r.uniform();
                let mut cum = 0.0;
                for (k, &pk) in p.iter().enumerate() {
                    cum += pk;
                    if u < cum {
                        return k;
                    }
                }
                // Rounding: the last cluster with positive weight.
                p.iter().rposition(|&x| x > 0.0).unwrap_or(0)
            })
            .collect()
    }
}

#[cfg(test)]
mod mixture_tests {
    use super::*;

    #[test]
    fn mixtures_are_seeded_and_shift_at_the_rate() {
        let m = ClusterMixture {
            clusters: 4,
            shift_rate: 0.5,
            concentration: 0.3,
        };
        m.validate().unwrap();
        let shifts: u64 = (0..200).map(|c| m.epoch(c, 100.0, 3)).sum();
        let rate = shifts as f64 / (200.0 * 100.0);
        assert!((rate - 0.5).abs() < 0.03, "shift rate {rate}");
        let p = m.mixture(7, 2, 3);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12 && p.len() == 4);
        assert_eq!(m.assign(7, 2, 50, 3), m.assign(7, 2, 50, 3));
        let pure = ClusterMixture {
            concentration: 0.0,
            ..m.clone()
        };
        let a = pure.assign(1, 0, 30, 3);
        assert!(a.iter().all(|&k| k == a[0]));
        assert_eq!(pure.mixture(1, 0, 3)[a[0]], 1.0);
        assert!(ClusterMixture {
            clusters: 0,
            ..m.clone()
        }
        .validate()
        .is_err());
        assert!(ClusterMixture {
            shift_rate: -1.0,
            ..m.clone()
        }
        .validate()
        .is_err());
        assert!(ClusterMixture {
            concentration: f64::NAN,
            ..m
        }
        .validate()
        .is_err());
    }
}
