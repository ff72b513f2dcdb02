//! Distributed algorithms. Each is a [`DistAlgorithm`]: one call of
//! [`DistAlgorithm::step`] is one local step of this rank (one gradient), with
//! whatever communication the algorithm does at that step. Inner and outer
//! optimizers are ordinary registry optimizers (`steepest::Optimizer`).

pub mod adloco;
pub mod ddp;
pub mod diloco;
pub mod dist_lion;
pub mod noloco;
pub mod onebit_adam;
pub mod qsdp;
pub mod semi_dec;

use std::collections::BTreeMap;

use steepest::hyper::Hyper;
use steepest::{GradSet, Optimizer, ParamSet};

use crate::collective::Collective;
use crate::error::{Error, Result};

/// How many times a synchronization is attempted before the run fails.
pub const SYNC_ATTEMPTS: u32 = 4;

/// The gradient oracle of this rank: loss and gradient at the given parameters
/// (every parameter's gradient written).
pub type Oracle<'a> = dyn FnMut(&ParamSet<f64>, &mut GradSet<f64>) -> f64 + 'a;

/// A distributed training algorithm, as run by one rank.
pub trait DistAlgorithm: Send {
    /// Registry name.
    fn name(&self) -> &'static str;
    /// One local step (one gradient), with the algorithm's communication. Returns the training loss.
    fn step(&mut self, comm: &mut dyn Collective, oracle: &mut Oracle) -> Result<f64>;
    /// The model this rank would serve now (DDP: the parameters; DiLoCo: the
    /// last committed global parameters; NoLoCo: this replica's slow weights).
    fn model(&self) -> &ParamSet<f64>;
    /// Local steps taken.
    fn steps(&self) -> u64;
    /// Committed state for a checkpoint: `(name, optimizer)` pairs of
    /// optimizers whose state should be saved, beside [`DistAlgorithm::model`].
    fn optimizers(&self) -> Vec<(&'static str, &Optimizer<f64>)> {
        Vec::new()
    }
    /// Restores from a checkpoint: the model and the optimizers named as in
    /// [`DistAlgorithm::optimizers`] (bytes of their state files), at `steps`.
    fn restore(&mut self, model: &ParamSet<f64>, states: &BTreeMap<String, Vec<u8>>, steps: u64) -> Result<()> {
        let _ = (model, states, steps);
        Err(Error::config(
            "checkpoint",
            format!("{} cannot resume from a checkpoint", self.name()),
        ))
    }
}

/// The parameters concatenated in order.
pub fn flatten(p: &ParamSet<f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(p.total_numel());
    for x in p.iter() {
        out.extend_from_slice(&x.data);
    }
    out
}

/// Writes a flat vector back into the parameters (lengths must match).
pub fn unflatten(p: &mut ParamSet<f64>, flat: &[f64]) -> Result<()> {
    if flat.len() != p.total_numel() {
        return Err(Error::Transport(format!(
            "{} values for {} parameters",
            flat.len(),
            p.total_numel()
        )));
    }
    let mut at = 0;
    for x in p.params_mut() {
        let n = x.data.len();
        x.data.copy_from_slice(&flat[at..at + n]);
        at += n;
    }
    Ok(())
}

/// The gradients concatenated in parameter order.
pub fn flatten_grads(p: &ParamSet<f64>, g: &GradSet<f64>) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(p.total_numel());
    for x in p.iter() {
        let gx = g
            .get(&x.name)
            .ok_or_else(|| Error::Lab(format!("the workload gave no gradient for {}", x.name)))?;
        if gx.len() != x.data.len() {
            return Err(Error::Lab(format!(
                "gradient of {} has {} values, expected {}",
                x.name,
                gx.len(),
                x.data.len()
            )));
        }
        out.extend_from_slice(gx);
    }
    Ok(out)
}

/// A gradient set from a flat vector in parameter order.
pub fn grads_from_flat(p: &ParamSet<f64>, flat: &[f64], g: &mut GradSet<f64>) {
    let mut at = 0;
    for x in p.iter() {
        let n = x.data.len();
        g.insert(x.name.clone(), flat[at..at + n].to_vec());
        at += n;
    }
}

/// Splits nested optimizer configurations (JSON objects under `nested` keys)
/// off a hyperparameter map; the rest is read with a `HyperReader`.
pub fn split_nested(owner: &str, h: &Hyper, nested: &[&str]) -> Result<(Hyper, BTreeMap<String, Hyper>)> {
    let mut flat = h.clone();
    let mut out = BTreeMap::new();
    for &k in nested {
        if let Some(v) = flat.remove(k) {
            match v {
                serde_json::Value::Object(m) => {
                    out.insert(k.to_string(), m.into_iter().collect::<Hyper>());
                }
                serde_json::Value::Null => {}
                other => {
                    return Err(steepest::Error::hyper(
                        owner,
                        k,
                        format!("expected an object of hyperparameters, got {other}"),
                    )
                    .into())
                }
            }
        }
    }
    Ok((flat, out))
}

/// Builds a registry optimizer, naming `field` (e.g. `inner`) in errors.
pub fn build_optimizer(owner: &str, field: &str, name: &str, h: &Hyper, p: &ParamSet<f64>) -> Result<Optimizer<f64>> {
    if steepest::registry::lookup(name).is_err() {
        return Err(
            steepest::Error::hyper(owner, field, format!("no optimizer named {name:?} in the registry")).into(),
        );
    }
    Optimizer::new(name, h, p).map_err(|e| match e {
        steepest::Error::InvalidHyper { field: f, message, .. } => {
            steepest::Error::hyper(owner, &format!("{field}_hyper.{f}"), format!("{name}: {message}")).into()
        }
        other => other.into(),
    })
}

/// A deterministic permutation of `0..n` from `(seed, stream)` (SplitMix64 + Fisher–Yates).
pub fn permutation(n: usize, seed: u64, stream: u64) -> Vec<usize> {
    let mut s = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}
