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
//! # Rendezvous (capacity 0)
//!
//! Go's unbuffered channel. A sender and the receiver meet: a sender that
//! finds the receiver waiting hands its message into the receiver's packet;
//! otherwise it queues a packet holding its message and waits until the
//! receiver takes it. `send` returns `Ok` only once the receiver has the
//! message; a send that times out, or finds the channel closed, takes its
//! message back out of its packet. The packets sit in a list behind a lock
//! that only a thread about to park, or a thread waking a parked one, takes;
//! `try_send`/`try_recv` that find nobody to meet return without it.
//!
//! # Decisions
//!
//! - `close_with(msg)`: the final message always goes in. Under `Block` it
//!   waits for room; on a full `DropNewest` or `DropOldest` ring it evicts
//!   the oldest message (counted). On a rendezvous channel it waits for the
//!   receiver like `send`, and closes once the receiver has it.
//! - `send_many` takes a batch from the iterator (up to 64 messages, no more
//!   than look free), then claims slots for it with one compare-exchange: it
//!   never runs the iterator while it holds a claim. A message the iterator
//!   sends on this channel itself lands ahead of the batch being collected;
//!   if the iterator panics, that batch is dropped, unsent. On close it
//!   returns the messages taken but not enqueued; items the iterator has not
//!   yielded stay in it.
//! - Dropping the `Receiver` closes the channel and drops the buffered
//!   messages at once (as std and crossbeam do), not with the last sender.
//! - `len()` of a rendezvous channel is 0 and `is_full()` is `true`.

use crate::close;
use crate::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::park::{self, WaitQueue};
use crate::sync::{
    thread, Arc, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Backoff, Mutex, Ordering, UnsafeCell,
};
use crate::Overflow;
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// Largest batch `send_many` claims with one compare-exchange.
const MAX_BATCH: usize = 64;

/// Configures and creates an MPSC channel.
///
/// ```
/// use rillet::{mpsc, Overflow};
/// let (tx, rx) = mpsc::Builder::new(2).overflow(Overflow::DropNewest).build();
/// for i in 0..5 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1]);
/// assert_eq!(rx.dropped(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    capacity: usize,
    overflow: Overflow,
}

impl Builder {
    /// A builder for a channel holding at most `capacity` messages (0: a
    /// rendezvous channel).
    pub fn new(capacity: usize) -> Self {
        Builder {
            capacity,
            overflow: Overflow::Block,
        }
    }

