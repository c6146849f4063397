//! The user-mode virtio-net driver end to end: `/bin/vnet --probe` on a NIC it was granted.
//!
//! The driver brings the function up from user space (virtio structures found through
//! `dev_cfg_read`, mapped with `mmio_map`; rings and buffers DMA regions; the receive
//! queue's MSI-X entry a user line bound to its ring), sends one ARP request for 10.0.2.2
//! and waits, by interrupt, for QEMU's user-network gateway to answer
//! (docs/user-drivers.md "The virtio-net driver"). The NIC is the one scripts/test adds
//! at 00:11.0 on QEMU user networking (`-netdev user,restrict=on`: the gateway is QEMU
//! itself); without it the test skips.

use alloc::vec::Vec;

use abi::Rights;
use drivers::pci::config::Bdf;

use crate::pci::handoff;
use crate::process::device::UserDevice;
use crate::process::file::Object;
use crate::process::table::{self, Grant};
use crate::{ensure, ensure_eq, kernel_test, skip};

/// Where scripts/test puts the NIC for this test.
const SLOT: u8 = 0x11;
/// Probes in a row: the second finds the device the first one's teardown reset.
const PROBES: u64 = 2;

/// The modern virtio-net function at 00:11.0, if the machine has one.
fn probe_nic() -> Option<Bdf> {
    let want = Bdf::new(0, SLOT, 0)?;
    crate::pci::bus()?
        .functions
        .iter()
        .find(|f| f.bdf == want && (f.vendor, f.device) == (0x1af4, 0x1041))
        .map(|f| f.bdf)
}

/// Spawns `/bin/vnet --probe` granted the device at `bdf`, waits, and returns its status.
fn run_probe(bdf: Bdf) -> Result<i32, alloc::string::String> {
    let h = handoff::claim(bdf).map_err(|e| alloc::format!("claim {bdf}: {e}"))?;
    let grant = Grant {
        object: Object::Device(UserDevice::new(h)),
        rights: Rights::INSPECT | Rights::IRQ | Rights::MAP | Rights::DMA,
    };
    let args: Vec<u8> = b"vnet\0--probe\0".to_vec();
    let pid = table::spawn(0, "/bin/vnet", &args, 2, alloc::vec![grant])
        .map_err(|e| alloc::format!("spawn /bin/vnet: {e}"))?;
    super::udriver::reap(pid)
}

kernel_test! {
    fn user_vnet_driver_probe_gets_the_gateways_arp_reply_by_interrupt() {
        if table::initrd().is_none_or(|rd| rd.find("/bin/vnet").is_none()) {
            skip!("no /bin/vnet in the initrd");
        }
        let Some(bdf) = probe_nic() else {
            skip!("no virtio-net at 00:11.0 (scripts/test adds one on QEMU user networking)");
        };
        if crate::pci::msi_vectors().is_none() || crate::pci::bus().is_some_and(|b| b.no_msi) {
            skip!("no MSI (no controller, or pci=nomsi): the driver's line is an MSI-X entry");
        }
        let before = handoff::report(bdf);
        for i in 1..=PROBES {
            let status = run_probe(bdf)?;
            ensure!(status == 0, "vnet --probe {i} of {PROBES} exited {status}");
        }
        let after = handoff::report(bdf);
        let interrupts = after.interrupts - before.interrupts;
        ensure_eq!(after.grants - before.grants, PROBES);
        // At least the ARP reply's, per probe (QEMU may add frames of its own).
        ensure!(
            interrupts >= PROBES,
            "{interrupts} interrupts for {PROBES} probes: a reply came without its interrupt"
        );
        // Each driver's end reset the function and the kernel read it stopped: its DMA
        // memory was freed, none held.
        ensure_eq!(after.stops_confirmed - before.stops_confirmed, PROBES);
        ensure_eq!(after.stops_unconfirmed, before.stops_unconfirmed);
        ensure!(
            handoff::held_report().iter().all(|&(b, _, _)| b != bdf),
            "DMA memory held for the reset NIC"
        );
        crate::ktest::report(alloc::format!(
            "user virtio-net: {PROBES} ARP probes answered, {interrupts} interrupts, stops confirmed"
        ));
        Ok(())
    }
}
