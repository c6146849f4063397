//! Half-open physical address ranges and subtraction of reserved ones.
//!
//! Pure arithmetic used to turn "RAM banks minus image, DTB, reserved-memory"
//! into the free list the frame allocator starts from. Host-tested.

use heapless::Vec;

/// `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Range {
    /// A range; an inverted one is empty.
    pub const fn new(start: usize, end: usize) -> Self {
        Range {
            start,
            end: if end < start { start } else { end },
        }
    }
    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.end - self.start
    }
    /// Whether the range has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// Shrinks the range inward to `align` boundaries (a power of two).
    pub const fn align_inward(&self, align: usize) -> Self {
        let start = self.start.div_ceil(align) * align;
        Range::new(start, self.end & !(align - 1))
    }
    /// The bytes both ranges hold, if any.
    pub fn intersect(&self, other: &Range) -> Option<Range> {
        let r = Range::new(self.start.max(other.start), self.end.min(other.end));
        (!r.is_empty()).then_some(r)
    }
    /// Grows the range outward to `align` boundaries (a power of two).
    pub const fn align_outward(&self, align: usize) -> Self {
        Range::new(self.start & !(align - 1), self.end.div_ceil(align) * align)
    }
}

/// `ranges` minus every range in `holes`, keeping order; empty pieces are dropped.
/// Returns `None` if the result would not fit in `N` pieces.
pub fn subtract<const N: usize>(ranges: &[Range], holes: &[Range]) -> Option<Vec<Range, N>> {
    let mut out: Vec<Range, N> = Vec::new();
    for &r in ranges {
        let mut pieces: Vec<Range, N> = Vec::new();
        pieces.push(r).ok()?;
        for h in holes.iter().filter(|h| !h.is_empty()) {
            let mut next: Vec<Range, N> = Vec::new();
            for p in &pieces {
                if h.end <= p.start || h.start >= p.end {
                    next.push(*p).ok()?;
                    continue;
                }
                if h.start > p.start {
                    next.push(Range::new(p.start, h.start)).ok()?;
                }
                if h.end < p.end {
                    next.push(Range::new(h.end, p.end)).ok()?;
                }
            }
            pieces = next;
        }
        for p in pieces.into_iter().filter(|p| !p.is_empty()) {
            out.push(p).ok()?;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: usize, b: usize) -> Range {
        Range::new(a, b)
    }

    #[test]
    fn intersection() {
        let a = Range::new(0x1000, 0x3000);
        assert_eq!(
            a.intersect(&Range::new(0x2000, 0x5000)),
            Some(Range::new(0x2000, 0x3000))
        );
        assert_eq!(a.intersect(&Range::new(0x3000, 0x5000)), None);
        assert_eq!(a.intersect(&Range::new(0, 0x8000)), Some(a));
    }

    #[test]
    fn subtract_middle_edges_and_outside() {
        let got = subtract::<8>(&[r(0, 100)], &[r(10, 20), r(0, 5), r(90, 200), r(300, 400)]);
        assert_eq!(got.unwrap().as_slice(), &[r(5, 10), r(20, 90)]);
    }

    #[test]
    fn subtract_whole_and_multiple_banks() {
        let got = subtract::<8>(&[r(0, 10), r(20, 30)], &[r(0, 10), r(25, 26)]);
        assert_eq!(got.unwrap().as_slice(), &[r(20, 25), r(26, 30)]);
    }

    #[test]
    fn subtract_overflowing_capacity_is_none() {
        let holes: [Range; 4] = [r(1, 2), r(3, 4), r(5, 6), r(7, 8)];
        assert!(subtract::<2>(&[r(0, 10)], &holes).is_none());
    }

    #[test]
    fn alignment() {
        assert_eq!(r(1, 8191).align_inward(4096), r(4096, 4096));
        assert_eq!(r(1, 4097).align_outward(4096), r(0, 8192));
        assert!(r(5, 3).is_empty());
    }
}
