//! The broadcast ring: one ring shared by every sender and subscriber. The
//! algorithm, its words and its orderings are described in the module docs
//! of `broadcast`.

use super::TryRecvError;
use crate::chan::{Core, SendMode, Sending, MAX_BATCH, MIN_BATCH};
use crate::close;
use crate::error::{SendError, TrySendError};
use crate::pad::{Spaced, SpacedEnd};
use crate::park::{self, WaitQueue, SLACK_DIVISOR};
use crate::ring::{self, Laps, Pos};
use crate::sync::{AtomicU64, AtomicUsize, Backoff, Ordering, UnsafeCell};
use crate::Overflow;
use std::cell::Cell;
use std::mem::MaybeUninit;

/// Low bits of `tail` and of every stamp that hold flags; the position is
/// above them.
pub(crate) const FLAG_BITS: u32 = 18;
/// The least number of lap bits a position keeps (with at most
/// `MAX_CAPACITY` slots).
pub(crate) const MIN_LAP_BITS: u32 = 14;
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
pub(crate) const MAX_SUBSCRIBERS: u64 = SUBS;
/// Largest capacity (keeps at least `MIN_LAP_BITS` bits of lap).
pub(crate) const MAX_CAPACITY: usize = 1 << 32;
/// How far ahead of its claim a sender prefetches, in bytes of slots (see
/// [`Chan::new`]): three lines.
const PREFETCH_BYTES: usize = 192;

pub(crate) struct Slot<T> {
    stamp: AtomicU64,
    /// Subscribers that have not passed the message yet; written by the
    /// sender before it publishes `FULL`.
    refs: AtomicUsize,
    msg: UnsafeCell<MaybeUninit<T>>,
}

// `repr(C)`: the `Spaced` fields keep their order and their distance.
#[repr(C)]
pub(crate) struct Chan<T> {
    /// `position | CLOSED | subscriber count`.
    tail: Spaced<AtomicU64>,
    dropped: Spaced<AtomicU64>,
    /// Keeps the read-mostly fields below off `dropped`'s line.
    _gap: SpacedEnd,
    laps: Laps<FLAG_BITS>,
    cap: usize,
    /// The first position (for `len` before the first lap completes).
    start: Pos,
    overflow: Overflow,
    /// How many positions past its claim a `Block` sender prefetches (0:
    /// not at all); see [`Chan::new`].
    prefetch: u64,
    slots: Box<[Slot<T>]>,
    recv_waiters: WaitQueue,
    send_waiters: WaitQueue,
    _end: SpacedEnd,
}

// SAFETY: messages are moved in by senders and out by the last subscriber or
// an evicting sender, on any thread (`T: Send`); subscribers on different
// threads clone the same message through `&T` at the same time (`T: Sync`).
// Every access to a slot's message is ordered by its stamp (see the module
// docs).
unsafe impl<T: Send + Sync> Send for Chan<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Chan<T> {}

impl<T> Chan<T> {
    /// A channel of `cap` slots on `laps` whose positions start at `start`,
    /// with one subscriber.
    ///
    /// A `Block` sender that claimed a position asks for the slot about
    /// [`PREFETCH_BYTES`] on (but less than a quarter of the ring) to be
    /// brought into its core's cache for writing (`ring::prefetch_for_write`):
    /// the sender's claims otherwise stalled on that slot's stamp, whose line
    /// the subscriber that freed it a lap ago still holds. Two CPUs, one
    /// subscriber, u64, capacity 1024: 42-54 -> 60-70 M msg/s (8 positions
    /// ahead; 4: 45-55, 12 and 16 like 8); four subscribers unchanged.
    /// Not on one CPU, where every thread shares the cache.
    pub(crate) fn new(cap: usize, laps: Laps<FLAG_BITS>, start: Pos, overflow: Overflow) -> Self {
        let ahead = (PREFETCH_BYTES / std::mem::size_of::<Slot<T>>()).max(1);
        let prefetch = if ring::PREFETCH && cap >= 4 * ahead && !park::single_core() {
            ahead as u64
        } else {
            0
        };
        Chan {
            tail: Spaced::new(AtomicU64::new(start.word() | 1)),
            dropped: Spaced::new(AtomicU64::new(0)),
            _gap: SpacedEnd::new(),
            slots: {
                // Reserved first: a capacity the system cannot provide is
                // refused with a panic (`collect` alone aborted the process).
                let mut slots = Vec::new();
                if slots.try_reserve_exact(cap).is_err() {
                    panic!(
                        "broadcast::channel: capacity {cap} ({} bytes) could not be allocated",
                        cap.saturating_mul(std::mem::size_of::<Slot<T>>())
                    );
                }
                slots.extend(laps.lap_positions(start).map(|p| Slot {
                    stamp: AtomicU64::new(p.word()),
                    refs: AtomicUsize::new(0),
                    msg: UnsafeCell::new(MaybeUninit::uninit()),
                }));
                slots.into_boxed_slice()
            },
            laps,
            cap,
            start,
            overflow,
            prefetch,
            recv_waiters: WaitQueue::new(),
            send_waiters: WaitQueue::new(),
            _end: SpacedEnd::new(),
        }
    }

