//! Line charts as standalone SVG (log or linear axes, dashed lines, seed
//! bands, a legend), and PNG rendering of the same SVG through resvg.

use std::fmt::Write as _;

/// One line.
#[derive(Clone, Debug)]
pub struct Line {
    /// Legend text.
    pub label: String,
    /// Points (x, y); non-finite or non-positive values on log axes are skipped.
    pub points: Vec<(f64, f64)>,
    /// Dashed.
    pub dashed: bool,
    /// Band around the line: (x, low, high).
    pub band: Vec<(f64, f64, f64)>,
    /// Draw as a step function.
    pub steps: bool,
}

impl Line {
    /// A solid line.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Line {
        Line {
            label: label.into(),
            points,
            dashed: false,
            band: Vec::new(),
            steps: false,
        }
    }
}

/// A chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Log x.
    pub log_x: bool,
    /// Log y.
    pub log_y: bool,
    /// Lines.
    pub lines: Vec<Line>,
    /// Horizontal reference lines (y, label).
    pub hlines: Vec<(f64, String)>,
}

/// The colour of line `i` (a 20-colour qualitative palette).
pub fn color(i: usize) -> &'static str {
    const P: [&str; 20] = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
        "#393b79", "#ad494a", "#637939", "#e7969c", "#843c39", "#3182bd", "#31a354", "#756bb1", "#fd8d3c", "#636363",
    ];
    P[i % P.len()]
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn nice_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let r = raw / mag;
    mag * if r < 1.5 {
        1.0
    } else if r < 3.5 {
        2.0
    } else if r < 7.5 {
        5.0
    } else {
        10.0
    }
}

fn tick_label(v: f64, log: bool) -> String {
    if log {
        let e = v.log10().round() as i32;
        if (-2..=3).contains(&e) {
            format!("{}", 10f64.powi(e))
        } else {
            format!("1e{e}")
        }
    } else if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 || v.abs() < 1e-2 {
        format!("{v:.0e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn new(vals: impl Iterator<Item = f64>, log: bool) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in vals.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            return Axis {
                lo: if log { 0.1 } else { 0.0 },
                hi: if log { 10.0 } else { 1.0 },
                log,
            };
        }
        if log {
            let (mut l, mut h) = (lo.log10().floor(), hi.log10().ceil());
            if h - l < 1.0 {
                h = l + 1.0;
            }
            // Keep at most 16 decades (very small values are squashed to the bottom).
            if h - l > 16.0 {
                l = h - 16.0;
            }
            Axis { lo: l, hi: h, log }
        } else {
            if hi - lo < 1e-12 {
                hi = lo + 1.0;
            }
            let pad = 0.04 * (hi - lo);
            Axis {
                lo: lo - pad,
                hi: hi + pad,
                log,
            }
        }
    }

    fn frac(&self, v: f64) -> Option<f64> {
        if !v.is_finite() || (self.log && v <= 0.0) {
            return None;
        }
        let x = if self.log { v.log10() } else { v };
        Some(((x - self.lo) / (self.hi - self.lo)).clamp(-0.02, 1.02))
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let span = (self.hi - self.lo) as i32;
            let stride = (span / 8 + 1).max(1);
            (self.lo as i32..=self.hi as i32)
                .filter(|e| (e - self.lo as i32) % stride == 0)
                .map(|e| 10f64.powi(e))
                .collect()
        } else {
            let step = nice_step(self.hi - self.lo);
            let mut t = (self.lo / step).ceil() * step;
            let mut v = Vec::new();
            while t <= self.hi + 1e-9 * step {
                v.push(if t.abs() < 1e-12 * step { 0.0 } else { t });
                t += step;
            }
            v
        }
    }
}

