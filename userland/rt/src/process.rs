//! Processes: exit, spawn, wait, kill, getpid, yield.

use abi::proc::{ANY_CHILD, GrantSpec, WNOHANG};
use abi::{Error, Sysnum};

use crate::sys;

/// A child's end, as `wait` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exited {
    /// Which child.
    pub pid: u32,
    /// Its exit status (`abi::proc::STATUS_KILLED` / `STATUS_FAULTED` if the kernel
    /// ended it).
    pub status: i32,
    /// A device it held, given back to this process when it ended (a user-mode driver's
    /// device returns to the process that granted it, which can grant it again).
    pub returned_device: Option<abi::Handle>,
}

/// Ends the process with `code`.
pub fn exit(code: i32) -> ! {
    loop {
        let _ = sys::call1(Sysnum::Exit, code as u32 as u64);
    }
}

/// Starts `path` from the initrd with `args` (program name first) and hands it
/// `grants`. Returns the child's pid.
pub fn spawn(path: &str, args: &[&str], grants: &[GrantSpec]) -> crate::Result<u32> {
    let mut buf = alloc::vec::Vec::new();
    for a in args {
        buf.extend_from_slice(a.as_bytes());
        buf.push(0);
    }
    let r = sys::call(
        Sysnum::Spawn,
        [
            path.as_ptr() as u64,
            path.len() as u64,
            buf.as_ptr() as u64,
            buf.len() as u64,
            grants.as_ptr() as u64,
            grants.len() as u64,
        ],
    )?;
    Ok(r[0] as u32)
}

fn wait_raw(pid: u64, flags: u32) -> crate::Result<Exited> {
    let r = sys::call2(Sysnum::Wait, pid, u64::from(flags))?;
    Ok(Exited {
        pid: r[0] as u32,
        status: r[1] as u32 as i32,
        returned_device: (r[2] != 0).then_some(abi::Handle(r[2] as u32)),
    })
}

/// Waits for child `pid` to end.
pub fn wait(pid: u32) -> crate::Result<Exited> {
    wait_raw(u64::from(pid), 0)
}

/// Waits for any child to end (`ECHILD` if there is none).
pub fn wait_any() -> crate::Result<Exited> {
    wait_raw(ANY_CHILD, 0)
}

/// Child `pid` if it has already ended (`EAGAIN` while it runs, `ECHILD` if it is not
/// a child).
pub fn wait_nohang(pid: u32) -> crate::Result<Exited> {
    wait_raw(u64::from(pid), WNOHANG)
}

/// A child that has already ended, if any (`EAGAIN` if children run, `ECHILD` if none).
pub fn try_wait_any() -> crate::Result<Exited> {
    wait_raw(ANY_CHILD, WNOHANG)
}

/// Ends process `pid` (a process blocked in any call is woken with `ECANCELED` first).
pub fn kill(pid: u32) -> crate::Result<()> {
    sys::call1(Sysnum::Kill, u64::from(pid)).map(|_| ())
}

/// This process's pid.
pub fn getpid() -> u32 {
    sys::call0(Sysnum::GetPid).map_or(0, |r| r[0] as u32)
}

/// Gives up the CPU.
pub fn yield_now() {
    let _ = sys::call0(Sysnum::Yield);
}

/// `Err(e)` if `r` failed, for tests that want a specific error.
pub fn error_of<T>(r: crate::Result<T>) -> Option<Error> {
    r.err()
}
