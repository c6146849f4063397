//! Compile-fail tests: each rule the types enforce has a case that must not compile.
//!
//! One trybuild invocation for every case (each is its own crate; batching them keeps the
//! build to one pass). The expected errors are pinned in `tests/ui/*.stderr`; regenerate
//! them with `TRYBUILD=overwrite cargo test -p udrv --test compile_fail` after a change
//! that moves them, and read the diff.

#[test]
fn type_state_rules_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
