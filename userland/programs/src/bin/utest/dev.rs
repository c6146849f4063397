//! The device suite: the device calls' rights, states and refusals, run against a PCI
//! function the kernel test granted (QEMU's `qemu-xhci`, which no kernel driver uses: an
//! MSI-X device whose table and PBA share a page of BAR 0). Nothing here starts the device;
//! /bin/edu drives one for real.

use core::sync::atomic::{AtomicU32, Ordering};

use abi::dev::{
    BAR_MEM, BAR_MSIX, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, IRQ_MSIX, LINE_ARMED, LINE_DRAINING,
    LINE_MASKED, MAX_DMA, MAX_DMA_REGIONS,
};
use abi::proc::{GRANT_MOVE, GrantSpec};
use abi::{CapType, Error, Handle, Rights};
use capstan_programs::{Failure, Outcome, Test, check, check_eq, tool};
use capstan_rt::{cap, dev, mem, process};

/// The suite.
pub const TESTS: &[Test] = &[
    ("dev_info_describes_the_function", info),
    ("mmio_map_refuses_the_msix_pages_and_bad_ranges", mmio),
    (
        "dma_alloc_honours_the_reach_and_the_limits_and_reset_frees_nothing_held",
        dma,
    ),
    ("lines_follow_the_state_machine", lines),
    ("rights_are_checked_on_every_call", rights),
    ("a_device_with_lines_or_regions_cannot_move_or_drop", linear),
];

/// The granted device's handle (set by `main` from the startup record; 0: none).
pub static DEVICE: AtomicU32 = AtomicU32::new(0);

const XHCI: (u16, u16) = (0x1b36, 0x000d);
const PAGE: u64 = 4096;

fn device() -> Result<Handle, Failure> {
    match DEVICE.load(Ordering::Relaxed) {
        0 => Err(Failure::Skipped(
            "no device granted (the kernel test grants qemu-xhci)",
        )),
        h => Ok(Handle(h)),
    }
}

fn info() -> Outcome {
    let d = device()?;
    let i = dev::info(d)?;
    check_eq!((i.vendor, i.device), XHCI);
    check!(i.irq_modes & IRQ_MSIX != 0);
    check!(i.msix_entries > 0);
    check!(i.bars[0].size >= 4 * PAGE);
    check_eq!(i.bars[0].flags & (BAR_MEM | BAR_MSIX), BAR_MEM | BAR_MSIX);
    check_eq!(cap::info(d)?.cap_type, Ok(CapType::Device));
    Ok(())
}

fn mmio() -> Outcome {
    let d = device()?;
    let size = dev::info(d)?.bars[0].size;
    // Each page alone: the registers map, the MSI-X page is refused.
    let (mut mapped, mut refused) = (0, 0);
    let mut windows = alloc::vec::Vec::new();
    for off in (0..size).step_by(PAGE as usize) {
        match dev::mmio_map(d, 0, off, PAGE) {
            Ok(va) => {
                check!(va % PAGE as usize == 0);
                windows.push(va);
                mapped += 1;
            }
            Err(Error::EACCES) => refused += 1,
            Err(e) => return Err(alloc::format!("page at {off:#x}: {e}").into()),
        }
        if mapped + refused >= 7 {
            break; // windows are limited (8 per device)
        }
    }
    check!(refused >= 1);
    check!(mapped >= 1);
    check_eq!(dev::mmio_map(d, 0, 0, size), Err(Error::EACCES));
    check_eq!(dev::mmio_map(d, 0, 1, PAGE), Err(Error::EINVAL));
    check_eq!(dev::mmio_map(d, 0, 0, 100), Err(Error::EINVAL));
    check_eq!(dev::mmio_map(d, 0, size, PAGE), Err(Error::EINVAL));
    check_eq!(dev::mmio_map(d, 0, !(PAGE - 1), PAGE), Err(Error::EINVAL));
    check_eq!(dev::mmio_map(d, 5, 0, PAGE), Err(Error::ENOENT));
    // The windows go with mem_unmap (whole windows only), which frees the device to move.
    for va in windows {
        check_eq!(mem::unmap(va, PAGE as usize + 1), Err(Error::EINVAL));
        mem::unmap(va, PAGE as usize)?;
        check_eq!(mem::unmap(va, PAGE as usize), Err(Error::EINVAL));
    }
    Ok(())
}

fn dma() -> Outcome {
    let d = device()?;
    // RAM starts at 1 GiB on `virt`: 20 address bits reach none of it.
    check_eq!(
        dev::dma_alloc(d, 4096, DMA_FROM_DEVICE, 20),
        Err(Error::ERANGE)
    );
    check_eq!(
        dev::dma_alloc(d, 0, DMA_FROM_DEVICE, 64),
        Err(Error::EINVAL)
    );
    check_eq!(
        dev::dma_alloc(d, MAX_DMA + 1, DMA_FROM_DEVICE, 64),
        Err(Error::EINVAL)
    );
    let r = dev::dma_alloc(d, 5000, DMA_BIDIRECTIONAL, 40)?;
    check!(r.bus < 1 << 40);
    check_eq!(r.bus % PAGE, 0);
    // SAFETY: `dma_alloc` mapped two zeroed read-write pages at `addr` for this process.
    let bytes = unsafe { core::slice::from_raw_parts_mut(r.addr as *mut u8, 8192) };
    check!(bytes.iter().all(|&b| b == 0));
    bytes.fill(0x5a);
    check_eq!(cap::info(r.handle)?.cap_type, Ok(CapType::DmaRegion));
    let mut more = alloc::vec::Vec::new();
    let limit = loop {
        match dev::dma_alloc(d, 4096, DMA_FROM_DEVICE, 64) {
            Ok(x) => more.push(x.handle),
            Err(e) => break e,
        }
        if more.len() > MAX_DMA_REGIONS {
            break Error::EINVAL;
        }
    };
    check_eq!(limit, Error::ENOSPC);
    check_eq!(more.len() + 1, MAX_DMA_REGIONS);
    for h in more {
        cap::drop(h)?;
    }
    cap::drop(r.handle)?;
    check_eq!(cap::drop(r.handle), Err(Error::EBADH));
    // dev_reset: bus mastering off and the controller read halted (it never ran).
    dev::bus_master(d, true)?;
    check!(dev::reset(d)?);
    check_eq!(
        tool::read_text("/proc/dma").map(|t| t.contains("held ")),
        Ok(false)
    );
    Ok(())
}

