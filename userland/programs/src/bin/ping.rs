//! `ping [-c COUNT] [-i SECONDS] [-W SECONDS] [-s BYTES] HOST`: ICMP echo, round trips.
#![no_std]
#![no_main]

use alloc::vec::Vec;
use capstan_programs::tool::Tool;
use capstan_programs::{netutil, number};
use capstan_rt::net::{Proto, Socket, after_ms};
use capstan_rt::{Startup, entry, println, time};
use core::net::Ipv4Addr;

entry!(main);

const TOOL: Tool = Tool {
    name: "ping",
    usage: "usage: ping [-c COUNT] [-i SECONDS] [-W SECONDS] [-s BYTES] HOST\n  Sends COUNT (default 4, at most 100000) ICMP echo requests of BYTES (default 56) data\n  to HOST (an IPv4 address or a name) every SECONDS (default 1), waits -W (default 2)\n  for each reply, and prints each round trip, then min/avg/max and the loss.\n  Exit status 0 if any reply came, 1 if none.",
};

struct Options {
    count: u32,
    interval_ms: u64,
    wait_ms: u64,
    size: usize,
    host: &'static str,
}

fn options(args: &[&'static str]) -> Result<Options, &'static str> {
    let mut o = Options {
        count: 4,
        interval_ms: 1000,
        wait_ms: 2000,
        size: 56,
        host: "",
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        let mut value = || it.next().copied().ok_or("an option needs a value");
        match a {
            "-c" => {
                o.count = number::parse_u64(value()?)
                    .filter(|&n| (1..=100_000).contains(&n))
                    .ok_or("-c takes 1 to 100000")? as u32
            }
            "-i" => {
                o.interval_ms = number::parse_ms(value()?)
                    .filter(|&ms| ms <= 60_000)
                    .ok_or("-i takes seconds (at most 60)")?
            }
            "-W" => {
                o.wait_ms = number::parse_ms(value()?)
                    .filter(|&ms| (1..=60_000).contains(&ms))
                    .ok_or("-W takes seconds (at most 60)")?
            }
            "-s" => {
                o.size = number::parse_u64(value()?)
                    .filter(|&n| n <= 8192)
                    .ok_or("-s takes 0 to 8192 bytes")? as usize
            }
            h if !h.starts_with('-') && o.host.is_empty() => o.host = h,
            _ => return Err("unknown option or a second host"),
        }
    }
    if o.host.is_empty() {
        return Err("no host named");
    }
    Ok(o)
}

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let o = match options(&args) {
        Ok(o) => o,
        Err(why) => return TOOL.bad_usage(why),
    };
    let target: Ipv4Addr = match netutil::resolve_host(o.host) {
        Ok(a) => a,
        Err(e) => {
            println!("ping: {}: {e}", o.host);
            return 2;
        }
    };
    let sock = match Socket::open(Proto::Icmp, 0) {
        Ok(s) => s,
        Err(e) => return TOOL.fail("socket", e),
    };
    println!("PING {} ({target}): {} data bytes", o.host, o.size);
    let mut rtts: Vec<u64> = Vec::new();
    let mut packet = alloc::vec![0u8; 8 + o.size];
    packet[0] = 8; // echo request; the kernel sets identifier and checksum
    for (i, b) in packet[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut reply = alloc::vec![0u8; 8 + o.size + 64];
    for seq in 1..=o.count {
        let start = time::now();
        packet[6..8].copy_from_slice(&(seq as u16).to_be_bytes());
        if let Err(e) = sock.send_to(&packet, Some((target, 0)), after_ms(o.wait_ms)) {
            println!("ping: send: {e}");
            return 1;
        }
        let deadline = after_ms(o.wait_ms);
        let mut got = false;
        while let Ok((n, from, _)) = sock.recv_from(&mut reply, deadline) {
            let seq_back = u16::from_be_bytes([reply[6], reply[7]]);
            if from != target
                || seq_back != seq as u16
                || n != packet.len()
                || reply[8..n] != packet[8..]
            {
                continue; // an old or foreign reply
            }
            let rtt = time::now() - start;
            println!(
                "{n} bytes from {from}: icmp_seq={seq} time={} ms",
                netutil::ms3(rtt)
            );
            rtts.push(rtt);
            got = true;
            break;
        }
        if !got {
            println!("no reply for icmp_seq={seq} within {} ms", o.wait_ms);
        }
        if seq < o.count {
            let next = start + o.interval_ms * 1_000_000;
            time::sleep_until(next);
        }
    }
    let loss = (o.count as usize - rtts.len()) * 100 / o.count as usize;
    println!("--- {} ping statistics ---", o.host);
    println!(
        "{} packets transmitted, {} received, {loss}% packet loss",
        o.count,
        rtts.len()
    );
    if let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) {
        let avg = rtts.iter().sum::<u64>() / rtts.len() as u64;
        println!(
            "rtt min/avg/max = {}/{}/{} ms",
            netutil::ms3(*min),
            netutil::ms3(avg),
            netutil::ms3(*max)
        );
        0
    } else {
        1
    }
}

extern crate alloc;
