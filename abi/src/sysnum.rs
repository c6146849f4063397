//! `Sysnum`: every system call number, grouped with gaps as in ABI.md.
//!
//! One enum lists every call so the kernel dispatches from one `match` and an unknown number
//! is an `ENOSYS` (counted), never a panic. Groups start at multiples of 0x10 so a group can
//! grow without renumbering the others.

/// A system call number, passed in `x8`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sysnum {
    // 0x00 process
    /// `exit(code)`.
    Exit = 0x00,
    /// `spawn(path, argv, grants)`.
    Spawn = 0x01,
    /// `wait(pid | -1, WNOHANG)`.
    Wait = 0x02,
    /// `kill(pid)`.
    Kill = 0x03,
    /// `getpid()`.
    GetPid = 0x04,
    /// `yield()`.
    Yield = 0x05,
    // 0x10 memory
    /// `mem_map(len, prot)`; W^X enforced.
    MemMap = 0x10,
    /// `mem_unmap(addr, len)`.
    MemUnmap = 0x11,
    // 0x20 capabilities
    /// `cap_drop(h)`.
    CapDrop = 0x20,
    /// `cap_grant(pid, h, rights, MOVE | COPY)`.
    CapGrant = 0x21,
    /// `cap_replace(h, rights)`: drop rights in place.
    CapReplace = 0x22,
    /// `cap_info(h)`: type, rights, state.
    CapInfo = 0x23,
    // 0x30 time
    /// `clock_now()`.
    ClockNow = 0x30,
    /// `sleep_until(deadline)`.
    SleepUntil = 0x31,
    /// `notify_wait(mask, deadline)`.
    NotifyWait = 0x32,
    /// `notify_post(h, bits)`: set bits in the word a `Notification` capability names.
    NotifyPost = 0x33,
    /// `notify_cap()`: a `Notification` capability for the caller's own word.
    NotifyCap = 0x34,
    // 0x40 files
    /// `open(path)`: procfs, initrd.
    Open = 0x40,
    /// `read(h, buf, deadline)`.
    Read = 0x41,
    /// `write(h, buf)`.
    Write = 0x42,
    /// `console_fg(h, pid)`: the process Ctrl-C on the console ends (0: none), set
    /// through a console handle with `READ`.
    ConsoleFg = 0x43,
    // 0x50 network
    /// `sock_open(proto, event_bits)`: a `Socket` capability (`abi::net`).
    SockOpen = 0x50,
    /// `bind(h, addr, port)`: the local port (0: any free one); returns it.
    Bind = 0x51,
    /// `connect(h, addr, port, deadline)`.
    Connect = 0x52,
    /// `listen(h, backlog)`.
    Listen = 0x53,
    /// `accept(h, deadline)`: a new `Socket`, the peer's address and port.
    Accept = 0x54,
    /// `sendto(h, buf, len, addr, port, deadline)`: bytes taken.
    SendTo = 0x55,
    /// `recvfrom(h, buf, len, deadline)`: bytes, the sender's address and port.
    RecvFrom = 0x56,
    /// `shutdown(h, how)`.
    Shutdown = 0x57,
    // 0x60 devices
    /// `dev_info(h)`.
    DevInfo = 0x60,
    /// `dev_irq(dev, index)` -> a `Masked` line handle.
    DevIrq = 0x61,
    /// `irq_arm(h)`: Masked -> Armed.
    IrqArm = 0x62,
    /// `irq_wait(h, deadline)`: Armed -> Draining.
    IrqWait = 0x63,
    /// `irq_rearm(h)`: Draining -> Armed.
    IrqRearm = 0x64,
    /// `irq_mask(h)`: any -> Masked.
    IrqMask = 0x65,
    /// `mmio_map(dev, bar, offset, len)`; refuses MSI-X table/PBA pages.
    MmioMap = 0x66,
    /// `dma_alloc(dev, len, dir)`; honours the DMA mask.
    DmaAlloc = 0x67,
    /// `dev_bus_master(dev, on)`.
    DevBusMaster = 0x68,
    /// `dev_reset(dev)`.
    DevReset = 0x69,
    /// `dev_cfg_read(dev, offset)`: a 32-bit read of the device's configuration space.
    DevCfgRead = 0x6A,
    /// `netif_open(dev, bit, mac)`: the kernel's interface for a NIC, its frame area mapped.
    NetifOpen = 0x6B,
    /// `netif_kick(h, flags)`: frames were put in the interface's RX ring.
    NetifKick = 0x6C,
    // 0x70 system
    /// `power(h, action)`: power off or reboot, through a `Power` capability.
    Power = 0x70,
}

