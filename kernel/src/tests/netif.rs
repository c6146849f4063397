//! The kernel side of a `NetIf` interface, with the test playing the user-mode driver
//! through the frame area (the real driver, `/bin/vnet`, is tested in the lab).

use abi::Error;
use abi::netif::{
    CSUM_PARTIAL, CSUM_VALID, MORE, RX_HEAD, RX_RING, RX_TAIL, SLOT_HEADER, SLOTS, SlotHeader,
    TX_HEAD, TX_RING, slot,
};

use crate::net::stack::netif::{self, Counters, DriverNext};
use crate::{ensure, ensure_eq, kernel_test, sched, skip, time};

/// A device address no PCI function has (bus 255, device 31): the interface is this test's.
const FAKE_BDF: u32 = 0xfff8;
/// A locally administered unicast MAC.
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfe, 0x01];

fn counters() -> Counters {
    netif::list()
        .iter()
        .find(|n| n.bdf == FAKE_BDF)
        .map(|n| n.counters)
        .unwrap_or_default()
}

/// Waits up to 2 s for `f` to hold.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Result<(), alloc::string::String> {
    let deadline = time::now_ns() + 2_000_000_000;
    while !f() {
        if time::now_ns() > deadline {
            return Err(alloc::format!("timed out waiting for {what}"));
        }
        sched::sleep_ns(1_000_000);
    }
    Ok(())
}

/// A broadcast ARP request (who has 198.18.0.1?) from `MAC`'s neighbour.
fn arp_request() -> [u8; 42] {
    let mut f = [0u8; 42];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0xfe, 0x02]);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&[0x02, 0, 0, 0, 0xfe, 0x02]);
    f[28..32].copy_from_slice(&[198, 18, 0, 2]);
    f[38..42].copy_from_slice(&[198, 18, 0, 1]);
    f
}

