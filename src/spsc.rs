//! Single-producer single-consumer channel: a bounded ring buffer.
//!
//! ```
//! let (tx, rx) = rillet::spsc::channel(2);
//! std::thread::spawn(move || {
//!     for i in 0..10 {
//!         tx.send(i).unwrap();
//!     }
//! });
//! assert_eq!(rx.iter().sum::<i32>(), 45);
//! ```
//!
//! # Algorithm
//!
//! A Lamport ring with two monotonically increasing indices (they wrap
//! around `usize`; all comparisons are wrapping differences):
//!
//! ```text
//!            head (next to read)        tail (next to write)
//!               v                          v
//!   slots: [ .. | m5 | m6 | m7 | m8 |      |     ]   slot of index i = i & mask
//!               '------ len = tail - head --'
//! ```
//!
//! - `tail` is written only by the sender, `head` only by the receiver (in
//!   the `Block` and `DropNewest` modes). Each lives on its own cache line
//!   (except in tiny rings, below),
//!   and each handle keeps a private copy of the *other* side's index
//!   (`Sender::head_cache`, `Receiver::tail_cache`) that may be stale in the
//!   safe direction: a stale head makes the sender see less room, a stale
//!   tail makes the receiver see fewer messages. The shared index is reloaded
//!   only when the cached one says "full" / "empty", so in steady state each
//!   operation touches only its own line and the slot.
//! - The sender writes the slot, then stores `tail` with `Release`; the
//!   receiver loads `tail` with `Acquire` before reading the slot, then
//!   stores `head` with `Release`, which the sender acquires before reusing
//!   the slot. No read-modify-write on the data path.
//! - The physical ring is the next power of two at or above the capacity;
//!   the capacity limit is enforced on `tail - head`, so it is exact. Its
//!   slots start on a cache line when a message is a whole number of lines
//!   (or a fraction of one, from 32 bytes), so no message straddles two
//!   (`ring::MessageSlots`).
//!
//! After publishing, each side issues the *light* barrier and loads the word
//! of the other side's wait queue (see `src/park.rs`); only if a thread is
//! parked does it take a lock. Every close alerts the receiver's queue
//! before anything else, so that one load also tells the sender when to
//! check the close state, which is how a send racing a receiver-side close
//! is resolved (below). So a send is: compare with the cached head, write
//! the slot, store the tail, load one read-mostly word; a receive is the
//! mirror image. The policy is not looked at on that path: a `DropOldest`
//! sender always fails its fast check (`Sender::room` is 0), and so does a
//! claiming receiver (its cached tail stays equal to its head); they take
//! the paths that claim and check stamps.
//!
//! # Tiny rings: one cache line
//!
//! With one slot nothing is cached: every send waits for the receive
//! before it, and each message moves the tail's line, the slot's and the
//! head's between the two CPUs (capacity 1: 3.5 M msg/s, while MPSC's
//! ring, whose stamp shares the slot's line, moved 5.3). With two to four
//! slots the cached indices save little. So a `Block` ring of at most
//! `ONE_LINE_MAX_SLOTS` (4) slots whose messages fit in 48 bytes together
//! (each aligned to 16 at most) keeps everything on one line
//! (`Shared::one_line`): the tail at its start, the head after it, the
//! slots from byte 16. The line is the first whole one in the 128 bytes
//! before the head's own field, the padding that separates the two indices
//! in every other ring (`HeadLine`), so the channel is no larger and has
//! no slot array to allocate. Where the line falls depends on where the
//! channel was placed: it is found from the channel's address
//! (`Chan::line_word`); `Producer::tail`, `HeadLine::head` and `slots` are
//! then unused. The protocol is unchanged: only where its words live.
//!
//! Measured on two CPUs, u64 messages, one thread sending and one
//! receiving, before -> after: capacity 1, 3.5 -> 7.8 M msg/s; 2, 5.8 ->
//! 14.3; 3, 9.2 -> 21.4; 4, 10.9 -> 30.8 (crossbeam-channel 2.3, 3.5,
//! 7-14, 11-18; MPSC 5.3, 6.9, 13, 17 in the same runs); capacity 8 (not
//! one line) 18.5 either way.
//!
//! Where the three words are is decided per channel, so each handle keeps
//! copies of their addresses (`Spots`), and its accesses go through them
//! for a message that could fit (for larger ones the fields are used
//! directly: the choice is made at compile time); the channel's own code
//! (close, drop, `len`) tests `one_line`. Costs and gains for the other
//! rings, one CPU, `versus`, before -> after: one thread sending 100,000
//! u64 then receiving them 473-484 -> 399-400 M msg/s (a probe of the same
//! loop: 551-555 -> 487-499; it was 390-408 with a test of `one_line` on
//! each access instead of the copies, and 196-202 with the addresses kept
//! in the channel); a u64 stream at capacity 1024, 215-216 -> 220-222;
//! 64-byte messages 86.1-86.2 -> 86.3-86.7; making, using once and
//! dropping a channel 11.2-11.3 -> 11.9-12.0 M channels/s; batches of 256
//! 394-399 -> 401-407.
//!
//! # The dropping policies
//!
//! Under [`Overflow::DropOldest`] a full sender evicts the oldest message by
//! advancing `head` itself, so `head` becomes a claim index shared by both
//! sides: the receiver claims index `h` with a compare-exchange `h -> h+1`
//! before reading, the sender claims it the same way to evict. Exactly one
//! claim succeeds, so each message is received or evicted, never both. A
//! claimed slot may still be being read when the sender wants to reuse it,
//! so this mode keeps a per-slot stamp: `stamp[i & mask] == i` means "the
//! slot is free for index `i`"; whoever finished with index `i - N` (reader
//! or evicter) stores it with `Release`, and the sender waits for it (a
//! bounded wait: the reader is copying one message) before writing.
//!
//! It looks at the stamp only when the ring is full by its cached head
//! (under `DropOldest` too, as under the others). With fewer than
//! `capacity` messages, the slot's previous occupant `i - N` is free:
//! the receiver claims one message at a time and finishes copying it
//! before it claims the next, and while it is stuck in a copy the head
//! moves only by the sender's evictions, which leave the ring full. So a
//! ring that is not full has had a receiver claim since its last copy
//! began, at or below the head the sender loaded (`Acquire`, which orders
//! that copy before the sender's write); and `i - N` is below that claim
//! (`N` is more than the capacity). (Until 2026-12-06 every `DropOldest`
//! send looked at the stamp: one thread filling a ring, 92-102 M msg/s
//! against `Block`'s 500-870.)
//!
//! The ring of a dropping policy has at least one slot more than the
//! capacity, so a full sender can write and *publish* its message first
//! (the ring briefly holds `capacity + 1`) and evict the oldest one after:
//! an eviction happens only for a send that succeeded. (Evicting first, a
//! send that then lost the race with a receiver-side close would have
//! removed a message for nothing.)
//!
//! `DropNewest` receives by claiming too: `close_with` on a full
//! `DropNewest` channel evicts the oldest message for the final one, and
//! the claim is what lets the sender take a message the receiver may be
//! reaching for. Its sends are otherwise the `Block` fast path.
//!
//! # Direct hand-off (one CPU)
//!
//! On one CPU a blocked side runs only when the other one waits, so a
//! capacity-1 channel moved one message per pair of context switches: the
//! sender fills the slot and waits, the receiver takes it and waits. With
//! the hand-off, a `Block` sender that finds the ring full (in a blocking
//! `send`, `send_timeout` or `send_deadline`) does not only wait for room:
//! it parks its message in the channel's hand-off cell (`src/handoff.rs`,
//! shared with the MPSC ring) and counts an offer out in the send queue's
//! word (`park::OFFER`). The receiver's `take` already
//! loads that word after freeing a slot; the count sends it to the slow path,
//! where it claims the offer (`OFFERED -> TAKING`, a compare-exchange),
//! moves the message into the slot it just freed, stores the tail on the
//! sender's behalf, marks the offer `TAKEN` (`Release`) and wakes the
//! sender. So the receiver takes the next message in the same time slice,
//! and the sender, once it runs, finds its send complete and the ring
//! with room: two messages per pair of switches instead of one (pinned to
//! one CPU, capacity 1: 0.67 -> 1.9 M msg/s, 2.7x -> 6.9x crossbeam).
//!
//! - The tail has one writer at a time: the sender writes nothing while
//!   its offer is out. To send on its own it first withdraws the offer;
//!   the withdraw and the receiver's claim are compare-exchanges from
//!   `OFFERED` and exactly one wins, so the message is sent exactly once. The sender withdraws when its
//!   re-check finds room (the receiver freed it before it saw the offer),
//!   on a close (then the usual path returns `Closed`), and on its
//!   deadline; if the receiver won, the send is complete and reports `Ok`,
//!   even at the deadline, unless the receiver puts the message back on
//!   offer (it found no room after all: the slot went to the sender's
//!   previous message), which the sender then takes back.
//! - The receiver wakes the sender only if the send queue's word had a
//!   registration when it took the offer off the count (a read-modify-write
//!   after its `TAKING`); a sender never parks while it sees `TAKING` (it
//!   waits that bounded step out), so one that registers later sees
//!   `TAKING` or `TAKEN` and does not park. The thread handle the receiver
//!   wakes is written only when another thread offers (loom:
//!   `handoff_wakes_a_parked_sender`).
//! - The receiver never claims once the channel is closed: the message
//!   would land at or past the cutoff, reported sent and never received.
//!   No close can race the claim: while the sender is inside `send`, only
//!   the receiver can close (the handles are not `Sync`), and the claim
//!   runs on the receiver's thread.
//! - After `TAKEN` the sender reloads its tail and its cached head (the
//!   receiver freed the slot before it took the offer), which keeps the
//!   cached head within one capacity of the tail.
//! - Missing the offer is harmless: the offer count needs no barrier,
//!   because a sender with an offer out re-checks for room on every spin
//!   and yield, and registers with the heavy barrier before it parks, as
//!   any waiter does.
//! - Only where the process may run on one CPU (and under loom, whose
//!   models explore it). With two CPUs the blocked sender spins for a
//!   batch of free slots instead (`wait_for_slack`); a hand-off per message
//!   would put both sides back on each other's cache lines.
//! - Not used by `select`'s send cases (a select's value is produced only
//!   if its case wins), `close_with`, or the dropping policies (whose sends
//!   never wait). `send_many` waits through `send`, after publishing its
//!   run, so it uses it; a send made from inside its iterator while a run
//!   is written but unpublished takes the ordinary wait (the receiver
//!   would put the offered message at the published tail, under the run).
//!
//! The other direction: a blocking `recv` (`recv`, `recv_timeout`,
//! `recv_deadline`, `iter`) that finds the ring empty *accepts* a message
//! in the channel's accept cell (`Accept` in `src/handoff.rs`) for as long
//! as it waits. A send that finds the ring empty by its cached head (which
//! is never ahead of the real one, so the ring is empty) and the cell
//! accepting writes its message there instead of into the ring, and
//! unparks the receiver if it may be parked (if its receive queue's word
//! says it registered; see `Accept::fill`): that receive is complete, and
//! the sender goes on
//! with the next message, which lands in the ring. So pinned to one CPU a
//! capacity-1 channel moves three messages per pair of switches (one given,
//! one in the ring, one offered): 0.26 -> 0.42 M msg/s in a probe loop,
//! 5.5x -> 8.2x crossbeam in `versus`, level with kanal.
//! - The receiver looks at its cell before the ring, and accepts again
//!   only after it found the ring empty, so a given message comes before
//!   everything in the ring: the ring was empty when the sender gave it
//!   (the sender is the only one who fills the ring), and the sender's next
//!   messages come after.
//! - Each look of the waiting receiver first *disarms* the cell and then
//!   tries the ring; disarm and fill are compare-exchanges from `ARMED`, so
//!   a given message is received exactly once: by the look that lost the
//!   race to the fill, or by the end of a wait that timed out (a receive
//!   that finds its cell filled at its deadline returns the message).
//! - Not once the channel is closed: a sender that closed and then sends
//!   gets its message back; only the sender can close while the receiver
//!   waits in `recv`.
//! - The check is on the fast path of a send to an empty ring only where
//!   the hand-off is on (one load of a read-mostly flag otherwise); `select`
//!   receivers and `recv_many` do not accept.
//!
//! # Closing
//!
//! The close state is `src/close.rs`: one compare-exchange decides the
//! closer, which then stores the *cutoff*, the index one past the last
//! message that belongs to the channel.
//! - A sender-side close (`close`, `close_with`, dropping the `Sender`) sets
//!   the cutoff to its own tail: the sender is the only producer.
//! - A receiver-side close (`close`, dropping the `Receiver`) begins the
//!   close, alerts the receiver's wait queue, issues the heavy barrier and
//!   reads the tail as the cutoff. A sender that published concurrently
//!   loads that queue's word after its light barrier; by the barrier pair,
//!   either the receiver's tail load saw the message (it is below the cutoff
//!   and will be drained) or the sender sees the alert, and through it the
//!   close, waits for the cutoff and, if its message is at or above it,
//!   takes the message back (rewinding the tail) and returns `Closed`.
//!   The receiver never reads at or past the cutoff. So "closed and drained"
//!   is final: `Closed` is returned forever after, and a send reports `Ok`
//!   only for a message the receiver can still drain.
//! - Dropping the `Receiver` closes the same way without the heavy barrier
//!   (a system call, and most of the cost of making and dropping a short-
//!   lived channel): nobody drains after a drop, so a send racing it may
//!   report `Ok` for a message that then goes with the channel (as in std
//!   and crossbeam); the sender's next send sees the close.
//!
//! # Decisions
//!
//! - `close_with(msg)`: the final message always goes in. Under `Block` it
//!   waits for room first, then wins the close, then enqueues; under the
//!   dropping policies a full ring evicts its oldest message (counted)
//!   after the final one is in and the close is complete.
//! - `send_many` is a loop of `send` that publishes once per batch of free
//!   slots. Messages it has written are published before it runs the
//!   iterator on a full ring, when it finishes, and when the iterator calls
//!   into the channel itself (through `written`, a receiver-side close made
//!   from the iterator counts them; a receive, `len()` or select readiness
//!   the iterator makes on this thread publishes them first, the run being
//!   registered in the thread's list of pending batches, `chan::Pending`),
//!   and before it asks an iterator whose `size_hint` promises no more items
//!   for the next one (a channel's `iter()` may wait for it:
//!   `tx.send_many(upstream.iter())` forwards each message at once): the
//!   result is the loop's. A panicking iterator leaves what it yielded
//!   sent. A receiver on another thread sees a message when its batch is
//!   published, so an iterator that promises items and then waits for
//!   another thread to act on an earlier item of the same call waits
//!   forever.
//! - `send_many` stops at the first message it cannot enqueue; the error
//!   carries every message taken from the iterator but not enqueued (more
//!   than one only when a batch raced a receiver-side close). Items the
//!   iterator has not yet yielded stay in it (pass `iter.by_ref()` to keep
//!   them).
//! - Dropping the `Receiver` closes the channel and drops the buffered
//!   messages at once, as std and crossbeam do.
//! - `recv_many(buf, 0)` returns `Ok(0)` without waiting.
//! - `recv_many` frees the slots of its run a quarter of the ring at a
//!   time (a sender waiting for room refills them while the rest is
//!   read). A call that follows one that took every message there was
//!   (fewer than its `max`) first pauses, a few microseconds at most, for
//!   a batch to be there, as a loop of `recv` does when it catches up; it
//!   then returns what is there, as always. (Off on one CPU.)
//! - On one CPU `recv_many` moves its run out of the ring with at most two
//!   copies of contiguous slots per part, not a message at a time; with
//!   more CPUs it reads message by message, which measured faster there
//!   against a sender writing alongside (the numbers are in
//!   `try_recv_many`).

