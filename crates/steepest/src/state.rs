//! Optimizer state files: safetensors for the tensors, plus metadata.
//!
//! Tensors are named `"{param}/{slot}"` (e.g. `"w/exp_avg"`) and have the
//! parameter's shape and dtype, so Python's `safetensors` opens the file as
//! is. The `__metadata__` map holds (all values are strings, JSON where
//! structured):
//!
//! | key | value |
//! |---|---|
//! | `format` | `steepest.optimizer-state` |
//! | `format_version` | `1` |
//! | `optimizer` | registry name |
//! | `dtype` | `f32` or `f64` |
//! | `hyper` | base hyperparameters, defaults filled in (JSON) |
//! | `groups` | `[{"select": ..., "hyper": {...}}]` as configured (JSON) |
//! | `params` | `[{"name", "shape", "group", "step"}]` in registration order (JSON) |
//! | `steps`, `skipped_steps` | counters |
//! | `schedule`, `transforms`, `nonfinite` | the rest of the configuration (JSON) |
//! | `checksums` | `{"tensor name": "16 hex digits"}` over each tensor's bytes |
//! | `group_hypers` | every group's full hyperparameters (JSON list, base group first) |
//! | `meta_checksum` | checksum over all other metadata entries |
//!
//! Loading checks everything before it changes anything: a truncated or
//! corrupted file (tensors or metadata), another optimizer, another dtype,
//! other parameter names, shapes or group assignment, state slots that do not
//! fit the configuration, or a configuration that gives the state another
//! meaning (any hyperparameter but the learning rates: `lr`, `final_lr`,
//! `adamw_lr`, ... may change on resume) are errors and leave the optimizer as
//! it was. Files are byte-for-byte deterministic: the same state gives the
//! same bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype as StDtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::algorithm::Float;
use crate::error::{Error, Result};
use crate::hyper::Hyper;
use crate::optimizer::{Optimizer, ParamState};
use crate::real::Dtype;

/// Value of the `format` metadata key.
pub const FORMAT: &str = "steepest.optimizer-state";
/// Current `format_version`.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct ParamMeta {
    name: String,
    shape: Vec<usize>,
    group: usize,
    step: u64,
}

fn st_dtype(d: Dtype) -> StDtype {
    match d {
        Dtype::F32 => StDtype::F32,
        Dtype::F64 => StDtype::F64,
    }
}

/// 64-bit checksum of a byte string (word-wise multiply–rotate mix; detects
/// flipped, swapped and truncated data, not adversarial edits).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(0xFF51_AFD7_ED55_8CCD).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0xC4CE_B9FE_1A85_EC53).rotate_left(29);
    }
    h ^ (h >> 31)
}

/// Writes the safetensors layout (8-byte little-endian header length, JSON
/// header, tensor bytes) with keys in sorted order, so the same state always
/// gives the same bytes. The header is padded with spaces to a multiple of 8.
fn write_safetensors(
    dtype: Dtype,
    meta: &BTreeMap<String, String>,
    blobs: &[(String, Vec<usize>, Vec<u8>)],
) -> Vec<u8> {
    let mut order: Vec<usize> = (0..blobs.len()).collect();
    order.sort_by(|&a, &b| blobs[a].0.cmp(&blobs[b].0));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::to_value(meta).unwrap_or_default());
    let dt = match dtype {
        Dtype::F32 => "F32",
        Dtype::F64 => "F64",
    };
    let mut offset = 0usize;
    for &i in &order {
        let (name, shape, bytes) = &blobs[i];
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dt, "shape": shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
    }
    // serde_json's Map is ordered by key (no `preserve_order` feature), so this is deterministic.
    let mut text = serde_json::Value::Object(header).to_string().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + offset);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    for &i in &order {
        out.extend_from_slice(&blobs[i].2);
    }
    out
}

/// Checksum of every metadata entry but `meta_checksum` itself, in key order.
fn meta_checksum<'a>(meta: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut entries: Vec<(&String, &String)> = meta.into_iter().filter(|(k, _)| *k != "meta_checksum").collect();
    entries.sort();
    let mut bytes = Vec::new();
    for (k, v) in entries {
        bytes.extend_from_slice(k.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0);
    }
    format!("{:016x}", checksum(&bytes))
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn bad(msg: impl Into<String>) -> Error {
    Error::State(msg.into())
}

