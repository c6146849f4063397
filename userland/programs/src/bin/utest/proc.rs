//! The process suite: lifecycle, memory, capabilities, time, files and pointers, run
//! from user space against the real kernel.

use abi::proc::{GRANT_COPY, GRANT_MOVE, GrantSpec, STATUS_FAULTED, STATUS_KILLED};
use abi::{CapType, Error, Handle, Rights, Sysnum};
use capstan_programs::{Failure, Outcome, Test, check, check_eq};
use capstan_rt::fs::File;
use capstan_rt::{cap, fs, mem, process, sys, time};

/// The suite.
pub const TESTS: &[Test] = &[
    ("spawn_and_wait_return_the_exit_code", spawn_and_wait),
    ("wait_any_reaps_every_child_then_echild", wait_any_reaps_all),
    ("wnohang_is_eagain_while_a_child_runs", wnohang),
    ("kill_ends_a_sleeping_child", kill_sleeping),
    ("kill_ends_a_spinning_child", kill_spinning),
    ("getpid_matches_the_startup_record", getpid),
    ("spawn_of_a_missing_path_is_enoent", spawn_enoent),
    ("spawn_of_a_non_elf_is_enoexec", spawn_enoexec),
    ("orphans_are_reparented", orphans),
    ("null_dereference_ends_the_process", fault_null),
    ("stack_overflow_hits_the_guard_page", fault_overflow),
    ("data_is_never_executable", fault_exec_data),
    ("code_is_never_writable", fault_write_text),
    ("unmapped_memory_faults", fault_unmapped),
    ("mem_map_gives_zeroed_writable_memory", mem_map_rw),
    ("mem_map_refuses_writable_and_executable", mem_map_wx),
    ("mem_unmap_needs_a_whole_mapping", mem_unmap_whole),
    ("a_stale_or_forged_handle_is_ebadh", stale_handle),
    ("missing_rights_are_eacces", missing_rights),
    ("cap_replace_only_drops_rights", cap_replace),
    ("cap_info_reports_type_and_rights", cap_info),
    ("grant_copy_gives_a_child_a_file", grant_copy),
    ("grant_move_makes_the_handle_stale", grant_move),
    ("clock_is_monotonic_and_sleep_waits", clock_and_sleep),
    ("files_from_the_initrd_read_whole", initrd_file),
    ("open_refuses_missing_and_writable", open_errors),
    ("procfs_counts_this_process", procfs_self),
    ("procfs_files_have_their_records", procfs_files),
    ("bad_pointers_are_efault", bad_pointers),
    ("unknown_syscalls_are_enosys", unknown_syscall),
    ("fp_state_survives_switches", fp_state),
    ("notify_wait_returns_only_masked_bits", notify_mask),
    ("notify_wait_times_out_and_polls", notify_timeout),
    ("notifications_ping_pong_between_processes", notify_pingpong),
];

fn run_child(args: &[&str]) -> Result<i32, Failure> {
    let pid = process::spawn("/bin/child", args, &[])?;
    let done = process::wait(pid)?;
    check_eq!(done.pid, pid);
    Ok(done.status)
}

fn spawn_and_wait() -> Outcome {
    check_eq!(run_child(&["child", "exit", "42"])?, 42);
    Ok(())
}

fn wait_any_reaps_all() -> Outcome {
    let mut pids = alloc::vec::Vec::new();
    for code in 1..=3 {
        pids.push(process::spawn(
            "/bin/child",
            &["child", "exit", ["1", "2", "3"][code - 1]],
            &[],
        )?);
    }
    let mut codes = alloc::vec::Vec::new();
    for _ in 0..3 {
        let e = process::wait_any()?;
        check!(
            pids.contains(&e.pid),
            "reaped {} which is not a child",
            e.pid
        );
        codes.push(e.status);
    }
    codes.sort_unstable();
    check_eq!(codes, [1, 2, 3]);
    check_eq!(process::wait_any().err(), Some(Error::ECHILD));
    Ok(())
}

fn wnohang() -> Outcome {
    let pid = process::spawn("/bin/child", &["child", "sleep", "200"], &[])?;
    check_eq!(process::try_wait_any().err(), Some(Error::EAGAIN));
    check_eq!(process::wait(pid)?.status, 0);
    Ok(())
}

fn kill_sleeping() -> Outcome {
    let pid = process::spawn("/bin/child", &["child", "sleep", "60000"], &[])?;
    time::sleep_ns(20_000_000);
    let t0 = time::now();
    process::kill(pid)?;
    check_eq!(process::wait(pid)?.status, STATUS_KILLED);
    check!(
        time::now() - t0 < 2_000_000_000,
        "the kill took {} ms",
        (time::now() - t0) / 1_000_000
    );
    Ok(())
}

