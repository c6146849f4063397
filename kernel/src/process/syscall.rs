//! The system call layer: `svc #0` from EL0, decoded and dispatched from one `match`.
//!
//! `x8` names the call (`abi::Sysnum`; an unknown number is `ENOSYS`, counted), `x0`-`x5`
//! are its arguments, and the answer goes back in `x0` (0 or a negative `abi::Error`)
//! and `x1`-`x3`. Every user pointer is checked through `user::UserSlice`/`UserPtr` and
//! copied with the user-permission accessors, so a bad one is `EFAULT` and never a
//! kernel fault. Handlers run with interrupts enabled on the calling thread's kernel
//! stack (they may block and be preempted); a process killed meanwhile ends before it
//! would return to user space. One function per call (docs/abi.md lists them).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use abi::proc::{
    GRANT_COPY, GRANT_MOVE, GrantSpec, MAX_ARG_BYTES, MAX_ARGS, MAX_GRANTS, OPEN_FLAGS, OPEN_READ,
    OPEN_WRITE, PROT_ALL, PROT_EXEC, PROT_READ, PROT_WRITE, WAIT_FLAGS, WNOHANG,
};
use abi::{CapType, Error, Handle, Rights, Sysnum};
use alloc::sync::Arc;

use super::file::{File, Object};
use super::table::{self, Grant, Process};
use super::user::{UserPtr, UserSlice};
use crate::arch::cpu;
use crate::arch::usercopy::{copy_from_user, copy_to_user};
use crate::arch::uspace::UserAccess;
use crate::arch::vectors::TrapFrame;
use crate::{sched, time};

/// Calls made, by number (index = `Sysnum` value, 0..0x70).
pub static CALLS: [AtomicU64; 0x70] = [const { AtomicU64::new(0) }; 0x70];
/// Calls with an unknown number.
pub static UNKNOWN: AtomicU64 = AtomicU64::new(0);
/// Failed calls by error (index = -errno).
pub static ERRORS: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];

/// What a call produced: results, an error, or the end of the calling process.
enum Stop {
    /// The call failed.
    Fail(Error),
    /// The process ends with this status (exit, kill of itself).
    Exit(i32),
}
use Stop::{Exit, Fail};

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Fail(e)
    }
}

type Ret = Result<[u64; 3], Error>;

/// Entry from the sync trap (EC SVC from EL0), IRQs masked. Returns with them masked.
pub fn entry(frame: &mut TrapFrame) {
    cpu::enable_irqs();
    // The process is only borrowed inside this block: the exit paths below never
    // return, so nothing of it may stay on this stack (an `Arc` left here would leak).
    let result = match table::current() {
        Some(p) => {
            p.syscalls.fetch_add(1, Ordering::Relaxed);
            dispatch(&p, frame)
        }
        None => Err(Fail(Error::ESRCH)),
    };
    let result = match result {
        Err(Exit(status)) => table::exit_current(status),
        Ok(r) => Ok(r),
        Err(Fail(e)) => Err(e),
    };
    match result {
        Ok(r) => {
            frame.x[0] = 0;
            frame.x[1..4].copy_from_slice(&r);
        }
        Err(e) => {
            ERRORS[(-e.as_i32()) as usize % 32].fetch_add(1, Ordering::Relaxed);
            frame.x[0] = e.as_i32() as i64 as u64;
        }
    }
    if sched::current_user_killed() {
        table::exit_current(table::KILLED);
    }
    let _ = cpu::save_and_mask_irqs();
}

