//! Complex momentum on the bilinear zero-sum game `min_x max_y xᵀ A y`
//! ("Complex Momentum for Optimization in Games", Lorraine et al. 2022, §2 and
//! Fig. 1: simultaneous gradient descent–ascent spirals away from the
//! equilibrium, complex momentum converges). The equilibrium is `(0, 0)`.

use steepest::games::{bilinear_game, Order};
use steepest::{hyper, Hyper};

fn sgd(lr: f64, maximize: bool) -> Hyper {
    let mut h = hyper([("lr", lr)]);
    h.insert("maximize".into(), maximize.into());
    h
}

/// Complex momentum with steepest's default β = 0.9·e^{iπ/8} and real α = `lr`.
fn cm(lr: f64, maximize: bool) -> Hyper {
    let mut h = hyper([("lr", lr)]);
    h.insert("maximize".into(), maximize.into());
    h
}

/// The scalar game `min_x max_y x·y` from (1, 1), step size 0.05, 1000 steps.
///
/// Simultaneous GDA maps `(x, y)` to `(x − αy, y + αx)`: a rotation scaled by
/// `sqrt(1 + α²)`, so the distance grows by exactly `(1 + α²)^{T/2}` =
/// 1.0025^500 ≈ 3.485 (checked to 1e-9: the map is exactly a scaled rotation).
///
/// Complex momentum with β = 0.9·e^{iπ/8}, α = 0.05: the joint linear map on
/// `(x, y, ℜμ_x, ℑμ_x, ℜμ_y, ℑμ_y)` has spectral radius 0.98569 (eigenvalues
/// computed with numpy), so after 1000 steps the distance is ~0.98569^1000 ≈
/// 5.5e-7 of the start (5.7e-7 measured in numpy). The bound 1e-5 leaves a
/// factor ~18 and still fails for any method that does not contract (and for
/// real momentum β = 0.9, whose radius here is 1.12: it diverges).
#[test]
fn scalar_game_gda_diverges_complex_momentum_converges() {
    let (lr, steps) = (0.05, 1000);
    let a = [1.0];
    let start = ([1.0], [1.0]);
    let gda = bilinear_game(
        &a,
        (1, 1),
        (&start.0, &start.1),
        ("sgd", &sgd(lr, false)),
        ("sgd", &sgd(lr, true)),
        steps,
        Order::Simultaneous,
    )
    .unwrap();
    let growth = gda[steps] / gda[0];
    eprintln!("scalar game, {steps} steps: GDA distance x{growth:.6}");
    let want = (1.0 + lr * lr).powf(steps as f64 / 2.0);
    assert!(growth > 3.4, "GDA grew only {growth}x");
    assert!(
        (growth - want).abs() <= 1e-9 * want,
        "GDA grew {growth}x, theory {want}x"
    );
    // Monotone: every step moves away from the equilibrium.
    assert!(gda.windows(2).all(|w| w[1] > w[0]));

    for order in [Order::Simultaneous, Order::Alternating] {
        let cm_run = bilinear_game(
            &a,
            (1, 1),
            (&start.0, &start.1),
            ("complex-momentum", &cm(lr, false)),
            ("complex-momentum", &cm(lr, true)),
            steps,
            order,
        )
        .unwrap();
        let shrink = cm_run[steps] / cm_run[0];
        eprintln!("scalar game, {steps} steps: {order:?} complex momentum distance x{shrink:.3e}");
        assert!(shrink < 1e-5, "{order:?} complex momentum: distance ratio {shrink}");
    }

    // Real momentum (β = 0.9, arg β = 0) is not enough: it diverges too.
    let mut real = cm(lr, false);
    real.insert("beta_arg".into(), 0.0.into());
    let mut real_y = real.clone();
    real_y.insert("maximize".into(), true.into());
    let hb = bilinear_game(
        &a,
        (1, 1),
        (&start.0, &start.1),
        ("complex-momentum", &real),
        ("complex-momentum", &real_y),
        steps,
        Order::Simultaneous,
    )
    .unwrap();
    eprintln!("scalar game: real momentum distance x{:.3e}", hb[steps] / hb[0]);
    assert!(hb[steps] > 1e3 * hb[0], "real momentum: {}", hb[steps] / hb[0]);
}

/// A 3×3 game with singular values 1.42, 1.12, 0.47 from (1, 1, 1, 1, 1, 1),
/// step size 0.05, 2000 steps.
///
/// GDA multiplies the component along singular value σ by `sqrt(1 + α²σ²)`
/// per step: after 2000 steps by 155 (σ = 1.42), 23 (1.12) and 1.75 (0.47);
/// numpy measures 73.7x for the distance. The bound 20x is exceeded unless the
/// method stops spiralling outwards.
///
/// Complex momentum (β = 0.9·e^{iπ/8}, α = 0.05): spectral radius 0.99802
/// (slowest along σ = 0.47), 0.99802^2000 ≈ 0.019; numpy measures 0.0032. The
/// bound 0.02 requires contraction at nearly the predicted rate.
#[test]
fn matrix_game_gda_diverges_complex_momentum_converges() {
    let a = [1.0, 0.3, -0.2, 0.1, 0.8, 0.4, -0.3, 0.2, 1.2];
    let ones = [1.0; 3];
    let (lr, steps) = (0.05, 2000);
    let gda = bilinear_game(
        &a,
        (3, 3),
        (&ones, &ones),
        ("sgd", &sgd(lr, false)),
        ("sgd", &sgd(lr, true)),
        steps,
        Order::Simultaneous,
    )
    .unwrap();
    eprintln!("3x3 game, {steps} steps: GDA distance x{:.3}", gda[steps] / gda[0]);
    assert!(gda[steps] > 20.0 * gda[0], "GDA: {}x", gda[steps] / gda[0]);
    let cm_run = bilinear_game(
        &a,
        (3, 3),
        (&ones, &ones),
        ("complex-momentum", &cm(lr, false)),
        ("complex-momentum", &cm(lr, true)),
        steps,
        Order::Simultaneous,
    )
    .unwrap();
    eprintln!(
        "3x3 game, {steps} steps: complex momentum distance x{:.3e}",
        cm_run[steps] / cm_run[0]
    );
    assert!(
        cm_run[steps] < 0.02 * cm_run[0],
        "complex momentum: {}x",
        cm_run[steps] / cm_run[0]
    );
}

#[test]
fn bad_game_inputs_are_errors() {
    let h = sgd(0.1, false);
    assert!(bilinear_game(
        &[1.0, 2.0],
        (1, 1),
        (&[1.0], &[1.0]),
        ("sgd", &h),
        ("sgd", &h),
        3,
        Order::Simultaneous
    )
    .is_err());
    assert!(bilinear_game(
        &[1.0],
        (1, 1),
        (&[1.0], &[1.0]),
        ("nope", &h),
        ("sgd", &h),
        3,
        Order::Simultaneous
    )
    .is_err());
}