use crate::chan::{self, Core, Handle, Receiving, SendMode, Sending};
use crate::close::CloseState;
use crate::counter::ChanRef;
use crate::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::handoff::{Accept, Handoff, Offered};
use crate::pad::{Spaced, SpacedEnd};
use crate::park::{self, barrier, WaitQueue};
use crate::ring::{MessageSlots, Spill};
use crate::sync::{AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use crate::Overflow;
use std::cell::Cell;
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::time::Instant;

/// `a` comes strictly before `b` in wrapping index order.
#[inline(always)]
fn before(a: usize, b: usize) -> bool {
    (b.wrapping_sub(a) as isize) > 0
}

builder!("spsc", |_| {});

impl Builder {
    /// Creates the channel.
    ///
    /// ```
    /// let (tx, rx) = rillet::spsc::Builder::new(4).build();
    /// tx.send('a').unwrap();
    /// assert_eq!(rx.recv(), Ok('a'));
    /// ```
    ///
    /// # Panics
    ///
    /// If the capacity is 0 (an SPSC channel needs room for one message; a
    /// rendezvous channel is `mpsc::channel(0)`), or too large to allocate.
    pub fn build<T>(self) -> (Sender<T>, Receiver<T>) {
        self.build_with(false)
    }

    /// [`build`](Self::build), with a receiver that never spins while it
    /// waits when `quiet`: it pauses for a batch by yielding
    /// (`park::pause_quietly`), and does not poll before it yields and
    /// parks, and it yields longer before it parks (`park::Pace::Quiet`).
    /// For a receiver that is one of many threads waiting on the
    /// same producers (the watch store's watchers): on a
    /// machine with fewer CPUs than threads, a spinning watcher takes the
    /// CPU from the writer it waits for (with spinning watchers, a third
    /// of the CPU went to the pause of `wait_for_batch` in the watch
    /// store's 4-writer, 8-watcher flow).
    ///
    /// Always inlined: called, it returned the two handles through the
    /// stack, and the caller's first read of them was the hottest
    /// instruction of making, using once and dropping a channel (one CPU:
    /// 12.1 -> 14.2 M channels/s inlined).
    #[inline(always)]
    pub(crate) fn build_with<T>(self, quiet: bool) -> (Sender<T>, Receiver<T>) {
        assert!(
            self.capacity > 0,
            "spsc::channel: capacity must be at least 1; a zero-capacity SPSC channel \
             could never hold a message (use mpsc::channel(0) for a rendezvous channel)"
        );
        // Under the dropping policies the ring has a spare slot (see
        // "Dropping policies" in the module docs).
        let claiming = self.overflow != Overflow::Block;
        let slots = self
            .capacity
            .checked_add(usize::from(claiming))
            .and_then(usize::checked_next_power_of_two)
            .filter(|&n| {
                n.checked_mul(std::mem::size_of::<T>().max(1))
                    .is_some_and(|bytes| bytes <= isize::MAX as usize)
            })
            .unwrap_or_else(|| {
                panic!(
                    "spsc::channel: capacity {} is too large to allocate",
                    self.capacity
                )
            });
        // Everything that calls out is done before the channel is built, so
        // that the compiler builds it in place (see `ChanRef::pair`).
        let handoff = !claiming && (cfg!(loom) || park::single_core());
        let accept = handoff && crate::handoff::accept_enabled();
        let word = WaitQueue::initial_word();
        // Not under loom: its atomics are not plain memory, and the models
        // check the protocol, which is the same.
        let one_line = !cfg!(loom)
            && !claiming
            && fits_one_line::<T>()
            && slots <= ONE_LINE_MAX_SLOTS
            && slots * std::mem::size_of::<T>() <= 48;
        let size = std::mem::size_of::<T>();
        let read_ahead = crate::ring::PREFETCH
            && !claiming
            && size >= READ_AHEAD_MIN_SIZE
            && !park::single_core();
        let ring = MessageSlots::new(if one_line { 0 } else { slots }, self.capacity);
        let stamps: Box<[AtomicUsize]> = if claiming {
            // Reserved first, as the ring: a panic, not `collect`'s abort.
            let mut stamps = Vec::new();
            if stamps.try_reserve_exact(slots).is_err() {
                panic!(
                    "spsc::channel: capacity {} (the stamps of {slots} slots) could not be allocated",
                    self.capacity
                );
            }
            stamps.extend((0..slots).map(AtomicUsize::new));
            stamps.into_boxed_slice()
        } else {
            Box::new([])
        };
        let (chan, receiver_chan) = ChanRef::pair(|| Chan {
            producer: Spaced::new(Producer {
                tail: AtomicUsize::new(0),
                dropped: AtomicU64::new(0),
            }),
            head: HeadLine {
                near: std::cell::UnsafeCell::new(MaybeUninit::uninit()),
                head: AtomicUsize::new(0),
            },
            shared: Spaced::new(Shared {
                close: CloseState::new(),
                cap: self.capacity,
                mask: slots - 1,
                overflow: self.overflow,
                claiming,
                handoff,
                accept,
                quiet,
                one_line,
                read_ahead,
            }),
            recv_waiters: WaitQueue::with_word(word),
            send_waiters: WaitQueue::with_word(word),
            slots: ring,
            stamps,
            written: AtomicUsize::new(0),
            handoff: Handoff::new(),
            accept: Accept::new(),
            _end: SpacedEnd::new(),
        });
        #[cfg(not(loom))]
        if one_line {
            chan.init_line();
        }
        let at = Spots::of(&chan);
        (
            Sender {
                chan,
                tail: Cell::new(0),
                head_cache: Cell::new(0),
                room: self.capacity,
                at,
            },
            Receiver {
                chan: receiver_chan,
                head: Cell::new(0),
                tail_cache: Cell::new(0),
                claim_tail: Cell::new(0),
                cutoff: Cell::new(None),
                caught_up: Cell::new(false),
                sender_idle: Cell::new(false),
                batch: park::slack_for::<T>(self.capacity),
                at,
            },
        )
    }
}

/// Creates an SPSC channel holding at most `capacity` messages, with
/// [`Overflow::Block`].
///
/// # Panics
///
/// If `capacity` is 0 or too large to allocate.
///
/// ```
/// let (tx, rx) = rillet::spsc::channel(16);
/// let producer = std::thread::spawn(move || {
///     for i in 0..100 {
///         tx.send(i).unwrap();
///     }
/// });
/// assert_eq!(rx.iter().sum::<i32>(), 4950);
/// producer.join().unwrap();
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    Builder::new(capacity).build()
}

/// The sender's cache line.
struct Producer {
    /// Next index to write. Written only by the sender (`Release`).
    tail: AtomicUsize,
    /// Messages discarded by the overflow policy. Written only by the
    /// sender, so a load and a store suffice.
    dropped: AtomicU64,
}

/// The head's field, after 128 bytes that are padding in most rings and
/// the home of the whole ring in a tiny one (see "Tiny rings" in the
/// module docs). The size and place of a `Spaced<AtomicUsize>`.
#[repr(C)]
struct HeadLine {
    /// `Shared::one_line`: the first whole cache line in it holds the
    /// tail (word 0, set to 0 once the channel is placed), the head (word
    /// 1, likewise) and the slots (from byte 16); a 64-byte line starts
    /// within the first 56 bytes of any 8-aligned 128. Otherwise never
    /// read or written, and left uninitialized. (std's cell under loom
    /// too: never used there.)
    near: std::cell::UnsafeCell<MaybeUninit<[u64; 16]>>,
    /// Next index to read, unless `one_line`. Written by the receiver
    /// (`Release`); under `DropOldest` also claimed by the evicting sender
    /// (compare-exchange).
    head: AtomicUsize,
}

/// A message that may live in a one-line ring: its slots are the 48 bytes
/// from byte 16 of a line (so aligned to 16 at most).
const fn fits_one_line<T>() -> bool {
    std::mem::size_of::<T>() <= 48 && std::mem::align_of::<T>() <= 16
}

/// The most slots a one-line ring has. Past a few slots each side works
/// from its cached copy of the other's index and keeps off the other's
/// line, which one line would undo.
const ONE_LINE_MAX_SLOTS: usize = 4;

/// Where a channel's tail, head and slots are (its fields, or its one
/// line), and its mask: copied into each handle when the handle is made,
/// so that a handle's accesses never test `one_line` (see "Tiny rings" in
/// the module docs for what that test cost). Valid while the handle keeps
/// the channel alive.
struct Spots<T> {
    tail: NonNull<AtomicUsize>,
    head: NonNull<AtomicUsize>,
    slots: NonNull<UnsafeCell<MaybeUninit<T>>>,
    mask: usize,
}

impl<T> Clone for Spots<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Spots<T> {}

impl<T> Spots<T> {
    /// Where `chan`'s words are (after `init_line` for a one-line ring).
    fn of(chan: &Chan<T>) -> Self {
        Spots {
            tail: NonNull::from(chan.tail()),
            head: NonNull::from(chan.head()),
            slots: NonNull::from(chan.ring()).cast(),
            mask: chan.shared.mask,
        }
    }

    // Each accessor takes the channel, this handle's, and uses its fields
    // when a message never fits on one line: the choice is made at compile
    // time, and the fields are then faster than the copies (64-byte
    // messages, one CPU: 82 against 86 M msg/s through the copies).

    /// The shared tail ([`Chan::tail`]).
    #[inline(always)]
    fn tail<'a>(&'a self, chan: &'a Chan<T>) -> &'a AtomicUsize {
        if !fits_one_line::<T>() {
            return &chan.producer.tail;
        }
        // SAFETY: taken from `chan`, which the handle holding `self` keeps
        // alive.
        unsafe { self.tail.as_ref() }
    }

    /// The shared head ([`Chan::head`]).
    #[inline(always)]
    fn head<'a>(&'a self, chan: &'a Chan<T>) -> &'a AtomicUsize {
        if !fits_one_line::<T>() {
            return &chan.head.head;
        }
        // SAFETY: as in `tail`.
        unsafe { self.head.as_ref() }
    }

    /// The slots ([`Chan::ring`]).
    #[inline(always)]
    fn ring<'a>(&'a self, chan: &'a Chan<T>) -> &'a [UnsafeCell<MaybeUninit<T>>] {
        if !fits_one_line::<T>() {
            return &chan.slots;
        }
        // SAFETY: as in `tail`: the channel's `mask + 1` slots.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr(), self.mask + 1) }
    }

    #[inline(always)]
    fn slot<'a>(&'a self, chan: &'a Chan<T>, index: usize) -> &'a UnsafeCell<MaybeUninit<T>> {
        if !fits_one_line::<T>() {
            return chan.slot(index);
        }
        // SAFETY: `index & mask` is below the `mask + 1` slots, which the
        // channel keeps alive.
        unsafe { &*self.slots.as_ptr().add(index & self.mask) }
    }

    /// Moves the message out of the slot of `index`.
    ///
    /// # Safety
    ///
    /// As [`Chan::read`].
    #[inline(always)]
    unsafe fn read(&self, chan: &Chan<T>, index: usize) -> T {
        // SAFETY: guaranteed by the caller.
        self.slot(chan, index)
            .with(|p| unsafe { p.read().assume_init() })
    }

