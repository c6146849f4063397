//! `/proc`: the kernel's counters as text files, generated whole when opened.
//!
//! Each file is rendered into a buffer at `open`, so a reader never sees a line torn
//! by a concurrent update and reads need no locks. The formats are line-oriented
//! `key value` pairs or aligned tables, one record per line (docs/process.md lists
//! them): `stat`, `threads`, `interrupts`, `meminfo`, `dma`, `cmdline`, `cpuinfo`, `net`
//! (sockets), `netif` (the interface), and `<pid>/status`, `<pid>/caps`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use super::{counters, table};
use crate::arch::{dma, heap, stack, uspace};
use crate::{irq, mem, sched, time};

/// Renders `/proc<rest>`; `None` for no such file.
pub fn generate(rest: &str) -> Option<Vec<u8>> {
    let mut out = String::new();
    match rest.trim_end_matches('/') {
        "" => listing(&mut out),
        "/stat" => stat(&mut out),
        "/threads" => threads(&mut out),
        "/interrupts" => interrupts(&mut out),
        "/meminfo" => meminfo(&mut out),
        "/dma" => dma_file(&mut out),
        "/devices" => devices(&mut out),
        "/net" => net(&mut out),
        "/cpuinfo" => cpuinfo(&mut out),
        "/netif" => netif(&mut out),
        "/profile" => profile(&mut out),
        "/cmdline" => {
            let _ = writeln!(out, "{}", crate::machine::command_line());
        }
        other => {
            let (pid, file) = other.strip_prefix('/')?.split_once('/')?;
            let p = table::get(pid.parse().ok()?)?;
            match file {
                "status" => status(&mut out, &p),
                "caps" => caps(&mut out, &p),
                _ => return None,
            }
        }
    }
    Some(out.into_bytes())
}

fn listing(out: &mut String) {
    for name in [
        "stat",
        "threads",
        "interrupts",
        "meminfo",
        "dma",
        "devices",
        "cmdline",
        "net",
        "netif",
        "profile",
    ] {
        let _ = writeln!(out, "{name}");
    }
    for p in table::all().iter().filter(|p| p.pid != 0) {
        let _ = writeln!(out, "{}/status\n{}/caps", p.pid, p.pid);
    }
}

/// PCs listed by `/proc/profile` at most (the rest are summed on one line).
const PROFILE_LINES: usize = 2000;

/// The profiler's samples since the last read: `sample PC COUNT` lines, most frequent
/// first, and the programs behind the ASIDs user samples carry (docs/profiling.md).
fn profile(out: &mut String) {
    let Some(hz) = sched::profile::rate() else {
        let _ = writeln!(out, "profiling is off (boot with profile=HZ)");
        return;
    };
    let (mut samples, dropped) = sched::profile::take();
    let _ = writeln!(out, "hz {hz}\nsamples {}\ndropped {dropped}", samples.len());
    for p in table::all().iter().filter(|p| p.pid != 0) {
        let asid = p.asid();
        if asid != 0 {
            let _ = writeln!(out, "asid {asid} pid {} {}", p.pid, p.name);
        }
    }
    let counts = crate::tally::tally(&mut samples);
    for &(pc, n) in counts.iter().take(PROFILE_LINES) {
        let _ = writeln!(out, "sample {pc:#x} {n}");
    }
    let rest: u64 = counts
        .iter()
        .skip(PROFILE_LINES)
        .map(|&(_, n)| u64::from(n))
        .sum();
    if rest > 0 {
        let _ = writeln!(out, "other {rest}");
    }
}

/// Every thread: id, name (a user thread's: its pid and program), state, times switched
/// to and CPU time run, so the busy stage of a pipeline shows.
fn threads(out: &mut String) {
    let mut all = Vec::new();
    // Named after the scheduler's lock is dropped: the process table has its own.
    sched::for_each_thread(|t| all.push(t.clone()));
    for t in all {
        let id = t.id.0;
        let _ = match t.pid.and_then(|pid| table::get(pid).map(|p| (pid, p))) {
            Some((pid, p)) => write!(out, "{id} pid {pid} {}", p.name),
            None => write!(out, "{id} {}", t.name),
        };
        let _ = writeln!(
            out,
            " {} switches {} run_ns {}",
            t.state, t.switches_in, t.run_ns
        );
    }
}

