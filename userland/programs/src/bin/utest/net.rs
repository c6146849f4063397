//! The network suite: sockets, DNS and HTTP from user space against the network lab's
//! real servers (docs/netlab.md: dnsmasq and nginx on 192.0.2.1, the odd DNS server on
//! 192.0.2.4, the odd HTTP server on 192.0.2.1:8080). Outside the lab every test skips.
//!
//! Two tests need the host's help, and ask for it on the console: a UDP and a TCP echo
//! server the lab's harness (scripts/test) talks to when it reads `nettest: udp echo on
//! PORT` or `nettest: tcp echo on PORT`.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use abi::Error;
use capstan_programs::netutil::{self, DnsServer, Tcp};
use capstan_programs::{Failure, Outcome, Test, check, check_eq, tool};
use capstan_rt::net::{NO_WAIT, Proto, Socket, after_ms};
use capstan_rt::{fs, println, process, time};
use dns::{DnsError, RecordType};
use http::client::{self, Check, FetchError, Limits, Sink};
use http::{HttpError, Sha256Digest};

/// The suite.
pub const TESTS: &[Test] = &[
    ("lease_is_in_the_lab_range", lease),
    (
        "icmp_echo_to_the_gateway_and_silence_from_nobody",
        icmp_echo,
    ),
    ("udp_socket_binds_connects_and_filters", udp_basics),
    ("udp_echo_server_answers_the_host", udp_echo_server),
    ("tcp_client_speaks_http_by_hand", tcp_by_hand),
    ("tcp_server_accepts_and_echoes_the_host", tcp_echo_server),
    ("tcp_refused_and_unreachable", tcp_refused_unreachable),
    (
        "socket_calls_check_their_arguments_and_state",
        socket_errors,
    ),
    ("sockets_per_process_are_bounded", socket_bound),
    ("notify_wait_covers_several_sockets", several_sockets),
    ("a_dead_process_closes_its_sockets", dead_process_sockets),
    ("dns_a_cname_chain_nxdomain_and_a_silent_server", dns_a),
    ("dns_aaaa_dual_stack_and_nodata", dns_aaaa),
    ("dns_servfail_refused_and_hostile_replies", dns_hostile),
    ("dns_truncated_answer_comes_over_tcp", dns_tcp_fallback),
    ("dns_dropped_queries_are_answered_on_retry", dns_retry),
    (
        "dns_reply_larger_than_the_mtu_arrives_in_fragments",
        dns_big,
    ),
    ("sha256_with_cpu_instructions_matches_software", sha_impls),
    ("http_small_file_and_a_redirect", http_small),
    ("http_1m_and_16m_with_sha256", http_large),
    ("http_chunked_bodies_and_trailers", http_chunked),
    ("http_errors_are_named", http_errors),
    (
        "http_content_encoding_and_a_body_past_its_length",
        http_encoding_excess,
    ),
    ("http_a_stalled_server_cannot_hang_a_fetch", http_stall),
];

const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SILENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const NOBODY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
const ODD_DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 4);

fn fail(what: &str, e: impl core::fmt::Display) -> Failure {
    Failure::Failed(alloc::format!("{what}: {e}"))
}

/// Our lab address, or skip.
fn in_lab() -> Result<Ipv4Addr, Failure> {
    let deadline = time::now() + 20_000_000_000;
    loop {
        let netif = tool::read_text("/proc/netif").unwrap_or_default();
        let addr = tool::record(&netif, "address")
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse::<Ipv4Addr>().ok());
        match addr {
            Some(a) if a.octets()[..3] == [192, 0, 2] => return Ok(a),
            Some(_) => return Err(Failure::Skipped("not on the network lab (192.0.2.0/24)")),
            None if tool::record(&netif, "state") != Some("up") => {
                return Err(Failure::Skipped("no network (boot with net=dhcp)"));
            }
            None if time::now() > deadline => return Err(fail("DHCP", "no lease in 20 s")),
            None => time::sleep_ns(50_000_000),
        }
    }
}

