//! Decoding a system call: the registers of `svc #0` into one typed [`Call`].
//!
//! Everything about a call's form is checked here, in one `match`, before any handler
//! runs: the number (`x8`, an unknown one is `ENOSYS`), flag words (an undefined bit is
//! `EINVAL`, never ignored), rights (`Rights::from_bits`), protections (writable and
//! executable together is `EPERM`), handles and pids (32 bits, or `EBADH`/`ESRCH`), and
//! every pointer stays a `UserSlice`/`UserPtr` allegation for the handler to check and
//! copy. Pure, so the host tests drive it with every call and with random registers.

use abi::dev::{DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, NOTIFY_BITS};
use abi::net::{SHUT_WR, SOCK_ICMP, SOCK_TCP, SOCK_UDP};
use abi::proc::{
    ANY_CHILD, GRANT_COPY, GRANT_MOVE, GrantSpec, NO_FOREGROUND, OPEN_FLAGS, POWER_OFF,
    POWER_REBOOT, PROT_ALL, PROT_EXEC, PROT_READ, PROT_WRITE, WAIT_FLAGS, WNOHANG,
};
use abi::{Error, Handle, Rights, Sysnum};

use super::user::{UserPtr, UserSlice};

/// How `mem_map` memory may be used (W^X).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemAccess {
    /// Read-only.
    Read,
    /// Read-write, never executable.
    ReadWrite,
    /// Read-execute, never writable.
    ReadExecute,
}

/// `cap_grant` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMode {
    /// The capability leaves the caller.
    Move,
    /// The caller keeps it (plain objects only).
    Copy,
}

