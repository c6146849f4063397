//! The split-ring format (virtio 1.2 §2.7): layout, index arithmetic, device-value checks.
//!
//! A split virtqueue is three areas in memory the device reads and writes, addressed by
//! free-running `u16` indices that wrap; everything the device writes is untrusted. The
//! layout, the wrap-around arithmetic and the checks of a device-written used index and
//! element are pure functions here, apart from the ring's type states (`vring.rs`), so they
//! can be proved (Kani) and tested on their own; `RingMemory` is how a ring reaches its
//! memory (the kernel's DMA memory, a host `Vec`, a model's atomics).

use abi::Error;

use crate::dma::TransferDone;

/// Descriptor flag: buffer continues via `next` (virtio 1.2 §2.7.5).
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: device writes this buffer (otherwise it reads it).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Driver -> device: do not interrupt me (virtio 1.2 §2.7.7).
pub const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Device -> driver: do not notify me (virtio 1.2 §2.7.10).
pub const VRING_USED_F_NO_NOTIFY: u16 = 1;
/// Largest split-queue size (virtio 1.2 §2.7).
pub const MAX_QUEUE_SIZE: usize = 32768;

/// `idx & (qsz - 1)`: the ring slot of a free-running index (`qsz` a power of two).
pub const fn ring_slot(idx: u16, qsz: u16) -> usize {
    (idx & qsz.wrapping_sub(1)) as usize
}

/// virtio 1.2 §2.7.10 `vring_need_event`: whether moving an index from `old` to `new` passed
/// `event` (the other side asked to be told once index `event` is reached).
pub const fn vring_need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// Completions published but not yet consumed.
pub const fn used_pending(used_idx: u16, last_used: u16) -> u16 {
    used_idx.wrapping_sub(last_used)
}

/// A device-written value the ring refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsedError {
    /// Used `idx` ran more than the queue size ahead of the last consumed index. The ring is
    /// then marked broken (reset the device); nothing more is consumed.
    IdxTooFarAhead {
        /// The device's used index.
        used_idx: u16,
        /// The driver's last consumed index.
        last_used: u16,
    },
    /// `id` is not a descriptor index of this queue.
    IdOutOfRange {
        /// The id the device wrote.
        id: u32,
    },
    /// `id` names a descriptor that is not posted.
    NotInFlight {
        /// The id the device wrote.
        id: u32,
    },
    /// `len` is larger than the buffer posted under `id`; the buffer is reclaimed unread.
    LenTooLong {
        /// The descriptor id.
        id: u32,
        /// The length the device wrote.
        len: u32,
        /// The length posted.
        posted: u32,
    },
}

/// Checks a used index against the last consumed one; returns how many entries are pending.
pub const fn check_used_idx(used_idx: u16, last_used: u16, qsz: u16) -> Result<u16, UsedError> {
    let pending = used_pending(used_idx, last_used);
    if pending > qsz {
        Err(UsedError::IdxTooFarAhead {
            used_idx,
            last_used,
        })
    } else {
        Ok(pending)
    }
}

/// Validates one used element. `posted_len(id)` gives the posted length of an in-flight
/// descriptor (`None` if not in flight); it is called only with `id < qsz`.
pub fn check_used_elem(
    id: u32,
    len: u32,
    qsz: u16,
    posted_len: impl FnOnce(u16) -> Option<u32>,
) -> Result<u16, UsedError> {
    if id >= u32::from(qsz) {
        return Err(UsedError::IdOutOfRange { id });
    }
    let posted = posted_len(id as u16).ok_or(UsedError::NotInFlight { id })?;
    if len > posted {
        return Err(UsedError::LenTooLong { id, len, posted });
    }
    Ok(id as u16)
}

/// Memory ordering requested from `RingMemory::fence`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fence {
    /// Order earlier reads before later reads (`dmb oshld`; virtio_rmb).
    Read,
    /// Order earlier writes before later writes (`dmb oshst`; virtio_wmb).
    Write,
    /// Order everything (`dmb osh`; virtio_mb).
    Full,
}

/// Shared ring memory, as offsets from the start of the ring area. Implementations use
/// volatile (or atomic) accesses: the device reads and writes it concurrently. Offsets passed
/// are always in bounds of `VringLayout::total` and naturally aligned.
pub trait RingMemory {
    /// Bus address of offset 0.
    fn paddr(&self) -> u64;
    /// Bytes available.
    fn len(&self) -> usize;
    /// Whether no bytes are available.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Little-endian 16-bit read.
    fn read_u16(&self, off: usize) -> u16;
    /// Little-endian 32-bit read.
    fn read_u32(&self, off: usize) -> u32;
    /// Little-endian 16-bit write.
    fn write_u16(&self, off: usize, v: u16);
    /// Little-endian 32-bit write.
    fn write_u32(&self, off: usize, v: u32);
    /// Little-endian 64-bit write.
    fn write_u64(&self, off: usize, v: u64);
    /// A memory barrier against the device.
    fn fence(&self, kind: Fence);
    /// Called by [`Vring::release`] with the proof, read from the ring's own device, that it
    /// stopped all DMA: memory that a plain drop would have to quarantine (the device might
    /// still write the used ring) may be freed on drop from here on. The default does
    /// nothing.
    fn device_stopped(&mut self, _done: &TransferDone) {}
}

