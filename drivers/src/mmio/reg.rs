//! Registers typed by what software may do with them: read, write, set or clear bits.
//!
//! A register layout (a `#[repr(C)]` struct used only for `offset_of!`) declares each
//! field as [`ReadOnly`], [`WriteOnly`], [`ReadWrite`], [`W1s`] or [`W1c`] around its
//! width, and [`reg!`](macro@crate::reg) turns a field into a [`Reg`]: its offset, typed
//! by the field. The accessors of [`Access`] take a `Reg` and exist only where the
//! hardware allows the access: `read` on all but write-only registers, `write` on
//! read-write and write-only ones, `modify` (read-modify-write) on read-write ones only,
//! and on the write-one-to-set and write-one-to-clear banks only `set(mask)` and
//! `clear(mask)`, which write the mask and nothing else. A read-modify-write of such a
//! bank writes back every bit that reads as 1: through a clear register it clears them
//! all (disables every enabled interrupt), through a set register it sets again what
//! another CPU may have just cleared. Reading a write-only register (`GICD_SGIR`, a
//! doorbell) returns nothing meaningful, and writing a read-only one (`GICD_TYPER`, a
//! virtio device's feature bits) is ignored or worse. None of these compiles
//! (`drivers/tests/ui/`). The field types are never instantiated; they exist for their
//! name and size (`repr(transparent)`).
//!
//! The same accessors work on a `Mmio` block and on a virtio register window
//! (`virtio::RegWindow`): each implements [`RawAccess`], the untyped loads and stores by
//! offset that drivers do not call themselves.

use core::marker::PhantomData;
use core::mem::size_of;

mod sealed {
    pub trait Sealed {}
}

/// Untyped loads and stores by byte offset, at every width a register can have: what a
/// register block provides so that [`Access`] works on it. Drivers use [`Access`].
pub trait RawAccess {
    /// 8-bit load at `offset`.
    fn load8(&self, offset: usize) -> u8;
    /// 16-bit load at `offset`.
    fn load16(&self, offset: usize) -> u16;
    /// 32-bit load at `offset`.
    fn load32(&self, offset: usize) -> u32;
    /// 64-bit load at `offset`.
    fn load64(&self, offset: usize) -> u64;
    /// 8-bit store at `offset`.
    fn store8(&self, offset: usize, value: u8);
    /// 16-bit store at `offset`.
    fn store16(&self, offset: usize, value: u16);
    /// 32-bit store at `offset`.
    fn store32(&self, offset: usize, value: u32);
    /// 64-bit store at `offset`.
    fn store64(&self, offset: usize, value: u64);
}

/// Implements [`RawAccess`] for a block type with its own `read8`..`read32` and
/// `write8`..`write32` (inherent or from another trait) and the named 64-bit pair:
/// `forward_raw_access!([T] Mmio<T>, read64, write64)`.
macro_rules! forward_raw_access {
    ([$($generics:tt)*] $block:ty, $read64:ident, $write64:ident) => {
        impl<$($generics)*> $crate::reg::RawAccess for $block {
            fn load8(&self, offset: usize) -> u8 {
                self.read8(offset)
            }
            fn load16(&self, offset: usize) -> u16 {
                self.read16(offset)
            }
            fn load32(&self, offset: usize) -> u32 {
                self.read32(offset)
            }
            fn load64(&self, offset: usize) -> u64 {
                self.$read64(offset)
            }
            fn store8(&self, offset: usize, value: u8) {
                self.write8(offset, value)
            }
            fn store16(&self, offset: usize, value: u16) {
                self.write16(offset, value)
            }
            fn store32(&self, offset: usize, value: u32) {
                self.write32(offset, value)
            }
            fn store64(&self, offset: usize, value: u64) {
                self.$write64(offset, value)
            }
        }
    };
}

pub(crate) use forward_raw_access;

/// A register's width: `u8`, `u16`, `u32` or `u64`.
pub trait Width: Copy + sealed::Sealed {
    /// Loads a value of this width (through the block's [`RawAccess`]).
    fn load<A: RawAccess + ?Sized>(regs: &A, offset: usize) -> Self;
    /// Stores a value of this width.
    fn store<A: RawAccess + ?Sized>(regs: &A, offset: usize, value: Self);
}

macro_rules! widths {
    ($($t:ty => $load:ident, $store:ident;)*) => {$(
        impl sealed::Sealed for $t {}
        impl Width for $t {
            fn load<A: RawAccess + ?Sized>(regs: &A, offset: usize) -> Self {
                regs.$load(offset)
            }
            fn store<A: RawAccess + ?Sized>(regs: &A, offset: usize, value: Self) {
                regs.$store(offset, value)
            }
        }
    )*};
}

widths! {
    u8 => load8, store8;
    u16 => load16, store16;
    u32 => load32, store32;
    u64 => load64, store64;
}

/// A read-only register (an ID, type or status register; a field the device owns).
#[repr(transparent)]
pub struct ReadOnly<T>(T);