/// Renders a chart to SVG text (`width × height` pixels).
pub fn svg(c: &Chart, width: u32, height: u32) -> String {
    let (w, h) = (width as f64, height as f64);
    let legend_w = if c.lines.len() > 1 || !c.hlines.is_empty() {
        190.0
    } else {
        0.0
    };
    let (ml, mr, mt, mb) = (64.0, 16.0 + legend_w, 30.0, 46.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let xa = Axis::new(c.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)), c.log_x);
    let ya = Axis::new(
        c.lines
            .iter()
            .flat_map(|l| {
                l.points
                    .iter()
                    .map(|p| p.1)
                    .chain(l.band.iter().flat_map(|b| [b.1, b.2]))
            })
            .chain(c.hlines.iter().map(|h| h.0)),
        c.log_y,
    );
    let px = |v: f64| xa.frac(v).map(|f| ml + f * pw);
    let py = |v: f64| ya.frac(v).map(|f| mt + (1.0 - f) * ph);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">"#
    );
    let _ = write!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = write!(
        s,
        r##"<text x="{ml}" y="18" font-size="13" font-weight="bold" fill="#222">{}</text>"##,
        esc(&c.title)
    );
    // Grid and ticks.
    for t in xa.ticks() {
        if let Some(x) = px(t) {
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{mt}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/>"##,
                mt + ph
            );
            let _ = write!(
                s,
                r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
                mt + ph + 15.0,
                tick_label(t, xa.log)
            );
        }
    }
    for t in ya.ticks() {
        if let Some(y) = py(t) {
            let _ = write!(
                s,
                r##"<line x1="{ml}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/>"##,
                ml + pw
            );
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
                ml - 5.0,
                y + 4.0,
                tick_label(t, ya.log)
            );
        }
    }
    let _ = write!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#888"/>"##
    );
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#222">{}</text>"##,
        ml + pw / 2.0,
        h - 10.0,
        esc(&c.x_label)
    );
    let _ = write!(
        s,
        r##"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="#222">{}</text>"##,
        mt + ph / 2.0,
        esc(&c.y_label)
    );
    let _ = write!(
        s,
        r#"<clipPath id="plot"><rect x="{ml}" y="{mt}" width="{pw:.1}" height="{ph:.1}"/></clipPath><g clip-path="url(#plot)">"#
    );
    for (i, l) in c.lines.iter().enumerate() {
        let col = color(i);
        // Band.
        let up: Vec<(f64, f64)> = l.band.iter().filter_map(|b| Some((px(b.0)?, py(b.2)?))).collect();
        let down: Vec<(f64, f64)> = l.band.iter().rev().filter_map(|b| Some((px(b.0)?, py(b.1)?))).collect();
        if up.len() > 1 && down.len() > 1 {
            let pts: Vec<String> = up.iter().chain(&down).map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = write!(
                s,
                r#"<polygon points="{}" fill="{col}" fill-opacity="0.15" stroke="none"/>"#,
                pts.join(" ")
            );
        }
        let mut pts: Vec<(f64, f64)> = Vec::new();
        for &(x, y) in &l.points {
            if let (Some(x), Some(y)) = (px(x), py(y)) {
                if l.steps {
                    if let Some(&(_, py0)) = pts.last() {
                        pts.push((x, py0));
                    }
                }
                pts.push((x, y));
            }
        }
        if pts.len() > 1 {
            let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let dash = if l.dashed { r#" stroke-dasharray="6 4""# } else { "" };
            let _ = write!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{col}" stroke-width="1.6"{dash}/>"#,
                p.join(" ")
            );
        } else if let Some((x, y)) = pts.first() {
            let _ = write!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{col}"/>"#);
        }
    }
    for (y, _) in &c.hlines {
        if let Some(yy) = py(*y) {
            let _ = write!(
                s,
                r##"<line x1="{ml}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#000" stroke-dasharray="3 3"/>"##,
                ml + pw
            );
        }
    }
    s.push_str("</g>");
    // Legend.
    if legend_w > 0.0 {
        let lx = ml + pw + 12.0;
        let mut ly = mt + 6.0;
        let row = ((ph - 6.0) / (c.lines.len() + c.hlines.len()).max(1) as f64).min(15.0);
        for (i, l) in c.lines.iter().enumerate() {
            let dash = if l.dashed { r#" stroke-dasharray="6 4""# } else { "" };
            let _ = write!(
                s,
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/>"#,
                lx + 18.0,
                color(i)
            );
            let label: String = l.label.chars().take(28).collect();
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#222" font-size="{}">{}</text>"##,
                lx + 23.0,
                ly + 4.0,
                if row < 12.0 { 9 } else { 11 },
                esc(&label)
            );
            ly += row;
        }
        for (_, label) in &c.hlines {
            let _ = write!(
                s,
                r##"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="#000" stroke-dasharray="3 3"/>"##,
                lx + 18.0
            );
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#222">{}</text>"##,
                lx + 23.0,
                ly + 4.0,
                esc(label)
            );
            ly += row;
        }
    }
    s.push_str("</svg>");
    s
}

/// Renders SVG text to PNG bytes (system fonts for the text).
pub struct PngRenderer {
    opt: resvg::usvg::Options<'static>,
}

impl Default for PngRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl PngRenderer {
    /// Loads the system fonts once.
    pub fn new() -> PngRenderer {
        let mut opt = resvg::usvg::Options::default();
        opt.fontdb_mut().load_system_fonts();
        PngRenderer { opt }
    }

    /// SVG to PNG.
    pub fn png(&self, svg: &str) -> Result<Vec<u8>, String> {
        let tree = resvg::usvg::Tree::from_str(svg, &self.opt).map_err(|e| e.to_string())?;
        let size = tree.size().to_int_size();
        let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("empty image")?;
        resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
        pixmap.encode_png().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_and_png_render() {
        let c = Chart {
            title: "t <1>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            log_y: true,
            lines: vec![
                Line {
                    band: vec![(0.0, 0.5, 2.0), (10.0, 0.005, 0.02)],
                    ..Line::new("a", vec![(0.0, 1.0), (10.0, 0.01)])
                },
                Line {
                    dashed: true,
                    ..Line::new("b", vec![(0.0, 2.0), (5.0, f64::NAN), (10.0, 0.0)])
                },
            ],
            hlines: vec![(0.1, "target".into())],
        };
        let s = svg(&c, 600, 300);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>") && s.contains("t &lt;1&gt;"));
        assert!(s.contains("polyline") && s.contains("polygon"));
        let png = PngRenderer::new().png(&s).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