fn stat(out: &mut String) {
    let up = time::now_ns();
    let _ = writeln!(out, "uptime_ns {up}");
    let _ = writeln!(out, "context_switches {}", sched::switches());
    for (cpu, (busy, idle)) in sched::cpu_times().iter().enumerate() {
        let _ = writeln!(out, "cpu{cpu} busy_ns {busy} idle_ns {idle}");
    }
    let _ = writeln!(out, "ipis {}", irq::IPIS.load(Ordering::Relaxed));
    let input = crate::console::input::stats();
    let _ = writeln!(
        out,
        "console_foreground {}",
        crate::console::input::foreground()
    );
    let _ = writeln!(out, "console_interrupts {}", input.interrupts);
    let total: u64 = irq::edge_spi_totals().iter().map(|&(_, n)| n).sum::<u64>();
    let mut all = 0u64;
    irq::for_each_line(|l| all += l.stats.per_cpu.iter().sum::<u64>());
    let _ = writeln!(out, "interrupts {all}");
    let _ = writeln!(out, "interrupts_msi_and_edge {total}");
    irq::for_each_line(|l| {
        let _ = writeln!(
            out,
            "interrupts_by_line {} {} {}",
            l.intid,
            l.name,
            l.stats.per_cpu.iter().sum::<u64>()
        );
    });
    let _ = writeln!(out, "syscalls {}", counters::calls());
    let _ = writeln!(out, "syscalls_unknown {}", counters::unknown());
    let _ = writeln!(out, "syscall_errors {}", counters::errors());
    for e in abi::Error::ALL {
        let n = counters::errors_of(e);
        if n > 0 {
            let _ = writeln!(out, "syscall_errors_by_errno {} {n}", e.name());
        }
    }
    let _ = writeln!(
        out,
        "processes_spawned {}",
        table::SPAWNED.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "processes_exited {}",
        table::EXITED.load(Ordering::Relaxed)
    );
}

fn interrupts(out: &mut String) {
    let cpus = sched::cpu_times().len().max(1);
    let _ = write!(out, "{:>6} {:<10}", "INTID", "kind");
    for c in 0..cpus {
        let _ = write!(out, " {:>10}", alloc::format!("CPU{c}"));
    }
    let _ = writeln!(out, " {:<9} owner", "state");
    irq::for_each_line(|l| {
        let _ = write!(out, "{:>6} {:<10}", l.intid, l.kind.name());
        for c in 0..cpus {
            let _ = write!(out, " {:>10}", l.stats.per_cpu.get(c).copied().unwrap_or(0));
        }
        let state = alloc::format!("{:?}", l.stats.status);
        let _ = writeln!(out, " {state:<9} kernel ({})", l.name);
    });
    let _ = writeln!(
        out,
        "{:>6} {:<10} {:>10}",
        "-",
        "IPI",
        irq::IPIS.load(Ordering::Relaxed)
    );
}

fn meminfo(out: &mut String) {
    let (free, total) = mem::frames::stats();
    let (heap_used, heap_size) = heap::stats();
    let _ = writeln!(out, "frames_total {total}");
    let _ = writeln!(out, "frames_free {free}");
    let _ = writeln!(out, "heap_bytes {heap_size}");
    let _ = writeln!(out, "heap_used_bytes {heap_used}");
    let (kernel, user) = stack::in_use();
    let _ = writeln!(out, "kernel_stacks_in_use {kernel}");
    let _ = writeln!(out, "user_kernel_stacks_in_use {user}");
    let _ = writeln!(out, "user_page_table_frames {}", uspace::table_frames());
    let _ = writeln!(out, "dma_quarantined_bytes {}", dma::HAL.quarantined());
}

