//! Boot-level tests: memory, MMU permissions, traps, timer, threads, interrupts.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::{probe, secondary, sections, stack};
use crate::mem::frames;
use crate::sched;
use crate::{ensure, ensure_eq, irq, kernel_test, machine, time, timer, trap};
use caps::irq::LineStatus;
use drivers::irqchip::Trigger;

/// An SPI no QEMU virt device uses, for software-triggered interrupt tests.
const TEST_SPI: u32 = 60;
/// A second free SPI for the lock test.
const LOCK_TEST_SPI: u32 = 61;

kernel_test! {
    fn frame_allocator_distinct_reusable_and_exhaustible() {
        let a = frames::alloc(1).map_err(|_| "alloc 1")?;
        let b = frames::alloc(4).map_err(|_| "alloc 4")?;
        ensure!(a % 4096 == 0 && b % (4 * 4096) == 0, "misaligned {a:#x} {b:#x}");
        ensure!(a + 4096 <= b || b + 4 * 4096 <= a, "overlap {a:#x} {b:#x}");
        let (free_before, total) = frames::stats();
        frames::free(b, 4);
        ensure_eq!(frames::stats().0, free_before + 4);
        let c = frames::alloc(4).map_err(|_| "realloc 4")?;
        ensure_eq!(c, b);
        frames::free(c, 4);
        frames::free(a, 1);
        ensure!(frames::alloc(total * 2).is_err(), "allocating twice all RAM succeeded");
        Ok(())
    }
}

kernel_test! {
    fn heap_allocates_frees_and_reports_exhaustion() {
        let v: Vec<u64> = (0..10_000).collect();
        ensure_eq!(v.iter().sum::<u64>(), 49_995_000);
        let b = Box::new([7u8; 4096]);
        ensure!(b.iter().all(|&x| x == 7));
        drop(v);
        let mut huge: Vec<u8> = Vec::new();
        ensure!(huge.try_reserve(1 << 40).is_err(), "a 1 TiB reservation succeeded");
        Ok(())
    }
}

kernel_test! {
    fn write_to_rodata_faults_and_is_reported() {
        static RODATA_WORD: u64 = 0x1234;
        let addr = core::ptr::from_ref(&RODATA_WORD) as usize;
        let img = sections::image();
        ensure!(addr >= img.text_end && addr < img.rodata_end, "not in rodata: {addr:#x}");
        let fault = probe::try_store_u64(addr, 0xdead).err().ok_or("store to rodata succeeded")?;
        ensure_eq!((fault.esr >> 26) & 0x3f, 0x25); // data abort, same EL
        ensure_eq!(fault.esr & 0x3c, 0xc); // permission fault
        ensure_eq!(fault.far as usize, addr);
        ensure_eq!(RODATA_WORD, 0x1234);
        Ok(())
    }
}

kernel_test! {
    fn write_to_text_faults_and_data_is_writable() {
        let text = sections::image().start + 0x40;
        ensure!(probe::try_store_u64(text, 0).is_err(), "store to kernel text succeeded");
        let mut word = 0u64;
        let addr = core::ptr::from_mut(&mut word) as usize;
        ensure!(probe::try_store_u64(addr, 5).is_ok(), "store to the stack faulted");
        ensure_eq!(core::hint::black_box(word), 5);
        Ok(())
    }
}

kernel_test! {
    fn stack_guard_pages_are_unmapped() {
        for class in [stack::Class::Kernel, stack::Class::User] {
            let s = stack::alloc(class).ok_or("no stack")?;
            let fault = probe::try_store_u64(s.guard(), 1).err().ok_or("guard page writable")?;
            ensure_eq!(fault.esr & 0x3c, 0x4); // translation fault
            ensure!(stack::guard_hit(s.guard() + 8).is_some_and(|(c, _)| c == class));
            ensure!(stack::guard_hit(s.bottom()).is_none(), "the stack itself counted as guard");
            ensure!(probe::try_store_u64(s.bottom(), 1).is_ok(), "stack not writable");
            ensure!(probe::try_store_u64(s.top() - 8, 1).is_ok(), "stack top not writable");
        }
        let boot_guard = sections::image().boot_stack_guard;
        ensure!(probe::try_store_u64(boot_guard, 1).is_err(), "boot stack guard writable");
        Ok(())
    }
}

kernel_test! {
    fn brk_round_trip_through_the_vector_table() {
        let before = trap::brk_hits();
        crate::arch::cpu::test_breakpoint();
        crate::arch::cpu::test_breakpoint();
        ensure_eq!(trap::brk_hits(), before + 2);
        Ok(())
    }
}

