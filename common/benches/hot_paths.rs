//! Micro-benchmarks of the per-message and per-interval hot paths:
//! stamp encode/decode, histogram record and V2+deflate encode, range-set
//! insert (in order, with gaps, out of order), and the coordinator's
//! interval merge (decode a group's stats from the wire and merge them).
//!
//!   cargo bench -p common --bench hot_paths

use std::hint::black_box;

use common::hist::Hist;
use common::proto;
use common::rangeset::RangeSet;
use common::stamp::Stamp;
use common::stats::{GroupPhases, GroupSums, PhaseStats, ReadGroup};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Latencies with a long right tail, deterministic (xorshift).
fn samples(n: usize, seed: u64) -> Vec<i64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 100_000) as f64 / 100_000.0;
            (1_000_000.0 * (1.0 + 20.0 * u.powi(6))) as i64
        })
        .collect()
}

fn stamp(c: &mut Criterion) {
    let s = Stamp {
        producer_id: 17,
        seq: 123_456_789,
        intended_ns: 1_795_000_000_000_000_000,
        sent_ns: 1_795_000_000_000_001_000,
    };
    let bytes = s.encode();
    let mut g = c.benchmark_group("stamp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode", |b| b.iter(|| black_box(black_box(&s).encode())));
    g.bench_function("decode", |b| b.iter(|| black_box(Stamp::decode(black_box(&bytes)))));
    g.finish();
}

fn histogram(c: &mut Criterion) {
    let vals = samples(100_000, 7);
    let mut g = c.benchmark_group("hist");
    g.throughput(Throughput::Elements(vals.len() as u64));
    g.bench_function("record_100k", |b| {
        let mut h = Hist::new();
        b.iter(|| {
            for &v in &vals {
                h.record_ns(black_box(v));
            }
        })
    });
    let mut full = Hist::new();
    for &v in &vals {
        full.record_ns(v);
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_v2_deflate", |b| b.iter(|| black_box(full.encode())));
    let bytes = full.encode();
    g.bench_function("decode_v2_deflate", |b| b.iter(|| black_box(Hist::decode(black_box(&bytes)))));
    g.finish();
}

fn rangeset(c: &mut Criterion) {
    const N: u64 = 100_000;
    let mut g = c.benchmark_group("rangeset");
    g.throughput(Throughput::Elements(N));
    g.bench_function("insert_in_order", |b| {
        b.iter_batched(
            RangeSet::new,
            |mut r| {
                for v in 0..N {
                    r.insert(v);
                }
                r
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("insert_with_gaps_1_in_100", |b| {
        b.iter_batched(
            RangeSet::new,
            |mut r| {
                for v in (0..N).filter(|v| v % 100 != 0) {
                    r.insert(v);
                }
                r
            },
            BatchSize::SmallInput,
        )
    });
    // A shared subscription over several consumers sees a producer's
    // sequence slightly out of order: windows of 64 reversed.
    g.bench_function("insert_reordered_window_64", |b| {
        b.iter_batched(
            RangeSet::new,
            |mut r| {
                for w in 0..N / 64 {
                    for i in (0..64).rev() {
                        r.insert(w * 64 + i);
                    }
                }
                r
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// One agent's interval for one group as it arrives on the wire.
fn wire_group(seed: u64) -> proto::GroupStats {
    let mut p = PhaseStats { sent: 10_000, acked: 10_000, bytes: 10_240_000, ..Default::default() };
    for v in samples(10_000, seed) {
        p.response.record_ns(v);
        p.service.record_ns(v / 2);
    }
    GroupPhases { warmup: PhaseStats::default(), measure: p }.to_proto(0, proto::Role::Producer)
}

fn interval_merge(c: &mut Criterion) {
    let mut g = c.benchmark_group("interval_merge");
    for agents in [10usize, 100] {
        let reports: Vec<proto::GroupStats> = (0..agents as u64).map(|s| wire_group(s + 1)).collect();
        g.throughput(Throughput::Elements(agents as u64));
        // What the coordinator did before: decode each agent's stats, then merge.
        g.bench_function(format!("decode_then_merge_{agents}_agents"), |b| {
            b.iter(|| {
                let mut total = GroupPhases::default();
                for r in &reports {
                    if let Ok(s) = GroupPhases::from_proto(r) {
                        total.merge(&s);
                    }
                }
                black_box(total)
            })
        });
        // Merge straight from the wire (sparse), value by value.
        g.bench_function(format!("merge_from_wire_{agents}_agents"), |b| {
            b.iter(|| {
                let mut total = GroupPhases::default();
                for r in &reports {
                    let _ = total.merge_proto(r);
                }
                black_box(total)
            })
        });
        // Read, sum in index space, settle once, all on one thread (the
        // coordinator splits the reading off: the two benches below).
        g.bench_function(format!("sum_then_settle_{agents}_agents"), |b| {
            b.iter(|| {
                let mut total = GroupPhases::default();
                let mut sums = GroupSums::default();
                for r in &reports {
                    let _ = total.merge_proto_deferred(r, &mut sums);
                }
                sums.settle_into(&mut total);
                black_box(total)
            })
        });
        // The coordinator's split: histograms read where each report
        // arrives (in parallel across sessions), then the run loop only adds.
        g.bench_function(format!("read_ahead_{agents}_agents"), |b| {
            b.iter(|| black_box(reports.iter().map(ReadGroup::read).collect::<Vec<_>>()))
        });
        g.bench_function(format!("add_read_then_settle_{agents}_agents"), |b| {
            b.iter_batched(
                || reports.iter().map(ReadGroup::read).collect::<Vec<_>>(),
                |read| {
                    let mut total = GroupPhases::default();
                    let mut sums = GroupSums::default();
                    for (r, read) in reports.iter().zip(read) {
                        let _ = total.merge_read_deferred(r, read, &mut sums);
                    }
                    sums.settle_into(&mut total);
                    black_box(total)
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, stamp, histogram, rangeset, interval_merge);
criterion_main!(benches);