/// Offsets of the three parts of a split virtqueue laid out back to back (descriptor table
/// 16-aligned at 0, avail ring after it, used ring 4-aligned after that; virtio 1.2 §2.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VringLayout {
    /// Queue size (power of two).
    pub size: u16,
    /// Offset of the descriptor table.
    pub desc: usize,
    /// Offset of the available ring.
    pub avail: usize,
    /// Offset of the used ring.
    pub used: usize,
    /// Total bytes.
    pub total: usize,
}

impl VringLayout {
    /// Layout for `size` entries; `EINVAL` unless a power of two in `1..=32768`.
    pub const fn new(size: usize) -> Result<VringLayout, Error> {
        VringLayout::with_used_align(size, 4)
    }

    /// Layout for `size` entries with the used ring aligned to `used_align` bytes (a power of
    /// two ≥ 4). The legacy virtio PCI interface needs 4096 (virtio 1.2 §2.7, "Legacy
    /// Interfaces: A Note on Virtqueue Layout"); modern devices take [`VringLayout::new`].
    pub const fn with_used_align(size: usize, used_align: usize) -> Result<VringLayout, Error> {
        if size == 0 || size > MAX_QUEUE_SIZE || !size.is_power_of_two() {
            return Err(Error::EINVAL);
        }
        if used_align < 4 || !used_align.is_power_of_two() {
            return Err(Error::EINVAL);
        }
        let avail = 16 * size;
        let used = (avail + 6 + 2 * size).next_multiple_of(used_align);
        let total = used + 6 + 8 * size;
        Ok(VringLayout {
            size: size as u16,
            desc: 0,
            avail,
            used,
            total,
        })
    }

    /// Offset of `avail.ring[slot]`.
    pub const fn avail_ring(&self, slot: usize) -> usize {
        self.avail + 4 + 2 * slot
    }
    /// Offset of `used_event` (end of the avail ring).
    pub const fn used_event(&self) -> usize {
        self.avail_ring(self.size as usize)
    }
    /// Offset of `used.ring[slot]` (an `{id: u32, len: u32}` pair).
    pub const fn used_ring(&self, slot: usize) -> usize {
        self.used + 4 + 8 * slot
    }
    /// Offset of `avail_event` (end of the used ring).
    pub const fn avail_event(&self) -> usize {
        self.used_ring(self.size as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn need_event_matches_spec_examples() {
        assert!(vring_need_event(0, 1, 0));
        assert!(!vring_need_event(1, 1, 0));
        assert!(vring_need_event(5, 10, 3));
        assert!(!vring_need_event(10, 10, 3));
        // Across wrap-around.
        assert!(vring_need_event(0xffff, 2, 0xfffe));
        assert!(vring_need_event(0, 2, 0xfffe));
        assert!(!vring_need_event(3, 2, 0xfffe));
    }

    /// An `event` the index already passed before `old` (at `old - 1`) was announced by an
    /// earlier notification: moving on from `old` must not notify again (the window is
    /// `[old, new)`, open at `new`, closed at `old`).
    #[test]
    fn need_event_excludes_an_event_passed_before_old() {
        assert!(!vring_need_event(4, 10, 5));
        assert!(vring_need_event(5, 10, 5));
        assert!(!vring_need_event(6, 7, 7), "nothing moved");
        // Across wrap-around.
        assert!(!vring_need_event(0xfffd, 2, 0xfffe));
        assert!(!vring_need_event(0xffff, 3, 0));
    }

    #[test]
    fn index_arithmetic_wraps() {
        assert_eq!(used_pending(2, 0xfffe), 4);
        assert_eq!(ring_slot(0xffff, 8), 7);
        assert_eq!(ring_slot(0, 8), 0);
        assert_eq!(check_used_idx(3, 0xfffb, 8), Ok(8));
        assert!(check_used_idx(4, 0xfffb, 8).is_err());
        for last in [0u16, 1, 0x7fff, 0xfff0, 0xffff] {
            for n in 0..=8u16 {
                assert_eq!(check_used_idx(last.wrapping_add(n), last, 8), Ok(n));
            }
        }
    }

    #[test]
    fn layout_offsets() {
        let l = VringLayout::new(256).unwrap();
        assert_eq!((l.desc, l.avail, l.used), (0, 4096, 4096 + 6 + 512 + 2));
        assert_eq!(l.used % 4, 0);
        assert_eq!(l.total, l.used + 6 + 8 * 256);
        for bad in [0, 3, 65536, 100] {
            assert!(VringLayout::new(bad).is_err());
        }
        assert!(VringLayout::new(MAX_QUEUE_SIZE).is_ok());
    }

    /// The fields inside the avail and used rings sit where virtio 1.2 §2.7.6 and §2.7.8 put
    /// them (`flags`, `idx`, `ring[size]`, then the event field), numbers worked out by hand
    /// for 256 entries: the host fake device finds them through these same functions, so a
    /// wrong offset would go unnoticed by every round trip.
    #[test]
    fn ring_fields_sit_where_the_spec_puts_them() {
        let l = VringLayout::new(256).unwrap();
        assert_eq!((l.avail, l.used), (4096, 4616));
        assert_eq!((l.avail_ring(0), l.avail_ring(255)), (4100, 4610));
        assert_eq!(l.used_event(), 4612, "after avail.ring[255]");
        assert_eq!((l.used_ring(0), l.used_ring(255)), (4620, 6660));
        assert_eq!(l.avail_event(), 6668, "after used.ring[255]");
        assert_eq!(l.total, 6670, "avail_event is the last field");
    }
}
