//! Kernel threads, a preemptive round-robin scheduler and notifications.
//!
//! Every switch happens on the exception-return path: the trap handler saves the
//! interrupted frame pointer in the current thread and returns the next thread's
//! frame (see `arch::vectors`). Threads enter the scheduler voluntarily with a
//! kernel call (`svc` from EL1) — yield, wait on a notification, sleep, exit —
//! or involuntarily from the timer interrupt. Blocking is decided inside the trap
//! handler with IRQs masked, so "check pending, then sleep" cannot lose a post.
//! Run queues are per CPU (only CPU 0 schedules for now).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::arch::stack::{self, KernelStack};
use crate::arch::vectors::TrapFrame;
use crate::arch::{cpu, fp, mmu};
use crate::sync::IrqLock;
use crate::time;

/// Maximum CPUs the run-queue array is sized for.
pub const MAX_CPUS: usize = 8;

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

#[derive(Default)]
struct Notify {
    pending: u64,
    waiter: Option<ThreadId>,
    posts: u64,
}

struct Sched {
    threads: Vec<Thread>,
    runq: [VecDeque<ThreadId>; MAX_CPUS],
    current: [Option<ThreadId>; MAX_CPUS],
    idle: [Option<ThreadId>; MAX_CPUS],
    notifies: Vec<Option<Notify>>,
    reap: Vec<KernelStack>,
    next_id: u32,
    switches: u64,
    slice_ns: u64,
    /// Time CPU 0 spent in its idle thread, and since when it runs it (if it does).
    idle_ns: u64,
    idle_since: Option<u64>,
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
    0
}

impl Sched {
    fn thread(&mut self, id: ThreadId) -> Option<&mut Thread> {
        self.threads.iter_mut().find(|t| t.id == id)
    }

    fn make_ready(&mut self, id: ThreadId) {
        if let Some(t) = self.thread(id) {
            t.state = State::Ready;
            self.runq[cpu_index()].push_back(id);
        }
    }

    /// Wakes sleepers and waiters whose deadline passed. Runs on every interrupt exit, so
    /// it allocates nothing (the run queues have their capacity reserved at `init`).
    fn expire(&mut self, now: u64) {
        for i in 0..self.threads.len() {
            let t = &mut self.threads[i];
            let State::Waiting { notify, deadline } = t.state else {
                continue;
            };
            if deadline > now {
                continue;
            }
            let id = t.id;
            if let Some(n) = notify {
                t.woken_with = None;
                if let Some(Some(waiting)) = self.notifies.get_mut(n.0 as usize) {
                    waiting.waiter = None;
                }
            }
            self.make_ready(id);
        }
    }

