//! The direct hand-off cells shared by the SPSC and MPSC rings (`Block`, one
//! CPU). [`Handoff`]: a sender about to wait for room parks its message
//! here, and the receiver that frees a slot moves it into the ring on the
//! sender's behalf and completes that send. [`Accept`], the other
//! direction: a receiver waiting on an empty ring accepts a message here,
//! and a sender that finds it so writes its message there instead of into
//! the ring, completing that receive. The protocol around them (who may
//! claim or fill, where the message goes) is the channel's: see "Direct
//! hand-off" in `spsc.rs` and `mpsc/mod.rs`. This file holds the cells and
//! their states.
//!
//! ```text
//!   IDLE --reserve--> RESERVED --offer--> OFFERED --claim--> TAKING --complete--> TAKEN
//!    ^                   |  ^                |                 |                   |
//!    '----release--------'  '----withdraw----'  <---unclaim----'                   |
//!    '-------------------------------------finish-----------------------------------'
//! ```
//!
//! - Only the sender that reserved the cell offers, withdraws, releases and
//!   finishes; only the receiver claims, unclaims and completes. `withdraw`
//!   and `claim` are compare-exchanges from `OFFERED`: exactly one wins, so
//!   the message is sent once (by the receiver) or taken back once (by the
//!   sender).
//! - The message is initialized exactly while the state is `OFFERED`, and
//!   while its winner (`RESERVED` after a withdraw, `TAKING`) has not yet
//!   moved it out.

use crate::error::{RecvTimeoutError, TryRecvError};
use crate::park::{self, barrier, WaitQueue};
use crate::sync::{thread, AtomicPtr, AtomicUsize, Ordering, UnsafeCell};
use std::mem::MaybeUninit;
use std::time::Instant;

/// How an offer ended for its sender.
pub(crate) enum Offered<T> {
    /// The receiver published the message: the send is complete.
    Sent,
    /// Taken back because `room_or_closed` said so: send it the usual way.
    Back(T),
    /// Taken back at the deadline.
    TimedOut(T),
}

/// Names the current thread in `cell`, for a partner to unpark: writes a
/// new handle only when the one there names another thread (the handle
/// moved, or another sender holds the cell now). A new handle
/// (`thread::current()`) and dropping the old one are two locked
/// instructions, which every arm and every offer paid before (without
/// them at the arm, a one-CPU ping-pong through two capacity-1 channels
/// went from 1.05 to 1.07 M round trips a second).
///
/// # Safety
///
/// Nobody else reads or writes `cell` meanwhile.
unsafe fn name_current_thread(cell: &UnsafeCell<Option<thread::Thread>>) {
    let me = thread::current_id();
    // SAFETY: guaranteed by the caller.
    cell.with_mut(|p| unsafe {
        if (*p).as_ref().map(thread::Thread::id) != Some(me) {
            *p = Some(thread::current());
        }
    });
}

/// No offer: the cell is free for a sender to reserve.
const IDLE: usize = 0;
/// A sender holds the cell (writing its offer, or taking it back).
const RESERVED: usize = 1;
/// The sender waits for room with its message in the cell.
const OFFERED: usize = 2;
/// The receiver claimed the offer and is moving the message into the ring.
const TAKING: usize = 3;
/// The receiver published the message: the send is complete.
const TAKEN: usize = 4;

pub(crate) struct Handoff<T> {
    state: AtomicUsize,
    msg: UnsafeCell<MaybeUninit<T>>,
    /// The offering sender, for a wake-up aimed at it (an MPSC ring may
    /// have other senders waiting on the same queue). Written with the
    /// message.
    sender: UnsafeCell<Option<thread::Thread>>,
}

// SAFETY: the message and the thread handle are only accessed by the
// holder of the cell under the state protocol above (a `T` moves between
// threads, never shared): `T: Send` suffices.
unsafe impl<T: Send> Send for Handoff<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Handoff<T> {}

