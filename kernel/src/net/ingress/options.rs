//! IPv4 options (RFC 791 §3.1, RFC 1122 §3.2.1.8): validated, never trusted.
//!
//! A host that answers datagrams with broken option lists can be mapped and probed
//! with them, and source routes let a sender steer replies through hosts of its
//! choice. The rules follow Linux's `ip_options_compile` for received datagrams:
//! every option's length must be at least 2 and stay inside the header; Record
//! Route, Timestamp and source routes must be well formed and appear at most once; a
//! full Timestamp whose overflow counter is already 15 is an error (RFC 791: "the
//! original datagram is considered to be in error"); Router Alert and Stream ID have
//! their fixed length. Source routes are refused outright (Linux's default
//! `accept_source_route = 0`). Unknown options are ignored, as RFC 1122 requires.

use super::Dropped;

const EOL: u8 = 0;
const NOP: u8 = 1;
const RECORD_ROUTE: u8 = 7;
const TIMESTAMP: u8 = 68;
const LOOSE_ROUTE: u8 = 131;
const STREAM_ID: u8 = 136;
const STRICT_ROUTE: u8 = 137;
const ROUTER_ALERT: u8 = 148;

/// Checks the option bytes between the fixed 20-byte header and the end given by IHL.
pub fn check(opts: &[u8]) -> Result<(), Dropped> {
    let (mut rr, mut ts) = (false, false);
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        match kind {
            EOL => return Ok(()), // the rest is padding
            NOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let len = usize::from(*opts.get(i + 1).ok_or(Dropped::IpOptions)?);
        if len < 2 || i + len > opts.len() {
            return Err(Dropped::IpOptions);
        }
        let opt = &opts[i..i + len];
        match kind {
            LOOSE_ROUTE | STRICT_ROUTE => return Err(Dropped::SourceRoute),
            RECORD_ROUTE if !core::mem::replace(&mut rr, true) => record_route(opt)?,
            TIMESTAMP if !core::mem::replace(&mut ts, true) => timestamp(opt)?,
            RECORD_ROUTE | TIMESTAMP => return Err(Dropped::IpOptions), // a second one
            ROUTER_ALERT | STREAM_ID if len != 4 => return Err(Dropped::IpOptions),
            _ => {}
        }
        i += len;
    }
    Ok(())
}

/// Record Route: length ≥ 3, pointer ≥ 4; a pointer inside the option needs room for
/// a whole address after it (a pointer past the end means "full", which is fine).
fn record_route(opt: &[u8]) -> Result<(), Dropped> {
    let len = opt.len();
    let ptr = usize::from(*opt.get(2).ok_or(Dropped::IpOptions)?);
    if len < 3 || ptr < 4 || (ptr <= len && ptr + 3 > len) {
        return Err(Dropped::IpOptions);
    }
    Ok(())
}

