//! Broadcast channel: every subscriber receives every message.
//!
//! ```
//! let (tx, rx) = rillet::broadcast::channel(16);
//! let rx2 = tx.subscribe();
//! let h = std::thread::spawn(move || rx2.iter().sum::<u32>());
//! for i in 0..10 {
//!     tx.send(i).unwrap();
//! }
//! drop(tx); // the channel closes when the last sender goes
//! assert_eq!(rx.iter().sum::<u32>(), 45);
//! assert_eq!(h.join().unwrap(), 45);
//! ```
//!
//! # Algorithm
//!
//! One ring of exactly `capacity` slots shared by every sender and every
//! subscriber. Positions use the lap encoding of the MPSC ring
//! (`src/mpsc.rs`): `position = lap | index`, with `index < capacity` and
//! laps counted in a power-of-two unit, so that "one lap back" (the message
//! `capacity` positions earlier, in the same slot) is one subtraction. Both
//! atomic words of the ring keep the position in their high bits and flags in
//! the low `FLAG_BITS` (18):
//!
//! ```text
//!   tail        = position | CLOSED | subscriber count
//!   slot.stamp  = position | FULL | LOCK | busy        (LOCK, busy: DropOldest only)
//!
//!   stamp == position            the slot is free for the sender of `position`
//!   stamp == position | FULL     the slot holds the message of `position`
//!   slot.refs                    subscribers that have not yet passed that message
//! ```
//!
//! - A sender claims a position with a compare-exchange on `tail` (as in
//!   Vyukov's bounded queue), writes the message, sets `refs` to the
//!   subscriber count that the claimed `tail` word carried, and publishes
//!   `FULL` with `Release`. Because the count lives in the same word as the
//!   position, subscribing and unsubscribing (a compare-exchange on `tail`
//!   too) split the positions exactly: a subscriber counts in `refs` of every
//!   position claimed after it joined and before it left.
//! - A subscriber keeps its next position to itself (a `Cell`: nobody else
//!   reads it). It loads the stamp (`Acquire`); if the message is there it
//!   clones it and decrements `refs`. The subscriber that takes `refs` to
//!   zero is the last to pass the message: it drops it and frees the slot
//!   for the next lap (`stamp = position + lap`, `Release`). When it is the
//!   only one left (`refs == 1` before cloning) it moves the message out
//!   instead of cloning it; with one subscriber a receive has no
//!   read-modify-write at all.
//! - `Overflow::Block`: a sender may claim a position only when its slot is
//!   free, i.e. when every subscriber has passed the message one lap back:
//!   senders wait for the slowest subscriber, and the capacity is exact.
//! - A subscriber that goes away (drop) leaves the count and releases every
//!   position it had not passed, at once; the last one to leave closes the
//!   channel in the same compare-exchange. A cloned receiver joins the count
//!   and retains the positions of its original, which holds them meanwhile.
//! - Closing sets `CLOSED` in `tail` (`close::set_mark`): no claim succeeds
//!   after it. `close_with` claims its slot and sets `CLOSED` in one
//!   compare-exchange. A subscriber whose position equals the closed tail has
//!   drained the channel.
//!
//! ## `DropOldest`
//!
//! A sender claims its position unconditionally; if the slot still holds the
//! message one lap back (the oldest one), it evicts it: it sets `LOCK` with a
//! compare-exchange, waits for the subscribers still copying that message
//! (the `busy` count, which a subscriber raises with `fetch_add` before it
//! clones and lowers after), moves the old message out, writes its own and
//! publishes it. A subscriber that enters a slot and finds `LOCK`, or another
//! position, leaves at once. The last subscriber to pass a message also
//! takes `LOCK` (`fetch_or`) before freeing the slot, so a message is freed
//! by its last reader or evicted by a sender, never both. A subscriber whose
//! position is more than `capacity` behind the tail has lagged: its next
//! receive returns `Lagged(n)` with `n` the positions it skipped, and it
//! continues from the oldest position still held (`tail - capacity`). Under
//! this policy the stamp is only changed with read-modify-writes, so the
//! `busy` counts of subscribers passing through are never overwritten.
//!
//! After publishing, a sender issues the light barrier and loads the
//! subscribers' queue word (waiter count and `ALERT` bit, `src/park.rs`);
//! the subscriber that frees a slot does the same for the senders. No lock
//! unless a thread is parked.
//!
//! Waiting: a blocked sender first pauses (bounded, `park::pause_until`)
//! until `capacity / 8` slots are free, and a subscriber that caught up
//! until `capacity / 8` messages wait, so that the sender and the
//! subscribers do not follow each other slot by slot on the same cache
//! lines. With more subscribers and senders than CPUs, the thread waited
//! for is probably not running: these pauses and the first stage of
//! `park::block_on_with` yield instead of spinning.
//!
//! # Decisions
//!
//! - `T: Clone` is needed to receive; the handles are `Send` (and the
//!   `Sender` `Sync`) only when `T: Send + Sync`, because subscribers on
//!   different threads clone the same message at the same time.
//! - A panicking `Clone` propagates out of `recv`; that subscriber has passed
//!   the message (it will not see it again) and stays usable.
//! - `iter()`/`try_iter()` skip lag gaps (use `recv` to see `Lagged`).
//! - `recv_many` returns `Err(Lagged(n))` only if the lag comes first;
//!   otherwise it stops at the gap and the next receive reports it.
//! - `Sender::len()` is the number of messages the channel holds (not yet
//!   passed by every subscriber, nor evicted); `Receiver::len()` is what that
//!   subscriber has not received yet (at most `capacity`).
//! - `dropped()` counts messages evicted under `DropOldest` before every
//!   subscriber had received them.
//! - At most 65535 subscribers at once (the count shares the tail word);
//!   `subscribe` and `Receiver::clone` panic beyond that.
//! - `close_with(msg)`: the final message always goes in; under `Block` it
//!   waits for room, under `DropOldest` it evicts.
//! - `send_many` takes up to 64 messages from the iterator, then claims
//!   their positions with one compare-exchange: it never runs the iterator
//!   while it holds a claim. A message the iterator sends on this channel
//!   itself lands ahead of the batch being collected. Under `DropOldest` the
//!   messages a batch evicts are dropped once all of it is written.
//! - When the last subscriber goes, the messages it had not received go
//!   with it (std's behaviour for a dropped receiver), not with the last
//!   sender. `Builder::overflow(Overflow::DropNewest)` panics: a broadcast
//!   sender cannot tell which subscriber a dropped message would be missing
//!   for; use `DropOldest` (subscribers learn their loss as `Lagged`) or
//!   `Block`.

