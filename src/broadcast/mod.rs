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
//!   instead of cloning it (under `DropOldest` after taking `LOCK`, unless
//!   an evicter holds it); under `Block` with one subscriber a receive has
//!   no read-modify-write at all.
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
//! continues from the oldest position still held (`tail - capacity`). If
//! the sender evicts that one too before the next receive, that receive
//! returns `Lagged` again (each gap reported once, where it happened; the
//! sum is what the subscriber missed). Under this policy the stamp is only
//! changed with read-modify-writes, so the `busy` counts of subscribers
//! passing through are never overwritten.
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
//! `park::block_on` yield instead of spinning.
//!
//! # Decisions
//!
//! - `T: Clone` is needed to receive; the handles are `Send` (and the
//!   `Sender` `Sync`) only when `T: Send + Sync`, because subscribers on
//!   different threads clone the same message at the same time.
//! - A panicking `Clone` propagates out of `recv`; that subscriber has passed
//!   the message (it will not see it again) and stays usable.
//! - The subscriber that passes a message last drops it, inside its
//!   receive, unless it could move it out (it was the only one left when it
//!   looked). If that drop panics, the receive panics, and the clone it was
//!   about to return is dropped as the panic unwinds: a receive that
//!   panics delivers nothing, and the channel stays consistent.
//! - A `Clone` (or `Drop`) that calls into the same channel sees it as if
//!   the receive that runs it had already advanced: it may receive (the
//!   next message), subscribe, or send. One thing it must not do is wait
//!   on itself: a subscriber holds the message it is cloning, so a `Clone`
//!   that sends on a full `Block` channel, or under `DropOldest` sends the
//!   message that evicts the very one being cloned, waits for its own
//!   receive to finish, which never happens (as a `std` receiver that
//!   sends on its own full channel).
//! - Dropping the last subscriber takes the messages nobody received with
//!   it (each dropped exactly once), as `std` does for a dropped receiver.
//! - `iter()`/`try_iter()` skip lag gaps (use `recv` to see `Lagged`).
//! - `recv_many` returns `Err(Lagged(n))` only if the lag comes first;
//!   otherwise it stops at the gap and the next receive reports it. A
//!   call that follows one that took every message there was (fewer than
//!   its `max`) first pauses, a few microseconds at most, for a batch to
//!   be there, as a loop of `recv` does when it catches up; it then
//!   returns what is there, as always. (Off on one CPU.)
//! - `Sender::len()` is the number of messages the channel holds (not yet
//!   passed by every subscriber, nor evicted); `Receiver::len()` is what that
//!   subscriber has not received yet (at most `capacity`).
//! - `dropped()` counts messages evicted under `DropOldest` before every
//!   subscriber had received them.
//! - At most 65535 subscribers at once (the count shares the tail word);
//!   `subscribe` and `Receiver::clone` panic beyond that.
//! - `close_with(msg)`: the final message always goes in; under `Block` it
//!   waits for room, under `DropOldest` it evicts.
//! - `send_many` is a loop of `send`. Under `Block` it takes up to 64
//!   messages from the iterator (more than one only while its `size_hint`
//!   promises them, and no more than look free: on a full channel it takes
//!   one and waits, as the loop does), then claims their positions with
//!   one compare-exchange: it never runs the iterator while it holds a
//!   claim. While the iterator runs, the batch is registered on the thread
//!   (`chan::Batch`): a send, close or `subscribe` that the iterator makes
//!   on this channel first sends the batch, so the result is the loop's (a
//!   subscriber made while item `k` is produced sees item `k` on). If the
//!   iterator panics, the batch is sent. A receive or select readiness of
//!   a subscriber of this thread that finds nothing new sends the batch
//!   (without waiting for room) and looks again, and `len()`, `recv_many`
//!   and a subscriber's drop send it first: the iterator finds what the
//!   loop had sent. Under `DropOldest` it sends one message at a time, each
//!   eviction's drop before the next is taken.
//! - `Builder::overflow(Overflow::DropNewest)` panics: a broadcast
//!   sender cannot tell which subscriber a dropped message would be missing
//!   for; use `DropOldest` (subscribers learn their loss as `Lagged`) or
//!   `Block`.

mod chan;

