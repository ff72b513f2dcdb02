//! Coordinate-wise trimmed mean.
//!
//! Paper: Yin, Chen, Ramchandran & Bartlett, *Byzantine-Robust Distributed
//! Learning: Towards Optimal Statistical Rates* (ICML 2018), Algorithm 1
//! (option II, β-trimmed mean): per coordinate, drop the largest and the
//! smallest β fraction of the `n` values and average the rest. The count
//! removed from each end is `⌊β n⌋` (the paper's βm; SciPy's `trim_mean`
//! and Flower's `FedTrimmedAvg` round down the same way); unweighted.
//! β must lie in [0, 0.5). Flower's default β = 0.2.

use crate::strategy::FitRes;

/// The coordinate-wise β-trimmed mean of the results.
pub fn trimmed_mean(results: &[FitRes], beta: f64) -> Vec<Vec<f64>> {
    let n = results.len();
    let cut = (beta * n as f64) as usize;
    let kept = (n - 2 * cut) as f64;
    let tensors: Vec<Vec<&[f64]>> = results
        .iter()
        .map(|r| r.params.iter().map(|p| p.data.as_slice()).collect())
        .collect();
    let mut col = vec![0.0; n];
    (0..tensors[0].len())
        .map(|k| {
            (0..tensors[0][k].len())
                .map(|i| {
                    for (c, t) in col.iter_mut().zip(&tensors) {
                        *c = t[k][i];
                    }
                    col.sort_unstable_by(f64::total_cmp);
                    col[cut..n - cut].iter().sum::<f64>() / kept
                })
                .collect()
        })
        .collect()
}
