//! Helpers shared by the ring-based channels.

/// Drops every item `next` yields until it yields `None` (and `next`
/// keeps yielding `None` after that). If one drop, or `next` itself,
/// panics, unwinding goes on with the rest, so none is leaked; a second
/// panic aborts, as in any drop.
pub(crate) fn drop_each<T>(next: impl FnMut() -> Option<T>) {
    struct Rest<T, N: FnMut() -> Option<T>> {
        next: N,
        /// `next` yielded `None`.
        done: bool,
    }
    impl<T, N: FnMut() -> Option<T>> Rest<T, N> {
        fn run(&mut self) {
            while let Some(item) = (self.next)() {
                drop(item);
            }
            self.done = true;
        }
    }
    impl<T, N: FnMut() -> Option<T>> Drop for Rest<T, N> {
        // Unwinding from a panicking drop: drops the rest. After a normal
        // run there is nothing to do (asking `next` again would cost a
        // receiver's drop a second look at its channel).
        fn drop(&mut self) {
            if !self.done {
                self.run();
            }
        }
    }
    Rest { next, done: false }.run();
}

/// Drops the message at every position from `first` up to `end`
/// (advancing with `next`) through `drop_at`, which moves it out and
/// drops it; a panicking drop does not stop the rest ([`drop_each`]).
/// Used by a channel's `Drop`, when no other handle exists, and by a
/// leaving broadcast subscriber (which passes its unread messages).
pub(crate) fn drop_positions<P: Copy + PartialEq>(
    first: P,
    end: P,
    next: impl Fn(P) -> P,
    drop_at: impl Fn(P),
) {
    let mut pos = first;
    drop_each(|| {
        (pos != end).then(|| {
            let at = pos;
            pos = next(at);
            drop_at(at);
        })
    });
}

/// The ring channels' senders may prefetch the slot ahead of their claim
/// ([`prefetch_for_write`] does something): x86-64, outside loom and Miri.
pub(crate) const PREFETCH: bool = cfg!(all(target_arch = "x86_64", not(loom), not(miri)));

/// Asks for the lines of `slot` (its first and last byte) to be brought
/// into this core's cache for writing: a sender that claimed a position
/// prefetches the slot it will claim a few positions on, so that it finds
/// that slot's line there instead of waiting for it from the consumer that
/// freed it a lap ago (see `mpsc`'s `Array::prefetch_ahead` and
/// `broadcast`'s `Chan::new` for what it gained). A hint: nothing is read
/// or written. Does nothing where [`PREFETCH`] is false.
#[inline(always)]
pub(crate) fn prefetch_for_write<S>(slot: &S) {
    prefetch_lines::<S, true>(slot);
}

/// [`prefetch_for_write`], for reading: a receiver far behind its sender
/// prefetches the message it will read a few hundred bytes on (see
/// `spsc`'s `Receiver::prefetch_ahead`).
#[inline(always)]
pub(crate) fn prefetch_for_read<S>(slot: &S) {
    prefetch_lines::<S, false>(slot);
}

