//! The user-NIC suite: init started the user-mode virtio-net driver on the lab's second NIC
//! (`driver=/bin/vnet@00:0b.0`, the NIC on tap1); the kernel's `NetIf` interface it feeds
//! gets its own address on 198.51.100.0/24 by DHCP, and sockets reach the host through it
//! (docs/user-drivers.md, docs/net.md "More than one interface"). Without that driver every
//! test skips.
//!
//! The host's side (scripts/test) acts on `unet:` lines: it pings the address this suite
//! prints, and echoes over UDP and TCP when asked (scripts/netlab.d/peer.py).

use alloc::string::String;
use core::net::Ipv4Addr;

use capstan_programs::netutil::{self, Tcp};
use capstan_programs::{Failure, Outcome, Test, check, check_eq, tool};
use capstan_rt::net::{Proto, Socket, after_ms};
use capstan_rt::{println, process, time};
use http::Sha256Digest;
use http::client::{self, Check, Limits, Sink};

/// The second link's gateway: DHCP, DNS, nginx and a TCP echo server (port 7).
const GW2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The NIC init's `driver=` option names.
const NIC: &str = "00:0b.0";
/// The driver program.
const VNET: &str = "/bin/vnet";

/// The suite.
pub const TESTS: &[Test] = &[
    ("the_second_nic_gets_its_own_address", address),
    (
        "udp_and_tcp_echo_for_the_host_on_the_second_nic",
        echo_for_host,
    ),
    ("http_16m_through_the_user_driven_nic", http_16m),
    ("a_download_and_a_session_survive_a_driver_restart", restart),
];

/// The `/proc/netif` line of the interface for `NIC`, if there is one.
fn netif_line() -> Option<String> {
    let text = tool::read_text("/proc/netif").ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("netif") && l.contains(&alloc::format!("device {NIC} ")))?;
    Some(String::from(line))
}

/// The value after `key` in a `/proc/netif` line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()
}

/// The interface's address once it has one and a driver (at most `ms`); skips when no
/// driver runs for it.
fn ready(ms: u64) -> Result<Ipv4Addr, Failure> {
    if tool::pids_running(VNET).is_empty() {
        return Err(Failure::Skipped(
            "no /bin/vnet driver running (init driver= option)",
        ));
    }
    let deadline = time::now() + ms * 1_000_000;
    loop {
        if let Some(line) = netif_line()
            && field(&line, "driver") == Some("attached")
            && let Some(addr) = field(&line, "address").and_then(|a| a.split('/').next())
            && let Ok(addr) = addr.parse::<Ipv4Addr>()
        {
            return Ok(addr);
        }
        if time::now() > deadline {
            return Err(String::from("the user NIC's interface has no address").into());
        }
        time::sleep_ns(50_000_000);
    }
}

fn address() -> Outcome {
    let addr = ready(20_000)?;
    check_eq!(addr.octets()[..3], [198, 51, 100]);
    check!(
        (50..=99).contains(&addr.octets()[3]),
        "{addr} outside the lab's range"
    );
    println!("unet: address {addr}");
    Ok(())
}

/// The host pings the address and echoes through the kernel's UDP service (port 7) and a
/// TCP server bound to the user NIC's address; the test waits for the pings, counted in
/// `/proc/netif`.
fn echo_for_host() -> Outcome {
    let addr = ready(5_000)?;
    let listener = Socket::open(Proto::Tcp, 0)?;
    check_eq!(listener.bind_at(addr, 7779)?, 7779);
    listener.listen(2)?;
    println!("unet: udp echo on 7");
    println!("unet: tcp echo on 7779");
    let (conn, peer, _) = listener
        .accept(after_ms(30_000))
        .map_err(|e| alloc::format!("accept (the host connects): {e}"))?;
    check_eq!(peer, GW2);
    let mut line = alloc::vec::Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = conn.recv(&mut buf, after_ms(10_000))?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&buf[..n]);
    }
    check!(
        line.starts_with(b"hello capstan"),
        "{:?}",
        String::from_utf8_lossy(&line)
    );
    conn.send_all(&line, after_ms(2000))?;
    conn.shutdown_write()?;
    // The host's three pings (scripts/test sends them once it sees the address) are
    // answered before the suite goes on to restart the driver under them.
    let deadline = time::now() + 10_000_000_000;
    loop {
        let seen = netif_line()
            .and_then(|l| field(&l, "echo_requests").and_then(|n| n.parse::<u64>().ok()))
            .unwrap_or(0);
        if seen >= 3 {
            return Ok(());
        }
        check!(
            time::now() < deadline,
            "{seen} of the host's 3 pings arrived in 10 s"
        );
        time::sleep_ns(20_000_000);
    }
}

