//! Puts the kernel image into `capstan.efi`: `CAPSTAN_KERNEL_IMAGE` names the flat
//! `Image` that `scripts/lib.sh`'s `build_kernel` just made; without it (host tests,
//! clippy) the loader carries no kernel and says so if it is ever run.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let dest = out.join("kernel.bin");
    println!("cargo:rerun-if-env-changed=CAPSTAN_KERNEL_IMAGE");
    println!("cargo:rerun-if-changed=build.rs");
    let image = env::var("CAPSTAN_KERNEL_IMAGE").unwrap_or_default();
    let result = if image.is_empty() {
        fs::write(&dest, b"")
    } else {
        println!("cargo:rerun-if-changed={image}");
        fs::copy(&image, &dest).map(|_| ())
    };
    if let Err(e) = result {
        println!("cargo:warning=cannot embed the kernel image {image:?}: {e}");
        std::process::exit(1);
    }
}
