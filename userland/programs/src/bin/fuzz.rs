//! `fuzz CALLS PROCS [SEED]`: random system calls from several processes at once.
//!
//! The parent starts `PROCS` fuzzers (`fuzz worker CALLS SEED`) plus two witnesses whose
//! results it knows (a floating-point child and one that exits 7), and checks:
//! every fuzzer made `CALLS` calls and got back only 0 or a defined error from each;
//! the witnesses' results are right; `/proc/stat` counted every call with an unknown
//! number (replayed from the fuzzers' deterministic sequences) and at least every call.
//!
//! A fuzzer's calls: numbers mostly of implemented calls, some of unimplemented
//! groups and random ones; arguments random, or handles it holds, or hostile pointers
//! (null, kernel addresses, unmapped, misaligned, straddling the end of a mapping,
//! read-only code). It never passes pointers to memory it lives on, never kills or
//! grants to processes other than its own children, and keeps blocking calls short, so
//! the run ends; everything else is fair game. Exit status: calls that returned
//! something other than 0 or a defined error (must be 0).
#![no_std]
#![no_main]

extern crate alloc;

use abi::{Error, Sysnum};
use alloc::vec::Vec;
use capstan_rt::{Startup, entry, fs, mem, println, process, time};

entry!(main);

fn main(s: &Startup) -> i32 {
    let num = |i: usize, d: u64| s.arg(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    if s.arg(1) == Some("worker") {
        return worker(num(2, 1000), num(3, 1));
    }
    parent(num(1, 100_000), num(2, 4) as u32, num(3, 0x5eed))
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The call numbers a fuzzer with `seed` issues, in order (for replaying).
fn number(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0..=6 => u64::from(IMPLEMENTED[rng.below(IMPLEMENTED.len() as u64) as usize].as_u32()),
        7 | 8 => u64::from(Sysnum::ALL[rng.below(Sysnum::ALL.len() as u64) as usize].as_u32()),
        _ => rng.next() >> rng.below(64),
    }
}

/// Calls a fuzzer may make freely (Exit is never chosen).
const IMPLEMENTED: [Sysnum; 20] = [
    Sysnum::Spawn,
    Sysnum::Wait,
    Sysnum::Kill,
    Sysnum::GetPid,
    Sysnum::Yield,
    Sysnum::MemMap,
    Sysnum::MemUnmap,
    Sysnum::CapDrop,
    Sysnum::CapGrant,
    Sysnum::CapReplace,
    Sysnum::CapInfo,
    Sysnum::ClockNow,
    Sysnum::SleepUntil,
    Sysnum::NotifyWait,
    Sysnum::NotifyPost,
    Sysnum::NotifyCap,
    Sysnum::Open,
    Sysnum::Read,
    Sysnum::Write,
    Sysnum::DevInfo,
];

fn is_known(num: u64) -> bool {
    u32::try_from(num).is_ok_and(|n| Sysnum::try_from(n).is_ok())
}

fn parent(calls: u64, procs: u32, seed: u64) -> i32 {
    let unknown_before = stat("syscalls_unknown");
    let calls_before = stat("syscalls");
    let mut workers = Vec::new();
    let mut expected_unknown = 0;
    for i in 0..procs {
        let wseed = seed.wrapping_mul(0x9e37_79b9).wrapping_add(u64::from(i)) | 1;
        let mut replay = Rng(wseed);
        for _ in 0..calls {
            let n = number(&mut replay);
            expected_unknown += u64::from(!is_known(n) && n != u64::from(Sysnum::Exit.as_u32()));
            replay_args(&mut replay);
        }
        let args = [
            "fuzz",
            "worker",
            &alloc::format!("{calls}"),
            &alloc::format!("{wseed}"),
        ];
        match process::spawn("/bin/fuzz", &args, &[]) {
            Ok(pid) => workers.push(pid),
            Err(e) => println!("fuzz: cannot start a worker: {e}"),
        }
    }
    let fpu = process::spawn("/bin/child", &["child", "fpu", "3"], &[]);
    let seven = process::spawn("/bin/child", &["child", "exit", "7"], &[]);
    let mut bad = 0;
    for &pid in &workers {
        match process::wait(pid) {
            Ok(e) if e.status == 0 => {}
            Ok(e) => {
                println!(
                    "fuzz: worker {pid} saw {} invalid results (status {})",
                    e.status, e.status
                );
                bad += 1;
            }
            Err(e) => {
                println!("fuzz: wait for {pid}: {e}");
                bad += 1;
            }
        }
    }
    let witness = |r: capstan_rt::Result<u32>, want: i32| {
        r.and_then(process::wait).is_ok_and(|e| e.status == want)
    };
    if !witness(fpu, 0) || !witness(seven, 7) {
        println!("fuzz: a witness process got a wrong result");
        bad += 1;
    }
    let unknown = stat("syscalls_unknown") - unknown_before;
    let counted = stat("syscalls") - calls_before;
    if unknown != expected_unknown {
        println!(
            "fuzz: /proc/stat counts {unknown} unknown calls, the fuzzers made {expected_unknown}"
        );
        bad += 1;
    }
    if counted < calls * u64::from(procs) {
        println!(
            "fuzz: /proc/stat counts {counted} calls, fewer than {}",
            calls * u64::from(procs)
        );
        bad += 1;
    }
    println!(
        "fuzz: {procs} processes x {calls} calls, {counted} counted, {unknown} unknown numbers, {} workers failed",
        bad
    );
    bad
}

/// The argument draws of one call, consumed in the same order as `worker` (so the
/// parent's replay stays in step).
fn replay_args(rng: &mut Rng) {
    for _ in 0..6 {
        rng.next();
        rng.next();
    }
}

fn stat(key: &str) -> u64 {
    let Ok(bytes) = fs::read_file("/proc/stat") else {
        return 0;
    };
    core::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        })
        .unwrap_or(0)
}

