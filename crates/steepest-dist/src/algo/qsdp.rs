//! QSDP: "Quantized Distributed Training of Large Models with Convergence
//! Guarantees" (Markov, Vladu, Guo, Alistarh, ICML 2023): fully sharded data
//! parallelism (FSDP) with quantized weights and quantized gradients.
//!
//! The flat parameter vector is cut into one shard per worker (world rank `s`
//! owns `chunk_bounds(d, N)[s]`); the owner keeps the full-precision shard and
//! its optimizer state. Per step, on every worker:
//! 1. **weights**: every owner quantizes its shard with Q_w (bucketed min-max
//!    uniform, `w_bits` bits) and the shards are all-gathered; every worker
//!    (the owner included) dequantizes and uses the same assembled model;
//! 2. forward/backward on that model: the local gradient g_i;
//! 3. **gradients**: the piece of g_i belonging to shard s is quantized with
//!    Q_g (bucketed min-max, `g_bits` bits, **unbiased stochastic rounding**)
//!    and sent to the owner of s (all-to-all); the owner dequantizes the pieces
//!    and sums them in rank order, divided by the number of workers (a
//!    reduce-scatter of the mean gradient);
//! 4. the owner steps its full-precision shard with any registry optimizer
//!    (default `adamw`) on that mean gradient.
//!
//! The weights are all-gathered once at the start and then after every step
//! (step 1 of the next iteration is the gather of this one's result), so
//! [`DistAlgorithm::model`] is always the model the workers compute with.
//!
//! The quantizer (bucketed min-max, as in the authors' CGX/QMPI library):
//! the values are cut into buckets of `bucket` consecutive values; a bucket
//! with minimum lo and maximum hi has step s = (hi − lo)/(2^b − 1) and sends lo
//! and s (two f64, 16 bytes) and one b-bit level q per value, packed; the
//! value is lo + q·s. Nearest rounding: q = round((x − lo)/s), error ≤ s/2;
//! stochastic rounding: q = ⌊v⌋ + [u < v − ⌊v⌋] with u uniform in [0, 1),
//! E[lo + q·s] = x, error < s. `bits = 32` switches a quantizer off: the
//! values travel as they are (f64 here), and the algorithm is then sharded DDP
//! (the unit test checks it against DDP bit for bit).
//!
//! Defaults: W8G8 (`w_bits` 8, `g_bits` 8, the paper's main setting per the
//! research notes), `bucket` 1024 (notes, from recollection of the paper; the
//! QMPI README's default is 512), optimizer `adamw` with the registry's
//! defaults (FSDP training of GPT models is AdamW training; not checked in the
//! paper's text, which was not available here: only its abstract).
//!
//! Choices the paper leaves open (or that could not be checked), and ours:
//! - weight rounding (`w_rounding`): `"stochastic"` (default: the paper's
//!   analysis uses an unbiased weight quantizer) or `"nearest"`;
//! - master weights (`master`): `"fp"` (default, the practical QSDP: the owner
//!   keeps full-precision weights and only the communicated copy is quantized)
//!   or `"quantized"` (the analysed variant x_{t+1} = Q_w(x_t − η·Q_g(∇f)):
//!   after each gather the owner's shard is replaced by its quantized value);
//! - the owner computes on the quantized copy of its own shard too (every
//!   worker holds identical bits of the model);
//! - every parameter is quantized (no layer kept in full precision), buckets
//!   start at each shard's first value (a bucket never spans two shards);
//! - randomness is **per rank** and deterministic: the gradient rounding of
//!   worker r for shard s at step t draws from SplitMix64 seeded by
//!   (`seed`, r, s, t); the weight rounding of shard s at gather t from
//!   (`seed`, s, t), whoever owns s. A retried exchange redraws the same numbers;
//! - the gathered weights are kept between forward and backward (one all-gather
//!   per step, not FSDP's two: that only changes memory, not the result).
//!
//! Traffic per worker per step (N workers, d values, 8-byte floats): all-gather
//! (N−1)/N·d values up and down plus the reduce-scatter's (N−1)/N·d, i.e. one
//! all-reduce's volume; with b-bit buckets each value costs b/8 bytes plus
//! 16 bytes per bucket per shard piece. FSDP proper gathers twice (forward and
//! backward): 1.5 all-reduces.
//!
//! Faults: both exchanges go through [`committed`] (a corrupt message is
//! retried with the same random numbers; nothing is applied before the
//! vote). A lost worker's shard is adopted by the next live world rank
//! (cyclically), starting from the last gathered (dequantized) values of that
//! shard with a fresh optimizer state: the lost owner's full-precision shard
//! and its optimizer state are gone, as in FSDP without a checkpoint.

