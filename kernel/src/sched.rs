//! Kernel and user threads, a preemptive scheduler on every CPU, and notifications.
//!
//! Every switch happens on the exception-return path: the trap handler saves the
//! interrupted frame pointer in the current thread and returns the next thread's
//! frame (see `arch::vectors`). Threads enter the scheduler voluntarily with a
//! kernel call (`svc` from EL1) — yield, wait on a notification, sleep, exit —
//! or involuntarily from the timer interrupt. Blocking is decided inside the trap
//! handler with IRQs masked, so "check pending, then sleep" cannot lose a post.
//!
//! Run queues are per CPU, all under one IRQ-safe lock (simple, and enough at a few
//! CPUs). A thread made ready goes to an idle CPU if there is one (its last CPU
//! first), else to the least loaded; a CPU other than the caller's gets a reschedule
//! IPI (SGI 0). A CPU with nothing to run steals from the busiest queue. A thread's
//! kernel stack may still be in use by the CPU that just switched away from it, until
//! that CPU's next exception entry: until then such a thread (`on_cpu`) is never
//! picked by another CPU, and a dead thread's stack is freed only then (per-CPU reap).
//!
//! This file holds the threads and the switch; `runq.rs` the placement and picking,
//! `notify.rs` the notifications.

mod notify;
pub mod profile;
mod runq;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::arch::stack::{self, KernelStack};
use crate::arch::vectors::TrapFrame;
use crate::arch::{cpu, fp, mmu};
use crate::sync::IrqLock;
use crate::time;
use caps::lock::IrqsMasked;
use notify::{Notify, wait_state};

pub use notify::{
    OwnedNotify, WakeOn, notify_create, notify_destroy, notify_post, notify_post_here,
    notify_post_on, notify_wait,
};

/// Maximum CPUs the run-queue array is sized for.
pub const MAX_CPUS: usize = cpu::MAX_CPUS;

/// The SGI that asks a CPU to look at its run queue.
pub const RESCHEDULE_SGI: u32 = 0;

/// Kernel-call operation codes (x0 of `svc #0` from EL1).
mod op {
    pub const YIELD: u64 = 0;
    pub const WAIT: u64 = 1;
    pub const SLEEP: u64 = 2;
    pub const EXIT: u64 = 3;
}

/// A thread's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ThreadId(pub u32);

/// A notification's identity (an interrupt owner sleeps on one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Running,
    Waiting {
        notify: Option<NotifyId>,
        deadline: u64,
    },
    Dead,
}

struct Thread {
    id: ThreadId,
    name: &'static str,
    state: State,
    frame: usize,
    stack: Option<KernelStack>,
    entry: Option<Box<dyn FnOnce() + Send>>,
    /// What the last wait returned: notification bits, or `None` on timeout.
    woken_with: Option<u64>,
    switches_in: u64,
    /// Set for the thread of a user process.
    user: Option<Box<UserCtx>>,
    /// The CPU it runs on, or ran on last.
    cpu: usize,
    /// A CPU may still be using its stack (see the module note).
    on_cpu: bool,
    /// Time it ran, in ns.
    run_ns: u64,
    /// The only CPU it may run on, if pinned ("main" and each CPU's idle thread).
    pin: Option<usize>,
}

/// What a user thread carries besides its kernel context: its process, its address
/// space's TTBR0 value, and its FP/SIMD registers while it is not running.
struct UserCtx {
    pid: u32,
    ttbr0: u64,
    fp: fp::FpState,
    /// Killed: end the process before it next returns to user space.
    killed: bool,
}

struct Sched {
    threads: Vec<Thread>,
    runq: [VecDeque<ThreadId>; MAX_CPUS],
    current: [Option<ThreadId>; MAX_CPUS],
    idle: [Option<ThreadId>; MAX_CPUS],
    /// The thread each CPU switched away from last (its stack may still be in use).
    prev: [Option<ThreadId>; MAX_CPUS],
    /// Stacks of threads that died on each CPU, freed at its next exception entry.
    reap: [Vec<KernelStack>; MAX_CPUS],
    online: [bool; MAX_CPUS],
    /// Where each CPU receives SGIs (`InterruptController::sgi_target`).
    sgi_target: [u64; MAX_CPUS],
    /// When each CPU's current thread started running.
    since: [u64; MAX_CPUS],
    busy_ns: [u64; MAX_CPUS],
    idle_ns: [u64; MAX_CPUS],
    notifies: Vec<Option<Notify>>,
    next_id: u32,
    switches: u64,
    slice_ns: u64,
}