use crate::close;
use crate::error::{SendError, SendTimeoutError, TrySendError};
use crate::park::{self, WaitQueue, SLACK_DIVISOR};
use crate::sync::{Arc, AtomicU64, AtomicUsize, Backoff, Ordering, UnsafeCell};
use crate::Overflow;
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// Low bits of `tail` and of every stamp that hold flags; the position is
/// above them.
const FLAG_BITS: u32 = 18;
/// One position step in a word.
const UNIT: u64 = 1 << FLAG_BITS;
/// The flag bits.
const LOW: u64 = UNIT - 1;
/// `tail`: the channel is closed.
const CLOSED: u64 = 1 << 16;
/// `tail`: the subscriber count.
const SUBS: u64 = CLOSED - 1;
/// Stamp: the slot holds the message of the stamp's position.
const FULL: u64 = 1 << 17;
/// Stamp (`DropOldest`): a sender is evicting, or the last subscriber
/// freeing, the message.
const LOCK: u64 = 1 << 16;
/// Stamp (`DropOldest`): subscribers inside the slot.
const BUSY: u64 = LOCK - 1;
/// Largest number of subscribers at once.
const MAX_SUBSCRIBERS: u64 = SUBS;
/// Largest batch `send_many` claims with one compare-exchange.
const MAX_BATCH: usize = 64;
/// Largest capacity (keeps at least 14 bits of lap in a position).
const MAX_CAPACITY: usize = 1 << 32;

/// The receive error of a broadcast [`Receiver::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvError {
    /// The channel is closed and this subscriber has received everything.
    Closed,
    /// This subscriber fell behind under [`Overflow::DropOldest`]: this many
    /// messages were evicted before it received them. The next receive
    /// continues from the oldest message still held.
    Lagged(u64),
}

/// The error of [`Receiver::try_recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// Nothing to receive now.
    Empty,
    /// The channel is closed and this subscriber has received everything.
    Closed,
    /// This subscriber missed this many messages (see [`RecvError::Lagged`]).
    Lagged(u64),
}

/// The error of [`Receiver::recv_timeout`] and [`Receiver::recv_deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    Timeout,
    /// The channel is closed and this subscriber has received everything.
    Closed,
    /// This subscriber missed this many messages (see [`RecvError::Lagged`]).
    Lagged(u64),
}

impl RecvError {
    /// `true` for [`RecvError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvError::Closed)
    }

    /// `true` for [`RecvError::Lagged`].
    pub fn is_lagged(&self) -> bool {
        matches!(self, RecvError::Lagged(_))
    }
}

impl TryRecvError {
    /// `true` for [`TryRecvError::Empty`].
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// `true` for [`TryRecvError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, TryRecvError::Closed)
    }

    /// `true` for [`TryRecvError::Lagged`].
    pub fn is_lagged(&self) -> bool {
        matches!(self, TryRecvError::Lagged(_))
    }
}

impl RecvTimeoutError {
    /// `true` for [`RecvTimeoutError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// `true` for [`RecvTimeoutError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvTimeoutError::Closed)
    }

    /// `true` for [`RecvTimeoutError::Lagged`].
    pub fn is_lagged(&self) -> bool {
        matches!(self, RecvTimeoutError::Lagged(_))
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("receiving on a closed channel"),
            RecvError::Lagged(n) => write!(f, "receiver lagged and missed {n} messages"),
        }
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed channel"),
            TryRecvError::Lagged(n) => write!(f, "receiver lagged and missed {n} messages"),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on receive operation"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed channel"),
            RecvTimeoutError::Lagged(n) => write!(f, "receiver lagged and missed {n} messages"),
        }
    }
}

impl Error for RecvError {}
impl Error for TryRecvError {}
impl Error for RecvTimeoutError {}

impl From<RecvError> for TryRecvError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Closed => TryRecvError::Closed,
            RecvError::Lagged(n) => TryRecvError::Lagged(n),
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Closed => RecvTimeoutError::Closed,
            RecvError::Lagged(n) => RecvTimeoutError::Lagged(n),
        }
    }
}

/// Configures and creates a broadcast channel.
///
/// ```
/// use rillet::{broadcast, Overflow};
/// let (tx, rx) = broadcast::Builder::new(2).overflow(Overflow::DropOldest).build();
/// for i in 0..5 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.recv(), Err(broadcast::RecvError::Lagged(3)));
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [3, 4]);
/// assert_eq!(tx.dropped(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    capacity: usize,
    overflow: Overflow,
}

impl Builder {
    /// A builder for a channel holding at most `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        Builder {
            capacity,
            overflow: Overflow::Block,
        }
    }

    /// Sets the overflow policy: [`Overflow::Block`] (the default: senders
    /// wait for the slowest subscriber) or [`Overflow::DropOldest`].
    ///
    /// # Panics
    ///
    /// On [`Overflow::DropNewest`], which a broadcast channel does not
    /// support.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        assert!(
            overflow != Overflow::DropNewest,
            "broadcast::Builder: Overflow::DropNewest is not supported (a dropped message \
             would be missing for some subscribers with no way to tell them); use \
             Overflow::DropOldest (lagging subscribers get RecvError::Lagged(n)) or \
             Overflow::Block (senders wait for the slowest subscriber)"
        );
        self.overflow = overflow;
        self
    }

    /// Creates the channel.
    ///
    /// # Panics
    ///
    /// If the capacity is 0 (a broadcast channel needs room for one message:
    /// there is no rendezvous with many receivers), or too large.
    pub fn build<T: Clone>(self) -> (Sender<T>, Receiver<T>) {
        self.build_at(0)
    }

    /// Creates the channel with positions starting at lap `first_lap` (tests
    /// use a lap near the end of the position range to cross its wrap).
    fn build_at<T>(self, first_lap: u64) -> (Sender<T>, Receiver<T>) {
        assert!(
            self.capacity > 0,
            "broadcast::channel: capacity must be at least 1; a zero-capacity broadcast \
             channel could never hold a message (use mpsc::channel(0) for a rendezvous channel)"
        );
        let cap = self.capacity;
        let too_large = cap > MAX_CAPACITY
            || cap
                .checked_mul(std::mem::size_of::<Slot<T>>())
                .map_or(true, |bytes| bytes > isize::MAX as usize);
        assert!(
            !too_large,
            "broadcast::channel: capacity {cap} is too large (at most {MAX_CAPACITY} messages \
             that fit in memory)"
        );
        let one_lap = cap.next_power_of_two() as u64;
        let lap_shift = FLAG_BITS + one_lap.trailing_zeros();
        let start = first_lap.wrapping_shl(lap_shift);
        let chan = Arc::new(Chan {
            tail: CachePadded::new(AtomicU64::new(start | 1)),
            counts: CachePadded::new(Counts {
                senders: AtomicUsize::new(1),
                dropped: AtomicU64::new(0),
            }),
            cap,
            lap: one_lap << FLAG_BITS,
            lap_shift,
            index_mask: one_lap - 1,
            start,
            overflow: self.overflow,
            slots: (0..cap as u64)
                .map(|i| Slot {
                    stamp: AtomicU64::new(start.wrapping_add(i << FLAG_BITS)),
                    refs: AtomicUsize::new(0),
                    msg: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
            recv_waiters: WaitQueue::new(),
            send_waiters: WaitQueue::new(),
        });
        (
            Sender { chan: chan.clone() },
            Receiver {
                chan,
                head: Cell::new(start),
            },
        )
    }
}

/// Creates a broadcast channel holding at most `capacity` messages, with
/// [`Overflow::Block`]: senders wait for the slowest subscriber.
///
/// # Panics
///
/// If `capacity` is 0.
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    Builder::new(capacity).build()
}

