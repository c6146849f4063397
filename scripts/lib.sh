# Shared helpers for Capstan's scripts: installing what they need, building the
# kernel image and starting QEMU. Sourced, not run. Every `ensure_*` is
# idempotent and installs only what is missing, so a fresh Debian machine works.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KERNEL_TARGET=aarch64-unknown-none-softfloat
BUILD_DIR="$ROOT/build"
KERNEL_ELF="$ROOT/target/$KERNEL_TARGET/release/capstan"
KERNEL_IMAGE="$BUILD_DIR/capstan.bin"
# The UEFI loader with the same kernel inside (efi/): what Parallels and VMware boot.
EFI_TARGET=aarch64-unknown-uefi
KERNEL_EFI="$BUILD_DIR/capstan.efi"
# EDK2 for QEMU (Debian qemu-efi-aarch64): the firmware of the UEFI + ACPI boot path.
EDK2_FIRMWARE=/usr/share/qemu-efi-aarch64/QEMU_EFI.fd
USER_TARGET=aarch64-unknown-none
INITRD="$BUILD_DIR/initrd.tar"

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_qemu: QEMU that can actually start the machines the scripts build, judged by
# starting one (the device set of scripts/run, paused, then `quit` on its monitor), not by
# the binary being on PATH. A failure that names a missing file is mapped to the Debian
# package that ships it, installed, and tried again (each package once: the -kernel and
# the UEFI machine may each miss one); anything else is printed whole.
ensure_qemu() {
    command -v qemu-system-aarch64 >/dev/null 2>&1 || apt_install qemu-system-arm || return 1
    [ -n "${CAPSTAN_QEMU_OK:-}" ] && return 0
    local out pkg tries=0 tried=" "
    while :; do
        out=$(qemu_preflight 2>&1) && { export CAPSTAN_QEMU_OK=1; return 0; }
        pkg=$(qemu_missing_package "$out")
        if [ -z "$pkg" ] || [ $tries -ge 3 ] || [[ "$tried" == *" $pkg "* ]]; then
            log "QEMU cannot start the virt machine the scripts use:"
            printf '%s\n' "$out" >&2
            [ -n "$pkg" ] && log "installing $pkg did not help"
            return 1
        fi
        log "QEMU preflight: $(head -1 <<<"$out")"
        apt_install "$pkg" || return 1
        tries=$((tries + 1)) tried+="$pkg "
    done
}

# One paused start of the scripts/run machine (every PCI device, user networking) that
# quits through the monitor at once, on the -kernel path and on the UEFI path (EDK2 as
# -bios); succeeds only if QEMU accepted both command lines.
qemu_preflight() {
    local img rc=0 boot
    img=$(mktemp)
    for boot in kernel uefi; do
        printf 'quit\n' | timeout 20 qemu-system-aarch64 $(with_user_net $(KERNEL_IMAGE=$img \
            KERNEL_EFI=$img INITRD=$img CAPSTAN_BOOT=$boot qemu_args 2 256M 1 msi) \
            | sed 's/ -nographic / /') -S -display none -monitor stdio -serial null >/dev/null \
            || rc=$?
    done
    rm -f "$img"
    return $rc
}

# qemu_missing_package ERROR_TEXT -> the Debian package that provides what QEMU missed.
qemu_missing_package() {
    case "$1" in
        *romfile*|*efi-*.rom*|*pxe-*.rom*) echo ipxe-qemu ;;
        *QEMU_EFI*|*AAVMF*|*qemu-efi*|*"$EDK2_FIRMWARE"*) echo qemu-efi-aarch64 ;;
        *vgabios*|*bios-256k*) echo seabios ;;
    esac
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v rustup >/dev/null 2>&1 || { echo "rustup is required (https://rustup.rs)" >&2; return 1; }
    # Host builds (build scripts, proc macros, host tests) link with the C toolchain.
    command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev || return 1
    # rust-toolchain.toml pins the toolchain, targets and components; this installs
    # whatever of it is missing and is a no-op otherwise.
    (cd "$ROOT" && rustup toolchain install >/dev/null)
}