/// What the worker owns that arguments may name.
struct Pool {
    scratch: usize,
    guard_end: usize,
    handles: Vec<u64>,
    children: Vec<u64>,
    maps: Vec<(usize, usize)>,
    console: [u64; 2],
}

fn worker(calls: u64, seed: u64) -> i32 {
    let mut rng = Rng(seed);
    // A second stream for `tame`, so `rng` draws exactly what the parent replays.
    let mut aux = Rng(seed.rotate_left(17) | 1);
    // A scratch page followed by an unmapped one (for ranges that straddle the end).
    let Ok(two) = mem::map(8192, mem::PROT_READ | mem::PROT_WRITE) else {
        return 1000;
    };
    if mem::unmap(two, 8192).is_err() {
        return 1001;
    }
    let Ok(scratch) = mem::map(4096, mem::PROT_READ | mem::PROT_WRITE) else {
        return 1002;
    };
    let (cin, cout) = capstan_rt::start::startup().map_or((None, None), |s| s.console());
    let mut pool = Pool {
        scratch,
        guard_end: scratch + 4096,
        handles: Vec::new(),
        children: Vec::new(),
        maps: Vec::new(),
        console: [
            cin.map_or(0, |h| u64::from(h.raw())),
            cout.map_or(0, |h| u64::from(h.raw())),
        ],
    };
    let mut invalid = 0;
    for _ in 0..calls {
        let num = number(&mut rng);
        let mut a = [0u64; 6];
        for slot in a.iter_mut() {
            let kind = rng.next();
            let raw = rng.next();
            *slot = argument(kind, raw, &pool);
        }
        if num == u64::from(Sysnum::Exit.as_u32()) {
            continue; // counted in the replay as known; skipped here to keep the run going
        }
        tame(num, &mut a, &pool, &mut aux);
        let (x0, r) = raw_call(num, a);
        if x0 != 0 && Error::try_from(x0 as i32).is_err() {
            invalid += 1;
        }
        if x0 == 0 {
            keep(num, a, r, &mut pool);
        }
    }
    for pid in pool.children.drain(..) {
        let _ = process::wait(pid as u32);
    }
    invalid
}

