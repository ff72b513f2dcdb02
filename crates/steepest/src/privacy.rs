//! Rényi-DP accounting for the sampled Gaussian mechanism (DP-SGD).
//!
//! Papers:
//! * Mironov, Talwar, Zhang, *"Rényi Differential Privacy of the Sampled
//!   Gaussian Mechanism"* (arXiv:1908.10530, 2019), Section 3.3 (numerically
//!   stable computation of `A_α`), which gives the RDP of one step of the
//!   sampled Gaussian mechanism (sampling rate `q`, noise multiplier `σ`,
//!   L2-sensitivity 1) at order `α` as `ε(α) = log(A_α) / (α − 1)`.
//! * Balle, Barthe, Gaboardi, Hsu, Sato, *"Hypothesis Testing Interpretations
//!   and Rényi Differential Privacy"* (AISTATS 2020, arXiv:1905.09982),
//!   Theorem 21: `(α, ρ)`-RDP implies `(ε, δ)`-DP with
//!   `ε = ρ + log((α − 1)/α) − (log δ + log α)/(α − 1)`.
//! * Mironov, *"Rényi Differential Privacy"* (CSF 2017), Proposition 1: RDP at a
//!   fixed order composes additively over steps.
//!
//! Reference implementation: opacus 1.6 (`opacus.accountants.RDPAccountant`,
//! `opacus.accountants.analysis.rdp`, `opacus.accountants.utils.get_noise_multiplier`);
//! `fixtures/privacy/opacus_rdp.json` (written by `tools/reference/gen_privacy.py`)
//! holds its answers and `tests/privacy.rs` checks them.
//!
//! ## The computation
//!
//! `A_α = E_{z∼μ0}[(μ(z)/μ0(z))^α]` with `μ0 = N(0, σ²)`, `μ = (1−q) μ0 + q N(1, σ²)`.
//!
//! *Integer α* (Section 3.3, binomial expansion):
//! ```text
//! A_α = Σ_{k=0..α} C(α,k) (1−q)^(α−k) q^k exp((k² − k) / (2σ²))
//! ```
//! summed in log space (log-sum-exp, one term after the other, k = 0..α).
//!
//! *Fractional α* (Section 3.3): split the integral at
//! `z0 = σ² log(1/q − 1) + 1/2` (where `q N(1,σ²)` overtakes `(1−q) μ0`) and
//! expand each half as a generalized binomial series:
//! ```text
//! A_α = A_0 + A_1,  over k = 0, 1, 2, …  (C(α,k) = α(α−1)…(α−k+1)/k!, sign alternates for k > α)
//! A_0 = Σ_k C(α,k) q^k (1−q)^(α−k) exp((k² − k)/(2σ²)) · ½ erfc((k − z0)/(√2 σ))
//! A_1 = Σ_k C(α,k) q^(α−k) (1−q)^k exp(((α−k)² − (α−k))/(2σ²)) · ½ erfc((z0 − (α−k))/(√2 σ))
//! ```
//! Each term is formed in log space (hence [`log_erfc`], accurate far into the
//! tail), added or subtracted by the sign of `C(α,k)`.
//!
//! `q = 1` is the plain Gaussian mechanism: `ε(α) = α / (2σ²)`.
//!
//! ## Choices the papers leave open, and what steepest does (all as opacus 1.6)
//!
//! * Orders: [`default_orders`] = `1.1, 1.2, …, 10.9` (`1 + x/10`, x = 1..99;
//!   2.0, 3.0, …, 10.0 among them are integers and take the integer formula)
//!   then `12, 13, …, 63`. ε is minimised over this grid only; the best order is
//!   the first of equal minima, NaN values are ignored, and if every value is
//!   NaN the answer is `(∞, NaN)`.
//! * The fractional series stops after the first term `k` at which both
//!   `log` terms are below −30 (relative truncation error about e⁻³⁰).
//! * A log-space subtraction whose result would be negative is an error
//!   ([`Error::Privacy`]); opacus raises there too. One whose difference
//!   overflows `exp` returns the larger operand.
//! * An empty accountant reports `(0, 0)` (ε = 0, "order" 0), as opacus does.
//! * Steps with the same `(σ, q)` as the previous one are merged into one
//!   history entry; each entry's RDP is `steps · ε(α)`, summed over the history.
//! * σ search ([`get_noise_multiplier`]): double `σ_high` from 10 (first
//!   tried: 20) until `ε(σ_high) ≤ ε_target`, failing once `σ_high > 10⁶`
//!   (σ_high runs 20, 40, …, 655 360, 1 310 720; the last one fails, so the
//!   bracket's largest top is 655 360); then bisect
//!   `[σ_low = 0, σ_high]`, replacing `σ_high` when `ε(σ_mid) < ε_target`
//!   (strictly) and `σ_low` otherwise, while `ε_target − ε(σ_high) > tolerance`
//!   (default 0.01). The answer is `σ_high`: its ε is at most the target and
//!   within `tolerance` of it. An unreachable target is
//!   [`Error::Privacy`] ("the privacy budget is too low"), as opacus raises.
//!   Note ε can never fall below the grid's floor `min_α [−(log δ + log α)/(α−1) + log((α−1)/α)]`
//!   (≈ 0.10 for δ = 1e-5), so smaller targets are unreachable at any σ.
//! * Inputs opacus accepts but steepest rejects with a clear error: `q ∉ (0, 1]`,
//!   `σ ≤ 0` or `σ > 1e100` (where `σ²` terms overflow), `δ ∉ (0, 1)`, zero steps, non-finite values, orders ≤ 1.
//!
//! `erfc` itself is computed here (no dependency): the positive-term series of
//! `erf` below `x = 1`, the even continued fraction of Laplace (Abramowitz &
//! Stegun 7.1.14) above; tested against mpmath to ~1e-15.