    /// Moves `msg` into the slot of `index`.
    ///
    /// # Safety
    ///
    /// The caller owns `index` under the protocol and its slot is
    /// uninitialized.
    #[inline(always)]
    unsafe fn write(&self, chan: &Chan<T>, index: usize, msg: T) {
        // SAFETY: guaranteed by the caller.
        self.slot(chan, index)
            .with_mut(|p| unsafe { p.write(MaybeUninit::new(msg)) });
    }
}

/// How far ahead of its head a receiver that is far behind prefetches, in
/// bytes of messages (see `Receiver::prefetch_ahead`).
const READ_AHEAD_BYTES: usize = 512;
/// Messages smaller than this are not prefetched: a u64 receiver usually
/// keeps up with its sender, and its loop is a few instructions long (with
/// the prefetch, `versus`'s u64 loop varied more from run to run, 190-350
/// M msg/s). On one CPU no message is: the sender wrote it on this core a
/// moment before, and the core's own prefetchers follow the receiver's
/// walk through the ring. A ring of 1024 32-byte messages fits the core's
/// cache, and the check alone cost 235 -> 207 M msg/s until it became one
/// flag (`Shared::read_ahead`); 64-byte messages were prefetched on one CPU
/// until 2026-12-06, when `versus` under `taskset -c 0`, three turns with
/// the build before, gave 111-112 -> 116-117 M msg/s without (rtrb
/// 117-122), and a probe of 128-byte messages 80.7-81.8 -> 83.8-84.1.
const READ_AHEAD_MIN_SIZE: usize = 32;

/// Read-mostly state.
struct Shared {
    close: CloseState,
    cap: usize,
    mask: usize,
    overflow: Overflow,
    /// `overflow != Block`: the receiver claims each message with a
    /// compare-exchange on `head`, and slots carry stamps.
    claiming: bool,
    /// A blocked sender offers its message for direct hand-off: `Block`
    /// on one CPU (and always under loom, so that the models explore it).
    handoff: bool,
    /// A receiver waiting on an empty ring accepts a message directly
    /// (the other direction of the hand-off; `handoff`, unless a loom model
    /// turned it off).
    accept: bool,
    /// The receiver does not spin while it waits (see `build_with`).
    quiet: bool,
    /// A tiny `Block` ring: the tail, the head and the slots live on one
    /// cache line in `HeadLine::near`, and `Producer::tail`,
    /// `HeadLine::head` and `slots` are unused (see "Tiny rings" in the
    /// module docs). Never under loom.
    #[cfg_attr(loom, allow(dead_code))]
    one_line: bool,
    /// A receiver far behind prefetches (see `Receiver::prefetch_ahead`):
    /// messages of [`READ_AHEAD_MIN_SIZE`] bytes or more, not claiming,
    /// not on one CPU, where `ring::PREFETCH`.
    read_ahead: bool,
}

// `repr(C)`: the `Spaced` fields keep their order and their distance.
#[repr(C)]
pub(crate) struct Chan<T> {
    producer: Spaced<Producer>,
    /// The head, and the one-line home of a tiny ring.
    head: HeadLine,
    shared: Spaced<Shared>,
    /// Invariant: the slots of indices in `head..tail` hold initialized
    /// messages (below the cutoff once closed, see the module docs), and so
    /// do those of a run `send_many` has written past the tail but not yet
    /// published (the sender's); every other slot is uninitialized. Under
    /// the dropping policies a claimed index stays initialized until its
    /// claimer has read it out and stored its stamp. (Read-mostly, beside
    /// `shared`.) Empty when `one_line`: the slots are in the line
    /// (`Chan::ring` is the way to them).
    slots: MessageSlots<T>,
    /// `DropNewest` and `DropOldest` only: `stamps[i & mask] == i` when the
    /// slot is free for index `i`.
    stamps: Box<[AtomicUsize]>,
    /// The receiver, when it waits for a message.
    recv_waiters: WaitQueue,
    /// The sender, when it waits for room (`Block` only).
    send_waiters: WaitQueue,
    /// One past the last index the sender has written, published or not:
    /// stored by `send_many` before it runs the caller's iterator, so that a
    /// receiver-side close made from inside that iterator counts the
    /// messages written before it (see `Receiver::close`). The receiver
    /// reads it only when it closes; it shares a line with the sender's
    /// wait-queue list (touched only to park or wake the sender) and the
    /// hand-off cell.
    written: AtomicUsize,
    /// Only a blocked sender and the receiver that frees its room touch
    /// it, and only on one CPU, where no other core shares the line. (Without
    /// the padding of `written` and `handoff`, a channel is under 1 KiB, the
    /// size the allocator serves from its per-thread cache.)
    handoff: Handoff<T>,
    /// The other direction: a receiver waiting on an empty ring accepts a
    /// message here (one CPU too).
    accept: Accept<T>,
    _end: SpacedEnd,
}

// SAFETY: a message is only ever accessed by the side that owns its slot
// under the index protocol above, so `Chan<T>` moves `T` values between
// threads but never shares a `&T`; that needs `T: Send` and nothing more.
unsafe impl<T: Send> Send for Chan<T> {}
// SAFETY: as above; all shared state other than the slots is atomic.
unsafe impl<T: Send> Sync for Chan<T> {}

impl<T> Chan<T> {
    /// Direct hand-off to the receiver (one CPU), by the sender: the ring
    /// is empty (and stays so: the sender is its only writer); if the
    /// receiver accepts, `msg` goes into its cell, which it looks at before
    /// the ring. Not once closed (only the sender can close while the
    /// receiver waits in `recv`, and its close comes before this in its own
    /// order). A method of the channel, not of the `Sender`: see
    /// [`Sender::detached`].
    #[cold]
    #[inline(never)]
    fn give(&self, msg: T) -> Result<(), T> {
        if !self.accept.is_armed() || !self.shared.close.is_open_relaxed() {
            return Err(msg);
        }
        self.accept.fill(msg, || true, &self.recv_waiters)
    }

    /// The slots: those of the line when `one_line`, else `slots`. Its
    /// length is `mask + 1`.
    #[inline(always)]
    fn ring(&self) -> &[UnsafeCell<MaybeUninit<T>>] {
        #[cfg(not(loom))]
        if fits_one_line::<T>() && self.shared.one_line {
            return self.line_ring();
        }
        &self.slots
    }

    #[inline(always)]
    fn slot(&self, index: usize) -> &UnsafeCell<MaybeUninit<T>> {
        // SAFETY: `ring()` has `mask + 1` slots, so `index & mask` is in
        // bounds.
        unsafe { self.ring().get_unchecked(index & self.shared.mask) }
    }

    /// The shared tail: next index to write. Written only by the sender
    /// (`Release`).
    #[inline(always)]
    fn tail(&self) -> &AtomicUsize {
        #[cfg(not(loom))]
        if fits_one_line::<T>() && self.shared.one_line {
            return self.line_index(0);
        }
        &self.producer.tail
    }

    /// The shared head (see `HeadLine::head`).
    #[inline(always)]
    fn head(&self) -> &AtomicUsize {
        #[cfg(not(loom))]
        if fits_one_line::<T>() && self.shared.one_line {
            return self.line_index(1);
        }
        &self.head.head
    }

    /// [`ring`](Self::ring) of a one-line ring. Out of line, as are
    /// [`line_index`](Self::line_index)'s: every other ring's accesses
    /// then cost only the test of `one_line` (inlined, the computation
    /// made the one-CPU u64 stream at capacity 1024 19% slower, and
    /// making and dropping a channel 12%), and a one-line ring waits for
    /// the other CPU far longer than a call takes.
    #[cfg(not(loom))]
    #[cold]
    #[inline(never)]
    fn line_ring(&self) -> &[UnsafeCell<MaybeUninit<T>>] {
        // SAFETY: the `mask + 1` slots are bytes 16..64 of the line,
        // where that many messages of this size fit (`build_with`), each
        // aligned (the line is 64-aligned, the size a multiple of an
        // alignment of at most 16); a cell of `MaybeUninit` is valid
        // uninitialized; `UnsafeCell` is `repr(transparent)`, and the
        // bytes are inside `near`'s cell, so they may be written through a
        // shared reference.
        unsafe { std::slice::from_raw_parts(self.line_word(2).cast(), self.shared.mask + 1) }
    }

    /// The tail (`k` = 0) or the head (1) of a one-line ring.
    #[cfg(not(loom))]
    #[cold]
    #[inline(never)]
    fn line_index(&self, k: usize) -> &AtomicUsize {
        debug_assert!(k < 2);
        // SAFETY: words 0 and 1 of the line are the tail and the head,
        // set to 0 when the channel was built, 8-aligned, and only ever
        // accessed as these atomics; they lie inside `near`'s cell.
        unsafe { &*self.line_word(k).cast::<AtomicUsize>() }
    }

    /// Sets both indices of a one-line ring to 0, before any handle uses
    /// them (where the line is depends on where the channel was placed).
    #[cfg(not(loom))]
    #[cold]
    #[inline(never)]
    fn init_line(&self) {
        for k in 0..2 {
            // SAFETY: words 0 and 1 of the line are inside `near`'s cell
            // and 8-aligned; no handle has used the channel yet.
            unsafe { self.line_word(k).cast::<usize>().write(0) };
        }
    }

    /// Word `k` of the one line a tiny ring lives on: the first
    /// 64-byte boundary in `near` (at most 56 bytes in), plus `8 * k`.
    #[cfg(not(loom))]
    #[inline(always)]
    fn line_word(&self, k: usize) -> *mut u8 {
        let near = self.head.near.get().cast::<u8>();
        let skip = (near as usize).wrapping_neg() & 63;
        // SAFETY: `near` is 8-aligned and 128 bytes long, so the boundary
        // is at most 56 bytes in, and its line (`k` < 8) ends inside it.
        unsafe { near.add(skip + 8 * k) }
    }

    #[inline(always)]
    fn stamp(&self, index: usize) -> &AtomicUsize {
        &self.stamps[index & self.shared.mask]
    }

    /// Moves the message out of the slot of `index`.
    ///
    /// # Safety
    ///
    /// The caller owns `index` under the protocol and its slot is
    /// initialized; afterwards it is uninitialized.
    #[inline(always)]
    unsafe fn read(&self, index: usize) -> T {
        // SAFETY: guaranteed by the caller.
        self.slot(index).with(|p| unsafe { p.read().assume_init() })
    }

    /// The receiver has read the message of `index`, which it claimed
    /// (claiming policies): the slot is free for the sender's next lap.
    #[inline]
    fn release_claimed(&self, index: usize) {
        // Release: our copy out happens before the sender's reuse.
        self.stamp(index)
            .store(index.wrapping_add(self.shared.mask + 1), Ordering::Release);
    }

    fn count_dropped(&self, n: u64) {
        // Only the sender writes `dropped`: load + store, no RMW.
        let d = &self.producer.dropped;
        d.store(d.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    fn len(&self) -> usize {
        // Head first: tail never falls below a head loaded earlier.
        let head = self.head().load(Ordering::Acquire);
        let tail = self.tail().load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.shared.cap)
    }

    /// Wins the close (`true`) or finds it taken. The winner alerts
    /// `recv_waiters` at once, so that every later `Sender::publish`, which
    /// loads only that queue's word on its fast path, goes on to check the
    /// close state.
    fn begin_close(&self) -> bool {
        if !self.shared.close.begin() {
            return false;
        }
        self.recv_waiters.alert();
        true
    }

    /// Wakes every waiter on both sides (after a close).
    fn wake_all(&self) {
        self.recv_waiters.notify_all();
        self.send_waiters.notify_all();
    }
}

impl<T> Core for Chan<T> {
    fn len(&self) -> usize {
        Chan::len(self)
    }

    fn capacity(&self) -> usize {
        self.shared.cap
    }

    fn is_closed(&self) -> bool {
        self.shared.close.is_closed()
    }

    fn dropped(&self) -> u64 {
        self.producer.dropped.load(Ordering::Relaxed)
    }

    fn overflow(&self) -> Overflow {
        self.shared.overflow
    }

