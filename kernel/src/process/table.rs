//! The process table and the lifecycle: spawn, exit, wait, kill.
//!
//! A process is one user thread, an address space ([`Memory`]), a capability table and
//! its place in the tree of parents and children. `spawn` builds all of it from an
//! initrd executable before the thread first runs (no `fork`: nothing is inherited but
//! the capabilities granted explicitly). `exit` runs on the dying thread itself: it
//! leaves its address space, frees memory, tables and capabilities at once (in the
//! capability teardown order), hands its children to init (or to the kernel's
//! pseudo-process 0 before init exists), and becomes a zombie that only keeps its exit
//! status until its parent's `wait` reaps it; its kernel stack is freed after the
//! scheduler switched away from it. The order is written out in docs/process.md.
//!
//! Pid 0 is the kernel: the parent of processes the kernel starts (init, tests) and
//! the reaper of orphans while there is no init.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use abi::proc::{
    MAX_ARG_BYTES, MAX_GRANTS, STARTUP_MAGIC, STARTUP_VERSION, STATUS_INTERRUPTED, STATUS_KILLED,
    StartupGrant, StartupRecord,
};
use abi::{Error, Rights};
use caps::cspace::CSpace;

use super::elf;
use super::file::{Contents, File, Object};
use super::memory::{Memory, STACK_TOP};
use crate::sched::{self, OwnedNotify, ThreadId};
use crate::sync::IrqLock;

/// Capability slots per process.
pub const CAP_SLOTS: usize = 64;
/// A process's capability table.
pub type Caps = CSpace<Object, CAP_SLOTS>;

/// One process.
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// Its program (the path it was started from).
    pub name: heapless::String<48>,
    inner: IrqLock<Inner>,
    /// Posted when a child exits or this process is killed (`wait` blocks on it).
    children_event: OwnedNotify,
    /// The notification word `notify_wait` waits on and `notify_post` sets bits in.
    events: OwnedNotify,
    /// System calls made.
    pub syscalls: AtomicU64,
    /// When it started (ns since boot).
    pub started_ns: u64,
}

struct Inner {
    parent: u32,
    children: Vec<u32>,
    /// `Some` once it exited (a zombie until reaped).
    exit_status: Option<i32>,
    thread: Option<ThreadId>,
    memory: Option<Memory>,
    caps: Option<Box<Caps>>,
    /// A pending kill: the status the process ends with.
    killed: Option<i32>,
    /// Handed to the kernel (pid 0) when its parent ended and there was no init: nobody
    /// will `wait` for it, so its exit reaps it at once.
    adopted_by_kernel: bool,
    /// The parent's handle of the first device this process gave back when it ended.
    returned_device: Option<u32>,
}

static TABLE: IrqLock<BTreeMap<u32, Arc<Process>>> = IrqLock::new(BTreeMap::new());
/// Pid 1 is init's alone (`spawn_init`): every other process counts from 2, so a test
/// that runs without init never has a process `kill` treats as init.
static NEXT_PID: AtomicU32 = AtomicU32::new(2);
/// Init's pid.
pub const INIT_PID: u32 = 1;
static INITRD: spin::Once<super::initrd::Initrd> = spin::Once::new();

/// Counters for `/proc/stat`.
pub static SPAWNED: AtomicU64 = AtomicU64::new(0);
/// Processes that ended (exit, kill, fault).
pub static EXITED: AtomicU64 = AtomicU64::new(0);

/// Installs the initrd (boot) and creates the kernel's pseudo-process 0.
pub fn init(initrd: Option<&'static [u8]>) {
    if let Some(bytes) = initrd {
        match super::initrd::Initrd::new(bytes) {
            Ok(rd) if rd.is_empty() => log::warn!("initrd: the archive holds no files"),
            Ok(rd) => {
                log::info!("initrd: {} files, {} KiB", rd.len(), bytes.len() >> 10);
                INITRD.call_once(|| rd);
            }
            Err(_) => log::warn!("initrd: not a valid tar archive; no programs to run"),
        }
    }
    if let Ok(kernel) = new_process(0, 0, "kernel") {
        TABLE.lock().insert(0, Arc::new(kernel));
    }
    crate::console::input::set_interrupt_handler(interrupt);
}

