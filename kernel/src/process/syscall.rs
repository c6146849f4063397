//! The system call layer: `svc #0` from EL0, decoded, then one handler per call.
//!
//! `decode` turns the registers into a typed `Call` (an unknown number is `ENOSYS`,
//! counted; every flag, right and protection checked for form); this module runs it
//! against the calling process and puts the answer in `x0` (0 or a negative
//! `abi::Error`) and `x1`-`x3`. Every user pointer is checked through
//! `user::UserSlice`/`UserPtr` and copied with the user-permission accessors, so a bad
//! one is `EFAULT` and never a kernel fault. Handlers run with interrupts enabled on the
//! calling thread's kernel stack (they may block and be preempted); a process killed
//! meanwhile ends before it would return to user space (docs/abi.md lists the calls).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use abi::proc::{GrantSpec, MAX_ARG_BYTES, MAX_ARGS, MAX_GRANTS, OPEN_READ, OPEN_WRITE};
use abi::{CapType, Error, Handle, Rights};

use super::counters;
use super::decode::{Call, GrantMode, MemAccess, PowerAction, decode};
use super::devcalls as device;
use super::file::{File, Object};
use super::table::{self, Grant, Process};
use super::user::{UserPtr, UserRange, UserSlice};
use crate::arch::cpu;
use crate::arch::usercopy::{copy_from_user, copy_to_user};
use crate::arch::uspace::UserAccess;
use crate::arch::vectors::TrapFrame;
use crate::{sched, time};

/// Results of a handler: `x1`-`x3`, or the error for `x0`.
type Ret = Result<[u64; 3], Error>;

/// What a call produced beyond results and errors: the end of the calling process.
enum Stop {
    /// The call failed.
    Fail(Error),
    /// The process ends with this status (exit, kill of itself).
    Exit(i32),
}

/// Entry from the sync trap (EC SVC from EL0), IRQs masked. Returns with them masked.
pub fn entry(frame: &mut TrapFrame) {
    cpu::enable_irqs();
    // The process is only borrowed inside this block: the exit paths below never
    // return, so nothing of it may stay on this stack (an `Arc` left here would leak).
    let result = match table::current() {
        Some(p) => {
            p.syscalls.fetch_add(1, Ordering::Relaxed);
            run(&p, frame)
        }
        None => Err(Stop::Fail(Error::ESRCH)),
    };
    match result {
        Err(Stop::Exit(status)) => table::exit_current(status),
        Ok(r) => {
            frame.x[0] = 0;
            frame.x[1..4].copy_from_slice(&r);
        }
        Err(Stop::Fail(e)) => {
            counters::error(e);
            frame.x[0] = e.as_i32() as i64 as u64;
        }
    }
    if sched::current_user_killed() {
        table::exit_current(table::current_kill_status());
    }
    let _ = cpu::save_and_mask_irqs();
}

fn run(p: &Arc<Process>, f: &TrapFrame) -> Result<[u64; 3], Stop> {
    let a = [f.x[0], f.x[1], f.x[2], f.x[3], f.x[4], f.x[5]];
    let known = u32::try_from(f.x[8]).is_ok_and(|n| abi::Sysnum::try_from(n).is_ok());
    counters::call(f.x[8], known);
    let call = decode(f.x[8], a).map_err(Stop::Fail)?;
    dispatch(p, call)
}