    /// A receiver-side close (the sender's own is `Handle::close` on
    /// `Sender`): the cutoff is the tail as seen after the heavy barrier.
    fn close(&self) -> bool {
        self.close_from_receiver(true)
    }
}

impl<T> Chan<T> {
    /// A receiver-side close. `exact` (an explicit `close`): the cutoff is
    /// the tail as seen after the heavy barrier, so that every send that
    /// reports `Ok` is one the receiver can still drain. Not `exact` (the
    /// receiver is being dropped, and nobody will drain): the barrier is
    /// skipped. A send racing that drop may then miss our alert and report
    /// `Ok` for a message at or past the cutoff; nobody can tell it from
    /// one sent just before the drop (std and crossbeam also let a send
    /// racing the receiver's drop succeed), and it is dropped with the
    /// channel (`Chan::drop` drops everything between head and tail). Its
    /// next send sees the alert and fails. The barrier is a system call,
    /// and the larger part of making and dropping a channel.
    fn close_from_receiver(&self, exact: bool) -> bool {
        if !self.begin_close() {
            return false;
        }
        // Pairs with the light barrier in `Sender::publish`: either we see
        // a concurrently published tail, or that sender sees our alert (and
        // through it CLOSING) and settles against the cutoff we store below.
        if exact {
            barrier::heavy();
        }
        let mut cutoff = self.tail().load(Ordering::Acquire);
        // A `send_many` that called us from its iterator (same thread) has
        // written messages it has not published yet: they were sent before
        // this close. (Any other value of `written` is at most the tail, or
        // belongs to a concurrent `send_many`, whose messages may count
        // either way: they will be published, and the sender settles
        // against this cutoff.)
        let written = self.written.load(Ordering::Relaxed);
        if before(cutoff, written) {
            cutoff = written;
        }
        self.shared.close.finish(cutoff);
        self.wake_all();
        true
    }
}

impl<T> Drop for Chan<T> {
    fn drop(&mut self) {
        // We are the last handle: `&mut self` gives exclusive access, and the
        // Arc's drop synchronized with every other handle's last access.
        let head = self.head().load(Ordering::Relaxed);
        let tail = self.tail().load(Ordering::Relaxed);
        self.handoff.drop_offer();
        self.accept.drop_accepted();

        crate::ring::drop_positions(
            head,
            tail,
            |i| i.wrapping_add(1),
            // SAFETY: `i` is in `head..tail`, whose slots hold initialized
            // messages (the `Chan` invariant), and no other handle exists.
            |i| drop(unsafe { self.read(i) }),
        );
    }
}

/// The sending half of an SPSC channel.
///
/// `Send` (when `T: Send`) but not `Sync`: one thread sends at a time.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<rillet::spsc::Sender<std::rc::Rc<u8>>>();
/// ```
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<rillet::spsc::Sender<u8>>();
/// ```
pub struct Sender<T> {
    chan: ChanRef<Chan<T>>,
    /// Our copy of the tail (we are its only writer).
    tail: Cell<usize>,
    /// A possibly stale copy of the head; never ahead of the real one.
    head_cache: Cell<usize>,
    /// `tail - head_cache` below this means "the slot of `tail` is free",
    /// with no further check: the capacity (under `DropOldest` too, see
    /// "Dropping policies" in the module docs).
    room: usize,
    /// Where the channel's words are.
    at: Spots<T>,
}

// SAFETY: `at` points into the channel that `chan` keeps alive, which may
// be used from any thread when `T: Send` (as `chan` itself).
unsafe impl<T: Send> Send for Sender<T> {}

/// The receiving half of an SPSC channel.
///
/// `Send` (when `T: Send`) but not `Sync`: one thread receives at a time.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<rillet::spsc::Receiver<std::rc::Rc<u8>>>();
/// ```
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<rillet::spsc::Receiver<u8>>();
/// ```
pub struct Receiver<T> {
    chan: ChanRef<Chan<T>>,
    /// Our copy of the head (`Block`/`DropNewest`: we are its only writer).
    head: Cell<usize>,
    /// A possibly stale copy of the tail, never past the cutoff. Under
    /// `DropOldest` it stays equal to `head` (neither is used there), so
    /// the fast path of `try_recv` always falls through to the claiming one.
    tail_cache: Cell<usize>,
    /// `DropOldest`: the stale copy of the tail that `tail_cache` is
    /// elsewhere.
    claim_tail: Cell<usize>,
    /// The cutoff, once we have seen the channel closed.
    cutoff: Cell<Option<usize>>,
    /// The last `recv_many` ended at the tail, before its `max`: it caught
    /// up with the sender (see `recv_many`).
    caught_up: Cell<bool>,
    /// A pause for the batch after a `recv_many`'s leftovers found the
    /// sender idle (see `wait_for_batch`); a later pause that saw the tail
    /// move clears it. While it is set, `recv_many` moves its runs with
    /// `move_run` (see `try_recv_many`).
    sender_idle: Cell<bool>,
    /// The batch a receiver that caught up pauses for
    /// (`park::slack_for` of the capacity).
    batch: usize,
    /// Where the channel's words are.
    at: Spots<T>,
}

// SAFETY: as for `Sender`.
unsafe impl<T: Send> Send for Receiver<T> {}

/// Outcome of the slow part of a send.
enum Room<T> {
    /// The slot of `tail` is free and ours: write the message (handed back)
    /// and publish it, as on the fast path.
    Free(T),
    /// The send is over (full under `Block`, closed, or done).
    Done(Result<(), TrySendError<T>>),
    /// The send is done, and this message was discarded (the new one under
    /// `DropNewest`, the evicted oldest under `DropOldest`): the caller
    /// drops it, once the handle is up to date (see [`Sender::detached`]).
    Discard(T),
}

/// What [`Sender::try_send_room`] did, and what its spill slot holds.
#[derive(Clone, Copy)]
enum Attempt {
    /// The message was sent; the spill is empty.
    Sent,
    /// The send is done, and the spill holds the message a dropping policy
    /// discarded (the caller drops it once the handle is up to date).
    Discarded,
    /// The ring is full (`Block`): the spill holds the message.
    Full,
    /// The channel is closed: the spill holds the message.
    Closed,
}

/// Copies a view's indices back into its handle ([`Sender::detached`]),
/// also when the slow path unwinds. (Not under loom: see below.)
#[cfg_attr(loom, allow(dead_code))]
struct WriteBack<'a, T> {
    to: &'a Sender<T>,
    from: &'a Sender<T>,
}

impl<T> Drop for WriteBack<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.to.tail.set(self.from.tail.get());
        self.to.head_cache.set(self.from.head_cache.get());
    }
}

impl<T> Sending<T> for Sender<T> {
    #[inline(always)]
    fn try_send_as(&self, msg: T, mode: SendMode) -> Result<(), TrySendError<T>> {
        match mode {
            SendMode::Last => self.try_close_with(msg),
            _ => self.try_send_inner(msg, mode == SendMode::Wait),
        }
    }

    fn send_queue(&self) -> &WaitQueue {
        &self.chan.send_waiters
    }
}

impl<T> Sender<T> {
    sender_methods!("spsc");

    #[inline(always)]
    fn try_send_now(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.try_send_inner(msg, false)
    }

    #[inline(always)]
    fn send_now(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.try_send_inner(msg, true)
    }

    /// Runs `f`, a slow path kept out of line, on a copy of this handle
    /// (a view), and copies the view's indices back into the handle after
    /// it, also if it unwinds.
    ///
    /// Why a copy: an out-of-line call given `&self` is given the handle's
    /// address. Once that address has escaped, the compiler must assume
    /// that the slot write of a send may overwrite the handle, so a loop of
    /// `send` stores the tail to memory and loads it back on every message,
    /// and reloads the channel pointer after every slot write. With every
    /// slow path of `send` run on a view, the handle's address stays with
    /// the caller, whose loop keeps the tail in a register, as rtrb's
    /// `push(&mut self)` does. `versus`, one thread sending 100,000
    /// messages then receiving them: 4.2-4.6x crossbeam-channel before,
    /// about 5.5x after (4.7-6.0x over ten runs).
    ///
    /// Invariant: no user code (a message's `Drop`) runs while a view is
    /// live. A re-entrant send through the handle would find its indices
    /// stale, and the write-back would then undo that send. So the slow
    /// paths run on a view hand back the message they discard
    /// ([`Room::Discard`], [`Sender::send_until_view`]), and their caller
    /// drops it after the write-back; only the dropping policies discard,
    /// and under `Block`, the one policy whose slow path sends through
    /// `chan::send` on the view, nothing is discarded.
    #[cfg(not(loom))]
    #[inline(always)]
    fn detached<R>(&self, f: impl FnOnce(&Sender<T>) -> R) -> R {
        let view = self.view();
        let _back = WriteBack {
            to: self,
            from: &view,
        };
        f(&view)
    }

    /// A copy of this handle that is never dropped, built field by field
    /// (see [`Receiver::drop`]).
    #[cfg(not(loom))]
    #[inline(always)]
    fn view(&self) -> std::mem::ManuallyDrop<Sender<T>> {
        std::mem::ManuallyDrop::new(Sender {
            // SAFETY: an alias without a count of its own, never dropped
            // (the view is `ManuallyDrop`): a borrow of the channel, which
            // `self` keeps alive while the view is used.
            chan: unsafe { self.chan.alias() },
            tail: Cell::new(self.tail.get()),
            head_cache: Cell::new(self.head_cache.get()),
            room: self.room,
            at: self.at,
        })
    }

    /// Under loom the slow paths run on the handle itself: the models
    /// check the channel's atomics, and the view is plain sequential code
    /// (which Miri and the tests run).
    #[cfg(loom)]
    #[inline(always)]
    fn detached<R>(&self, f: impl FnOnce(&Sender<T>) -> R) -> R {
        f(self)
    }

    /// `send` reaches it only when the channel is full; `send_timeout` and
    /// `send_deadline` always. The wait runs on a view (see
    /// [`Sender::detached`]).
    #[inline(always)]
    fn send_until(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let (result, discarded) = self.detached(|s| s.send_until_view(msg, deadline));
        drop(discarded);
        result
    }

    /// `send_until` on a view: also returns the message a dropping policy
    /// discarded, for the caller to drop once the handle is up to date.
    #[inline(never)]
    fn send_until_view(
        &self,
        mut msg: T,
        deadline: Option<Instant>,
    ) -> (Result<(), SendTimeoutError<T>>, Option<T>) {
        if self.chan.shared.overflow != Overflow::Block {
            // A dropping policy never waits: one attempt.
            match self.try_send_core(msg, false) {
                Ok(discarded) => return (Ok(()), discarded),
                Err(TrySendError::Closed(m)) => return (Err(SendTimeoutError::Closed(m)), None),
                // Not reached: only `Block` is ever full. Wait as it would.
                Err(TrySendError::Full(m)) => msg = m,
            }
        }
        (self.send_blocking(msg, deadline), None)
    }

