//! A flattened-device-tree writer into a fixed buffer, allocating nothing.
//!
//! The device tree the kernel boots with carries the memory map as it is at
//! `ExitBootServices`, so it is written after that call, when no allocator is
//! left: a writer that needs a heap (like `vm-fdt`) cannot run there. This one
//! writes the header, the reservation block and the structure block into the
//! caller's buffer and keeps property names in a small inline table that is
//! appended as the strings block at the end (Devicetree Specification v0.4
//! §5). It is checked by parsing its output with the `fdt` crate in the tests.

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const END: u32 = 9;
const HEADER: usize = 40;
/// Room for property names (every distinct name once, NUL-terminated).
const STRINGS: usize = 1024;

/// The buffer (or the names table) is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Writes one device tree into `buf`.
pub struct FdtWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
    struct_start: usize,
    strings: [u8; STRINGS],
    strings_len: usize,
    depth: usize,
}

impl<'b> FdtWriter<'b> {
    /// Starts a tree in `buf` with the given memory reservations.
    pub fn new(buf: &'b mut [u8], reservations: &[(u64, u64)]) -> Result<Self, Full> {
        let mut w = FdtWriter {
            buf,
            pos: HEADER,
            struct_start: 0,
            strings: [0; STRINGS],
            strings_len: 0,
            depth: 0,
        };
        for &(addr, size) in reservations.iter().chain(&[(0, 0)]) {
            w.put(&addr.to_be_bytes())?;
            w.put(&size.to_be_bytes())?;
        }
        w.struct_start = w.pos;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        let end = self.pos.checked_add(bytes.len()).ok_or(Full)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(Full)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    fn pad(&mut self) -> Result<(), Full> {
        while !self.pos.is_multiple_of(4) {
            self.put(&[0])?;
        }
        Ok(())
    }

    fn name_offset(&mut self, name: &str) -> Result<u32, Full> {
        let table = &self.strings[..self.strings_len];
        let mut at = 0;
        for s in table.split(|&b| b == 0) {
            if s == name.as_bytes() && at < self.strings_len {
                return Ok(at as u32);
            }
            at += s.len() + 1;
        }
        let off = self.strings_len;
        let end = off + name.len() + 1;
        let slot = self.strings.get_mut(off..end).ok_or(Full)?;
        slot[..name.len()].copy_from_slice(name.as_bytes());
        slot[name.len()] = 0;
        self.strings_len = end;
        Ok(off as u32)
    }

    /// Opens a node (the root's name is empty).
    pub fn begin_node(&mut self, name: &str) -> Result<(), Full> {
        self.put(&BEGIN_NODE.to_be_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.depth += 1;
        Ok(())
    }

    /// Closes the innermost open node.
    pub fn end_node(&mut self) -> Result<(), Full> {
        self.put(&END_NODE.to_be_bytes())?;
        self.depth = self.depth.saturating_sub(1);
        Ok(())
    }

    /// A property with a raw value.
    pub fn prop(&mut self, name: &str, value: &[u8]) -> Result<(), Full> {
        let off = self.name_offset(name)?;
        self.put(&PROP.to_be_bytes())?;
        self.put(&(value.len() as u32).to_be_bytes())?;
        self.put(&off.to_be_bytes())?;
        self.put(value)?;
        self.pad()
    }

    /// A property of big-endian 32-bit cells.
    pub fn cells(&mut self, name: &str, cells: &[u32]) -> Result<(), Full> {
        let off = self.name_offset(name)?;
        self.put(&PROP.to_be_bytes())?;
        self.put(&((cells.len() * 4) as u32).to_be_bytes())?;
        self.put(&off.to_be_bytes())?;
        for c in cells {
            self.put(&c.to_be_bytes())?;
        }
        Ok(())
    }

    /// A property of cells produced by an iterator (for long lists such as `reg` of
    /// many memory ranges or `interrupt-map`).
    pub fn cells_iter(
        &mut self,
        name: &str,
        cells: impl Iterator<Item = u32> + Clone,
    ) -> Result<(), Full> {
        let off = self.name_offset(name)?;
        let n = cells.clone().count();
        self.put(&PROP.to_be_bytes())?;
        self.put(&((n * 4) as u32).to_be_bytes())?;
        self.put(&off.to_be_bytes())?;
        for c in cells {
            self.put(&c.to_be_bytes())?;
        }
        Ok(())
    }

    /// A one-cell property.
    pub fn u32(&mut self, name: &str, v: u32) -> Result<(), Full> {
        self.cells(name, &[v])
    }

    /// A string list property (`compatible`); one string is a plain string property.
    pub fn strings(&mut self, name: &str, list: &[&str]) -> Result<(), Full> {
        let off = self.name_offset(name)?;
        let len: usize = list.iter().map(|s| s.len() + 1).sum();
        self.put(&PROP.to_be_bytes())?;
        self.put(&(len as u32).to_be_bytes())?;
        self.put(&off.to_be_bytes())?;
        for s in list {
            self.put(s.as_bytes())?;
            self.put(&[0])?;
        }
        self.pad()
    }

    /// An empty (boolean) property.
    pub fn flag(&mut self, name: &str) -> Result<(), Full> {
        self.prop(name, &[])
    }

    /// Ends the tree, writes the strings block and header; returns the total size.
    pub fn finish(mut self) -> Result<usize, Full> {
        while self.depth > 0 {
            self.end_node()?;
        }
        self.put(&END.to_be_bytes())?;
        let struct_size = self.pos - self.struct_start;
        let strings_start = self.pos;
        let strings = self.strings;
        self.put(&strings[..self.strings_len])?;
        let total = self.pos;
        let header = [
            MAGIC,
            total as u32,
            self.struct_start as u32,
            strings_start as u32,
            HEADER as u32,
            17,
            16,
            0,
            self.strings_len as u32,
            struct_size as u32,
        ];
        for (i, word) in header.iter().enumerate() {
            self.buf[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_the_fdt_crate() {
        let mut buf = [0u8; 1024];
        let mut w = FdtWriter::new(&mut buf, &[(0x4000_0000, 0x1000)]).unwrap();
        w.begin_node("").unwrap();
        w.u32("#address-cells", 2).unwrap();
        w.strings("compatible", &["capstan,acpi"]).unwrap();
        w.begin_node("uart@9000000").unwrap();
        w.strings("compatible", &["arm,pl011", "arm,primecell"])
            .unwrap();
        w.cells("reg", &[0, 0x0900_0000, 0, 0x1000]).unwrap();
        w.end_node().unwrap();
        w.begin_node("chosen").unwrap();
        w.strings("bootargs", &["probe"]).unwrap();
        let n = w.finish().unwrap();
        let fdt = fdt::Fdt::new(&buf[..n]).unwrap();
        let uart = fdt.find_node("/uart@9000000").unwrap();
        let c: std::vec::Vec<&str> = uart.compatible().unwrap().all().collect();
        assert_eq!(c, ["arm,pl011", "arm,primecell"]);
        assert_eq!(
            uart.property("reg").unwrap().value,
            &[0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]
        );
        assert_eq!(fdt.chosen().bootargs(), Some("probe"));
        assert_eq!(fdt.memory_reservations().count(), 1);
        // Both `compatible` properties share one name in the strings block.
        assert_eq!(fdt.strings().filter(|s| *s == "compatible").count(), 1);
    }

    #[test]
    fn a_small_buffer_is_full_not_a_panic() {
        let mut buf = [0u8; 60];
        let mut w = FdtWriter::new(&mut buf, &[]).unwrap();
        assert_eq!(
            w.begin_node("a-long-node-name-that-does-not-fit"),
            Err(Full)
        );
    }
}
