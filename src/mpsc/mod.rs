//! Multi-producer single-consumer channel: a bounded ring, or a rendezvous
//! channel at capacity 0.
//!
//! ```
//! let (tx, rx) = rillet::mpsc::channel(16);
//! let handles: Vec<_> = (0..4)
//!     .map(|p| {
//!         let tx = tx.clone();
//!         std::thread::spawn(move || {
//!             for i in 0..10 {
//!                 tx.send(p * 10 + i).unwrap();
//!             }
//!         })
//!     })
//!     .collect();
//! drop(tx); // the channel closes when the last sender goes
//! assert_eq!(rx.iter().count(), 40);
//! for h in handles {
//!     h.join().unwrap();
//! }
//! ```
//!
//! # Algorithm (capacity ≥ 1)
//!
//! Vyukov's bounded queue with per-slot stamps, in the lap encoding of
//! crossbeam-channel's `array` flavor, specialised for one consumer:
//!
//! ```text
//!   position = lap | index          index < cap, lap a multiple of ONE_LAP
//!   tail     = position | MARK      MARK (between index and lap bits) = closed
//!
//!   stamp[index] == position       the slot is free for the producer of `position`
//!   stamp[index] == position + 1   the slot holds the message of `position`
//! ```
//!
//! (A stamp keeps the position without its index bits, `Laps::stamp`: a
//! slot only meets positions of its own index. So every stamp of the first
//! lap is 0; below, "position" in a stamp means that.)
//!
//! - A producer loads `tail`; if the slot's stamp says "free for this
//!   position" it claims the position with a compare-exchange on `tail`,
//!   writes the message and stores `stamp = position + 1` (`Release`). If the
//!   stamp is one lap behind, the ring may be full: the producer reads
//!   `head` to decide (the consumer's line is only touched then).
//! - The consumer alone advances `head` (under `Block` and `DropNewest`): it
//!   loads the stamp of `head` (`Acquire`); if the message is there, it reads
//!   it, stores `stamp = position + ONE_LAP` ("free for the next lap") and
//!   stores the new `head`. No read-modify-write on the consumer side.
//! - Exactly `cap` slots: capacity is exact without a division.
//! - Closing is one `fetch_or(MARK)` on `tail` (`close::set_mark` in `src/close.rs`):
//!   the call that set the bit is the one that closed; a producer's claim
//!   is a compare-exchange of an unmarked `tail`, so no message can be
//!   claimed after the close. `close_with` claims its slot and sets the mark
//!   in the same compare-exchange: nothing can follow the final message.
//! - `try_recv` never waits for a producer that claimed a slot but has not
//!   written it yet (crossbeam-channel #997): the stamp is not ready, so it
//!   returns `Empty`; a blocking `recv` waits for that producer's wake-up.
//!
//! After storing a stamp each side issues the light barrier and loads the
//! other side's queue word (waiter count and `ALERT` bit, `src/park.rs`):
//! no lock unless a thread is parked.
//!
//! - When the consumer finds nothing at `head` it reads `Config::closed`,
//!   a read-mostly mirror of the mark, rather than `tail`: a consumer that
//!   polled `tail` while waiting would take that line from the producers
//!   between their claims (on the 2-core machine, 2 producers ran at 10 M
//!   msg/s that way and at 34 without it).
//!
//! ## A new channel
//!
//! A Vyukov ring needs a stamp in every slot before its first lap, and
//! writing them all (a zeroed allocation is a `memset` of the whole array
//! when the allocator reuses memory) was 60% of making a channel of 1024,
//! sending one message, receiving it and dropping it. So a small slot
//! array (up to 128 KiB; a larger one is a zeroed allocation, usually
//! fresh pages that need no clearing) is allocated as is, and only slots
//! below `ready` (in the read-mostly config) have a stamp: the first
//! kilobyte's worth when the channel is made, the rest a kilobyte at a
//! time by the first producer whose claim reaches past `ready`. That
//! producer takes a small lock (`init_lock`; other producers that reach
//! there wait for its stores, a kilobyte at most, the only wait of a claim
//! that is not for the consumer), writes the stamps, and stores the new
//! `ready` (`Release`). Every reader of a stamp loads `ready` (`Acquire`)
//! first; the consumer takes a slot past it as empty (no producer has
//! claimed it). After the first lap `ready` is the capacity and the check
//! always passes. A channel of 1024 made, used once and dropped: 315 ns
//! -> 115 ns on the 2-core machine (crossbeam-channel: 290 ns); with the
//! channel built in place in its allocation (`counter::ChanRef::pair`) and small
//! enough for the allocator's per-thread cache, about 85 ns (`versus`
//! lifecycle row: 3.6-3.9x crossbeam-channel). In place means one
//! construction per `SenderRef::new` call, and `Array::new` inlined: while
//! `Builder::build` chose between the ring and the rendezvous kind inside
//! one closure, the compiler built the kilobyte on the stack and copied it
//! twice (2.6x crossbeam-channel). The handles' count (`counter::ChanRef`:
//! made at 2, the last handle finds itself last with a load) and a second
//! close that loads the mark before setting it took the locked
//! instructions of that cycle from five to two: 10.4 -> 14.2 M channels/s
//! on one CPU (crossbeam-channel: 3.5).
//!
//! ## The dropping policies
//!
//! Under `DropOldest` a producer that finds the ring full claims the tail
//! position anyway (one compare-exchange, as any claim: if the channel is
//! closed it fails and nothing is evicted), then evicts the message its slot
//! still holds, which is the oldest (`head` is one lap behind the claimed
//! position): it claims that position from `head` with a compare-exchange
//! and moves the message out, or finds the consumer got there first and
//! waits for it to free the slot. Then it writes its own. So an eviction
//! happens only for a send that succeeds, and each message is received or
//! evicted, never both: under both dropping policies the consumer claims
//! `head` with a compare-exchange too (`DropNewest` needs it because
//! `close_with` evicts there). The waits are bounded by another thread's
//! copy of one message.
//!
//! ## Direct hand-off (one CPU)
//!
//! As in `spsc.rs` ("Direct hand-off"), with the cells of `src/handoff.rs`:
//! where the process may run on one CPU, a `Block` producer whose blocking
//! send finds the ring full reserves one of the channel's hand-off cells
//! and parks its message there. There are eight: the first in the channel,
//! seven more allocated the first time a second producer needs one (a
//! producer that finds all eight taken waits the usual way, and while all
//! eight stay on offer it waits until one of their producers pauses: the
//! consumer fills each freed slot with an offer). Each cell is one offer,
//! counted in the send queue's word. The consumer, after freeing a slot,
//! claims an offer (one per freed slot, taking the cells in turn: a
//! producer whose offer was taken offers again in the first free cell,
//! and a consumer that looked there first served that producer alone)
//! and sends the message exactly as a producer would: a claim of
//! `tail` (a compare-exchange), the write and the stamp. That claim fails
//! if another producer took the freed slot first or the channel is closed
//! (the mark is on `tail`); the message then goes back on offer and the
//! producer is woken to look again (withdraw and send, or take it back on
//! a close). On success the consumer unparks that producer, whose send is
//! complete. Pinned to one CPU, capacity 1, one producer: 0.93 -> 1.74 M
//! msg/s, 3.4x -> 6.7x crossbeam (kanal 10.6x). With one cell for all
//! producers, a consumer moved one waiting producer's message per time
//! slice, and the others only yielded: capacity 16, 4 producers, 7.6 ->
//! 9.0 M msg/s with a cell each (kanal 9.5, whose blocked senders each
//! leave their message in its queue; the same number of context switches
//! now), 8 producers 4.6 -> 6.2 (kanal 6.7).
//!
//! And the other direction, as in `spsc.rs`: the consumer's blocking
//! receive accepts a message in the channel's accept cell while it waits
//! on an empty ring, and a producer whose blocking or non-blocking send
//! finds the cell accepting wins it (a compare-exchange: one producer
//! does, the others claim slots), then checks that the ring is empty
//! (`head == tail`: nothing claimed and not received) and open, and writes
//! its message there instead of claiming a slot (otherwise it gives the
//! cell back and claims). The check comes after the win on purpose: the
//! consumer then waits for the write and takes nothing from the ring, and
//! the win acquired everything the consumer had received before it
//! accepted. Checked before the win, a producer could see the ring open
//! and empty, then another producer's `close_with` land, be received, and
//! the consumer accept again on the closed, empty ring (its `closed` flag
//! is set just after the mark): the given message would come after the
//! final one (a loom model found this). A claim that lands after the check
//! comes after the given message; a `close_with` claims with the mark on
//! `tail`, so the check refuses once it is there.
//!
//! # Rendezvous (capacity 0)
//!
//! Go's unbuffered channel. A sender and the receiver meet: a sender that
//! finds the receiver waiting hands its message into the receiver's packet;
//! otherwise it queues a packet holding its message and waits until the
//! receiver takes it. `send` returns `Ok` only once the receiver has the
//! message; a send that times out, or finds the channel closed, takes its
//! message back out of its packet. The packets sit in a list behind a lock
//! that only a thread about to park, or a thread waking a parked one, takes;
//! `try_send`/`try_recv` that find nobody to meet return without it. A
//! sender waiting in a `select!` counts as waiting: `recv`, `try_recv` and
//! a receiving select meet it (they claim its case, then wait the moment
//! it takes that sender to evaluate its value; see the `select` module's
//! decisions). A receive that claimed such a sender waits for its message
//! past its own timeout: the sender is already on its way.
//!
//! # Decisions
//!
//! - `close_with(msg)`: the final message always goes in. Under `Block` it
//!   waits for room; on a full `DropNewest` or `DropOldest` ring it evicts
//!   the oldest message (counted). On a rendezvous channel it waits for the
//!   receiver like `send`, and closes once the receiver has it.
//! - `send_many` is a loop of `send` that takes a batch from the iterator
//!   (up to 64 messages, no more than look free, and more than one only
//!   while the iterator's `size_hint` promises them), then claims slots for
//!   it with one compare-exchange (under `Block` the room it claims is
//!   worked out from `head` alone, without reading the slots' stamps): it
//!   never runs the iterator while it holds a claim. While the iterator
//!   runs, the batch is registered on the thread (`chan::Batch`): a send,
//!   `close_with`, select send or close that the iterator makes on this
//!   channel first sends the batch, so the result is the loop's (a close
//!   sends what finds room without waiting,
//!   and the rest comes back in `send_many`'s error); if the iterator
//!   panics, the batch is sent. A receive or select readiness of the
//!   receiver on this thread that finds nothing sends the batch (without
//!   waiting for room) and looks again, and `len()` and `recv_many` send
//!   it first: the iterator finds what the loop had sent. On close it
//!   returns the messages taken but not enqueued (the one that failed,
//!   unless a concurrent close raced a batch); items the iterator has not
//!   yielded stay in it. With fewer than 16 slots free (a ring of fewer
//!   than 16 always) it takes one message at a time, outside the batch,
//!   and sends it (under `DropNewest`, drops it if there is no room)
//!   before it asks for the next, as the loop does, then looks again
//!   after 64; under `DropOldest` it is a loop of `send` (each send evicts
//!   one message).
//! - On a rendezvous channel `send_many` hands over a batch (up to 64
//!   messages, taken from the iterator as above, in the same registered
//!   `chan::Batch`) in one packet: the first goes straight to a receiver
//!   already waiting, the rest wait for it together, and `send_many`
//!   returns once the receiver took the last, as the loop's last `send`
//!   does. Each `recv` takes the next of them; `recv_many` takes a run of
//!   them under one lock. So a message of the batch is taken without a
//!   meeting of its own (a park and a wake-up each, in the loop): two
//!   CPUs pinned, one sender, u64 in calls of 256, medians of 7 runs: the
//!   loop of `send` 1.1-1.2 M msg/s (with `recv` or `recv_many`),
//!   `send_many` 21 with a loop of `recv`, 27 with `recv_many`. A send,
//!   `close_with` or close that the iterator makes first sends the batch
//!   as `send` would (the close: only to a receiver already waiting); on
//!   close, the messages taken and not received come back in the error;
//!   nothing else in the rendezvous changes (a `send` alone still
//!   completes only when its message is taken).
//! - `recv_many` on the ring frees the slots of its run a quarter of the
//!   ring at a time (producers waiting for room refill them while the
//!   rest is read). A call that follows one that took every message there
//!   was (fewer than its `max`) first pauses, a few microseconds at most,
//!   for a batch to be there, as a loop of `recv` does when it catches
//!   up; it then returns what is there, as always. (Off on one CPU.)
//! - Dropping the `Receiver` closes the channel and drops the buffered
//!   messages at once (as std and crossbeam do), not with the last sender.
//! - `len()` of a rendezvous channel is 0 and `is_full()` is `true`.