/// The initrd, if the machine booted with a valid one.
pub fn initrd() -> Option<&'static super::initrd::Initrd> {
    INITRD.get()
}

fn new_process(pid: u32, parent: u32, name: &str) -> Result<Process, Error> {
    let mut n = heapless::String::new();
    for c in name.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    Ok(Process {
        pid,
        name: n,
        inner: IrqLock::new(Inner {
            parent,
            children: Vec::new(),
            exit_status: None,
            thread: None,
            memory: None,
            caps: None,
            killed: None,
            adopted_by_kernel: false,
            returned_device: None,
        }),
        children_event: OwnedNotify::new().map_err(|_| Error::ENOMEM)?,
        events: OwnedNotify::new().map_err(|_| Error::ENOMEM)?,
        syscalls: AtomicU64::new(0),
        started_ns: crate::time::now_ns(),
    })
}

/// Process `pid`, live or zombie.
pub fn get(pid: u32) -> Option<Arc<Process>> {
    TABLE.lock().get(&pid).cloned()
}

/// The process whose thread is running here.
pub fn current() -> Option<Arc<Process>> {
    get(sched::current_pid()?)
}

/// Every process, in pid order.
pub fn all() -> Vec<Arc<Process>> {
    TABLE.lock().values().cloned().collect()
}

fn alloc_pid() -> u32 {
    loop {
        let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
        if pid > INIT_PID && !TABLE.lock().contains_key(&pid) {
            return pid;
        }
    }
}

/// A capability handed to a new process.
pub struct Grant {
    /// The object.
    pub object: Object,
    /// Its rights in the child.
    pub rights: Rights,
}

/// Starts `path` from the initrd as a child of `parent` with arguments `args` (`argc`
/// NUL-terminated strings) and `grants`. Returns the child's pid. On error nothing is
/// left behind (the grants are dropped; callers that move capabilities take them out
/// only once this succeeded — see `syscall::spawn`).
pub fn spawn(
    parent: u32,
    path: &str,
    args: &[u8],
    argc: usize,
    grants: Vec<Grant>,
) -> Result<u32, Error> {
    spawn_as(alloc_pid, parent, path, args, argc, grants)
}

/// Starts init: `spawn` as pid 1, a child of the kernel (`EBUSY` if pid 1 exists).
pub fn spawn_init(path: &str, args: &[u8], argc: usize, grants: Vec<Grant>) -> Result<u32, Error> {
    if get(INIT_PID).is_some() {
        return Err(Error::EBUSY);
    }
    spawn_as(|| INIT_PID, 0, path, args, argc, grants)
}