    /// Sets the overflow policy (default [`Overflow::Block`]).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Creates the channel.
    ///
    /// # Panics
    ///
    /// If the capacity is too large to allocate, or if a rendezvous channel
    /// (capacity 0) is given a policy other than `Block`: with no buffer
    /// there is nothing to drop.
    pub fn build<T>(self) -> (Sender<T>, Receiver<T>) {
        if self.capacity == 0 {
            assert!(
                self.overflow == Overflow::Block,
                "mpsc::Builder: a rendezvous channel (capacity 0) has no buffer to overflow; \
                 use Overflow::Block or a capacity of at least 1 with {:?}",
                self.overflow
            );
            let chan = Arc::new(Zero::new());
            return (
                Sender {
                    flavor: SenderFlavor::Zero(chan.clone()),
                },
                Receiver {
                    flavor: ReceiverFlavor::Zero(chan),
                    _not_sync: PhantomData,
                },
            );
        }
        let chan = Arc::new(Array::new(self.capacity, self.overflow));
        (
            Sender {
                flavor: SenderFlavor::Array(chan.clone()),
            },
            Receiver {
                flavor: ReceiverFlavor::Array(chan),
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
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    Builder::new(capacity).build()
}

// ------------------------------------------------------------------ array

struct Slot<T> {
    stamp: AtomicUsize,
    msg: UnsafeCell<MaybeUninit<T>>,
}

/// Read-mostly configuration.
struct Config {
    cap: usize,
    /// The closed bit of `tail`; also `index + 1` never reaches it.
    mark: usize,
    one_lap: usize,
    overflow: Overflow,
    /// `overflow != Block`: the consumer claims `head` with a
    /// compare-exchange, because a producer may evict from it.
    claiming: bool,
    /// Set (after the mark in `tail`) by the call that closed the channel.
    /// The consumer looks here when it finds nothing to receive, instead of
    /// loading `tail`: polling the line every producer compare-exchanges
    /// would slow each of their claims (3.4x on the 2-core machine, 2
    /// producers).
    closed: AtomicBool,
}

struct Array<T> {
    /// Next position to claim, with the closed mark.
    tail: CachePadded<AtomicUsize>,
    /// Next position to read.
    head: CachePadded<AtomicUsize>,
    config: CachePadded<Config>,
    dropped: CachePadded<AtomicU64>,
    senders: CachePadded<AtomicUsize>,
    /// The receiver, waiting for a message.
    recv_waiters: WaitQueue,
    /// Producers waiting for room (`Block`).
    send_waiters: WaitQueue,
    /// Invariant: a slot's message is initialized exactly when its stamp is
    /// `position + 1` for a position in `head..tail`; it is owned by whoever
    /// holds that position (the producer that claimed it until the stamp
    /// store, then the consumer or an evicter that claims `head`).
    slots: Box<[Slot<T>]>,
}

// SAFETY: messages move between threads but are never shared: each slot is
// accessed only by the holder of its position (see `slots`). `T: Send`
// suffices.
unsafe impl<T: Send> Send for Array<T> {}
// SAFETY: as above; every other field is atomic or immutable.
unsafe impl<T: Send> Sync for Array<T> {}

/// Outcome of one attempt to claim a position.
enum Claim {
    /// Claimed `pos`, whose slot is free: write the message there.
    Ok(usize),
    /// Claimed `pos` on a full ring (a dropping policy): its slot still
    /// holds the oldest message, which must be evicted first
    /// ([`Array::write_evicting`]).
    Evict(usize),
    Full,
    Closed,
}

impl<T> Array<T> {
    fn new(cap: usize, overflow: Overflow) -> Self {
        let mark = cap
            .checked_add(1)
            .and_then(usize::checked_next_power_of_two)
            .filter(|m| m.checked_mul(4).is_some())
            .filter(|_| {
                cap.checked_mul(std::mem::size_of::<Slot<T>>())
                    .is_some_and(|b| b <= isize::MAX as usize)
            })
            .unwrap_or_else(|| panic!("mpsc::channel: capacity {cap} is too large to allocate"));
        Array {
            tail: CachePadded::new(AtomicUsize::new(0)),
            head: CachePadded::new(AtomicUsize::new(0)),
            config: CachePadded::new(Config {
                cap,
                mark,
                one_lap: mark * 2,
                overflow,
                claiming: overflow != Overflow::Block,
                closed: AtomicBool::new(false),
            }),
            dropped: CachePadded::new(AtomicU64::new(0)),
            senders: CachePadded::new(AtomicUsize::new(1)),
            recv_waiters: WaitQueue::new(),
            send_waiters: WaitQueue::new(),
            slots: (0..cap)
                .map(|i| Slot {
                    stamp: AtomicUsize::new(i),
                    msg: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
        }
    }

    #[inline(always)]
    fn slot(&self, pos: usize) -> &Slot<T> {
        let index = pos & (self.config.mark - 1);
        debug_assert!(index < self.slots.len());
        // SAFETY: positions are built by `next`, so `index < cap == len`.
        unsafe { self.slots.get_unchecked(index) }
    }

    /// The position after `pos` (without the mark).
    #[inline(always)]
    fn next(&self, pos: usize) -> usize {
        let index = pos & (self.config.mark - 1);
        if index + 1 < self.config.cap {
            pos + 1
        } else {
            (pos & !(self.config.one_lap - 1)).wrapping_add(self.config.one_lap)
        }
    }

    /// # Safety
    ///
    /// The caller holds `pos` and its slot holds an initialized message.
    #[inline(always)]
    unsafe fn read(&self, pos: usize) -> T {
        // SAFETY: guaranteed by the caller.
        self.slot(pos)
            .msg
            .with(|p| unsafe { p.read().assume_init() })
    }

    /// # Safety
    ///
    /// The caller holds `pos` and its slot is uninitialized.
    #[inline(always)]
    unsafe fn write(&self, pos: usize, msg: T) {
        // SAFETY: guaranteed by the caller.
        self.slot(pos)
            .msg
            .with_mut(|p| unsafe { p.write(MaybeUninit::new(msg)) });
    }

    fn is_closed(&self) -> bool {
        self.tail.load(Ordering::Acquire) & self.config.mark != 0
    }

    /// Tries once to claim the position at `tail` (no waiting for room).
    /// `last`: the claim also closes the channel (`close_with`). A full ring
    /// is claimed anyway ([`Claim::Evict`]) under `DropOldest`, and under
    /// `DropNewest` for the final message; otherwise it is `Full`.
    #[inline(always)]
    fn claim(&self, backoff: &Backoff, last: bool) -> Claim {
        let config = &*self.config;
        let close = if last { config.mark } else { 0 };
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & config.mark != 0 {
                return Claim::Closed;
            }
            let slot = self.slot(tail);
            // Acquire: the consumer's read of the previous lap happens
            // before our write.
            let stamp = slot.stamp.load(Ordering::Acquire);
            let full = if stamp == tail {
                false
            } else if stamp.wrapping_add(config.one_lap) == tail + 1 {
                // The slot still holds the previous lap's message.
                let head = self.head.load(Ordering::Acquire);
                if head.wrapping_add(config.one_lap) != tail {
                    // The consumer is between claiming and releasing it.
                    backoff.spin();
                    tail = self.tail.load(Ordering::Relaxed);
                    continue;
                }
                let evict = config.overflow == Overflow::DropOldest
                    || (last && config.overflow == Overflow::DropNewest);
                if !evict {
                    return Claim::Full;
                }
                true
            } else {
                // Another producer claimed `tail` and moved on: reload.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
                continue;
            };
            // AcqRel only when closing: the closer sees every claim made
            // before the mark, and whoever sees the mark sees the closer's
            // earlier writes (as `close::set_mark`).
            let success = if last {
                Ordering::AcqRel
            } else {
                Ordering::Relaxed
            };
            match self.tail.compare_exchange_weak(
                tail,
                self.next(tail) | close,
                success,
                Ordering::Relaxed,
            ) {
                Ok(_) if full => return Claim::Evict(tail),
                Ok(_) => return Claim::Ok(tail),
                Err(now) => {
                    tail = now;
                    backoff.spin();
                }
            }
        }
    }

    /// Writes the message of `pos`, claimed on a full ring, evicting the
    /// message one lap back that its slot still holds: it is the oldest
    /// (`head` was that position when `pos` was claimed), and either we
    /// claim it from `head` and remove it, or the consumer got there first
    /// and frees the slot. Returns the evicted message, to be dropped once
    /// the caller is done with the channel. Waits only for the consumer's
    /// copy of one message.
    fn write_evicting(&self, pos: usize, msg: T) -> Option<T> {
        let config = &*self.config;
        let old = pos.wrapping_sub(config.one_lap);
        let slot = self.slot(pos);
        let backoff = Backoff::new();
        let evicted = loop {
            // Acquire: the consumer's copy out of the slot.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos {
                break None; // received meanwhile: the slot is free
            }
            if stamp == old + 1
                && self.head.load(Ordering::Acquire) == old
                && self
                    .head
                    .compare_exchange(old, self.next(old), Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                // SAFETY: we claimed `old` from `head`, and its message is
                // written (stamp): it is ours, and nobody else touches the
                // slot until we publish `pos` there.
                let m = unsafe { self.read(old) };
                self.count_dropped(1);
                break Some(m);
            }
            backoff.snooze();
        };
        // SAFETY: the slot is free for `pos` (released, or emptied by us)
        // and `pos` is ours.
        unsafe { self.write(pos, msg) };
        self.publish(pos);
        evicted
    }

    /// The close that a claim with `last` made: tell the consumer, wake
    /// everyone.
    fn closed_by_claim(&self) {
        self.config.closed.store(true, Ordering::Release);
        self.recv_waiters.notify_all();
        self.send_waiters.notify_all();
    }

    /// Publishes the message written at `pos` and wakes the receiver if it
    /// is parked.
    #[inline(always)]
    fn publish(&self, pos: usize) {
        self.slot(pos).stamp.store(pos + 1, Ordering::Release);
        self.recv_waiters.notify_one();
    }

    fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// The non-waiting send; `Full` only under `Block`. `last`: the send of
    /// `close_with`, which also closes the channel.
    #[inline(always)]
    fn try_send(&self, msg: T, last: bool) -> Result<(), TrySendError<T>> {
        let evicted = match self.claim(&Backoff::new(), last) {
            Claim::Ok(pos) => {
                // SAFETY: we claimed `pos`; its slot is free (stamp).
                unsafe { self.write(pos, msg) };
                self.publish(pos);
                None
            }
            Claim::Evict(pos) => self.write_evicting(pos, msg),
            Claim::Closed => return Err(TrySendError::Closed(msg)),
            Claim::Full => {
                if self.config.overflow == Overflow::Block {
                    return Err(TrySendError::Full(msg));
                }
                // DropNewest (not the final message, which evicts).
                self.count_dropped(1);
                drop(msg);
                return Ok(());
            }
        };
        if last {
            self.closed_by_claim();
        }
        // Dropped last: a panicking (or re-entrant) drop finds the channel
        // consistent, and the close complete.
        drop(evicted);
        Ok(())
    }

    fn send_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
        last: bool,
    ) -> Result<(), SendTimeoutError<T>> {
        match self.try_send(msg, last) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(m)) => Err(SendTimeoutError::Closed(m)),
            Err(TrySendError::Full(m)) => self.send_slow(m, deadline, last),
        }
    }