kernel_test! {
    fn a_netif_carries_frames_both_ways_and_refuses_hostile_indices() {
        let notify = sched::notify_create().map_err(|_| "no notification")?;
        let att = netif::open(FAKE_BDF, MAC, (notify, 1)).map_err(|e| alloc::format!("open: {e:?}"))?;
        ensure_eq!(netif::open(FAKE_BDF, MAC, (notify, 2)).err(), Some(Error::EBUSY));
        let area = att.area();
        // The interface's DHCP client speaks first: a DISCOVER in the TX ring, and the bit.
        wait_for("a frame in the TX ring", || area.load(TX_HEAD) >= 1)?;
        let mut len = [0u8; 2];
        area.read(slot(TX_RING, 0), &mut len);
        let len = usize::from(u16::from_le_bytes(len));
        ensure!((300..=1514).contains(&len), "TX frame of {len} bytes");
        let mut frame = alloc::vec![0u8; len];
        area.read(slot(TX_RING, 0) + SLOT_HEADER, &mut frame);
        ensure_eq!(&frame[6..12], &MAC[..]);
        ensure_eq!(&frame[12..14], &[0x08, 0x00][..]);
        ensure_eq!(&frame[36..38], &67u16.to_be_bytes()[..]); // UDP to the DHCP server port
        ensure!(
            sched::notify_wait(notify, time::now_ns() + 1_000_000_000).is_ok_and(|b| b & 1 != 0),
            "the driver's bit was not posted"
        );
        // A good frame, then one whose length is no Ethernet frame.
        let before = counters();
        let arp = arp_request();
        area.write(slot(RX_RING, 0), &(arp.len() as u16).to_le_bytes());
        area.write(slot(RX_RING, 0) + SLOT_HEADER, &arp);
        area.write(slot(RX_RING, 1), &5u16.to_le_bytes());
        area.store(RX_HEAD, 2);
        att.kick(DriverNext::Waits);
        wait_for("both slots counted", || {
            let c = counters();
            c.rx_frames + c.rx_bad_len >= before.rx_frames + before.rx_bad_len + 2
        })?;
        ensure_eq!(area.load(RX_TAIL), 2);
        let after = counters();
        ensure_eq!(after.rx_frames, before.rx_frames + 1);
        ensure_eq!(after.rx_bad_len, before.rx_bad_len + 1);
        // A head more than a ring ahead: the batch is dropped and the tail resynchronised.
        let hostile = 2 + SLOTS as u32 + 1;
        area.store(RX_HEAD, hostile);
        // Kicked as by a driver that polls on: the task is woken where a CPU is idle, and
        // this thread keeps its own.
        att.kick(DriverNext::Polls);
        wait_for("the bad index counted", || counters().rx_bad_index > before.rx_bad_index)?;
        ensure_eq!(area.load(RX_TAIL), hostile);
        ensure_eq!(counters().rx_bad_index, before.rx_bad_index + 1);
        ensure_eq!(counters().rx_frames, after.rx_frames);
        // Checksum flags that contradict each other: refused, counted.
        let bad = SlotHeader {
            len: arp.len() as u16,
            flags: CSUM_VALID | CSUM_PARTIAL,
            ..SlotHeader::default()
        };
        area.write(slot(RX_RING, hostile), &bad.encode());
        area.write(slot(RX_RING, hostile) + SLOT_HEADER, &arp);
        area.store(RX_HEAD, hostile + 1);
        att.kick(DriverNext::Waits);
        wait_for("the bad flags counted", || counters().rx_bad_flags > before.rx_bad_flags)?;
        ensure_eq!(counters().rx_frames, after.rx_frames);
        // Frames across slots: the ARP request in two (one frame); a frame whose slots run
        // past RX_HEAD (refused whole); a continuation slot with a checksum flag (refused).
        let base = hostile + 1;
        let chained = counters();
        let put = |i: u32, len: usize, flags: u16, bytes: &[u8]| {
            let h = SlotHeader {
                len: len as u16,
                flags,
                ..SlotHeader::default()
            };
            area.write(slot(RX_RING, i), &h.encode());
            area.write(slot(RX_RING, i) + SLOT_HEADER, bytes);
        };
        put(base, 30, MORE, &arp[..30]);
        put(base + 1, 12, 0, &arp[30..]);
        put(base + 2, 30, MORE, &arp[..30]);
        area.store(RX_HEAD, base + 3);
        att.kick(DriverNext::Waits);
        wait_for("the chained frame and the unfinished one counted", || {
            let c = counters();
            c.rx_frames > chained.rx_frames && c.rx_bad_len > chained.rx_bad_len
        })?;
        let c = counters();
        ensure_eq!(c.rx_frames, chained.rx_frames + 1);
        ensure_eq!(c.rx_chained, chained.rx_chained + 1);
        ensure_eq!(c.rx_bad_len, chained.rx_bad_len + 1);
        ensure_eq!(area.load(RX_TAIL), base + 3);
        put(base + 3, 30, MORE, &arp[..30]);
        put(base + 4, 12, CSUM_VALID, &arp[30..]);
        area.store(RX_HEAD, base + 5);
        att.kick(DriverNext::Waits);
        wait_for("the bad continuation counted", || counters().rx_bad_flags > c.rx_bad_flags)?;
        ensure_eq!(area.load(RX_TAIL), base + 5);
        ensure_eq!(counters().rx_frames, c.rx_frames);
        // The driver goes: the interface stays, and the next driver gets a fresh area.
        drop(att);
        ensure!(netif::list().iter().any(|n| n.bdf == FAKE_BDF && !n.attached), "still attached");
        let again = netif::open(FAKE_BDF, MAC, (notify, 1)).map_err(|e| alloc::format!("reopen: {e:?}"))?;
        ensure_eq!(again.area().load(RX_TAIL), 0);
        ensure_eq!(counters().attaches, 2);
        ensure_eq!(
            netif::open(FAKE_BDF, [0x02, 0, 0, 0, 0xfe, 0x09], (notify, 1)).err(),
            Some(Error::EBUSY)
        );
        drop(again);
        ensure_eq!(
            netif::open(FAKE_BDF, [0x02, 0, 0, 0, 0xfe, 0x09], (notify, 1)).err(),
            Some(Error::EINVAL)
        );
        sched::notify_destroy(notify);
        Ok(())
    }
}

kernel_test! {
    fn user_nic_suite_started_by_init_with_its_driver() {
        let Some(options) = crate::boot::args()
            .map(|a| a.init_args)
            .filter(|a| a.contains("driver=/bin/vnet@"))
        else {
            skip!("no driver=/bin/vnet@... init option (scripts/test's unet suite gives one)");
        };
        ensure_eq!(super::udriver::run_init(options)?, 0); // the unet suite's failures
        Ok(())
    }
}
