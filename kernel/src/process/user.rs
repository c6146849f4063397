//! User pointers: an address and a length from a register, unchecked until checked.
//!
//! A syscall argument naming user memory is only an allegation. [`UserSlice`] and
//! [`UserPtr`] keep it that way in the type: the only way to touch the memory is to
//! check the range first (inside the user half, no wrap-around, a bounded length, the
//! right alignment) and then copy with the user-permission accessors
//! (`arch::usercopy`), which fault — and report `EFAULT` — on anything the process
//! itself could not access. Kernel addresses fail the range check before any access.

use abi::Error;

/// Lowest user address a pointer may name (page 0 is never mapped).
pub const USER_MIN: u64 = 0x1000;
/// One past the highest user address (the lower half's 48 bits).
pub const USER_END: u64 = 1 << 48;

/// An unchecked `(address, length)` pair from syscall arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSlice {
    addr: u64,
    len: u64,
}

/// A range that passed [`UserSlice::check`]: inside the user half and at most the
/// caller's bound long. Accessing it may still fault (unmapped or read-only pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRange {
    /// First byte.
    pub addr: usize,
    /// Bytes.
    pub len: usize,
}

impl UserSlice {
    /// The pair as passed; nothing is checked yet.
    pub const fn new(addr: u64, len: u64) -> Self {
        UserSlice { addr, len }
    }

    /// Checks the range: `EINVAL` if longer than `max_len`, `EFAULT` if any byte lies
    /// outside the user half or the range wraps. An empty range is valid anywhere.
    pub fn check(self, max_len: usize) -> Result<UserRange, Error> {
        if self.len > max_len as u64 {
            return Err(Error::EINVAL);
        }
        if self.len == 0 {
            return Ok(UserRange { addr: 0, len: 0 });
        }
        let end = self.addr.checked_add(self.len).ok_or(Error::EFAULT)?;
        if self.addr < USER_MIN || end > USER_END {
            return Err(Error::EFAULT);
        }
        Ok(UserRange {
            addr: self.addr as usize,
            len: self.len as usize,
        })
    }
}

/// An unchecked user address of a `T` (plain data: integers and `repr(C)` records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserPtr<T> {
    addr: u64,
    _t: core::marker::PhantomData<T>,
}

impl<T> UserPtr<T> {
    /// The address as passed.
    pub const fn new(addr: u64) -> Self {
        UserPtr {
            addr,
            _t: core::marker::PhantomData,
        }
    }

    /// Checks `count` consecutive `T`s at the address: in range (as for `UserSlice`) and
    /// aligned for `T` (`EFAULT` otherwise), at most `max` of them (`EINVAL`).
    pub fn check_array(self, count: u64, max: usize) -> Result<UserRange, Error> {
        if count > max as u64 {
            return Err(Error::EINVAL);
        }
        if !self.addr.is_multiple_of(core::mem::align_of::<T>() as u64) {
            return Err(Error::EFAULT);
        }
        let bytes = count
            .checked_mul(core::mem::size_of::<T>() as u64)
            .ok_or(Error::EINVAL)?;
        UserSlice::new(self.addr, bytes).check(max * core::mem::size_of::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_inside_the_user_half_pass() {
        let r = UserSlice::new(0x40_0000, 16).check(4096).unwrap();
        assert_eq!((r.addr, r.len), (0x40_0000, 16));
        assert_eq!(UserSlice::new(0, 0).check(1).unwrap().len, 0);
        assert!(UserSlice::new(USER_END - 8, 8).check(8).is_ok());
    }

    #[test]
    fn kernel_addresses_wraps_and_null_fail() {
        let bad = [
            (0, 8),
            (0xfff, 1),
            (USER_END - 4, 8),
            (0xffff_8000_4000_0000, 8),
            (0xffff_ffff_8008_0000, 1),
            (u64::MAX - 2, 8),
        ];
        for (addr, len) in bad {
            assert_eq!(
                UserSlice::new(addr, len).check(1 << 20),
                Err(Error::EFAULT),
                "{addr:#x}"
            );
        }
        assert_eq!(
            UserSlice::new(0x40_0000, 4097).check(4096),
            Err(Error::EINVAL)
        );
    }

    #[test]
    fn arrays_need_alignment_and_a_bound() {
        let p = UserPtr::<u64>::new(0x40_0004);
        assert_eq!(p.check_array(1, 4), Err(Error::EFAULT));
        let p = UserPtr::<u64>::new(0x40_0008);
        assert_eq!(p.check_array(5, 4), Err(Error::EINVAL));
        assert_eq!(p.check_array(u64::MAX, usize::MAX), Err(Error::EINVAL));
        assert_eq!(p.check_array(4, 4).unwrap().len, 32);
    }

    proptest! {
        #[test]
        fn a_checked_range_is_always_inside_the_user_half(addr: u64, len in 0u64..(1 << 21)) {
            if let Ok(r) = UserSlice::new(addr, len).check(1 << 21)
                && r.len > 0
            {
                prop_assert!(r.addr as u64 >= USER_MIN);
                prop_assert!(r.addr as u64 + r.len as u64 <= USER_END);
            }
        }
    }
}
