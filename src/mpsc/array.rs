//! The MPSC ring (capacity ≥ 1): Vyukov's bounded queue with per-slot
//! stamps, specialised for one consumer. The algorithm is described in the
//! module docs of `mpsc`.

use crate::chan::{self, Core, Receiving, SendMode, Sending, MAX_BATCH, MIN_BATCH};
use crate::close;
use crate::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::handoff::{Accept, Handoffs, Offered};
use crate::pad::{Spaced, SpacedEnd};
use crate::park::{self, WaitQueue};
use crate::ring::{Laps, Pos, Spill};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Backoff, Ordering, UnsafeCell};
use crate::Overflow;
use std::mem::MaybeUninit;
use std::time::Instant;

/// `tail` flag: the channel is closed.
const CLOSED: u64 = 1;
/// Stamp flag: the slot holds the message of the stamp's position (without
/// it, the slot is free for that position).
const FULL: u64 = 1;

struct Slot<T> {
    stamp: AtomicU64,
    msg: UnsafeCell<MaybeUninit<T>>,
}

/// The smallest ring whose blocked producers pause for a batch of free
/// slots (see `Array::before_send_wait`).
const PAUSE_MIN_CAP: usize = 48;

/// How many positions past its claim a producer prefetches (see
/// `Array::prefetch_ahead`).
const PREFETCH_AHEAD: usize = 4;

/// A slot array whose bytes are at most this large is allocated without
/// clearing and its stamps are written lazily, in chunks of about
/// [`INIT_CHUNK_BYTES`], by the producer whose claim first reaches them
/// (see "A new channel" in the `mpsc` module docs). A larger one is a
/// zeroed allocation, which for this size is usually fresh pages from the
/// system that need no clearing.
#[cfg(not(loom))]
const LAZY_MAX_BYTES: usize = 128 * 1024;

/// Bytes of slots given their stamps at a time (the first chunk when the
/// channel is made).
#[cfg(not(loom))]
const INIT_CHUNK_BYTES: usize = 1024;

/// Slots given their stamps at a time.
#[cfg(not(loom))]
fn init_chunk<T>() -> usize {
    (INIT_CHUNK_BYTES / std::mem::size_of::<Slot<T>>()).max(1)
}

/// Under loom, one slot at a time, so that the models go through the
/// lazy initialization at every slot of the first lap.
#[cfg(loom)]
fn init_chunk<T>() -> usize {
    1
}

/// The slot at `index` of the ring whose first slot is at `base`
/// ([`Slots::base`]): [`Slots::get`] for a loop that keeps the address in a
/// register across its atomic loads (the compiler reloads a field read
/// through `&self` after each `Acquire`).
///
/// # Safety
///
/// As [`Slots::get`]: `index < cap`, and `base` is the live ring's.
#[inline(always)]
unsafe fn slot_at<'a, T>(base: *const Slot<T>, index: usize) -> &'a Slot<T> {
    // SAFETY: in bounds of the ring's allocation (the caller).
    unsafe { &*base.add(index) }
}

/// The ring's `cap` slots. Only slots below `Config::ready` have a stamp;
/// the others are memory that nobody reads until a producer writes their
/// stamps (`Array::init_slots`).
#[cfg(not(loom))]
struct Slots<T> {
    ptr: std::ptr::NonNull<Slot<T>>,
    cap: usize,
}

#[cfg(not(loom))]
impl<T> Slots<T> {
    /// The slots, and how many of them already have their stamp: all of a
    /// large array (a zeroed allocation), the first chunk of a small one.
    fn new(cap: usize) -> (Self, usize) {
        let layout = std::alloc::Layout::array::<Slot<T>>(cap)
            .unwrap_or_else(|_| panic!("mpsc::channel: capacity {cap} is too large to allocate"));
        // A `Slot` holds an `AtomicU64`: never zero-sized.
        debug_assert!(layout.size() > 0);
        let lazy = layout.size() <= LAZY_MAX_BYTES;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe {
            if lazy {
                std::alloc::alloc(layout)
            } else {
                std::alloc::alloc_zeroed(layout)
            }
        }
        .cast::<Slot<T>>();
        // A panic, not `handle_alloc_error`'s abort: a capacity the system
        // cannot provide is bad input, refused at construction.
        let Some(ptr) = std::ptr::NonNull::new(ptr) else {
            panic!(
                "mpsc::channel: capacity {cap} ({} bytes) could not be allocated",
                layout.size()
            )
        };
        let slots = Slots { ptr, cap };
        if !lazy {
            // All-zero bytes are a stamp of 0 in every slot: free for the
            // first lap (see `Laps::stamp`).
            return (slots, cap);
        }
        let first = init_chunk::<T>().min(cap);
        // SAFETY: nobody else has the slots yet.
        unsafe { slots.init(0..first) };
        (slots, first)
    }

    /// The slot at `index`.
    ///
    /// # Safety
    ///
    /// `index < cap`. Its stamp may be read only if the slot is below
    /// `Config::ready` (so initialized).
    #[inline(always)]
    unsafe fn get(&self, index: usize) -> &Slot<T> {
        debug_assert!(index < self.cap);
        // SAFETY: in bounds (guaranteed by the caller); the reference is to
        // memory we own, and its uninitialized parts are only an
        // `AtomicU64` that nobody reads before `init` and a `MaybeUninit`.
        unsafe { &*self.ptr.as_ptr().add(index) }
    }

    /// The first slot's address, for a loop that keeps it in a register
    /// (see [`slot_at`]).
    #[inline(always)]
    fn base(&self) -> *const Slot<T> {
        self.ptr.as_ptr()
    }

    /// Gives the slots of `range` the stamp 0 (free for the first lap).
    ///
    /// # Safety
    ///
    /// Nobody accesses these slots meanwhile (they are at or past
    /// `Config::ready`, and the caller holds `Config::init_lock` or is
    /// making the channel), and `range.end <= cap`.
    unsafe fn init(&self, range: std::ops::Range<usize>) {
        debug_assert!(range.end <= self.cap);
        for i in range {
            // SAFETY: in bounds; a plain write, ordered before any reader
            // by the `Release` store of `Config::ready` that follows.
            unsafe {
                std::ptr::addr_of_mut!((*self.ptr.as_ptr().add(i)).stamp).write(AtomicU64::new(0))
            };
        }
    }
}

#[cfg(not(loom))]
impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        // The messages were dropped by `Array`'s drop; this frees the
        // memory only (a `Slot` has no drop glue of its own).
        let layout = std::alloc::Layout::array::<Slot<T>>(self.cap).expect("checked in `new`");
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
    }
}

/// Under loom the atomics are loom's (not plain memory): every slot is
/// built at once, with a stamp that no position ever has, which a read of
/// a slot that was not initialized finds (every stamp read goes through
/// `Array::checked`).
#[cfg(loom)]
struct Slots<T> {
    slots: Box<[Slot<T>]>,
}

/// The stamp of a slot under loom before its initialization.
#[cfg(loom)]
const GARBAGE: u64 = u64::MAX;

