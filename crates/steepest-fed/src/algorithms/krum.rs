//! Krum and Multi-Krum.
//!
//! Paper: Blanchard, El Mhamdi, Guerraoui & Stainer, *Machine Learning with
//! Adversaries: Byzantine Tolerant Gradient Descent* (NeurIPS 2017), §4:
//! with `n` vectors of which up to `f` are Byzantine, the score of `V_i` is
//! `s(i) = Σ_{i→j} ‖V_i − V_j‖²` over its `n − f − 2` closest vectors
//! (squared Euclidean distance of the whole flattened model); Krum returns
//! the vector with the smallest score. Multi-Krum (§5) averages the `m`
//! vectors with the smallest scores.
//!
//! Choices left open and what steepest does (matching Flower's
//! `aggregate_krum`): the neighbour count is `max(1, n − f − 2)` so small
//! rounds still work; ties in distance or score go to the lower client id
//! (stable sort; NumPy's default sort is not stable, so an exact tie may pick
//! differently); Multi-Krum's average is example-weighted (Flower; the paper
//! averages uniformly — both coincide for equal sizes); the default `f = 0`
//! is Flower's (the paper requires `2f + 2 < n`, not enforced so callers can
//! study violations).

use crate::algorithms::fedavg::weighted_mean;
use crate::strategy::FitRes;
use crate::Result;

/// Krum scores of the results (flattened models).
pub fn scores(results: &[FitRes], f: usize) -> Vec<f64> {
    let n = results.len();
    let flat: Vec<Vec<f64>> = results
        .iter()
        .map(|r| r.params.iter().flat_map(|p| p.data.iter().copied()).collect())
        .collect();
    let mut dist = vec![0.0; n * n];
    for i in 0..n {
        for j in (i + 1)..n {
            let d: f64 = flat[i].iter().zip(&flat[j]).map(|(a, b)| (a - b) * (a - b)).sum();
            dist[i * n + j] = d;
            dist[j * n + i] = d;
        }
    }
    let closest = n.saturating_sub(f + 2).max(1).min(n.saturating_sub(1));
    (0..n)
        .map(|i| {
            let mut row: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| dist[i * n + j]).collect();
            row.sort_by(f64::total_cmp);
            row[..closest].iter().sum()
        })
        .collect()
}

/// Krum (`keep = 0`) or Multi-Krum (`keep > 0`).
pub fn krum(results: &[FitRes], f: usize, keep: usize) -> Result<Vec<Vec<f64>>> {
    let s = scores(results, f);
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    if keep == 0 {
        let best = order[0];
        return Ok(results[best].params.iter().map(|p| p.data.clone()).collect());
    }
    let mut chosen: Vec<usize> = order.into_iter().take(keep.min(results.len())).collect();
    chosen.sort_unstable();
    let picked: Vec<FitRes> = chosen.into_iter().map(|i| results[i].clone()).collect();
    weighted_mean(&picked)
}
