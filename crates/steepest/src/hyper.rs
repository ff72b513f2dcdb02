//! Hyperparameters as a name → JSON value map, and a typed, validating reader.
//!
//! Every optimizer parses its configuration from a [`Hyper`] with a [`HyperReader`]:
//! each key is read with its type and default, range checks produce
//! [`Error::InvalidHyper`] naming the field, and [`HyperReader::finish`] rejects
//! keys the optimizer does not know. Names follow PyTorch where PyTorch has the
//! optimizer (`lr`, `betas`, `eps`, `weight_decay`, `momentum`, ...).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::{Error, Result};

/// Hyperparameters: name → JSON value (numbers, booleans, `[b1, b2]` pairs, strings).
pub type Hyper = BTreeMap<String, Value>;

/// PyTorch's implementation-selection flags: accepted (as booleans or null) and
/// ignored, because they do not change the arithmetic.
pub const IGNORED_TORCH_FLAGS: &[&str] = &["foreach", "fused", "capturable", "differentiable"];

/// Builds a [`Hyper`] from a JSON object literal; `None` if `text` is not a JSON object.
pub fn hyper_from_json(text: &str) -> Option<Hyper> {
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Object(m) => Some(m.into_iter().collect()),
        _ => None,
    }
}

/// Reads a number that may be written as a JSON number or as one of the strings
/// `"NaN"`, `"Infinity"`, `"-Infinity"` (how [`crate::json`] encodes non-finite values).
pub fn value_as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" | "+inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Typed reader over a [`Hyper`] for one optimizer; tracks which keys were used.
pub struct HyperReader<'a> {
    owner: &'a str,
    hyper: &'a Hyper,
    used: BTreeSet<String>,
}

impl<'a> HyperReader<'a> {
    /// Starts reading `hyper` for the optimizer (or transform) named `owner`.
    pub fn new(owner: &'a str, hyper: &'a Hyper) -> Self {
        HyperReader {
            owner,
            hyper,
            used: BTreeSet::new(),
        }
    }

    fn err(&self, field: &str, message: impl Into<String>) -> Error {
        Error::hyper(self.owner, field, message)
    }

    fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.used.insert(key.to_string());
        match self.hyper.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// A real number (finite or not: range checks are the caller's).
    pub fn f64(&mut self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => value_as_f64(v).ok_or_else(|| self.err(key, format!("expected a number, got {v}"))),
        }
    }

    /// A boolean.
    pub fn bool(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(key, format!("expected true or false, got {v}"))),
        }
    }

    /// A non-negative integer.
    pub fn usize(&mut self, key: &str, default: usize) -> Result<usize> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) => usize::try_from(n).map_err(|_| self.err(key, "too large")),
                None => match value_as_f64(v) {
                    Some(x) if x >= 0.0 && x.fract() == 0.0 && x < 9.0e15 => Ok(x as usize),
                    _ => Err(self.err(key, format!("expected a non-negative integer, got {v}"))),
                },
            },
        }
    }

    /// A pair of numbers written `[a, b]` (PyTorch's `betas`).
    pub fn pair(&mut self, key: &str, default: (f64, f64)) -> Result<(f64, f64)> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Array(a)) if a.len() == 2 => {
                let x = value_as_f64(&a[0]);
                let y = value_as_f64(&a[1]);
                match (x, y) {
                    (Some(x), Some(y)) => Ok((x, y)),
                    _ => Err(self.err(key, format!("expected two numbers, got {}", Value::Array(a.clone())))),
                }
            }
            Some(v) => Err(self.err(key, format!("expected a pair of numbers [a, b], got {v}"))),
        }
    }

    /// A fixed-length list of finite numbers, e.g. `ns_coefficients: [a, b, c]`.
    pub fn floats<const N: usize>(&mut self, key: &str, default: [f64; N]) -> Result<[f64; N]> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Array(a)) if a.len() == N => {
                let mut out = [0.0; N];
                for (o, x) in out.iter_mut().zip(a) {
                    *o = value_as_f64(x)
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| self.err(key, format!("expected {N} finite numbers, got {x}")))?;
                }
                Ok(out)
            }
            Some(v) => Err(self.err(key, format!("expected a list of {N} numbers, got {v}"))),
        }
    }

    /// A list of strings (e.g. glob patterns).
    pub fn strings(&mut self, key: &str, default: &[&str]) -> Result<Vec<String>> {
        match self.get(key) {
            None => Ok(default.iter().map(|s| s.to_string()).collect()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.err(key, format!("expected a list of strings, got {x}")))
                })
                .collect(),
            Some(v) => Err(self.err(key, format!("expected a list of strings, got {v}"))),
        }
    }

    /// An [`Error::InvalidHyper`] for `field` of this optimizer.
    pub fn error(&self, field: &str, message: impl Into<String>) -> Error {
        self.err(field, message)
    }

    /// A string.
    pub fn string(&mut self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(key, format!("expected a string, got {v}"))),
        }
    }

    /// Fails unless `ok`, naming `key`.
    pub fn check(&self, ok: bool, key: &str, message: impl Into<String>) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(self.err(key, message))
        }
    }

    /// `x >= 0` and finite (NaN fails).
    pub fn non_negative(&self, key: &str, x: f64) -> Result<()> {
        self.check(
            x >= 0.0 && x.is_finite(),
            key,
            format!("must be a finite number >= 0, got {x}"),
        )
    }

    /// `0 <= x < 1` (NaN fails).
    pub fn unit_interval(&self, key: &str, x: f64) -> Result<()> {
        self.check((0.0..1.0).contains(&x), key, format!("must be in [0, 1), got {x}"))
    }

    /// Both entries of a `betas`-style pair in `[0, 1)`.
    pub fn betas(&self, key: &str, b: (f64, f64)) -> Result<()> {
        self.check(
            (0.0..1.0).contains(&b.0),
            key,
            format!("beta1 must be in [0, 1), got {}", b.0),
        )?;
        self.check(
            (0.0..1.0).contains(&b.1),
            key,
            format!("beta2 must be in [0, 1), got {}", b.1),
        )
    }

    /// Rejects keys that were never read (PyTorch's implementation flags excepted).
    pub fn finish(self) -> Result<()> {
        for (k, v) in self.hyper {
            if self.used.contains(k) {
                continue;
            }
            if IGNORED_TORCH_FLAGS.contains(&k.as_str()) {
                if matches!(v, Value::Bool(_) | Value::Null) {
                    continue;
                }
                return Err(self.err(k, format!("expected true, false or null, got {v}")));
            }
            let known: Vec<&str> = self.used.iter().map(String::as_str).collect();
            return Err(self.err(k, format!("unknown hyperparameter (known: {})", known.join(", "))));
        }
        Ok(())
    }
}

/// Builds a [`Hyper`] from `(name, value)` pairs.
pub fn hyper<I, K, V>(pairs: I) -> Hyper
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<Value>,
{
    pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect()
}

/// `[a, b]` as a JSON value (for `betas`).
pub fn pair_value(p: (f64, f64)) -> Value {
    Value::Array(vec![num(p.0), num(p.1)])
}

/// A number as a JSON value; non-finite numbers become the strings `"NaN"`/`"Infinity"`.
pub fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map(Value::Number).unwrap_or_else(|| {
        Value::String(if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        })
    })
}
