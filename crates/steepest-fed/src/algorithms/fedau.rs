//! FedAU: FedAvg with online-estimated participation weights.
//!
//! Paper: Wang & Ji, *A Lightweight Method for Tackling Unknown Participation
//! Statistics in Federated Averaging* (ICLR 2024), Algorithm 1 with the
//! online weight estimate (the paper's `OnlineWeightAdjust`), checked against
//! the official code (IBM/fedau `main.py`, `weighting_method = 'adaptive'`).
//!
//! Every client `n` keeps the number of rounds since it last took part, `c_n`,
//! and the intervals it has recorded. In round `t`:
//! - participant: its weight is the mean of the intervals recorded *so far*
//!   (1 when none yet), an estimate of `1/p_n`; it then records `c_n + 1`
//!   and resets `c_n = 0`;
//! - non-participant: `c_n += 1`; when `c_n` reaches the cutoff `K` it
//!   records `K` and resets (bounding the estimate for rarely seen clients);
//! - server: `x ← x + η_g (1/N) Σ_{n∈S_t} ω_n Δ_n` — divided by the total
//!   client count `N`, not by `|S_t|`, summed in client-id order.
//!
//! Defaults (code): `η_g = 1`, `K = ∞` (the code's 1e5; the paper also uses 50).
//! Open choices: a client whose result failed counts as not participating; the
//! initial weight 1 is the code's choice (the paper starts its estimate empty).
//! All available clients train (Flower's `fraction = 1`): participation is
//! decided by the availability model, as in the paper.

use crate::strategy::{check_results, with_data, ClientConfig, Failure, FitIns, FitRes, Model, Sampling, Strategy};
use crate::{Error, Result};

/// FedAU's state and settings.
#[derive(Clone, Debug)]
pub struct FedAu {
    /// What participants run.
    pub client: ClientConfig,
    /// Server learning rate η_g.
    pub server_lr: f64,
    /// Cutoff K (u64::MAX = none).
    pub cutoff: u64,
    clients: usize,
    since: Vec<u64>,
    interval_sum: Vec<f64>,
    interval_count: Vec<u64>,
}

impl FedAu {
    /// FedAU over `clients` clients.
    pub fn new(clients: usize, client: ClientConfig, server_lr: f64, cutoff: u64) -> Result<FedAu> {
        if clients == 0 || !(server_lr > 0.0 && server_lr.is_finite()) || cutoff == 0 {
            return Err(Error::Config(format!(
                "fedau needs clients ≥ 1, server_lr > 0, cutoff ≥ 1; got {clients}, {server_lr}, {cutoff}"
            )));
        }
        Ok(FedAu {
            client,
            server_lr,
            cutoff,
            clients,
            since: vec![0; clients],
            interval_sum: vec![0.0; clients],
            interval_count: vec![0; clients],
        })
    }

    /// The current weight estimate of client `n` (1 before any interval).
    pub fn weight(&self, n: usize) -> f64 {
        if self.interval_count[n] == 0 {
            1.0
        } else {
            self.interval_sum[n] / self.interval_count[n] as f64
        }
    }

    fn record(&mut self, n: usize, interval: u64) {
        self.interval_sum[n] += interval as f64;
        self.interval_count[n] += 1;
    }
}

