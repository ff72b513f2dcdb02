//! Seeded participation models: which clients are *available* in a round.
//! The strategy then samples among them ([`crate::strategy::Strategy::configure_fit`]).
//!
//! Each client's availability is drawn from its own stream
//! `(seed, Participation, client, round)`, so it does not depend on the other
//! clients, on thread count, or on the order of evaluation.
//!
//! - [`Participation::All`]: everybody, every round.
//! - [`Participation::UniformK`]: `k` of `N` uniformly without replacement
//!   (one stream per round; FedAvg's sampling in McMahan et al. 2017).
//! - [`Participation::Bernoulli`]: client `n` independently with probability
//!   `p_n` (FedAU, Wang & Ji, *A Lightweight Method for Tackling Unknown
//!   Participation Statistics in Federated Averaging*, §5 "Bernoulli").
//! - [`Participation::Markov`]: a two-state chain per client with stationary
//!   probability `π_n` and second eigenvalue `λ_n`:
//!   `P(on→on) = λ + (1−λ)π`, `P(off→on) = (1−λ)π`, `X_0 ~ Bern(π)` (CA-Fed,
//!   Rodio et al., *Federated Learning under Heterogeneous and Correlated
//!   Client Availability*, §3). Probabilities are clipped to [0, 1] for λ < 0.
//! - [`Participation::CyclicGroups`]: clients split by a seeded shuffle into
//!   `K̄` equal groups (fixed); round `t` (1-based) makes group `(t−1) mod K̄`
//!   available (Cho et al., *On the Convergence of Federated Averaging with
//!   Cyclic Client Participation*, ICML 2023, §3). Open choice: the group
//!   order is fixed across cycles (the paper also allows reshuffling).
//! - [`Participation::CyclicOnOff`]: client `n` is on for `on_n` rounds then
//!   off for `off_n`, starting at a seeded offset (FedAU's "cyclic" process).

use crate::rng::{Purpose, Rng};
use crate::{Error, Result};

/// A participation model.
#[derive(Clone, Debug, PartialEq)]
pub enum Participation {
    /// All clients every round.
    All,
    /// `k` of `N` uniformly at random without replacement.
    UniformK {
        /// Clients per round.
        k: usize,
    },
    /// Independent Bernoulli(p_n) per client and round.
    Bernoulli {
        /// Per-client probabilities (length N).
        p: Vec<f64>,
    },
    /// Two-state Markov chain per client.
    Markov {
        /// Stationary probabilities π_n.
        pi: Vec<f64>,
        /// Second eigenvalues λ_n (correlation; 0 = Bernoulli).
        lambda: Vec<f64>,
    },
    /// `groups` fixed groups taking turns.
    CyclicGroups {
        /// Number of groups K̄ (≥ 1).
        groups: usize,
    },
    /// On `on[n]` rounds, off `off[n]` rounds, seeded offset.
    CyclicOnOff {
        /// Rounds on, per client (≥ 1).
        on: Vec<usize>,
        /// Rounds off, per client (≥ 1).
        off: Vec<usize>,
    },
}

/// Runs a participation model round by round (it keeps the Markov states).
#[derive(Clone, Debug)]
pub struct Availability {
    model: Participation,
    clients: usize,
    seed: u64,
    markov: Vec<bool>,
    groups: Vec<usize>,
    next_round: u64,
}

