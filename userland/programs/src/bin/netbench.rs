//! `netbench`: DNS latency and HTTP throughput from user space, in the lab (scripts/bench
//! net runs it at the shell and compares it with the kernel's own figures of the
//! baseline build).
//!
//! Prints `netbench dns n=N errors=E median_us=M p99_us=P` for 1000 lookups of
//! lab.capstan.test at 192.0.2.1, `netbench http path=P check=C bytes=B ms=T busy_ms=U
//! irqs=I` for /1m.bin and /16m.bin with and without the SHA-256 check (busy: CPU time
//! of all CPUs from /proc/stat; irqs: the NIC's RX interrupts from /proc/netif),
//! `netbench sha256 impl=I bytes=B ms=T` for 4 MiB in memory, `netbench memcpy A bytes=B
//! us=T` for copies between equally aligned buffers and ones 4 bytes apart (what a copy
//! costs), then `netbench done`.
//!
//! With `--via ADDR` the DNS queries go to ADDR and the downloads come from `http://ADDR`
//! (the lab's second link, 198.51.100.1, is reached through the user-mode NIC driver's
//! interface), and `irqs` counts that NIC's interrupts (the interface's device in
//! `/proc/netif`, its user lines' interrupts in `/proc/devices`).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use capstan_programs::netutil::{self, DnsServer, Tcp};
use capstan_programs::tool::{self, Tool};
use capstan_rt::{Startup, entry, println, time};
use dns::RecordType;
use http::client::{self, Check, Discard, Limits};

entry!(main);

const TOOL: Tool = Tool {
    name: "netbench",
    usage: "usage: netbench [DNS_QUERIES] [--via ADDR]\n  In the network lab: DNS latency (1000 queries by default), HTTP GET of /1m.bin and\n  /16m.bin with and without SHA-256, SHA-256 in memory; one line per figure. --via: DNS\n  and HTTP from ADDR (the lab's 198.51.100.1 goes through a user-mode NIC driver).",
};

const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn busy_ns() -> u64 {
    let stat = tool::read_text("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu"))
        .filter_map(|l| l.split(' ').nth(2)?.parse::<u64>().ok())
        .sum()
}

/// The RX interrupts of the NIC that reaches `via` (the kernel's, without `--via`).
fn rx_irqs(via: Option<Ipv4Addr>) -> u64 {
    let netif = tool::read_text("/proc/netif").unwrap_or_default();
    let Some(via) = via else {
        return tool::record_u64(&netif, "rx_interrupts").unwrap_or(0);
    };
    let gateway = alloc::format!(" gateway {via} ");
    let device = netif
        .lines()
        .find(|l| l.starts_with("netif") && l.contains(&gateway))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "device").nth(1));
    let devices = tool::read_text("/proc/devices").unwrap_or_default();
    device
        .and_then(|d| devices.lines().find(|l| l.starts_with(d)))
        .and_then(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "interrupts")
                .nth(1)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let (mut queries, mut via) = (1000, None);
    let mut words = args.iter();
    while let Some(w) = words.next() {
        match (*w, w.parse::<usize>()) {
            ("--via", _) => match words.next().and_then(|a| a.parse::<Ipv4Addr>().ok()) {
                Some(a) => via = Some(a),
                None => return TOOL.bad_usage("--via takes an IPv4 address"),
            },
            (_, Ok(n)) if n > 0 => queries = n,
            _ => return TOOL.bad_usage("the number of DNS queries"),
        }
    }
    let server = via.unwrap_or(GATEWAY);
    let mut dns = match DnsServer::new(server) {
        Ok(d) => d,
        Err(e) => return TOOL.fail("socket", e),
    };
    let mut samples: Vec<u64> = Vec::with_capacity(queries);
    let mut errors = 0;
    for _ in 0..queries {
        let t0 = time::now();
        match dns.resolve("lab.capstan.test", RecordType::A) {
            Ok(_) => samples.push(time::now() - t0),
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
    println!(
        "netbench dns n={} errors={errors} median_us={} p99_us={}",
        samples.len(),
        pct(50) / 1000,
        pct(99) / 1000
    );
    for path in ["/1m.bin", "/16m.bin"] {
        for (name, check) in [
            ("sha256", Check::Sha256(netutil::sha256_blocks())),
            ("none", Check::LengthOnly),
        ] {
            let url = match via {
                Some(a) => alloc::format!("http://{a}{path}"),
                None => alloc::format!("http://lab.capstan.test{path}"),
            };
            let (t0, busy0, irq0) = (time::now(), busy_ns(), rx_irqs(via));
            let r = client::get(
                &mut Tcp { dns: Some(server) },
                &url,
                check,
                Limits::default(),
                &mut Discard,
            );
            match r {
                Ok(f) => println!(
                    "netbench http path={path} check={name} bytes={} ms={} busy_ms={} irqs={}",
                    f.len,
                    (time::now() - t0) / 1_000_000,
                    (busy_ns() - busy0) / 1_000_000,
                    rx_irqs(via) - irq0
                ),
                Err(e) => println!("netbench http path={path} check={name} error={e}"),
            }
        }
    }
    let block = alloc::vec![0x5au8; 4 << 20];
    let cpu = netutil::has_feature("sha2");
    for (name, blocks) in [
        (
            if cpu { "cpu" } else { "soft-again" },
            netutil::sha256_blocks(),
        ),
        ("soft", http::digest::soft_blocks as http::BlockFn),
    ] {
        let t0 = time::now();
        let mut d = http::BodyDigest::with_blocks(blocks);
        d.update(&block);
        let (_, digest) = d.finish();
        println!(
            "netbench sha256 impl={name} bytes={} ms={} first={:02x}",
            block.len(),
            (time::now() - t0) / 1_000_000,
            digest.0[0]
        );
    }
    let mut to = alloc::vec![0u8; block.len()];
    for (name, skew) in [("aligned", 0), ("skewed", 4)] {
        let t0 = time::now();
        for _ in 0..8 {
            let n = block.len() - 16;
            to[16..][..n].copy_from_slice(core::hint::black_box(&block[16 - skew..][..n]));
            core::hint::black_box(&mut to);
        }
        println!(
            "netbench memcpy {name} bytes={} us={}",
            8 * (block.len() - 16),
            (time::now() - t0) / 1_000
        );
    }
    println!("netbench done");
    0
}
