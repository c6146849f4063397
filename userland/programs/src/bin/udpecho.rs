//! `udpecho PORT [-n COUNT]`: sends every UDP datagram on PORT back to its sender.
#![no_std]
#![no_main]

use capstan_programs::number;
use capstan_programs::tool::Tool;
use capstan_rt::net::{FOREVER, Proto, Socket};
use capstan_rt::{Startup, entry, println};

entry!(main);

const TOOL: Tool = Tool {
    name: "udpecho",
    usage: "usage: udpecho PORT [-n COUNT]\n  Echoes every UDP datagram that arrives on PORT back to its sender; with -n, stops\n  after COUNT datagrams (and says how many bytes it echoed).",
};

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let (port, count) = match args[..] {
        [p] => (p, None),
        [p, "-n", n] => (p, number::parse_u64(n)),
        _ => return TOOL.bad_usage("a port, and -n COUNT optionally"),
    };
    let Some(port) = number::parse_u64(port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
    else {
        return TOOL.bad_usage("the port is 1 to 65535");
    };
    if args.len() == 3 && count.is_none() {
        return TOOL.bad_usage("-n takes a number");
    }
    let sock = match Socket::open(Proto::Udp, 0) {
        Ok(s) => s,
        Err(e) => return TOOL.fail("socket", e),
    };
    if let Err(e) = sock.bind(port) {
        return TOOL.fail(&alloc::format!("port {port}"), e);
    }
    println!("udpecho: listening on UDP port {port}");
    let mut buf = alloc::vec![0u8; abi::net::MAX_DATAGRAM];
    let (mut n, mut bytes) = (0u64, 0u64);
    while count.is_none_or(|c| n < c) {
        match sock.recv_from(&mut buf, FOREVER) {
            Ok((len, from, from_port)) => {
                if let Err(e) = sock.send_to(&buf[..len], Some((from, from_port)), FOREVER) {
                    println!("udpecho: reply to {from}:{from_port}: {e}");
                }
                n += 1;
                bytes += len as u64;
            }
            Err(e) => return TOOL.fail("receive", e),
        }
    }
    println!("udpecho: echoed {n} datagrams, {bytes} bytes");
    0
}

extern crate alloc;
