//! User-mode drivers end to end: `/bin/edu` drives an edu device it was granted, and the
//! teardown of a driver killed in the middle of DMA never lets the device write freed
//! memory (docs/user-drivers.md).

use alloc::string::String;
use alloc::vec::Vec;

use abi::Rights;
use drivers::edu::{DEVICE_ID, DmaDirection, DmaRequest, Edu, VENDOR_ID};
use drivers::pci::config::Bdf;

use crate::arch::dma::HAL;
use crate::mem::retired;
use crate::pci::handoff::{self, Handoff};
use crate::process::device::UserDevice;
use crate::process::file::Object;
use crate::process::table::{self, Grant};
use crate::{boot, ensure, ensure_eq, kernel_test, sched, skip, time};

/// The edu devices of `edu=msi` have a 40-bit DMA mask (scripts/lib.sh `pci_devices`).
const EDU_DMA_BITS: u32 = 40;
/// Kills in the teardown test: the boot option `kills=N` (scripts/test gives 1 000 to one
/// boot per GIC version; the loop takes about 105 s, so the other boots skip it).
fn kills() -> Option<u32> {
    crate::machine::platform().and_then(|p| {
        p.bootargs
            .split_whitespace()
            .find_map(|w| w.strip_prefix("kills="))
            .and_then(|v| v.parse().ok())
    })
}

fn edu_msi() -> bool {
    boot::args().and_then(|a| a.edu) == Some("msi")
}

fn has_driver() -> bool {
    table::initrd().is_some_and(|rd| rd.find("/bin/edu").is_some())
}

/// The first edu on the bus.
fn edu_bdf() -> Option<Bdf> {
    crate::pci::bus()?
        .functions
        .iter()
        .find(|f| f.vendor == VENDOR_ID && f.device == DEVICE_ID)
        .map(|f| f.bdf)
}

/// Spawns `/bin/edu` with `args` (after its name), granted the device at `bdf`.
fn spawn_driver(bdf: Bdf, args: &[&str]) -> Result<u32, String> {
    let h = handoff::claim(bdf).map_err(|e| alloc::format!("claim {bdf}: {e}"))?;
    let mut bytes = Vec::new();
    for a in core::iter::once("edu").chain(args.iter().copied()) {
        bytes.extend_from_slice(a.as_bytes());
        bytes.push(0);
    }
    let grant = Grant {
        object: Object::Device(UserDevice::new(h)),
        rights: Rights::INSPECT | Rights::IRQ | Rights::MAP | Rights::DMA,
    };
    table::spawn(0, "/bin/edu", &bytes, args.len() + 1, alloc::vec![grant])
        .map_err(|e| alloc::format!("spawn /bin/edu: {e}"))
}

/// Waits for the kernel's child `pid` to end; its status.
pub(super) fn reap(pid: u32) -> Result<i32, String> {
    let kernel = table::get(0).ok_or("no kernel process")?;
    let (reaped, status, _) =
        table::wait(&kernel, Some(pid), false).map_err(|e| alloc::format!("wait: {e}"))?;
    ensure_eq!(reaped, pid);
    Ok(status)
}

