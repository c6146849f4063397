//! Converting between counter ticks and nanoseconds by multiply and shift.
//!
//! `ticks * 1e9 / freq` in 128 bits is a library division (`__udivti3`, a few hundred
//! instructions), and the kernel reads the time on every switch, wait and packet: under
//! QEMU's emulation it was a fifth of a busy CPU's samples in a UDP echo test. A [`Scale`]
//! fixes the ratio once, as a 32.32 fixed-point factor, so each conversion is one 64×64
//! multiply and a shift.

/// `x * num / den` as `(x * mult) >> 32`, exact to within one part in 2^32 of the ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    mult: u64,
    round_up: bool,
}

impl Scale {
    /// The factor `num / den` (`den` > 0; `num / den` < 2^32). `round_up` makes every
    /// result the ceiling instead of the floor (for deadlines: never early).
    pub const fn new(num: u64, den: u64, round_up: bool) -> Scale {
        let den = if den == 0 { 1 } else { den };
        let exact = ((num as u128) << 32) / den as u128;
        let mult = if exact > u64::MAX as u128 {
            u64::MAX
        } else {
            exact as u64
        };
        // Rounding the factor up as well keeps a ceiling a ceiling.
        let mult = if round_up && !((num as u128) << 32).is_multiple_of(den as u128) {
            mult.saturating_add(1)
        } else {
            mult
        };
        Scale { mult, round_up }
    }

    /// A factor made by [`Scale::new`] with the same `round_up`, from its [`Scale::mult`].
    pub const fn with_mult(mult: u64, round_up: bool) -> Scale {
        Scale { mult, round_up }
    }

    /// The 32.32 fixed-point factor (to keep in an atomic word).
    pub const fn mult(self) -> u64 {
        self.mult
    }

    /// `x` scaled (saturating at `u64::MAX`).
    pub fn apply(self, x: u64) -> u64 {
        let p = u128::from(x) * u128::from(self.mult);
        let p = if self.round_up { p + 0xFFFF_FFFF } else { p };
        u64::try_from(p >> 32).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FREQS: [u64; 5] = [
        62_500_000,
        24_000_000,
        19_200_000,
        1_000_000_000,
        54_000_000,
    ];

    fn exact(x: u64, num: u64, den: u64) -> u128 {
        u128::from(x) * u128::from(num) / u128::from(den)
    }

    #[test]
    fn qemu_and_common_counters() {
        // QEMU virt's 62.5 MHz counter: 16 ns a tick, exactly.
        let to_ns = Scale::new(1_000_000_000, 62_500_000, false);
        assert_eq!(to_ns.apply(1), 16);
        assert_eq!(to_ns.apply(62_500_000), 1_000_000_000);
        let to_ticks = Scale::new(62_500_000, 1_000_000_000, true);
        assert_eq!(to_ticks.apply(16), 1);
        assert_eq!(to_ticks.apply(17), 2, "a deadline between ticks rounds up");
        assert_eq!(to_ticks.apply(0), 0);
        // 24 MHz (most boards): 41.67 ns a tick.
        let to_ns = Scale::new(1_000_000_000, 24_000_000, false);
        assert!((999_999_999..=1_000_000_000).contains(&to_ns.apply(24_000_000)));
        assert!((124..=125).contains(&to_ns.apply(3)));
    }

    proptest! {
        /// Ticks to ns: never above the exact value, and below it by at most 1 ns per
        /// 2^32 ticks (+1 for the floor), up to 2^58 ticks (146 years at 62.5 MHz).
        #[test]
        fn ticks_to_ns_is_close_and_never_ahead(x in 0u64..(1 << 58), f in 0usize..5) {
            let freq = FREQS[f];
            let got = u128::from(Scale::new(1_000_000_000, freq, false).apply(x));
            let want = exact(x, 1_000_000_000, freq);
            prop_assert!(got <= want);
            prop_assert!(want - got <= u128::from(x >> 32) + 1);
        }

        /// Ns to ticks (deadlines): never before the exact (rounded-up) tick.
        #[test]
        fn ns_to_ticks_never_early(x in 0u64..(1 << 62), f in 0usize..5) {
            let freq = FREQS[f];
            let got = u128::from(Scale::new(freq, 1_000_000_000, true).apply(x));
            let want = (u128::from(x) * u128::from(freq)).div_ceil(1_000_000_000);
            prop_assert!(got >= want);
            prop_assert!(got - want <= u128::from(x >> 32) + 1);
        }

        /// Monotonic: a later counter never reads as an earlier time.
        #[test]
        fn monotonic(x in 0u64..(1 << 58), d in 0u64..1_000_000, f in 0usize..5) {
            let s = Scale::new(1_000_000_000, FREQS[f], false);
            prop_assert!(s.apply(x) <= s.apply(x + d));
        }
    }
}