fn dispatch(p: &Arc<Process>, f: &TrapFrame) -> Result<[u64; 3], Stop> {
    let a = [f.x[0], f.x[1], f.x[2], f.x[3], f.x[4], f.x[5]];
    let num = match u32::try_from(f.x[8])
        .ok()
        .and_then(|n| Sysnum::try_from(n).ok())
    {
        Some(n) => n,
        None => {
            UNKNOWN.fetch_add(1, Ordering::Relaxed);
            return Err(Fail(Error::ENOSYS));
        }
    };
    CALLS[num.as_u32() as usize % 0x70].fetch_add(1, Ordering::Relaxed);
    let r: Ret = match num {
        Sysnum::Exit => return Err(Exit(a[0] as u32 as i32)),
        Sysnum::Kill if a[0] == u64::from(p.pid) => return Err(Exit(table::KILLED)),
        Sysnum::Spawn => spawn(p, a),
        Sysnum::Wait => wait(p, a[0], a[1]),
        Sysnum::Kill => kill(p, a[0]),
        Sysnum::GetPid => Ok([u64::from(p.pid), 0, 0]),
        Sysnum::Yield => {
            sched::yield_now();
            Ok([0; 3])
        }
        Sysnum::MemMap => mem_map(p, a[1], a[2]),
        Sysnum::MemUnmap => mem_unmap(p, a[0], a[1]),
        Sysnum::CapDrop => cap_drop(p, a[0]),
        Sysnum::CapGrant => cap_grant(p, a[0], a[1], a[2], a[3]),
        Sysnum::CapReplace => cap_replace(p, a[0], a[1]),
        Sysnum::CapInfo => cap_info(p, a[0]),
        Sysnum::ClockNow => Ok([time::now_ns(), 0, 0]),
        Sysnum::SleepUntil => sleep_until(a[0]),
        Sysnum::NotifyWait => Err(Error::ENOSYS),
        Sysnum::Open => open(p, a[0], a[1], a[2]),
        Sysnum::Read => read(p, a[0], a[1], a[2], a[3]),
        Sysnum::Write => write(p, a[0], a[1], a[2]),
        // The network (0x50) and device (0x60) groups arrive with their issues.
        _ => Err(Error::ENOSYS),
    };
    r.map_err(Fail)
}

fn handle(raw: u64) -> Result<Handle, Error> {
    u32::try_from(raw).map(Handle).map_err(|_| Error::EBADH)
}

/// Copies a user string of at most `max` bytes.
fn user_bytes(addr: u64, len: u64, max: usize) -> Result<Vec<u8>, Error> {
    let range = UserSlice::new(addr, len).check(max)?;
    let mut buf = alloc::vec![0u8; range.len];
    copy_from_user(&mut buf, range.addr).map_err(|_| Error::EFAULT)?;
    Ok(buf)
}

fn user_str(addr: u64, len: u64, max: usize) -> Result<alloc::string::String, Error> {
    alloc::string::String::from_utf8(user_bytes(addr, len, max)?).map_err(|_| Error::EINVAL)
}

fn spawn(p: &Arc<Process>, a: [u64; 6]) -> Ret {
    let path = user_str(a[0], a[1], 256)?;
    let args = user_bytes(a[2], a[3], MAX_ARG_BYTES)?;
    if !args.is_empty() && args.last() != Some(&0) {
        return Err(Error::EINVAL);
    }
    let argc = args.iter().filter(|&&b| b == 0).count();
    if argc > MAX_ARGS {
        return Err(Error::EINVAL);
    }
    let specs = user_grants(a[4], a[5])?;
    let grants = take_grants(p, &specs)?;
    let pid = table::spawn(p.pid, &path, &args, argc, grants)?;
    Ok([u64::from(pid), 0, 0])
}

fn user_grants(addr: u64, count: u64) -> Result<Vec<GrantSpec>, Error> {
    let range = UserPtr::<GrantSpec>::new(addr).check_array(count, MAX_GRANTS)?;
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
    table::with_caps(p, |caps| {
        for s in specs {
            let rights = Rights::from_bits(s.rights).ok_or(Error::EINVAL)?;
            let (ty, held) = caps.info(Handle(s.handle))?;
            if !held.contains(Rights::TRANSFER) || !held.contains(rights) {
                return Err(Error::EACCES);
            }
            match s.mode {
                GRANT_MOVE => {}
                GRANT_COPY if !caps::cspace::is_linear(ty) => {}
                GRANT_COPY => return Err(Error::EPERM),
                _ => return Err(Error::EINVAL),
            }
        }
        let mut out = Vec::new();
        for s in specs {
            let rights = Rights::from_bits(s.rights).unwrap_or(Rights::empty());
            let object = if s.mode == GRANT_MOVE {
                caps.remove(Handle(s.handle))?
            } else {
                let (ty, _) = caps.info(Handle(s.handle))?;
                caps.get(Handle(s.handle), ty, Rights::empty())?.clone()
            };
            out.push(Grant { object, rights });
        }
        Ok(out)
    })
}

