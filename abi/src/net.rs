//! Argument encodings of the network calls (group 0x50).
//!
//! An IPv4 address travels as a `u32` whose most significant byte is the first of the
//! dotted quad (`10.0.2.2` is `0x0a00_0202`); ports as plain numbers. A socket is a
//! linear capability (`CapType::Socket`): moved by `cap_grant`, never copied, closed
//! when its handle is dropped or its process ends.

/// `sock_open`: a UDP socket.
pub const SOCK_UDP: u32 = 1;
/// `sock_open`: a TCP socket (connect, or bind + listen + accept).
pub const SOCK_TCP: u32 = 2;
/// `sock_open`: an ICMP echo socket. `sendto` takes an echo request (type 8, code 0,
/// at least 8 bytes) whose identifier and checksum the kernel fills in; `recvfrom`
/// gives the echo replies that carry the socket's identifier.
pub const SOCK_ICMP: u32 = 3;

/// `shutdown`: no more sending (TCP sends its FIN after what is queued).
pub const SHUT_WR: u32 = 1;

/// `sendto` address meaning "the connected remote".
pub const ADDR_CONNECTED: u32 = 0;

/// Largest datagram `sendto` takes and `recvfrom` returns on UDP and ICMP sockets.
pub const MAX_DATAGRAM: usize = 16 * 1024;

/// Sockets one process may hold (accepted connections included).
pub const MAX_SOCKETS_PER_PROCESS: usize = 16;

/// An IPv4 address from its four bytes.
pub const fn ipv4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// The four bytes of an encoded IPv4 address.
pub const fn ipv4_octets(addr: u32) -> [u8; 4] {
    addr.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_in_dotted_order() {
        assert_eq!(ipv4(10, 0, 2, 2), 0x0a00_0202);
        assert_eq!(ipv4_octets(0xc000_0201), [192, 0, 2, 1]);
    }
}
