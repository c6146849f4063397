//! `true`: does nothing, successfully (also the smallest program `spawn` can time).
#![no_std]
#![no_main]

capstan_rt::entry!(main);

fn main(_: &capstan_rt::Startup) -> i32 {
    0
}