use crate::chan::{Core, Handle, Receiving, SendMode, TryError, WithoutTimeout};
use crate::counter::{ChanRef, Counted, SenderRef};
use crate::error::{Reason, SendError, SendTimeoutError, TrySendError};
use crate::ring::{Laps, Pos};
use crate::Overflow;
use chan::Chan;
use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::time::Instant;

/// The receive error of a broadcast [`Receiver::recv`].
///
/// ```
/// use rillet::{broadcast, broadcast::RecvError, Overflow};
///
/// let (tx, rx) = broadcast::Builder::new(1).overflow(Overflow::DropOldest).build();
/// tx.send(1).unwrap();
/// tx.send(2).unwrap(); // evicts 1 before rx had it
/// assert_eq!(rx.recv(), Err(RecvError::Lagged(1)));
/// assert_eq!(rx.recv(), Ok(2)); // and it goes on from the oldest held
/// drop(tx);
/// assert_eq!(rx.recv(), Err(RecvError::Closed));
/// ```
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
///
/// ```
/// use rillet::broadcast::{self, TryRecvError};
///
/// let (tx, rx) = broadcast::channel::<u8>(4);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
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
///
/// ```
/// use rillet::broadcast::{self, RecvTimeoutError};
/// use std::time::Duration;
///
/// let (_tx, rx) = broadcast::channel::<u8>(4);
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// ```
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
    ///
    /// ```
    /// # use rillet::broadcast::RecvError;
    /// assert!(RecvError::Closed.is_closed() && !RecvError::Lagged(1).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvError::Closed)
    }

    /// `true` for [`RecvError::Lagged`].
    ///
    /// ```
    /// # use rillet::broadcast::RecvError;
    /// assert!(RecvError::Lagged(3).is_lagged());
    /// ```
    pub fn is_lagged(&self) -> bool {
        matches!(self, RecvError::Lagged(_))
    }
}

impl TryRecvError {
    /// `true` for [`TryRecvError::Empty`].
    ///
    /// ```
    /// # use rillet::broadcast::TryRecvError;
    /// assert!(TryRecvError::Empty.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// `true` for [`TryRecvError::Closed`].
    ///
    /// ```
    /// # use rillet::broadcast::TryRecvError;
    /// assert!(TryRecvError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TryRecvError::Closed)
    }

    /// `true` for [`TryRecvError::Lagged`].
    ///
    /// ```
    /// # use rillet::broadcast::TryRecvError;
    /// assert!(TryRecvError::Lagged(2).is_lagged());
    /// ```
    pub fn is_lagged(&self) -> bool {
        matches!(self, TryRecvError::Lagged(_))
    }
}

impl RecvTimeoutError {
    /// `true` for [`RecvTimeoutError::Timeout`].
    ///
    /// ```
    /// # use rillet::broadcast::RecvTimeoutError;
    /// assert!(RecvTimeoutError::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// `true` for [`RecvTimeoutError::Closed`].
    ///
    /// ```
    /// # use rillet::broadcast::RecvTimeoutError;
    /// assert!(RecvTimeoutError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvTimeoutError::Closed)
    }

    /// `true` for [`RecvTimeoutError::Lagged`].
    ///
    /// ```
    /// # use rillet::broadcast::RecvTimeoutError;
    /// assert!(RecvTimeoutError::Lagged(1).is_lagged());
    /// ```
    pub fn is_lagged(&self) -> bool {
        matches!(self, RecvTimeoutError::Lagged(_))
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecvError::Closed => Reason::Closed,
            RecvError::Lagged(n) => Reason::Lagged(n),
        }
        .fmt(f)
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TryRecvError::Empty => Reason::Empty,
            TryRecvError::Closed => Reason::Closed,
            TryRecvError::Lagged(n) => Reason::Lagged(n),
        }
        .fmt(f)
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecvTimeoutError::Timeout => Reason::Timeout,
            RecvTimeoutError::Closed => Reason::Closed,
            RecvTimeoutError::Lagged(n) => Reason::Lagged(n),
        }
        .fmt(f)
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

impl TryError for TryRecvError {
    type Timeout = RecvTimeoutError;
    const EMPTY: Self = TryRecvError::Empty;

    #[inline(always)]
    fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    #[inline(always)]
    fn timed_out(self) -> RecvTimeoutError {
        match self {
            TryRecvError::Empty => RecvTimeoutError::Timeout,
            TryRecvError::Closed => RecvTimeoutError::Closed,
            TryRecvError::Lagged(n) => RecvTimeoutError::Lagged(n),
        }
    }
}