impl Participation {
    /// Parses `all`, `uniform:K`, `bernoulli:P` (same p for all), `markov:PI:LAMBDA`,
    /// `cyclic:GROUPS`, `onoff:ON:OFF`.
    pub fn parse(s: &str, clients: usize) -> Result<Participation> {
        let parts: Vec<&str> = s.split(':').collect();
        let num = |i: usize| -> Result<f64> {
            parts
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| Error::Config(format!("participation `{s}`: argument {i} missing or not a number")))
        };
        let p = match parts[0] {
            "all" => Participation::All,
            "uniform" => Participation::UniformK { k: num(1)? as usize },
            "bernoulli" => Participation::Bernoulli {
                p: vec![num(1)?; clients],
            },
            "markov" => Participation::Markov {
                pi: vec![num(1)?; clients],
                lambda: vec![num(2)?; clients],
            },
            "cyclic" => Participation::CyclicGroups {
                groups: num(1)? as usize,
            },
            "onoff" => Participation::CyclicOnOff {
                on: vec![num(1)? as usize; clients],
                off: vec![num(2)? as usize; clients],
            },
            _ => {
                return Err(Error::Config(format!(
                "unknown participation `{s}` (all, uniform:K, bernoulli:P, markov:PI:LAMBDA, cyclic:G, onoff:ON:OFF)"
            )))
            }
        };
        p.validate(clients)?;
        Ok(p)
    }

    /// Checks the model against the client count.
    pub fn validate(&self, clients: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let len_ok = |n: usize, what: &str| -> Result<()> {
            if n != clients {
                return Err(Error::Config(format!("{what} has {n} entries for {clients} clients")));
            }
            Ok(())
        };
        match self {
            Participation::All => Ok(()),
            Participation::UniformK { k } if *k == 0 || *k > clients => {
                bad(format!("uniform k must be in 1..={clients}, got {k}"))
            }
            Participation::UniformK { .. } => Ok(()),
            Participation::Bernoulli { p } => {
                len_ok(p.len(), "bernoulli p")?;
                if p.iter().any(|x| !(0.0..=1.0).contains(x)) {
                    return bad("bernoulli p must lie in [0, 1]".into());
                }
                Ok(())
            }
            Participation::Markov { pi, lambda } => {
                len_ok(pi.len(), "markov pi")?;
                len_ok(lambda.len(), "markov lambda")?;
                if pi.iter().any(|x| !(0.0..=1.0).contains(x)) || lambda.iter().any(|l| !(-1.0..1.0).contains(l)) {
                    return bad("markov needs pi in [0, 1] and lambda in [-1, 1)".into());
                }
                Ok(())
            }
            Participation::CyclicGroups { groups } if *groups == 0 || *groups > clients => {
                bad(format!("cyclic groups must be in 1..={clients}, got {groups}"))
            }
            Participation::CyclicGroups { .. } => Ok(()),
            Participation::CyclicOnOff { on, off } => {
                len_ok(on.len(), "onoff on")?;
                len_ok(off.len(), "onoff off")?;
                if on.iter().chain(off).any(|&x| x == 0) {
                    return bad("onoff periods must be ≥ 1".into());
                }
                Ok(())
            }
        }
    }

    /// Starts the process for `clients` clients.
    pub fn start(&self, clients: usize, seed: u64) -> Result<Availability> {
        self.validate(clients)?;
        let mut groups = Vec::new();
        if let Participation::CyclicGroups { groups: g } = self {
            let mut order: Vec<usize> = (0..clients).collect();
            Rng::stream(seed, Purpose::Participation, u64::MAX, 0).shuffle(&mut order);
            groups = vec![0; clients];
            for (pos, &c) in order.iter().enumerate() {
                groups[c] = pos * g / clients;
            }
        }
        Ok(Availability {
            model: self.clone(),
            clients,
            seed,
            markov: Vec::new(),
            groups,
            next_round: 1,
        })
    }
}

impl Availability {
    /// The model.
    pub fn model(&self) -> &Participation {
        &self.model
    }