    #[cold]
    #[inline(never)]
    fn send_slow(
        &self,
        msg: T,
        deadline: Option<Instant>,
        last: bool,
    ) -> Result<(), SendTimeoutError<T>> {
        let mut pending = Some(msg);
        let outcome = park::block_on(&[&self.send_waiters], deadline, || {
            match self.try_send(pending.take()?, last) {
                Ok(()) => Some(Ok(())),
                Err(TrySendError::Closed(m)) => Some(Err(SendTimeoutError::Closed(m))),
                Err(TrySendError::Full(m)) => {
                    pending = Some(m);
                    None
                }
            }
        });
        match (outcome, pending) {
            (Some(result), _) => result,
            (None, Some(m)) => Err(SendTimeoutError::Timeout(m)),
            (None, None) => unreachable!("a timed-out send still holds its message"),
        }
    }

    /// Claims up to `want` consecutive free positions with one
    /// compare-exchange. Returns the first position and how many.
    fn claim_batch(&self, want: usize) -> Result<(usize, usize), Claim> {
        let backoff = Backoff::new();
        loop {
            let tail = self.tail.load(Ordering::Relaxed);
            if tail & self.config.mark != 0 {
                return Err(Claim::Closed);
            }
            let mut end = tail;
            let mut k = 0;
            while k < want && self.slot(end).stamp.load(Ordering::Acquire) == end {
                end = self.next(end);
                k += 1;
            }
            if k == 0 {
                return Err(Claim::Full);
            }
            if self
                .tail
                .compare_exchange_weak(tail, end, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return Ok((tail, k));
            }
            backoff.spin();
        }
    }

