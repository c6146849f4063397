//! Argument encodings of the process, memory, capability and file calls.
//!
//! Flags are plain `u32`/`u64` constants with a `from_bits`-style check, like `Rights`:
//! an undefined bit is `EINVAL`, never silently ignored. The startup record is the one
//! structure the kernel writes into a new process; its layout is fixed here.

/// `wait`: the pid argument that means "any child".
pub const ANY_CHILD: u64 = u64::MAX;

/// `wait` flag: return `EAGAIN` at once instead of blocking when no child has exited.
pub const WNOHANG: u32 = 1;
/// Every defined `wait` flag.
pub const WAIT_FLAGS: u32 = WNOHANG;

/// The exit status of a process ended by `kill` (no code of its own): 128 + 9, as shells
/// report it.
pub const STATUS_KILLED: i32 = 137;
/// The exit status of a process the kernel ended for a fault it took (bad access,
/// undefined instruction): 128 + 11.
pub const STATUS_FAULTED: i32 = 139;
/// The exit status of a process ended by Ctrl-C on the console while it was the console's
/// foreground process (`console_fg`): 128 + 2.
pub const STATUS_INTERRUPTED: i32 = 130;

/// `console_fg`: the pid that means "no foreground process" (Ctrl-C is then input).
pub const NO_FOREGROUND: u32 = 0;

/// `power` action: switch the machine off.
pub const POWER_OFF: u32 = 1;
/// `power` action: restart the machine.
pub const POWER_REBOOT: u32 = 2;

/// `mem_map` protection: readable.
pub const PROT_READ: u32 = 1;
/// `mem_map` protection: writable (never together with `PROT_EXEC`).
pub const PROT_WRITE: u32 = 2;
/// `mem_map` protection: executable (never together with `PROT_WRITE`).
pub const PROT_EXEC: u32 = 4;
/// Every defined protection bit.
pub const PROT_ALL: u32 = PROT_READ | PROT_WRITE | PROT_EXEC;

/// `cap_grant` mode: the capability leaves the caller (the only mode for linear ones).
pub const GRANT_MOVE: u32 = 1;
/// `cap_grant` mode: the caller keeps it and the receiver gets a copy (plain objects only).
pub const GRANT_COPY: u32 = 2;

/// `open` flag: read.
pub const OPEN_READ: u32 = 1;
/// `open` flag: write.
pub const OPEN_WRITE: u32 = 2;
/// Every defined `open` flag.
pub const OPEN_FLAGS: u32 = OPEN_READ | OPEN_WRITE;

/// One capability handed to a child by `spawn` (an array of these is its `grants`
/// argument).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantSpec {
    /// The caller's handle.
    pub handle: u32,
    /// Rights the child gets (a subset of the caller's).
    pub rights: u32,
    /// `GRANT_MOVE` or `GRANT_COPY`.
    pub mode: u32,
}

/// `STARTUP_MAGIC` spells "CAPS" in memory order.
pub const STARTUP_MAGIC: u32 = u32::from_le_bytes(*b"CAPS");
/// The startup record's layout version.
pub const STARTUP_VERSION: u32 = 1;
/// Most grants a startup record lists.
pub const MAX_GRANTS: usize = 16;
/// Most arguments `spawn` passes.
pub const MAX_ARGS: usize = 64;
/// Most bytes of arguments (NUL-separated) `spawn` passes.
pub const MAX_ARG_BYTES: usize = 4096;

/// A capability the process received at spawn, as its startup record lists it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartupGrant {
    /// The handle in the new process's table.
    pub handle: u32,
    /// Its `CapType` value.
    pub cap_type: u32,
    /// Its rights.
    pub rights: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// What a new process finds at its initial stack pointer (also in `x0` at `_start`).
/// Pointers are user addresses inside the same stack page run.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartupRecord {
    /// `STARTUP_MAGIC`.
    pub magic: u32,
    /// `STARTUP_VERSION`.
    pub version: u32,
    /// This process's pid.
    pub pid: u32,
    /// Its parent's pid (0 for init).
    pub parent: u32,
    /// Handle of the console for reading (`File`), or 0.
    pub console_in: u32,
    /// Handle of the console for writing (`File`), or 0.
    pub console_out: u32,
    /// Number of arguments.
    pub argc: u32,
    /// Number of entries in `grants`.
    pub grant_count: u32,
    /// Address of the argument bytes: `argc` NUL-terminated strings back to back.
    pub args: u64,
    /// Bytes at `args`.
    pub args_len: u64,
    /// Address of `grant_count` `StartupGrant`s.
    pub grants: u64,
}

const _: () = assert!(core::mem::size_of::<StartupRecord>() == 56);
const _: () = assert!(core::mem::size_of::<StartupGrant>() == 16);
const _: () = assert!(core::mem::size_of::<GrantSpec>() == 12);
