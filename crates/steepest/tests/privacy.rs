//! The Rényi-DP accountant against opacus 1.6 (`fixtures/privacy/opacus_rdp.json`,
//! written by `tools/reference/gen_privacy.py`): ε and best order of the
//! `RDPAccountant`, compositions, `get_noise_multiplier`'s σ (and its refusals),
//! the per-order RDP of `compute_rdp`, and `log_erfc` against mpmath.
//!
//! Tolerances: ε and σ ≤ 1e-6 relative (the acceptance bar; measured ~1e-14), orders
//! equal, per-order RDP `|a − b| ≤ 1e-9 (|b| + 1e-3)`, `log_erfc` ≤ 1e-14 absolute for |values| ≤ 1
//! and ≤ 1e-15 relative beyond.
//! `STEEPEST_PRIVACY_FIXTURE=/path/file.json` checks another file (e.g. a held-out seed).

use std::path::PathBuf;

use serde_json::Value;
use steepest::privacy::{
    compute_rdp, default_orders, epsilon, get_noise_multiplier, log_erfc, RdpAccountant, DEFAULT_EPSILON_TOLERANCE,
};

fn fixture() -> Value {
    let path = std::env::var("STEEPEST_PRIVACY_FIXTURE").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/privacy/opacus_rdp.json"),
        PathBuf::from,
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("missing number `{k}` in {v}"))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("missing integer `{k}` in {v}"))
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs()
    }
}

fn rows<'a>(fx: &'a Value, group: &str) -> &'a Vec<Value> {
    fx[group].as_array().unwrap_or_else(|| panic!("missing `{group}`"))
}

#[test]
fn default_orders_match_opacus() {
    let fx = fixture();
    let theirs: Vec<f64> = fx["meta"]["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(default_orders(), theirs);
}

#[test]
fn epsilon_matches_opacus() {
    let fx = fixture();
    let cases = rows(&fx, "epsilon");
    assert!(cases.len() >= 40);
    let mut worst = (0.0f64, String::new());
    for c in cases {
        let (eps, order) = epsilon(f(c, "sigma"), f(c, "sample_rate"), u(c, "steps"), f(c, "delta")).unwrap();
        let e = rel(eps, f(c, "epsilon"));
        assert!(e <= 1e-6, "{c}: epsilon {eps} ({e:.2e} relative)");
        assert_eq!(order, f(c, "order"), "{c}: best order");
        if e > worst.0 {
            worst = (e, c.to_string());
        }
    }
    println!(
        "epsilon: {} cases, max relative error {:.3e} ({})",
        cases.len(),
        worst.0,
        worst.1
    );
}

#[test]
fn composition_matches_opacus() {
    let fx = fixture();
    for c in rows(&fx, "composition") {
        let mut acc = RdpAccountant::new();
        for h in c["history"].as_array().unwrap() {
            let h: Vec<f64> = h.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            acc.steps(h[0], h[1], h[2] as u64).unwrap();
        }
        let (eps, order) = acc.epsilon(f(c, "delta")).unwrap();
        let e = rel(eps, f(c, "epsilon"));
        assert!(e <= 1e-6, "{c}: epsilon {eps} ({e:.2e} relative)");
        assert_eq!(order, f(c, "order"), "{c}: best order");
        println!("composition: {e:.3e}");
    }
}

#[test]
fn step_by_step_equals_bulk_steps() {
    let (mut a, mut b) = (RdpAccountant::new(), RdpAccountant::new());
    for _ in 0..250 {
        a.step(1.3, 0.02).unwrap();
    }
    b.steps(1.3, 0.02, 250).unwrap();
    assert_eq!(a.history(), b.history());
    assert_eq!(a.epsilon(1e-5).unwrap(), b.epsilon(1e-5).unwrap());
}

#[test]
fn noise_multiplier_matches_opacus() {
    let fx = fixture();
    let cases = rows(&fx, "sigma");
    if std::env::var_os("STEEPEST_PRIVACY_FIXTURE").is_none() {
        assert!(cases.iter().any(|c| c.get("error").is_some()), "no unreachable case");
    }
    let mut worst = 0.0f64;
    for c in cases {
        let got = get_noise_multiplier(
            f(c, "target_epsilon"),
            f(c, "delta"),
            f(c, "sample_rate"),
            u(c, "steps"),
            f(c, "epsilon_tolerance"),
        );
        match c.get("error") {
            Some(_) => {
                let e = got.expect_err(&format!("{c}: expected an error"));
                assert!(e.to_string().contains("privacy budget is too low"), "{e}");
            }
            None => {
                let sigma = got.unwrap_or_else(|e| panic!("{c}: {e}"));
                let e = rel(sigma, f(c, "sigma"));
                assert!(e <= 1e-6, "{c}: sigma {sigma} ({e:.2e} relative)");
                worst = worst.max(e);
                let (eps, order) = epsilon(sigma, f(c, "sample_rate"), u(c, "steps"), f(c, "delta")).unwrap();
                assert!(
                    rel(eps, f(c, "epsilon")) <= 1e-6 && order == f(c, "order"),
                    "{c}: {eps} at {order}"
                );
                assert!(eps <= f(c, "target_epsilon"));
            }
        }
    }
    println!("sigma: {} cases, max relative error {worst:.3e}", cases.len());
    assert_eq!(DEFAULT_EPSILON_TOLERANCE, 0.01);
}

#[test]
fn rdp_vectors_match_opacus() {
    let fx = fixture();
    let orders = default_orders();
    let (mut worst, mut worst_rel, mut at) = (0.0f64, 0.0f64, String::new());
    for c in rows(&fx, "rdp") {
        let ours = compute_rdp(f(c, "sample_rate"), f(c, "sigma"), 1, &orders).unwrap();
        let theirs: Vec<f64> = c["rdp"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(ours.len(), theirs.len());
        for ((a, b), o) in ours.iter().zip(&theirs).zip(&orders) {
            // Absolute floor: both sides truncate the fractional series at e^-30 (≈1e-13 in log A),
            // which is ~4e-8 relative when the RDP itself is ~3e-5 (q = 1e-4, σ = 0.3, α = 1.1).
            let e = (a - b).abs() / (b.abs() + 1e-3);
            assert!(
                e <= 1e-9,
                "q={} sigma={} order {o}: {a} vs {b} ({e:.2e})",
                c["sample_rate"],
                c["sigma"]
            );
            if e > worst {
                worst = e;
                at = format!(
                    "q={} sigma={} order {o}: {a} vs opacus {b}",
                    c["sample_rate"], c["sigma"]
                );
            }
            worst_rel = worst_rel.max(rel(*a, *b));
        }
    }
    println!("rdp: max error {worst:.3e} (|a-b| / (|b| + 1e-3)); max relative {worst_rel:.3e}; worst {at}");
}

#[test]
fn log_erfc_matches_mpmath() {
    let fx = fixture();
    let mut worst = 0.0f64;
    for c in rows(&fx, "log_erfc") {
        let (x, want) = (f(c, "x"), f(c, "log_erfc"));
        let got = log_erfc(x);
        let e = (got - want).abs() / want.abs().max(1.0);
        assert!(e <= 1e-14, "log_erfc({x}) = {got}, mpmath {want} ({e:.2e})");
        worst = worst.max(e);
    }
    println!("log_erfc: max error {worst:.3e}");
}