impl<F: Float> Optimizer<F> {
    /// Serializes the whole state (tensors and metadata) to safetensors bytes.
    pub fn state_to_bytes(&self) -> Result<Vec<u8>> {
        let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut sums = BTreeMap::new();
        let mut metas = Vec::new();
        for r in &self.params {
            let st = self.state.get(&r.info.name);
            metas.push(ParamMeta {
                name: r.info.name.clone(),
                shape: r.info.shape.clone(),
                group: r.group,
                step: st.map_or(0, |s| s.step),
            });
            if let Some(st) = st {
                let slots = self.algs[r.group].slots(&r.info);
                for (slot, data) in slots.iter().zip(&st.slots) {
                    let key = format!("{}/{}", r.info.name, slot.name);
                    let mut bytes = Vec::new();
                    F::slice_to_le_bytes(data, &mut bytes);
                    sums.insert(key.clone(), format!("{:016x}", checksum(&bytes)));
                    blobs.push((key, slot.shape(&r.info.shape), bytes));
                }
            }
        }
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
        meta.insert("optimizer".to_string(), self.spec.name.clone());
        meta.insert("dtype".to_string(), F::DTYPE.name().to_string());
        meta.insert("hyper".to_string(), to_json(&self.algs[0].hyper()));
        meta.insert("groups".to_string(), to_json(&self.spec.groups));
        meta.insert("params".to_string(), to_json(&metas));
        meta.insert("steps".to_string(), self.steps.to_string());
        meta.insert("skipped_steps".to_string(), self.skipped.to_string());
        meta.insert("schedule".to_string(), to_json(&self.spec.schedule));
        meta.insert("transforms".to_string(), to_json(&self.spec.transforms));
        meta.insert("nonfinite".to_string(), self.spec.nonfinite.name().to_string());
        meta.insert("checksums".to_string(), to_json(&sums));
        let group_hypers: Vec<Hyper> = self.algs.iter().map(|a| a.hyper()).collect();
        meta.insert("group_hypers".to_string(), to_json(&group_hypers));
        let mc = meta_checksum(&meta);
        meta.insert("meta_checksum".to_string(), mc);
        Ok(write_safetensors(F::DTYPE, &meta, &blobs))
    }

