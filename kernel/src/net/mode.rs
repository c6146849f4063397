//! How the net task learns about received frames, and the periods derived from it.
//!
//! `net=poll:<hz>` comes from the command line, so any `u64` can arrive here: zero, a
//! rate the timer cannot keep, or `u64::MAX`. Every period the stack derives from it goes
//! through [`RxMode::poll_period_ns`], which clamps to what the scheduler can honour, so
//! no value divides by zero, overflows, or turns the task into a busy loop. Pure and
//! host-tested.

/// Slowest polling rate: one poll a second.
pub const MIN_POLL_HZ: u64 = 1;
/// Fastest polling rate: every 100 µs. Faster would poll more often than the scheduler
/// switches threads and spin the core for nothing.
pub const MAX_POLL_HZ: u64 = 10_000;

/// How the net task learns about received frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxMode {
    /// The RX MSI-X vector wakes the task (NAPI over the capability types).
    Interrupt,
    /// No RX interrupt: the task polls the ring every `1/hz` seconds (the predecessor's
    /// design, kept so benchmarks can compare the same build).
    Poll {
        /// Polls per second (clamped to `MIN_POLL_HZ..=MAX_POLL_HZ` when used).
        hz: u64,
    },
}

impl RxMode {
    /// The polling rate actually used: `hz` clamped to `MIN_POLL_HZ..=MAX_POLL_HZ`
    /// (`None` in interrupt mode).
    pub fn poll_hz(self) -> Option<u64> {
        match self {
            RxMode::Interrupt => None,
            RxMode::Poll { hz } => Some(hz.clamp(MIN_POLL_HZ, MAX_POLL_HZ)),
        }
    }

    /// Nanoseconds between polls: between 100 µs and 1 s, never 0 (`None` in interrupt
    /// mode).
    pub fn poll_period_ns(self) -> Option<u64> {
        self.poll_hz().map(|hz| 1_000_000_000 / hz)
    }
}

/// The first multiple of `period_ns` strictly after `now_ns` (the next polling tick);
/// saturates instead of overflowing, and treats a zero period as one nanosecond.
pub fn next_tick(now_ns: u64, period_ns: u64) -> u64 {
    let period = period_ns.max(1);
    (now_ns / period).saturating_add(1).saturating_mul(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hz_gives_a_usable_period() {
        let edges = [
            0,
            1,
            2,
            3,
            99,
            100,
            9_999,
            10_000,
            10_001,
            1_000_000_000,
            2_000_000_000,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let random = (0..10_000).map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed >> (seed % 64)
        });
        for hz in edges
            .into_iter()
            .chain([u64::MAX, u64::MAX - 1])
            .chain(random)
        {
            let mode = RxMode::Poll { hz };
            let period = mode.poll_period_ns().unwrap();
            assert!(
                (100_000..=1_000_000_000).contains(&period),
                "hz {hz}: period {period}"
            );
            let hz_used = mode.poll_hz().unwrap();
            assert!((MIN_POLL_HZ..=MAX_POLL_HZ).contains(&hz_used));
            for now in [
                0,
                1,
                period - 1,
                period,
                u64::MAX / 2,
                u64::MAX - period,
                u64::MAX,
            ] {
                let t = next_tick(now, period);
                assert!(t > now || t == u64::MAX, "hz {hz}, now {now}: tick {t}");
                assert!(t - now <= period || t == u64::MAX);
            }
        }
        assert_eq!(RxMode::Poll { hz: 100 }.poll_period_ns(), Some(10_000_000));
        assert_eq!(RxMode::Interrupt.poll_period_ns(), None);
        assert_eq!(next_tick(25, 10), 30);
        assert_eq!(next_tick(30, 10), 40);
        assert_eq!(next_tick(7, 0), 8);
    }
}