use crate::error::{Error, Result};

/// Above this σ the noise-multiplier search gives up (opacus's `MAX_SIGMA`).
pub const MAX_SIGMA: f64 = 1e6;

/// Default stopping tolerance of [`get_noise_multiplier`] (opacus's `epsilon_tolerance`).
pub const DEFAULT_EPSILON_TOLERANCE: f64 = 0.01;

/// The RDP orders α of opacus's `RDPAccountant.DEFAULT_ALPHAS`:
/// `1 + x/10` for `x = 1..99`, then the integers `12..=63` (151 orders).
pub fn default_orders() -> Vec<f64> {
    (1..100)
        .map(|x| 1.0 + f64::from(x) / 10.0)
        .chain((12..64).map(f64::from))
        .collect()
}

fn err(message: impl Into<String>) -> Error {
    Error::Privacy(message.into())
}

/// Checks a sampling rate: finite, in `(0, 1]`.
pub fn check_sample_rate(q: f64) -> Result<()> {
    if q.is_finite() && q > 0.0 && q <= 1.0 {
        Ok(())
    } else {
        Err(err(format!("sample_rate must be in (0, 1], got {q}")))
    }
}

/// The largest noise multiplier accepted (σ² and `σ² log(1/q − 1)` must stay finite).
pub const SIGMA_LIMIT: f64 = 1e100;

/// Checks a noise multiplier: positive and at most [`SIGMA_LIMIT`].
pub fn check_noise_multiplier(sigma: f64) -> Result<()> {
    if sigma > 0.0 && sigma <= SIGMA_LIMIT {
        Ok(())
    } else {
        Err(err(format!(
            "noise_multiplier (sigma) must be > 0 and <= {SIGMA_LIMIT:e}, got {sigma}"
        )))
    }
}

/// Checks δ: in `(0, 1)`.
pub fn check_delta(delta: f64) -> Result<()> {
    if delta.is_finite() && delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err(err(format!("delta must be in (0, 1), got {delta}")))
    }
}

fn check_steps(steps: u64) -> Result<()> {
    if steps == 0 {
        Err(err("steps must be at least 1"))
    } else {
        Ok(())
    }
}