mod array;
mod zero;

use crate::chan::{self, Core, Handle, Receiving, SendMode, Sending};
use crate::counter::{ChanRef, Counted, SenderRef};
use crate::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::sync::Arc;
use crate::Overflow;
use array::Array;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::time::Instant;
use zero::Zero;

builder!("mpsc", |_| {});

impl Builder {
    /// Creates the channel (capacity 0: a rendezvous channel).
    ///
    /// # Panics
    ///
    /// If the capacity is too large to allocate, or if a rendezvous channel
    /// (capacity 0) is given a policy other than `Block`: with no buffer
    /// there is nothing to drop.
    ///
    /// ```
    /// let (tx, rx) = rillet::mpsc::Builder::new(0).build();
    /// let h = std::thread::spawn(move || tx.send(7)); // waits for the receiver
    /// assert_eq!(rx.recv(), Ok(7));
    /// assert_eq!(h.join().unwrap(), Ok(()));
    /// ```
    pub fn build<T>(self) -> (Sender<T>, Receiver<T>) {
        if self.capacity == 0 {
            assert!(
                self.overflow == Overflow::Block,
                "mpsc::Builder: a rendezvous channel (capacity 0) has no buffer to overflow; \
                 use Overflow::Block or a capacity of at least 1 with {:?}",
                self.overflow
            );
        }
        // One construction per call of `SenderRef::new`: with the choice
        // inside its closure, the compiler built the channel on the stack
        // and copied its kilobyte into the heap (see `ChanRef::pair`).
        let (tx, shared) = if self.capacity == 0 {
            SenderRef::new(|| Chan::Zero(Zero::new()))
        } else {
            SenderRef::new(|| Chan::Array(Array::new(self.capacity, self.overflow)))
        };
        (
            Sender { chan: tx },
            Receiver {
                caught_up: Cell::new(false),
                chan: shared,
                _not_sync: PhantomData,
            },
        )
    }
}

