//! The smallest program: prints its arguments and exits with the count.
#![no_std]
#![no_main]

use capstan_rt::{Startup, entry, println};

entry!(main);

fn main(startup: &Startup) -> i32 {
    let args: alloc::vec::Vec<&str> = startup.args().collect();
    println!("hello from pid {}: {:?}", startup.pid(), args);
    args.len() as i32
}

extern crate alloc;