impl Sysnum {
    /// Every call, in numeric order.
    pub const ALL: [Sysnum; 43] = [
        Sysnum::Exit,
        Sysnum::Spawn,
        Sysnum::Wait,
        Sysnum::Kill,
        Sysnum::GetPid,
        Sysnum::Yield,
        Sysnum::MemMap,
        Sysnum::MemUnmap,
        Sysnum::CapDrop,
        Sysnum::CapGrant,
        Sysnum::CapReplace,
        Sysnum::CapInfo,
        Sysnum::ClockNow,
        Sysnum::SleepUntil,
        Sysnum::NotifyWait,
        Sysnum::NotifyPost,
        Sysnum::NotifyCap,
        Sysnum::Open,
        Sysnum::Read,
        Sysnum::Write,
        Sysnum::ConsoleFg,
        Sysnum::SockOpen,
        Sysnum::Bind,
        Sysnum::Connect,
        Sysnum::Listen,
        Sysnum::Accept,
        Sysnum::SendTo,
        Sysnum::RecvFrom,
        Sysnum::Shutdown,
        Sysnum::DevInfo,
        Sysnum::DevIrq,
        Sysnum::IrqArm,
        Sysnum::IrqWait,
        Sysnum::IrqRearm,
        Sysnum::IrqMask,
        Sysnum::MmioMap,
        Sysnum::DmaAlloc,
        Sysnum::DevBusMaster,
        Sysnum::DevReset,
        Sysnum::DevCfgRead,
        Sysnum::NetifOpen,
        Sysnum::NetifKick,
        Sysnum::Power,
    ];

    /// The value placed in `x8`.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }
}

impl TryFrom<u32> for Sysnum {
    /// The unknown number, handed back (the kernel answers `ENOSYS`).
    type Error = u32;

    fn try_from(v: u32) -> Result<Self, u32> {
        Ok(match v {
            0x00 => Sysnum::Exit,
            0x01 => Sysnum::Spawn,
            0x02 => Sysnum::Wait,
            0x03 => Sysnum::Kill,
            0x04 => Sysnum::GetPid,
            0x05 => Sysnum::Yield,
            0x10 => Sysnum::MemMap,
            0x11 => Sysnum::MemUnmap,
            0x20 => Sysnum::CapDrop,
            0x21 => Sysnum::CapGrant,
            0x22 => Sysnum::CapReplace,
            0x23 => Sysnum::CapInfo,
            0x30 => Sysnum::ClockNow,
            0x31 => Sysnum::SleepUntil,
            0x32 => Sysnum::NotifyWait,
            0x33 => Sysnum::NotifyPost,
            0x34 => Sysnum::NotifyCap,
            0x40 => Sysnum::Open,
            0x41 => Sysnum::Read,
            0x42 => Sysnum::Write,
            0x43 => Sysnum::ConsoleFg,
            0x50 => Sysnum::SockOpen,
            0x51 => Sysnum::Bind,
            0x52 => Sysnum::Connect,
            0x53 => Sysnum::Listen,
            0x54 => Sysnum::Accept,
            0x55 => Sysnum::SendTo,
            0x56 => Sysnum::RecvFrom,
            0x57 => Sysnum::Shutdown,
            0x60 => Sysnum::DevInfo,
            0x61 => Sysnum::DevIrq,
            0x62 => Sysnum::IrqArm,
            0x63 => Sysnum::IrqWait,
            0x64 => Sysnum::IrqRearm,
            0x65 => Sysnum::IrqMask,
            0x66 => Sysnum::MmioMap,
            0x67 => Sysnum::DmaAlloc,
            0x68 => Sysnum::DevBusMaster,
            0x69 => Sysnum::DevReset,
            0x6A => Sysnum::DevCfgRead,
            0x6B => Sysnum::NetifOpen,
            0x6C => Sysnum::NetifKick,
            0x70 => Sysnum::Power,
            other => return Err(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_call() {
        for s in Sysnum::ALL {
            assert_eq!(Sysnum::try_from(s.as_u32()), Ok(s));
        }
    }

    #[test]
    fn all_is_sorted_and_unique() {
        for w in Sysnum::ALL.windows(2) {
            assert!(w[0].as_u32() < w[1].as_u32());
        }
    }

    #[test]
    fn rejects_every_unknown_number_below_0x100() {
        let known = Sysnum::ALL.map(Sysnum::as_u32);
        for v in 0..0x100u32 {
            assert_eq!(Sysnum::try_from(v).is_ok(), known.contains(&v), "{v:#x}");
        }
        assert_eq!(Sysnum::try_from(u32::MAX), Err(u32::MAX));
    }
}
