//! Handle counting: [`ChanRef`], the reference every handle holds to its
//! channel's allocation (and every holder of a watch store's event to the
//! event), and, for the kinds whose sender is `Clone` (MPSC
//! and broadcast), [`SenderRef`]: one definition of "the last sender to go
//! closes the channel" (crossbeam-channel's `counter.rs` plays this part
//! there).
//!
//! Both counts use one rule: a handle that finds the count at 1 is the only
//! one left, and nobody can add another (a count grows only by cloning a
//! handle that exists), so it is the last without a read-modify-write. A
//! channel made, used once and dropped on one thread (a reply channel per
//! request) then pays one decrement for its two handles instead of a
//! clone's increment and two decrements.

use crate::chan::Core;
use crate::sync::{AtomicUsize, Ordering, UnsafeCell};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

loom_switch!(
    /// Under loom only: whether handles dropped from now on by this test's
    /// models find out that they are the last with a load (see
    /// `counter::ChanRef`). On by default. (The load is one more step per
    /// dropped handle: in the two four-thread broadcast models, where each
    /// thread drops a handle, it made exploring the interleavings take
    /// five times as long; they turn it off, the SPSC and MPSC models
    /// keep it on.)
    last_by_load,
    loom_last_by_load
);

/// A counted reference to a value in its own allocation: std's `Arc`
/// without weak references, made with two references at once, and whose
/// last reference learns that it is the last with a load (see the module
/// docs). (With weak references, std's `Arc` cannot do that: an upgrade
/// could raise the count from 1 meanwhile.)
pub(crate) struct ChanRef<T> {
    ptr: NonNull<Counts<T>>,
    _owns: PhantomData<Counts<T>>,
}

struct Counts<T> {
    refs: AtomicUsize,
    /// What the last counted reference does: [`ChanRef::free`] (drop the
    /// value, free the allocation), or for a value a [`Husk`] keeps,
    /// spend it and leave the allocation to the husk if it still holds it
    /// (see [`Kept`]).
    last: unsafe fn(NonNull<Counts<T>>),
    value: T,
}

// SAFETY: as std's `Arc`: the value is shared between threads (`Sync`) and
// dropped on whichever thread drops the last reference (`Send`).
unsafe impl<T: Send + Sync> Send for ChanRef<T> {}
// SAFETY: see above.
unsafe impl<T: Send + Sync> Sync for ChanRef<T> {}

impl<T> ChanRef<T> {
    /// Two references to the value `make` builds, which is written in
    /// place into its allocation (a channel is a kilobyte of mostly
    /// padding: built on the stack it would be copied). The count starts
    /// at 2 with a plain store: nothing else can see it yet.
    #[inline(always)]
    pub(crate) fn pair(make: impl FnOnce() -> T) -> (Self, Self) {
        let ptr = Self::alloc(2, Self::free, make);
        (
            ChanRef {
                ptr,
                _owns: PhantomData,
            },
            ChanRef {
                ptr,
                _owns: PhantomData,
            },
        )
    }

    /// One reference to `value` (a watch store's event).
    pub(crate) fn new(value: T) -> Self {
        ChanRef {
            ptr: Self::alloc(1, Self::free, || value),
            _owns: PhantomData,
        }
    }

    /// The allocation of a value `make` builds in place, counted `refs`;
    /// `last` is what the last counted reference will do.
    #[inline(always)]
    fn alloc(
        refs: usize,
        last: unsafe fn(NonNull<Counts<T>>),
        make: impl FnOnce() -> T,
    ) -> NonNull<Counts<T>> {
        // A `Box` while the value is built, so that a panic in `make` frees
        // the allocation.
        let mut place = Box::new(std::mem::MaybeUninit::<Counts<T>>::uninit());
        // Written whole, through the box's own pointer: written field by
        // field, or through a pointer from `std::alloc::alloc`, the MPSC
        // channel was built on the stack and copied.
        place.write(Counts {
            refs: AtomicUsize::new(refs),
            last,
            value: make(),
        });
        // `MaybeUninit<Counts<T>>` has the layout of `Counts<T>`, which
        // `Drop` frees with that layout.
        NonNull::from(Box::leak(place)).cast::<Counts<T>>()
    }