impl WithoutTimeout<RecvError> for RecvTimeoutError {
    fn without_timeout(self) -> RecvError {
        match self {
            RecvTimeoutError::Lagged(n) => RecvError::Lagged(n),
            RecvTimeoutError::Closed | RecvTimeoutError::Timeout => RecvError::Closed,
        }
    }
}

builder!("broadcast", |overflow| assert!(
    overflow != Overflow::DropNewest,
    "broadcast::Builder: Overflow::DropNewest is not supported (a dropped message \
     would be missing for some subscribers with no way to tell them); use \
     Overflow::DropOldest (lagging subscribers get RecvError::Lagged(n)) or \
     Overflow::Block (senders wait for the slowest subscriber)"
));

impl Builder {
    /// Creates the channel, with one subscriber (the `Receiver`).
    ///
    /// # Panics
    ///
    /// If the capacity is 0 (a broadcast channel needs room for one message:
    /// there is no rendezvous with many receivers), or too large.
    ///
    /// ```
    /// use rillet::{broadcast, Overflow};
    ///
    /// let (tx, rx) = broadcast::Builder::new(2).overflow(Overflow::DropOldest).build();
    /// for i in 0..5 {
    ///     tx.send(i).unwrap();
    /// }
    /// assert_eq!(rx.recv(), Err(broadcast::RecvError::Lagged(3)));
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [3, 4]);
    /// ```
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
        let laps = Laps::<{ chan::FLAG_BITS }>::new(cap, chan::MIN_LAP_BITS)
            .filter(|_| cap <= chan::MAX_CAPACITY)
            .filter(|_| {
                cap.checked_mul(std::mem::size_of::<chan::Slot<T>>())
                    .is_some_and(|bytes| bytes <= isize::MAX as usize)
            })
            .unwrap_or_else(|| {
                panic!(
                    "broadcast::channel: capacity {cap} is too large (at most {} messages \
                     that fit in memory)",
                    chan::MAX_CAPACITY
                )
            });
        let start = laps.start(first_lap);
        let (tx, shared) = SenderRef::new(|| Chan::new(cap, laps, start, self.overflow));
        (
            Sender { chan: tx },
            Receiver {
                chan: shared,
                head: Cell::new(start),
                caught_up: Cell::new(false),
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
///
/// ```
/// let (tx, rx) = rillet::broadcast::channel(16);
/// let rx2 = tx.subscribe();
/// tx.send("hello").unwrap();
/// assert_eq!((rx.recv(), rx2.recv()), (Ok("hello"), Ok("hello")));
/// ```
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    Builder::new(capacity).build()
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
    chan: SenderRef<Chan<T>>,
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
    chan: ChanRef<Counted<Chan<T>>>,
    /// The next position to receive; only this handle reads it.
    head: Cell<Pos>,
    /// The last `recv_many` ended at the first message not sent yet,
    /// before its `max` (see `recv_many`).
    caught_up: Cell<bool>,
}

impl<T> Sender<T> {
    sender_methods!("broadcast");

    #[inline]
    fn try_send_now(&self, msg: T) -> Result<(), TrySendError<T>> {
        crate::chan::Sending::try_send_as(&*self.chan, msg, SendMode::Try)
    }

    #[inline]
    fn send_now(&self, msg: T) -> Result<(), TrySendError<T>> {
        crate::chan::Sending::try_send_as(&*self.chan, msg, SendMode::Wait)
    }

    /// Out of line: `send` reaches it only when the channel is full.
    #[inline(never)]
    fn send_until(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        crate::chan::send(&*self.chan, msg, deadline, SendMode::Wait)
    }

    /// Sends every message of `msgs` like a loop of [`send`](Self::send),
    /// claiming up to 64 positions per compare-exchange. Returns how many
    /// messages were taken from the iterator; on close, the messages taken
    /// but not enqueued come back in the error and items not yet yielded stay
    /// in the iterator.
    ///
    /// The result is that of the loop, also when the iterator itself calls
    /// into this channel (a send, a receive, a close, a `subscribe`: see the
    /// module docs), or panics (what it yielded before has been sent). An iterator
    /// whose `size_hint` promises no more items (a channel's `iter()`) is
    /// asked for the next one only once the ones it gave are sent.
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
    /// let (tx, rx) = rillet::broadcast::channel(8);
    /// assert_eq!(tx.send_many(0..3), Ok(3));
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
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
    ///
    /// ```
    /// let (tx, rx) = rillet::broadcast::channel(8);
    /// tx.send(1).unwrap();
    /// let late = tx.subscribe(); // does not see 1
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// assert_eq!(late.try_iter().collect::<Vec<_>>(), [2]);
    /// ```
    pub fn subscribe(&self) -> Receiver<T> {
        let head = self.chan.subscribe();
        Receiver {
            chan: self.chan.shared(),
            head: Cell::new(head),
            caught_up: Cell::new(false),
        }
    }

    /// Number of live subscribers.
    ///
    /// ```
    /// let (tx, rx) = rillet::broadcast::channel::<u8>(8);
    /// let rx2 = rx.clone();
    /// assert_eq!(tx.receiver_count(), 2);
    /// drop((rx, rx2));
    /// assert_eq!(tx.receiver_count(), 0);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.chan.receiver_count()
    }

    /// Sends a final message and closes in one step: no message from any
    /// sender can be enqueued after it, so every subscriber that drains the
    /// channel sees it last. The final message always goes in: under `Block`
    /// this waits for room, under `DropOldest` it evicts the oldest message.
    /// Fails (handing `msg` back) if the channel is already closed.
    ///
    /// ```
    /// let (tx, rx) = rillet::broadcast::channel(4);
    /// tx.send("work").unwrap();
    /// tx.close_with("done").unwrap();
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), ["work", "done"]);
    /// ```
    pub fn close_with(self, msg: T) -> Result<(), SendError<T>> {
        crate::chan::send(&*self.chan, msg, None, SendMode::Last)
            .map_err(|e| SendError(e.into_inner()))
    }

    introspection_methods!("broadcast", "tx");
}

