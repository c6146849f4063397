//! A small AML walker: the static objects of the DSDT, not an interpreter.
//!
//! What the kernel needs from the DSDT on an Arm VM is static data: the PCI
//! host bridge's `_CRS` windows, its `_PRT` routing table and the `_CRS` of the
//! link devices it names, and the UART's `_CRS`. On QEMU (and, as far as we
//! know, on Parallels and VMware) these are `Name` objects holding buffers and
//! packages, so a walker that records `Device`, `Scope` and `Name` objects and
//! steps over everything else by its length is enough; a full AML interpreter
//! (the `aml` crate) is far more code and needs an allocator-heavy namespace.
//! Objects computed by methods are reported as such, not evaluated. An opcode
//! the walker cannot step over ends only its enclosing scope, with a note, so
//! one exotic object does not hide the rest of the namespace. ACPI 6.5 §20.
//! Resource templates are decoded in [`resource`].

pub mod resource;

use alloc::vec::Vec;
use core::fmt;

/// A four-character name segment.
pub type Seg = [u8; 4];
/// An absolute path, root first (at most 12 levels).
pub type Path = heapless::Vec<Seg, 12>;

/// How deep scopes may nest before the walker gives up on a subtree.
const MAX_DEPTH: usize = 12;
/// Package elements kept (QEMU's `_PRT` has 128).
const MAX_ELEMENTS: usize = 512;

/// A static value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer constant.
    Int(u64),
    /// A string (without its NUL).
    Str(&'a [u8]),
    /// A buffer's bytes.
    Buffer(&'a [u8]),
    /// A package (or variable package with a constant count).
    Package(Vec<Value<'a>>),
    /// A reference to another object, by name as written.
    Name(NameRef<'a>),
}

/// A name string as written in AML: root or parent prefixes plus segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef<'a> {
    /// Starts at the root (`\`).
    pub absolute: bool,
    /// Number of `^` prefixes.
    pub up: usize,
    /// The segments, 4 bytes each.
    pub segs: &'a [u8],
}

/// What a named object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object<'a> {
    /// `Device`.
    Device,
    /// `Name` with a static value.
    Name(Value<'a>),
    /// `Method` (not evaluated).
    Method,
}

/// Why part of the table was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The scope whose remaining objects were skipped.
    pub scope: Path,
    /// Offset in the AML stream.
    pub offset: usize,
    /// The opcode that could not be stepped over (second byte for `0x5B` ops).
    pub opcode: u16,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AML opcode {:#x} at {:#x} in {}: rest of that scope skipped",
            self.opcode,
            self.offset,
            PathDisplay(&self.scope)
        )
    }
}

/// Formats a path as `\_SB.PCI0`.
pub struct PathDisplay<'p>(pub &'p [Seg]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\\")?;
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(core::str::from_utf8(s).unwrap_or("????"))?;
        }
        Ok(())
    }
}

/// Every object the walker found, with its absolute path.
#[derive(Debug, Default)]
pub struct Namespace<'a> {
    /// `(path, object)` in table order.
    pub objects: Vec<(Path, Object<'a>)>,
    /// Where the walk had to skip.
    pub notes: Vec<Note>,
}

