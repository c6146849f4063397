//! Property checkers over the real `caps` code, shared by Kani and proptest.
//!
//! A property proved by Kani and a property tested by proptest drift apart unless they are
//! the same function, so each property here takes plain inputs (numbers, small arrays of
//! operations) and asserts against the real `caps` types; `proofs.rs` feeds it `kani::any()`
//! and `tests/properties.rs` feeds it proptest strategies. Sizes are bounded (`Q` = 4,
//! at most `MAX_OPS` operations) so Kani terminates.

use core::cell::Cell;

use crate::reach;
use abi::{CapType, Error, Handle, Rights};
use caps::cspace::{CSpace, Capability};
use caps::dma::DmaDevice;
use caps::irq::Armed;
use caps::irq::IrqControl;
use caps::msi::{MsiData, MsiRange, MsiVector};
use caps::vring::{
    BufDir, Rejected, UsedError, Vring, check_used_elem, check_used_idx, ring_slot, used_pending,
    vring_need_event,
};

use crate::check::{Expect, NOT_IN_FLIGHT, expected, that};
use crate::fakes::{
    MAX_BUF, ModelDevice, ModelDmaHal, ModelGic, ModelRingMem, Must, Q, Rig, control, leak,
};

/// Longest operation sequence a property accepts.
pub const MAX_OPS: usize = 8;

type Ring<S> = Vring<S, &'static ModelRingMem, ModelDmaHal, Q>;

// ---------------------------------------------------------------------------------------------
// Split-ring index arithmetic

/// Split-ring index arithmetic across u16 wrap-around: `used_pending` leads from `last` to
/// `used`; `check_used_idx` accepts exactly the indices at most `qsz` ahead; `ring_slot` is in
/// bounds, steps by one and has period `qsz`; `vring_need_event(event, new, old)` holds
/// exactly when `event` lies in the window `[old, new)` taken modulo 2^16.
pub fn prop_ring_index_wrap(used: u16, last: u16, event: u16, qsz_log2: u8) {
    let qsz = 1u16 << (qsz_log2 % 16);
    let pending = used_pending(used, last);
    reach!(
        used < last && pending <= qsz,
        "an index accepted across the wrap"
    );
    reach!(pending > qsz, "an index too far ahead");
    assert_eq!(
        last.wrapping_add(pending),
        used,
        "pending leads from last to used"
    );
    match check_used_idx(used, last, qsz) {
        Ok(p) => assert!(p == pending && p <= qsz, "accepted index too far ahead"),
        Err(UsedError::IdxTooFarAhead {
            used_idx,
            last_used,
        }) => assert!(pending > qsz && used_idx == used && last_used == last),
        Err(_) => panic!("check_used_idx reports only IdxTooFarAhead"),
    }
    let q = usize::from(qsz);
    let s = ring_slot(last, qsz);
    assert!(s < q, "slot out of bounds");
    assert_eq!(ring_slot(last.wrapping_add(1), qsz), (s + 1) % q);
    assert_eq!(ring_slot(last.wrapping_add(qsz), qsz), s, "period qsz");
    assert_eq!(
        vring_need_event(event, used, last),
        event.wrapping_sub(last) < used.wrapping_sub(last),
        "need_event is the window test"
    );
}

// ---------------------------------------------------------------------------------------------
// Used-element validation

/// A used-element validator: `(id, len, qsz, posted_len) -> Ok(id) | Err(why)`.
pub type Validator = fn(u32, u32, u16, &dyn Fn(u16) -> Option<u32>) -> Result<u16, UsedError>;

/// The real validator, `caps::vring::check_used_elem`.
pub fn real_validator(
    id: u32,
    len: u32,
    qsz: u16,
    posted_len: &dyn Fn(u16) -> Option<u32>,
) -> Result<u16, UsedError> {
    check_used_elem(id, len, qsz, posted_len)
}

/// A deliberately broken validator: the in-flight check is removed (an id that is not posted
/// is accepted as if its buffer were unbounded). Kept to show the proof can fail.
pub fn validator_without_in_flight_check(
    id: u32,
    len: u32,
    qsz: u16,
    posted_len: &dyn Fn(u16) -> Option<u32>,
) -> Result<u16, UsedError> {
    if id >= u32::from(qsz) {
        return Err(UsedError::IdOutOfRange { id });
    }
    let posted = posted_len(id as u16).unwrap_or(u32::MAX);
    if len > posted {
        return Err(UsedError::LenTooLong { id, len, posted });
    }
    Ok(id as u16)
}

