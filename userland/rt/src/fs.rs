//! Files: the initrd, procfs and the console, read and written through handles.

use abi::proc::{OPEN_READ, OPEN_WRITE};
use abi::{Handle, Sysnum};
use alloc::vec::Vec;

use crate::sys;
use crate::time::FOREVER;

/// An open file; closed (its capability dropped) when dropped.
#[derive(Debug)]
pub struct File {
    handle: Handle,
}

impl File {
    /// Opens `path` for reading.
    pub fn open(path: &str) -> crate::Result<File> {
        Self::open_with(path, OPEN_READ)
    }

    /// Opens `path` with `flags` (`OPEN_READ`, `OPEN_WRITE`).
    pub fn open_with(path: &str, flags: u32) -> crate::Result<File> {
        let r = sys::call3(
            Sysnum::Open,
            path.as_ptr() as u64,
            path.len() as u64,
            u64::from(flags),
        )?;
        Ok(File {
            handle: Handle(r[0] as u32),
        })
    }

    /// The file's handle.
    pub fn handle(&self) -> Handle {
        self.handle
    }

    /// Reads into `buf`; 0 means end of file.
    pub fn read(&self, buf: &mut [u8]) -> crate::Result<usize> {
        read(self.handle, buf, FOREVER)
    }

    /// Reads the whole file.
    pub fn read_all(&self) -> crate::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match self.read(&mut chunk)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = crate::cap::drop(self.handle);
    }
}

/// Reads from handle `h` into `buf`, waiting until `deadline` for data.
pub fn read(h: Handle, buf: &mut [u8], deadline: u64) -> crate::Result<usize> {
    let r = sys::call4(
        Sysnum::Read,
        u64::from(h.raw()),
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
        deadline,
    )?;
    Ok(r[0] as usize)
}

/// Writes `buf` to handle `h`; returns the bytes written.
pub fn write(h: Handle, buf: &[u8]) -> crate::Result<usize> {
    let r = sys::call3(
        Sysnum::Write,
        u64::from(h.raw()),
        buf.as_ptr() as u64,
        buf.len() as u64,
    )?;
    Ok(r[0] as usize)
}

/// Reads a whole file by path.
pub fn read_file(path: &str) -> crate::Result<Vec<u8>> {
    File::open(path)?.read_all()
}

/// Opens `path` for writing (the console device, `/dev/console`).
pub fn open_write(path: &str) -> crate::Result<File> {
    File::open_with(path, OPEN_WRITE)
}