kernel_test! {
    fn timer_interrupts_deliver_sleep_deadlines() {
        let ticks = timer::ticks();
        let start = time::now_ns();
        sched::sleep_ns(20_000_000);
        let slept = time::now_ns() - start;
        ensure!(slept >= 20_000_000, "woke early after {slept} ns");
        ensure!(timer::ticks() > ticks, "no timer interrupt during the sleep");
        let intid = machine::platform().ok_or("no platform")?.timer_irq.intid;
        ensure!(irq::count(intid) > 0, "timer line counted no deliveries");
        ensure_eq!(timer::not_quiet(), 0);
        Ok(())
    }
}

/// The line `scripts/test` types into the serial console before the tests run.
pub const HOST_ECHO_LINE: &str = "capstan-echo 42 0xbeef";

kernel_test! {
    /// QEMU 7.2's PL011 does not model the LBE loopback bit, so the loop closes through
    /// the host: the harness feeds `HOST_ECHO_LINE` on the serial input, which must come
    /// back through the receive interrupt, the reader thread and the input buffer intact,
    /// and equal the same text formatted here. The harness also checks that formatted
    /// log lines reach the host byte for byte.
    fn uart_round_trip_of_formatted_text_through_the_host() {
        let expected = alloc::format!("capstan-echo {} {:#x}", 42, 0xbeefu32);
        ensure_eq!(expected.as_str(), HOST_ECHO_LINE);
        let deadline = time::now_ns() + 5_000_000_000;
        let mut got = alloc::string::String::new();
        while got.len() < expected.len() {
            let b = crate::console::input::read_byte_until(deadline)
                .ok_or_else(|| alloc::format!("input timed out after {got:?}"))?;
            if !(got.is_empty() && b.is_ascii_whitespace()) {
                got.push(b as char);
            }
        }
        ensure_eq!(got, expected);
        let intid = machine::platform().and_then(|p| p.uart_irq).ok_or("no uart irq")?.intid;
        ensure!(irq::count(intid) > 0, "input arrived without a UART interrupt");
        Ok(())
    }
}

kernel_test! {
    fn threads_ping_pong_through_notifications() {
        const ROUNDS: u64 = 200;
        let ping = sched::notify_create().map_err(|e| alloc::format!("{e:?}"))?;
        let pong = sched::notify_create().map_err(|e| alloc::format!("{e:?}"))?;
        static SEEN: AtomicU64 = AtomicU64::new(0);
        SEEN.store(0, Ordering::SeqCst);
        let t = sched::spawn("pong", move || {
            for _ in 0..ROUNDS {
                if sched::notify_wait(ping, u64::MAX).is_ok() {
                    SEEN.fetch_add(1, Ordering::SeqCst);
                    let _ = sched::notify_post(pong, 1);
                }
            }
        })
        .map_err(|e| alloc::format!("{e:?}"))?;
        for i in 0..ROUNDS {
            sched::notify_post(ping, 1).map_err(|e| alloc::format!("{e:?}"))?;
            let deadline = time::now_ns() + 1_000_000_000;
            sched::notify_wait(pong, deadline).map_err(|_| alloc::format!("round {i} timed out"))?;
        }
        ensure_eq!(SEEN.load(Ordering::SeqCst), ROUNDS);
        sched::sleep_ns(1_000_000);
        ensure!(!sched::alive(t), "pong thread did not exit");
        sched::notify_destroy(ping);
        sched::notify_destroy(pong);
        Ok(())
    }
}

kernel_test! {
    fn yield_runs_another_ready_thread() {
        static RAN: AtomicBool = AtomicBool::new(false);
        RAN.store(false, Ordering::SeqCst);
        let t = sched::spawn("yield-peer", || RAN.store(true, Ordering::SeqCst))
            .map_err(|e| alloc::format!("{e:?}"))?;
        sched::yield_now();
        if crate::arch::secondary::online() == 1 {
            // One CPU: the yield itself must have run it.
            ensure!(RAN.load(Ordering::SeqCst), "yield did not run the ready thread");
        }
        // Several CPUs: another one takes it (bounded wait, yielding). The bound is about
        // progress, not speed: with more vCPUs than host cores, TCG may not run the other
        // vCPU for a while (a 100 ms bound failed once on a loaded 2-core host).
        let t0 = time::now_ns();
        while !RAN.load(Ordering::SeqCst) && time::now_ns() < t0 + 2_000_000_000 {
            sched::yield_now();
        }
        ensure!(RAN.load(Ordering::SeqCst), "the ready thread did not run within 2 s");
        while sched::alive(t) && time::now_ns() < t0 + 4_000_000_000 {
            sched::yield_now();
        }
        ensure!(!sched::alive(t), "peer did not exit");
        Ok(())
    }
}

