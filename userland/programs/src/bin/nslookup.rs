//! `nslookup NAME [SERVER] [-type A|AAAA]`: asks a DNS server for a name's addresses.
#![no_std]
#![no_main]

use capstan_programs::netutil::{self, DnsServer};
use capstan_programs::tool::Tool;
use capstan_rt::{Startup, entry, println, time};
use core::net::Ipv4Addr;
use dns::RecordType;

entry!(main);

const TOOL: Tool = Tool {
    name: "nslookup",
    usage: "usage: nslookup NAME [SERVER] [-type A|AAAA] [-port PORT]\n  Asks SERVER (an IPv4 address; default: the one DHCP named; port 53 unless -port) for\n  NAME's A (default) or\n  AAAA records, following CNAMEs, retrying over UDP and falling back to TCP when the\n  answer is truncated. Prints each address, or why there is none: NXDOMAIN, SERVFAIL,\n  no record of that type, timeout, malformed reply. Exit status 0 with an answer.",
};

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let (mut name, mut server, mut qtype, mut port) = (None, None, RecordType::A, 53u16);
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "-type" | "-t" => {
                qtype = match it.next().map(|t| t.to_ascii_uppercase()).as_deref() {
                    Some("A") => RecordType::A,
                    Some("AAAA") => RecordType::Aaaa,
                    _ => return TOOL.bad_usage("-type takes A or AAAA"),
                }
            }
            "-port" => match it
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|&p| p != 0)
            {
                Some(p) => port = p,
                None => return TOOL.bad_usage("-port takes 1 to 65535"),
            },
            _ if name.is_none() => name = Some(a),
            _ if server.is_none() => match a.parse::<Ipv4Addr>() {
                Ok(s) => server = Some(s),
                Err(_) => return TOOL.bad_usage("the server is an IPv4 address"),
            },
            _ => return TOOL.bad_usage("one name and at most one server"),
        }
    }
    let Some(name) = name else {
        return TOOL.bad_usage("no name to look up");
    };
    let server = match netutil::dns_server(server) {
        Ok(s) => s,
        Err(why) => {
            println!("nslookup: {why}");
            return 1;
        }
    };
    let mut dns = match DnsServer::with_port(server, port) {
        Ok(d) => d,
        Err(e) => return TOOL.fail("socket", e),
    };
    let start = time::now();
    println!("Server:  {server}");
    match dns.resolve(name, qtype) {
        Ok(found) => {
            let took = time::now() - start;
            println!("Name:    {name}");
            if found.cnames > 0 {
                println!(
                    "(through {} CNAME record{})",
                    found.cnames,
                    if found.cnames == 1 { "" } else { "s" }
                );
            }
            for a in &found.addrs {
                println!("Address: {a}");
            }
            println!("({} ms)", netutil::ms3(took));
            0
        }
        Err(e) => {
            println!("nslookup: {name}: {e}");
            1
        }
    }
}
