//! End-to-end tests of the `steepest` binary: resume and kernel invariance
//! over every classic fixture, one-line errors for bad input, non-finite
//! gradient policies, `list`, `--help` and state files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_steepest"));
    // A panic must never show a backtrace hint, even with backtraces enabled.
    c.env("RUST_BACKTRACE", "1");
    c
}

fn classic_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference/classic")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every fixture spec of every reference set (classic, paper1, adago, wrappers, ...).
fn classic_specs() -> Vec<(String, PathBuf)> {
    let root = repo_root().join("fixtures/reference");
    let mut v: Vec<(String, PathBuf)> = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        v.extend(std::fs::read_dir(&dir).unwrap().filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.strip_suffix(".spec.json")?.to_string();
            Some((name, p))
        }));
    }
    v.sort();
    assert!(v.len() > 100, "expected all fixture sets under {}", root.display());
    v
}

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "steepest-cli-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("cannot run the steepest binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn replay(spec: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        "--spec",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn replay_ok(spec: &Path, out: &Path, extra: &[&str]) -> Vec<u8> {
    let o = replay(spec, out, extra);
    assert!(
        o.status.success(),
        "{} {extra:?}: exit {:?}, stderr: {}",
        spec.display(),
        o.status.code(),
        stderr(&o)
    );
    std::fs::read(out).unwrap()
}

fn n_steps(spec: &Path) -> usize {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(spec).unwrap()).unwrap();
    v["steps"].as_array().unwrap().len()
}

/// Asserts a failed run with exactly one line on stderr that contains every
/// string of `names` and no sign of a panic.
fn assert_one_line_error(o: &Output, what: &str, names: &[&str]) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "{what}: expected failure, got success; stderr: {err}"
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: exit status {:?}; stderr: {err}",
        o.status.code()
    );
    let trimmed = err.trim_end_matches('\n');
    assert!(!trimmed.is_empty(), "{what}: empty stderr");
    assert!(!trimmed.contains('\n'), "{what}: stderr has more than one line:\n{err}");
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE", "internal error"] {
        assert!(!err.contains(bad), "{what}: stderr contains `{bad}`: {err}");
    }
    for n in names {
        assert!(err.contains(n), "{what}: stderr does not name `{n}`: {err}");
    }
}

// ---------------------------------------------------------------------------
// Resume and kernel invariance over every fixture.

#[test]
fn resume_is_bit_identical_for_every_fixture() {
    let tmp = Scratch::new("resume");
    for (name, spec) in classic_specs() {
        let n = n_steps(&spec);
        let base = replay_ok(&spec, &tmp.path(&format!("{name}.json")), &[]);
        let mut ks = vec![0, 1, n / 2, n.saturating_sub(1), n];
        ks.dedup();
        for k in ks {
            let out = tmp.path(&format!("{name}.resume{k}.json"));
            let got = replay_ok(&spec, &out, &["--resume-at", &k.to_string()]);
            assert!(got == base, "{name}: --resume-at {k} changes the output");
        }
    }
}

#[test]
fn reference_kernel_equals_fused_for_every_fixture() {
    let tmp = Scratch::new("kernel");
    for (name, spec) in classic_specs() {
        let fused = replay_ok(&spec, &tmp.path(&format!("{name}.fused.json")), &["--kernel", "fused"]);
        let reference = replay_ok(
            &spec,
            &tmp.path(&format!("{name}.ref.json")),
            &["--kernel", "reference"],
        );
        let opt = serde_json::from_str::<Value>(&std::fs::read_to_string(&spec).unwrap()).unwrap()["optimizer"]
            .as_str()
            .unwrap()
            .to_string();
        // Matrix optimizers sum their products in another order in the fused
        // kernel (faer vs a triple loop); the test matrix bounds that difference.
        if steepest::registry::lookup(&opt).unwrap().fused_vs_reference == steepest::registry::Exactness::Bitwise {
            assert!(fused == reference, "{name}: reference and fused kernels differ");
        }
        let default = replay_ok(&spec, &tmp.path(&format!("{name}.default.json")), &[]);
        assert!(default == fused, "{name}: default kernel output differs from fused");
    }
}

// ---------------------------------------------------------------------------
// Bad input.