struct Slot<T> {
    stamp: AtomicU64,
    /// Subscribers that have not passed the message yet; written by the
    /// sender before it publishes `FULL`.
    refs: AtomicUsize,
    msg: UnsafeCell<MaybeUninit<T>>,
}

/// Counters written rarely, kept off the lines the data path reads.
struct Counts {
    senders: AtomicUsize,
    dropped: AtomicU64,
}

struct Chan<T> {
    tail: CachePadded<AtomicU64>,
    counts: CachePadded<Counts>,
    cap: usize,
    /// One lap, as a word (`one_lap << FLAG_BITS`).
    lap: u64,
    /// `FLAG_BITS + log2(one_lap)`: where the lap number starts in a word.
    lap_shift: u32,
    index_mask: u64,
    /// The first position (for `len` before the first lap completes).
    start: u64,
    overflow: Overflow,
    slots: Box<[Slot<T>]>,
    recv_waiters: WaitQueue,
    send_waiters: WaitQueue,
}

// SAFETY: messages are moved in by senders and out by the last subscriber or
// an evicting sender, on any thread (`T: Send`); subscribers on different
// threads clone the same message through `&T` at the same time (`T: Sync`).
// Every access to a slot's message is ordered by its stamp (see the module
// docs).
unsafe impl<T: Send + Sync> Send for Chan<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Chan<T> {}

/// What a subscriber found where its next message should be.
enum Missing {
    Empty,
    Closed,
    Lagged(u64),
}

impl<T> Chan<T> {
    #[inline(always)]
    fn index(&self, pos: u64) -> usize {
        ((pos >> FLAG_BITS) & self.index_mask) as usize
    }

    #[inline(always)]
    fn slot(&self, pos: u64) -> &Slot<T> {
        // The index is below `cap` by construction of positions.
        &self.slots[self.index(pos)]
    }

    /// The position after `pos`.
    #[inline(always)]
    fn next(&self, pos: u64) -> u64 {
        if self.index(pos) + 1 < self.cap {
            pos.wrapping_add(UNIT)
        } else {
            (pos & !(self.lap - 1)).wrapping_add(self.lap)
        }
    }

    /// How many positions `from` is ahead of `to` (`from` at or after `to`).
    fn distance(&self, from: u64, to: u64) -> u64 {
        let laps = (from >> self.lap_shift).wrapping_sub(to >> self.lap_shift)
            & (u64::MAX >> self.lap_shift);
        laps.wrapping_mul(self.cap as u64)
            .wrapping_add(self.index(from) as u64)
            .wrapping_sub(self.index(to) as u64)
    }

    /// The position `k` before `pos` (`k <= cap`).
    fn back(&self, pos: u64, k: u64) -> u64 {
        let i = self.index(pos) as u64;
        if k <= i {
            pos - k * UNIT
        } else {
            (pos & !(self.lap - 1))
                .wrapping_sub(self.lap)
                .wrapping_add((self.cap as u64 - (k - i)) * UNIT)
        }
    }

    /// The position `k` after `pos` (`k < cap`).
    fn forward(&self, pos: u64, k: u64) -> u64 {
        let i = self.index(pos) as u64 + k;
        if i < self.cap as u64 {
            pos.wrapping_add(k * UNIT)
        } else {
            (pos & !(self.lap - 1))
                .wrapping_add(self.lap)
                .wrapping_add((i - self.cap as u64) * UNIT)
        }
    }

    /// A blocking send found the ring full: pause (a few microseconds at
    /// most) until `cap / SLACK_DIVISOR` slots are free, instead of taking
    /// each slot the slowest subscriber frees the moment it frees it, which
    /// keeps the sender on the line that subscriber is reading.
    #[cold]
    fn wait_for_slack(&self) {
        let want = (self.cap / SLACK_DIVISOR) as u64;
        if want < 2 {
            return;
        }
        park::pause_until(!self.crowded(), || {
            let tail = self.tail.load(Ordering::Relaxed);
            let last = self.forward(tail & !LOW, want - 1);
            tail & CLOSED != 0 || self.slot(last).stamp.load(Ordering::Relaxed) == last
        });
    }

    /// A receive found nothing: pause (a few microseconds at most) until
    /// `cap / SLACK_DIVISOR` messages wait, so that subscribers that caught
    /// up do not follow the sender slot by slot (each on the lines it is
    /// writing, in lockstep with each other).
    #[cold]
    fn wait_for_batch(&self, head: u64) {
        let want = (self.cap / SLACK_DIVISOR) as u64;
        if want < 2 {
            return;
        }
        park::pause_until(!self.crowded(), || {
            let tail = self.tail.load(Ordering::Relaxed);
            tail & CLOSED != 0 || self.distance(tail & !LOW, head) >= want
        });
    }

    /// More subscribers and a sender than CPUs: a thread we wait for is
    /// probably not running, so waits yield instead of spinning.
    fn crowded(&self) -> bool {
        let subs = (self.tail.load(Ordering::Relaxed) & SUBS) as usize;
        subs + 1 > park::cpus()
    }

