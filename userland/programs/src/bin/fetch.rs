//! `fetch URL [-o -|/dev/null] [--sha256] [--dns SERVER] [--timeout SECONDS]`: HTTP GET.
#![no_std]
#![no_main]

use capstan_programs::netutil::{self, Tcp};
use capstan_programs::{number, tool, tool::Tool};
use capstan_rt::{Startup, console, entry, print, println, time};
use core::net::Ipv4Addr;
use http::client::{self, Check, Limits, Sink};

entry!(main);

const TOOL: Tool = Tool {
    name: "fetch",
    usage: "usage: fetch URL [-o -|/dev/null] [--sha256] [--dns SERVER] [--timeout SECONDS]\n  GETs an http:// URL (following up to 5 redirects) and reports the status, size, time\n  and speed; with --sha256 also the body's SHA-256. -o - prints the body on the console;\n  without -o (or with /dev/null) it is only measured: there is no writable file system\n  yet. A download that takes over a second shows a progress line. --timeout bounds the\n  whole fetch (default 120 s); a server silent for 10 s is a stall. Exit status 0 for a\n  2xx response, 1 otherwise.",
};

/// Where the body goes, and the progress line.
struct Out {
    print_body: bool,
    start: u64,
    last_progress: u64,
    shown: bool,
}

impl Sink for Out {
    fn body(&mut self, piece: &[u8]) {
        if self.print_body {
            console::write_bytes(piece);
        }
    }

    fn progress(&mut self, received: u64, total: Option<u64>) {
        if self.print_body {
            return;
        }
        let now = time::now();
        // A progress line for downloads past one second, redrawn at most 4 times a second.
        if now - self.start < 1_000_000_000 || now - self.last_progress < 250_000_000 {
            return;
        }
        self.last_progress = now;
        self.shown = true;
        let pct = total
            .map(|t| alloc::format!(" {:>3}%", (received * 100).checked_div(t).unwrap_or(100)));
        print!(
            "\r  {} of {}{}  {}   ",
            tool::bytes(received),
            total.map_or(alloc::string::String::from("?"), tool::bytes),
            pct.unwrap_or_default(),
            netutil::rate(received, now - self.start)
        );
    }
}

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let (mut url, mut print_body, mut sha, mut dns, mut total_ms) =
        (None, false, false, None, 120_000);
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "-o" => match it.next() {
                Some(&"-") => print_body = true,
                Some(&"/dev/null") => print_body = false,
                Some(other) => {
                    println!(
                        "fetch: -o {other}: there is no writable file system yet (use - or /dev/null)"
                    );
                    return 2;
                }
                None => return TOOL.bad_usage("-o takes - or /dev/null"),
            },
            "--sha256" => sha = true,
            "--dns" => match it.next().and_then(|s| s.parse::<Ipv4Addr>().ok()) {
                Some(s) => dns = Some(s),
                None => return TOOL.bad_usage("--dns takes an IPv4 address"),
            },
            "--timeout" => match it
                .next()
                .and_then(|s| number::parse_ms(s))
                .filter(|&ms| ms > 0)
            {
                Some(ms) => total_ms = ms,
                None => return TOOL.bad_usage("--timeout takes seconds"),
            },
            u if url.is_none() && !u.starts_with('-') => url = Some(u),
            _ => return TOOL.bad_usage("one URL and the options above"),
        }
    }
    let Some(url) = url else {
        return TOOL.bad_usage("no URL");
    };
    let check = if sha {
        Check::Sha256(netutil::sha256_blocks())
    } else {
        Check::LengthOnly
    };
    let start = time::now();
    let mut out = Out {
        print_body,
        start,
        last_progress: start,
        shown: false,
    };
    let limits = Limits {
        total_ms,
        ..Limits::default()
    };
    let result = client::get(&mut Tcp { dns }, url, check, limits, &mut out);
    let took = time::now() - start;
    if out.shown {
        println!();
    }
    match result {
        Ok(got) => {
            println!(
                "fetch: {url}: status {}, {} bytes in {} ms ({}){}",
                got.status,
                got.len,
                netutil::ms3(took),
                netutil::rate(got.len, took),
                if got.redirects > 0 {
                    alloc::format!(", {} redirect(s)", got.redirects)
                } else {
                    alloc::string::String::new()
                }
            );
            if let Some(d) = got.sha256 {
                println!("sha256 {d}");
            }
            if got.excess > 0 {
                println!(
                    "fetch: the server sent {} bytes past the response (ignored)",
                    got.excess
                );
            }
            i32::from(!(200..300).contains(&got.status))
        }
        Err(e) => {
            println!("fetch: {url}: {e}");
            1
        }
    }
}

extern crate alloc;
