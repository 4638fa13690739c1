//! The one place that imports synchronization primitives.
//!
//! Every atomic, `UnsafeCell`, `Arc`, mutex, thread park/unpark and spin hint
//! used by rillet comes from here, so that building with `--cfg loom` swaps
//! them all for loom's model-checked versions (the pattern of tokio's
//! `src/loom/` and crossbeam-utils' `primitive` module).
//!
//! Two differences from std are papered over:
//! - `UnsafeCell` exposes loom's `with` / `with_mut` API on both builds.
//! - `spin_loop` yields to loom's scheduler under loom (loom's scheduler is
//!   not fair, so a spin loop must yield or the model never terminates).

#![allow(dead_code)]

/// A protocol step that loom models may turn off, one definition for each
/// (`loom_switch!(doc, getter, setter)`): `getter()` is always `true`
/// outside loom; under loom it is what this test's last `setter(bool)`
/// said (on by default), and `setter` is public (hidden) for the models.
/// A thread-local, because loom runs a model's threads on the test's own
/// thread. Used where a step multiplies the interleavings of models that
/// check other protocols: they turn it off, and the models of its own
/// protocol keep it on.
macro_rules! loom_switch {
    ($(#[$doc:meta])* $vis:vis $getter:ident, $setter:ident) => {
        #[inline(always)]
        $vis fn $getter() -> bool {
            #[cfg(loom)]
            return $setter::ON.with(|on| on.get());
            #[cfg(not(loom))]
            true
        }

        $(#[$doc])*
        #[cfg(loom)]
        #[doc(hidden)]
        pub fn $setter(on: bool) {
            $setter::ON.with(|c| c.set(on));
        }

        #[cfg(loom)]
        #[allow(non_snake_case)]
        mod $setter {
            std::thread_local! {
                pub(super) static ON: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
            }
        }
    };
}

// This thread's innermost pending `send_many` batch (`chan::Batch`), or
// null: a thread-local, under loom one per model thread (loom runs a
// model's threads on the test's own thread, so std's would be shared).
// The pointer is only ever read on the thread that stored it.
#[cfg(not(loom))]
std::thread_local! {
    static BATCH_TOP: std::cell::Cell<*const ()> = const { std::cell::Cell::new(std::ptr::null()) };
}
#[cfg(loom)]
loom::thread_local! {
    static BATCH_TOP: std::cell::Cell<*const ()> = std::cell::Cell::new(std::ptr::null());
}

// How many of this thread's waits in a row spun in vain (`park`'s
// `spin_futile`). Never read under loom, whose waits go straight to parking.
#[cfg(not(loom))]
std::thread_local! {
    static SPIN_MISSES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}
#[cfg(loom)]
loom::thread_local! {
    static SPIN_MISSES: std::cell::Cell<u32> = std::cell::Cell::new(0);
}

// When this thread last napped (`park`'s `nap_if_due`). Never read under
// loom, whose waits go straight to parking.
#[cfg(not(loom))]
std::thread_local! {
    static LAST_NAP: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}
#[cfg(loom)]
loom::thread_local! {
    static LAST_NAP: std::cell::Cell<Option<std::time::Instant>> = std::cell::Cell::new(None);
}

/// See `LAST_NAP`.
#[inline]
pub(crate) fn last_nap() -> Option<std::time::Instant> {
    LAST_NAP.with(|t| t.get())
}

/// See `LAST_NAP`.
#[inline]
pub(crate) fn set_last_nap(at: std::time::Instant) {
    LAST_NAP.with(|t| t.set(Some(at)));
}

/// See `SPIN_MISSES`.
#[inline]
pub(crate) fn spin_misses() -> u32 {
    SPIN_MISSES.with(|m| m.get())
}

/// See `SPIN_MISSES`.
#[inline]
pub(crate) fn set_spin_misses(misses: u32) {
    SPIN_MISSES.with(|m| m.set(misses));
}

/// This thread's innermost pending `send_many` batch (see `BATCH_TOP`).
#[inline(always)]
pub(crate) fn batch_top() -> *const () {
    BATCH_TOP.with(|top| top.get())
}

/// This thread's innermost pending `send_many` batch (see `BATCH_TOP`).
#[inline(always)]
pub(crate) fn set_batch_top(top: *const ()) {
    BATCH_TOP.with(|t| t.set(top));
}

#[cfg(not(loom))]
mod imp {
    pub(crate) use crossbeam_utils::Backoff;
    pub(crate) use std::sync::atomic::{
        compiler_fence, fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
    pub(crate) use std::sync::Arc;

    pub(crate) mod thread {
        pub(crate) use std::thread::{current, park, park_timeout, yield_now, Thread, ThreadId};

        /// `current().id()` without the handle: `current()` clones an
        /// `Arc` (a locked increment, and a decrement when dropped); this
        /// reads a copy kept in a thread-local. Ids are never reused.
        #[inline]
        pub(crate) fn current_id() -> ThreadId {
            std::thread_local! {
                static ID: ThreadId = std::thread::current().id();
            }
            ID.with(|id| *id)
        }
    }

    /// Spin-wait hint.
    #[inline(always)]
    pub(crate) fn spin_loop() {
        std::hint::spin_loop();
    }

    /// `UnsafeCell` with loom's closure-based API.
    #[derive(Debug)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        #[inline(always)]
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a shared raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a mutable raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// The slow-path lock: only taken by a thread about to park or to wake a
    /// parked one.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// The lock of a state that threads take for real work and contend for
    /// (the watch store's map and watchers): std's mutex, which spins a
    /// little and then sleeps. `parking_lot`'s yields between its spins and
    /// lets a running thread take the lock again past sleeping ones; with
    /// more threads than CPUs (the watch store's flow: 4 writers, 8
    /// watchers, 2 CPUs) 2-5% of the writes then waited more than 20 us
    /// for the lock and the write latency's p99 was 55-76 us; with std's,
    /// 0.05-0.1% and 2.3-3.5 us (the baseline's: 3.0-5.0 us). A panic while it is held does not poison
    /// it: the state's owner keeps it consistent across unwinding.
    #[derive(Debug, Default)]
    pub(crate) struct StateMutex<T>(std::sync::Mutex<T>);

    impl<T> StateMutex<T> {
        pub(crate) fn new(value: T) -> Self {
            StateMutex(std::sync::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
    pub(crate) use loom::sync::Arc;

    /// loom has no compiler fence; a real fence is strictly stronger.
    pub(crate) fn compiler_fence(order: Ordering) {
        fence(order);
    }

    pub(crate) mod thread {
        pub(crate) use loom::thread::{current, park, yield_now, Thread, ThreadId};

        /// `current().id()` (see the std version).
        pub(crate) fn current_id() -> ThreadId {
            current().id()
        }

        /// loom has no time: a timed park is an untimed one (models never
        /// use deadlines).
        pub(crate) fn park_timeout(_: std::time::Duration) {
            park();
        }
    }

    /// Under loom a spin loop must hand control to the scheduler.
    pub(crate) fn spin_loop() {
        loom::thread::yield_now();
    }

    /// crossbeam-utils' `Backoff` shape, yielding to loom's scheduler.
    #[derive(Debug, Default)]
    pub(crate) struct Backoff;

    impl Backoff {
        pub(crate) fn new() -> Self {
            Backoff
        }

        pub(crate) fn spin(&self) {
            loom::thread::yield_now();
        }

        pub(crate) fn snooze(&self) {
            loom::thread::yield_now();
        }
    }

    /// The slow-path lock under loom: a spin lock on a loom atomic. (loom's
    /// own `Mutex` treats an `unpark` of a thread blocked on it as a bug,
    /// while std only stores the token; our waiters are unparked by threads
    /// that do not hold their lock, so loom's `Mutex` cannot model them.)
    #[derive(Debug)]
    pub(crate) struct Mutex<T> {
        locked: AtomicBool,
        value: loom::cell::UnsafeCell<T>,
    }

    pub(crate) struct MutexGuard<'a, T> {
        locked: &'a AtomicBool,
        ptr: std::mem::ManuallyDrop<loom::cell::MutPtr<T>>,
    }

    // SAFETY: as std's `Mutex`: the value moves with the lock (`T: Send`),
    // and `lock` gives one thread at a time access to it, so sharing the
    // lock only needs `T: Send`.
    unsafe impl<T: Send> Send for Mutex<T> {}
    // SAFETY: see above.
    unsafe impl<T: Send> Sync for Mutex<T> {}

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex {
                locked: AtomicBool::new(false),
                value: loom::cell::UnsafeCell::new(value),
            }
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            while self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                loom::thread::yield_now();
            }
            MutexGuard {
                locked: &self.locked,
                ptr: std::mem::ManuallyDrop::new(self.value.get_mut()),
            }
        }
    }

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the guard holds the lock, so access is exclusive.
            unsafe { &*loom::cell::MutPtr::deref(&self.ptr) }
        }
    }

    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard holds the lock, so access is exclusive.
            unsafe { loom::cell::MutPtr::deref(&self.ptr) }
        }
    }

    /// Under loom, the state lock is the spin lock above.
    pub(crate) type StateMutex<T> = Mutex<T>;

    impl<T> Drop for MutexGuard<'_, T> {
        fn drop(&mut self) {
            // End the tracked access before releasing the lock.
            // SAFETY: `ptr` is not used after this.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.ptr) };
            self.locked.store(false, Ordering::Release);
        }
    }
}

pub(crate) use imp::*;
