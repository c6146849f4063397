//! Physical memory: the frame allocator and boot-time layout of RAM.

pub mod frames;
