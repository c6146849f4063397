//! The kernel monitor: a tiny interactive console until the shell exists.
//!
//! Input is interrupt-driven: the UART's receive interrupt is owned by the
//! console reader thread, which the IRQ path wakes; it drains the FIFO into a
//! buffer, re-enables the line and wakes the monitor.

use alloc::string::String;
use caps::irq::{Armed, Draining, IrqLine};
use caps::napi::quiesce_with;
use core::sync::atomic::{AtomicU32, Ordering};
use heapless::Deque;

use crate::arch::{heap, psci, secondary, stack};
use crate::mem::frames;
use crate::sched::{self, NotifyId};
use crate::sync::IrqLock;
use crate::{boot, console, irq, time, timer};

static INPUT: IrqLock<Deque<u8, 512>> = IrqLock::new(Deque::new());
static INPUT_READY: AtomicU32 = AtomicU32::new(u32::MAX);

fn input_notify() -> Option<NotifyId> {
    match INPUT_READY.load(Ordering::Acquire) {
        u32::MAX => None,
        id => Some(NotifyId(id)),
    }
}

/// Starts the thread that owns the UART receive interrupt.
pub fn start_console_reader() {
    let Some(uart_irq) = boot::platform().and_then(|p| p.uart_irq) else {
        log::warn!("UART has no interrupt: console input unavailable");
        return;
    };
    let (Ok(line_notify), Ok(ready)) = (sched::notify_create(), sched::notify_create()) else {
        return;
    };
    INPUT_READY.store(ready.0, Ordering::Release);
    let owner = irq::owner_of(line_notify);
    let line = match irq::mint(uart_irq.intid, uart_irq.trigger, owner, "uart") {
        Ok(line) => line,
        Err(e) => {
            log::warn!("UART interrupt {} unavailable: {e:?}", uart_irq.intid);
            return;
        }
    };
    console::with_uart(|u| u.enable_rx_interrupt());
    let reader = move || {
        let mut line = line.arm();
        loop {
            if sched::notify_wait(line_notify, u64::MAX).is_err() {
                continue;
            }
            line = match line.try_take() {
                Ok(draining) => drain_uart(draining, ready),
                Err(armed) => armed, // stale wake-up: the line has not fired
            };
        }
    };
    if sched::spawn("console-rx", reader).is_err() {
        log::warn!("no stack for the console reader");
    }
}

/// Moves received bytes into the input buffer until the UART reads back quiet, then
/// re-arms the line with that proof.
fn drain_uart(mut line: IrqLine<Draining>, ready: NotifyId) -> IrqLine<Armed> {
    loop {
        let mut got = false;
        console::with_uart(|u| {
            while let Some(b) = u.read_byte() {
                let _ = INPUT.lock().push_back(b);
                got = true;
            }
        });
        if got {
            let _ = sched::notify_post(ready, 1);
        }
        let still_quiet = || console::with_uart(|u| !u.rx_interrupt_pending()).unwrap_or(true);
        let clear = || {
            console::with_uart(|u| u.clear_rx_interrupt());
        };
        match quiesce_with(line, clear, still_quiet) {
            Ok((quiet, draining)) => return draining.rearm(quiet),
            Err(draining) => line = draining,
        }
    }
}

/// Blocks until a byte of console input arrives.
pub fn read_byte() -> u8 {
    loop {
        if let Some(b) = read_byte_until(u64::MAX) {
            return b;
        }
    }
}

/// Waits for a byte of console input until `deadline_ns`.
pub fn read_byte_until(deadline_ns: u64) -> Option<u8> {
    loop {
        if let Some(b) = INPUT.lock().pop_front() {
            return Some(b);
        }
        if time::now_ns() >= deadline_ns {
            return None;
        }
        match input_notify() {
            Some(n) => {
                let _ = sched::notify_wait(n, deadline_ns);
            }
            None => sched::sleep_ns(10_000_000),
        }
    }
}

fn read_line(buf: &mut String) {
    buf.clear();
    loop {
        match read_byte() {
            b'\r' | b'\n' => {
                crate::println!();
                return;
            }
            0x7f | 0x08 if buf.pop().is_some() => crate::print!("\x08 \x08"),
            b if b.is_ascii_graphic() || b == b' ' => {
                buf.push(b as char);
                crate::print!("{}", b as char);
            }
            _ => {}
        }
    }
}