/// A decoded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `exit(status)`.
    Exit {
        /// Exit status.
        status: i32,
    },
    /// `spawn(path, args, grants)`.
    Spawn {
        /// The program's path.
        path: UserSlice,
        /// NUL-terminated arguments back to back.
        args: UserSlice,
        /// The grant array.
        grants: UserPtr<GrantSpec>,
        /// Entries in it.
        grant_count: u64,
    },
    /// `wait(pid | -1, flags)`.
    Wait {
        /// The child, or any.
        pid: Option<u32>,
        /// `WNOHANG`.
        nohang: bool,
    },
    /// `kill(pid)`.
    Kill {
        /// The victim.
        pid: u32,
    },
    /// `getpid()`.
    GetPid,
    /// `yield()`.
    Yield,
    /// `mem_map(_, len, prot)`.
    MemMap {
        /// Bytes (rounded up to pages by the handler).
        len: u64,
        /// Access.
        access: MemAccess,
    },
    /// `mem_unmap(addr, len)`.
    MemUnmap {
        /// Start.
        addr: u64,
        /// Bytes.
        len: u64,
    },
    /// `cap_drop(h)`.
    CapDrop {
        /// The capability.
        handle: Handle,
    },
    /// `cap_grant(pid, h, rights, mode)`.
    CapGrant {
        /// Receiving process.
        pid: u32,
        /// The capability.
        handle: Handle,
        /// Rights the receiver gets.
        rights: Rights,
        /// Move or copy.
        mode: GrantMode,
    },
    /// `cap_replace(h, rights)`.
    CapReplace {
        /// The capability.
        handle: Handle,
        /// Rights to keep.
        rights: Rights,
    },
    /// `cap_info(h)`.
    CapInfo {
        /// The capability.
        handle: Handle,
    },
    /// `clock_now()`.
    ClockNow,
    /// `sleep_until(deadline)`.
    SleepUntil {
        /// Absolute monotonic ns.
        deadline: u64,
    },
    /// `notify_wait(mask, deadline)`.
    NotifyWait {
        /// Bits to wait for (non-zero).
        mask: u64,
        /// Absolute monotonic ns (`u64::MAX` forever, 0 poll).
        deadline: u64,
    },
    /// `notify_post(h, bits)`.
    NotifyPost {
        /// A `Notification` capability.
        handle: Handle,
        /// Bits to set (non-zero).
        bits: u64,
    },
    /// `notify_cap()`.
    NotifyCap,
    /// `open(path, flags)`.
    Open {
        /// The path.
        path: UserSlice,
        /// `OPEN_READ` / `OPEN_WRITE`.
        flags: u32,
    },
    /// `read(h, buf, deadline)`.
    Read {
        /// The file.
        handle: Handle,
        /// Where to.
        buf: UserSlice,
        /// Absolute monotonic ns.
        deadline: u64,
    },
    /// `write(h, buf)`.
    Write {
        /// The file.
        handle: Handle,
        /// What.
        buf: UserSlice,
    },
    /// `console_fg(h, pid)`.
    ConsoleFg {
        /// A console handle with `READ`.
        handle: Handle,
        /// The caller or one of its children; `None` for nobody.
        pid: Option<u32>,
    },
    /// `sock_open(proto, event_bits)`.
    SockOpen {
        /// Which protocol.
        proto: SockProto,
        /// Bits set in the caller's notification word when the socket has news (0: none).
        events: u64,
    },
    /// `bind(h, addr, port)`.
    Bind {
        /// The socket.
        handle: Handle,
        /// Local address (0: any).
        addr: u32,
        /// Local port (0: any free one).
        port: u16,
    },
    /// `connect(h, addr, port, deadline)`.
    Connect {
        /// The socket.
        handle: Handle,
        /// Remote address.
        addr: u32,
        /// Remote port.
        port: u16,
        /// Absolute monotonic ns (0: do not wait).
        deadline: u64,
    },
    /// `listen(h, backlog)`.
    Listen {
        /// The socket.
        handle: Handle,
        /// Connections kept ready.
        backlog: u32,
    },
    /// `accept(h, deadline)`.
    Accept {
        /// The listener.
        handle: Handle,
        /// Absolute monotonic ns (0: do not wait).
        deadline: u64,
    },
    /// `sendto(h, buf, len, addr, port, deadline)`.
    SendTo {
        /// The socket.
        handle: Handle,
        /// The bytes.
        buf: UserSlice,
        /// Remote address (0: the connected one).
        addr: u32,
        /// Remote port.
        port: u16,
        /// Absolute monotonic ns (0: do not wait).
        deadline: u64,
    },
    /// `recvfrom(h, buf, len, deadline)`.
    RecvFrom {
        /// The socket.
        handle: Handle,
        /// Where the bytes go.
        buf: UserSlice,
        /// Absolute monotonic ns (0: do not wait).
        deadline: u64,
    },
    /// `shutdown(h, how)`.
    Shutdown {
        /// The socket.
        handle: Handle,
    },
    /// `power(h, action)`.
    Power {
        /// A `Power` capability.
        handle: Handle,
        /// What to do.
        action: PowerAction,
    },
    /// `dev_info(dev, buf)`: a `DevInfo` record at `buf`.
    DevInfo {
        /// A `Device` capability.
        handle: Handle,
        /// Where the record goes (at least `size_of::<DevInfo>()` bytes).
        buf: UserSlice,
    },
    /// `dev_irq(dev, index, bit)`: a `Masked` line for MSI-X entry (or MSI vector) `index`,
    /// posting notification bit `bit`.
    DevIrq {
        /// A `Device` capability.
        handle: Handle,
        /// The MSI-X table entry, or 0 for the MSI vector.
        index: u16,
        /// The notification bit (< 64).
        bit: u8,
    },
    /// `irq_arm`, `irq_rearm`, `irq_mask` on a line.
    Irq {
        /// An `IrqLine` capability.
        handle: Handle,
        /// Which call.
        op: IrqOp,
    },
    /// `irq_wait(h, deadline)`.
    IrqWait {
        /// An `IrqLine` capability.
        handle: Handle,
        /// Absolute deadline (ns).
        deadline: u64,
    },
    /// `mmio_map(dev, bar, offset, len)`.
    MmioMap {
        /// A `Device` capability.
        handle: Handle,
        /// BAR number (< 6).
        bar: u8,
        /// Page-aligned offset into the BAR.
        offset: u64,
        /// Page-aligned length.
        len: u64,
    },
    /// `dma_alloc(dev, len, dir, mask_bits)`.
    DmaAlloc {
        /// A `Device` capability.
        handle: Handle,
        /// Bytes (rounded up to pages).
        len: u64,
        /// `DMA_TO_DEVICE`, `DMA_FROM_DEVICE` or `DMA_BIDIRECTIONAL`.
        dir: u32,
        /// The device's reach: addresses below `2^mask_bits` (1..=64).
        mask_bits: u8,
    },
    /// `dev_bus_master(dev, on)`.
    DevBusMaster {
        /// A `Device` capability.
        handle: Handle,
        /// On or off.
        on: bool,
    },
    /// `dev_reset(dev)`.
    DevReset {
        /// A `Device` capability.
        handle: Handle,
    },
    /// `dev_cfg_read(dev, offset)`.
    DevCfgRead {
        /// A `Device` capability.
        handle: Handle,
        /// Byte offset in configuration space (checked by the device).
        offset: u64,
    },
    /// `netif_open(dev, bit, mac)`.
    NetifOpen {
        /// A NIC's `Device` capability.
        handle: Handle,
        /// The notification bit the kernel posts for TX frames.
        bit: u8,
        /// The interface's MAC.
        mac: [u8; 6],
    },
    /// `netif_kick(h, flags)`.
    NetifKick {
        /// A `NetIf` capability.
        handle: Handle,
        /// `abi::netif::KICK_POLLING`: the driver goes on polling.
        polling: bool,
    },
}