kernel_test! {
    fn user_device_suite_passes_on_a_granted_xhci() {
        // qemu-xhci (00:05.0 on every test machine): MSI-X, no kernel driver.
        if !has_driver() {
            skip!("no user programs in the initrd");
        }
        // User lines are MSI/MSI-X vectors: none with no MSI controller or with pci=nomsi.
        let msi = crate::pci::msi_vectors().is_some()
            && crate::pci::bus().is_some_and(|b| !b.no_msi);
        let Some(bdf) = crate::pci::bus().and_then(|b| {
            b.functions
                .iter()
                .find(|f| (f.vendor, f.device) == (0x1b36, 0x000d))
                .map(|f| f.bdf)
        }) else {
            skip!("no qemu-xhci on this machine");
        };
        if !msi {
            skip!("no MSI (no controller, or pci=nomsi): user lines are MSI-X vectors");
        }
        let h = handoff::claim(bdf).map_err(|e| alloc::format!("claim {bdf}: {e}"))?;
        let grant = Grant {
            object: Object::Device(UserDevice::new(h)),
            rights: Rights::INSPECT | Rights::IRQ | Rights::MAP | Rights::DMA | Rights::TRANSFER,
        };
        let args = b"utest\0dev\0";
        let pid = table::spawn(0, "/bin/utest", args, 2, alloc::vec![grant])
            .map_err(|e| alloc::format!("spawn /bin/utest: {e}"))?;
        ensure_eq!(reap(pid)?, 0);
        // Its DMA regions were freed: the xHCI read halted with bus mastering off.
        ensure!(
            handoff::held_report().iter().all(|&(b, _, _)| b != bdf),
            "DMA memory held for the halted xHCI"
        );
        ensure_eq!(handoff::report(bdf).stops_unconfirmed, 0);
        // utest's last test moved the device to a child and got it back; it ended, and the
        // kernel (its parent, pid 0) released it: it can be claimed again.
        let again = handoff::claim(bdf).map_err(|e| alloc::format!("reclaim {bdf}: {e}"))?;
        drop(again);
        Ok(())
    }
}

kernel_test! {
    fn user_edu_driver_completes_by_interrupt_with_17_interrupts() {
        if !edu_msi() {
            skip!("needs edu=msi (user lines are MSI vectors)");
        }
        if !has_driver() {
            skip!("no /bin/edu in the initrd");
        }
        let bdf = edu_bdf().ok_or("no edu")?;
        let before = handoff::report(bdf);
        let (_, violations0) = retired::counts();
        let bits = alloc::format!("{EDU_DMA_BITS}");
        let pid = spawn_driver(bdf, &["--dma-bits", &bits])?;
        ensure_eq!(reap(pid)?, 0);
        let after = handoff::report(bdf);
        ensure_eq!(after.grants - before.grants, 1);
        ensure_eq!(after.interrupts - before.interrupts, 17);
        ensure_eq!(after.stops_confirmed - before.stops_confirmed, 1);
        ensure_eq!(after.stops_unconfirmed, before.stops_unconfirmed);
        ensure!(
            handoff::held_report().iter().all(|&(b, _, _)| b != bdf),
            "DMA memory still held for a stopped device"
        );
        let (_, violations) = retired::flush();
        ensure_eq!(violations, violations0);
        crate::ktest::report(alloc::format!(
            "user edu driver: 17 interrupts, stop confirmed, {} poisoned buffers checked",
            retired::counts().0
        ));
        Ok(())
    }
}

kernel_test! {
    fn poison_check_catches_a_device_writing_freed_memory() {
        // The must-fail twin of the teardown test: free a buffer while edu still writes it
        // (what a teardown that skipped the stop would do) and the poison check must see it.
        if !edu_msi() {
            skip!("needs edu=msi (an edu that reaches RAM)");
        }
        let bdf = edu_bdf().ok_or("no edu")?;
        let h = Handoff::claim(bdf).map_err(|e| alloc::format!("{e}"))?;
        let regs = crate::arch::devices::edu(h.bar(0).map_err(|e| alloc::format!("{e}"))?)
            .map_err(|_| "map BAR0")?;
        let edu = Edu::new(regs, (1 << EDU_DMA_BITS) - 1, &crate::pci::edu::ram()).map_err(|e| alloc::format!("{e:?}"))?;
        let buf = caps::dma::DmaHal::allocate(&HAL, 4096, 4096, (1 << EDU_DMA_BITS) - 1)
            .map_err(|e| alloc::format!("{e}"))?;
        let req = DmaRequest {
            direction: DmaDirection::FromDevice,
            ram_addr: caps::dma::DmaBuffer::paddr(&buf),
            offset: 0,
            len: 4000,
            interrupt: false,
        };
        let checked = edu.check_dma(req).map_err(|e| alloc::format!("{e:?}"))?;
        h.set_bus_master(true).map_err(|e| alloc::format!("{e}"))?;
        let (_, violations0) = retired::flush();
        edu.start_dma(checked).map_err(|e| alloc::format!("{e:?}"))?;
        retired::retire(buf); // freed too early, on purpose
        let deadline = time::now_ns() + 2_000_000_000;
        while edu.dma_busy() && time::now_ns() < deadline {
            sched::sleep_ns(5_000_000);
        }
        ensure!(!edu.dma_busy(), "edu's DMA did not finish in 2 s");
        let (_, violations) = retired::flush();
        ensure_eq!(violations - violations0, 1);
        ensure!(h.stop(), "edu not read stopped after its DMA finished");
        Ok(())
    }
}