/// `validate` accepts a used element only if `id < qsz`, the descriptor is in flight and
/// `len` fits its posted length; it looks the table up only in bounds; every rejection names
/// the right reason. Queue size `1 << (qsz_log2 % 4)` (1..=8), `in_flight` a bitmask.
/// Returns the verdict, for a harness to cover each kind.
pub fn prop_used_elem_validation_with(
    validate: Validator,
    id: u32,
    len: u32,
    qsz_log2: u8,
    in_flight: u8,
    posted: [u32; 8],
) -> Result<u16, UsedError> {
    let qsz = 1u16 << (qsz_log2 % 4);
    let out_of_range = Cell::new(false);
    let lookup = |i: u16| {
        if i >= qsz {
            out_of_range.set(true);
            return None;
        }
        (in_flight >> i & 1 == 1).then(|| posted[usize::from(i)])
    };
    let result = validate(id, len, qsz, &lookup);
    that(
        !out_of_range.get(),
        "in-flight table looked up out of bounds",
    );
    let flying = id < u32::from(qsz) && in_flight >> id & 1 == 1;
    match result {
        Ok(i) => {
            that(u32::from(i) == id && i < qsz, "accepted id out of bounds");
            expected(flying, Expect::NotInFlight, NOT_IN_FLIGHT);
            that(
                len <= posted[usize::from(i)],
                "accepted len past the buffer",
            );
        }
        Err(UsedError::IdOutOfRange { id: e }) => {
            that(e == id && id >= u32::from(qsz), "wrong IdOutOfRange");
        }
        Err(UsedError::NotInFlight { id: e }) => {
            that(e == id && !flying, "wrong NotInFlight");
        }
        Err(UsedError::LenTooLong {
            id: e,
            len: l,
            posted: p,
        }) => {
            that(
                e == id && flying && l == len && p == posted[id as usize] && l > p,
                "wrong LenTooLong",
            );
        }
        Err(UsedError::IdxTooFarAhead { .. }) => that(false, "not an element error"),
    }
    result
}

/// `prop_used_elem_validation_with` for the real validator.
pub fn prop_used_elem_validation_in_bounds(
    id: u32,
    len: u32,
    qsz_log2: u8,
    in_flight: u8,
    posted: [u32; 8],
) {
    let _ = prop_used_elem_validation_with(real_validator, id, len, qsz_log2, in_flight, posted);
}

/// End to end through `Vring::pop_used`: buffers of `lens` (0 = not posted) are posted, a
/// hostile device publishes `elems` and moves the used index by `bump`; every completion
/// then carries the cookie of a buffer that was in flight, `len <= region.len()` and
/// `data()` within the buffer; every rejection is counted, never a panic; a reclaimed buffer
/// is one that was in flight; the in-flight count matches.
pub fn prop_pop_used_hostile_device(lens: [u8; Q], elems: [(u32, u32); 2], bump: u16) {
    let rig = Rig::new();
    let mut dev = ModelDevice::new(rig.mem, false);
    let mut vq: Ring<Armed> = Vring::new(rig.mem, false, &DmaDevice::new()).must("ring fits");
    // by_cookie[c] = posted length while buffer c is in flight.
    let mut by_cookie: [Option<usize>; Q] = [None; Q];
    for (c, &l) in lens.iter().enumerate() {
        let len = usize::from(l) % (MAX_BUF + 1);
        if len == 0 {
            continue;
        }
        let region = rig.pool.alloc(len, 8).must("fake HAL");
        if vq.post(region, BufDir::DeviceWrites, c as u64).is_ok() {
            by_cookie[c] = Some(len);
        }
    }
    let mut vq = vq.into_polled();
    for &(id, len) in &elems {
        let _ = dev.publish(id, len);
    }
    dev.bump_used_idx(bump);
    let flying = vq.in_flight();
    // The used index now leads the driver's (0) by the elements published plus the bump.
    if usize::from((elems.len() as u16).wrapping_add(bump)) > Q {
        reach!(true, "the used index runs more than the queue size ahead");
        // The very first pop refuses it, consumes nothing and breaks the ring for good.
        let first = vq.pop_used();
        assert!(
            matches!(
                first,
                Some(Err(Rejected {
                    error: UsedError::IdxTooFarAhead { .. },
                    reclaimed: None,
                }))
            ),
            "a used index too far ahead was not refused"
        );
        assert!(
            vq.is_broken() && vq.pop_used().is_none() && !vq.has_pending(),
            "a ring whose used index ran too far ahead is not broken"
        );
        assert_eq!(
            vq.in_flight(),
            flying,
            "nothing consumed from a broken ring"
        );
        return;
    }
    for _ in 0..=elems.len() {
        let Some(item) = vq.pop_used() else { break };
        match item {
            Ok(c) => {
                reach!(true, "a hostile device's element is a valid completion");
                let posted = by_cookie[c.cookie as usize]
                    .take()
                    .must("completed a buffer that was not in flight");
                assert_eq!(c.region.len(), posted, "the buffer posted under that id");
                assert!(c.len as usize <= c.region.len(), "len past the buffer");
                assert_eq!(c.data().len(), c.len as usize);
            }
            Err(r) => {
                reach!(
                    matches!(r.error, UsedError::IdOutOfRange { .. }),
                    "an id out of range is refused"
                );
                reach!(
                    matches!(r.error, UsedError::NotInFlight { .. }),
                    "an id not in flight is refused"
                );
                if let Some((region, cookie)) = r.reclaimed {
                    reach!(
                        true,
                        "a len past the buffer is refused, the buffer reclaimed"
                    );
                    assert!(matches!(r.error, UsedError::LenTooLong { .. }));
                    let posted = by_cookie[cookie as usize].take().must("was in flight");
                    assert_eq!(region.len(), posted);
                }
            }
        }
        assert_eq!(vq.in_flight(), by_cookie.iter().flatten().count());
    }
}

