//! Capabilities: drop, grant, replace (restrict), info.

use abi::proc::{GRANT_COPY, GRANT_MOVE};
use abi::{CapType, Handle, Rights, Sysnum};

use crate::sys;

/// What `cap_info` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// The object's type (raw, if this runtime does not know it).
    pub cap_type: Result<CapType, u32>,
    /// Rights held.
    pub rights: Rights,
    /// Type-specific state (for lines: 0 masked, 1 armed, 2 fired, 3 draining).
    pub state: u64,
}

/// Drops a capability.
pub fn drop(h: Handle) -> crate::Result<()> {
    sys::call1(Sysnum::CapDrop, u64::from(h.raw())).map(|_| ())
}

/// Moves `h` to process `pid` with `rights`; returns the handle there.
pub fn grant_move(pid: u32, h: Handle, rights: Rights) -> crate::Result<Handle> {
    grant(pid, h, rights, GRANT_MOVE)
}

/// Copies `h` (plain objects only) to process `pid` with `rights`.
pub fn grant_copy(pid: u32, h: Handle, rights: Rights) -> crate::Result<Handle> {
    grant(pid, h, rights, GRANT_COPY)
}

fn grant(pid: u32, h: Handle, rights: Rights, mode: u32) -> crate::Result<Handle> {
    let r = sys::call4(
        Sysnum::CapGrant,
        u64::from(pid),
        u64::from(h.raw()),
        u64::from(rights.bits()),
        u64::from(mode),
    )?;
    Ok(Handle(r[0] as u32))
}

/// Keeps only `rights` on `h`.
pub fn replace(h: Handle, rights: Rights) -> crate::Result<()> {
    sys::call2(
        Sysnum::CapReplace,
        u64::from(h.raw()),
        u64::from(rights.bits()),
    )
    .map(|_| ())
}

/// Type, rights and state of `h`.
pub fn info(h: Handle) -> crate::Result<Info> {
    let r = sys::call1(Sysnum::CapInfo, u64::from(h.raw()))?;
    Ok(Info {
        cap_type: CapType::try_from(r[0] as u32),
        rights: Rights::from_bits(r[1] as u32).unwrap_or(Rights::empty()),
        state: r[2],
    })
}