    fn send_many<I: Iterator<Item = T>>(&self, iter: &mut I) -> Result<usize, SendError<Vec<T>>> {
        let mut taken = 0;
        let mut batch: Vec<T> = Vec::new();
        loop {
            if batch.is_empty() {
                match iter.next() {
                    Some(first) => batch.push(first),
                    None => return Ok(taken),
                }
                taken += 1;
            }
            if self.is_closed() {
                return Err(SendError(batch));
            }
            if self.config.overflow == Overflow::DropOldest {
                // Evicting: one message at a time.
                let msg = batch.pop().expect("batch holds one message");
                if let Err(SendTimeoutError::Closed(m)) = self.send_until(msg, None, false) {
                    return Err(SendError(vec![m]));
                }
                continue;
            }
            // Fill the batch up to what looks free, then claim it at once.
            let free = self.free_hint().min(MAX_BATCH);
            while batch.len() < free {
                match iter.next() {
                    Some(m) => batch.push(m),
                    None => break,
                }
                taken += 1;
            }
            match self.claim_batch(batch.len()) {
                Ok((mut pos, k)) => {
                    for msg in batch.drain(..k) {
                        // SAFETY: we claimed `k` free positions from `pos`.
                        unsafe { self.write(pos, msg) };
                        self.slot(pos).stamp.store(pos + 1, Ordering::Release);
                        pos = self.next(pos);
                    }
                    self.recv_waiters.notify_one();
                }
                Err(Claim::Closed) => return Err(SendError(batch)),
                Err(_) => {
                    // Full: send the first one the slow way (waits under
                    // Block, applies DropNewest), keep the rest.
                    let first = batch.remove(0);
                    if let Err(SendTimeoutError::Closed(m)) = self.send_until(first, None, false) {
                        batch.insert(0, m);
                        return Err(SendError(batch));
                    }
                }
            }
        }
    }

    /// How many slots look free (a hint).
    fn free_hint(&self) -> usize {
        self.config.cap - self.len()
    }

    // ---- receiving

    /// The non-waiting receive.
    #[inline(always)]
    fn try_recv(&self) -> Result<T, TryRecvError> {
        if self.config.claiming {
            return self.try_recv_claiming();
        }
        let head = self.head.load(Ordering::Relaxed);
        let slot = self.slot(head);
        if slot.stamp.load(Ordering::Acquire) != head + 1 {
            return Err(self.empty_or_closed(head));
        }
        // SAFETY: the stamp says the message of `head` is written; we are the
        // only consumer.
        let msg = unsafe { self.read(head) };
        slot.stamp
            .store(head.wrapping_add(self.config.one_lap), Ordering::Release);
        self.head.store(self.next(head), Ordering::Release);
        if self.config.overflow == Overflow::Block {
            self.send_waiters.notify_one();
        }
        Ok(msg)
    }

    /// Nothing is ready at `head`: closed and drained, or empty (possibly
    /// a producer has claimed `head` but not written it yet).
    #[cold]
    fn empty_or_closed(&self, head: usize) -> TryRecvError {
        // Acquire: the closer set the mark before this.
        if !self.config.closed.load(Ordering::Acquire) {
            return TryRecvError::Empty;
        }
        let tail = self.tail.load(Ordering::Acquire);
        if tail & self.config.mark != 0 && tail & !self.config.mark == head {
            TryRecvError::Closed
        } else {
            TryRecvError::Empty
        }
    }

    fn try_recv_claiming(&self) -> Result<T, TryRecvError> {
        loop {
            let head = self.head.load(Ordering::Acquire);
            let slot = self.slot(head);
            if slot.stamp.load(Ordering::Acquire) != head + 1 {
                if self.head.load(Ordering::Acquire) != head {
                    continue; // evicted meanwhile
                }
                return Err(self.empty_or_closed(head));
            }
            if self
                .head
                .compare_exchange(head, self.next(head), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: we won `head`, whose message is written.
                let msg = unsafe { self.read(head) };
                slot.stamp
                    .store(head.wrapping_add(self.config.one_lap), Ordering::Release);
                return Ok(msg);
            }
        }
    }

    fn try_recv_many(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, TryRecvError> {
        if self.config.claiming {
            let mut n = 0;
            while n < max {
                match self.try_recv_claiming() {
                    Ok(m) => buf.push(m),
                    Err(e) if n == 0 => return Err(e),
                    Err(_) => break,
                }
                n += 1;
            }
            return Ok(n);
        }
        let first = self.head.load(Ordering::Relaxed);
        let mut head = first;
        let mut n = 0;
        while n < max {
            let slot = self.slot(head);
            if slot.stamp.load(Ordering::Acquire) != head + 1 {
                break;
            }
            // SAFETY: written (stamp), and we are the only consumer.
            buf.push(unsafe { self.read(head) });
            slot.stamp
                .store(head.wrapping_add(self.config.one_lap), Ordering::Release);
            head = self.next(head);
            n += 1;
        }
        if n == 0 {
            return Err(self.empty_or_closed(first));
        }
        self.head.store(head, Ordering::Release);
        if self.config.overflow == Overflow::Block {
            self.send_waiters.notify_one();
        }
        Ok(n)
    }

    // ---- closing and introspection

    fn close(&self) -> bool {
        if close::set_mark(&*self.tail, self.config.mark) {
            self.closed_by_claim();
            true
        } else {
            false
        }
    }

    /// The receiver is gone: close, and drop the buffered messages now
    /// rather than with the last sender. A position claimed before the
    /// close but not yet written is waited for (its producer is copying one
    /// message).
    fn close_and_drain(&self) {
        self.close();
        crate::ring::drop_each(|| {
            let mut next = None;
            park::wait_brief(|| match self.try_recv() {
                Ok(m) => {
                    next = Some(m);
                    true
                }
                Err(TryRecvError::Closed) => true,
                Err(TryRecvError::Empty) => false,
            });
            next
        });
    }

    fn len(&self) -> usize {
        let config = &*self.config;
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) != tail {
                continue;
            }
            // Positions claimed on a full ring and not yet evicted can put
            // the tail up to a lap ahead: clamp.
            return self.distance(tail & !config.mark, head).min(config.cap);
        }
    }

    /// How many positions `from` is ahead of `to`.
    fn distance(&self, from: usize, to: usize) -> usize {
        let config = &*self.config;
        let laps = (from & !(config.one_lap - 1)).wrapping_sub(to & !(config.one_lap - 1))
            / config.one_lap;
        let index = |pos: usize| pos & (config.mark - 1);
        (laps * config.cap + index(from)).wrapping_sub(index(to))
    }
}