    /// The wait of a blocking send (`Block`).
    fn send_blocking(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        // Not from inside `send_many`'s iterator while it has written
        // messages past the published tail: the receiver moves an offered
        // message to the published tail.
        if !self.chan.shared.handoff
            || self.tail.get() != self.at.tail(&self.chan).load(Ordering::Relaxed)
        {
            return chan::send(self, msg, deadline, SendMode::Wait);
        }
        match self.try_send_inner(msg, false) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(m)) => Err(SendTimeoutError::Closed(m)),
            Err(TrySendError::Full(m)) => self.send_offering(m, deadline),
        }
    }

    /// A blocking send on a full ring, with direct hand-off: parks `msg`
    /// in the hand-off cell, where the receiver that frees a slot moves it
    /// into the ring and completes the send, then waits for that, for room
    /// (the offer is withdrawn and the message sent as usual), for a close
    /// or for the deadline (withdrawn, unless the receiver took it first:
    /// then the send is complete and reports `Ok`).
    #[cold]
    #[inline(never)]
    fn send_offering(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let chan = &*self.chan;
        // Every send leaves the cell free, and we are the only sender.
        if !chan.handoff.reserve() {
            return chan::send(self, msg, deadline, SendMode::Try);
        }
        // Withdrawn on room the receiver did not fill with our message (it
        // freed the slot before it saw the offer), or on a close.
        let room_or_closed = || self.room_or_closed();
        match chan
            .handoff
            .offer_and_wait(msg, &chan.send_waiters, deadline, true, room_or_closed)
        {
            Offered::Sent => {
                // The receiver published the message at our tail, after it
                // freed the slot; the offer's `TAKEN`, which we acquired, was
                // stored after both. The head goes with the tail: the cached
                // head must stay within one capacity of the tail (`send_many`
                // relies on it). Acquire, not Relaxed: the receiver may have
                // read more messages since, and we will reuse their slots.
                self.tail
                    .set(self.at.tail(&self.chan).load(Ordering::Relaxed));
                self.head_cache
                    .set(self.at.head(&self.chan).load(Ordering::Acquire));
                Ok(())
            }
            Offered::TimedOut(msg) => Err(SendTimeoutError::Timeout(msg)),
            Offered::Back(msg) => match self.try_send_inner(msg, false) {
                Ok(()) => Ok(()),
                Err(TrySendError::Closed(m)) => Err(SendTimeoutError::Closed(m)),
                // Not reached: only this thread fills the ring, and there
                // was room. Offer again rather than assume it.
                Err(TrySendError::Full(m)) => self.send_offering(m, deadline),
            },
        }
    }

    /// The slot of our tail is free, or the channel is closing: a reason
    /// to withdraw an offer.
    fn room_or_closed(&self) -> bool {
        let chan = &*self.chan;
        let t = self.tail.get();
        let h = self.at.head(&self.chan).load(Ordering::Acquire);
        self.head_cache.set(h);
        t.wrapping_sub(h) < chan.shared.cap || !chan.shared.close.is_open_relaxed()
    }

    /// The non-waiting send. `slack`: called from a blocking send, which may
    /// pause briefly for more room when the ring is nearly full (see
    /// [`Sender::wait_for_slack`]).
    #[inline(always)]
    fn try_send_inner(&self, msg: T, slack: bool) -> Result<(), TrySendError<T>> {
        // A discarded message is dropped here, after `make_room`'s view was
        // written back (under `Block` there is none).
        self.try_send_core(msg, slack).map(drop)
    }

    /// `try_send_inner`, handing back the message a dropping policy
    /// discarded instead of dropping it.
    ///
    /// The fast path writes the message straight into its slot and
    /// nothing else touches it: with the other paths merged into one
    /// write, the message went through a stack temporary on every send
    /// (64-byte messages, capacity 1024, one CPU: 76.8 -> 85.9 M msg/s
    /// in `versus`, rtrb 82.8).
    #[inline(always)]
    fn try_send_core(&self, msg: T, slack: bool) -> Result<Option<T>, TrySendError<T>> {
        // No close check up front: `publish` re-reads the close state after
        // its barrier and takes back a message the cutoff excludes, which
        // covers a close that completed long ago as well as a racing one.
        let t = self.tail.get();
        let len = t.wrapping_sub(self.head_cache.get());
        // Not an empty ring (by the cached head, which is never ahead of
        // the real one) on one CPU: the receiver may be waiting for it.
        if len < self.room && (len != 0 || !self.chan.shared.accept) {
            // SAFETY: below `room` of the cached head (never ahead of the
            // real one), index `t` is free and ours.
            unsafe { self.at.write(&self.chan, t, msg) };
            return self.publish_one(t).map(|()| None);
        }
        // The slow path gets the message through a spill slot written on
        // this path only, and answers with a tag, not a `Result` holding a
        // message: merged with the fast path's answer, that `Result` was
        // written to memory on every send (one thread sending 64-byte
        // messages into a ring: 2.4 -> 2.1 ns a send, rtrb 1.8).
        let mut spill = Spill::new(msg);
        // On a view (see `detached`): given `&self`, this out-of-line call
        // let the handle's address escape again (since the hand-off's path
        // moved here), and a loop of `send` kept the tail in memory, stored
        // and loaded on every message. Nothing in it runs user code: a
        // message it discards comes back in the spill. `versus`, one CPU,
        // two turns with the build before: one thread sending 100,000 u64
        // then receiving them 364-398 -> 429-434 M msg/s; 64-byte messages
        // at capacity 1024 112-117 -> 121-122 (rtrb 120-122); u64 192-203
        // -> 209-211 (rtrb 190-196); one thread filling a ring of 2,000,000
        // then draining it 424-428 -> 400-401 (rtrb 490-495; a probe of
        // the same loop went 372 -> 402-406, so the code around the loop
        // decides). Running the receiver's slow paths on a view as well was
        // tried: one thread 100,000 fell to 276-278.
        // SAFETY: the spill holds the message, just made.
        let attempt = self.detached(|s| unsafe { s.try_send_room(t, &mut spill, slack) });
        // SAFETY: as `try_send_room` answered, the spill holds the message
        // it names, or none after `Sent`.
        unsafe {
            match attempt {
                Attempt::Sent => Ok(None),
                Attempt::Discarded => Ok(Some(spill.take())),
                Attempt::Full => Err(TrySendError::Full(spill.take())),
                Attempt::Closed => Err(TrySendError::Closed(spill.take())),
            }
        }
    }

    /// `try_send_core` on an empty ring with the hand-off on, or when the
    /// cached head says "full" (or `DropOldest`).
    ///
    /// # Safety
    ///
    /// `spill` holds the message to send. On return it holds the message
    /// the answer names (`Full`, `Closed`: the one to send; `Discarded`:
    /// the one a dropping policy discarded), or none (`Sent`).
    #[inline(never)]
    unsafe fn try_send_room(&self, t: usize, spill: &mut Spill<T>, slack: bool) -> Attempt {
        // SAFETY: by the caller, the spill holds the message.
        let msg = unsafe { spill.take() };
        let len = t.wrapping_sub(self.head_cache.get());
        let msg = if len < self.room {
            // An empty ring on one CPU: give the message to the receiver
            // if it accepts one.
            match self.chan.give(msg) {
                Ok(()) => return Attempt::Sent,
                Err(m) => m,
            }
        } else {
            match self.detached(|s| s.make_room(t, slack, msg)) {
                Room::Free(msg) => msg,
                Room::Done(Ok(())) => return Attempt::Sent,
                Room::Done(Err(TrySendError::Full(m))) => return spill.put(m, Attempt::Full),
                Room::Done(Err(TrySendError::Closed(m))) => return spill.put(m, Attempt::Closed),
                Room::Discard(m) => return spill.put(m, Attempt::Discarded),
            }
        };
        // SAFETY: below `room` of the cached head, or by `make_room`,
        // index `t` is free and ours.
        unsafe { self.at.write(&self.chan, t, msg) };
        match self.publish_one(t) {
            Ok(()) => Attempt::Sent,
            Err(TrySendError::Closed(m)) => spill.put(m, Attempt::Closed),
            Err(TrySendError::Full(m)) => spill.put(m, Attempt::Full),
        }
    }

    /// Publishes the message written at `t`; if a close excludes it, takes
    /// it back.
    #[inline(always)]
    fn publish_one(&self, t: usize) -> Result<(), TrySendError<T>> {
        match self.publish(t, t.wrapping_add(1)) {
            Ok(()) => Ok(()),
            // SAFETY: `publish` handed index `t` back to us: written by us,
            // never readable by the receiver (at or past the cutoff).
            Err(_) => Err(TrySendError::Closed(unsafe { self.at.read(&self.chan, t) })),
        }
    }

    /// The cached head says "full", or `DropOldest`: finds out whether the
    /// slot of `t` is free, and applies the policy if not. Never waits
    /// (beyond the brief pauses of `wait_for_slack` and `wait_slot_free`).
    #[inline(never)]
    fn make_room(&self, t: usize, slack: bool, mut msg: T) -> Room<T> {
        let chan = &*self.chan;
        let cap = chan.shared.cap;
        let mut full = false;
        if t.wrapping_sub(self.head_cache.get()) >= cap {
            // Acquire: the receiver finished reading every index below `h`.
            let h = self.at.head(&self.chan).load(Ordering::Acquire);
            self.head_cache.set(h);
            let len = t.wrapping_sub(h);
            if len == 0 && chan.shared.accept {
                match chan.give(msg) {
                    Ok(()) => return Room::Done(Ok(())),
                    Err(m) => msg = m,
                }
            }
            full = len >= cap;
            if !full
                && slack
                && cap - len < park::slack_for::<T>(cap)
                && chan.shared.overflow == Overflow::Block
            {
                self.wait_for_slack(t);
            }
        }
        if chan.shared.overflow == Overflow::DropOldest {
            self.wait_slot_free(t);
            if full {
                // SAFETY: the spare slot of `t` is free (above) and ours.
                unsafe { self.at.write(&self.chan, t, msg) };
                let result = self.publish_one(t);
                if result.is_ok() {
                    // Only now, for a send that succeeded. Dropped last, by
                    // the caller: a panicking (or re-entrant) drop finds
                    // the channel and the handle consistent.
                    if let Some(old) = self.evict_excess() {
                        return Room::Discard(old);
                    }
                }
                return Room::Done(result);
            }
        } else if full {
            // Only the path that would discard looks at the close first.
            if !chan.shared.close.is_open_relaxed() {
                return Room::Done(Err(TrySendError::Closed(msg)));
            }
            if chan.shared.overflow == Overflow::DropNewest {
                chan.count_dropped(1);
                return Room::Discard(msg);
            }
            return Room::Done(Err(TrySendError::Full(msg)));
        }
        Room::Free(msg)
    }

    /// A blocking send found the ring nearly full (less than
    /// `park::slack_for` free). Writing now would put the sender on the
    /// cache line the receiver is reading, and every later send would reload
    /// the head: both sides would miss on every message. Pausing briefly lets
    /// the receiver drain a few lines ahead, after which the sender fills
    /// them from its cached head without touching the receiver's line. The
    /// pause is bounded (a few microseconds) and never affects `try_send`,
    /// which always uses any free slot.
    #[cold]
    #[inline(never)]
    fn wait_for_slack(&self, t: usize) {
        let chan = &*self.chan;
        let want = park::slack_for::<T>(chan.shared.cap);
        park::pause_until(true, || {
            let h = self.at.head(&self.chan).load(Ordering::Acquire);
            self.head_cache.set(h);
            chan.shared.cap - t.wrapping_sub(h) >= want
        });
    }

    /// The dropping policies, after publishing: if the ring now holds one
    /// message more than the capacity, claims the oldest one and removes it
    /// (the receiver may be claiming it too; exactly one claim succeeds, and
    /// if the receiver's does, there is nothing to evict).
    #[cold]
    fn evict_excess(&self) -> Option<T> {
        let chan = &*self.chan;
        let t = self.at.tail(&self.chan).load(Ordering::Relaxed);
        loop {
            let h = self.at.head(&self.chan).load(Ordering::Acquire);
            if t.wrapping_sub(h) <= chan.shared.cap {
                self.head_cache.set(h);
                return None;
            }
            if self
                .at
                .head(&self.chan)
                .compare_exchange(h, h.wrapping_add(1), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // SAFETY: we won the claim of `h`, which is below the tail
                // we published, so its slot holds a message nobody else
                // will touch until its stamp says free.
                let old = unsafe { self.at.read(&self.chan, h) };
                // Only this thread reads stamps (`wait_slot_free`): Relaxed.
                chan.stamp(h)
                    .store(h.wrapping_add(chan.shared.mask + 1), Ordering::Relaxed);
                chan.count_dropped(1);
                self.head_cache.set(h.wrapping_add(1));
                return Some(old);
            }
        }
    }

    /// The dropping policies: waits until whoever claimed the previous
    /// occupant of `t`'s slot has finished with it. The reader is copying
    /// one message, so this wait is short and never parks.
    #[inline(always)]
    fn wait_slot_free(&self, t: usize) {
        let stamp = self.chan.stamp(t);
        // Acquire: the reader's copy out of the slot happens before our write.
        if stamp.load(Ordering::Acquire) != t {
            park::wait_brief(|| stamp.load(Ordering::Acquire) == t);
        }
    }

    /// Publishes `first..new_tail` (already written) and wakes the receiver
    /// if it is parked. If a receiver-side close raced the publication and
    /// the cutoff excludes some of these indices, rewinds the tail to the
    /// cutoff and returns it: the caller takes `cutoff..new_tail` back.
    #[inline(always)]
    fn publish(&self, first: usize, new_tail: usize) -> Result<(), usize> {
        let chan = &*self.chan;
        self.at.tail(&self.chan).store(new_tail, Ordering::Release);
        self.tail.set(new_tail);
        // One load decides the common case: nobody waits and nothing was
        // closed (every close alerts `recv_waiters` before anything else).
        if chan.recv_waiters.needs_attention() {
            return self.detached(|s| s.publish_slow(first, new_tail));
        }
        Ok(())
    }

    /// `publish` after the receiver queue asked for attention: wake the
    /// receiver if it is parked, then settle against a close.
    #[cold]
    #[inline(never)]
    fn publish_slow(&self, first: usize, new_tail: usize) -> Result<(), usize> {
        let chan = &*self.chan;
        // Also acquires the alert of any close, so the close state we load
        // next is at least `CLOSING` if the alert was the reason.
        chan.recv_waiters.notify_slow(false);
        if chan.shared.close.is_open_relaxed() {
            Ok(())
        } else {
            self.resolve_close(first, new_tail)
        }
    }

    #[cold]
    fn resolve_close(&self, first: usize, new_tail: usize) -> Result<(), usize> {
        let chan = &*self.chan;
        let cutoff = chan.shared.close.wait_cutoff();
        if !before(cutoff, new_tail) {
            return Ok(());
        }
        let keep = if before(first, cutoff) { cutoff } else { first };
        self.at.tail(&self.chan).store(keep, Ordering::Release);
        self.tail.set(keep);
        Err(keep)
    }

    /// Moves the messages of `keep..end` back out of the ring (handed back
    /// by `publish` or `resolve_close`).
    fn take_back(&self, keep: usize, end: usize, back: &mut Vec<T>) {
        let mut i = keep;
        while i != end {
            // SAFETY: the caller's `publish`/`resolve_close` handed `keep..end`
            // back to us: written by us, never readable by the receiver.
            back.push(unsafe { self.at.read(&self.chan, i) });
            i = i.wrapping_add(1);
        }
    }

    /// Sends every message of `msgs`, like a loop of [`send`](Self::send)
    /// but publishing once per batch of free slots. Returns how many
    /// messages were taken from the iterator (under `DropNewest`, discarded
    /// ones included).
    ///
    /// The result is that of the loop, also when the iterator itself calls
    /// into this channel: a message it sends while producing item `k` lands
    /// after item `k - 1` and before item `k`; a close it makes keeps the
    /// items yielded before it; a receive or `len()` it makes through the
    /// receiver finds the items yielded before. If the iterator panics,
    /// what it yielded before the panic has been sent. An iterator whose
    /// `size_hint` promises no more items (a channel's `iter()`) is asked
    /// for the next one only once the ones it gave are published.
    ///
    /// Other threads see the items of a batch together, when the batch is
    /// sent: once the iterator has given the items its `size_hint`
    /// promised (as many as there is room for), or has ended. So an iterator whose `next` waits for another thread to receive an
    /// item it already gave must not promise the items after it (let its
    /// `size_hint` say 0, or use a loop of `send`), or it waits forever.
    /// (Publishing each item before asking for the next would make this a
    /// loop of `send`, at its cost.)
    ///
    /// On close it stops and returns the messages taken but not enqueued;
    /// items the iterator has not yielded yet stay in it.
    ///
    /// ```
    /// let (tx, rx) = rillet::spsc::channel(8);
    /// assert_eq!(tx.send_many(0..5), Ok(5));
    /// let mut out = Vec::new();
    /// assert_eq!(rx.recv_many(&mut out, 10), Ok(5));
    /// assert_eq!(out, [0, 1, 2, 3, 4]);
    /// ```
    pub fn send_many<I: IntoIterator<Item = T>>(
        &self,
        msgs: I,
    ) -> Result<usize, SendError<Vec<T>>> {
        let chan = &*self.chan;
        let mut iter = msgs.into_iter();
        let mut taken = 0usize;
        if chan.shared.overflow == Overflow::DropOldest {
            // Evicting: one message at a time.
            for msg in iter {
                taken += 1;
                self.send(msg).map_err(|SendError(m)| SendError(vec![m]))?;
            }
            return Ok(taken);
        }
        // Messages written but not yet published: `run.first..end`. The
        // iterator (user code) never runs while a message taken from it is
        // half handled, and if it panics, `run` publishes what it yielded.
        let run = Run {
            pending: chan::Pending::new(chan.pending_key(), Run::<T>::flush_erased),
            tx: self,
            first: Cell::new(self.tail.get()),
        };
        // SAFETY: from the whole run (`repr(C)`, the entry first), a local
        // that stays where it is until its drop pops it; nested `send_many`
        // calls push and pop inside this one.
        unsafe { chan::Pending::push(&run as *const Run<T> as *const chan::Pending) };
        let cap = chan.shared.cap;
        let dropping = chan.shared.overflow == Overflow::DropNewest;
        // Kept in locals: the loop's stores (the tail, `written`) could
        // otherwise alias them and force a reload per message.
        let (slots, mask) = (self.at.ring(&self.chan), chan.shared.mask);
        // Items the iterator still promises (`size_hint`'s lower bound):
        // asked for before the run is published. An iterator that promises
        // none is asked for its next item only once the run is out.
        let mut promised = 0usize;
        let end = 'batch: loop {
            let mut end = self.tail.get();
            // The run may grow up to `limit` (exclusive) without a look at
            // the head.
            let mut limit = self.head_cache.get().wrapping_add(cap);
            if end == limit {
                self.head_cache
                    .set(self.at.head(&self.chan).load(Ordering::Acquire));
                limit = self.head_cache.get().wrapping_add(cap);
                if end == limit {
                    // Full: publish before running the iterator, whose own
                    // sends would otherwise wait for a receiver that cannot
                    // see the run.
                    run.settle(end).map_err(SendError)?;
                }
            }
            loop {
                if promised == 0 && end != run.first.get() {
                    promised = iter.size_hint().0;
                    if promised == 0 {
                        // The iterator promises no more items: it may wait
                        // for the next one (a channel's `iter()`). Publish
                        // what it gave first, as the loop had sent it.
                        run.settle(end).map_err(SendError)?;
                        continue 'batch;
                    }
                }
                // A close that the iterator makes through the receiver
                // counts the run as sent before it.
                chan.written.store(end, Ordering::Relaxed);
                let Some(msg) = iter.next() else {
                    break 'batch end;
                };
                taken += 1;
                promised = promised.saturating_sub(1);
                if self.tail.get() == end && end != limit && chan.shared.close.is_open_relaxed() {
                    // SAFETY: `end` is below `limit`, the cached head (never
                    // ahead of the real one) plus the capacity: index `end`
                    // is free and ours.
                    unsafe {
                        let slot = slots.get_unchecked(end & mask);
                        slot.with_mut(|p| p.write(MaybeUninit::new(msg)));
                    }
                    end = end.wrapping_add(1);
                    self.tail.set(end);
                    if end == limit {
                        // Look at the head again before the iterator runs
                        // (and publish the run if the ring is full).
                        continue 'batch;
                    }
                    continue;
                }
                if dropping
                    && self.tail.get() == end
                    && end == limit
                    && chan.shared.close.is_open_relaxed()
                {
                    // Full under `DropNewest` (the run went out when it
                    // filled the ring): look at the head again, as `send`
                    // does, and drop the message as it does if there is
                    // still no room. (A loop of `send` paid a call through
                    // its slow path for each: 84 M msg/s on a full ring
                    // against 66 for this loop before, when it sent each
                    // the ordinary way.)
                    self.head_cache
                        .set(self.at.head(&self.chan).load(Ordering::Acquire));
                    if self.head_cache.get().wrapping_add(cap) == end {
                        chan.count_dropped(1);
                        drop(msg);
                        continue;
                    }
                }
                // Re-entered (the iterator sent on this channel), closed, or
                // full: settle the run, then send this one the ordinary way
                // (it waits for room, or fails).
                if let Err(mut back) = run.settle(end) {
                    back.push(msg);
                    return Err(SendError(back));
                }
                self.send(msg).map_err(|SendError(m)| SendError(vec![m]))?;
                run.first.set(self.tail.get());
                continue 'batch;
            }
        };
        run.settle(end).map(|()| taken).map_err(SendError)
    }

    /// Sends a final message and closes the channel in one step: the
    /// receiver gets `msg` after everything sent before it, then `Closed`.
    ///
    /// The final message always goes in: under `Block` this waits for room;
    /// on a full `DropNewest` or `DropOldest` channel the oldest buffered
    /// message is evicted (and counted in `dropped()`). A successful
    /// `close_with` is the closing call: a racing `close` returns `false`.
    /// Fails (handing `msg` back) if the channel is already closed.
    ///
    /// ```
    /// let (tx, rx) = rillet::spsc::channel(4);
    /// tx.send("work").unwrap();
    /// tx.close_with("done").unwrap();
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), ["work", "done"]);
    /// ```
    pub fn close_with(self, msg: T) -> Result<(), SendError<T>> {
        chan::send(&self, msg, None, SendMode::Last).map_err(|e| SendError(e.into_inner()))
    }

    /// `close_with`'s attempt: `Full` under `Block` without room (the wait
    /// loop retries), `Closed` if the channel is already closed.
    fn try_close_with(&self, msg: T) -> Result<(), TrySendError<T>> {
        let chan = &*self.chan;
        let t = self.tail.get();
        if !chan.shared.claiming {
            if !chan.shared.close.is_open_relaxed() {
                return Err(TrySendError::Closed(msg));
            }
            self.head_cache
                .set(self.at.head(&self.chan).load(Ordering::Acquire));
            if t.wrapping_sub(self.head_cache.get()) >= chan.shared.cap {
                return Err(TrySendError::Full(msg));
            }
        }
        if !chan.begin_close() {
            return Err(TrySendError::Closed(msg));
        }
        // We won the close; the receiver treats CLOSING as open and cannot
        // take the close from us. Under `Block` room persists (we are the
        // only producer); under the dropping policies the spare slot is free
        // once its previous reader is done, even when the ring is full.
        if chan.shared.claiming {
            self.wait_slot_free(t);
        }
        // SAFETY: index `t` is free (above) and ours.
        unsafe { self.at.write(&self.chan, t, msg) };
        let end = t.wrapping_add(1);
        self.at.tail(&self.chan).store(end, Ordering::Release);
        self.tail.set(end);
        chan.shared.close.finish(end);
        // A full ring now holds one message too many: the oldest goes. Its
        // drop runs last, when the close is complete.
        let evicted = if chan.shared.claiming {
            self.evict_excess()
        } else {
            None
        };
        chan.wake_all();
        drop(evicted);
        Ok(())
    }

    introspection_methods!("spsc", "tx");
}

