//! The UEFI side of the loader: boot services in, a kernel entry out.
//!
//! Everything that needs the firmware (options, configuration tables, memory
//! map, page allocation, `ExitBootServices`) is here; the decisions (what the
//! ACPI tables say, what RAM is, what the device tree holds) are in the `efi`
//! library, which the host tests run. Before `ExitBootServices` every refusal is
//! printed on the firmware console; after it, on the console UART.

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use efi::acpi::{Memory, Tables};
use efi::describe::describe;
use efi::devicetree::{self, Boot};
use efi::memmap::{self, Desc};
use efi::platform::Description;
use uefi::boot::{self, AllocateType, MemoryType};
use uefi::mem::memory_map::{MemoryMap, MemoryMapMut};
use uefi::proto::loaded_image::LoadedImage;
use uefi::table::cfg::ConfigTableEntry;
use uefi::{Status, println};

use crate::handoff;

/// The kernel `Image` this loader carries (`build.rs`).
static KERNEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kernel.bin"));

/// `EFI_DTB_TABLE_GUID`: a device tree the firmware offers (`-M virt,acpi=off`).
const DTB_GUID: uefi::Guid = uefi::guid!("b1b621d5-f19c-41a5-830b-d9152c69aae0");
/// Room for the device tree beside the report (QEMU's is under 8 KiB).
const DTB_ROOM: usize = 64 * 1024;
/// Most RAM ranges written to `/memory` (the kernel keeps 32 and warns about more).
const MAX_RAM: usize = 128;

/// Cleared just before `ExitBootServices`: after it the console is gone.
static BOOT_SERVICES: AtomicBool = AtomicBool::new(true);

/// Memory as the loader sees it before `ExitBootServices`: identity-mapped, and
/// readable only inside ranges the memory map describes as some kind of RAM.
struct UefiMemory {
    map: Vec<Desc>,
}

impl Memory for UefiMemory {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let end = addr.checked_add(len as u64)?;
        let mut at = addr;
        while at < end {
            let d = self
                .map
                .iter()
                .find(|d| memmap::readable(d.ty) && d.start <= at && at < d.end())?;
            at = d.end();
        }
        // SAFETY: UEFI identity-maps all memory it describes (UEFI 2.10 §2.3.6.4), and
        // every byte of [addr, end) lies in a descriptor of a RAM type checked above;
        // nothing writes ACPI table memory while the loader runs.
        Some(unsafe { core::slice::from_raw_parts(addr as usize as *const u8, len) })
    }
}

fn descriptors(report: Option<&mut String>) -> Result<Vec<Desc>, Status> {
    let map = boot::memory_map(MemoryType::LOADER_DATA).map_err(|e| e.status())?;
    let descs: Vec<Desc> = map
        .entries()
        .map(|d| Desc {
            ty: d.ty.0,
            start: d.phys_start,
            pages: d.page_count,
        })
        .collect();
    if let Some(r) = report {
        for (d, raw) in descs.iter().zip(map.entries()) {
            efi::report::line(
                r,
                format_args!(
                    "memmap {:<12} {:#014x}..{:#014x} attributes {:#x}",
                    memmap::type_name(d.ty),
                    d.start,
                    d.end(),
                    raw.att.bits()
                ),
            );
        }
    }
    Ok(descs)
}

fn config_table(guid: uefi::Guid) -> Option<u64> {
    uefi::system::with_config_table(|t: &[ConfigTableEntry]| {
        t.iter()
            .find(|e| e.guid == guid)
            .map(|e| e.address as usize as u64)
    })
}

/// The kernel command line: the load options, else `\capstan.txt` on the volume the
/// loader was started from (a VM whose firmware has no shell and no way to give an
/// EFI application options; docs/parallels-vmware.md).
fn command_line() -> heapless::String<{ efi::cmdline::MAX }> {
    let from_options = boot::open_protocol_exclusive::<LoadedImage>(boot::image_handle())
        .map(|img| efi::cmdline::from_load_options(img.load_options_as_bytes().unwrap_or(&[])))
        .unwrap_or_default();
    if !from_options.is_empty() {
        return from_options;
    }
    let Ok(fs) = boot::get_image_file_system(boot::image_handle()) else {
        return from_options;
    };
    let mut fs = uefi::fs::FileSystem::new(fs);
    match fs.read(uefi::cstr16!("\\capstan.txt")) {
        Ok(bytes) => efi::cmdline::from_text(&bytes),
        Err(_) => from_options,
    }
}