fn lease() -> Outcome {
    let a = in_lab()?;
    check!(
        (50..=99).contains(&a.octets()[3]),
        "lease {a} outside .50-.99"
    );
    let netif = tool::read_text("/proc/netif")?;
    check_eq!(tool::record(&netif, "gateway"), Some("192.0.2.1"));
    check!(netif.contains("dns 192.0.2.1"), "{netif}");
    Ok(())
}

/// One echo request with `seq`; the round trip in ns, `None` without an answer.
fn ping(sock: &Socket, to: Ipv4Addr, seq: u16, wait_ms: u64) -> Result<Option<u64>, Failure> {
    let mut req = [8u8, 0, 0, 0, 0, 0, 0, 0, b'c', b'a', b'p', b's'];
    req[6..8].copy_from_slice(&seq.to_be_bytes());
    let t0 = time::now();
    sock.send_to(&req, Some((to, 0)), after_ms(wait_ms))?;
    let deadline = after_ms(wait_ms);
    let mut buf = [0u8; 64];
    loop {
        match sock.recv_from(&mut buf, deadline) {
            Ok((n, from, _)) if from == to && n == req.len() && buf[6..8] == req[6..8] => {
                check_eq!(buf[0], 0); // an echo reply
                check_eq!(&buf[8..n], &req[8..]);
                return Ok(Some(time::now() - t0));
            }
            Ok(_) => {}
            Err(Error::ETIMEDOUT) => return Ok(None),
            Err(e) => return Err(fail("recv", e)),
        }
    }
}

fn icmp_echo() -> Outcome {
    in_lab()?;
    let sock = Socket::open(Proto::Icmp, 0)?;
    for seq in 1..=3 {
        check!(
            ping(&sock, GATEWAY, seq, 2000)?.is_some(),
            "no reply to {seq}"
        );
    }
    check_eq!(ping(&sock, NOBODY, 9, 500)?, None);
    // Not an echo request: refused before it leaves.
    let r = sock.send_to(&[3, 1, 0, 0, 0, 0, 0, 0], Some((GATEWAY, 0)), NO_WAIT);
    check_eq!(r.err(), Some(Error::EINVAL));
    Ok(())
}

/// A DNS query for `name` A, by hand.
fn query(id: u16, name: &str) -> Vec<u8> {
    dns::Query::new(id, name, RecordType::A)
        .map(|q| q.bytes().to_vec())
        .unwrap_or_default()
}

/// The `/proc/net` lines owned by `pid`.
fn net_lines(pid: u32) -> Vec<String> {
    let text = tool::read_text("/proc/net").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(4) == Some(&*alloc::format!("{pid}")))
        .map(String::from)
        .collect()
}

fn udp_basics() -> Outcome {
    let me = in_lab()?;
    let sock = Socket::open(Proto::Udp, 0)?;
    let port = sock.bind(0)?;
    check!(port >= 49152, "ephemeral port {port}");
    let lines = net_lines(process::getpid());
    check!(
        lines.iter().any(|l| l.starts_with("udp")
            && l.contains(&alloc::format!("{me}:{port}"))
            && l.contains("bound")),
        "/proc/net: {lines:?}"
    );
    // A query by hand to dnsmasq, answered to our port.
    sock.send_to(
        &query(0x4242, "lab.capstan.test"),
        Some((GATEWAY, 53)),
        after_ms(1000),
    )?;
    let mut buf = [0u8; 512];
    let (n, from, from_port) = sock.recv_from(&mut buf, after_ms(3000))?;
    check_eq!((from, from_port), (GATEWAY, 53));
    check!(n > 12 && buf[0..2] == [0x42, 0x42], "reply {n} bytes");
    // Connected to the odd server: dnsmasq's answer to us is filtered out.
    sock.connect(ODD_DNS, 53, NO_WAIT)?;
    sock.send_to(
        &query(0x4343, "lab.capstan.test"),
        Some((GATEWAY, 53)),
        after_ms(1000),
    )?;
    check_eq!(
        sock.recv(&mut buf, after_ms(1500)).err(),
        Some(Error::ETIMEDOUT)
    );
    sock.send_to(&query(0x4444, "nothing.odd.test"), None, after_ms(1000))?;
    let (_, from, _) = sock.recv_from(&mut buf, after_ms(3000))?;
    check_eq!(from, ODD_DNS);
    check_eq!(sock.recv(&mut buf, NO_WAIT).err(), Some(Error::EAGAIN));
    Ok(())
}