use std::collections::BTreeMap;

use steepest::hyper::{Hyper, HyperReader};
use steepest::{GradSet, Optimizer, ParamSet};

use super::{build_optimizer, flatten, flatten_grads, split_nested, unflatten, DistAlgorithm, Oracle, SYNC_ATTEMPTS};
use crate::collective::{bytes_to_f64s, chunk_bounds, committed, f64s_to_bytes, pack_bits, unpack_bits, Collective};
use crate::error::{Error, Result};

/// "Off": values travel unquantized.
pub const OFF: u32 = 32;

/// How a quantizer rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// To the nearest level (deterministic, biased).
    Nearest,
    /// Unbiased stochastic rounding.
    Stochastic,
}

/// Whether the owner keeps full-precision weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Master {
    /// Full-precision shard (practical QSDP).
    Fp,
    /// The shard is replaced by its quantized value after each gather (the analysed variant).
    Quantized,
}

/// A deterministic stream of uniforms in [0, 1) (SplitMix64).
pub struct Stream(u64);

impl Stream {
    /// A stream for a tuple of keys.
    pub fn new(keys: &[u64]) -> Stream {
        let mut s = 0x0051_D5B0_u64;
        for &k in keys {
            s = mix64(s ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        Stream(s)
    }

    /// The next uniform in [0, 1) (53 random bits).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        (mix64(self.0) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bytes of `n` values quantized with `bits` bits in buckets of `bucket`.
pub fn encoded_len(n: usize, bits: u32, bucket: usize) -> usize {
    if bits == OFF {
        return 8 * n;
    }
    n.div_ceil(bucket.max(1)) * 16 + (n * bits as usize).div_ceil(8)
}

/// Bucketed min-max quantization (see the module documentation): per bucket
/// lo and the step s (f64 each), then the packed levels of all values.
pub fn quantize(x: &[f64], bits: u32, bucket: usize, rounding: Rounding, rng: &mut Stream) -> Vec<u8> {
    if bits == OFF {
        return f64s_to_bytes(x);
    }
    let top = ((1u32 << bits) - 1) as f64;
    let mut meta = Vec::with_capacity(x.len().div_ceil(bucket.max(1)) * 16);
    let mut levels = Vec::with_capacity(x.len());
    for b in x.chunks(bucket.max(1)) {
        let lo = b.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = b.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s = (hi - lo) / top;
        let usable = s > 0.0 && s.is_finite();
        meta.extend_from_slice(&lo.to_le_bytes());
        meta.extend_from_slice(&(if usable { s } else { 0.0 }).to_le_bytes());
        for &v in b {
            let q = if usable {
                let u = ((v - lo) / s).clamp(0.0, top);
                match rounding {
                    Rounding::Nearest => u.round(),
                    Rounding::Stochastic => {
                        let f = u.floor();
                        (f + f64::from(u8::from(rng.uniform() < u - f))).min(top)
                    }
                }
            } else {
                0.0
            };
            levels.push(q as u8);
        }
    }
    meta.extend_from_slice(&pack_bits(&levels, bits));
    meta
}

/// Inverse of [`quantize`] for `n` values.
pub fn dequantize(bytes: &[u8], n: usize, bits: u32, bucket: usize) -> Result<Vec<f64>> {
    if bytes.len() != encoded_len(n, bits, bucket) {
        return Err(Error::Transport(format!(
            "quantized block of {} bytes, expected {} for {n} values at {bits} bits",
            bytes.len(),
            encoded_len(n, bits, bucket)
        )));
    }
    if bits == OFF {
        return bytes_to_f64s(bytes);
    }
    let nb = n.div_ceil(bucket.max(1));
    let levels = unpack_bits(&bytes[nb * 16..], bits, n)?;
    let f = |o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&bytes[o..o + 8]);
        f64::from_le_bytes(a)
    };
    Ok(levels
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let k = i / bucket.max(1);
            f(16 * k) + f64::from(q) * f(16 * k + 8)
        })
        .collect())
}

