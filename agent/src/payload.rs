//! Payloads, sizes and keys for one producer, all from a seeded RNG so a run
//! is reproducible. A payload is a slice of one buffer made up front: no
//! allocation and no copy per message.

use bytes::Bytes;
use common::scenario::{KeyPattern, PayloadKind, SizeDist};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Distribution, Normal, Zipf};

pub struct PayloadGen {
    buf: Bytes,
    sizes: SizeDist,
    normal: Option<Normal<f64>>,
    rng: SmallRng,
}

/// A payload file that cannot be used; the message names it.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("payload file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("payload file {path} is larger than {max} bytes")]
    TooLarge { path: String, max: u64 },
}

const TEXT: &[u8] = b"The quick brown fox jumps over the lazy dog; order 12345 shipped to customer 678 at 2026-11-26T12:00:00Z with status OK. ";

impl PayloadGen {
    /// Reads a payload file (`PayloadKind::File`) once; the error names it.
    pub fn new(sizes: SizeDist, kind: &PayloadKind, seed: u64) -> Result<PayloadGen, PayloadError> {
        let mut rng = SmallRng::seed_from_u64(seed);
        if let PayloadKind::File(path) = kind {
            let read = |source| PayloadError::Read { path: path.clone(), source };
            let meta = std::fs::metadata(path).map_err(read)?;
            let max = common::scenario::MAX_MESSAGE_BYTES;
            if meta.len() > max {
                return Err(PayloadError::TooLarge { path: path.clone(), max });
            }
            let bytes = std::fs::read(path).map_err(read)?;
            let n = bytes.len() as u64;
            return Ok(PayloadGen { buf: Bytes::from(bytes), sizes: SizeDist::Fixed(n), normal: None, rng });
        }
        let max = sizes.max() as usize;
        let mut v = vec![0u8; max];
        match kind {
            PayloadKind::Random => rng.fill_bytes(&mut v),
            PayloadKind::Text => {
                for (i, b) in v.iter_mut().enumerate() {
                    *b = TEXT[i % TEXT.len()];
                }
            }
            PayloadKind::File(_) => {}
        }
        let normal = match sizes {
            SizeDist::Normal { mean, stddev } => Normal::new(mean as f64, stddev as f64).ok(),
            _ => None,
        };
        Ok(PayloadGen { buf: Bytes::from(v), sizes, normal, rng })
    }

    #[inline]
    pub fn next_payload(&mut self) -> Bytes {
        let len = match self.sizes {
            SizeDist::Fixed(n) => n as usize,
            SizeDist::Uniform { min, max } => self.rng.random_range(min..=max) as usize,
            SizeDist::Normal { .. } => {
                let x = self.normal.map(|n| n.sample(&mut self.rng)).unwrap_or(0.0);
                (x.round().max(0.0) as usize).min(self.buf.len())
            }
        };
        self.buf.slice(0..len.min(self.buf.len()))
    }
}

pub struct KeyGen {
    pattern: KeyPattern,
    next: u64,
    zipf: Option<Zipf<f64>>,
    rng: SmallRng,
}

impl KeyGen {
    pub fn new(pattern: KeyPattern, seed: u64, start: u64) -> KeyGen {
        let zipf = match pattern {
            KeyPattern::Zipf { keys, exponent } => Zipf::new(keys as f64, exponent).ok(),
            _ => None,
        };
        KeyGen { pattern, next: start, zipf, rng: SmallRng::seed_from_u64(seed ^ 0x6b65_7973) }
    }

    #[inline]
    pub fn next_key(&mut self) -> Option<u64> {
        match self.pattern {
            KeyPattern::None => None,
            KeyPattern::RoundRobin { keys } => {
                let k = self.next % keys;
                self.next = self.next.wrapping_add(1);
                Some(k)
            }
            KeyPattern::Random { keys } => Some(self.rng.random_range(0..keys)),
            KeyPattern::Zipf { keys, .. } => {
                let x = self.zipf.map(|z| z.sample(&mut self.rng)).unwrap_or(1.0);
                Some((x as u64).saturating_sub(1).min(keys - 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_distribution() {
        let mut g = PayloadGen::new(SizeDist::Uniform { min: 10, max: 20 }, &PayloadKind::Random, 1).unwrap();
        for _ in 0..1000 {
            let n = g.next_payload().len();
            assert!((10..=20).contains(&n));
        }
        let mut g = PayloadGen::new(SizeDist::Normal { mean: 1000, stddev: 100 }, &PayloadKind::Text, 1).unwrap();
        let mean: f64 = (0..10_000).map(|_| g.next_payload().len() as f64).sum::<f64>() / 10_000.0;
        assert!((mean - 1000.0).abs() < 10.0, "{mean}");
        let mut g = PayloadGen::new(SizeDist::Fixed(0), &PayloadKind::Random, 1).unwrap();
        assert!(g.next_payload().is_empty());
        let path = std::env::temp_dir().join(format!("lg-payload-{}.bin", std::process::id()));
        std::fs::write(&path, b"{\"order\": 42}").unwrap();
        let mut g = PayloadGen::new(SizeDist::Fixed(1), &PayloadKind::File(path.display().to_string()), 1).unwrap();
        assert_eq!(&g.next_payload()[..], b"{\"order\": 42}");
        let _ = std::fs::remove_file(&path);
        let missing = PayloadGen::new(SizeDist::Fixed(1), &PayloadKind::File("/nonexistent/p.bin".into()), 1);
        assert!(missing.err().map(|e| e.to_string()).unwrap_or_default().contains("/nonexistent/p.bin"));
    }

    #[test]
    fn keys_follow_the_pattern() {
        let mut k = KeyGen::new(KeyPattern::RoundRobin { keys: 3 }, 0, 0);
        let v: Vec<_> = (0..6).map(|_| k.next_key().unwrap_or(99)).collect();
        assert_eq!(v, vec![0, 1, 2, 0, 1, 2]);
        let mut z = KeyGen::new(KeyPattern::Zipf { keys: 100, exponent: 1.2 }, 7, 0);
        let mut counts = [0u32; 100];
        for _ in 0..20_000 {
            counts[z.next_key().unwrap_or(0) as usize] += 1;
        }
        assert!(counts[0] > counts[10] && counts[10] > 0, "zipf skews to low keys");
        assert_eq!(KeyGen::new(KeyPattern::None, 0, 0).next_key(), None);
    }
}
