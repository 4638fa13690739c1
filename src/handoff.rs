//! The direct hand-off cell shared by the SPSC and MPSC rings (`Block`, one
//! CPU): a sender about to wait for room parks its message here, and the
//! receiver that frees a slot moves it into the ring on the sender's behalf
//! and completes that send. The protocol around it (who may claim, where
//! the message goes) is the channel's: see "Direct hand-off" in `spsc.rs`
//! and `mpsc/mod.rs`. This file holds the cell and its states.
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

use crate::park::{self, barrier, WaitQueue};
use crate::sync::{thread, AtomicUsize, Ordering, UnsafeCell};
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
        let me = thread::current();
        // SAFETY: as above.
        self.sender.with_mut(|p| unsafe { *p = Some(me) });
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

    /// Receiver: claims the offer, if one is out: the message and the
    /// sender to wake once it is published.
    fn claim(&self) -> Option<(T, thread::Thread)> {
        if self.state.load(Ordering::Relaxed) != OFFERED {
            return None;
        }
        // Acquire: the message the sender wrote before `OFFERED`.
        self.state
            .compare_exchange(OFFERED, TAKING, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: we won `OFFERED -> TAKING`: the message and the handle
        // are ours to read until we `unclaim` or `complete`.
        let msg = self.msg.with(|p| unsafe { p.read().assume_init() });
        // SAFETY: as above; the sender wrote it before `OFFERED`.
        let sender = self.sender.with(|p| unsafe { (*p).clone() });
        Some((msg, sender.expect("an offer names its sender")))
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
        self.offer(msg);
        queue.set_offer();
        let outcome = park::block_on(&[queue], deadline, spin, || match self.state() {
            TAKEN => Some(None),
            // Room the receiver did not fill with our message, or a close.
            OFFERED if room_or_closed() => self.withdraw().map(Some),
            // Still waiting; or `TAKING`: the receiver is sending the
            // message, and unparks us once it is `TAKEN`.
            _ => None,
        });
        let back = match outcome {
            Some(back) => back,
            None => match self.withdraw() {
                Some(msg) => {
                    queue.clear_offer();
                    self.release();
                    return Offered::TimedOut(msg);
                }
                // Timed out, but the receiver claimed the message first:
                // the send completes (it is being published now).
                None => {
                    park::wait_brief(|| self.state() == TAKEN);
                    None
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
    /// room after all, or closed). Sent: clears the mark on `queue`,
    /// completes the offer and unparks its sender; `true`. Handed back: the
    /// message goes back on offer; `false`, and the caller notifies `queue`
    /// as usual, so that a sender that saw `TAKING` and parked looks again.
    pub(crate) fn take_with(
        &self,
        queue: &WaitQueue,
        place: impl FnOnce(T) -> Result<(), T>,
    ) -> bool {
        let Some((msg, sender)) = self.claim() else {
            return false;
        };
        match place(msg) {
            Ok(()) => {
                queue.clear_offer();
                self.complete();
                // It may be parked: a wake-up aimed at it, which its wait
                // takes as a reason to look again.
                sender.unpark();
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
