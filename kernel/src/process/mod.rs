//! User processes: executables, address spaces, the syscall layer, lifecycle.
//!
//! The pure parts (checking an ELF file, checking user pointers, reading the initrd)
//! build on the host for their tests; the rest is kernel-only. See docs/process.md.

pub mod decode;
pub mod elf;
pub mod initrd;
pub mod user;

#[cfg(target_os = "none")]
pub mod counters;
#[cfg(target_os = "none")]
pub mod devcalls;
#[cfg(target_os = "none")]
pub mod device;
#[cfg(target_os = "none")]
pub mod file;
#[cfg(target_os = "none")]
pub mod fs;
#[cfg(target_os = "none")]
pub mod memory;
#[cfg(target_os = "none")]
pub mod net;
#[cfg(target_os = "none")]
pub mod procfs;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod table;

/// A user process took a fault that is not a valid access (no demand paging: every user
/// page is mapped in advance): report it and end the process, never the kernel.
#[cfg(target_os = "none")]
pub fn fault(
    frame: &crate::arch::vectors::TrapFrame,
    what: &str,
    detail: Option<(&'static str, &'static str)>,
) -> ! {
    let (pid, name) =
        table::current().map_or((0, heapless::String::new()), |p| (p.pid, p.name.clone()));
    crate::println!("*** pid {pid} ({name}) killed: {what}");
    if let Some((status, access)) = detail {
        let guard = memory::STACK_TOP - memory::STACK_SIZE - crate::mem::frames::FRAME;
        let overflow = if (guard..guard + crate::mem::frames::FRAME).contains(&(frame.far as usize))
        {
            " (the stack's guard page: stack overflow)"
        } else {
            ""
        };
        crate::println!("    {status} on {access} of {:#x}{overflow}", frame.far);
    }
    crate::println!(
        "    ESR {:#018x}  FAR {:#018x}  ELR {:#018x}  SP {:#018x}",
        frame.esr,
        frame.far,
        frame.elr,
        frame.sp_el0
    );
    table::exit_current(abi::proc::STATUS_FAULTED)
}
