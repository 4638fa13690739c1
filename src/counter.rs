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
use crate::sync::{AtomicUsize, Ordering};
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
        let ptr = Self::alloc(2, make);
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
            ptr: Self::alloc(1, || value),
            _owns: PhantomData,
        }
    }

    /// The allocation of a value `make` builds in place, counted `refs`.
    #[inline(always)]
    fn alloc(refs: usize, make: impl FnOnce() -> T) -> NonNull<Counts<T>> {
        // A `Box` while the value is built, so that a panic in `make` frees
        // the allocation.
        let mut place = Box::new(std::mem::MaybeUninit::<Counts<T>>::uninit());
        // Written whole, through the box's own pointer: written field by
        // field, or through a pointer from `std::alloc::alloc`, the MPSC
        // channel was built on the stack and copied.
        place.write(Counts {
            refs: AtomicUsize::new(refs),
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
    /// `ptr` was the last reference to its value.
    #[inline(never)]
    unsafe fn drop_last(ptr: NonNull<Counts<T>>) {
        let layout = std::alloc::Layout::new::<Counts<T>>();
        // SAFETY: this was the last reference: nothing else can reach the
        // value, which `pair` initialized, and the allocation was made
        // with this layout.
        unsafe {
            std::ptr::drop_in_place(ptr.as_ptr());
            std::alloc::dealloc(ptr.as_ptr().cast(), layout);
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
