//! The net task's loop: smoltcp, the services, a NAPI round, and device resets.
//!
//! Each turn polls smoltcp (twice, so replies the services queued go out at once),
//! serves the services and sessions, then sleeps until the NIC's next interrupt, a
//! request, or smoltcp's own next timer, and drains the ring (or, in polling mode, one
//! budget at the next tick). After every round it publishes the counters and, if the
//! device can no longer be trusted, replaces it.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use smoltcp::iface::{Interface, SocketSet};
use smoltcp::time::Instant;

use super::iface::{self, RX_QUEUE_MAX, Services};
use super::phy::{Phy, is_echo_request};
use super::service::{dhcp_events, pings, udp_discard, udp_echo};
use super::session::{tcp_sessions, udp_sessions};
use super::{NicInfo, RxMode, SHARED};
use crate::net::ingress::{self, IngressStats, Malformed};
use crate::net::mode::next_tick;
use crate::net::virtio::{self, VirtioNic};
use crate::sched;
use crate::sync::IrqLock;
use crate::time;

/// smoltcp's clock: microseconds since boot.
pub(super) fn now() -> Instant {
    Instant::from_micros((time::now_ns() / 1000) as i64)
}

/// What the task owns besides the NIC (which a device reset replaces).
struct Stack {
    mode: RxMode,
    rxq: VecDeque<Vec<u8>>,
    iface: Interface,
    sockets: SocketSet<'static>,
    services: Services,
}

/// Counts of one NAPI round, published after it.
#[derive(Default)]
struct Round {
    dropped: u64,
    echo: u64,
    bad: IngressStats,
}

/// The task's body: runs until the NIC cannot be brought back after a reset.
pub(super) fn run(mut nic: Box<VirtioNic>, mode: RxMode) {
    publish(&nic, mode);
    let mut rxq = VecDeque::new();
    let iface = iface::interface(&mut nic, &mut rxq);
    let mut sockets = SocketSet::new(Vec::new());
    let services = iface::services(&mut sockets);
    let mut stack = Stack {
        mode,
        rxq,
        iface,
        sockets,
        services,
    };
    loop {
        stack.poll_stack(&mut nic);
        let round = stack.receive(&mut nic);
        if publish_round(&nic, &round) {
            retire_counters(&nic);
            match reinit_nic(nic, mode) {
                Some(n) => nic = n,
                None => return,
            }
        }
    }
}

impl Stack {
    fn poll(&mut self, nic: &mut VirtioNic) {
        let mut phy = Phy {
            nic,
            rxq: &mut self.rxq,
        };
        self.iface.poll(now(), &mut phy, &mut self.sockets);
    }

    /// smoltcp in, the services and sessions, smoltcp out.
    fn poll_stack(&mut self, nic: &mut VirtioNic) {
        self.poll(nic);
        dhcp_events(&mut self.iface, &mut self.sockets, self.services.dhcp);
        pings(&mut self.sockets, &mut self.services.icmp);
        udp_echo(&mut self.sockets, self.services.echo);
        udp_discard(&mut self.sockets, self.services.discard);
        udp_sessions(&mut self.sockets);
        tcp_sessions(&mut self.iface, &mut self.sockets);
        self.poll(nic);
        udp_sessions(&mut self.sockets);
        tcp_sessions(&mut self.iface, &mut self.sockets);
    }

    /// Sleeps until the NIC has frames, a request arrives, or smoltcp's next timer, and
    /// queues what the ring holds (checked) for smoltcp.
    fn receive(&mut self, nic: &mut VirtioNic) -> Round {
        let delay_ns = self
            .iface
            .poll_delay(now(), &self.sockets)
            .map_or(1_000_000_000, |d| d.total_micros().saturating_mul(1000))
            .min(1_000_000_000);
        let deadline = time::now_ns() + delay_ns;
        let mut round = Round::default();
        let rxq = &mut self.rxq;
        let mut deliver = |frame: &[u8]| {
            if let Err(why) = ingress::check(frame) {
                round.bad.count(why);
                return;
            }
            if is_echo_request(frame) {
                round.echo += 1;
            }
            if rxq.len() < RX_QUEUE_MAX {
                rxq.push_back(frame.to_vec());
            } else {
                round.dropped += 1;
            }
        };
        match self.mode {
            RxMode::Interrupt => {
                let _ = nic.receive(deadline, &mut deliver);
            }
            RxMode::Poll { .. } => {
                // Sleep to the next tick (or a request); then drain one budget.
                let period = self.mode.poll_period_ns().unwrap_or(1_000_000_000);
                let tick = next_tick(time::now_ns(), period);
                let _ = sched::notify_wait(nic.rx_notify(), tick.min(deadline));
                nic.poll_rx(&mut deliver);
            }
        }
        round
    }
}

