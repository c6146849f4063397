//! `bench`: the process figures of `scripts/bench proc`, one line each.
//!
//! `bench proc NAME n=N median_ns=M p99_ns=P` for: a null system call (`getpid`), a
//! `spawn` + `wait` of `/bin/true`, a round trip between two processes through
//! notifications (two switches), and a `mem_map` of 1 MiB (mapped eagerly, zeroed: no
//! page faults follow). Times come from the counter user code reads directly.
//!
//! `bench udrv` (init's `run=` program beside `driver=/bin/edu@...,--loop`): kills the
//! running user-mode driver 20 times and reports how long init takes to have a fresh one
//! running (`restart_process`) and holding an armed interrupt line again
//! (`restart_ready`), as `bench udrv NAME n=N median_ns=M p99_ns=P`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use capstan_rt::{Startup, cap, entry, mem, println, process, time};

entry!(main);

fn report(name: &str, samples: Vec<u64>) {
    report_in("proc", name, samples);
}

fn report_in(group: &str, name: &str, mut samples: Vec<u64>) {
    samples.sort_unstable();
    let at = |p: usize| samples[(samples.len() - 1) * p / 100];
    println!(
        "bench {group} {name} n={} median_ns={} p99_ns={}",
        samples.len(),
        time::ticks_to_ns(at(50)),
        time::ticks_to_ns(at(99))
    );
}

fn timed(n: usize, mut f: impl FnMut()) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let t0 = time::counter();
            f();
            time::counter() - t0
        })
        .collect()
}

fn main(startup: &Startup) -> i32 {
    if startup.arg(1) == Some("udrv") {
        return udrv();
    }
    report(
        "null_syscall",
        timed(20_000, || {
            core::hint::black_box(process::getpid());
        }),
    );
    report(
        "spawn_wait",
        timed(1_000, || {
            let pid = process::spawn("/bin/true", &["true"], &[]).expect("spawn /bin/true");
            process::wait(pid).expect("wait");
        }),
    );
    match pingpong(10_000) {
        Some(s) => report("notify_round_trip", s),
        None => println!("bench proc notify_round_trip failed"),
    }
    let mut maps = Vec::with_capacity(10_000);
    let samples = timed(10_000, || {
        let a = mem::map(1 << 20, mem::PROT_READ | mem::PROT_WRITE).expect("mem_map");
        maps.push(a);
        if maps.len() == 32 {
            for a in maps.drain(..) {
                let _ = mem::unmap(a, 1 << 20);
            }
        }
    });
    report("mem_map_1mib", samples);
    println!("bench proc done");
    0
}

/// The driver restart figures (see the module comment), in counter ticks.
fn udrv() -> i32 {
    const ROUNDS: usize = 20;
    let (mut up, mut ready) = (Vec::new(), Vec::new());
    let Some(mut pid) = wait_for(|| first_ready(0)) else {
        println!("bench udrv: no /bin/edu driver with an armed line (init driver= option)");
        return 1;
    };
    for _ in 0..ROUNDS {
        let t0 = time::counter();
        if process::kill(pid).is_err() {
            break;
        }
        let Some(next) = wait_for(|| {
            capstan_programs::tool::pids_running("/bin/edu")
                .into_iter()
                .find(|&p| p != pid)
        }) else {
            break;
        };
        up.push(time::counter() - t0);
        if wait_for(|| first_ready(pid).filter(|&p| p == next)).is_none() {
            break;
        }
        ready.push(time::counter() - t0);
        pid = next;
    }
    if ready.len() < ROUNDS {
        println!("bench udrv: a driver did not come back within 5 s");
        return 1;
    }
    report_in("udrv", "restart_process", up);
    report_in("udrv", "restart_ready", ready);
    println!("bench udrv done");
    0
}

/// A `/bin/edu` other than `not` with an armed line.
fn first_ready(not: u32) -> Option<u32> {
    capstan_programs::tool::pids_running("/bin/edu")
        .into_iter()
        .find(|&p| p != not && capstan_programs::tool::has_armed_line(p))
}

/// Polls `f` every 200 us for at most 5 s.
fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = time::now() + 5_000_000_000;
    while time::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        time::sleep_ns(200_000);
    }
    None
}

/// A child answers each post on bit 1 with a post on bit 2: one sample is one round trip.
fn pingpong(rounds: u32) -> Option<Vec<u64>> {
    let mine = time::notify_cap().ok()?;
    let spec = abi::proc::GrantSpec {
        handle: mine.raw(),
        rights: (abi::Rights::WRITE | abi::Rights::TRANSFER).bits(),
        mode: abi::proc::GRANT_COPY,
    };
    let pid = process::spawn(
        "/bin/child",
        &["child", "pingpong", &alloc::format!("{rounds}")],
        &[spec],
    )
    .ok()?;
    let bits = time::notify_wait(u64::MAX, time::FOREVER).ok()?;
    let child = abi::Handle(bits as u32);
    let samples = timed(rounds as usize, || {
        let _ = time::notify_post(child, 1);
        let _ = time::notify_wait(2, time::FOREVER);
    });
    let _ = process::wait(pid);
    let _ = cap::drop(mine);
    Some(samples)
}
