//! `pool::split`: one DMA region cut into equal buffers, each its own typed handle.
//!
//! A device may hold [`abi::dev::MAX_DMA_REGIONS`] regions, so one region per buffer caps
//! a queue at a few dozen entries. A pool is one region of `count x buf_len` bytes, lent to
//! the device as a whole at [`split`], and handed out as [`Slice`]s: slice `i` is bytes
//! `[i * buf_len, (i + 1) * buf_len)` and is minted exactly once, so each slice is the only
//! way to reach its bytes. The slice keeps a `DmaRegion`'s rules: its bytes are the CPU's
//! while the driver holds it; [`crate::vring::Vring::post`] moves it into the ring (the
//! ring keeps it as a byteless lent handle) and it comes back only in a validated
//! completion. A slice can be posted only to a ring of the device the pool belongs to,
//! in a direction the region was allocated for.
//!
//! The region lives as long as its last slice (each slice holds a reference count): a
//! slice's bytes are always mapped. Dropping every slice drops the region's capability,
//! and the kernel decides, as for any region, whether the memory may be freed.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::fmt;

use abi::Error;

use crate::dma::{Cpu, Device as Lent, DmaDir, DmaRegion};
use crate::{DevSys, DeviceId};

/// The region behind a pool's slices.
struct PoolMem<B: DevSys> {
    region: DmaRegion<Lent, B>,
    addr: usize,
    buf_len: usize,
    count: u16,
}

/// One buffer of a pool, in CPU hands: its bytes are readable and writable. Not `Clone`;
/// minted once per index by [`split`].
#[must_use = "dropping a slice loses the buffer for good"]
pub struct Slice<B: DevSys> {
    pool: Rc<PoolMem<B>>,
    index: u16,
}

/// A slice the device holds (posted to a ring): no bytes. Only the ring makes one, and only
/// a validated completion turns it back into a [`Slice`]; nothing outside this crate can
/// make, read or convert one.
pub struct LentSlice<B: DevSys> {
    pool: Rc<PoolMem<B>>,
    index: u16,
}

/// Cuts `region` into `region.len() / buf_len` buffers of `buf_len` bytes (at most
/// 65 535; a tail shorter than a buffer is unused) and lends the region to its device: from here the
/// bytes are reached only through the slices. `EINVAL`, with the region back: `buf_len` 0
/// or larger than the region, or more than 65 535 buffers.
#[allow(
    clippy::result_large_err,
    clippy::type_complexity,
    reason = "the region comes back unchanged, by value"
)]
pub fn split<B: DevSys>(
    region: DmaRegion<Cpu, B>,
    buf_len: usize,
) -> Result<Vec<Slice<B>>, (DmaRegion<Cpu, B>, Error)> {
    let count = region.len().checked_div(buf_len).unwrap_or(0);
    let Ok(count) = u16::try_from(count) else {
        return Err((region, Error::EINVAL));
    };
    if count == 0 {
        return Err((region, Error::EINVAL));
    }
    let region = region.lend();
    let addr = region.mapped_at();
    let pool = Rc::new(PoolMem {
        region,
        addr,
        buf_len,
        count,
    });
    Ok((0..count)
        .map(|index| Slice {
            pool: pool.clone(),
            index,
        })
        .collect())
}

impl<B: DevSys> PoolMem<B> {
    fn start(&self, index: u16) -> usize {
        usize::from(index) * self.buf_len
    }
}

impl<B: DevSys> Slice<B> {
    /// The buffer's bytes.
    pub fn bytes(&self) -> &[u8] {
        let p = &*self.pool;
        // SAFETY: `index < count` and `count * buf_len <= region.len()` (checked in
        // `split`), so the range lies in the region, which the `Rc` keeps mapped. `split`
        // minted one `Slice` per index and a slice is not `Clone`; while the device holds
        // it the slice is a `LentSlice`, which has no bytes. So this borrow of `self` is
        // the only view of these bytes in the process, and the device does not own them.
        #[allow(unsafe_code, reason = "memory the kernel mapped for the pool")]
        unsafe {
            core::slice::from_raw_parts((p.addr + p.start(self.index)) as *const u8, p.buf_len)
        }
    }