#[cfg(loom)]
impl<T> Slots<T> {
    fn new(cap: usize) -> (Self, usize) {
        let slots = (0..cap)
            .map(|_| Slot {
                stamp: AtomicU64::new(GARBAGE),
                msg: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        let slots = Slots { slots };
        // SAFETY: nobody else has the slots yet.
        unsafe { slots.init(0..1) };
        (slots, 1)
    }

    #[inline(always)]
    unsafe fn get(&self, index: usize) -> &Slot<T> {
        &self.slots[index]
    }

    #[inline(always)]
    fn base(&self) -> *const Slot<T> {
        self.slots.as_ptr()
    }

    unsafe fn init(&self, range: std::ops::Range<usize>) {
        for i in range {
            let stamp = &self.slots[i].stamp;
            assert_eq!(
                stamp.load(Ordering::Relaxed),
                GARBAGE,
                "a slot was initialized twice"
            );
            stamp.store(0, Ordering::Relaxed);
        }
    }
}

/// Read-mostly configuration.
struct Config {
    laps: Laps<1>,
    cap: usize,
    overflow: Overflow,
    /// `overflow != Block`: the consumer claims `head` with a
    /// compare-exchange, because a producer may evict from it.
    claiming: bool,
    /// A blocked producer may offer its message for direct hand-off
    /// (`Block` on one CPU, and always under loom): see "Direct hand-off"
    /// in the `mpsc` module docs.
    handoff: bool,
    /// The consumer waiting on an empty ring accepts a message directly
    /// (the other direction; `handoff`, unless a loom model turned it off).
    accept: bool,
    /// Producers prefetch the slot ahead of their claim
    /// ([`Array::prefetch_ahead`]; never under loom).
    prefetch: bool,
    /// Slots `0..ready` have their stamps; the rest are written by the
    /// first producer whose claim reaches them (`Array::init_slots`), which
    /// then stores the new count (`Release`). Only grows, `cap` at most.
    ready: AtomicUsize,
    /// Held by the producer that writes the next chunk of stamps.
    init_lock: AtomicBool,
    /// Set (after `CLOSED` in `tail`) by the call that closed the channel.
    /// The consumer looks here when it finds nothing to receive, instead of
    /// loading `tail`: polling the line every producer compare-exchanges
    /// would slow each of their claims (3.4x on the 2-core machine, 2
    /// producers).
    closed: AtomicBool,
}

// `repr(C)`: the `Spaced` fields keep their order and their distance.
#[repr(C)]
pub(crate) struct Array<T> {
    /// Next position to claim, with `CLOSED`.
    tail: Spaced<AtomicU64>,
    /// Messages lost to the dropping policies: counted by producers, so on
    /// their line (the consumer only reads it for `dropped()`).
    dropped: AtomicU64,
    /// Next position to read.
    head: Spaced<AtomicU64>,
    config: Spaced<Config>,
    /// The receiver, waiting for a message.
    recv_waiters: WaitQueue,
    /// Producers waiting for room (`Block`).
    send_waiters: WaitQueue,
    /// The producers whose messages are on offer (direct hand-off), one
    /// per cell. Not spaced: it is only used on one CPU, where no other
    /// core shares the line. (Without the padding of these two fields a
    /// channel is under 1 KiB, the size the allocator serves from its
    /// per-thread cache: making and dropping one is about 20% faster. So
    /// only the first cell is inline: see `Handoffs`.)
    handoff: Handoffs<T>,
    /// The other direction: the consumer waiting on an empty ring accepts
    /// a message here (one CPU too).
    accept: Accept<T>,
    /// Invariant: a slot's message is initialized exactly when its stamp is
    /// `stamp(position) | FULL` for a position in `head..tail`; it is owned by
    /// whoever holds that position (the producer that claimed it until the
    /// stamp store, then the consumer or an evicter that claims `head`).
    /// A slot's stamp is read only once it is below `Config::ready`.
    slots: Slots<T>,
    _end: SpacedEnd,
}

// SAFETY: messages move between threads but are never shared: each slot is
// accessed only by the holder of its position (see `slots`). `T: Send`
// suffices.
unsafe impl<T: Send> Send for Array<T> {}
// SAFETY: as above; every other field is atomic or immutable.
unsafe impl<T: Send> Sync for Array<T> {}

/// Outcome of one attempt to claim a position.
pub(crate) enum Claim<'a, T> {
    /// Claimed a position whose slot is free: write the message there
    /// ([`Array::fill`]).
    Ok(Claimed<'a, T>),
    /// Claimed `pos` on a full ring (a dropping policy): its slot still
    /// holds the oldest message, which must be evicted first
    /// ([`Array::write_evicting`]).
    Evict(Pos),
    Full,
    Closed,
}

/// A claimed position's slot, free for it, and the slot's stamp for that
/// position (without `FULL`): all that writing and publishing the message
/// needs, worked out once by the claim. (With [`Head`], the consumer's
/// side of the same: until 2026-12-06 the claim, the write, the
/// publication, the consumer's look, its read and `passed` each worked
/// the slot's index out again from the position, reloading the ring's
/// masks after every atomic. One thread sending 1000 u64 then receiving
/// them, under `taskset -c 0`: 127 -> 118 instructions a message
/// (valgrind), 151 -> 169 M msg/s; one producer and the consumer on one
/// CPU 105-108 -> 113-117, four producers 81-82 -> 87-89 (kanal 106-107),
/// in turns with the build before.)
///
/// Only the claims make one ([`Array::claim`], and `send_many` for each
/// position of its batch's claim), and [`Array::fill`] consumes it (it is
/// not `Clone`): each claimed slot is written once, by its claimer.
pub(crate) struct Claimed<'a, T> {
    slot: &'a Slot<T>,
    free: u64,
}

/// The consumer's head (not claiming) once its message is found written:
/// the position and its slot's index, worked out once for the read and
/// for `passed`.
#[derive(Clone, Copy)]
pub(crate) struct Head {
    pos: Pos,
    index: usize,
}

impl<T> Array<T> {
    #[inline(always)]
    pub(crate) fn new(cap: usize, overflow: Overflow) -> Self {
        // At least 32 bits of lap: a claim that stalls for 2^32 laps of
        // other claims is what it would take to confuse two stamps.
        let laps = Laps::<1>::new(cap, 32)
            .filter(|_| {
                cap.checked_mul(std::mem::size_of::<Slot<T>>())
                    .is_some_and(|b| b <= isize::MAX as usize)
            })
            .unwrap_or_else(|| panic!("mpsc::channel: capacity {cap} is too large to allocate"));
        let start = laps.start(0);
        debug_assert_eq!(laps.stamp(laps.forward(start, cap as u64 - 1)), 0);
        // Everything that calls out is done before the channel is built, so
        // that the compiler builds it in place (see `ChanRef::pair`).
        let (slots, ready) = Slots::new(cap);
        let handoff = overflow == Overflow::Block && (cfg!(loom) || park::single_core());
        let accept = handoff && crate::handoff::accept_enabled();
        let prefetch = crate::ring::PREFETCH && cap >= 4 * PREFETCH_AHEAD && !park::single_core();
        let word = WaitQueue::initial_word();
        Array {
            tail: Spaced::new(AtomicU64::new(start.word())),
            head: Spaced::new(AtomicU64::new(start.word())),
            config: Spaced::new(Config {
                laps,
                cap,
                overflow,
                claiming: overflow != Overflow::Block,
                handoff,
                accept,
                prefetch,
                ready: AtomicUsize::new(ready),
                init_lock: AtomicBool::new(false),
                closed: AtomicBool::new(false),
            }),
            dropped: AtomicU64::new(0),
            recv_waiters: WaitQueue::with_word(word),
            send_waiters: WaitQueue::with_word(word),
            handoff: Handoffs::new(),
            accept: Accept::new(),
            slots,
            _end: SpacedEnd::new(),
        }
    }

    /// The slot of `pos`, whose stamp has been written (the caller holds
    /// `pos`, or checked with [`Array::producer_stamp`] or
    /// [`Array::written_head`]).
    #[inline(always)]
    fn slot(&self, pos: Pos) -> &Slot<T> {
        let index = self.config.laps.index(pos);
        // SAFETY: `Laps::index` is below the capacity.
        unsafe { self.slots.get(index) }
    }