    fn evicting(&self) -> bool {
        self.overflow == Overflow::DropOldest
    }

    // ---- sending ----

    /// One attempt to send under `Block`; `last` also closes the channel.
    fn try_send_block(&self, msg: T, last: bool) -> Result<(), TrySendError<T>> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(TrySendError::Closed(msg));
            }
            let pos = tail & !LOW;
            let slot = self.slot(pos);
            // Acquire: the subscribers that freed the slot are done with it.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos {
                let new = self.next(pos) | (tail & LOW) | if last { CLOSED } else { 0 };
                match self.tail.compare_exchange_weak(
                    tail,
                    new,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        self.publish(slot, pos, msg, tail & SUBS);
                        return Ok(());
                    }
                    Err(now) => {
                        tail = now;
                        backoff.spin();
                    }
                }
            } else if stamp == pos.wrapping_sub(self.lap) | FULL {
                // The message one lap back is still held: full, unless the
                // tail moved meanwhile.
                let now = self.tail.load(Ordering::Relaxed);
                if now == tail {
                    return Err(TrySendError::Full(msg));
                }
                tail = now;
            } else {
                // Another sender claimed `pos`: retry at the new tail.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Writes the message of the claimed `pos` into its free slot and
    /// publishes it. `Block` only.
    #[inline]
    fn publish(&self, slot: &Slot<T>, pos: u64, msg: T, subs: u64) {
        slot.msg.with_mut(|p| {
            // SAFETY: this thread claimed `pos` and saw the slot free for it
            // (stamp == pos, Acquire): no subscriber reads the message until
            // the stamp below says FULL, and the previous message is gone.
            unsafe { p.write(MaybeUninit::new(msg)) }
        });
        slot.refs.store(subs as usize, Ordering::Relaxed);
        // Release: publishes the message and `refs`.
        slot.stamp.store(pos | FULL, Ordering::Release);
        self.recv_waiters.notify_all();
    }

    /// Claims positions under `DropOldest` (never waits for room): `n`
    /// positions, `last` also closes. Returns the first position and the
    /// subscriber count, or `None` if the channel is closed.
    fn claim_evicting(&self, n: usize, last: bool) -> Option<(u64, u64)> {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return None;
            }
            let pos = tail & !LOW;
            let mut end = pos;
            for _ in 0..n {
                end = self.next(end);
            }
            let new = end | (tail & LOW) | if last { CLOSED } else { 0 };
            match self
                .tail
                .compare_exchange_weak(tail, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some((pos, tail & SUBS)),
                Err(now) => tail = now,
            }
        }
    }

    /// Writes the message of the claimed `pos` under `DropOldest`, evicting
    /// the message one lap back if it is still there. Returns the evicted
    /// message: the caller drops it once every position it claimed is
    /// written, so that a panicking drop leaves none claimed and unwritten.
    #[must_use]
    fn write_evicting(&self, pos: u64, msg: T, subs: u64) -> Option<T> {
        let slot = self.slot(pos);
        let prev_full = pos.wrapping_sub(self.lap) | FULL;
        let backoff = Backoff::new();
        let evicted = loop {
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp & !BUSY == pos {
                slot.msg.with_mut(|p| {
                    // SAFETY: `pos` is ours and the slot is free for it
                    // (Acquire above): nobody reads the message until FULL.
                    unsafe { p.write(MaybeUninit::new(msg)) }
                });
                slot.refs.store(subs as usize, Ordering::Relaxed);
                // Release: publishes message and `refs`; an add keeps the
                // busy count of subscribers passing through.
                slot.stamp.fetch_add(FULL, Ordering::Release);
                break None;
            }
            if stamp & !BUSY == prev_full {
                if slot
                    .stamp
                    // Release: a subscriber that sees LOCK (and so gives up
                    // on this message) also sees our claim of `pos` in the
                    // tail, and reports its lag.
                    .compare_exchange_weak(stamp, stamp | LOCK, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                // New subscribers see LOCK and leave; wait for those copying.
                // Acquire: their clones happen before we move the message.
                park::wait_brief(|| slot.stamp.load(Ordering::Acquire) & BUSY == 0);
                let missed = slot.refs.load(Ordering::Acquire) > 0;
                let old = slot.msg.with_mut(|p| {
                    // SAFETY: LOCK is ours and no subscriber is inside: we
                    // own the old message; we move it out and write ours.
                    unsafe {
                        let old = p.read().assume_init();
                        p.write(MaybeUninit::new(msg));
                        old
                    }
                });
                slot.refs.store(subs as usize, Ordering::Relaxed);
                // locked(pos - lap) -> full(pos), keeping busy counts.
                slot.stamp
                    .fetch_add(self.lap.wrapping_sub(LOCK), Ordering::Release);
                if missed {
                    self.counts.dropped.fetch_add(1, Ordering::Relaxed);
                }
                break Some(old);
            }
            // The previous message is not written yet, or its last
            // subscriber is freeing it.
            backoff.snooze();
        };
        self.recv_waiters.notify_all();
        evicted
    }

    /// Sends, waiting for room under `Block` until `deadline`.
    fn send_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
        last: bool,
    ) -> Result<(), SendTimeoutError<T>> {
        if self.evicting() {
            return match self.claim_evicting(1, last) {
                Some((pos, subs)) => {
                    drop(self.write_evicting(pos, msg, subs));
                    Ok(())
                }
                None => Err(SendTimeoutError::Closed(msg)),
            };
        }
        match self.try_send_block(msg, last) {
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
        self.wait_for_slack();
        let mut pending = Some(msg);
        let spin = !self.crowded();
        let outcome = park::block_on_with(&[&self.send_waiters], deadline, spin, || {
            match self.try_send_block(pending.take()?, last) {
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

    /// Claims up to `max` free positions under `Block` with one
    /// compare-exchange. `Ok(None)`: no room.
    fn claim_free(&self, max: usize) -> Result<Option<(u64, usize, u64)>, ()> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(());
            }
            let pos = tail & !LOW;
            let mut end = pos;
            let mut n = 0;
            // Acquire: each slot's previous message is gone.
            while n < max && self.slot(end).stamp.load(Ordering::Acquire) == end {
                end = self.next(end);
                n += 1;
            }
            if n == 0 {
                let now = self.tail.load(Ordering::Relaxed);
                if now == tail
                    && self.slot(pos).stamp.load(Ordering::Acquire)
                        == pos.wrapping_sub(self.lap) | FULL
                {
                    return Ok(None);
                }
                backoff.snooze();
                tail = now;
                continue;
            }
            match self.tail.compare_exchange_weak(
                tail,
                end | (tail & LOW),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Some((pos, n, tail & SUBS))),
                Err(now) => {
                    tail = now;
                    backoff.spin();
                }
            }
        }
    }

    /// `send_many`: takes up to [`MAX_BATCH`] messages at a time from `iter`
    /// and enqueues them with one claim.
    fn send_many(&self, iter: &mut impl Iterator<Item = T>) -> Result<usize, SendError<Vec<T>>> {
        let mut batch: Vec<T> = Vec::new();
        let mut sent = 0;
        loop {
            if batch.is_empty() {
                batch.extend(iter.by_ref().take(MAX_BATCH));
                if batch.is_empty() {
                    return Ok(sent);
                }
                // Send in order: pop from the back of a reversed batch.
                batch.reverse();
            }
            if self.evicting() {
                let n = batch.len();
                let Some((mut pos, subs)) = self.claim_evicting(n, false) else {
                    batch.reverse();
                    return Err(SendError(batch));
                };
                let mut evicted = Vec::new();
                while let Some(msg) = batch.pop() {
                    evicted.extend(self.write_evicting(pos, msg, subs));
                    pos = self.next(pos);
                }
                sent += n;
                // Every claimed position is written: drop what was evicted
                // (a panicking drop still drops the rest, and wedges nothing).
                drop(evicted);
                continue;
            }
            let claim = match self.claim_free(batch.len()) {
                Ok(Some(claim)) => Some(claim),
                Ok(None) => None,
                Err(()) => {
                    batch.reverse();
                    return Err(SendError(batch));
                }
            };
            let (mut pos, n, subs) = match claim {
                Some(claim) => claim,
                None => {
                    // Full: wait for room for one, like `send`.
                    let msg = batch.pop().expect("batch is not empty");
                    if let Err(e) = self.send_until(msg, None, false) {
                        batch.push(e.into_inner());
                        batch.reverse();
                        return Err(SendError(batch));
                    }
                    sent += 1;
                    continue;
                }
            };
            for _ in 0..n {
                let msg = batch.pop().expect("claimed no more than the batch");
                let slot = self.slot(pos);
                slot.msg.with_mut(|p| {
                    // SAFETY: `pos` is claimed by this thread and its slot
                    // was free for it (Acquire in `claim_free`).
                    unsafe { p.write(MaybeUninit::new(msg)) }
                });
                slot.refs.store(subs as usize, Ordering::Relaxed);
                slot.stamp.store(pos | FULL, Ordering::Release);
                pos = self.next(pos);
            }
            sent += n;
            self.recv_waiters.notify_all();
        }
    }

    fn close(&self) -> bool {
        let closed = close::set_mark(&*self.tail, CLOSED);
        if closed {
            self.wake_all();
        }
        closed
    }

    fn wake_all(&self) {
        self.recv_waiters.notify_all();
        self.send_waiters.notify_all();
    }

    fn is_closed(&self) -> bool {
        self.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Messages held: positions not yet passed by every subscriber nor
    /// evicted. They form the last `k` positions before the tail; found by
    /// binary search (a snapshot).
    fn held(&self) -> usize {
        let tp = self.tail.load(Ordering::Acquire) & !LOW;
        let sent = self.distance(tp, self.start).min(self.cap as u64);
        let held_at = |k: u64| {
            let pos = self.back(tp, k);
            self.slot(pos).stamp.load(Ordering::Acquire) & !LOW == pos
        };
        let (mut lo, mut hi) = (0, sent);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if held_at(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo as usize
    }

    // ---- subscribers ----

    /// Joins the subscriber count; returns the tail position at that moment
    /// (the first position the new subscriber counts in).
    fn join(&self) -> u64 {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            assert!(
                tail & SUBS < MAX_SUBSCRIBERS,
                "broadcast: too many subscribers (at most {MAX_SUBSCRIBERS} at once)"
            );
            match self.tail.compare_exchange_weak(
                tail,
                tail + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return tail & !LOW,
                Err(now) => tail = now,
            }
        }
    }

    /// A new subscriber at `head` (a clone of a subscriber there, which holds
    /// its positions meanwhile): joins and retains every position it counts
    /// in without having been counted.
    fn join_at(&self, head: u64) {
        let tp = self.join();
        let mut pos = self.first_held(head, tp);
        while pos != tp {
            self.visit(pos, Visit::Retain);
            pos = self.next(pos);
        }
    }

    /// Leaves the subscriber count (closing the channel if it was the last)
    /// and releases the positions from `head` on that counted this
    /// subscriber.
    fn leave(&self, head: u64) {
        let mut tail = self.tail.load(Ordering::Relaxed);
        let tail = loop {
            let mut new = tail - 1;
            if tail & SUBS == 1 {
                new |= CLOSED;
            }
            match self
                .tail
                .compare_exchange_weak(tail, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break tail,
                Err(now) => tail = now,
            }
        };
        if tail & SUBS == 1 && tail & CLOSED == 0 {
            // The last subscriber closed the channel: senders waiting for
            // room fail now.
            self.wake_all();
        }
        let tp = tail & !LOW;
        // Passing a message may drop it; if that drop panics, the rest are
        // still passed.
        crate::ring::drop_positions(
            self.first_held(head, tp),
            tp,
            |pos| self.next(pos),
            |pos| self.visit(pos, Visit::Release),
        );
    }

    /// `head`, or under `DropOldest` the oldest position still held if
    /// `head` lagged behind it.
    fn first_held(&self, head: u64, tp: u64) -> u64 {
        if self.evicting() && self.distance(tp, head) > self.cap as u64 {
            tp.wrapping_sub(self.lap)
        } else {
            head
        }
    }

    /// Adds or removes this subscriber's share of the message at `pos`
    /// (claimed, perhaps not written yet) without receiving it.
    fn visit(&self, pos: u64, visit: Visit) {
        let slot = self.slot(pos);
        if !self.evicting() {
            // The message stays until we pass it: wait until it is written
            // (its sender is between claim and publish).
            park::wait_brief(|| slot.stamp.load(Ordering::Acquire) == pos | FULL);
            match visit {
                Visit::Retain => {
                    slot.refs.fetch_add(1, Ordering::Relaxed);
                }
                Visit::Release => self.pass_block(slot, pos),
            }
            return;
        }
        park::wait_brief(|| {
            if let Some(inside) = self.enter(slot, pos) {
                match visit {
                    Visit::Retain => {
                        slot.refs.fetch_add(1, Ordering::Relaxed);
                        inside.leave();
                    }
                    // The guard passes the message on drop.
                    Visit::Release => inside.pass(),
                }
                return true;
            }
            // Evicted (or being evicted): nothing to do. Otherwise its
            // sender has not written it yet: wait.
            let stamp = slot.stamp.load(Ordering::Acquire);
            stamp & !BUSY == pos | FULL | LOCK
                || self.distance(self.tail.load(Ordering::Acquire) & !LOW, pos) > self.cap as u64
        });
    }

    // ---- receiving ----

    /// `Block`: this subscriber passes the message at `pos` (already read or
    /// skipped): the last one to pass it drops it and frees the slot.
    #[inline]
    fn pass_block(&self, slot: &Slot<T>, pos: u64) {
        // AcqRel: our read of the message happens before the last
        // subscriber's drop; the last one sees every other read.
        if slot.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            let msg = slot.msg.with(|p| {
                // SAFETY: every subscriber counted in `refs` has passed the
                // message, and senders wait for the free stamp: we own it.
                unsafe { p.read().assume_init() }
            });
            self.free_block(slot, pos);
            drop(msg);
        }
    }

    /// `Block`: frees the slot of `pos` for the next lap.
    #[inline]
    fn free_block(&self, slot: &Slot<T>, pos: u64) {
        // Release: senders that see the slot free see it emptied.
        slot.stamp
            .store(pos.wrapping_add(self.lap), Ordering::Release);
        self.send_waiters.notify_one();
    }

    /// `DropOldest`: enters the slot of `pos` if it holds that message
    /// (raising the busy count, which keeps evicters out).
    #[inline]
    fn enter<'a>(&'a self, slot: &'a Slot<T>, pos: u64) -> Option<Inside<'a, T>> {
        // Acquire: if the message is being evicted, the tail we read next
        // shows the evicting claim (see `write_evicting`).
        if slot.stamp.load(Ordering::Acquire) & !BUSY != pos | FULL {
            return None;
        }
        // Acquire: the sender's write of the message and `refs`.
        let before = slot.stamp.fetch_add(1, Ordering::Acquire);
        if before & !BUSY == pos | FULL {
            Some(Inside { chan: self, slot })
        } else {
            slot.stamp.fetch_sub(1, Ordering::Release);
            None
        }
    }

    /// Receives the message at `head` if it is there.
    #[inline]
    fn try_recv(&self, head: &Cell<u64>) -> Result<T, Missing>
    where
        T: Clone,
    {
        let pos = head.get();
        let slot = self.slot(pos);
        if !self.evicting() {
            // Acquire: the sender's write of the message and `refs`.
            if slot.stamp.load(Ordering::Acquire) == pos | FULL {
                // Advance first: a panicking `Clone` has passed the message.
                head.set(self.next(pos));
                // Acquire: the other subscribers' reads are done if we are
                // the only one left.
                if slot.refs.load(Ordering::Acquire) == 1 {
                    let msg = slot.msg.with(|p| {
                        // SAFETY: we are the last subscriber counted in
                        // `refs` (only we could lower it further, and a clone
                        // of us would need us): we own the message.
                        unsafe { p.read().assume_init() }
                    });
                    self.free_block(slot, pos);
                    return Ok(msg);
                }
                let guard = PassBlock {
                    chan: self,
                    slot,
                    pos,
                };
                let msg = slot.msg.with(|p| {
                    // SAFETY: FULL (Acquire) says it is written; it stays
                    // until we pass it (we are counted in `refs`).
                    unsafe { (*p).assume_init_ref().clone() }
                });
                drop(guard);
                return Ok(msg);
            }
        } else if let Some(inside) = self.enter(slot, pos) {
            head.set(self.next(pos));
            let msg = slot.msg.with(|p| {
                // SAFETY: inside the slot (busy raised while FULL and not
                // LOCK): no evicter moves the message until we leave.
                unsafe { (*p).assume_init_ref().clone() }
            });
            inside.pass();
            return Ok(msg);
        }
        Err(self.missing(head))
    }

    /// Why the message at `head` is not there (and, on lag, moves `head` to
    /// the oldest message still held).
    #[cold]
    fn missing(&self, head: &Cell<u64>) -> Missing {
        let pos = head.get();
        let tail = self.tail.load(Ordering::Acquire);
        let tp = tail & !LOW;
        if tp == pos {
            return if tail & CLOSED != 0 {
                Missing::Closed
            } else {
                Missing::Empty
            };
        }
        let behind = self.distance(tp, pos);
        if self.evicting() && behind > self.cap as u64 {
            head.set(tp.wrapping_sub(self.lap));
            return Missing::Lagged(behind - self.cap as u64);
        }
        // Claimed but not written yet: never wait for it here (the sender is
        // mid-copy; blocking receives wait for its wake-up).
        Missing::Empty
    }
}