impl<T> Handoff<T> {
    pub(crate) fn new() -> Self {
        Handoff {
            state: AtomicUsize::new(IDLE),
            msg: UnsafeCell::new(MaybeUninit::uninit()),
            sender: UnsafeCell::new(None),
        }
    }

    /// The state (`Acquire`: after `TAKEN`, what the receiver published).
    fn state(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    /// Sender: takes the cell if no other sender holds it.
    pub(crate) fn reserve(&self) -> bool {
        // Acquire: the previous holder's `release`/`finish` (its last use
        // of the cell) happens before ours.
        self.state
            .compare_exchange(IDLE, RESERVED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Sender, holding the cell (`RESERVED`): puts `msg` on offer.
    fn offer(&self, msg: T) {
        // SAFETY: `RESERVED` by us: the cell is empty and only we touch it.
        self.msg
            .with_mut(|p| unsafe { p.write(MaybeUninit::new(msg)) });
        // SAFETY: as above.
        unsafe { name_current_thread(&self.sender) };
        // Release: a receiver that claims sees the message.
        self.state.store(OFFERED, Ordering::Release);
    }

    /// Sender: takes its message back unless the receiver claimed it
    /// first. On success the sender still holds the cell (`release` it).
    fn withdraw(&self) -> Option<T> {
        self.state
            .compare_exchange(OFFERED, RESERVED, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: we won `OFFERED -> RESERVED`: the message is ours.
        Some(self.msg.with(|p| unsafe { p.read().assume_init() }))
    }

    /// Sender: frees the cell after a withdraw.
    pub(crate) fn release(&self) {
        // Release: our last use of the cell happens before the next holder.
        self.state.store(IDLE, Ordering::Release);
    }

    /// Sender: frees the cell after the receiver completed the send
    /// (`TAKEN`).
    fn finish(&self) {
        self.release();
    }

    /// Receiver: is a message on offer? (A hint: the claim decides.)
    #[inline]
    fn offered(&self) -> bool {
        self.state.load(Ordering::Relaxed) == OFFERED
    }

    /// Receiver: claims the offer, if one is out: its message.
    fn claim(&self) -> Option<T> {
        if !self.offered() {
            return None;
        }
        // Acquire: the message the sender wrote before `OFFERED`.
        self.state
            .compare_exchange(OFFERED, TAKING, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: we won `OFFERED -> TAKING`: the message is ours to read
        // (and the handle of its sender, until we `unclaim` or
        // `complete`).
        Some(self.msg.with(|p| unsafe { p.read().assume_init() }))
    }

    /// Receiver: the ring had no room after all; puts the message back on
    /// offer.
    fn unclaim(&self, msg: T) {
        // SAFETY: `TAKING` by us: the cell is empty and ours.
        self.msg
            .with_mut(|p| unsafe { p.write(MaybeUninit::new(msg)) });
        self.state.store(OFFERED, Ordering::Release);
    }

    /// Receiver: the message is published; the send is complete.
    fn complete(&self) {
        // Release: the sender that acquires `TAKEN` sees the publication.
        self.state.store(TAKEN, Ordering::Release);
    }

    /// Sender, holding the cell ([`reserve`](Self::reserve) succeeded):
    /// offers `msg`, marks the offer on `queue` (the queue the receiver
    /// notifies after freeing a slot) and waits on it until the receiver
    /// has sent the message, until `room_or_closed` (checked on every
    /// attempt of the wait) says to take it back, or until `deadline`. The
    /// cell is free again when this returns.
    pub(crate) fn offer_and_wait(
        &self,
        msg: T,
        queue: &WaitQueue,
        deadline: Option<Instant>,
        spin: bool,
        room_or_closed: impl Fn() -> bool,
    ) -> Offered<T> {
        // Counted before it is out: the receiver that claims it (having
        // acquired `OFFERED`) then takes it off the count after we added
        // it. (Counted after, a claim could take it off first: the count
        // would wrap below zero for a moment, a loom model found.)
        queue.set_offer();
        self.offer(msg);
        let outcome = park::block_on(&[queue], deadline, spin.into(), || {
            let mut state = self.state();
            if state == TAKING {
                // The receiver is moving our message into the ring, a
                // bounded step: wait it out rather than park, which lets
                // the receiver skip the wake-up when we are not registered
                // (see `take_with`). It ends `TAKEN`, or `OFFERED` again.
                park::wait_brief(|| self.state() != TAKING);
                state = self.state();
            }
            match state {
                TAKEN => Some(None),
                // Room the receiver did not fill with our message, or a close.
                OFFERED if room_or_closed() => self.withdraw().map(Some),
                // Still on offer.
                _ => None,
            }
        });
        let back = match outcome {
            Some(back) => back,
            None => loop {
                if let Some(msg) = self.withdraw() {
                    queue.clear_offer();
                    self.release();
                    return Offered::TimedOut(msg);
                }
                // Timed out, but the receiver claimed the message first:
                // it either publishes it (the send completes) or, finding
                // no room after all, puts it back on offer, and then we
                // take it back. (Waiting for `TAKEN` alone, the send
                // outlived its deadline for as long as the receiver did
                // not free another slot.)
                park::wait_brief(|| self.state() != TAKING);
                if self.state() == TAKEN {
                    break None;
                }
            },
        };
        match back {
            None => {
                self.finish();
                Offered::Sent
            }
            Some(msg) => {
                queue.clear_offer();
                self.release();
                Offered::Back(msg)
            }
        }
    }

    /// Receiver, after freeing room: if a message is on offer, claims it
    /// and lets `place` send it into the ring (`Err` hands it back: no
    /// room after all, or closed). Sent: takes the offer off `queue`'s
    /// count, completes the offer and unparks its sender; `true`. Handed back: the
    /// message goes back on offer; `false`, and the caller notifies `queue`
    /// as usual, so that a sender that saw `TAKING` and parked looks again.
    pub(crate) fn take_with(
        &self,
        queue: &WaitQueue,
        place: impl FnOnce(T) -> Result<(), T>,
    ) -> bool {
        let Some(msg) = self.claim() else {
            return false;
        };
        match place(msg) {
            Ok(()) => {
                // The sender parks only registered on `queue`, and never
                // while the cell is `TAKING` (its wait sits that out, see
                // `offer_and_wait`). So if the word had no registration
                // when we took the offer off its count, a later registration follows
                // our `TAKING` (both are read-modify-writes of the word,
                // and ours releases), the sender's look after it sees
                // `TAKING` or `TAKEN`, and it does not park: no wake-up,
                // and no handle to clone (three locked instructions fewer
                // per hand-off).
                let sender = queue.clear_offer().then(|| {
                    // SAFETY: `TAKING` by us: the sender wrote its handle
                    // before `OFFERED` and waits for `TAKEN` before it
                    // touches the cell again.
                    let sender = self.sender.with(|p| unsafe { (*p).clone() });
                    sender.expect("an offer names its sender")
                });
                self.complete();
                loom_step(&self.state);
                // It may be parked: a wake-up aimed at it, which its wait
                // takes as a reason to look again.
                if let Some(sender) = sender {
                    sender.unpark();
                }
                true
            }
            Err(msg) => {
                self.unclaim(msg);
                // Between that store and the caller's load of the queue
                // word (as after any publishing store): loom finds the lost
                // wake-up of a sender parked through a close without it.
                barrier::light();
                false
            }
        }
    }

    /// The channel is being dropped (its last handle): drops a message still on
    /// offer (only possible if the sending thread unwound mid-send).
    pub(crate) fn drop_offer(&self) {
        if self.state.load(Ordering::Relaxed) == OFFERED {
            // SAFETY: `OFFERED`: the cell holds the message, and no other
            // handle exists.
            drop(self.msg.with(|p| unsafe { p.read().assume_init() }));
        }
    }
}

/// Hand-off cells beyond the first, for an MPSC ring's producers: under
/// loom one (two offers out at once are a model's worth).
const MORE: usize = if cfg!(loom) { 1 } else { 7 };

/// The hand-off cells of an MPSC ring: each producer that waits for room
/// parks its message in a cell of its own, so that the consumer, freeing
/// slots, moves one message of each of them into the ring before it waits
/// (with one cell, it moved one: 4 producers on a ring of 16 slots, one
/// CPU, 7.6 -> 9.0 M msg/s, kanal 9.5; the same number of context
/// switches as kanal, whose blocked senders each leave their message in
/// its queue). The first cell is inline; the [`MORE`] others are allocated
/// by the first producer that finds it taken, so that a channel stays
/// within the allocator's per-thread cache (see `Array::handoff`) and one
/// that never has two producers waiting at once never allocates them.
///
/// The consumer takes the offers in turn, starting after the cell it took
/// last: a producer whose offer was taken offers again in the first free
/// cell, often the same one, and a consumer that always looked at the
/// first cell first served that producer alone while the others' offers
/// waited (one CPU, 4 producers at capacity 1 and a consumer that sleeps
/// between receives: every message from one producer). More producers
/// than cells wait the usual way, for a free slot, and while every cell
/// stays on offer the consumer fills each freed slot with an offer: so
/// with more than `1 + MORE` producers blocked at once, the others wait
/// until some of those pause.
pub(crate) struct Handoffs<T> {
    first: Handoff<T>,
    /// Null until a producer needs another cell; then set once (a
    /// compare-exchange: the loser frees its own), and freed with the
    /// channel.
    more: AtomicPtr<More<T>>,
}

/// The cells beyond the first, and where the consumer looks next.
struct More<T> {
    cells: [Handoff<T>; MORE],
    /// The cell (0: the first, `k`: `cells[k - 1]`) where the consumer
    /// starts looking for an offer: the one after the cell it took last.
    /// Only the consumer (one thread at a time) reads and writes it.
    next: AtomicUsize,
}

impl<T> Handoffs<T> {
    pub(crate) fn new() -> Self {
        Handoffs {
            first: Handoff::new(),
            more: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The cells beyond the first, if allocated.
    #[inline]
    fn more(&self) -> Option<&More<T>> {
        // Acquire: the cells' initialization by the producer that
        // allocated them.
        let more = self.more.load(Ordering::Acquire);
        // SAFETY: non-null, it came from `Box::into_raw` and is freed only
        // by `drop`, which has `&mut self`.
        (!more.is_null()).then(|| unsafe { &*more })
    }

    /// Sender: a cell no other sender holds, reserved ([`Handoff::reserve`]),
    /// allocating the others when the first is taken; `None` if every
    /// cell is.
    pub(crate) fn reserve(&self) -> Option<&Handoff<T>> {
        if self.first.reserve() {
            return Some(&self.first);
        }
        let more = match self.more() {
            Some(more) => more,
            None => self.allocate(),
        };
        more.cells.iter().find(|cell| cell.reserve())
    }

    #[cold]
    #[inline(never)]
    fn allocate(&self) -> &More<T> {
        let mine = Box::into_raw(Box::new(More {
            cells: std::array::from_fn(|_| Handoff::new()),
            next: AtomicUsize::new(0),
        }));
        // AcqRel: publishes our cells, or acquires the winner's.
        let more = match self.more.compare_exchange(
            std::ptr::null_mut(),
            mine,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => mine,
            Err(theirs) => {
                // SAFETY: ours, from `Box::into_raw` above, never shared.
                drop(unsafe { Box::from_raw(mine) });
                theirs
            }
        };
        // SAFETY: published (by us or the winner) and freed only by `drop`.
        unsafe { &*more }
    }

    /// Receiver, after freeing room: [`Handoff::take_with`] on a cell with
    /// a message on offer, if any (one slot was freed: the first found,
    /// looking from the cell after the one taken last). `false` if none
    /// was found, or its message was handed back.
    /// A producer whose offer we do not see (the cells' pointer not yet
    /// visible, a withdraw under way) is not lost: it looks at the ring
    /// itself before it parks, as every offer does (see
    /// [`Handoff::offer_and_wait`]), and then takes its message back.
    pub(crate) fn take_with(
        &self,
        queue: &WaitQueue,
        place: impl FnOnce(T) -> Result<(), T>,
    ) -> bool {
        let Some(more) = self.more() else {
            return self.first.take_with(queue, place);
        };
        let cell = |k: usize| match k {
            0 => &self.first,
            k => &more.cells[k - 1],
        };
        // Relaxed: only this thread (the consumer) uses `next`.
        let start = more.next.load(Ordering::Relaxed);
        let Some(k) = (start..=MORE).chain(0..start).find(|&k| cell(k).offered()) else {
            return false;
        };
        let taken = cell(k).take_with(queue, place);
        if taken {
            more.next.store((k + 1) % (1 + MORE), Ordering::Relaxed);
        }
        taken
    }
}

impl<T> Drop for Handoffs<T> {
    /// The channel is being dropped (its last handle): drops any message
    /// still on offer (only possible if a sending thread unwound mid-send)
    /// and frees the cells.
    fn drop(&mut self) {
        self.first.drop_offer();
        let more = self.more.load(Ordering::Acquire);
        if !more.is_null() {
            // SAFETY: from `Box::into_raw` (see `allocate`), and nobody
            // else holds the channel any more.
            let more = unsafe { Box::from_raw(more) };
            for cell in &more.cells {
                cell.drop_offer();
            }
        }
    }
}

/// The receiver's side of the hand-off: a cell where a blocking `recv` that
/// found the ring empty *accepts* a message, and a sender that finds it
/// accepting on an empty ring (one CPU, `Block`) writes its message there
/// instead of into the ring, completing that receive. The protocol around
/// it (when a sender may fill, the receiver's order of looking) is the
/// channel's: see "Direct hand-off" in `spsc.rs` and `mpsc/mod.rs`.
///
/// ```text
///   IDLE --arm--> ARMED --fill--> FILLING --filled--> FILLED --take--> IDLE
///    ^              |
///    '---disarm-----'
/// ```
///
/// - Only the receiver arms, disarms and takes; only senders fill. `disarm`
///   and `fill` are compare-exchanges from `ARMED`: exactly one wins, so a
///   message written here is received exactly once, and a receiver that
///   disarmed gets nothing from the cell.
/// - The message is initialized exactly while the state is `FILLED`.
pub(crate) struct Accept<T> {
    state: AtomicUsize,
    msg: UnsafeCell<MaybeUninit<T>>,
    /// The accepting receiver, for the filler to unpark. Written by the
    /// receiver before `ARMED`, when it arms from another thread than the
    /// one named here.
    receiver: UnsafeCell<Option<thread::Thread>>,
}

loom_switch!(
    /// Under loom only: whether channels made from now on by this test's
    /// models accept messages directly (see `handoff::Accept`). On by
    /// default; where the hand-off is used at all (one CPU), channels
    /// always accept outside loom. The models of other protocols turn it
    /// off to keep their state space.
    pub(crate) accept_enabled,
    loom_accept
);

/// Under loom, a step between a state store and the `unpark` after it.
/// loom switches threads only at its own operations, and its `unpark`
/// hands the unparker's history to the target thread at once (std's hands
/// it only to the `park` that consumes the token). Without a step in
/// between, no model would see the other side find the new state before
/// the `unpark`, as its spin stage does in real runs: weakening the
/// `Release` of that store went unnoticed by every model (checked by
/// weakening it, before and after this step was added).
#[inline(always)]
fn loom_step(state: &AtomicUsize) {
    #[cfg(loom)]
    state.load(Ordering::Relaxed);
    #[cfg(not(loom))]
    let _ = state;
}

/// The receiver does not accept.
const A_IDLE: usize = 0;
/// The receiver accepts a message.
const A_ARMED: usize = 1;
/// A sender won the cell and is writing its message.
const A_FILLING: usize = 2;
/// The cell holds a message for the receiver.
const A_FILLED: usize = 3;

// SAFETY: the message and the thread handle are only accessed by the
// holder of the cell under the state protocol above (a `T` moves between
// threads, never shared): `T: Send` suffices.
unsafe impl<T: Send> Send for Accept<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Accept<T> {}

impl<T> Accept<T> {
    pub(crate) fn new() -> Self {
        Accept {
            state: AtomicUsize::new(A_IDLE),
            msg: UnsafeCell::new(MaybeUninit::uninit()),
            receiver: UnsafeCell::new(None),
        }
    }

    /// Receiver, having found the ring empty (the cell is `IDLE`: every
    /// receive leaves it so): accepts a message from now on.
    pub(crate) fn arm(&self) {
        debug_assert_eq!(self.state.load(Ordering::Relaxed), A_IDLE);
        // SAFETY: `IDLE`: no sender touches the cell, and only the
        // receiver (us) writes it.
        unsafe { name_current_thread(&self.receiver) };
        // Release: a sender that wins the cell sees the handle.
        self.state.store(A_ARMED, Ordering::Release);
    }

    /// Receiver: stops accepting. `Some(msg)` if a sender filled the cell
    /// first (waiting for the end of its write if it is under way): that
    /// message is received, before anything in the ring.
    pub(crate) fn disarm(&self) -> Option<T> {
        if !self.disarm_in_place() {
            return None;
        }
        // SAFETY: `disarm_in_place` found the cell filled.
        Some(unsafe { self.take_filled() })
    }

    /// Receiver: stops accepting, as [`disarm`](Self::disarm), but leaves
    /// a message that a sender filled in: `true` if there is one. The
    /// caller then takes it with [`take_filled`](Self::take_filled) before
    /// it arms the cell again (nobody else acts on a filled cell), reading
    /// it where it is: `spsc`'s `recv` reads the message from the cell or
    /// from a slot at one place, so it is copied once to the caller.
    #[inline]
    pub(crate) fn disarm_in_place(&self) -> bool {
        loop {
            match self.state.load(Ordering::Acquire) {
                A_IDLE => return false,
                A_ARMED => {
                    if self
                        .state
                        .compare_exchange(A_ARMED, A_IDLE, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                    {
                        return false;
                    }
                }
                A_FILLED => return true,
                // A sender won the cell: it writes one message, or finds
                // that it may not and gives the cell back (`ARMED`).
                _ => park::wait_brief(|| self.state.load(Ordering::Acquire) != A_FILLING),
            }
        }
    }

    /// The cell's message, for the receiver, after `disarm_in_place`
    /// answered `true`: read it from here, then call [`emptied`](Self::emptied).
    #[inline(always)]
    pub(crate) fn cell(&self) -> &UnsafeCell<MaybeUninit<T>> {
        &self.msg
    }

    /// Receiver: the message of a filled cell was read out of
    /// [`cell`](Self::cell); the cell is empty (`IDLE`) again.
    #[inline(always)]
    pub(crate) fn emptied(&self) {
        // Relaxed: no sender touches the cell until we arm it again, which
        // is a `Release` store after this one.
        self.state.store(A_IDLE, Ordering::Relaxed);
    }

    /// Receiver: takes the message of a filled cell.
    ///
    /// # Safety
    ///
    /// [`disarm_in_place`](Self::disarm_in_place) answered `true`, and the
    /// message has not been taken since.
    unsafe fn take_filled(&self) -> T {
        // SAFETY: `FILLED` (acquired by `disarm_in_place`): the message is
        // initialized, and only the receiver (us) takes it.
        let msg = self.msg.with(|p| unsafe { p.read().assume_init() });
        self.emptied();
        msg
    }

    /// One attempt of an accepting receive: the cell first (a message
    /// given to us precedes everything in the ring), then `try_recv` on the
    /// ring; if that finds it empty, accepts from then on.
    pub(crate) fn attempt(
        &self,
        try_recv: impl FnOnce() -> Result<T, TryRecvError>,
    ) -> Result<T, TryRecvError> {
        // SAFETY: `attempt_with` runs `filled` only when the cell was found
        // filled, once.
        self.attempt_with(|| unsafe { self.take_filled() }, try_recv)
    }

    /// [`attempt`](Self::attempt), answering `filled()` when the cell
    /// holds a message (which `filled` takes, or leaves for the caller to
    /// read in place: [`cell`](Self::cell), then [`emptied`](Self::emptied))
    /// and otherwise what `try_ring` answers.
    #[inline]
    pub(crate) fn attempt_with<R>(
        &self,
        filled: impl FnOnce() -> R,
        try_ring: impl FnOnce() -> Result<R, TryRecvError>,
    ) -> Result<R, TryRecvError> {
        if self.disarm_in_place() {
            return Ok(filled());
        }
        let got = try_ring();
        if matches!(got, Err(TryRecvError::Empty)) {
            self.arm();
        }
        got
    }

    /// The end of an accepting receive's wait: only a timeout leaves the
    /// cell armed (every other outcome came from an attempt that disarmed
    /// it and did not arm again), and a sender may have filled it meanwhile:
    /// then the receive has its message.
    pub(crate) fn finish(&self, got: Result<T, RecvTimeoutError>) -> Result<T, RecvTimeoutError> {
        match got {
            Err(RecvTimeoutError::Timeout) => self.disarm().ok_or(RecvTimeoutError::Timeout),
            other => other,
        }
    }

    /// Sender: is a receiver accepting? (A hint: [`fill`](Self::fill)
    /// decides.)
    #[inline]
    pub(crate) fn is_armed(&self) -> bool {
        self.state.load(Ordering::Relaxed) == A_ARMED
    }

    /// Sender: writes `msg` into the cell if the receiver still accepts
    /// and `may` (run once the cell is ours, so the receiver cannot look
    /// at the ring meanwhile: it waits for our write) says the message may
    /// be given; then wakes the receiver if it may be parked (`Ok`). `Err`
    /// hands the message back: the receiver disarmed, another sender
    /// filled the cell first, or `may` refused (the cell accepts again).
    ///
    /// The receiver registers on `waiters`, the queue it waits on, and
    /// issues the heavy barrier before its last look at the cell and its
    /// `park`; our `FILLING` is the publishing store of the same barrier
    /// pair as a publish in the ring (see `park`). So if the queue's word
    /// says nobody is registered, that look sees `FILLING` or `FILLED`
    /// and the receiver does not park: no wake-up is needed, and a fill
    /// to a receiver that is spinning or yielding costs no handle clone
    /// and no `unpark` (three locked instructions: a one-CPU ping-pong
    /// through two capacity-1 channels went from 1.07 to 1.1 M round
    /// trips a second without them). (Waking through the queue itself
    /// would do as well, but takes its lock whenever the receiver is
    /// registered: the loom model of a fill racing `close_with` went from
    /// 17 s to more than 15 minutes.)
    pub(crate) fn fill(
        &self,
        msg: T,
        may: impl FnOnce() -> bool,
        waiters: &WaitQueue,
    ) -> Result<(), T> {
        // Acquire: the receiver's handle, written before `ARMED`, and
        // everything the receiver did before it armed (what it received,
        // and its registration on `waiters` if it armed after it).
        if self
            .state
            .compare_exchange(A_ARMED, A_FILLING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(msg);
        }
        if !may() {
            self.state.store(A_ARMED, Ordering::Release);
            return Err(msg);
        }
        // SAFETY: we won `ARMED -> FILLING`: the cell is empty, and ours
        // until `FILLED`.
        self.msg
            .with_mut(|p| unsafe { p.write(MaybeUninit::new(msg)) });
        // Read while the cell is `FILLING`: once it is `FILLED`, the
        // receiver may take the message, move to another thread and arm
        // again, writing its handle. `true` also where the barrier pair is
        // symmetric (the word carries `ALERT`): then we always wake it.
        let receiver = if waiters.needs_attention() {
            // SAFETY: as above; the receiver wrote it before `ARMED` and
            // does not write it while the cell is not `IDLE`.
            self.receiver.with(|p| unsafe { (*p).clone() })
        } else {
            None
        };
        // Release: the receiver that acquires `FILLED` sees the message.
        self.state.store(A_FILLED, Ordering::Release);
        if let Some(receiver) = receiver {
            loom_step(&self.state);
            // A wake-up aimed at it, which its wait takes as a reason to
            // look again (and it looks at the cell first).
            receiver.unpark();
        }
        Ok(())
    }

    /// The channel is being dropped (its last handle): drops a message still
    /// in the cell (only possible if the receiving thread unwound mid-receive).
    pub(crate) fn drop_accepted(&self) {
        if self.state.load(Ordering::Relaxed) == A_FILLED {
            // SAFETY: `FILLED`: the cell holds the message, and no other
            // handle exists.
            drop(self.msg.with(|p| unsafe { p.read().assume_init() }));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as Count;
    use std::sync::Arc;

    /// Counts its drops.
    struct Tracked(Arc<Count>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Every cell goes to one sender at a time: `1 + MORE` reservations
    /// get distinct cells (the first inline, then the others, allocated on
    /// the second), the next finds none, and a released cell is found
    /// again.
    #[test]
    fn each_sender_reserves_a_cell_of_its_own() {
        let cells = Handoffs::<u32>::new();
        let reserved: Vec<*const Handoff<u32>> = (0..=MORE)
            .map(|_| cells.reserve().expect("a free cell") as *const _)
            .collect();
        assert_eq!(reserved[0], &cells.first as *const _);
        let mut distinct = reserved.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 1 + MORE);
        assert!(cells.reserve().is_none(), "every cell is taken");
        // SAFETY: `reserved[3]` points into `cells`, which is alive.
        unsafe { &*reserved[3] }.release();
        assert_eq!(cells.reserve().map(|c| c as *const _), Some(reserved[3]));
    }

    /// Offers in the first cell and in the allocated ones are each taken
    /// once, one per freed slot, and each takes its count off the queue's
    /// word (a miscount trips `clear_offer`'s debug assertion, or leaves
    /// the word nonzero).
    #[test]
    fn the_consumer_takes_every_offer_once() {
        let queue = WaitQueue::new();
        let alerted = queue.needs_attention();
        let cells = Handoffs::<u32>::new();
        for msg in 0..3 {
            let cell = cells.reserve().unwrap();
            queue.set_offer();
            cell.offer(msg);
        }
        assert!(
            queue.needs_attention(),
            "offers send notifiers to the slow path"
        );
        let mut taken = Vec::new();
        while cells.take_with(&queue, |msg| {
            taken.push(msg);
            Ok(())
        }) {}
        taken.sort();
        assert_eq!(taken, [0, 1, 2]);
        assert_eq!(
            queue.needs_attention(),
            alerted,
            "every offer taken off the word"
        );
        // A message handed back (no room after all) stays on offer, and
        // counted, until a later freed slot takes it.
        queue.set_offer();
        cells.reserve().unwrap().offer(7);
        assert!(!cells.take_with(&queue, Err));
        assert!(queue.needs_attention());
        let mut again = None;
        assert!(cells.take_with(&queue, |msg| {
            again = Some(msg);
            Ok(())
        }));
        assert_eq!(again, Some(7));
        assert_eq!(queue.needs_attention(), alerted);
    }

    /// A channel dropped with messages on offer (a sending thread that
    /// unwound mid-send) drops each of them once, in the first cell and in
    /// the allocated ones, and frees those cells (Miri checks the leak).
    #[test]
    fn dropping_the_cells_drops_each_offer_once() {
        let drops = Arc::new(Count::new(0));
        let cells = Handoffs::<Tracked>::new();
        for _ in 0..3 {
            cells.reserve().unwrap().offer(Tracked(drops.clone()));
        }
        // A reserved cell without a message drops nothing.
        cells.reserve().unwrap();
        drop(cells);
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 3);
    }
}