/// The digest scripts/test put on the command line as `sha16m=HEX`.
fn sha16m() -> Option<Sha256Digest> {
    let line = tool::read_text("/proc/cmdline").ok()?;
    let hex = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("sha16m="))?;
    Sha256Digest::from_hex(hex)
}

/// Takes the body; measures the longest silence between two pieces, and runs `at_half`
/// once half of it has arrived.
struct Watch<F: FnMut()> {
    last: u64,
    longest_gap: u64,
    at_half: Option<F>,
}

impl<F: FnMut()> Sink for Watch<F> {
    fn body(&mut self, _piece: &[u8]) {}

    fn progress(&mut self, received: u64, total: Option<u64>) {
        let now = time::now();
        self.longest_gap = self.longest_gap.max(now - self.last);
        self.last = now;
        if total.is_some_and(|t| received >= t / 2)
            && let Some(mut f) = self.at_half.take()
        {
            f();
        }
    }
}

/// GETs the lab's 16 MiB file from the second link's nginx (the route goes through the
/// user NIC); `at_half` runs halfway. Returns the digest check, the time and the longest
/// gap between pieces (ns).
fn download(at_half: impl FnMut()) -> Result<(u64, u64), Failure> {
    let want = sha16m().ok_or(Failure::Skipped("no sha16m= on the command line"))?;
    let mut watch = Watch {
        last: time::now(),
        longest_gap: 0,
        at_half: Some(at_half),
    };
    let t0 = time::now();
    let got = client::get(
        &mut Tcp { dns: None },
        "http://198.51.100.1/16m.bin",
        Check::Sha256(netutil::sha256_blocks()),
        Limits::default(),
        &mut watch,
    )
    .map_err(|e| alloc::format!("GET 16m.bin: {e}"))?;
    check_eq!(
        (got.status, got.len, got.sha256),
        (200, 16 << 20, Some(want))
    );
    Ok((time::now() - t0, watch.longest_gap))
}

fn http_16m() -> Outcome {
    ready(5_000)?;
    let (ns, gap) = download(|| {})?;
    println!(
        "report: unet-http-get bytes={} ms={} rate={} longest_gap_ms={}",
        16 << 20,
        ns / 1_000_000,
        netutil::rate(16 << 20, ns),
        gap / 1_000_000
    );
    Ok(())
}

/// One line through the host's TCP echo server, on a connection opened before.
fn echo_line(s: &Socket, line: &[u8]) -> Outcome {
    s.send_all(line, after_ms(5_000))?;
    let mut got = alloc::vec::Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < line.len() {
        let n = s.recv(&mut buf, after_ms(10_000))?;
        check!(n > 0, "the echo server closed the session");
        got.extend_from_slice(&buf[..n]);
    }
    check_eq!(got.as_slice(), line);
    Ok(())
}

/// Issue 17's restart: the driver is killed halfway through a 16 MiB download while a
/// TCP echo session is open; init starts a new one, and both finish without reconnecting.
fn restart() -> Outcome {
    ready(5_000)?;
    let session = Socket::open(Proto::Tcp, 0)?;
    session.connect(GW2, 7, after_ms(5_000))?;
    echo_line(&session, b"before the restart\n")?;
    let old = *tool::pids_running(VNET)
        .first()
        .ok_or_else(|| String::from("no driver"))?;
    let mut killed_at = 0;
    let (ns, gap) = download(|| {
        killed_at = time::now();
        let _ = process::kill(old);
    })?;
    check!(killed_at != 0, "the download never got halfway");
    let new = tool::pids_running(VNET);
    check!(
        !new.is_empty() && !new.contains(&old),
        "driver pids now {new:?}, killed {old}"
    );
    echo_line(&session, b"after the restart\n")?;
    println!(
        "report: unet-restart download_ms={} longest_gap_ms={} driver {old} -> {:?}",
        ns / 1_000_000,
        gap / 1_000_000,
        new.first()
    );
    Ok(())
}