/// The world rank owning shard `s`: `s` itself if live, else the next live rank (cyclically).
pub fn owner(s: usize, world: usize, live: &[usize]) -> usize {
    (0..world)
        .map(|k| (s + k) % world)
        .find(|r| live.binary_search(r).is_ok())
        .unwrap_or(s)
}

struct Shard {
    a: usize,
    b: usize,
    params: ParamSet<f64>,
    opt: Optimizer<f64>,
}

/// QSDP state of one worker.
pub struct Qsdp {
    model: ParamSet<f64>,
    shards: BTreeMap<usize, Shard>,
    w_bits: u32,
    g_bits: u32,
    bucket: usize,
    w_round: Rounding,
    master: Master,
    opt_name: String,
    opt_hyper: Hyper,
    seed: u64,
    t: u64,
    gathered: bool,
    grads: GradSet<f64>,
}

fn bits_field(r: &mut HyperReader<'_>, key: &str) -> Result<u32> {
    let b = r.usize(key, 8)?;
    r.check(
        (1..=8).contains(&b) || b == OFF as usize,
        key,
        format!("must be 1..=8 bits, or 32 for no quantization, got {b}"),
    )?;
    Ok(b as u32)
}

impl Qsdp {
    /// Builds from hyperparameters and the initial (shared) parameters.
    pub fn new(h: &Hyper, init: &ParamSet<f64>) -> Result<Qsdp> {
        let (flat, nested) = split_nested("qsdp", h, &["optimizer_hyper"])?;
        let mut r = HyperReader::new("qsdp", &flat);
        let w_bits = bits_field(&mut r, "w_bits")?;
        let g_bits = bits_field(&mut r, "g_bits")?;
        let bucket = r.usize("bucket", 1024)?;
        r.check(bucket >= 1, "bucket", "must hold at least one value")?;
        let w_round = match r.string("w_rounding", "stochastic")?.as_str() {
            "stochastic" => Rounding::Stochastic,
            "nearest" => Rounding::Nearest,
            other => {
                return Err(r
                    .error(
                        "w_rounding",
                        format!("expected \"stochastic\" or \"nearest\", got {other:?}"),
                    )
                    .into())
            }
        };
        let master = match r.string("master", "fp")?.as_str() {
            "fp" => Master::Fp,
            "quantized" => Master::Quantized,
            other => {
                return Err(r
                    .error("master", format!("expected \"fp\" or \"quantized\", got {other:?}"))
                    .into())
            }
        };
        let seed = r.usize("seed", 0)? as u64;
        let opt_name = r.string("optimizer", "adamw")?;
        r.finish()?;
        let opt_hyper = nested.get("optimizer_hyper").cloned().unwrap_or_default();
        // validate the optimizer configuration now (errors name the field)
        build_optimizer("qsdp", "optimizer", &opt_name, &opt_hyper, init)?;
        Ok(Qsdp {
            model: init.clone(),
            shards: BTreeMap::new(),
            w_bits,
            g_bits,
            bucket,
            w_round,
            master,
            opt_name,
            opt_hyper,
            seed,
            t: 0,
            gathered: false,
            grads: GradSet::new(),
        })
    }

    fn bounds(&self, world: usize) -> Vec<(usize, usize)> {
        chunk_bounds(self.model.total_numel(), world)
    }