// ---------------------------------------------------------------------------------------------
// In-flight accounting

/// One step of the in-flight property.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(kani, derive(kani::Arbitrary))]
pub enum RingOp {
    /// The driver posts a buffer of `1 + n % MAX_BUF` bytes.
    Post(u8),
    /// The device honestly completes the next available buffer with this length.
    Complete(u8),
    /// The device publishes an arbitrary used element.
    Hostile(u32, u32),
    /// The driver pops one used element.
    Pop,
}

/// Over any sequence of posts, honest and hostile completions and pops: `in_flight()` never
/// exceeds `Q` and always equals the number of buffers posted and not returned; `post`
/// fails (`ENOSPC`) exactly when `Q` are in flight (or `EBADSTATE` on a broken ring) and then
/// hands the region back; a descriptor id is never handed out while still in flight.
pub fn prop_in_flight_never_exceeds_queue(ops: &[RingOp]) {
    assert!(ops.len() <= MAX_OPS);
    let rig = Rig::new();
    let mut dev = ModelDevice::new(rig.mem, false);
    let vq: Ring<Armed> = Vring::new(rig.mem, false, &DmaDevice::new()).must("ring fits");
    let mut vq = vq.into_polled();
    // by_id[id] = cookie of the buffer in flight under descriptor `id`.
    let mut by_id: [Option<u64>; Q] = [None; Q];
    let retire = |by_id: &mut [Option<u64>; Q], cookie: u64| {
        let slot = by_id.iter_mut().find(|s| **s == Some(cookie));
        *slot.must("returned a buffer that was not in flight") = None;
    };
    for (k, &op) in ops.iter().enumerate() {
        match op {
            RingOp::Post(n) => {
                let len = 1 + usize::from(n) % MAX_BUF;
                let flying = by_id.iter().flatten().count();
                let region = rig.pool.alloc(len, 8).must("fake HAL");
                match vq.post(region, BufDir::DeviceReads, k as u64) {
                    Ok(id) => {
                        assert!(flying < Q && !vq.is_broken(), "posted past the queue");
                        let slot = &mut by_id[usize::from(id)];
                        assert!(slot.is_none(), "descriptor id handed out twice");
                        *slot = Some(k as u64);
                    }
                    Err((back, e)) => {
                        reach!(e == Error::ENOSPC, "a full ring refuses a post");
                        assert_eq!(back.len(), len, "region handed back");
                        assert!(
                            (e == Error::ENOSPC && flying == Q)
                                || (e == Error::EBADSTATE && vq.is_broken()),
                            "post refused for no reason"
                        );
                    }
                }
            }
            RingOp::Complete(n) => {
                if let Some((id, posted)) = dev.consume() {
                    let _ = dev.publish(id.into(), u32::from(n).min(posted));
                }
            }
            RingOp::Hostile(id, len) => {
                let _ = dev.publish(id, len);
            }
            RingOp::Pop => match vq.pop_used() {
                Some(Ok(c)) => retire(&mut by_id, c.cookie),
                Some(Err(Rejected {
                    reclaimed: Some((_, cookie)),
                    ..
                })) => {
                    reach!(true, "a rejected element's buffer comes back");
                    retire(&mut by_id, cookie)
                }
                Some(Err(_)) | None => {}
            },
        }
        assert!(vq.in_flight() <= Q, "in flight exceeds the queue size");
        assert_eq!(vq.in_flight(), by_id.iter().flatten().count());
    }
}

