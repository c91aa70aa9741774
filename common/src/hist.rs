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
        let mut h = Hist::new();
        h.merge_encoded(bytes)?;
        Ok(h)
    }

    /// Decodes through hdrhistogram's deserializer (any layout).
    fn decode_general(bytes: &[u8]) -> Result<Hist, HistError> {
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

    /// Adds V2 or V2+deflate bytes into this histogram without building the
    /// encoded one: only the non-zero counts are touched, so merging one
    /// agent's interval costs what it recorded, not the size of a full
    /// counts array. Histograms of another layout (other lowest value or
    /// precision) take the general path.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> Result<(), HistError> {
        let parsed = Encoded::parse(bytes)?;
        self.apply(parsed);
        Ok(())
    }

    /// Adds what `Encoded::parse` read (which cannot fail any more).
    pub fn apply(&mut self, e: Encoded) {
        match e {
            Encoded::Empty => {}
            Encoded::Other(h) => self.add(&h),
            Encoded::Counts(counts) => {
                for (index, n) in counts {
                    match value_at_index(u64::from(index)) {
                        Some(value) if self.h.record_n(value, n).is_ok() => {}
                        _ => self.clamped += n,
                    }
                }
            }
        }
    }
}

/// Encoded histograms of the [`Hist`] layout summed by counts index, for
/// merging many of them (one per agent per interval) before anything reads
/// the sum: adding a count is one addition, where [`Hist::apply`] turns
/// every index into a value and hdrhistogram turns it back. Read it by
/// settling it into a [`Hist`] ([`HistSum::settle_into`]).
#[derive(Debug, Clone, Default)]
pub struct HistSum {
    counts: Vec<u64>,
    /// Histograms of another layout, added the general way.
    other: Option<Hist>,
}