static SCHED: IrqLock<Option<Sched>> = IrqLock::new(None);

/// Why a scheduler request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedError {
    /// All kernel stacks are in use.
    NoStack,
    /// The scheduler is not initialised.
    NotReady,
    /// No such notification.
    BadNotify,
}

/// A wait ran past its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

fn cpu_index() -> usize {
    cpu::index()
}

impl Sched {
    fn thread(&mut self, id: ThreadId) -> Option<&mut Thread> {
        self.threads.iter_mut().find(|t| t.id == id)
    }

    fn thread_ref(&self, id: ThreadId) -> Option<&Thread> {
        self.threads.iter().find(|t| t.id == id)
    }
}

fn boot_thread(id: ThreadId, name: &'static str, cpu: usize) -> Thread {
    Thread {
        id,
        name,
        state: State::Running,
        frame: 0,
        stack: None,
        entry: None,
        woken_with: None,
        switches_in: 0,
        user: None,
        cpu,
        on_cpu: true,
        run_ns: 0,
        pin: Some(cpu),
    }
}

/// Sets up the scheduler on the boot CPU (index 0); the caller (boot code) becomes
/// thread "main", which stays on CPU 0 (the monitor and the test runner run there).
pub fn init(slice_ns: u64) {
    cpu::set_index(0);
    let mut sched = Sched {
        // Sized up front (every stack, two notifications per process and some for the
        // kernel's drivers) so neither grows, and reallocates, while processes come and go.
        threads: Vec::with_capacity(stack::SLOTS + 8),
        // Each thread is queued at most a few times over; reserving for every possible
        // kernel stack keeps interrupt-path wake-ups from allocating.
        runq: core::array::from_fn(|_| VecDeque::with_capacity(2 * stack::SLOTS)),
        current: [None; MAX_CPUS],
        idle: [None; MAX_CPUS],
        prev: [None; MAX_CPUS],
        reap: core::array::from_fn(|_| Vec::with_capacity(stack::SLOTS)),
        online: [false; MAX_CPUS],
        sgi_target: [0; MAX_CPUS],
        since: [time::now_ns(); MAX_CPUS],
        busy_ns: [0; MAX_CPUS],
        idle_ns: [0; MAX_CPUS],
        notifies: Vec::with_capacity(2 * stack::SLOTS + 256),
        next_id: 1,
        switches: 0,
        slice_ns,
    };
    sched.threads.push(boot_thread(ThreadId(0), "main", 0));
    sched.current[0] = Some(ThreadId(0));
    sched.online[0] = true;
    sched.sgi_target[0] = crate::gic::chip().map_or(0, |g| g.sgi_target());
    *SCHED.lock() = Some(sched);
    if let Ok(idle) = spawn("idle", idle_loop)
        && let Some(s) = SCHED.lock().as_mut()
    {
        s.idle[0] = Some(idle);
        for q in &mut s.runq {
            q.retain(|&t| t != idle);
        }
        if let Some(t) = s.thread(idle) {
            t.pin = Some(0);
        }
    }
}

/// A secondary CPU (kernel index `cpu`) joins the scheduler: its boot context becomes its
/// idle thread, and from now on threads may be placed on it. Returns with IRQs masked;
/// the caller enables them and idles.
pub fn join_cpu(cpu: usize) {
    cpu::set_index(cpu);
    let target = crate::gic::chip().map_or(0, |g| g.sgi_target());
    let mut guard = SCHED.lock();
    let Some(sched) = guard.as_mut() else { return };
    let id = ThreadId(sched.next_id);
    sched.next_id += 1;
    sched.threads.push(boot_thread(id, "idle", cpu));
    sched.current[cpu] = Some(id);
    sched.idle[cpu] = Some(id);
    sched.sgi_target[cpu] = target;
    sched.since[cpu] = time::now_ns();
    sched.online[cpu] = true;
}

/// Per-CPU time: (busy ns, idle ns) for each online CPU, index order.
/// Threads waiting in this CPU's run queue (the idle thread not counted).
pub fn queued_here() -> usize {
    let cpu = cpu_index();
    SCHED.lock().as_ref().map_or(0, |s| {
        s.runq[cpu]
            .iter()
            .filter(|&&id| Some(id) != s.idle[cpu])
            .count()
    })
}