fn check_orders(orders: &[f64]) -> Result<()> {
    if orders.is_empty() {
        return Err(err("orders must not be empty"));
    }
    match orders.iter().find(|a| !(a.is_finite() && **a > 1.0)) {
        Some(a) => Err(err(format!("every RDP order must be finite and > 1, got {a}"))),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------- erfc ----

const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3; // 1/√π
const LN_SQRT_PI: f64 = 0.572_364_942_924_700_1; // log √π
/// Below this, erfc = 1 − erf from the series; above, the continued fraction.
const ERFC_SPLIT: f64 = 1.0;

/// `erf(x)` for `0 ≤ x < ERFC_SPLIT` by the positive-term series
/// `erf(x) = (2/√π) e^(−x²) Σ_n (2x²)^n x / (1·3·…·(2n+1))` (A&S 7.1.6), no cancellation.
fn erf_series(x: f64) -> f64 {
    let y = 2.0 * x * x;
    let mut term = x;
    let mut sum = x;
    let mut n = 0.0;
    loop {
        n += 1.0;
        term *= y / (2.0 * n + 1.0);
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    2.0 * FRAC_1_SQRT_PI * (-x * x).exp() * sum
}

/// For `x ≥ ERFC_SPLIT`: `K(x)` with `erfc(x) = (2x/√π) e^(−x²) K(x)`, from the even
/// form of Laplace's continued fraction (A&S 7.1.14)
/// `K = 1/(2x²+1 − 1·2/(2x²+5 − 3·4/(2x²+9 − …)))`, evaluated by the modified Lentz method.
fn erfc_cf(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let y = 2.0 * x * x;
    if !y.is_finite() {
        return 1.0 / y; // x so large that K = 1/(2x²) underflows to 0 anyway
    }
    let mut f = y + 1.0;
    let mut c = f;
    let mut d = 0.0;
    for k in 1..10_000u32 {
        let k = f64::from(k);
        let a = -(2.0 * k - 1.0) * (2.0 * k);
        let b = y + 4.0 * k + 1.0;
        d = b + a * d;
        if d == 0.0 {
            d = TINY;
        }
        c = b + a / c;
        if c == 0.0 {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    1.0 / f
}

/// The complementary error function `erfc(x) = 1 − erf(x)`, accurate to a few ulp in
/// relative terms (including deep in the upper tail, until it underflows near x ≈ 27).
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    if x < ERFC_SPLIT {
        1.0 - erf_series(x)
    } else {
        2.0 * x * FRAC_1_SQRT_PI * (-x * x).exp() * erfc_cf(x)
    }
}

/// `log(erfc(x))`, accurate (absolute error ~1e-15) for every finite `x`, including
/// large `x` where `erfc(x)` underflows: there it is `−x² + log(2x/√π) + log K(x)`.
/// (−∞ only where `x²` overflows, `x > ~1.3e154`.)
pub fn log_erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        // erfc(x) = 2 − erfc(−x), in (1, 2].
        return std::f64::consts::LN_2 + (-0.5 * erfc(-x)).ln_1p();
    }
    if x == f64::INFINITY {
        return f64::NEG_INFINITY;
    }
    if x < ERFC_SPLIT {
        (1.0 - erf_series(x)).ln()
    } else {
        -x * x + (2.0 * x).ln() - LN_SQRT_PI + erfc_cf(x).ln()
    }
}

// ------------------------------------------------------- log-space sums ----

/// `log(e^a + e^b)`.
fn log_add(a: f64, b: f64) -> f64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    (lo - hi).exp().ln_1p() + hi
}

/// `log(e^a − e^b)`, `a ≥ b` required.
fn log_sub(a: f64, b: f64) -> Result<f64> {
    if a < b {
        return Err(err(
            "numerical failure in the fractional-order RDP series (a log-space difference went negative)",
        ));
    }
    if b == f64::NEG_INFINITY {
        return Ok(a);
    }
    if a == b {
        return Ok(f64::NEG_INFINITY);
    }
    let d = (a - b).exp_m1();
    if d.is_infinite() {
        return Ok(a); // e^b is negligible
    }
    Ok(d.ln() + b)
}

// ------------------------------------------------------------------ RDP ----

/// `log A_α` for integer `α ≥ 2` and `0 < q < 1` (Section 3.3, binomial expansion).
fn log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    let (ln_q, ln_1mq) = (q.ln(), (1.0 - q).ln());
    let two_s2 = 2.0 * (sigma * sigma);
    let mut log_a = f64::NEG_INFINITY;
    let mut log_binom = 0.0; // log C(α, 0)
    for k in 0..=alpha {
        if k > 0 {
            log_binom += ((alpha - k + 1) as f64).ln() - (k as f64).ln();
        }
        let kf = k as f64;
        let log_coef = log_binom + kf * ln_q + (alpha - k) as f64 * ln_1mq;
        let s = log_coef + (kf * kf - kf) / two_s2;
        log_a = log_add(log_a, s);
    }
    log_a
}

