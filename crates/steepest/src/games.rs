//! Small differentiable games for testing optimizers (used by the complex
//! momentum test and reusable by the convergence lab).
//!
//! The bilinear zero-sum game `min_x max_y f(x, y) = xᵀ A y` has its unique
//! equilibrium at `(0, 0)` when `A` is square and nonsingular. Player x
//! descends `∇_x f = A y`; player y ascends `∇_y f = Aᵀ x` (give its optimizer
//! `"maximize": true`). Plain simultaneous gradient descent–ascent spirals out:
//! each step multiplies the distance to the equilibrium by
//! `sqrt(1 + lr² σ²)` along every singular direction `σ` of `A`.

use crate::error::{Error, Result};
use crate::hyper::Hyper;
use crate::tensor::{GradSet, ParamSet};
use crate::Optimizer;

/// How the two players' gradients are evaluated each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Both at the current point `(x_t, y_t)` (simultaneous; the paper's SimCM).
    Simultaneous,
    /// x first; y's gradient at the new `x_{t+1}` (alternating; AltCM).
    Alternating,
}

/// Plays `min_x max_y xᵀ A y` (`A` row-major `n × m`) from `(x0, y0)` for
/// `steps` steps, player x with the registered optimizer `x_opt`, player y with
/// `y_opt` (which should ascend: `"maximize": true` for `sgd`,
/// `complex-momentum`, ...). Returns the distance `sqrt(‖x‖² + ‖y‖²)` to the
/// equilibrium before the first step and after every step (`steps + 1` values).
pub fn bilinear_game(
    a: &[f64],
    (n, m): (usize, usize),
    (x0, y0): (&[f64], &[f64]),
    x_opt: (&str, &Hyper),
    y_opt: (&str, &Hyper),
    steps: usize,
    order: Order,
) -> Result<Vec<f64>> {
    if a.len() != n * m || x0.len() != n || y0.len() != m {
        return Err(Error::param(
            "bilinear_game",
            format!(
                "A has {} values for {n}x{m}, x0 has {} (want {n}), y0 has {} (want {m})",
                a.len(),
                x0.len(),
                y0.len()
            ),
        ));
    }
    let mut xs = ParamSet::<f64>::new();
    xs.push("x", &[n], x0.to_vec())?;
    let mut ys = ParamSet::<f64>::new();
    ys.push("y", &[m], y0.to_vec())?;
    let mut px = Optimizer::new(x_opt.0, x_opt.1, &xs)?;
    let mut py = Optimizer::new(y_opt.0, y_opt.1, &ys)?;
    let grad_x = |y: &[f64]| -> Vec<f64> { (0..n).map(|i| (0..m).map(|j| a[i * m + j] * y[j]).sum()).collect() };
    let grad_y = |x: &[f64]| -> Vec<f64> { (0..m).map(|j| (0..n).map(|i| a[i * m + j] * x[i]).sum()).collect() };
    let dist = |xs: &ParamSet<f64>, ys: &ParamSet<f64>| {
        let x = &xs.get("x").map(|p| p.data.as_slice()).unwrap_or(&[]);
        let y = &ys.get("y").map(|p| p.data.as_slice()).unwrap_or(&[]);
        x.iter().chain(y.iter()).map(|v| v * v).sum::<f64>().sqrt()
    };
    let mut out = Vec::with_capacity(steps + 1);
    out.push(dist(&xs, &ys));
    for _ in 0..steps {
        let x_now = xs.get("x").map(|p| p.data.clone()).unwrap_or_default();
        let y_now = ys.get("y").map(|p| p.data.clone()).unwrap_or_default();
        let mut gx = GradSet::new();
        gx.insert("x", grad_x(&y_now[..]));
        let gy_sim = grad_y(&x_now[..]);
        px.step(&mut xs, &mut gx)?;
        let mut gy = GradSet::new();
        match order {
            Order::Simultaneous => gy.insert("y", gy_sim),
            Order::Alternating => {
                let x_new = xs.get("x").map(|p| p.data.clone()).unwrap_or_default();
                gy.insert("y", grad_y(&x_new[..]))
            }
        };
        py.step(&mut ys, &mut gy)?;
        out.push(dist(&xs, &ys));
    }
    Ok(out)
}
