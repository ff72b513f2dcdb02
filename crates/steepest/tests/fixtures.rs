//! Replays every golden fixture made by `tools/reference/` (PyTorch and other
//! references) and compares the trajectories.
//!
//! Tolerance: ≤ 1e-10 relative in f64 and ≤ 1e-5 in f32 (see [`rel_error`]).
//! Our kernels follow PyTorch's operation order and its fused multiply-adds,
//! so most elements agree to the last bit; the rest differ by a few ulps
//! because PyTorch's CPU `sqrt` is not correctly rounded (measured with torch
//! 2.15: 17% of f32 and 1% of f64 results are 1 ulp off `f32::sqrt`). Those
//! ulps compound over 20+ steps to ~1e-6 relative in f32 and ~1e-14 in f64,
//! well inside the tolerances, while any formula error shows up at ≥ 1e-3.

use std::path::{Path, PathBuf};

use steepest::replay::{parse_spec, replay, ReplayOptions};
use steepest::{Dtype, Kernel};

fn fixture_dirs() -> Vec<PathBuf> {
    // STEEPEST_FIXTURES=dir1:dir2 checks other fixture sets (e.g. freshly generated held-out ones).
    if let Ok(v) = std::env::var("STEEPEST_FIXTURES") {
        return v.split(':').map(PathBuf::from).collect();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn cases(dir: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.strip_suffix(".spec.json")?.to_string();
            let exp = dir.join(format!("{name}.expected.json"));
            Some((name, p, exp))
        })
        .collect();
    v.sort();
    v
}

/// Relative error of one tensor at one step: `max_i |got_i - want_i| / scale`,
/// where `scale` is the largest magnitude the parameter takes anywhere along
/// the expected trajectory.
///
/// Errors are measured against the parameter's own scale, not elementwise:
/// all components move with the same learning rate, so a component that
/// crosses zero (or a one-element tensor that passes near zero) carries the
/// absolute rounding error of the run, and an elementwise ratio there measures
/// only how close to zero it happened to land.
pub fn rel_error(got: &[f64], want: &[f64], scale: f64) -> f64 {
    let scale = scale.max(f64::MIN_POSITIVE);
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / scale)
        .fold(0.0, f64::max)
}

fn check_dir(dir: &Path, kernel: Kernel) -> (usize, f64, f64) {
    let mut worst = (0.0f64, 0.0f64);
    let all = cases(dir);
    assert!(!all.is_empty(), "no fixtures in {}", dir.display());
    for (name, spec_path, exp_path) in &all {
        let spec = parse_spec(&std::fs::read_to_string(spec_path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = steepest::json::parse(&std::fs::read_to_string(exp_path).unwrap()).unwrap();
        let out = replay(
            &spec,
            &ReplayOptions {
                kernel: Some(kernel),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(out.error.is_none(), "{name}: {:?}", out.error);
        let traj = want["trajectory"].as_array().unwrap();
        assert_eq!(out.trajectory.len(), traj.len(), "{name}: trajectory length");
        assert_eq!(
            out.skipped_steps,
            want["skipped_steps"].as_u64().unwrap_or(0),
            "{name}: skipped_steps"
        );
        let tol = match spec.dtype {
            Dtype::F64 => 1e-10,
            Dtype::F32 => 1e-5,
        };
        let values = |step: &serde_json::Value, pname: &str| -> Vec<f64> {
            step[pname]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: a step lacks `{pname}`"))
                .iter()
                .map(|x| steepest::hyper::value_as_f64(x).unwrap())
                .collect()
        };
        let scales: Vec<f64> = out
            .names
            .iter()
            .map(|pname| {
                traj.iter()
                    .flat_map(|st| values(st, pname))
                    .fold(0.0f64, |m, x| m.max(x.abs()))
            })
            .collect();
        for (t, (got_step, want_step)) in out.trajectory.iter().zip(traj).enumerate() {
            for (i, pname) in out.names.iter().enumerate() {
                let w = values(want_step, pname);
                let e = rel_error(&got_step[i], &w, scales[i]);
                assert!(
                    e <= tol,
                    "{name}: step {} param `{pname}`: relative error {e:.3e} > {tol:e}",
                    t + 1
                );
                match spec.dtype {
                    Dtype::F64 => worst.0 = worst.0.max(e),
                    Dtype::F32 => worst.1 = worst.1.max(e),
                }
            }
        }
    }
    (all.len(), worst.0, worst.1)
}

#[test]
fn golden_fixtures_match_reference_fused() {
    for dir in fixture_dirs() {
        let (n, e64, e32) = check_dir(&dir, Kernel::Fused);
        eprintln!(
            "{}: {n} cases, worst relative error f64 {e64:.2e}, f32 {e32:.2e}",
            dir.display()
        );
    }
}

#[test]
fn golden_fixtures_match_reference_reference_kernel() {
    for dir in fixture_dirs() {
        check_dir(&dir, Kernel::Reference);
    }
}
