//! Syscall error codes: negative `i32` values returned in `x0`.
//!
//! Every call returns `0` or one of these, so the runtime decodes a result into
//! `Result<_, Error>` with one `TryFrom`. Values are explicit and never reused: a user binary
//! built against an older `abi` must still read them right.

/// A syscall (or kernel-internal capability operation) failure.
///
/// The discriminant is the value placed in `x0`; see `docs/abi.md`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// Invalid or stale handle (wrong tag, index out of range, generation mismatch).
    EBADH = -1,
    /// The handle names a capability of another type.
    EWRONGTYPE = -2,
    /// The capability lacks a right the call needs.
    EACCES = -3,
    /// The capability is in the wrong type state for this call; state unchanged.
    EBADSTATE = -4,
    /// Invalid argument.
    EINVAL = -5,
    /// A user pointer failed validation.
    EFAULT = -6,
    /// Out of memory.
    ENOMEM = -7,
    /// A fixed-size table (capability slots, vectors) is full.
    ENOSPC = -8,
    /// The deadline passed.
    ETIMEDOUT = -9,
    /// Try again (non-blocking call found nothing).
    EAGAIN = -10,
    /// The capability was revoked while the caller waited on it.
    ECANCELED = -11,
    /// The resource is already in use (e.g. an INTID minted twice).
    EBUSY = -12,
    /// No such file or object.
    ENOENT = -13,
    /// Not an executable the loader accepts.
    ENOEXEC = -14,
    /// No child to wait for.
    ECHILD = -15,
    /// No such process.
    ESRCH = -16,
    /// Operation not permitted.
    EPERM = -17,
    /// Unknown syscall number.
    ENOSYS = -18,
    /// Out of range; for DMA: the device's DMA mask cannot be satisfied.
    ERANGE = -19,
    /// Connection refused.
    ECONNREFUSED = -20,
    /// Connection reset by peer.
    ECONNRESET = -21,
    /// Socket not connected.
    ENOTCONN = -22,
    /// Address already in use.
    EADDRINUSE = -23,
    /// No route to host.
    EHOSTUNREACH = -24,
    /// DNS resolution failed.
    ENAMERES = -25,
}

impl Error {
    /// Every error, in discriminant order.
    pub const ALL: [Error; 25] = [
        Error::EBADH,
        Error::EWRONGTYPE,
        Error::EACCES,
        Error::EBADSTATE,
        Error::EINVAL,
        Error::EFAULT,
        Error::ENOMEM,
        Error::ENOSPC,
        Error::ETIMEDOUT,
        Error::EAGAIN,
        Error::ECANCELED,
        Error::EBUSY,
        Error::ENOENT,
        Error::ENOEXEC,
        Error::ECHILD,
        Error::ESRCH,
        Error::EPERM,
        Error::ENOSYS,
        Error::ERANGE,
        Error::ECONNREFUSED,
        Error::ECONNRESET,
        Error::ENOTCONN,
        Error::EADDRINUSE,
        Error::EHOSTUNREACH,
        Error::ENAMERES,
    ];