impl<T> Drop for Array<T> {
    fn drop(&mut self) {
        // Last handle: every claimed position has been written.
        let tail = self.tail.load(Ordering::Relaxed) & !self.config.mark;
        let head = self.head.load(Ordering::Relaxed);

        crate::ring::drop_positions(
            head,
            tail,
            |pos| self.next(pos),
            // SAFETY: `pos` is in `head..tail`, so its message is
            // initialized, and no other handle exists.
            |pos| drop(unsafe { self.read(pos) }),
        );
    }
}

// ------------------------------------------------------------- rendezvous

const WAITING: u8 = 0;
/// A sender's packet: the receiver took the message. A receiver's packet:
/// a sender put a message in.
const DONE: u8 = 1;
/// The channel closed while the packet waited.
const CLOSED: u8 = 2;

/// A thread waiting to meet the other side; the message travels through
/// `msg`. Owned by the waiting thread and the list entry (an `Arc`).
struct Packet<T> {
    state: AtomicU8,
    msg: UnsafeCell<Option<T>>,
    thread: thread::Thread,
    /// A sender's `close_with`: taking this message closes the channel.
    last: bool,
}

impl<T> Packet<T> {
    fn new(msg: Option<T>, last: bool) -> Arc<Self> {
        Arc::new(Packet {
            state: AtomicU8::new(WAITING),
            msg: UnsafeCell::new(msg),
            thread: thread::current(),
            last,
        })
    }

    /// # Safety
    ///
    /// The caller has exclusive access to the message: it holds the list
    /// lock while the packet is listed, or the packet has left the list and
    /// its state was acquired.
    unsafe fn take(&self) -> Option<T> {
        // SAFETY: guaranteed by the caller.
        self.msg.with_mut(|p| unsafe { (*p).take() })
    }

    /// # Safety
    ///
    /// As for [`take`](Self::take).
    unsafe fn put(&self, msg: T) {
        // SAFETY: guaranteed by the caller.
        self.msg.with_mut(|p| unsafe { *p = Some(msg) });
    }

    /// Marks the packet (the caller removed it from the list under the
    /// lock). The caller then wakes it with [`wake`](Self::wake) after
    /// releasing the lock, so that the woken thread does not block on it.
    fn mark(&self, state: u8) {
        // Release: the message (taken or put) is visible to the owner.
        self.state.store(state, Ordering::Release);
    }

    fn wake(&self) {
        self.thread.unpark();
    }
}

struct ZeroInner<T> {
    /// Senders waiting for the receiver, oldest first.
    senders: std::collections::VecDeque<Arc<Packet<T>>>,
    /// The receiver, waiting for a sender.
    receiver: Option<Arc<Packet<T>>>,
    closed: bool,
}

struct Zero<T> {
    inner: Mutex<ZeroInner<T>>,
    /// Mirrors of the list state, so that `try_*` calls that meet nobody
    /// return without the lock. Written under the lock.
    senders_waiting: AtomicUsize,
    receiver_waiting: AtomicUsize,
    closed: AtomicUsize,
    senders: AtomicUsize,
}

// SAFETY: messages move between threads inside packets, accessed under the
// lock or after the packet's state hand-off; `T: Send` suffices.
unsafe impl<T: Send> Send for Zero<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Zero<T> {}

impl<T> Zero<T> {
    fn new() -> Self {
        Zero {
            inner: Mutex::new(ZeroInner {
                senders: std::collections::VecDeque::new(),
                receiver: None,
                closed: false,
            }),
            senders_waiting: AtomicUsize::new(0),
            receiver_waiting: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            senders: AtomicUsize::new(1),
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) != 0
    }

    fn sync_counts(&self, inner: &ZeroInner<T>) {
        self.senders_waiting
            .store(inner.senders.len(), Ordering::Relaxed);
        self.receiver_waiting
            .store(usize::from(inner.receiver.is_some()), Ordering::Relaxed);
    }

