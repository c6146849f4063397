//! Networking: the frame gate (checks, reassembly, neighbours; pure, host-tested) and,
//! on the target, the smoltcp stack over the virtio-net driver with the sockets user
//! processes hold. DNS and HTTP are user-space libraries (userland/dns, userland/http).

pub mod dhcp_log;
pub mod gate;
pub mod ingress;
pub mod mode;
pub mod neigh;
pub mod netif_slot;
pub mod reasm;
#[cfg(target_os = "none")]
pub mod stack;
#[cfg(target_os = "none")]
pub mod virtio;
