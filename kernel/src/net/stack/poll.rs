//! The net task's loop: a NAPI round, smoltcp, the services, and device resets.
//!
//! Each turn opens a NAPI round if the RX line fired, lets smoltcp pull up to one
//! budget of frames straight from the ring (through the gate) and poll twice around
//! the services and sockets (so replies they queued go out at once), then ends the
//! batch: work left keeps the line masked and the ring suppressed, and the task yields
//! and pulls again; a drained ring is re-armed through `enable_and_recheck`. Idle, the
//! task sleeps until the next interrupt, a request, smoltcp's own next timer or the
//! gate's (reassembly, held frames); in polling mode, until the next tick. After every
//! turn it publishes the counters and, if the device can no longer be trusted,
//! replaces it.

use alloc::boxed::Box;
use alloc::vec::Vec;

use smoltcp::iface::{Interface, PollResult, SocketSet};

use super::iface::{self, Services, now};
use super::phy::Phy;
use super::service::{dhcp_events, pings, udp_discard, udp_echo};
use super::{NicInfo, RxMode, SHARED};
use crate::net::gate::Gate;
use crate::net::mode::next_tick;
use crate::net::virtio::{self, BUDGET, VirtioNic};
use crate::sched;
use crate::sync::IrqLock;
use crate::time;

/// What the task owns besides the NIC (which a device reset replaces).
pub(super) struct Stack {
    mode: RxMode,
    pub(super) gate: Gate,
    iface: Interface,
    sockets: SocketSet<'static>,
    services: Services,
    /// Frames smoltcp may still pull in this batch.
    budget: usize,
    /// smoltcp leaves TCP checksums to the task (the device completes them).
    tcp_csum_ours: bool,
    /// The task yielded to a process it woke in this turn (once a turn at most).
    yielded: bool,
}

/// The task's body: runs until the NIC cannot be brought back after a reset.
pub(super) fn run(mut nic: Box<VirtioNic>, mode: RxMode) {
    publish(&nic, mode);
    let mut gate = Gate::new(nic.net.mac());
    let tcp_csum_ours = nic.net.tx_csum();
    let iface = iface::interface(&mut nic, &mut gate, tcp_csum_ours);
    let mut sockets = SocketSet::new(Vec::new());
    let services = iface::services(&mut sockets);
    let mut stack = Stack {
        mode,
        gate,
        iface,
        sockets,
        services,
        budget: 0,
        tcp_csum_ours,
        yielded: false,
    };
    loop {
        stack.gate.tick(time::now_ns());
        let pulling = nic.begin_round();
        stack.budget = if pulling { BUDGET } else { 0 };
        let unfinished = stack.poll_stack(&mut nic);
        let more = nic.end_batch() || unfinished;
        if publish_round(&nic, &mut stack.gate) {
            retire_counters(&nic);
            match reinit_nic(nic, mode) {
                Some(n) => nic = n,
                None => return,
            }
            continue;
        }
        if more {
            sched::yield_now(); // a flood never starves other threads
        } else {
            stack.sleep(&nic);
        }
    }
}

/// Polls of smoltcp per turn, each followed by the services: enough for a reply the
/// services queue to leave and the frames a poll pulls to be served in the same turn.
const POLLS_PER_TURN: usize = 4;

impl Stack {
    /// One smoltcp poll; whether it changed any socket.
    fn poll(&mut self, nic: &mut VirtioNic) -> bool {
        let mut phy = Phy::new(nic, &mut self.gate, &mut self.budget, self.tcp_csum_ours);
        let changed = self.iface.poll(now(), &mut phy, &mut self.sockets) != PollResult::None;
        iface::flush_egress(&mut self.iface, &mut phy, &mut self.sockets);
        changed
    }

    /// smoltcp in, the services and sessions, smoltcp out; again while a poll changed
    /// something, so a frame pulled in a poll is served before the task sleeps. Returns
    /// whether the last poll still changed something (the turn was cut short: the caller
    /// must come back without sleeping).
    fn poll_stack(&mut self, nic: &mut VirtioNic) -> bool {
        self.yielded = false;
        self.poll(nic);
        for _ in 0..POLLS_PER_TURN {
            self.services(nic);
            if !self.poll(nic) {
                return false;
            }
        }
        true
    }