/// Creates an MPSC channel holding at most `capacity` messages, with
/// [`Overflow::Block`]. `channel(0)` is a rendezvous channel.
///
/// # Panics
///
/// If `capacity` is too large to allocate.
///
/// ```
/// let (tx, rx) = rillet::mpsc::channel(16);
/// let tx2 = tx.clone();
/// std::thread::spawn(move || tx.send(1).unwrap());
/// std::thread::spawn(move || tx2.send(2).unwrap());
/// let mut got: Vec<i32> = rx.iter().collect(); // ends when both senders are gone
/// got.sort();
/// assert_eq!(got, [1, 2]);
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    Builder::new(capacity).build()
}

/// The two flavours behind one pair of handles.
#[allow(clippy::large_enum_variant)] // one per channel, inside its `Arc`: a box would add an indirection to every operation
pub(crate) enum Chan<T> {
    Array(Array<T>),
    Zero(Zero<T>),
}

impl<T> Core for Chan<T> {
    fn len(&self) -> usize {
        match self {
            Chan::Array(c) => c.len(),
            Chan::Zero(c) => c.len(),
        }
    }

    fn capacity(&self) -> usize {
        match self {
            Chan::Array(c) => c.capacity(),
            Chan::Zero(c) => c.capacity(),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Chan::Array(c) => c.is_closed(),
            Chan::Zero(c) => c.is_closed(),
        }
    }

