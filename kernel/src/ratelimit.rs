//! A lock-free rate limit: at most `per_window` events per window of time, the rest
//! counted. `log=trace` goes through one (`console::trace_admit`), so hot paths can
//! trace without flooding the console.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// At most `per_window` admissions per `window_ns`, counting the refused.
pub struct RateLimit {
    per_window: u32,
    window_ns: u64,
    /// When the current window opened.
    start: AtomicU64,
    /// Admissions in the current window.
    used: AtomicU32,
    /// Refusals not yet reported.
    refused: AtomicU32,
}

impl RateLimit {
    /// A limit of `per_window` events per `window_ns` nanoseconds, its first window
    /// opening at time 0.
    pub const fn new(per_window: u32, window_ns: u64) -> Self {
        RateLimit {
            per_window,
            window_ns,
            start: AtomicU64::new(0),
            used: AtomicU32::new(0),
            refused: AtomicU32::new(0),
        }
    }

    /// Whether an event at `now_ns` may go ahead: `Some(n)` if so, `n` being the events
    /// refused since the last admission that reported them (non-zero once, on the first
    /// admission of a window after refusals, for the caller to say so); `None` if the
    /// window's quota is spent.
    pub fn admit(&self, now_ns: u64) -> Option<u32> {
        let start = self.start.load(Ordering::Relaxed);
        if now_ns.saturating_sub(start) >= self.window_ns
            && self
                .start
                .compare_exchange(start, now_ns, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.used.store(0, Ordering::Relaxed);
        }
        let quota = self.per_window;
        let taken = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                (u < quota).then_some(u + 1)
            });
        match taken {
            Ok(_) => Some(self.refused.swap(0, Ordering::Relaxed)),
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn admits_the_quota_then_counts_the_rest() {
        let limit = RateLimit::new(3, SECOND);
        let got: Vec<_> = (0..5).map(|i| limit.admit(10 + i)).collect();
        assert_eq!(got, [Some(0), Some(0), Some(0), None, None]);
        // The next window reports the two refused once.
        assert_eq!(limit.admit(SECOND + 20), Some(2));
        assert_eq!(limit.admit(SECOND + 21), Some(0));
    }

    #[test]
    fn a_quiet_spell_opens_a_fresh_window() {
        let limit = RateLimit::new(1, SECOND);
        assert_eq!(limit.admit(0), Some(0));
        assert_eq!(limit.admit(SECOND - 1), None);
        assert_eq!(limit.admit(10 * SECOND), Some(1));
        assert_eq!(limit.admit(10 * SECOND + 1), None);
        assert_eq!(limit.admit(11 * SECOND), Some(1));
    }
}
