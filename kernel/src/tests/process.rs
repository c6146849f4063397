//! User processes end to end: programs from the initrd run at EL0 and report back.

use crate::process::table;
use crate::{ensure, ensure_eq, kernel_test, skip};

/// Arguments as `spawn` takes them: NUL-terminated strings back to back.
fn args(list: &[&str]) -> (alloc::vec::Vec<u8>, usize) {
    let mut out = alloc::vec::Vec::new();
    for a in list {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    (out, list.len())
}

/// Spawns `path` as a child of the kernel and waits for its exit status.
pub fn run(path: &str, argv: &[&str]) -> Result<i32, abi::Error> {
    let (bytes, argc) = args(argv);
    let pid = table::spawn(0, path, &bytes, argc, alloc::vec::Vec::new())?;
    let kernel = table::get(0).ok_or(abi::Error::ESRCH)?;
    let (reaped, status, _) = table::wait(&kernel, Some(pid), false)?;
    if reaped != pid {
        return Err(abi::Error::ECHILD);
    }
    Ok(status)
}

/// Runs `path` with the words of `args` after its name (as the kernel starts init).
pub fn run_with_args(path: &str, args: &str) -> Result<i32, abi::Error> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let argv: alloc::vec::Vec<&str> = core::iter::once(name)
        .chain(args.split_whitespace())
        .collect();
    run(path, &argv)
}

kernel_test! {
    fn hello_runs_at_el0_and_exits_with_its_argument_count() {
        if table::initrd().is_none() {
            skip!("no initrd on this machine");
        }
        // Other tests may leave the kernel an orphan that is still running (the user
        // suite's `orphans_are_reparented`, which sleeps 300 ms): only a child this run
        // added counts.
        let children = || table::get(0).map(|k| k.children()).unwrap_or_default();
        let before = children();
        let status = run("/bin/hello", &["hello", "a", "b"]).map_err(|e| alloc::format!("{e}"))?;
        ensure_eq!(status, 3);
        ensure!(children().iter().all(|c| before.contains(c)), "the child was not reaped");
        Ok(())
    }
}

kernel_test! {
    fn user_process_suite_passes() {
        if table::initrd().is_none_or(|rd| rd.find("/bin/utest").is_none()) {
            skip!("no /bin/utest in the initrd");
        }
        let failures = run("/bin/utest", &["utest", "proc"]).map_err(|e| alloc::format!("{e}"))?;
        ensure_eq!(failures, 0);
        Ok(())
    }
}

/// The processes besides the kernel, for a failure message.
fn leftovers() -> alloc::string::String {
    let mut out = alloc::string::String::new();
    for p in table::all().iter().filter(|p| p.pid != 0) {
        out.push_str(&alloc::format!(
            " {} ({}, parent {}, {})",
            p.pid,
            p.name,
            p.parent(),
            if p.is_zombie() { "zombie" } else { "live" }
        ));
    }
    out
}