    fn dropped(&self) -> u64 {
        match self {
            Chan::Array(c) => c.dropped(),
            Chan::Zero(c) => c.dropped(),
        }
    }

    fn overflow(&self) -> Overflow {
        match self {
            Chan::Array(c) => c.overflow(),
            Chan::Zero(c) => c.overflow(),
        }
    }

    fn close(&self) -> bool {
        match self {
            Chan::Array(c) => c.close(),
            Chan::Zero(c) => c.close(),
        }
    }

    fn pending_key(&self) -> *const () {
        match self {
            Chan::Array(c) => c.pending_key(),
            Chan::Zero(c) => c.pending_key(),
        }
    }
}

/// The sending half of an MPSC channel: `Clone`, `Send + Sync` (when
/// `T: Send`). Dropping the last clone closes the channel.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<rillet::mpsc::Sender<std::rc::Rc<u8>>>();
/// ```
pub struct Sender<T> {
    chan: SenderRef<Chan<T>>,
}

/// The receiving half of an MPSC channel: `Send` (when `T: Send`) but not
/// `Sync`.
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<rillet::mpsc::Receiver<u8>>();
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<rillet::mpsc::Receiver<std::rc::Rc<u8>>>();
/// ```
pub struct Receiver<T> {
    chan: ChanRef<Counted<Chan<T>>>,
    /// The last `recv_many` on the ring ended at the first message not
    /// there yet, before its `max`: it caught up with the producers.
    caught_up: Cell<bool>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> Sender<T> {
    sender_methods!("mpsc");

    #[inline]
    fn try_send_now(&self, msg: T) -> Result<(), TrySendError<T>> {
        match &*self.chan {
            Chan::Array(c) => c.try_send_as(msg, SendMode::Try),
            Chan::Zero(c) => c.send(msg, None, false).map_err(|e| match e {
                SendTimeoutError::Timeout(m) => TrySendError::Full(m),
                SendTimeoutError::Closed(m) => TrySendError::Closed(m),
            }),
        }
    }

    #[inline]
    fn send_now(&self, msg: T) -> Result<(), TrySendError<T>> {
        match &*self.chan {
            Chan::Array(c) => c.try_send_as(msg, SendMode::Wait),
            Chan::Zero(_) => Err(TrySendError::Full(msg)), // meets in `send_until`
        }
    }

    /// Out of line: `send` reaches it only when the channel is full.
    #[inline(never)]
    fn send_until(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        match &*self.chan {
            Chan::Array(c) => c.send_until(msg, deadline),
            Chan::Zero(c) => c.send(msg, deadline, true),
        }
    }

    /// Sends every message of `msgs` like a loop of [`send`](Self::send),
    /// claiming up to 64 free slots per compare-exchange (on a rendezvous
    /// channel: handing up to 64 to the receiver at once, and returning
    /// once it took the last). Returns how many
    /// messages were taken from the iterator; on close, the messages taken
    /// but not enqueued come back in the error and items not yet yielded stay
    /// in the iterator.
    ///
    /// The result is that of the loop, also when the iterator itself calls
    /// into this channel: a message it sends while producing item `k` lands
    /// after item `k - 1` and before item `k`; a close it makes keeps the
    /// items yielded before it; a receive or `len()` it makes finds the
    /// items yielded before. If the iterator panics, what it yielded
    /// before the panic has been sent. An iterator whose `size_hint`
    /// promises no more items (a channel's `iter()`) is asked for the next
    /// one only once the ones it gave are sent.
    ///
    /// Other threads see the items of a batch together, when the batch is
    /// sent: once the iterator has given the items its `size_hint`
    /// promised (as many as there is room for), or has ended. So an iterator whose `next` waits for another thread to receive an
    /// item it already gave must not promise the items after it (let its
    /// `size_hint` say 0, or use a loop of `send`), or it waits forever.
    /// (Publishing each item before asking for the next would make this a
    /// loop of `send`, at its cost.)
    ///
    /// ```
    /// let (tx, rx) = rillet::mpsc::channel(8);
    /// assert_eq!(tx.send_many(0..5), Ok(5));
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    /// drop(rx);
    /// assert_eq!(tx.send_many([7, 8]), Err(rillet::SendError(vec![7])));
    /// ```
    pub fn send_many<I: IntoIterator<Item = T>>(
        &self,
        msgs: I,
    ) -> Result<usize, SendError<Vec<T>>> {
        let mut iter = msgs.into_iter();
        match &*self.chan {
            Chan::Array(c) => c.send_many(&mut iter),
            Chan::Zero(c) => c.send_many(&mut iter),
        }
    }

    /// Sends a final message and closes in one step: no message from any
    /// sender can be enqueued after it, so a receiver that drains the
    /// channel sees it last (the "done" message of an N:1 channel). The
    /// final message always goes in: under `Block` this waits for room; on
    /// a full `DropNewest` or `DropOldest` channel the oldest message is
    /// evicted (and counted); on a rendezvous channel it waits for the
    /// receiver. Fails (handing `msg` back) if the channel is already
    /// closed.
    ///
    /// ```
    /// let (tx, rx) = rillet::mpsc::channel(4);
    /// let worker = tx.clone();
    /// worker.send("work").unwrap();
    /// tx.close_with("done").unwrap();
    /// assert!(worker.send("late").is_err());
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), ["work", "done"]);
    /// ```
    pub fn close_with(self, msg: T) -> Result<(), SendError<T>> {
        match &*self.chan {
            Chan::Array(c) => {
                chan::send(c, msg, None, SendMode::Last).map_err(|e| SendError(e.into_inner()))
            }
            Chan::Zero(c) => c.close_with(msg),
        }
    }

    introspection_methods!("mpsc", "tx");
}