kernel_test! {
    fn thread_woken_from_thread_context_preempts_a_busy_poster() {
        static RAN: AtomicBool = AtomicBool::new(false);
        RAN.store(false, Ordering::SeqCst);
        let n = sched::notify_create().map_err(|e| alloc::format!("{e:?}"))?;
        let t = sched::spawn("woken", move || {
            if sched::notify_wait(n, u64::MAX).is_ok() {
                RAN.store(true, Ordering::SeqCst);
            }
        })
        .map_err(|e| alloc::format!("{e:?}"))?;
        sched::sleep_ns(2_000_000); // let it block
        sched::notify_post(n, 1).map_err(|e| alloc::format!("{e:?}"))?;
        let t0 = time::now_ns();
        while !RAN.load(Ordering::SeqCst) && time::now_ns() < t0 + 200_000_000 {
            core::hint::spin_loop(); // never yields: only a time slice lets the waiter run
        }
        ensure!(RAN.load(Ordering::SeqCst), "woken thread did not run within 200 ms");
        sched::sleep_ns(1_000_000);
        ensure!(!sched::alive(t), "woken thread did not exit");
        sched::notify_destroy(n);
        Ok(())
    }
}

kernel_test! {
    fn wait_times_out_without_a_post() {
        let n = sched::notify_create().map_err(|e| alloc::format!("{e:?}"))?;
        let start = time::now_ns();
        let r = sched::notify_wait(n, start + 5_000_000);
        ensure!(r.is_err(), "wait returned {r:?} without a post");
        ensure!(time::now_ns() >= start + 5_000_000, "timed out early");
        sched::notify_destroy(n);
        Ok(())
    }
}

kernel_test! {
    fn thread_woken_by_an_interrupt_through_its_line_capability() {
        let chip = irq::chip().ok_or("no gic")?;
        let n = sched::notify_create().map_err(|e| alloc::format!("{e:?}"))?;
        let line = irq::mint(TEST_SPI, Trigger::Edge, irq::owner_of(n), "test")
            .map_err(|e| alloc::format!("{e:?}"))?;
        ensure!(
            irq::mint(TEST_SPI, Trigger::Edge, irq::owner_of(n), "twice").is_err(),
            "an INTID was minted twice"
        );
        let line = line.arm();
        static WOKEN: AtomicBool = AtomicBool::new(false);
        WOKEN.store(false, Ordering::SeqCst);
        let t = sched::spawn("irq-waiter", move || {
            if sched::notify_wait(n, time::now_ns() + 1_000_000_000).is_ok() {
                WOKEN.store(true, Ordering::SeqCst);
            }
        })
        .map_err(|e| alloc::format!("{e:?}"))?;
        sched::sleep_ns(2_000_000); // let the waiter block
        chip.set_pending(TEST_SPI);
        let deadline = time::now_ns() + 1_000_000_000;
        while sched::alive(t) && time::now_ns() < deadline {
            sched::sleep_ns(1_000_000);
        }
        let fired = irq::stats(TEST_SPI).ok_or("no stats")?;
        let masked_after = !chip.is_enabled(TEST_SPI);
        let draining = line.try_take().map_err(|_| "line did not fire")?;
        drop(draining);
        let freed = irq::stats(TEST_SPI).ok_or("no stats")?.status;
        sched::notify_destroy(n);
        ensure!(WOKEN.load(Ordering::SeqCst), "waiter was not woken");
        ensure_eq!(fired.per_cpu[0], 1);
        ensure_eq!(fired.status, LineStatus::Fired);
        ensure!(masked_after, "the IRQ path left the line unmasked");
        ensure_eq!(freed, LineStatus::Free);
        Ok(())
    }
}

