//! The bundled data sets (`data/` at the repository root; see `data/README.md`).

use std::path::{Path, PathBuf};

use steepest::{Error, Result};

/// The repository's `data/` directory (from this crate's manifest directory).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// A classification data set: `n` rows of `features` values, labels `0..classes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    /// Row-major features, `n × features`.
    pub x: Vec<f32>,
    /// Labels.
    pub y: Vec<i64>,
    /// Number of features per row.
    pub features: usize,
    /// Number of classes.
    pub classes: usize,
}

impl Classification {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }
    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
    /// The rows at `idx`.
    pub fn select(&self, idx: &[usize]) -> Classification {
        let f = self.features;
        Classification {
            x: idx
                .iter()
                .flat_map(|&i| self.x[i * f..(i + 1) * f].iter().copied())
                .collect(),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            features: f,
            classes: self.classes,
        }
    }
    /// A deterministic shuffled split: `(train, test)` with `test_fraction` of the rows held out.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Classification, Classification) {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        SplitMix64::new(seed).shuffle(&mut idx);
        let n_test = ((self.len() as f64) * test_fraction).round() as usize;
        (self.select(&idx[n_test..]), self.select(&idx[..n_test]))
    }
}

/// Reads a CSV of numeric features with the integer label last, no header
/// (the format of `data/digits.csv`). Features are divided by `scale`
/// (16 for the digits' 0..16 pixels).
pub fn load_classification_csv(path: &Path, scale: f32) -> Result<Classification> {
    let io = |m: String| Error::Io {
        path: path.display().to_string(),
        message: m,
    };
    let text = std::fs::read_to_string(path).map_err(|e| io(e.to_string()))?;
    let (mut x, mut y, mut features) = (Vec::new(), Vec::new(), None);
    for (line_no, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let vals: Vec<&str> = line.split(',').map(str::trim).collect();
        let f = vals.len() - 1;
        if *features.get_or_insert(f) != f || f == 0 {
            return Err(io(format!(
                "line {}: expected {:?} features, found {f}",
                line_no + 1,
                features
            )));
        }
        for v in &vals[..f] {
            let v: f32 = v
                .parse()
                .map_err(|_| io(format!("line {}: not a number: {v:?}", line_no + 1)))?;
            x.push(v / scale);
        }
        let label: f64 = vals[f]
            .parse()
            .map_err(|_| io(format!("line {}: bad label {:?}", line_no + 1, vals[f])))?;
        if label < 0.0 || label.fract() != 0.0 {
            return Err(io(format!("line {}: label {label} is not a class index", line_no + 1)));
        }
        y.push(label as i64);
    }
    let classes = y.iter().copied().max().map_or(0, |m| m as usize + 1);
    Ok(Classification {
        x,
        y,
        features: features.unwrap_or(0),
        classes,
    })
}

/// sklearn's digits (1797 × 64, pixels scaled to 0..1, 10 classes) from `data/digits.csv`.
pub fn digits() -> Result<Classification> {
    load_classification_csv(&data_dir().join("digits.csv"), 16.0)
}

/// A text as character tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    /// Token ids (indices into `vocab`).
    pub tokens: Vec<i64>,
    /// The characters, sorted.
    pub vocab: Vec<char>,
}

/// Reads a text file as character tokens.
pub fn load_text(path: &Path) -> Result<Text> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut vocab: Vec<char> = text.chars().collect();
    vocab.sort_unstable();
    vocab.dedup();
    let tokens = text
        .chars()
        .map(|c| vocab.binary_search(&c).map_or(0, |i| i as i64))
        .collect();
    Ok(Text { tokens, vocab })
}

/// The bundled text (`data/julius_caesar_60k.txt`).
pub fn shakespeare() -> Result<Text> {
    load_text(&data_dir().join("julius_caesar_60k.txt"))
}

/// A small deterministic generator (SplitMix64) for batches and splits.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}
