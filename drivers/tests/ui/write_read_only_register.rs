//! Rule: a read-only register (virtio `device_feature`: the device's feature bits) cannot
//! be written.
use drivers::reg;
use drivers::reg::{Access, ReadOnly, ReadWrite, Reg};

#[repr(C)]
struct CommonCfg {
    device_feature_select: ReadWrite<u32>,
    device_feature: ReadOnly<u32>,
}

const DFSELECT: Reg<ReadWrite<u32>> = reg!(CommonCfg, device_feature_select);
const DF: Reg<ReadOnly<u32>> = reg!(CommonCfg, device_feature);

fn offer_everything(common: &impl Access) {
    common.write(DFSELECT, 0);
    common.write(DF, u32::MAX);
}

fn main() {}