fn spawn_as(
    pid: impl FnOnce() -> u32,
    parent: u32,
    path: &str,
    args: &[u8],
    argc: usize,
    grants: Vec<Grant>,
) -> Result<u32, Error> {
    let file = INITRD
        .get()
        .and_then(|rd| rd.find(path))
        .ok_or(Error::ENOENT)?;
    let plan = elf::plan(file).map_err(|e| {
        log::debug!("spawn {path}: {e}");
        Error::ENOEXEC
    })?;
    if args.len() > MAX_ARG_BYTES || grants.len() > MAX_GRANTS {
        return Err(Error::EINVAL);
    }
    let mut memory = Memory::new()?;
    memory.load(file, &plan)?;
    memory.add_stack()?;
    let pid = pid();
    let mut caps = Box::new(Caps::new());
    let mut console = |rights| {
        caps_insert(
            &mut caps,
            Object::File(File::new(Contents::Console)),
            rights,
        )
    };
    let console_in = console(Rights::READ | Rights::TRANSFER)?;
    let console_out = console(Rights::WRITE | Rights::TRANSFER)?;
    let mut listed: heapless::Vec<StartupGrant, MAX_GRANTS> = heapless::Vec::new();
    for g in grants {
        g.object.moved_to(pid);
        let cap_type = abi_type(&g.object);
        let handle = caps_insert(&mut caps, g.object, g.rights)?;
        let _ = listed.push(StartupGrant {
            handle,
            cap_type,
            rights: g.rights.bits(),
            reserved: 0,
        });
    }
    let record = StartupRecord {
        magic: STARTUP_MAGIC,
        version: STARTUP_VERSION,
        pid,
        parent,
        console_in,
        console_out,
        argc: argc as u32,
        grant_count: listed.len() as u32,
        ..StartupRecord::default()
    };
    let sp = write_startup(&memory, record, args, &listed)?;
    let ttbr0 = memory.ttbr0();
    let process = new_process(pid, parent, path)?;
    {
        let mut inner = process.inner.lock();
        inner.memory = Some(memory);
        inner.caps = Some(caps);
    }
    let process = Arc::new(process);
    let Some(parent_proc) = get(parent) else {
        return Err(Error::ESRCH);
    };
    TABLE.lock().insert(pid, process.clone());
    parent_proc.inner.lock().children.push(pid);
    match sched::spawn_user(pid, ttbr0, plan.entry, sp as u64, sp as u64) {
        Ok(thread) => {
            // A kill that came between the table insert and here found no thread to wake:
            // it must still end the process before it runs (kill looks for the thread).
            let killed = {
                let mut inner = process.inner.lock();
                inner.thread = Some(thread);
                inner.killed.is_some()
            };
            if killed {
                sched::kill_thread(thread);
            }
        }
        Err(_) => {
            parent_proc.inner.lock().children.retain(|&c| c != pid);
            TABLE.lock().remove(&pid);
            return Err(Error::ENOMEM);
        }
    }
    SPAWNED.fetch_add(1, Ordering::Relaxed);
    log::debug!("spawned pid {pid} ({path}) for {parent}");
    Ok(pid)
}

fn caps_insert(caps: &mut Caps, obj: Object, rights: Rights) -> Result<u32, Error> {
    caps.insert(obj, rights)
        .map(|h| h.raw())
        .map_err(|(_, e)| e)
}

fn abi_type(obj: &Object) -> u32 {
    use caps::cspace::Capability;
    obj.cap_type() as u32
}

/// Writes the arguments, the grant list and the startup record at the top of the stack;
/// returns the initial stack pointer (the record's address, 16-byte aligned).
fn write_startup(
    memory: &Memory,
    mut record: StartupRecord,
    args: &[u8],
    grants: &[StartupGrant],
) -> Result<usize, Error> {
    let stack = memory
        .regions()
        .iter()
        .find(|r| r.kind == super::memory::RegionKind::Stack)
        .ok_or(Error::ENOMEM)?;
    let args_at = (STACK_TOP - args.len()) & !15;
    let grants_at = (args_at - size_of_val(grants)) & !15;
    let record_at = (grants_at - size_of::<StartupRecord>()) & !15;
    record.args = if args.is_empty() { 0 } else { args_at as u64 };
    record.args_len = args.len() as u64;
    record.grants = if grants.is_empty() {
        0
    } else {
        grants_at as u64
    };
    stack.write(args_at - stack.va, args);
    for (i, g) in grants.iter().enumerate() {
        stack.write(
            grants_at - stack.va + i * size_of::<StartupGrant>(),
            as_bytes(g),
        );
    }
    stack.write(record_at - stack.va, as_bytes(&record));
    Ok(record_at)
}