    /// `try`: only meet a receiver already waiting. Otherwise queue and wait
    /// until `deadline`.
    fn send(
        &self,
        msg: T,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<(), SendTimeoutError<T>> {
        self.meet(msg, deadline, wait, false)
    }

    /// `send`; with `last`, the meeting also closes the channel, under the
    /// same lock, so that no other sender's message can follow.
    fn meet(
        &self,
        msg: T,
        deadline: Option<Instant>,
        wait: bool,
        last: bool,
    ) -> Result<(), SendTimeoutError<T>> {
        if !wait && self.receiver_waiting.load(Ordering::Relaxed) == 0 {
            return if self.is_closed() {
                Err(SendTimeoutError::Closed(msg))
            } else {
                Err(SendTimeoutError::Timeout(msg))
            };
        }
        let packet = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err(SendTimeoutError::Closed(msg));
            }
            if let Some(receiver) = inner.receiver.take() {
                self.sync_counts(&inner);
                // SAFETY: the receiver's packet is listed and we hold the lock.
                unsafe { receiver.put(msg) };
                receiver.mark(DONE);
                let closed = if last {
                    self.close_locked(&mut inner)
                } else {
                    None
                };
                drop(inner);
                receiver.wake();
                closed.into_iter().flatten().for_each(|p| p.wake());
                return Ok(());
            }
            if !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendTimeoutError::Timeout(msg));
            }
            let packet = Packet::new(Some(msg), last);
            inner.senders.push_back(packet.clone());
            self.sync_counts(&inner);
            packet
        };
        let done = park::wait_for(deadline, || packet.state.load(Ordering::Acquire) != WAITING);
        if !done {
            // Timed out: take the message back unless the receiver got it.
            let mut inner = self.inner.lock();
            if let Some(i) = inner.senders.iter().position(|p| Arc::ptr_eq(p, &packet)) {
                inner.senders.remove(i);
                self.sync_counts(&inner);
                // SAFETY: we removed our packet from the list under the lock.
                let msg = unsafe { packet.take() }.expect("an untaken packet holds its message");
                return Err(SendTimeoutError::Timeout(msg));
            }
        }
        // Out of the list: the state was set before the removal was visible.
        park::wait_for(None, || packet.state.load(Ordering::Acquire) != WAITING);
        match packet.state.load(Ordering::Acquire) {
            DONE => Ok(()),
            // SAFETY: the closer removed the packet and set its state, which
            // we acquired; nobody else touches it now.
            _ => Err(SendTimeoutError::Closed(
                unsafe { packet.take() }.expect("a closed packet keeps its message"),
            )),
        }
    }

    fn recv(&self, deadline: Option<Instant>, wait: bool) -> Result<T, RecvTimeoutError> {
        if !wait && self.senders_waiting.load(Ordering::Relaxed) == 0 {
            return if self.is_closed() {
                Err(RecvTimeoutError::Closed)
            } else {
                Err(RecvTimeoutError::Timeout)
            };
        }
        let packet = {
            let mut inner = self.inner.lock();
            if let Some(sender) = inner.senders.pop_front() {
                self.sync_counts(&inner);
                // SAFETY: the sender's packet was listed and we hold the lock.
                let msg = unsafe { sender.take() }.expect("a waiting sender holds its message");
                sender.mark(DONE);
                let closed = if sender.last {
                    self.close_locked(&mut inner)
                } else {
                    None
                };
                drop(inner);
                sender.wake();
                closed.into_iter().flatten().for_each(|p| p.wake());
                return Ok(msg);
            }
            if inner.closed {
                return Err(RecvTimeoutError::Closed);
            }
            if !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            let packet = Packet::new(None, false);
            inner.receiver = Some(packet.clone());
            self.sync_counts(&inner);
            packet
        };
        let done = park::wait_for(deadline, || packet.state.load(Ordering::Acquire) != WAITING);
        if !done {
            let mut inner = self.inner.lock();
            if inner
                .receiver
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(p, &packet))
            {
                inner.receiver = None;
                self.sync_counts(&inner);
                return Err(RecvTimeoutError::Timeout);
            }
        }
        park::wait_for(None, || packet.state.load(Ordering::Acquire) != WAITING);
        match packet.state.load(Ordering::Acquire) {
            // SAFETY: the sender put the message, removed our packet and set
            // its state, which we acquired.
            DONE => Ok(unsafe { packet.take() }.expect("a finished packet holds a message")),
            _ => Err(RecvTimeoutError::Closed),
        }
    }

    fn close(&self) -> bool {
        let closed = self.close_locked(&mut self.inner.lock());
        match closed {
            Some(packets) => {
                packets.iter().for_each(|p| p.wake());
                true
            }
            None => false,
        }
    }

    /// Closes under the lock: `None` if already closed, else the packets
    /// (all marked `CLOSED`) that the caller wakes after unlocking.
    fn close_locked(&self, inner: &mut ZeroInner<T>) -> Option<Vec<Arc<Packet<T>>>> {
        if inner.closed {
            return None;
        }
        inner.closed = true;
        self.closed.store(1, Ordering::Release);
        let mut packets: Vec<_> = inner.senders.drain(..).collect();
        packets.extend(inner.receiver.take());
        for p in &packets {
            p.mark(CLOSED);
        }
        self.sync_counts(inner);
        Some(packets)
    }

    /// Waits for the receiver like `send`; the meeting closes the channel.
    fn close_with(&self, msg: T) -> Result<(), SendError<T>> {
        self.meet(msg, None, true, true)
            .map_err(|e| SendError(e.into_inner()))
    }
}

// ------------------------------------------------------------------ handles

enum SenderFlavor<T> {
    Array(Arc<Array<T>>),
    Zero(Arc<Zero<T>>),
}

enum ReceiverFlavor<T> {
    Array(Arc<Array<T>>),
    Zero(Arc<Zero<T>>),
}

/// The sending half of an MPSC channel: `Clone`, `Send + Sync` (when
/// `T: Send`). Dropping the last clone closes the channel.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<rillet::mpsc::Sender<std::rc::Rc<u8>>>();
/// ```
pub struct Sender<T> {
    flavor: SenderFlavor<T>,
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
    flavor: ReceiverFlavor<T>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> Sender<T> {
    /// Sends a message, waiting for room under [`Overflow::Block`] (on a
    /// rendezvous channel: until the receiver takes it). Fails only if the
    /// channel is closed, handing the message back.
    #[inline]
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        match self.send_until(msg, None) {
            Ok(()) => Ok(()),
            Err(e) => Err(SendError(e.into_inner())),
        }
    }

