//! The machine description the boot CPU parsed, for everyone after boot.
//!
//! It sits below `boot` (which fills it in once) and the monitor, drivers and
//! tests (which read it), so that reading the platform does not mean importing
//! the bring-up code that also starts the monitor.

use crate::platform::Platform;

static PLATFORM: spin::Once<Platform> = spin::Once::new();

/// Records the parsed description (boot CPU, once); later calls keep the first.
pub fn set_platform(p: Platform) -> &'static Platform {
    PLATFORM.call_once(|| p)
}

/// The machine description (after boot).
pub fn platform() -> Option<&'static Platform> {
    PLATFORM.get()
}

/// The whole kernel command line, as the boot loader gave it (`/proc/cmdline`).
pub fn command_line() -> &'static str {
    platform().map_or("", |p| p.bootargs.as_str())
}