/// A small xorshift for kill delays (seeded from the clock: each run differs, and the
/// delays it drew are in the report).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

kernel_test! {
    fn killing_the_edu_driver_mid_dma_never_lets_the_device_write_freed_memory() {
        if !edu_msi() {
            skip!("needs edu=msi");
        }
        if !has_driver() {
            skip!("no /bin/edu in the initrd");
        }
        let Some(kills) = kills() else {
            skip!("no kills=N option (scripts/test runs it in one boot per GIC version)");
        };
        let bdf = edu_bdf().ok_or("no edu")?;
        let before = handoff::report(bdf);
        let (_, violations0) = retired::flush();
        let (live0, _) = crate::arch::dma::live();
        let mut rng = Rng(time::now_ns() | 1);
        let bits = alloc::format!("{EDU_DMA_BITS}");
        let started = time::now_ns();
        let mut exits = [0u32; 3]; // killed, exited 0, other
        for i in 0..kills {
            // The driver is granted the device afresh every time (the last one returned it).
            let pid = spawn_driver(bdf, &["--dma-bits", &bits, "--loop"])
                .map_err(|e| alloc::format!("iteration {i}: {e}"))?;
            sched::sleep_ns(2_000_000 + rng.next() % 40_000_000);
            table::kill(pid).map_err(|e| alloc::format!("iteration {i}: kill {pid}: {e}"))?;
            match reap(pid)? {
                abi::proc::STATUS_KILLED => exits[0] += 1,
                0 => exits[1] += 1,
                _ => exits[2] += 1,
            }
        }
        let elapsed_ms = (time::now_ns() - started) / 1_000_000;
        let after = handoff::report(bdf);
        let (checked, violations) = retired::flush();
        let (live, _) = crate::arch::dma::live();
        crate::ktest::report(alloc::format!(
            "{kills} kills in {elapsed_ms} ms: {} mid-DMA (teardown waited for the engine), \
             {} confirmed stops, {} poisoned buffers checked, {} violations; exits {exits:?}",
            after.stops_waited - before.stops_waited,
            after.stops_confirmed - before.stops_confirmed,
            checked,
            violations - violations0
        ));
        ensure_eq!(violations, violations0);
        ensure_eq!(exits[2], 0);
        ensure_eq!(after.grants - before.grants, u64::from(kills));
        ensure_eq!(after.stops_confirmed - before.stops_confirmed, u64::from(kills));
        ensure!(
            after.stops_waited - before.stops_waited >= u64::from(kills / 4),
            "too few kills landed mid-DMA to mean anything"
        );
        ensure!(
            handoff::held_report().iter().all(|&(b, _, _)| b != bdf),
            "DMA memory held after the loop"
        );
        ensure_eq!(live, live0);
        // And once more, to show the device works after all that.
        let pid = spawn_driver(bdf, &["--dma-bits", &bits])?;
        ensure_eq!(reap(pid)?, 0);
        Ok(())
    }
}

