//! A helper the process tests start: `child MODE [ARG]` does one thing and exits.
//!
//! Modes: `exit N`, `sleep MS` (then exit 0), `spin` (forever), `fault-null`,
//! `overflow` (recurses into the stack guard), `exec-data` (jumps into a writable
//! page), `write-text` (stores into its own code), `unmapped` (touches memory after
//! `mem_unmap`), `fpu N` (floating point with yields, exit 0 if the result is exact),
//! `grant` (reads the file it was granted, exits with its first byte), `orphan`
//! (spawns a sleeping grandchild and exits with its pid), `pingpong N`, `sockets`
//! (holds a UDP socket, a TCP listener and a TCP connection to the lab's web server,
//! then sleeps until killed).
#![no_std]
#![no_main]

extern crate alloc;

use capstan_rt::{Startup, entry, fs, mem, println, process, time};

entry!(main);

fn main(s: &Startup) -> i32 {
    let arg = |i| s.arg(i).unwrap_or("");
    let num = |i| arg(i).parse::<i64>().unwrap_or(0);
    match arg(1) {
        "exit" => num(2) as i32,
        "sleep" => {
            time::sleep_ns(num(2) as u64 * 1_000_000);
            0
        }
        "sockets" => sockets(),
        "spin" => loop {
            core::hint::spin_loop();
        },
        "fault-null" => {
            let p = core::hint::black_box(0usize) as *const u64;
            // SAFETY: deliberately invalid; the kernel must end this process.
            unsafe { p.read_volatile() as i32 }
        }
        "overflow" => recurse(core::hint::black_box(1)) as i32,
        "exec-data" => {
            let Ok(page) = mem::map(4096, mem::PROT_READ | mem::PROT_WRITE) else {
                return 2;
            };
            // SAFETY: deliberately jumps into a non-executable page: the kernel must end
            // this process with an instruction abort.
            let f: extern "C" fn() = unsafe { core::mem::transmute(page) };
            f();
            3
        }
        "write-text" => {
            let p = main as *const () as *mut u32;
            // SAFETY: deliberately stores into read-only code.
            unsafe { p.write_volatile(0) };
            4
        }
        "unmapped" => {
            let Ok(page) = mem::map(4096, mem::PROT_READ | mem::PROT_WRITE) else {
                return 2;
            };
            if mem::unmap(page, 4096).is_err() {
                return 3;
            }
            // SAFETY: deliberately reads an unmapped page.
            unsafe { (page as *const u8).read_volatile() as i32 }
        }
        "fpu" => fpu(num(2) as u32),
        "grant" => {
            let Some(g) = s.grants().next() else {
                return 200;
            };
            let mut b = [0u8; 1];
            match fs::read(g.handle, &mut b, time::FOREVER) {
                Ok(1) => i32::from(b[0]),
                _ => 201,
            }
        }
        "pingpong" => pingpong(s),
        "orphan" => match process::spawn("/bin/child", &["child", "sleep", "300"], &[]) {
            Ok(pid) => pid as i32,
            Err(_) => -1,
        },
        other => {
            println!("child: unknown mode '{other}'");
            100
        }
    }
}

/// `pingpong N`: the first grant is the parent's notification word. Hands the parent a
/// capability for this process's word (its handle there, posted as the bits), then N
/// times: wait for bit 1, post bit 2 back.
fn pingpong(s: &Startup) -> i32 {
    let Some(parent) = s.grants().next().map(|g| g.handle) else {
        return 200;
    };
    let rounds = s.arg(2).and_then(|a| a.parse::<u32>().ok()).unwrap_or(0);
    let Ok(mine) = time::notify_cap() else {
        return 201;
    };
    let Ok(there) = capstan_rt::cap::grant_copy(s.parent(), mine, abi::Rights::WRITE) else {
        return 202;
    };
    if time::notify_post(parent, u64::from(there.raw())).is_err() {
        return 203;
    }
    for _ in 0..rounds {
        if time::notify_wait(1, time::FOREVER) != Ok(1) || time::notify_post(parent, 2).is_err() {
            return 204;
        }
    }
    0
}

fn recurse(n: u64) -> u64 {
    if n == u64::MAX {
        return 0; // never: only here so the recursion has an end the compiler can see
    }
    let mut big = [n; 512];
    big[n as usize % 512] = n + 1;
    core::hint::black_box(&mut big);
    recurse(big[0] + 1) + big[1]
}

/// Sums a series in double precision with the CPU given up between steps, so another
/// process's FP work runs in between; the result must equal the same sum done at once.
fn fpu(seed: u32) -> i32 {
    let step = |acc: f64, i: u32| acc * 1.000_000_1 + f64::from(i ^ seed) / 3.0;
    let mut acc = 0.0f64;
    let mut vector = [0.0f64; 4];
    for i in 0..2000 {
        acc = step(acc, i);
        vector[(i % 4) as usize] += acc / (1.0 + f64::from(i));
        if i % 50 == 0 {
            process::yield_now();
        }
    }
    let mut again = 0.0f64;
    let mut vector2 = [0.0f64; 4];
    for i in 0..2000 {
        again = step(again, i);
        vector2[(i % 4) as usize] += again / (1.0 + f64::from(i));
    }
    if acc.to_bits() == again.to_bits() && vector.map(f64::to_bits) == vector2.map(f64::to_bits) {
        0
    } else {
        1
    }
}

fn sockets() -> i32 {
    use capstan_rt::net::{Proto, Socket, after_ms};
    let Ok(udp) = Socket::open(Proto::Udp, 0) else {
        return 2;
    };
    let Ok(listener) = Socket::open(Proto::Tcp, 0) else {
        return 3;
    };
    let Ok(tcp) = Socket::open(Proto::Tcp, 0) else {
        return 4;
    };
    if udp.bind(0).is_err() || listener.bind(0).is_err() || listener.listen(1).is_err() {
        return 5;
    }
    if tcp
        .connect(core::net::Ipv4Addr::new(192, 0, 2, 1), 80, after_ms(5000))
        .is_err()
    {
        return 6;
    }
    loop {
        time::sleep_ns(1_000_000_000);
    }
}
