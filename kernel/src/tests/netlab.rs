//! Network tests that need scripts/netlab's namespace (boot option `net=dhcp`): the
//! DHCP lease, ICMP both ways, and interrupt-driven receive.

use smoltcp::wire::Ipv4Address;

use crate::net::stack;
use crate::{boot, ensure, ensure_eq, kernel_test, time};

fn in_lab() -> bool {
    boot::args().is_some_and(|a| a.net.is_some())
}

fn interrupt_mode() -> bool {
    stack::mode() == Some(stack::RxMode::Interrupt)
}

const GATEWAY: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);

kernel_test! {
    fn net_dhcp_lease_from_the_lab() {
        if !in_lab() {
            ensure!(stack::address().is_none(), "address without a network");
            return Ok(());
        }
        let cidr = stack::wait_configured(time::now_ns() + 20_000_000_000).ok_or("no DHCP lease in 20 s")?;
        let a = cidr.address().octets();
        ensure!(a[..3] == [192, 0, 2] && (50..=99).contains(&a[3]), "lease {cidr} outside the lab range");
        ensure_eq!(cidr.prefix_len(), 24);
        ensure_eq!(stack::gateway(), Some(GATEWAY));
        crate::ktest::report(alloc::format!("net-lease {}", cidr.address()));
        Ok(())
    }
}

kernel_test! {
    fn net_ping_gateway_and_unreachable_host_times_out() {
        if !in_lab() {
            return Ok(());
        }
        stack::wait_configured(time::now_ns() + 20_000_000_000).ok_or("no lease")?;
        for seq in 0..3 {
            let rtt = stack::ping(GATEWAY, seq, 2_000_000_000).map_err(|e| alloc::format!("ping {seq}: {e:?}"))?;
            ensure!(rtt > 0, "zero round trip");
        }
        let silent = Ipv4Address::new(192, 0, 2, 3);
        ensure_eq!(stack::ping(silent, 9, 1_000_000_000), Err(stack::NetError::Timeout));
        // The request to .3 never leaves (no ARP reply); it must not block the next ping
        // nor starve ARP for a neighbour met for the first time (.5 is used only here).
        let peer = Ipv4Address::new(192, 0, 2, 5);
        stack::ping(peer, 10, 3_000_000_000).map_err(|e| alloc::format!("ping {peer} after the unreachable host: {e:?}"))?;
        Ok(())
    }
}

kernel_test! {
    fn net_answers_pings_from_the_host_by_interrupt() {
        if !in_lab() {
            return Ok(());
        }
        stack::wait_configured(time::now_ns() + 20_000_000_000).ok_or("no lease")?;
        // scripts/test pings us from the namespace once it sees the lease in the log.
        let deadline = time::now_ns() + 30_000_000_000;
        while stack::echo_requests_seen() < 3 && time::now_ns() < deadline {
            crate::sched::sleep_ns(50_000_000);
        }
        ensure!(stack::echo_requests_seen() >= 3, "only {} echo requests arrived", stack::echo_requests_seen());
        let (intid, count) = crate::net::stack::rx_irq().ok_or("no RX vector")?;
        if !interrupt_mode() {
            ensure_eq!(count, 0); // polling mode: the RX line stays masked
            return Ok(());
        }
        ensure!(count > 0, "RX worked without an RX interrupt");
        let rx = crate::net::stack::rx_stats().ok_or("no RX stats")?;
        crate::ktest::report(alloc::format!(
            "virtio-net rx intid={intid} interrupts={count} packets={} budget_exhausted={} rearm_races={} bad_descriptors={}",
            rx.packets, rx.budget_exhausted, rx.rearm_races, rx.bad_descriptors
        ));
        ensure!(count <= rx.packets, "more RX interrupts ({count}) than packets ({})", rx.packets);
        Ok(())
    }
}

