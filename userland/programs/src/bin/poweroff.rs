//! `poweroff`: switches the machine off.
#![no_std]
#![no_main]

use capstan_programs::tool::Tool;
use capstan_rt::{Startup, entry, system};

entry!(main);

const TOOL: Tool = Tool {
    name: "poweroff",
    usage: "usage: poweroff\n  Switches the machine off. Needs the Power capability: init holds it and\n  its shell hands a copy to poweroff and reboot only.",
};

fn main(startup: &Startup) -> i32 {
    if let Err(status) = TOOL.no_args(startup) {
        return status;
    }
    let Some(power) = system::power_cap() else {
        return TOOL.fail("no Power capability", abi::Error::EACCES);
    };
    TOOL.fail("the firmware refused", system::power_off(power))
}
