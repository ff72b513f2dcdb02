//! FRUGAL: full-rank updates with gradient splitting — a state-full optimizer
//! in a low-dimensional subspace, a state-free one on the rest.
//!
//! Paper: Zmushko, Beznosikov, Takáč & Horváth, *"FRUGAL: Memory-Efficient
//! Optimization by Reducing State Overhead for Scalable Training"* (arXiv
//! 2411.07837, ICML 2025), Algorithm 1; official code github
//! philip-zmushko/FRUGAL (`frugal/proj_optimizer_templates.py`,
//! `galore_projector.py`, `adamw.py`), read for its conventions.
//!
//! For a matrix parameter `W` with gradient `G`, a projector `P_k` chosen
//! every `update_gap = T` steps splits the gradient (Algorithm 1):
//! ```text
//! on steps t = 1, 1+T, 1+2T, …:  choose P from G_t; reset the state (reset_statistics)
//! g_full = P(G_t)                                  (low-dimensional)
//! g_free = G_t − P⁻¹(g_full)                       (the residual)
//! u_full = StateFull(g_full)                       (Adam: m, v live in the subspace)
//! u_free = StateFree(g_free)                       (signSGD: −γ·s·sign(g_free))
//! W ← W(1 − γλ) + P⁻¹(u_full) + u_free
//! ```
//! `proj_type` chooses the subspace:
//! - `"svd"` (GaLore-style, the paper's main setting): `G = UΣVᵀ`; for an
//!   `m × n` matrix with `m ≥ n`, `r = round(n·density)`,
//!   `P(G) = G B_rᵀ` and `P⁻¹(X) = X B_r` with
//!   `B_r` the first `r` rows of `Vᵀ` (state `m × r`); for `m < n`,
//!   `r = round(m·density)`, `P(G) = A_rᵀ G`, `P⁻¹(X) = A_r X` with `A_r` the
//!   first `r` columns of `U` (state `r × n`). The projector (`r × n` or
//!   `m × r`) is state too. Signs of singular vectors: see `spectral.rs`.
//! - `"blockwise"` (BAdam-style blocks, FRUGAL's coordinate projection on
//!   columns): `k = round(n·density)` of the `n` columns are state-full; the
//!   window moves on every choice `j = (t−1) div T`: it starts at column
//!   `s_j` and covers the columns `(s_j + i) mod n`, `i < k`. `block_order`
//!   `"cyclic"` (default): `s_j = j·k mod n` (the code's `"ascending"` order);
//!   `"random"`: `s_j = splitmix64(splitmix64(seed ⊕ fnv1a64(name)) ⊕ j) mod n`,
//!   an independent, seeded, reproducible draw per choice (the code's
//!   `"random"` order draws a random subset of tensors per choice; here the
//!   blocks are windows of one tensor, so a random window). State `m × k`.
//!
//! `state_full`: `"adamw"` (the code's AdamW `_compute_update`: `m ← β₁m +
//! (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `u = −(γ/bc₁)·m/(sqrt(v)/sqrt(bc₂) + ε)`
//! with the subspace's step count, `correct_bias` switches the corrections
//! off) or `"sgdm"` (heavy ball `b ← μb + g`, `u = −γb`, the paper's
//! theory setting). `inactive_update_rule` (the code's name for the
//! state-free part): `"sign_sgd"` (default), `"sgd"` (`−γ s g_free`) or `"no"`.
//! `inactive_lr_scale = s` scales its step.
//!
//! Defaults (official code): `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`,
//! `weight_decay = 0.01` (decoupled, applied to every parameter first),
//! `correct_bias = true`, `density = 0.25`, `update_gap = 200`,
//! `reset_statistics = true`, `inactive_update_rule = "sign_sgd"`,
//! `inactive_lr_scale = 1.0`, `proj_type = "svd"`, `momentum = 0.9` (sgdm).
//!
//! What happens on a refresh (the paper's §4 and the code's
//! `reset_statistics = true`): the state is **reset** to zero and the
//! subspace's step counter restarts, so Adam's bias correction restarts too.
//! With `reset_statistics = false` the moments are kept (in the new basis'
//! coordinates, unprojected, as the code does) and the counter keeps running.
//!
//! Choices the paper leaves open, and deviations from the code:
//! - Only matrices (rank 2) are split; every other parameter gets the
//!   state-full optimizer on the whole tensor (the code's "regular"
//!   parameters: norms, biases).
//! - Refresh times are per parameter (its own step count, frozen steps not
//!   counted); the code refreshes a whole group when its first parameter's
//!   counter says so.
//! - Blockwise selection is per tensor (column blocks of each matrix), not
//!   the code's selection of whole tensors of a group (which needs the
//!   group's parameter list; kernels see one tensor). The code's
//!   `"descending"`/`"mirror"` orders and `"random"`/`"randperm"`
//!   projections are not provided.
//! - `sgdm`'s buffer starts at zero (PyTorch SGD), not at a copy of the
//!   projected gradient/parameter as in the code's `_init_state`.
//! - `density` must give `r ≤ min(m, n)`; `r = 0` leaves everything state-free.
//! - Memory: [`crate::perf::state_bytes_per_param`] reports the state actually
//!   allocated (slots are sized from the shape with [`Slot::sized`]).