#[derive(Clone, Copy)]
enum Visit {
    Retain,
    Release,
}

/// `Block`: passes the message when dropped, also when `Clone` panicked.
struct PassBlock<'a, T> {
    chan: &'a Chan<T>,
    slot: &'a Slot<T>,
    pos: u64,
}

impl<T> Drop for PassBlock<'_, T> {
    fn drop(&mut self) {
        self.chan.pass_block(self.slot, self.pos);
    }
}

/// `DropOldest`: a subscriber inside a slot; passes the message and leaves
/// when dropped, also when `Clone` panicked.
struct Inside<'a, T> {
    chan: &'a Chan<T>,
    slot: &'a Slot<T>,
}

impl<T> Inside<'_, T> {
    /// Passes the message (dropping it and freeing the slot if we are the
    /// last subscriber) and leaves: what dropping the guard does.
    fn pass(self) {}

    /// Leaves without passing the message.
    fn leave(self) {
        // Release: our read happens before an evicter's move.
        self.slot.stamp.fetch_sub(1, Ordering::Release);
        std::mem::forget(self);
    }
}

impl<T> Drop for Inside<'_, T> {
    fn drop(&mut self) {
        let (chan, slot) = (self.chan, self.slot);
        // AcqRel: as in `pass_block`.
        if slot.refs.fetch_sub(1, Ordering::AcqRel) == 1
            && slot.stamp.fetch_or(LOCK, Ordering::Acquire) & LOCK == 0
        {
            // Last subscriber and no evicter: we free it. Other subscribers
            // still inside have passed it already (refs is 0).
            let msg = slot.msg.with(|p| {
                // SAFETY: LOCK is ours and every subscriber counted in
                // `refs` has passed the message.
                unsafe { p.read().assume_init() }
            });
            // locked(pos) and our busy -> free(pos + lap), keeping the
            // others' busy counts. Release: as in `free_block`.
            slot.stamp
                .fetch_add(chan.lap.wrapping_sub(FULL | LOCK | 1), Ordering::Release);
            chan.send_waiters.notify_one();
            drop(msg);
        } else {
            // Leave. Release: our read happens before an evicter's move.
            slot.stamp.fetch_sub(1, Ordering::Release);
        }
    }
}