/// Runs the monitor on the calling thread forever.
pub fn run() -> ! {
    crate::println!("Capstan monitor. Type 'help'.");
    let mut line = String::new();
    loop {
        crate::print!("capstan> ");
        read_line(&mut line);
        execute(line.trim());
    }
}

/// Runs one monitor command.
pub fn execute(cmd: &str) {
    match cmd {
        "" => {}
        "help" => {
            crate::println!(
                "commands: help, mem, irqs, uptime, threads, cpus, net, netbench, reboot, poweroff"
            )
        }
        "mem" => mem(),
        "irqs" => irqs(),
        "uptime" => {
            let us = time::now_ns() / 1000;
            crate::println!(
                "up {}.{:06} s, {} timer interrupts, {} context switches",
                us / 1_000_000,
                us % 1_000_000,
                timer::ticks(),
                sched::switches()
            );
        }
        "threads" => sched::for_each_thread(|id, name, state, runs| {
            crate::println!(
                "{:>4} {:<12} {:<8} scheduled {runs} times",
                id.0,
                name,
                state
            );
        }),
        "cpus" => crate::println!("{} CPUs online", secondary::online()),
        "net" => net(),
        "netbench" => netbench(),
        "reboot" => {
            crate::println!("rebooting");
            let e = psci::system_reset();
            crate::println!("reset failed: {e:?}");
        }
        "poweroff" => {
            crate::println!("powering off");
            let e = psci::system_off();
            crate::println!("power off failed: {e:?}");
        }
        other => crate::println!("unknown command '{other}' (try 'help')"),
    }
}

fn mem() {
    let (free, total) = frames::stats();
    let (used, size) = heap::stats();
    crate::println!(
        "frames: {} free of {} ({} MiB of {} MiB)",
        free,
        total,
        (free * 4096) >> 20,
        (total * 4096) >> 20
    );
    crate::println!("heap:   {} KiB used of {} KiB", used >> 10, size >> 10);
    crate::println!("stacks: {} of {} in use", stack::in_use(), stack::SLOTS);
    crate::println!(
        "dma:    {} bytes quarantined",
        crate::arch::dma::HAL.quarantined()
    );
}

fn net() {
    let Some(s) = crate::net::stack::status() else {
        crate::println!("network stack not running (boot with net=dhcp or net=poll)");
        return;
    };
    crate::println!("mode {:?}, address {:?}", s.mode, s.address);
    if let Some(n) = s.nic {
        crate::println!(
            "nic: {:?} interface, interrupts {:?}, link {}, config interrupts {}",
            n.transport,
            n.irq,
            if n.link_up { "up" } else { "down" },
            n.config_events
        );
    }
    crate::println!(
        "rx interrupts {}, udp echoed {}, datagrams reassembled {}",
        s.rx_interrupts,
        s.echoed,
        s.reassembled
    );
    crate::print!("gate drops {}:", s.ingress.total());
    for why in crate::net::ingress::Dropped::ALL {
        let n = s.ingress.get(why);
        if n > 0 {
            crate::print!(" {} {n}", why.name());
        }
    }
    crate::println!();
    let (datagrams, bytes, held) = s.gate_held;
    crate::println!("reassembling {datagrams} datagrams ({bytes} bytes), holding {held} for ARP");
    let n = s.neigh;
    crate::println!(
        "arp: asked {} held {} released {} expired {} probes-answered {} defended {}",
        n.asked,
        n.held,
        n.released,
        n.expired,
        n.probes_answered,
        n.defended
    );
    crate::println!(
        "udp discarded {}, flood ends {}, device resets {}",
        s.discarded,
        s.flood_ends,
        s.reinits
    );
    for (name, q) in [("rx", s.rx), ("tx", s.tx)] {
        if let Some(q) = q {
            crate::println!(
                "{name}: packets {} bytes {} merged {} gso {} csum-offloaded {} budget-exhausted {} rearm-races {} bad-descriptors {} malformed {} multi-buffer-dropped {} refill-failures {} full {}",
                q.packets,
                q.bytes,
                q.merged,
                q.gso,
                q.csum_offloaded,
                q.budget_exhausted,
                q.rearm_races,
                q.bad_descriptors,
                q.malformed,
                q.multi_buffer_dropped,
                q.refill_failures,
                q.full
            );
        }
    }
}

