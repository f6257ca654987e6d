//! Sizes, durations, rates and times as people read them. Sizes are bytesize's IEC units
//! at the CLI's precision, times are chrono's; durations keep their own short form
//! (`4m05s`: humantime would write `4m 5s`, and the outputs must not change).

use std::time::Duration;

/// `1.50 GiB`, `12.5 MiB`, `300 MiB`, `312 B`: IEC units (bytesize), with two, one or no
/// decimals as the value in its unit has one, two or three digits before the point.
pub fn bytes(n: u64) -> String {
    // The value in the unit bytesize picks (1024^k <= n < 1024^(k+1), as f64 like
    // bytesize: n rounded to f64 may reach the next unit).
    let size = n as f64;
    let k = (size as u64).checked_ilog2().unwrap_or(0) / 10;
    let value = size / (1u64 << (10 * k)) as f64;
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{:.decimals$}", bytesize::ByteSize(n).display().iec())
}

/// `0.42 s`, `12.3 s`, `4m05s`, `2h03m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.2} s")
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let s = d.as_secs();
        if s < 3600 {
            format!("{}m{:02}s", s / 60, s % 60)
        } else {
            format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
        }
    }
}

/// Bytes per second over `d` (0 when no time passed).
pub fn bytes_per_sec(n: u64, d: Duration) -> u64 {
    let secs = d.as_secs_f64();
    if secs <= 0.0 {
        0
    } else {
        (n as f64 / secs) as u64
    }
}

/// `2026-11-22 03:15:22 UTC`.
pub fn time(ns: i64) -> String {
    chrono::DateTime::from_timestamp(ns.div_euclid(1_000_000_000), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("@{ns}ns"))
}

/// RFC 3339 with nanoseconds, for JSON.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(300 << 20), "300 MiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
        assert_eq!(duration(Duration::from_millis(420)), "0.42 s");
        assert_eq!(duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(duration(Duration::from_secs(7380)), "2h03m");
        assert_eq!(bytes_per_sec(100, Duration::from_secs(2)), 50);
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(rfc3339(1_500_000_000), "1970-01-01T00:00:01.500Z");
    }
}