/// One `match`: each call to its handler.
fn dispatch(p: &Arc<Process>, call: Call) -> Result<[u64; 3], Stop> {
    let r: Ret = match call {
        Call::Exit { status } => return Err(Stop::Exit(status)),
        Call::Kill { pid } if pid == p.pid => return Err(Stop::Exit(table::KILLED)),
        Call::Spawn {
            path,
            args,
            grants,
            grant_count,
        } => spawn(p, path, args, grants, grant_count),
        Call::Wait { pid, nohang } => table::wait(p, pid, nohang)
            .map(|(pid, status, dev)| [u64::from(pid), status as u32 as u64, u64::from(dev)]),
        Call::Kill { pid } => table::kill(pid).map(|()| [0; 3]),
        Call::GetPid => Ok([u64::from(p.pid), 0, 0]),
        Call::Yield => {
            sched::yield_now();
            Ok([0; 3])
        }
        Call::MemMap { len, access } => mem_map(p, len, access),
        Call::MemUnmap { addr, len } => mem_unmap(p, addr, len),
        Call::CapDrop { handle } => device::drop_cap(p, handle),
        Call::CapGrant {
            pid,
            handle,
            rights,
            mode,
        } => cap_grant(p, pid, handle, rights, mode),
        Call::CapReplace { handle, rights } => {
            table::with_caps(p, |caps| caps.restrict(handle, rights)).map(|()| [0; 3])
        }
        Call::CapInfo { handle } => table::with_caps(p, |caps| {
            let (ty, rights) = caps.info(handle)?;
            let state = device::state_of(caps.get(handle, ty, Rights::empty())?);
            Ok([ty as u64, u64::from(rights.bits()), state])
        }),
        Call::ClockNow => Ok([time::now_ns(), 0, 0]),
        Call::SleepUntil { deadline } => sleep_until(deadline),
        Call::NotifyWait { mask, deadline } => {
            table::notify_wait(p, mask, deadline).map(|b| [b, 0, 0])
        }
        Call::NotifyPost { handle, bits } => notify_post(p, handle, bits),
        Call::NotifyCap => notify_cap(p),
        Call::Open { path, flags } => open(p, path, flags),
        Call::Read {
            handle,
            buf,
            deadline,
        } => read(p, handle, buf, deadline),
        Call::Write { handle, buf } => write(p, handle, buf),
        Call::ConsoleFg { handle, pid } => console_fg(p, handle, pid),
        Call::Power { handle, action } => power(p, handle, action),
        Call::SockOpen { proto, events } => super::net::open(p, proto, events),
        Call::Bind { handle, addr, port } => super::net::bind(p, handle, addr, port),
        Call::Connect {
            handle,
            addr,
            port,
            deadline,
        } => super::net::connect(p, handle, addr, port, deadline),
        Call::Listen { handle, backlog } => super::net::listen(p, handle, backlog),
        Call::Accept { handle, deadline } => super::net::accept(p, handle, deadline),
        Call::SendTo {
            handle,
            buf,
            addr,
            port,
            deadline,
        } => super::net::send_to(p, handle, buf, addr, port, deadline),
        Call::RecvFrom {
            handle,
            buf,
            deadline,
        } => super::net::recv_from(p, handle, buf, deadline),
        Call::Shutdown { handle } => super::net::shutdown(p, handle),
        Call::DevInfo { handle, buf } => device::info(p, handle, buf),
        Call::DevIrq { handle, index, bit } => device::irq(p, handle, index, bit),
        Call::Irq { handle, op } => device::irq_op(p, handle, op),
        Call::IrqWait { handle, deadline } => device::irq_wait(p, handle, deadline),
        Call::MmioMap {
            handle,
            bar,
            offset,
            len,
        } => device::mmio_map(p, handle, bar, offset, len),
        Call::DmaAlloc {
            handle,
            len,
            dir,
            mask_bits,
        } => device::dma_alloc(p, handle, len, dir, mask_bits),
        Call::DevBusMaster { handle, on } => device::bus_master(p, handle, on),
        Call::DevReset { handle } => device::reset(p, handle),
        Call::DevCfgRead { handle, offset } => device::cfg_read(p, handle, offset),
        Call::NetifOpen { handle, bit, mac } => device::netif_open(p, handle, bit, mac),
        Call::NetifKick { handle, polling } => device::netif_kick(p, handle, polling),
    };
    r.map_err(Stop::Fail)
}

/// Copies user bytes of at most `max`.
fn user_bytes(s: UserSlice, max: usize) -> Result<Vec<u8>, Error> {
    let range = s.check(max)?;
    let mut buf = alloc::vec![0u8; range.len];
    copy_from_user(&mut buf, range.addr).map_err(|_| Error::EFAULT)?;
    Ok(buf)
}

fn user_str(s: UserSlice, max: usize) -> Result<alloc::string::String, Error> {
    alloc::string::String::from_utf8(user_bytes(s, max)?).map_err(|_| Error::EINVAL)
}

fn spawn(
    p: &Arc<Process>,
    path: UserSlice,
    args: UserSlice,
    grants: UserPtr<GrantSpec>,
    count: u64,
) -> Ret {
    let path = user_str(path, 256)?;
    let args = user_bytes(args, MAX_ARG_BYTES)?;
    if !args.is_empty() && args.last() != Some(&0) {
        return Err(Error::EINVAL);
    }
    let argc = args.iter().filter(|&&b| b == 0).count();
    if argc > MAX_ARGS {
        return Err(Error::EINVAL);
    }
    let specs = user_grants(grants, count)?;
    let grants = take_grants(p, &specs)?;
    let pid = table::spawn(p.pid, &path, &args, argc, grants)?;
    Ok([u64::from(pid), 0, 0])
}

