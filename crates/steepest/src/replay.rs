//! `steepest replay`: run an optimizer over a recorded sequence of gradients,
//! the language-neutral way to cross-check steepest against another framework.
//!
//! A spec (JSON) names the optimizer, dtype, hyperparameters, parameter
//! groups, initial parameters and the gradients of every step; the output is
//! the parameters after every step. See the README for the format. Specs may
//! use Python's `NaN`/`Infinity` literals. Optional fields added later
//! (`schedule`, `transforms`, and per step `loss` and `sample_grads`) keep
//! older specs valid.
//!
//! A step may carry, besides `grads`, the inputs some optimizers need
//! (see [`crate::Optimizer::needs`]): `"loss": 0.73` (AEGD), and
//! `"sample_grads": {"w": [[...sample 0...], [...sample 1...]], ...}`, for each
//! parameter a list of per-sample gradients (each flat or nested like `data`;
//! `p.grad_sample.tolist()` has this form), the same number of samples for
//! every parameter (DP-SGD). An optimizer that needs one of them requires it
//! on every step that has a gradient (a spec error names the step otherwise).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::algorithm::Float;
use crate::error::{Error, Result};
use crate::hyper::{value_as_f64, Hyper};
use crate::json;
use crate::kernel::Kernel;
use crate::optimizer::{GroupSpec, NonFinite, Optimizer, OptimizerSpec, StepInputs, StepOutcome};
use crate::real::Dtype;
use crate::registry;
use crate::schedule::Schedule;
use crate::tensor::{numel, GradSet, ParamInfo, ParamSet, SampleGrads};
use crate::transform::Transform;

/// A parsed, validated replay spec.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplaySpec {
    /// The optimizer's configuration.
    pub optimizer: OptimizerSpec,
    /// Element type.
    pub dtype: Dtype,
    /// Initial parameters: name, shape, row-major values.
    pub params: Vec<(String, Vec<usize>, Vec<f64>)>,
    /// Gradients of each step by parameter name; a missing name is frozen that step.
    pub steps: Vec<BTreeMap<String, Vec<f64>>>,
    /// The optional per-step inputs (`loss`, `sample_grads`), one entry per step.
    pub inputs: Vec<ReplayStepInputs>,
}

/// The optional inputs of one replay step besides its gradients.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayStepInputs {
    /// `steps[t].loss`.
    pub loss: Option<f64>,
    /// `steps[t].sample_grads`: per parameter, the per-sample gradients.
    pub sample_grads: BTreeMap<String, Vec<Vec<f64>>>,
}

/// How to run a replay.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Save after this many steps, drop the optimizer, load into a fresh one, continue.
    pub resume_at: Option<usize>,
    /// Where the resume state goes (default: a temporary file, removed afterwards).
    pub state_path: Option<PathBuf>,
    /// Kernel override.
    pub kernel: Option<Kernel>,
}

/// The parameters after every step.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOutput {
    /// Parameter names in spec order.
    pub names: Vec<String>,
    /// `trajectory[t][i]`: values of parameter `i` after step `t + 1`.
    pub trajectory: Vec<Vec<Vec<f64>>>,
    /// Steps skipped for non-finite gradients (policy `skip`).
    pub skipped_steps: u64,
    /// Set when a step failed (e.g. a non-finite gradient under policy `error`); the trajectory stops before it.
    pub error: Option<String>,
}

impl ReplayOutput {
    /// `{"trajectory": [{"w": [...], ...}, ...], "skipped_steps": N}` (plus `"error"` if a step failed).
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(64 + self.trajectory.len() * 64);
        s.push_str("{\"trajectory\": [");
        for (t, step) in self.trajectory.iter().enumerate() {
            if t > 0 {
                s.push_str(", ");
            }
            s.push('{');
            for (i, (name, vals)) in self.names.iter().zip(step).enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&Value::String(name.clone()).to_string());
                s.push_str(": [");
                for (j, &x) in vals.iter().enumerate() {
                    if j > 0 {
                        s.push_str(", ");
                    }
                    json::write_f64(&mut s, x);
                }
                s.push(']');
            }
            s.push('}');
        }
        s.push_str("], \"skipped_steps\": ");
        s.push_str(&self.skipped_steps.to_string());
        if let Some(e) = &self.error {
            s.push_str(", \"error\": ");
            s.push_str(&Value::String(e.clone()).to_string());
        }
        s.push_str("}\n");
        s
    }
}

