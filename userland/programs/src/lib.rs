//! Shared helpers of Capstan's user programs.
#![no_std]