    /// The slot `index` (a position's, from `Laps::index`), for a
    /// producer about to claim it: writes the stamps of the slots up to it
    /// first if this is their first use.
    #[inline(always)]
    fn producer_slot(&self, index: usize) -> &Slot<T> {
        // Acquire: the stamps below it were written before.
        if index >= self.config.ready.load(Ordering::Acquire) {
            self.init_slots(index);
        }
        // SAFETY: `Laps::index` is below the capacity.
        unsafe { self.slots.get(index) }
    }

    /// The stamp of `pos`'s slot, for a producer about to claim it (see
    /// [`producer_slot`](Self::producer_slot)).
    #[inline(always)]
    fn producer_stamp(&self, pos: Pos) -> u64 {
        let slot = self.producer_slot(self.config.laps.index(pos));
        // Acquire: the consumer's read of the previous lap happens before
        // our write.
        self.checked(slot.stamp.load(Ordering::Acquire))
    }

    /// For the consumer: the message of `pos` is written (its stamp says
    /// FULL for `pos`'s lap).
    #[inline(always)]
    fn written(&self, pos: Pos) -> bool {
        self.written_head(pos).is_some()
    }

    /// For the consumer: `pos`, if its message is written, with its slot's
    /// index (worked out here once for the read and `passed`, when `pos`
    /// is our head). A slot without a stamp yet was never claimed.
    #[inline(always)]
    fn written_head(&self, pos: Pos) -> Option<Head> {
        let laps = &self.config.laps;
        let index = laps.index(pos);
        // Acquire: as in `producer_slot`.
        if index >= self.config.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: `Laps::index` is below the capacity.
        let slot = unsafe { self.slots.get(index) };
        // Acquire: the producer's write of the message.
        let stamp = self.checked(slot.stamp.load(Ordering::Acquire));
        (stamp == laps.stamp(pos) | FULL).then_some(Head { pos, index })
    }

    /// Under loom, a stamp read before its slot was initialized fails the
    /// model.
    #[inline(always)]
    fn checked(&self, stamp: u64) -> u64 {
        #[cfg(loom)]
        assert_ne!(stamp, GARBAGE, "a slot was read before its initialization");
        stamp
    }

    /// Writes the stamps of the slots up to and including `index` (a chunk
    /// at a time), or waits for the producer that is writing them. The
    /// only wait of a claim that is not for the consumer: a first-lap claim
    /// waits for one chunk's stores (a kilobyte at most).
    #[cold]
    #[inline(never)]
    fn init_slots(&self, index: usize) {
        let config = &*self.config;
        let backoff = Backoff::new();
        loop {
            if index < config.ready.load(Ordering::Acquire) {
                return;
            }
            // Acquire: the previous holder's stamps and `ready`.
            if config
                .init_lock
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                let ready = config.ready.load(Ordering::Relaxed);
                if index >= ready {
                    let chunk = init_chunk::<T>();
                    let end = (index + 1).max(ready + chunk).min(config.cap);
                    // SAFETY: the slots from `ready` on are read by nobody
                    // (every reader checks `ready` first) and written by
                    // nobody else (we hold the lock); `end <= cap`.
                    unsafe { self.slots.init(ready..end) };
                    // Release: whoever sees the new count sees the stamps.
                    config.ready.store(end, Ordering::Release);
                }
                config.init_lock.store(false, Ordering::Release);
                return;
            }
            backoff.snooze();
        }
    }

    #[inline(always)]
    fn next(&self, pos: Pos) -> Pos {
        self.config.laps.next(pos)
    }

    #[inline(always)]
    fn head(&self) -> Pos {
        Pos::of(self.head.load(Ordering::Acquire), &self.config.laps)
    }

    /// # Safety
    ///
    /// The caller holds `pos` and its slot holds an initialized message.
    #[inline(always)]
    unsafe fn read(&self, pos: Pos) -> T {
        // SAFETY: guaranteed by the caller.
        self.slot(pos)
            .msg
            .with(|p| unsafe { p.read().assume_init() })
    }

    /// # Safety
    ///
    /// The caller holds `pos` and its slot is uninitialized.
    #[inline(always)]
    unsafe fn write(&self, pos: Pos, msg: T) {
        // SAFETY: guaranteed by the caller.
        self.slot(pos)
            .msg
            .with_mut(|p| unsafe { p.write(MaybeUninit::new(msg)) });
    }

