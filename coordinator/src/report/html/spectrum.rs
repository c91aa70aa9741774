//! The percentile spectrum of a histogram: the points both the static SVG
//! charts and the interactive ones draw. Imports only the histogram.

use common::hist::Hist;

/// Quantiles for the percentile spectrum: 20 points per decade of
/// 1/(1-q), from q = 0 up to 99.999 %, stopping where the histogram has
/// no more resolution (then its max closes the curve).
pub fn spectrum(h: &Hist) -> Vec<(f64, f64)> {
    let n = h.len();
    if n == 0 {
        return Vec::new();
    }
    let limit = (n as f64).clamp(1.0, 1e5);
    let mut pts = Vec::new();
    for k in 0..=100u32 {
        let x = 10f64.powf(f64::from(k) / 20.0);
        if x > limit {
            break;
        }
        let q = 1.0 - 1.0 / x;
        pts.push((x, h.quantile_ns(q) as f64 / 1e3));
    }
    let last_x = pts.last().map(|p| p.0).unwrap_or(1.0);
    let max_x = if limit > last_x { limit } else { last_x };
    pts.push((max_x, h.max_ns() as f64 / 1e3));
    pts
}