fn udp_echo_server() -> Outcome {
    in_lab()?;
    let sock = Socket::open(Proto::Udp, 0)?;
    let port = sock.bind(7777)?;
    println!("nettest: udp echo on {port}");
    // Everything is echoed until the host's last datagram (it resends what it did not
    // get back, so duplicates are fine).
    let mut buf = [0u8; 2048];
    let deadline = after_ms(30_000);
    let mut echoed = 0;
    loop {
        let (n, from, from_port) = sock
            .recv_from(&mut buf, deadline)
            .map_err(|e| fail(&alloc::format!("datagram {echoed} from the host"), e))?;
        sock.send_to(&buf[..n], Some((from, from_port)), after_ms(1000))?;
        echoed += 1;
        if &buf[..n] == b"capstan udp done" {
            break;
        }
    }
    check!(echoed >= 4, "only {echoed} datagrams");
    Ok(())
}

/// Reads a whole TCP stream until the peer closes.
fn read_all(s: &Socket, ms: u64) -> Result<Vec<u8>, Failure> {
    let deadline = after_ms(ms);
    let mut out = Vec::new();
    let mut buf = alloc::vec![0u8; 16 * 1024];
    loop {
        match s.recv(&mut buf, deadline)? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn tcp_by_hand() -> Outcome {
    in_lab()?;
    let s = Socket::open(Proto::Tcp, 0)?;
    s.connect(GATEWAY, 80, after_ms(5000))?;
    s.send_all(
        b"GET /small.txt HTTP/1.1\r\nHost: lab.capstan.test\r\nConnection: close\r\n\r\n",
        after_ms(2000),
    )?;
    let got = read_all(&s, 5000)?;
    let text = String::from_utf8_lossy(&got);
    check!(text.starts_with("HTTP/1.1 200"), "{text}");
    check!(
        text.ends_with("Hello from the Capstan network lab.\n"),
        "{text}"
    );
    Ok(())
}

fn tcp_echo_server() -> Outcome {
    in_lab()?;
    let listener = Socket::open(Proto::Tcp, 0)?;
    listener.bind(7778)?;
    listener.listen(2)?;
    check!(
        net_lines(process::getpid())
            .iter()
            .any(|l| l.contains(":7778") && l.contains("listen")),
        "listener not in /proc/net"
    );
    println!("nettest: tcp echo on 7778");
    let (conn, peer, _) = listener
        .accept(after_ms(30_000))
        .map_err(|e| fail("accept (the host connects)", e))?;
    check_eq!(peer.octets()[..3], [192, 0, 2]);
    let line = read_all(&conn, 10_000)?;
    check!(
        line.starts_with(b"hello capstan"),
        "{:?}",
        String::from_utf8_lossy(&line)
    );
    // The host half-closed; our echo still goes back before our FIN.
    conn.send_all(&line, after_ms(2000))?;
    conn.shutdown_write()?;
    check_eq!(
        conn.send_to(b"x", None, NO_WAIT).err(),
        Some(Error::ENOTCONN)
    );
    Ok(())
}

fn tcp_refused_unreachable() -> Outcome {
    in_lab()?;
    let s = Socket::open(Proto::Tcp, 0)?;
    check_eq!(
        s.connect(GATEWAY, 81, after_ms(5000)).err(),
        Some(Error::ECONNREFUSED)
    );
    let s = Socket::open(Proto::Tcp, 0)?;
    let t0 = time::now();
    check_eq!(
        s.connect(NOBODY, 80, after_ms(1000)).err(),
        Some(Error::ETIMEDOUT)
    );
    check!(time::now() - t0 >= 900_000_000, "gave up early");
    Ok(())
}

fn socket_errors() -> Outcome {
    in_lab()?;
    let udp = Socket::open(Proto::Udp, 0)?;
    check_eq!(
        udp.send_to(b"x", None, NO_WAIT).err(),
        Some(Error::ENOTCONN)
    );
    check_eq!(udp.listen(1).err(), Some(Error::EBADSTATE));
    check_eq!(udp.accept(NO_WAIT).err(), Some(Error::EBADSTATE));
    let big = alloc::vec![0u8; abi::net::MAX_DATAGRAM + 1];
    check_eq!(
        udp.send_to(&big, Some((GATEWAY, 9)), NO_WAIT).err(),
        Some(Error::EINVAL)
    );
    check_eq!(
        udp.send_to(b"x", Some((GATEWAY, 0)), NO_WAIT).err(),
        Some(Error::EINVAL)
    );
    let a = Socket::open(Proto::Udp, 0)?;
    a.bind(5300)?;
    let b = Socket::open(Proto::Udp, 0)?;
    check_eq!(b.bind(5300).err(), Some(Error::EADDRINUSE));
    check_eq!(
        b.bind(7).err(),
        Some(Error::EADDRINUSE),
        "the kernel's echo service"
    );
    check_eq!(a.bind(5301).err(), Some(Error::EBADSTATE), "bound twice");
    // TCP may reuse the UDP port number.
    let t = Socket::open(Proto::Tcp, 0)?;
    t.bind(5300)?;
    check_eq!(t.recv(&mut [0; 4], NO_WAIT).err(), Some(Error::ENOTCONN));
    check_eq!(
        t.accept(NO_WAIT).err(),
        Some(Error::EBADSTATE),
        "not listening"
    );
    t.listen(1)?;
    check_eq!(t.accept(NO_WAIT).err(), Some(Error::EAGAIN));
    let icmp = Socket::open(Proto::Icmp, 0)?;
    check_eq!(icmp.bind(1).err(), Some(Error::EBADSTATE));
    // A socket handle is a linear capability: dropped, it is stale.
    let h = a.into_handle();
    capstan_rt::cap::drop(h)?;
    let stale = Socket::from_handle(h);
    check_eq!(stale.bind(1).err(), Some(Error::EBADH));
    let _ = stale.into_handle();
    // A file handle is not a socket.
    let f = fs::File::open("/etc/motd")?;
    let not = Socket::from_handle(f.handle());
    check_eq!(not.bind(1).err(), Some(Error::EWRONGTYPE));
    let _ = not.into_handle();
    // Raw calls: a bad protocol, a port past 16 bits, shutdown(how != SHUT_WR).
    use abi::Sysnum;
    use capstan_rt::sys;
    check_eq!(
        sys::call2(Sysnum::SockOpen, 9, 0).err(),
        Some(Error::EINVAL)
    );
    check_eq!(
        sys::call3(Sysnum::Bind, u64::from(b.handle().raw()), 0, 70000).err(),
        Some(Error::EINVAL)
    );
    check_eq!(
        sys::call2(Sysnum::Shutdown, u64::from(t.handle().raw()), 2).err(),
        Some(Error::EINVAL)
    );
    Ok(())
}

fn socket_bound() -> Outcome {
    in_lab()?;
    let mut held = Vec::new();
    loop {
        match Socket::open(Proto::Udp, 0) {
            Ok(s) => held.push(s),
            Err(e) => {
                check_eq!(e, Error::ENOSPC);
                break;
            }
        }
        check!(held.len() <= abi::net::MAX_SOCKETS_PER_PROCESS, "no bound");
    }
    check_eq!(held.len(), abi::net::MAX_SOCKETS_PER_PROCESS);
    held.pop();
    Socket::open(Proto::Tcp, 0).map(drop)?;
    Ok(())
}

fn several_sockets() -> Outcome {
    in_lab()?;
    let a = Socket::open(Proto::Udp, 1 << 3)?;
    let b = Socket::open(Proto::Udp, 1 << 5)?;
    a.bind(0)?;
    b.bind(0)?;
    let _ = time::notify_wait(u64::MAX, 1); // clear old bits
    b.send_to(
        &query(0x5151, "lab.capstan.test"),
        Some((GATEWAY, 53)),
        after_ms(1000),
    )?;
    // News is data, the end, or room to send: the query leaving may post bit 5 before
    // the answer does, so wait until the news is the answer. `a` never has any.
    let deadline = after_ms(3000);
    let mut buf = [0u8; 512];
    let got = loop {
        let bits = time::notify_wait((1 << 3) | (1 << 5), deadline)?;
        check_eq!(bits & (1 << 3), 0);
        check_eq!(bits & (1 << 5), 1 << 5);
        match b.recv(&mut buf, NO_WAIT) {
            Err(Error::EAGAIN) => continue,
            r => break r?,
        }
    };
    check!(got > 12, "the news was not a DNS answer: {got} bytes");
    check_eq!(a.recv(&mut buf, NO_WAIT).err(), Some(Error::EAGAIN));
    Ok(())
}

fn dead_process_sockets() -> Outcome {
    in_lab()?;
    let pid = process::spawn("/bin/child", &["child", "sockets"], &[])?;
    let deadline = after_ms(10_000);
    while net_lines(pid).len() < 3 {
        check!(
            time::now() < deadline,
            "the child's sockets never showed: {:?}",
            net_lines(pid)
        );
        time::sleep_ns(20_000_000);
    }
    let lines = net_lines(pid);
    check!(
        lines
            .iter()
            .any(|l| l.starts_with("tcp") && l.contains("established")),
        "{lines:?}"
    );
    process::kill(pid)?;
    check_eq!(process::wait(pid)?.status, abi::proc::STATUS_KILLED);
    // UDP and the listener go at once; the connection after its FIN exchange (<= 5 s).
    let deadline = after_ms(8000);
    while !net_lines(pid).is_empty() {
        check!(time::now() < deadline, "left behind: {:?}", net_lines(pid));
        time::sleep_ns(50_000_000);
    }
    Ok(())
}

fn resolve(server: Ipv4Addr, name: &str, qtype: RecordType) -> Result<dns::Resolved, DnsError> {
    DnsServer::new(server)
        .map_err(|_| DnsError::Timeout)?
        .resolve(name, qtype)
}

fn v4s(r: Result<dns::Resolved, DnsError>) -> Result<Vec<Ipv4Addr>, DnsError> {
    r.map(|r| r.ipv4().addrs)
}

fn dns_a() -> Outcome {
    in_lab()?;
    let lab = resolve(GATEWAY, "lab.capstan.test", RecordType::A).map_err(|e| fail("lab", e))?;
    check_eq!(
        (v4s(Ok(lab.clone())), lab.cnames),
        (Ok(alloc::vec![GATEWAY]), 0)
    );
    let www = resolve(GATEWAY, "www.capstan.test", RecordType::A).map_err(|e| fail("www", e))?;
    check_eq!(www.cnames, 2);
    check_eq!(v4s(Ok(www)), Ok(alloc::vec![GATEWAY]));
    check_eq!(
        resolve(GATEWAY, "missing.capstan.test", RecordType::A).err(),
        Some(DnsError::NxDomain)
    );
    let t0 = time::now();
    check_eq!(
        resolve(SILENT, "lab.capstan.test", RecordType::A).err(),
        Some(DnsError::Timeout)
    );
    let ms = (time::now() - t0) / 1_000_000;
    check!(
        ms >= 5500,
        "timed out after {ms} ms, before the retries ended"
    );
    check_eq!(
        resolve(GATEWAY, "bad..name", RecordType::A).err(),
        Some(DnsError::BadName)
    );
    Ok(())
}

fn dns_aaaa() -> Outcome {
    in_lab()?;
    let v6 = |last| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last);
    let aaaa = |name| resolve(GATEWAY, name, RecordType::Aaaa).map(|r| (r.cnames, r.ipv6().addrs));
    check_eq!(aaaa("lab.capstan.test"), Ok((0, alloc::vec![v6(1)])));
    check_eq!(aaaa("www.capstan.test"), Ok((2, alloc::vec![v6(1)])));
    let mut dual = aaaa("dual.capstan.test").map_err(|e| fail("dual", e))?.1;
    dual.sort();
    check_eq!(dual, [v6(0x10), v6(0x11)]);
    check_eq!(
        v4s(resolve(GATEWAY, "dual.capstan.test", RecordType::A)),
        Ok(alloc::vec![Ipv4Addr::new(192, 0, 2, 10)])
    );
    check_eq!(aaaa("v4only.capstan.test").err(), Some(DnsError::NoData));
    check_eq!(aaaa("v6only.capstan.test"), Ok((0, alloc::vec![v6(0x12)])));
    check_eq!(
        resolve(GATEWAY, "v6only.capstan.test", RecordType::A).err(),
        Some(DnsError::NoData)
    );
    check_eq!(aaaa("missing.capstan.test").err(), Some(DnsError::NxDomain));
    Ok(())
}

fn dns_hostile() -> Outcome {
    in_lab()?;
    let odd = |name| resolve(ODD_DNS, name, RecordType::A);
    check_eq!(odd("nothing.odd.test").err(), Some(DnsError::NxDomain));
    let t0 = time::now();
    check_eq!(odd("servfail.odd.test").err(), Some(DnsError::ServFail));
    let ms = (time::now() - t0) / 1_000_000;
    check!(
        ms < 500,
        "SERVFAIL took {ms} ms: an error reply must end the lookup"
    );
    check_eq!(odd("lab.capstan.test").err(), Some(DnsError::Refused));
    check_eq!(odd("loop.odd.test").err(), Some(DnsError::Malformed));
    check_eq!(odd("short.odd.test").err(), Some(DnsError::Malformed));
    // Three decoys (wrong id, wrong type echoed, wrong name echoed) come first.
    check_eq!(v4s(odd("spoof.odd.test")), Ok(alloc::vec![GATEWAY]));
    Ok(())
}

fn dns_tcp_fallback() -> Outcome {
    in_lab()?;
    // tc.odd.test: over UDP a reply with TC set and no records; over TCP the answer.
    check_eq!(
        v4s(resolve(ODD_DNS, "tc.odd.test", RecordType::A)),
        Ok(alloc::vec![Ipv4Addr::new(192, 0, 2, 7)])
    );
    // tctc.odd.test: truncated over TCP as well.
    check_eq!(
        resolve(ODD_DNS, "tctc.odd.test", RecordType::A).err(),
        Some(DnsError::Truncated)
    );
    Ok(())
}

fn dns_retry() -> Outcome {
    in_lab()?;
    let _ = resolve(ODD_DNS, "nothing.odd.test", RecordType::A); // ARP first
    // dropN ignores N sends, then answers 192.0.2.(200 + sends seen); sends leave at 0,
    // 0.5, 1.5 and 3.5 s.
    for (drops, earliest, latest) in [(1u8, 500, 1500), (2, 1500, 3500), (3, 3500, 5500)] {
        let name = alloc::format!("drop{drops}.odd.test");
        let t0 = time::now();
        let got = v4s(resolve(ODD_DNS, &name, RecordType::A)).map_err(|e| fail(&name, e))?;
        let ms = (time::now() - t0) / 1_000_000;
        check_eq!(got, [Ipv4Addr::new(192, 0, 2, 201 + drops)]);
        check!((earliest..latest).contains(&ms), "{name} after {ms} ms");
    }
    Ok(())
}

fn dns_big() -> Outcome {
    in_lab()?;
    let reassembled = || {
        tool::read_text("/proc/netif")
            .ok()
            .and_then(|t| tool::record_u64(&t, "reassembled"))
            .unwrap_or(0)
    };
    let before = reassembled();
    let got = v4s(resolve(ODD_DNS, "big.odd.test", RecordType::A)).map_err(|e| fail("big", e))?;
    check_eq!(got.len(), 150);
    check!(
        got.contains(&Ipv4Addr::new(198, 51, 100, 150)),
        "last record missing"
    );
    check!(
        reassembled() > before,
        "the reply was not reassembled from fragments"
    );
    Ok(())
}

fn sha_impls() -> Outcome {
    if !netutil::has_feature("sha2") {
        return Err(Failure::Skipped("this CPU has no SHA-256 instructions"));
    }
    let hw = netutil::sha256_blocks();
    let digest = |blocks: http::BlockFn, data: &[u8], step: usize| {
        let mut d = http::BodyDigest::with_blocks(blocks);
        for piece in data.chunks(step.max(1)) {
            d.update(piece);
        }
        d.finish().1
    };
    // FIPS 180-4 vectors.
    check_eq!(
        alloc::format!("{}", digest(hw, b"abc", 1)),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    check_eq!(
        alloc::format!("{}", digest(hw, b"", 1)),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // Random lengths and pieces against sha2's portable code.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..50 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 5000) as usize;
        let data: Vec<u8> = (0..len).map(|i| (x >> (i % 57)) as u8).collect();
        let step = (x >> 40) as usize % 300;
        check_eq!(digest(hw, &data, step), Sha256Digest::of(&data));
    }
    Ok(())
}

struct Keep(Vec<u8>);

impl Sink for Keep {
    fn body(&mut self, piece: &[u8]) {
        if self.0.len() < 4096 {
            self.0.extend_from_slice(piece);
        }
    }
}

fn get(url: &str) -> Result<(client::Fetched, Vec<u8>), FetchError> {
    let mut keep = Keep(Vec::new());
    let check = Check::Sha256(netutil::sha256_blocks());
    client::get(
        &mut Tcp { dns: Some(GATEWAY) },
        url,
        check,
        Limits::default(),
        &mut keep,
    )
    .map(|f| (f, keep.0))
}

fn http_small() -> Outcome {
    in_lab()?;
    let (small, body) = get("http://lab.capstan.test/small.txt").map_err(|e| fail("small", e))?;
    check_eq!(small.status, 200);
    check_eq!(body, b"Hello from the Capstan network lab.\n");
    let (redirected, _) =
        get("http://lab.capstan.test/redirect").map_err(|e| fail("redirect", e))?;
    check_eq!((redirected.status, redirected.redirects), (200, 1));
    check_eq!(redirected.sha256, small.sha256);
    Ok(())
}

/// The digest scripts/test put on the command line as `KEY=HEX`.
fn expected_sha(key: &str) -> Option<Sha256Digest> {
    let line = tool::read_text("/proc/cmdline").ok()?;
    let hex = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?;
    Sha256Digest::from_hex(hex)
}

fn http_large() -> Outcome {
    in_lab()?;
    for (path, key, len) in [
        ("/1m.bin", "sha1m", 1u64 << 20),
        ("/16m.bin", "sha16m", 16 << 20),
    ] {
        let Some(want) = expected_sha(key) else {
            return Err(Failure::Skipped("no sha1m=/sha16m= on the command line"));
        };
        let t0 = time::now();
        let (got, _) =
            get(&alloc::format!("http://lab.capstan.test{path}")).map_err(|e| fail(path, e))?;
        let ns = time::now() - t0;
        check_eq!((got.status, got.len, got.sha256), (200, len, Some(want)));
        println!(
            "report: user-http-get {path} bytes={len} ms={} rate={}",
            ns / 1_000_000,
            netutil::rate(len, ns)
        );
    }
    Ok(())
}

fn http_chunked() -> Outcome {
    in_lab()?;
    let (plain, _) = get("http://lab.capstan.test/chunk.txt").map_err(|e| fail("chunk.txt", e))?;
    let (nginx, _) =
        get("http://lab.capstan.test/chunked").map_err(|e| fail("nginx chunked", e))?;
    check_eq!(
        (nginx.status, nginx.len, nginx.sha256),
        (200, plain.len, plain.sha256)
    );
    let (odd, _) = get("http://192.0.2.1:8080/chunked").map_err(|e| fail("odd chunked", e))?;
    check_eq!(
        (odd.len, odd.sha256),
        (plain.len, plain.sha256),
        "chunk extensions and a trailer"
    );
    Ok(())
}

fn http_errors() -> Outcome {
    in_lab()?;
    let err = |url| get(url).err();
    check!(
        matches!(err("http://192.0.2.1:81/"), Some(FetchError::Io(ref e)) if e.0.contains("ECONNREFUSED")),
        "refused: {:?}",
        err("http://192.0.2.1:81/")
    );
    check!(
        matches!(
            err("http://192.0.2.1:8080/malformed"),
            Some(FetchError::Http(_))
        ),
        "malformed"
    );
    check_eq!(
        err("http://192.0.2.1:8080/badchunk"),
        Some(FetchError::Http(HttpError::BadChunk))
    );
    check_eq!(
        err("http://192.0.2.1:8080/truncated"),
        Some(FetchError::Http(HttpError::TruncatedBody))
    );
    check_eq!(
        err("http://lab.capstan.test/loop"),
        Some(FetchError::Http(HttpError::TooManyRedirects))
    );
    check_eq!(
        err("https://lab.capstan.test/"),
        Some(FetchError::Http(HttpError::UnsupportedScheme))
    );
    check!(
        matches!(err("http://missing.capstan.test/"), Some(FetchError::Io(ref e)) if e.0.contains("NXDOMAIN")),
        "NXDOMAIN: {:?}",
        err("http://missing.capstan.test/")
    );
    let (nf, _) = get("http://lab.capstan.test/no-such-file").map_err(|e| fail("404", e))?;
    check_eq!(nf.status, 404);
    Ok(())
}

fn http_encoding_excess() -> Outcome {
    in_lab()?;
    check_eq!(
        get("http://192.0.2.1:8080/gzip").err(),
        Some(FetchError::Http(HttpError::UnsupportedContentEncoding(
            http::ContentCoding::Gzip
        )))
    );
    let (got, body) = get("http://192.0.2.1:8080/excess").map_err(|e| fail("excess", e))?;
    let want: Vec<u8> = (0..100u8).collect();
    check_eq!((got.status, got.len), (200, 100));
    check_eq!(body, want);
    check!(got.excess > 0, "the surplus was not reported");
    Ok(())
}

fn http_stall() -> Outcome {
    in_lab()?;
    // /stall sends its head and 10 of 1000 bytes, then nothing (for 20 s).
    let limits = Limits {
        total_ms: 30_000,
        idle_ms: 1500,
    };
    let t0 = time::now();
    let r = client::get(
        &mut Tcp { dns: Some(GATEWAY) },
        "http://192.0.2.1:8080/stall",
        Check::LengthOnly,
        limits,
        &mut client::Discard,
    );
    let ms = (time::now() - t0) / 1_000_000;
    check_eq!(r.err(), Some(FetchError::Stalled));
    check!((1400..5000).contains(&ms), "stalled after {ms} ms");
    // The overall deadline, shorter than the idle limit.
    let limits = Limits {
        total_ms: 1000,
        idle_ms: 10_000,
    };
    let r = client::get(
        &mut Tcp { dns: Some(GATEWAY) },
        "http://192.0.2.1:8080/stall",
        Check::LengthOnly,
        limits,
        &mut client::Discard,
    );
    check_eq!(r.err(), Some(FetchError::Deadline));
    Ok(())
}