# Python 3 runs the test drivers (console paste, network lab, benchmarks).
ensure_python() {
    command -v python3 >/dev/null 2>&1 || apt_install python3
}

objcopy_bin() {
    local sysroot host
    sysroot=$(cd "$ROOT" && rustc --print sysroot)
    host=$(cd "$ROOT" && rustc -vV | sed -n 's/^host: //p')
    echo "$sysroot/lib/rustlib/$host/bin/llvm-objcopy"
}

# One build, both boot paths: the ELF, the flat Image QEMU's -kernel loads, and
# capstan.efi, the UEFI loader that carries that same Image (efi/build.rs embeds it).
build_kernel() {
    ensure_rust
    log "building kernel ($KERNEL_TARGET) and capstan.efi ($EFI_TARGET)"
    (cd "$ROOT" && cargo build -q --release -p kernel --target "$KERNEL_TARGET") || return 1
    mkdir -p "$BUILD_DIR"
    "$(objcopy_bin)" -O binary "$KERNEL_ELF" "$KERNEL_IMAGE" || return 1
    (cd "$ROOT" && CAPSTAN_KERNEL_IMAGE="$KERNEL_IMAGE" cargo build -q --release -p efi \
        --target "$EFI_TARGET") || return 1
    cp "$ROOT/target/$EFI_TARGET/release/capstan-efi.efi" "$KERNEL_EFI"
    build_userland
}

# build_userland: the user programs (userland/, its own workspace, aarch64-unknown-none),
# stripped into build/initrd/bin/, packed as a ustar archive (what the kernel's initrd
# reader takes; QEMU loads it with -initrd). Reproducible: fixed owner, mode and mtime.
build_userland() {
    log "building user programs ($USER_TARGET) and the initrd"
    (cd "$ROOT/userland" && cargo build -q --release --target "$USER_TARGET") || return 1
    local stage="$BUILD_DIR/initrd" bin name
    rm -rf "$stage"; mkdir -p "$stage/bin"
    # One program per src/bin/NAME.rs and per src/bin/NAME/main.rs.
    for bin in "$ROOT"/userland/programs/src/bin/*.rs "$ROOT"/userland/programs/src/bin/*/main.rs; do
        name=$(basename "$bin" .rs)
        [ "$name" = main ] && name=$(basename "$(dirname "$bin")")
        "$(objcopy_bin)" --strip-all "$ROOT/userland/target/$USER_TARGET/release/$name" "$stage/bin/$name" || return 1
    done
    cp -r "$ROOT/userland/initrd/." "$stage/"
    # A truncated executable: the loader must refuse it (process tests).
    head -c 300 "$stage/bin/hello" >"$stage/bin/bad-elf"
    # Files only (no directory entries): paths carry the directories.
    (cd "$stage" && find . -type f | sed 's|^\./||' | sort |
        tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@0 --no-recursion \
            -cf "$INITRD" -T -)
}

# pci_devices EDU -> the PCI devices every machine gets (fixed slots), plus edu devices:
#   msi|intx  two edu with a 40-bit DMA mask on slots 2 and 6, which share INTx SPI 5
#             ((slot + pin - 1) % 4 = 2 for both); msi|intx is what the kernel should use
#   nodma     one edu with its default 28-bit DMA mask (below all RAM on virt)
#   none      no edu
# NICs have no network backend here (-nic none removes QEMU's default slirp NIC);
# scripts/netlab attaches one to a tap device.
pci_devices() {
    echo -nic none -device virtio-net-pci,addr=3 -device e1000,addr=4 \
        -device qemu-xhci,addr=5 -device virtio-gpu-pci,addr=7
    case "${1:-msi}" in
        msi|intx) echo -device edu,addr=2,dma_mask=0xffffffffff -device edu,addr=6,dma_mask=0xffffffffff ;;
        nodma) echo -device edu,addr=2 ;;
        none) ;;
    esac
}