    /// Shards owned by world rank `m` among `live` (ascending).
    fn owned_by(world: usize, m: usize, live: &[usize]) -> Vec<usize> {
        (0..world).filter(|&s| owner(s, world, live) == m).collect()
    }

    /// Takes ownership of the shards this worker owns among `live` and does not
    /// hold yet, from the last gathered model, with a fresh optimizer.
    fn adopt(&mut self, world: usize, me: usize, live: &[usize]) -> Result<()> {
        let bounds = self.bounds(world);
        let x = flatten(&self.model);
        for s in Self::owned_by(world, me, live) {
            if self.shards.contains_key(&s) {
                continue;
            }
            let (a, b) = bounds[s];
            let mut params = ParamSet::new();
            let mut at = 0;
            for p in self.model.iter() {
                let (lo, hi) = (at.max(a), (at + p.data.len()).min(b));
                if lo < hi {
                    params.push(p.name.clone(), &[hi - lo], x[lo..hi].to_vec())?;
                }
                at += p.data.len();
            }
            let opt = build_optimizer("qsdp", "optimizer", &self.opt_name, &self.opt_hyper, &params)?;
            self.shards.insert(s, Shard { a, b, params, opt });
        }
        Ok(())
    }

    /// The full-precision values of shard `s` (the last gathered ones if not held).
    fn shard_values(&self, s: usize, bounds: &[(usize, usize)], x: &[f64]) -> Vec<f64> {
        match self.shards.get(&s) {
            Some(sh) => flatten(&sh.params),
            None => x[bounds[s].0..bounds[s].1].to_vec(),
        }
    }

    /// The all-gather of the quantized shards: the assembled, dequantized model.
    fn gather(&self, c: &mut dyn Collective) -> Result<Vec<f64>> {
        let world = c.world_size();
        let me = c.world_rank();
        let live = c.members();
        let bounds = self.bounds(world);
        let x = flatten(&self.model);
        let mut mine = Vec::new();
        for s in Self::owned_by(world, me, &live) {
            let mut rng = Stream::new(&[self.seed, 1, s as u64, self.t]);
            let v = self.shard_values(s, &bounds, &x);
            mine.extend(quantize(&v, self.w_bits, self.bucket, self.w_round, &mut rng));
        }
        let all = c.all_gather_bytes(&mine)?;
        let mut out = vec![0.0; x.len()];
        for (bytes, &m) in all.iter().zip(&live) {
            let mut at = 0;
            for s in Self::owned_by(world, m, &live) {
                let (a, b) = bounds[s];
                let len = encoded_len(b - a, self.w_bits, self.bucket);
                let piece = bytes
                    .get(at..at + len)
                    .ok_or_else(|| Error::Transport(format!("all-gather: short message from rank {m}")))?;
                out[a..b].copy_from_slice(&dequantize(piece, b - a, self.w_bits, self.bucket)?);
                at += len;
            }
            if at != bytes.len() {
                return Err(Error::Transport(format!("all-gather: long message from rank {m}")));
            }
        }
        Ok(out)
    }