/// Free frames and heap bytes once they stop changing (bounded; the last exited thread's
/// stack is freed at its CPU's next exception entry), after every process a previous
/// test left running (an orphan sleeping out its time) has ended (bounded: 5 s).
fn settled() -> (usize, usize) {
    for _ in 0..2500 {
        if table::all().len() == 1 {
            break;
        }
        crate::sched::sleep_ns(2_000_000);
    }
    // Sockets of processes that ended (earlier suites in a lab boot) finish closing in
    // the net task (a TCP close lingers up to 5 s) and free their buffers then.
    for _ in 0..400 {
        if crate::net::stack::sockets().is_empty() {
            break;
        }
        crate::sched::sleep_ns(20_000_000);
    }
    let mut last = (usize::MAX, usize::MAX);
    for _ in 0..50 {
        crate::sched::sleep_ns(2_000_000);
        let now = (crate::mem::frames::stats().0, crate::arch::heap::stats().0);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

kernel_test! {
    fn a_thousand_spawn_exit_wait_cycles_leave_no_frames_or_heap_behind() {
        if table::initrd().is_none() {
            skip!("no initrd on this machine");
        }
        // Warm up: the first process grows long-lived tables (thread list, notifications).
        run("/bin/child", &["child", "exit", "0"]).map_err(|e| alloc::format!("{e}"))?;
        let before = settled();
        for i in 0..1000u32 {
            let code = alloc::format!("{}", i % 200);
            let status = run("/bin/child", &["child", "exit", &code]).map_err(|e| alloc::format!("cycle {i}: {e}"))?;
            ensure_eq!(status, (i % 200) as i32);
        }
        let after = settled();
        ensure_eq!(after.0, before.0);
        ensure_eq!(after.1, before.1);
        ensure!(table::all().len() == 1, "processes left: {}", table::all().len());
        Ok(())
    }
}

kernel_test! {
    fn processes_spawn_wait_sleep_and_exit_at_random_on_every_cpu() {
        if table::initrd().is_none() {
            skip!("no initrd on this machine");
        }
        let ms = crate::machine::platform()
            .and_then(|p| p.bootargs.split_whitespace().find_map(|w| w.strip_prefix("stress_ms=")).and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(2000);
        let before = settled();
        let busy0: alloc::vec::Vec<u64> = crate::sched::cpu_times().iter().map(|t| t.0).collect();
        let t0 = crate::time::now_ns();
        let failed = run("/bin/stress", &["stress", &alloc::format!("{ms}"), "16"]).map_err(|e| alloc::format!("{e}"))?;
        let took = (crate::time::now_ns() - t0) / 1_000_000;
        ensure_eq!(failed, 0);
        ensure!(took >= ms && took < ms + 10_000, "the run took {took} ms for {ms} ms of work");
        let after = settled();
        ensure!(table::all().len() == 1, "processes left behind:{}", leftovers());
        ensure_eq!(after.0, before.0);
        // Every CPU did some of the work.
        let busy1: alloc::vec::Vec<u64> = crate::sched::cpu_times().iter().map(|t| t.0).collect();
        for (cpu, (a, b)) in busy0.iter().zip(&busy1).enumerate() {
            ensure!(b > a, "CPU {cpu} ran nothing during the stress run");
        }
        Ok(())
    }
}

kernel_test! {
    fn random_system_calls_from_several_processes_break_nothing() {
        if table::initrd().is_none() {
            skip!("no initrd on this machine");
        }
        let calls = crate::machine::platform()
            .and_then(|p| p.bootargs.split_whitespace().find_map(|w| w.strip_prefix("fuzz_calls=")).and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(25_000);
        let before = settled();
        let failed = run("/bin/fuzz", &["fuzz", &alloc::format!("{calls}"), "4"]).map_err(|e| alloc::format!("{e}"))?;
        ensure_eq!(failed, 0);
        let after = settled();
        ensure!(table::all().len() == 1, "processes left behind:{}", leftovers());
        ensure_eq!(after.0, before.0);
        Ok(())
    }
}

kernel_test! {
    fn pan_keeps_the_kernel_out_of_user_pages() {
        use crate::arch::uspace::{AddressSpace, UserAccess};
        use crate::arch::{cpu, mmu, probe, usercopy};
        if !mmu::pan() {
            skip!("this CPU has no PAN (cortex-a72 is ARMv8.0); scripts/test checks it with -cpu max");
        }
        let mut space = AddressSpace::new().ok_or("no address space")?;
        let pa = crate::mem::frames::alloc(1).map_err(|_| "no frame")?;
        let marker = 0x5a5a_1234_u64;
        let page = core::ptr::with_exposed_provenance_mut::<u64>(mmu::phys_to_virt(pa));
        // SAFETY: the frame was just allocated and is mapped in the linear map.
        unsafe { page.write_volatile(marker) };
        space.map(0x40_0000, pa, 4096, UserAccess::ReadWrite).map_err(|e| alloc::format!("{e:?}"))?;
        // No preemption while this CPU runs the test space.
        let saved = cpu::save_and_mask_irqs();
        cpu::set_ttbr0(space.ttbr0());
        let direct = probe::try_load_u64(0x40_0000);
        let mut buf = [0u8; 8];
        let copied = usercopy::copy_from_user(&mut buf, 0x40_0000);
        cpu::set_ttbr0(mmu::empty_ttbr0());
        cpu::restore_daif(saved);
        drop(space);
        crate::mem::frames::free(pa, 1);
        let fault = direct.err().ok_or("a privileged load read a user page under PAN")?;
        ensure_eq!(fault.esr & 0x3c, 0xc); // permission fault
        ensure!(copied.is_ok(), "the user-copy accessor failed under PAN");
        ensure_eq!(u64::from_le_bytes(buf), marker);
        Ok(())
    }
}
