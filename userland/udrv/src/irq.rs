//! `IrqLine<S>`: a driver's interrupt line as type states, and the quiet proof.
//!
//! The kernel keeps each line in one of `Masked`, `Armed`, `Fired` and `Draining` and
//! refuses a call made in the wrong one (`EBADSTATE`, nothing changed). Here the same
//! machine is a type: a fresh line is [`Masked`], `arm` makes it [`Armed`] (the kernel's
//! `Fired` is an `Armed` line whose interrupt already came), `wait` returns it
//! [`Draining`], and only `rearm` with a [`Quiesced`] proof leaves `Draining`. Masking an
//! armed line also gives `Draining`, never `Masked`: the device may have raised work whose
//! interrupt the mask swallowed, so coming back needs the same proof as after a fire.
//!
//! The proof is the user-side NAPI rule. Re-arming a line while the device still holds
//! unacknowledged work that will not raise a fresh interrupt loses that work, so the proof
//! must come from reading the device after its final re-enable, never from a caller's
//! `bool`. [`quiesce`] is the only place that mints one: it runs the device's
//! [`QuietCheck::enable`], a full fence, then [`QuietCheck::is_quiet`]; both take a
//! [`Seal`] that only this crate can make, so nothing else can call them, and the trait is
//! `unsafe` to implement because the implementation is the promise that it reads the
//! device. A proof names the line it was minted for, and `rearm` consumes it.

use core::fmt;
use core::marker::PhantomData;

use abi::{Error, Handle};

use crate::sealed::Sealed;
use crate::{DevSys, Seal};

/// Type state of an [`IrqLine`]. Sealed: the three states below are all there is.
pub trait LineState: Sealed {}

/// Fresh from `Device::irq` and never armed: the one state `arm`, which needs no proof,
/// leaves.
#[derive(Debug)]
pub struct Masked;
/// Unmasked: the interrupt may fire at any moment (kernel state `Armed` or `Fired`).
#[derive(Debug)]
pub struct Armed;
/// Masked after having been armed (it fired and `wait` took it, or the driver masked it):
/// drain the device, then `rearm` with proof. Nothing else unmasks it.
#[derive(Debug)]
pub struct Draining;

impl Sealed for Masked {}
impl Sealed for Armed {}
impl Sealed for Draining {}
impl LineState for Masked {}
impl LineState for Armed {}
impl LineState for Draining {}

/// What `wait` learned: when the line first fired and how often it has fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    /// Monotonic time of the first fire since the line was (re)armed, in ns.
    pub at_ns: u64,
    /// Fires of this line since it was made (the kernel's count).
    pub fires: u64,
}

/// An interrupt line capability in state `S`, whose calls go through backend `B`.
///
/// Not `Clone` or `Copy`; every transition consumes it, and a failed one hands it back
/// with the error. Dropping a line in any state drops its capability (`cap_drop`), which
/// masks it in the kernel.
#[must_use = "dropping a line drops its capability"]
pub struct IrqLine<S: LineState, B: DevSys> {
    sys: B,
    handle: Handle,
    /// Unique in this process; `Quiesced` proofs carry it.
    id: u64,
    _state: PhantomData<S>,
}

impl<B: DevSys> IrqLine<Masked, B> {
    /// A line `Device::irq` just received from the kernel.
    pub(crate) fn mint(sys: B, handle: Handle, id: u64) -> Self {
        IrqLine {
            sys,
            handle,
            id,
            _state: PhantomData,
        }
    }

    /// `Masked` -> `Armed`. `Masked` is only ever a fresh line; a line that was armed once
    /// comes back to `Armed` only through [`IrqLine::rearm`], with proof.
    pub fn arm(self) -> Result<IrqLine<Armed, B>, (Self, Error)> {
        match self.sys.irq_arm(self.handle) {
            Ok(()) => Ok(self.retype()),
            Err(e) => Err((self, e)),
        }
    }
}

impl<S: LineState, B: DevSys> IrqLine<S, B> {
    /// The capability's handle.
    pub fn handle(&self) -> Handle {
        self.handle
    }

    /// The line's identity in this process (what a [`Quiesced`] proof records).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Re-types the line without dropping its capability.
    fn retype<T: LineState>(self) -> IrqLine<T, B> {
        let next = IrqLine {
            sys: self.sys,
            handle: self.handle,
            id: self.id,
            _state: PhantomData,
        };
        // Every field was copied into `next`; forgetting only skips the `cap_drop`.
        core::mem::forget(self);
        next
    }
}

impl<B: DevSys> IrqLine<Armed, B> {
    /// Blocks until the line fires or `deadline` (monotonic ns; `u64::MAX` forever, 0
    /// polls): `Armed` -> `Draining`, with when it fired. On `ETIMEDOUT` (or any error)
    /// the line comes back still armed.
    pub fn wait(self, deadline: u64) -> Result<(IrqLine<Draining, B>, Fired), (Self, Error)> {
        match self.sys.irq_wait(self.handle, deadline) {
            Ok((at_ns, fires)) => Ok((self.retype(), Fired { at_ns, fires })),
            Err(e) => Err((self, e)),
        }
    }