# bridged_nics [noport] -> modern-only virtio-net functions (device 0x1041) behind bridges,
# on one QEMU hub so each one's frames reach the others: 01:01.0 behind a pci-bridge at
# slot 8, 02:01.0 behind a pci-bridge behind that one, and (unless `noport`: QEMU refuses a
# pcie-root-port on a machine without an MSI controller) 03:00.0 behind a pcie-root-port at
# slot 10. The slots make the three swizzle onto different INTx lines (virtio-net needs its
# INTx line alone). The kernel test `nics_behind_bridges...` (boot option bridges=N, N = 3
# or 2) exchanges frames on them.
bridged_nics() {
    echo -netdev hubport,id=hb1,hubid=1 -netdev hubport,id=hb2,hubid=1 \
        -device pci-bridge,id=br0,chassis_nr=1,addr=8 \
        -device virtio-net-pci,bus=br0,addr=1,disable-legacy=on,netdev=hb1,mac=52:54:00:bb:00:01 \
        -device pci-bridge,id=br1,chassis_nr=2,bus=br0,addr=2 \
        -device virtio-net-pci,bus=br1,addr=1,disable-legacy=on,netdev=hb2,mac=52:54:00:bb:00:02
    [ "${1:-}" = noport ] && return
    echo -netdev hubport,id=hb3,hubid=1 -device pcie-root-port,id=rp0,chassis=3,addr=10 \
        -device virtio-net-pci,bus=rp0,disable-legacy=on,netdev=hb3,mac=52:54:00:bb:00:03
}

# vnet_probe_nic -> a modern-only virtio-net at 00:11.0 on QEMU user networking with
# restrict=on (no frame leaves QEMU): the kernel test user_vnet_driver_probe_... grants it to
# `/bin/vnet --probe`, which ARPs for QEMU's own gateway and waits for the reply's interrupt.
vnet_probe_nic() {
    echo -netdev user,id=u9,restrict=on -device virtio-net-pci,netdev=u9,addr=0x11,disable-legacy=on
}

# qemu_args GIC MEM SMP [EDU] -> the common QEMU command line for the virt board.
# QEMU_MACHINE_OPTS, if set, is appended to the -M options (comma-separated), e.g.
# `its=off` for a GICv3 without an ITS (no MSI controller: PCI devices use INTx).
# QEMU_CPU replaces the CPU model (cortex-a72: ARMv8.0, fast under TCG; `max` has PAN).
# CAPSTAN_BOOT=uefi boots capstan.efi under EDK2 instead of the Image with -kernel: the
# firmware loads QEMU's -kernel file as an EFI application and passes -append as its load
# options, and the guest sees ACPI tables, no device tree (docs/boot.md).
qemu_args() {
    local gic=${1:-2} mem=${2:-1G} smp=${3:-1} boot="-kernel $KERNEL_IMAGE"
    [ "${CAPSTAN_BOOT:-kernel}" = uefi ] && boot="-bios $EDK2_FIRMWARE -kernel $KERNEL_EFI"
    echo -M "virt,gic-version=$gic${QEMU_MACHINE_OPTS:+,$QEMU_MACHINE_OPTS}" -cpu "${QEMU_CPU:-cortex-a72}" \
        -m "$mem" -smp "$smp" -nographic -no-reboot $boot -initrd "$INITRD" \
        $(pci_devices "${4:-msi}") $NO_OPTION_ROMS
}

# The NICs' PCI option ROMs (iPXE boot code for x86 and UEFI) are never run on virt with
# -kernel; without `romfile=` QEMU refuses to start when the ROM package (ipxe-qemu, a
# Recommends that --no-install-recommends skips) is missing. -global covers every instance,
# including NICs added on the command line.
NO_OPTION_ROMS="-global virtio-net-pci.romfile= -global e1000.romfile= -global e1000e.romfile="

# with_user_net QEMU_ARGS... -> the same arguments with the virtio-net NIC at slot 3 on QEMU
# user networking (slirp): the guest gets 10.0.2.15 by DHCP and reaches the host as 10.0.2.2.
with_user_net() {
    local args="$* " nic='-device virtio-net-pci,addr=3 '
    echo "${args/$nic/-netdev user,id=n0 -device virtio-net-pci,netdev=n0,addr=3 }"
}