    /// Available clients in round `round` (1-based, rounds in order), increasing.
    pub fn round(&mut self, round: u64) -> Result<Vec<usize>> {
        if round != self.next_round {
            return Err(Error::Config(format!(
                "availability asked for round {round}, expected {}",
                self.next_round
            )));
        }
        self.next_round += 1;
        let (seed, n) = (self.seed, self.clients);
        let rng = |c: usize| Rng::stream(seed, Purpose::Participation, c as u64, round);
        Ok(match &self.model {
            Participation::All => (0..n).collect(),
            Participation::UniformK { k } => {
                Rng::stream(seed, Purpose::Participation, u64::MAX - 1, round).choose(n, *k)
            }
            Participation::Bernoulli { p } => (0..n).filter(|&c| rng(c).bernoulli(p[c])).collect(),
            Participation::Markov { pi, lambda } => {
                if self.markov.is_empty() {
                    self.markov = (0..n).map(|c| rng(c).bernoulli(pi[c])).collect();
                } else {
                    for c in 0..n {
                        let (p, l) = (pi[c], lambda[c]);
                        let on = if self.markov[c] {
                            l + (1.0 - l) * p
                        } else {
                            (1.0 - l) * p
                        };
                        self.markov[c] = rng(c).bernoulli(on.clamp(0.0, 1.0));
                    }
                }
                (0..n).filter(|&c| self.markov[c]).collect()
            }
            Participation::CyclicGroups { groups } => {
                let g = ((round - 1) % *groups as u64) as usize;
                (0..n).filter(|&c| self.groups[c] == g).collect()
            }
            Participation::CyclicOnOff { on, off } => (0..n)
                .filter(|&c| {
                    let period = (on[c] + off[c]) as u64;
                    let offset = Rng::stream(seed, Purpose::Participation, c as u64, 0).below(period as usize) as u64;
                    // Starts off: the on phase occupies the last `on` rounds of each period.
                    (round - 1 + offset) % period >= off[c] as u64
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(model: &Participation, n: usize, rounds: u64) -> Vec<f64> {
        let mut a = model.start(n, 9).unwrap();
        let mut count = vec![0usize; n];
        for t in 1..=rounds {
            for c in a.round(t).unwrap() {
                count[c] += 1;
            }
        }
        count.iter().map(|&x| x as f64 / rounds as f64).collect()
    }

    #[test]
    fn uniform_k_takes_k() {
        let mut a = Participation::UniformK { k: 7 }.start(50, 1).unwrap();
        for t in 1..20 {
            let s = a.round(t).unwrap();
            assert_eq!(s.len(), 7);
            assert!(s.windows(2).all(|w| w[0] < w[1]));
        }
        let r = rates(&Participation::UniformK { k: 10 }, 20, 4000);
        assert!(r.iter().all(|&x| (x - 0.5).abs() < 0.04), "{r:?}");
    }

    #[test]
    fn bernoulli_and_markov_rates_match_pi() {
        let p: Vec<f64> = (0..10).map(|i| 0.05 + 0.09 * i as f64).collect();
        let r = rates(&Participation::Bernoulli { p: p.clone() }, 10, 6000);
        for (x, q) in r.iter().zip(&p) {
            assert!((x - q).abs() < 0.03, "bernoulli rate {x} vs {q}");
        }
        let m = Participation::Markov {
            pi: p.clone(),
            lambda: vec![0.8; 10],
        };
        let r = rates(&m, 10, 20_000);
        for (x, q) in r.iter().zip(&p) {
            assert!((x - q).abs() < 0.05, "markov rate {x} vs {q}");
        }
    }

    #[test]
    fn markov_lambda_correlates_rounds() {
        // P(on at t+1 | on at t) = λ + (1−λ)π.
        let (pi, lam) = (0.3, 0.7);
        let m = Participation::Markov {
            pi: vec![pi; 50],
            lambda: vec![lam; 50],
        };
        let mut a = m.start(50, 4).unwrap();
        let mut prev = a.round(1).unwrap();
        let (mut stay, mut was) = (0usize, 0usize);
        for t in 2..2000 {
            let cur = a.round(t).unwrap();
            was += prev.len();
            stay += prev.iter().filter(|c| cur.binary_search(c).is_ok()).count();
            prev = cur;
        }
        let est = stay as f64 / was as f64;
        assert!((est - (lam + (1.0 - lam) * pi)).abs() < 0.02, "stay prob {est}");
    }

    #[test]
    fn cyclic_groups_partition_clients() {
        let mut a = Participation::CyclicGroups { groups: 4 }.start(20, 2).unwrap();
        let mut seen = Vec::new();
        for t in 1..=4 {
            let s = a.round(t).unwrap();
            assert_eq!(s.len(), 5);
            seen.extend(s);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert_eq!(
            a.round(5).unwrap(),
            Participation::CyclicGroups { groups: 4 }
                .start(20, 2)
                .unwrap()
                .round(1)
                .unwrap()
        );
    }

    #[test]
    fn onoff_duty_cycle() {
        let r = rates(
            &Participation::CyclicOnOff {
                on: vec![2; 8],
                off: vec![6; 8],
            },
            8,
            800,
        );
        assert!(r.iter().all(|&x| (x - 0.25).abs() < 1e-9), "{r:?}");
    }

    #[test]
    fn invalid_models_are_errors() {
        assert!(Participation::parse("uniform:0", 5).is_err());
        assert!(Participation::parse("uniform:6", 5).is_err());
        assert!(Participation::parse("bernoulli:1.5", 5).is_err());
        assert!(Participation::parse("markov:0.5:1.0", 5).is_err());
        assert!(Participation::parse("cyclic:0", 5).is_err());
        assert!(Participation::parse("onoff:0:3", 5).is_err());
        assert!(Participation::parse("gossip", 5).is_err());
        let mut a = Participation::All.start(3, 1).unwrap();
        assert!(a.round(2).is_err());
    }
}