pub fn cpu_times() -> heapless::Vec<(u64, u64), MAX_CPUS> {
    let mut out = heapless::Vec::new();
    if let Some(s) = SCHED.lock().as_ref() {
        let now = time::now_ns();
        for c in (0..MAX_CPUS).filter(|&c| s.online[c]) {
            let running = now.saturating_sub(s.since[c]);
            let (busy, idle) = if s.current[c] == s.idle[c] {
                (s.busy_ns[c], s.idle_ns[c] + running)
            } else {
                (s.busy_ns[c] + running, s.idle_ns[c])
            };
            let _ = out.push((busy, idle));
        }
    }
    out
}

fn idle_loop() {
    idle()
}

/// A CPU's idle thread: waits for interrupts (the boot CPU's spawned idle thread, and
/// each secondary CPU's boot context once it joined).
pub fn idle() -> ! {
    loop {
        // The thread this CPU left is off its stack now: let other CPUs run it at once
        // (otherwise it stays `on_cpu` until this CPU's next interrupt, and an interrupt
        // elsewhere that wakes it must send it back here with an IPI).
        if let Some(sched) = SCHED.lock().as_mut() {
            sched.finish_switch(cpu_index());
        }
        cpu::wait_for_interrupt();
    }
}

/// Starts a kernel thread running `f`.
pub fn spawn(
    name: &'static str,
    f: impl FnOnce() + Send + 'static,
) -> Result<ThreadId, SchedError> {
    let stack = stack::alloc(stack::Class::Kernel).ok_or(SchedError::NoStack)?;
    let frame = stack::initial_frame(&stack, thread_entry as *const () as usize);
    add_ready(name, stack, frame, Some(Box::new(f)), None)
}

/// Starts the thread of user process `pid`: its first run returns to EL0 at `entry`
/// with stack pointer `sp` and `arg` in x0, in the address space `ttbr0`.
pub fn spawn_user(
    pid: u32,
    ttbr0: u64,
    entry: u64,
    sp: u64,
    arg: u64,
) -> Result<ThreadId, SchedError> {
    let stack = stack::alloc(stack::Class::User).ok_or(SchedError::NoStack)?;
    let frame = stack::initial_user_frame(&stack, entry, sp, arg);
    let user = Box::new(UserCtx {
        pid,
        ttbr0,
        fp: fp::FpState::default(),
        killed: false,
    });
    add_ready("user", stack, frame, None, Some(user))
}

/// Adds a new thread on `stack`, resuming at `frame`, and queues it to run.
fn add_ready(
    name: &'static str,
    stack: KernelStack,
    frame: usize,
    entry: Option<Box<dyn FnOnce() + Send>>,
    user: Option<Box<UserCtx>>,
) -> Result<ThreadId, SchedError> {
    let mut guard = SCHED.lock();
    let (slot, masked) = guard.parts();
    let sched = slot.as_mut().ok_or(SchedError::NotReady)?;
    let id = ThreadId(sched.next_id);
    sched.next_id += 1;
    sched.threads.push(Thread {
        id,
        name,
        state: State::Ready,
        frame,
        stack: Some(stack),
        entry,
        woken_with: None,
        switches_in: 0,
        user,
        cpu: cpu_index(),
        on_cpu: false,
        run_ns: 0,
        pin: None,
    });
    sched.make_ready(id, masked);
    program_timer(sched, masked);
    Ok(id)
}

/// The user process whose thread runs on this CPU, if any.
pub fn current_pid() -> Option<u32> {
    let guard = SCHED.lock();
    let sched = guard.as_ref()?;
    let me = sched.current[cpu_index()]?;
    sched
        .threads
        .iter()
        .find(|t| t.id == me)
        .and_then(|t| t.user.as_ref().map(|u| u.pid))
}

/// Takes the calling user thread off its address space (TTBR0 = the empty table) before
/// the process frees it; the thread keeps running in the kernel until it exits.
pub fn leave_address_space() {
    let mut guard = SCHED.lock();
    if let Some(sched) = guard.as_mut()
        && let Some(me) = sched.current[cpu_index()]
        && let Some(u) = sched.thread(me).and_then(|t| t.user.as_mut())
    {
        u.ttbr0 = mmu::empty_ttbr0();
    }
    cpu::set_ttbr0(mmu::empty_ttbr0());
}

