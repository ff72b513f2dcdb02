//! The lab's exact solver (Newton) against scikit-learn's optima
//! (`tools/reference/gen_lab_optima.py` → `fixtures/lab/optima.json`).

use steepest_lab::data;
use steepest_lab::solver::newton_logistic;

#[test]
fn newton_matches_sklearn_optima() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/lab/optima.json");
    let text = std::fs::read_to_string(path).expect("fixture");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let cases = v["cases"].as_array().expect("cases");
    assert!(cases.len() >= 4);
    for c in cases {
        let name = c["dataset"].as_str().unwrap();
        let l2 = c["l2"].as_f64().unwrap();
        let sk = c["f_star_sklearn"].as_f64().unwrap();
        let mut ds = data::bundled(name).unwrap();
        ds.standardize();
        let sol = newton_logistic(&ds, l2).unwrap();
        // Newton's point is a true minimizer (gradient < 1e-10), so it can only be lower than
        // lbfgs's; the two must agree to 1e-9 relative (lbfgs stops at tol 1e-14 on its own scale).
        assert!(sol.grad_norm < 1e-9, "{name}: Newton gradient {}", sol.grad_norm);
        assert!(
            sol.f_star <= sk + 1e-13,
            "{name} l2={l2}: Newton {} above sklearn {sk}",
            sol.f_star
        );
        assert!(
            (sk - sol.f_star) / sk < 1e-9,
            "{name} l2={l2}: Newton {} vs sklearn {sk}",
            sol.f_star
        );
    }
}