/// A guard against endless loops on extreme inputs (convergent cases need far fewer terms).
const MAX_SERIES_TERMS: u64 = 50_000_000;

/// `log A_α` for fractional `α > 1` and `0 < q < 1` (Section 3.3, the two series split at `z0`).
fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> Result<f64> {
    let (ln_q, ln_1mq) = (q.ln(), (1.0 - q).ln());
    let two_s2 = 2.0 * (sigma * sigma);
    let sqrt2_sigma = std::f64::consts::SQRT_2 * sigma;
    let ln_half = 0.5f64.ln();
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    // C(α, k) as sign and log magnitude, updated by C(α,k) = C(α,k−1)(α−k+1)/k.
    let mut log_abs_coef = 0.0;
    let mut positive = true;
    let mut k: u64 = 0;
    loop {
        if k == MAX_SERIES_TERMS {
            return Err(err(format!(
                "the fractional-order RDP series did not converge in {MAX_SERIES_TERMS} terms \
                 (q = {q}, sigma = {sigma}, order {alpha})"
            )));
        }
        let kf = k as f64;
        if k > 0 {
            let factor = alpha - kf + 1.0;
            if factor < 0.0 {
                positive = !positive;
            }
            log_abs_coef += factor.abs().ln() - kf.ln();
        }
        let j = alpha - kf;
        let log_t0 = log_abs_coef + kf * ln_q + j * ln_1mq;
        let log_t1 = log_abs_coef + j * ln_q + kf * ln_1mq;
        let log_e0 = ln_half + log_erfc((kf - z0) / sqrt2_sigma);
        let log_e1 = ln_half + log_erfc((z0 - j) / sqrt2_sigma);
        let log_s0 = log_t0 + (kf * kf - kf) / two_s2 + log_e0;
        let log_s1 = log_t1 + (j * j - j) / two_s2 + log_e1;
        if positive {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            log_a0 = log_sub(log_a0, log_s0)?;
            log_a1 = log_sub(log_a1, log_s1)?;
        }
        k += 1;
        if log_s0.max(log_s1) < -30.0 || log_s0.is_nan() || log_s1.is_nan() {
            break;
        }
    }
    Ok(log_add(log_a0, log_a1))
}

/// RDP `ε(α)` of one step of the sampled Gaussian mechanism (inputs validated by the caller).
fn rdp_one(q: f64, sigma: f64, alpha: f64) -> Result<f64> {
    if q == 1.0 {
        return Ok(alpha / (2.0 * (sigma * sigma)));
    }
    let log_a = if alpha.fract() == 0.0 && alpha < 9.0e15 {
        log_a_int(q, sigma, alpha as u64)
    } else {
        log_a_frac(q, sigma, alpha)?
    };
    Ok(log_a / (alpha - 1.0))
}

/// RDP of `steps` compositions of the sampled Gaussian mechanism at each order:
/// `steps · log(A_α)/(α − 1)` (Mironov et al. 2019, Section 3.3; composition:
/// Mironov 2017, Proposition 1). May be `+∞` when σ is tiny.
pub fn compute_rdp(sample_rate: f64, noise_multiplier: f64, steps: u64, orders: &[f64]) -> Result<Vec<f64>> {
    check_sample_rate(sample_rate)?;
    check_noise_multiplier(noise_multiplier)?;
    check_steps(steps)?;
    check_orders(orders)?;
    orders
        .iter()
        .map(|&a| Ok(rdp_one(sample_rate, noise_multiplier, a)? * steps as f64))
        .collect()
}

