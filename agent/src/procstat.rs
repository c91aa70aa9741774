//! Process CPU time and peak RSS from /proc (Linux); zeros elsewhere.

/// CPU time (user + system) of this process, nanoseconds.
pub fn cpu_ns() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) start after ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    // USER_HZ is 100 on every Linux ABI in use.
    (ticks(11) + ticks(12)) * 10_000_000
}

/// Peak resident set size, bytes.
pub fn max_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_something_on_linux() {
        if cfg!(target_os = "linux") {
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = x.wrapping_add(i * i);
            }
            assert!(x > 0);
            assert!(super::max_rss_bytes() > 0);
            let _ = super::cpu_ns();
        }
    }
}
