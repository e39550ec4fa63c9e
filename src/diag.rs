//! Process diagnostics every stage may use: resident memory readings and the
//! `MODELMAP_BENCH_TRACE` memory log. A leaf: it names no other module.

/// Peak resident set size of this process (Linux `VmHWM`), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|k| k * 1024)
}

/// Current resident set size of this process (Linux `VmRSS`), bytes.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

/// Under `MODELMAP_BENCH_TRACE`, logs the resident and peak memory at a named stage (to see which
/// stage of a large scene's setup holds what).
pub fn trace_memory(stage: &str) {
    if std::env::var_os("MODELMAP_BENCH_TRACE").is_none() {
        return;
    }
    let mib = |b: Option<u64>| b.map_or(-1.0, |b| b as f64 / (1 << 20) as f64);
    let kib = |k: &str| mib(proc_status_kib(k).map(|k| k * 1024));
    eprintln!(
        "memory: {stage:<28} rss {:>8.0} MiB  peak {:>8.0} MiB  (anon {:.0}, file {:.0})",
        mib(rss_bytes()),
        mib(peak_rss_bytes()),
        kib("RssAnon:"),
        kib("RssFile:")
    );
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