    /// The value, if this is its only reference (as `Arc::get_mut`).
    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        // Acquire: the other references' last uses (released by their
        // decrements) happen before ours.
        if self.counts().refs.load(Ordering::Acquire) != 1 {
            return None;
        }
        // SAFETY: the only reference, and `&mut self` keeps anyone from
        // making another while the borrow lives.
        Some(unsafe { &mut (*self.ptr.as_ptr()).value })
    }

    /// `n` more references, taken with one atomic add, handed out by the
    /// [`Shares`] (which gives back the ones it did not hand out). A watch
    /// store's change goes to each of its watchers with a reference of its
    /// own: with a clone each, that was one locked increment per watcher,
    /// each waiting for the stores of the delivery before it to drain (a
    /// third of `set`'s own samples, 4 writers and 8 watchers on one CPU).
    pub(crate) fn share(&self, n: usize) -> Shares<T> {
        if n > 0 {
            // Relaxed, as `clone`.
            let old = self.counts().refs.fetch_add(n, Ordering::Relaxed);
            if old > (isize::MAX as usize).saturating_sub(n) {
                // As `clone`: the count must never wrap.
                std::process::abort();
            }
        }
        Shares {
            ptr: self.ptr,
            left: n,
            _owns: PhantomData,
        }
    }

    /// A second `ChanRef` to the same value that holds no count of its
    /// own.
    ///
    /// # Safety
    /// The alias is never dropped (the caller wraps it, or what holds it,
    /// in `ManuallyDrop`), and the caller keeps `self` alive while the
    /// alias is used.
    #[cfg(not(loom))]
    #[inline(always)]
    pub(crate) unsafe fn alias(&self) -> Self {
        ChanRef {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }

    #[inline(always)]
    fn counts(&self) -> &Counts<T> {
        // SAFETY: the allocation lives while any counted reference does,
        // and `self` is one (or an alias that one outlives).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Deref for ChanRef<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.counts().value
    }
}