/// A small valid spec: two parameters (one a scalar), three steps.
fn base_spec(optimizer: &str) -> Value {
    serde_json::json!({
        "optimizer": optimizer,
        "dtype": "f64",
        "hyper": {"lr": 0.01},
        "params": [
            {"name": "w", "shape": [2, 2], "data": [1.0, -2.0, 3.0, -4.0]},
            {"name": "bias", "shape": [], "data": [0.5]}
        ],
        "steps": [
            {"grads": {"w": [0.1, 0.2, 0.3, 0.4], "bias": [0.1]}},
            {"grads": {"w": [0.2, -0.1, 0.0, 0.4]}},
            {"grads": {"w": [-0.1, 0.2, 0.3, 0.1], "bias": [-0.2]}}
        ]
    })
}

fn check_bad_spec(tmp: &Scratch, what: &str, spec: &Value, names: &[&str]) {
    check_bad_text(tmp, what, &serde_json::to_string_pretty(spec).unwrap(), names);
}

fn check_bad_text(tmp: &Scratch, what: &str, text: &str, names: &[&str]) {
    let file = what.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let spec = tmp.write(&format!("{file}.spec.json"), text);
    let o = replay(&spec, &tmp.path(&format!("{file}.out.json")), &[]);
    assert_one_line_error(&o, what, names);
}

#[test]
fn base_spec_is_valid() {
    let tmp = Scratch::new("base");
    for name in ["sgd", "adam", "adamw", "adamax", "adagrad", "rmsprop"] {
        let spec = tmp.write(&format!("{name}.json"), &base_spec(name).to_string());
        let out: Value = serde_json::from_slice(&replay_ok(&spec, &tmp.path(&format!("{name}.out")), &[])).unwrap();
        assert_eq!(out["trajectory"].as_array().unwrap().len(), 3, "{name}");
        assert_eq!(out["skipped_steps"], 0, "{name}");
    }
}

#[test]
fn bad_spec_structure_is_a_one_line_error() {
    let tmp = Scratch::new("badspec");

    let mut s = base_spec("adam");
    s["optimizer"] = "adamq".into();
    check_bad_spec(&tmp, "unknown optimizer", &s, &["adamq"]);

    let mut s = base_spec("adam");
    s["hyper"]["lerning_rate"] = 0.1.into();
    check_bad_spec(&tmp, "unknown hyperparameter", &s, &["lerning_rate"]);

    let mut s = base_spec("adam");
    s["params"][0]["data"] = serde_json::json!([1.0, 2.0, 3.0]);
    check_bad_spec(&tmp, "wrong data length", &s, &["`w`"]);

    let mut s = base_spec("adam");
    s["steps"][1]["grads"]["w"] = serde_json::json!([1.0, 2.0]);
    // Steps are 0-based in the spec: `steps[1]`.
    check_bad_spec(&tmp, "wrong grad length", &s, &["steps[1]", "w"]);

    let mut s = base_spec("adam");
    s["steps"][2]["grads"]["ghost"] = serde_json::json!([1.0]);
    check_bad_spec(&tmp, "grads for a missing param", &s, &["ghost"]);

    for (i, shape) in [
        serde_json::json!([2, -2]),
        serde_json::json!([2.5, 2]),
        serde_json::json!(["2", 2]),
        serde_json::json!(4),
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = base_spec("adam");
        s["params"][0]["shape"] = shape.clone();
        check_bad_spec(&tmp, &format!("bad shape {i} {shape}"), &s, &["shape", "w"]);
    }

    let mut s = base_spec("adam");
    s["groups"] = serde_json::json!([{"params": ["w", "phantom"], "hyper": {"lr": 0.1}}]);
    check_bad_spec(&tmp, "group naming an unknown param", &s, &["phantom"]);

    let mut s = base_spec("adam");
    s["nonfinite"] = "ignore".into();
    check_bad_spec(&tmp, "bad nonfinite policy", &s, &["nonfinite", "ignore"]);

    let mut s = base_spec("adam");
    s["dtype"] = "f16".into();
    check_bad_spec(&tmp, "bad dtype", &s, &["dtype", "f16"]);

    let mut s = base_spec("adam");
    s["stepz"] = serde_json::json!([]);
    check_bad_spec(&tmp, "unknown top-level field", &s, &["stepz"]);

    check_bad_text(
        &tmp,
        "malformed json",
        r#"{"optimizer": "adam", "params": ["#,
        &["JSON"],
    );
    check_bad_text(&tmp, "empty file", "", &["JSON"]);
}