    /// Sends without waiting. On a rendezvous channel this succeeds only if
    /// the receiver is already waiting.
    #[inline]
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        match &self.flavor {
            SenderFlavor::Array(chan) => chan.try_send(msg, false),
            SenderFlavor::Zero(chan) => match chan.send(msg, None, false) {
                Ok(()) => Ok(()),
                Err(SendTimeoutError::Timeout(m)) => Err(TrySendError::Full(m)),
                Err(SendTimeoutError::Closed(m)) => Err(TrySendError::Closed(m)),
            },
        }
    }

    /// Sends, waiting at most `timeout`.
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(msg, Instant::now().checked_add(timeout))
    }

    /// Sends, waiting until `deadline` at most.
    pub fn send_deadline(&self, msg: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_until(msg, Some(deadline))
    }

    #[inline]
    fn send_until(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        match &self.flavor {
            SenderFlavor::Array(chan) => chan.send_until(msg, deadline, false),
            SenderFlavor::Zero(chan) => chan.send(msg, deadline, true),
        }
    }

    /// Sends every message of `msgs` like a loop of [`send`](Self::send),
    /// claiming up to 64 free slots per compare-exchange. Returns how many
    /// messages were taken from the iterator; on close, the messages taken
    /// but not enqueued come back in the error and items not yet yielded stay
    /// in the iterator.
    pub fn send_many<I: IntoIterator<Item = T>>(
        &self,
        msgs: I,
    ) -> Result<usize, SendError<Vec<T>>> {
        let mut iter = msgs.into_iter();
        match &self.flavor {
            SenderFlavor::Array(chan) => chan.send_many(&mut iter),
            SenderFlavor::Zero(chan) => {
                let mut n = 0;
                for msg in iter {
                    n += 1;
                    if let Err(e) = chan.send(msg, None, true) {
                        return Err(SendError(vec![e.into_inner()]));
                    }
                }
                Ok(n)
            }
        }
    }

    /// Closes the channel for everyone. `true` only for the call that
    /// closed it.
    pub fn close(&self) -> bool {
        match &self.flavor {
            SenderFlavor::Array(chan) => chan.close(),
            SenderFlavor::Zero(chan) => chan.close(),
        }
    }

    /// Sends a final message and closes in one step: no message from any
    /// sender can be enqueued after it. Fails (handing `msg` back) if the
    /// channel is already closed.
    pub fn close_with(self, msg: T) -> Result<(), SendError<T>> {
        match &self.flavor {
            SenderFlavor::Array(chan) => chan
                .send_until(msg, None, true)
                .map_err(|e| SendError(e.into_inner())),
            SenderFlavor::Zero(chan) => chan.close_with(msg),
        }
    }

    /// Number of buffered messages (a snapshot; 0 for rendezvous).
    pub fn len(&self) -> usize {
        match &self.flavor {
            SenderFlavor::Array(chan) => chan.len(),
            SenderFlavor::Zero(_) => 0,
        }
    }

    /// `true` if nothing is buffered (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` if the buffer is full (a snapshot; always for rendezvous).
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The capacity the channel was created with.
    pub fn capacity(&self) -> usize {
        match &self.flavor {
            SenderFlavor::Array(chan) => chan.config.cap,
            SenderFlavor::Zero(_) => 0,
        }
    }

    /// `true` once the channel has been closed.
    pub fn is_closed(&self) -> bool {
        match &self.flavor {
            SenderFlavor::Array(chan) => chan.is_closed(),
            SenderFlavor::Zero(chan) => chan.is_closed(),
        }
    }

    /// Messages discarded by the overflow policy so far.
    pub fn dropped(&self) -> u64 {
        match &self.flavor {
            SenderFlavor::Array(chan) => chan.dropped.load(Ordering::Relaxed),
            SenderFlavor::Zero(_) => 0,
        }
    }

    /// The overflow policy of this channel.
    pub fn overflow(&self) -> Overflow {
        match &self.flavor {
            SenderFlavor::Array(chan) => chan.config.overflow,
            SenderFlavor::Zero(_) => Overflow::Block,
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        let flavor = match &self.flavor {
            SenderFlavor::Array(chan) => {
                chan.senders.fetch_add(1, Ordering::Relaxed);
                SenderFlavor::Array(chan.clone())
            }
            SenderFlavor::Zero(chan) => {
                chan.senders.fetch_add(1, Ordering::Relaxed);
                SenderFlavor::Zero(chan.clone())
            }
        };
        Sender { flavor }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        match &self.flavor {
            SenderFlavor::Array(chan) => {
                if chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
                    chan.close();
                }
            }
            SenderFlavor::Zero(chan) => {
                if chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
                    chan.close();
                }
            }
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("mpsc::Sender { .. }")
    }
}

