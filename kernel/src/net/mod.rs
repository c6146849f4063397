//! Networking: HTTP/1.1 client parsing (pure, host-tested) and, on the target,
//! the smoltcp glue over the virtio-net driver.

pub use ::dns;
#[cfg(target_os = "none")]
pub mod fetch;
pub mod gate;
pub use ::http;
pub mod ingress;
pub mod mode;
pub mod neigh;
pub mod reasm;
#[cfg(target_os = "none")]
pub mod resolve;
#[cfg(target_os = "none")]
pub mod stack;
#[cfg(target_os = "none")]
pub mod virtio;