// ---------------------------------------------------------------------------------------------
// CSpace handles

/// A capability-table object: its type and a serial number.
#[derive(Debug)]
pub struct Obj(pub CapType, pub u8);

impl Capability for Obj {
    fn cap_type(&self) -> CapType {
        self.0
    }
}

/// One step of the CSpace property.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(kani, derive(kani::Arbitrary))]
pub enum CsOp {
    /// Insert an object of type `CapType::ALL[k % 8]` into table 0.
    Insert(u8),
    /// Remove the `k % issued`-th handle ever issued (live or stale).
    Remove(u8),
    /// Grant the `k % issued`-th handle ever issued to the other table.
    Grant(u8),
    /// Look up a forged raw handle in table `t % 2`.
    Probe(u32, u8),
}

const TABLE: usize = 2;

/// The branches a CSpace run took (covers live in the harnesses, each of which reaches the
/// ones its skeleton allows).
#[derive(Clone, Copy, Debug, Default)]
pub struct CsSeen {
    /// An insert was refused (table 0 full, or its free slots retired).
    pub insert_refused: bool,
    /// A slot at `GENERATION_MAX` was retired by a remove.
    pub retired: bool,
    /// A stale handle was refused by a remove.
    pub stale_refused: bool,
    /// A capability moved to the other table.
    pub granted: bool,
}