impl<T> Drop for Chan<T> {
    fn drop(&mut self) {
        // Every subscriber released its positions when it went, so nothing
        // is normally left; drop whatever a FULL stamp still marks.
        let slots = &self.slots;
        crate::ring::drop_positions(
            0,
            slots.len(),
            |i| i + 1,
            |i| {
                let slot = &slots[i];
                if slot.stamp.load(Ordering::Relaxed) & FULL != 0 {
                    slot.msg.with_mut(|p| {
                        // SAFETY: no handle is left; FULL means the slot
                        // holds a message nobody took; each slot is visited
                        // once.
                        unsafe { p.read().assume_init() }
                    });
                }
            },
        );
    }
}

/// The sending half of a broadcast channel: `Clone`, `Send + Sync` (when
/// `T: Send + Sync`). Dropping the last clone closes the channel.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<rillet::broadcast::Sender<std::rc::Rc<u8>>>();
/// ```
///
/// A message type that is `Send` but not `Sync` is rejected too:
/// subscribers on different threads clone the same message.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<rillet::broadcast::Sender<std::cell::Cell<u8>>>();
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// A subscriber of a broadcast channel: receives every message sent after it
/// subscribed. `Clone` (the clone starts at the same position), `Send` (when
/// `T: Send + Sync`) but not `Sync`.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<rillet::broadcast::Receiver<std::cell::Cell<u8>>>();
/// ```
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<rillet::broadcast::Receiver<u8>>();
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// The next position to receive; only this handle reads it.
    head: Cell<u64>,
}

