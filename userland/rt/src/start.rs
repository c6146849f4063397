//! `_start`: from the kernel's hand-over to the program's entry function and back out.
//!
//! The kernel starts a process at `_start` with `sp` at its startup record (and `x0`
//! pointing at it, `abi::proc::StartupRecord`). The record is copied into a [`Startup`]
//! the program can keep; a record with the wrong magic or version ends the process with
//! status 127 before any program code runs.

use abi::proc::{STARTUP_MAGIC, STARTUP_VERSION, StartupGrant, StartupRecord};
use abi::{CapType, Handle, Rights};

core::arch::global_asm!(
    r#"
.section .text._start, "ax"
.global _start
_start:
    mov     x29, xzr
    mov     x30, xzr
    bl      __capstan_rt_start
    brk     #0
"#
);

/// What the kernel handed this process.
pub struct Startup {
    record: StartupRecord,
}

/// One capability received at spawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Its handle here.
    pub handle: Handle,
    /// What it is (`None` for a type this runtime does not know).
    pub cap_type: Option<CapType>,
    /// What it allows.
    pub rights: Rights,
}

impl Startup {
    /// This process's pid.
    pub fn pid(&self) -> u32 {
        self.record.pid
    }

    /// The parent's pid (0 for init).
    pub fn parent(&self) -> u32 {
        self.record.parent
    }

    /// The arguments, program name first.
    pub fn args(&self) -> impl Iterator<Item = &'static str> {
        self.arg_bytes()
            .split(|&b| b == 0)
            .take(self.record.argc as usize)
            .map(|a| core::str::from_utf8(a).unwrap_or("?"))
    }

    /// Argument `i`, if there is one.
    pub fn arg(&self, i: usize) -> Option<&'static str> {
        self.args().nth(i)
    }

    fn arg_bytes(&self) -> &'static [u8] {
        if self.record.args == 0 || self.record.args_len == 0 {
            return &[];
        }
        // SAFETY: the kernel placed `args_len` argument bytes at `args` on this process's
        // stack, below the record, and nothing ever writes there again (the stack grows
        // down from below them).
        unsafe {
            core::slice::from_raw_parts(
                self.record.args as *const u8,
                self.record.args_len as usize,
            )
        }
    }

    /// The capabilities granted at spawn.
    pub fn grants(&self) -> impl Iterator<Item = Grant> {
        let raw: &'static [StartupGrant] = if self.record.grants == 0 {
            &[]
        } else {
            // SAFETY: as for the arguments: `grant_count` records at `grants`, written
            // once by the kernel before the process started.
            unsafe {
                core::slice::from_raw_parts(
                    self.record.grants as *const StartupGrant,
                    self.record.grant_count.min(abi::proc::MAX_GRANTS as u32) as usize,
                )
            }
        };
        raw.iter().map(|g| Grant {
            handle: Handle(g.handle),
            cap_type: CapType::try_from(g.cap_type).ok(),
            rights: Rights::from_bits(g.rights).unwrap_or(Rights::empty()),
        })
    }

    /// The console handles (input, output), if the process has a console.
    pub fn console(&self) -> (Option<Handle>, Option<Handle>) {
        let h = |raw: u32| (raw != 0).then_some(Handle(raw));
        (h(self.record.console_in), h(self.record.console_out))
    }
}

static STARTUP: spin::Once<Startup> = spin::Once::new();

/// The startup information (available once the entry function runs).
pub fn startup() -> Option<&'static Startup> {
    STARTUP.get()
}

unsafe extern "Rust" {
    fn __capstan_main(startup: &Startup) -> i32;
}

#[unsafe(no_mangle)]
extern "C" fn __capstan_rt_start(record: *const StartupRecord) -> ! {
    // SAFETY: the kernel passes the address of the record it wrote at the top of this
    // process's stack (aligned, mapped, readable); it is only read here.
    let record = unsafe { record.read() };
    if record.magic != STARTUP_MAGIC || record.version != STARTUP_VERSION {
        crate::process::exit(127);
    }
    let startup = STARTUP.call_once(|| Startup { record });
    crate::console::init(startup.console());
    // SAFETY: `entry!` defines `__capstan_main` with exactly this signature.
    let code = unsafe { __capstan_main(startup) };
    crate::process::exit(code)
}