/// Timestamp: length ≥ 4, pointer ≥ 5, a known flag (0: timestamps, 1 and 3: address
/// and timestamp pairs) with room for its entry; a full option with overflow 15 is bad.
fn timestamp(opt: &[u8]) -> Result<(), Dropped> {
    let len = opt.len();
    if len < 4 {
        return Err(Dropped::IpOptions);
    }
    let (ptr, flag, overflow) = (usize::from(opt[2]), opt[3] & 0xf, opt[3] >> 4);
    let entry = match flag {
        0 => 4,
        1 | 3 => 8,
        _ => return Err(Dropped::IpOptions),
    };
    if ptr < 5 || (ptr <= len && ptr + entry - 1 > len) || (ptr > len && overflow == 15) {
        return Err(Dropped::IpOptions);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn well_formed_options_pass() {
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[NOP, NOP, NOP, EOL]), Ok(()));
        assert_eq!(check(&[EOL, 0xff, 0xff, 0xff]), Ok(()), "padding after EOL");
        // Record Route with room for 9 addresses, empty and full.
        let mut rr = vec![RECORD_ROUTE, 39, 4];
        rr.resize(39, 0);
        rr.push(EOL);
        assert_eq!(check(&rr), Ok(()));
        rr[2] = 40;
        assert_eq!(check(&rr), Ok(()), "full: pointer past the end");
        // Timestamps only, and address + timestamp pairs.
        assert_eq!(
            check(&[TIMESTAMP, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Ok(())
        );
        assert_eq!(
            check(&[TIMESTAMP, 12, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Ok(())
        );
        assert_eq!(
            check(&[TIMESTAMP, 12, 13, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Ok(()),
            "full, overflow 14"
        );
        assert_eq!(check(&[ROUTER_ALERT, 4, 0, 0]), Ok(()));
        assert_eq!(check(&[STREAM_ID, 4, 0, 1]), Ok(()));
        assert_eq!(check(&[99, 4, 1, 2]), Ok(()), "unknown options are ignored");
    }

    #[test]
    fn the_issue_s_malformed_options_are_refused() {
        // Record Route of length 0, 1, running past the header, 255.
        assert_eq!(check(&[RECORD_ROUTE, 0, 4, 0]), Err(Dropped::IpOptions));
        assert_eq!(check(&[RECORD_ROUTE, 1, 4, 0]), Err(Dropped::IpOptions));
        let mut past = vec![RECORD_ROUTE, 40, 4];
        past.resize(36, 0);
        assert_eq!(check(&past), Err(Dropped::IpOptions));
        let mut huge = vec![RECORD_ROUTE, 255, 4];
        huge.resize(40, 0);
        assert_eq!(check(&huge), Err(Dropped::IpOptions));
        // Forty bytes of 0xff: type 255, length 255.
        assert_eq!(check(&[0xff; 40]), Err(Dropped::IpOptions));
        // Source routes.
        assert_eq!(
            check(&[LOOSE_ROUTE, 7, 4, 192, 0, 2, 9, EOL]),
            Err(Dropped::SourceRoute)
        );
        assert_eq!(
            check(&[STRICT_ROUTE, 7, 4, 192, 0, 2, 9, EOL]),
            Err(Dropped::SourceRoute)
        );
        // A full timestamp whose overflow counter cannot count any further.
        assert_eq!(
            check(&[TIMESTAMP, 12, 13, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Dropped::IpOptions)
        );
    }

    #[test]
    fn other_malformed_options_are_refused() {
        let bad: &[&[u8]] = &[
            &[RECORD_ROUTE],                                 // no length byte
            &[RECORD_ROUTE, 2, 0, 0],                        // no pointer
            &[RECORD_ROUTE, 7, 3, 0, 0, 0, 0, EOL],          // pointer < 4
            &[RECORD_ROUTE, 7, 5, 0, 0, 0, 0, EOL],          // pointer without room for an address
            &[RECORD_ROUTE, 3, 4, RECORD_ROUTE, 3, 4, 0, 0], // twice
            &[TIMESTAMP, 3, 5, 0],                           // too short
            &[TIMESTAMP, 8, 4, 0, 0, 0, 0, 0],               // pointer < 5
            &[TIMESTAMP, 8, 5, 2, 0, 0, 0, 0],               // unknown flag
            &[TIMESTAMP, 8, 5, 1, 0, 0, 0, 0],               // no room for a pair
            &[
                TIMESTAMP, 8, 5, 0, 0, 0, 0, 0, TIMESTAMP, 8, 5, 0, 0, 0, 0, 0,
            ],
            &[ROUTER_ALERT, 3, 0, 0],
            &[NOP, 99, 9, 0, 0], // past the header
        ];
        for opts in bad {
            assert_eq!(check(opts), Err(Dropped::IpOptions), "{opts:?}");
        }
    }

    #[test]
    fn random_option_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for n in 0..20_000 {
            let len = n % 41;
            let opts: std::vec::Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Mostly small values, so the interesting kinds and lengths come up.
                    (seed as u8) % if n % 2 == 0 { 12 } else { 255 }
                })
                .collect();
            let _ = check(&opts);
        }
    }
}