/// Converts RDP values at `orders` into `(ε, best order)` for the given δ
/// (Balle et al. 2020, Theorem 21):
/// `ε = min_α ρ(α) − (log δ + log α)/(α − 1) + log((α − 1)/α)`.
/// NaN values are skipped; the first of equal minima wins; all NaN gives `(∞, NaN)`.
pub fn privacy_spent(orders: &[f64], rdp: &[f64], delta: f64) -> Result<(f64, f64)> {
    check_delta(delta)?;
    check_orders(orders)?;
    if orders.len() != rdp.len() {
        return Err(err(format!(
            "{} orders but {} RDP values; they must have the same length",
            orders.len(),
            rdp.len()
        )));
    }
    let ln_delta = delta.ln();
    let mut best: Option<(f64, f64)> = None;
    for (&a, &r) in orders.iter().zip(rdp) {
        let eps = r - (ln_delta + a.ln()) / (a - 1.0) + ((a - 1.0) / a).ln();
        if eps.is_nan() {
            continue;
        }
        if best.is_none_or(|(e, _)| eps < e) {
            best = Some((eps, a));
        }
    }
    Ok(best.unwrap_or((f64::INFINITY, f64::NAN)))
}

/// One history entry of an [`RdpAccountant`]: `steps` steps at `(noise_multiplier, sample_rate)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistoryEntry {
    /// Noise multiplier σ (noise standard deviation over the L2 clipping norm).
    pub noise_multiplier: f64,
    /// Poisson sampling rate q (expected batch size over dataset size).
    pub sample_rate: f64,
    /// Number of steps taken with these values.
    pub steps: u64,
}

/// A Rényi-DP accountant for DP-SGD, like opacus's `RDPAccountant`: record each
/// step's `(σ, q)`, then ask for ε at a δ.
///
/// ```
/// use steepest::privacy::RdpAccountant;
///
/// let mut acc = RdpAccountant::new();
/// acc.steps(1.1, 0.01, 10_000)?; // or acc.step(1.1, 0.01)? once per step
/// let (eps, order) = acc.epsilon(1e-5)?;
/// assert!((eps - 5.632).abs() < 1e-3 && order == 4.7);
/// # Ok::<(), steepest::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RdpAccountant {
    history: Vec<HistoryEntry>,
    orders: Vec<f64>,
}

impl Default for RdpAccountant {
    fn default() -> Self {
        Self::new()
    }
}

impl RdpAccountant {
    /// An empty accountant with [`default_orders`].
    pub fn new() -> Self {
        RdpAccountant {
            history: Vec::new(),
            orders: default_orders(),
        }
    }

    /// An empty accountant minimising over other orders (each finite and > 1).
    pub fn with_orders(orders: Vec<f64>) -> Result<Self> {
        check_orders(&orders)?;
        Ok(RdpAccountant {
            history: Vec::new(),
            orders,
        })
    }

    /// Records one step; merged into the last history entry when `(σ, q)` are the same.
    pub fn step(&mut self, noise_multiplier: f64, sample_rate: f64) -> Result<()> {
        self.steps(noise_multiplier, sample_rate, 1)
    }

    /// Records `n` steps at once (same as `n` calls of [`step`](Self::step)).
    pub fn steps(&mut self, noise_multiplier: f64, sample_rate: f64, n: u64) -> Result<()> {
        check_noise_multiplier(noise_multiplier)?;
        check_sample_rate(sample_rate)?;
        check_steps(n)?;
        match self.history.last_mut() {
            Some(last) if last.noise_multiplier == noise_multiplier && last.sample_rate == sample_rate => {
                last.steps = last
                    .steps
                    .checked_add(n)
                    .ok_or_else(|| err("step count overflows u64"))?;
            }
            _ => self.history.push(HistoryEntry {
                noise_multiplier,
                sample_rate,
                steps: n,
            }),
        }
        Ok(())
    }