/// Whether the running thread is a user thread that was killed.
pub fn current_user_killed() -> bool {
    let guard = SCHED.lock();
    let Some(sched) = guard.as_ref() else {
        return false;
    };
    let Some(me) = sched.current[cpu_index()] else {
        return false;
    };
    sched
        .threads
        .iter()
        .find(|t| t.id == me)
        .and_then(|t| t.user.as_ref())
        .is_some_and(|u| u.killed)
}

/// Marks user thread `id` killed and wakes it from any wait (see [`interrupt`]); a CPU
/// running it gets an IPI, so it stops at its next exception return.
pub fn kill_thread(id: ThreadId) {
    {
        let mut guard = SCHED.lock();
        let Some(sched) = guard.as_mut() else { return };
        let Some(t) = sched.thread(id) else { return };
        if let Some(u) = t.user.as_mut() {
            u.killed = true;
        }
        let (state, cpu) = (t.state, t.cpu);
        if state == State::Running && cpu != cpu_index() {
            sched.kick(cpu);
        }
    }
    interrupt(id);
}

/// Wakes thread `id` if it is blocked in a wait or sleep: the wait returns as if it had
/// timed out. The caller has recorded why (a kill), which the woken code checks.
pub fn interrupt(id: ThreadId) {
    let mut guard = SCHED.lock();
    let (slot, masked) = guard.parts();
    let Some(sched) = slot.as_mut() else { return };
    let Some(t) = sched.thread(id) else { return };
    let State::Waiting { notify, .. } = t.state else {
        return;
    };
    t.woken_with = None;
    if let Some(n) = notify
        && let Some(Some(waiting)) = sched.notifies.get_mut(n.0 as usize)
        && waiting.waiter == Some(id)
    {
        waiting.waiter = None;
    }
    sched.make_ready(id, masked);
    program_timer(sched, masked);
}

extern "C" fn thread_entry() -> ! {
    let entry = SCHED.lock().as_mut().and_then(|s| {
        let id = s.current[cpu_index()]?;
        s.thread(id)?.entry.take()
    });
    if let Some(f) = entry {
        f();
    }
    exit()
}

/// Ends the calling thread.
pub fn exit() -> ! {
    loop {
        cpu::kernel_call(op::EXIT, 0, 0);
    }
}

/// Gives up the CPU to the next ready thread.
pub fn yield_now() {
    cpu::kernel_call(op::YIELD, 0, 0);
}

/// Sleeps until `deadline_ns` (monotonic, see `time::now_ns`).
pub fn sleep_until(deadline_ns: u64) {
    while time::now_ns() < deadline_ns && !current_user_killed() {
        cpu::kernel_call(op::SLEEP, deadline_ns, 0);
    }
}

/// Sleeps until `deadline_ns` even if the thread was killed: for a dying process's own
/// teardown, which must wait for its devices to stop before it frees their memory.
pub fn sleep_until_uninterruptible(deadline_ns: u64) {
    while time::now_ns() < deadline_ns {
        cpu::kernel_call(op::SLEEP, deadline_ns, 0);
    }
}

/// Sleeps for `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    sleep_until(time::now_ns().saturating_add(ns));
}

/// The kernel-call handler, run from the sync trap with IRQs masked. Returns the frame
/// to resume.
pub fn kernel_call(frame: &mut TrapFrame, masked: &IrqsMasked) -> *mut TrapFrame {
    let (op, a1, a2) = (frame.x[0], frame.x[1], frame.x[2]);
    let mut guard = SCHED.lock();
    let Some(sched) = guard.as_mut() else {
        return frame;
    };
    let cpu = cpu_index();
    sched.finish_switch(cpu);
    let Some(me) = sched.current[cpu] else {
        return frame;
    };
    let now = time::now_ns();
    let new_state = match op {
        op::WAIT => wait_state(sched, me, a1, a2, now),
        op::SLEEP if a1 > now => Some(State::Waiting {
            notify: None,
            deadline: a1,
        }),
        op::EXIT => Some(State::Dead),
        op::YIELD | op::SLEEP => Some(State::Ready),
        _ => None,
    };
    match new_state {
        None => frame,
        Some(state) => switch_locked(sched, frame, state, masked),
    }
}

/// Called at the end of every IRQ (IRQs masked): expires timeouts and preempts if another
/// thread is ready. Returns the frame to resume.
pub fn on_interrupt_exit(frame: &mut TrapFrame, masked: &IrqsMasked) -> *mut TrapFrame {
    profile::record(frame);
    let mut guard = SCHED.lock();
    let Some(sched) = guard.as_mut() else {
        return frame;
    };
    let cpu = cpu_index();
    sched.finish_switch(cpu);
    sched.expire(time::now_ns(), masked);
    if !sched.should_switch(cpu) {
        program_timer(sched, masked);
        return frame;
    }
    switch_locked(sched, frame, State::Ready, masked)
}