/// Messages `send_many` has written from `first` on but not yet published.
/// If the iterator panics, dropping the run publishes them, as a loop of
/// `send` would have sent them. Registered on the thread while it exists
/// (`chan::Pending`): a receive that the iterator makes on this channel
/// publishes it first ([`flush_erased`](Self::flush_erased)).
#[repr(C)]
struct Run<'a, T> {
    /// First (`repr(C)`): the thread's list links runs and batches through
    /// their entries.
    pending: chan::Pending,
    tx: &'a Sender<T>,
    first: Cell<usize>,
}

impl<'a, T: 'a> Run<'a, T> {
    /// Publishes the run `first..end` (unless a re-entrant send already
    /// did), settles it against a close, and starts a new one at the
    /// sender's tail. `Err` holds the messages a close excluded, in order.
    fn settle(&self, end: usize) -> Result<(), Vec<T>> {
        let (tx, first) = (self.tx, self.first.get());
        let result = if first == end {
            Ok(())
        } else if tx.tail.get() == end {
            tx.publish(first, end)
        } else if tx.chan.shared.close.is_open_relaxed() {
            // A re-entrant send wrote after the run and published both.
            Ok(())
        } else {
            // ... and the channel was closed meanwhile: the cutoff decides.
            tx.resolve_close(first, end)
        };
        self.first.set(tx.tail.get());
        result.map_err(|keep| {
            let mut back = Vec::new();
            tx.take_back(keep, end, &mut back);
            back
        })
    }

    /// A receive, `len()` or select readiness of this thread found the
    /// channel short while the iterator runs: publishes the run written so
    /// far (`written`, stored before each call of the iterator), as a loop
    /// of `send` had sent it. `true` if it published anything. If a close
    /// excludes part of it (`publish` rewinds the tail), the run stays as
    /// it is, and `send_many` settles it when the iterator returns.
    ///
    /// # Safety
    ///
    /// `head` points to a live, registered `Run<T>` (its first field).
    unsafe fn flush_erased(head: *const chan::Pending, _wait: bool) -> bool {
        // SAFETY: the caller's contract; `repr(C)` puts the entry first.
        let run = unsafe { &*(head as *const Self) };
        let (tx, first) = (run.tx, run.first.get());
        let end = tx.chan.written.load(Ordering::Relaxed);
        // Nothing written since the last publication, or a re-entrant send
        // already published the run with its own message.
        if !before(first, end) || tx.tail.get() != end {
            return false;
        }
        if tx.publish(first, end).is_err() {
            return false;
        }
        run.first.set(end);
        true
    }
}

impl<T> Drop for Run<'_, T> {
    /// Reached with a run only when the iterator panicked: the run ends
    /// where `written` says (stored before each call of the iterator). A
    /// settled run has `first` at or past that: nothing to do.
    fn drop(&mut self) {
        let written = self.tx.chan.written.load(Ordering::Relaxed);
        if before(self.first.get(), written) {
            // The messages a close excluded are dropped here.
            drop(self.settle(written));
        }
        self.pending.pop();
    }
}

impl<T> Drop for Sender<T> {
    /// On a view, out of line, as the receiver's (see its `drop`).
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(not(loom))]
        self.view().drop_view();
        #[cfg(loom)]
        self.drop_view();
    }
}

impl<T> Sender<T> {
    #[inline(never)]
    fn drop_view(&self) {
        self.close();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("spsc::Sender { .. }")
    }
}

impl<T> Receiving for Receiver<T> {
    type Msg = T;
    type Error = TryRecvError;

    #[inline(always)]
    fn try_recv_as(&self) -> Result<T, TryRecvError> {
        let h = self.head.get();
        if h == self.tail_cache.get() {
            return self.try_recv_refresh();
        }
        // SAFETY: `h` is below the cached tail, which we acquired (and which
        // is below any cutoff); when claiming the two are always equal.
        Ok(unsafe { self.take(h) })
    }

    fn recv_queue(&self) -> &WaitQueue {
        &self.chan.recv_waiters
    }

    /// A quiet receiver (see `Builder::build_with`) never spins, and
    /// yields longer before it parks (`park::Pace::Quiet`).
    fn recv_pace(&self) -> park::Pace {
        if self.chan.shared.quiet {
            park::Pace::Quiet
        } else {
            park::Pace::Spin
        }
    }

    fn before_recv_wait(&self) {
        self.wait_for_batch();
    }
}

/// Where `recv`'s slow path found the message (see `recv_blocking`).
#[derive(Clone, Copy)]
enum Found {
    /// At our head, below the cached tail (not claiming).
    Head,
    /// At this index, which we claimed (claiming policies).
    Claimed(usize),
    /// In the hand-off's accept cell, filled by the sender.
    Cell,
}

impl<T> Receiver<T> {
    receiver_methods!("spsc", RecvError, TryRecvError, RecvTimeoutError);

    /// `recv`: the fast path of `try_recv`, and everything else in one
    /// out-of-line call that finds *where* the message is (our head slot,
    /// a slot we claimed, or the hand-off's accept cell) without reading
    /// it. The message is then read at one place, whichever path found it,
    /// straight to where the caller wants it. (Written as `try_recv` then a
    /// wait, the fast path's message went through two temporaries to meet
    /// the slow paths': a 64-byte message was copied four times per `recv`;
    /// with the slow path returning the message, three times; rtrb's `pop`
    /// copies it twice, and so does this.)
    #[inline(always)]
    fn recv_blocking(&self) -> Result<T, RecvError> {
        let found = if self.head.get() != self.tail_cache.get() {
            Found::Head
        } else {
            self.recv_slow()?
        };
        let chan = &*self.chan;
        let cell = match found {
            Found::Head => self.at.slot(&self.chan, self.head.get()),
            Found::Claimed(h) => self.at.slot(&self.chan, h),
            Found::Cell => chan.accept.cell(),
        };
        // SAFETY: `Head`: our head is below the cached tail, which we
        // acquired (and which is below any cutoff), and we are the only
        // reader (not claiming); `Claimed(h)`: we won the claim of `h`,
        // below an acquired tail, and nobody touches its slot until we
        // store its stamp; `Cell`: `disarm_in_place` found the cell filled,
        // and nobody else acts on it until we arm it again. In each case
        // the message is initialized and read once, here.
        let msg = cell.with(|p| unsafe { p.read().assume_init() });
        match found {
            Found::Head => self.passed(self.head.get()),
            Found::Claimed(h) => chan.release_claimed(h),
            Found::Cell => chan.accept.emptied(),
        }
        Ok(msg)
    }

    /// `recv` when the cached tail says "empty": where the message is, once
    /// there is one (`Err` once the channel is closed and drained).
    #[inline(never)]
    fn recv_slow(&self) -> Result<Found, RecvError> {
        chan::recv_with(self, None, || self.locate()).map_err(|_| RecvError)
    }

    /// A copy of this handle for its drop (see [`Receiver::drop`]).
    #[cfg(not(loom))]
    #[inline(always)]
    fn view(&self) -> std::mem::ManuallyDrop<Receiver<T>> {
        std::mem::ManuallyDrop::new(Receiver {
            // SAFETY: an alias without a count of its own, never dropped
            // (the view is `ManuallyDrop`): a borrow of the channel, which
            // `self` keeps alive while the view is used.
            chan: unsafe { self.chan.alias() },
            head: Cell::new(self.head.get()),
            tail_cache: Cell::new(self.tail_cache.get()),
            claim_tail: Cell::new(self.claim_tail.get()),
            cutoff: Cell::new(self.cutoff.get()),
            caught_up: Cell::new(self.caught_up.get()),
            sender_idle: Cell::new(self.sender_idle.get()),
            batch: self.batch,
            at: self.at,
        })
    }

