//! Named, shaped parameters stored in flat, contiguous, row-major buffers, and
//! their gradients.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::real::Real;

/// Number of elements of `shape` (1 for a scalar `[]`); `None` on overflow.
pub fn numel(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// One named, shaped parameter tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Param<F> {
    /// Unique name (state is keyed by it).
    pub name: String,
    /// Shape, row-major; `[]` is a scalar.
    pub shape: Vec<usize>,
    /// `numel(shape)` values.
    pub data: Vec<F>,
}

/// Name and shape of a parameter, without its data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamInfo {
    /// Parameter name.
    pub name: String,
    /// Parameter shape.
    pub shape: Vec<usize>,
}

/// An ordered set of uniquely named parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamSet<F> {
    params: Vec<Param<F>>,
    index: HashMap<String, usize>,
}

impl<F: Real> ParamSet<F> {
    /// An empty set.
    pub fn new() -> Self {
        ParamSet {
            params: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Adds a parameter; fails on an empty or duplicate name or a length that is not `numel(shape)`.
    pub fn push(&mut self, name: impl Into<String>, shape: &[usize], data: Vec<F>) -> Result<&mut Self> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::param("", "parameter names must be non-empty"));
        }
        if self.index.contains_key(&name) {
            return Err(Error::param(&name, "duplicate parameter name"));
        }
        let n = numel(shape).ok_or_else(|| Error::param(&name, format!("shape {shape:?} overflows")))?;
        if n != data.len() {
            return Err(Error::param(
                &name,
                format!("shape {shape:?} needs {n} values, got {}", data.len()),
            ));
        }
        self.index.insert(name.clone(), self.params.len());
        self.params.push(Param {
            name,
            shape: shape.to_vec(),
            // Large parameters move to huge pages once (see `crate::mem`).
            data: crate::mem::rehome(data),
        });
        Ok(self)
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// `true` if there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Looks a parameter up by name.
    pub fn get(&self, name: &str) -> Option<&Param<F>> {
        self.index.get(name).map(|&i| &self.params[i])
    }

    /// Mutable access to a parameter's values by name.
    pub fn data_mut(&mut self, name: &str) -> Option<&mut [F]> {
        let i = *self.index.get(name)?;
        Some(&mut self.params[i].data)
    }

    /// Position of a parameter.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Iterates in insertion order.
    pub fn iter(&self) -> std::slice::Iter<'_, Param<F>> {
        self.params.iter()
    }

    /// Mutable iteration in insertion order (names and shapes stay fixed).
    pub fn params_mut(&mut self) -> &mut [Param<F>] {
        &mut self.params
    }

    /// Names and shapes.
    pub fn infos(&self) -> Vec<ParamInfo> {
        self.params
            .iter()
            .map(|p| ParamInfo {
                name: p.name.clone(),
                shape: p.shape.clone(),
            })
            .collect()
    }

    /// Total number of scalar values.
    pub fn total_numel(&self) -> usize {
        self.params.iter().map(|p| p.data.len()).sum()
    }
}

/// Gradients keyed by parameter name. A parameter without an entry is frozen for that step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GradSet<F> {
    map: HashMap<String, Vec<F>>,
}

impl<F: Real> GradSet<F> {
    /// An empty set (every parameter frozen).
    pub fn new() -> Self {
        GradSet { map: HashMap::new() }
    }

    /// Sets the gradient of `name` (replacing any previous one).
    pub fn insert(&mut self, name: impl Into<String>, grad: Vec<F>) -> &mut Self {
        self.map.insert(name.into(), grad);
        self
    }

    /// The gradient of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&[F]> {
        self.map.get(name).map(Vec::as_slice)
    }

    /// Mutable gradient of `name`, if any.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Vec<F>> {
        self.map.get_mut(name)
    }

    /// Removes the gradient of `name`.
    pub fn remove(&mut self, name: &str) -> Option<Vec<F>> {
        self.map.remove(name)
    }

    /// Names that have a gradient (arbitrary order).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Number of gradients.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// `true` if no parameter has a gradient.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes all gradients, keeping allocations for reuse.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// Per-sample (or per-micro-batch) gradients keyed by parameter name: for each
/// parameter, one parameter-length gradient per sample, every parameter with
/// the same number of samples. Given to [`crate::Optimizer::step_with`] for
/// algorithms that need more than the mean gradient (DP-SGD, GSNR).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SampleGrads<F> {
    map: HashMap<String, Vec<Vec<F>>>,
}

impl<F: Real> SampleGrads<F> {
    /// An empty set.
    pub fn new() -> Self {
        SampleGrads { map: HashMap::new() }
    }

    /// Sets the per-sample gradients of `name` (replacing any previous ones).
    pub fn insert(&mut self, name: impl Into<String>, samples: Vec<Vec<F>>) -> &mut Self {
        self.map.insert(name.into(), samples);
        self
    }

    /// The per-sample gradients of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&[Vec<F>]> {
        self.map.get(name).map(Vec::as_slice)
    }

    /// Names that have per-sample gradients (arbitrary order).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Number of parameters with per-sample gradients.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// `true` if no parameter has per-sample gradients.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