fn user_grants(ptr: UserPtr<GrantSpec>, count: u64) -> Result<Vec<GrantSpec>, Error> {
    let range = ptr.check_array(count, MAX_GRANTS)?;
    let mut raw = alloc::vec![0u8; range.len];
    copy_from_user(&mut raw, range.addr).map_err(|_| Error::EFAULT)?;
    Ok(raw
        .chunks_exact(size_of::<GrantSpec>())
        .map(|c| GrantSpec {
            handle: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            rights: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            mode: u32::from_le_bytes([c[8], c[9], c[10], c[11]]),
        })
        .collect())
}

/// Takes the granted objects out of the caller's table (copies stay): all or nothing.
fn take_grants(p: &Process, specs: &[GrantSpec]) -> Result<Vec<Grant>, Error> {
    let mut checked = Vec::new();
    for s in specs {
        let rights = Rights::from_bits(s.rights).ok_or(Error::EINVAL)?;
        let mode = match s.mode {
            abi::proc::GRANT_MOVE => GrantMode::Move,
            abi::proc::GRANT_COPY => GrantMode::Copy,
            _ => return Err(Error::EINVAL),
        };
        checked.push((Handle(s.handle), rights, mode));
    }
    table::with_caps(p, |caps| {
        for &(h, rights, mode) in &checked {
            let (ty, held) = caps.info(h)?;
            if !held.contains(Rights::TRANSFER) || !held.contains(rights) {
                return Err(Error::EACCES);
            }
            if mode == GrantMode::Copy && caps::cspace::is_linear(ty) {
                return Err(Error::EPERM);
            }
            if mode == GrantMode::Move {
                caps.get(h, ty, Rights::empty())?.movable()?;
            }
        }
        let mut out = Vec::new();
        for &(h, rights, mode) in &checked {
            let object = match mode {
                GrantMode::Move => caps.remove(h)?,
                GrantMode::Copy => {
                    let (ty, _) = caps.info(h)?;
                    caps.get(h, ty, Rights::empty())?.clone()
                }
            };
            out.push(Grant { object, rights });
        }
        Ok(out)
    })
}

fn mem_map(p: &Arc<Process>, len: u64, access: MemAccess) -> Ret {
    let access = match access {
        MemAccess::Read => UserAccess::Read,
        MemAccess::ReadWrite => UserAccess::ReadWrite,
        MemAccess::ReadExecute => UserAccess::ReadExecute,
    };
    let len = usize::try_from(len).map_err(|_| Error::EINVAL)?;
    let va = table::with_memory(p, |m| m.map_anonymous(len, access))?;
    Ok([va as u64, 0, 0])
}

fn mem_unmap(p: &Arc<Process>, addr: u64, len: u64) -> Ret {
    let (Ok(addr), Ok(len)) = (usize::try_from(addr), usize::try_from(len)) else {
        return Err(Error::EINVAL);
    };
    match table::with_memory(p, |m| m.unmap_anonymous(addr, len)) {
        Err(Error::EINVAL) => device::unmap_window(p, addr, len).map(|()| [0; 3]),
        r => r.map(|()| [0; 3]),
    }
}

fn cap_grant(p: &Arc<Process>, pid: u32, h: Handle, rights: Rights, mode: GrantMode) -> Ret {
    let target = table::get(pid)
        .filter(|t| !t.is_zombie())
        .ok_or(Error::ESRCH)?;
    if target.pid == p.pid {
        return Err(Error::EINVAL);
    }
    // Take the object out (or copy it) first, then insert: the two tables are never
    // locked together. A moved object the target cannot take comes back to the caller
    // (under a new handle).
    let spec = GrantSpec {
        handle: h.raw(),
        rights: rights.bits(),
        mode: match mode {
            GrantMode::Move => abi::proc::GRANT_MOVE,
            GrantMode::Copy => abi::proc::GRANT_COPY,
        },
    };
    let Some(Grant { object, rights }) = take_grants(p, &[spec])?.into_iter().next() else {
        return Err(Error::EBADH);
    };
    let mut back = None;
    object.moved_to(target.pid);
    let r = table::with_caps(&target, |caps| match caps.insert(object, rights) {
        Ok(h) => Ok(h.raw()),
        Err((object, e)) => {
            back = Some(object);
            Err(e)
        }
    });
    if let (Some(object), GrantMode::Move) = (back, mode) {
        object.moved_to(p.pid);
        let held = rights | Rights::TRANSFER;
        let _ = table::with_caps(p, |caps| caps.insert(object, held).map_err(|(_, e)| e));
    }
    r.map(|new| [u64::from(new), 0, 0])
}

fn sleep_until(deadline: u64) -> Ret {
    while time::now_ns() < deadline {
        sched::sleep_until(deadline);
        if sched::current_user_killed() {
            return Err(Error::ECANCELED);
        }
    }
    Ok([0; 3])
}