/// Over any sequence of inserts, removes and grants between two tables whose slots start at
/// arbitrary generations (so slot retirement at `GENERATION_MAX` is reached): a handle is
/// never issued twice by a table; a live handle resolves to its own object and type; a
/// removed or granted-away handle never resolves again (`EBADH`); a forged handle resolves
/// only if it equals a live one. Returns which branches the run took, for a harness to
/// cover.
pub fn prop_cspace_stale_handle_never_resolves(gens: [u32; TABLE], ops: &[CsOp]) -> CsSeen {
    assert!(ops.len() <= MAX_OPS);
    let mut t: [CSpace<Obj, TABLE>; 2] = [CSpace::with_generations(gens), CSpace::new()];
    // Every handle ever issued: (handle, table, object serial, type, live).
    let mut issued: [(Handle, usize, u8, CapType, bool); MAX_OPS] =
        [(Handle(0), 0, 0, CapType::File, false); MAX_OPS];
    let mut n = 0;
    let mut seen = CsSeen::default();
    let fresh = |issued: &[(Handle, usize, u8, CapType, bool)], h: Handle, tab: usize| {
        assert!(
            !issued.iter().any(|&(o, ot, ..)| o == h && ot == tab),
            "a table issued the same handle twice"
        );
    };
    for (k, &op) in ops.iter().enumerate() {
        let serial = k as u8;
        match op {
            CsOp::Insert(kind) => {
                let ty = CapType::ALL[usize::from(kind) % 8];
                match t[0].insert(Obj(ty, serial), Rights::all()) {
                    Ok(h) => {
                        fresh(&issued[..n], h, 0);
                        issued[n] = (h, 0, serial, ty, true);
                        n += 1;
                    }
                    Err((obj, e)) => {
                        seen.insert_refused = true;
                        assert!(e == Error::ENOSPC && obj.1 == serial, "object handed back");
                        assert!(t[0].len() < TABLE || t[0].len() == TABLE);
                    }
                }
            }
            CsOp::Remove(w) if n > 0 => {
                let i = usize::from(w % n as u8); // an 8-bit remainder: n <= MAX_OPS
                let (h, tab, s, _, live) = issued[i];
                match t[tab].remove(h) {
                    Ok(obj) => {
                        seen.retired |= h.generation() == abi::handle::GENERATION_MAX;
                        assert!(live && obj.1 == s, "removed the wrong object");
                        issued[i].4 = false;
                    }
                    Err(e) => {
                        seen.stale_refused = true;
                        assert!(!live && e == Error::EBADH, "live handle refused")
                    }
                }
            }
            CsOp::Grant(w) if n > 0 && n < MAX_OPS => {
                let i = usize::from(w % n as u8); // an 8-bit remainder: n <= MAX_OPS
                let (h, tab, s, ty, live) = issued[i];
                let (a, b) = t.split_at_mut(1);
                let (from, to) = if tab == 0 {
                    (&mut a[0], &mut b[0])
                } else {
                    (&mut b[0], &mut a[0])
                };
                match from.grant(h, to, Rights::all()) {
                    Ok(nh) => {
                        seen.granted = true;
                        assert!(live, "a stale handle was granted");
                        fresh(&issued[..n], nh, 1 - tab);
                        issued[i].4 = false;
                        issued[n] = (nh, 1 - tab, s, ty, true);
                        n += 1;
                    }
                    Err(e) => assert!(
                        (live && e == Error::ENOSPC) || (!live && e == Error::EBADH),
                        "grant failed for the wrong reason"
                    ),
                }
            }
            CsOp::Probe(raw, tab) => {
                let tab = usize::from(tab) % 2;
                if t[tab].info(Handle(raw)).is_ok() {
                    assert!(
                        issued[..n]
                            .iter()
                            .any(|&(h, ht, .., live)| live && ht == tab && h.raw() == raw),
                        "a forged handle resolved"
                    );
                }
            }
            CsOp::Remove(_) | CsOp::Grant(_) => {}
        }
        for &(h, tab, s, ty, live) in &issued[..n] {
            match t[tab].get(h, ty, Rights::empty()) {
                Ok(obj) => assert!(live && obj.1 == s, "stale handle resolved"),
                Err(e) => assert!(!live && e == Error::EBADH, "live handle lost"),
            }
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// MSI vector allocator

/// One step of the vector-allocator property.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(kani, derive(kani::Arbitrary))]
pub enum VecOp {
    /// Allocate a vector.
    Alloc,
    /// Drop the vector held in slot `k % HELD`, if any.
    Free(u8),
}

/// Vectors the allocator property can hold at once.
const HELD: usize = 4;

/// INTIDs the widest allocator property's control covers (its range has at most this many;
/// the proptest twin's control).
pub const VEC_SPAN: usize = 68;

/// Over any sequence of allocations and drops on an allocator of `count` vectors, carved
/// from a control of `N` INTIDs (`count <= N`; a harness keeps `N` as small as its ranges,
/// since every line slot is state the model checker carries), whose first bitmap word starts as `taken` (vectors held elsewhere,
/// never to be handed out): no vector is handed out while another holder has it; every
/// vector is in range and marked allocated while held and unmarked once dropped; `alloc`
/// fails (`ENOSPC`) exactly when every vector is held. With `taken` nearly full, the
/// allocations cross from the first 64-bit word into the second. Returns the highest index
/// handed out (plus one; 0 if none), for a harness to cover the word crossing.
pub fn prop_vector_allocator_no_double_alloc<const N: usize>(
    count: u32,
    taken: u64,
    ops: &[VecOp],
) -> u32 {
    assert!(ops.len() <= MAX_OPS && count as usize <= N);
    const BASE: u32 = 64;
    let ctl: &'static IrqControl<N> = control(leak(ModelGic::new()), BASE);
    let range = MsiRange {
        base: BASE,
        count,
        doorbell: 0x0802_0040,
        data: MsiData::Intid,
    };
    let a = leak(ctl.msi_vectors(range).must("range in the control"));
    // Only bits of vectors in range: a preset past `count` would be a different allocator.
    let taken = if count >= 64 {
        taken
    } else {
        taken & ((1u64 << count) - 1)
    };
    a.preset_for_model(0, taken);
    let elsewhere = taken.count_ones();
    let mut highest = 0;
    // Plain loops over `held` rather than iterator adapters (`flatten`, `find`): each adapter
    // is a state machine Kani unrolls at every use. (The harnesses' measured times in
    // docs/verification.md are with these loops.)
    let mut held: [Option<MsiVector>; HELD] = Default::default();
    for &op in ops {
        match op {
            VecOp::Alloc => {
                let mut live = elsewhere;
                for h in &held {
                    live += u32::from(h.is_some());
                }
                match a.alloc() {
                    Ok(v) => {
                        let intid = v.intid();
                        highest = highest.max(intid - BASE + 1);
                        assert!(live < count, "allocated past the range size");
                        assert!((BASE..BASE + count).contains(&intid), "out of range");
                        let index = intid - BASE;
                        assert!(
                            index >= 64 || taken >> index & 1 == 0,
                            "handed out a vector held elsewhere"
                        );
                        let mut free_slot = None;
                        for (i, h) in held.iter().enumerate() {
                            match h {
                                Some(h) => assert!(h.intid() != intid, "vector handed out twice"),
                                None => {
                                    free_slot.get_or_insert(i);
                                }
                            }
                        }
                        match free_slot {
                            Some(i) => held[i] = Some(v),
                            // More than HELD at once: give it back (checked above already).
                            None => drop(v),
                        }
                    }
                    Err(e) => {
                        reach!(count > 0, "an exhausted allocator refuses");
                        assert!(e == Error::ENOSPC && live == count, "spurious ENOSPC");
                    }
                }
            }
            VecOp::Free(k) => {
                if let Some(v) = held[usize::from(k) % HELD].take() {
                    let index = v.intid() - BASE;
                    drop(v);
                    assert!(!a.is_allocated(index), "dropped vector still allocated");
                }
            }
        }
        #[allow(
            clippy::manual_flatten,
            reason = "a plain loop, like the others over `held` here (see above)"
        )]
        for v in &held {
            if let Some(v) = v {
                assert!(a.is_allocated(v.intid() - BASE), "held vector not marked");
            }
        }
    }
    highest
}

// ---------------------------------------------------------------------------------------------
// IrqSafe

/// One step of the `IrqSafe` property.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(kani, derive(kani::Arbitrary))]
pub enum LockOp {
    /// Take lock A (if this CPU does not hold it already: taking it again would spin).
    LockA,
    /// Take lock B (likewise).
    LockB,
    /// Drop the innermost guard.
    Release,
    /// An interrupt arrives; the CPU takes it only if IRQs are unmasked, and its handler
    /// takes both locks.
    Interrupt,
}

/// Over any nesting of two `IrqSafe` locks, releases and interrupts, on one CPU that starts
/// with IRQs unmasked: IRQs are masked exactly while a guard is held, so an interrupt is
/// never taken while its handler's lock is held on this CPU (which would spin forever), and
/// the last release restores the unmasked state; every guard's token is taken with IRQs
/// masked.
pub fn prop_irqsafe_masks_while_held(ops: &[LockOp]) {
    use crate::fakes::ModelCpu;
    use caps::lock::IrqSafe;
    assert!(ops.len() <= MAX_OPS);
    ModelCpu::set_irqs_on(true);
    let (a, b): (IrqSafe<u8, ModelCpu>, IrqSafe<u8, ModelCpu>) = (IrqSafe::new(0), IrqSafe::new(0));
    // Held guards, one slot per lock (so each slot's guard always points at the same lock,
    // which keeps a model checker's pointer analysis exact), and the nesting order: `a_first`
    // is whether A is the outer one, `depth` how many are held.
    let (mut held_a, mut held_b) = (None, None);
    let mut a_first = false;
    let mut depth = 0;
    for &op in ops {
        match op {
            LockOp::LockA | LockOp::LockB => {
                let which = matches!(op, LockOp::LockA);
                let slot = if which { &mut held_a } else { &mut held_b };
                if slot.is_none() {
                    let mut g = if which { a.lock() } else { b.lock() };
                    assert!(!ModelCpu::irqs_on(), "a guard with IRQs unmasked");
                    *g.parts().0 += 1;
                    *slot = Some(g);
                    if depth == 0 {
                        a_first = which;
                    }
                    depth += 1;
                    reach!(depth == 2, "two locks nested");
                }
            }
            LockOp::Release => {
                if depth > 0 {
                    // The innermost guard: the one taken second, or the only one.
                    let a_inner = if depth == 2 { !a_first } else { a_first };
                    let slot = if a_inner { &mut held_a } else { &mut held_b };
                    assert!(slot.is_some(), "the innermost guard is held");
                    *slot = None;
                    depth -= 1;
                    reach!(depth == 0, "the last guard released");
                }
            }
            LockOp::Interrupt => {
                if ModelCpu::irqs_on() {
                    reach!(true, "an interrupt is taken");
                    assert!(depth == 0, "an interrupt taken while its lock is held");
                    let (ga, gb) = (a.try_lock(), b.try_lock());
                    assert!(ga.is_some() && gb.is_some(), "the handler's locks are free");
                }
            }
        }
        assert_eq!(
            usize::from(held_a.is_some()) + usize::from(held_b.is_some()),
            depth,
            "a guard per nesting level"
        );
        assert_eq!(
            ModelCpu::irqs_on(),
            depth == 0,
            "IRQs masked exactly while a guard is held"
        );
    }
}
