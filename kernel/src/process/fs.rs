//! Names a process can `open`: the console, procfs, and the initrd's files.
//!
//! `/dev/console` is the serial console (reads take typed input, with a deadline;
//! writes print). `/proc/...` files are generated at `open` (`procfs`). Every other
//! path is looked up in the initrd, read-only.

use abi::proc::OPEN_WRITE;
use abi::{Error, Rights};

use super::file::{Contents, File};
use super::user::UserRange;
use crate::arch::usercopy::copy_to_user;

/// Opens `path` with `flags`; returns the file and the rights its handle gets.
pub fn open(path: &str, flags: u32) -> Result<(File, Rights), Error> {
    if path == "/dev/console" {
        return Ok((File::new(Contents::Console), Rights::READ | Rights::WRITE));
    }
    if flags & OPEN_WRITE != 0 {
        return Err(Error::EPERM); // procfs and the initrd are read-only
    }
    if let Some(rest) = path.strip_prefix("/proc") {
        let data = super::procfs::generate(rest).ok_or(Error::ENOENT)?;
        return Ok((File::new(Contents::Owned(data.into())), Rights::READ));
    }
    let rd = super::table::initrd().ok_or(Error::ENOENT)?;
    if let Some(data) = rd.find(path) {
        return Ok((File::new(Contents::Static(data)), Rights::READ));
    }
    // A directory: the files under it, one `name size` line each.
    let dir = alloc::format!("{}/", path.trim_matches('/'));
    let dir = if dir == "/" { "" } else { dir.as_str() };
    let mut listing = alloc::string::String::new();
    for (name, size) in rd.files().filter(|(n, _)| n.starts_with(dir)) {
        use core::fmt::Write;
        let _ = writeln!(listing, "{} {size}", &name[dir.len()..]);
    }
    if listing.is_empty() {
        return Err(Error::ENOENT);
    }
    Ok((
        File::new(Contents::Owned(listing.into_bytes().into())),
        Rights::READ,
    ))
}

/// Reads typed console input into the user buffer: waits until at least one byte
/// arrived or `deadline` passed (`ETIMEDOUT`), then takes what is buffered (up to the
/// buffer's size) without waiting more.
pub fn read_console(range: UserRange, deadline: u64) -> Result<usize, Error> {
    if range.len == 0 {
        return Ok(0);
    }
    let mut buf = alloc::vec![0u8; range.len.min(4096)];
    let Some(first) = crate::console::input::read_byte_until(deadline) else {
        return Err(if crate::sched::current_user_killed() {
            Error::ECANCELED
        } else {
            Error::ETIMEDOUT
        });
    };
    buf[0] = first;
    let mut n = 1;
    while n < buf.len() {
        match crate::console::input::read_byte_until(0) {
            Some(b) => {
                buf[n] = b;
                n += 1;
            }
            None => break,
        }
    }
    copy_to_user(range.addr, &buf[..n]).map_err(|_| Error::EFAULT)?;
    Ok(n)
}

/// Prints bytes from a process on the console.
pub fn write_console(bytes: &[u8]) {
    crate::console::write_bytes(bytes);
}