use rayon::prelude::*;

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, pair_value, Hyper, HyperReader};
use crate::kernel::{zip_chunks, PAR_MIN};
use crate::linalg::MatmulImpl;
use crate::ops::{add_scaled, addcmul};
use crate::optim::spectral::thin_svd;
use crate::real::Real;
use crate::tensor::ParamInfo;

/// How the state-full subspace is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjType {
    /// Top-`r` singular vectors of the gradient (GaLore).
    Svd,
    /// A cyclic window of columns (BAdam-style blocks).
    Blockwise,
}

/// The state-free rule on the residual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inactive {
    /// `−γ s sign(g)`.
    SignSgd,
    /// `−γ s g`.
    Sgd,
    /// No update.
    No,
}

/// Validated FRUGAL configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Frugal {
    /// Learning rate γ.
    pub lr: f64,
    /// Adam's (β₁, β₂).
    pub betas: (f64, f64),
    /// Adam's ε.
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// Adam bias correction.
    pub correct_bias: bool,
    /// Fraction of the state-full subspace.
    pub density: f64,
    /// Steps between subspace choices T.
    pub update_gap: usize,
    /// Zero the state on each new subspace.
    pub reset_statistics: bool,
    /// Subspace selection.
    pub proj_type: ProjType,
    /// `true` for Adam, `false` for SGD with momentum.
    pub adam: bool,
    /// SGDM momentum μ.
    pub momentum: f64,
    /// State-free rule.
    pub inactive: Inactive,
    /// State-free lr scale s.
    pub inactive_lr_scale: f64,
    /// Blockwise windows drawn at random (seeded) instead of cyclically.
    pub random_order: bool,
    /// Seed of the random block order.
    pub seed: u64,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// What a matrix's state looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Not split: the state-full optimizer on all elements.
    Full,
    /// SVD, `m ≥ n`: state `m × r`, projector `r × n` (rows of `Vᵀ`).
    Right { m: usize, n: usize, r: usize },
    /// SVD, `m < n`: state `r × n`, projector `m × r` (columns of `U`).
    Left { m: usize, n: usize, r: usize },
    /// Columns: state `m × k`.
    Cols { m: usize, n: usize, k: usize },
}

