//! `ls [DIR...]`: lists initrd directories and `/proc`.
#![no_std]
#![no_main]

use alloc::collections::BTreeMap;
use alloc::string::String;
use capstan_programs::tool::{self, Tool};
use capstan_rt::{Startup, entry, println};

entry!(main);

const TOOL: Tool = Tool {
    name: "ls",
    usage: "usage: ls [DIR...]\n  Lists a directory of the initrd (/, /bin, /etc) or /proc: files with their size, then\n  subdirectories with a trailing /. Without DIR: /.",
};

/// An entry: a file's size, or `None` for a directory.
type Listing = BTreeMap<String, Option<u64>>;

/// The kernel lists a directory as `relative/path size` lines; the first component of
/// each is an entry here.
fn entries(text: &str) -> Listing {
    let mut out = Listing::new();
    for line in text.lines() {
        let (path, size) = line.rsplit_once(' ').unwrap_or((line, ""));
        match path.split_once('/') {
            Some((dir, _)) => {
                out.insert(String::from(dir), None);
            }
            None => {
                out.insert(String::from(path), size.parse().ok());
            }
        }
    }
    out
}

fn list(dir: &str) -> Result<(), abi::Error> {
    let text = tool::read_text(dir)?;
    let mut listing = entries(&text);
    if dir.trim_end_matches('/').is_empty() {
        listing.insert(String::from("proc"), None);
        listing.insert(String::from("dev"), None);
    }
    for (name, size) in listing.iter().filter(|(_, s)| s.is_some()) {
        println!("{:>10}  {name}", size.unwrap_or(0));
    }
    for name in listing.iter().filter(|(_, s)| s.is_none()).map(|(n, _)| n) {
        println!("{:>10}  {name}/", "-");
    }
    Ok(())
}

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let dirs = if args.is_empty() {
        alloc::vec!["/"]
    } else {
        args
    };
    let many = dirs.len() > 1;
    let mut status = 0;
    for dir in dirs {
        if many {
            println!("{dir}:");
        }
        let r = if dir == "/dev" || dir == "/dev/" {
            println!("{:>10}  console", 0);
            Ok(())
        } else {
            list(dir)
        };
        if let Err(e) = r {
            status = TOOL.fail(dir, e);
        }
    }
    status
}

extern crate alloc;