/// A cursor over AML bytes.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn le(&mut self, n: usize) -> Option<u64> {
        let s = self.take(n)?;
        Some(s.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
    }

    /// A PkgLength; returns the end offset of the package it starts (§20.2.4).
    fn pkg_end(&mut self) -> Option<usize> {
        let start = self.at;
        let lead = self.byte()?;
        let extra = usize::from(lead >> 6);
        let len = if extra == 0 {
            usize::from(lead & 0x3f)
        } else {
            let mut len = usize::from(lead & 0x0f);
            for i in 0..extra {
                len |= usize::from(self.byte()?) << (4 + 8 * i);
            }
            len
        };
        let end = start.checked_add(len)?;
        (end <= self.b.len() && end >= self.at).then_some(end)
    }

    /// A NameString (§20.2.2).
    fn name(&mut self) -> Option<NameRef<'a>> {
        let mut absolute = false;
        let mut up = 0;
        match self.b.get(self.at)? {
            b'\\' => {
                absolute = true;
                self.at += 1;
            }
            b'^' => {
                while self.b.get(self.at) == Some(&b'^') {
                    up += 1;
                    self.at += 1;
                }
            }
            _ => {}
        }
        let count = match *self.b.get(self.at)? {
            0x00 => {
                self.at += 1;
                0
            }
            0x2e => {
                self.at += 1;
                2
            }
            0x2f => {
                self.at += 1;
                usize::from(self.byte()?)
            }
            _ => 1,
        };
        let segs = self.take(4 * count)?;
        let ok = segs
            .iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
        ok.then_some(NameRef { absolute, up, segs })
    }

    /// A DataRefObject or a name (a package element), §20.2.3.
    fn value(&mut self, depth: usize) -> Option<Value<'a>> {
        let op = *self.b.get(self.at)?;
        let v = match op {
            0x00 => Value::Int(0),
            0x01 => Value::Int(1),
            0xff => Value::Int(u64::MAX),
            0x0a => return self.prefixed(1),
            0x0b => return self.prefixed(2),
            0x0c => return self.prefixed(4),
            0x0e => return self.prefixed(8),
            0x0d => {
                self.at += 1;
                let len = self.b.get(self.at..)?.iter().position(|&c| c == 0)?;
                let s = self.take(len)?;
                self.at += 1;
                return Some(Value::Str(s));
            }
            0x11 => return self.buffer(),
            0x12 | 0x13 => return self.package(op == 0x13, depth),
            b'\\' | b'^' | b'_' | b'A'..=b'Z' | 0x2e | 0x2f => return self.name().map(Value::Name),
            _ => return None,
        };
        self.at += 1;
        Some(v)
    }

    fn prefixed(&mut self, n: usize) -> Option<Value<'a>> {
        self.at += 1;
        self.le(n).map(Value::Int)
    }

    fn integer(&mut self) -> Option<u64> {
        match self.value(0)? {
            Value::Int(v) => Some(v),
            _ => None,
        }
    }

    fn buffer(&mut self) -> Option<Value<'a>> {
        self.at += 1;
        let end = self.pkg_end()?;
        let size = usize::try_from(self.integer()?).ok()?;
        let bytes = self.b.get(self.at..end)?;
        self.at = end;
        // BufferSize may exceed the initialiser (the rest is zero); never the reverse.
        Some(Value::Buffer(&bytes[..bytes.len().min(size)]))
    }

    fn package(&mut self, var: bool, depth: usize) -> Option<Value<'a>> {
        self.at += 1;
        let end = self.pkg_end()?;
        let count = if var {
            self.integer()?
        } else {
            u64::from(self.byte()?)
        };
        let mut out = Vec::new();
        while self.at < end && out.len() < MAX_ELEMENTS.min(count as usize) {
            if depth >= MAX_DEPTH {
                return None;
            }
            out.push(self.value(depth + 1)?);
        }
        self.at = end;
        Some(Value::Package(out))
    }
}

/// Resolves a name written in `scope` to an absolute path (for definitions: where
/// the object is created).
pub fn resolve(scope: &[Seg], name: &NameRef<'_>) -> Option<Path> {
    let mut path: Path = if name.absolute {
        Path::new()
    } else {
        let keep = scope.len().checked_sub(name.up)?;
        Path::from_slice(&scope[..keep]).ok()?
    };
    for seg in name.segs.chunks_exact(4) {
        path.push([seg[0], seg[1], seg[2], seg[3]]).ok()?;
    }
    Some(path)
}

impl<'a> Namespace<'a> {
    /// Walks a DSDT or SSDT body (the bytes after the 36-byte header).
    pub fn parse(aml: &'a [u8]) -> Self {
        let mut ns = Namespace::default();
        let mut c = Cursor { b: aml, at: 0 };
        ns.term_list(&mut c, aml.len(), &Path::new(), 0);
        ns
    }

    /// Walks objects until `end`; on an unknown opcode, notes it and skips to `end`.
    fn term_list(&mut self, c: &mut Cursor<'a>, end: usize, scope: &Path, depth: usize) {
        while c.at < end {
            let at = c.at;
            if self.term(c, scope, depth).is_none() {
                let opcode = match (c.b.get(at), c.b.get(at + 1)) {
                    (Some(0x5b), Some(&x)) => 0x5b00 | u16::from(x),
                    (Some(&x), _) => u16::from(x),
                    _ => 0,
                };
                self.notes.push(Note {
                    scope: scope.clone(),
                    offset: at,
                    opcode,
                });
                c.at = end;
                return;
            }
        }
    }

    /// One object of a term list; `None` if it cannot be stepped over.
    fn term(&mut self, c: &mut Cursor<'a>, scope: &Path, depth: usize) -> Option<()> {
        let op = c.byte()?;
        match op {
            0x10 => self.scope(c, scope, depth, None),
            0x08 => {
                let name = c.name()?;
                let value = c.value(0)?;
                let path = resolve(scope, &name)?;
                self.objects.push((path, Object::Name(value)));
                Some(())
            }
            0x14 => {
                let end = c.pkg_end()?;
                let name = c.name()?;
                self.objects.push((resolve(scope, &name)?, Object::Method));
                c.at = end;
                Some(())
            }
            // If, Else, While: bodies are code; step over.
            0xa0..=0xa2 => {
                c.at = c.pkg_end()?;
                Some(())
            }
            0x06 => c.name().and(c.name()).map(|_| ()),
            0x15 => c.name().and(c.take(2)).map(|_| ()),
            0x5b => self.extended(c, scope, depth),
            _ => None,
        }
    }