/// Prints a refusal on the firmware console and gives control back to it.
fn refuse(what: core::fmt::Arguments<'_>) -> Status {
    println!("capstan.efi: cannot boot: {what}");
    Status::UNSUPPORTED
}

/// Copies the kernel `Image` into fresh pages, `text_offset` above a 2 MiB boundary as
/// the arm64 boot protocol asks (the kernel maps itself in 2 MiB blocks); returns where
/// it starts and its size (header `image_size`, BSS included).
fn place_kernel() -> Result<(usize, usize), Status> {
    const ALIGN: usize = 2 << 20;
    let header = KERNEL.get(..64).ok_or(Status::LOAD_ERROR)?;
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    let (text_offset, size) = (word(8) as usize, word(16) as usize);
    if &header[56..60] != b"ARM\x64" || size < KERNEL.len() || text_offset >= ALIGN {
        return Err(Status::LOAD_ERROR);
    }
    let pages = (size + text_offset + ALIGN).div_ceil(4096);
    let base = boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages)
        .map_err(|e| e.status())?;
    let entry = (base.as_ptr() as usize).next_multiple_of(ALIGN) + text_offset;
    // SAFETY: `allocate_pages` gave us `pages` whole pages at `base`, owned by the loader
    // (and then the kernel); `entry + size` lies inside them (ALIGN bytes of slack cover
    // the rounding up and `text_offset`).
    let dst = unsafe { core::slice::from_raw_parts_mut(entry as *mut u8, size) };
    dst[..KERNEL.len()].copy_from_slice(KERNEL);
    dst[KERNEL.len()..].fill(0);
    Ok((entry, size))
}

/// Reads the initrd file named by `initrd=` from the volume the loader came from (QEMU's
/// EDK2 serves `-initrd` there as `initrd`) into fresh pages; returns `[start, end)`.
fn load_initrd(path: &str) -> Result<(u64, u64), Status> {
    let fs = boot::get_image_file_system(boot::image_handle()).map_err(|e| e.status())?;
    let mut fs = uefi::fs::FileSystem::new(fs);
    let name = uefi::CString16::try_from(path).map_err(|_| Status::INVALID_PARAMETER)?;
    let bytes = fs.read(name.as_ref()).map_err(|_| Status::NOT_FOUND)?;
    let pages = bytes.len().div_ceil(4096).max(1);
    let base = boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages)
        .map_err(|e| e.status())?;
    // SAFETY: fresh pages owned by the loader (then the kernel, which keeps them out of
    // its allocator as the initrd); `bytes` fits in them.
    let dst = unsafe { core::slice::from_raw_parts_mut(base.as_ptr(), bytes.len()) };
    dst.copy_from_slice(&bytes);
    let start = base.as_ptr() as u64;
    Ok((start, start + bytes.len() as u64))
}

/// Pages for the device tree (and the report inside it).
fn tree_buffer(report_len: usize) -> Result<&'static mut [u8], Status> {
    let pages = (DTB_ROOM + report_len).div_ceil(4096);
    let base = boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages)
        .map_err(|e| e.status())?;
    // SAFETY: fresh pages owned by the loader for good (the kernel keeps the tree).
    Ok(unsafe { core::slice::from_raw_parts_mut(base.as_ptr(), pages * 4096) })
}