/// The write hint is `_MM_HINT_ET0`, which compiles to `prefetcht0` (a
/// read prefetch) unless the crate is built with the `prfchw` target
/// feature: the line comes in shared, and the store still invalidates the
/// other copy. A real `prefetchw` (inline `asm!`, after a CPUID check) was
/// measured on 2026-12-05 and not kept: MPSC, 2 producers, 64-byte
/// messages, two CPUs, 40 -> 47-51 M msg/s, but with a consumer that works
/// on each message, so a full ring, 22-27 -> 17-22: the slot a few
/// positions past a claim on a full ring is the one the consumer reads
/// next, and `prefetchw` takes its line from the consumer.
#[inline(always)]
fn prefetch_lines<S, const WRITE: bool>(slot: &S) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0, _MM_HINT_T0};
        let first = (slot as *const S).cast::<i8>();
        let last = first.wrapping_add(std::mem::size_of::<S>().max(1) - 1);
        // SAFETY: `_mm_prefetch` is a hint that reads and writes nothing,
        // so any address is allowed; these are the first and the last byte
        // of `slot` (`wrapping_add`: no pointer arithmetic claim is made
        // either).
        unsafe {
            if WRITE {
                _mm_prefetch::<_MM_HINT_ET0>(first);
                _mm_prefetch::<_MM_HINT_ET0>(last);
            } else {
                _mm_prefetch::<_MM_HINT_T0>(first);
                _mm_prefetch::<_MM_HINT_T0>(last);
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    let _ = slot;
}

/// A position in a lapped ring (the MPSC and broadcast rings): the lap
/// number in the high bits, then the slot index, then `F` bits (a ring's
/// `Laps<F>`) that words carrying a position use for flags (a closed bit,
/// a full bit, a count). A position itself has its flag bits clear.
///
/// ```text
///   word = lap << lap_shift | index << F | flags
/// ```
///
/// Laps step in a power of two, so "the same slot one lap earlier" is a
/// subtraction and index arithmetic needs no division; the index still
/// runs only up to the capacity, so the capacity is exact. Positions wrap
/// around the top of the word with the lap counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos(u64);

impl Pos {
    /// The position carried by `word`, without its flags.
    #[inline(always)]
    pub(crate) fn of<const F: u32>(word: u64, _laps: &Laps<F>) -> Pos {
        Pos(word & !Laps::<F>::FLAGS)
    }

    /// The position as a word (flags clear), to combine with flags.
    #[inline(always)]
    pub(crate) fn word(self) -> u64 {
        self.0
    }
}

/// The geometry of a lapped ring: its capacity and where positions keep
/// their index and lap (see [`Pos`]), with `F` flag bits.
///
/// The flag bits are a constant of each ring kind (MPSC 1, broadcast 18),
/// so index arithmetic shifts by an immediate, and the stamp's mask is
/// kept, not rebuilt: until 2026-12-06 both were read from the ring's
/// configuration on every use, and a claim, its write, its publication
/// and the receive took 5 indexes and 3 stamps, each a variable shift
/// and loads the compiler could not keep across the atomics between them
/// (valgrind, one producer on one CPU: 162 instructions a message, 50 of
/// them these).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Laps<const F: u32> {
    cap: u64,
    /// One lap, as a word.
    lap: u64,
    index_mask: u64,
    /// `!(index_mask << F)`: what a stamp keeps of a position.
    stamp_mask: u64,
    lap_shift: u32,
}

impl<const F: u32> Laps<F> {
    /// The flag bits of a word.
    pub(crate) const FLAGS: u64 = (1 << F) - 1;
    /// One index step: the words of two neighbouring slots' positions in
    /// one lap are this far apart.
    pub(crate) const UNIT: u64 = 1 << F;

    /// A ring of `cap` slots whose words keep `F` low bits for flags;
    /// `None` if that leaves fewer than `min_lap_bits` bits for the lap
    /// counter.
    pub(crate) fn new(cap: usize, min_lap_bits: u32) -> Option<Laps<F>> {
        let slots = (cap as u64).checked_next_power_of_two()?;
        let lap_shift = F + slots.trailing_zeros();
        if cap == 0 || lap_shift + min_lap_bits > u64::BITS {
            return None;
        }
        let index_mask = slots - 1;
        Some(Laps {
            cap: cap as u64,
            lap: 1 << lap_shift,
            index_mask,
            stamp_mask: !(index_mask << F),
            lap_shift,
        })
    }

    /// `p` without its index: what a slot's stamp keeps of a position.
    /// A slot only ever meets positions of its own index, so the lap and
    /// the flags tell them apart, and the first lap's stamps are all 0 (a
    /// zeroed allocation is a ring of free slots).
    #[inline(always)]
    pub(crate) fn stamp(&self, p: Pos) -> u64 {
        p.0 & self.stamp_mask
    }

    /// One lap as a word: adding it to a word moves its position to the
    /// same slot one lap later, flags unchanged.
    #[inline(always)]
    pub(crate) fn lap_word(&self) -> u64 {
        self.lap
    }

    /// The first position of lap `lap` (index 0).
    pub(crate) fn start(&self, lap: u64) -> Pos {
        Pos(lap.wrapping_shl(self.lap_shift))
    }

    /// The position of slot `index` in the lap whose stamp is `stamp`
    /// (`stamp(p)` of any position `p` of that lap): `at(stamp(p),
    /// index(p)) == p`.
    #[inline(always)]
    pub(crate) fn at(&self, stamp: u64, index: usize) -> Pos {
        debug_assert_eq!(stamp & Self::FLAGS, 0);
        Pos(stamp | (index as u64) << F)
    }

    /// The number of slots (the capacity).
    #[inline(always)]
    pub(crate) fn slots(&self) -> usize {
        self.cap as usize
    }

    /// Moves a run's position, kept as its slot's `index` and its lap's
    /// `stamp` (see [`at`](Self::at)), to the next slot: after the last
    /// slot, the first of the next lap. (A receive loop that keeps these
    /// two in registers computes no position from the previous one.)
    #[inline(always)]
    pub(crate) fn step(&self, index: &mut usize, stamp: &mut u64) {
        if (*index as u64) + 1 < self.cap {
            *index += 1;
        } else {
            *index = 0;
            *stamp = stamp.wrapping_add(self.lap);
        }
    }