#[test]
fn invalid_hyperparameters_name_the_field() {
    let tmp = Scratch::new("hyper");
    let all = ["sgd", "adam", "adamw", "adamax", "adagrad", "rmsprop"];
    let adams = ["adam", "adamw", "adamax"];
    let with_eps = ["adam", "adamw", "adamax", "adagrad", "rmsprop"];
    let mut cases: Vec<(&str, Value, &[&str])> = Vec::new();
    for o in all {
        cases.push((o, serde_json::json!({"lr": -0.01}), &["lr"]));
        cases.push((o, serde_json::json!({"weight_decay": -0.01}), &["weight_decay"]));
    }
    for o in adams {
        cases.push((o, serde_json::json!({"betas": [1.0, 0.999]}), &["betas"]));
        cases.push((o, serde_json::json!({"betas": [0.9, -0.1]}), &["betas"]));
    }
    for o in with_eps {
        cases.push((o, serde_json::json!({"eps": -1e-8}), &["eps"]));
    }
    cases.push((
        "sgd",
        serde_json::json!({"nesterov": true, "momentum": 0.0}),
        &["nesterov"],
    ));
    cases.push((
        "sgd",
        serde_json::json!({"nesterov": true, "momentum": 0.9, "dampening": 0.1}),
        &["nesterov"],
    ));
    cases.push(("rmsprop", serde_json::json!({"alpha": -0.1}), &["alpha"]));
    cases.push(("adagrad", serde_json::json!({"lr_decay": -1.0}), &["lr_decay"]));
    for (o, h, names) in cases {
        let mut s = base_spec(o);
        s["hyper"] = h.clone();
        check_bad_spec(&tmp, &format!("{o} {h}"), &s, names);
        // The same values in a parameter group are rejected too.
        let mut s = base_spec(o);
        s["groups"] = serde_json::json!([{"params": ["bias"], "hyper": h}]);
        check_bad_spec(&tmp, &format!("{o} group {h}"), &s, names);
    }
}

#[test]
fn bad_command_lines_are_one_line_errors() {
    let tmp = Scratch::new("cmdline");
    let spec = tmp.write("ok.json", &base_spec("adam").to_string());
    let out = tmp.path("out.json");

    let missing = tmp.path("no-such-spec.json");
    let o = replay(&missing, &out, &[]);
    assert_one_line_error(&o, "missing file", &["no-such-spec.json"]);

    let o = replay(&spec, &out, &["--resume-at", "4"]);
    assert_one_line_error(&o, "--resume-at too large", &["--resume-at", "4"]);

    let o = replay(&spec, &out, &["--kernel", "bogus"]);
    assert_one_line_error(&o, "--kernel bogus", &["bogus"]);
}

// ---------------------------------------------------------------------------
// Non-finite gradients.

const NONFINITE_FIXTURE: &str = "adam_amsgrad_f64";
/// Step (1-based) whose gradient is made non-finite.
const BAD_STEP: usize = 3;

