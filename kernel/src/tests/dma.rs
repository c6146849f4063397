//! The DMA module against the DMA mask and the `caps` region types.

use caps::dma::{DmaBuffer, DmaHal, DmaPool};

use crate::arch::dma::HAL;
use crate::mem::frames;
use crate::{ensure, ensure_eq, kernel_test};

kernel_test! {
    fn dma_allocation_is_zeroed_aligned_and_freed() {
        let (free_before, _) = frames::stats();
        {
            let buf = HAL.allocate(10_000, 4096, u64::MAX).map_err(|e| alloc::format!("{e:?}"))?;
            ensure_eq!(buf.len(), 10_000);
            ensure!(buf.paddr() % 4096 == 0, "unaligned {:#x}", buf.paddr());
            ensure!(buf.bytes().iter().all(|&b| b == 0), "not zeroed");
        }
        ensure_eq!(frames::stats().0, free_before);
        Ok(())
    }
}

kernel_test! {
    fn dma_mask_below_all_ram_is_a_clear_error() {
        // QEMU edu's default mask (28 bits) cannot reach RAM at 1 GiB on virt.
        let r = HAL.allocate(4096, 4096, (1 << 28) - 1);
        ensure_eq!(r.err(), Some(abi::Error::ERANGE));
        Ok(())
    }
}

kernel_test! {
    fn dma_region_cpu_state_reads_and_writes() {
        static POOL: DmaPool<crate::arch::dma::KernelDma> = DmaPool::new(&HAL, u64::MAX);
        let mut region = POOL.alloc(256, 64).map_err(|e| alloc::format!("{e:?}"))?;
        region.bytes_mut()[..4].copy_from_slice(&[1, 2, 3, 4]);
        ensure_eq!(&region.bytes()[..4], &[1u8, 2, 3, 4][..]);
        ensure!(POOL.alloc(0, 64).is_err(), "zero-length region allowed");
        Ok(())
    }
}
