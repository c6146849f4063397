//! `utest [SUITES] [FILTER]`: Capstan's user-space test suite.
//!
//! SUITES is `proc`, `net`, `dev` or several (`proc,net`; default: `proc,net`; `dev`
//! needs a `Device` grant, which a kernel test gives it); FILTER runs only the
//! tests whose names contain it. Each test prints one line (`utest SUITE::NAME ... ok`,
//! `... FAILED: why`, `... skipped: why`), each suite a summary, and the run ends with
//! `N passed, N failed, N skipped`; the exit status is the number of failures. init
//! starts it with `run=/bin/utest,SUITES` on the command line (after `--`).
#![no_std]
#![no_main]

extern crate alloc;

mod dev;
mod drv;
mod net;
mod proc;
mod unet;

use capstan_programs::{Counts, run_counted};
use capstan_rt::{Startup, entry, println};

entry!(main);

fn main(s: &Startup) -> i32 {
    let suites = s.arg(1).unwrap_or("proc,net");
    let filter = s.arg(2).unwrap_or("");
    if let Some(d) = s
        .grants()
        .find(|g| g.cap_type == Some(abi::CapType::Device))
    {
        dev::DEVICE.store(d.handle.raw(), core::sync::atomic::Ordering::Relaxed);
    }
    let mut total = Counts::default();
    for suite in suites.split(',') {
        total += match suite {
            "proc" => run_counted("proc", filter, proc::TESTS),
            "net" => run_counted("net", filter, net::TESTS),
            "dev" => run_counted("dev", filter, dev::TESTS),
            "drv" => run_counted("drv", filter, drv::TESTS),
            "unet" => run_counted("unet", filter, unet::TESTS),
            other => {
                println!("utest: no suite '{other}' (proc, net, dev, drv, unet)");
                return 2;
            }
        };
    }
    println!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    total.failed as i32
}