    fn extended(&mut self, c: &mut Cursor<'a>, scope: &Path, depth: usize) -> Option<()> {
        match c.byte()? {
            0x82 => self.scope(c, scope, depth, Some(Object::Device)),
            // Processor, PowerResource, ThermalZone: scopes whose own data we skip.
            0x83..=0x85 => {
                c.at = c.pkg_end()?;
                Some(())
            }
            // Field, IndexField, BankField.
            0x81 | 0x86 | 0x87 => {
                c.at = c.pkg_end()?;
                Some(())
            }
            // OperationRegion: name, space, offset, length (constants here).
            0x80 => {
                c.name()?;
                c.byte()?;
                c.integer()?;
                c.integer().map(|_| ())
            }
            0x01 => c.name().and(c.byte()).map(|_| ()),
            0x02 => c.name().map(|_| ()),
            _ => None,
        }
    }

    /// `Scope` or `Device`: a package holding a name and a term list.
    fn scope(
        &mut self,
        c: &mut Cursor<'a>,
        scope: &Path,
        depth: usize,
        object: Option<Object<'a>>,
    ) -> Option<()> {
        let end = c.pkg_end()?;
        let name = c.name()?;
        let inner = resolve(scope, &name)?;
        if let Some(o) = object {
            self.objects.push((inner.clone(), o));
        }
        if depth < MAX_DEPTH {
            self.term_list(c, end, &inner, depth + 1);
        }
        c.at = end;
        Some(())
    }

    /// The object at exactly `path`.
    pub fn get(&self, path: &[Seg]) -> Option<&Object<'a>> {
        self.objects
            .iter()
            .find(|(p, _)| p.as_slice() == path)
            .map(|(_, o)| o)
    }

    /// The object `name` of device `dev` (`_HID`, `_CRS`, ...).
    pub fn child(&self, dev: &[Seg], name: &Seg) -> Option<&Object<'a>> {
        let mut p = Path::from_slice(dev).ok()?;
        p.push(*name).ok()?;
        self.get(&p)
    }

    /// Devices whose `_HID` or `_CID` is one of `ids` (EISA IDs or strings).
    pub fn devices_with_id<'s>(&'s self, ids: &'s [&str]) -> impl Iterator<Item = &'s Path> + 's {
        self.objects
            .iter()
            .filter(|(_, o)| *o == Object::Device)
            .map(|(p, _)| p)
            .filter(move |p| {
                [b"_HID", b"_CID"].iter().any(|n| match self.child(p, n) {
                    Some(Object::Name(v)) => id_matches(v, ids),
                    _ => false,
                })
            })
    }

    /// Looks a reference up as ACPI does from `scope` (§5.3: a single segment is
    /// searched for in the scope and then its parents).
    pub fn lookup(&self, scope: &[Seg], name: &NameRef<'_>) -> Option<Path> {
        if name.absolute || name.up > 0 || name.segs.len() != 4 {
            let p = resolve(scope, name)?;
            return self.get(&p).map(|_| p);
        }
        for keep in (0..=scope.len()).rev() {
            let mut p = Path::from_slice(&scope[..keep]).ok()?;
            p.push([name.segs[0], name.segs[1], name.segs[2], name.segs[3]])
                .ok()?;
            if self.get(&p).is_some() {
                return Some(p);
            }
        }
        None
    }
}

fn id_matches(v: &Value<'_>, ids: &[&str]) -> bool {
    match v {
        Value::Int(n) => {
            let id = eisa_id(*n as u32);
            ids.iter().any(|i| i.as_bytes() == id)
        }
        Value::Str(s) => ids.iter().any(|i| i.as_bytes() == *s),
        Value::Package(list) => list.iter().any(|v| id_matches(v, ids)),
        _ => false,
    }
}

/// Decodes a compressed EISA ID (`EISAID("PNP0A08")` is `0x080AD041`).
pub fn eisa_id(v: u32) -> [u8; 7] {
    let v = v.swap_bytes();
    let letter = |shift: u32| b'@' + ((v >> shift) & 0x1f) as u8;
    let hex = |shift: u32| b"0123456789ABCDEF"[((v >> shift) & 0xf) as usize];
    [
        letter(26),
        letter(21),
        letter(16),
        hex(12),
        hex(8),
        hex(4),
        hex(0),
    ]
}

#[cfg(test)]
mod tests;