impl Frugal {
    /// Parses and validates hyperparameters (the official code's names).
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("frugal", h);
        let lr = r.f64("lr", 1e-3)?;
        let betas = r.pair("betas", (0.9, 0.999))?;
        let eps = r.f64("eps", 1e-8)?;
        let weight_decay = r.f64("weight_decay", 0.01)?;
        let correct_bias = r.bool("correct_bias", true)?;
        let density = r.f64("density", 0.25)?;
        let update_gap = r.usize("update_gap", 200)?;
        let reset_statistics = r.bool("reset_statistics", true)?;
        let proj = r.string("proj_type", "svd")?;
        let full = r.string("state_full", "adamw")?;
        let momentum = r.f64("momentum", 0.9)?;
        let inactive = r.string("inactive_update_rule", "sign_sgd")?;
        let inactive_lr_scale = r.f64("inactive_lr_scale", 1.0)?;
        let order = r.string("block_order", "cyclic")?;
        let seed = r.usize("seed", 0)? as u64;
        r.non_negative("lr", lr)?;
        r.betas("betas", betas)?;
        r.non_negative("eps", eps)?;
        r.non_negative("weight_decay", weight_decay)?;
        r.check(
            (0.0..=1.0).contains(&density),
            "density",
            format!("must be in [0, 1], got {density}"),
        )?;
        r.check(update_gap >= 1, "update_gap", "must be at least 1")?;
        let proj_type = match proj.as_str() {
            "svd" => ProjType::Svd,
            "blockwise" => ProjType::Blockwise,
            _ => {
                return Err(r.error(
                    "proj_type",
                    format!("expected \"svd\" or \"blockwise\", got \"{proj}\""),
                ))
            }
        };
        r.check(
            full == "adamw" || full == "sgdm",
            "state_full",
            format!("expected \"adamw\" or \"sgdm\", got \"{full}\""),
        )?;
        r.unit_interval("momentum", momentum)?;
        let inactive = match inactive.as_str() {
            "sign_sgd" => Inactive::SignSgd,
            "sgd" => Inactive::Sgd,
            "no" => Inactive::No,
            _ => {
                return Err(r.error(
                    "inactive_update_rule",
                    format!("expected \"sign_sgd\", \"sgd\" or \"no\", got \"{inactive}\""),
                ))
            }
        };
        r.non_negative("inactive_lr_scale", inactive_lr_scale)?;
        r.check(
            order == "cyclic" || order == "random",
            "block_order",
            format!("expected \"cyclic\" or \"random\", got \"{order}\""),
        )?;
        r.finish()?;
        Ok(Frugal {
            lr,
            betas,
            eps,
            weight_decay,
            correct_bias,
            density,
            update_gap,
            reset_statistics,
            proj_type,
            adam: full == "adamw",
            momentum,
            inactive,
            inactive_lr_scale,
            random_order: order == "random",
            seed,
        })
    }

    fn rank(&self, d: usize) -> usize {
        // Python's round (half to even), as the code's `round(dim * density)`.
        (((d as f64) * self.density).round_ties_even() as usize).min(d)
    }

    fn layout(&self, shape: &[usize]) -> Layout {
        let [m, n] = *shape else {
            return Layout::Full;
        };
        match self.proj_type {
            ProjType::Svd if m >= n => Layout::Right { m, n, r: self.rank(n) },
            ProjType::Svd => Layout::Left { m, n, r: self.rank(m) },
            ProjType::Blockwise => Layout::Cols { m, n, k: self.rank(n) },
        }
    }

    fn moment_slots(&self, len: Option<usize>) -> Vec<Slot> {
        let mk = |name| match len {
            Some(l) => Slot::sized(name, l),
            None => Slot::zeros(name),
        };
        if self.adam {
            vec![mk("exp_avg"), mk("exp_avg_sq")]
        } else {
            vec![mk("momentum_buffer")]
        }
    }

    fn scalars<F: Float>(&self, ctx: &StepCtx, step: u64) -> Core<F> {
        let (b1, b2) = self.betas;
        let s = step as f64;
        let (step_size, bc2_sqrt) = if self.correct_bias {
            (ctx.lr / (1.0 - b1.powf(s)), (1.0 - b2.powf(s)).sqrt())
        } else {
            (ctx.lr, 1.0)
        };
        let ilr = ctx.lr * self.inactive_lr_scale;
        Core {
            adam: self.adam,
            b1: F::from_f64(b1),
            omb1: F::from_f64(1.0 - b1),
            b2: F::from_f64(b2),
            omb2: F::from_f64(1.0 - b2),
            bc2_sqrt: F::from_f64(bc2_sqrt),
            eps: F::from_f64(self.eps),
            neg_step: F::from_f64(-step_size),
            mu: F::from_f64(self.momentum),
            neg_lr: F::from_f64(-ctx.lr),
            inactive: self.inactive,
            neg_ilr: F::from_f64(-ilr),
            decay: F::from_f64(1.0 - ctx.lr * self.weight_decay),
        }
    }

    fn run<F: Float>(&self, how: MatmulImpl, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let layout = self.layout(t.shape);
        let gap = self.update_gap as u64;
        let t0 = ctx.step.saturating_sub(1);
        let refresh = t0.is_multiple_of(gap);
        let inner = if self.reset_statistics { t0 % gap + 1 } else { ctx.step };
        let fused = how == MatmulImpl::Faer;
        let nm = if self.adam { 2 } else { 1 };
        let (moments, rest) = t.slots.split_at_mut(nm);
        if refresh && self.reset_statistics && layout != Layout::Full {
            for s in moments.iter_mut() {
                s.iter_mut().for_each(|x| *x = F::ZERO);
            }
        }
        let (s0, s1) = match moments {
            [a, b] => (&mut a[..], &mut b[..]),
            [a] => (&mut a[..], Default::default()),
            _ => unreachable!("frugal has one or two moment slots"),
        };
        match layout {
            Layout::Full => {
                let c = self.scalars::<F>(ctx, ctx.step);
                let apply = move |p: F, g: F, a: &mut F, b: &mut F| p * c.decay + c.full(a, b, g);
                if fused {
                    if c.adam {
                        zip_chunks(t.param, t.grad, [s0, s1], move |p, g, [a, b]| {
                            for i in 0..p.len() {
                                p[i] = apply(p[i], g[i], &mut a[i], &mut b[i]);
                            }
                        });
                    } else {
                        zip_chunks(t.param, t.grad, [s0], move |p, g, [a]| {
                            let mut dummy = F::ZERO;
                            for i in 0..p.len() {
                                p[i] = apply(p[i], g[i], &mut a[i], &mut dummy);
                            }
                        });
                    }
                } else {
                    let mut dummy = F::ZERO;
                    for i in 0..t.param.len() {
                        let b = if c.adam { &mut s1[i] } else { &mut dummy };
                        t.param[i] = apply(t.param[i], t.grad[i], &mut s0[i], b);
                    }
                }
            }
            Layout::Cols { m, n, k } => {
                let c = self.scalars::<F>(ctx, inner);
                if m * n == 0 {
                    return;
                }
                let j = t0 / gap;
                let start = if self.random_order {
                    (splitmix64(splitmix64(self.seed ^ fnv1a64(t.name)) ^ j) % n as u64) as usize
                } else {
                    ((j as u128 * k as u128) % n as u128) as usize
                };
                let row = move |p: &mut [F], g: &[F], a: &mut [F], b: &mut [F]| {
                    let mut dummy = F::ZERO;
                    for col in 0..n {
                        let off = (col + n - start) % n;
                        let u = if off < k {
                            let bb = if c.adam { &mut b[off] } else { &mut dummy };
                            c.full(&mut a[off], bb, g[col])
                        } else {
                            c.free(g[col])
                        };
                        p[col] = p[col] * c.decay + u;
                    }
                };
                let empty_b = s1.is_empty();
                if k == 0 {
                    for i in 0..m {
                        row(
                            &mut t.param[i * n..(i + 1) * n],
                            &t.grad[i * n..(i + 1) * n],
                            &mut [],
                            &mut [],
                        );
                    }
                } else if fused && m * n >= PAR_MIN {
                    let bw = if empty_b { 1 } else { k };
                    let mut dummy = vec![F::ZERO; if empty_b { m } else { 0 }];
                    let b: &mut [F] = if empty_b { &mut dummy } else { s1 };
                    t.param
                        .par_chunks_mut(n)
                        .zip(t.grad.par_chunks(n))
                        .zip(s0.par_chunks_mut(k))
                        .zip(b.par_chunks_mut(bw))
                        .for_each(|(((p, g), a), b)| row(p, g, a, b));
                } else {
                    for i in 0..m {
                        let b: &mut [F] = if empty_b { &mut [] } else { &mut s1[i * k..(i + 1) * k] };
                        row(
                            &mut t.param[i * n..(i + 1) * n],
                            &t.grad[i * n..(i + 1) * n],
                            &mut s0[i * k..(i + 1) * k],
                            b,
                        );
                    }
                }
            }
            Layout::Right { m, n, r } | Layout::Left { m, n, r } => {
                let c = self.scalars::<F>(ctx, inner);
                let len = m * n;
                if len == 0 {
                    return;
                }
                let right = matches!(layout, Layout::Right { .. });
                let proj = &mut rest[0];
                if refresh {
                    let g64: Vec<f64> = t.grad.iter().map(|x| x.to_f64()).collect();
                    if let Some((u, _, vt)) = thin_svd(&g64, m, n) {
                        let kk = m.min(n);
                        if right {
                            // rows 0..r of Vᵀ (k × n)
                            for i in 0..r * n {
                                proj[i] = F::from_f64(vt[i]);
                            }
                        } else {
                            // columns 0..r of U (m × k)
                            for i in 0..m {
                                for j in 0..r {
                                    proj[i * r + j] = F::from_f64(u[i * kk + j]);
                                }
                            }
                        }
                    }
                }
                let low_len = if right { m * r } else { r * n };
                let (bufs, _) = t.work.take(3, len);
                let [low, back, upd] = bufs else {
                    unreachable!("take(3) returns three buffers")
                };
                let low = &mut low[..low_len];
                // g_full = P(G)
                if right {
                    F::gemm(how, low, F::ZERO, F::ONE, t.grad, (m, n), false, proj, (r, n), true);
                } else {
                    F::gemm(how, low, F::ZERO, F::ONE, proj, (m, r), true, t.grad, (m, n), false);
                }
                // P⁻¹(g_full), for the residual
                project_up(how, right, (m, n, r), proj, low, back);
                // state-full step in the subspace (in place: low becomes u_full)
                let mut dummy = F::ZERO;
                for i in 0..low_len {
                    let b = if c.adam { &mut s1[i] } else { &mut dummy };
                    low[i] = c.full(&mut s0[i], b, low[i]);
                }
                project_up(how, right, (m, n, r), proj, low, upd);
                let apply = move |p: F, g: F, back: F, up: F| p * c.decay + (up + c.free(g - back));
                if fused {
                    zip_chunks(t.param, t.grad, [&mut back[..], &mut upd[..]], move |p, g, [bk, up]| {
                        for i in 0..p.len() {
                            p[i] = apply(p[i], g[i], bk[i], up[i]);
                        }
                    });
                } else {
                    for i in 0..len {
                        t.param[i] = apply(t.param[i], t.grad[i], back[i], upd[i]);
                    }
                }
            }
        }
    }
}

