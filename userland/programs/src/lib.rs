//! Shared helpers of Capstan's user programs: a tiny test harness and what every tool
//! does the same way (`--help`, error lines, reading `/proc` records).
//!
//! A user test suite prints one line per test, `utest NAME ... ok` or
//! `utest NAME ... FAILED: why`, then `user: N passed, N failed, N skipped`, and exits
//! with the number of failures; `scripts/test` adds these lines to its totals.
#![no_std]

extern crate alloc;

pub mod netutil;
pub mod number;
pub mod tool;

use alloc::string::String;
use capstan_rt::println;

/// One test's outcome: `Ok`, a failure message, or a skip reason.
pub type Outcome = Result<(), Failure>;

/// Why a test did not pass.
pub enum Failure {
    /// It failed.
    Failed(String),
    /// It does not apply here.
    Skipped(&'static str),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Failed(s)
    }
}

impl From<abi::Error> for Failure {
    fn from(e: abi::Error) -> Self {
        Failure::Failed(alloc::format!("{e}"))
    }
}

/// Fails the test unless `cond`.
#[macro_export]
macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err($crate::Failure::Failed(alloc::format!("{} ({}:{})", stringify!($cond), file!(), line!())));
        }
    };
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::Failure::Failed(alloc::format!($($msg)+)));
        }
    };
}

/// Fails the test unless the two are equal.
#[macro_export]
macro_rules! check_eq {
    ($a:expr, $b:expr) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err($crate::Failure::Failed(alloc::format!(
                "{} == {}: {:?} != {:?} ({}:{})",
                stringify!($a),
                stringify!($b),
                a,
                b,
                file!(),
                line!()
            )));
        }
    }};
    ($a:expr, $b:expr, $($msg:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err($crate::Failure::Failed(alloc::format!(
                "{}: {:?} != {:?} ({}:{})",
                alloc::format!($($msg)+),
                a,
                b,
                file!(),
                line!()
            )));
        }
    }};
}

/// A named test.
pub type Test = (&'static str, fn() -> Outcome);

/// Tests passed, failed and skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub passed: u32,
    /// Failed.
    pub failed: u32,
    /// Skipped (each says why).
    pub skipped: u32,
}

impl core::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

/// Runs `tests` whose names contain `filter`, prints each result and the summary;
/// returns the number of failures.
pub fn run(suite: &str, filter: &str, tests: &[Test]) -> i32 {
    run_counted(suite, filter, tests).failed as i32
}

/// As `run`, returning the counts.
pub fn run_counted(suite: &str, filter: &str, tests: &[Test]) -> Counts {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, test) in tests.iter().filter(|(n, _)| n.contains(filter)) {
        match test() {
            Ok(()) => {
                passed += 1;
                println!("utest {suite}::{name} ... ok");
            }
            Err(Failure::Skipped(why)) => {
                skipped += 1;
                println!("utest {suite}::{name} ... skipped: {why}");
            }
            Err(Failure::Failed(why)) => {
                failed += 1;
                println!("utest {suite}::{name} ... FAILED: {why}");
            }
        }
    }
    println!("user {suite}: {passed} passed, {failed} failed, {skipped} skipped");
    Counts {
        passed,
        failed,
        skipped,
    }
}
