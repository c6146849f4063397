//! User processes end to end: programs from the initrd run at EL0 and report back.

use crate::process::table;
use crate::{ensure, ensure_eq, kernel_test, skip};

/// Arguments as `spawn` takes them: NUL-terminated strings back to back.
fn args(list: &[&str]) -> (alloc::vec::Vec<u8>, usize) {
    let mut out = alloc::vec::Vec::new();
    for a in list {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    (out, list.len())
}

/// Spawns `path` as a child of the kernel and waits for its exit status.
pub fn run(path: &str, argv: &[&str]) -> Result<i32, abi::Error> {
    let (bytes, argc) = args(argv);
    let pid = table::spawn(0, path, &bytes, argc, alloc::vec::Vec::new())?;
    let kernel = table::get(0).ok_or(abi::Error::ESRCH)?;
    let (reaped, status) = table::wait(&kernel, Some(pid), false)?;
    if reaped != pid {
        return Err(abi::Error::ECHILD);
    }
    Ok(status)
}

kernel_test! {
    fn hello_runs_at_el0_and_exits_with_its_argument_count() {
        if table::initrd().is_none() {
            skip!("no initrd on this machine");
        }
        let status = run("/bin/hello", &["hello", "a", "b"]).map_err(|e| alloc::format!("{e}"))?;
        ensure_eq!(status, 3);
        ensure!(table::get(0).is_some_and(|k| k.children().is_empty()), "the child was not reaped");
        Ok(())
    }
}

kernel_test! {
    fn user_process_suite_passes() {
        if table::initrd().is_none_or(|rd| rd.find("/bin/proctest").is_none()) {
            skip!("no /bin/proctest in the initrd");
        }
        let failures = run("/bin/proctest", &["proctest"]).map_err(|e| alloc::format!("{e}"))?;
        ensure_eq!(failures, 0);
        Ok(())
    }
}