fn dma_file(out: &mut String) {
    use crate::process::file::Object;
    mem::retired::sweep();
    let (count, bytes) = dma::live();
    let _ = writeln!(out, "kernel_buffers {count} bytes {bytes}");
    let _ = writeln!(out, "quarantined_bytes {}", dma::HAL.quarantined());
    for (pa, len) in dma::HAL.quarantined_regions() {
        let _ = writeln!(out, "region {pa:#x} {len} owner kernel state quarantined");
    }
    // User drivers' DMA: live regions, memory held for devices not read stopped, and the
    // poison check of freed buffers (mem::retired).
    for p in table::all() {
        let _ = table::with_caps(&p, |caps| {
            for (h, ty, _) in caps.iter() {
                if let Ok(Object::DmaRegion(r)) = caps.get(h, ty, abi::Rights::empty()) {
                    let (pa, len, dir) = r.describe();
                    let _ = writeln!(
                        out,
                        "region {pa:#x} {len} owner {} state {}",
                        p.pid,
                        crate::process::device::dir_name(dir)
                    );
                }
            }
            Ok(())
        });
    }
    for (bdf, n, bytes) in crate::pci::handoff::held_report() {
        let _ = writeln!(
            out,
            "held {bdf} buffers {n} bytes {bytes} (device not read stopped)"
        );
    }
    let (held, held_bytes) = mem::retired::held();
    let (checked, violations) = mem::retired::counts();
    let _ = writeln!(out, "user_freed {}", crate::pci::handoff::freed());
    let _ = writeln!(out, "poisoned_waiting {held} bytes {held_bytes}");
    let _ = writeln!(out, "poison_checked {checked}");
    let _ = writeln!(out, "poison_violations {violations}");
}

fn devices(out: &mut String) {
    for r in crate::pci::handoff::records() {
        let Some(bdf) = r.bdf else { continue };
        let _ = writeln!(
            out,
            "{bdf} grants {} interrupts {} stops_confirmed {} stops_waited {} stops_unconfirmed {}",
            r.grants, r.interrupts, r.stops_confirmed, r.stops_waited, r.stops_unconfirmed
        );
    }
}

fn status(out: &mut String, p: &table::Process) {
    let (mapped, tables, caps) = p.usage();
    let _ = writeln!(out, "pid {}", p.pid);
    let _ = writeln!(out, "name {}", p.name);
    let _ = writeln!(out, "parent {}", p.parent());
    let _ = writeln!(
        out,
        "state {}",
        if p.is_zombie() { "zombie" } else { "running" }
    );
    let _ = writeln!(out, "memory_bytes {mapped}");
    let _ = writeln!(out, "page_table_frames {tables}");
    let _ = writeln!(out, "capabilities {caps}");
    let _ = writeln!(out, "syscalls {}", p.syscalls.load(Ordering::Relaxed));
    let _ = writeln!(out, "started_ns {}", p.started_ns);
    let _ = writeln!(out, "children {:?}", p.children());
    let _ = writeln!(out, "asid {}", p.asid());
    p.for_each_region(|r| {
        let _ = writeln!(
            out,
            "region {:#014x}-{:#014x} {} {:?}",
            r.va,
            r.va + r.len,
            match r.access {
                uspace::UserAccess::Read => "r--",
                uspace::UserAccess::ReadWrite => "rw-",
                uspace::UserAccess::ReadExecute => "r-x",
                uspace::UserAccess::Device => "rw- device",
            },
            r.kind
        );
    });
}

fn caps(out: &mut String, p: &table::Process) {
    let _ = writeln!(
        out,
        "{:>4} {:>10} {:<12} {:<28} state",
        "slot", "handle", "type", "rights"
    );
    let _ = table::with_caps(p, |caps| {
        for (h, ty, rights) in caps.iter() {
            let state = match caps.get(h, ty, abi::Rights::empty()) {
                Ok(crate::process::file::Object::IrqLine(l)) => match l.state() {
                    abi::dev::LINE_MASKED => "masked",
                    abi::dev::LINE_ARMED => "armed",
                    abi::dev::LINE_FIRED => "fired",
                    _ => "draining",
                },
                _ => "-",
            };
            let ty = alloc::format!("{ty:?}");
            let _ = writeln!(
                out,
                "{:>4} {:#010x} {ty:<12} {:<28} {state}",
                h.index(),
                h.raw(),
                rights_names(rights)
            );
        }
        Ok(())
    });
}

fn rights_names(r: abi::Rights) -> String {
    use abi::Rights;
    let names = [
        (Rights::TRANSFER, "transfer"),
        (Rights::INSPECT, "inspect"),
        (Rights::IRQ, "irq"),
        (Rights::ACK, "ack"),
        (Rights::MAP, "map"),
        (Rights::DMA, "dma"),
        (Rights::READ, "read"),
        (Rights::WRITE, "write"),
    ];
    let list: Vec<&str> = names
        .iter()
        .filter(|(b, _)| r.contains(*b))
        .map(|(_, n)| *n)
        .collect();
    if list.is_empty() {
        String::from("none")
    } else {
        list.join(",")
    }
}

