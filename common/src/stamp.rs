//! The stamp every message carries: who sent it, its sequence number, and
//! when it was meant to go and went (coordinator time base, ns). 32 bytes,
//! little-endian, fixed layout, in the payload prefix (the memory broker).
//! Brokers with string metadata carry a shorter form in a message property
//! or attribute (`Stamp::to_property`): every byte there is paid for per
//! message (the Pulsar client checksums each frame byte by byte).

use base64::Engine;

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

/// A run's 32-bit tag (FNV-1a of its id): property stamps carry it, so a
/// consumer tells this run's messages from an earlier run's (a durable
/// subscription's backlog).
pub fn run_tag(run_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in run_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// Longest property stamp in bytes before base64: tag, two varints, sent
/// time, one varint.
const PROPERTY_MAX_BYTES: usize = 4 + 5 + 10 + 8 + 10;
/// ... and in characters after it.
pub const PROPERTY_MAX_CHARS: usize = (PROPERTY_MAX_BYTES * 8).div_ceil(6);

fn put_varint(buf: &mut [u8], mut at: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        buf[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    buf[at] = v as u8;
    at + 1
}

fn get_varint(buf: &[u8], at: &mut usize) -> Result<u64, StampError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).ok_or(StampError::TooShort)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(StampError::BadMagic)
}

impl Stamp {
    /// The stamp as a property value: base64url without padding of the run
    /// tag (u32 LE), the producer id and the sequence number (varints), the
    /// sent time (i64 LE) and how late the send was (`sent - intended`,
    /// zigzag varint). Typically 26–27 characters (at most 50).
    pub fn to_property(&self, tag: u32) -> String {
        let mut b = [0u8; PROPERTY_MAX_BYTES];
        b[..4].copy_from_slice(&tag.to_le_bytes());
        let mut n = put_varint(&mut b, 4, u64::from(self.producer_id));
        n = put_varint(&mut b, n, self.seq);
        b[n..n + 8].copy_from_slice(&self.sent_ns.to_le_bytes());
        let lag = self.sent_ns.wrapping_sub(self.intended_ns);
        n = put_varint(&mut b, n + 8, ((lag << 1) ^ (lag >> 63)) as u64);
        B64.encode(&b[..n])
    }

    /// Reads a property value; `Err(Foreign)` for another run's stamp.
    pub fn from_property(tag: u32, v: &str) -> Result<Stamp, StampError> {
        if v.len() > PROPERTY_MAX_CHARS {
            return Err(StampError::BadMagic);
        }
        let mut b = [0u8; PROPERTY_MAX_BYTES + 3];
        let len = B64.decode_slice(v, &mut b).map_err(|_| StampError::BadMagic)?;
        let b = &b[..len];
        if b.len() < 4 {
            return Err(StampError::TooShort);
        }
        if b[..4] != tag.to_le_bytes() {
            return Err(StampError::Foreign);
        }
        let mut at = 4;
        let producer_id = u32::try_from(get_varint(b, &mut at)?).map_err(|_| StampError::BadMagic)?;
        let seq = get_varint(b, &mut at)?;
        let sent: [u8; 8] = b.get(at..at + 8).and_then(|s| s.try_into().ok()).ok_or(StampError::TooShort)?;
        at += 8;
        let sent_ns = i64::from_le_bytes(sent);
        let z = get_varint(b, &mut at)?;
        if at != b.len() {
            return Err(StampError::BadMagic);
        }
        let lag = ((z >> 1) as i64) ^ -((z & 1) as i64);
        Ok(Stamp { producer_id, seq, intended_ns: sent_ns.wrapping_sub(lag), sent_ns })
    }

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
        fn property_roundtrip(p in any::<u32>(), s in any::<u64>(), i in any::<i64>(), t in any::<i64>(), tag in any::<u32>()) {
            let st = Stamp { producer_id: p, seq: s, intended_ns: i, sent_ns: t };
            let v = st.to_property(tag);
            prop_assert!(v.len() <= PROPERTY_MAX_CHARS);
            prop_assert_eq!(Stamp::from_property(tag, &v), Ok(st));
            prop_assert_eq!(Stamp::from_property(tag ^ 1, &v), Err(StampError::Foreign));
        }

        #[test]
        fn property_decode_never_panics(v in "[A-Za-z0-9_*-]{0,60}", tag in any::<u32>()) {
            let _ = Stamp::from_property(tag, &v);
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Stamp::decode(&b);
        }
    }

    #[test]
    fn property_stamps_are_short_and_refuse_garbage() {
        let tag = run_tag("run-1");
        assert_ne!(tag, run_tag("run-2"));
        // A producer a million messages in, at today's time, 0.5 ms late
        // (26 characters) or 100 ms late (27).
        let s = Stamp { producer_id: 3, seq: 1_000_000, intended_ns: 1_795_000_000_000_000_000, sent_ns: 0 };
        let late = Stamp { sent_ns: s.intended_ns + 100_000_000, ..s };
        let s = Stamp { sent_ns: s.intended_ns + 500_000, ..s };
        assert_eq!(late.to_property(tag).len(), 27);
        assert_eq!(Stamp::from_property(tag, &late.to_property(tag)), Ok(late));
        let v = s.to_property(tag);
        assert_eq!(v.len(), 26, "{v}");
        assert_eq!(Stamp::from_property(tag, &v), Ok(s));
        assert_eq!(Stamp::from_property(tag, "garbage*"), Err(StampError::BadMagic), "not base64url");
        assert_eq!(Stamp::from_property(tag, ""), Err(StampError::TooShort));
        assert_eq!(Stamp::from_property(tag, &v[..20]), Err(StampError::TooShort), "cut short");
        assert_eq!(Stamp::from_property(tag, &format!("{v}AAAA")), Err(StampError::BadMagic), "trailing bytes");
        assert_eq!(Stamp::from_property(tag, &"A".repeat(PROPERTY_MAX_CHARS + 1)), Err(StampError::BadMagic));
        // Ten bytes of varint continuation: not a number.
        let mut raw = tag.to_le_bytes().to_vec();
        raw.extend([0xff; 11]);
        assert_eq!(Stamp::from_property(tag, &B64.encode(raw)), Err(StampError::BadMagic));
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
