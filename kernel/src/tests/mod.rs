//! Kernel tests that span subsystems (unit tests sit beside their code).

mod basics;
mod bridges;
mod dma;
mod net;
mod netif;
mod netlab;
mod pci;
mod process;
mod udriver;
mod vnet_probe;
