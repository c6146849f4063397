//! NICs behind PCI bridges and a PCIe root port: windows, bus mastering, interrupts.
//!
//! scripts/test starts the machine with `bridges=N`: N modern virtio-net functions
//! (device 0x1041) behind a `pci-bridge`, a bridge behind that bridge, and a
//! `pcie-root-port`, all on one QEMU hub, so a frame one sends reaches the others.
//! Each NIC's registers are reached through its bridges' windows, its DMA and MSI
//! writes (or its swizzled INTx) through their forwarding, so a frame delivered by
//! interrupt on every NIC proves the whole path, on whichever interrupt the machine
//! offers (MSI-X through GICv2m or the ITS, or INTx with `pci=nomsi` or without an MSI
//! controller).

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::net::virtio::{self, VirtioNic};
use crate::{ensure, ensure_eq, irq, kernel_test, machine, pci, skip, time};

/// An ethertype for local experiments (IEEE 802 local experimental 1).
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

fn expected() -> usize {
    machine::platform()
        .and_then(|p| {
            p.bootargs
                .split_whitespace()
                .find_map(|w| w.strip_prefix("bridges="))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A broadcast frame from NIC `from`, tagged with it.
fn frame(from: u8) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0xbb, 0, from]);
    f[12..14].copy_from_slice(&ETHERTYPE);
    f[14..30].copy_from_slice(b"capstan-bridges-");
    f[30] = from;
    f
}

/// Receives on `nic` until a frame from NIC `from` arrives, or 2 s pass.
fn await_frame(nic: &mut VirtioNic, from: u8) -> bool {
    let deadline = time::now_ns() + 2_000_000_000;
    let mut seen = false;
    while !seen && time::now_ns() < deadline {
        let _ = nic.receive(deadline, |f| {
            seen |= f.len() >= 31 && f[12..14] == ETHERTYPE && f[30] == from;
        });
    }
    seen
}

kernel_test! {
    fn nics_behind_bridges_and_a_root_port_exchange_frames_by_interrupt() {
        let want = expected();
        if want == 0 {
            skip!("this machine has no NICs behind bridges (scripts/test passes bridges=N)");
        }
        let bus = pci::bus().ok_or("no PCI bus")?;
        let bdfs: Vec<_> = bus
            .functions
            .iter()
            .filter(|f| f.parent.is_some() && virtio::is_virtio_net(f.vendor, f.device))
            .map(|f| f.bdf)
            .collect();
        ensure_eq!(bdfs.len(), want);
        let mut nics: Vec<Box<VirtioNic>> = Vec::new();
        for &bdf in &bdfs {
            nics.push(virtio::attach_at(bdf).map_err(|e| alloc::format!("{bdf}: {e}"))?);
        }
        let before: Vec<u64> = nics.iter().map(|n| irq::count(n.rx_intid())).collect();
        for from in 0..nics.len() {
            nics[from]
                .send(&frame(from as u8))
                .map_err(|e| alloc::format!("{}: send: {e:?}", bdfs[from]))?;
            for to in (0..nics.len()).filter(|&to| to != from) {
                ensure!(
                    await_frame(&mut nics[to], from as u8),
                    "{} never received the frame {} sent",
                    bdfs[to],
                    bdfs[from]
                );
            }
        }
        for (i, nic) in nics.iter().enumerate() {
            let fired = irq::count(nic.rx_intid()) - before[i];
            ensure!(fired >= 1, "{}: frames arrived without an interrupt", bdfs[i]);
            crate::println!(
                "report: bridged-nic {} mode={:?} intid={} interrupts={fired}",
                bdfs[i],
                nic.mode,
                nic.rx_intid()
            );
        }
        for nic in nics {
            nic.shut_down();
        }
        Ok(())
    }
}
