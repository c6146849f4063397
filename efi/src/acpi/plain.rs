//! Copying packed ACPI structures out of table bytes.
//!
//! The `acpi` crate's structures (`GiccEntry`, `Spcr`, `Fadt`, ...) are
//! `repr(C, packed)` integers and byte arrays. Reading one by casting a table
//! pointer would assert that `size_of::<T>()` bytes are there, but entries grow
//! between ACPI revisions (a 6.0 GICC entry is 80 bytes, the crate's is 82), so
//! a cast to the last entry of a table reads past it. Instead [`read`] copies
//! what is there into a zeroed value: missing trailing fields read as zero,
//! which each caller treats as "not present". This is the crate's only unsafe
//! code, and [`Plain`] names the types it is allowed for.

use core::mem::{MaybeUninit, size_of};

/// A type every byte pattern is a valid value of, with no padding and no pointers.
///
/// # Safety
/// Implement only for `repr(C, packed)` structures without `Drop` made of integers,
/// integer arrays and
/// other `Plain` types (or `MaybeUninit` of them).
pub unsafe trait Plain {}

// SAFETY: each is a repr(C, packed) struct of integers, byte arrays, `Signature`
// ([u8; 4]), bitflags newtypes over integers, `RawGenericAddress` (integers),
// `ExtendedField` (MaybeUninit of those) and `PhantomPinned` (zero-sized).
unsafe impl Plain for acpi::sdt::SdtHeader {}
// SAFETY: as above.
unsafe impl Plain for acpi::madt::GiccEntry {}
// SAFETY: as above.
unsafe impl Plain for acpi::madt::GicdEntry {}
// SAFETY: as above.
unsafe impl Plain for acpi::madt::GicMsiFrameEntry {}
// SAFETY: as above.
unsafe impl Plain for acpi::madt::GicRedistributorEntry {}
// SAFETY: as above.
unsafe impl Plain for acpi::madt::GicInterruptTranslationServiceEntry {}
// SAFETY: as above.
unsafe impl Plain for acpi::mcfg::McfgEntry {}
// SAFETY: as above.
unsafe impl Plain for acpi::spcr::Spcr {}
// SAFETY: as above.
unsafe impl Plain for acpi::fadt::Fadt {}

/// `T` from the first `size_of::<T>()` bytes of `bytes`, zero-filled where `bytes` is
/// shorter.
pub fn read<T: Plain>(bytes: &[u8]) -> T {
    let mut out = MaybeUninit::<T>::zeroed();
    let n = bytes.len().min(size_of::<T>());
    // SAFETY: `out` is `size_of::<T>()` writable bytes and `bytes` has at least `n`
    // readable ones; the regions do not overlap (one is a local).
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().cast::<u8>(), n) };
    // SAFETY: `T: Plain`, so the zeroed-then-overwritten bytes are a valid `T`.
    unsafe { out.assume_init() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_reads_zero() {
        let h: acpi::sdt::SdtHeader = read(b"APIC\x10\0\0\0");
        assert_eq!({ h.length }, 16);
        assert_eq!({ h.oem_revision }, 0);
        assert_eq!(h.signature.as_str(), "APIC");
    }
}