/// A write-only register (a doorbell, `GICD_SGIR`): reading it is UNKNOWN or has effects.
#[repr(transparent)]
pub struct WriteOnly<T>(T);

/// A read-write register: plain reads and writes, and read-modify-write.
#[repr(transparent)]
pub struct ReadWrite<T>(T);

/// Write-one-to-set: 1 bits written set the state, 0 bits leave it; a read returns the
/// state (`GICD_ISENABLER`, `GICD_ISPENDR`). Only [`Access::set`] writes it.
#[repr(transparent)]
pub struct W1s<T>(T);

/// Write-one-to-clear: 1 bits written clear the state, 0 bits leave it; a read returns the
/// state (`GICD_ICENABLER`, `GICD_ICPENDR`). Only [`Access::clear`] writes it.
#[repr(transparent)]
pub struct W1c<T>(T);

/// A register field: its value type.
pub trait Field {
    /// The register's width.
    type Value: Width;
}

/// A field whose reads return its state.
pub trait Readable: Field {}

/// A field a plain write of a whole value sets.
pub trait Writable: Field {}

impl<T: Width> Field for ReadOnly<T> {
    type Value = T;
}
impl<T: Width> Field for WriteOnly<T> {
    type Value = T;
}
impl<T: Width> Field for ReadWrite<T> {
    type Value = T;
}
impl<T: Width> Field for W1s<T> {
    type Value = T;
}
impl<T: Width> Field for W1c<T> {
    type Value = T;
}

impl<T: Width> Readable for ReadOnly<T> {}
impl<T: Width> Readable for ReadWrite<T> {}
impl<T: Width> Readable for W1s<T> {}
impl<T: Width> Readable for W1c<T> {}

impl<T: Width> Writable for WriteOnly<T> {}
impl<T: Width> Writable for ReadWrite<T> {}

/// A register of field type `F` (or an array of them, `F = [W1c<u32>; 32]`) at a byte
/// offset of its block. Made by [`reg!`](macro@crate::reg) from a layout's field.
pub struct Reg<F> {
    offset: usize,
    _field: PhantomData<fn() -> F>,
}

impl<F> Clone for Reg<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for Reg<F> {}

impl<F> Reg<F> {
    /// The register at `offset` whose type is the one `field` projects a block onto; use
    /// [`reg!`](macro@crate::reg), which takes both from the same field. `field` is never
    /// called: no reference to device memory is ever made.
    #[doc(hidden)]
    pub const fn from_field<B>(offset: usize, field: fn(&B) -> &F) -> Self {
        let _ = field;
        Reg {
            offset,
            _field: PhantomData,
        }
    }

    /// Its byte offset in the block.
    pub const fn offset(self) -> usize {
        self.offset
    }

    /// The same register in a sub-block that sits `base` bytes into a larger block
    /// (`irqchip/gicd.rs`: the banks GICv2 and GICv3 share).
    pub const fn offset_by(self, base: usize) -> Self {
        Reg {
            offset: base + self.offset,
            _field: PhantomData,
        }
    }
}

impl<F, const N: usize> Reg<[F; N]> {
    /// Element `index` of the array; panics if it is out of range.
    pub const fn at(self, index: usize) -> Reg<F> {
        assert!(index < N, "register index out of range");
        Reg {
            offset: self.offset + index * size_of::<F>(),
            _field: PhantomData,
        }
    }
}

impl<const N: usize> Reg<[ReadWrite<u8>; N]> {
    /// Bytes `4 * index .. 4 * index + 4` as one 32-bit register, for the byte-accessible
    /// banks the spec also allows word accesses to (`GICD_IPRIORITYR`, `GICD_ITARGETSR`,
    /// IHI 0048B §4.3.11–§4.3.12, IHI 0069H §12.9.19); panics if it leaves the array.
    pub const fn word(self, index: usize) -> Reg<ReadWrite<u32>> {
        assert!(4 * index + 4 <= N, "register index out of range");
        Reg {
            offset: self.offset + 4 * index,
            _field: PhantomData,
        }
    }
}

/// The typed accessors, on every register block ([`RawAccess`]).
pub trait Access: RawAccess {
    /// Reads a register whose reads return its state.
    fn read<F: Readable>(&self, reg: Reg<F>) -> F::Value {
        F::Value::load(self, reg.offset)
    }

    /// Writes a whole value to a read-write or write-only register.
    fn write<F: Writable>(&self, reg: Reg<F>, value: F::Value) {
        F::Value::store(self, reg.offset, value)
    }

    /// Read-modify-write of a read-write register (not atomic: the caller serialises).
    fn modify<T: Width>(&self, reg: Reg<ReadWrite<T>>, f: impl FnOnce(T) -> T) {
        let value = self.read(reg);
        self.write(reg, f(value));
    }

    /// Sets the `mask` bits of a write-one-to-set register; the others are untouched.
    fn set<T: Width>(&self, reg: Reg<W1s<T>>, mask: T) {
        T::store(self, reg.offset, mask)
    }