    /// The reduce-scatter of the quantized gradients: `(shard, mean gradient)` for the shards this worker owns.
    fn reduce_scatter(&self, c: &mut dyn Collective, g: &[f64]) -> Result<Vec<(usize, Vec<f64>)>> {
        let world = c.world_size();
        let me = c.world_rank();
        let live = c.members();
        let bounds = self.bounds(world);
        let chunks: Vec<Vec<u8>> = live
            .iter()
            .map(|&m| {
                let mut out = Vec::new();
                for s in Self::owned_by(world, m, &live) {
                    let (a, b) = bounds[s];
                    let mut rng = Stream::new(&[self.seed, 2, me as u64, s as u64, self.t]);
                    out.extend(quantize(
                        &g[a..b],
                        self.g_bits,
                        self.bucket,
                        Rounding::Stochastic,
                        &mut rng,
                    ));
                }
                out
            })
            .collect();
        let got = c.all_to_all_bytes(&chunks)?;
        let mine = Self::owned_by(world, me, &live);
        let mut sums: Vec<Vec<f64>> = mine.iter().map(|&s| vec![0.0; bounds[s].1 - bounds[s].0]).collect();
        for (i, (bytes, &m)) in got.iter().zip(&live).enumerate() {
            let mut at = 0;
            for (k, &s) in mine.iter().enumerate() {
                let (a, b) = bounds[s];
                let len = encoded_len(b - a, self.g_bits, self.bucket);
                let piece = bytes
                    .get(at..at + len)
                    .ok_or_else(|| Error::Transport(format!("reduce-scatter: short message from rank {m}")))?;
                let v = dequantize(piece, b - a, self.g_bits, self.bucket)?;
                if i == 0 {
                    sums[k].copy_from_slice(&v);
                } else {
                    for (acc, x) in sums[k].iter_mut().zip(&v) {
                        *acc += x;
                    }
                }
                at += len;
            }
            if at != bytes.len() {
                return Err(Error::Transport(format!("reduce-scatter: long message from rank {m}")));
            }
        }
        let n = live.len() as f64;
        Ok(mine
            .into_iter()
            .zip(sums)
            .map(|(s, mut v)| {
                for x in &mut v {
                    *x /= n;
                }
                (s, v)
            })
            .collect())
    }

    fn gather_committed(&mut self, comm: &mut dyn Collective) -> Result<()> {
        let new = committed(comm, SYNC_ATTEMPTS, |c| self.gather(c))?;
        // shards adopted during the exchange start from the previous model
        self.adopt(comm.world_size(), comm.world_rank(), &comm.members())?;
        if self.master == Master::Quantized {
            for sh in self.shards.values_mut() {
                unflatten(&mut sh.params, &new[sh.a..sh.b])?;
            }
        }
        unflatten(&mut self.model, &new)?;
        self.gathered = true;
        Ok(())
    }
}

