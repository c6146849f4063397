//! `stress MS [WIDTH]`: processes that spawn, wait, sleep and exit in random order.
//!
//! The root starts `WIDTH` workers (default 16). Until `MS` milliseconds have passed,
//! each worker picks at random: spawn a short-lived child (which itself sleeps, maybe
//! spawns one more, and exits with a code derived from its seed), reap one child and
//! check its code, sleep a little, or yield. Then it reaps every remaining child and
//! exits 0 if every exit code was what that child should have returned. With the
//! default width about 64 processes are alive at once. The root exits with the number
//! of workers that failed and prints `stress: N processes` (how many ran in all).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::format;
use capstan_rt::{Startup, entry, println, process, time};

entry!(main);

/// xorshift64: a deterministic sequence per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main(s: &Startup) -> i32 {
    let ms: u64 = s.arg(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    match s.arg(0) {
        Some("worker") => worker(s),
        Some("leaf") => leaf(s),
        _ => root(ms, s.arg(2).and_then(|a| a.parse().ok()).unwrap_or(16)),
    }
}

fn root(ms: u64, width: u32) -> i32 {
    let deadline = time::now() + ms * 1_000_000;
    let mut workers = 0;
    for w in 0..width {
        let args = [
            "worker",
            &format!("{deadline}"),
            &format!("{}", 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(w + 1)),
        ];
        if process::spawn("/bin/stress", &args, &[]).is_ok() {
            workers += 1;
        }
    }
    let (mut failed, mut total) = (0, 0);
    for _ in 0..workers {
        match process::wait_any() {
            Ok(e) if e.status >= 0 => total += e.status,
            _ => failed += 1,
        }
    }
    println!(
        "stress: {} processes, {workers} workers, {failed} failed",
        total + workers
    );
    failed
}

/// Returns how many leaves it started (or -1 on a wrong exit code).
fn worker(s: &Startup) -> i32 {
    let deadline: u64 = s.arg(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut rng = Rng(s.arg(2).and_then(|a| a.parse().ok()).unwrap_or(1) | 1);
    let mut live: BTreeMap<u32, i32> = BTreeMap::new();
    let mut started = 0;
    let mut ok = true;
    while time::now() < deadline {
        match rng.next() % 8 {
            0..=2 if live.len() < 4 => {
                let seed = rng.next() % 1000;
                if let Ok(pid) = process::spawn("/bin/stress", &["leaf", &format!("{seed}")], &[]) {
                    live.insert(pid, (seed % 200) as i32);
                    started += 1;
                }
            }
            3 | 4 if !live.is_empty() => ok &= reap(&mut live, false),
            5 => time::sleep_ns(rng.next() % 3_000_000),
            _ => process::yield_now(),
        }
    }
    while !live.is_empty() {
        ok &= reap(&mut live, true);
    }
    if ok { started } else { -1 }
}

fn reap(live: &mut BTreeMap<u32, i32>, block: bool) -> bool {
    let done = if block {
        process::wait_any()
    } else {
        match process::try_wait_any() {
            Err(abi::Error::EAGAIN) => return true,
            other => other,
        }
    };
    match done {
        Ok(e) => live.remove(&e.pid) == Some(e.status),
        Err(_) => false,
    }
}

/// Sleeps up to 2 ms, sometimes spawns and reaps one more leaf, exits with seed % 200.
fn leaf(s: &Startup) -> i32 {
    let seed: u64 = s.arg(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    time::sleep_ns((seed % 7) * 300_000);
    if seed.is_multiple_of(5) {
        let child_seed = (seed * 7 + 3) % 1000 / 5 * 5 + 1; // never % 5 == 0: no recursion
        match process::spawn("/bin/stress", &["leaf", &format!("{child_seed}")], &[]) {
            Ok(pid) => match process::wait(pid) {
                Ok(e) if e.status == (child_seed % 200) as i32 => {}
                _ => return 250,
            },
            Err(_) => return 251,
        }
    }
    (seed % 200) as i32
}
