//! The SVG chart library of report.html: axes with "nice" ticks (linear
//! or log), series drawn as lines and/or markers, shaded phase bands,
//! labelled vertical lines and a y = x diagonal, and a legend. It knows
//! nothing of reports: the page (`super`) turns report figures into
//! [`Chart`]s. May import only `html::escape` and `report::format`.

use std::fmt::Write as _;

use super::escape::esc;
use crate::report::format::{fmt_decimals, fmt_us_spaced};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scale {
    Linear,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Fmt {
    Seconds,
    Rate,
    Micros,
    /// x = 1/(1-q): labelled as the percentile q.
    Percentile,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Dash {
    Solid,
    Dashed,
    Dotted,
}

impl Dash {
    fn attr(self) -> &'static str {
        match self {
            Dash::Solid => "",
            Dash::Dashed => " stroke-dasharray=\"7 4\"",
            Dash::Dotted => " stroke-dasharray=\"2 3\"",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Axis {
    scale: Scale,
    fmt: Fmt,
    label: String,
    min: f64,
    max: f64,
    ticks: Vec<f64>,
}

fn nice_step(range: f64, target_ticks: f64) -> f64 {
    let raw = (range / target_ticks).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let r = raw / mag;
    let m = if r <= 1.0 {
        1.0
    } else if r <= 2.0 {
        2.0
    } else if r <= 2.5 {
        2.5
    } else if r <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

impl Axis {
    /// An axis that holds every finite value (and, on a log scale, every
    /// positive one) with "nice" bounds and ticks.
    pub(super) fn fit(
        scale: Scale,
        fmt: Fmt,
        label: &str,
        values: impl Iterator<Item = f64>,
        include_zero: bool,
    ) -> Axis {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for v in values {
            if !v.is_finite() || (scale == Scale::Log && v <= 0.0) {
                continue;
            }
            lo = lo.min(v);
            hi = hi.max(v);
        }
        match scale {
            Scale::Linear => {
                if !lo.is_finite() {
                    lo = 0.0;
                    hi = 1.0;
                }
                if include_zero {
                    lo = lo.min(0.0);
                    hi = hi.max(0.0);
                }
                if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                    let pad = if hi.abs() > 0.0 { hi.abs() * 0.1 } else { 1.0 };
                    hi += pad;
                    if !include_zero {
                        lo -= pad;
                    }
                }
                let step = nice_step(hi - lo, 5.0);
                let min = (lo / step).floor() * step;
                let max = (hi / step).ceil() * step;
                let n = ((max - min) / step).round() as i64;
                let ticks = (0..=n.clamp(1, 50)).map(|i| min + i as f64 * step).collect();
                Axis { scale, fmt, label: label.into(), min, max, ticks }
            }
            Scale::Log => {
                if !lo.is_finite() {
                    lo = 1.0;
                    hi = 10.0;
                }
                let dlo = lo.log10().floor() as i32;
                let mut dhi = hi.log10().ceil() as i32;
                if dhi <= dlo {
                    dhi = dlo + 1;
                }
                let mut ticks = Vec::new();
                for d in dlo..=dhi {
                    let base = 10f64.powi(d);
                    ticks.push(base);
                    if dhi - dlo <= 2 && d < dhi && fmt != Fmt::Percentile {
                        ticks.push(base * 2.0);
                        ticks.push(base * 5.0);
                    }
                }
                Axis { scale, fmt, label: label.into(), min: 10f64.powi(dlo), max: 10f64.powi(dhi), ticks }
            }
        }
    }

    /// Position of `v` in 0..=1 along the axis, or None when it cannot be shown.
    fn frac(&self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            return None;
        }
        let f = match self.scale {
            Scale::Linear => (v - self.min) / (self.max - self.min),
            Scale::Log => {
                if v <= 0.0 {
                    return None;
                }
                (v.log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
            }
        };
        f.is_finite().then_some(f.clamp(-0.05, 1.05))
    }

    fn tick_label(&self, v: f64) -> String {
        match self.fmt {
            Fmt::Seconds => {
                if v == v.trunc() {
                    format!("{v:.0}s")
                } else {
                    format!("{}s", fmt_decimals(v))
                }
            }
            Fmt::Rate => {
                if v >= 1e6 {
                    format!("{}M", fmt_decimals(v / 1e6))
                } else if v >= 1e3 {
                    format!("{}k", fmt_decimals(v / 1e3))
                } else {
                    fmt_decimals(v)
                }
            }
            Fmt::Micros => {
                if v == 0.0 {
                    "0".into()
                } else {
                    fmt_us_spaced(v).replace(' ', "")
                }
            }
            Fmt::Percentile => {
                let q = 100.0 * (1.0 - 1.0 / v);
                let nines = v.log10().round() as usize;
                format!("{:.*}%", nines.saturating_sub(2), q)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Series {
    pub label: String,
    pub color: &'static str,
    pub dash: Dash,
    pub points: Vec<(f64, f64)>,
    pub line: bool,
    pub markers: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Band {
    pub x0: f64,
    pub x1: f64,
    pub label: &'static str,
    pub fill: &'static str,
}

impl Band {
    pub(super) fn new(x0: f64, x1: f64, label: &'static str, fill: &'static str) -> Band {
        Band { x0, x1, label, fill }
    }
}

#[derive(Debug, Clone)]
pub(super) struct VLine {
    pub x: f64,
    pub label: String,
    pub color: &'static str,
}

pub(super) struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
    pub vlines: Vec<VLine>,
    /// A y = x reference line.
    pub diagonal: bool,
}

const W: f64 = 1000.0;
const H: f64 = 330.0;
const ML: f64 = 70.0;
const MR: f64 = 40.0;
const MT: f64 = 24.0;
const MB: f64 = 46.0;

impl Chart {
    fn px(&self, x: f64) -> Option<f64> {
        self.x.frac(x).map(|f| ML + f * (W - ML - MR))
    }

    fn py(&self, y: f64) -> Option<f64> {
        self.y.frac(y).map(|f| H - MB - f * (H - MT - MB))
    }

    pub(super) fn render(&self, o: &mut String) -> std::fmt::Result {
        let (x0, x1, y0, y1) = (ML, W - MR, MT, H - MB);
        writeln!(
            o,
            "<div class=\"chart\"><svg viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\" font-family=\"system-ui,sans-serif\" font-size=\"12\">",
            esc(&self.title)
        )?;
        writeln!(
            o,
            "<rect x=\"{x0}\" y=\"{y0}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#ffffff\" stroke=\"#d0d7de\"/>",
            x1 - x0,
            y1 - y0
        )?;
        self.bands(o)?;
        self.grid(o)?;
        self.reference_lines(o)?;
        self.lines_and_markers(o)?;
        writeln!(o, "</svg>")?;
        self.legend(o)
    }

    /// Phase bands, each labelled above the plot when wide enough.
    fn bands(&self, o: &mut String) -> std::fmt::Result {
        let (x0, x1, y0, y1) = (ML, W - MR, MT, H - MB);
        for b in &self.bands {
            let (Some(a), Some(c)) = (self.px(b.x0), self.px(b.x1)) else {
                continue;
            };
            let (a, c) = (a.clamp(x0, x1), c.clamp(x0, x1));
            if c - a < 0.5 {
                continue;
            }
            if b.fill != "none" {
                writeln!(
                    o,
                    "<rect x=\"{a:.1}\" y=\"{y0}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
                    c - a,
                    y1 - y0,
                    b.fill
                )?;
            }
            if c - a > 40.0 {
                writeln!(
                    o,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#8c959f\" font-size=\"11\">{}</text>",
                    (a + c) / 2.0,
                    y0 - 7.0,
                    esc(b.label)
                )?;
            }
        }
        Ok(())
    }

    /// Grid lines with their tick labels, the axes and their labels.
    fn grid(&self, o: &mut String) -> std::fmt::Result {
        let (x0, x1, y0, y1) = (ML, W - MR, MT, H - MB);
        for t in &self.y.ticks {
            let Some(y) = self.py(*t) else { continue };
            writeln!(
                o,
                "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#57606a\">{}</text>",
                x0 - 6.0,
                y + 4.0,
                esc(&self.y.tick_label(*t))
            )?;
        }
        for t in &self.x.ticks {
            let Some(x) = self.px(*t) else { continue };
            writeln!(
                o,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#eaeef2\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
                y1 + 16.0,
                esc(&self.x.tick_label(*t))
            )?;
        }
        writeln!(
            o,
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y1}\" y2=\"{y1}\" stroke=\"#57606a\"/><line x1=\"{x0}\" x2=\"{x0}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#57606a\"/>"
        )?;
        writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
            (x0 + x1) / 2.0,
            H - 8.0,
            esc(&self.x.label)
        )?;
        writeln!(
            o,
            "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
            (y0 + y1) / 2.0,
            esc(&self.y.label)
        )?;
        Ok(())
    }

    /// The y = x diagonal (when asked) and the labelled vertical lines.
    fn reference_lines(&self, o: &mut String) -> std::fmt::Result {
        let (y0, y1) = (MT, H - MB);
        if self.diagonal {
            let lo = self.x.min.max(self.y.min);
            let hi = self.x.max.min(self.y.max);
            if let (Some(a), Some(b), Some(c), Some(d)) = (self.px(lo), self.py(lo), self.px(hi), self.py(hi)) {
                writeln!(
                    o,
                    "<line x1=\"{a:.1}\" y1=\"{b:.1}\" x2=\"{c:.1}\" y2=\"{d:.1}\" stroke=\"#8c959f\" stroke-dasharray=\"4 4\"><title>achieved = offered</title></line>"
                )?;
            }
        }
        for v in &self.vlines {
            let Some(x) = self.px(v.x) else { continue };
            writeln!(
                o,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\" font-size=\"11\">{}</text>",
                v.color,
                x + 4.0,
                y0 + 14.0,
                v.color,
                esc(&v.label)
            )?;
        }
        Ok(())
    }

    /// Every series: its line (broken where a point cannot be shown) and its markers.
    fn lines_and_markers(&self, o: &mut String) -> std::fmt::Result {
        for s in &self.series {
            if s.line {
                let mut d = String::new();
                let mut pen_down = false;
                for &(x, y) in &s.points {
                    match (self.px(x), self.py(y)) {
                        (Some(px), Some(py)) => {
                            let _ = write!(d, "{}{px:.1} {py:.1} ", if pen_down { "L" } else { "M" });
                            pen_down = true;
                        }
                        _ => pen_down = false,
                    }
                }
                if !d.is_empty() {
                    writeln!(
                        o,
                        "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" stroke-linejoin=\"round\"{}><title>{}</title></path>",
                        d.trim_end(),
                        s.color,
                        s.dash.attr(),
                        esc(&s.label)
                    )?;
                }
            }
            if s.markers {
                for &(x, y) in &s.points {
                    if let (Some(px), Some(py)) = (self.px(x), self.py(y)) {
                        writeln!(
                            o,
                            "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\" fill=\"{}\" stroke=\"#fff\"><title>{}: {} → {}</title></circle>",
                            s.color,
                            esc(&s.label),
                            esc(&self.x.tick_label(x)),
                            esc(&self.y.tick_label(y))
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The legend under the chart: a swatch and the label of every non-empty series.
    fn legend(&self, o: &mut String) -> std::fmt::Result {
        write!(o, "<div class=\"legend\">")?;
        for s in &self.series {
            if s.points.is_empty() {
                continue;
            }
            let swatch = if s.line {
                format!(
                    "<svg width=\"26\" height=\"10\" viewBox=\"0 0 26 10\"><line x1=\"1\" y1=\"5\" x2=\"25\" y2=\"5\" stroke=\"{}\" stroke-width=\"2.2\"{}/></svg>",
                    s.color,
                    s.dash.attr()
                )
            } else {
                format!(
                    "<svg width=\"12\" height=\"12\" viewBox=\"0 0 12 12\"><circle cx=\"6\" cy=\"6\" r=\"4.5\" fill=\"{}\"/></svg>",
                    s.color
                )
            };
            write!(o, "<span>{swatch}{}</span>", esc(&s.label))?;
        }
        writeln!(o, "</div></div>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_nice() {
        let a = Axis::fit(Scale::Linear, Fmt::Rate, "r", [0.0, 1234.0].into_iter(), true);
        assert_eq!(a.min, 0.0);
        assert!(a.max >= 1234.0 && a.max <= 1500.0, "{}", a.max);
        assert!(a.ticks.len() >= 3);
        let l = Axis::fit(Scale::Log, Fmt::Micros, "l", [0.0, 150.0, 42_000.0].into_iter(), false);
        assert_eq!(l.min, 100.0);
        assert_eq!(l.max, 100_000.0);
        assert_eq!(l.frac(0.0), None);
        let p = Axis::fit(Scale::Log, Fmt::Percentile, "p", [1.0, 1e5].into_iter(), false);
        let labels: Vec<String> = p.ticks.iter().map(|t| p.tick_label(*t)).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
        // Degenerate input still gives a usable axis.
        let e = Axis::fit(Scale::Linear, Fmt::Seconds, "e", std::iter::empty(), false);
        assert!(e.max > e.min);
        let c = Axis::fit(Scale::Linear, Fmt::Seconds, "c", [5.0, 5.0].into_iter(), false);
        assert!(c.max > c.min);
    }
}