/// `P⁻¹(x)`: `x B` (right, `x` is `m × r`, `B` is `r × n`) or `A x` (left,
/// `A` is `m × r`, `x` is `r × n`).
fn project_up<F: Float>(
    how: MatmulImpl,
    right: bool,
    (m, n, r): (usize, usize, usize),
    proj: &[F],
    x: &[F],
    out: &mut [F],
) {
    if right {
        F::gemm(how, out, F::ZERO, F::ONE, x, (m, r), false, proj, (r, n), false);
    } else {
        F::gemm(how, out, F::ZERO, F::ONE, proj, (m, r), false, x, (r, n), false);
    }
}

/// Per-step scalars of the two update rules.
#[derive(Clone, Copy, Debug)]
struct Core<F> {
    adam: bool,
    b1: F,
    omb1: F,
    b2: F,
    omb2: F,
    bc2_sqrt: F,
    eps: F,
    neg_step: F,
    mu: F,
    neg_lr: F,
    inactive: Inactive,
    neg_ilr: F,
    decay: F,
}

impl<F: Real> Core<F> {
    /// The state-full update of one coordinate (advances its state).
    #[inline(always)]
    fn full(&self, a: &mut F, b: &mut F, g: F) -> F {
        if self.adam {
            *a = add_scaled(*a * self.b1, self.omb1, g);
            *b = addcmul(*b * self.b2, self.omb2, g, g);
            let denom = b.sqrt() / self.bc2_sqrt + self.eps;
            *a / denom * self.neg_step
        } else {
            *a = add_scaled(*a * self.mu, F::ONE, g);
            *a * self.neg_lr
        }
    }
    /// The state-free update of one coordinate of the residual.
    #[inline(always)]
    fn free(&self, g: F) -> F {
        match self.inactive {
            Inactive::SignSgd => self.neg_ilr * g.sign(),
            Inactive::Sgd => self.neg_ilr * g,
            Inactive::No => F::ZERO,
        }
    }
}