fn wait(p: &Arc<Process>, pid: u64, flags: u64) -> Ret {
    let flags = u32::try_from(flags).map_err(|_| Error::EINVAL)?;
    if flags & !WAIT_FLAGS != 0 {
        return Err(Error::EINVAL);
    }
    let want = match pid {
        abi::proc::ANY_CHILD => None,
        pid => Some(u32::try_from(pid).map_err(|_| Error::ECHILD)?),
    };
    let (pid, status) = table::wait(p, want, flags & WNOHANG != 0)?;
    Ok([u64::from(pid), status as u32 as u64, 0])
}

fn kill(p: &Arc<Process>, pid: u64) -> Ret {
    let pid = u32::try_from(pid).map_err(|_| Error::ESRCH)?;
    if pid == p.pid {
        return Err(Error::EINVAL); // dispatch ends the caller itself
    }
    table::kill(pid).map(|()| [0; 3])
}

fn mem_map(p: &Arc<Process>, len: u64, prot: u64) -> Ret {
    let prot = u32::try_from(prot).map_err(|_| Error::EINVAL)?;
    let access = match prot {
        _ if prot & !PROT_ALL != 0 => return Err(Error::EINVAL),
        _ if prot & PROT_WRITE != 0 && prot & PROT_EXEC != 0 => return Err(Error::EPERM),
        PROT_READ => UserAccess::Read,
        p if p == PROT_READ | PROT_WRITE => UserAccess::ReadWrite,
        p if p == PROT_READ | PROT_EXEC => UserAccess::ReadExecute,
        _ => return Err(Error::EINVAL),
    };
    let len = usize::try_from(len).map_err(|_| Error::EINVAL)?;
    let va = table::with_memory(p, |m| m.map_anonymous(len, access))?;
    Ok([va as u64, 0, 0])
}

fn mem_unmap(p: &Arc<Process>, addr: u64, len: u64) -> Ret {
    let (addr, len) = (usize::try_from(addr), usize::try_from(len));
    let (Ok(addr), Ok(len)) = (addr, len) else {
        return Err(Error::EINVAL);
    };
    table::with_memory(p, |m| m.unmap_anonymous(addr, len)).map(|()| [0; 3])
}

fn cap_drop(p: &Arc<Process>, h: u64) -> Ret {
    let h = handle(h)?;
    let obj = table::with_caps(p, |caps| caps.remove(h))?;
    drop(obj);
    Ok([0; 3])
}

fn cap_grant(p: &Arc<Process>, pid: u64, h: u64, rights: u64, mode: u64) -> Ret {
    let (h, pid) = (handle(h)?, u32::try_from(pid).map_err(|_| Error::ESRCH)?);
    let rights = u32::try_from(rights)
        .ok()
        .and_then(Rights::from_bits)
        .ok_or(Error::EINVAL)?;
    let target = table::get(pid)
        .filter(|t| !t.is_zombie())
        .ok_or(Error::ESRCH)?;
    if target.pid == p.pid {
        return Err(Error::EINVAL);
    }
    let mode = u32::try_from(mode).map_err(|_| Error::EINVAL)?;
    if mode != GRANT_MOVE && mode != GRANT_COPY {
        return Err(Error::EINVAL);
    }
    // Take the object out (or copy it) first, then insert: the two tables are never
    // locked together. A moved object the target cannot take comes back to the caller
    // (under a new handle).
    let taken = take_grants(
        p,
        &[GrantSpec {
            handle: h.raw(),
            rights: rights.bits(),
            mode,
        }],
    )?;
    let Some(Grant { object, rights }) = taken.into_iter().next() else {
        return Err(Error::EBADH);
    };
    let mut back = None;
    let r = table::with_caps(&target, |caps| match caps.insert(object, rights) {
        Ok(h) => Ok(h.raw()),
        Err((object, e)) => {
            back = Some(object);
            Err(e)
        }
    });
    if let (Some(object), GRANT_MOVE) = (back, mode) {
        let held = rights | Rights::TRANSFER;
        let _ = table::with_caps(p, |caps| caps.insert(object, held).map_err(|(_, e)| e));
    }
    r.map(|new| [u64::from(new), 0, 0])
}