counted_sender!("broadcast");

impl<T: Clone> Receiving for Receiver<T> {
    type Msg = T;
    type Error = TryRecvError;

    #[inline]
    fn try_recv_as(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv(&self.head)
    }

    fn recv_queue(&self) -> &crate::park::WaitQueue {
        self.chan.recv_queue()
    }

    fn recv_pace(&self) -> crate::park::Pace {
        (!self.chan.crowded()).into()
    }

    fn before_recv_wait(&self) {
        self.chan.wait_for_batch(self.head.get());
    }
}

impl<T: Clone> Receiver<T> {
    receiver_methods!("broadcast", RecvError, TryRecvError, RecvTimeoutError);
    generic_recv_blocking!();

    #[inline]
    fn try_recv_now(&self) -> Result<T, TryRecvError> {
        self.try_recv_as()
    }

    #[inline]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        crate::chan::recv_with(self, deadline, || self.try_recv_as())
    }

    /// Waits for at least one message, then appends up to `max` messages to
    /// `buf`. Returns how many it appended (`Ok(0)` only when `max` is 0).
    /// A lag before the first message is returned as `Err(Lagged(n))`; a
    /// lag after it ends the batch and is reported by the next receive.
    ///
    /// ```
    /// let (tx, rx) = rillet::broadcast::channel(8);
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
        if self.caught_up.get() {
            // The previous run took every message there was: pause for a
            // batch first, as a loop of `recv` does when it catches up
            // (`before_recv_wait`), as MPSC's and SPSC's `recv_many` do.
            // Two CPUs pinned, one subscriber, u64, calls of 256, medians
            // of 5 in turns with the build before: a loop of `send`
            // against `recv_many`, capacity 32, 14.7 -> 20.1 M msg/s (a
            // loop of `recv`: 15); 64, 21.6 -> 35 (23); 1024, 71.6 -> 77.5
            // (73-74); `send_many` against it, 18.4 -> 23.6, 30.5 -> 42,
            // 124 -> 127.
            self.chan.wait_for_batch(self.head.get());
        }
        let n = self.recv_run(buf, max)?;
        self.caught_up.set(n < max);
        Ok(n)
    }

    /// `recv_many` after its pause.
    fn recv_run(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        if !self.chan.evicting() {
            // Up to the first message not there: no look at the tail, the
            // line every send writes. The run is taken first, and `recv`
            // (which waits) runs only if it is empty: a call that finds
            // messages pays no more than their run.
            // A pending batch of this thread is in the channel for a loop
            // of `send` (see `chan::Batch`): what the run stopped at may be
            // in it.
            let key = Handle::pending_key(self);
            let mut n = self.chan.take_run_block(&self.head, buf, max);
            if n == 0 {
                buf.push(self.recv()?);
                crate::chan::flush_batches(key, false);
                n = 1 + self.chan.take_run_block(&self.head, buf, max - 1);
            } else if n < max && crate::chan::flush_batches(key, false) {
                n += self.chan.take_run_block(&self.head, buf, max - n);
            }
            return Ok(n);
        }
        buf.push(self.recv()?);
        // As above.
        crate::chan::flush_batches(Handle::pending_key(self), false);
        // What is there now, read once per batch (not once per message);
        // on a lag, stop before the gap so that the next receive reports it.
        let tail = self.chan.tail();
        let behind = self.chan.behind(tail, self.head.get());
        if self.chan.evicting() && behind > self.capacity() as u64 {
            return Ok(1);
        }
        let mut n = 1;
        let want = max.min(behind as usize + 1);
        while n < want {
            let pos = self.head.get();
            match self.chan.try_recv(&self.head) {
                Ok(msg) => buf.push(msg),
                Err(TryRecvError::Lagged(_)) => {
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
    /// Number of live subscribers, this one included.
    ///
    /// ```
    /// let (tx, rx) = rillet::broadcast::channel::<u8>(8);
    /// let _rx2 = tx.subscribe();
    /// assert_eq!(rx.receiver_count(), 2);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.chan.receiver_count()
    }

    introspection_methods!("broadcast", "rx");
}

impl<T> Handle for Receiver<T> {
    type Core = Chan<T>;

    fn core(&self) -> &Chan<T> {
        &self.chan
    }

    /// What this subscriber has not received yet (at most `capacity`).
    fn len(&self) -> usize {
        let behind = self.chan.behind(self.chan.tail(), self.head.get());
        behind.min(self.chan.capacity() as u64) as usize
    }
}

impl<T> Clone for Receiver<T> {
    /// A new subscriber at this one's position: it receives the same
    /// messages from here on.
    ///
    /// # Panics
    ///
    /// With more than 65535 subscribers at once.
    ///
    /// ```
    /// let (tx, rx) = rillet::broadcast::channel(8);
    /// tx.send(1).unwrap();
    /// let twin = rx.clone(); // also has 1 to receive
    /// assert_eq!((rx.recv(), twin.recv()), (Ok(1), Ok(1)));
    /// ```
    fn clone(&self) -> Self {
        self.chan.join_at(self.head.get());
        Receiver {
            chan: self.chan.clone(),
            head: Cell::new(self.head.get()),
            caught_up: Cell::new(false),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // A `send_many` of this thread whose iterator drops us: its batch
        // was sent before (to us too, as a loop of `send` had sent it), and
        // goes with us if we are its last holder.
        crate::chan::flush_batches(Handle::pending_key(self), false);
        self.chan.leave(self.head.get());
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("broadcast::Receiver { .. }")
    }
}

receiver_iterators!(
    "broadcast",
    T: Clone,
    |rx| rx.next_skipping_lag(),
    |rx| rx.try_next_skipping_lag()
);

impl<T: Clone> crate::select::case::Case for Receiver<T> {
    fn ready(&self) -> bool {
        // A pending batch of this thread is in the channel for a loop of
        // `send` (see `chan::Batch`).
        crate::chan::flush_batches(Handle::pending_key(self), false);
        Handle::len(self) != 0 || self.chan.is_closed()
    }

    fn queue(&self) -> Option<&crate::park::WaitQueue> {
        Some(self.chan.recv_queue())
    }

    fn addr(&self) -> *const () {
        self as *const Self as *const ()
    }
}

impl<T> crate::select::case::Case for Sender<T> {
    fn ready(&self) -> bool {
        let chan: &Chan<T> = &self.chan;
        chan.overflow() != Overflow::Block || chan.is_closed() || chan.len() < chan.capacity()
    }

    fn queue(&self) -> Option<&crate::park::WaitQueue> {
        Some(crate::chan::Sending::<T>::send_queue(&*self.chan))
    }

    fn addr(&self) -> *const () {
        self as *const Self as *const ()
    }
}

select_completions!(RecvError, [: Clone]);

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
                let lap_bits = 64 - chan::FLAG_BITS - one_lap.trailing_zeros();
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
}
