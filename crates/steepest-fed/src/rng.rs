//! Seeded random streams. Every random choice in the federated simulator is
//! drawn from a stream named by `(seed, purpose, client, round)`, so a client's
//! draws never depend on which thread trains it or on how many other clients
//! were sampled: the simulator is deterministic for a seed regardless of the
//! thread count, and the networked server can reproduce any client's stream.
//!
//! The generator is xoshiro256** seeded through SplitMix64 (the lab's choice);
//! the key is hashed with SplitMix64 rounds so nearby keys give unrelated streams.

/// What a stream is used for (part of its key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// Data synthesis.
    Data = 1,
    /// Data partitioning.
    Partition = 2,
    /// Client availability.
    Participation = 3,
    /// Server-side client sampling.
    Sampling = 4,
    /// Local training (minibatches).
    Train = 5,
    /// Model initialisation.
    Init = 6,
    /// Attacks by poisoning clients.
    Attack = 7,
    /// Differential-privacy noise.
    Noise = 8,
    /// Simulated dropouts.
    Dropout = 9,
    /// Asynchronous compute delays.
    Delay = 10,
    /// Ferret's shared random bases (one stream per seed and block).
    Projection = 11,
    /// Ferret's per-client choice of seeds.
    SeedChoice = 12,
    /// Langevin noise (FA-LD).
    Langevin = 13,
    /// Channel noise of the noise-robust ADMM (uplink and downlink).
    ChannelNoise = 14,
    /// Partial-sharing selection and Byzantine perturbations (PSO-Fed).
    Sharing = 15,
    /// Model reduction masks (minimum coverage index).
    Mask = 16,
    /// Client-triggered arrivals and cluster estimation (CDFL).
    Arrival = 17,
    /// Per-task job placement in multi-model asynchronous training (FedAST).
    Task = 18,
    /// Hypernetworks and client embeddings (HyperFL).
    Embedding = 19,
    /// Synthetic data of algorithm-specific problems (ADMM, PSO-Fed, FedPCA, FA-LD).
    Problem = 20,
    /// Anything else an algorithm needs; key `client` by a tag of your own.
    Other = 21,
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** with Gaussian, gamma and exponential draws.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
    spare: Option<f64>,
}

impl Rng {
    /// The stream for `(seed, purpose, client, round)`.
    pub fn stream(seed: u64, purpose: Purpose, client: u64, round: u64) -> Rng {
        let mut x = seed;
        let mut h = splitmix(&mut x);
        for k in [purpose as u64, client, round] {
            h ^= k.wrapping_mul(0xD1B5_4A32_D192_ED03);
            let mut y = h;
            h = splitmix(&mut y);
        }
        let mut x = h;
        let s = [splitmix(&mut x), splitmix(&mut x), splitmix(&mut x), splitmix(&mut x)];
        Rng { s, spare: None }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Bernoulli(p).
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box–Muller, both values used).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }

    /// Gamma(shape, 1) by Marsaglia & Tsang (shape < 1 boosted by `U^{1/shape}`).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = 1.0 - self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = 1.0 - self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Dirichlet(α·1_k) as a probability vector (normalised gammas).
    pub fn dirichlet(&mut self, alpha: f64, k: usize) -> Vec<f64> {
        let g: Vec<f64> = (0..k).map(|_| self.gamma(alpha).max(1e-300)).collect();
        let s: f64 = g.iter().sum();
        g.into_iter().map(|x| x / s).collect()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    /// `k` distinct elements of `0..n` chosen uniformly, in increasing order.
    pub fn choose(&mut self, n: usize, k: usize) -> Vec<usize> {
        let k = k.min(n);
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + self.below(n - i);
            idx.swap(i, j);
        }
        let mut out = idx[..k].to_vec();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        let a = Rng::stream(7, Purpose::Train, 3, 10).next_u64();
        let b = Rng::stream(7, Purpose::Train, 3, 10).next_u64();
        let c = Rng::stream(7, Purpose::Train, 3, 11).next_u64();
        let d = Rng::stream(7, Purpose::Train, 4, 10).next_u64();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn gamma_and_dirichlet_moments() {
        let mut r = Rng::stream(1, Purpose::Data, 0, 0);
        for shape in [0.3, 1.0, 4.0] {
            let n = 40_000;
            let m: f64 = (0..n).map(|_| r.gamma(shape)).sum::<f64>() / n as f64;
            assert!((m - shape).abs() < 0.05 * shape.max(1.0), "gamma({shape}) mean {m}");
        }
        let p = r.dirichlet(0.5, 10);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
