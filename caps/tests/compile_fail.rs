//! Compile-fail tests: each type-state rule has a case that must not compile.
//!
//! One trybuild invocation for all cases (each case is a separate crate; batching them keeps
//! the build to one pass). The expected errors live in `tests/ui/*.stderr`.

#[test]
fn type_state_rules_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