    #[inline(always)]
    fn slot(&self, pos: Pos) -> &Slot<T> {
        let index = self.laps.index(pos);
        debug_assert!(index < self.slots.len());
        // SAFETY: a position's index is below the capacity, the length of
        // `slots` (`Laps::index`). (A bounds check here cost about three
        // instructions on each of the four or so slot look-ups per message.)
        unsafe { self.slots.get_unchecked(index) }
    }

    #[inline(always)]
    fn next(&self, pos: Pos) -> Pos {
        self.laps.next(pos)
    }

    #[inline(always)]
    fn pos(&self, word: u64) -> Pos {
        Pos::of(word, &self.laps)
    }

    /// How many positions `pos` is behind the tail word `tail`.
    #[inline(always)]
    pub(crate) fn behind(&self, tail: u64, pos: Pos) -> u64 {
        self.laps.distance(self.pos(tail), pos)
    }

    /// The tail word (`Acquire`).
    pub(crate) fn tail(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    pub(crate) fn receiver_count(&self) -> usize {
        (self.tail.load(Ordering::Relaxed) & SUBS) as usize
    }

    pub(crate) fn evicting(&self) -> bool {
        self.overflow == Overflow::DropOldest
    }

    pub(crate) fn recv_queue(&self) -> &WaitQueue {
        &self.recv_waiters
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
            let last = self.laps.forward(self.pos(tail), want - 1);
            tail & CLOSED != 0 || self.slot(last).stamp.load(Ordering::Relaxed) == last.word()
        });
    }

    /// A receive found nothing: pause (a few microseconds at most) until
    /// a batch waits, so that subscribers that caught up do not follow the
    /// sender slot by slot (each on the lines it is writing, in lockstep
    /// with each other). The batch is `cap / SLACK_DIVISOR` messages, but
    /// a quarter of a small ring (up to 64): until 2026-12-06 it was an
    /// eighth everywhere, and a subscriber of a small ring caught up after
    /// every few lines. Two CPUs pinned, one subscriber, u64, medians of 7
    /// in turns with the build before (which also had the previous
    /// `take_run_block`): a loop of `send` against `recv_many` in calls of
    /// 64, capacity 64 34.4 -> 38.2 M msg/s, 128 41.8 -> 60.4, 256 63.2 ->
    /// 65.4, 1024 level (74); against a loop of `recv`, capacity 64 20.8 ->
    /// 23.9, 256 50.5 -> 56.6, 1024 level; `send_many` against `recv_many`,
    /// capacity 256 90.5 -> 97.7, 1024 level; `versus`'s 1->4 and 1->1
    /// rows and four subscribers at capacity 256 and 1024 level (medians of
    /// 9 and 11, with the slow runs of 1->4 in both builds).
    #[cold]
    pub(crate) fn wait_for_batch(&self, head: Pos) {
        let want = (self.cap / SLACK_DIVISOR).max((self.cap / 4).min(64)) as u64;
        if want < 2 {
            return;
        }
        // Polls the stamp of the batch's last slot, not `tail`: the sender
        // claims through the tail's line, and a subscriber polling it took
        // that line from the sender once per poll (one subscriber, two
        // CPUs, u64: 47 -> 51-53 M msg/s). A close is not seen here: it
        // ends the pause no later than its last round.
        let last = self.laps.forward(head, want - 1);
        let slot = self.slot(last);
        park::pause_until(!self.crowded(), || {
            slot.stamp.load(Ordering::Relaxed) & !(LOCK | BUSY) == last.word() | FULL
        });
    }

    /// More subscribers and a sender than CPUs: a thread we wait for is
    /// probably not running, so waits yield instead of spinning.
    pub(crate) fn crowded(&self) -> bool {
        self.receiver_count() + 1 > park::cpus()
    }

    // ---- sending ----

    /// One attempt to send under `Block`; `last` also closes the channel.
    #[inline(always)]
    fn try_send_block(&self, msg: T, last: bool) -> Result<(), TrySendError<T>> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(TrySendError::Closed(msg));
            }
            let pos = self.pos(tail);
            let slot = self.slot(pos);
            // Acquire: the subscribers that freed the slot are done with it.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos.word() {
                let close = if last { CLOSED } else { 0 };
                let new = self.next(pos).word() | (tail & SUBS) | close;
                match self.tail.compare_exchange_weak(
                    tail,
                    new,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        if self.prefetch != 0 {
                            ring::prefetch_for_write(
                                self.slot(self.laps.forward(pos, self.prefetch)),
                            );
                        }
                        self.publish(slot, pos, msg, tail & SUBS);
                        return Ok(());
                    }
                    Err(now) => {
                        tail = now;
                        backoff.spin();
                    }
                }
            } else if stamp == self.laps.prev_lap(pos).word() | FULL {
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
    fn publish(&self, slot: &Slot<T>, pos: Pos, msg: T, subs: u64) {
        slot.msg.with_mut(|p| {
            // SAFETY: this thread claimed `pos` and saw the slot free for it
            // (stamp == pos, Acquire): no subscriber reads the message until
            // the stamp below says FULL, and the previous message is gone.
            unsafe { p.write(MaybeUninit::new(msg)) }
        });
        slot.refs.store(subs as usize, Ordering::Relaxed);
        // Release: publishes the message and `refs`.
        slot.stamp.store(pos.word() | FULL, Ordering::Release);
        self.recv_waiters.notify_all();
    }

    /// Claims positions under `DropOldest` (never waits for room): `n`
    /// positions, `last` also closes. Returns the first position and the
    /// subscriber count, or `None` if the channel is closed.
    fn claim_evicting(&self, n: usize, last: bool) -> Option<(Pos, u64)> {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return None;
            }
            let pos = self.pos(tail);
            let mut end = pos;
            for _ in 0..n {
                end = self.next(end);
            }
            let close = if last { CLOSED } else { 0 };
            let new = end.word() | (tail & SUBS) | close;
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
    fn write_evicting(&self, pos: Pos, msg: T, subs: u64) -> Option<T> {
        let slot = self.slot(pos);
        let prev_full = self.laps.prev_lap(pos).word() | FULL;
        let backoff = Backoff::new();
        let evicted = loop {
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp & !BUSY == pos.word() {
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
                    .fetch_add(self.laps.lap_word().wrapping_sub(LOCK), Ordering::Release);
                if missed {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
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

    /// How many positions from the tail on are free now, up to `max` (a
    /// snapshot): the stamps `claim_free` reads next, so the lines it
    /// touches are the ones the claim will. (Counting the messages held
    /// instead, `held`, is a search over stamps all over the ring, and cost
    /// `send_many` a quarter of its speed.)
    fn free_ahead(&self, max: usize) -> usize {
        let mut pos = self.pos(self.tail.load(Ordering::Relaxed));
        // Slots are freed in order (each when its slowest subscriber
        // passes it, and every subscriber passes them in order), so if the
        // last of `max` is free they all are: one line to look at instead
        // of every line of the run, which a receiver on another core may
        // be writing.
        if max <= self.cap && max > 0 {
            let last = self.laps.forward(pos, max as u64 - 1);
            if self.slot(last).stamp.load(Ordering::Relaxed) == last.word() {
                return max;
            }
        }
        let mut n = 0;
        while n < max && self.slot(pos).stamp.load(Ordering::Relaxed) == pos.word() {
            pos = self.next(pos);
            n += 1;
        }
        n
    }

    /// Claims up to `max` free positions under `Block` with one
    /// compare-exchange. `Ok(None)`: no room.
    #[allow(clippy::result_unit_err)]
    fn claim_free(&self, max: usize) -> Result<Option<(Pos, usize, u64)>, ()> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(());
            }
            let pos = self.pos(tail);
            let mut end = pos;
            let mut n = 0;
            // Acquire: each slot's previous message is gone.
            while n < max && self.slot(end).stamp.load(Ordering::Acquire) == end.word() {
                end = self.next(end);
                n += 1;
            }
            if n == 0 {
                let now = self.tail.load(Ordering::Relaxed);
                if now == tail
                    && self.slot(pos).stamp.load(Ordering::Acquire)
                        == self.laps.prev_lap(pos).word() | FULL
                {
                    return Ok(None);
                }
                backoff.snooze();
                tail = now;
                continue;
            }
            match self.tail.compare_exchange_weak(
                tail,
                end.word() | (tail & (CLOSED | SUBS)),
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

    /// `send_many`: a loop of `send` that takes up to [`MAX_BATCH`]
    /// positions with one claim (`Block`; `DropOldest` sends one at a
    /// time). The iterator runs only while we hold no claim, and its
    /// messages wait in a [`crate::chan::Batch`] until they are enqueued
    /// (see there for an iterator that calls into this channel, panics or
    /// waits for its next item).
    pub(crate) fn send_many(
        &self,
        iter: &mut impl Iterator<Item = T>,
    ) -> Result<usize, SendError<Vec<T>>> {
        let mut taken = 0;
        if self.evicting() {
            // Evicting: one message at a time, as a loop of `send` (each
            // evicted message is dropped before the next is taken).
            for msg in iter {
                taken += 1;
                if let Err(e) = crate::chan::send(self, msg, None, SendMode::Wait) {
                    return Err(SendError(vec![e.into_inner()]));
                }
            }
            return Ok(taken);
        }
        let pending = crate::chan::Batch::new(self);
        let _registered = pending.register();
        let mut batch = Vec::new();
        loop {
            // No more than looks free (a loop of `send` on a full channel
            // waits in the send of the item it just took, and asks for no
            // other): room for `MIN_BATCH` first (one stamp to read when
            // there is), then for a whole batch (no more than the ring
            // holds, so that there too one stamp tells).
            let room = match self.free_ahead(MIN_BATCH.min(self.cap)) {
                r if r < MIN_BATCH => r,
                _ => self.free_ahead(MAX_BATCH.min(self.cap)),
            };
            if room < MIN_BATCH {
                // Full, or nearly (see `MIN_BATCH`): one message at a time
                // (up to a batch's worth, then look again), without the
                // batch, sent before the iterator is asked for the next,
                // as in a loop of `send`.
                for _ in 0..MAX_BATCH {
                    let Some(msg) = iter.next() else {
                        return Ok(taken);
                    };
                    taken += 1;
                    let failed = match self.try_send_block(msg, false) {
                        Ok(()) => None,
                        // Waits for room, as `send`.
                        Err(TrySendError::Full(msg)) => {
                            crate::chan::send(self, msg, None, SendMode::Wait)
                                .err()
                                .map(|e| e.into_inner())
                        }
                        Err(TrySendError::Closed(msg)) => Some(msg),
                    };
                    if let Some(msg) = failed {
                        return Err(SendError(vec![msg]));
                    }
                }
                continue;
            }
            let (n, ended) = pending.collect(iter, room, || {
                self.tail.load(Ordering::Relaxed) & CLOSED != 0
            });
            taken += n;
            pending.take_into(&mut batch);
            while !batch.is_empty() {
                let claim = match self.claim_free(batch.len()) {
                    Ok(claim) => claim,
                    Err(()) => return Err(SendError(batch)),
                };
                let Some((mut pos, n, subs)) = claim else {
                    // Full: wait for room for one, like `send`.
                    let msg = batch.remove(0);
                    if let Err(e) = crate::chan::send(self, msg, None, SendMode::Wait) {
                        batch.insert(0, e.into_inner());
                        return Err(SendError(batch));
                    }
                    continue;
                };
                // In order, from the front (a claim of the whole batch, as
                // usual, leaves nothing to shift).
                for msg in batch.drain(..n) {
                    let slot = self.slot(pos);
                    slot.msg.with_mut(|p| {
                        // SAFETY: `pos` is claimed by this thread and its
                        // slot was free for it (Acquire in `claim_free`).
                        unsafe { p.write(MaybeUninit::new(msg)) }
                    });
                    slot.refs.store(subs as usize, Ordering::Relaxed);
                    slot.stamp.store(pos.word() | FULL, Ordering::Release);
                    pos = self.next(pos);
                }
                self.recv_waiters.notify_all();
            }
            if ended {
                return Ok(taken);
            }
        }
    }

    fn wake_all(&self) {
        self.recv_waiters.notify_all();
        self.send_waiters.notify_all();
    }

    /// Messages held: positions not yet passed by every subscriber nor
    /// evicted. They form the last `k` positions before the tail; found by
    /// binary search (a snapshot).
    fn held(&self) -> usize {
        let tp = self.pos(self.tail.load(Ordering::Acquire));
        let sent = self.laps.distance(tp, self.start).min(self.cap as u64);
        let held_at = |k: u64| {
            let pos = self.laps.back(tp, k);
            self.pos(self.slot(pos).stamp.load(Ordering::Acquire)) == pos
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
    pub(crate) fn join(&self) -> Pos {
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
                Ok(_) => return self.pos(tail),
                Err(now) => tail = now,
            }
        }
    }

    /// A new subscriber's head: messages sent after this call.
    pub(crate) fn subscribe(&self) -> Pos {
        // A `send_many` of ours whose iterator subscribes: its messages
        // were sent before, and the new subscriber must not see them.
        crate::chan::flush_batches(self as *const Self as *const (), true);
        self.join()
    }

    /// A new subscriber at `head` (a clone of a subscriber there, which holds
    /// its positions meanwhile): joins and retains every position it counts
    /// in without having been counted.
    pub(crate) fn join_at(&self, head: Pos) {
        let tp = self.join();
        let mut pos = self.first_held(head, tp);
        while pos != tp {
            self.visit(pos, Visit::Retain);
            pos = self.next(pos);
        }
    }

    /// Leaves the subscriber count (closing the channel if it was the last)
    /// and releases the positions from `head` on that counted this
    /// subscriber: the last subscriber to go takes the messages no one has
    /// received with it.
    pub(crate) fn leave(&self, head: Pos) {
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
        let tp = self.pos(tail);
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
    fn first_held(&self, head: Pos, tp: Pos) -> Pos {
        if self.evicting() && self.laps.distance(tp, head) > self.cap as u64 {
            self.laps.prev_lap(tp)
        } else {
            head
        }
    }

    /// Adds or removes this subscriber's share of the message at `pos`
    /// (claimed, perhaps not written yet) without receiving it.
    fn visit(&self, pos: Pos, visit: Visit) {
        let slot = self.slot(pos);
        if !self.evicting() {
            // The message stays until we pass it: wait until it is written
            // (its sender is between claim and publish).
            park::wait_brief(|| slot.stamp.load(Ordering::Acquire) == pos.word() | FULL);
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
            stamp & !BUSY == pos.word() | FULL | LOCK
                || self.behind(self.tail.load(Ordering::Acquire), pos) > self.cap as u64
        });
    }

    // ---- receiving ----

    /// `Block`: this subscriber passes the message at `pos` (already read or
    /// skipped): the last one to pass it drops it and frees the slot.
    #[inline]
    fn pass_block(&self, slot: &Slot<T>, pos: Pos) {
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

    /// `recv_many` under `Block`: takes up to `max` messages from `head`
    /// on, in order, into `buf`, and stops at the first that is not there.
    /// As a loop of `try_recv`, except that waiting senders are told once
    /// about the slots it freed (before any `Clone` runs, and at the end)
    /// rather than once per slot: one look at the send queue per batch.
    ///
    /// The messages it is the last subscriber of are moved out with the
    /// position and the slot's index carried from one message to the next
    /// in registers, each part of the run (up to `MAX_BATCH` messages)
    /// written into room reserved before it, and `head` and the buffer's
    /// length stored once per part; the ones other subscribers still have
    /// to read are cloned out of line (`take_shared`). Until 2026-12-06
    /// each message's position went through `head` and the `Vec`'s
    /// length, a store the next message's load waited for. One thread,
    /// 1000 u64 sent then received, the receive phase, pinned: calls of
    /// 256 630-640 -> 780-815 M msg/s (a loop of `recv`: 670-735), calls
    /// of 16 475-485 -> 600-670 (still below the loop: the call costs
    /// about 10 ns); two subscribers, the one that clones as before
    /// (170-185), the last one 640-655 -> 750-830. Two CPUs pinned, a
    /// loop of `send` against it: capacity 1024 as before (78), capacity
    /// 64 33.8 -> 32.3 (medians of 9; the faster receiver waits on the
    /// sender's lines sooner), a loop of `recv` 22.
    ///
    /// A version that kept the position, the ring's geometry and the
    /// buffer's end in locals for every message, the cloned ones too,
    /// measured level with the per-message loop (2026-12-05): the clone's
    /// branch in the loop cost the moving loop its registers.
    pub(crate) fn take_run_block(&self, head: &Cell<Pos>, buf: &mut Vec<T>, max: usize) -> usize
    where
        T: Clone,
    {
        debug_assert!(!self.evicting());
        // The ring's geometry and address in locals (read through `self`,
        // the compiler loads them again after every `Acquire`), as MPSC's
        // `try_recv_many` (where it took the loop from about 32
        // instructions a message to 26); here it measured level with the
        // loop before it
        // (one thread, calls of 16 589 / 601, 256 744 / 722 M msg/s).
        let laps = self.laps;
        let slots = self.slots.as_ptr();
        let lap = laps.lap_word();
        let mut freed = false;
        let mut n = 0;
        // The position as its slot's index and its lap (`laps.at`): a
        // message's position is not computed from the previous one's.
        // Moved in segments that end at the ring's end: inside one, the
        // next word is this one's plus `Laps::UNIT`, with no test of the
        // ring's end and no lap to carry (the loop's one dependency is an
        // add). One thread, 1000 u64 in then out, two CPUs pinned, medians
        // of 5 in turns with the build before: calls of 16 620 -> 700 M
        // msg/s, 64 700 -> 860, 256 730 -> 927 (a loop of `recv`
        // 700-725). With the batch of `wait_for_batch` as it was, a loop
        // of `send` on another CPU against it fell at small capacities (64
        // 34.6 -> 31.4, 128 42.2 -> 37.3): the faster subscriber caught up
        // sooner. With the larger batch both gain (see there).
        let pos = head.get();
        let mut index = laps.index(pos);
        let mut lap_of = laps.stamp(pos);
        while n < max {
            let end = n + (max - n).min(MAX_BATCH);
            buf.reserve(end - n);
            let (base, dst) = (buf.len(), buf.as_mut_ptr());
            let mut k = 0;
            let (mut shared, mut stopped) = (false, false);
            while !stopped && n + k < end {
                // The slots from `index` to the ring's end (or to the
                // part's end), all of one lap: each position's word is the
                // one before plus `UNIT`, and no message carries the lap.
                let seg = (end - n - k).min(laps.slots() - index);
                let mut word = laps.at(lap_of, index).word();
                let mut j = 0;
                while j < seg {
                    // SAFETY: `index + j` is below the capacity (the length
                    // of `slots`, which live as long as `self`).
                    let slot = unsafe { &*slots.add(index + j) };
                    // Acquire: the sender's write of the message and `refs`.
                    if slot.stamp.load(Ordering::Acquire) != word | FULL {
                        stopped = true;
                        break;
                    }
                    // Acquire: the other subscribers' reads are done if we
                    // are the only one left (as in `try_take`).
                    if slot.refs.load(Ordering::Acquire) != 1 {
                        (shared, stopped) = (true, true);
                        break;
                    }
                    let msg = slot.msg.with(|p| {
                        // SAFETY: as in `try_take`: the last subscriber
                        // counted in `refs`, we own the message.
                        unsafe { p.read().assume_init() }
                    });
                    // SAFETY: `base + k + j` is below `end - n` past the
                    // length, reserved above.
                    unsafe { dst.add(base + k + j).write(msg) };
                    // Release: senders that see the slot free see it
                    // emptied.
                    slot.stamp.store(word.wrapping_add(lap), Ordering::Release);
                    word = word.wrapping_add(Laps::<FLAG_BITS>::UNIT);
                    j += 1;
                }
                k += j;
                if index + j == laps.slots() {
                    index = 0;
                    lap_of = lap_of.wrapping_add(lap);
                } else {
                    index += j;
                }
            }
            // SAFETY: the `k` messages past `base` were written above.
            unsafe { buf.set_len(base + k) };
            n += k;
            // Every message moved out freed its slot.
            freed |= k > 0;
            head.set(laps.at(lap_of, index));
            if shared {
                // User code next (`Clone`), which might wait for a sender
                // that waits for the room we made: tell them first.
                if std::mem::take(&mut freed) {
                    self.send_waiters.notify_all();
                }
                let (cloned, more) = self.take_shared(head, buf, max - n);
                n += cloned;
                if !more {
                    break;
                }
                let pos = head.get();
                index = laps.index(pos);
                lap_of = laps.stamp(pos);
            } else if n < end {
                break;
            }
        }
        if freed {
            self.send_waiters.notify_all();
        }
        n
    }

    /// `take_run_block`'s messages that other subscribers still have to
    /// read: up to `max` of them cloned, as a loop of `try_recv` does,
    /// `head` past each before its `Clone` runs (a panicking `Clone` has
    /// passed it) and read again after it (the clone may receive from this
    /// subscriber). Returns how many, and whether the run goes on (the
    /// next message is there, and we are its last subscriber). Out of
    /// line: the moving loop keeps its registers.
    #[inline(never)]
    fn take_shared(&self, head: &Cell<Pos>, buf: &mut Vec<T>, max: usize) -> (usize, bool)
    where
        T: Clone,
    {
        let mut n = 0;
        while n < max {
            let pos = head.get();
            let slot = self.slot(pos);
            // Acquire: the sender's write of the message and `refs`.
            if slot.stamp.load(Ordering::Acquire) != pos.word() | FULL {
                return (n, false);
            }
            // Acquire: as in `try_take`.
            if slot.refs.load(Ordering::Acquire) == 1 {
                return (n, true);
            }
            head.set(self.next(pos));
            buf.push(self.clone_passing(slot, pos));
            n += 1;
        }
        (n, false)
    }

    /// `Block`, another subscriber still to come: clones the message of
    /// `pos`, whose FULL stamp the caller acquired, and passes it (also if
    /// `Clone` panics).
    #[inline]
    fn clone_passing(&self, slot: &Slot<T>, pos: Pos) -> T
    where
        T: Clone,
    {
        let guard = PassBlock {
            chan: self,
            slot,
            pos,
        };
        let msg = slot.msg.with(|p| {
            // SAFETY: FULL (Acquire, by the caller) says it is written; it
            // stays until we pass it (we are counted in `refs`).
            unsafe { (*p).assume_init_ref().clone() }
        });
        drop(guard);
        msg
    }

    /// `Block`: frees the slot of `pos` for the next lap.
    #[inline]
    fn free_block(&self, slot: &Slot<T>, pos: Pos) {
        // Release: senders that see the slot free see it emptied.
        slot.stamp
            .store(self.laps.next_lap(pos).word(), Ordering::Release);
        self.send_waiters.notify_one();
    }

    /// `DropOldest`: enters the slot of `pos` if it holds that message
    /// (raising the busy count, which keeps evicters out).
    #[inline]
    fn enter<'a>(&'a self, slot: &'a Slot<T>, pos: Pos) -> Option<Inside<'a, T>> {
        // Acquire: if the message is being evicted, the tail we read next
        // shows the evicting claim (see `write_evicting`).
        if slot.stamp.load(Ordering::Acquire) & !BUSY != pos.word() | FULL {
            return None;
        }
        // Acquire: the sender's write of the message and `refs`.
        let before = slot.stamp.fetch_add(1, Ordering::Acquire);
        if before & !BUSY == pos.word() | FULL {
            Some(Inside { chan: self, slot })
        } else {
            slot.stamp.fetch_sub(1, Ordering::Release);
            None
        }
    }

    /// Receives the message at `head` if it is there.
    #[inline]
    pub(crate) fn try_recv(&self, head: &Cell<Pos>) -> Result<T, TryRecvError>
    where
        T: Clone,
    {
        match self.try_take(head) {
            Some(msg) => Ok(msg),
            None => self.try_recv_missing(head),
        }
    }

    /// `try_recv` found no message at `head`.
    #[cold]
    #[inline(never)]
    fn try_recv_missing(&self, head: &Cell<Pos>) -> Result<T, TryRecvError>
    where
        T: Clone,
    {
        // A `send_many` of this thread, whose iterator receives: its batch
        // goes first (a loop of `send` had sent it; see `chan::Batch`).
        if crate::chan::flush_batches(self as *const Self as *const (), false) {
            if let Some(msg) = self.try_take(head) {
                return Ok(msg);
            }
        }
        Err(self.missing(head))
    }

    /// The message at `head`, if it is there: `try_recv` without the
    /// reason it is not.
    #[inline(always)]
    fn try_take(&self, head: &Cell<Pos>) -> Option<T>
    where
        T: Clone,
    {
        let pos = head.get();
        let slot = self.slot(pos);
        if !self.evicting() {
            // Acquire: the sender's write of the message and `refs`.
            if slot.stamp.load(Ordering::Acquire) == pos.word() | FULL {
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
                    return Some(msg);
                }
                return Some(self.clone_passing(slot, pos));
            }
        } else if let Some(inside) = self.enter(slot, pos) {
            head.set(self.next(pos));
            // Acquire: the other subscribers' reads are done if we are the
            // only one left. Then (unless an evicter holds LOCK, and will
            // move the message out itself) we take LOCK and move the message
            // out instead of cloning it: no clone, and no drop of the
            // original inside this receive.
            if slot.refs.load(Ordering::Acquire) == 1
                && slot.stamp.fetch_or(LOCK, Ordering::Acquire) & LOCK == 0
            {
                let msg = slot.msg.with(|p| {
                    // SAFETY: LOCK is ours, and we are the last subscriber
                    // counted in `refs` (nobody can join in: a clone of a
                    // subscriber counted here would be a clone of us): we
                    // own the message.
                    unsafe { p.read().assume_init() }
                });
                slot.refs.store(0, Ordering::Relaxed);
                inside.free(pos);
                return Some(msg);
            }
            let msg = slot.msg.with(|p| {
                // SAFETY: inside the slot (busy raised while FULL and not
                // LOCK): no evicter moves the message until we leave.
                unsafe { (*p).assume_init_ref().clone() }
            });
            inside.pass();
            return Some(msg);
        }
        None
    }

    /// Why the message at `head` is not there (and, on lag, moves `head` to
    /// the oldest message still held).
    #[cold]
    fn missing(&self, head: &Cell<Pos>) -> TryRecvError {
        let pos = head.get();
        let tail = self.tail.load(Ordering::Acquire);
        let tp = self.pos(tail);
        if tp == pos {
            return if tail & CLOSED != 0 {
                TryRecvError::Closed
            } else {
                TryRecvError::Empty
            };
        }
        let behind = self.laps.distance(tp, pos);
        if self.evicting() && behind > self.cap as u64 {
            head.set(self.laps.prev_lap(tp));
            return TryRecvError::Lagged(behind - self.cap as u64);
        }
        // Claimed but not written yet: never wait for it here (the sender is
        // mid-copy; blocking receives wait for its wake-up).
        TryRecvError::Empty
    }
}

impl<T> Sending<T> for Chan<T> {
    /// `Full` only under `Block`; `DropOldest` never waits. A `Last` send
    /// claims its position and closes in one compare-exchange.
    #[inline]
    fn try_send_as(&self, msg: T, mode: SendMode) -> Result<(), TrySendError<T>> {
        // A `send_many` of ours whose iterator called us goes first.
        crate::chan::flush_batches(self as *const Self as *const (), true);
        let last = mode == SendMode::Last;
        if self.evicting() {
            let Some((pos, subs)) = self.claim_evicting(1, last) else {
                return Err(TrySendError::Closed(msg));
            };
            let evicted = self.write_evicting(pos, msg, subs);
            if last {
                self.send_waiters.notify_all();
            }
            // Dropped last: the channel is consistent (and closed, if last).
            drop(evicted);
            return Ok(());
        }
        self.try_send_block(msg, last)?;
        if last {
            // Closed: wake the senders waiting for room, to fail.
            self.send_waiters.notify_all();
        }
        Ok(())
    }

    fn send_queue(&self) -> &WaitQueue {
        &self.send_waiters
    }

    fn spin_on_send(&self) -> bool {
        !self.crowded()
    }

    fn before_send_wait(&self) {
        self.wait_for_slack();
    }
}

impl<T> Core for Chan<T> {
    fn len(&self) -> usize {
        self.held()
    }

    fn capacity(&self) -> usize {
        self.cap
    }

    fn is_closed(&self) -> bool {
        self.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn overflow(&self) -> Overflow {
        self.overflow
    }

    fn close(&self) -> bool {
        // A `send_many` of ours whose iterator closes: its messages were
        // sent before the close (if they find room).
        crate::chan::flush_batches(self as *const Self as *const (), false);
        let closed = close::set_mark(&*self.tail, CLOSED);
        if closed {
            self.wake_all();
        }
        closed
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
    pos: Pos,
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

    /// Frees the slot of `pos` (its message has been moved out by this
    /// subscriber, the last one, which holds LOCK) and leaves.
    fn free(self, pos: Pos) {
        let (chan, slot) = (self.chan, self.slot);
        std::mem::forget(self);
        // locked(pos) and our busy -> free(pos + lap), keeping the others'
        // busy counts (a subscriber passing through). Release: as in
        // `free_block`.
        debug_assert_eq!(Pos::of(slot.stamp.load(Ordering::Relaxed), &chan.laps), pos);
        slot.stamp.fetch_add(
            chan.laps.lap_word().wrapping_sub(FULL | LOCK | 1),
            Ordering::Release,
        );
        chan.send_waiters.notify_one();
    }

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
            slot.stamp.fetch_add(
                chan.laps.lap_word().wrapping_sub(FULL | LOCK | 1),
                Ordering::Release,
            );
            chan.send_waiters.notify_one();
            // Last: a panicking drop finds the slot free and the receive it
            // unwinds through done.
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