impl<T> Clone for ChanRef<T> {
    fn clone(&self) -> Self {
        // Relaxed: a new reference is made from an existing one, which
        // keeps the count above zero meanwhile (std's `Arc` argues the
        // same).
        let old = self.counts().refs.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            // As std's `Arc`: billions of leaked handles; continuing would
            // let the count wrap and free a value still in use.
            std::process::abort();
        }
        ChanRef {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for ChanRef<T> {
    /// Inlined, with the last reference's part out of line and given the
    /// pointer itself: an out-of-line `drop` would be given the address of
    /// the handle that holds this reference, and a handle whose address
    /// has escaped keeps its indices in memory in its owner's loops (see
    /// the `Drop` of `spsc::Receiver`).
    #[inline(always)]
    fn drop(&mut self) {
        let refs = &self.counts().refs;
        // Acquire on both paths: the last reference sees every other
        // reference's last use (each released it with its decrement)
        // before it drops the value. A load of 1 means the other
        // references are gone and nobody can make a new one (see the
        // module docs): no decrement needed.
        if !(last_by_load() && refs.load(Ordering::Acquire) == 1)
            && refs.fetch_sub(1, Ordering::AcqRel) != 1
        {
            return;
        }
        // SAFETY: this was the last reference.
        unsafe { Self::drop_last(self.ptr) }
    }
}

/// References taken by [`ChanRef::share`] and not handed out yet; dropping
/// it gives back the rest with one atomic subtraction.
pub(crate) struct Shares<T> {
    ptr: NonNull<Counts<T>>,
    left: usize,
    _owns: PhantomData<Counts<T>>,
}

impl<T> Iterator for Shares<T> {
    type Item = ChanRef<T>;

    fn next(&mut self) -> Option<ChanRef<T>> {
        if self.left == 0 {
            return None;
        }
        // One of our references moves to the new handle.
        self.left -= 1;
        Some(ChanRef {
            ptr: self.ptr,
            _owns: PhantomData,
        })
    }
}

impl<T> Drop for Shares<T> {
    fn drop(&mut self) {
        if self.left == 0 {
            return;
        }
        // SAFETY: we hold `left` references, so the allocation is alive.
        let refs = unsafe { &self.ptr.as_ref().refs };
        // AcqRel, as a `ChanRef`'s drop.
        if refs.fetch_sub(self.left, Ordering::AcqRel) == self.left {
            // SAFETY: ours were the last references.
            unsafe { ChanRef::drop_last(self.ptr) }
        }
    }
}

impl<T> ChanRef<T> {
    /// # Safety
    /// `ptr` was the last counted reference to its value.
    #[inline(never)]
    unsafe fn drop_last(ptr: NonNull<Counts<T>>) {
        // SAFETY: `ptr` is alive (this was its last counted reference,
        // which a husk may outlive: see `Kept`); `last` was set when it
        // was made, for the way it was made, and is called once.
        unsafe { (ptr.as_ref().last)(ptr) }
    }

    /// The last reference's part for a value no husk keeps: drops it and
    /// frees the allocation.
    ///
    /// # Safety
    /// `ptr` was the last reference to its value, and nothing else holds
    /// its allocation.
    unsafe fn free(ptr: NonNull<Counts<T>>) {
        let layout = std::alloc::Layout::new::<Counts<T>>();
        // SAFETY: this was the last reference: nothing else can reach the
        // value, which `alloc` initialized, and the allocation was made
        // with this layout.
        unsafe {
            std::ptr::drop_in_place(ptr.as_ptr());
            std::alloc::dealloc(ptr.as_ptr().cast(), layout);
        }
    }
}

/// A value whose drop comes in two parts: [`spend`](Spend::spend) drops
/// what its users can observe (a value's `Drop`), [`drop_spent`](Spend::drop_spent)
/// the rest, which is only memory. A [`Husk`] holds
/// the rest (see [`Kept`]).
pub(crate) trait Spend {
    /// Memory a spend may leave for the husk (to reuse, or to free with
    /// the rest), taken from the parts it dropped.
    type Left;

    /// Drops the parts of `*this` whose drop its users can observe; may
    /// leave some of their memory.
    ///
    /// # Safety
    /// `this` is valid, nothing else reaches it, and it was not spent.
    unsafe fn spend(this: *mut Self) -> Option<Self::Left>;

    /// Drops the rest of `*this`, after [`spend`](Spend::spend).
    ///
    /// # Safety
    /// `this` is valid, was spent, nothing else reaches it, and this is
    /// called once.
    unsafe fn drop_spent(this: *mut Self);
}

/// A counted value whose allocation a [`Husk`] can keep past its last
/// counted reference. The watch store's events: the last watcher to drop
/// an event is usually on another thread than the writer that made it,
/// and freeing it there (the event, its kind and its name: three
/// allocations) sent each allocation from one thread's allocator cache to
/// another's; the writers then allocated from the allocator's shared
/// lists, a third of a writer's time in the watch flow (4 writers, 8
/// watchers). The store keeps a husk of each of its recent events and
/// drops it a while later on a writer's thread: by then the watchers are
/// usually done, and the allocations go back to the writer's cache. The
/// value's own drop (the event's object, a user's `T`) still happens
/// when its last user lets go: only memory waits for the husk, and the
/// husk may hand it back for reuse ([`Husk::reclaim`]), with what the
/// spend left ([`Spend::Left`]: the memory of the object's `Arc`, if the
/// event held its last reference).
///
/// `holders` counts the two parties that may free the allocation: the
/// counted references (as one) and the husk. Each lets go once: the
/// counted references when their count reaches zero, after spending the
/// value; the husk when dropped. Whoever lets go last frees; one that
/// finds the count at 1 is last without a read-modify-write (the other
/// party let go and cannot come back).
pub(crate) struct Kept<V: Spend> {
    holders: AtomicUsize,
    /// What the spend left: written by the last counted reference before
    /// it lets go, taken by the husk (or freed by whoever is last) after.
    left: LeftCell<V::Left>,
    value: V,
}

/// [`Kept::left`]: never reached by two threads at once (the holders
/// count orders the write before the read).
struct LeftCell<L>(UnsafeCell<Option<L>>);

// SAFETY: one thread at a time (see above), ordered by the holders
// count's release and acquire; the memory moves between threads as an
// `Arc`'s does, so `L: Send`.
unsafe impl<L: Send> Sync for LeftCell<L> {}

impl<L> LeftCell<L> {
    fn empty() -> Self {
        LeftCell(UnsafeCell::new(None))
    }
}

impl<V: Spend> Deref for Kept<V> {
    type Target = V;
    #[inline(always)]
    fn deref(&self) -> &V {
        &self.value
    }
}

impl<V: Spend> Kept<V> {
    /// The value, while nobody else can reach it.
    pub(crate) fn get_mut(&mut self) -> &mut V {
        &mut self.value
    }
}

/// The holders count of a kept value's allocation, reached without a
/// reference to the rest of it (which the other party may be dropping
/// meanwhile: a reference to the whole would assert that nobody writes it).
///
/// # Safety
/// The allocation is alive for `'a`.
unsafe fn holders_of<'a, V: Spend>(ptr: NonNull<Counts<Kept<V>>>) -> &'a AtomicUsize {
    // SAFETY: alive, as the caller says; the field is only ever reached
    // through shared references (it is atomic).
    unsafe { &*std::ptr::addr_of!((*ptr.as_ptr()).value.holders) }
}

impl<V: Spend> ChanRef<Kept<V>> {
    /// One counted reference to `value` and a husk that keeps its
    /// allocation (see [`Kept`]).
    pub(crate) fn kept(value: V) -> (Self, Husk<V>) {
        let ptr = Self::alloc(1, Self::spend_last, || Kept {
            holders: AtomicUsize::new(2),
            left: LeftCell::empty(),
            value,
        });
        Self::kept_at(ptr)
    }

    /// The layout of a kept value's allocation (see
    /// [`kept_in`](Self::kept_in)).
    pub(crate) fn layout() -> std::alloc::Layout {
        std::alloc::Layout::new::<Counts<Kept<V>>>()
    }

    /// As [`kept`](Self::kept), in memory a [`Husk::reclaim`] gave back
    /// (no allocation).
    ///
    /// # Safety
    /// `mem` was allocated by the global allocator with
    /// [`layout`](Self::layout), is ours, and holds nothing that needs dropping.
    pub(crate) unsafe fn kept_in(mem: NonNull<u8>, value: V) -> (Self, Husk<V>) {
        let ptr = mem.cast::<Counts<Kept<V>>>();
        // SAFETY: ours, allocated with this type's layout (so aligned and
        // large enough), and nothing in it is dropped by the write.
        unsafe {
            ptr.as_ptr().write(Counts {
                refs: AtomicUsize::new(1),
                last: Self::spend_last,
                value: Kept {
                    holders: AtomicUsize::new(2),
                    left: LeftCell::empty(),
                    value,
                },
            })
        };
        Self::kept_at(ptr)
    }

    fn kept_at(ptr: NonNull<Counts<Kept<V>>>) -> (Self, Husk<V>) {
        (
            ChanRef {
                ptr,
                _owns: PhantomData,
            },
            Husk {
                ptr,
                _owns: PhantomData,
            },
        )
    }

    /// A counted reference to `value` that no husk keeps.
    pub(crate) fn unkept(value: V) -> Self {
        ChanRef::new(Kept {
            holders: AtomicUsize::new(1),
            left: LeftCell::empty(),
            value,
        })
    }

    /// The last counted reference of a kept value: spends it, and frees
    /// the allocation if the husk is gone.
    ///
    /// # Safety
    /// `ptr` was the last counted reference, made by [`ChanRef::kept`].
    unsafe fn spend_last(ptr: NonNull<Counts<Kept<V>>>) {
        // SAFETY: the allocation is alive (we have not let go).
        let holders = unsafe { holders_of(ptr) };
        // Acquire: the husk's release happened before (it did nothing to
        // the value, but the allocation is ours alone now).
        if holders.load(Ordering::Acquire) == 1 {
            // SAFETY: the husk let go, and this was the last counted
            // reference: nothing else holds the allocation.
            unsafe { Self::free(ptr) };
            return;
        }
        /// Lets go after the spend, also when it unwinds (a user's `drop`
        /// that panics): the rest is then still freed, by whichever party
        /// is last.
        struct LetGo<V: Spend>(NonNull<Counts<Kept<V>>>);
        impl<V: Spend> Drop for LetGo<V> {
            fn drop(&mut self) {
                // SAFETY: we have not let go yet: the allocation is alive.
                let holders = unsafe { holders_of(self.0) };
                // Release: the spend happens before the husk frees the
                // rest; Acquire: see `spend_last`.
                if holders.fetch_sub(1, Ordering::AcqRel) == 1 {
                    // SAFETY: the husk let go meanwhile: ours alone, and
                    // spent (a spend that unwound dropped what it began
                    // to: its part is not dropped again).
                    unsafe { Husk::free_spent(self.0) };
                }
            }
        }
        let go = LetGo(ptr);
        // SAFETY: the last counted reference: no user reaches the value,
        // and the husk never reads it; spent once, here.
        let left = unsafe { V::spend(std::ptr::addr_of_mut!((*ptr.as_ptr()).value.value)) };
        // SAFETY: the husk reaches the cell only after we let go (below).
        unsafe { (*ptr.as_ptr()).value.left.0.with_mut(|p| *p = left) };
        drop(go);
    }
}

/// Holds the allocation of a [`Kept`] value (not the value: see there).
/// Dropping it lets go.
pub(crate) struct Husk<V: Spend> {
    ptr: NonNull<Counts<Kept<V>>>,
    _owns: PhantomData<Counts<Kept<V>>>,
}

// SAFETY: a husk only frees memory: it drops the spent rest of a value
// (`Spend::drop_spent`) that its users, on any thread, are done with; as
// an `Arc<V>` would, it needs `V: Send + Sync`.
unsafe impl<V: Spend + Send + Sync> Send for Husk<V> {}
// SAFETY: a husk has no methods that take `&self`.
unsafe impl<V: Spend + Send + Sync> Sync for Husk<V> {}

impl<V: Spend> Husk<V> {
    /// Lets go, as dropping it does; but if the counted references let go
    /// first (so the value is spent), keeps the allocation instead of
    /// freeing it: `take` moves the rest of the spent value out (and gets
    /// what the spend left), and the memory comes back, ours, for
    /// [`ChanRef::kept_in`]. `None` when the counted references still hold
    /// it (the last of them frees it).
    ///
    /// # Safety
    /// `take` leaves nothing in the value that needs dropping (it moves or
    /// drops the rest), and does not read the spent parts.
    pub(crate) unsafe fn reclaim<R>(
        self,
        take: impl FnOnce(*mut V, Option<V::Left>) -> R,
    ) -> Option<(NonNull<u8>, R)> {
        let husk = std::mem::ManuallyDrop::new(self);
        // SAFETY: the allocation is alive while we hold it.
        let holders = unsafe { holders_of(husk.ptr) };
        // As in `drop`.
        if holders.load(Ordering::Acquire) == 1 || holders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: both let go: the allocation is ours, the value
            // spent; `take` empties its rest, as the caller says.
            let taken = unsafe {
                let kept = std::ptr::addr_of_mut!((*husk.ptr.as_ptr()).value);
                let left = (*kept).left.0.with_mut(|p| (*p).take());
                take(std::ptr::addr_of_mut!((*kept).value), left)
            };
            return Some((husk.ptr.cast(), taken));
        }
        None
    }

    /// Frees a spent value's allocation.
    ///
    /// # Safety
    /// Both holders let go (the last one calls this, once), and the value
    /// was spent.
    unsafe fn free_spent(ptr: NonNull<Counts<Kept<V>>>) {
        let layout = std::alloc::Layout::new::<Counts<Kept<V>>>();
        // SAFETY: nothing else holds the allocation; the value was spent,
        // so only its rest is dropped; made with this layout.
        unsafe {
            let kept = std::ptr::addr_of_mut!((*ptr.as_ptr()).value);
            V::drop_spent(std::ptr::addr_of_mut!((*kept).value));
            (*kept).left.0.with_mut(|p| std::ptr::drop_in_place(p));
            std::alloc::dealloc(ptr.as_ptr().cast(), layout);
        }
    }
}

impl<V: Spend> Drop for Husk<V> {
    fn drop(&mut self) {
        // SAFETY: the allocation is alive while we hold it.
        let holders = unsafe { holders_of(self.ptr) };
        // Acquire on both paths: the counted references' spend (released
        // by their decrement) happens before we free the rest. A load of
        // 1: they let go, so it is ours alone (nobody can come back).
        if holders.load(Ordering::Acquire) == 1 || holders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: both let go; the counted references spent the value
            // before they did.
            unsafe { Self::free_spent(self.ptr) };
        }
    }
}