/// An argument: a small number, a random word, a handle it holds, or a pointer.
fn argument(kind: u64, raw: u64, pool: &Pool) -> u64 {
    const HOSTILE: [u64; 6] = [
        0,
        0x10,
        0xffff_8000_4000_0000,
        0xffff_ffff_8008_0000,
        0x7000_0000_0000,
        0x40_0000,
    ];
    match kind % 8 {
        0 => raw % 64,
        1 => raw,
        2 if !pool.handles.is_empty() => pool.handles[raw as usize % pool.handles.len()],
        3 => HOSTILE[raw as usize % HOSTILE.len()],
        4 => pool.scratch as u64 + raw % 4096, // misaligned, maybe straddling the end
        5 => pool.guard_end as u64 - (raw % 16),
        6 => pool.scratch as u64,
        _ => 0x8000_0000 | (raw & 0x7fff_ffff), // a plausible handle
    }
}

/// Keeps a call from ending the run or touching others: no kill or grant outside its
/// own children, short deadlines, bounded mappings, never its console handles, and
/// spawns only of a child that exits at once.
fn tame(num: u64, a: &mut [u64; 6], pool: &Pool, rng: &mut Rng) {
    let soon = time::now() + rng.below(1_000_000);
    let own_child = |r: &mut Rng| {
        pool.children
            .get(r.below(8) as usize)
            .copied()
            .unwrap_or(99_999)
    };
    for h in pool.console {
        for x in a.iter_mut() {
            if *x == h && h != 0 {
                *x ^= 1 << 12; // a stale generation instead
            }
        }
    }
    let Ok(call) = u32::try_from(num).map(Sysnum::try_from) else {
        return;
    };
    match call {
        Ok(Sysnum::Kill) => a[0] = own_child(rng),
        Ok(Sysnum::CapGrant) => a[0] = own_child(rng),
        Ok(Sysnum::Wait) => {
            if pool.children.is_empty() || rng.below(2) == 0 {
                a[1] = abi::proc::WNOHANG.into();
            }
            if a[0] != abi::proc::ANY_CHILD {
                a[0] = own_child(rng);
            }
        }
        Ok(Sysnum::SleepUntil) => a[0] = soon,
        Ok(Sysnum::NotifyWait) => a[1] = soon,
        Ok(Sysnum::Read) => a[3] = soon,
        Ok(Sysnum::MemMap) => a[1] %= 1 << 20,
        Ok(Sysnum::Spawn) if pool.children.len() >= 4 || rng.below(4) != 0 => a[1] = 1 << 40,
        Ok(Sysnum::Spawn) => {
            const PATH: &str = "/bin/child";
            const ARGS: &[u8] = b"child\0exit\09\0";
            a[0] = PATH.as_ptr() as u64;
            a[1] = PATH.len() as u64;
            a[2] = ARGS.as_ptr() as u64;
            a[3] = ARGS.len() as u64;
            a[5] = 0;
        }
        Ok(Sysnum::Write) => a[2] %= 64,
        _ => {}
    }
}

/// Remembers what a successful call gave it (handles, children, mappings).
fn keep(num: u64, a: [u64; 6], r: [u64; 3], pool: &mut Pool) {
    let Ok(Ok(call)) = u32::try_from(num).map(Sysnum::try_from) else {
        return;
    };
    match call {
        Sysnum::Open | Sysnum::NotifyCap if pool.handles.len() < 32 => pool.handles.push(r[0]),
        Sysnum::Spawn => pool.children.push(r[0]),
        Sysnum::Wait => pool.children.retain(|&c| c != r[0]),
        Sysnum::MemMap => {
            pool.maps.push((r[0] as usize, a[1] as usize));
            if pool.maps.len() > 8 {
                let (addr, len) = pool.maps.remove(0);
                let _ = mem::unmap(addr, len);
            }
        }
        _ => {}
    }
}

fn raw_call(num: u64, a: [u64; 6]) -> (i64, [u64; 3]) {
    let (x0, x1, x2, x3): (u64, u64, u64, u64);
    // SAFETY: any system call with any arguments: the kernel validates them all. The
    // pointers this fuzzer passes never name memory it relies on (see `tame`).
    unsafe {
        core::arch::asm!("svc #0", in("x8") num, inout("x0") a[0] => x0, inout("x1") a[1] => x1,
            inout("x2") a[2] => x2, inout("x3") a[3] => x3, in("x4") a[4], in("x5") a[5],
            options(nostack));
    }
    (x0 as i64, [x1, x2, x3])
}