    fn services(&mut self, nic: &mut VirtioNic) {
        let gate = &mut self.gate;
        dhcp_events(&mut self.iface, &mut self.sockets, self.services.dhcp, gate);
        pings(&mut self.sockets, &mut self.services.icmp);
        udp_echo(&mut self.sockets, self.services.echo);
        udp_discard(&mut self.sockets, self.services.discard);
        // Whoever the news below wakes reads counters that include the frames it came in.
        publish_counters(nic, &self.gate);
        let woke = super::socket::serve(super::PRIMARY, &mut self.iface, &mut self.sockets);
        // A process waiting for this news now waits on this CPU (a synchronous,
        // wake-affine wake-up). If nothing else waits here, let it take the data now, so
        // that its answer leaves in this turn instead of after a cross-CPU wake-up and
        // another turn; once a turn at most, and never behind a queue of other work (a
        // busy CPU would only delay the task).
        if woke > 0 && !self.yielded && sched::queued_here() <= woke {
            self.yielded = true;
            sched::yield_now();
            super::socket::serve(super::PRIMARY, &mut self.iface, &mut self.sockets);
        }
        self.solicit_new_remotes(nic);
    }

    /// Asks at once for the MAC of every next hop the sessions and pings just started
    /// to talk to (smoltcp would ask for one a second).
    fn solicit_new_remotes(&mut self, nic: &mut VirtioNic) {
        let fresh = core::mem::take(&mut SHARED.lock().fresh_remotes);
        let t = time::now_ns();
        for dst in fresh {
            self.gate.solicit(dst.octets(), t);
        }
        for f in self.gate.take_outgoing() {
            let _ = nic.send(&f);
        }
    }

    /// Sleeps until the NIC needs the task, a request arrives, smoltcp's next timer, or
    /// the gate's next timeout; in polling mode, until the next tick.
    fn sleep(&mut self, nic: &VirtioNic) {
        let delay_ns = self
            .iface
            .poll_delay(now(), &self.sockets)
            .map_or(1_000_000_000, |d| d.total_micros().saturating_mul(1000))
            .min(1_000_000_000);
        let mut deadline = time::now_ns().saturating_add(delay_ns);
        if let Some(t) = self.gate.next_timeout() {
            deadline = deadline.min(t);
        }
        if let Some(period) = self.mode.poll_period_ns() {
            deadline = deadline.min(next_tick(time::now_ns(), period));
        }
        let _ = nic.wait(deadline);
    }
}

/// Publishes a turn's counters; returns whether the device must be replaced.
fn publish_round(nic: &VirtioNic, gate: &mut Gate) -> bool {
    publish_counters(nic, gate);
    let mut s = SHARED.lock();
    core::mem::take(&mut s.reinit_requested) || nic.needs_reinit()
}

/// The turn's counters so far, for `/proc/netif` (and the monitor).
fn publish_counters(nic: &VirtioNic, gate: &Gate) {
    let mut s = SHARED.lock();
    s.ingress = gate.dropped;
    s.icmp_echo_requests_seen = gate.echo_requests;
    s.reassembled = gate.reassembled;
    s.delivered = gate.delivered;
    let (datagrams, bytes) = gate.reassembly();
    s.gate_held = (datagrams, bytes, gate.holding());
    s.neigh = gate.neigh_stats();
    s.rx_stats = Some(s.retired.0.plus(&nic.net.rx_stats()));
    s.tx_stats = Some(s.retired.1.plus(&nic.net.tx_stats()));
    s.nic = Some(nic_info_of(nic));
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
    log::debug!("virtio-net: the old device's lines are masked and released");
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
            log::error!("virtio-net: could not bring the device back ({e}); the net task stops");
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
        offloads: virtio::Offloads::of(&nic.net),
    }
}
