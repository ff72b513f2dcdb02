//! JSON with Python's non-finite literals.
//!
//! Python's `json` module writes `NaN`, `Infinity` and `-Infinity`, which
//! strict JSON (and `serde_json`) rejects. Specs made in Python carry them in
//! gradients, so [`parse`] first rewrites those bare tokens into the strings
//! `"NaN"`, `"Infinity"`, `"-Infinity"`, which number readers in steepest
//! accept ([`crate::hyper::value_as_f64`]); [`write_f64`] writes them back the
//! Python way.

use serde_json::Value;

/// Parses JSON that may contain bare `NaN`, `Infinity` and `-Infinity`.
pub fn parse(text: &str) -> Result<Value, String> {
    serde_json::from_str(&quote_non_finite(text)).map_err(|e| e.to_string())
}

/// Rewrites bare `NaN`/`Infinity`/`-Infinity` tokens (outside strings) into strings.
pub fn quote_non_finite(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let (mut i, mut start, mut in_str, mut esc) = (0, 0, false, false);
    while i < b.len() {
        let c = b[i];
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        let rest = &b[i..];
        let tok: Option<(&str, usize)> = if rest.starts_with(b"NaN") {
            Some(("\"NaN\"", 3))
        } else if rest.starts_with(b"Infinity") {
            Some(("\"Infinity\"", 8))
        } else if rest.starts_with(b"-Infinity") {
            Some(("\"-Infinity\"", 9))
        } else {
            None
        };
        match tok {
            Some((rep, len)) => {
                out.push_str(&text[start..i]);
                out.push_str(rep);
                i += len;
                start = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[start..]);
    out
}

/// Appends `x` as JSON: shortest round-trip decimal, or `NaN`/`Infinity`/`-Infinity` like Python.
pub fn write_f64(out: &mut String, x: f64) {
    if x.is_finite() {
        match serde_json::Number::from_f64(x) {
            Some(n) => out.push_str(&n.to_string()),
            None => out.push_str("NaN"),
        }
    } else if x.is_nan() {
        out.push_str("NaN");
    } else if x > 0.0 {
        out.push_str("Infinity");
    } else {
        out.push_str("-Infinity");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_tokens() {
        let v = parse(r#"{"a": [NaN, Infinity, -Infinity, 1.5], "s": "NaN Infinity \" NaN"}"#).unwrap();
        assert_eq!(v["a"][0], Value::String("NaN".into()));
        assert_eq!(v["a"][2], Value::String("-Infinity".into()));
        assert_eq!(v["s"], Value::String("NaN Infinity \" NaN".into()));
        let mut s = String::new();
        write_f64(&mut s, f64::NEG_INFINITY);
        write_f64(&mut s, 0.1);
        assert_eq!(s, "-Infinity0.1");
    }
}