fn cap_replace(p: &Arc<Process>, h: u64, rights: u64) -> Ret {
    let h = handle(h)?;
    let rights = u32::try_from(rights)
        .ok()
        .and_then(Rights::from_bits)
        .ok_or(Error::EINVAL)?;
    table::with_caps(p, |caps| caps.restrict(h, rights)).map(|()| [0; 3])
}

fn cap_info(p: &Arc<Process>, h: u64) -> Ret {
    let h = handle(h)?;
    let (ty, rights) = table::with_caps(p, |caps| caps.info(h))?;
    Ok([ty as u64, u64::from(rights.bits()), 0])
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

fn open(p: &Arc<Process>, path: u64, len: u64, flags: u64) -> Ret {
    let path = user_str(path, len, 256)?;
    let flags = u32::try_from(flags).map_err(|_| Error::EINVAL)?;
    if flags & !OPEN_FLAGS != 0 || flags == 0 {
        return Err(Error::EINVAL);
    }
    let (file, rights) = super::fs::open(&path, flags)?;
    let mut rights = rights;
    if flags & OPEN_READ == 0 {
        rights = rights.intersection(Rights::WRITE | Rights::TRANSFER);
    }
    if flags & OPEN_WRITE == 0 {
        rights = rights.intersection(Rights::READ | Rights::TRANSFER);
    }
    let h = table::with_caps(p, |caps| {
        caps.insert(Object::File(file), rights | Rights::TRANSFER)
            .map_err(|(_, e)| e)
    })?;
    Ok([u64::from(h.raw()), 0, 0])
}

fn file_op<R>(
    p: &Arc<Process>,
    h: u64,
    need: Rights,
    f: impl FnOnce(&mut File) -> Result<R, Error>,
) -> Result<R, Error> {
    let h = handle(h)?;
    table::with_caps(p, |caps| match caps.get_mut(h, CapType::File, need)? {
        Object::File(file) => f(file),
    })
}

fn read(p: &Arc<Process>, h: u64, buf: u64, len: u64, deadline: u64) -> Ret {
    let range = UserSlice::new(buf, len).check(1 << 20)?;
    if file_op(p, h, Rights::READ, |f| Ok(f.is_console()))? {
        return super::fs::read_console(range, deadline).map(|n| [n as u64, 0, 0]);
    }
    let mut tmp = alloc::vec![0u8; range.len.min(64 * 1024)];
    let n = file_op(p, h, Rights::READ, |f| f.read(&mut tmp))?;
    copy_to_user(range.addr, &tmp[..n]).map_err(|_| Error::EFAULT)?;
    Ok([n as u64, 0, 0])
}

fn write(p: &Arc<Process>, h: u64, buf: u64, len: u64) -> Ret {
    let range = UserSlice::new(buf, len).check(1 << 20)?;
    if !file_op(p, h, Rights::WRITE, |f| Ok(f.is_console()))? {
        return Err(Error::EINVAL);
    }
    let mut tmp = alloc::vec![0u8; range.len];
    copy_from_user(&mut tmp, range.addr).map_err(|_| Error::EFAULT)?;
    super::fs::write_console(&tmp);
    Ok([range.len as u64, 0, 0])
}
