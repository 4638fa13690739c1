//! Handle counting: [`ChanRef`], the reference every handle holds to its
//! channel's allocation, and, for the kinds whose sender is `Clone` (MPSC
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
        // A `Box` while the value is built, so that a panic in `make` frees
        // the allocation.
        let mut place = Box::new(std::mem::MaybeUninit::<Counts<T>>::uninit());
        // Written whole, through the box's own pointer: written field by
        // field, or through a pointer from `std::alloc::alloc`, the MPSC
        // channel was built on the stack and copied.
        place.write(Counts {
            refs: AtomicUsize::new(2),
            value: make(),
        });
        // `MaybeUninit<Counts<T>>` has the layout of `Counts<T>`, which
        // `Drop` frees with that layout.
        let ptr = NonNull::from(Box::leak(place)).cast::<Counts<T>>();
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