impl HistSum {
    pub fn add(&mut self, e: Encoded) {
        match e {
            Encoded::Empty => {}
            Encoded::Other(h) => self.other.get_or_insert_with(Hist::new).add(&h),
            Encoded::Counts(counts) => {
                // Indices ascend: the last one sizes the array.
                if let Some(&(last, _)) = counts.last() {
                    let need = last as usize + 1;
                    if need > self.counts.len() {
                        self.counts.resize(need, 0);
                    }
                }
                for (index, n) in counts {
                    if let Some(c) = self.counts.get_mut(index as usize) {
                        *c = c.saturating_add(n);
                    }
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.other.is_none()
    }

    /// Adds everything summed into `h` and empties this sum.
    pub fn settle_into(&mut self, h: &mut Hist) {
        let counts = std::mem::take(&mut self.counts);
        h.apply(Encoded::Counts(
            counts.into_iter().enumerate().filter(|(_, n)| *n > 0).map(|(i, n)| (i as u32, n)).collect(),
        ));
        if let Some(o) = self.other.take() {
            h.add(&o);
        }
    }
}

/// An encoded histogram, read and checked, not yet added anywhere.
pub enum Encoded {
    Empty,
    /// (counts index in the `Hist` layout, count) of every non-zero
    /// bucket, in ascending index order; every index is below INDEX_LIMIT.
    Counts(Vec<(u32, u64)>),
    /// Another layout (lowest value, precision): decoded the general way.
    Other(Hist),
}

impl Encoded {
    /// Reads V2 or V2+deflate bytes; every error is found before anything
    /// is added, so a bad histogram leaves the target untouched.
    pub fn parse(bytes: &[u8]) -> Result<Encoded, HistError> {
        if bytes.is_empty() {
            return Ok(Encoded::Empty);
        }
        Encoded::with_v2(bytes, |v2| match v2_layout(v2)? {
            Some(payload) => {
                // At most one entry per payload byte: no reallocation while reading.
                let mut counts = Vec::with_capacity(payload.len());
                for_each_count(payload, |index, n| counts.push((index, n)))?;
                Ok(Encoded::Counts(counts))
            }
            None => Ok(Encoded::Other(Hist::decode_general(bytes)?)),
        })
    }

    /// Calls `f` with the uncompressed V2 bytes of V2 or V2+deflate `bytes`.
    fn with_v2<T>(bytes: &[u8], f: impl FnOnce(&[u8]) -> Result<T, HistError>) -> Result<T, HistError> {
        if bytes.len() > 64 * 1024 * 1024 {
            return Err(HistError::Decode("encoded histogram larger than 64 MiB".into()));
        }
        match be32(bytes, 0)? {
            V2_COMPRESSED_COOKIE => {
                let len = be32(bytes, 4)? as usize;
                let z = bytes.get(8..8 + len).ok_or_else(|| bad("truncated deflate payload"))?;
                // One inflater and buffer per thread, reused: a fresh zlib
                // state per histogram costs more than the histogram.
                INFLATE.with(|cell| {
                    let mut cell = cell.borrow_mut();
                    let (d, out) = &mut *cell;
                    inflate(d, z, out)?;
                    f(out)
                })
            }
            V2_COOKIE => f(bytes),
            _ => Err(bad("not a V2 histogram")),
        }
    }
}

fn bad(what: &str) -> HistError {
    HistError::Decode(what.to_string())
}

fn be32(b: &[u8], at: usize) -> Result<u32, HistError> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| bad("truncated header"))
}

fn be64(b: &[u8], at: usize) -> Result<u64, HistError> {
    b.get(at..at + 8)
        .map(|s| u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
        .ok_or_else(|| bad("truncated header"))
}

/// The counts payload of uncompressed V2 bytes of the [`Hist`] layout;
/// None for another layout (decoded the general way).
fn v2_layout(inner: &[u8]) -> Result<Option<&[u8]>, HistError> {
    if be32(inner, 0)? != V2_COOKIE {
        return Err(bad("not a V2 histogram"));
    }
    let payload_len = be32(inner, 4)? as usize;
    let offset = be32(inner, 8)?;
    let digits = be32(inner, 12)?;
    let low = be64(inner, 16)?;
    let ratio = f64::from_bits(be64(inner, 32)?);
    if offset != 0 || ratio != 1.0 || digits != u32::from(SIGFIG) || low != LOW_NS {
        return Ok(None);
    }
    inner.get(40..40 + payload_len).map(Some).ok_or_else(|| bad("truncated counts"))
}

/// Calls `f(index, count)` for every non-zero count of a V2 payload, in
/// ascending index order; stops at the first error.
#[inline]
fn for_each_count(payload: &[u8], mut f: impl FnMut(u32, u64)) -> Result<(), HistError> {
    let mut at = 0;
    let mut index: u64 = 0;
    while at < payload.len() {
        let (zz, n) = varint(&payload[at..]).ok_or_else(|| bad("truncated count"))?;
        at += n;
        let v = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        if v < 0 {
            index = index.saturating_add(v.unsigned_abs());
            continue;
        }
        if v > 0 {
            if index >= INDEX_LIMIT {
                return Err(bad("count beyond the value range"));
            }
            f(index as u32, v as u64);
        }
        index += 1;
    }
    Ok(())
}

thread_local! {
    static INFLATE: std::cell::RefCell<(flate2::Decompress, Vec<u8>)> =
        std::cell::RefCell::new((flate2::Decompress::new(true), Vec::new()));
}

/// Most bytes one histogram may inflate to (a tiny payload cannot become gigabytes).
const MAX_INFLATED: usize = 256 * 1024 * 1024;

/// Inflates a zlib stream into `out` (cleared first) with a reused state.
fn inflate(d: &mut flate2::Decompress, z: &[u8], out: &mut Vec<u8>) -> Result<(), HistError> {
    d.reset(true);
    out.clear();
    loop {
        if out.len() >= MAX_INFLATED {
            return Err(HistError::Decode("histogram inflates beyond 256 MiB".into()));
        }
        out.reserve((z.len() * 4).max(4096));
        let (in_before, out_before) = (d.total_in(), out.len());
        let done = d
            .decompress_vec(&z[d.total_in() as usize..], out, flate2::FlushDecompress::None)
            .map_err(|e| HistError::Decode(format!("inflate: {e}")))?;
        if done == flate2::Status::StreamEnd {
            return Ok(());
        }
        if d.total_in() == in_before && out.len() == out_before && out.len() < out.capacity() {
            return Err(HistError::Decode("truncated deflate stream".into()));
        }
    }
}

/// hdrhistogram's V2 cookies (serialization/mod.rs: base | 0x10).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;

/// The counts layout of every `Hist` (lowest LOW_NS, SIGFIG digits), as
/// hdrhistogram computes it: unit magnitude floor(log2(1000)) = 9, sub-bucket
/// count magnitude ceil(log2(2 * 10^3)) = 11, so half-count magnitude 10.
const UNIT_MAGNITUDE: u32 = 9;
const SUB_BUCKET_HALF_COUNT_MAGNITUDE: u32 = 10;
const SUB_BUCKET_HALF_COUNT: u64 = 1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE;

/// The first counts index past the u64 value range (`value_at_index` is
/// None from here on): bucket 44 is the last whose values all fit.
const INDEX_LIMIT: u64 = 46 * SUB_BUCKET_HALF_COUNT;

/// The lowest value counted at `index` (hdrhistogram's `value_for`).
fn value_at_index(index: u64) -> Option<u64> {
    let mut bucket = (index >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) as i64 - 1;
    let mut sub = (index & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT;
    if bucket < 0 {
        sub -= SUB_BUCKET_HALF_COUNT;
        bucket = 0;
    }
    let shift = u32::try_from(bucket).ok()?.checked_add(UNIT_MAGNITUDE)?;
    if shift >= 64 || sub.leading_zeros() < shift {
        return None;
    }
    Some(sub << shift)
}

/// hdrhistogram's LEB128 variant: up to 9 bytes, the 9th contributes 8 bits.
#[inline(always)]
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    // Most counts and zero runs fit one byte.
    let &first = b.first()?;
    if first & 0x80 == 0 {
        return Some((u64::from(first), 1));
    }
    let mut value = 0u64;
    for i in 0..9 {
        let byte = *b.get(i)?;
        if i == 8 {
            return Some((value | (u64::from(byte) << 56), 9));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
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

    /// A histogram of `spread(seed, n)`.
    fn spread_hist(seed: u64, n: usize) -> Hist {
        let mut h = Hist::new();
        for v in spread(seed, n) {
            h.record_ns(v);
        }
        h
    }

    /// `h` as uncompressed V2 bytes.
    fn plain_v2(h: &Hist) -> Vec<u8> {
        let mut plain = Vec::new();
        hdrhistogram::serialization::V2Serializer::new().serialize(h.inner(), &mut plain).expect("v2");
        plain
    }

    fn spread(seed: u64, n: usize) -> Vec<i64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // From below 1 µs to hours, every magnitude.
                ((x % 1_000_000_000_000) >> (x % 40)) as i64
            })
            .collect()
    }

    #[test]
    fn sparse_merge_equals_the_general_decoder() {
        for seed in 1..40u64 {
            let mut a = Hist::new();
            for v in spread(seed, 1 + (seed as usize * 97) % 5000) {
                a.record_ns(v);
            }
            let bytes = a.encode();
            let general = Hist::decode_general(&bytes).expect("general");
            let sparse = Hist::decode(&bytes).expect("sparse");
            assert_eq!(sparse.len(), a.len());
            assert_eq!(sparse.inner(), general.inner(), "seed {seed}");
            for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
                assert_eq!(sparse.quantile_ns(q), a.quantile_ns(q), "seed {seed} q {q}");
            }
            // Merging into a histogram that already holds values.
            let mut m = Hist::new();
            m.record_ns(123_456);
            m.merge_encoded(&bytes).expect("merge");
            let mut want = general.clone();
            want.record_ns(123_456);
            assert_eq!(m.inner(), want.inner(), "seed {seed}");
        }
    }

