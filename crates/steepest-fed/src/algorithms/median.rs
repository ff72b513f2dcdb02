//! Coordinate-wise median.
//!
//! Paper: Yin, Chen, Ramchandran & Bartlett, *Byzantine-Robust Distributed
//! Learning: Towards Optimal Statistical Rates* (ICML 2018), Algorithm 1
//! (option I, median-based gradient descent), applied to models as in
//! Flower's `FedMedian`: every coordinate of the new model is the median of
//! the participants' values. Unweighted (the paper's median ignores sample
//! counts); an even count takes the mean of the two middle values (NumPy's
//! `median`, the paper's "median" being any middle value).

use crate::strategy::FitRes;

/// Median of a slice (sorted in place; total order, finite inputs).
pub fn median_of(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The coordinate-wise median of the results.
pub fn median(results: &[FitRes]) -> Vec<Vec<f64>> {
    let tensors: Vec<Vec<&[f64]>> = results
        .iter()
        .map(|r| r.params.iter().map(|p| p.data.as_slice()).collect())
        .collect();
    let mut col = vec![0.0; results.len()];
    (0..tensors[0].len())
        .map(|k| {
            (0..tensors[0][k].len())
                .map(|i| {
                    for (c, t) in col.iter_mut().zip(&tensors) {
                        *c = t[k][i];
                    }
                    median_of(&mut col)
                })
                .collect()
        })
        .collect()
}
