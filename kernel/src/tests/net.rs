//! virtio-net bring-up on the machines scripts/test starts (no network backend there;
//! traffic tests run in scripts/netlab).

use crate::net::virtio::{self, IrqMode};
use crate::{ensure, ensure_eq, kernel_test, pci, sched, time};

kernel_test! {
    fn virtio_net_comes_up_with_its_best_interrupt_full_rx_ring_and_completes_tx() {
        let msi = pci::msi_vectors().is_some() && !pci::bus().is_some_and(|b| b.no_msi);
        let mut nic = virtio::attach().map_err(|e| alloc::format!("attach: {e:?}"))?;
        ensure_eq!(nic.net.mac(), [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        if msi {
            // QEMU's virtio-net-pci has a 3-entry table: RX and config get their own.
            ensure_eq!(nic.mode, IrqMode::MsixPerQueue);
            ensure_eq!(nic.vectors.iter().map(|v| v.entry).collect::<alloc::vec::Vec<_>>(), [Some(0), Some(1)]);
        } else {
            ensure_eq!(nic.mode, IrqMode::Intx);
            ensure_eq!(nic.vectors.len(), 1);
            let intid = nic.rx_intid();
            ensure!((32..1020).contains(&intid), "INTx on INTID {intid}, not an SPI");
        }
        ensure!(nic.link_up, "link down at bring-up");
        let rx = nic.rx.as_ref().ok_or("no rx ring")?;
        ensure!(rx.in_flight() >= 256, "only {} RX buffers posted", rx.in_flight());
        let free = nic.net.tx_free();
        let frame = [0xffu8; 60];
        for _ in 0..10 {
            nic.send(&frame).map_err(|e| alloc::format!("send: {e:?}"))?;
        }
        let deadline = time::now_ns() + 1_000_000_000;
        while nic.net.tx_free() < free && time::now_ns() < deadline {
            sched::sleep_ns(1_000_000);
            let _ = nic.send(&frame); // reclaims finished ones first
            if nic.net.tx_stats().packets >= 20 {
                break;
            }
        }
        ensure!(nic.net.tx_stats().packets >= 10, "tx packets {}", nic.net.tx_stats().packets);
        ensure_eq!(nic.net.tx_stats().bad_descriptors, 0);
        Ok(())
    }
}
