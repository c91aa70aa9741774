//! The histogram codec: one newtype over `hdrhistogram::Histogram<u64>`
//! recording nanoseconds. It grows to fit any value (auto-resize), so a
//! producer far behind its schedule records its huge latencies instead of
//! failing; a value that still cannot be recorded is clamped and counted.
//! On the wire it is V2+deflate bytes (proto `bytes`); in report.json base64.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Values are nanoseconds; 3 significant digits; the lowest discernible
/// value is 1 µs (0.1 % precision above 1 ms, 512 ns steps below 1 µs... 2 µs).
const LOW_NS: u64 = 1_000;
const SIGFIG: u8 = 3;
/// Values above this are clamped (and counted): about 11.6 days.
const MAX_NS: u64 = 1_000_000_000_000_000;

#[derive(Debug, Clone)]
pub struct Hist {
    h: Histogram<u64>,
    clamped: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist::new()
    }
}

impl PartialEq for Hist {
    fn eq(&self, other: &Self) -> bool {
        self.h == other.h && self.clamped == other.clamped
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistError {
    #[error("histogram decode failed: {0}")]
    Decode(String),
    #[error("histogram base64 decode failed: {0}")]
    Base64(#[from] base64::DecodeError),
}

impl Hist {
    pub fn new() -> Hist {
        let mut h = Histogram::new_with_bounds(LOW_NS, LOW_NS * 2, SIGFIG).expect("static bounds are valid");
        h.auto(true);
        Hist { h, clamped: 0 }
    }

    /// Records one value in nanoseconds; negative values (clock skew) count as 0.
    #[inline]
    pub fn record_ns(&mut self, ns: i64) {
        let v = ns.max(0) as u64;
        let v = if v > MAX_NS {
            self.clamped += 1;
            MAX_NS
        } else {
            v
        };
        if self.h.record(v).is_err() {
            self.clamped += 1;
        }
    }

    pub fn len(&self) -> u64 {
        self.h.len()
    }

    pub fn is_empty(&self) -> bool {
        self.h.is_empty()
    }

    /// Values that did not fit and were clamped.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    pub fn add(&mut self, other: &Hist) {
        if other.is_empty() {
            self.clamped += other.clamped;
            return;
        }
        if self.h.add(&other.h).is_err() {
            // Only possible when bounds differ and auto-resize is off; count it.
            self.clamped += other.h.len();
        }
        self.clamped += other.clamped;
    }

    /// Value at quantile `q` (0..=1), nanoseconds; 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.h.value_at_quantile(q)
        }
    }

    pub fn max_ns(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.h.max()
        }
    }

    pub fn min_ns(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.h.min()
        }
    }

    pub fn mean_ns(&self) -> f64 {
        self.h.mean()
    }

    pub fn inner(&self) -> &Histogram<u64> {
        &self.h
    }

    /// Takes the contents, leaving an empty histogram (per-interval swap).
    pub fn take(&mut self) -> Hist {
        std::mem::take(self)
    }

    /// V2+deflate bytes; empty for an empty histogram.
    pub fn encode(&self) -> Vec<u8> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        if ser.serialize(&self.h, &mut out).is_err() {
            return Vec::new();
        }
        out
    }

    /// Decodes V2 or V2+deflate bytes; empty input is an empty histogram.
    pub fn decode(bytes: &[u8]) -> Result<Hist, HistError> {
        if bytes.is_empty() {
            return Ok(Hist::new());
        }
        if bytes.len() > 64 * 1024 * 1024 {
            return Err(HistError::Decode("encoded histogram larger than 64 MiB".into()));
        }
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(bytes))
            .map_err(|e| HistError::Decode(format!("{e:?}")))?;
        let mut out = Hist::new();
        out.h.add(&h).map_err(|e| HistError::Decode(format!("{e:?}")))?;
        Ok(out)
    }

    pub fn encode_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.encode())
    }

    pub fn decode_base64(s: &str) -> Result<Hist, HistError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
        Hist::decode(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_huge_values_without_error() {
        let mut h = Hist::new();
        h.record_ns(5_000);
        h.record_ns(3_600_000_000_000); // one hour
        h.record_ns(-7);
        h.record_ns(i64::MAX);
        assert_eq!(h.len(), 4);
        assert_eq!(h.clamped(), 1);
        assert!(h.max_ns() >= 3_600_000_000_000);
    }

    #[test]
    fn roundtrip_and_merge() {
        let mut a = Hist::new();
        let mut b = Hist::new();
        for i in 1..=10_000i64 {
            a.record_ns(i * 1_000);
            b.record_ns(i * 2_000);
        }
        let a2 = Hist::decode(&a.encode()).expect("decode");
        assert_eq!(a2.len(), a.len());
        assert_eq!(a2.quantile_ns(0.5), a.quantile_ns(0.5));
        let b2 = Hist::decode_base64(&b.encode_base64()).expect("decode");
        let mut m = a2.clone();
        m.add(&b2);
        assert_eq!(m.len(), 20_000);
        let p50 = m.quantile_ns(0.5) as f64;
        assert!((p50 - 6_660_000.0).abs() / 6_660_000.0 < 0.01, "p50 {p50}");
        assert!(Hist::decode(b"garbage!").is_err());
        assert!(Hist::decode(&[]).expect("empty").is_empty());
    }

    #[test]
    fn take_swaps_out() {
        let mut h = Hist::new();
        h.record_ns(10_000);
        let t = h.take();
        assert_eq!(t.len(), 1);
        assert!(h.is_empty());
    }
}
