//! The kernel monitor: a tiny interactive console until the shell exists.
//!
//! Input comes from `console::input` (interrupt-driven, with backpressure); a line
//! is limited to `MAX_LINE` bytes, and what a longer one loses is counted and said.

use alloc::string::String;

use crate::arch::{heap, psci, secondary, stack};
use crate::console::input::read_byte;
use crate::mem::frames;
use crate::{console, irq, sched, time, timer};

/// The longest command line kept; bytes past it are dropped, counted and reported.
const MAX_LINE: usize = 256;

/// Reads one line with echo and backspace. Returns how many bytes past `MAX_LINE` were
/// dropped.
fn read_line(buf: &mut String) -> usize {
    buf.clear();
    let mut dropped = 0;
    loop {
        match read_byte() {
            b'\r' | b'\n' => {
                crate::println!();
                return dropped;
            }
            0x7f | 0x08 if buf.pop().is_some() => crate::print!("\x08 \x08"),
            b if (b.is_ascii_graphic() || b == b' ') && buf.len() >= MAX_LINE => dropped += 1,
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
        let dropped = read_line(&mut line);
        if dropped > 0 {
            crate::println!("line too long: {dropped} bytes past {MAX_LINE} dropped");
        }
        execute(line.trim());
    }
}

/// Runs one monitor command.
pub fn execute(cmd: &str) {
    match cmd {
        "" => {}
        "help" => {
            crate::println!(
                "commands: help, mem, irqs, uptime, threads, cpus, net, reboot, poweroff"
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
        "threads" => sched::for_each_thread(|t| {
            crate::println!(
                "{:>4} {:<12} {:<8} scheduled {} times, ran {} us",
                t.id.0,
                t.name,
                t.state,
                t.switches_in,
                t.run_ns / 1000
            );
        }),
        "cpus" => crate::println!("{} CPUs online", secondary::online()),
        "net" => net(),
        "reboot" => {
            crate::println!("rebooting");
            let e = psci::system_reset();
            crate::println!("reset failed: {e}");
        }
        "poweroff" => {
            crate::println!("powering off");
            let e = psci::system_off();
            crate::println!("power off failed: {e}");
        }
        other => crate::println!("unknown command '{other}' (try 'help')"),
    }
}

/// `mem`: where every byte of RAM went at boot, then what is in use now.
fn mem() {
    const MIB: usize = 1 << 20;
    let mib = |bytes: usize| alloc::format!("{}.{} MiB", bytes / MIB, (bytes % MIB) * 10 / MIB);
    let (free, total) = frames::stats();
    let (used, size) = heap::stats();
    if let Some(m) = crate::mem::boot_memory() {
        crate::println!("RAM:            {}", mib(m.ram));
        crate::println!(
            "  kernel image  {} (code, data, 1 MiB boot heap, 1 MiB boot stack)",
            mib(m.image)
        );
        crate::println!("  device tree   {}", mib(m.firmware_tables));
        crate::println!("  reserved      {} (firmware, initrd)", mib(m.reserved));
        crate::println!(
            "  kernel stacks {} ({} of {} KiB and {} of {} KiB, each above a guard page)",
            mib(m.stacks),
            stack::Class::Kernel.slots(),
            stack::Class::Kernel.size() >> 10,
            stack::Class::User.slots(),
            stack::Class::User.size() >> 10
        );
        crate::println!("  page rounding {}", mib(m.rounding()));
        crate::println!("  frame pool    {}", mib(m.frames));
    }
    crate::println!(
        "frames: {} of {} free ({} of {})",
        free,
        total,
        mib(free * frames::FRAME),
        mib(total * frames::FRAME)
    );
    crate::println!(
        "heap:   {} KiB used of {} KiB (taken from the frame pool)",
        used >> 10,
        size >> 10
    );
    let (kernel, user) = stack::in_use();
    crate::println!(
        "stacks: {kernel} of {} kernel and {user} of {} user in use",
        stack::Class::Kernel.slots(),
        stack::Class::User.slots()
    );
    crate::println!(
        "dma:    {} bytes quarantined",
        crate::arch::dma::HAL.quarantined()
    );
    let input = console::input::stats();
    crate::println!(
        "console input: {} bytes buffered, {} lost to UART overruns",
        input.buffered,
        input.overruns
    );
}

fn net() {
    let Some(s) = crate::net::stack::status() else {
        crate::println!(
            "network stack not running (boot with net=dhcp; scripts/run does so unless --no-net)"
        );
        return;
    };
    let mode = match s.mode {
        Some(crate::net::stack::RxMode::Interrupt) => String::from("receive by interrupt"),
        Some(m @ crate::net::stack::RxMode::Poll { .. }) => {
            alloc::format!("receive polled {} times a second", m.poll_hz().unwrap_or(0))
        }
        None => String::from("not started"),
    };
    let address = s.address.map_or_else(
        || String::from("none yet (DHCP)"),
        |a| alloc::format!("{a}"),
    );
    crate::println!("network: {mode}, address {address}");
    if let Some(n) = s.nic {
        use crate::net::virtio::IrqMode;
        crate::println!(
            "nic: {} interface, {}, link {}, config interrupts {}",
            match n.transport {
                drivers::virtio::TransportKind::Modern => "modern virtio",
                drivers::virtio::TransportKind::Legacy => "legacy virtio",
            },
            match n.irq {
                IrqMode::MsixPerQueue => "MSI-X vectors for receive and config",
                IrqMode::MsixShared => "one shared MSI-X vector",
                IrqMode::Intx => "INTx line",
            },
            if n.link_up { "up" } else { "down" },
            n.config_events
        );
        crate::println!("offloads: {}", n.offloads);
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
    let input = console::input::stats();
    crate::println!(
        "console input: {} bytes lost to UART overruns, {} backpressure stalls, {} buffered",
        input.overruns,
        input.stalls,
        input.buffered
    );
}