impl Strategy for FedAu {
    fn name(&self) -> String {
        format!("fedau(server_lr={}, K={})", self.server_lr, self.cutoff)
    }

    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        Ok(Sampling::default()
            .sample(round, available, seed)
            .into_iter()
            .map(|client| FitIns {
                client,
                round,
                config: self.client.clone(),
            })
            .collect())
    }

    /// JSON `[since, interval_sum, interval_count]` (exact f64 round-trip).
    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        serde_json::to_vec(&(&self.since, &self.interval_sum, &self.interval_count))
            .map(Some)
            .map_err(|e| Error::Io(e.to_string()))
    }

    fn load_state_bytes(&mut self, _global: &Model, bytes: &[u8]) -> Result<()> {
        type State = (Vec<u64>, Vec<f64>, Vec<u64>);
        let (since, sum, count): State =
            serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("fedau state: {e}")))?;
        if since.len() != self.clients || sum.len() != self.clients || count.len() != self.clients {
            return Err(Error::Config(format!(
                "fedau state is for {} clients, expected {}",
                since.len(),
                self.clients
            )));
        }
        (self.since, self.interval_sum, self.interval_count) = (since, sum, count);
        Ok(())
    }

    fn aggregate_fit(
        &mut self,
        round: u64,
        global: &Model,
        results: &[FitRes],
        _failures: &[Failure],
    ) -> Result<Model> {
        check_results(global, results)?;
        if let Some(r) = results.iter().find(|r| r.client >= self.clients) {
            return Err(Error::Rejected(format!(
                "client {} ≥ {} clients",
                r.client, self.clients
            )));
        }
        let mut acc: Vec<Vec<f64>> = global.iter().map(|p| vec![0.0; p.data.len()]).collect();
        let mut next = results.iter().peekable();
        for n in 0..self.clients {
            match next.peek() {
                Some(r) if r.client == n => {
                    let w = self.weight(n);
                    for ((a, p), g) in acc.iter_mut().zip(r.params.iter()).zip(global.iter()) {
                        for ((ai, &x), &x0) in a.iter_mut().zip(&p.data).zip(&g.data) {
                            *ai += (x - x0) * w;
                        }
                    }
                    let interval = self.since[n] + 1;
                    self.record(n, interval);
                    self.since[n] = 0;
                    next.next();
                }
                _ => {
                    self.since[n] += 1;
                    if self.since[n] >= self.cutoff {
                        let k = self.since[n];
                        self.record(n, k);
                        self.since[n] = 0;
                    }
                }
            }
        }
        if results.is_empty() {
            return Err(Error::NoResults { round, failures: 0 });
        }
        let n = self.clients as f64;
        let data = global
            .iter()
            .zip(acc)
            .map(|(g, a)| {
                g.data
                    .iter()
                    .zip(a)
                    .map(|(&x0, s)| x0 + self.server_lr * (s / n))
                    .collect()
            })
            .collect();
        with_data(global, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::participation::Participation;

    /// Under Bernoulli(p_n) participation the weights estimate 1/p_n
    /// (the paper's claim (d)(i): |ω_n p_n − 1| small for frequent clients).
    #[test]
    fn weights_estimate_inverse_participation_probability() {
        let n = 20;
        let p: Vec<f64> = (0..n).map(|i| 0.1 + 0.04 * i as f64).collect();
        let mut avail = Participation::Bernoulli { p: p.clone() }.start(n, 3).unwrap();
        let mut g = Model::new();
        g.push("w", &[2], vec![0.0, 0.0]).unwrap();
        let mut s = FedAu::new(n, ClientConfig::default(), 1.0, u64::MAX).unwrap();
        for t in 1..=4000 {
            let on = avail.round(t).unwrap();
            let res: Vec<FitRes> = on
                .iter()
                .map(|&c| FitRes {
                    client: c,
                    params: g.clone(),
                    num_examples: 1,
                    loss: 0.0,
                })
                .collect();
            let _ = s.aggregate_fit(t, &g, &res, &[]);
        }
        for (i, &pi) in p.iter().enumerate() {
            let err = (s.weight(i) * pi - 1.0).abs();
            assert!(err < 0.12, "client {i}: ω p = {}", s.weight(i) * pi);
        }
    }

    #[test]
    fn update_divides_by_all_clients() {
        let mut g = Model::new();
        g.push("w", &[1], vec![1.0]).unwrap();
        let mut s = FedAu::new(4, ClientConfig::default(), 1.0, u64::MAX).unwrap();
        let mut local = Model::new();
        local.push("w", &[1], vec![3.0]).unwrap();
        let r = FitRes {
            client: 2,
            params: local,
            num_examples: 5,
            loss: 0.0,
        };
        let out = s.aggregate_fit(1, &g, &[r], &[]).unwrap();
        // Δ = 2, ω = 1 (no interval yet), N = 4: x = 1 + 2/4.
        assert_eq!(out.get("w").unwrap().data, vec![1.5]);
    }

    /// A FedAU restored from its saved state continues exactly as the original
    /// (the networked server's restart path), and refuses state for another N.
    #[test]
    fn saved_state_resumes_bit_for_bit() {
        let n = 6;
        let mut avail = Participation::Bernoulli { p: vec![0.4; n] }.start(n, 9).unwrap();
        let mut g = Model::new();
        g.push("w", &[3], vec![0.5, -1.0, 2.0]).unwrap();
        let mut a = FedAu::new(n, ClientConfig::default(), 1.0, 5).unwrap();
        let mut b = None;
        let mut ga = g.clone();
        let mut gb = g.clone();
        for t in 1..=40u64 {
            let on = avail.round(t).unwrap();
            let res: Vec<FitRes> = on
                .iter()
                .map(|&c| {
                    let mut m = Model::new();
                    let shift = (c as f64 + 1.0) * 0.01 * t as f64;
                    m.push("w", &[3], ga.get("w").unwrap().data.iter().map(|x| x + shift).collect())
                        .unwrap();
                    FitRes {
                        client: c,
                        params: m,
                        num_examples: 1,
                        loss: 0.0,
                    }
                })
                .collect();
            if t == 20 {
                let bytes = a.state_bytes().unwrap().unwrap();
                let mut fresh = FedAu::new(n, ClientConfig::default(), 1.0, 5).unwrap();
                fresh.load_state_bytes(&ga, &bytes).unwrap();
                let mut wrong = FedAu::new(n + 1, ClientConfig::default(), 1.0, 5).unwrap();
                assert!(wrong.load_state_bytes(&ga, &bytes).is_err());
                b = Some(fresh);
                gb = ga.clone();
            }
            if let Ok(m) = a.aggregate_fit(t, &ga, &res, &[]) {
                ga = m;
            }
            if let Some(b) = b.as_mut() {
                if let Ok(m) = b.aggregate_fit(t, &gb, &res, &[]) {
                    gb = m;
                }
            }
        }
        assert_eq!(ga.get("w").unwrap().data, gb.get("w").unwrap().data);
        for i in 0..n {
            assert_eq!(a.weight(i).to_bits(), b.as_ref().unwrap().weight(i).to_bits());
        }
    }
}