fn kill_spinning() -> Outcome {
    let pid = process::spawn("/bin/child", &["child", "spin"], &[])?;
    time::sleep_ns(20_000_000);
    process::kill(pid)?;
    check_eq!(process::wait(pid)?.status, STATUS_KILLED);
    check_eq!(process::kill(pid).err(), Some(Error::ESRCH));
    Ok(())
}

fn getpid() -> Outcome {
    let s = capstan_rt::start::startup().ok_or(alloc::string::String::from("no startup"))?;
    check_eq!(process::getpid(), s.pid());
    Ok(())
}

fn spawn_enoent() -> Outcome {
    check_eq!(
        process::spawn("/bin/no-such-program", &["x"], &[]).err(),
        Some(Error::ENOENT)
    );
    Ok(())
}

fn spawn_enoexec() -> Outcome {
    check_eq!(
        process::spawn("/etc/motd", &["motd"], &[]).err(),
        Some(Error::ENOEXEC)
    );
    check_eq!(
        process::spawn("/bin/bad-elf", &["bad"], &[]).err(),
        Some(Error::ENOEXEC)
    );
    Ok(())
}

fn orphans() -> Outcome {
    let grandchild = run_child(&["child", "orphan"])?;
    check!(grandchild > 0, "the child could not spawn");
    // Its parent is gone: it now belongs to init (pid 1, if alive) or the kernel (0).
    let status = fs::read_file(&alloc::format!("/proc/{grandchild}/status"))?;
    let text = core::str::from_utf8(&status).unwrap_or("");
    let init_alive = fs::read_file("/proc/1/status")
        .is_ok_and(|s| core::str::from_utf8(&s).is_ok_and(|t| t.contains("state running")));
    let heir = if init_alive { 1 } else { 0 };
    check!(text.contains(&alloc::format!("parent {heir}\n")), "{text}");
    if process::getpid() == 1 {
        check_eq!(process::wait(grandchild as u32)?.status, 0); // ours to reap now
    } else {
        check_eq!(process::wait(grandchild as u32).err(), Some(Error::ECHILD));
    }
    Ok(())
}

fn expect_fault(mode: &str) -> Outcome {
    check_eq!(run_child(&["child", mode])?, STATUS_FAULTED);
    Ok(())
}

fn fault_null() -> Outcome {
    expect_fault("fault-null")
}

fn fault_overflow() -> Outcome {
    expect_fault("overflow")
}

fn fault_exec_data() -> Outcome {
    expect_fault("exec-data")
}

fn fault_write_text() -> Outcome {
    expect_fault("write-text")
}

fn fault_unmapped() -> Outcome {
    expect_fault("unmapped")
}

fn mem_map_rw() -> Outcome {
    let len = 1 << 20;
    let addr = mem::map(len, mem::PROT_READ | mem::PROT_WRITE)?;
    // SAFETY: the kernel just mapped `len` bytes read-write at `addr` for us.
    let bytes = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len) };
    check!(bytes.iter().all(|&b| b == 0), "fresh memory is not zeroed");
    bytes.fill(0xa5);
    check!(bytes.iter().all(|&b| b == 0xa5));
    mem::unmap(addr, len)?;
    Ok(())
}

fn mem_map_wx() -> Outcome {
    let wx = mem::PROT_READ | mem::PROT_WRITE | mem::PROT_EXEC;
    check_eq!(mem::map(4096, wx).err(), Some(Error::EPERM));
    check_eq!(mem::map(4096, 0x80).err(), Some(Error::EINVAL));
    check_eq!(mem::map(0, mem::PROT_READ).err(), Some(Error::EINVAL));
    check_eq!(mem::map(1 << 40, mem::PROT_READ).err(), Some(Error::EINVAL));
    Ok(())
}

fn mem_unmap_whole() -> Outcome {
    let addr = mem::map(8192, mem::PROT_READ | mem::PROT_WRITE)?;
    check_eq!(mem::unmap(addr + 4096, 4096).err(), Some(Error::EINVAL));
    check_eq!(mem::unmap(0x40_0000, 4096).err(), Some(Error::EINVAL)); // our own code
    mem::unmap(addr, 8192)?;
    check_eq!(mem::unmap(addr, 8192).err(), Some(Error::EINVAL));
    Ok(())
}