fn net(out: &mut String) {
    use crate::net::stack::{self, Proto};
    let _ = writeln!(
        out,
        "{:<5} {:<21} {:<21} {:<12} {:>5} {:>12} {:>12} {:>8}",
        "proto", "local", "remote", "state", "owner", "rx_bytes", "tx_bytes", "tx_drop"
    );
    for s in stack::sockets() {
        let here = stack::iface_address(s.iface).map(|a| a.address());
        let proto = match s.proto {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Icmp => "icmp",
        };
        let local = match (here, s.local) {
            (_, None) => String::from("*:*"),
            (_, Some(id)) if s.proto == Proto::Icmp => alloc::format!("id:{id:#06x}"),
            (Some(a), Some(p)) => alloc::format!("{a}:{p}"),
            (None, Some(p)) => alloc::format!("*:{p}"),
        };
        let remote = s
            .remote
            .map_or(String::from("*:*"), |(a, p)| alloc::format!("{a}:{p}"));
        let _ = writeln!(
            out,
            "{proto:<5} {local:<21} {remote:<21} {:<12} {:>5} {:>12} {:>12} {:>8}",
            s.state, s.owner, s.rx_bytes, s.tx_bytes, s.tx_dropped
        );
    }
}

fn netif(out: &mut String) {
    use crate::net::stack;
    let Some(st) = stack::status() else {
        let _ = writeln!(out, "state down");
        netifs(out);
        return;
    };
    let _ = writeln!(out, "state up");
    match st.address {
        Some(a) => {
            let _ = writeln!(out, "address {a}");
        }
        None => {
            let _ = writeln!(out, "address none");
        }
    }
    if let Some(g) = stack::gateway() {
        let _ = writeln!(out, "gateway {g}");
    }
    for d in stack::dns_servers() {
        let _ = writeln!(out, "dns {d}");
    }
    if let Some(nic) = st.nic {
        let _ = writeln!(out, "irq_mode {:?}", nic.irq);
        let _ = writeln!(out, "link {}", if nic.link_up { "up" } else { "down" });
    }
    let _ = writeln!(out, "rx_interrupts {}", st.rx_interrupts);
    if let Some(rx) = st.rx {
        let _ = writeln!(out, "rx_packets {}", rx.packets);
    }
    if let Some(tx) = st.tx {
        let _ = writeln!(out, "tx_packets {}", tx.packets);
    }
    let _ = writeln!(out, "delivered {}", st.delivered);
    let _ = writeln!(out, "reassembled {}", st.reassembled);
    netifs(out);
}

/// One line per interface a user-mode driver feeds (`NetIf`).
fn netifs(out: &mut String) {
    for n in crate::net::stack::netif::list() {
        let m = n.mac;
        let c = n.counters;
        let _ = write!(
            out,
            "netif{} device {:02x}:{:02x}.{} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} driver {}",
            n.id,
            n.bdf >> 8,
            (n.bdf >> 3) & 31,
            n.bdf & 7,
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
            if n.attached { "attached" } else { "none" },
        );
        match n.address {
            Some(a) => {
                let _ = write!(out, " address {a}");
            }
            None => out.push_str(" address none"),
        }
        if let Some(g) = n.gateway {
            let _ = write!(out, " gateway {g}");
        }
        let _ = writeln!(
            out,
            " rx_frames {} rx_chained {} tx_frames {} rx_bad_index {} rx_bad_len {} rx_bad_flags {} rx_no_memory {} tx_bad_index {} tx_full {} tx_no_driver {} tx_parked {} echo_requests {} attaches {} kicks {}",
            c.rx_frames,
            c.rx_chained,
            c.tx_frames,
            c.rx_bad_index,
            c.rx_bad_len,
            c.rx_bad_flags,
            c.rx_no_memory,
            c.tx_bad_index,
            c.tx_full,
            c.tx_no_driver,
            c.tx_parked,
            c.echo_requests,
            c.attaches,
            c.kicks
        );
    }
}

fn cpuinfo(out: &mut String) {
    let _ = writeln!(out, "cpus {}", sched::cpu_times().len());
    let _ = writeln!(out, "midr {:#x}", crate::arch::cpu::midr());
    let features = crate::arch::cpu::isa_features();
    let _ = write!(out, "features");
    for f in features {
        let _ = write!(out, " {f}");
    }
    let _ = writeln!(out);
}