impl Algorithm for Frugal {
    fn name(&self) -> &'static str {
        "frugal"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("betas", pair_value(self.betas)),
            ("eps", num(self.eps)),
            ("weight_decay", num(self.weight_decay)),
            ("correct_bias", self.correct_bias.into()),
            ("density", num(self.density)),
            ("update_gap", (self.update_gap as u64).into()),
            ("reset_statistics", self.reset_statistics.into()),
            (
                "proj_type",
                (match self.proj_type {
                    ProjType::Svd => "svd",
                    ProjType::Blockwise => "blockwise",
                })
                .into(),
            ),
            ("state_full", (if self.adam { "adamw" } else { "sgdm" }).into()),
            ("momentum", num(self.momentum)),
            (
                "inactive_update_rule",
                (match self.inactive {
                    Inactive::SignSgd => "sign_sgd",
                    Inactive::Sgd => "sgd",
                    Inactive::No => "no",
                })
                .into(),
            ),
            ("inactive_lr_scale", num(self.inactive_lr_scale)),
            (
                "block_order",
                (if self.random_order { "random" } else { "cyclic" }).into(),
            ),
            ("seed", self.seed.into()),
        ])
    }
    fn slots(&self, p: &ParamInfo) -> Vec<Slot> {
        match self.layout(&p.shape) {
            Layout::Full => self.moment_slots(None),
            Layout::Right { m, n, r } => {
                let mut s = self.moment_slots(Some(m * r));
                s.push(Slot::sized("proj", r * n));
                s
            }
            Layout::Left { m, n, r } => {
                let mut s = self.moment_slots(Some(r * n));
                s.push(Slot::sized("proj", m * r));
                s
            }
            Layout::Cols { m, k, .. } => self.moment_slots(Some(m * k)),
        }
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(MatmulImpl::Naive, ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(MatmulImpl::Faer, ctx, t)
    }
}

