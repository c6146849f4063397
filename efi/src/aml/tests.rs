//! The walker against QEMU's DSDT and hand-made AML.

use super::*;
use crate::fixtures;

fn seg(s: &str) -> Seg {
    s.as_bytes().try_into().unwrap()
}

#[test]
fn qemu_dsdt_objects() {
    let tables = fixtures::load("qemu-gicv3");
    let dsdt = tables.dsdt();
    let ns = Namespace::parse(&dsdt[36..]);
    assert!(ns.notes.is_empty(), "{:?}", ns.notes);
    let pci: std::vec::Vec<_> = ns.devices_with_id(&["PNP0A08", "PNP0A03"]).collect();
    assert_eq!(pci.len(), 1);
    assert_eq!(pci[0].as_slice(), &[seg("_SB_"), seg("PCI0")]);
    let Some(Object::Name(Value::Package(prt))) = ns.child(pci[0], b"_PRT") else {
        panic!("no static _PRT")
    };
    assert_eq!(prt.len(), 128);
    let Value::Package(first) = &prt[0] else {
        panic!()
    };
    assert_eq!(first[0], Value::Int(0xffff));
    let Value::Name(link) = &first[2] else {
        panic!()
    };
    let path = ns.lookup(pci[0], link).unwrap();
    assert_eq!(path.as_slice(), &[seg("_SB_"), seg("PCI0"), seg("GSI0")]);
    assert!(matches!(
        ns.child(&path, b"_CRS"),
        Some(Object::Name(Value::Buffer(_)))
    ));
    assert!(matches!(
        ns.child(pci[0], b"_CRS"),
        Some(Object::Name(Value::Buffer(_)))
    ));
    assert_eq!(ns.devices_with_id(&["ARMH0011"]).count(), 1);
}

#[test]
fn eisa_ids() {
    assert_eq!(&eisa_id(0x080a_d041), b"PNP0A08");
    assert_eq!(&eisa_id(0x030a_d041), b"PNP0A03");
}

#[test]
fn an_unknown_opcode_skips_only_its_scope() {
    // Scope(\_SB) { Device(A) { <0x5b 0x99 ...> Name(X, 1) } Name(B, 2) }
    let dev: &[u8] = &[
        0x5b, 0x82, 0x0b, b'A', b'_', b'_', b'_', 0x5b, 0x99, 0x08, b'X', b'_', b'_',
    ];
    let mut scope = std::vec![0x10, 0x00, b'\\', b'_', b'S', b'B', b'_'];
    scope.extend_from_slice(dev);
    scope.extend_from_slice(&[0x08, b'B', b'_', b'_', b'_', 0x0a, 2]);
    scope[1] = (scope.len() - 1) as u8;
    let ns = Namespace::parse(&scope);
    assert_eq!(ns.notes.len(), 1);
    assert_eq!(ns.notes[0].opcode, 0x5b99);
    assert_eq!(
        ns.get(&[seg("_SB_"), seg("B___")]),
        Some(&Object::Name(Value::Int(2)))
    );
    assert!(ns.get(&[seg("_SB_"), seg("A___")]).is_some());
}

#[test]
fn truncated_and_hostile_aml_is_not_a_panic() {
    let tables = fixtures::load("qemu-gicv2");
    let dsdt = tables.dsdt();
    for cut in (0..dsdt.len() - 36).step_by(97) {
        let _ = Namespace::parse(&dsdt[36..36 + cut]);
    }
    let mut flipped = dsdt[36..].to_vec();
    for i in (0..flipped.len()).step_by(13) {
        flipped[i] ^= 0x5a;
    }
    let _ = Namespace::parse(&flipped);
    // Deep nesting stops at the depth bound.
    let mut deep = std::vec::Vec::new();
    for _ in 0..200 {
        deep.extend_from_slice(&[0x12, 0x3f, 0x01]);
    }
    let _ = Namespace::parse(&[&[0x08, b'D', b'_', b'_', b'_'][..], &deep].concat());
}