kernel_test! {
    fn preemption_of_a_thread_that_never_yields() {
        static SPINS: AtomicU64 = AtomicU64::new(0);
        static STOP: AtomicBool = AtomicBool::new(false);
        SPINS.store(0, Ordering::SeqCst);
        STOP.store(false, Ordering::SeqCst);
        // One spinner per CPU: with this thread, more runnable threads than CPUs.
        let mut spinners = alloc::vec::Vec::new();
        for _ in 0..crate::arch::secondary::online() {
            spinners.push(
                sched::spawn("spinner", || {
                    while !STOP.load(Ordering::Relaxed) {
                        SPINS.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .map_err(|e| alloc::format!("{e:?}"))?,
            );
        }
        // We block; the spinners run and never yield. Getting control back needs the
        // timer to preempt one.
        sched::sleep_ns(30_000_000);
        let spun = SPINS.load(Ordering::SeqCst);
        // Still runnable alongside the spinner: the slice timer keeps switching.
        let before = sched::switches();
        let t0 = time::now_ns();
        while time::now_ns() < t0 + 30_000_000 {
            core::hint::spin_loop();
        }
        let switched = sched::switches() - before;
        STOP.store(true, Ordering::SeqCst);
        sched::sleep_ns(20_000_000);
        ensure!(spun > 0, "spinner never ran");
        ensure!(switched >= 2, "only {switched} switches while more threads than CPUs spun for 30 ms");
        ensure!(spinners.iter().all(|&t| !sched::alive(t)), "a spinner did not exit");
        Ok(())
    }
}

kernel_test! {
    fn interrupt_raised_under_irq_lock_waits_for_the_guard() {
        let chip = irq::chip().ok_or("no gic")?;
        let n = sched::notify_create().map_err(|e| alloc::format!("{e:?}"))?;
        let line = irq::mint(LOCK_TEST_SPI, Trigger::Edge, irq::owner_of(n), "lock-test")
            .map_err(|e| alloc::format!("{e:?}"))?
            .arm();
        let lock = crate::sync::IrqLock::new(0u32);
        ensure!(!crate::arch::cpu::irqs_masked(), "IRQs masked before the lock");
        let during = {
            let mut guard = lock.lock();
            ensure!(crate::arch::cpu::irqs_masked(), "IRQs not masked under the guard");
            chip.set_pending(LOCK_TEST_SPI);
            let t0 = time::now_ns();
            while time::now_ns() < t0 + 2_000_000 {
                *guard += 1;
            }
            irq::count(LOCK_TEST_SPI)
        };
        let after = irq::count(LOCK_TEST_SPI);
        let woke = sched::notify_wait(n, time::now_ns() + 100_000_000).is_ok();
        drop(line);
        sched::notify_destroy(n);
        ensure_eq!(during, 0);
        ensure_eq!(after, 1);
        ensure!(woke, "owner not notified");
        Ok(())
    }
}

kernel_test! {
    fn critical_section_masks_irqs() {
        ensure!(!crate::arch::cpu::irqs_masked(), "IRQs masked before");
        let inside = critical_section::with(|_| crate::arch::cpu::irqs_masked());
        ensure!(inside, "critical_section::with ran with IRQs enabled");
        ensure!(!crate::arch::cpu::irqs_masked(), "IRQs left masked after");
        Ok(())
    }
}

kernel_test! {
    fn secondary_cpus_came_online_through_psci() {
        let expected = machine::platform().map_or(1, |p| p.cpus.len().max(1)) as u32;
        let deadline = time::now_ns() + 500_000_000;
        while secondary::online() < expected && time::now_ns() < deadline {
            sched::sleep_ns(1_000_000);
        }
        ensure_eq!(secondary::online(), expected);
        Ok(())
    }
}

kernel_test! {
    fn profiler_samples_where_the_cpu_runs() {
        if sched::profile::rate().is_some() {
            return Ok(()); // booted with profile=: the samples are the person's
        }
        let period = timer::period_ns();
        timer::set_periodic_hz(5000);
        sched::profile::start(5000);
        // The scheduler programs the tick at its next entry on this CPU: make one now.
        sched::yield_now();
        let _ = sched::profile::take();
        // 40 ms of kernel code on this CPU: about 200 ticks.
        let end = time::now_ns() + 40_000_000;
        let mut x = 0u64;
        while time::now_ns() < end {
            x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        sched::profile::stop();
        timer::set_period_ns(period);
        let (samples, dropped) = sched::profile::take();
        ensure_eq!(dropped, 0);
        ensure!(samples.len() >= 20, "{} samples in 40 ms at 5 kHz", samples.len());
        let img = sections::image();
        let in_text = samples
            .iter()
            .filter(|&&pc| (img.start..img.text_end).contains(&(pc as usize)))
            .count();
        ensure!(
            in_text * 10 >= samples.len() * 9,
            "{in_text} of {} samples in the kernel's text",
            samples.len()
        );
        ensure!(sched::profile::rate().is_none(), "still sampling");
        Ok(())
    }
}
