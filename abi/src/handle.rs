//! `Handle`: how user space names a slot in its capability table.
//!
//! A handle is an index plus a generation so a dropped handle can never alias a later
//! capability in the same slot (seL4/Fuchsia-style stale-handle detection). The tag bit is set
//! in every handle the kernel issues, so `0` and small integers mistaken for file descriptors
//! never resolve.
//!
//! ```text
//!  31  30                      12 11            0
//! +---+--------------------------+--------------+
//! |tag|   generation (19 bits)   | index (12 b) |
//! +---+--------------------------+--------------+
//! ```

/// Number of bits holding the slot index.
pub const INDEX_BITS: u32 = 12;
/// Number of bits holding the slot generation.
pub const GENERATION_BITS: u32 = 19;
/// Slots addressable by a handle (a `CSpace` may have fewer).
pub const MAX_SLOTS: usize = 1 << INDEX_BITS;
/// Largest generation a handle can carry; a slot that would pass it is retired.
pub const GENERATION_MAX: u32 = (1 << GENERATION_BITS) - 1;

const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
const GENERATION_SHIFT: u32 = INDEX_BITS;
const TAG_BIT: u32 = 1 << 31;

/// A capability handle as passed in registers. Any `u32` can be a `Handle`; only the kernel's
/// `CSpace` decides whether it resolves.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(pub u32);

impl Handle {
    /// Encodes a tagged handle; `None` if `index` or `generation` does not fit its field.
    pub const fn new(index: usize, generation: u32) -> Option<Handle> {
        if index >= MAX_SLOTS || generation > GENERATION_MAX {
            return None;
        }
        Some(Handle(
            TAG_BIT | (generation << GENERATION_SHIFT) | index as u32,
        ))
    }

    /// The raw register value.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The slot index field.
    pub const fn index(self) -> usize {
        (self.0 & INDEX_MASK) as usize
    }

    /// The generation field.
    pub const fn generation(self) -> u32 {
        (self.0 >> GENERATION_SHIFT) & GENERATION_MAX
    }

    /// Whether the tag bit (set on every kernel-issued handle) is present.
    pub const fn is_tagged(self) -> bool {
        self.0 & TAG_BIT != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        for &(i, g) in &[
            (0, 0),
            (1, 1),
            (4095, GENERATION_MAX),
            (17, 12345),
            (4095, 0),
        ] {
            let h = Handle::new(i, g).unwrap();
            assert_eq!((h.index(), h.generation(), h.is_tagged()), (i, g, true));
            assert_eq!(Handle(h.raw()), h);
        }
    }

    #[test]
    fn rejects_out_of_range_fields() {
        assert_eq!(Handle::new(MAX_SLOTS, 0), None);
        assert_eq!(Handle::new(0, GENERATION_MAX + 1), None);
    }

    #[test]
    fn small_integers_are_untagged() {
        for raw in 0..4096 {
            assert!(!Handle(raw).is_tagged());
        }
        assert_eq!(Handle::new(0, 0).unwrap().raw(), 0x8000_0000);
    }
}
