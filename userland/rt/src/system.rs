//! The machine: power off and reboot, through a `Power` capability.

use abi::proc::{POWER_OFF, POWER_REBOOT};
use abi::{CapType, Handle, Sysnum};

use crate::sys;

/// The `Power` capability among this process's grants, if it was given one.
pub fn power_cap() -> Option<Handle> {
    crate::start::startup()?
        .grants()
        .find(|g| g.cap_type == Some(CapType::Power))
        .map(|g| g.handle)
}

/// Switches the machine off. Returns only with an error (no capability, no firmware).
pub fn power_off(h: Handle) -> crate::Error {
    power(h, POWER_OFF)
}

/// Restarts the machine. Returns only with an error.
pub fn reboot(h: Handle) -> crate::Error {
    power(h, POWER_REBOOT)
}

fn power(h: Handle, action: u32) -> crate::Error {
    match sys::call2(Sysnum::Power, u64::from(h.raw()), u64::from(action)) {
        Ok(_) => abi::Error::ENOSYS, // the kernel never returns success here
        Err(e) => e,
    }
}
