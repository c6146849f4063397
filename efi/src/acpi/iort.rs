//! IORT: how a PCI requester ID becomes an ITS DeviceID (Arm DEN 0049E).
//!
//! A root-complex node's ID mappings point at an ITS group (requester ID →
//! DeviceID) or at an SMMU, whose own mappings go on to the ITS (requester ID →
//! StreamID → DeviceID). Both become `msi-map` entries for the kernel; SMMU
//! StreamIDs are reported (the kernel does not use an SMMU yet). Parallels has
//! no IORT: then requester ID = DeviceID, as on QEMU.

use alloc::string::String;
use alloc::vec::Vec;

use super::{AcpiError, Table, le32};
use crate::platform::IdMap;
use crate::report::line;

const ITS_GROUP: u8 = 0;
const ROOT_COMPLEX: u8 = 2;
const SMMU_V1_V2: u8 = 3;
const SMMU_V3: u8 = 4;

/// One ID mapping: `input..input + count` → `output..`, to node at `target`.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    input: u32,
    count: u32,
    output: u32,
    target: usize,
    single: bool,
}

/// A checked node: its type and bytes.
struct Node<'a> {
    kind: u8,
    bytes: &'a [u8],
}

fn node<'a>(t: &Table<'a>, at: usize) -> Result<Node<'a>, AcpiError> {
    let head = t
        .bytes
        .get(at..at + 16)
        .ok_or(AcpiError::EntryOutOfRange(t.sig, at))?;
    let len = usize::from(u16::from_le_bytes([head[1], head[2]]));
    let bytes = t
        .bytes
        .get(at..at + len)
        .filter(|_| len >= 16)
        .ok_or(AcpiError::EntryOutOfRange(t.sig, at))?;
    Ok(Node {
        kind: head[0],
        bytes,
    })
}

fn mappings(t: &Table<'_>, n: &Node<'_>, at: usize) -> Result<Vec<Mapping>, AcpiError> {
    let count = le32(n.bytes, 8).unwrap_or(0) as usize;
    let first = le32(n.bytes, 12).unwrap_or(0) as usize;
    let mut out = Vec::new();
    for i in 0..count.min(64) {
        let m = n
            .bytes
            .get(first + 20 * i..first + 20 * i + 20)
            .ok_or(AcpiError::EntryOutOfRange(t.sig, at))?;
        let word = |o: usize| le32(m, o).unwrap_or(0);
        out.push(Mapping {
            input: word(0),
            count: word(4).saturating_add(1),
            output: word(8),
            target: word(12) as usize,
            single: word(16) & 1 != 0,
        });
    }
    Ok(out)
}

/// Requester-ID maps of every root complex, composed through SMMUs to ITS groups.
pub fn parse(t: &Table<'_>, report: &mut String) -> Result<Vec<(u16, IdMap)>, AcpiError> {
    let count = le32(t.bytes, 36).ok_or(AcpiError::Truncated(t.sig))? as usize;
    let mut at = le32(t.bytes, 40).ok_or(AcpiError::Truncated(t.sig))? as usize;
    let mut out = Vec::new();
    for _ in 0..count.min(128) {
        let n = node(t, at)?;
        match n.kind {
            ITS_GROUP => {
                let ids = le32(n.bytes, 16).unwrap_or(0);
                let first = le32(n.bytes, 20);
                line(
                    report,
                    format_args!("iort its-group {ids} ITS, first id {first:?}"),
                );
            }
            ROOT_COMPLEX => {
                let segment = le32(n.bytes, 28).unwrap_or(0) as u16;
                for m in mappings(t, &n, at)?.into_iter().filter(|m| !m.single) {
                    route(t, segment, m, report, &mut out)?;
                }
            }
            SMMU_V1_V2 | SMMU_V3 => {
                let base = n
                    .bytes
                    .get(16..24)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
                line(
                    report,
                    format_args!("iort smmu (type {}) base {base:x?}", n.kind),
                );
            }
            other => line(report, format_args!("iort node type {other}")),
        }
        at += n.bytes.len();
    }
    Ok(out)
}

/// Follows one root-complex mapping to an ITS group, through an SMMU if need be.
fn route(
    t: &Table<'_>,
    segment: u16,
    m: Mapping,
    report: &mut String,
    out: &mut Vec<(u16, IdMap)>,
) -> Result<(), AcpiError> {
    let target = node(t, m.target)?;
    let its_of = |n: &Node<'_>| le32(n.bytes, 20).unwrap_or(0);
    match target.kind {
        ITS_GROUP => {
            line(
                report,
                format_args!(
                    "iort segment {segment} rid {:#x}+{:#x} -> its {} deviceid {:#x}",
                    m.input,
                    m.count,
                    its_of(&target),
                    m.output
                ),
            );
            out.push((
                segment,
                IdMap {
                    rid_base: m.input,
                    count: m.count,
                    out_base: m.output,
                    its: its_of(&target),
                },
            ));
        }
        SMMU_V1_V2 | SMMU_V3 => {
            line(
                report,
                format_args!(
                    "iort segment {segment} rid {:#x}+{:#x} -> smmu streamid {:#x}",
                    m.input, m.count, m.output
                ),
            );
            for s in mappings(t, &target, m.target)?
                .into_iter()
                .filter(|s| !s.single)
            {
                // The part of the SMMU's input range this root complex's output covers.
                let lo = m.output.max(s.input);
                let hi = (m.output.saturating_add(m.count)).min(s.input.saturating_add(s.count));
                let its = node(t, s.target)?;
                if lo < hi && its.kind == ITS_GROUP {
                    out.push((
                        segment,
                        IdMap {
                            rid_base: m.input + (lo - m.output),
                            count: hi - lo,
                            out_base: s.output + (lo - s.input),
                            its: its_of(&its),
                        },
                    ));
                }
            }
        }
        other => line(
            report,
            format_args!("iort: root complex maps to node type {other}"),
        ),
    }
    Ok(())
}