fn switch_locked(
    sched: &mut Sched,
    frame: &mut TrapFrame,
    state: State,
    masked: &IrqsMasked,
) -> *mut TrapFrame {
    let cpu = cpu_index();
    let me = sched.current[cpu].unwrap_or(ThreadId(0));
    let is_idle = Some(me) == sched.idle[cpu];
    let frame_ptr: *mut TrapFrame = frame;
    let now = time::now_ns();
    let ran = now.saturating_sub(sched.since[cpu]);
    if is_idle {
        sched.idle_ns[cpu] += ran;
    } else {
        sched.busy_ns[cpu] += ran;
    }
    sched.since[cpu] = now;
    if let Some(t) = sched.thread(me) {
        t.frame = frame_ptr as usize;
        t.state = state;
        t.run_ns += ran;
        if let Some(u) = t.user.as_mut() {
            fp::save(&mut u.fp);
        }
    }
    if state == State::Ready && !is_idle {
        sched.runq[cpu].push_back(me);
    }
    // A dead thread's stack is still ours until this CPU's next exception entry.
    if state == State::Dead
        && let Some(pos) = sched.threads.iter().position(|t| t.id == me)
        && let Some(s) = sched.threads.swap_remove(pos).stack
    {
        sched.reap[cpu].push(s);
    }
    let next = sched.pick(masked);
    sched.current[cpu] = Some(next);
    sched.switches += 1;
    if next != me && state != State::Dead {
        sched.prev[cpu] = Some(me);
    }
    let resume = match sched.thread(next) {
        Some(t) => {
            t.state = State::Running;
            t.cpu = cpu;
            t.on_cpu = true;
            t.switches_in += 1;
            match t.user.as_ref() {
                Some(u) => {
                    cpu::set_ttbr0(u.ttbr0);
                    fp::restore(&u.fp);
                }
                None => cpu::set_ttbr0_kernel(mmu::empty_ttbr0()),
            }
            t.frame
        }
        None => frame_ptr as usize,
    };
    program_timer(sched, masked);
    resume as *mut TrapFrame
}

/// Programs the next timer interrupt: a time slice if others are waiting to run, else
/// the earliest timeout, else nothing (tickless idle).
fn program_timer(sched: &Sched, _masked: &IrqsMasked) {
    let cpu = cpu_index();
    let now = time::now_ns();
    let slice = sched.should_switch(cpu).then(|| now + sched.slice_ns);
    let deadline = [
        slice,
        sched.earliest_deadline(),
        crate::timer::periodic_deadline(now),
    ]
    .into_iter()
    .flatten()
    .min();
    crate::timer::program(deadline);
}

/// Calls `f` with each thread (the monitor's `threads`, `/proc/threads`).
pub fn for_each_thread(mut f: impl FnMut(&ThreadView)) {
    if let Some(sched) = SCHED.lock().as_ref() {
        for t in &sched.threads {
            let state = match t.state {
                State::Ready => "ready",
                State::Running => "running",
                State::Waiting { .. } => "waiting",
                State::Dead => "dead",
            };
            f(&ThreadView {
                id: t.id,
                name: t.name,
                state,
                switches_in: t.switches_in,
                run_ns: t.run_ns,
                pid: t.user.as_ref().map(|u| u.pid),
            });
        }
    }
}

/// One thread as `for_each_thread` shows it (`/proc/threads`, the monitor's `threads`).
#[derive(Clone)]
pub struct ThreadView {
    pub id: ThreadId,
    pub name: &'static str,
    pub state: &'static str,
    /// Times it was switched to.
    pub switches_in: u64,
    /// CPU time it ran, up to its last switch out.
    pub run_ns: u64,
    /// The process a user thread runs.
    pub pid: Option<u32>,
}

/// Total context switches so far.
pub fn switches() -> u64 {
    SCHED.lock().as_ref().map_or(0, |s| s.switches)
}

/// Whether thread `id` still exists (not exited).
pub fn alive(id: ThreadId) -> bool {
    SCHED
        .lock()
        .as_ref()
        .is_some_and(|s| s.threads.iter().any(|t| t.id == id))
}
