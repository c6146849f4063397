//! Proof harnesses (Kani) and the same properties as ordinary tests.
#![no_std]