#[uefi::entry]
fn efi_main() -> Status {
    let (cmdline, initrd_path) = efi::cmdline::take_initrd(&command_line());
    let probe = cmdline.split_whitespace().any(|w| w == "probe");
    let vendor = uefi::system::firmware_vendor();
    let mut firmware = heapless::String::<96>::new();
    let _ = core::fmt::write(
        &mut firmware,
        format_args!(
            "UEFI {} ({vendor} {:#x})",
            uefi::system::uefi_revision(),
            uefi::system::firmware_revision()
        ),
    );
    println!("capstan.efi: {firmware}, command line \"{cmdline}\"");
    let mut report = String::new();
    efi::report::line(&mut report, format_args!("firmware {firmware}"));
    let Ok(map) = descriptors(probe.then_some(&mut report)) else {
        return refuse(format_args!("no memory map"));
    };
    let mem = UefiMemory { map };
    let rsdp = config_table(ConfigTableEntry::ACPI2_GUID)
        .or_else(|| config_table(ConfigTableEntry::ACPI_GUID));
    let Some(rsdp) = rsdp else {
        let dtb = config_table(DTB_GUID);
        return refuse(format_args!(
            "no ACPI tables (device tree at {dtb:x?}): boot a device-tree machine with -kernel"
        ));
    };
    let description = match describe(&mem, rsdp, &mut report) {
        Ok(d) => d,
        Err(e) => {
            if probe {
                print_report(&report);
            }
            return refuse(format_args!("{e}"));
        }
    };
    if probe {
        if let Ok(t) = Tables::new(&mem, rsdp) {
            efi::acpi::dump(&t, &mut report);
        }
        print_report(&report);
    }
    let initrd = match initrd_path.as_deref().map(load_initrd) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(s)) => {
            let path = initrd_path.as_deref().unwrap_or("");
            return refuse(format_args!("cannot load the initrd {path}: {s}"));
        }
    };
    boot_kernel(
        &description,
        &cmdline,
        probe.then_some(report.as_str()),
        &firmware,
        initrd,
    )
}

fn print_report(report: &str) {
    for l in report.lines() {
        println!("capstan.efi: {l}");
    }
}

/// Places the kernel and the tree, leaves boot services and enters the kernel.
fn boot_kernel(
    d: &Description,
    cmdline: &str,
    report: Option<&str>,
    firmware: &str,
    initrd: Option<(u64, u64)>,
) -> Status {
    let (kernel, kernel_len) = match place_kernel() {
        Ok(k) => k,
        Err(_) if KERNEL.is_empty() => {
            return refuse(format_args!(
                "this capstan.efi carries no kernel (built without CAPSTAN_KERNEL_IMAGE)"
            ));
        }
        Err(s) => return refuse(format_args!("cannot place the kernel image: {s}")),
    };
    let tree = match tree_buffer(report.map_or(0, str::len)) {
        Ok(t) => t,
        Err(s) => return refuse(format_args!("no memory for the device tree: {s}")),
    };
    println!(
        "capstan.efi: kernel at {kernel:#x} ({} KiB), device tree at {:#x}; leaving UEFI",
        kernel_len >> 10,
        tree.as_ptr() as usize
    );
    BOOT_SERVICES.store(false, Ordering::Relaxed);
    // SAFETY: no protocol or pool allocation is used after this point: the kernel and
    // tree buffers are pages, and nothing allocated is dropped (this never returns).
    let mut map = unsafe { boot::exit_boot_services(None) };
    map.sort();
    let mut ram = [(0u64, 0u64); MAX_RAM];
    let descs = map.entries().map(|d| Desc {
        ty: d.ty.0,
        start: d.phys_start,
        pages: d.page_count,
    });
    let (n, _) = memmap::ram_ranges(descs, &mut ram);
    let boot = Boot {
        ram: &ram[..n],
        bootargs: cmdline,
        report,
        firmware,
        initrd,
    };
    let Ok(size) = devicetree::write(d, &boot, tree) else {
        handoff::fail_on_uart(
            &d.serial,
            "capstan.efi: cannot boot: the device tree does not fit",
        );
    };
    let ranges = [(kernel, kernel_len), (tree.as_ptr() as usize, size)];
    // SAFETY: boot services are gone; the image is a Capstan kernel placed as the boot
    // protocol asks, in LOADER_DATA pages; the tree is complete; the firmware's identity
    // map covers this code.
    unsafe { handoff::enter(kernel, tree.as_ptr() as usize, &ranges) }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if BOOT_SERVICES.load(Ordering::Relaxed) {
        println!("capstan.efi: panic: {info}");
    }
    loop {
        core::hint::spin_loop();
    }
}
