//! Run queues: where a thread made ready runs, and what a CPU picks next.
//!
//! One queue per CPU under the scheduler lock. A thread made ready goes to the waking CPU
//! if that CPU is idle (an interrupt handler woke it), else to an idle CPU (its last one
//! first), else to the least loaded queue, and that CPU gets a reschedule
//! IPI; a CPU with nothing to run steals from the busiest queue. A thread whose stack
//! another CPU may still be leaving (`on_cpu`) stays where it is until that CPU's next
//! exception entry.

use caps::lock::IrqsMasked;

use super::{MAX_CPUS, RESCHEDULE_SGI, Sched, State, Thread, ThreadId, cpu_index};

impl Sched {
    fn cpu_idle(&self, c: usize) -> bool {
        self.online[c] && self.current[c] == self.idle[c] && self.runq[c].is_empty()
    }

    /// Where a thread made ready runs: its CPU while that CPU may still use its stack;
    /// else this CPU if it is idle (an interrupt woke it: the thread runs as soon as the
    /// handler returns, with no IPI); else an idle CPU (its last one first); else the
    /// least loaded.
    fn place(&self, t: &Thread) -> usize {
        if let Some(c) = t.pin {
            return c;
        }
        if t.on_cpu {
            return t.cpu;
        }
        // A reschedule IPI to wake a sleeping CPU costs far more than the woken thread's
        // cache footprint is worth: a driver task follows the CPU its interrupts arrive on.
        let here = cpu_index();
        if self.cpu_idle(here) {
            return here;
        }
        if self.cpu_idle(t.cpu) {
            return t.cpu;
        }
        let online = (0..MAX_CPUS).filter(|&c| self.online[c]);
        if let Some(c) = online.clone().find(|&c| self.cpu_idle(c)) {
            return c;
        }
        online
            .min_by_key(|&c| (self.runq[c].len(), c != t.cpu))
            .unwrap_or(0)
    }

    /// Queues `id` to run. Run-queue operations share the queues with the IRQ path, so
    /// they run with IRQs masked (`_masked`, the `SCHED` guard's token).
    pub(super) fn make_ready(&mut self, id: ThreadId, _masked: &IrqsMasked) {
        let Some(t) = self.thread_ref(id) else { return };
        let target = self.place(t);
        if let Some(t) = self.thread(id) {
            t.state = State::Ready;
        }
        self.runq[target].push_back(id);
        if target != cpu_index() {
            self.kick(target);
        }
    }

    /// `make_ready` on this CPU's queue (unless the thread is pinned elsewhere or still
    /// on another CPU's stack).
    pub(super) fn make_ready_here(&mut self, id: ThreadId, masked: &IrqsMasked) {
        let cpu = cpu_index();
        let Some(t) = self.thread_ref(id) else { return };
        if t.pin.is_some_and(|p| p != cpu) || (t.on_cpu && t.cpu != cpu) {
            return self.make_ready(id, masked);
        }
        if let Some(t) = self.thread(id) {
            t.state = State::Ready;
        }
        self.runq[cpu].push_back(id);
    }

    /// Asks CPU `c` to look at its run queue.
    pub(super) fn kick(&self, c: usize) {
        if self.online[c]
            && let Some(gic) = crate::gic::chip()
        {
            gic.send_sgi(RESCHEDULE_SGI, self.sgi_target[c]);
        }
    }

    /// At every scheduler entry on `cpu`: the thread it switched away from last is no
    /// longer on its stack, and stacks of threads that died here can go.
    pub(super) fn finish_switch(&mut self, cpu: usize) {
        if let Some(p) = self.prev[cpu].take()
            && let Some(t) = self.thread(p)
        {
            t.on_cpu = false;
        }
        self.reap[cpu].clear();
    }

    fn runnable_here(&self, id: ThreadId, cpu: usize) -> bool {
        self.thread_ref(id).is_some_and(|t| {
            t.state == State::Ready && (!t.on_cpu || t.cpu == cpu) && t.pin.is_none_or(|p| p == cpu)
        })
    }

    /// A ready thread from the busiest other queue that `cpu` may run.
    fn steal(&mut self, cpu: usize) -> Option<ThreadId> {
        let victim = (0..MAX_CPUS)
            .filter(|&c| c != cpu && self.online[c])
            .max_by_key(|&c| self.runq[c].len())?;
        let pos = (0..self.runq[victim].len())
            .rev()
            .find(|&i| self.runnable_here(self.runq[victim][i], cpu))?;
        self.runq[victim].remove(pos)
    }

    /// Wakes sleepers and waiters whose deadline passed. Runs on every interrupt exit, so
    /// it allocates nothing (the run queues have their capacity reserved at `init`).
    pub(super) fn expire(&mut self, now: u64, masked: &IrqsMasked) {
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
            self.make_ready(id, masked);
        }
    }

    pub(super) fn earliest_deadline(&self) -> Option<u64> {
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
    pub(super) fn pick(&mut self, _masked: &IrqsMasked) -> ThreadId {
        let cpu = cpu_index();
        let idle = self.idle[cpu];
        let mut skipped: heapless::Vec<ThreadId, 8> = heapless::Vec::new();
        let mut found = None;
        while let Some(id) = self.runq[cpu].pop_front() {
            if Some(id) == idle {
                continue;
            }
            if self.runnable_here(id, cpu) {
                found = Some(id);
                break;
            }
            // Ready but another CPU is still leaving its stack: keep it queued.
            if self.thread_ref(id).is_some_and(|t| t.state == State::Ready)
                && skipped.push(id).is_err()
            {
                self.runq[cpu].push_back(id);
                break;
            }
        }
        for id in skipped.into_iter().rev() {
            self.runq[cpu].push_front(id);
        }
        found
            .or_else(|| self.steal(cpu))
            .or(idle)
            .unwrap_or(ThreadId(0))
    }

    /// Whether this CPU should switch at an interrupt exit: work is queued here, or it
    /// idles while another queue has work it could take.
    pub(super) fn should_switch(&self, cpu: usize) -> bool {
        if !self.runq[cpu].is_empty() {
            return true;
        }
        self.current[cpu] == self.idle[cpu]
            && (0..MAX_CPUS)
                .any(|c| c != cpu && self.runq[c].iter().any(|&id| self.runnable_here(id, cpu)))
    }
}