    /// The slot of `p` (below the capacity).
    #[inline(always)]
    pub(crate) fn index(&self, p: Pos) -> usize {
        ((p.0 >> F) & self.index_mask) as usize
    }

    /// The position after `p`.
    #[inline(always)]
    pub(crate) fn next(&self, p: Pos) -> Pos {
        self.next_at(p, self.index(p))
    }

    /// The position after `p`, whose slot `index` the caller has worked
    /// out already (a fast path that works it out once per message).
    #[inline(always)]
    pub(crate) fn next_at(&self, p: Pos, index: usize) -> Pos {
        debug_assert_eq!(index, self.index(p));
        if (index as u64) + 1 < self.cap {
            Pos(p.0.wrapping_add(Self::UNIT))
        } else {
            self.next_lap_start(p)
        }
    }

    /// Index 0 of the lap after `p`'s.
    #[inline(always)]
    fn next_lap_start(&self, p: Pos) -> Pos {
        Pos((p.0 & !(self.lap - 1)).wrapping_add(self.lap))
    }

    /// The same slot one lap earlier: the position whose message a slot
    /// still holds when it is not yet free for `p`.
    #[inline(always)]
    pub(crate) fn prev_lap(&self, p: Pos) -> Pos {
        Pos(p.0.wrapping_sub(self.lap))
    }

    /// The same slot one lap later: what a slot is free for once the
    /// message of `p` has left it.
    #[inline(always)]
    pub(crate) fn next_lap(&self, p: Pos) -> Pos {
        Pos(p.0.wrapping_add(self.lap))
    }

    /// How many positions `from` is ahead of `to` (`from` at or after
    /// `to`, by less than the lap counter's range).
    pub(crate) fn distance(&self, from: Pos, to: Pos) -> u64 {
        let laps = (from.0 >> self.lap_shift).wrapping_sub(to.0 >> self.lap_shift)
            & (u64::MAX >> self.lap_shift);
        laps.wrapping_mul(self.cap)
            .wrapping_add(self.index(from) as u64)
            .wrapping_sub(self.index(to) as u64)
    }

    /// The position `k` before `p` (`k <= cap`).
    pub(crate) fn back(&self, p: Pos, k: u64) -> Pos {
        let i = self.index(p) as u64;
        if k <= i {
            Pos(p.0 - k * Self::UNIT)
        } else {
            Pos((p.0 & !(self.lap - 1))
                .wrapping_sub(self.lap)
                .wrapping_add((self.cap - (k - i)) * Self::UNIT))
        }
    }

    /// The positions of the lap that starts at `start` (an index 0), slot
    /// by slot: what a new ring's stamps are built from. (A loop of
    /// [`forward`](Self::forward) tests for the end of the lap at each
    /// step: building a broadcast ring of 1024 u64 took 1.1 us that way,
    /// four times crossbeam-channel's array.)
    pub(crate) fn lap_positions(&self, start: Pos) -> impl Iterator<Item = Pos> + '_ {
        debug_assert_eq!(self.index(start), 0);
        (0..self.cap).map(move |i| Pos(start.0.wrapping_add(i * Self::UNIT)))
    }

    /// The position `k` after `p` (`k <= cap`).
    pub(crate) fn forward(&self, p: Pos, k: u64) -> Pos {
        let i = self.index(p) as u64 + k;
        if i < self.cap {
            Pos(p.0.wrapping_add(k * Self::UNIT))
        } else {
            Pos((p.0 & !(self.lap - 1))
                .wrapping_add(self.lap)
                .wrapping_add((i - self.cap) * Self::UNIT))
        }
    }
}

/// The message slots of the SPSC ring: `len` cells of `T`, whose first
/// starts on a cache line when a message is a whole number of lines or
/// evenly divides one (and is at least 32 bytes), so that no message
/// straddles two lines.
///
/// The allocator only promises 16-byte alignment: a ring of 64-byte
/// messages from it put every message across two lines, and the receiver
/// pulled two lines from the sender's core for each (SPSC, capacity 1024,
/// 64-byte messages: about 10% more throughput aligned, measured side by
/// side). Smaller messages keep the natural alignment: an aligned request
/// goes through `posix_memalign`, which fragments the heap that the next
/// channel allocates from (see `pad`), and a slot of 16 bytes or less
/// never straddles a line anyway.
pub(crate) struct MessageSlots<T> {
    #[cfg(not(loom))]
    ptr: std::ptr::NonNull<crate::sync::UnsafeCell<std::mem::MaybeUninit<T>>>,
    #[cfg(not(loom))]
    len: usize,
    /// Under loom a cell is loom's tracked cell, not plain memory: a boxed
    /// slice of them (alignment plays no part in the models).
    #[cfg(loom)]
    cells: Box<[crate::sync::UnsafeCell<std::mem::MaybeUninit<T>>]>,
}

