//! `cat FILE...`: prints files (initrd files, `/proc` files).
#![no_std]
#![no_main]

use capstan_programs::tool::Tool;
use capstan_rt::fs::File;
use capstan_rt::{Startup, console, entry};

entry!(main);

const TOOL: Tool = Tool {
    name: "cat",
    usage: "usage: cat FILE...\n  Prints each file: initrd files (/etc/motd) and /proc files (/proc/interrupts).",
};

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    if args.is_empty() {
        return TOOL.bad_usage("no file named");
    }
    let mut status = 0;
    for path in args {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                status = TOOL.fail(path, e);
                continue;
            }
        };
        let mut buf = [0u8; 4096];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => console::write_bytes(&buf[..n]),
                Err(e) => {
                    status = TOOL.fail(path, e);
                    break;
                }
            }
        }
    }
    status
}
