//! Counting equal values: the sampling profiler's histogram (`/proc/profile`).

use alloc::vec::Vec;

/// Each distinct value of `samples` with how often it occurs, most frequent first (ties
/// by value). Sorts `samples` in place.
pub fn tally(samples: &mut [u64]) -> Vec<(u64, u32)> {
    samples.sort_unstable();
    let mut out: Vec<(u64, u32)> = Vec::new();
    for &s in samples.iter() {
        match out.last_mut() {
            Some((v, n)) if *v == s => *n += 1,
            _ => out.push((s, 1)),
        }
    }
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn most_frequent_first() {
        let mut s = [5, 1, 5, 9, 1, 5];
        assert_eq!(tally(&mut s), [(5, 3), (1, 2), (9, 1)]);
        assert!(tally(&mut []).is_empty());
    }

    proptest! {
        /// Every sample is counted once, under its own value, and the counts never rise.
        #[test]
        fn counts_every_sample(mut s in proptest::collection::vec(0u64..20, 0..200)) {
            let orig = s.clone();
            let t = tally(&mut s);
            prop_assert_eq!(t.iter().map(|&(_, n)| n as usize).sum::<usize>(), orig.len());
            for &(v, n) in &t {
                prop_assert_eq!(orig.iter().filter(|&&x| x == v).count(), n as usize);
            }
            prop_assert!(t.windows(2).all(|w| w[0].1 >= w[1].1));
        }
    }
}