    /// `Armed` -> `Draining`: the driver masks its line (polling, teardown). An interrupt
    /// that came meanwhile is swallowed, which is why the line is `Draining` from here and
    /// needs a proof to come back, never a proof-free `arm`.
    pub fn mask(self) -> Result<IrqLine<Draining, B>, (Self, Error)> {
        match self.sys.irq_mask(self.handle) {
            Ok(()) => Ok(self.retype()),
            Err(e) => Err((self, e)),
        }
    }
}

impl<B: DevSys> IrqLine<Draining, B> {
    /// `Draining` -> `Armed`, given proof that the device is quiet. A proof minted for
    /// another line is refused (`EINVAL`, and the kernel is not asked); the proof is
    /// consumed either way, so one reading of the device re-arms at most once.
    pub fn rearm(self, proof: Quiesced) -> Result<IrqLine<Armed, B>, (Self, Error)> {
        if proof.line != self.id {
            return Err((self, Error::EINVAL));
        }
        match self.sys.irq_rearm(self.handle) {
            Ok(()) => Ok(self.retype()),
            Err(e) => Err((self, e)),
        }
    }
}

impl<S: LineState, B: DevSys> Drop for IrqLine<S, B> {
    fn drop(&mut self) {
        self.sys.cap_drop(self.handle);
    }
}

impl<S: LineState, B: DevSys> fmt::Debug for IrqLine<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqLine")
            .field("handle", &self.handle)
            .field("id", &self.id)
            .field("state", &core::any::type_name::<S>())
            .finish()
    }
}

/// Proof that the device behind one line read quiet after its final re-enable: what
/// [`IrqLine::rearm`] needs. Minted only by [`quiesce`]; not `Clone`, so it is used once.
#[derive(Debug)]
#[must_use = "a proof does nothing until `rearm` consumes it"]
pub struct Quiesced {
    line: u64,
}

impl Quiesced {
    /// The line it was minted for ([`IrqLine::id`]).
    pub fn line(&self) -> u64 {
        self.line
    }
}

/// Reads one device to decide whether the line it signals on may be re-armed.
///
/// # Safety
/// `is_quiet` must read the device state its interrupt is raised on, after `enable` ran,
/// and return `true` only if no unprocessed work remains that would not raise a fresh
/// interrupt once the line is re-armed (for edu: the interrupt status register reads 0, so
/// any later completion raises a new MSI). `enable` must perform the device's final
/// interrupt re-enable, or nothing if it has none. An implementation that answers without
/// reading its device makes `rearm` re-arm a line whose work is lost.
#[allow(
    unsafe_code,
    reason = "an unsafe trait: the implementation is the promise"
)]
pub unsafe trait QuietCheck {
    /// The device's final interrupt re-enable before the recheck. Called by [`quiesce`]
    /// only (nobody else has a [`Seal`]).
    fn enable(&self, _seal: &Seal) {}

    /// After `enable` and a full fence: whether the device is quiet (see the safety
    /// contract). Called by [`quiesce`] only.
    fn is_quiet(&self, seal: &Seal) -> bool;
}

/// The enable → fence → recheck step: runs `check`'s final re-enable, a full fence (the
/// backend's: it orders the device's register accesses too), then reads the device. Quiet:
/// the proof `rearm` needs, bound to this line, with the line; otherwise the line comes
/// back to keep draining.
pub fn quiesce<C: QuietCheck + ?Sized, B: DevSys>(
    line: IrqLine<Draining, B>,
    check: &C,
) -> Result<(Quiesced, IrqLine<Draining, B>), IrqLine<Draining, B>> {
    let seal = Seal(());
    check.enable(&seal);
    line.sys.fence();
    if check.is_quiet(&seal) {
        Ok((Quiesced { line: line.id }, line))
    } else {
        Err(line)
    }
}

#[cfg(test)]
mod tests {
    use core::cell::Cell;

    use super::*;
    use crate::fake::{FakeKernel, LineModel};