/// The bytes of a plain `repr(C)` record with no padding (checked by `abi`'s size
/// assertions).
fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: `T` is one of abi's `repr(C)` records of u32/u64 fields without padding
    // (their sizes are asserted in `abi::proc`), so every byte is initialised.
    unsafe { core::slice::from_raw_parts(core::ptr::from_ref(v).cast::<u8>(), size_of::<T>()) }
}

/// Runs `f` on the process's capability table (`ESRCH` once it exited).
pub fn with_caps<R>(
    p: &Process,
    f: impl FnOnce(&mut Caps) -> Result<R, Error>,
) -> Result<R, Error> {
    let mut inner = p.inner.lock();
    let caps = inner.caps.as_mut().ok_or(Error::ESRCH)?;
    f(caps)
}

/// Runs `f` on the process's memory (`ESRCH` once it exited).
pub fn with_memory<R>(
    p: &Process,
    f: impl FnOnce(&mut Memory) -> Result<R, Error>,
) -> Result<R, Error> {
    let mut inner = p.inner.lock();
    let memory = inner.memory.as_mut().ok_or(Error::ESRCH)?;
    f(memory)
}

/// Ends the calling process with `status` (on its own thread). Never returns.
pub fn exit_current(status: i32) -> ! {
    if let Some(p) = current() {
        teardown(&p, status);
    }
    sched::exit()
}

/// Frees everything the process holds, hands its children on, and leaves the exit
/// status for its parent.
fn teardown(p: &Arc<Process>, status: i32) {
    sched::leave_address_space();
    crate::console::input::clear_foreground(p.pid);
    let (memory, caps, children, parent) = {
        let mut inner = p.inner.lock();
        inner.thread = None;
        (
            inner.memory.take(),
            inner.caps.take(),
            core::mem::take(&mut inner.children),
            inner.parent,
        )
    };
    // Capabilities and memory go together, in the device teardown order (lines masked,
    // devices stopped, then the address space, then DMA memory, vectors and devices).
    // Devices go back to the parent, which granted them (init restarts a driver so).
    let (mut lines, mut regions, mut devices, mut rest) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    if let Some(mut caps) = caps {
        let rights = device_rights(&caps);
        for o in caps.revoke_all() {
            match o {
                Object::IrqLine(l) => lines.push(l),
                Object::DmaRegion(r) => regions.push(r),
                Object::Device(d) => {
                    let held = rights
                        .iter()
                        .find(|(ptr, _)| *ptr == Arc::as_ptr(&d) as usize)
                        .map_or(Rights::empty(), |&(_, r)| r);
                    devices.push((d, held));
                }
                other => rest.push(other),
            }
        }
    }
    let returned = super::device::teardown(lines, regions, devices, memory);
    drop(rest);
    return_devices(p, parent, returned);
    // Only now is it a zombie a `wait` can reap: whoever waits for it (init restarting a
    // driver, a test granting the device again) finds its devices stopped and returned.
    p.inner.lock().exit_status = Some(status);
    let heir = if get(INIT_PID).is_some_and(|init| init.pid != p.pid && !init.is_zombie()) {
        INIT_PID
    } else {
        0
    };
    let mut reap_now = Vec::new();
    if let Some(h) = get(heir) {
        let mut kept = Vec::new();
        for &c in &children {
            let Some(child) = get(c) else { continue };
            let mut inner = child.inner.lock();
            inner.parent = heir;
            inner.adopted_by_kernel = heir == 0;
            if heir == 0 && inner.exit_status.is_some() {
                reap_now.push(c); // already a zombie: nobody will wait for it
            } else {
                kept.push(c);
            }
        }
        h.inner.lock().children.extend_from_slice(&kept);
        if !kept.is_empty() {
            let _ = sched::notify_post(h.children_event.id(), 1);
        }
    }
    for pid in reap_now {
        TABLE.lock().remove(&pid);
    }
    EXITED.fetch_add(1, Ordering::Relaxed);
    let adopted = p.inner.lock().adopted_by_kernel;
    match get(parent) {
        Some(pp) if !(parent == 0 && adopted) => {
            let _ = sched::notify_post(pp.children_event.id(), 1);
        }
        Some(kernel) => {
            kernel.inner.lock().children.retain(|&c| c != p.pid);
            TABLE.lock().remove(&p.pid);
        }
        None => {
            TABLE.lock().remove(&p.pid);
        }
    }
    log::debug!("pid {} ({}) exited with {status}", p.pid, p.name);
}

