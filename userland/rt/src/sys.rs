//! The system call instruction: `svc #0`, number in `x8`, arguments in `x0`-`x5`.
//!
//! The kernel answers in `x0` (0, or a negative `abi::Error`) and `x1`-`x3` (results),
//! so every call decodes into `Result<[u64; 3], Error>` in one place (docs/abi.md).

use abi::{Error, Sysnum};

/// Issues system call `num` with up to six arguments; returns `x1`-`x3` on success.
pub fn call(num: Sysnum, args: [u64; 6]) -> Result<[u64; 3], Error> {
    let (x0, x1, x2, x3): (u64, u64, u64, u64);
    // SAFETY: `svc #0` enters the kernel, which reads only the registers named here and
    // validates every argument (pointers included) itself; it writes back x0-x3 and
    // preserves every other register, so nothing else the compiler relies on changes.
    unsafe {
        core::arch::asm!(
            "svc #0",
            in("x8") num.as_u32() as u64,
            inout("x0") args[0] => x0,
            inout("x1") args[1] => x1,
            inout("x2") args[2] => x2,
            inout("x3") args[3] => x3,
            in("x4") args[4],
            in("x5") args[5],
            options(nostack),
        );
    }
    decode(x0 as i64, [x1, x2, x3])
}

/// `x0` as the kernel left it: 0 is success; a negative value an `Error`.
pub fn decode(x0: i64, results: [u64; 3]) -> Result<[u64; 3], Error> {
    if x0 == 0 {
        return Ok(results);
    }
    let code = i32::try_from(x0).unwrap_or(i32::MIN);
    Err(Error::try_from(code).unwrap_or(Error::EINVAL))
}

/// A call with fewer arguments (the rest zero).
pub fn call0(num: Sysnum) -> Result<[u64; 3], Error> {
    call(num, [0; 6])
}

/// A call with one argument.
pub fn call1(num: Sysnum, a: u64) -> Result<[u64; 3], Error> {
    call(num, [a, 0, 0, 0, 0, 0])
}

/// A call with two arguments.
pub fn call2(num: Sysnum, a: u64, b: u64) -> Result<[u64; 3], Error> {
    call(num, [a, b, 0, 0, 0, 0])
}

/// A call with three arguments.
pub fn call3(num: Sysnum, a: u64, b: u64, c: u64) -> Result<[u64; 3], Error> {
    call(num, [a, b, c, 0, 0, 0])
}

/// A call with four arguments.
pub fn call4(num: Sysnum, a: u64, b: u64, c: u64, d: u64) -> Result<[u64; 3], Error> {
    call(num, [a, b, c, d, 0, 0])
}