    /// A device with `pending` unacknowledged events; `enable` acknowledges one.
    struct Dev<'a> {
        pending: Cell<u32>,
        kernel: &'a FakeKernel,
    }

    // SAFETY: a test device: `is_quiet` reads its (fake) pending count after `enable`.
    #[allow(unsafe_code, reason = "a test device implements the unsafe trait")]
    unsafe impl QuietCheck for Dev<'_> {
        fn enable(&self, _: &Seal) {
            self.kernel.note("enable");
            self.pending.set(self.pending.get().saturating_sub(1));
        }
        fn is_quiet(&self, _: &Seal) -> bool {
            self.kernel.note("read");
            self.pending.get() == 0
        }
    }

    fn dev(kernel: &FakeKernel, pending: u32) -> Dev<'_> {
        Dev {
            pending: Cell::new(pending),
            kernel,
        }
    }

    #[test]
    fn a_line_goes_round_masked_armed_draining_armed() {
        let (k, device) = FakeKernel::with_device();
        let line = device.irq(0, 3).unwrap();
        let h = line.handle();
        assert_eq!(k.line(h), LineModel::Masked);
        let line = line.arm().unwrap();
        assert_eq!(k.line(h), LineModel::Armed);
        k.fire(h, 1234);
        assert_eq!(k.line(h), LineModel::Fired);
        assert_eq!(k.notified(), 1 << 3);
        let (line, fired) = line.wait(u64::MAX).unwrap();
        assert_eq!(
            fired,
            Fired {
                at_ns: 1234,
                fires: 1
            }
        );
        assert_eq!(k.line(h), LineModel::Draining);
        let (proof, line) = quiesce(line, &dev(k, 1)).unwrap();
        assert_eq!(proof.line(), line.id());
        let line = line.rearm(proof).unwrap();
        assert_eq!(k.line(h), LineModel::Armed);
        drop(line);
        assert_eq!(k.line(h), LineModel::Dropped);
    }

    #[test]
    fn a_failed_call_hands_the_line_back_unchanged() {
        let (k, device) = FakeKernel::with_device();
        let line = device.irq(1, 0).unwrap();
        let h = line.handle();
        k.fail_next(Error::ENOMEM);
        let (line, e) = line.arm().unwrap_err();
        assert_eq!((e, k.line(h)), (Error::ENOMEM, LineModel::Masked));
        let line = line.arm().unwrap();
        let (line, e) = line.wait(0).unwrap_err();
        assert_eq!((e, k.line(h)), (Error::ETIMEDOUT, LineModel::Armed));
        k.fire(h, 7);
        let (line, _) = line.wait(0).expect("fired: the poll takes it");
        let (proof, line) = quiesce(line, &dev(k, 0)).unwrap();
        k.fail_next(Error::EBADSTATE);
        let (line, e) = line.rearm(proof).unwrap_err();
        assert_eq!((e, k.line(h)), (Error::EBADSTATE, LineModel::Draining));
        let (proof, line) = quiesce(line, &dev(k, 0)).unwrap();
        let line = line.rearm(proof).unwrap();
        k.fail_next(Error::EBADH);
        let (line, e) = line.mask().unwrap_err();
        assert_eq!((e, k.line(h)), (Error::EBADH, LineModel::Armed));
        let line = line.mask().unwrap();
        assert_eq!(k.line(h), LineModel::Draining);
        drop(line);
        assert_eq!(k.line(h), LineModel::Dropped);
    }

    #[test]
    fn quiesce_enables_fences_then_reads_and_mints_only_when_quiet() {
        let (k, device) = FakeKernel::with_device();
        let line = device.irq(0, 0).unwrap().arm().unwrap();
        k.clear_log();
        let line = line.mask().unwrap();
        let d = dev(k, 2);
        let line = quiesce(line, &d).unwrap_err();
        assert_eq!(k.log(), ["irq_mask", "enable", "fence", "read"]);
        let (proof, line) = quiesce(line, &d).expect("second event acknowledged");
        let _armed = line.rearm(proof).unwrap();
    }

    #[test]
    fn a_proof_rearms_only_the_line_it_was_minted_for() {
        let (k, device) = FakeKernel::with_device();
        let a = device.irq(0, 0).unwrap().arm().unwrap().mask().unwrap();
        let b = device.irq(1, 1).unwrap().arm().unwrap().mask().unwrap();
        let (proof_a, a) = quiesce(a, &dev(k, 0)).unwrap();
        k.clear_log();
        let (b, e) = b.rearm(proof_a).unwrap_err();
        assert_eq!(e, Error::EINVAL);
        assert_eq!(k.log(), [] as [&str; 0], "the kernel was not asked");
        assert_eq!(k.line(b.handle()), LineModel::Draining);
        let (proof_b, b) = quiesce(b, &dev(k, 0)).unwrap();
        assert_ne!(proof_b.line(), a.id());
        let _b = b.rearm(proof_b).unwrap();
        assert_eq!(k.line(a.handle()), LineModel::Draining, "a: still no proof");
    }

    #[test]
    fn a_proof_outlives_its_line_but_never_rearms_the_next_one_on_the_handle() {
        let (k, device) = FakeKernel::with_device();
        k.reuse_handles(true);
        let first = device.irq(0, 0).unwrap().arm().unwrap().mask().unwrap();
        let (stale, first) = quiesce(first, &dev(k, 0)).unwrap();
        let h = first.handle();
        drop(first);
        let second = device.irq(0, 0).unwrap().arm().unwrap().mask().unwrap();
        assert_eq!(second.handle(), h, "the fake reused the handle");
        let (second, e) = second.rearm(stale).unwrap_err();
        assert_eq!(
            (e, k.line(second.handle())),
            (Error::EINVAL, LineModel::Draining)
        );
    }
}
