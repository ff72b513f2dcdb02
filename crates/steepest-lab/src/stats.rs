//! Small statistics: medians, least-squares slopes on log-log axes,
//! performance profiles.

/// Median (NaN-free input; infinities allowed); `None` for an empty slice.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 || v[n / 2 - 1].is_infinite() || v[n / 2].is_infinite() {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// Least-squares line `y = a + b x`: returns `(a, b, r²)`; `None` with fewer than 3 finite points.
pub fn linear_fit(x: &[f64], y: &[f64]) -> Option<(f64, f64, f64)> {
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (*a, *b))
        .collect();
    let n = pts.len() as f64;
    if pts.len() < 3 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let b = sxy / sxx;
    let r2 = if syy == 0.0 { 1.0 } else { (sxy * sxy) / (sxx * syy) };
    Some((my - b * mx, b, r2))
}

/// Slope of `log y` against `log x` over the points with `x` in `[lo, hi]` and `y > 0`.
pub fn loglog_slope(x: &[f64], y: &[f64], lo: f64, hi: f64) -> Option<(f64, f64, f64)> {
    let (lx, ly): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter(|(a, b)| **a >= lo && **a <= hi && **a > 0.0 && **b > 0.0)
        .map(|(a, b)| (a.ln(), b.ln()))
        .unzip();
    linear_fit(&lx, &ly)
}

/// Running minimum.
pub fn running_min(y: &[f64]) -> Vec<f64> {
    let mut m = f64::INFINITY;
    y.iter()
        .map(|v| {
            m = m.min(*v);
            m
        })
        .collect()
}

/// Dolan–Moré performance profile: for each solver (row of `costs`, one cost
/// per problem, infinite when not solved), the fraction of problems solved
/// within a factor `tau` of the best solver, at each `tau`.
pub fn performance_profile(costs: &[Vec<f64>], taus: &[f64]) -> Vec<Vec<f64>> {
    let problems = costs.first().map_or(0, |c| c.len());
    let best: Vec<f64> = (0..problems)
        .map(|p| costs.iter().map(|c| c[p]).fold(f64::INFINITY, f64::min))
        .collect();
    let counted: Vec<usize> = (0..problems).filter(|&p| best[p].is_finite()).collect();
    costs
        .iter()
        .map(|c| {
            taus.iter()
                .map(|&tau| {
                    if counted.is_empty() {
                        return 0.0;
                    }
                    counted.iter().filter(|&&p| c[p] <= tau * best[p].max(1e-300)).count() as f64 / counted.len() as f64
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_power_law() {
        let x: Vec<f64> = (1..100).map(|i| i as f64 * 10.0).collect();
        let y: Vec<f64> = x.iter().map(|x| 3.0 * x.powf(-0.5)).collect();
        let (_, b, r2) = loglog_slope(&x, &y, 1.0, 1e9).unwrap();
        assert!((b + 0.5).abs() < 1e-12 && r2 > 0.999999);
        assert!(loglog_slope(&x, &y, 5000.0, 1e9).is_none());
    }

    #[test]
    fn medians_and_profiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[1.0, f64::INFINITY]), Some(f64::INFINITY));
        assert_eq!(median(&[]), None);
        let p = performance_profile(&[vec![1.0, 4.0], vec![2.0, f64::INFINITY]], &[1.0, 2.0, 4.0]);
        assert_eq!(p[0], vec![1.0, 1.0, 1.0]);
        assert_eq!(p[1], vec![0.0, 0.5, 0.5]);
        assert_eq!(running_min(&[3.0, 1.0, 2.0]), vec![3.0, 1.0, 1.0]);
    }
}