    /// One attempt of `recv_slow`: `try_recv` (with the hand-off's accept
    /// cell, as `recv_accepting`'s attempt) without the read.
    fn locate(&self) -> Result<Found, TryRecvError> {
        let chan = &*self.chan;
        if !chan.shared.accept {
            return self.locate_in_ring();
        }
        chan.accept
            .attempt_with(|| Found::Cell, || self.locate_in_ring())
    }

    /// [`locate`](Self::locate) in the ring alone.
    #[inline]
    fn locate_in_ring(&self) -> Result<Found, TryRecvError> {
        if self.chan.shared.claiming {
            return self.claim().map(Found::Claimed);
        }
        let h = self.head.get();
        if h != self.tail_cache.get() || h != self.refresh_tail()? {
            Ok(Found::Head)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    #[inline(always)]
    fn try_recv_now(&self) -> Result<T, TryRecvError> {
        self.try_recv_as()
    }

    #[inline]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        if self.chan.shared.accept {
            return self.recv_accepting(deadline);
        }
        chan::recv_with(self, deadline, || self.try_recv_as())
    }

    /// A blocking receive with direct hand-off (one CPU): while the ring is
    /// empty, accepts a message in the channel's accept cell, which the
    /// sender fills instead of the ring (see "Direct hand-off").
    #[cold]
    #[inline(never)]
    fn recv_accepting(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let accept = &self.chan.accept;
        let got = chan::recv_with(self, deadline, || accept.attempt(|| self.try_recv_as()));
        accept.finish(got)
    }

    /// `try_recv` when the cached tail says "empty", or under `DropOldest`.
    #[inline(never)]
    fn try_recv_refresh(&self) -> Result<T, TryRecvError> {
        if self.chan.shared.claiming {
            return self.try_recv_claiming();
        }
        let h = self.head.get();
        if h == self.refresh_tail()? {
            return Err(TryRecvError::Empty);
        }
        // SAFETY: `h` is below the tail we just acquired (and any cutoff).
        Ok(unsafe { self.take(h) })
    }

    /// Takes the message at our head and passes it (`Block`: a claiming
    /// receiver's cached tail stays equal to its head, so it never gets
    /// here).
    ///
    /// # Safety
    ///
    /// `h` is our head and below a tail we acquired, and below any cutoff:
    /// its slot holds a published message, and we are the only reader.
    #[inline(always)]
    unsafe fn take(&self, h: usize) -> T {
        // SAFETY: guaranteed by the caller.
        let msg = unsafe { self.at.read(&self.chan, h) };
        self.passed(h);
        msg
    }

    /// After reading the message at our head `h` (`Block` only, see
    /// `take`): frees its slot and tells a waiting sender. (Until
    /// 2026-12-06 it tested the policy first, a branch per message that
    /// only `Block` ever reached; removing it changed no measurement.)
    #[inline(always)]
    fn passed(&self, h: usize) {
        debug_assert!(!self.chan.shared.claiming);
        let next = h.wrapping_add(1);
        self.at.head(&self.chan).store(next, Ordering::Release);
        self.head.set(next);
        self.prefetch_ahead(next);
        self.notify_sender();
    }

    /// A receiver far behind the sender (by its cached tail, more than
    /// [`READ_AHEAD_BYTES`] and a line of messages) prefetches the message
    /// that many bytes on (`ring::prefetch_for_read`): each message's line
    /// then no longer waits for the sender's core when the receiver reaches
    /// it. Not closer than that: the sender may still be writing the line.
    /// Two CPUs, capacity 1024, a probe of `versus`'s loop (medians of 5
    /// runs, in turns with the build before): 32-byte messages 118 -> 175-190
    /// M msg/s, 64-byte 65 -> 106-130, 128-byte 45 -> 72 (256 bytes ahead
    /// did less, 1024 no better); `versus`'s 64-byte row 60-64 -> 116-127
    /// (rtrb 57-67). Only where `Shared::read_ahead` says so (see
    /// [`READ_AHEAD_MIN_SIZE`]); never for a claiming receiver, whose
    /// cached tail equals its head.
    #[inline(always)]
    fn prefetch_ahead(&self, head: usize) {
        let size = std::mem::size_of::<T>().max(1);
        let ahead = (READ_AHEAD_BYTES / size).max(1);
        // Messages a line holds: small ones are prefetched once a line.
        let line = (64 / size).max(1);
        // The size test repeats the flag's, at compile time: a small
        // message's `recv` keeps no trace of this.
        if size >= READ_AHEAD_MIN_SIZE
            && self.chan.shared.read_ahead
            && head % line == 0
            && self.tail_cache.get().wrapping_sub(head) > ahead + line
        {
            crate::ring::prefetch_for_read(self.at.slot(&self.chan, head.wrapping_add(ahead)));
        }
    }