fn notify_post(p: &Arc<Process>, h: Handle, bits: u64) -> Ret {
    let target = table::with_caps(p, |caps| {
        match caps.get(h, CapType::Notification, Rights::WRITE)? {
            Object::Notification(owner) => Ok(owner.clone()),
            _ => Err(Error::EWRONGTYPE),
        }
    })?;
    let owner = target.upgrade().ok_or(Error::ESRCH)?;
    table::notify_post(&owner, bits)?;
    Ok([0; 3])
}

fn notify_cap(p: &Arc<Process>) -> Ret {
    let object = Object::Notification(Arc::downgrade(p));
    let h = table::with_caps(p, |caps| {
        caps.insert(object, Rights::WRITE | Rights::TRANSFER)
            .map_err(|(_, e)| e)
    })?;
    Ok([u64::from(h.raw()), 0, 0])
}

fn open(p: &Arc<Process>, path: UserSlice, flags: u32) -> Ret {
    let path = user_str(path, 256)?;
    let (file, mut rights) = super::fs::open(&path, flags)?;
    if flags & OPEN_READ == 0 {
        rights = rights.intersection(Rights::WRITE);
    }
    if flags & OPEN_WRITE == 0 {
        rights = rights.intersection(Rights::READ);
    }
    let h = table::with_caps(p, |caps| {
        caps.insert(Object::File(file), rights | Rights::TRANSFER)
            .map_err(|(_, e)| e)
    })?;
    Ok([u64::from(h.raw()), 0, 0])
}

fn file_op<R>(
    p: &Arc<Process>,
    h: Handle,
    need: Rights,
    f: impl FnOnce(&mut File) -> Result<R, Error>,
) -> Result<R, Error> {
    table::with_caps(p, |caps| match caps.get_mut(h, CapType::File, need)? {
        Object::File(file) => f(file),
        _ => Err(Error::EWRONGTYPE),
    })
}

fn read(p: &Arc<Process>, h: Handle, buf: UserSlice, deadline: u64) -> Ret {
    let range: UserRange = buf.check(1 << 20)?;
    if file_op(p, h, Rights::READ, |f| Ok(f.is_console()))? {
        return super::fs::read_console(range, deadline).map(|n| [n as u64, 0, 0]);
    }
    let mut tmp = alloc::vec![0u8; range.len.min(64 * 1024)];
    let n = file_op(p, h, Rights::READ, |f| f.read(&mut tmp))?;
    copy_to_user(range.addr, &tmp[..n]).map_err(|_| Error::EFAULT)?;
    Ok([n as u64, 0, 0])
}

fn write(p: &Arc<Process>, h: Handle, buf: UserSlice) -> Ret {
    let range = buf.check(1 << 20)?;
    if !file_op(p, h, Rights::WRITE, |f| Ok(f.is_console()))? {
        return Err(Error::EINVAL);
    }
    let mut tmp = alloc::vec![0u8; range.len];
    copy_from_user(&mut tmp, range.addr).map_err(|_| Error::EFAULT)?;
    super::fs::write_console(&tmp);
    Ok([range.len as u64, 0, 0])
}

/// `console_fg`: names the process Ctrl-C ends (the caller or one of its live children),
/// or nobody. Needs a console handle that may read: whoever reads the console decides
/// who it interrupts.
fn console_fg(p: &Arc<Process>, h: Handle, pid: Option<u32>) -> Ret {
    if !file_op(p, h, Rights::READ, |f| Ok(f.is_console()))? {
        return Err(Error::EINVAL);
    }
    let pid = match pid {
        None => abi::proc::NO_FOREGROUND,
        Some(pid) if pid == p.pid => pid,
        Some(pid) => {
            let child = table::get(pid).filter(|c| c.parent() == p.pid && !c.is_zombie());
            child.ok_or(Error::ESRCH)?.pid
        }
    };
    crate::console::input::set_foreground(pid);
    Ok([0; 3])
}

/// `power`: switches the machine off or restarts it, through a `Power` capability.
/// Returns only if the firmware refused (`ENOSYS`: no PSCI).
fn power(p: &Arc<Process>, h: Handle, action: PowerAction) -> Ret {
    table::with_caps(p, |caps| {
        caps.get(h, CapType::Power, Rights::empty()).map(|_| ())
    })?;
    log::info!("pid {} ({}) asked to {action}", p.pid, p.name);
    let e = match action {
        PowerAction::Off => crate::arch::psci::system_off(),
        PowerAction::Reboot => crate::arch::psci::system_reset(),
    };
    log::warn!("{action} refused by the firmware: {e}");
    Err(Error::ENOSYS)
}
