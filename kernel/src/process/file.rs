//! What a process's capability table holds, and the file objects behind `open`.
//!
//! Files are plain objects (copyable with `cap_grant` COPY): a read-only view of an
//! initrd file, a snapshot of a procfs file taken at `open` (so a read never sees a
//! torn line), or the console. Sockets, devices, their lines and DMA regions are linear
//! objects (`process::net`, `process::device`).

use alloc::sync::{Arc, Weak};

use abi::{CapType, Error};
use caps::cspace::Capability;

/// Everything a process can hold a handle to.
#[derive(Clone, Debug)]
pub enum Object {
    /// An open file.
    File(File),
    /// A process's notification word (`notify_post` sets bits in it). Weak: it does not
    /// keep the process alive, and posting after it ended is `ESRCH`.
    Notification(Weak<super::table::Process>),
    /// The right to power the machine off or reboot it (init's from boot).
    Power,
    /// A network socket (linear: one holder; dropping the last handle closes it).
    Socket(Arc<crate::net::stack::Socket>),
    /// A PCI function lent to a user-mode driver (linear).
    Device(Arc<super::device::UserDevice>),
    /// An interrupt line of a held device (linear, never moved).
    IrqLine(Arc<super::device::UserLine>),
    /// A DMA region of a held device, mapped in its holder (linear, never moved).
    DmaRegion(Arc<super::device::UserDma>),
    /// A driver's hold on a kernel network interface, its frame area mapped in the holder
    /// (linear, never moved).
    NetIf(Arc<super::device::UserNetif>),
}

impl Object {
    /// The object moved into process `pid`'s table: a socket learns its new owner (its
    /// news goes to that process from now on).
    pub fn moved_to(&self, pid: u32) {
        if let Object::Socket(s) = self {
            s.set_owner(pid);
        }
    }

    /// Whether it may leave its table (`cap_grant` MOVE, `spawn` grants): a device only
    /// while nothing hangs off it (`EBUSY`); lines and DMA regions never (they are bound
    /// to their holder's notification word and address space, and carry no `TRANSFER`);
    /// nor a `NetIf` (its area is mapped in the holder, its signal goes to the holder).
    pub fn movable(&self) -> Result<(), Error> {
        match self {
            Object::Device(d) if !d.is_bare() => Err(Error::EBUSY),
            Object::IrqLine(_) | Object::DmaRegion(_) | Object::NetIf(_) => Err(Error::EPERM),
            _ => Ok(()),
        }
    }
}

impl Capability for Object {
    fn cap_type(&self) -> CapType {
        match self {
            Object::File(_) => CapType::File,
            Object::Notification(_) => CapType::Notification,
            Object::Power => CapType::Power,
            Object::Socket(_) => CapType::Socket,
            Object::Device(_) => CapType::Device,
            Object::IrqLine(_) => CapType::IrqLine,
            Object::DmaRegion(_) => CapType::DmaRegion,
            Object::NetIf(_) => CapType::NetIf,
        }
    }
}

/// Where a file's bytes come from.
#[derive(Clone, Debug)]
pub enum Contents {
    /// A file of the initrd (lives as long as the kernel).
    Static(&'static [u8]),
    /// A snapshot (procfs).
    Owned(Arc<[u8]>),
    /// The console: reads take typed input, writes print.
    Console,
}

/// An open file: its contents and the read position.
#[derive(Clone, Debug)]
pub struct File {
    contents: Contents,
    pos: usize,
}

impl File {
    /// A file over `contents`, read from the start.
    pub fn new(contents: Contents) -> Self {
        File { contents, pos: 0 }
    }

    /// Whether this is the console.
    pub fn is_console(&self) -> bool {
        matches!(self.contents, Contents::Console)
    }

    /// Copies the next bytes into `buf`; 0 at the end. Not for the console (which blocks;
    /// see `syscall`).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let data: &[u8] = match &self.contents {
            Contents::Static(d) => d,
            Contents::Owned(d) => d,
            Contents::Console => return Err(Error::EINVAL),
        };
        let rest = data.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}