counted_sender!("mpsc");

impl<T> Receiver<T> {
    receiver_methods!("mpsc", RecvError, TryRecvError, RecvTimeoutError);

    /// `recv`: the fast path of `try_recv`, and the wait in one
    /// out-of-line call that finds *where* the message is (our head slot,
    /// or the accept cell) without reading it; the message is then read at
    /// one place, straight to where the caller wants it (as
    /// `spsc::Receiver::recv_blocking`). Through `try_recv` and a match, a
    /// 64-byte message was copied four times per `recv`.
    #[inline(always)]
    fn recv_blocking(&self) -> Result<T, RecvError> {
        let c = match &**self.chan {
            Chan::Array(c) if !c.claims_head() => c,
            _ => return self.recv_other(),
        };
        let found = match c.ready_head() {
            Some(head) => array::Found::Head(head),
            None => c.recv_slow()?,
        };
        // SAFETY: `found` came from `ready_head` or `recv_slow` just now,
        // and we are the consumer.
        Ok(unsafe { c.take_found(found) })
    }

    // `recv` of a rendezvous channel, or of a ring whose consumer claims
    // its head (the dropping policies).
    generic_recv_blocking!(recv_other, inline(never));

    #[inline]
    fn try_recv_now(&self) -> Result<T, TryRecvError> {
        match &**self.chan {
            Chan::Array(c) => c.try_recv_as(),
            Chan::Zero(c) => c.recv(None, false).map_err(|e| match e {
                RecvTimeoutError::Timeout => TryRecvError::Empty,
                RecvTimeoutError::Closed => TryRecvError::Closed,
            }),
        }
    }