/// A channel core with its sender count; receivers hold a [`ChanRef`] of it.
pub(crate) struct Counted<C> {
    senders: AtomicUsize,
    chan: C,
}

impl<C> Deref for Counted<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.chan
    }
}

/// A sender's reference to the channel: cloning it counts one more sender;
/// dropping the last one closes the channel.
pub(crate) struct SenderRef<C: Core> {
    shared: ChanRef<Counted<C>>,
}

impl<C: Core> SenderRef<C> {
    /// The first sender of the channel `make` builds (in place, in its
    /// shared allocation), and the shared core for its receiver.
    ///
    /// Not inlined: inlined into `mpsc::Builder::build`, whose two kinds
    /// call it, the compiler built the channel on the stack and copied it
    /// into its allocation.
    #[inline(never)]
    pub(crate) fn new(make: impl FnOnce() -> C) -> (Self, ChanRef<Counted<C>>) {
        let (shared, receiver) = ChanRef::pair(|| Counted {
            senders: AtomicUsize::new(1),
            chan: make(),
        });
        (SenderRef { shared }, receiver)
    }
}

impl<C: Core> SenderRef<C> {
    /// The shared core, for a new receiver.
    pub(crate) fn shared(&self) -> ChanRef<Counted<C>> {
        self.shared.clone()
    }
}