    #[test]
    fn index_limit_is_the_end_of_the_value_range() {
        assert!(value_at_index(INDEX_LIMIT - 1).is_some());
        assert!(value_at_index(INDEX_LIMIT).is_none());
        // A value recorded near the top clamps; nothing past the limit is
        // ever written by an encoder.
        assert!(value_at_index(INDEX_LIMIT - 1).unwrap() > MAX_NS);
    }

    #[test]
    fn a_sum_in_index_space_equals_merging_one_by_one() {
        let mut sum = HistSum::default();
        let mut want = Hist::new();
        for seed in 1..30u64 {
            let mut a = Hist::new();
            for v in spread(seed, 1 + (seed as usize * 131) % 4000) {
                a.record_ns(v * (1 + (seed as i64 % 5)));
            }
            want.add(&a);
            sum.add(Encoded::parse(&a.encode()).expect("parse"));
        }
        // Another layout (1 ns lowest value) takes the general path.
        let mut other: Histogram<u64> = Histogram::new(3).expect("hist");
        other.record_n(777_777, 5).expect("record");
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&other, &mut bytes).expect("serialize");
        sum.add(Encoded::parse(&bytes).expect("parse other"));
        want.merge_encoded(&bytes).expect("merge other");
        assert!(!sum.is_empty());
        let mut got = Hist::new();
        got.record_ns(5_000);
        want.record_ns(5_000);
        sum.settle_into(&mut got);
        assert!(sum.is_empty());
        assert_eq!(got.inner(), want.inner());
        assert_eq!(got.len(), want.len());
    }

    #[test]
    fn counts_past_the_value_range_are_an_error() {
        let plain = plain_v2(&spread_hist(5, 800));
        // Valid counts, then a zero run past the value range and one more count.
        let mut past = plain.clone();
        past.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f, 0x02]);
        let len = (past.len() - 40) as u32;
        past[4..8].copy_from_slice(&len.to_be_bytes());
        assert!(Encoded::parse(&past).is_err());
        assert!(Encoded::parse(&plain[..plain.len() - 1]).is_err());
        assert!(Encoded::parse(&plain).is_ok());
    }

    #[test]
    fn sparse_merge_reads_uncompressed_v2_and_other_layouts() {
        let a = spread_hist(9, 3000);
        let plain = plain_v2(&a);
        assert_eq!(Hist::decode(&plain).expect("v2").inner(), a.inner());
        // Another lowest value and precision: the general path, same counts.
        let mut other = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 2).expect("bounds");
        for v in 1..1000u64 {
            other.record(v * 997).expect("record");
        }
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&other, &mut bytes).expect("v2 deflate");
        let h = Hist::decode(&bytes).expect("other layout");
        assert_eq!(h.len(), 999);
        // Re-bucketed into our layout: the same values within either's precision.
        let (got, want) = (h.max_ns() as f64, (999 * 997) as f64);
        assert!((got - want).abs() / want < 0.01, "{got} vs {want}");
    }

    #[test]
    fn a_bad_histogram_leaves_the_target_untouched() {
        let mut a = Hist::new();
        for v in spread(3, 500) {
            a.record_ns(v);
        }
        let bytes = a.encode();
        let mut target = Hist::new();
        target.record_ns(5_000);
        let before = target.clone();
        for cut in [1, 7, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(target.merge_encoded(&bytes[..cut]).is_err(), "cut at {cut}");
            assert_eq!(target, before);
        }
        let mut flipped = bytes.clone();
        flipped[0] ^= 0xff;
        assert!(target.merge_encoded(&flipped).is_err());
        assert_eq!(target, before);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = Hist::decode(&bytes);
        }

        #[test]
        fn damaged_encodings_never_panic(seed in 1u64..1000, at in 0usize..4096, byte in proptest::prelude::any::<u8>()) {
            let mut a = Hist::new();
            for v in spread(seed, 200) {
                a.record_ns(v);
            }
            let mut bytes = a.encode();
            let i = at % bytes.len();
            bytes[i] = byte;
            let _ = Hist::decode(&bytes);
        }
    }
}