/// The rights each device object in `caps` is held with (so a returned device keeps them),
/// by the object's address.
fn device_rights(caps: &Caps) -> Vec<(usize, Rights)> {
    caps.iter()
        .filter(|&(_, ty, _)| ty == abi::CapType::Device)
        .filter_map(|(h, ty, rights)| match caps.get(h, ty, Rights::empty()) {
            Ok(Object::Device(d)) => Some((Arc::as_ptr(d) as usize, rights)),
            _ => None,
        })
        .collect()
}

/// Puts the devices a dying process held back into its parent's table (not the kernel's:
/// with no parent to take them they are released); the first one's handle is what the
/// parent's `wait` reports for this child. A device something still hangs off is released.
fn return_devices(
    p: &Process,
    parent: u32,
    devices: Vec<(Arc<super::device::UserDevice>, Rights)>,
) {
    let parent = get(parent).filter(|pp| pp.pid != 0 && !pp.is_zombie());
    for (dev, rights) in devices {
        if !dev.is_bare() {
            continue;
        }
        let obj = Object::Device(dev);
        let Some(pp) = parent.as_ref() else {
            drop(obj);
            continue;
        };
        obj.moved_to(pp.pid);
        let mut back = None;
        let inserted = with_caps(pp, |caps| {
            caps.insert(obj, rights).map_err(|(obj, e)| {
                back = Some(obj);
                e
            })
        });
        match inserted {
            Ok(h) => {
                let mut inner = p.inner.lock();
                inner.returned_device.get_or_insert(h.raw());
            }
            Err(e) => log::warn!("pid {}: device not returned to its parent: {e}", p.pid),
        }
        drop(back); // released to the kernel
    }
}

impl Process {
    /// Whether it exited and waits to be reaped.
    pub fn is_zombie(&self) -> bool {
        self.inner.lock().exit_status.is_some()
    }

    /// Its parent's pid.
    pub fn parent(&self) -> u32 {
        self.inner.lock().parent
    }

    /// Runs `f` on each mapped region (nothing once exited).
    pub fn for_each_region(&self, mut f: impl FnMut(&super::memory::Region)) {
        if let Some(m) = self.inner.lock().memory.as_ref() {
            m.regions().iter().for_each(&mut f);
        }
    }

    /// The address space's ASID (0 once exited).
    pub fn asid(&self) -> u16 {
        self.inner.lock().memory.as_ref().map_or(0, Memory::asid)
    }

    /// Bytes mapped, page-table frames, capabilities held (0 once exited).
    pub fn usage(&self) -> (usize, usize, usize) {
        let inner = self.inner.lock();
        (
            inner.memory.as_ref().map_or(0, Memory::mapped),
            inner.memory.as_ref().map_or(0, Memory::table_pages),
            inner.caps.as_ref().map_or(0, |c| c.len()),
        )
    }

    /// Whether a kill is pending.
    pub fn killed(&self) -> bool {
        self.inner.lock().killed.is_some()
    }

    /// The status a pending kill ends it with.
    pub fn kill_status(&self) -> Option<i32> {
        self.inner.lock().killed
    }

    /// Its children's pids.
    pub fn children(&self) -> Vec<u32> {
        self.inner.lock().children.clone()
    }
}