    /// Writes the state to `path` (via a temporary file and a rename, so a crash never leaves half a file).
    pub fn save_state(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.state_to_bytes()?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, &bytes).map_err(|e| Error::io(path, e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
    }

    /// Loads state written by [`Optimizer::save_state`] into this optimizer.
    pub fn load_state(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.load_state_bytes(&bytes)
    }

    /// Loads state from safetensors bytes; on any error the optimizer is unchanged.
    pub fn load_state_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a readable safetensors file ({e})")))?;
        let (_, md) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("unreadable header ({e})")))?;
        let meta = md
            .metadata()
            .as_ref()
            .ok_or_else(|| bad("no metadata: not a steepest state file"))?;
        let get = |k: &str| meta.get(k).ok_or_else(|| bad(format!("metadata key `{k}` missing")));
        if *get("meta_checksum")? != meta_checksum(meta.iter()) {
            return Err(bad("metadata is corrupted (checksum mismatch)"));
        }
        if get("format")? != FORMAT {
            return Err(bad(format!("format is `{}`, expected `{FORMAT}`", get("format")?)));
        }
        let version: u32 = get("format_version")?
            .parse()
            .map_err(|_| bad("format_version is not a number"))?;
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format_version {version} is not supported (this build reads {FORMAT_VERSION})"
            )));
        }
        let opt = get("optimizer")?;
        if *opt != self.spec.name {
            return Err(bad(format!(
                "the file holds `{opt}` state; this optimizer is `{}`",
                self.spec.name
            )));
        }
        let dtype = get("dtype")?;
        if dtype != F::DTYPE.name() {
            return Err(bad(format!(
                "the file holds {dtype} state; this optimizer runs in {}",
                F::DTYPE
            )));
        }
        let metas: Vec<ParamMeta> =
            serde_json::from_str(get("params")?).map_err(|e| bad(format!("metadata `params` is malformed ({e})")))?;
        let sums: BTreeMap<String, String> = serde_json::from_str(get("checksums")?)
            .map_err(|e| bad(format!("metadata `checksums` is malformed ({e})")))?;
        let parse_u64 = |k: &str| -> Result<u64> {
            get(k)?
                .parse()
                .map_err(|_| bad(format!("metadata `{k}` is not a number")))
        };
        let (steps, skipped) = (parse_u64("steps")?, parse_u64("skipped_steps")?);
        if steps > 1 << 62 || skipped > 1 << 62 {
            return Err(bad(format!("step counters out of range ({steps}, {skipped})")));
        }
        if let Some(m) = metas.iter().find(|m| m.step > steps) {
            return Err(bad(format!(
                "parameter `{}` has {} steps but the optimizer only {steps}",
                m.name, m.step
            )));
        }
        // The configuration that gives the state its meaning must match; learning
        // rates (`lr`, `final_lr`, `adamw_lr`, ...) may change on resume.
        let saved: Vec<Hyper> = serde_json::from_str(get("group_hypers")?)
            .map_err(|e| bad(format!("metadata `group_hypers` is malformed ({e})")))?;
        if saved.len() != self.algs.len() {
            return Err(bad(format!(
                "the file has {} parameter groups, this optimizer {}",
                saved.len(),
                self.algs.len()
            )));
        }
        for (g, (saved, alg)) in saved.iter().zip(&self.algs).enumerate() {
            let now = alg.hyper();
            let keys: std::collections::BTreeSet<&String> = saved.keys().chain(now.keys()).collect();
            for k in keys.into_iter().filter(|k| !k.ends_with("lr")) {
                if saved.get(k) != now.get(k) {
                    let show = |v: Option<&serde_json::Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
                    return Err(bad(format!(
                        "group {g}: the state was saved with `{k}` = {}, this optimizer has {}",
                        show(saved.get(k)),
                        show(now.get(k))
                    )));
                }
            }
        }

        // Same parameter names and shapes, in any order.
        let mut in_file: HashMap<&str, &ParamMeta> = HashMap::new();
        for m in &metas {
            if in_file.insert(&m.name, m).is_some() {
                return Err(bad(format!("parameter `{}` appears twice", m.name)));
            }
        }
        for r in &self.params {
            match in_file.get(r.info.name.as_str()) {
                None => return Err(bad(format!("the file has no parameter `{}`", r.info.name))),
                Some(m) if m.group != r.group => {
                    return Err(bad(format!(
                        "parameter `{}` is in group {} in the file, in group {} here",
                        r.info.name, m.group, r.group
                    )))
                }
                Some(m) if m.shape != r.info.shape => {
                    return Err(bad(format!(
                        "parameter `{}` has shape {:?} in the file, {:?} here",
                        r.info.name, m.shape, r.info.shape
                    )))
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = metas.iter().find(|m| !self.index.contains_key(&m.name)) {
            return Err(bad(format!(
                "the file has parameter `{}`, which this optimizer does not",
                extra.name
            )));
        }

        let mut state = BTreeMap::new();
        let mut used = 0usize;
        for r in &self.params {
            let m = in_file[r.info.name.as_str()];
            if m.step == 0 {
                continue;
            }
            let n = crate::tensor::numel(&r.info.shape).unwrap_or(0);
            let mut slots = Vec::new();
            for slot in self.algs[r.group].slots(&r.info) {
                let shape = slot.shape(&r.info.shape);
                let n = slot.len(n);
                let key = format!("{}/{}", r.info.name, slot.name);
                let view = st.tensor(&key).map_err(|_| {
                    bad(format!(
                        "tensor `{key}` missing (the file's configuration differs from this optimizer's?)"
                    ))
                })?;
                if view.dtype() != st_dtype(F::DTYPE) || view.shape() != shape.as_slice() {
                    return Err(bad(format!(
                        "tensor `{key}` has dtype {:?} shape {:?}",
                        view.dtype(),
                        view.shape()
                    )));
                }
                let want = sums.get(&key).ok_or_else(|| bad(format!("no checksum for `{key}`")))?;
                if format!("{:016x}", checksum(view.data())) != *want {
                    return Err(bad(format!("tensor `{key}` is corrupted (checksum mismatch)")));
                }
                let data = F::vec_from_le_bytes(view.data())
                    .filter(|d| d.len() == n)
                    .ok_or_else(|| bad(format!("tensor `{key}` has the wrong length")))?;
                slots.push(crate::mem::rehome(data));
                used += 1;
            }
            state.insert(
                r.info.name.clone(),
                ParamState {
                    step: m.step,
                    slots,
                    work: Default::default(),
                },
            );
        }
        if used != st.len() {
            return Err(bad(format!(
                "the file has {} tensors, this optimizer's configuration needs {used}",
                st.len()
            )));
        }
        self.state = state;
        self.steps = steps;
        self.skipped = skipped;
        Ok(())
    }
}

/// Reads just the metadata map of a state file (for tools and error messages).
pub fn read_metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, md) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("unreadable header ({e})")))?;
    Ok(md.metadata().clone().unwrap_or_default())
}

/// Helper for tests and tools: the dtype a file declares.
pub fn file_dtype(bytes: &[u8]) -> Result<Dtype> {
    let m = read_metadata(bytes)?;
    m.get("dtype")
        .and_then(|d| Dtype::parse(d))
        .ok_or_else(|| bad("metadata `dtype` missing or unknown"))
}
