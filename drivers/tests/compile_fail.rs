//! Compile-fail tests: each register-access rule has a case that must not compile.
//!
//! One trybuild invocation for all cases (each case is a separate crate). The expected
//! errors live in `tests/ui/*.stderr`; the rules are those of `drivers::reg`.

#[test]
fn register_access_rules_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
