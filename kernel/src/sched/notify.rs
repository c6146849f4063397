//! Notifications: a word of pending bits and at most one waiting thread.
//!
//! What a thread sleeps on until an interrupt handler, another thread or the net task
//! posts to it (`notify_post` is safe from interrupt context). A post with no waiter
//! leaves its bits pending, so the next wait returns at once: "check, then sleep" cannot
//! lose a post, because the wait itself is decided inside the kernel-call trap with IRQs
//! masked (`wait_state`).

use super::{
    NotifyId, SCHED, Sched, SchedError, State, ThreadId, TimedOut, cpu_index, op, program_timer,
};
use crate::arch::cpu;

#[derive(Default)]
pub(super) struct Notify {
    pub(super) pending: u64,
    pub(super) waiter: Option<ThreadId>,
    pub(super) posts: u64,
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
    let (slot, masked) = guard.parts();
    let Some(sched) = slot.as_mut() else {
        return;
    };
    let waiter = sched.notifies.get_mut(id.0 as usize).and_then(Option::take);
    if let Some(w) = waiter.and_then(|n| n.waiter) {
        {
            if let Some(t) = sched.thread(w) {
                t.woken_with = Some(0);
            }
            sched.make_ready(w, masked);
        }
    }
}

/// Sets `bits` in the notification and wakes its waiter. Safe from interrupt context.
pub fn notify_post(id: NotifyId, bits: u64) -> Result<(), SchedError> {
    post(id, bits, false).map(|_| ())
}

/// `notify_post` from a thread that yields next (a synchronous, wake-affine wake-up):
/// the waiter is queued on this CPU, so a consumer runs where its data is and its answer
/// comes back without a cross-CPU wake-up either way. Returns whether a thread was woken.
pub fn notify_post_here(id: NotifyId, bits: u64) -> Result<bool, SchedError> {
    post(id, bits, true)
}

/// Where a thread that posts wants the waiter to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeOn {
    /// This CPU, which the poster gives up next (`notify_post_here`).
    ThisCpu,
    /// Wherever the scheduler places it: an idle CPU first (`notify_post`).
    AnyCpu,
}

/// `notify_post_here` or `notify_post`, as `on` says.
pub fn notify_post_on(id: NotifyId, bits: u64, on: WakeOn) -> Result<(), SchedError> {
    post(id, bits, on == WakeOn::ThisCpu).map(|_| ())
}

fn post(id: NotifyId, bits: u64, here: bool) -> Result<bool, SchedError> {
    let mut guard = SCHED.lock();
    let (slot, masked) = guard.parts();
    let sched = slot.as_mut().ok_or(SchedError::NotReady)?;
    let n = sched
        .notifies
        .get_mut(id.0 as usize)
        .and_then(Option::as_mut);
    let n = n.ok_or(SchedError::BadNotify)?;
    n.pending |= bits;
    n.posts += 1;
    let Some(w) = n.waiter.take() else {
        return Ok(false);
    };
    let bits = core::mem::take(&mut n.pending);
    if let Some(t) = sched.thread(w) {
        t.woken_with = Some(bits);
    }
    if here {
        sched.make_ready_here(w, masked);
    } else {
        sched.make_ready(w, masked);
    }
    // From thread context nobody else reprograms the timer: give the woken thread
    // a time slice (in IRQ context the exit path does this again, harmlessly).
    program_timer(sched, masked);
    Ok(true)
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

pub(super) fn wait_state(
    sched: &mut Sched,
    me: ThreadId,
    id: u64,
    deadline: u64,
    now: u64,
) -> Option<State> {
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