    #[inline]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        match &**self.chan {
            Chan::Array(c) if c.accepts() => c.recv_accepting(deadline),
            Chan::Array(c) => chan::recv_with(c, deadline, || c.try_recv_as()),
            Chan::Zero(c) => c.recv(deadline, true),
        }
    }

    /// Waits for at least one message, then appends up to `max` buffered
    /// messages to `buf` with one head update. Returns how many it appended;
    /// `Ok(0)` only when `max` is 0.
    ///
    /// ```
    /// let (tx, rx) = rillet::mpsc::channel(8);
    /// tx.send_many(0..5).unwrap();
    /// let mut buf = Vec::new();
    /// assert_eq!(rx.recv_many(&mut buf, 3), Ok(3));
    /// assert_eq!(rx.recv_many(&mut buf, 10), Ok(2));
    /// assert_eq!(buf, [0, 1, 2, 3, 4]);
    /// ```
    pub fn recv_many(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        if max == 0 {
            return Ok(0);
        }
        match &**self.chan {
            Chan::Array(c) => {
                if self.caught_up.get() {
                    // The previous run took every message there was: pause
                    // for a batch first, as a loop of `recv` does when it
                    // catches up (`before_recv_wait`), rather than take the
                    // one or two the producers wrote since, on the lines
                    // they are writing. Two CPUs pinned, one producer, u64,
                    // calls of 256, medians of 5 in turns with the build
                    // before: a loop of `send` against `recv_many`,
                    // capacity 16, 28 -> 34 M msg/s (a loop of `recv`:
                    // 25-28), 64, 43 -> 53 (58), 1024, 76 -> 81 (85);
                    // `send_many` against it, capacity 16, 27 -> 32, 64, 77
                    // -> 67-72 (the one loss), 1024 as before (217).
                    // Pausing for half the ring was measured on 2026-12-06
                    // and not kept: after every run, after runs shorter
                    // than the ring, or unless a quarter was written
                    // already, a loop of `send` against `recv_many` gained
                    // (capacity 64, 49-52 -> 56-63; 128, 63-67 -> 69-77),
                    // but `send_many` against it lost (128, 130-140 ->
                    // 74-127), and so did capacity 16 with two producers
                    // (35 -> 18-27).
                    c.before_recv_wait();
                }
                let got = chan::recv_with(c, None, || c.try_recv_many(buf, max));
                self.caught_up.set(matches!(got, Ok(n) if n < max));
                got.map_err(|_| RecvError)
            }
            Chan::Zero(c) => {
                buf.push(c.recv(None, true).map_err(|_| RecvError)?);
                // Waiting senders' messages under one lock, then one at a
                // time (a selecting sender's offer).
                let mut n = 1 + c.take_run(buf, max - 1);
                while n < max {
                    match c.recv(None, false) {
                        Ok(m) => buf.push(m),
                        Err(_) => break,
                    }
                    n += 1;
                }
                Ok(n)
            }
        }
    }

    introspection_methods!("mpsc", "rx");
}