fn stale_handle() -> Outcome {
    let f = File::open("/etc/motd")?;
    let h = f.handle();
    cap::drop(h)?;
    core::mem::forget(f);
    let mut b = [0u8; 4];
    check_eq!(fs::read(h, &mut b, 0).err(), Some(Error::EBADH));
    check_eq!(cap::info(h).err(), Some(Error::EBADH));
    for forged in [
        Handle(0),
        Handle(1),
        Handle(0x7fff_ffff),
        Handle(h.raw() ^ (1 << 12)),
    ] {
        check_eq!(cap::info(forged).err(), Some(Error::EBADH));
    }
    Ok(())
}

fn missing_rights() -> Outcome {
    let f = File::open("/etc/motd")?;
    check_eq!(fs::write(f.handle(), b"x").err(), Some(Error::EACCES));
    Ok(())
}

fn cap_replace() -> Outcome {
    let f = File::open("/etc/motd")?;
    cap::replace(f.handle(), Rights::TRANSFER)?;
    let mut b = [0u8; 4];
    check_eq!(f.read(&mut b).err(), Some(Error::EACCES));
    check_eq!(
        cap::replace(f.handle(), Rights::READ).err(),
        Some(Error::EACCES)
    );
    Ok(())
}

fn cap_info() -> Outcome {
    let f = File::open("/etc/motd")?;
    let info = cap::info(f.handle())?;
    check_eq!(info.cap_type, Ok(CapType::File));
    check!(info.rights.contains(Rights::READ) && !info.rights.contains(Rights::WRITE));
    Ok(())
}

fn grant_copy() -> Outcome {
    let f = File::open("/etc/motd")?;
    let first = fs::read_file("/etc/motd")?[0];
    let spec = GrantSpec {
        handle: f.handle().raw(),
        rights: (Rights::READ | Rights::TRANSFER).bits(),
        mode: GRANT_COPY,
    };
    let pid = process::spawn("/bin/child", &["child", "grant"], &[spec])?;
    check_eq!(process::wait(pid)?.status, i32::from(first));
    check!(
        cap::info(f.handle()).is_ok(),
        "a copy left the parent without its handle"
    );
    Ok(())
}

fn grant_move() -> Outcome {
    let f = File::open("/etc/motd")?;
    let h = f.handle();
    core::mem::forget(f);
    let spec = GrantSpec {
        handle: h.raw(),
        rights: Rights::READ.bits(),
        mode: GRANT_MOVE,
    };
    let pid = process::spawn("/bin/child", &["child", "grant"], &[spec])?;
    check!(
        process::wait(pid)?.status < 200,
        "the child could not read its grant"
    );
    check_eq!(cap::info(h).err(), Some(Error::EBADH));
    // Rights beyond what is held are refused, and nothing moves.
    let g = File::open("/etc/motd")?;
    let spec = GrantSpec {
        handle: g.handle().raw(),
        rights: (Rights::READ | Rights::WRITE).bits(),
        mode: GRANT_MOVE,
    };
    check_eq!(
        process::spawn("/bin/child", &["child", "grant"], &[spec]).err(),
        Some(Error::EACCES)
    );
    check!(cap::info(g.handle()).is_ok());
    Ok(())
}

fn clock_and_sleep() -> Outcome {
    let a = time::now();
    time::sleep_ns(30_000_000);
    let b = time::now();
    check!(b >= a + 30_000_000, "slept {} ns", b - a);
    time::sleep_until(a); // in the past: returns at once
    check!(time::now() >= b);
    Ok(())
}

fn initrd_file() -> Outcome {
    let motd = fs::read_file("/etc/motd")?;
    check!(
        motd.starts_with(b"Capstan"),
        "motd is {:?}",
        core::str::from_utf8(&motd)
    );
    let hello = fs::read_file("/bin/hello")?;
    check_eq!(&hello[..4], b"\x7fELF");
    let listing = fs::read_file("/bin")?;
    check!(
        core::str::from_utf8(&listing).is_ok_and(|l| l.contains("hello ")),
        "no hello in /bin"
    );
    Ok(())
}

fn open_errors() -> Outcome {
    check_eq!(File::open("/nope").err(), Some(Error::ENOENT));
    check_eq!(fs::open_write("/etc/motd").err(), Some(Error::EPERM));
    check_eq!(File::open_with("/etc/motd", 0).err(), Some(Error::EINVAL));
    check_eq!(
        File::open_with("/etc/motd", 0x100).err(),
        Some(Error::EINVAL)
    );
    Ok(())
}