/// `wait`: reaps an exited child of `caller` (`want` = its pid, or `None` for any); also
/// returns the handle of a device the child gave back (0: none).
/// Blocks unless `nohang`; `ECHILD` without a matching child, `EAGAIN` with `nohang`
/// while they all run, `ECANCELED` if the caller is killed meanwhile.
pub fn wait(
    caller: &Arc<Process>,
    want: Option<u32>,
    nohang: bool,
) -> Result<(u32, i32, u32), Error> {
    loop {
        let children = caller.children();
        let matching: Vec<u32> = children
            .into_iter()
            .filter(|&c| want.is_none_or(|w| w == c))
            .collect();
        if matching.is_empty() {
            return Err(Error::ECHILD);
        }
        for pid in matching {
            let Some(child) = get(pid) else { continue };
            let (status, device) = {
                let inner = child.inner.lock();
                (inner.exit_status, inner.returned_device)
            };
            if let Some(status) = status {
                caller.inner.lock().children.retain(|&c| c != pid);
                TABLE.lock().remove(&pid);
                return Ok((pid, status, device.unwrap_or(0)));
            }
        }
        if nohang {
            return Err(Error::EAGAIN);
        }
        if caller.killed() {
            return Err(Error::ECANCELED);
        }
        let _ = sched::notify_wait(caller.children_event.id(), u64::MAX);
    }
}

/// The process's notification word (sockets post their event bits there).
pub fn events_word(p: &Process) -> sched::NotifyId {
    p.events.id()
}

/// `notify_wait`: waits until one of `mask`'s bits is set in the process's notification
/// word (or `deadline`, `ETIMEDOUT`); returns those bits and clears them. Bits outside
/// the mask stay set for a later wait.
pub fn notify_wait(p: &Process, mask: u64, deadline: u64) -> Result<u64, Error> {
    let mut kept = 0;
    let result = loop {
        match sched::notify_wait(p.events.id(), deadline) {
            Ok(bits) => {
                kept |= bits & !mask;
                if bits & mask != 0 {
                    break Ok(bits & mask);
                }
            }
            Err(_) if sched::current_user_killed() => break Err(Error::ECANCELED),
            Err(_) => break Err(Error::ETIMEDOUT),
        }
    };
    if kept != 0 {
        let _ = sched::notify_post(p.events.id(), kept);
    }
    result
}

/// `notify_post`: sets `bits` in the process's notification word (`ESRCH` once it ended).
pub fn notify_post(p: &Process, bits: u64) -> Result<(), Error> {
    if p.is_zombie() {
        return Err(Error::ESRCH);
    }
    sched::notify_post(p.events.id(), bits).map_err(|_| Error::ESRCH)
}

/// `kill`: marks `pid` killed and wakes it from any wait; it ends with `STATUS_KILLED`
/// the next time it would return to user space. `EPERM` for init, `ESRCH` for no such
/// live process.
pub fn kill(pid: u32) -> Result<(), Error> {
    kill_with(pid, KILLED)
}

/// Ctrl-C on the console: ends foreground process `pid` with `STATUS_INTERRUPTED`.
pub fn interrupt(pid: u32) {
    if let Err(e) = kill_with(pid, STATUS_INTERRUPTED) {
        log::debug!("Ctrl-C for pid {pid}: {e}");
    }
}

/// The status the calling process ends with now that it was killed.
pub fn current_kill_status() -> i32 {
    current().and_then(|p| p.kill_status()).unwrap_or(KILLED)
}

fn kill_with(pid: u32, status: i32) -> Result<(), Error> {
    if pid == 0 || pid == INIT_PID {
        return Err(Error::EPERM);
    }
    let p = get(pid).ok_or(Error::ESRCH)?;
    let thread = {
        let mut inner = p.inner.lock();
        if inner.exit_status.is_some() {
            return Err(Error::ESRCH);
        }
        inner.killed.get_or_insert(status);
        inner.thread
    };
    if let Some(t) = thread {
        sched::kill_thread(t);
    }
    let _ = sched::notify_post(p.children_event.id(), 1);
    Ok(())
}

/// The status a killed process ends with.
pub const KILLED: i32 = STATUS_KILLED;