    /// The value placed in `x0`.
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The error's name, as in the enum (`"EBUSY"`).
    pub const fn name(self) -> &'static str {
        match self {
            Error::EBADH => "EBADH",
            Error::EWRONGTYPE => "EWRONGTYPE",
            Error::EACCES => "EACCES",
            Error::EBADSTATE => "EBADSTATE",
            Error::EINVAL => "EINVAL",
            Error::EFAULT => "EFAULT",
            Error::ENOMEM => "ENOMEM",
            Error::ENOSPC => "ENOSPC",
            Error::ETIMEDOUT => "ETIMEDOUT",
            Error::EAGAIN => "EAGAIN",
            Error::ECANCELED => "ECANCELED",
            Error::EBUSY => "EBUSY",
            Error::ENOENT => "ENOENT",
            Error::ENOEXEC => "ENOEXEC",
            Error::ECHILD => "ECHILD",
            Error::ESRCH => "ESRCH",
            Error::EPERM => "EPERM",
            Error::ENOSYS => "ENOSYS",
            Error::ERANGE => "ERANGE",
            Error::ECONNREFUSED => "ECONNREFUSED",
            Error::ECONNRESET => "ECONNRESET",
            Error::ENOTCONN => "ENOTCONN",
            Error::EADDRINUSE => "EADDRINUSE",
            Error::EHOSTUNREACH => "EHOSTUNREACH",
            Error::ENAMERES => "ENAMERES",
        }
    }

    /// What the error means, in words, for messages to people.
    pub const fn message(self) -> &'static str {
        match self {
            Error::EBADH => "invalid or stale handle",
            Error::EWRONGTYPE => "wrong capability type",
            Error::EACCES => "missing right",
            Error::EBADSTATE => "wrong state for this operation",
            Error::EINVAL => "invalid argument",
            Error::EFAULT => "bad address",
            Error::ENOMEM => "out of memory",
            Error::ENOSPC => "table full",
            Error::ETIMEDOUT => "timed out",
            Error::EAGAIN => "try again",
            Error::ECANCELED => "cancelled",
            Error::EBUSY => "already in use",
            Error::ENOENT => "not found",
            Error::ENOEXEC => "not an executable",
            Error::ECHILD => "no child to wait for",
            Error::ESRCH => "no such process",
            Error::EPERM => "not permitted",
            Error::ENOSYS => "unknown system call",
            Error::ERANGE => "out of range",
            Error::ECONNREFUSED => "connection refused",
            Error::ECONNRESET => "connection reset",
            Error::ENOTCONN => "not connected",
            Error::EADDRINUSE => "address in use",
            Error::EHOSTUNREACH => "host unreachable",
            Error::ENAMERES => "name resolution failed",
        }
    }
}

/// `already in use (EBUSY)`: words first, the name for searching.
impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.message(), self.name())
    }
}

impl From<Error> for i32 {
    fn from(e: Error) -> i32 {
        e as i32
    }
}

impl TryFrom<i32> for Error {
    /// The unrecognised value, handed back.
    type Error = i32;

    fn try_from(v: i32) -> Result<Self, i32> {
        Ok(match v {
            -1 => Error::EBADH,
            -2 => Error::EWRONGTYPE,
            -3 => Error::EACCES,
            -4 => Error::EBADSTATE,
            -5 => Error::EINVAL,
            -6 => Error::EFAULT,
            -7 => Error::ENOMEM,
            -8 => Error::ENOSPC,
            -9 => Error::ETIMEDOUT,
            -10 => Error::EAGAIN,
            -11 => Error::ECANCELED,
            -12 => Error::EBUSY,
            -13 => Error::ENOENT,
            -14 => Error::ENOEXEC,
            -15 => Error::ECHILD,
            -16 => Error::ESRCH,
            -17 => Error::EPERM,
            -18 => Error::ENOSYS,
            -19 => Error::ERANGE,
            -20 => Error::ECONNREFUSED,
            -21 => Error::ECONNRESET,
            -22 => Error::ENOTCONN,
            -23 => Error::EADDRINUSE,
            -24 => Error::EHOSTUNREACH,
            -25 => Error::ENAMERES,
            other => return Err(other),
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn round_trip_every_error() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.as_i32(), -(i as i32) - 1, "values are dense from -1");
            assert_eq!(Error::try_from(e.as_i32()), Ok(*e));
            assert_eq!(i32::from(*e), e.as_i32());
        }
    }

    #[test]
    fn every_error_has_words_and_its_name() {
        for e in Error::ALL {
            assert_eq!(std::format!("{e:?}"), e.name());
            assert!(!e.message().is_empty());
            assert_eq!(
                std::format!("{e}"),
                std::format!("{} ({})", e.message(), e.name())
            );
        }
    }

    #[test]
    fn rejects_unknown_values() {
        for v in [0, 1, -26, i32::MIN, i32::MAX, 25] {
            assert_eq!(Error::try_from(v), Err(v));
        }
    }
}
