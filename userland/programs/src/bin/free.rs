//! `free`: memory in use and free.
#![no_std]
#![no_main]

use capstan_programs::tool::{self, Tool};
use capstan_rt::{Startup, entry, println};

entry!(main);

const TOOL: Tool = Tool {
    name: "free",
    usage: "usage: free\n  RAM (4 KiB frames) total, used and free; the kernel heap; DMA in quarantine.",
};

fn main(startup: &Startup) -> i32 {
    if let Err(status) = TOOL.no_args(startup) {
        return status;
    }
    let info = match tool::read_text("/proc/meminfo") {
        Ok(s) => s,
        Err(e) => return TOOL.fail("/proc/meminfo", e),
    };
    let get = |k| tool::record_u64(&info, k).unwrap_or(0);
    let (total, free) = (get("frames_total") * 4096, get("frames_free") * 4096);
    let (heap, heap_used) = (get("heap_bytes"), get("heap_used_bytes"));
    println!("{:<12} {:>12} {:>12} {:>12}", "", "total", "used", "free");
    println!(
        "{:<12} {:>12} {:>12} {:>12}",
        "frames",
        tool::bytes(total),
        tool::bytes(total - free.min(total)),
        tool::bytes(free)
    );
    println!(
        "{:<12} {:>12} {:>12} {:>12}",
        "kernel heap",
        tool::bytes(heap),
        tool::bytes(heap_used),
        tool::bytes(heap.saturating_sub(heap_used))
    );
    println!(
        "dma quarantined {}",
        tool::bytes(get("dma_quarantined_bytes"))
    );
    0
}
