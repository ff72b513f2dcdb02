//! Checkpoints of the committed state.
//!
//! Layout under the checkpoint directory:
//! - `step-{t}/model.safetensors`: the committed model (f64 tensors named as
//!   the parameters; metadata `format = steepest.dist-checkpoint`, `step`,
//!   `algo`, and a checksum of every tensor from [`steepest::state::checksum`]);
//! - `step-{t}/rank{r}-{name}.safetensors`: each rank's optimizer states in
//!   the foundation's optimizer-state format ([`steepest::state`]);
//! - `LATEST`: the step of the last complete checkpoint, written (by rename)
//!   only after every rank wrote its files and a barrier, so a crash while
//!   writing leaves the previous checkpoint in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use steepest::state::checksum;
use steepest::ParamSet;

use crate::algo::DistAlgorithm;
use crate::collective::Collective;
use crate::error::{Error, Result};

/// A loaded checkpoint: the model, this rank's optimizer states by name, the step.
pub type Loaded = (ParamSet<f64>, BTreeMap<String, Vec<u8>>, u64);

/// Value of the `format` metadata key.
pub const FORMAT: &str = "steepest.dist-checkpoint";

fn step_dir(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("step-{step}"))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The model as safetensors bytes with metadata and checksums.
pub fn model_to_bytes(model: &ParamSet<f64>, algo: &str, step: u64) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = model
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.shape.clone(),
                crate::collective::f64s_to_bytes(&p.data),
            )
        })
        .collect();
    let mut sums = serde_json::Map::new();
    for (n, _, b) in &bytes {
        sums.insert(n.clone(), serde_json::Value::String(format!("{:016x}", checksum(b))));
    }
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("step".to_string(), step.to_string());
    meta.insert("algo".to_string(), algo.to_string());
    meta.insert("checksums".to_string(), serde_json::Value::Object(sums).to_string());
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F64, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Transport(format!("checkpoint tensor {n}: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, &Some(meta)).map_err(|e| Error::Transport(format!("checkpoint: {e}")))
}

/// Reads a model file, checking format, names, shapes and checksums against `like`.
pub fn model_from_bytes(bytes: &[u8], like: &ParamSet<f64>) -> Result<(ParamSet<f64>, u64)> {
    let bad = |m: String| Error::config("checkpoint", m);
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad("not a steepest distributed checkpoint".into()));
    }
    let step: u64 = meta
        .get("step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no step in the checkpoint".into()))?;
    let sums: serde_json::Map<String, serde_json::Value> = meta
        .get("checksums")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| bad("no checksums in the checkpoint".into()))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("unreadable checkpoint: {e}")))?;
    let mut out = ParamSet::new();
    for p in like.iter() {
        let t = st
            .tensor(&p.name)
            .map_err(|_| bad(format!("parameter {} missing", p.name)))?;
        if t.shape() != p.shape.as_slice() || t.dtype() != Dtype::F64 {
            return Err(bad(format!("parameter {} has another shape or dtype", p.name)));
        }
        let want = sums.get(&p.name).and_then(|v| v.as_str()).unwrap_or("");
        if format!("{:016x}", checksum(t.data())) != want {
            return Err(bad(format!("parameter {} fails its checksum", p.name)));
        }
        out.push(p.name.clone(), &p.shape, crate::collective::bytes_to_f64s(t.data())?)?;
    }
    Ok((out, step))
}

/// Saves the committed state of every member (call on every member at the
/// same step, right after a committed synchronization).
pub fn save(dir: &Path, comm: &mut dyn Collective, algo: &dyn DistAlgorithm) -> Result<()> {
    let step = algo.steps();
    let sd = step_dir(dir, step);
    std::fs::create_dir_all(&sd)?;
    let r = comm.world_rank();
    for (name, opt) in algo.optimizers() {
        write_atomic(&sd.join(format!("rank{r}-{name}.safetensors")), &opt.state_to_bytes()?)?;
    }
    if comm.rank() == 0 {
        write_atomic(
            &sd.join("model.safetensors"),
            &model_to_bytes(algo.model(), algo.name(), step)?,
        )?;
    }
    comm.barrier()?;
    if comm.rank() == 0 {
        write_atomic(&dir.join("LATEST"), step.to_string().as_bytes())?;
    }
    comm.barrier()
}

/// Loads the last complete checkpoint for world rank `rank`: the model, this
/// rank's optimizer states by name, and the step.
pub fn load(dir: &Path, rank: usize, like: &ParamSet<f64>) -> Result<Loaded> {
    let latest = std::fs::read_to_string(dir.join("LATEST")).map_err(|e| {
        Error::config(
            "checkpoint",
            format!("no complete checkpoint in {}: {e}", dir.display()),
        )
    })?;
    let step: u64 = latest
        .trim()
        .parse()
        .map_err(|_| Error::config("checkpoint", format!("LATEST holds {latest:?}")))?;
    let sd = step_dir(dir, step);
    let (model, s) = model_from_bytes(&std::fs::read(sd.join("model.safetensors"))?, like)?;
    if s != step {
        return Err(Error::config(
            "checkpoint",
            format!("model is from step {s}, LATEST says {step}"),
        ));
    }
    let mut states = BTreeMap::new();
    let prefix = format!("rank{rank}-");
    for e in std::fs::read_dir(&sd)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(rest) = name.strip_prefix(&prefix) {
            if let Some(opt) = rest.strip_suffix(".safetensors") {
                states.insert(opt.to_string(), std::fs::read(e.path())?);
            }
        }
    }
    Ok((model, states, step))
}
