//! Physical memory: the frame allocator and boot-time layout of RAM.

pub mod frames;
pub mod retired;

/// Where the RAM went at boot, so `mem` can account for every byte of `-m`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootMemory {
    /// RAM the firmware described.
    pub ram: usize,
    /// The kernel image, including its BSS (boot heap arena and boot stack).
    pub image: usize,
    /// The device tree blob (or firmware tables) kept for the kernel's life.
    pub firmware_tables: usize,
    /// Ranges the firmware reserved.
    pub reserved: usize,
    /// The kernel-stack arena (stacks and their unmapped guard pages).
    pub stacks: usize,
    /// Handed to the frame allocator.
    pub frames: usize,
}

impl BootMemory {
    /// What no allocator got: page rounding at the edges of the ranges above.
    pub fn rounding(&self) -> usize {
        self.ram.saturating_sub(
            self.image + self.firmware_tables + self.reserved + self.stacks + self.frames,
        )
    }
}

static BOOT_MEMORY: spin::Once<BootMemory> = spin::Once::new();

/// Records the boot layout (once, by `boot`).
pub fn record_boot_memory(m: BootMemory) {
    BOOT_MEMORY.call_once(|| m);
}

/// The boot layout, once recorded.
pub fn boot_memory() -> Option<BootMemory> {
    BOOT_MEMORY.get().copied()
}