    /// After freeing slots (`Block`): wakes the sender if it waits for
    /// room, first completing its send if it offered its message.
    #[inline(always)]
    fn notify_sender(&self) {
        if self.chan.send_waiters.needs_attention() {
            self.notify_sender_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn notify_sender_slow(&self) {
        let chan = &*self.chan;
        if !(chan.shared.handoff && self.take_offer()) {
            chan.send_waiters.notify_slow(false);
        }
    }

    /// Direct hand-off: if the sender has a message on offer and the ring
    /// has room, moves it into the ring, publishes it and completes that
    /// send. `false` if there was no offer to take.
    fn take_offer(&self) -> bool {
        let chan = &*self.chan;
        // Not once closed: the message would land at or past the cutoff,
        // and its send would report `Ok`. A close cannot race us: only the
        // receiver closes while the sender is inside `send` (`Sender` is not
        // `Sync`), and we are the receiver.
        if !chan.shared.close.is_open_relaxed() {
            return false;
        }
        chan.handoff.take_with(&chan.send_waiters, |msg| {
            // The claim acquired the tail the sender published before
            // offering; it does not move while the offer is out (the sender
            // withdraws before it sends on its own).
            let t = self.at.tail(&self.chan).load(Ordering::Relaxed);
            // The slot we freed may be taken already: the sender saw the
            // room, withdrew its offer, sent on its own and offered its
            // next message before we looked. That offer waits for the next
            // slot we free.
            if t.wrapping_sub(self.head.get()) >= chan.shared.cap {
                return Err(msg);
            }
            // SAFETY: index `t` is below our head plus the capacity, so its
            // slot is free; the sender does not write while its offer is
            // out, so the slot and the tail are ours until we complete.
            unsafe { self.at.write(&self.chan, t, msg) };
            self.at
                .tail(&self.chan)
                .store(t.wrapping_add(1), Ordering::Release);
            Ok(())
        })
    }

    /// Reloads the tail (clamped to the cutoff once closed) into the cache.
    /// If nothing is available, finds out whether the channel is closed:
    /// `Err(Closed)` once closed and drained, otherwise `Ok(tail)`.
    #[inline]
    fn refresh_tail(&self) -> Result<usize, TryRecvError> {
        let t = self.load_tail();
        if before(self.current_head(), t) {
            return Ok(t);
        }
        self.empty_or_closed(t)
    }

    #[inline(always)]
    fn load_tail(&self) -> usize {
        let mut t = self.at.tail(&self.chan).load(Ordering::Acquire);
        let mut cutoff = self.cutoff.get();
        if cutoff.is_none() && !self.chan.shared.close.is_open_relaxed() {
            cutoff = self.learn_cutoff();
        }
        if let Some(cutoff) = cutoff {
            if before(cutoff, t) {
                t = cutoff;
            }
        }
        if self.chan.shared.claiming {
            self.claim_tail.set(t);
        } else {
            self.tail_cache.set(t);
        }
        t
    }

    /// The channel is closing: its cutoff once the close is complete
    /// (`Acquire`), remembered from then on. A tail loaded before this is
    /// always to be clamped: a sender that closed and then sends publishes
    /// its message past the cutoff for a moment before it takes it back
    /// (its close happened before that tail store, so a receiver that
    /// acquired the tail sees the close complete). A close still under way
    /// is the sender's own (a receiver-side close is this thread's), and
    /// every tail published before it began is below its cutoff.
    #[cold]
    #[inline(never)]
    fn learn_cutoff(&self) -> Option<usize> {
        let cutoff = self.chan.shared.close.cutoff();
        if cutoff.is_some() {
            self.cutoff.set(cutoff);
        }
        cutoff
    }

    /// Nothing below `t` to receive: `Err(Closed)` if the channel is closed
    /// and drained, otherwise `Ok(t)` (empty).
    #[cold]
    fn empty_or_closed(&self, t: usize) -> Result<usize, TryRecvError> {
        // A `send_many` of this thread, whose iterator receives: its run is
        // published first (a loop of `send` had sent it; see `Run`).
        if chan::flush_batches(self.chan.pending_key(), false) {
            let t = self.load_tail();
            if before(self.current_head(), t) {
                return Ok(t);
            }
        }
        let cutoff = match self.cutoff.get() {
            Some(cutoff) => cutoff,
            None => {
                let Some(cutoff) = self.chan.shared.close.cutoff() else {
                    return Ok(t);
                };
                self.cutoff.set(Some(cutoff));
                // Messages published before the close may have landed after
                // our first tail load: look again, clamped to the cutoff.
                let t = self.load_tail();
                if before(self.current_head(), t) {
                    return Ok(t);
                }
                cutoff
            }
        };
        // Drained only at the cutoff: below it, a `send_many` run that a
        // close counted may still be on its way (its sender publishes it).
        if self.current_head() == cutoff {
            Err(TryRecvError::Closed)
        } else {
            Ok(t)
        }
    }

    #[inline(always)]
    fn current_head(&self) -> usize {
        if self.chan.shared.claiming {
            self.at.head(&self.chan).load(Ordering::Acquire)
        } else {
            self.head.get()
        }
    }

    /// The dropping policies: claims the oldest message with a
    /// compare-exchange (the sender may be evicting it).
    fn try_recv_claiming(&self) -> Result<T, TryRecvError> {
        let h = self.claim()?;
        let chan = &*self.chan;
        // SAFETY: we won the claim of `h`, below the acquired tail: its
        // slot is initialized and, until we store its stamp, nobody else
        // touches it.
        let msg = unsafe { self.at.read(&self.chan, h) };
        chan.release_claimed(h);
        Ok(msg)
    }

    /// Claims the message at the shared head (claiming policies): its
    /// index, which is ours to read until
    /// [`release_claimed`](Chan::release_claimed).
    fn claim(&self) -> Result<usize, TryRecvError> {
        loop {
            let h = self.at.head(&self.chan).load(Ordering::Acquire);
            let mut t = self.claim_tail.get();
            if !before(h, t) {
                t = self.refresh_tail()?;
                if !before(h, t) {
                    // Raced an eviction between our loads: retry.
                    if h == t {
                        return Err(TryRecvError::Empty);
                    }
                    continue;
                }
            }
            if self
                .at
                .head(&self.chan)
                .compare_exchange(h, h.wrapping_add(1), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(h);
            }
        }
    }

    /// A blocking receive found the ring empty, or the last `recv_many`
    /// left fewer than a batch (`Receiver::batch`): pause (a few
    /// microseconds at most; yielding if the channel is quiet, see
    /// `Builder::build_with`) until `park::slack_for` messages wait, or the
    /// channel closes. Taking
    /// each message the moment it is published would put the receiver on
    /// the line the sender is writing, message after message (the mirror
    /// of the sender's `wait_for_slack`).
    #[cold]
    #[inline(never)]
    fn wait_for_batch(&self) {
        let chan = &*self.chan;
        let want = self.batch;
        if want < 2 || chan.shared.claiming {
            return;
        }
        let h = self.head.get();
        let known = self.tail_cache.get();
        // Messages left by a `recv_many` cut at its `max` (none when we
        // caught up): worth a pause only while the sender writes more. If
        // its first look finds the tail where the run left it, the sender
        // is idle (or is this thread: one thread that sends and then
        // receives paused a few microseconds at each such call, 1100 ->
        // 190 M msg/s in calls of 64); it takes the leftovers at once, and
        // so does every later such call until a pause sees the tail move
        // between two looks. (Looking before the pause's first spin
        // instead gave back a part of the gain, capacity 256 245-261 ->
        // 187: a look at the tail takes its line from the sender.)
        let leftovers = known != h;
        let enough = |t: usize| t.wrapping_sub(h) >= want || !chan.shared.close.is_open_relaxed();
        if self.sender_idle.get()
            && (leftovers || enough(self.at.tail(&self.chan).load(Ordering::Relaxed)))
        {
            // An idle sender, or one thread that sends and then receives:
            // the batch is there already (without the look, one thread's
            // first call after its sends spun before it took them), or
            // nothing more is coming soon.
            return;
        }
        let (mut looks, mut last) = (0u32, known);
        let (mut idle, mut moved) = (false, false);
        let ready = || {
            let t = self.at.tail(&self.chan).load(Ordering::Relaxed);
            looks += 1;
            moved |= looks > 1 && t != last;
            last = t;
            if leftovers && looks == 1 && t == known {
                // Nothing written since the run: take the leftovers now.
                idle = true;
                return true;
            }
            enough(t)
        };
        if chan.shared.quiet {
            park::pause_quietly(ready);
        } else {
            park::pause_until(true, ready);
        }
        if idle {
            self.sender_idle.set(true);
        } else if moved {
            self.sender_idle.set(false);
        }
    }

    /// Waits for at least one message, then appends up to `max` buffered
    /// messages to `buf` in one batch (one index update, one wake-up check).
    /// Returns how many it appended; `Ok(0)` only when `max` is 0.
    ///
    /// ```
    /// let (tx, rx) = rillet::spsc::channel(8);
    /// tx.send_many(0..5).unwrap();
    /// let mut buf = Vec::new();
    /// assert_eq!(rx.recv_many(&mut buf, 3), Ok(3));
    /// assert_eq!(rx.recv_many(&mut buf, 10), Ok(2));
    /// assert_eq!(buf, [0, 1, 2, 3, 4]);
    /// drop(tx);
    /// assert!(rx.recv_many(&mut buf, 10).is_err()); // closed and drained
    /// ```
    pub fn recv_many(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        if max == 0 {
            return Ok(0);
        }
        // A pending run of this thread is in the channel for a loop of
        // `send`, also behind messages already there (see
        // `empty_or_closed`).
        chan::flush_batches(self.chan.pending_key(), false);
        if self.caught_up.get() {
            // The previous run took every message there was: pause for a
            // batch first, as a loop of `recv` does when it catches up,
            // rather than take the one or two written since, on the line
            // the sender is writing. (As MPSC's `recv_many`. Two CPUs
            // pinned, a loop of `send` against `recv_many` in calls of 256,
            // medians of 5 in turns with the build before: capacity 64,
            // 40 -> 97 M msg/s (a loop of `recv`: 52-60); 1024, 217 -> 354
            // (326-329); 16, 36 -> 45 (35-37); `send_many` against
            // `recv_many` as before or better.)
            self.wait_for_batch();
        }
        let got = chan::recv_with(self, None, || self.try_recv_many(buf, max));
        self.caught_up.set(match got {
            Ok(n) if n < max => true,
            // A run cut at `max` that left fewer than a batch behind (but
            // some), by the tail it knows: the next call pauses too, for
            // the batch after them (see `wait_for_batch`), rather than
            // take those few and the ones the sender is writing next to
            // them. Two CPUs pinned, u64, a loop of `send` against
            // `recv_many` in calls of 64, medians of 7 in turns with the
            // build before: capacity 1024, 253-262 -> 340-342 M msg/s (a
            // loop of `recv`: 314-320), 256, 166-168 -> 245-261; capacity
            // 64 and calls of 256 level; `send_many` against `recv_many`
            // 2-4% lower, inside the runs' spread; one thread, 1000 in
            // then out, calls of 16 and 64, within 3%. Pausing also when
            // none are left (`send_many` publishes whole batches, so a
            // run often ends at the tail) took `send_many` against
            // `recv_many` down 8-12%.
            Ok(_) => {
                let left = self.tail_cache.get().wrapping_sub(self.head.get());
                left != 0 && left < self.batch
            }
            Err(_) => false,
        });
        got.map_err(|_| RecvError)
    }

    fn try_recv_many(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, TryRecvError> {
        if self.chan.shared.claiming {
            // Claims one at a time: the sender may be evicting.
            let mut n = 0;
            while n < max {
                match self.try_recv_claiming() {
                    Ok(msg) => buf.push(msg),
                    Err(e) if n == 0 => return Err(e),
                    Err(_) => break,
                }
                n += 1;
            }
            return Ok(n);
        }
        let chan = &*self.chan;
        let h = self.head.get();
        let mut t = self.tail_cache.get();
        if t.wrapping_sub(h) < max {
            t = self.refresh_tail()?;
            if t == h {
                return Err(TryRecvError::Empty);
            }
        }
        let n = t.wrapping_sub(h).min(max);
        buf.reserve(n);
        let (slots, mask) = (self.at.ring(&self.chan), chan.shared.mask);
        // The run is freed a quarter of the ring at a time (but at least
        // `MIN_BATCH` messages), not only at its end, as MPSC's does: the
        // sender waiting for room refills that part while the rest is read.
        let chunk = ((mask + 1) / 4).max(chan::MIN_BATCH);
        // On one CPU each part is moved with at most two copies of
        // contiguous slots (`move_run`), not a message at a time. (Either
        // way is correct on any number of CPUs: the run is below the tail
        // we acquired, and the sender writes none of it until we publish
        // the head. The choice is speed: on one CPU no sender writes next
        // to the run while we copy it.) Pinned to one CPU, u64,
        // capacity 1024, medians of 5 in turns with the build before: one
        // thread, 1000 messages in then out, the receive phase in calls of
        // 16, 64 and 256, 860 -> 1279, 1184 -> 2657 and 1434 -> 3690 M
        // msg/s (a loop of `recv`: 1090-1150); a loop of `send` on another
        // thread against `recv_many` in calls of 256, 356 -> 430, and
        // `send_many` against it 344 -> 398 (capacity 256: 153 -> 166 and
        // 153 -> 158; 16 and 64 level); `versus` pinned, "spsc cap 1024,
        // batches of 256", 329-332 -> 374-405. With two CPUs the copies were
        // measured too and not kept: a receiver that fast catches up with
        // a sender writing alongside more often, and the loop of `send`
        // against `recv_many` fell at capacity 256 from 289 to 225 and at
        // 1024 from 359 to 336 (copying only full runs; copying every run,
        // 1024 fell to 226). Nor does the loop below write into reserved
        // room with the length set once per part (2026-12-06): one thread,
        // two CPUs, calls of 16 735 -> 1025 M msg/s (a loop of `recv`
        // 950), 64 950 -> 1616, but a loop of `send` against it, pinned,
        // capacity 256 270 -> 170 and 1024 340 -> 302 (loops of both: 180-210
        // and 280-320).
        // With two CPUs the copies are made while the sender is idle
        // (`sender_idle`: a pause after a run cut at `max` found the tail
        // where the run had left it, and none has seen it move since), as
        // in one thread that sends and then receives: no sender writes
        // next to the run then either. Two CPUs pinned, u64, capacity
        // 1024, medians of 5 in turns with the build before: one thread,
        // 1000 in then out, calls of 16 715 -> 1020 M msg/s, 64 1045 ->
        // 2220 (a loop of `recv`: 1050-1110), 256 unchanged (1340: its
        // calls leave a batch or none behind, so no pause finds the sender
        // idle); a loop of `send` or `send_many` on another thread against
        // it level (capacity 256 and 1024, calls of 64 and 256). With the
        // idle sender's batch taken without a pause (`wait_for_batch`):
        // calls of 16 1100 -> 1200, 64 2340 -> 2850 (the loop 1000-1080),
        // the two-thread runs level.
        #[cfg(not(loom))]
        let copies = park::single_core() || self.sender_idle.get();
        let mut k = 0;
        loop {
            let end = (k + chunk).min(n);
            #[cfg(not(loom))]
            if copies {
                // SAFETY: `h..h+n` is below the acquired tail (and cutoff),
                // so those slots hold messages, and we are the only reader;
                // `reserve` made room for the `n - k` messages not yet
                // moved.
                unsafe { move_run(slots, mask, h.wrapping_add(k), end - k, buf) };
                k = end;
            }
            while k < end {
                // SAFETY: `h..h+n` is below the acquired tail (and cutoff),
                // so those slots hold messages; we are the only reader, and
                // `reserve` made the pushes infallible; `& mask` is in
                // bounds.
                buf.push(unsafe {
                    let slot = slots.get_unchecked(h.wrapping_add(k) & mask);
                    slot.with(|p| p.read().assume_init())
                });
                k += 1;
            }
            if k == n {
                break;
            }
            self.at
                .head(&self.chan)
                .store(h.wrapping_add(k), Ordering::Release);
            if chan.shared.overflow == Overflow::Block {
                self.notify_sender();
            }
        }
        let next = h.wrapping_add(n);
        self.at.head(&self.chan).store(next, Ordering::Release);
        self.head.set(next);
        if chan.shared.overflow == Overflow::Block {
            self.notify_sender();
        }
        Ok(n)
    }

    introspection_methods!("spsc", "rx");
}

/// Moves the `n` messages of the ring `slots` (`mask + 1` of them) from
/// index `from` on into the room `buf` has past its length, and sets its
/// length: at most two copies of contiguous slots (up to the ring's end,
/// then from its start). See `Receiver::try_recv_many`.
///
/// # Safety
///
/// The `n` slots from `from` hold messages that the caller owns and from
/// then on treats as moved out; `buf` has room for `n` more.
#[cfg(not(loom))]
#[inline(always)]
unsafe fn move_run<T>(
    slots: &[UnsafeCell<MaybeUninit<T>>],
    mask: usize,
    from: usize,
    n: usize,
    buf: &mut Vec<T>,
) {
    debug_assert_eq!(slots.len(), mask + 1);
    debug_assert!(n <= mask + 1 && buf.capacity() - buf.len() >= n);
    let start = from & mask;
    let first = n.min(mask + 1 - start);
    let len = buf.len();
    // Our `UnsafeCell`, std's and `MaybeUninit` are `repr(transparent)`:
    // the slots are `mask + 1` contiguous `T`s, and a pointer taken from
    // the whole slice may reach each of them.
    let src = slots.as_ptr().cast::<T>();
    // SAFETY: `start + first <= mask + 1` and `n - first <= start`, so both
    // ranges are within the slots and do not overlap; the destination is
    // the room `buf` has past its length (guaranteed by the caller), which
    // no slot overlaps; each message is read once, and the caller owns it
    // and treats its slot as emptied, so it is moved, not duplicated.
    unsafe {
        let dst = buf.as_mut_ptr().add(len);
        std::ptr::copy_nonoverlapping(src.add(start), dst, first);
        std::ptr::copy_nonoverlapping(src, dst.add(first), n - first);
        buf.set_len(len + n);
    }
}

impl<T> Handle for Sender<T> {
    type Core = Chan<T>;

    fn core(&self) -> &Chan<T> {
        &self.chan
    }

    /// A sender-side close: the sender is the only producer, so its own
    /// tail is the cutoff (no barrier needed).
    fn close(&self) -> bool {
        let chan = &*self.chan;
        if !chan.begin_close() {
            return false;
        }
        chan.shared.close.finish(self.tail.get());
        chan.wake_all();
        true
    }
}

impl<T> Handle for Receiver<T> {
    type Core = Chan<T>;

    fn core(&self) -> &Chan<T> {
        &self.chan
    }

    fn close(&self) -> bool {
        self.close_here(true)
    }
}

impl<T> Receiver<T> {
    /// A close from this receiver (`exact`: see `Chan::close_from_receiver`).
    fn close_here(&self, exact: bool) -> bool {
        if !self.chan.close_from_receiver(exact) {
            return false;
        }
        // From now on read nothing at or past the cutoff: a sender that
        // raced the close may publish a message there for a moment before
        // it takes it back.
        self.cutoff.set(self.chan.shared.close.cutoff());
        true
    }
}

impl<T> Drop for Receiver<T> {
    /// Inlined, running the drop out of line on a copy of the handle (a
    /// view). Given the handle's address, an out-of-line drop lets that
    /// address escape, and the compiler then assumes that any opaque code
    /// in the owner's loops (a slow path's call, `black_box`) may change
    /// the handle: those loops keep its indices in memory, stored and
    /// loaded on every message (see `Sender::detached`). SPSC, capacity
    /// 1024, 64-byte messages built in the loop, one CPU, `versus`: 130-139
    /// M msg/s without the views (the sender's and this), 147-157 with
    /// them (rtrb 150-169). What it costs: making, using once and dropping
    /// a channel, 11.3-12.1 -> 10.8-11.3 M channels/s.
    ///
    /// The view is built field by field: as a bitwise copy it was loaded in
    /// 16-byte pieces from fields just stored in 8-byte ones, and those
    /// loads stall (10.6 M channels/s). The buffered messages' drops run
    /// while the view is live, which `Sender::detached` rules out
    /// elsewhere: nothing can reach a handle being dropped, so none of
    /// them can use it.
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(not(loom))]
        self.view().drop_view();
        #[cfg(loom)]
        self.drop_view();
    }
}

impl<T> Receiver<T> {
    #[inline(never)]
    fn drop_view(&self) {
        self.close_here(false);
        // Buffered messages go with the receiver (as in std), not with the
        // last handle. What a concurrent `send_many` publishes after this
        // goes with the channel.
        crate::ring::drop_each(|| self.try_recv().ok());
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("spsc::Receiver { .. }")
    }
}

receiver_iterators!("spsc");

impl<T> crate::select::case::Case for Receiver<T> {
    fn ready(&self) -> bool {
        // A pending run of this thread (see `empty_or_closed`).
        chan::flush_batches(self.chan.pending_key(), false);
        self.head.get() != self.tail_cache.get() || self.chan.len() != 0 || self.chan.is_closed()
    }

    fn queue(&self) -> Option<&WaitQueue> {
        Some(&self.chan.recv_waiters)
    }

    fn addr(&self) -> *const () {
        self as *const Self as *const ()
    }
}

impl<T> crate::select::case::Case for Sender<T> {
    fn ready(&self) -> bool {
        self.chan.shared.overflow != Overflow::Block
            || self.chan.is_closed()
            || self.chan.len() < self.chan.shared.cap
    }

    fn queue(&self) -> Option<&WaitQueue> {
        Some(&self.chan.send_waiters)
    }

    fn addr(&self) -> *const () {
        self as *const Self as *const ()
    }
}

select_completions!(RecvError, []);