#[cfg(not(loom))]
impl<T> MessageSlots<T> {
    /// `len` uninitialized slots, for a channel of capacity `cap`. Panics
    /// if they cannot be allocated (the caller has already checked the
    /// size against `isize::MAX`), with a message rather than the
    /// process's abort.
    pub(crate) fn new(len: usize, cap: usize) -> Self {
        let layout = Self::layout(len);
        if layout.size() == 0 {
            // Zero-sized messages, or no slot: nothing to allocate (a
            // slice of them needs only the cell's own alignment).
            return MessageSlots {
                ptr: std::ptr::NonNull::dangling(),
                len,
            };
        }
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) }.cast();
        // A panic, not `handle_alloc_error`'s abort: a capacity the system
        // cannot provide is bad input, refused at construction.
        let Some(ptr) = std::ptr::NonNull::new(ptr) else {
            panic!(
                "spsc::channel: capacity {cap} ({len} slots, {} bytes) could not be allocated",
                layout.size()
            )
        };
        // `UnsafeCell<MaybeUninit<T>>` needs no initialization: the
        // uninitialized memory is a valid value of it.
        MessageSlots { ptr, len }
    }

    fn layout(len: usize) -> std::alloc::Layout {
        type Cell<T> = crate::sync::UnsafeCell<std::mem::MaybeUninit<T>>;
        let size = std::mem::size_of::<Cell<T>>();
        let line = 64;
        let align = if size >= 32 && (size % line == 0 || line % size == 0) {
            line.max(std::mem::align_of::<Cell<T>>())
        } else {
            std::mem::align_of::<Cell<T>>()
        };
        std::alloc::Layout::array::<Cell<T>>(len)
            .and_then(|layout| layout.align_to(align))
            .unwrap_or_else(|_| panic!("spsc::channel: {len} slots are too large to allocate"))
    }
}

#[cfg(not(loom))]
impl<T> std::ops::Deref for MessageSlots<T> {
    type Target = [crate::sync::UnsafeCell<std::mem::MaybeUninit<T>>];

