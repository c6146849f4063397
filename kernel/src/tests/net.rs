//! virtio-net bring-up on the machines scripts/test starts (no network backend there;
//! traffic tests run in scripts/netlab).

use crate::net::virtio::{self, IrqMode};
use crate::{ensure, ensure_eq, kernel_test, pci, sched, skip, time};

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

kernel_test! {
    fn sha256_with_the_cpu_instructions_matches_sha2() {
        use crate::net::http::{BodyDigest, Sha256Digest};
        if !crate::arch::sha256::available() {
            skip!("this CPU has no SHA-256 instructions");
        }
        // FIPS 180-4 vectors, then random lengths around the block and the masked-section
        // boundaries, in uneven pieces.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut d = BodyDigest::with_blocks(crate::arch::sha256::compress);
        d.update(b"abc");
        ensure_eq!(Some(d.finish().1), Sha256Digest::from_hex(abc));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let data: alloc::vec::Vec<u8> = (0..(70 * 64 + 99))
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        for len in (0..200).chain([4095, 4096, 4097, 64 * 64, 64 * 65, data.len()]) {
            let mut cpu = BodyDigest::with_blocks(crate::arch::sha256::compress);
            let mut soft = BodyDigest::new();
            for piece in data[..len].chunks(1 + len % 97) {
                cpu.update(piece);
                soft.update(piece);
            }
            let (want, got) = (soft.finish(), cpu.finish());
            ensure_eq!(got, want);
            ensure_eq!(got.1, Sha256Digest::of(&data[..len]));
        }
        // Speed, for the record (scripts/bench net measures it in the lab).
        // The fastest of 5 alternating runs of each: the host's load only ever adds time.
        let block = alloc::vec![0x5au8; 1 << 20];
        let mut us = [u64::MAX; 2];
        let impls = [crate::arch::sha256::compress as crate::net::http::BlockFn, crate::net::http::digest::soft_blocks];
        for _ in 0..5 {
            for (i, f) in impls.into_iter().enumerate() {
                let t0 = time::now_ns();
                let mut d = BodyDigest::with_blocks(f);
                d.update(&block);
                let _ = d.finish();
                us[i] = us[i].min((time::now_ns() - t0) / 1000);
            }
        }
        crate::ktest::report(alloc::format!("sha256 1MiB cpu_us={} soft_us={}", us[0], us[1]));
        Ok(())
    }
}