impl<C: Core> Deref for SenderRef<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.shared.chan
    }
}

impl<C: Core> Clone for SenderRef<C> {
    fn clone(&self) -> Self {
        // Relaxed: a new sender is made from an existing one, which keeps
        // the count above zero meanwhile.
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        SenderRef {
            shared: self.shared.clone(),
        }
    }
}

impl<C: Core> Drop for SenderRef<C> {
    fn drop(&mut self) {
        // Acquire on both paths (and the decrement's release): the last
        // sender sees every other sender's last use before it closes. A
        // load of 1: ours is the only sender and nobody can clone another
        // (see the module docs); the count is left at 1, which nothing
        // reads again.
        let senders = &self.shared.senders;
        if (last_by_load() && senders.load(Ordering::Acquire) == 1)
            || senders.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.shared.chan.close();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as Count;
    use std::sync::Arc;

    struct Dropped(Arc<Count>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn drops(c: &Arc<Count>) -> usize {
        c.load(Ordering::SeqCst)
    }

    #[test]
    fn shares_are_references_and_unused_ones_are_given_back() {
        let c = Arc::new(Count::new(0));
        let mut r = ChanRef::new(Dropped(c.clone()));
        assert!(r.get_mut().is_some());
        let mut shares = r.share(3);
        let a = shares.next().unwrap();
        assert!(r.get_mut().is_none());
        drop(shares); // gives back two
        let b = a.clone();
        drop(r);
        drop(a);
        assert_eq!(drops(&c), 0);
        let mut b = b;
        assert!(b.get_mut().is_some(), "b is the last reference");
        drop(b);
        assert_eq!(drops(&c), 1);
        // Freed by the shares' drop when they hold the last references.
        let r = ChanRef::new(Dropped(c.clone()));
        let shares = r.share(2);
        drop(r);
        drop(shares);
        assert_eq!(drops(&c), 2);
        // A share of none changes nothing.
        let r = ChanRef::new(Dropped(c.clone()));
        assert_eq!(r.share(0).count(), 0);
        drop(r);
        assert_eq!(drops(&c), 3);
    }

    #[test]
    fn shared_references_dropped_on_many_threads_free_once() {
        let c = Arc::new(Count::new(0));
        let (rounds, n) = if cfg!(miri) { (3, 4) } else { (200, 8) };
        for _ in 0..rounds {
            let r = ChanRef::new(Dropped(c.clone()));
            let shares: Vec<_> = r.share(n).collect();
            std::thread::scope(|s| {
                for h in shares {
                    s.spawn(move || drop(h));
                }
                drop(r);
            });
        }
        assert_eq!(drops(&c), rounds);
    }
}

/// Under loom only: a [`Kept`] value whose two parts count their drops,
/// for the models of the husk's protocol (`loom-tests/tests/watch.rs`).
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_kept {
    use super::{ChanRef, Husk, Kept, Spend};
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;

    /// Counts of the probe's spends and of the drops of its rest.
    pub struct Probe {
        spent: Arc<AtomicUsize>,
        rest: Arc<AtomicUsize>,
    }

    impl Drop for Probe {
        /// A whole drop: both parts.
        fn drop(&mut self) {
            self.spent.fetch_add(1, Ordering::Relaxed);
            self.rest.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Spend for Probe {
        type Left = ();

        unsafe fn spend(this: *mut Self) -> Option<()> {
            // SAFETY: as the trait says: valid, ours alone, not spent.
            unsafe {
                (*this).spent.fetch_add(1, Ordering::Relaxed);
                std::ptr::drop_in_place(std::ptr::addr_of_mut!((*this).spent));
            }
            Some(())
        }

        unsafe fn drop_spent(this: *mut Self) {
            // SAFETY: as the trait says: valid, spent, ours alone, once.
            unsafe {
                (*this).rest.fetch_add(1, Ordering::Relaxed);
                std::ptr::drop_in_place(std::ptr::addr_of_mut!((*this).rest));
            }
        }
    }

    /// A counted reference to a kept probe.
    #[derive(Clone)]
    pub struct ProbeRef(#[allow(dead_code)] ChanRef<Kept<Probe>>);

    /// The husk of a kept probe.
    pub struct ProbeHusk(#[allow(dead_code)] Husk<Probe>);

    /// Lets go of `husk` through [`Husk::reclaim`]: when it is last, the
    /// rest is taken (and counted) and the memory freed here; `true` then.
    pub fn reclaim(husk: ProbeHusk) -> bool {
        // SAFETY: the closure drops the rest (counting it), and reads no
        // spent part.
        let reclaimed = unsafe { husk.0.reclaim(|p, _| Probe::drop_spent(p)) };
        match reclaimed {
            Some((mem, ())) => {
                // SAFETY: ours, allocated with this layout, holding nothing.
                unsafe { std::alloc::dealloc(mem.as_ptr(), ChanRef::<Kept<Probe>>::layout()) };
                true
            }
            None => false,
        }
    }

    /// A kept probe counting into `spent` and `rest`: one counted
    /// reference and the husk.
    pub fn kept(spent: Arc<AtomicUsize>, rest: Arc<AtomicUsize>) -> (ProbeRef, ProbeHusk) {
        let (r, h) = ChanRef::kept(Probe { spent, rest });
        (ProbeRef(r), ProbeHusk(h))
    }
}