impl<T> Sender<T> {
    /// Sends a message to every subscriber, waiting for room under
    /// [`Overflow::Block`] (for the slowest subscriber). Fails only if the
    /// channel is closed, handing the message back.
    #[inline]
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        self.chan
            .send_until(msg, None, false)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends without waiting: `Full` under `Block` if the slowest subscriber
    /// is `capacity` messages behind.
    #[inline]
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        if self.chan.evicting() {
            return self
                .chan
                .send_until(msg, None, false)
                .map_err(|e| TrySendError::Closed(e.into_inner()));
        }
        self.chan.try_send_block(msg, false)
    }

    /// Sends, waiting at most `timeout`.
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan
            .send_until(msg, Instant::now().checked_add(timeout), false)
    }

    /// Sends, waiting until `deadline` at most.
    pub fn send_deadline(&self, msg: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send_until(msg, Some(deadline), false)
    }

    /// Sends every message of `msgs` like a loop of [`send`](Self::send),
    /// claiming up to 64 positions per compare-exchange. Returns how many
    /// messages were taken from the iterator; on close, the messages taken
    /// but not enqueued come back in the error and items not yet yielded stay
    /// in the iterator.
    pub fn send_many<I: IntoIterator<Item = T>>(
        &self,
        msgs: I,
    ) -> Result<usize, SendError<Vec<T>>> {
        self.chan.send_many(&mut msgs.into_iter())
    }

    /// A new subscriber that receives every message sent after this call.
    /// On a closed channel it reports `Closed` at once.
    ///
    /// # Panics
    ///
    /// With more than 65535 subscribers at once.
    pub fn subscribe(&self) -> Receiver<T> {
        let head = self.chan.join();
        Receiver {
            chan: self.chan.clone(),
            head: Cell::new(head),
        }
    }

    /// Number of live subscribers.
    pub fn receiver_count(&self) -> usize {
        (self.chan.tail.load(Ordering::Relaxed) & SUBS) as usize
    }

    /// Closes the channel for everyone. `true` only for the call that
    /// closed it.
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Sends a final message and closes in one step: no message from any
    /// sender can be enqueued after it. Fails (handing `msg` back) if the
    /// channel is already closed.
    pub fn close_with(self, msg: T) -> Result<(), SendError<T>> {
        let result = self.chan.send_until(msg, None, true);
        if result.is_ok() {
            // Wake senders waiting for room: the channel is closed.
            self.chan.send_waiters.notify_all();
        }
        result.map_err(|e| SendError(e.into_inner()))
    }

    /// Messages the channel holds: not yet received by every subscriber
    /// (nor evicted). A snapshot.
    pub fn len(&self) -> usize {
        self.chan.held()
    }

    /// `true` if the channel holds no message (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` if the channel holds `capacity` messages (a snapshot).
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The capacity the channel was created with.
    pub fn capacity(&self) -> usize {
        self.chan.cap
    }

    /// `true` once the channel has been closed.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Messages evicted by [`Overflow::DropOldest`] before every subscriber
    /// had received them.
    pub fn dropped(&self) -> u64 {
        self.chan.counts.dropped.load(Ordering::Relaxed)
    }

    /// The overflow policy of this channel.
    pub fn overflow(&self) -> Overflow {
        self.chan.overflow
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.counts.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.counts.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("broadcast::Sender { .. }")
    }
}