    /// Tries once to claim the position at `tail` (no waiting for room).
    /// `last`: the claim also closes the channel (`close_with`). A full ring
    /// is claimed anyway ([`Claim::Evict`]) under `DropOldest`, and under
    /// `DropNewest` for the final message; otherwise it is `Full`.
    #[inline(always)]
    pub(crate) fn claim(&self, backoff: &Backoff, last: bool) -> Claim<'_, T> {
        let laps = &self.config.laps;
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Claim::Closed;
            }
            let pos = Pos::of(tail, laps);
            // The slot's index, worked out once for the claim, the write
            // and the publication (see `Claimed`): each worked it out
            // again, the mask reloaded after every atomic.
            let index = laps.index(pos);
            let slot = self.producer_slot(index);
            // Acquire: the consumer's read of the previous lap happens
            // before our write.
            let stamp = self.checked(slot.stamp.load(Ordering::Acquire));
            let free = laps.stamp(pos);
            // AcqRel only when closing: the closer sees every claim made
            // before `CLOSED`, and whoever sees it sees the closer's earlier
            // writes (as `close::set_mark`).
            let (close, success) = if last {
                (CLOSED, Ordering::AcqRel)
            } else {
                (0, Ordering::Relaxed)
            };
            let cas = |tail| {
                self.tail.compare_exchange_weak(
                    tail,
                    laps.next_at(pos, index).word() | close,
                    success,
                    Ordering::Relaxed,
                )
            };
            // The free slot first, with a compare-exchange of its own: one
            // shared with the evicting claim below tested which it was again
            // once it succeeded.
            if stamp == free {
                match cas(tail) {
                    Ok(_) => {
                        self.prefetch_ahead(pos);
                        return Claim::Ok(Claimed { slot, free });
                    }
                    Err(now) => {
                        tail = now;
                        backoff.spin();
                        continue;
                    }
                }
            }
            if stamp != laps.stamp(laps.prev_lap(pos)) | FULL {
                // Another producer claimed `tail` and moved on: reload.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
                continue;
            }
            // The slot still holds the previous lap's message.
            if laps.next_lap(self.head()) != pos {
                // The consumer is between claiming and releasing it.
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
                continue;
            }
            let evict = self.config.overflow == Overflow::DropOldest
                || (last && self.config.overflow == Overflow::DropNewest);
            if !evict {
                return Claim::Full;
            }
            match cas(tail) {
                Ok(_) => return Claim::Evict(pos),
                Err(now) => {
                    tail = now;
                    backoff.spin();
                }
            }
        }
    }

    /// After claiming `pos`: asks for the slot [`PREFETCH_AHEAD`] positions
    /// on to be brought into this core's cache for writing, so that the
    /// producer that claims it next finds it there instead of waiting for
    /// the line from the consumer (who freed it a lap ago) with its claim
    /// stalled behind the stamp's load. On a ring long enough that the
    /// slot ahead is not one the consumer is still reading, and with more
    /// than one CPU (on one, every thread shares the cache: 46.6 -> 43.9 M
    /// msg/s with it). A hint: nothing is read or written.
    ///
    /// Also for slots smaller than a line (until 2026-12-05 only from 64
    /// bytes, on the reasoning that a producer's claim finds the line it
    /// just wrote; but the consumer wrote the stamps of that line a lap
    /// ago). u64, two CPUs, probes of `versus`'s loop, medians of 7 runs:
    /// one producer, capacity 16, 21 -> 25-26 M msg/s, 32 to 128 2-5%
    /// faster; two producers, capacity 16, 19-20 -> 23; 64, 34-40 -> 43;
    /// 256 and `versus`'s 1024 rows unchanged.
    ///
    /// Measured (`versus`, 2 producers, capacity 1024, 64-byte messages,
    /// in turns with the build without it): 19.2-20.2 -> 34.7-35.0 M msg/s
    /// (crossbeam-channel 13.8-17.6, std 17.8-18.5). A probe of message
    /// sizes found 56-byte messages best two slots ahead and 64-byte ones
    /// four ahead (the 72-byte slots straddle lines); four is kept.
    #[inline(always)]
    fn prefetch_ahead(&self, pos: Pos) {
        if self.config.prefetch {
            let mut ahead = pos;
            for _ in 0..PREFETCH_AHEAD {
                ahead = self.next(ahead);
            }
            crate::ring::prefetch_for_write(self.slot(ahead));
        }
    }

    /// Writes the message of `pos`, claimed on a full ring, evicting the
    /// message one lap back that its slot still holds: it is the oldest
    /// (`head` was at that position when `pos` was claimed), and either we
    /// claim it from `head` and remove it, or the consumer got there first
    /// and frees the slot. Returns the evicted message, for the caller to
    /// drop once it is done with the channel. Waits only for the consumer's
    /// copy of one message.
    #[inline(never)]
    fn write_evicting(&self, pos: Pos, msg: Spill<T>) -> Option<T> {
        let msg = msg.into_inner();
        let laps = &self.config.laps;
        let old = laps.prev_lap(pos);
        let slot = self.slot(pos);
        let backoff = Backoff::new();
        let evicted = loop {
            // Acquire: the consumer's copy out of the slot.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == laps.stamp(pos) {
                break None; // received meanwhile: the slot is free
            }
            if stamp == laps.stamp(old) | FULL
                && self.head() == old
                && self
                    .head
                    .compare_exchange(
                        old.word(),
                        self.next(old).word(),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
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

    /// Writes `msg` into the slot of a claim and publishes it: the write
    /// and the stamp of [`publish`](Self::publish), with the slot and its
    /// stamp from the claim.
    #[inline(always)]
    pub(crate) fn fill(&self, claimed: Claimed<'_, T>, msg: T) {
        Self::fill_quietly(claimed, msg);
        self.recv_waiters.notify_one();
    }

    /// [`fill`](Self::fill) without waking the receiver (`send_many`
    /// wakes it once per batch).
    #[inline(always)]
    fn fill_quietly(claimed: Claimed<'_, T>, msg: T) {
        let Claimed { slot, free } = claimed;
        // SAFETY: the claim holds the slot's position, and the slot is free
        // for it (its stamp): nobody else reads or writes the message.
        slot.msg
            .with_mut(|p| unsafe { p.write(MaybeUninit::new(msg)) });
        slot.stamp.store(free | FULL, Ordering::Release);
    }

    /// Publishes the message written at `pos` and wakes the receiver if it
    /// is parked.
    #[inline(always)]
    pub(crate) fn publish(&self, pos: Pos) {
        self.slot(pos)
            .stamp
            .store(self.config.laps.stamp(pos) | FULL, Ordering::Release);
        self.recv_waiters.notify_one();
    }

    fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Tell the consumer and wake everyone: the channel was just closed by
    /// this thread (a claim with `last`, or `close`).
    fn closed_by_us(&self) {
        self.config.closed.store(true, Ordering::Release);
        self.recv_waiters.notify_all();
        self.send_waiters.notify_all();
    }

    /// Claims up to `want` consecutive free positions with one
    /// compare-exchange. Returns the first position and how many.
    ///
    /// Under `Block` the room is worked out from `head` alone: the consumer
    /// frees a slot (its stamp, Release) before it moves `head` past it
    /// (Release), so every position below `head` + capacity is free once
    /// `head` is read (Acquire), and a slot's stamp need not be read. (The
    /// dropping policies' consumer claims `head` before it frees the slot,
    /// and an evicting producer moves it too: there the stamps are read one
    /// by one.) Reading 64 stamps the consumer had just written, then
    /// writing them again, moved each line to this core twice.
    fn claim_batch(&self, want: usize) -> Result<(Pos, usize), Claim<'_, T>> {
        let laps = &self.config.laps;
        let backoff = Backoff::new();
        loop {
            // `head` before `tail` (Acquire: the consumer's frees of the
            // slots it passed, and the claims of the messages it read):
            // then `tail` is at or after it, and their distance is what
            // was queued when `head` was read, or more.
            let head = (!self.config.claiming).then(|| self.head());
            let tail = self.tail.load(Ordering::Relaxed);
            if tail & CLOSED != 0 {
                return Err(Claim::Closed);
            }
            let first = Pos::of(tail, laps);
            let (end, k) = if let Some(head) = head {
                let queued = laps.distance(first, head) as usize;
                let k = want.min(self.config.cap.saturating_sub(queued));
                if k > 0 {
                    // The first lap's stamps, up to the last slot we take.
                    let last = laps.index(first) + k - 1;
                    self.producer_slot(last.min(self.config.cap - 1));
                }
                (laps.forward(first, k as u64), k)
            } else {
                let mut end = first;
                let mut k = 0;
                while k < want && self.producer_stamp(end) == laps.stamp(end) {
                    end = self.next(end);
                    k += 1;
                }
                (end, k)
            };
            if k == 0 {
                return Err(Claim::Full);
            }
            if self
                .tail
                .compare_exchange_weak(tail, end.word(), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return Ok((first, k));
            }
            backoff.spin();
        }
    }

    /// `send_many`: a loop of `send` that takes room for up to
    /// [`MAX_BATCH`] messages with one compare-exchange. The iterator runs
    /// only while we hold no claim, and its messages wait in a
    /// [`chan::Batch`] until they are enqueued (see there for an iterator
    /// that calls into this channel, panics or waits for its next item).
    pub(crate) fn send_many<I: Iterator<Item = T>>(
        &self,
        iter: &mut I,
    ) -> Result<usize, SendError<Vec<T>>> {
        let mut taken = 0;
        if self.config.overflow == Overflow::DropOldest {
            // Evicting: one message at a time.
            for msg in iter {
                taken += 1;
                if let Err(e) = chan::send(self, msg, None, SendMode::Wait) {
                    return Err(SendError(vec![e.into_inner()]));
                }
            }
            return Ok(taken);
        }
        let batch = chan::Batch::new(self);
        let _registered = batch.register();
        // Dropped before the registration: on a panic, its messages go back
        // to the batch, which the registration then sends.
        let mut msgs = chan::Taken::new(&batch);
        loop {
            // Up to what looks free.
            let free = self.config.cap - self.len();
            if free < MIN_BATCH {
                // Full, or nearly (see `MIN_BATCH`): one message at a time
                // (up to a batch's worth, then look again), without the
                // batch, each sent as `send` sends it (waiting for room, with
                // the hand-off on one CPU; under `DropNewest`, dropped if
                // there is no room) before the iterator is asked for the
                // next. (Under `DropNewest`, through the batch a full ring
                // of capacity 1024 discarded 34 M messages a second, a loop
                // of `send` 256-282. A claim of our own here, then on a
                // full ring `chan::send`, which tried once more before it
                // waited, was slower than `send`: two CPUs pinned, one
                // producer, capacity 16, 21-22 -> 26 M msg/s (the loop
                // 29-30), 64 58-64 -> 70-75 (the loop 64-66).)
                for _ in 0..MAX_BATCH {
                    let Some(msg) = iter.next() else {
                        return Ok(taken);
                    };
                    taken += 1;
                    let failed = match self.try_send_as(msg, SendMode::Wait) {
                        Ok(()) => None,
                        Err(TrySendError::Full(msg)) => {
                            self.send_until(msg, None).err().map(|e| e.into_inner())
                        }
                        Err(TrySendError::Closed(msg)) => Some(msg),
                    };
                    if let Some(msg) = failed {
                        return Err(SendError(vec![msg]));
                    }
                }
                continue;
            }
            // No more than a quarter of the ring at once (but `MIN_BATCH`):
            // a batch of the whole ring left the consumer idle while it was
            // written and the producer idle while it was read. Two CPUs
            // pinned, one producer, capacity 64, u64 in calls of 256 with a
            // loop of `recv`: 49 -> 64 M msg/s (the loop of `send` 63-65);
            // capacity 1024 unchanged (a quarter is more than `MAX_BATCH`).
            let free = free.clamp(1, MAX_BATCH.min((self.config.cap / 4).max(MIN_BATCH)));
            let (n, ended) =
                batch.collect(iter, free, || self.config.closed.load(Ordering::Relaxed));
            taken += n;
            msgs.refill();
            while !msgs.is_empty() {
                match self.claim_batch(msgs.len()) {
                    Ok((mut pos, k)) => {
                        let laps = &self.config.laps;
                        for msg in msgs.drain(..k) {
                            let index = laps.index(pos);
                            // SAFETY: `index` is `pos`'s (below the capacity).
                            let slot = unsafe { self.slots.get(index) };
                            // One of the `k` free positions we claimed.
                            let free = laps.stamp(pos);
                            Self::fill_quietly(Claimed { slot, free }, msg);
                            pos = laps.next_at(pos, index);
                        }
                        self.recv_waiters.notify_one();
                    }
                    Err(Claim::Closed) => return Err(SendError(std::mem::take(&mut *msgs))),
                    Err(_) => {
                        // Full: send the first one the slow way (waits under
                        // Block; DropNewest discards it, and its `Drop` is
                        // the one user code that runs while the rest are
                        // out of the batch), keep the rest. (Rare: the batch
                        // is no larger than the room it saw.)
                        let first = msgs.remove(0);
                        if let Err(e) = chan::send(self, first, None, SendMode::Wait) {
                            msgs.insert(0, e.into_inner());
                            return Err(SendError(std::mem::take(&mut *msgs)));
                        }
                    }
                }
            }
            if ended {
                return Ok(taken);
            }
        }
    }

    // ---- receiving

    /// Nothing is ready at `head`: closed and drained, or empty (possibly
    /// a producer has claimed `head` but not written it yet).
    #[cold]
    fn empty_or_closed(&self, head: Pos) -> TryRecvError {
        // Acquire: the closer set `CLOSED` before this.
        if !self.config.closed.load(Ordering::Acquire) {
            return TryRecvError::Empty;
        }
        let tail = self.tail.load(Ordering::Acquire);
        if Pos::of(tail, &self.config.laps) == head {
            TryRecvError::Closed
        } else {
            TryRecvError::Empty
        }
    }

    /// The dropping policies: claims `head` with a compare-exchange (a
    /// producer may be evicting it).
    fn try_recv_claiming(&self) -> Result<T, TryRecvError> {
        loop {
            let head = self.head();
            if !self.written(head) {
                if self.head() != head {
                    continue; // evicted meanwhile
                }
                // A pending batch of this thread (see `ready_head`).
                if chan::flush_batches(self.pending_key(), false) {
                    continue;
                }
                return Err(self.empty_or_closed(head));
            }
            if self
                .head
                .compare_exchange(
                    head.word(),
                    self.next(head).word(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                // SAFETY: we won `head`, whose message is written.
                let msg = unsafe { self.read(head) };
                self.slot(head).stamp.store(
                    self.config.laps.stamp(self.config.laps.next_lap(head)),
                    Ordering::Release,
                );
                return Ok(msg);
            }
        }
    }

    pub(crate) fn try_recv_many(
        &self,
        buf: &mut Vec<T>,
        max: usize,
    ) -> Result<usize, TryRecvError> {
        // A pending batch of this thread is in the channel for a loop of
        // `send` (see `ready_head`).
        chan::flush_batches(self.pending_key(), false);
        if self.config.claiming {
            // One claim at a time: a producer may be evicting.
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
        // Only the consumer writes `head`: Relaxed.
        let first = Pos::of(self.head.load(Ordering::Relaxed), &self.config.laps);
        let mut head = first;
        let mut n = 0;
        // The run is freed a quarter of the ring at a time (but at least
        // `MIN_BATCH` messages), not only at its end: a producer waiting
        // for room (it watches `head`, and a batch's room comes from it)
        // refills that part while the rest is read. Two CPUs pinned, one
        // producer, capacity 64, `send_many` and `recv_many` in calls of
        // 256: 55-57 -> 77-78 M msg/s (loops of `send` and `recv`: 63-65);
        // two producers 50-53 -> 63-71; capacity 1024 unchanged. (A counter,
        // not `n % chunk`: the division cost 15% at capacity 1024.)
        let chunk = (self.config.cap / 4).max(MIN_BATCH);
        // Per message as `written_head`, `read` and `passed`, with the
        // slot's index carried from one message to the next, the stamped
        // prefix read once (a snapshot: a slot stamped meanwhile ends the
        // run early, as an unwritten one does), and each part's room in
        // `buf` reserved before it (one capacity check per part).
        // The ring's geometry and address in locals (read through `self`,
        // the compiler loads them again after every `Acquire`), and the
        // position as its index and its lap's stamp, the same for every
        // slot of the lap (`Laps::at`): no message's position is computed
        // from the previous one's. Until 2026-12-06 the loop took about 32
        // instructions a message, six of them loads of the geometry after
        // the stamp's `Acquire`; now 26, every one of those in a register
        // (`objdump`). One thread, 1000 u64 sent then
        // received, the receive phase, pinned, medians of 7 in turns:
        // calls of 16 419 -> 644 M msg/s, 64 635 -> 758, 256 749 -> 895
        // (a loop of `recv`: 540-560); two CPUs level or ahead (`send_many`
        // against it, capacity 1024, 200 -> 224).
        let laps = self.config.laps;
        let slots = self.slots.base();
        let lap = laps.lap_word();
        // Acquire: as in `written_head`.
        let ready = self.config.ready.load(Ordering::Acquire);
        let mut index = laps.index(head);
        // `head`'s stamp: the same for every slot of its lap.
        let mut stamp = laps.stamp(head);
        while n < max {
            let end = (n + chunk).min(max);
            buf.reserve(end - n);
            let (base, dst) = (buf.len(), buf.as_mut_ptr());
            let mut k = 0;
            while n + k < end && index < ready {
                // SAFETY: `index` is `head`'s (below the capacity).
                let slot = unsafe { slot_at(slots, index) };
                // Acquire: the producer's write of the message.
                if self.checked(slot.stamp.load(Ordering::Acquire)) != stamp | FULL {
                    break;
                }
                // SAFETY: written (stamp), and we are the only consumer;
                // `base + k` is below the capacity reserved above.
                unsafe {
                    dst.add(base + k)
                        .write(slot.msg.with(|p| p.read().assume_init()))
                };
                // Free for the next lap (`laps.stamp(laps.next_lap(head))`).
                slot.stamp.store(stamp.wrapping_add(lap), Ordering::Release);
                laps.step(&mut index, &mut stamp);
                k += 1;
            }
            head = laps.at(stamp, index);
            // SAFETY: the `k` messages past `base` were written above.
            unsafe { buf.set_len(base + k) };
            n += k;
            if n < end || n == max {
                break;
            }
            self.head.store(head.word(), Ordering::Release);
            if self.config.overflow == Overflow::Block {
                self.notify_senders();
            }
        }
        if n == 0 {
            return Err(self.empty_or_closed(first));
        }
        self.head.store(head.word(), Ordering::Release);
        if self.config.overflow == Overflow::Block {
            self.notify_senders();
        }
        Ok(n)
    }

    /// The receiver is gone: close, and drop the buffered messages now
    /// rather than with the last sender. A position claimed before the
    /// close but not yet written is waited for (its producer is copying one
    /// message; nothing runs user code between a claim and its publish).
    pub(crate) fn close_and_drain(&self) {
        self.close();
        crate::ring::drop_each(|| {
            let mut next = None;
            park::wait_brief(|| match self.try_recv_as() {
                Ok(m) => {
                    next = Some(m);
                    true
                }
                Err(TryRecvError::Empty) => false,
                Err(TryRecvError::Closed) => true,
            });
            next
        });
    }
}

impl<T> Array<T> {
    /// A blocking send found the ring full (`Block`). With the hand-off,
    /// a producer that gets here parks its message in a hand-off cell of
    /// its own, and the consumer that frees a slot sends it on the
    /// producer's behalf; when every cell is taken, it waits as usual.
    pub(crate) fn send_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let cell = if self.config.handoff {
            self.handoff.reserve()
        } else {
            None
        };
        let Some(cell) = cell else {
            // Straight to the wait: every caller has just tried (`send`,
            // `send_timeout`, `send_many`; `send_deadline`'s first try is
            // the wait's first attempt, made before the deadline is looked
            // at).
            return chan::send_slow(self, msg, deadline, SendMode::Wait);
        };
        // Holding the cell: look once more before offering.
        let msg = match self.try_send_as(msg, SendMode::Try) {
            Err(TrySendError::Full(msg)) => msg,
            Ok(()) => {
                cell.release();
                return Ok(());
            }
            Err(TrySendError::Closed(msg)) => {
                cell.release();
                return Err(SendTimeoutError::Closed(msg));
            }
        };
        // Withdrawn on room the consumer did not fill with our message
        // (another producer's claim, or a slot freed before the consumer saw
        // the offer), or on a close.
        let room_or_closed = || self.send_ready();
        match cell.offer_and_wait(
            msg,
            &self.send_waiters,
            deadline,
            self.spin_on_send(),
            room_or_closed,
        ) {
            Offered::Sent => Ok(()),
            Offered::TimedOut(msg) => Err(SendTimeoutError::Timeout(msg)),
            Offered::Back(msg) => chan::send(self, msg, deadline, SendMode::Try),
        }
    }

    /// After freeing a slot (`Block`): wakes a producer waiting for room,
    /// first sending the offered message, if any, into the freed slot.
    #[inline(always)]
    fn notify_senders(&self) {
        if self.send_waiters.needs_attention() {
            self.notify_senders_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn notify_senders_slow(&self) {
        if !(self.config.handoff && self.take_offer()) {
            self.send_waiters.notify_slow(false);
        }
    }

    /// Direct hand-off to the consumer (one CPU): if the consumer accepts,
    /// and the ring is empty and open once the cell is ours, `msg` goes
    /// into the cell, which the consumer looks at before the ring: a claim
    /// another producer makes later lands behind it.
    #[cold]
    #[inline(never)]
    fn give(&self, msg: T) -> Result<(), T> {
        self.accept.fill(
            msg,
            || {
                // Checked once the cell is ours: the consumer, which accepted
                // after everything it received, waits for our write and takes
                // nothing from the ring meanwhile. A close (or a claim) it
                // received from before it accepted is one we see here.
                let tail = self.tail.load(Ordering::Acquire);
                tail & CLOSED == 0 && Pos::of(tail, &self.config.laps) == self.head()
            },
            &self.recv_waiters,
        )?;
        // We may have been woken for a free slot (a blocked send, a select)
        // and used the cell instead: the slot is still free, so pass the
        // wake-up on to a producer waiting for it (a loom model of two
        // selecting producers deadlocked without this).
        self.send_waiters.notify_one();
        Ok(())
    }

    /// `try_send_as` past the hand-off check: claims a slot and writes
    /// the message into it. The message goes straight from the caller into
    /// its slot: with the hand-off's path merged in front of the claim, it
    /// went through a stack temporary on every send.
    #[inline(always)]
    fn try_send_claiming(&self, msg: T, last: bool) -> Result<(), TrySendError<T>> {
        let evicted = match self.claim(&Backoff::new(), last) {
            Claim::Ok(claimed) => {
                self.fill(claimed, msg);
                None
            }
            Claim::Evict(pos) => self.write_evicting(pos, Spill::new(msg)),
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
            self.closed_by_us();
        }
        // Dropped last: a panicking (or re-entrant) drop finds the channel
        // consistent, and the close complete.
        drop(evicted);
        Ok(())
    }

    /// `try_send_as` with the consumer accepting (one CPU): give it the
    /// message, or claim a slot as usual.
    #[cold]
    #[inline(never)]
    fn try_send_giving(&self, msg: Spill<T>) -> Result<(), TrySendError<T>> {
        match self.give(msg.into_inner()) {
            Ok(()) => Ok(()),
            Err(msg) => self.try_send_claiming(msg, false),
        }
    }

    /// A blocking receive may accept a message directly (one CPU).
    #[inline(always)]
    pub(crate) fn accepts(&self) -> bool {
        self.config.accept
    }

    /// A blocking receive with direct hand-off (one CPU): while the ring is
    /// empty, accepts a message in the accept cell, which a producer fills
    /// instead of claiming a slot (see "Direct hand-off" in the module
    /// docs).
    #[cold]
    #[inline(never)]
    pub(crate) fn recv_accepting(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let accept = &self.accept;
        let got = chan::recv_with(self, deadline, || accept.attempt(|| self.try_recv_as()));
        accept.finish(got)
    }

    /// Direct hand-off: claims an offered message and sends it as its
    /// producer would (a claim of `tail`: another producer may have taken
    /// the slot we freed, and a close marks `tail`, so a claim that fails
    /// puts the message back on offer). `true` if it was sent.
    fn take_offer(&self) -> bool {
        self.handoff.take_with(&self.send_waiters, |msg| {
            match self.claim(&Backoff::new(), false) {
                Claim::Ok(claimed) => {
                    self.fill(claimed, msg);
                    Ok(())
                }
                // Another producer took the slot, or the channel is closed.
                _ => Err(msg),
            }
        })
    }
}

impl<T> Sending<T> for Array<T> {
    /// `Full` only under `Block`. `Last`: the send of `close_with`, which
    /// also closes the channel.
    #[inline(always)]
    fn try_send_as(&self, msg: T, mode: SendMode) -> Result<(), TrySendError<T>> {
        // A `send_many` of ours whose iterator called us goes first.
        chan::flush_batches(self as *const Self as *const (), true);
        let last = mode == SendMode::Last;
        // One CPU: the consumer may be waiting on an empty ring.
        if self.config.accept && !last && self.accept.is_armed() {
            return self.try_send_giving(Spill::new(msg));
        }
        self.try_send_claiming(msg, last)
    }

    fn send_queue(&self) -> &WaitQueue {
        &self.send_waiters
    }

    /// A producer that found the ring full waits briefly for a batch of
    /// free slots (`park::slack_for`) rather than the next one: taking
    /// each slot the moment the consumer frees it keeps the producer
    /// polling the line the consumer writes next (see `park::pause_until`).
    /// It yields rather than spins: a full MPSC ring means the consumer is
    /// the bottleneck, and usually more threads than CPUs want to run
    /// (versus, select over 4 channels with a producer each: 8.9 -> 12.3 M
    /// msg/s spinning, 13.3 yielding; one channel with 2 and 4 producers
    /// unchanged yielding, 6-9% slower spinning).
    ///
    /// Not on a ring of fewer than [`PAUSE_MIN_CAP`] slots: the consumer
    /// drains it in less time than a yield takes, so the producers that
    /// yielded to one another found it empty each time and moved a few
    /// messages per context switch, while the consumer waited for them.
    /// Without the pause, a producer spins in its wait (`park::block_on`)
    /// and takes each batch as it is freed. Two CPUs, u64, `send`/`recv`
    /// loops, medians of 5 runs, two turns (crossbeam-channel beside):
    /// capacity 8, 2/4/8 producers 7.2-8.4/4.4-4.7/3.9-4.7 -> 26/25/23-25
    /// M msg/s (crossbeam 12-16/10-15/8-9); capacity 16, 18-22/14/12-15 ->
    /// 53-106/53-62/25-55 (9-19/8-13/9-11), 236,000 -> 2,900 context
    /// switches; capacity 32, 53-67/53/45-47 -> 99-115/101-105/99-124; a
    /// select over 4 such channels, one producer each, 5.2-5.6 -> 12-13 at
    /// capacity 8, 10 -> 12-13 at 16, but 17 -> 12-14 at 32, and at 48
    /// 20-23 -> 13-15 (the plain loops unchanged there), so the pause
    /// stays from 48 on.
    fn before_send_wait(&self) {
        let cap = self.config.cap;
        if self.config.overflow == Overflow::Block && cap >= PAUSE_MIN_CAP {
            // At least `cap / SLACK_DIVISOR`: a batch of 6 or more.
            let want = cap - park::slack_for::<Slot<T>>(cap);
            park::pause_until(false, || self.head_distance() <= want);
        }
    }
}

impl<T> Receiving for Array<T> {
    type Msg = T;
    type Error = TryRecvError;

    /// A blocking receive found the ring empty: pause (a few microseconds
    /// at most) until a quarter of the ring's messages are written, or the
    /// channel closes, as the SPSC receiver does for its batch. Taking each
    /// message the moment it lands keeps the consumer on the lines the
    /// producers are writing, and their next claim then waits for that
    /// line: with two producers on this 2-core machine, 24 M msg/s without
    /// the pause and 60 M msg/s with it (crossbeam-channel: 44 M/s in the
    /// same run).
    #[cold]
    #[inline(never)]
    fn before_recv_wait(&self) {
        // A quarter of the ring, more than the producers' slack
        // (`park::slack_for`, a batch of at least two lines): with that
        // batch the consumer, faster than one producer, caught up after
        // every batch and spent 28% of its samples polling the line the
        // producer was writing. One producer, two CPUs, u64 (a probe
        // of `versus`'s loop, medians of 7 runs, in turns with the build
        // before):
        // capacity 64, 41-43 -> 53-54 M msg/s (crossbeam-channel 43-59);
        // 128, 55 -> 61-63; 256, 61-62 -> 68-69; 16, 32 and 1024 as before;
        // two and four producers, capacity 1024, as before (58-71).
        let want = self.config.cap / 4;
        if want < 2 || self.config.claiming {
            return;
        }
        // Waits for the `want`-th message from the head by its slot's
        // stamp, not for the tail to move `want` positions: every producer
        // claims through the tail's line, and a consumer polling it took
        // that line from the producers once per poll. One producer, two
        // CPUs, u64 (a probe of `versus`'s loop, medians of 7 runs):
        // capacity 16, 13 -> 22 M msg/s; 32, 21 -> 37; 64, 22 -> 40; 128,
        // 33 -> 53; 256, 47 -> 62 (crossbeam-channel 27, 53, 57, 62, 66).
        // `versus`, capacity 1024: 2, 4 and 8 producers 59-61 -> 69-72,
        // 58 -> 66-67, 56-60 -> 65.
        // (Found inside the poll, which loom never runs: a load outside it
        // would add to every model's interleavings.)
        let laps = &self.config.laps;
        park::pause_until(true, || {
            let head = Pos::of(self.head.load(Ordering::Relaxed), laps);
            // `want - 1 < cap`.
            let last = laps.forward(head, want as u64 - 1);
            self.written(last) || self.config.closed.load(Ordering::Relaxed)
        });
    }

    #[inline(always)]
    fn try_recv_as(&self) -> Result<T, TryRecvError> {
        if self.config.claiming {
            return self.try_recv_claiming();
        }
        let Some(head) = self.ready_head() else {
            return Err(self.empty_or_closed(self.own_head()));
        };
        // SAFETY: `ready_head` found the message of `head` written; we are
        // the only consumer.
        let msg = unsafe { self.read(head.pos) };
        self.passed(head);
        Ok(msg)
    }

    fn recv_queue(&self) -> &WaitQueue {
        &self.recv_waiters
    }
}

/// Where `recv`'s slow path found the message (see
/// `mpsc::Receiver::recv_blocking`).
#[derive(Clone, Copy)]
pub(crate) enum Found {
    /// Our head (not claiming), its message written.
    Head(Head),
    /// In the accept cell, filled by a producer (one CPU).
    Cell,
}

impl<T> Array<T> {
    /// The consumer's own `head` (only the consumer writes it: Relaxed).
    #[inline(always)]
    fn own_head(&self) -> Pos {
        Pos::of(self.head.load(Ordering::Relaxed), &self.config.laps)
    }

    /// The consumer (not claiming): our head, if its message is written.
    #[inline(always)]
    pub(crate) fn ready_head(&self) -> Option<Head> {
        let head = self.own_head();
        // If not: a `send_many` of this thread, whose iterator receives,
        // sends its batch first (a loop of `send` had sent it; see
        // `chan::Batch`), and we look again.
        self.written_head(head).or_else(|| {
            chan::flush_batches(self.pending_key(), false)
                .then(|| self.written_head(head))
                .flatten()
        })
    }

    /// The consumer claims its head with a compare-exchange (the dropping
    /// policies): `recv` then takes the generic path.
    #[inline(always)]
    pub(crate) fn claims_head(&self) -> bool {
        self.config.claiming
    }

    /// After reading the message of our head `head` (not claiming): frees
    /// its slot for the next lap, moves `head` on and tells a waiting
    /// producer. Only `Block` gets here: the other policies claim (until
    /// 2026-12-06 this tested the policy, a branch per message).
    #[inline(always)]
    fn passed(&self, head: Head) {
        debug_assert!(!self.config.claiming);
        let laps = &self.config.laps;
        let Head { pos, index } = head;
        // SAFETY: `index` is `pos`'s (below the capacity).
        let slot = unsafe { self.slots.get(index) };
        slot.stamp
            .store(laps.stamp(laps.next_lap(pos)), Ordering::Release);
        self.head
            .store(laps.next_at(pos, index).word(), Ordering::Release);
        self.notify_senders();
    }

    /// Reads the message `found` names, once, straight to where the caller
    /// wants it, then frees its place.
    ///
    /// # Safety
    ///
    /// `found` came from [`ready_head`](Self::ready_head) or
    /// [`recv_slow`](Self::recv_slow) (not claiming), and nothing was
    /// received since.
    #[inline(always)]
    pub(crate) unsafe fn take_found(&self, found: Found) -> T {
        let cell = match found {
            // SAFETY: `index` is below the capacity.
            Found::Head(head) => unsafe { &self.slots.get(head.index).msg },
            Found::Cell => self.accept.cell(),
        };
        // SAFETY: `Head(pos)`: the stamp of our head said its message is
        // written, and only the consumer (us, not claiming) reads it;
        // `Cell`: `disarm_in_place` found the cell filled, and nobody else
        // acts on it until we arm it again. Either way the message is
        // initialized and read once, here.
        let msg = cell.with(|p| unsafe { p.read().assume_init() });
        match found {
            Found::Head(head) => self.passed(head),
            Found::Cell => self.accept.emptied(),
        }
        msg
    }

    /// `recv` when our head's message is not written yet (not claiming):
    /// waits until there is a message and says where (`Err` once the
    /// channel is closed and drained).
    #[inline(never)]
    pub(crate) fn recv_slow(&self) -> Result<Found, RecvError> {
        chan::recv_with(self, None, || self.locate()).map_err(|_| RecvError)
    }

    /// One attempt of `recv_slow`: `try_recv` (with the accept cell, as
    /// `recv_accepting`'s attempt) without the read.
    fn locate(&self) -> Result<Found, TryRecvError> {
        let in_ring = || match self.ready_head() {
            Some(head) => Ok(Found::Head(head)),
            None => Err(self.empty_or_closed(self.own_head())),
        };
        if !self.config.accept {
            return in_ring();
        }
        self.accept.attempt_with(|| Found::Cell, in_ring)
    }

    /// A `recv` would not wait: the message of `head` is written, or the
    /// channel is closed (a select's readiness; reads what `try_recv`
    /// reads, not the producers' `tail`).
    pub(crate) fn recv_ready(&self) -> bool {
        // A pending batch of this thread (see `ready_head`).
        chan::flush_batches(self.pending_key(), false);
        let head = self.head();
        self.written(head) || self.config.closed.load(Ordering::Acquire)
    }

    /// How far `tail` is ahead of `head` (a hint: two Relaxed loads).
    fn head_distance(&self) -> usize {
        let laps = &self.config.laps;
        let tail = Pos::of(self.tail.load(Ordering::Relaxed), laps);
        let head = Pos::of(self.head.load(Ordering::Relaxed), laps);
        laps.distance(tail, head) as usize
    }

    /// A `send` would not wait: room, a dropping policy, or closed.
    pub(crate) fn send_ready(&self) -> bool {
        self.config.overflow != Overflow::Block || self.is_closed() || self.len() < self.config.cap
    }
}

impl<T> Core for Array<T> {
    fn len(&self) -> usize {
        let laps = &self.config.laps;
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) != tail {
                continue;
            }
            // Positions claimed on a full ring and not yet evicted can put
            // the tail up to a lap ahead: clamp.
            let len = laps.distance(Pos::of(tail, laps), Pos::of(head, laps));
            return (len as usize).min(self.config.cap);
        }
    }

    fn capacity(&self) -> usize {
        self.config.cap
    }

    fn is_closed(&self) -> bool {
        self.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn overflow(&self) -> Overflow {
        self.config.overflow
    }

    fn close(&self) -> bool {
        // A `send_many` of ours whose iterator closes: its messages were
        // sent before the close (if they find room).
        chan::flush_batches(self as *const Self as *const (), false);
        if close::set_mark(&*self.tail, CLOSED) {
            self.closed_by_us();
            true
        } else {
            false
        }
    }
}

impl<T> Drop for Array<T> {
    fn drop(&mut self) {
        // Last handle: every claimed position has been written. (Messages
        // still on offer drop with `handoff`.)
        self.accept.drop_accepted();
        let laps = &self.config.laps;
        let tail = Pos::of(self.tail.load(Ordering::Relaxed), laps);
        let head = Pos::of(self.head.load(Ordering::Relaxed), laps);
        crate::ring::drop_positions(
            head,
            tail,
            |pos| laps.next(pos),
            // SAFETY: `pos` is in `head..tail`, so its message is
            // initialized, and no other handle exists.
            |pos| drop(unsafe { self.read(pos) }),
        );
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::RecvTimeoutError;
    use std::time::Duration;

    /// A small ring's stamps are written a chunk at a time, by the claim
    /// that first reaches past `ready`; a large ring is zeroed at once.
    #[test]
    fn first_lap_stamps_are_written_by_chunks() {
        let chunk = init_chunk::<u64>();
        assert_eq!(chunk, INIT_CHUNK_BYTES / 16);
        let cap = 4 * chunk + 3;
        let chan = Array::<u64>::new(cap, Overflow::Block);
        let ready = || chan.config.ready.load(Ordering::Relaxed);
        assert_eq!(ready(), chunk);
        // Nothing past `ready` is looked at by the consumer.
        assert_eq!(chan.try_recv_as(), Err(TryRecvError::Empty));
        for i in 0..chunk as u64 {
            chan.try_send_as(i, SendMode::Try).unwrap();
        }
        assert_eq!(ready(), chunk, "no claim has reached past the first chunk");
        chan.try_send_as(chunk as u64, SendMode::Try).unwrap();
        assert_eq!(ready(), 2 * chunk);
        for i in chunk as u64 + 1..cap as u64 {
            chan.try_send_as(i, SendMode::Try).unwrap();
        }
        assert_eq!(ready(), cap, "the last chunk stops at the capacity");
        assert!(matches!(
            chan.try_send_as(0, SendMode::Try),
            Err(TrySendError::Full(0))
        ));
        for i in 0..cap as u64 {
            assert_eq!(chan.try_recv_as(), Ok(i));
        }
        // A second lap runs on the stamps of the first.
        chan.try_send_as(7, SendMode::Try).unwrap();
        assert_eq!(chan.try_recv_as(), Ok(7));

        // Messages larger than a chunk: one slot at a time.
        let big = Array::<[u8; 2 * INIT_CHUNK_BYTES]>::new(3, Overflow::Block);
        assert_eq!(big.config.ready.load(Ordering::Relaxed), 1);
        big.try_send_as([1; 2 * INIT_CHUNK_BYTES], SendMode::Try)
            .unwrap();
        big.try_send_as([2; 2 * INIT_CHUNK_BYTES], SendMode::Try)
            .unwrap();
        assert_eq!(big.config.ready.load(Ordering::Relaxed), 2);
        assert_eq!(big.try_recv_as().map(|m| m[0]), Ok(1));
        assert_eq!(big.try_recv_as().map(|m| m[0]), Ok(2));

        // Beyond `LAZY_MAX_BYTES`: one zeroed allocation, every stamp ready.
        let large = LAZY_MAX_BYTES / 16 + 1;
        let chan = Array::<u64>::new(large, Overflow::Block);
        assert_eq!(chan.config.ready.load(Ordering::Relaxed), large);
    }

    /// crossbeam-channel #997: a producer that has claimed a slot but not
    /// yet written it must not make `try_recv` wait; it returns `Empty`, and
    /// the message arrives once written. (An implementation that waited for
    /// the stamp would hang here: nobody else will ever write the slot.)
    #[test]
    fn try_recv_does_not_wait_for_a_claimed_unwritten_slot() {
        let chan = Array::<u32>::new(4, Overflow::Block);
        let try_recv = || chan.try_recv_as();
        chan.try_send_as(1, SendMode::Try).unwrap();
        let Claim::Ok(claimed) = chan.claim(&Backoff::new(), false) else {
            panic!("room for a claim")
        };
        chan.try_send_as(3, SendMode::Try).unwrap(); // claimed and written after the stalled one
        assert_eq!(try_recv(), Ok(1));
        assert_eq!(try_recv(), Err(TryRecvError::Empty));
        let timed = chan::recv_with(
            &chan,
            std::time::Instant::now().checked_add(Duration::from_millis(5)),
            || chan.try_recv_as(),
        );
        assert_eq!(timed, Err(RecvTimeoutError::Timeout));
        assert!(chan.close());
        assert_eq!(
            try_recv(),
            Err(TryRecvError::Empty),
            "closed but not drained"
        );
        // The claim above, written at last.
        chan.fill(claimed, 2);
        assert_eq!(try_recv(), Ok(2));
        assert_eq!(try_recv(), Ok(3));
        assert_eq!(try_recv(), Err(TryRecvError::Closed));
    }
}