fn procfs_self() -> Outcome {
    let path = alloc::format!("/proc/{}/status", process::getpid());
    let status = fs::read_file(&path)?;
    let text =
        core::str::from_utf8(&status).map_err(|_| alloc::string::String::from("not text"))?;
    check!(text.contains("name /bin/utest"), "{text}");
    check!(text.contains("r-x Image"), "no text region: {text}");
    let stat = fs::read_file("/proc/stat")?;
    let stat = core::str::from_utf8(&stat).unwrap_or("");
    let calls = stat
        .lines()
        .find_map(|l| l.strip_prefix("syscalls "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    check!(calls > 10, "/proc/stat counts {calls} syscalls");
    Ok(())
}

fn bad_pointers() -> Outcome {
    let f = File::open("/etc/motd")?;
    for addr in [
        0u64,
        0x10,
        0xffff_8000_4000_0000,
        0xffff_ffff_8008_0000,
        u64::MAX - 4,
    ] {
        let r = sys::call4(Sysnum::Read, u64::from(f.handle().raw()), addr, 16, 0);
        check_eq!(r.err(), Some(Error::EFAULT));
    }
    // A range straddling the end of a mapping.
    let page = mem::map(4096, mem::PROT_READ | mem::PROT_WRITE)?;
    let r = sys::call4(
        Sysnum::Read,
        u64::from(f.handle().raw()),
        (page + 4090) as u64,
        16,
        0,
    );
    check_eq!(r.err(), Some(Error::EFAULT));
    // Writing from a read-only user page is fine; reading into one is not.
    let r = sys::call4(Sysnum::Read, u64::from(f.handle().raw()), 0x40_0000, 8, 0);
    check_eq!(r.err(), Some(Error::EFAULT));
    let r = sys::call3(Sysnum::Open, 0xffff_ffff_8008_0000, 8, 1);
    check_eq!(r.err(), Some(Error::EFAULT));
    // A misaligned grant array, and one in kernel memory.
    let path = "/bin/child";
    for grants in [0x40_0001u64, 0xffff_ffff_8008_0000] {
        let r = sys::call(
            Sysnum::Spawn,
            [path.as_ptr() as u64, path.len() as u64, 0, 0, grants, 1],
        );
        check_eq!(r.err(), Some(Error::EFAULT));
    }
    Ok(())
}

fn unknown_syscall() -> Outcome {
    let mut regs = [0u64; 3];
    for num in [0x06u32, 0x0f, 0x7f, 0x1000, u32::MAX] {
        let r = raw_call(u64::from(num), &mut regs);
        check_eq!(r, Error::ENOSYS.as_i32() as i64);
    }
    Ok(())
}

fn raw_call(num: u64, out: &mut [u64; 3]) -> i64 {
    let x0: u64;
    // SAFETY: a system call with an arbitrary number; the kernel validates it.
    unsafe {
        core::arch::asm!("svc #0", in("x8") num, inout("x0") 0u64 => x0,
            inout("x1") 0u64 => out[0], inout("x2") 0u64 => out[1], inout("x3") 0u64 => out[2],
            options(nostack));
    }
    x0 as i64
}

fn fp_state() -> Outcome {
    let a = process::spawn("/bin/child", &["child", "fpu", "17"], &[])?;
    let b = process::spawn("/bin/child", &["child", "fpu", "99"], &[])?;
    let mut acc = 0.5f64;
    for i in 0..500 {
        acc = acc * 1.25 - f64::from(i) / 7.0;
        if i % 25 == 0 {
            process::yield_now();
        }
    }
    check_eq!(process::wait(a)?.status, 0);
    check_eq!(process::wait(b)?.status, 0);
    let mut again = 0.5f64;
    for i in 0..500 {
        again = again * 1.25 - f64::from(i) / 7.0;
    }
    check_eq!(acc.to_bits(), again.to_bits());
    Ok(())
}

fn notify_mask() -> Outcome {
    let me = time::notify_cap()?;
    check_eq!(cap::info(me)?.cap_type, Ok(CapType::Notification));
    time::notify_post(me, 0b1010)?;
    check_eq!(time::notify_wait(0b0010, time::FOREVER)?, 0b0010);
    // Bit 3 was kept for a later wait.
    check_eq!(time::notify_wait(0b1000, 0)?, 0b1000);
    check_eq!(time::notify_wait(u64::MAX, 0).err(), Some(Error::ETIMEDOUT));
    check_eq!(
        sys::call2(Sysnum::NotifyWait, 0, 0).err(),
        Some(Error::EINVAL)
    );
    check_eq!(time::notify_post(me, 0).err(), Some(Error::EINVAL));
    cap::drop(me)?;
    check_eq!(time::notify_post(me, 1).err(), Some(Error::EBADH));
    Ok(())
}

fn notify_timeout() -> Outcome {
    let t0 = time::now();
    check_eq!(
        time::notify_wait(1 << 40, t0 + 20_000_000).err(),
        Some(Error::ETIMEDOUT)
    );
    check!(time::now() >= t0 + 20_000_000, "woke early");
    Ok(())
}

/// The child gets our word's capability, hands us its own, then answers 100 pings.
pub fn start_pingpong(rounds: u32) -> Result<(u32, Handle), Failure> {
    let mine = time::notify_cap()?;
    let spec = GrantSpec {
        handle: mine.raw(),
        rights: (Rights::WRITE | Rights::TRANSFER).bits(),
        mode: GRANT_COPY,
    };
    let pid = process::spawn(
        "/bin/child",
        &["child", "pingpong", &alloc::format!("{rounds}")],
        &[spec],
    )?;
    let bits = time::notify_wait(u64::MAX, time::now() + 5_000_000_000)?;
    cap::drop(mine)?;
    Ok((pid, Handle(bits as u32)))
}

fn notify_pingpong() -> Outcome {
    let (pid, child) = start_pingpong(100)?;
    check_eq!(cap::info(child)?.cap_type, Ok(CapType::Notification));
    for round in 0..100 {
        time::notify_post(child, 1)?;
        let got = time::notify_wait(2, time::now() + 5_000_000_000)?;
        check!(got == 2, "round {round}: {got}");
    }
    check_eq!(process::wait(pid)?.status, 0);
    check_eq!(time::notify_post(child, 1).err(), Some(Error::ESRCH));
    Ok(())
}

fn text(path: &str) -> Result<alloc::string::String, Failure> {
    let bytes = fs::read_file(path)?;
    alloc::string::String::from_utf8(bytes)
        .map_err(|_| Failure::Failed(alloc::format!("{path} is not text")))
}

fn procfs_files() -> Outcome {
    let list = text("/proc")?;
    for name in ["stat", "threads", "interrupts", "meminfo", "dma"] {
        check!(list.lines().any(|l| l == name), "/proc lacks {name}");
    }
    let me = process::getpid();
    check!(
        list.contains(&alloc::format!("{me}/caps")),
        "/proc does not list this process"
    );
    let irqs = text("/proc/interrupts")?;
    let header = irqs.lines().next().unwrap_or("");
    check!(
        header.contains("INTID") && header.contains("CPU0"),
        "{header}"
    );
    check!(
        irqs.lines()
            .any(|l| l.contains("PPI") && l.contains("(timer)")),
        "no timer row:\n{irqs}"
    );
    let caps = text(&alloc::format!("/proc/{me}/caps"))?;
    check!(
        caps.lines().filter(|l| l.contains("File")).count() >= 2,
        "{caps}"
    );
    check!(
        caps.contains("read,transfer") || caps.contains("transfer,read"),
        "{caps}"
    );
    let mem = text("/proc/meminfo")?;
    check!(mem.lines().any(|l| l.starts_with("frames_free ")), "{mem}");
    let stat = text("/proc/stat")?;
    check!(
        stat.lines().any(|l| l.starts_with("cpu0 busy_ns ")),
        "{stat}"
    );
    check!(
        stat.lines()
            .any(|l| l.starts_with("syscall_errors_by_errno ")),
        "{stat}"
    );
    let dma = text("/proc/dma")?;
    check!(dma.starts_with("kernel_buffers "), "{dma}");
    // One line per thread, each ending in its CPU time; this one is running.
    let threads = text("/proc/threads")?;
    let tag = alloc::format!(" pid {me} ");
    let mine = threads.lines().find(|l| l.contains(&tag)).unwrap_or("");
    check!(mine.contains(" running switches "), "{threads}");
    check!(
        threads.lines().any(|l| l.split(' ').nth(1) == Some("idle")),
        "no idle thread:\n{threads}"
    );
    check!(
        threads.lines().all(|l| l
            .rsplit_once(" run_ns ")
            .is_some_and(|(_, ns)| ns.parse::<u64>().is_ok())),
        "{threads}"
    );
    check_eq!(File::open("/proc/99999/status").err(), Some(Error::ENOENT));
    check_eq!(File::open("/proc/nope").err(), Some(Error::ENOENT));
    Ok(())
}
