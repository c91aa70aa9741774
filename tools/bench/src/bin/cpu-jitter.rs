//! How steady is this machine's CPU? Runs the same fixed chunk of integer
//! work (no memory traffic, no system calls) over and over on one thread
//! for N seconds and prints the spread of its wall and thread-CPU time.
//!
//! On dedicated hardware the chunk's CPU time is nearly constant. On a
//! shared virtual machine the hypervisor may slow a vCPU without the guest
//! seeing it as steal: the chunk's *CPU* time then grows too. That is the
//! yardstick for reading per-interval worst cases (such as the
//! coordinator's `interval_merge_ms_max`): a spike in a fixed workload that
//! also shows here is the machine, not the work.
//!
//!   cpu-jitter [seconds, default 15]

use std::time::{Duration, Instant};

/// One chunk: about 4-5 ms of dependent multiply-adds on a 2020s x86 core.
const CHUNK_STEPS: u64 = 3_000_000;

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(15);
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let mut x: u64 = 1;
    while Instant::now() < end {
        let (w0, c0) = (Instant::now(), thread_cpu());
        for _ in 0..CHUNK_STEPS {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407));
        }
        wall.push(w0.elapsed());
        cpu.push(thread_cpu().saturating_sub(c0));
    }
    let summary = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
        serde_json::json!({ "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0), "max_over_p50": at(1.0) / at(0.5) })
    };
    let out = serde_json::json!({
        "chunks": wall.len(),
        "wall": summary(&mut wall),
        "thread_cpu": summary(&mut cpu),
    });
    println!("{out}");
}