impl<T: Clone> Receiver<T> {
    /// Receives the next message, waiting until one arrives. Fails when the
    /// channel is closed and this subscriber has received everything, or
    /// (once per gap) when it lagged under [`Overflow::DropOldest`].
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|e| match e {
            RecvTimeoutError::Lagged(n) => RecvError::Lagged(n),
            _ => RecvError::Closed,
        })
    }

    /// Receives without waiting.
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv(&self.head).map_err(|m| match m {
            Missing::Empty => TryRecvError::Empty,
            Missing::Closed => TryRecvError::Closed,
            Missing::Lagged(n) => TryRecvError::Lagged(n),
        })
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
        match self.chan.try_recv(&self.head) {
            Ok(msg) => Ok(msg),
            Err(Missing::Closed) => Err(RecvTimeoutError::Closed),
            Err(Missing::Lagged(n)) => Err(RecvTimeoutError::Lagged(n)),
            Err(Missing::Empty) => self.recv_slow(deadline),
        }
    }

    #[cold]
    #[inline(never)]
    fn recv_slow(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.chan.wait_for_batch(self.head.get());
        let spin = !self.chan.crowded();
        let outcome =
            park::block_on_with(&[&self.chan.recv_waiters], deadline, spin, || {
                match self.chan.try_recv(&self.head) {
                    Ok(msg) => Some(Ok(msg)),
                    Err(Missing::Closed) => Some(Err(RecvTimeoutError::Closed)),
                    Err(Missing::Lagged(n)) => Some(Err(RecvTimeoutError::Lagged(n))),
                    Err(Missing::Empty) => None,
                }
            });
        outcome.unwrap_or(Err(RecvTimeoutError::Timeout))
    }

    /// Waits for at least one message, then appends up to `max` messages to
    /// `buf`. Returns how many it appended (`Ok(0)` only when `max` is 0).
    /// A lag before the first message is returned as `Err(Lagged(n))`; a
    /// lag after it ends the batch and is reported by the next receive.
    pub fn recv_many(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        if max == 0 {
            return Ok(0);
        }
        buf.push(self.recv()?);
        let mut n = 1;
        while n < max {
            let pos = self.head.get();
            // Stop before a gap so that the next receive reports it.
            if self.chan.evicting()
                && self
                    .chan
                    .distance(self.chan.tail.load(Ordering::Relaxed) & !LOW, pos)
                    > self.chan.cap as u64
            {
                break;
            }
            match self.chan.try_recv(&self.head) {
                Ok(msg) => buf.push(msg),
                Err(Missing::Lagged(_)) => {
                    // Raced with an eviction: put the gap back for the next
                    // receive to report.
                    self.head.set(pos);
                    break;
                }
                Err(_) => break,
            }
            n += 1;
        }
        Ok(n)
    }

    /// A blocking iterator: yields messages until the channel is closed and
    /// this subscriber has received everything, skipping lag gaps.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over what this subscriber can receive now,
    /// skipping lag gaps.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    fn next_skipping_lag(&self) -> Option<T> {
        loop {
            match self.recv() {
                Ok(msg) => return Some(msg),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn try_next_skipping_lag(&self) -> Option<T> {
        loop {
            match self.try_recv() {
                Ok(msg) => return Some(msg),
                Err(TryRecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    }
}

impl<T> Receiver<T> {
    /// Closes the channel for everyone. `true` only for the call that
    /// closed it.
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Messages this subscriber has not received yet (at most `capacity`;
    /// a snapshot).
    pub fn len(&self) -> usize {
        let tp = self.chan.tail.load(Ordering::Acquire) & !LOW;
        self.chan
            .distance(tp, self.head.get())
            .min(self.chan.cap as u64) as usize
    }

    /// `true` if this subscriber has nothing to receive now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` if this subscriber is `capacity` messages behind.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The capacity the channel was created with.
    pub fn capacity(&self) -> usize {
        self.chan.cap
    }

    /// `true` once the channel has been closed (also while messages remain
    /// to be received).
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Messages evicted by [`Overflow::DropOldest`] before every subscriber
    /// had received them (channel-wide).
    pub fn dropped(&self) -> u64 {
        self.chan.counts.dropped.load(Ordering::Relaxed)
    }

    /// Number of live subscribers, this one included.
    pub fn receiver_count(&self) -> usize {
        (self.chan.tail.load(Ordering::Relaxed) & SUBS) as usize
    }

    /// The overflow policy of this channel.
    pub fn overflow(&self) -> Overflow {
        self.chan.overflow
    }
}

impl<T> Clone for Receiver<T> {
    /// A new subscriber at this one's position: it receives the same
    /// messages from here on.
    ///
    /// # Panics
    ///
    /// With more than 65535 subscribers at once.
    fn clone(&self) -> Self {
        self.chan.join_at(self.head.get());
        Receiver {
            chan: self.chan.clone(),
            head: Cell::new(self.head.get()),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.leave(self.head.get());
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("broadcast::Receiver { .. }")
    }
}

receiver_iterators!(
    T: Clone,
    |rx| rx.next_skipping_lag(),
    |rx| rx.try_next_skipping_lag()
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Positions cross the end of their range (the lap counter wraps) with
    /// the ring working as before, in both policies.
    #[test]
    fn positions_wrap() {
        for overflow in [Overflow::Block, Overflow::DropOldest] {
            for cap in [1, 3, 4] {
                let one_lap = (cap as u64).next_power_of_two();
                let lap_bits = 64 - FLAG_BITS - one_lap.trailing_zeros();
                let last_lap = (1u64 << lap_bits) - 1;
                let (tx, rx) = Builder::new(cap)
                    .overflow(overflow)
                    .build_at::<u64>(last_lap - 1);
                let rx2 = rx.clone();
                for i in 0..(5 * cap as u64 + 3) {
                    tx.send(i).unwrap();
                    assert_eq!(rx.len(), 1);
                    assert_eq!(tx.len(), 1, "cap {cap} {overflow:?} at {i}");
                    assert_eq!(rx.recv(), Ok(i));
                    assert_eq!(rx2.try_recv(), Ok(i));
                    assert_eq!(tx.len(), 0);
                }
                for i in 0..cap as u64 {
                    tx.send(i).unwrap();
                }
                assert_eq!(rx.len(), cap);
                assert_eq!(tx.len(), cap);
                if overflow == Overflow::DropOldest {
                    tx.send(99).unwrap();
                    tx.send(100).unwrap();
                    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(2)));
                } else {
                    assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
                }
            }
        }
    }

    #[test]
    fn distance_forward_and_back() {
        let (tx, _rx) = Builder::new(3).build::<u8>();
        let chan = &tx.chan;
        let mut pos = chan.start;
        let mut all = vec![pos];
        for _ in 0..10 {
            pos = chan.next(pos);
            all.push(pos);
        }
        for (i, &a) in all.iter().enumerate() {
            for (j, &b) in all.iter().enumerate().take(i + 1) {
                assert_eq!(chan.distance(a, b), (i - j) as u64);
                if i - j <= 3 {
                    assert_eq!(chan.back(a, (i - j) as u64), b);
                }
                if i - j < 3 {
                    assert_eq!(chan.forward(b, (i - j) as u64), a);
                }
            }
        }
    }
}
