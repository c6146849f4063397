//! Links every program with `userland/link.ld` when building for the Capstan target.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg=-T{dir}/../link.ld");
        println!("cargo:rerun-if-changed={dir}/../link.ld");
    }
}