fn fixture_value(name: &str) -> Value {
    let text = std::fs::read_to_string(classic_dir().join(format!("{name}.spec.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A parameter with a non-empty gradient at step `BAD_STEP`.
fn victim(spec: &Value) -> String {
    spec["steps"][BAD_STEP - 1]["grads"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, g)| !g.as_array().unwrap().is_empty())
        .map(|(n, _)| n.clone())
        .expect("no non-empty gradient at the chosen step")
}

/// The fixture's text with `token` (a bare JSON token such as `NaN`) as the
/// first gradient value of `param` at step `BAD_STEP`.
fn with_nonfinite(spec: &Value, param: &str, token: &str, policy: Option<&str>) -> String {
    let mut s = spec.clone();
    match policy {
        Some(p) => s["nonfinite"] = p.into(),
        None => {
            s.as_object_mut().unwrap().remove("nonfinite");
        }
    }
    s["steps"][BAD_STEP - 1]["grads"][param][0] = "@@NONFINITE@@".into();
    let text = serde_json::to_string_pretty(&s).unwrap();
    assert_eq!(text.matches("\"@@NONFINITE@@\"").count(), 1);
    text.replace("\"@@NONFINITE@@\"", token)
}

fn trajectory(out: &Value) -> &Vec<Value> {
    out["trajectory"].as_array().expect("output has a trajectory")
}

#[test]
fn nonfinite_gradient_error_policy() {
    let tmp = Scratch::new("nf-error");
    let spec = fixture_value(NONFINITE_FIXTURE);
    let param = victim(&spec);
    let clean = tmp.write("clean.json", &spec.to_string());
    let clean_out: Value = serde_json::from_slice(&replay_ok(&clean, &tmp.path("clean.out"), &[])).unwrap();
    for (i, token) in ["NaN", "Infinity", "-Infinity"].into_iter().enumerate() {
        for policy in [Some("error"), None] {
            let what = format!("{token} with policy {policy:?}");
            let path = tmp.write(
                &format!("nf{i}-{}.json", policy.is_some()),
                &with_nonfinite(&spec, &param, token, policy),
            );
            let out_path = tmp.path(&format!("nf{i}-{}.out", policy.is_some()));
            let o = replay(&path, &out_path, &[]);
            assert_one_line_error(&o, &what, &[&format!("`{param}`")]);
            let text = std::fs::read_to_string(&out_path).unwrap_or_else(|e| panic!("{what}: no output file: {e}"));
            let out: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: output not JSON: {e}"));
            let traj = trajectory(&out);
            assert_eq!(traj.len(), BAD_STEP - 1, "{what}: trajectory length");
            assert_eq!(
                traj[..],
                trajectory(&clean_out)[..BAD_STEP - 1],
                "{what}: steps before the bad one"
            );
            let err = out["error"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: no `error` field: {text}"));
            assert!(
                err.contains(&param),
                "{what}: error field does not name `{param}`: {err}"
            );
            assert_eq!(out["skipped_steps"], 0, "{what}");
        }
    }
}

#[test]
fn nonfinite_gradient_skip_policy() {
    let tmp = Scratch::new("nf-skip");
    let spec = fixture_value(NONFINITE_FIXTURE);
    let param = victim(&spec);
    let mut removed = spec.clone();
    removed["nonfinite"] = "skip".into();
    removed["steps"].as_array_mut().unwrap().remove(BAD_STEP - 1);
    let removed_path = tmp.write("removed.json", &removed.to_string());
    let want: Value = serde_json::from_slice(&replay_ok(&removed_path, &tmp.path("removed.out"), &[])).unwrap();
    let want = trajectory(&want);
    let n = spec["steps"].as_array().unwrap().len();
    assert_eq!(want.len(), n - 1);
    for (i, token) in ["NaN", "Infinity", "-Infinity"].into_iter().enumerate() {
        for resume in [None, Some("2"), Some("3"), Some("5")] {
            let what = format!("{token} skip, resume {resume:?}");
            let path = tmp.write(
                &format!("skip{i}.json"),
                &with_nonfinite(&spec, &param, token, Some("skip")),
            );
            let extra: Vec<&str> = resume.map_or(vec![], |k| vec!["--resume-at", k]);
            let got: Value = serde_json::from_slice(&replay_ok(&path, &tmp.path("skip.out"), &extra))
                .unwrap_or_else(|e| panic!("{what}: output not JSON: {e}"));
            assert_eq!(got["skipped_steps"], 1, "{what}");
            assert!(got.get("error").is_none(), "{what}: unexpected error {}", got["error"]);
            let traj = trajectory(&got);
            assert_eq!(traj.len(), n, "{what}: trajectory length");
            assert_eq!(
                traj[BAD_STEP - 1],
                traj[BAD_STEP - 2],
                "{what}: skipped step changed the parameters"
            );
            for t in 0..n {
                let w = if t < BAD_STEP - 1 {
                    &want[t]
                } else if t == BAD_STEP - 1 {
                    continue;
                } else {
                    &want[t - 1]
                };
                assert_eq!(
                    &traj[t],
                    w,
                    "{what}: step {} differs from the run without step {BAD_STEP}",
                    t + 1
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// list and --help.

#[test]
fn help_exits_zero() {
    for args in [&["--help"][..], &["replay", "--help"], &["list", "--help"]] {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(!o.stdout.is_empty(), "{args:?}: no help text");
    }
}

const NAMES: [&str; 6] = ["sgd", "adam", "adamw", "adamax", "adagrad", "rmsprop"];

#[test]
fn list_names_every_optimizer() {
    let o = run(&["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let first_words: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for n in NAMES {
        assert!(first_words.contains(&n), "`steepest list` lacks `{n}`:\n{text}");
    }
}

#[test]
fn list_json_defaults_match_pytorch() {
    let o = run(&["list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("`list --json` is not valid JSON");
    let list = v.as_array().expect("`list --json` is not an array");
    let defaults = |name: &str| -> Value {
        list.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("`list --json` lacks `{name}`"))["defaults"]
            .clone()
    };
    for n in NAMES {
        let d = defaults(n);
        assert!(d.is_object(), "{n}: defaults {d}");
    }
    let checks: &[(&str, &str, Value)] = &[
        ("sgd", "lr", 0.001.into()),
        ("sgd", "momentum", 0.0.into()),
        ("adam", "lr", 0.001.into()),
        ("adam", "eps", 1e-8.into()),
        ("adam", "betas", serde_json::json!([0.9, 0.999])),
        ("adam", "weight_decay", 0.0.into()),
        ("adamw", "lr", 0.001.into()),
        ("adamw", "weight_decay", 0.01.into()),
        ("adamax", "lr", 0.002.into()),
        ("adamax", "betas", serde_json::json!([0.9, 0.999])),
        ("adamax", "eps", 1e-8.into()),
        ("adagrad", "lr", 0.01.into()),
        ("adagrad", "eps", 1e-10.into()),
        ("adagrad", "lr_decay", 0.0.into()),
        ("adagrad", "initial_accumulator_value", 0.0.into()),
        ("rmsprop", "lr", 0.01.into()),
        ("rmsprop", "alpha", 0.99.into()),
        ("rmsprop", "eps", 1e-8.into()),
    ];
    for (n, key, want) in checks {
        let d = defaults(n);
        let got = &d[*key];
        let ok = match (got.as_f64(), want.as_f64()) {
            (Some(g), Some(w)) => g == w,
            _ => got == want,
        };
        assert!(ok, "{n}.{key}: default {got}, PyTorch's is {want}");
    }
}

// ---------------------------------------------------------------------------
// State files.

#[test]
fn state_file_is_left_and_readable_by_python_safetensors() {
    let tmp = Scratch::new("statefile");
    let spec = classic_dir().join("adam_amsgrad_f32.spec.json");
    let base = replay_ok(&spec, &tmp.path("base.json"), &[]);
    let state = tmp.path("state.safetensors");
    let got = replay_ok(
        &spec,
        &tmp.path("resumed.json"),
        &["--resume-at", "4", "--state-file", state.to_str().unwrap()],
    );
    assert!(got == base, "--state-file changes the output");
    let bytes = std::fs::read(&state).unwrap_or_else(|e| panic!("no state file at {}: {e}", state.display()));
    assert!(bytes.len() > 8, "state file too short");
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).expect("header is JSON");
    assert_eq!(header["__metadata__"]["optimizer"], "adam");
    assert_eq!(header["__metadata__"]["steps"], "4");

    let have_python = Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_python {
        assert!(
            std::env::var_os("STEEPEST_REQUIRE_PYTHON").is_none(),
            "STEEPEST_REQUIRE_PYTHON is set but python3 cannot import safetensors and numpy"
        );
        eprintln!("note: python3 with safetensors and numpy not available; skipping check_safetensors.py");
        return;
    }
    let o = Command::new("python3")
        .arg(repo_root().join("tools/reference/check_safetensors.py"))
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "check_safetensors.py failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(
        listing.contains("exp_avg_sq"),
        "python did not list the state tensors: {listing}"
    );
}

/// BUG (reported): `list` uses `println!`, which panics when stdout cannot be
/// written (closed pipe as in `steepest list | head -1`, or a full disk).
#[cfg(unix)]
#[test]

fn list_with_unwritable_stdout_is_a_one_line_error() {
    for args in [&["list"][..], &["list", "--json"]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let o = bin().args(args).stdout(full).output().unwrap();
        assert_one_line_error(&o, &format!("{args:?} > /dev/full"), &[]);
    }
}

#[test]
fn perf_reports_the_step_and_its_twin() {
    let o = bin()
        .args([
            "perf",
            "--optimizer",
            "adam",
            "--numel",
            "1000",
            "--tensors",
            "4",
            "--repeats",
            "2",
            "--threads",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state_bytes_per_param"], 8.0);
    assert_eq!(v["tensors"], 4);
    assert_eq!(v["threads"], 1);
    assert!(v["step_ms"].as_f64().unwrap() > 0.0 && v["twin_ms"].as_f64().unwrap() > 0.0);
    for args in [
        vec!["perf", "--optimizer", "nope", "--numel", "10"],
        vec!["perf", "--optimizer", "adam", "--numel", "10", "--tensors", "0"],
        vec!["perf", "--optimizer", "adam", "--numel", "10", "--hyper", "[1]"],
        vec!["perf", "--optimizer", "adam", "--numel", "10", "--dtype", "f16"],
        vec![
            "perf",
            "--optimizer",
            "adam",
            "--numel",
            "10",
            "--hyper",
            "{\"lr\": -1}",
        ],
    ] {
        let o = bin().args(&args).output().unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
}

// ---------------------------------------------------------------------------
// Privacy accounting (`steepest privacy epsilon|sigma`), against opacus.

fn privacy_fixture() -> Value {
    let p = repo_root().join("fixtures/privacy/opacus_rdp.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn privacy_json(args: &[&str]) -> Value {
    let mut all = vec!["privacy"];
    all.extend_from_slice(args);
    all.push("--json");
    let o = run(&all);
    assert!(o.status.success(), "{all:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{all:?}: {e}"))
}

fn num(v: &Value) -> String {
    v.as_f64().map(|x| format!("{x:e}")).unwrap_or_else(|| v.to_string())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs()
}

#[test]
fn privacy_epsilon_matches_opacus() {
    let fx = privacy_fixture();
    let cases = fx["epsilon"].as_array().unwrap();
    for c in cases.iter().step_by(4) {
        let (s, q, t, d) = (
            num(&c["sigma"]),
            num(&c["sample_rate"]),
            c["steps"].to_string(),
            num(&c["delta"]),
        );
        let v = privacy_json(&[
            "epsilon",
            "--sigma",
            &s,
            "--sample-rate",
            &q,
            "--steps",
            &t,
            "--delta",
            &d,
        ]);
        let (eps, want) = (v["epsilon"].as_f64().unwrap(), c["epsilon"].as_f64().unwrap());
        assert!(close(eps, want), "{c}: {eps}");
        assert_eq!(v["order"], c["order"], "{c}");
    }
    // Plain text: ε with its full digits and the best order.
    let o = run(&[
        "privacy",
        "epsilon",
        "--sigma",
        "1.1",
        "--sample-rate",
        "0.01",
        "--steps",
        "10000",
        "--delta",
        "1e-5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let want = cases[0]["epsilon"].as_f64().unwrap();
    assert!(text.starts_with(&format!("epsilon = {want} ")), "{text}");
    assert!(text.contains("alpha = 4.7"), "{text}");
}

#[test]
fn privacy_sigma_matches_opacus() {
    let fx = privacy_fixture();
    for c in fx["sigma"].as_array().unwrap().iter().step_by(3) {
        let e = num(&c["target_epsilon"]);
        let (q, t, d, tol) = (
            num(&c["sample_rate"]),
            c["steps"].to_string(),
            num(&c["delta"]),
            num(&c["epsilon_tolerance"]),
        );
        let args = [
            "privacy",
            "sigma",
            "--epsilon",
            &e,
            "--delta",
            &d,
            "--sample-rate",
            &q,
            "--steps",
            &t,
            "--epsilon-tolerance",
            &tol,
        ];
        if c.get("error").is_some() {
            assert_one_line_error(&run(&args), "unreachable epsilon", &["privacy budget is too low"]);
            continue;
        }
        let v = privacy_json(&args[1..]);
        let (sigma, want) = (v["sigma"].as_f64().unwrap(), c["sigma"].as_f64().unwrap());
        assert!(close(sigma, want), "{c}: {sigma}");
        assert!(
            close(v["epsilon"].as_f64().unwrap(), c["epsilon"].as_f64().unwrap()),
            "{c}: {v}"
        );
    }
}

// ---------------------------------------------------------------------------
// Step inputs: `loss` and `sample_grads`.

/// `base_spec` for an optimizer that needs the loss (AEGD) or per-sample
/// gradients (DP-SGD): every step gets a loss and two samples per gradient.
fn inputs_spec(optimizer: &str) -> Value {
    let mut s = base_spec(optimizer);
    if optimizer == "dp-sgd" {
        s["hyper"] = serde_json::json!({"lr": 0.01, "noise_multiplier": 0.0, "max_grad_norm": 1.0});
    }
    for (t, step) in s["steps"].as_array_mut().unwrap().iter_mut().enumerate() {
        step["loss"] = (1.0 + t as f64).into();
        let mut samples = serde_json::Map::new();
        for (name, g) in step["grads"].as_object().unwrap() {
            let g: Vec<f64> = g.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let a: Vec<f64> = g.iter().map(|x| x * 0.5).collect();
            let b: Vec<f64> = g.iter().map(|x| x * 1.5).collect();
            samples.insert(name.clone(), serde_json::json!([a, b]));
        }
        step["sample_grads"] = Value::Object(samples);
    }
    s
}

#[test]
fn step_inputs_are_accepted_and_resume_bit_identically() {
    let tmp = Scratch::new("inputs");
    for name in ["aegd", "dp-sgd", "dice-sgd", "sgd"] {
        let spec = tmp.write(&format!("{name}.json"), &inputs_spec(name).to_string());
        let base = replay_ok(&spec, &tmp.path(&format!("{name}.out")), &[]);
        let out: Value = serde_json::from_slice(&base).unwrap();
        assert_eq!(out["trajectory"].as_array().unwrap().len(), 3, "{name}");
        for k in ["1", "2"] {
            let got = replay_ok(&spec, &tmp.path(&format!("{name}.{k}.out")), &["--resume-at", k]);
            assert!(got == base, "{name}: --resume-at {k} changes the output");
        }
    }
}

#[test]
fn privacy_bad_inputs_are_one_line_errors() {
    let eps = |sigma: &str, q: &str, t: &str, d: &str| {
        run(&[
            "privacy",
            "epsilon",
            "--sigma",
            sigma,
            "--sample-rate",
            q,
            "--steps",
            t,
            "--delta",
            d,
        ])
    };
    for (what, o, names) in [
        ("sigma 0", eps("0", "0.01", "10", "1e-5"), &["--sigma", "0"][..]),
        ("sigma < 0", eps("-1", "0.01", "10", "1e-5"), &["--sigma", "-1"][..]),
        ("sigma nan", eps("nan", "0.01", "10", "1e-5"), &["--sigma", "nan"][..]),
        ("sigma text", eps("abc", "0.01", "10", "1e-5"), &["--sigma", "abc"][..]),
        (
            "sigma huge",
            eps("1e101", "0.01", "10", "1e-5"),
            &["--sigma", "1e101"][..],
        ),
        ("q 0", eps("1", "0", "10", "1e-5"), &["--sample-rate"][..]),
        ("q > 1", eps("1", "1.5", "10", "1e-5"), &["--sample-rate", "1.5"][..]),
        ("q inf", eps("1", "inf", "10", "1e-5"), &["--sample-rate", "inf"][..]),
        ("T 0", eps("1", "0.01", "0", "1e-5"), &["--steps"][..]),
        ("T fractional", eps("1", "0.01", "2.5", "1e-5"), &["--steps", "2.5"][..]),
        ("T negative", eps("1", "0.01", "-3", "1e-5"), &["--steps", "-3"][..]),
        ("delta 0", eps("1", "0.01", "10", "0"), &["--delta"][..]),
        ("delta 1", eps("1", "0.01", "10", "1"), &["--delta", "1"][..]),
        ("delta nan", eps("1", "0.01", "10", "NaN"), &["--delta", "NaN"][..]),
    ] {
        assert_one_line_error(&o, what, names);
    }
    let sig = |e: &str, tol: &str| {
        run(&[
            "privacy",
            "sigma",
            "--epsilon",
            e,
            "--delta",
            "1e-5",
            "--sample-rate",
            "0.01",
            "--steps",
            "100",
            "--epsilon-tolerance",
            tol,
        ])
    };
    assert_one_line_error(&sig("0", "0.01"), "target 0", &["--epsilon", "0"]);
    assert_one_line_error(&sig("inf", "0.01"), "target inf", &["--epsilon", "inf"]);
    assert_one_line_error(&sig("1", "-0.1"), "tolerance < 0", &["--epsilon-tolerance", "-0.1"]);
    assert_one_line_error(&sig("0.001", "0.01"), "unreachable", &["privacy budget is too low"]);
}

#[test]
fn bad_or_missing_step_inputs_are_one_line_errors() {
    let tmp = Scratch::new("badinputs");

    let mut s = inputs_spec("aegd");
    s["steps"][1].as_object_mut().unwrap().remove("loss");
    check_bad_spec(&tmp, "aegd without a loss", &s, &["steps[1].loss", "aegd"]);

    let mut s = inputs_spec("aegd");
    s["steps"][2]["loss"] = "high".into();
    check_bad_spec(&tmp, "loss not a number", &s, &["steps[2].loss", "high"]);

    let mut s = inputs_spec("aegd");
    s["hyper"]["c"] = 0.5.into();
    s["steps"][0]["loss"] = (-2.0).into();
    check_bad_spec(&tmp, "loss + c not positive", &s, &["loss", "c"]);

    let mut s = inputs_spec("aegd");
    s["steps"][0]["los"] = 1.0.into();
    check_bad_spec(&tmp, "unknown step field", &s, &["los", "steps[0]"]);

    let mut s = inputs_spec("dp-sgd");
    s["steps"][0]["sample_grads"].as_object_mut().unwrap().remove("bias");
    check_bad_spec(
        &tmp,
        "dp-sgd without samples of a param",
        &s,
        &["steps[0].sample_grads.bias", "dp-sgd"],
    );

    let mut s = inputs_spec("dp-sgd");
    s["steps"][1].as_object_mut().unwrap().remove("sample_grads");
    check_bad_spec(&tmp, "dp-sgd without sample_grads", &s, &["steps[1].sample_grads.w"]);

    let mut s = inputs_spec("dp-sgd");
    s["steps"][0]["sample_grads"]["w"][1] = serde_json::json!([1.0, 2.0]);
    check_bad_spec(
        &tmp,
        "sample of the wrong length",
        &s,
        &["steps[0].sample_grads.w[1]", "4"],
    );

    let mut s = inputs_spec("dp-sgd");
    s["steps"][0]["sample_grads"]["bias"] = serde_json::json!([[0.1]]);
    check_bad_spec(&tmp, "unequal sample counts", &s, &["steps[0].sample_grads", "samples"]);

    let mut s = inputs_spec("dp-sgd");
    s["steps"][2]["sample_grads"]["ghost"] = serde_json::json!([[0.1]]);
    check_bad_spec(&tmp, "samples of a missing param", &s, &["ghost"]);

    let mut s = inputs_spec("dp-sgd");
    s["steps"][2]["sample_grads"]["w"] = serde_json::json!({"a": 1});
    check_bad_spec(&tmp, "samples not an array", &s, &["steps[2].sample_grads.w"]);
}

// ---------------------------------------------------------------------------
// The convergence lab (`steepest bench`, `steepest data`).

fn strip_wall(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("wall");
            m.remove("time_to_target");
            for x in m.values_mut() {
                strip_wall(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_wall),
        _ => {}
    }
}

fn trials_without_times(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("trials.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            strip_wall(&mut v);
            v
        })
        .collect()
}

#[test]
fn bench_writes_a_report_and_is_deterministic() {
    let tmp = Scratch::new("bench");
    let args = |out: &str| {
        vec![
            "bench".to_string(),
            "--workloads".into(),
            "least-squares,online-regression".into(),
            "--optimizers".into(),
            "sgd,adam,muon".into(),
            "--seeds".into(),
            "2".into(),
            "--quiet".into(),
            "--out".into(),
            tmp.path(out).to_string_lossy().into_owned(),
        ]
    };
    let a: Vec<String> = args("a");
    let o = bin().args(&a).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("adam-regret") && stdout.contains("report.html"),
        "{stdout}"
    );
    let dir = tmp.path("a");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for needle in ["<svg", "adam-regret", "least-squares", "Performance profile", "muon"] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
    for f in [
        "plots/curves-least-squares.png",
        "plots/curves-least-squares.svg",
        "leaderboard.csv",
        "meta.json",
        "claims.json",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let png = std::fs::read(dir.join("plots/claim-adam-regret.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // Every trial of every optimizer, in the sweep and on the seeds.
    let t = trials_without_times(&dir);
    for name in ["sgd", "adam"] {
        assert!(
            t.iter()
                .any(|x| x["optimizer"] == name && x["phase"] == "seeds" && x["seed"] == 1),
            "{name}"
        );
    }
    // Same seeds, same numbers (wall-clock times aside), also on one thread.
    let mut b = args("b");
    b.extend(["--threads".to_string(), "1".to_string()]);
    let o = bin().args(&b).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(t == trials_without_times(&tmp.path("b")), "a rerun changed the numbers");
}

#[test]
fn bench_and_data_bad_inputs_are_one_line_errors() {
    let tmp = Scratch::new("benchbad");
    let bad_toml = tmp.write("bad.toml", "name = 'x'\ntask = 'svm'\ndata = 'd.csv'\n");
    for (args, needle) in [
        (vec!["bench", "--suite", "huge", "--quiet"], "huge"),
        (vec!["bench", "--workloads", "nope", "--quiet"], "nope"),
        (vec!["bench", "--optimizers", "adamz", "--quiet"], "adamz"),
        (vec!["bench", "--seeds", "0", "--quiet"], "--seeds"),
        (
            vec!["bench", "--workload-file", bad_toml.to_str().unwrap(), "--quiet"],
            "task",
        ),
        (
            vec!["bench", "--workload-file", "/nonexistent/w.toml", "--quiet"],
            "cannot read",
        ),
        (vec!["data", "fetch", "cifar"], "cifar"),
        (
            vec!["bench", "--workloads", "mlp-mnist", "--quiet"],
            "steepest data fetch mnist",
        ),
    ] {
        let o = bin()
            .args(&args)
            .env("STEEPEST_CACHE_DIR", tmp.path("cache"))
            .output()
            .unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
        assert!(e.contains(needle) && !e.contains("panicked"), "{args:?}: {e}");
    }
    // `data list` names the fetch command for what is missing.
    let o = bin()
        .args(["data", "list"])
        .env("STEEPEST_CACHE_DIR", tmp.path("cache"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("steepest data fetch mnist") && out.contains("digits"),
        "{out}"
    );
}
