//! The in-kernel test framework: tests register themselves, a boot option runs them.
//!
//! `kernel_test!` puts a `&TestCase` into the `.kernel_tests` linker section, so
//! there is no central list to forget to update. Booting with `test` (or
//! `test=<substring>`) in `/chosen/bootargs` runs them in link order, printing
//! `test <name> ... ok` or `... FAILED: <reason>`, then `N passed, N failed`, and
//! exits QEMU through semihosting with status 0 only if all passed. A panic or an
//! unexpected exception inside a test fails that test and ends the run with a
//! non-zero status; a hang is caught by the harness's timeout.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::arch::{psci, sections, semihosting};
use crate::console;

/// What a test returns: `Err` carries the failure reason, or why it did not apply.
pub type TestResult = Result<(), Failure>;

/// Why a test did not pass.
#[derive(Debug)]
pub enum Failure {
    /// It failed, for this reason.
    Failed(String),
    /// It does not apply to this machine or boot (e.g. needs the network lab): counted
    /// and printed as skipped, never as passed.
    Skipped(&'static str),
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure::Failed(reason)
    }
}

impl From<&str> for Failure {
    fn from(reason: &str) -> Self {
        Failure::Failed(reason.into())
    }
}

/// Ends the test as skipped: it does not apply here (say why).
#[macro_export]
macro_rules! skip {
    ($why:literal) => {
        return Err($crate::ktest::Failure::Skipped($why))
    };
}

/// One registered test.
#[derive(Debug)]
pub struct TestCase {
    /// Module path and function name.
    pub name: &'static str,
    /// The test body.
    pub run: fn() -> TestResult,
}

/// Fails the test with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(alloc::format!($($arg)+).into());
        }
    };
    ($cond:expr) => {
        if !$cond {
            return Err(alloc::format!("assertion failed: {}", stringify!($cond)).into());
        }
    };
}

/// Fails the test unless both sides are equal, printing both.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err(alloc::format!(
                "{} == {} failed: {:?} != {:?}",
                stringify!($left),
                stringify!($right),
                l,
                r
            )
            .into());
        }
    }};
}

static REPORTS: crate::sync::IrqLock<alloc::vec::Vec<String>> =
    crate::sync::IrqLock::new(alloc::vec::Vec::new());

/// Records a figure for the harness (printed as `report: <line>` after the summary, so
/// test result lines stay one line each).
pub fn report(line: String) {
    REPORTS.lock().push(line);
}

static RUNNING: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicUsize = AtomicUsize::new(usize::MAX);
static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);
static SKIPPED: AtomicU32 = AtomicU32::new(0);

fn short(name: &str) -> &str {
    name.strip_prefix("capstan::").unwrap_or(name)
}

/// Whether test `name` is selected by `filter`: it contains one of the `|`-separated
/// parts (an empty filter selects everything).
fn selected(name: &str, filter: &str) -> bool {
    filter.split('|').any(|part| name.contains(part))
}

/// Runs every test `filter` selects and exits QEMU with the verdict.
pub fn run(filter: &str, crash: Option<Crash>) -> ! {
    let tests = sections::kernel_tests();
    let chosen = tests.iter().filter(|t| selected(t.name, filter)).count();
    crate::println!("running {chosen} kernel tests");
    RUNNING.store(true, Ordering::SeqCst);
    for (i, test) in tests
        .iter()
        .enumerate()
        .filter(|(_, t)| selected(t.name, filter))
    {
        CURRENT.store(i, Ordering::SeqCst);
        crate::print!("test {} ... ", short(test.name));
        let writes = crate::console::writes();
        if let Some(crash) = crash {
            crash.inject();
        }
        let result = (test.run)();
        if crate::console::writes() != writes {
            // Something printed in the middle of the line: the verdict gets a line of its
            // own with the name again, so each test still has one "test NAME ... verdict".
            crate::print!("\ntest {} ... ", short(test.name));
        }
        match result {
            Ok(()) => {
                PASSED.fetch_add(1, Ordering::SeqCst);
                crate::println!("ok");
            }
            Err(Failure::Failed(reason)) => {
                FAILED.fetch_add(1, Ordering::SeqCst);
                crate::println!("FAILED: {reason}");
            }
            Err(Failure::Skipped(why)) => {
                SKIPPED.fetch_add(1, Ordering::SeqCst);
                crate::println!("skipped: {why}");
            }
        }
    }
    CURRENT.store(usize::MAX, Ordering::SeqCst);
    let (passed, failed) = (PASSED.load(Ordering::SeqCst), FAILED.load(Ordering::SeqCst));
    for line in REPORTS.lock().iter() {
        crate::println!("report: {line}");
    }
    // Final per-INTID totals, for scripts/test's cross-check against QEMU's GIC trace.
    for (intid, count) in crate::irq::edge_spi_totals() {
        crate::println!("report: irq-total intid={intid} count={count}");
    }
    // What user-mode drivers' lines delivered, per device and INTID (the ITS cross-check).
    for c in crate::pci::handoff::line_counts() {
        let (bdf, intid, count, ends) = (c.bdf, c.intid, c.count, c.ends);
        crate::println!("report: irq-user {bdf} intid={intid} count={count} ends={ends}");
    }
    let skipped = SKIPPED.load(Ordering::SeqCst);
    crate::println!("{passed} passed, {failed} failed, {skipped} skipped");
    exit(if failed == 0 && passed > 0 { 0 } else { 1 })
}

/// A deliberate failure inside a test, to show the harness reports each kind
/// (`crash=` on the command line).
pub use crate::cmdline::CrashOption as Crash;

impl Crash {
    fn inject(self) {
        static READ_ONLY: u64 = 0;
        match self {
            Crash::Panic => panic!("injected by crash=panic"),
            Crash::Fault => {
                crate::arch::probe::store_unchecked(core::ptr::from_ref(&READ_ONLY) as usize)
            }
            Crash::Hang => loop {
                crate::sched::sleep_ns(1_000_000_000);
            },
        }
    }
}

/// A panic or fatal exception during a test run: fail the running test, print the
/// summary and exit non-zero. Returns only if no test run is in progress.
pub fn abort_run(reason: &str) {
    if !RUNNING.load(Ordering::SeqCst) {
        return;
    }
    let p = console::emergency_fmt;
    let current = CURRENT.load(Ordering::SeqCst);
    if let Some(test) = sections::kernel_tests().get(current) {
        p(format_args!(
            "\ntest {} ... FAILED: {reason}\n",
            short(test.name)
        ));
    }
    let passed = PASSED.load(Ordering::SeqCst);
    let failed = FAILED.load(Ordering::SeqCst) + 1;
    p(format_args!(
        "run aborted; remaining tests not run\n{passed} passed, {failed} failed\n"
    ));
    exit(1)
}

/// Exits QEMU with `status` (semihosting), falling back to PSCI power-off.
pub fn exit(status: u32) -> ! {
    semihosting::exit(status);
    console::emergency_fmt(format_args!(
        "test run ended with status {status}, but QEMU has no -semihosting to pass it on; \
         powering off\n"
    ));
    let _ = psci::system_off();
    crate::halt::halt()
}