/// Starts init with `options` (its `driver=` devices granted, as at boot, but no Power
/// capability: its `run=` program ends the run with its status instead of switching the
/// machine off) and waits for it; its status.
pub(super) fn run_init(options: &str) -> Result<i32, String> {
    let grants = boot::driver_devices(options);
    ensure_eq!(grants.len(), 1);
    let mut argv = Vec::new();
    for w in core::iter::once("init").chain(options.split_whitespace()) {
        argv.extend_from_slice(w.as_bytes());
        argv.push(0);
    }
    let argc = options.split_whitespace().count() + 1;
    let pid = table::spawn(0, "/bin/init", &argv, argc, grants)
        .map_err(|e| alloc::format!("spawn /bin/init: {e}"))?;
    reap(pid)
}

kernel_test! {
    fn init_restarts_a_killed_driver_with_the_device_it_gave_back() {
        if !edu_msi() {
            skip!("needs edu=msi");
        }
        if !has_driver() || table::initrd().is_none_or(|rd| rd.find("/bin/init").is_none()) {
            skip!("no /bin/init or /bin/edu in the initrd");
        }
        let bdf = edu_bdf().ok_or("no edu")?;
        // init as the kernel would start it, with a driver= option (and no Power
        // capability: its run= program ends the run without powering off).
        let options = alloc::format!(
            "driver=/bin/edu@{bdf},--dma-bits,{EDU_DMA_BITS},--loop run=/bin/utest,drv"
        );
        let before = handoff::report(bdf);
        ensure_eq!(run_init(&options)?, 0); // the drv suite's failures
        let after = handoff::report(bdf);
        // One grant at boot; each of the suite's three restarts is a new driver with the
        // device returned to init, not claimed again. Stops: three kills, init stopping its
        // driver when its run= program ended, and init's own end (it held the device then).
        ensure_eq!(after.grants - before.grants, 1);
        ensure_eq!(after.stops_confirmed - before.stops_confirmed, 5);
        ensure_eq!(after.stops_unconfirmed, before.stops_unconfirmed);
        ensure!(
            table::all().iter().all(|p| p.name.as_str() != "/bin/edu" || p.is_zombie()),
            "a driver outlived init"
        );
        // init stopped its driver before it ended and the device came back to the kernel.
        drop(handoff::claim(bdf).map_err(|e| alloc::format!("reclaim {bdf}: {e}"))?);
        Ok(())
    }
}

kernel_test! {
    fn a_virtio_device_is_read_stopped_by_its_reset() {
        // virtio-gpu-pci (00:07.0 on every test machine) has no kernel driver. DMA memory
        // let go while its bus mastering is on stays held; a stop resets it (device_status
        // written 0, read back 0) and only then frees that memory.
        let Some(bdf) = crate::pci::bus().and_then(|b| {
            b.functions
                .iter()
                .find(|f| (f.vendor, f.device) == (0x1af4, 0x1050))
                .map(|f| f.bdf)
        }) else {
            skip!("no virtio-gpu-pci on this machine");
        };
        let held = |bdf| handoff::held_report().iter().any(|&(b, _, _)| b == bdf);
        let h = Handoff::claim(bdf).map_err(|e| alloc::format!("{e}"))?;
        let before = handoff::report(bdf);
        h.set_bus_master(true).map_err(|e| alloc::format!("{e}"))?;
        let buf = caps::dma::DmaHal::allocate(&HAL, 4096, 4096, u64::MAX)
            .map_err(|e| alloc::format!("{e}"))?;
        h.retire_dma(buf);
        ensure!(held(bdf), "freed while the device could still write it");
        ensure!(h.stop(), "the reset did not read back 0");
        ensure!(!held(bdf), "still held after a confirmed stop");
        let after = handoff::report(bdf);
        ensure_eq!(after.stops_confirmed - before.stops_confirmed, 1);
        Ok(())
    }
}