fn spec_err(msg: impl Into<String>) -> Error {
    Error::Spec(msg.into())
}

/// Reads tensor data: a flat row-major array of numbers, a nested array (as
/// `tensor.tolist()` writes it, flattened row-major), or a bare number for a
/// one-element tensor.
fn numbers(v: &Value, what: &str) -> Result<Vec<f64>> {
    fn walk(v: &Value, what: &str, out: &mut Vec<f64>) -> Result<()> {
        match v {
            Value::Array(a) => a.iter().try_for_each(|x| walk(x, what, out)),
            x => {
                let i = out.len();
                out.push(value_as_f64(x).ok_or_else(|| spec_err(format!("{what}[{i}]: expected a number, got {x}")))?);
                Ok(())
            }
        }
    }
    let mut out = Vec::new();
    walk(v, what, &mut out)?;
    Ok(out)
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| spec_err(format!("{what}: expected a JSON object")))
}

fn check_keys(m: &Map<String, Value>, what: &str, known: &[&str]) -> Result<()> {
    for k in m.keys() {
        if !known.contains(&k.as_str()) {
            return Err(spec_err(format!(
                "{what}: unknown field `{k}` (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Top-level fields a spec may carry.
pub const SPEC_FIELDS: &[&str] = &[
    "optimizer",
    "dtype",
    "hyper",
    "groups",
    "params",
    "steps",
    "nonfinite",
    "schedule",
    "transforms",
    "name",
    "meta",
    "comment",
];

/// Parses and validates a spec (JSON text, Python's `NaN`/`Infinity` allowed).
pub fn parse_spec(text: &str) -> Result<ReplaySpec> {
    let root = json::parse(text).map_err(|e| spec_err(format!("not valid JSON: {e}")))?;
    let m = object(&root, "the top level")?;
    check_keys(m, "the top level", SPEC_FIELDS)?;
    let name = m
        .get("optimizer")
        .and_then(Value::as_str)
        .ok_or_else(|| spec_err("`optimizer`: required, a registry name such as \"adamw\""))?;
    registry::lookup(name)?;
    let dtype = match m.get("dtype") {
        None => Dtype::F64,
        Some(v) => v
            .as_str()
            .and_then(Dtype::parse)
            .ok_or_else(|| spec_err(format!("`dtype`: expected \"f32\" or \"f64\", got {v}")))?,
    };
    let hyper: Hyper = match m.get("hyper") {
        None | Some(Value::Null) => Hyper::new(),
        Some(v) => object(v, "`hyper`")?.clone().into_iter().collect(),
    };
    let mut spec = OptimizerSpec::new(name, &hyper);
    if let Some(v) = m.get("nonfinite") {
        spec.nonfinite = v.as_str().and_then(NonFinite::parse).ok_or_else(|| {
            spec_err(format!(
                "`nonfinite`: expected \"error\", \"skip\" or \"unchecked\", got {v}"
            ))
        })?;
    }
    if let Some(v) = m.get("schedule") {
        spec.schedule =
            serde_json::from_value::<Schedule>(v.clone()).map_err(|e| spec_err(format!("`schedule`: {e}")))?;
    }
    if let Some(v) = m.get("transforms") {
        spec.transforms =
            serde_json::from_value::<Vec<Transform>>(v.clone()).map_err(|e| spec_err(format!("`transforms`: {e}")))?;
    }

    let mut params = Vec::new();
    let plist = m
        .get("params")
        .and_then(Value::as_array)
        .ok_or_else(|| spec_err("`params`: required, an array of {\"name\", \"shape\", \"data\"}"))?;
    for (i, p) in plist.iter().enumerate() {
        let what = format!("params[{i}]");
        let pm = object(p, &what)?;
        check_keys(pm, &what, &["name", "shape", "data"])?;
        let pname = pm
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| spec_err(format!("{what}.name: required, a non-empty string")))?;
        let what = format!("params[{i}] (`{pname}`)");
        let shape: Vec<usize> = pm
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| spec_err(format!("{what}.shape: required, an array of sizes")))?
            .iter()
            .map(|d| {
                d.as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| spec_err(format!("{what}.shape: {d} is not a non-negative integer")))
            })
            .collect::<Result<_>>()?;
        let n = numel(&shape).ok_or_else(|| spec_err(format!("{what}.shape: {shape:?} overflows")))?;
        let data = numbers(
            pm.get("data")
                .ok_or_else(|| spec_err(format!("{what}.data: required")))?,
            &format!("{what}.data"),
        )?;
        if data.len() != n {
            return Err(spec_err(format!(
                "{what}.data: has {} values, shape {shape:?} needs {n}",
                data.len()
            )));
        }
        if params.iter().any(|(n, _, _): &(String, _, _)| n == pname) {
            return Err(spec_err(format!("{what}.name: duplicate parameter name")));
        }
        params.push((pname.to_string(), shape, data));
    }

    if let Some(v) = m.get("groups") {
        let arr = match v {
            Value::Null => Vec::new(),
            Value::Array(a) => a.clone(),
            _ => return Err(spec_err("`groups`: expected an array")),
        };
        for (i, g) in arr.iter().enumerate() {
            let what = format!("groups[{i}]");
            let gm = object(g, &what)?;
            let names: Vec<String> = gm
                .get("params")
                .and_then(Value::as_array)
                .ok_or_else(|| spec_err(format!("{what}.params: required, an array of parameter names")))?
                .iter()
                .map(|n| {
                    n.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| spec_err(format!("{what}.params: {n} is not a name")))
                })
                .collect::<Result<_>>()?;
            for n in &names {
                if !params.iter().any(|(p, _, _)| p == n) {
                    return Err(spec_err(format!("{what}.params: `{n}` is not a parameter")));
                }
            }
            let mut gh: Hyper = match gm.get("hyper") {
                None | Some(Value::Null) => Hyper::new(),
                Some(h) => object(h, &format!("{what}.hyper"))?.clone().into_iter().collect(),
            };
            // PyTorch's param_group style (`{"params": [...], "lr": 0.1}`) is accepted too:
            // other keys are hyperparameter overrides, checked by the optimizer like `hyper`.
            for (k, v) in gm.iter().filter(|(k, _)| *k != "params" && *k != "hyper") {
                if gh.insert(k.clone(), v.clone()).is_some() {
                    return Err(spec_err(format!(
                        "{what}: `{k}` is given twice (inline and in `hyper`)"
                    )));
                }
            }
            spec.groups.push(GroupSpec::names(names, gh));
        }
    }

    let slist = m
        .get("steps")
        .and_then(Value::as_array)
        .ok_or_else(|| spec_err("`steps`: required, an array of {\"grads\": {...}}"))?;
    let mut steps = Vec::with_capacity(slist.len());
    let mut inputs = Vec::with_capacity(slist.len());
    for (t, s) in slist.iter().enumerate() {
        let what = format!("steps[{t}]");
        let sm = object(s, &what)?;
        check_keys(sm, &what, &["grads", "loss", "sample_grads"])?;
        let mut extra = ReplayStepInputs::default();
        match sm.get("loss") {
            None | Some(Value::Null) => {}
            Some(v) => {
                extra.loss =
                    Some(value_as_f64(v).ok_or_else(|| spec_err(format!("{what}.loss: expected a number, got {v}")))?)
            }
        }
        if let Some(v) = sm.get("sample_grads").filter(|v| !v.is_null()) {
            let sw = format!("{what}.sample_grads");
            let mut count: Option<(usize, String)> = None;
            for (name, list) in object(v, &sw)? {
                let Some((_, _, data)) = params.iter().find(|(p, _, _)| p == name) else {
                    return Err(spec_err(format!("{sw}: `{name}` is not a parameter")));
                };
                if list.is_null() {
                    continue;
                }
                let arr = list
                    .as_array()
                    .ok_or_else(|| spec_err(format!("{sw}.{name}: expected an array of per-sample gradients")))?;
                let mut samples = Vec::with_capacity(arr.len());
                for (k, x) in arr.iter().enumerate() {
                    let x = numbers(x, &format!("{sw}.{name}[{k}]"))?;
                    if x.len() != data.len() {
                        return Err(spec_err(format!(
                            "{sw}.{name}[{k}]: has {} values, the parameter has {}",
                            x.len(),
                            data.len()
                        )));
                    }
                    samples.push(x);
                }
                match &count {
                    Some((n, first)) if *n != samples.len() => {
                        return Err(spec_err(format!(
                            "{sw}.{name}: {} samples, but `{first}` has {n}",
                            samples.len()
                        )))
                    }
                    None => count = Some((samples.len(), name.clone())),
                    _ => {}
                }
                extra.sample_grads.insert(name.clone(), samples);
            }
        }
        inputs.push(extra);
        let grads = match sm.get("grads") {
            None | Some(Value::Null) => Map::new(),
            Some(g) => object(g, &format!("{what}.grads"))?.clone(),
        };
        let mut step = BTreeMap::new();
        for (name, g) in &grads {
            let Some((_, _, data)) = params.iter().find(|(p, _, _)| p == name) else {
                return Err(spec_err(format!("{what}.grads: `{name}` is not a parameter")));
            };
            if g.is_null() {
                continue; // `null` is PyTorch's `p.grad = None`: frozen this step
            }
            let g = numbers(g, &format!("{what}.grads.{name}"))?;
            if g.len() != data.len() {
                return Err(spec_err(format!(
                    "{what}.grads.{name}: has {} values, the parameter has {}",
                    g.len(),
                    data.len()
                )));
            }
            step.insert(name.clone(), g);
        }
        steps.push(step);
    }

    let rs = ReplaySpec {
        optimizer: spec,
        dtype,
        params,
        steps,
        inputs,
    };
    // Build once to surface hyperparameter errors before any work.
    let infos: Vec<ParamInfo> = rs
        .params
        .iter()
        .map(|(n, s, _)| ParamInfo {
            name: n.clone(),
            shape: s.clone(),
        })
        .collect();
    let needs = Optimizer::<f64>::from_spec(rs.optimizer.clone(), &infos)?.needs();
    // An input the optimizer needs must be on every step that updates something.
    for (t, (step, extra)) in rs.steps.iter().zip(&rs.inputs).enumerate() {
        if step.is_empty() {
            continue;
        }
        if needs.loss && extra.loss.is_none() {
            return Err(spec_err(format!("steps[{t}].loss: required by `{name}` on every step")));
        }
        if needs.sample_grads {
            if let Some(p) = step.keys().find(|p| !extra.sample_grads.contains_key(*p)) {
                return Err(spec_err(format!(
                    "steps[{t}].sample_grads.{p}: required by `{name}` for every parameter with a gradient"
                )));
            }
        }
    }
    Ok(rs)
}

/// Runs a replay.
pub fn replay(spec: &ReplaySpec, opts: &ReplayOptions) -> Result<ReplayOutput> {
    match spec.dtype {
        Dtype::F32 => run::<f32>(spec, opts),
        Dtype::F64 => run::<f64>(spec, opts),
    }
}

fn run<F: Float>(spec: &ReplaySpec, opts: &ReplayOptions) -> Result<ReplayOutput> {
    let mut ospec = spec.optimizer.clone();
    if let Some(k) = opts.kernel {
        ospec.kernel = k;
    }
    let mut params = ParamSet::<F>::new();
    for (n, s, d) in &spec.params {
        params.push(n.clone(), s, d.iter().map(|&x| F::from_f64(x)).collect())?;
    }
    if let Some(k) = opts.resume_at {
        if k > spec.steps.len() {
            return Err(spec_err(format!(
                "--resume-at {k}: the spec has only {} steps",
                spec.steps.len()
            )));
        }
    }
    let mut opt = ospec.clone().build(&params)?;
    let mut out = ReplayOutput {
        names: spec.params.iter().map(|(n, _, _)| n.clone()).collect(),
        trajectory: Vec::with_capacity(spec.steps.len()),
        skipped_steps: 0,
        error: None,
    };
    let mut grads = GradSet::<F>::new();
    for (t, step) in spec.steps.iter().enumerate() {
        if opts.resume_at == Some(t) {
            opt = resume(opt, &ospec, &params, opts)?;
        }
        grads.clear();
        for (n, g) in step {
            grads.insert(n.clone(), g.iter().map(|&x| F::from_f64(x)).collect());
        }
        let extra = spec.inputs.get(t).cloned().unwrap_or_default();
        let mut sample_grads = SampleGrads::<F>::new();
        for (n, list) in &extra.sample_grads {
            sample_grads.insert(
                n.clone(),
                list.iter()
                    .map(|x| x.iter().map(|&v| F::from_f64(v)).collect())
                    .collect(),
            );
        }
        let inputs = StepInputs {
            loss: extra.loss,
            sample_grads: (!extra.sample_grads.is_empty()).then_some(&sample_grads),
        };
        match opt.step_with(&mut params, &mut grads, inputs) {
            Ok(StepOutcome::Applied | StepOutcome::Skipped) => {}
            Err(e) => {
                out.error = Some(format!("step {}: {e}", t + 1));
                break;
            }
        }
        out.trajectory.push(
            params
                .iter()
                .map(|p| p.data.iter().map(|x| x.to_f64()).collect())
                .collect(),
        );
    }
    if opts.resume_at == Some(spec.steps.len()) && out.error.is_none() {
        opt = resume(opt, &ospec, &params, opts)?;
    }
    out.skipped_steps = opt.skipped_steps();
    Ok(out)
}

fn resume<F: Float>(
    opt: Optimizer<F>,
    ospec: &OptimizerSpec,
    params: &ParamSet<F>,
    opts: &ReplayOptions,
) -> Result<Optimizer<F>> {
    let (path, temporary) = match &opts.state_path {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!("steepest-replay-{}-{:p}.safetensors", std::process::id(), &opt)),
            true,
        ),
    };
    opt.save_state(&path)?;
    drop(opt);
    let mut fresh = ospec.clone().build(params)?;
    let loaded = fresh.load_state(&path);
    if temporary {
        let _ = std::fs::remove_file(&path);
    }
    loaded?;
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_style_group_overrides() {
        let spec = r#"{"optimizer": "sgd", "hyper": {"lr": 0.5},
            "groups": [{"params": ["b"], "lr": 0.25}],
            "params": [{"name": "w", "shape": [1], "data": [1]}, {"name": "b", "shape": [1], "data": [1]}],
            "steps": [{"grads": {"w": [1], "b": [1]}}]}"#;
        let out = replay(&parse_spec(spec).unwrap(), &ReplayOptions::default()).unwrap();
        assert_eq!(out.trajectory[0], vec![vec![0.5], vec![0.75]]);
        let bad = spec.replace("\"lr\": 0.25", "\"lr\": 0.25, \"momentun\": 0.9");
        let e = parse_spec(&bad).unwrap_err().to_string();
        assert!(e.contains("momentun") && e.contains("group 1"), "{e}");
    }

    #[test]
    fn nested_scalar_and_null_data_forms() {
        let spec = r#"{"optimizer": "sgd", "hyper": {"lr": 0.5},
            "params": [{"name": "w", "shape": [2, 2], "data": [[1, 2], [3, 4]]},
                       {"name": "s", "shape": [], "data": 1.0}],
            "steps": [{"grads": {"w": [[1, 1], [1, 1]], "s": null}}, {"grads": {"s": 2}}]}"#;
        let s = parse_spec(spec).unwrap();
        assert_eq!(s.params[0].2, vec![1.0, 2.0, 3.0, 4.0]);
        assert!(!s.steps[0].contains_key("s"), "null is a frozen parameter");
        let out = replay(&s, &ReplayOptions::default()).unwrap();
        assert_eq!(out.trajectory[0][0], vec![0.5, 1.5, 2.5, 3.5]);
        assert_eq!(out.trajectory[1][1], vec![0.0]);
        let bad = r#"{"optimizer": "sgd", "params": [{"name": "w", "shape": [3], "data": [[1, 2]]}], "steps": []}"#;
        let e = parse_spec(bad).unwrap_err().to_string();
        assert!(e.contains("params[0] (`w`).data") && e.contains("needs 3"), "{e}");
    }
}
