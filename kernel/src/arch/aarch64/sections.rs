//! Addresses the linker script defines: image bounds, sections, the test table.

use crate::ktest::TestCase;

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
    static __boot_stack_guard: u8;
    static __kernel_tests_start: u8;
    static __kernel_tests_end: u8;
}

/// Section boundaries of the loaded image.
#[derive(Debug, Clone, Copy)]
pub struct ImageLayout {
    /// First byte of the image (start of text).
    pub start: usize,
    /// End of text (page aligned): start of rodata.
    pub text_end: usize,
    /// End of rodata (page aligned): start of data.
    pub rodata_end: usize,
    /// End of BSS (page aligned): first byte after the image.
    pub end: usize,
    /// The boot stack's guard page.
    pub boot_stack_guard: usize,
}

/// The running image's layout.
pub fn image() -> ImageLayout {
    ImageLayout {
        start: &raw const __image_start as usize,
        text_end: &raw const __text_end as usize,
        rodata_end: &raw const __rodata_end as usize,
        end: &raw const __image_end as usize,
        boot_stack_guard: &raw const __boot_stack_guard as usize,
    }
}

/// Every test registered with `kernel_test!`, in link order.
pub fn kernel_tests() -> &'static [&'static TestCase] {
    let start = (&raw const __kernel_tests_start).cast::<&'static TestCase>();
    let end = &raw const __kernel_tests_end;
    let len = (end as usize - start as usize) / core::mem::size_of::<&TestCase>();
    // SAFETY: the linker script places only `&'static TestCase` statics (emitted by
    // `kernel_test!`) between these two symbols, contiguously and aligned.
    unsafe { core::slice::from_raw_parts(start, len) }
}

/// Declares a kernel test: `kernel_test! { fn name() { ...; Ok(()) } }`.
///
/// The `&TestCase` goes into the `.kernel_tests` section, which `kernel_tests` reads
/// back as a slice. The placement is sound because only this macro puts anything in
/// that section, always a `&'static TestCase`, and the linker script keeps the section
/// aligned and contiguous. It lives here with the other linker-section code.
#[macro_export]
macro_rules! kernel_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        fn $name() -> $crate::ktest::TestResult $body
        const _: () = {
            #[unsafe(link_section = ".kernel_tests")]
            #[used]
            static TEST: &$crate::ktest::TestCase = &$crate::ktest::TestCase {
                name: concat!(module_path!(), "::", stringify!($name)),
                run: $name,
            };
        };
    };
}