/// The line calls without arguments beyond the handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqOp {
    /// `irq_arm`: Masked -> Armed.
    Arm,
    /// `irq_rearm`: Draining -> Armed, once the kernel read the device's MSI delivery on.
    Rearm,
    /// `irq_mask`: Armed -> Draining (masked), others unchanged.
    Mask,
}

/// `sock_open`'s protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockProto {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// ICMP echo.
    Icmp,
}

/// What `power` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Switch off.
    Off,
    /// Restart.
    Reboot,
}

/// `power off` or `reboot`, as the log says it.
impl core::fmt::Display for PowerAction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PowerAction::Off => "power off",
            PowerAction::Reboot => "reboot",
        })
    }
}

fn u32_or(v: u64, e: Error) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| e)
}

fn port(v: u64) -> Result<u16, Error> {
    u16::try_from(v).map_err(|_| Error::EINVAL)
}

fn handle(v: u64) -> Result<Handle, Error> {
    u32_or(v, Error::EBADH).map(Handle)
}

fn irq(a: [u64; 6], op: IrqOp) -> Result<Call, Error> {
    Ok(Call::Irq {
        handle: handle(a[0])?,
        op,
    })
}

fn rights(v: u64) -> Result<Rights, Error> {
    Rights::from_bits(u32_or(v, Error::EINVAL)?).ok_or(Error::EINVAL)
}

fn mem_access(prot: u64) -> Result<MemAccess, Error> {
    let prot = u32_or(prot, Error::EINVAL)?;
    if prot & !PROT_ALL != 0 {
        return Err(Error::EINVAL);
    }
    if prot & PROT_WRITE != 0 && prot & PROT_EXEC != 0 {
        return Err(Error::EPERM);
    }
    match prot {
        PROT_READ => Ok(MemAccess::Read),
        p if p == PROT_READ | PROT_WRITE => Ok(MemAccess::ReadWrite),
        p if p == PROT_READ | PROT_EXEC => Ok(MemAccess::ReadExecute),
        _ => Err(Error::EINVAL),
    }
}