    /// The recorded history, oldest first.
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// The orders ε is minimised over.
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// Total RDP at each order: the sum of every history entry's [`compute_rdp`].
    pub fn rdp(&self) -> Result<Vec<f64>> {
        let mut total = vec![0.0; self.orders.len()];
        for h in &self.history {
            let r = compute_rdp(h.sample_rate, h.noise_multiplier, h.steps, &self.orders)?;
            for (t, r) in total.iter_mut().zip(r) {
                *t += r;
            }
        }
        Ok(total)
    }

    /// `(ε, best order α)` spent so far at this δ ([`privacy_spent`] of [`rdp`](Self::rdp)).
    /// An empty history gives `(0, 0)`, as opacus.
    pub fn epsilon(&self, delta: f64) -> Result<(f64, f64)> {
        check_delta(delta)?;
        if self.history.is_empty() {
            return Ok((0.0, 0.0));
        }
        privacy_spent(&self.orders, &self.rdp()?, delta)
    }
}

/// `(ε, best order)` of `steps` steps at `(σ, q)` with the default orders.
pub fn epsilon(noise_multiplier: f64, sample_rate: f64, steps: u64, delta: f64) -> Result<(f64, f64)> {
    let mut acc = RdpAccountant::new();
    acc.steps(noise_multiplier, sample_rate, steps)?;
    acc.epsilon(delta)
}