    #[inline(always)]
    fn deref(&self) -> &Self::Target {
        // SAFETY: `ptr` points to `len` cells we own (or is a dangling,
        // aligned pointer with a zero-sized layout), valid for the life of
        // `self`; a cell of `MaybeUninit` is valid uninitialized.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(not(loom))]
impl<T> Drop for MessageSlots<T> {
    fn drop(&mut self) {
        // The owner has dropped the messages; this frees the memory only
        // (a cell of `MaybeUninit` has no drop glue).
        let layout = Self::layout(self.len);
        if layout.size() != 0 {
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

#[cfg(loom)]
impl<T> MessageSlots<T> {
    pub(crate) fn new(len: usize, _cap: usize) -> Self {
        let cells = (0..len)
            .map(|_| crate::sync::UnsafeCell::new(std::mem::MaybeUninit::uninit()))
            .collect();
        MessageSlots { cells }
    }
}

#[cfg(loom)]
impl<T> std::ops::Deref for MessageSlots<T> {
    type Target = [crate::sync::UnsafeCell<std::mem::MaybeUninit<T>>];

    fn deref(&self) -> &Self::Target {
        &self.cells
    }
}

/// A message on its way into an out-of-line slow path.
///
/// A send's fast path writes its message straight into a slot. Given the
/// message itself, a slow path call is given the address of the message's
/// own place, and the compiler then keeps the message in memory on the
/// fast path too: a message built in the caller's loop is stored there
/// word by word, then copied into the slot with wider loads, which stall
/// on those stores. Moved into a `Spill` at the call, the message has a
/// place of its own on the slow path alone. (SPSC, capacity 1024, a
/// 64-byte message built in the sending loop, one CPU: 83 -> 140 M msg/s,
/// rtrb 165.) A wrapper of `T` itself does not do it: the compiler gives
/// the call the message's place again.
///
/// A slow path that may hand the message back (SPSC) takes it with
/// [`Spill::take`] and puts what it hands back into the same slot, so that
/// its answer is a tag rather than a `Result` holding a message; one that
/// keeps it takes the `Spill` by value and calls [`Spill::into_inner`].
/// A spill dropped while it holds a message leaks it (never drops it
/// twice).
pub(crate) struct Spill<T>(std::mem::MaybeUninit<T>);

impl<T> Spill<T> {
    #[inline(always)]
    pub(crate) fn new(msg: T) -> Self {
        Spill(std::mem::MaybeUninit::new(msg))
    }

    /// # Safety
    ///
    /// The spill holds a message: made by `new` or `put`, and not taken
    /// since. Until the next `put`, it holds none: neither `take` nor
    /// `into_inner` may be called on it before that.
    #[inline(always)]
    pub(crate) unsafe fn take(&mut self) -> T {
        // SAFETY: by the caller, a message is there and taken once.
        unsafe { self.0.assume_init_read() }
    }

    /// Stores `msg` (the spill holds none: a message there would leak),
    /// and returns `answer`, for a slow path's last line.
    #[inline(always)]
    pub(crate) fn put<A>(&mut self, msg: T, answer: A) -> A {
        self.0.write(msg);
        answer
    }

    /// The message of a spill that was never taken from.
    #[inline(always)]
    pub(crate) fn into_inner(self) -> T {
        // SAFETY: a spill owned by value holds its message: `new` stores
        // one, and `take`'s callers put one back before they let the spill
        // be used again.
        unsafe { self.0.assume_init() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages of a whole line (or a fraction of one, from 32 bytes)
    /// start on a line; zero-sized ones need no memory; every slot can be
    /// written and read back.
    #[cfg(not(loom))]
    #[test]
    fn message_slots_are_line_aligned_and_usable() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(len: usize, value: T, aligned: bool) {
            let slots = MessageSlots::<T>::new(len, len);
            assert_eq!(slots.len(), len);
            if aligned {
                assert_eq!(slots.as_ptr() as usize % 64, 0);
            }
            for slot in slots.iter() {
                // SAFETY: we own the slots and nobody else accesses them.
                slot.with_mut(|p| unsafe { p.write(std::mem::MaybeUninit::new(value)) });
                // SAFETY: as above, and the slot was just written.
                let read = slot.with(|p| unsafe { (*p).assume_init() });
                assert_eq!(read, value);
            }
        }
        for _ in 0..8 {
            check::<[u64; 8]>(16, [7; 8], true);
            check::<[u64; 4]>(16, [5; 4], true);
            check::<[u64; 16]>(3, [9; 16], true);
            check::<u64>(16, 3, false);
            check::<[u8; 24]>(5, [1; 24], false);
            check::<()>(4, (), false);
        }
    }

    /// Every pair of positions across several laps, for capacities that are
    /// and are not powers of two, starting just before the lap counter
    /// wraps.
    #[test]
    fn next_distance_back_and_forward_agree() {
        for cap in [1usize, 2, 3, 4, 5, 7] {
            walk(Laps::<1>::new(cap, 14).unwrap(), cap);
            walk(Laps::<18>::new(cap, 14).unwrap(), cap);
        }
        fn walk<const F: u32>(laps: Laps<F>, cap: usize) {
            let last_lap = u64::MAX >> laps.lap_shift;
            let mut p = laps.start(last_lap - 1);
            let mut all = vec![p];
            for _ in 0..4 * cap + 3 {
                p = laps.next(p);
                all.push(p);
            }
            for (i, &a) in all.iter().enumerate() {
                assert!(laps.index(a) < cap);
                assert_eq!(a.word() & Laps::<F>::FLAGS, 0);
                if i >= cap {
                    assert_eq!(laps.prev_lap(a), all[i - cap], "cap {cap}");
                    assert_eq!(laps.next_lap(all[i - cap]), a);
                }
                for (j, &b) in all.iter().enumerate().take(i + 1) {
                    let k = (i - j) as u64;
                    assert_eq!(laps.distance(a, b), k, "cap {cap} {i} {j}");
                    if k <= cap as u64 {
                        assert_eq!(laps.back(a, k), b);
                    }
                    if k < cap as u64 {
                        assert_eq!(laps.forward(b, k), a);
                    }
                }
            }
        }
    }

    #[test]
    fn too_few_lap_bits_is_refused() {
        assert!(Laps::<18>::new(1 << 40, 14).is_none());
        assert!(Laps::<1>::new(0, 1).is_none());
        assert!(Laps::<18>::new(1 << 32, 14).is_some());
    }
}