impl DistAlgorithm for Qsdp {
    fn name(&self) -> &'static str {
        "qsdp"
    }

    fn step(&mut self, comm: &mut dyn Collective, oracle: &mut Oracle) -> Result<f64> {
        let world = comm.world_size();
        if !self.gathered {
            self.adopt(world, comm.world_rank(), &comm.members())?;
            self.gather_committed(comm)?;
        }
        let loss = oracle(&self.model, &mut self.grads);
        let g = flatten_grads(&self.model, &self.grads)?;
        self.t += 1;
        let red = committed(comm, SYNC_ATTEMPTS, |c| self.reduce_scatter(c, &g))?;
        self.adopt(world, comm.world_rank(), &comm.members())?;
        for (s, gs) in red {
            let sh = self
                .shards
                .get_mut(&s)
                .ok_or_else(|| Error::Transport(format!("qsdp: shard {s} not held")))?;
            let mut gset = GradSet::new();
            let mut at = 0;
            for p in sh.params.iter() {
                let n = p.data.len();
                gset.insert(p.name.clone(), gs[at..at + n].to_vec());
                at += n;
            }
            sh.opt.step(&mut sh.params, &mut gset)?;
        }
        self.gather_committed(comm)?;
        Ok(loss)
    }

    fn model(&self) -> &ParamSet<f64> {
        &self.model
    }

    fn steps(&self) -> u64 {
        self.t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f64> {
        let mut r = Stream::new(&[seed]);
        (0..n).map(|i| (r.uniform() - 0.3) * (1.0 + (i % 7) as f64)).collect()
    }

    #[test]
    fn round_trip_lengths_and_off_is_exact() {
        for (n, bits, bucket) in [
            (0usize, 8u32, 4usize),
            (1, 8, 4),
            (10, 3, 4),
            (1000, 8, 1024),
            (37, 1, 5),
        ] {
            let x = data(n, 1);
            let q = quantize(&x, bits, bucket, Rounding::Stochastic, &mut Stream::new(&[2]));
            assert_eq!(q.len(), encoded_len(n, bits, bucket));
            assert_eq!(dequantize(&q, n, bits, bucket).unwrap().len(), n);
            assert!(dequantize(&q[..q.len().saturating_sub(1)], n, bits, bucket).is_err() || n == 0);
        }
        let x = data(50, 3);
        let q = quantize(&x, OFF, 7, Rounding::Stochastic, &mut Stream::new(&[1]));
        assert_eq!(dequantize(&q, 50, OFF, 7).unwrap(), x);
        // a constant bucket is exact
        let c = vec![0.25; 9];
        let q = quantize(&c, 4, 4, Rounding::Stochastic, &mut Stream::new(&[1]));
        assert_eq!(dequantize(&q, 9, 4, 4).unwrap(), c);
    }

    /// Every dequantized value lies within one step s of its bucket (s/2 for
    /// nearest rounding), and at one of the two levels around it.
    #[test]
    fn error_is_bounded_by_the_bucket_step() {
        let bucket = 16;
        for bits in [1u32, 2, 4, 8] {
            let x = data(200, bits as u64);
            for (rounding, bound) in [(Rounding::Nearest, 0.5), (Rounding::Stochastic, 1.0)] {
                let q = quantize(&x, bits, bucket, rounding, &mut Stream::new(&[9, bits as u64]));
                let y = dequantize(&q, x.len(), bits, bucket).unwrap();
                for (bx, by) in x.chunks(bucket).zip(y.chunks(bucket)) {
                    let lo = bx.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = bx.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let s = (hi - lo) / ((1u32 << bits) - 1) as f64;
                    for (a, b) in bx.iter().zip(by) {
                        assert!(
                            (a - b).abs() <= bound * s * (1.0 + 1e-9) + 1e-15,
                            "{bits} bits {rounding:?}: {a} -> {b}, step {s}"
                        );
                    }
                }
            }
        }
    }

    /// Stochastic rounding is unbiased: over M = 20000 independent draws the
    /// mean of the dequantized values is within 5 standard errors of x (the
    /// per-draw standard deviation is at most s/2, so the tolerance is
    /// 5·(s/2)/√M = 0.0177·s); nearest rounding is not (its bias, up to s/2,
    /// is visible at that tolerance on at least one coordinate).
    #[test]
    fn stochastic_rounding_is_unbiased() {
        let (bits, bucket, m) = (2u32, 8usize, 20_000u64);
        let x = data(8, 5);
        let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s = (hi - lo) / 3.0;
        let tol = 5.0 * (s / 2.0) / (m as f64).sqrt();
        let mut sum = vec![0.0; x.len()];
        for k in 0..m {
            let q = quantize(&x, bits, bucket, Rounding::Stochastic, &mut Stream::new(&[77, k]));
            for (a, v) in sum.iter_mut().zip(dequantize(&q, x.len(), bits, bucket).unwrap()) {
                *a += v;
            }
        }
        for (a, v) in sum.iter().zip(&x) {
            let mean = a / m as f64;
            assert!((mean - v).abs() <= tol, "mean {mean} vs {v} (tolerance {tol})");
        }
        let q = quantize(&x, bits, bucket, Rounding::Nearest, &mut Stream::new(&[0]));
        let y = dequantize(&q, x.len(), bits, bucket).unwrap();
        assert!(y.iter().zip(&x).any(|(a, b)| (a - b).abs() > tol));
    }

    #[test]
    fn owners_cover_every_shard_once() {
        for world in 1..7 {
            for dead in 0..world {
                let live: Vec<usize> = (0..world).filter(|&r| r != dead || world == 1).collect();
                let mut seen = vec![0; world];
                for &m in &live {
                    for s in Qsdp::owned_by(world, m, &live) {
                        seen[s] += 1;
                    }
                }
                assert!(seen.iter().all(|&k| k == 1), "{world} {dead}: {seen:?}");
            }
        }
    }
}
