//! The stamp every message carries: who sent it, its sequence number, and
//! when it was meant to go and went (coordinator time base, ns). 32 bytes,
//! little-endian, fixed layout; drivers put it in the payload prefix or in a
//! message property/attribute.

/// Encoded stamp length.
pub const STAMP_LEN: usize = 32;
const MAGIC: [u8; 2] = *b"LG";
const VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub producer_id: u32,
    pub seq: u64,
    pub intended_ns: i64,
    pub sent_ns: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampError {
    TooShort,
    BadMagic,
    BadVersion(u8),
    /// A stamp of another run (e.g. a durable subscription's old backlog).
    Foreign,
}

impl Stamp {
    pub fn encode(&self) -> [u8; STAMP_LEN] {
        let mut b = [0u8; STAMP_LEN];
        b[0..2].copy_from_slice(&MAGIC);
        b[2] = VERSION;
        b[3] = 0; // flags, reserved
        b[4..8].copy_from_slice(&self.producer_id.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.intended_ns.to_le_bytes());
        b[24..32].copy_from_slice(&self.sent_ns.to_le_bytes());
        b
    }

    /// Decodes the first `STAMP_LEN` bytes of `b`.
    pub fn decode(b: &[u8]) -> Result<Stamp, StampError> {
        let b: &[u8; STAMP_LEN] = b.get(..STAMP_LEN).and_then(|s| s.try_into().ok()).ok_or(StampError::TooShort)?;
        if b[0..2] != MAGIC {
            return Err(StampError::BadMagic);
        }
        if b[2] != VERSION {
            return Err(StampError::BadVersion(b[2]));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        Ok(Stamp { producer_id: u32_at(4), seq: u64_at(8), intended_ns: u64_at(16) as i64, sent_ns: u64_at(24) as i64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(p in any::<u32>(), s in any::<u64>(), i in any::<i64>(), t in any::<i64>()) {
            let st = Stamp { producer_id: p, seq: s, intended_ns: i, sent_ns: t };
            prop_assert_eq!(Stamp::decode(&st.encode()), Ok(st));
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Stamp::decode(&b);
        }
    }

    #[test]
    fn rejects_foreign_bytes() {
        assert_eq!(Stamp::decode(b"short"), Err(StampError::TooShort));
        assert_eq!(Stamp::decode(&[0u8; 40]), Err(StampError::BadMagic));
        let mut b = Stamp { producer_id: 1, seq: 2, intended_ns: 3, sent_ns: 4 }.encode();
        b[2] = 9;
        assert_eq!(Stamp::decode(&b), Err(StampError::BadVersion(9)));
    }
}