#[cfg(test)]
mod tests {
    use crate::hyper::hyper_from_json;
    use crate::{GradSet, Optimizer, ParamSet};

    fn bytes_per_param(name: &str, h: &str) -> f64 {
        let mut p = ParamSet::<f32>::new();
        let mut g = GradSet::<f32>::new();
        for (nm, shape) in [("a", [64usize, 32usize]), ("b", [16, 48])] {
            let n = shape[0] * shape[1];
            p.push(
                nm,
                &shape[..],
                (0..n).map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.01).collect(),
            )
            .unwrap();
            g.insert(
                nm.to_string(),
                (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect(),
            );
        }
        let mut opt = Optimizer::new(name, &hyper_from_json(h).unwrap(), &p).unwrap();
        opt.step(&mut p, &mut g).unwrap();
        crate::perf::state_bytes_per_param(&opt, &p)
    }

    #[test]
    fn state_is_below_adam_by_the_density() {
        let adam = bytes_per_param("adamw", "{}");
        assert_eq!(adam, 8.0);
        for density in [0.25, 0.5] {
            // blockwise: exactly 2 moments on density·n columns
            let b = bytes_per_param(
                "frugal",
                &format!(r#"{{"proj_type": "blockwise", "density": {density}}}"#),
            );
            assert!((b - adam * density).abs() < 1e-12, "blockwise {density}: {b}");
            // svd: two moments of max(m, n) × r plus the projector min(m, n) × r,
            // r = round(density · min(m, n)), for 64 × 32 and 16 × 48
            let s = bytes_per_param("frugal", &format!(r#"{{"density": {density}}}"#));
            let (r1, r2) = (32.0 * density, 16.0 * density);
            let want = 4.0 * (2.0 * 64.0 * r1 + 32.0 * r1 + 2.0 * 48.0 * r2 + 16.0 * r2) / (64.0 * 32.0 + 16.0 * 48.0);
            assert!((s - want).abs() < 1e-12, "svd {density}: {s} vs {want}");
            assert!(s < adam * density * 1.3, "svd {density}: {s}");
            let sg = bytes_per_param("frugal", &format!(r#"{{"density": {density}, "state_full": "sgdm"}}"#));
            assert!(sg < s, "sgdm keeps one moment");
        }
    }
}