    /// The buffer's bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let p = &*self.pool;
        // SAFETY: as for `bytes`; the mutable borrow of the unique slice makes this the
        // only view.
        #[allow(unsafe_code, reason = "memory the kernel mapped for the pool")]
        unsafe {
            core::slice::from_raw_parts_mut((p.addr + p.start(self.index)) as *mut u8, p.buf_len)
        }
    }

    /// Its index in the pool (`0..count`).
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Its bus address.
    pub fn bus_addr(&self) -> u64 {
        self.pool.region.bus_addr() + self.pool.start(self.index) as u64
    }

    /// Its length (the pool's buffer length; never 0).
    pub fn len(&self) -> usize {
        self.pool.buf_len
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The pool region's direction.
    pub fn dir(&self) -> DmaDir {
        self.pool.region.dir()
    }

    /// The device the pool was allocated for.
    pub fn device(&self) -> DeviceId {
        self.pool.region.device()
    }

    /// How many buffers the pool holds.
    pub fn pool_count(&self) -> u16 {
        self.pool.count
    }

    /// The ring takes it: no bytes until it comes back. No fence here: the ring's own
    /// fence before it publishes the available index orders the buffer's bytes too.
    pub(crate) fn lend(self) -> LentSlice<B> {
        LentSlice {
            pool: self.pool,
            index: self.index,
        }
    }
}

impl<B: DevSys> LentSlice<B> {
    /// Back to the CPU: only for a slice the device handed back through a used element the
    /// ring validated, after the read of the used index (`udrv::vring`).
    pub(crate) fn completed(self) -> Slice<B> {
        Slice {
            pool: self.pool,
            index: self.index,
        }
    }
}

impl<B: DevSys> fmt::Debug for Slice<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slice")
            .field("index", &self.index)
            .field("bus", &format_args!("{:#x}", self.bus_addr()))
            .field("len", &self.pool.buf_len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;

    #[test]
    fn a_region_splits_into_disjoint_slices_minted_once() {
        let (k, device) = FakeKernel::with_device();
        let region = device
            .dma_alloc(4 * 512 + 100, DmaDir::FromDevice, 64)
            .unwrap();
        let (h, bus) = (region.handle(), region.bus_addr());
        k.clear_log();
        let mut slices = split(region, 512).unwrap();
        assert_eq!(k.log(), ["fence"], "lent as a whole");
        assert_eq!(
            slices.len(),
            4,
            "the tail that does not fill a buffer is unused"
        );
        for (i, s) in slices.iter().enumerate() {
            assert_eq!(s.index() as usize, i);
            assert_eq!(s.bus_addr(), bus + 512 * i as u64);
            assert_eq!(
                (s.len(), s.pool_count(), s.dir()),
                (512, 4, DmaDir::FromDevice)
            );
            assert_eq!(s.device(), device.id());
        }
        slices[1].bytes_mut().fill(0xa5);
        slices[2].bytes_mut()[0] = 7;
        assert!(slices[0].bytes().iter().all(|&b| b == 0));
        assert!(slices[1].bytes().iter().all(|&b| b == 0xa5));
        let mem = k.dma_bytes(h);
        assert_eq!(
            (mem[511], mem[512], mem[1023], mem[1024]),
            (0, 0xa5, 0xa5, 7)
        );
        // The region lives until its last slice goes.
        let last = slices.pop().unwrap();
        drop(slices);
        assert!(!k.dropped(h));
        drop(last);
        assert!(k.dropped(h));
    }

    #[test]
    fn bad_geometry_hands_the_region_back() {
        let (_, device) = FakeKernel::with_device();
        let region = device.dma_alloc(1000, DmaDir::ToDevice, 64).unwrap();
        let (region, e) = split(region, 0).unwrap_err();
        assert_eq!((e, region.len()), (Error::EINVAL, 1000), "empty buffers");
        let (region, e) = split(region, 1001).unwrap_err();
        assert_eq!(e, Error::EINVAL, "a buffer larger than the region");
        assert_eq!(split(region, 1000).unwrap().len(), 1);
        let big = device.dma_alloc(65_536, DmaDir::ToDevice, 64).unwrap();
        let (big, e) = split(big, 1).unwrap_err();
        assert_eq!(e, Error::EINVAL, "more slices than a u16 counts");
        assert_eq!(split(big, 2).unwrap().len(), 32_768);
    }
}