/// Guest-side network figures for `scripts/bench net`: DNS query latency to the
/// gateway's server, HTTP download throughput with and without the SHA-256 check (and
/// the CPU time and RX interrupts each took), and the raw SHA-256 speed (lab names; see
/// docs/netlab.md).
fn netbench() {
    use smoltcp::wire::Ipv4Address;
    let gw = Ipv4Address::new(192, 0, 2, 1);
    if crate::net::stack::address().is_none() {
        crate::println!("netbench: no address");
        return;
    }
    netbench_dns(gw);
    use crate::net::fetch::Check;
    for path in ["/1m.bin", "/16m.bin"] {
        for (name, check) in [("sha256", Check::Sha256), ("none", Check::LengthOnly)] {
            netbench_http(gw, path, name, check);
        }
    }
    netbench_sha();
    crate::println!("netbench done");
}

fn netbench_dns(gw: smoltcp::wire::Ipv4Address) {
    let mut samples = alloc::vec::Vec::new();
    let mut errors = 0;
    for _ in 0..1000 {
        let t0 = time::now_ns();
        match crate::net::resolve::resolve_a("lab.capstan.test", gw) {
            Ok(_) => samples.push(time::now_ns() - t0),
            Err(_) => errors += 1,
        }
    }
    samples.sort_unstable();
    let pct = |p: usize| {
        samples
            .get(samples.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    crate::println!(
        "netbench dns n={} errors={errors} median_us={} p99_us={}",
        samples.len(),
        pct(50) / 1000,
        pct(99) / 1000
    );
}

/// One download: wall time, the time CPU 0 was not idle (`busy_ms`), and RX interrupts.
fn netbench_http(
    gw: smoltcp::wire::Ipv4Address,
    path: &str,
    name: &str,
    check: crate::net::fetch::Check,
) {
    let url = alloc::format!("http://lab.capstan.test{path}");
    let irqs = || crate::net::stack::rx_irq().map_or(0, |(_, n)| n);
    let (t0, idle0, irq0) = (time::now_ns(), crate::sched::idle_ns(), irqs());
    match crate::net::fetch::get_with(&url, gw, check) {
        Ok(f) => {
            let ns = time::now_ns() - t0;
            let busy = ns.saturating_sub(crate::sched::idle_ns() - idle0);
            crate::println!(
                "netbench http path={path} check={name} bytes={} ms={} busy_ms={} irqs={}",
                f.len,
                ns / 1_000_000,
                busy / 1_000_000,
                irqs() - irq0
            );
        }
        Err(e) => crate::println!("netbench http path={path} check={name} error={e}"),
    }
}

/// SHA-256 over 4 MiB in memory, with the CPU's instructions (if any) and in software.
fn netbench_sha() {
    use crate::net::http::BodyDigest;
    use crate::net::http::digest::soft_blocks;
    let block = alloc::vec![0x5au8; 4 << 20];
    let cpu = crate::arch::sha256::available();
    let impls: [(&str, crate::net::http::BlockFn); 2] = [
        (
            if cpu { "cpu" } else { "soft-again" },
            crate::net::fetch::sha256_blocks(),
        ),
        ("soft", soft_blocks),
    ];
    for (name, blocks) in impls {
        let t0 = time::now_ns();
        let mut d = BodyDigest::with_blocks(blocks);
        d.update(&block);
        let (_, digest) = d.finish();
        let ns = (time::now_ns() - t0).max(1);
        crate::println!(
            "netbench sha256 impl={name} bytes={} ms={} first={:02x}",
            block.len(),
            ns / 1_000_000,
            digest.0[0]
        );
    }
}

fn irqs() {
    crate::println!(
        "{:>6} {:<10} {:>10}  {:<9} owner",
        "INTID",
        "kind",
        "CPU0",
        "state"
    );
    irq::for_each_line(|l| {
        let state = alloc::format!("{:?}", l.stats.status);
        crate::println!(
            "{:>6} {:<10} {:>10}  {:<9} {}",
            l.intid,
            l.kind.name(),
            l.stats.per_cpu[0],
            state,
            l.name
        );
    });
    let (spurious, unowned) = irq::anomalies();
    crate::println!("spurious: {spurious}, unowned: {unowned}");
}
