//! The user-space runtime (processes arrive with the syscall layer).
#![no_std]
#![forbid(unsafe_code)]