fn state(line: Handle) -> Result<u64, Failure> {
    Ok(cap::info(line)?.state)
}

fn lines() -> Outcome {
    let d = device()?;
    let entries = dev::info(d)?.msix_entries;
    check_eq!(dev::irq(d, entries, 1), Err(Error::EINVAL));
    check_eq!(dev::irq(d, 0, 64), Err(Error::EINVAL));
    let l = dev::irq(d, 0, 1)?;
    check_eq!(dev::irq(d, 0, 2), Err(Error::EBUSY));
    check_eq!(state(l)?, LINE_MASKED);
    check_eq!(dev::irq_rearm(l), Err(Error::EBADSTATE));
    check_eq!(dev::irq_wait(l, 0), Err(Error::EBADSTATE));
    dev::irq_arm(l)?;
    check_eq!(state(l)?, LINE_ARMED);
    check_eq!(dev::irq_arm(l), Err(Error::EBADSTATE));
    // Nothing raises it: a poll times out and the line stays armed.
    check_eq!(dev::irq_wait(l, 0), Err(Error::ETIMEDOUT));
    check_eq!(state(l)?, LINE_ARMED);
    dev::irq_mask(l)?;
    check_eq!(state(l)?, LINE_DRAINING);
    // A masked line that was armed is never armable again; only rearm leaves Draining.
    check_eq!(dev::irq_arm(l), Err(Error::EBADSTATE));
    dev::irq_mask(l)?;
    check_eq!(state(l)?, LINE_DRAINING);
    // The kernel's quiet check reads the device's MSI delivery: off without bus mastering.
    dev::bus_master(d, false)?;
    check_eq!(dev::irq_rearm(l), Err(Error::EBADSTATE));
    check_eq!(state(l)?, LINE_DRAINING);
    dev::bus_master(d, true)?;
    dev::irq_rearm(l)?;
    check_eq!(state(l)?, LINE_ARMED);
    dev::bus_master(d, false)?;
    cap::drop(l)?;
    // The entry is free again.
    let l = dev::irq(d, 0, 1)?;
    cap::drop(l)?;
    Ok(())
}

fn rights() -> Outcome {
    let d = device()?;
    // A copy is refused (devices are linear); narrow a moved-around handle instead.
    let child = process::spawn("/bin/child", &["child", "sleep", "2000"], &[])?;
    let r = (|| -> Outcome {
        let l = dev::irq(d, 0, 1)?;
        check_eq!(cap::grant_move(child, l, Rights::IRQ), Err(Error::EACCES));
        cap::drop(l)?;
        Ok(())
    })();
    let _ = process::kill(child);
    let _ = process::wait(child);
    r?;
    cap::replace(d, Rights::INSPECT | Rights::TRANSFER | Rights::IRQ)?;
    check_eq!(dev::mmio_map(d, 0, 0, PAGE), Err(Error::EACCES));
    check_eq!(
        dev::dma_alloc(d, 4096, DMA_FROM_DEVICE, 64).map(|_| ()),
        Err(Error::EACCES)
    );
    check_eq!(dev::bus_master(d, true), Err(Error::EACCES));
    check!(dev::info(d).is_ok());
    cap::replace(d, Rights::TRANSFER | Rights::IRQ)?;
    check_eq!(dev::info(d).map(|_| ()), Err(Error::EACCES));
    Ok(())
}

fn linear() -> Outcome {
    let d = device()?;
    let l = dev::irq(d, 0, 1)?;
    let child = process::spawn("/bin/child", &["child", "sleep", "2000"], &[])?;
    let moved = cap::grant_move(child, d, Rights::TRANSFER);
    check_eq!(moved, Err(Error::EBUSY));
    check_eq!(cap::drop(d), Err(Error::EBUSY));
    let spec = [GrantSpec {
        handle: d.raw(),
        rights: Rights::TRANSFER.bits(),
        mode: GRANT_MOVE,
    }];
    check_eq!(
        process::spawn("/bin/child", &["child", "exit", "0"], &spec),
        Err(Error::EBUSY)
    );
    cap::drop(l)?;
    // Bare now: it moves, and the child gives it back when it ends.
    let moved = cap::grant_move(child, d, Rights::TRANSFER)?;
    check!(moved.raw() != 0);
    check_eq!(cap::info(d).map(|_| ()), Err(Error::EBADH));
    process::kill(child)?;
    let done = process::wait(child)?;
    let back = done
        .returned_device
        .ok_or_else(|| alloc::string::String::from("the device did not come back"))?;
    check_eq!(cap::info(back)?.cap_type, Ok(CapType::Device));
    DEVICE.store(back.raw(), Ordering::Relaxed);
    Ok(())
}