/// The noise multiplier σ for which `steps` steps at sampling rate `q` spend at most
/// `(target_epsilon, delta)`, found like opacus's `get_noise_multiplier` (accountant
/// "rdp", default orders): bracket by doubling from σ = 20, then bisect until
/// `target − ε(σ) ≤ epsilon_tolerance`; returns the upper end σ of the bracket
/// (see the module docs for the exact rule). Its ε is within the tolerance
/// below the target, so the answer depends on the tolerance (opacus: 0.01).
///
/// Errors: invalid inputs, or a target that even σ = 10⁶ cannot reach.
pub fn get_noise_multiplier(
    target_epsilon: f64,
    delta: f64,
    sample_rate: f64,
    steps: u64,
    epsilon_tolerance: f64,
) -> Result<f64> {
    if !(target_epsilon.is_finite() && target_epsilon > 0.0) {
        return Err(err(format!(
            "target epsilon must be finite and > 0, got {target_epsilon}"
        )));
    }
    if !(epsilon_tolerance.is_finite() && epsilon_tolerance > 0.0) {
        return Err(err(format!(
            "epsilon tolerance must be finite and > 0, got {epsilon_tolerance}"
        )));
    }
    check_delta(delta)?;
    check_sample_rate(sample_rate)?;
    check_steps(steps)?;
    let eps_at = |sigma: f64| epsilon(sigma, sample_rate, steps, delta).map(|(e, _)| e);

    let mut eps_high = f64::INFINITY;
    let (mut sigma_low, mut sigma_high) = (0.0f64, 10.0f64);
    while eps_high > target_epsilon {
        sigma_high *= 2.0;
        eps_high = eps_at(sigma_high)?;
        if sigma_high > MAX_SIGMA {
            return Err(err(format!(
                "the privacy budget is too low: epsilon {target_epsilon} at delta {delta} is not reached \
                 even with noise multiplier {sigma_high} (epsilon there: {eps_high})"
            )));
        }
    }
    while target_epsilon - eps_high > epsilon_tolerance {
        let sigma = (sigma_low + sigma_high) / 2.0;
        let eps = eps_at(sigma)?;
        if eps < target_epsilon {
            sigma_high = sigma;
            eps_high = eps;
        } else {
            sigma_low = sigma;
        }
    }
    Ok(sigma_high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_orders_are_opacus_grid() {
        let o = default_orders();
        assert_eq!(o.len(), 151);
        assert_eq!((o[0], o[98], o[99], o[150]), (1.1, 10.9, 12.0, 63.0));
        assert!(o.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn erfc_symmetry_and_limits() {
        assert_eq!(erfc(0.0), 1.0);
        for &x in &[0.1, 0.7, 1.9, 2.0, 2.1, 5.0] {
            let s = erfc(x) + erfc(-x);
            assert!((s - 2.0).abs() < 4e-16, "{x}: {s}");
            let (a, b) = (log_erfc(x), erfc(x).ln());
            assert!((a - b).abs() <= 4e-15 * b.abs().max(1.0), "{x}: {a} vs {b}");
        }
        assert!(log_erfc(1e10).is_finite() && log_erfc(1e10) < -1e19);
        assert!(erfc(f64::NAN).is_nan() && log_erfc(f64::NAN).is_nan());
        assert_eq!((erfc(f64::INFINITY), erfc(f64::NEG_INFINITY)), (0.0, 2.0));
        assert_eq!(log_erfc(f64::INFINITY), f64::NEG_INFINITY);
        assert_eq!(log_erfc(f64::NEG_INFINITY), std::f64::consts::LN_2);
        // Continuity at the series / continued-fraction split.
        let below = erfc(ERFC_SPLIT * (1.0 - f64::EPSILON));
        let above = erfc(ERFC_SPLIT);
        assert!(((below - above) / above).abs() < 1e-14, "{below} vs {above}");
    }

    #[test]
    fn q_one_is_plain_gaussian() {
        let r = compute_rdp(1.0, 2.0, 3, &[2.0, 4.5]).unwrap();
        assert_eq!(r, vec![3.0 * 2.0 / 8.0, 3.0 * 4.5 / 8.0]);
    }

    #[test]
    fn fractional_series_is_continuous_with_integer_formula() {
        // A_α is smooth in α: the fractional series just off an integer meets the integer sum.
        for &(q, s) in &[(0.01, 1.1), (0.3, 0.7), (0.001, 5.0)] {
            for a in [2u64, 5, 13] {
                let exact = log_a_int(q, s, a);
                let near = log_a_frac(q, s, a as f64 + 1e-9).unwrap();
                assert!(
                    (near - exact).abs() < 1e-6 * exact.abs().max(1e-3),
                    "{q} {s} {a}: {near} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let o = default_orders();
        assert!(compute_rdp(0.0, 1.0, 1, &o).is_err());
        assert!(compute_rdp(1.5, 1.0, 1, &o).is_err());
        assert!(compute_rdp(f64::NAN, 1.0, 1, &o).is_err());
        assert!(compute_rdp(0.1, 0.0, 1, &o).is_err());
        assert!(compute_rdp(0.1, -1.0, 1, &o).is_err());
        assert!(compute_rdp(0.1, f64::INFINITY, 1, &o).is_err());
        assert!(compute_rdp(0.1, 1e101, 1, &o).is_err());
        assert!(compute_rdp(0.5, SIGMA_LIMIT, 1, &o)
            .unwrap()
            .iter()
            .all(|r| r.is_finite()));
        assert!(compute_rdp(0.01, SIGMA_LIMIT, 1, &o)
            .unwrap()
            .iter()
            .all(|r| r.is_finite()));
        assert!(compute_rdp(0.1, 1.0, 0, &o).is_err());
        assert!(compute_rdp(0.1, 1.0, 1, &[1.0]).is_err());
        assert!(compute_rdp(0.1, 1.0, 1, &[]).is_err());
        assert!(epsilon(1.0, 0.1, 10, 0.0).is_err());
        assert!(epsilon(1.0, 0.1, 10, 1.0).is_err());
        assert!(get_noise_multiplier(0.0, 1e-5, 0.01, 100, 0.01).is_err());
        assert!(get_noise_multiplier(1.0, 1e-5, 0.01, 100, 0.0).is_err());
        assert!(RdpAccountant::with_orders(vec![0.5]).is_err());
    }

    #[test]
    fn accountant_merges_equal_steps() {
        let mut acc = RdpAccountant::new();
        assert_eq!(acc.epsilon(1e-5).unwrap(), (0.0, 0.0));
        acc.step(1.0, 0.01).unwrap();
        acc.step(1.0, 0.01).unwrap();
        acc.step(2.0, 0.01).unwrap();
        acc.step(1.0, 0.01).unwrap();
        let steps: Vec<u64> = acc.history().iter().map(|h| h.steps).collect();
        assert_eq!(steps, vec![2, 1, 1]);
    }
}