/// Decodes `svc #0` with `x8 = num` and arguments `a` (x0-x5).
pub fn decode(num: u64, a: [u64; 6]) -> Result<Call, Error> {
    let num = u32::try_from(num)
        .ok()
        .and_then(|n| Sysnum::try_from(n).ok())
        .ok_or(Error::ENOSYS)?;
    Ok(match num {
        Sysnum::Exit => Call::Exit {
            status: a[0] as u32 as i32,
        },
        Sysnum::Spawn => Call::Spawn {
            path: UserSlice::new(a[0], a[1]),
            args: UserSlice::new(a[2], a[3]),
            grants: UserPtr::new(a[4]),
            grant_count: a[5],
        },
        Sysnum::Wait => {
            let flags = u32_or(a[1], Error::EINVAL)?;
            if flags & !WAIT_FLAGS != 0 {
                return Err(Error::EINVAL);
            }
            let pid = match a[0] {
                ANY_CHILD => None,
                pid => Some(u32_or(pid, Error::ECHILD)?),
            };
            Call::Wait {
                pid,
                nohang: flags & WNOHANG != 0,
            }
        }
        Sysnum::Kill => Call::Kill {
            pid: u32_or(a[0], Error::ESRCH)?,
        },
        Sysnum::GetPid => Call::GetPid,
        Sysnum::Yield => Call::Yield,
        Sysnum::MemMap => Call::MemMap {
            len: a[1],
            access: mem_access(a[2])?,
        },
        Sysnum::MemUnmap => Call::MemUnmap {
            addr: a[0],
            len: a[1],
        },
        Sysnum::CapDrop => Call::CapDrop {
            handle: handle(a[0])?,
        },
        Sysnum::CapGrant => Call::CapGrant {
            pid: u32_or(a[0], Error::ESRCH)?,
            handle: handle(a[1])?,
            rights: rights(a[2])?,
            mode: match a[3] {
                m if m == u64::from(GRANT_MOVE) => GrantMode::Move,
                m if m == u64::from(GRANT_COPY) => GrantMode::Copy,
                _ => return Err(Error::EINVAL),
            },
        },
        Sysnum::CapReplace => Call::CapReplace {
            handle: handle(a[0])?,
            rights: rights(a[1])?,
        },
        Sysnum::CapInfo => Call::CapInfo {
            handle: handle(a[0])?,
        },
        Sysnum::ClockNow => Call::ClockNow,
        Sysnum::SleepUntil => Call::SleepUntil { deadline: a[0] },
        Sysnum::NotifyWait if a[0] == 0 => return Err(Error::EINVAL),
        Sysnum::NotifyWait => Call::NotifyWait {
            mask: a[0],
            deadline: a[1],
        },
        Sysnum::NotifyPost if a[1] == 0 => return Err(Error::EINVAL),
        Sysnum::NotifyPost => Call::NotifyPost {
            handle: handle(a[0])?,
            bits: a[1],
        },
        Sysnum::NotifyCap => Call::NotifyCap,
        Sysnum::Open => {
            let flags = u32_or(a[2], Error::EINVAL)?;
            if flags == 0 || flags & !OPEN_FLAGS != 0 {
                return Err(Error::EINVAL);
            }
            Call::Open {
                path: UserSlice::new(a[0], a[1]),
                flags,
            }
        }
        Sysnum::Read => Call::Read {
            handle: handle(a[0])?,
            buf: UserSlice::new(a[1], a[2]),
            deadline: a[3],
        },
        Sysnum::Write => Call::Write {
            handle: handle(a[0])?,
            buf: UserSlice::new(a[1], a[2]),
        },
        Sysnum::ConsoleFg => Call::ConsoleFg {
            handle: handle(a[0])?,
            pid: match u32_or(a[1], Error::ESRCH)? {
                NO_FOREGROUND => None,
                pid => Some(pid),
            },
        },
        Sysnum::SockOpen => Call::SockOpen {
            proto: match a[0] {
                v if v == u64::from(SOCK_UDP) => SockProto::Udp,
                v if v == u64::from(SOCK_TCP) => SockProto::Tcp,
                v if v == u64::from(SOCK_ICMP) => SockProto::Icmp,
                _ => return Err(Error::EINVAL),
            },
            events: a[1],
        },
        Sysnum::Bind => Call::Bind {
            handle: handle(a[0])?,
            addr: u32_or(a[1], Error::EINVAL)?,
            port: port(a[2])?,
        },
        Sysnum::Connect => Call::Connect {
            handle: handle(a[0])?,
            addr: u32_or(a[1], Error::EINVAL)?,
            port: port(a[2])?,
            deadline: a[3],
        },
        Sysnum::Listen => Call::Listen {
            handle: handle(a[0])?,
            backlog: u32_or(a[1], Error::EINVAL)?,
        },
        Sysnum::Accept => Call::Accept {
            handle: handle(a[0])?,
            deadline: a[1],
        },
        Sysnum::SendTo => Call::SendTo {
            handle: handle(a[0])?,
            buf: UserSlice::new(a[1], a[2]),
            addr: u32_or(a[3], Error::EINVAL)?,
            port: port(a[4])?,
            deadline: a[5],
        },
        Sysnum::RecvFrom => Call::RecvFrom {
            handle: handle(a[0])?,
            buf: UserSlice::new(a[1], a[2]),
            deadline: a[3],
        },
        Sysnum::Shutdown if a[1] != u64::from(SHUT_WR) => return Err(Error::EINVAL),
        Sysnum::Shutdown => Call::Shutdown {
            handle: handle(a[0])?,
        },
        Sysnum::Power => Call::Power {
            handle: handle(a[0])?,
            action: match a[1] {
                v if v == u64::from(POWER_OFF) => PowerAction::Off,
                v if v == u64::from(POWER_REBOOT) => PowerAction::Reboot,
                _ => return Err(Error::EINVAL),
            },
        },
        Sysnum::DevInfo => Call::DevInfo {
            handle: handle(a[0])?,
            buf: UserSlice::new(a[1], a[2]),
        },
        Sysnum::DevIrq => Call::DevIrq {
            handle: handle(a[0])?,
            index: u16::try_from(a[1]).map_err(|_| Error::EINVAL)?,
            bit: match a[2] {
                b if b < u64::from(NOTIFY_BITS) => b as u8,
                _ => return Err(Error::EINVAL),
            },
        },
        Sysnum::IrqArm => irq(a, IrqOp::Arm)?,
        Sysnum::IrqRearm => irq(a, IrqOp::Rearm)?,
        Sysnum::IrqMask => irq(a, IrqOp::Mask)?,
        Sysnum::IrqWait => Call::IrqWait {
            handle: handle(a[0])?,
            deadline: a[1],
        },
        Sysnum::MmioMap => Call::MmioMap {
            handle: handle(a[0])?,
            bar: match a[1] {
                b @ 0..6 => b as u8,
                _ => return Err(Error::EINVAL),
            },
            offset: a[2],
            len: a[3],
        },
        Sysnum::DmaAlloc => Call::DmaAlloc {
            handle: handle(a[0])?,
            len: a[1],
            dir: match u32_or(a[2], Error::EINVAL)? {
                d @ (DMA_TO_DEVICE | DMA_FROM_DEVICE | DMA_BIDIRECTIONAL) => d,
                _ => return Err(Error::EINVAL),
            },
            mask_bits: match a[3] {
                b @ 1..=64 => b as u8,
                _ => return Err(Error::EINVAL),
            },
        },
        Sysnum::DevBusMaster => Call::DevBusMaster {
            handle: handle(a[0])?,
            on: match a[1] {
                0 => false,
                1 => true,
                _ => return Err(Error::EINVAL),
            },
        },
        Sysnum::DevReset => Call::DevReset {
            handle: handle(a[0])?,
        },
        Sysnum::DevCfgRead => Call::DevCfgRead {
            handle: handle(a[0])?,
            offset: a[1],
        },
        Sysnum::NetifOpen => Call::NetifOpen {
            handle: handle(a[0])?,
            bit: match a[1] {
                b if b < u64::from(NOTIFY_BITS) => b as u8,
                _ => return Err(Error::EINVAL),
            },
            mac: match a[2] {
                m if m >> 48 == 0 => abi::netif::mac_from_u64(m),
                _ => return Err(Error::EINVAL),
            },
        },
        Sysnum::NetifKick => {
            if a[1] & !abi::netif::KICK_FLAGS != 0 {
                return Err(Error::EINVAL);
            }
            Call::NetifKick {
                handle: handle(a[0])?,
                polling: a[1] & abi::netif::KICK_POLLING != 0,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn call(num: Sysnum, a: [u64; 6]) -> Result<Call, Error> {
        decode(u64::from(num.as_u32()), a)
    }

    #[test]
    fn power_actions_read_as_words() {
        assert_eq!(alloc::format!("{}", PowerAction::Off), "power off");
        assert_eq!(alloc::format!("{}", PowerAction::Reboot), "reboot");
    }

    #[test]
    fn every_implemented_call_decodes_with_good_arguments() {
        let good: [(Sysnum, [u64; 6]); 44] = [
            (Sysnum::Exit, [7, 0, 0, 0, 0, 0]),
            (Sysnum::Spawn, [0x1000, 4, 0, 0, 0, 0]),
            (Sysnum::Wait, [ANY_CHILD, 1, 0, 0, 0, 0]),
            (Sysnum::Kill, [3, 0, 0, 0, 0, 0]),
            (Sysnum::GetPid, [0; 6]),
            (Sysnum::Yield, [0; 6]),
            (Sysnum::MemMap, [0, 4096, 3, 0, 0, 0]),
            (Sysnum::MemUnmap, [0x1000, 4096, 0, 0, 0, 0]),
            (Sysnum::CapDrop, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::CapGrant, [2, 0x8000_0000, 1, 1, 0, 0]),
            (Sysnum::CapReplace, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::CapInfo, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::ClockNow, [0; 6]),
            (Sysnum::SleepUntil, [5, 0, 0, 0, 0, 0]),
            (Sysnum::NotifyWait, [1, u64::MAX, 0, 0, 0, 0]),
            (Sysnum::NotifyPost, [0x8000_0000, 4, 0, 0, 0, 0]),
            (Sysnum::NotifyCap, [0; 6]),
            (Sysnum::Open, [0x1000, 3, 1, 0, 0, 0]),
            (Sysnum::Read, [0x8000_0000, 0x1000, 8, 0, 0, 0]),
            (Sysnum::Write, [0x8000_0000, 0x1000, 8, 0, 0, 0]),
            (Sysnum::ConsoleFg, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::Power, [0x8000_0000, 1, 0, 0, 0, 0]),
            (Sysnum::Power, [0x8000_0000, 2, 0, 0, 0, 0]),
            (Sysnum::SockOpen, [1, 0, 0, 0, 0, 0]),
            (Sysnum::SockOpen, [3, 1 << 5, 0, 0, 0, 0]),
            (Sysnum::Bind, [0x8000_0000, 0, 7777, 0, 0, 0]),
            (Sysnum::Connect, [0x8000_0000, 0x0a00_0202, 80, 5, 0, 0]),
            (Sysnum::Listen, [0x8000_0000, 4, 0, 0, 0, 0]),
            (Sysnum::Accept, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::SendTo, [0x8000_0000, 0x1000, 5, 0x0a00_0202, 53, 9]),
            (Sysnum::RecvFrom, [0x8000_0000, 0x1000, 5, 9, 0, 0]),
            (Sysnum::Shutdown, [0x8000_0000, 1, 0, 0, 0, 0]),
            (Sysnum::DevInfo, [0x8000_0000, 0x1000, 120, 0, 0, 0]),
            (Sysnum::DevIrq, [0x8000_0000, 2, 63, 0, 0, 0]),
            (Sysnum::IrqArm, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::IrqWait, [0x8000_0000, u64::MAX, 0, 0, 0, 0]),
            (Sysnum::IrqRearm, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::IrqMask, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::MmioMap, [0x8000_0000, 5, 0x1000, 0x1000, 0, 0]),
            (Sysnum::DmaAlloc, [0x8000_0000, 4096, 3, 64, 0, 0]),
            (Sysnum::DevBusMaster, [0x8000_0000, 1, 0, 0, 0, 0]),
            (Sysnum::DevReset, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::NetifKick, [0x8000_0000, 0, 0, 0, 0, 0]),
            (Sysnum::NetifKick, [0x8000_0000, 1, 0, 0, 0, 0]),
        ];
        for (num, a) in good {
            assert!(call(num, a).is_ok(), "{num:?}");
        }
        assert_eq!(
            call(Sysnum::Wait, [5, 0, 0, 0, 0, 0]),
            Ok(Call::Wait {
                pid: Some(5),
                nohang: false
            })
        );
        assert_eq!(
            call(Sysnum::Exit, [u64::MAX, 0, 0, 0, 0, 0]),
            Ok(Call::Exit { status: -1 })
        );
        assert_eq!(
            call(Sysnum::NetifKick, [0x8000_0000, 1, 0, 0, 0, 0]),
            Ok(Call::NetifKick {
                handle: Handle(0x8000_0000),
                polling: true
            })
        );
    }

    #[test]
    fn malformed_arguments_have_their_error() {
        assert_eq!(
            call(Sysnum::NetifKick, [0x8000_0000, 2, 0, 0, 0, 0]),
            Err(Error::EINVAL),
            "a kick flag that does not exist"
        );
        assert_eq!(
            call(Sysnum::Wait, [ANY_CHILD, 2, 0, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::Wait, [1 << 40, 0, 0, 0, 0, 0]),
            Err(Error::ECHILD)
        );
        assert_eq!(
            call(Sysnum::Kill, [1 << 33, 0, 0, 0, 0, 0]),
            Err(Error::ESRCH)
        );
        assert_eq!(
            call(Sysnum::MemMap, [0, 4096, 7, 0, 0, 0]),
            Err(Error::EPERM)
        );
        assert_eq!(
            call(Sysnum::MemMap, [0, 4096, 6, 0, 0, 0]),
            Err(Error::EPERM)
        );
        assert_eq!(
            call(Sysnum::MemMap, [0, 4096, 8, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::MemMap, [0, 4096, 0, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::CapDrop, [1 << 32, 0, 0, 0, 0, 0]),
            Err(Error::EBADH)
        );
        assert_eq!(
            call(Sysnum::CapGrant, [2, 0x8000_0000, 1 << 9, 1, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::CapGrant, [2, 0x8000_0000, 1, 3, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::NotifyWait, [0, 0, 0, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::NotifyPost, [0x8000_0000, 0, 0, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::Open, [0x1000, 3, 0, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::Open, [0x1000, 3, 4, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::Power, [0x8000_0000, 3, 0, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::Power, [0x8000_0000, 0, 0, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::ConsoleFg, [0x8000_0000, 1 << 32, 0, 0, 0, 0]),
            Err(Error::ESRCH)
        );
        assert_eq!(
            call(Sysnum::ConsoleFg, [0x8000_0000, 0, 0, 0, 0, 0]),
            Ok(Call::ConsoleFg {
                handle: Handle(0x8000_0000),
                pid: None
            })
        );
        assert_eq!(
            call(Sysnum::SockOpen, [4, 0, 0, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::Bind, [0x8000_0000, 0, 65536, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::Connect, [0x8000_0000, 1 << 32, 80, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        assert_eq!(
            call(Sysnum::Shutdown, [0x8000_0000, 2, 0, 0, 0, 0]),
            Err(Error::EINVAL)
        );
        let dev = 0x8000_0000;
        for bad in [
            call(Sysnum::DevIrq, [dev, 1 << 16, 0, 0, 0, 0]),
            call(Sysnum::DevIrq, [dev, 0, 64, 0, 0, 0]),
            call(Sysnum::MmioMap, [dev, 6, 0, 4096, 0, 0]),
            call(Sysnum::DmaAlloc, [dev, 4096, 0, 64, 0, 0]),
            call(Sysnum::DmaAlloc, [dev, 4096, 4, 64, 0, 0]),
            call(Sysnum::DmaAlloc, [dev, 4096, 1, 0, 0, 0]),
            call(Sysnum::DmaAlloc, [dev, 4096, 1, 65, 0, 0]),
            call(Sysnum::DevBusMaster, [dev, 2, 0, 0, 0, 0]),
        ] {
            assert_eq!(bad, Err(Error::EINVAL));
        }
        assert_eq!(
            call(Sysnum::IrqArm, [1 << 32, 0, 0, 0, 0, 0]),
            Err(Error::EBADH)
        );
        assert_eq!(decode(0x06, [0; 6]), Err(Error::ENOSYS));
        assert_eq!(decode(u64::MAX, [0; 6]), Err(Error::ENOSYS));
    }

    proptest! {
        #[test]
        fn random_registers_decode_or_fail_cleanly(num in 0u64..0x80, a: [u64; 6]) {
            match decode(num, a) {
                Ok(_) => prop_assert!(Sysnum::try_from(num as u32).is_ok()),
                Err(e) => prop_assert!(abi::Error::ALL.contains(&e)),
            }
        }
    }
}