    /// Clears the `mask` bits of a write-one-to-clear register; the others are untouched.
    fn clear<T: Width>(&self, reg: Reg<W1c<T>>, mask: T) {
        T::store(self, reg.offset, mask)
    }
}

impl<A: RawAccess + ?Sized> Access for A {}

/// The [`Reg`] of a field of a register layout: `reg!(Gicd, typer)`,
/// `reg!(GicrFrames, sgi.isenabler0)`. Its type is the field's, so a
/// `Reg<ReadOnly<u32>>` can only name a field declared `ReadOnly<u32>`.
#[macro_export]
macro_rules! reg {
    ($block:ty, $($field:ident).+) => {
        $crate::reg::Reg::from_field(
            ::core::mem::offset_of!($block, $($field).+),
            |block: &$block| &block.$($field).+,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::vec::Vec;

    #[repr(C)]
    struct Block {
        id: ReadOnly<u32>,
        ctl: ReadWrite<u16>,
        door: WriteOnly<u16>,
        set: [W1s<u32>; 2],
        clear: [W1c<u32>; 2],
        bytes: [ReadWrite<u8>; 8],
        wide: ReadWrite<u64>,
    }

    const ID: Reg<ReadOnly<u32>> = crate::reg!(Block, id);
    const CTL: Reg<ReadWrite<u16>> = crate::reg!(Block, ctl);
    const DOOR: Reg<WriteOnly<u16>> = crate::reg!(Block, door);
    const SET: Reg<[W1s<u32>; 2]> = crate::reg!(Block, set);
    const CLEAR: Reg<[W1c<u32>; 2]> = crate::reg!(Block, clear);
    const BYTES: Reg<[ReadWrite<u8>; 8]> = crate::reg!(Block, bytes);
    const WIDE: Reg<ReadWrite<u64>> = crate::reg!(Block, wide);

    /// Records every access as (offset, width, value) and answers loads with `value`.
    struct Log {
        value: u64,
        seen: RefCell<Vec<(usize, usize, u64)>>,
    }

    impl Log {
        fn new(value: u64) -> Log {
            Log {
                value,
                seen: RefCell::new(Vec::new()),
            }
        }
        fn note(&self, offset: usize, width: usize, value: u64) {
            self.seen.borrow_mut().push((offset, width, value));
        }
    }

    impl RawAccess for Log {
        fn load8(&self, offset: usize) -> u8 {
            self.note(offset, 1, 0);
            self.value as u8
        }
        fn load16(&self, offset: usize) -> u16 {
            self.note(offset, 2, 0);
            self.value as u16
        }
        fn load32(&self, offset: usize) -> u32 {
            self.note(offset, 4, 0);
            self.value as u32
        }
        fn load64(&self, offset: usize) -> u64 {
            self.note(offset, 8, 0);
            self.value
        }
        fn store8(&self, offset: usize, value: u8) {
            self.note(offset, 1, value.into());
        }
        fn store16(&self, offset: usize, value: u16) {
            self.note(offset, 2, value.into());
        }
        fn store32(&self, offset: usize, value: u32) {
            self.note(offset, 4, value.into());
        }
        fn store64(&self, offset: usize, value: u64) {
            self.note(offset, 8, value);
        }
    }

    #[test]
    fn offsets_follow_the_layout() {
        assert_eq!((ID.offset(), CTL.offset(), DOOR.offset()), (0, 4, 6));
        assert_eq!((SET.at(1).offset(), CLEAR.at(0).offset()), (12, 16));
        assert_eq!((BYTES.at(5).offset(), BYTES.word(1).offset()), (29, 28));
        assert_eq!((WIDE.offset(), ID.offset_by(0x80).offset()), (32, 0x80));
    }

    #[test]
    fn each_access_is_one_load_or_store_of_the_fields_width() {
        let regs = Log::new(0x1234_5678_9abc_def0);
        assert_eq!(regs.read(ID), 0x9abc_def0);
        regs.write(DOOR, 7);
        regs.modify(CTL, |v| v | 1);
        regs.set(SET.at(1), 1 << 3);
        regs.clear(CLEAR.at(1), 1 << 4);
        assert_eq!(regs.read(CLEAR.at(0)), 0x9abc_def0);
        regs.write(BYTES.word(1), 0xa0a0_a0a0);
        regs.write(BYTES.at(2), 0x80);
        regs.write(WIDE, 1);
        let seen = regs.seen.borrow();
        assert_eq!(
            *seen,
            [
                (0, 4, 0),
                (6, 2, 7),
                (4, 2, 0),
                (4, 2, 0xdef1),
                (12, 4, 1 << 3),
                (20, 4, 1 << 4),
                (16, 4, 0),
                (28, 4, 0xa0a0_a0a0),
                (26, 1, 0x80),
                (32, 8, 1),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "register index out of range")]
    fn an_index_past_the_array_panics() {
        let _ = SET.at(2);
    }
}
