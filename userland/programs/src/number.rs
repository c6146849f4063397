//! Numbers as tools take them on the command line.

/// A decimal `u64` (digits only).
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Decimal seconds (`1`, `0.25`, `.5`; at most 9 decimals and 10^6 s) as ns.
pub fn parse_seconds_ns(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.len() > 9 {
        return None;
    }
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    if whole > 1_000_000 {
        return None;
    }
    let mut ns_frac = 0u64;
    for (i, b) in frac.bytes().enumerate() {
        ns_frac += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
    }
    Some(whole * 1_000_000_000 + ns_frac)
}

/// Decimal seconds as ms.
pub fn parse_ms(s: &str) -> Option<u64> {
    parse_seconds_ns(s).map(|ns| ns / 1_000_000)
}