kernel_test! {
    fn dns_a_record_cname_chain_nxdomain_and_silent_server() {
        use crate::net::dns::DnsError;
        use crate::net::resolve::resolve_a;
        if !in_lab() {
            return Ok(());
        }
        stack::wait_configured(time::now_ns() + 20_000_000_000).ok_or("no lease")?;
        let lab = resolve_a("lab.capstan.test", GATEWAY).map_err(|e| alloc::format!("lab: {e}"))?;
        ensure_eq!(lab.addrs.as_slice(), &[GATEWAY][..]);
        ensure_eq!(lab.cnames, 0);
        let www = resolve_a("www.capstan.test", GATEWAY).map_err(|e| alloc::format!("www: {e}"))?;
        ensure_eq!(www.addrs.as_slice(), &[GATEWAY][..]);
        ensure_eq!(www.cnames, 2);
        ensure_eq!(resolve_a("missing.capstan.test", GATEWAY), Err(DnsError::NxDomain));
        let t0 = time::now_ns();
        let silent = Ipv4Address::new(192, 0, 2, 2);
        ensure_eq!(resolve_a("lab.capstan.test", silent), Err(DnsError::Timeout));
        ensure!(time::now_ns() - t0 >= 1_000_000_000, "timed out too early");
        ensure_eq!(resolve_a("bad..name", GATEWAY), Err(DnsError::BadName));
        Ok(())
    }
}

/// The expected digest scripts/test passes as `<key>=<hex>` in the boot arguments.
fn expected_sha(key: &str) -> Option<crate::net::http::Sha256Digest> {
    let args = boot::platform()?.bootargs.as_str();
    let hex = args
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?;
    crate::net::http::Sha256Digest::from_hex(hex)
}

kernel_test! {
    fn http_get_small_redirect_and_large_files_with_digests() {
        use crate::net::fetch::get;
        if !in_lab() {
            return Ok(());
        }
        stack::wait_configured(time::now_ns() + 20_000_000_000).ok_or("no lease")?;
        let small = get("http://lab.capstan.test/small.txt", GATEWAY).map_err(|e| alloc::format!("small: {e}"))?;
        ensure_eq!(small.status, 200);
        ensure_eq!(small.prefix.as_slice(), &b"Hello from the Capstan network lab.\n"[..]);
        let redirected = get("http://lab.capstan.test/redirect", GATEWAY).map_err(|e| alloc::format!("redirect: {e}"))?;
        ensure_eq!((redirected.status, redirected.redirects), (200, 1));
        ensure_eq!(redirected.sha256, small.sha256);
        for (path, key, len) in [("/1m.bin", "sha1m", 1u64 << 20), ("/16m.bin", "sha16m", 16 << 20)] {
            let want = expected_sha(key).ok_or_else(|| alloc::format!("no {key}= boot argument"))?;
            let t0 = time::now_ns();
            let url = alloc::format!("http://lab.capstan.test{path}");
            let got = get(&url, GATEWAY).map_err(|e| alloc::format!("{path}: {e}"))?;
            let ms = (time::now_ns() - t0) / 1_000_000;
            ensure_eq!(got.status, 200);
            ensure_eq!(got.len, len);
            ensure_eq!(got.sha256, want);
            crate::ktest::report(alloc::format!(
                "http-get {path} bytes={len} ms={ms} MiB/s={:.1}",
                len as f64 / (1 << 20) as f64 / (ms.max(1) as f64 / 1000.0)
            ));
        }
        Ok(())
    }
}

kernel_test! {
    fn http_errors_refused_malformed_and_redirect_loop() {
        use crate::net::fetch::{FetchError, get};
        use crate::net::http::HttpError;
        if !in_lab() {
            return Ok(());
        }
        stack::wait_configured(time::now_ns() + 20_000_000_000).ok_or("no lease")?;
        ensure_eq!(get("http://192.0.2.1:81/", GATEWAY), Err(FetchError::Net(stack::NetError::Refused)));
        let malformed = get("http://192.0.2.1:8080/malformed", GATEWAY);
        ensure!(matches!(malformed, Err(FetchError::Http(_))), "malformed response gave {malformed:?}");
        ensure_eq!(get("http://lab.capstan.test/loop", GATEWAY), Err(FetchError::Http(HttpError::TooManyRedirects)));
        ensure!(matches!(get("https://lab.capstan.test/", GATEWAY), Err(FetchError::Http(HttpError::UnsupportedScheme))), "https accepted");
        ensure_eq!(
            get("http://missing.capstan.test/", GATEWAY),
            Err(FetchError::Dns(crate::net::dns::DnsError::NxDomain))
        );
        Ok(())
    }
}