impl<T> Handle for Receiver<T> {
    type Core = Chan<T>;

    fn core(&self) -> &Chan<T> {
        &self.chan
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        match &**self.chan {
            Chan::Array(c) => c.close_and_drain(),
            Chan::Zero(c) => c.close_and_drain(),
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("mpsc::Receiver { .. }")
    }
}

receiver_iterators!("mpsc");

impl<T> crate::select::case::Case for Receiver<T> {
    fn ready(&self) -> bool {
        match &**self.chan {
            Chan::Array(c) => c.recv_ready(),
            Chan::Zero(c) => c.recv_ready(),
        }
    }

    fn queue(&self) -> Option<&crate::park::WaitQueue> {
        match &**self.chan {
            Chan::Array(c) => Some(c.recv_queue()),
            // A sender that comes claims the offer and unparks us.
            Chan::Zero(_) => None,
        }
    }

    fn addr(&self) -> *const () {
        self as *const Self as *const ()
    }

    fn offers(&self) -> bool {
        match &**self.chan {
            Chan::Array(_) => false,
            Chan::Zero(_) => true,
        }
    }

    fn register(&self, waiter: &Arc<crate::park::Waiter>, tag: usize, _complete: bool) {
        if let Chan::Zero(c) = &**self.chan {
            c.register(waiter, tag);
        }
    }

    fn unregister(&self, waiter: &Arc<crate::park::Waiter>) {
        if let Chan::Zero(c) = &**self.chan {
            c.unregister(waiter);
        }
    }

    fn reserve(&self, _complete: bool) -> bool {
        match &**self.chan {
            Chan::Array(_) => true,
            Chan::Zero(c) => c.reserve_recv(),
        }
    }
}

impl<T> crate::select::case::Case for Sender<T> {
    fn ready(&self) -> bool {
        match &*self.chan {
            Chan::Array(c) => c.send_ready(),
            Chan::Zero(c) => c.send_ready(),
        }
    }

    fn queue(&self) -> Option<&crate::park::WaitQueue> {
        Some(match &*self.chan {
            Chan::Array(c) => c.send_queue(),
            Chan::Zero(c) => c.send_select_queue(),
        })
    }

    fn addr(&self) -> *const () {
        self as *const Self as *const ()
    }

    fn offers(&self) -> bool {
        matches!(&*self.chan, Chan::Zero(_))
    }

    // Only a select that completes its case offers to send: the receiver
    // that claims the offer then waits for the message.
    fn register(&self, waiter: &Arc<crate::park::Waiter>, tag: usize, complete: bool) {
        if let (Chan::Zero(c), true) = (&*self.chan, complete) {
            c.register_send(waiter, tag);
        }
    }

    fn unregister(&self, waiter: &Arc<crate::park::Waiter>) {
        if let Chan::Zero(c) = &*self.chan {
            c.unregister_send(waiter);
        }
    }

    // A select that completes its send case claims the receiver it saw
    // offering (which then waits for the message): a send case that won on
    // the offer alone could find the receiver gone to another case, and
    // wait in a plain send (two selects, each sending on its own channel
    // and receiving on the other's, both did so).
    fn reserve(&self, complete: bool) -> bool {
        match &*self.chan {
            Chan::Zero(c) if complete => c.reserve_send(),
            _ => true,
        }
    }

    fn abort(&self) {
        if let Chan::Zero(c) = &*self.chan {
            c.abort_send();
        }
    }
}

select_completions!(RecvError, []);