impl<T> Receiver<T> {
    /// Receives a message, waiting until one arrives. Fails only when the
    /// channel is closed and drained.
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives without waiting. Never waits for a producer that has claimed
    /// a slot but not written it: that is `Empty`.
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match &self.flavor {
            ReceiverFlavor::Array(chan) => chan.try_recv(),
            ReceiverFlavor::Zero(chan) => chan.recv(None, false).map_err(|e| match e {
                RecvTimeoutError::Timeout => TryRecvError::Empty,
                RecvTimeoutError::Closed => TryRecvError::Closed,
            }),
        }
    }

    /// Receives, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Receives, waiting until `deadline` at most.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    #[inline]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        match &self.flavor {
            ReceiverFlavor::Array(chan) => match chan.try_recv() {
                Ok(m) => Ok(m),
                Err(TryRecvError::Closed) => Err(RecvTimeoutError::Closed),
                Err(TryRecvError::Empty) => self.recv_slow(chan, deadline),
            },
            ReceiverFlavor::Zero(chan) => chan.recv(deadline, true),
        }
    }

    #[cold]
    #[inline(never)]
    fn recv_slow(&self, chan: &Array<T>, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        wait_recv(chan, deadline, || chan.try_recv())
    }

    /// Waits for at least one message, then appends up to `max` buffered
    /// messages to `buf` with one head update. Returns how many it appended;
    /// `Ok(0)` only when `max` is 0.
    pub fn recv_many(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        if max == 0 {
            return Ok(0);
        }
        match &self.flavor {
            ReceiverFlavor::Array(chan) => {
                wait_recv(chan, None, || chan.try_recv_many(buf, max)).map_err(|_| RecvError)
            }
            ReceiverFlavor::Zero(chan) => {
                buf.push(chan.recv(None, true).map_err(|_| RecvError)?);
                let mut n = 1;
                while n < max {
                    match chan.recv(None, false) {
                        Ok(m) => buf.push(m),
                        Err(_) => break,
                    }
                    n += 1;
                }
                Ok(n)
            }
        }
    }

    /// A blocking iterator: yields messages until the channel is closed and
    /// drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over what is buffered now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Closes the channel for everyone. `true` only for the call that
    /// closed it. Buffered messages can still be received.
    pub fn close(&self) -> bool {
        match &self.flavor {
            ReceiverFlavor::Array(chan) => chan.close(),
            ReceiverFlavor::Zero(chan) => chan.close(),
        }
    }

    /// Number of buffered messages (a snapshot; 0 for rendezvous).
    pub fn len(&self) -> usize {
        match &self.flavor {
            ReceiverFlavor::Array(chan) => chan.len(),
            ReceiverFlavor::Zero(_) => 0,
        }
    }

    /// `true` if nothing is buffered (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` if the buffer is full (a snapshot; always for rendezvous).
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The capacity the channel was created with.
    pub fn capacity(&self) -> usize {
        match &self.flavor {
            ReceiverFlavor::Array(chan) => chan.config.cap,
            ReceiverFlavor::Zero(_) => 0,
        }
    }

    /// `true` once the channel has been closed (also while messages are
    /// still buffered).
    pub fn is_closed(&self) -> bool {
        match &self.flavor {
            ReceiverFlavor::Array(chan) => chan.is_closed(),
            ReceiverFlavor::Zero(chan) => chan.is_closed(),
        }
    }

    /// Messages discarded by the overflow policy so far.
    pub fn dropped(&self) -> u64 {
        match &self.flavor {
            ReceiverFlavor::Array(chan) => chan.dropped.load(Ordering::Relaxed),
            ReceiverFlavor::Zero(_) => 0,
        }
    }

    /// The overflow policy of this channel.
    pub fn overflow(&self) -> Overflow {
        match &self.flavor {
            ReceiverFlavor::Array(chan) => chan.config.overflow,
            ReceiverFlavor::Zero(_) => Overflow::Block,
        }
    }
}

/// The receiving wait loop of the array flavor.
fn wait_recv<T, R>(
    chan: &Array<T>,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Result<R, TryRecvError>,
) -> Result<R, RecvTimeoutError> {
    park::block_on(&[&chan.recv_waiters], deadline, || match attempt() {
        Ok(r) => Some(Ok(r)),
        Err(TryRecvError::Closed) => Some(Err(RecvTimeoutError::Closed)),
        Err(TryRecvError::Empty) => None,
    })
    .unwrap_or(Err(RecvTimeoutError::Timeout))
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        match &self.flavor {
            ReceiverFlavor::Array(chan) => chan.close_and_drain(),
            ReceiverFlavor::Zero(chan) => {
                chan.close();
            }
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("mpsc::Receiver { .. }")
    }
}

receiver_iterators!();

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// crossbeam-channel #997: a producer that has claimed a slot but not
    /// yet written it must not make `try_recv` wait; it returns `Empty`, and
    /// the message arrives once written. (An implementation that waited for
    /// the stamp would hang here: nobody else will ever write the slot.)
    #[test]
    fn try_recv_does_not_wait_for_a_claimed_unwritten_slot() {
        let (tx, rx) = channel::<u32>(4);
        let SenderFlavor::Array(chan) = &tx.flavor else {
            unreachable!()
        };
        tx.send(1).unwrap();
        let Claim::Ok(pos) = chan.claim(&Backoff::new(), false) else {
            panic!("room for a claim")
        };
        tx.send(3).unwrap(); // claimed and written after the stalled one
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(rx.close());
        assert_eq!(
            rx.try_recv(),
            Err(TryRecvError::Empty),
            "closed but not drained"
        );
        // SAFETY: we hold `pos` from the claim above; its slot is free.
        unsafe { chan.write(pos, 2) };
        chan.publish(pos);
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }
}