    fn earliest_deadline(&self) -> Option<u64> {
        self.threads
            .iter()
            .filter_map(|t| match t.state {
                State::Waiting { deadline, .. } if deadline != u64::MAX => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Picks the next thread for this CPU; the current one must already be requeued,
    /// blocked or dead.
    fn pick(&mut self) -> ThreadId {
        let cpu = cpu_index();
        let idle = self.idle[cpu];
        while let Some(id) = self.runq[cpu].pop_front() {
            if Some(id) == idle {
                continue;
            }
            if self.thread(id).is_some_and(|t| t.state == State::Ready) {
                return id;
            }
        }
        idle.unwrap_or(ThreadId(0))
    }
}

/// Sets up the scheduler; the caller (boot code) becomes thread "main".
pub fn init(slice_ns: u64) {
    let main = Thread {
        id: ThreadId(0),
        name: "main",
        state: State::Running,
        frame: 0,
        stack: None,
        entry: None,
        woken_with: None,
        switches_in: 0,
        user: None,
    };
    let mut sched = Sched {
        threads: Vec::new(),
        // Each thread is queued at most a few times over; reserving for every possible
        // kernel stack keeps interrupt-path wake-ups from allocating.
        runq: core::array::from_fn(|_| VecDeque::with_capacity(2 * stack::SLOTS)),
        current: [None; MAX_CPUS],
        idle: [None; MAX_CPUS],
        notifies: Vec::new(),
        reap: Vec::with_capacity(stack::SLOTS),
        next_id: 1,
        switches: 0,
        slice_ns,
        idle_ns: 0,
        idle_since: None,
    };
    sched.threads.push(main);
    sched.current[0] = Some(ThreadId(0));
    *SCHED.lock() = Some(sched);
    if let Ok(idle) = spawn("idle", idle_loop)
        && let Some(s) = SCHED.lock().as_mut()
    {
        s.idle[0] = Some(idle);
        s.runq[0].retain(|&t| t != idle);
    }
}

fn idle_loop() {
    loop {
        cpu::wait_for_interrupt();
    }
}

/// Starts a kernel thread running `f`.
pub fn spawn(
    name: &'static str,
    f: impl FnOnce() + Send + 'static,
) -> Result<ThreadId, SchedError> {
    let stack = stack::alloc().ok_or(SchedError::NoStack)?;
    let frame = stack::initial_frame(&stack, thread_entry as *const () as usize);
    let mut guard = SCHED.lock();
    let sched = guard.as_mut().ok_or(SchedError::NotReady)?;
    let id = ThreadId(sched.next_id);
    sched.next_id += 1;
    sched.threads.push(Thread {
        id,
        name,
        state: State::Ready,
        frame,
        stack: Some(stack),
        entry: Some(Box::new(f)),
        woken_with: None,
        switches_in: 0,
        user: None,
    });
    sched.runq[cpu_index()].push_back(id);
    program_timer(sched);
    Ok(id)
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
    let stack = stack::alloc().ok_or(SchedError::NoStack)?;
    let frame = stack::initial_user_frame(&stack, entry, sp, arg);
    let user = Box::new(UserCtx {
        pid,
        ttbr0,
        fp: fp::FpState::default(),
        killed: false,
    });
    let mut guard = SCHED.lock();
    let sched = guard.as_mut().ok_or(SchedError::NotReady)?;
    let id = ThreadId(sched.next_id);
    sched.next_id += 1;
    sched.threads.push(Thread {
        id,
        name: "user",
        state: State::Ready,
        frame,
        stack: Some(stack),
        entry: None,
        woken_with: None,
        switches_in: 0,
        user: Some(user),
    });
    sched.runq[cpu_index()].push_back(id);
    program_timer(sched);
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

/// Marks user thread `id` killed and wakes it from any wait (see [`interrupt`]).
pub fn kill_thread(id: ThreadId) {
    if let Some(u) = SCHED
        .lock()
        .as_mut()
        .and_then(|s| s.thread(id))
        .and_then(|t| t.user.as_mut())
    {
        u.killed = true;
    }
    interrupt(id);
}

/// Wakes thread `id` if it is blocked in a wait or sleep: the wait returns as if it had
/// timed out. The caller has recorded why (a kill), which the woken code checks.
pub fn interrupt(id: ThreadId) {
    let mut guard = SCHED.lock();
    let Some(sched) = guard.as_mut() else { return };
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
    sched.make_ready(id);
    program_timer(sched);
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

/// Sleeps for `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    sleep_until(time::now_ns().saturating_add(ns));
}

/// Creates a notification (a word of pending bits plus at most one waiter).
pub fn notify_create() -> Result<NotifyId, SchedError> {
    let mut guard = SCHED.lock();
    let sched = guard.as_mut().ok_or(SchedError::NotReady)?;
    let index = match sched.notifies.iter().position(Option::is_none) {
        Some(i) => i,
        None => {
            sched.notifies.push(None);
            sched.notifies.len() - 1
        }
    };
    sched.notifies[index] = Some(Notify::default());
    Ok(NotifyId(index as u32))
}

/// A notification that is destroyed when dropped, for a driver that owns one.
#[derive(Debug)]
pub struct OwnedNotify(NotifyId);

impl OwnedNotify {
    /// Creates the notification.
    pub fn new() -> Result<Self, SchedError> {
        notify_create().map(OwnedNotify)
    }

    /// Its identity, to post to or wait on.
    pub fn id(&self) -> NotifyId {
        self.0
    }
}

impl Drop for OwnedNotify {
    fn drop(&mut self) {
        notify_destroy(self.0);
    }
}

/// Destroys a notification; a thread waiting on it wakes with no bits.
pub fn notify_destroy(id: NotifyId) {
    let mut guard = SCHED.lock();
    let Some(sched) = guard.as_mut() else {
        return;
    };
    let waiter = sched.notifies.get_mut(id.0 as usize).and_then(Option::take);
    if let Some(w) = waiter.and_then(|n| n.waiter) {
        {
            if let Some(t) = sched.thread(w) {
                t.woken_with = Some(0);
            }
            sched.make_ready(w);
        }
    }
}

/// Sets `bits` in the notification and wakes its waiter. Safe from interrupt context.
pub fn notify_post(id: NotifyId, bits: u64) -> Result<(), SchedError> {
    let mut guard = SCHED.lock();
    let sched = guard.as_mut().ok_or(SchedError::NotReady)?;
    let n = sched
        .notifies
        .get_mut(id.0 as usize)
        .and_then(Option::as_mut);
    let n = n.ok_or(SchedError::BadNotify)?;
    n.pending |= bits;
    n.posts += 1;
    if let Some(w) = n.waiter.take() {
        let bits = core::mem::take(&mut n.pending);
        if let Some(t) = sched.thread(w) {
            t.woken_with = Some(bits);
        }
        sched.make_ready(w);
        // From thread context nobody else reprograms the timer: give the woken thread
        // a time slice (in IRQ context the exit path does this again, harmlessly).
        program_timer(sched);
    }
    Ok(())
}

/// Blocks until the notification has bits (returned and cleared) or `deadline_ns` passes.
pub fn notify_wait(id: NotifyId, deadline_ns: u64) -> Result<u64, TimedOut> {
    cpu::kernel_call(op::WAIT, u64::from(id.0), deadline_ns);
    let mut guard = SCHED.lock();
    let sched = guard.as_mut().ok_or(TimedOut)?;
    let me = sched.current[cpu_index()].ok_or(TimedOut)?;
    sched
        .thread(me)
        .and_then(|t| t.woken_with.take())
        .ok_or(TimedOut)
}

/// The kernel-call handler, run from the sync trap with IRQs masked. Returns the frame
/// to resume.
pub fn kernel_call(frame: &mut TrapFrame) -> *mut TrapFrame {
    let (op, a1, a2) = (frame.x[0], frame.x[1], frame.x[2]);
    let mut guard = SCHED.lock();
    let Some(sched) = guard.as_mut() else {
        return frame;
    };
    let cpu = cpu_index();
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
        Some(state) => switch_locked(sched, frame, state),
    }
}

fn wait_state(sched: &mut Sched, me: ThreadId, id: u64, deadline: u64, now: u64) -> Option<State> {
    let notify = NotifyId(id as u32);
    let slot = sched.notifies.get_mut(id as usize).and_then(Option::as_mut);
    let Some(n) = slot else {
        return None; // bad id: return at once, woken_with stays None → timeout-like error
    };
    if n.pending != 0 {
        let bits = core::mem::take(&mut n.pending);
        sched.thread(me)?.woken_with = Some(bits);
        return None;
    }
    if deadline <= now {
        return None;
    }
    n.waiter = Some(me);
    Some(State::Waiting {
        notify: Some(notify),
        deadline,
    })
}

/// Called at the end of every IRQ: expires timeouts and preempts if another thread is
/// ready. Returns the frame to resume.
pub fn on_interrupt_exit(frame: &mut TrapFrame) -> *mut TrapFrame {
    let mut guard = SCHED.lock();
    let Some(sched) = guard.as_mut() else {
        return frame;
    };
    sched.expire(time::now_ns());
    if sched.runq[cpu_index()].is_empty() {
        program_timer(sched);
        return frame;
    }
    switch_locked(sched, frame, State::Ready)
}

fn switch_locked(sched: &mut Sched, frame: &mut TrapFrame, state: State) -> *mut TrapFrame {
    let cpu = cpu_index();
    let me = sched.current[cpu].unwrap_or(ThreadId(0));
    let is_idle = Some(me) == sched.idle[cpu];
    let frame_ptr: *mut TrapFrame = frame;
    if let Some(t) = sched.thread(me) {
        t.frame = frame_ptr as usize;
        t.state = state;
        if let Some(u) = t.user.as_mut() {
            fp::save(&mut u.fp);
        }
    }
    if state == State::Ready && !is_idle {
        sched.runq[cpu].push_back(me);
    }
    // Stacks of threads that died earlier are no longer in use: free them now.
    sched.reap.clear();
    if state == State::Dead
        && let Some(pos) = sched.threads.iter().position(|t| t.id == me)
        && let Some(s) = sched.threads.swap_remove(pos).stack
    {
        sched.reap.push(s);
    }
    let next = sched.pick();
    sched.current[cpu] = Some(next);
    sched.switches += 1;
    if next != me {
        let now = time::now_ns();
        if let Some(since) = sched.idle_since.take() {
            sched.idle_ns += now.saturating_sub(since);
        }
        if Some(next) == sched.idle[cpu] {
            sched.idle_since = Some(now);
        }
    }
    let resume = match sched.thread(next) {
        Some(t) => {
            t.state = State::Running;
            t.switches_in += 1;
            match t.user.as_ref() {
                Some(u) => {
                    cpu::set_ttbr0(u.ttbr0);
                    fp::restore(&u.fp);
                }
                None => cpu::set_ttbr0(mmu::empty_ttbr0()),
            }
            t.frame
        }
        None => frame_ptr as usize,
    };
    program_timer(sched);
    resume as *mut TrapFrame
}

/// Programs the next timer interrupt: a time slice if others are waiting to run, else
/// the earliest timeout, else nothing (tickless idle).
fn program_timer(sched: &Sched) {
    let cpu = cpu_index();
    let now = time::now_ns();
    let slice = (!sched.runq[cpu].is_empty()).then(|| now + sched.slice_ns);
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

/// One line per thread, for the monitor: (id, name, state, times scheduled).
pub fn for_each_thread(mut f: impl FnMut(ThreadId, &'static str, &'static str, u64)) {
    if let Some(sched) = SCHED.lock().as_ref() {
        for t in &sched.threads {
            let state = match t.state {
                State::Ready => "ready",
                State::Running => "running",
                State::Waiting { .. } => "waiting",
                State::Dead => "dead",
            };
            f(t.id, t.name, state, t.switches_in);
        }
    }
}

/// Nanoseconds CPU 0 has spent in its idle thread (waiting for an interrupt, and the
/// interrupts taken there): wall time minus this is the time threads ran.
pub fn idle_ns() -> u64 {
    SCHED.lock().as_ref().map_or(0, |s| {
        s.idle_ns + s.idle_since.map_or(0, |t| time::now_ns().saturating_sub(t))
    })
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