/// Publishes a round's counters; returns whether the device must be replaced.
fn publish_round(nic: &VirtioNic, round: &Round) -> bool {
    let mut s = SHARED.lock();
    s.rx_dropped += round.dropped;
    for why in Malformed::ALL {
        s.ingress.dropped[why as usize] += round.bad.get(why);
    }
    s.icmp_echo_requests_seen += round.echo;
    s.rx_stats = Some(s.retired.0.plus(&nic.net.rx_stats()));
    s.tx_stats = Some(s.retired.1.plus(&nic.net.tx_stats()));
    s.nic = Some(nic_info_of(nic));
    core::mem::take(&mut s.reinit_requested) || nic.needs_reinit()
}

/// Keeps a device's counters before it is given up on, so totals survive the reset.
fn retire_counters(nic: &VirtioNic) {
    let mut s = SHARED.lock();
    s.retired = (
        s.retired.0.plus(&nic.net.rx_stats()),
        s.retired.1.plus(&nic.net.tx_stats()),
    );
}

/// `virtio::attach` moves the driver's tables by value and needs more stack than is left
/// below the net task's own frame: run it on a thread of its own and wait for it.
fn attach_on_a_fresh_stack() -> Result<Box<VirtioNic>, virtio::AttachError> {
    type Slot = IrqLock<Option<Result<Box<VirtioNic>, virtio::AttachError>>>;
    let no_memory = virtio::AttachError::Dma(abi::Error::ENOMEM);
    let slot: alloc::sync::Arc<Slot> = alloc::sync::Arc::new(IrqLock::new(None));
    let done = sched::notify_create().map_err(|_| no_memory)?;
    let result = slot.clone();
    let spawned = sched::spawn("net-attach", move || {
        *result.lock() = Some(virtio::attach());
        let _ = sched::notify_post(done, 1);
    });
    if spawned.is_err() {
        sched::notify_destroy(done);
        return Err(no_memory);
    }
    loop {
        if let Some(r) = slot.lock().take() {
            sched::notify_destroy(done);
            return r;
        }
        let _ = sched::notify_wait(done, u64::MAX);
    }
}

/// Tells the rest of the kernel how to reach the NIC's task and what it runs on.
fn publish(nic: &VirtioNic, mode: RxMode) {
    let mut s = SHARED.lock();
    s.wake = Some(nic.rx_notify());
    s.rx_intid = Some(nic.rx_intid());
    s.nic = Some(nic_info_of(nic));
    s.mode = Some(mode);
}

/// The device is not to be trusted any more: reset it, let it go, and bring it up again
/// from scratch. The interface (address, sockets) carries on over the new one.
fn reinit_nic(nic: Box<VirtioNic>, mode: RxMode) -> Option<Box<VirtioNic>> {
    log::warn!("virtio-net: resetting the device and bringing it up again");
    let freed = nic.shut_down();
    log::info!("virtio-net: device reset; {freed} ring buffers freed");
    match attach_on_a_fresh_stack() {
        Ok(mut nic) => {
            if let RxMode::Poll { .. } = mode {
                nic.enter_polling_mode();
            }
            publish(&nic, mode);
            SHARED.lock().reinits += 1;
            log::info!("virtio-net: back up");
            Some(nic)
        }
        Err(e) => {
            log::error!("virtio-net: could not bring the device back ({e:?}); the net task stops");
            None
        }
    }
}

fn nic_info_of(nic: &VirtioNic) -> NicInfo {
    use drivers::virtio::Transport;
    NicInfo {
        irq: nic.mode,
        transport: nic.net.transport().kind(),
        link_up: nic.link_up,
        config_events: nic.config_events,
        link_downs: nic.link_downs,
    }
}
