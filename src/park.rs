//! Waiting and waking, shared by every channel kind and by `select`.
//!
//! # The protocol
//!
//! A thread that cannot make progress (empty on receive, full on send)
//! waits in three stages inside [`block_on`]:
//!
//! 1. **spin** a few rounds with exponential backoff (skipped when this
//!    process may only run on one core: spinning there only delays the thread
//!    we are waiting for; and skipped by a thread whose recent spins all
//!    found nothing, which happens when the thread it waits for shares its
//!    CPU: see `spin_futile`),
//! 2. **yield** a few times (stopping at a yield that another thread kept
//!    the CPU through, and napping now and then after one that ran another
//!    thread, so that two waiters left on one CPU get placed apart: see
//!    `Yielded` and `nap_if_due`),
//! 3. **park**: register a [`Waiter`] in the channel's [`WaitQueue`], issue
//!    the heavy barrier, try once more, then `thread::park` until notified.
//!
//! A waiter with offers (a rendezvous operation) registers first and runs
//! stages 1 and 2 registered, so that a partner can claim it meanwhile.
//!
//! The other side, after publishing (storing a new tail, head or the closed
//! state), issues the light barrier and loads the queue's word
//! ([`WaitQueue::needs_attention`]). Only if a waiter is registered does it
//! take the queue's lock and unpark it. So when nobody waits, a notification
//! costs a compiler fence and one load of a read-mostly cache line, and no
//! lock is ever taken on the data path.
//!
//! No lost wake-ups, by the store-buffer (Dekker) argument:
//!
//! ```text
//!   notifier                          waiter
//!   store data        (publish)       store waiting = n   (register)
//!   light barrier                     heavy barrier
//!   load waiting                      load data           (attempt)
//! ```
//!
//! The barrier pair forbids both loads from missing the other side's store:
//! either the waiter's re-check sees the data, or the notifier sees the waiter
//! and unparks it (an unpark before the park is remembered by the thread's
//! park token).
//!
//! # The barrier pair
//!
//! On Linux (x86_64, aarch64) the light barrier is only a compiler fence and
//! the heavy barrier is `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which
//! makes every running thread of the process execute a full memory barrier
//! (folly's `asymmetricLightBarrier` / `asymmetricHeavyBarrier`). That moves
//! the cost of the fence from every send and receive to the rare thread about
//! to park. (In a prototype ring on the 2-core development machine, a
//! `fence(SeqCst)` per operation gave about 65 M msg/s against about 280
//! with a compiler fence; `RILLET_NO_MEMBARRIER=1` runs the fence
//! protocol for comparison.) Where membarrier is
//! unavailable (other systems, seccomp, Miri), both barriers are
//! `fence(SeqCst)`; the mode is chosen once, before the first channel exists.
//!
//! The hot path does not look at the mode: the light barrier is always a
//! compiler fence, and where the pair is symmetric every queue word carries
//! a sticky `ALERT` bit, so the load that follows sends the notifier to
//! [`WaitQueue::notify_slow`], which issues the `fence(SeqCst)` and loads
//! the word again before deciding. A channel can also [`WaitQueue::alert`]
//! a queue itself, to fold a second rare condition into that one load: the
//! SPSC sender learns of a close that way.
//!
//! # Wake-up bookkeeping
//!
//! A [`Waiter`] stays in a queue until it leaves [`block_on`]; a notification
//! records which registration woke it in its `notified` word (a
//! compare-exchange from 0, so concurrent notifiers on different queues of
//! one `select` agree on one of them) and unparks it. `notify_one` skips
//! waiters already notified, so one notification wakes one thread. A
//! notification is a hint ("try again"), never a hand-over: the waiter
//! re-reads the channels. A waiter that leaves without acting on a
//! notification passes it on, so a `notify_one` is never swallowed: on a
//! timeout, and in a `select`, when it completes a case on another queue
//! than the one that woke it (a select woken by a freed slot on channel A
//! that then receives from channel B must not strand the producer parked on
//! A).

use crate::pad::Spaced;
use crate::sync::{thread, Arc, AtomicUsize, Mutex, Ordering};
use std::time::{Duration, Instant};

/// The asymmetric barrier pair (see the module docs).
pub(crate) mod barrier {
    #[cfg(not(loom))]
    use crate::sync::compiler_fence;
    #[cfg(not(loom))]
    use crate::sync::AtomicU8;
    use crate::sync::{fence, Ordering};

    #[cfg(not(loom))]
    const UNKNOWN: u8 = 0;
    #[cfg(not(loom))]
    const ASYMMETRIC: u8 = 1;
    #[cfg(not(loom))]
    const SYMMETRIC: u8 = 2;

    /// Which pair is in force; written once by [`init`], before any channel
    /// exists, and read with `Relaxed` ever after: a thread that holds a
    /// channel handle got it through a happens-before edge from the thread
    /// that created the channel, which had already run `init`.
    #[cfg(not(loom))]
    static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// Chooses the barrier pair. Called by `WaitQueue::new`, before it
    /// builds the queue word (whose `ALERT` bit depends on the choice), so
    /// every channel has chosen before its first notification; cheap after
    /// the first call.
    #[inline]
    pub(crate) fn init() {
        #[cfg(not(loom))]
        if MODE.load(Ordering::Acquire) == UNKNOWN {
            let mode = if membarrier::register() {
                ASYMMETRIC
            } else {
                SYMMETRIC
            };
            // Concurrent first calls agree: `register` is idempotent and
            // deterministic for a process.
            MODE.store(mode, Ordering::Release);
        }
    }

    /// `true` when the heavy barrier covers the light one (membarrier), so
    /// notifiers may decide on the load that follows the light barrier.
    ///
    /// Under loom, `true`, with both barriers a `fence(SeqCst)`: loom cannot
    /// run membarrier, but a SeqCst fence on each side gives the same
    /// store-buffer guarantee, and this way the models check the protocol
    /// that runs in production, fast-path skips included. (The symmetric
    /// protocol only adds a fence and a reload before every decision.)
    #[inline(always)]
    pub(crate) fn is_asymmetric() -> bool {
        #[cfg(not(loom))]
        {
            MODE.load(Ordering::Relaxed) == ASYMMETRIC
        }
        #[cfg(loom)]
        {
            true
        }
    }

    /// The barrier on the hot path, between a publishing store and the load
    /// of a [`WaitQueue`](super::WaitQueue)'s word (see
    /// `WaitQueue::needs_attention`): only a
    /// compiler fence. Where the pair is symmetric, every queue word carries
    /// `ALERT`, so the load sends the notifier to [`settle`], which issues
    /// the real fence before anything is decided.
    #[inline(always)]
    pub(crate) fn light() {
        #[cfg(not(loom))]
        compiler_fence(Ordering::SeqCst);
        #[cfg(loom)]
        fence(Ordering::SeqCst);
    }

    /// [`light`], then a relaxed load of `word`, as one step: the load a
    /// notifier decides on after its publishing store.
    ///
    /// On x86-64 and AArch64 (outside loom and Miri) the load is one
    /// instruction in an `asm!` block marked `readonly`. To the compiler it
    /// may read any memory, so every store before it is emitted before it
    /// (the ordering the compiler fence gives); and it writes none, so the
    /// values the caller holds in registers stay valid across it. A
    /// compiler fence also orders the stores, but clobbers all memory the
    /// caller has let escape, so every value read from it is read again
    /// after the fence (measured, one thread draining a ring of 2M: 1.6-1.7
    /// ns a `recv` with the fence, 1.45-1.5 with this, rtrb 1.6). (A
    /// sender's loop still keeps its copy of the tail in the handle's
    /// memory: the loop also calls the out-of-line slow paths, which may
    /// change it.) The processor may still perform the load before the
    /// store becomes visible; that is the reordering the heavy barrier (or,
    /// where the pair is symmetric, `settle`) covers, exactly as after
    /// `light`. An aligned word-sized `mov`/`ldr` is what a relaxed atomic
    /// load compiles to on both.
    #[inline(always)]
    pub(crate) fn light_load(word: &crate::sync::AtomicUsize) -> usize {
        #[cfg(all(not(loom), not(miri), target_arch = "x86_64"))]
        {
            let value: usize;
            // SAFETY: `word.as_ptr()` points to a live, aligned `usize` (the
            // atomic's storage) for the duration of the block; the block
            // only reads it, with a single aligned load (atomic on x86-64,
            // like a relaxed atomic load), and touches no stack or flags.
            unsafe {
                std::arch::asm!(
                    "mov {value}, qword ptr [{word}]",
                    word = in(reg) word.as_ptr(),
                    value = lateout(reg) value,
                    options(readonly, nostack, preserves_flags),
                );
            }
            value
        }
        #[cfg(all(not(loom), not(miri), target_arch = "aarch64"))]
        {
            let value: usize;
            // SAFETY: as on x86-64: one aligned 64-bit `ldr` (single-copy
            // atomic on AArch64) of a live atomic's storage.
            unsafe {
                std::arch::asm!(
                    "ldr {value}, [{word}]",
                    word = in(reg) word.as_ptr(),
                    value = lateout(reg) value,
                    options(readonly, nostack, preserves_flags),
                );
            }
            value
        }
        #[cfg(not(all(
            not(loom),
            not(miri),
            any(target_arch = "x86_64", target_arch = "aarch64")
        )))]
        {
            light();
            word.load(Ordering::Relaxed)
        }
    }

    /// The notifier's half of the pair once it has left the fast path: a
    /// full fence where the pair is symmetric, nothing where the waiter's
    /// heavy barrier covers it.
    #[inline]
    pub(crate) fn settle() {
        if !is_asymmetric() {
            fence(Ordering::SeqCst);
        }
    }

    /// The barrier on the slow path, between registering (or closing) and
    /// re-reading the data.
    #[cold]
    pub(crate) fn heavy() {
        if cfg!(loom) {
            fence(Ordering::SeqCst);
        } else if is_asymmetric() {
            if !membarrier::barrier() {
                // Registration succeeded, so the kernel guarantees this cannot
                // fail; if it does, the light barriers elsewhere are not
                // enough and continuing could lose a wake-up.
                eprintln!("rillet: membarrier failed after successful registration");
                std::process::abort();
            }
        } else {
            fence(Ordering::SeqCst);
        }
    }

    #[cfg(all(
        not(loom),
        not(miri),
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    mod membarrier {
        use std::os::raw::{c_int, c_long};

        extern "C" {
            fn syscall(num: c_long, ...) -> c_long;
        }

        #[cfg(target_arch = "x86_64")]
        const SYS_MEMBARRIER: c_long = 324;
        #[cfg(target_arch = "aarch64")]
        const SYS_MEMBARRIER: c_long = 283;

        const CMD_QUERY: c_int = 0;
        const CMD_PRIVATE_EXPEDITED: c_int = 1 << 3;
        const CMD_REGISTER_PRIVATE_EXPEDITED: c_int = 1 << 4;

        fn call(cmd: c_int) -> c_long {
            // SAFETY: membarrier(cmd, flags = 0, cpu_id = 0) takes integers
            // only and touches no user memory; an unsupported command
            // returns -1 (ENOSYS/EINVAL/EPERM), which callers handle.
            unsafe { syscall(SYS_MEMBARRIER, cmd, 0 as c_int, 0 as c_int) }
        }

        /// Registers the process for private expedited barriers; `false` if
        /// the kernel (or a seccomp filter) does not offer them, or if
        /// `RILLET_NO_MEMBARRIER` is set (used to test the fallback).
        pub(super) fn register() -> bool {
            if std::env::var_os("RILLET_NO_MEMBARRIER").is_some() {
                return false;
            }
            let needed = c_long::from(CMD_PRIVATE_EXPEDITED | CMD_REGISTER_PRIVATE_EXPEDITED);
            let mask = call(CMD_QUERY);
            mask >= 0 && mask & needed == needed && call(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
        }

        /// A full memory barrier on every running thread of this process.
        pub(super) fn barrier() -> bool {
            call(CMD_PRIVATE_EXPEDITED) == 0
        }
    }

    #[cfg(not(all(
        not(loom),
        not(miri),
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    mod membarrier {
        #[allow(dead_code)]
        pub(super) fn register() -> bool {
            false
        }

        pub(super) fn barrier() -> bool {
            false
        }
    }
}

/// A thread blocked in [`block_on`], registered in one or more queues.
///
/// `pub` (in a private module) only because the sealed `select` case trait
/// names it.
#[derive(Debug)]
pub struct Waiter {
    thread: thread::Thread,
    /// Claims, for waiters that registered offers a partner completes (a
    /// select's rendezvous receive): `OPEN`, `TAKEN` once the waiter
    /// committed to an outcome of its own, or `CLAIMED + tag` once a
    /// partner completed the offer registered under `tag`. Moves once, by
    /// compare-exchange from `OPEN`: exactly one of the two wins.
    claim: AtomicUsize,
    /// 0, or the tag (queue index + 1, see [`block_on_any`]) of the
    /// registration through which a notifier woke this waiter; set by the
    /// notifier with a compare-exchange from 0, reset by the waiter when it
    /// re-arms after waking.
    notified: AtomicUsize,
}

const OPEN: usize = 0;
const TAKEN: usize = 1;
const CLAIMED: usize = 2;

impl Waiter {
    /// A partner's claim of the offer registered under `tag`: `true` if it
    /// won (the waiter had not committed to anything else, nor been
    /// claimed). The winner completes the offer, then [`unpark`]s.
    ///
    /// [`unpark`]: Self::unpark
    pub(crate) fn try_claim(&self, tag: usize) -> bool {
        // AcqRel: the claimant then hands its message over under a lock
        // the waiter takes next; the waiter's Acquire load of the claim
        // pairs with this.
        self.claim
            .compare_exchange(OPEN, CLAIMED + tag, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Wakes the waiting thread (after a claim).
    pub(crate) fn unpark(&self) {
        self.thread.unpark();
    }

    /// The waiting thread.
    pub(crate) fn thread(&self) -> &thread::Thread {
        &self.thread
    }

    /// Whether the waiter may still be claimed (it has neither committed
    /// to an outcome of its own nor been claimed). A hint: the answer may
    /// change at once; only [`try_claim`](Self::try_claim) decides.
    pub(crate) fn is_open(&self) -> bool {
        self.claim.load(Ordering::Relaxed) == OPEN
    }
}

/// The offers a waiter registers with partners that may claim it (see
/// [`Waiter::try_claim`]): `register(waiter)` before it parks,
/// `unregister(waiter)` when it leaves.
pub(crate) trait Offers {
    fn register(&self, waiter: &Arc<Waiter>);
    fn unregister(&self, waiter: &Arc<Waiter>);
}

/// The threads waiting for one condition of one channel ("a message
/// arrived", "room became free").
#[derive(Debug)]
// `pub` (in a private module) only because the sealed `select` case trait
// names it.
#[repr(C)]
pub struct WaitQueue {
    /// Number of registered waiters not yet notified through this queue,
    /// plus the sticky `ALERT` bit and the count of offers out
    /// ([`OFFER`]); read (after the light barrier) by every
    /// notification, counted under `list`'s lock. Waiters already notified
    /// are not counted, so a notifier skips the lock while every waiter is
    /// awake but not yet re-armed (many producers on few cores). Every
    /// change is a read-modify-write, so an `Acquire` load that sees
    /// `ALERT` synchronizes with the `alert` that set it.
    waiting: Spaced<AtomicUsize>,
    list: Mutex<Vec<Entry>>,
}

/// A registration: the waiter, which of its queues this is (the tag it
/// finds in `notified` when woken through it), and whether `waiting`
/// counts it.
#[derive(Debug)]
struct Entry {
    waiter: Arc<Waiter>,
    tag: usize,
    counted: bool,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// The `waiting` bit that sends every notifier to the slow path, for good:
/// set from the start where the barrier pair is symmetric (the notifier must
/// fence before it decides), and by [`WaitQueue::alert`].
const ALERT: usize = 1 << (usize::BITS - 1);

/// One *offer* out, in the `waiting` word's count of them ([`OFFERS`]): a
/// message a waiter parked where a partner may take it (a sender's direct
/// hand-off, see `spsc.rs` and `mpsc/mod.rs`; an MPSC ring has up to
/// eight out at once, one per producer that waits for room). A nonzero
/// count sends notifiers to the channel's slow path, where the channel
/// looks at its offers; offers are not registrations, so
/// [`WaitQueue::notify_slow`] ignores them. Unlike `ALERT`, each is taken
/// off when its offer is resolved.
const OFFER: usize = 1 << (usize::BITS - 8);
/// The bits of the offer count: six, below `ALERT` and one spare bit, and
/// above the registrations' count (which has 2^24 values on a 32-bit
/// target).
const OFFERS: usize = 0x3f * OFFER;

impl WaitQueue {
    /// A new queue. A channel with several queues calls
    /// [`WaitQueue::initial_word`] once and [`WaitQueue::with_word`] for
    /// each instead, so that it is built in place (see there).
    #[inline]
    pub(crate) fn new() -> Self {
        Self::with_word(Self::initial_word())
    }

    /// The word a new queue starts with (chooses the barrier pair first).
    /// A channel with several queues computes it once, before it builds
    /// them: nothing opaque then runs between the stores of its fields, so
    /// the compiler builds them in place in the channel's allocation.
    #[inline]
    pub(crate) fn initial_word() -> usize {
        barrier::init();
        if barrier::is_asymmetric() {
            0
        } else {
            ALERT
        }
    }

    /// A queue whose word is `word`, from [`WaitQueue::initial_word`].
    #[inline(always)]
    pub(crate) fn with_word(word: usize) -> Self {
        WaitQueue {
            waiting: Spaced::new(AtomicUsize::new(word)),
            list: Mutex::new(Vec::new()),
        }
    }

    /// `false` if a notifier may skip this queue: nobody is registered, the
    /// queue was never alerted, and the light barrier suffices. Call right
    /// after the publishing store (it issues the light barrier itself, see
    /// [`barrier::light_load`]); on `true`
    /// call [`notify_slow`](Self::notify_slow) before deciding anything (or
    /// use `notify_*`, which do both).
    #[inline(always)]
    pub(crate) fn needs_attention(&self) -> bool {
        barrier::light_load(&self.waiting) != 0
    }

    /// Publishing store, then this: wakes one waiter, if any.
    #[inline(always)]
    pub(crate) fn notify_one(&self) {
        if self.needs_attention() {
            self.notify_slow(false);
        }
    }

    /// Publishing store, then this: wakes every waiter (close).
    #[inline]
    pub(crate) fn notify_all(&self) {
        if self.needs_attention() {
            self.notify_slow(true);
        }
    }

    /// The rest of a notification once [`needs_attention`] said `true`:
    /// completes the barrier pair, then wakes one (or every) waiter if any
    /// is registered. Afterwards the caller also sees whatever the thread
    /// that [`alert`](Self::alert)ed this queue did before it.
    ///
    /// [`needs_attention`]: Self::needs_attention
    #[cold]
    #[inline(never)]
    pub(crate) fn notify_slow(&self, all: bool) {
        barrier::settle();
        // Acquire: pairs with `alert`'s release (see `waiting`).
        if self.waiting.load(Ordering::Acquire) & !(ALERT | OFFERS) != 0 {
            self.wake(all);
        }
    }

    /// Sends every later notifier of this queue to
    /// [`notify_slow`](Self::notify_slow) for good, where it also sees
    /// everything this thread did before. A channel alerts a queue when its
    /// notifiers have something else to check on the slow path (the SPSC
    /// sender: the close state). Like registering, this is a store the
    /// notifier's load must not miss: issue the heavy barrier after it
    /// before reading the data the notifier published.
    pub(crate) fn alert(&self) {
        self.waiting.fetch_or(ALERT, Ordering::Release);
    }

    /// Counts an offer out (see [`OFFER`]): until its [`clear_offer`],
    /// every notifier goes to its slow path. Counted before the offer is
    /// published (so that the partner who takes it off the count does so
    /// after this); no barrier is needed, because a waiter with an offer
    /// out keeps re-checking the channel while it spins and yields, and
    /// registers (with the heavy barrier) before it parks.
    ///
    /// [`clear_offer`]: Self::clear_offer
    pub(crate) fn set_offer(&self) {
        let before = self.waiting.fetch_add(OFFER, Ordering::Release);
        debug_assert!(before & OFFERS != OFFERS, "offer count overflow");
    }

    /// An offer was resolved (taken by the partner or withdrawn): takes
    /// it off the count. `false` if nobody was registered and the queue
    /// was not alerted when it went. A read-modify-write that releases: a
    /// waiter that registers later (a read-modify-write too, then the
    /// heavy barrier) sees everything the caller did before.
    pub(crate) fn clear_offer(&self) -> bool {
        let before = self.waiting.fetch_sub(OFFER, Ordering::AcqRel);
        debug_assert!(before & OFFERS != 0, "no offer to clear");
        before & !OFFERS != 0
    }

    /// Wakes one (or all) registered waiters not yet notified. The caller
    /// has issued the light barrier.
    #[cold]
    #[inline(never)]
    pub(crate) fn wake(&self, all: bool) {
        let mut chosen = Vec::new();
        {
            let mut list = self.list.lock();
            let mut uncounted = 0;
            for entry in list.iter_mut().filter(|e| e.counted) {
                // Notified here or through another queue of the same select:
                // either way it is awake (or about to be) and will re-arm.
                entry.counted = false;
                uncounted += 1;
                // AcqRel: the waiter's re-arm swap reads this value, so
                // whatever this thread published before it is visible to
                // the waiter. A failed exchange: notified already (here or
                // through another queue of the same select).
                if entry
                    .waiter
                    .notified
                    .compare_exchange(0, entry.tag, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    chosen.push(entry.waiter.clone());
                    if !all {
                        break;
                    }
                }
            }
            if uncounted != 0 {
                self.waiting.fetch_sub(uncounted, Ordering::Relaxed);
            }
        }
        // Unpark after unlocking, so a woken thread never blocks on our lock
        // (and loom, which treats an unpark of a thread blocked on a mutex
        // as an error, agrees).
        for waiter in chosen {
            waiter.thread.unpark();
        }
    }

    /// Registers `waiter` (not notified) under `tag`, or counts it again
    /// after it re-armed. A waiter registers once per queue: a select with
    /// two cases on one queue passes it once.
    fn arm(&self, waiter: &Arc<Waiter>, tag: usize) {
        let mut list = self.list.lock();
        match list.iter_mut().find(|e| Arc::ptr_eq(&e.waiter, waiter)) {
            Some(entry) if entry.counted => return,
            Some(entry) => entry.counted = true,
            None => list.push(Entry {
                waiter: waiter.clone(),
                tag,
                counted: true,
            }),
        }
        // Relaxed: ordered before the waiter's re-check by the heavy barrier.
        self.waiting.fetch_add(1, Ordering::Relaxed);
    }

    fn unregister(&self, waiter: &Arc<Waiter>) {
        let mut list = self.list.lock();
        if let Some(i) = list.iter().position(|e| Arc::ptr_eq(&e.waiter, waiter)) {
            if list.remove(i).counted {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Polls (one spin hint apart, a few microseconds in all) before yielding.
const SPIN_POLLS: u32 = 128;
/// Exponential spin rounds of `wait_brief`.
const SPIN_STEPS: u32 = 6;
/// Yields before parking, when the thread we wait for is probably running
/// (a yield with nothing else runnable returns at once: 256 of them are
/// about 40 microseconds on the development machine, after which the
/// thread parks and uses no CPU). With 4, two threads on two CPUs handing
/// messages through a capacity-1 channel kept parking each other:
/// 0.16-0.43 M msg/s, a futex wake per message; with 16, 1.5; with 32,
/// 1.9-2.0 (kanal 2.7 in the same run); 64 was no better there.
///
/// 32 until 2026-12-06: about 5 microseconds, and a thread parked whenever
/// the other side paused longer, at every start of a new pair of threads
/// (the one that came first waited for the other to be scheduled) and in
/// the machine's short stalls; each park's heavy barrier is a membarrier,
/// 15-18 microseconds on this VM while another thread of the process runs
/// (0.1 while none does). SPSC capacity 1024, u64, a fresh channel and
/// sender thread for each 7,400 messages (a criterion sample's shape):
/// 125 -> 280 M msg/s (64: 190-290, 128: 285-295, 512: 205-310); `versus`
/// unpinned, two runs each in turns: spsc cap 1024 242/216 -> 307/261,
/// the other rows level (broadcast 1->4's slow runs, about one in five at
/// 19 M msg/s against 40, were absent in those two and came back in later
/// runs: not parking); the watch flow level (medians of 15, 12.2 -> 12.9
/// M events/s).
const YIELD_STEPS: u32 = 256;
/// Yields before parking when this process has one CPU: a yield hands the
/// CPU straight to the thread we wait for, while parking costs a futex
/// wake (and a context switch) on the other side for every wait. Many,
/// because with several waiters (producers of a full MPSC ring) each yield
/// may go to another waiter rather than to the consumer: with 8, producers
/// gave up and parked, and the consumer then paid a futex wake per message
/// received (MPSC pinned to one CPU, 4 producers: 57 M/s with 8 yields,
/// 78-83 with 64; 8 producers: 42 and 58-63). A yield with nothing else runnable
/// returns at once, so 64 of them are still only tens of microseconds
/// before the thread parks.
const SINGLE_CORE_YIELD_STEPS: u32 = 64;
/// Yields before parking for a caller that skips spinning because more
/// threads share the channel than there are CPUs (kept at 8: 64 measured no
/// better there, broadcast 1->4 on 2 CPUs).
const CROWDED_YIELD_STEPS: u32 = 8;
/// Yields before parking for a quiet receiver ([`Pace::Quiet`]). The watch
/// store's watchers parked after 8, about 200 times each in a run of the
/// 4-writer, 8-watcher flow on two CPUs, and each park's membarrier
/// interrupts the other CPU, often a writer holding the store's lock (the
/// other writers then sleep on it: the flow's slow runs). With 64: probe
/// of the flow, 12 runs each, median 16.0 -> 18.5 M events/s; with 256,
/// 19.0 and fewer slow runs. As [`YIELD_STEPS`]: about 40 us when nothing
/// else runs, then the watcher parks.
const QUIET_YIELD_STEPS: u32 = 256;

/// `true` when this process may run on one CPU only (`taskset -c 0`, a
/// one-core container): spinning cannot help there.
#[inline]
pub(crate) fn single_core() -> bool {
    cpus() == 1
}

/// The number of CPUs this process may run on (cached; 2 under loom).
/// Inline: every channel asks when it is built (the lookup is out of line).
#[inline]
pub(crate) fn cpus() -> usize {
    #[cfg(not(loom))]
    {
        use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
        static CPUS: StdAtomicUsize = StdAtomicUsize::new(0);
        #[cold]
        #[inline(never)]
        fn look_up() -> usize {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            CPUS.store(cpus, StdOrdering::Relaxed);
            cpus
        }
        match CPUS.load(StdOrdering::Relaxed) {
            0 => look_up(),
            cpus => cpus,
        }
    }
    #[cfg(loom)]
    {
        2
    }
}

fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// The one waiting function: runs `attempt` until it returns `Some`, waiting
/// on `queues` in between (spin, yield, then park). Returns `None` if
/// `deadline` passes first. `attempt` is always tried before the deadline is
/// checked, so a zero timeout still succeeds on a ready channel.
///
/// `attempt` must return `Some` for every terminal outcome (success and
/// closed), and must read the channel state fresh (it runs after the heavy
/// barrier).
///
/// `pace`: [`Pace::Spin`] spins before yielding. A caller that knows the
/// thread it waits for is probably not running (more threads on the
/// channel than CPUs) passes [`Pace::Crowded`]: then only yielding can
/// help it; a quiet receiver passes [`Pace::Quiet`] (only yielding, for
/// longer).
#[inline]
pub(crate) fn block_on<R>(
    queues: &[&WaitQueue],
    deadline: Option<Instant>,
    pace: Pace,
    mut attempt: impl FnMut() -> Option<R>,
) -> Option<R> {
    // Every outcome acts on the one queue it waited on: nothing to pass on
    // unless it times out.
    debug_assert_eq!(queues.len(), 1);
    block_on_any(
        queues,
        None,
        deadline,
        pace,
        || attempt().map(|r| (Some(0), r)),
        |_| unreachable!("nothing to claim without offers"),
    )
}

/// [`block_on`] for a waiter on several queues (`select`): `attempt`
/// returns, with its outcome, the index in `queues` of the queue whose
/// condition that outcome used (`None`: none of them, such as a timer that
/// fired). A notification received through any other queue is passed on
/// when the waiter leaves, so it wakes another waiter of that queue.
///
/// With `offers`, the waiter also registers offers that partners may claim
/// (a rendezvous receive in a select). Then `attempt` must have no effect
/// beyond its answer: an outcome counts only if the waiter wins its own
/// claim word first (`OPEN` to `TAKEN`); if a partner claimed it instead,
/// the outcome is `claimed(tag)` for the offer it completed. A timeout
/// likewise loses to a claim.
pub(crate) fn block_on_any<R>(
    queues: &[&WaitQueue],
    offers: Option<&dyn Offers>,
    deadline: Option<Instant>,
    pace: Pace,
    mut attempt: impl FnMut() -> Option<(Option<usize>, R)>,
    mut claimed: impl FnMut(usize) -> (Option<usize>, R),
) -> Option<R> {
    // Stages 1 and 2: spin, then yield. A waiter with offers (a rendezvous
    // receive or send, in a select or alone) registers first and spins
    // and yields registered (below): a partner that polls (a `try_send`
    // loop, a select with another ready case, a select's send case) can
    // only meet it through its offer. Spinning unregistered, such a pair
    // met only once one of them parked: a select's send to a receiver in
    // `recv` took 75-80 us a message on two CPUs (crossbeam-channel about
    // 1), and on one CPU a `try_send` loop polled through 64 time slices,
    // 90 ms, before it could reach a waiting receiver.
    if offers.is_none() {
        match spin_then_yield(deadline, pace, &mut attempt) {
            Spun::Done((_, r)) => return Some(r),
            Spun::Expired => return None,
            Spun::Park => {}
        }
    }

    // Stage 3: register, barrier, re-check, park.
    let waiter = Arc::new(Waiter {
        thread: thread::current(),
        notified: AtomicUsize::new(0),
        claim: AtomicUsize::new(OPEN),
    });
    for (i, q) in queues.iter().enumerate() {
        q.arm(&waiter, i + 1);
    }
    if let Some(offers) = offers {
        offers.register(&waiter);
    }
    // The pairing with notifiers. Without queues only claims and direct
    // unparks wake us, and those are ordered by the partner's lock and the
    // claim word's compare-exchange: no barrier needed (a rendezvous wait
    // pays no system call).
    if !queues.is_empty() {
        barrier::heavy();
    }
    // Commits to an outcome of our own, unless a partner claimed us first.
    let mut commit = |outcome: Option<(Option<usize>, R)>| -> Option<(Option<usize>, R)> {
        if offers.is_none() {
            return outcome;
        }
        match waiter
            .claim
            .compare_exchange(OPEN, TAKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => outcome,
            Err(c) => Some(claimed(c - CLAIMED)),
        }
    };
    // The tags of the notifications this waiter took and has not yet acted
    // on (a bit per queue index; from 64 queues on, the last bit stands for
    // all the rest).
    let mut woken_by: u64 = 0;
    // Registered offers: stages 1 and 2 now, each pause in place of a park
    // (to the protocol, a park that returned at once, as a spurious
    // wake-up may). Not under loom, like `spin_then_yield`.
    let (spin_polls, yield_steps) = if offers.is_some() && !cfg!(loom) {
        stages(pace)
    } else {
        (0, 0)
    };
    let mut paused = 0;
    let result = loop {
        if offers.is_some() && waiter.claim.load(Ordering::Acquire) >= CLAIMED {
            break commit(None);
        }
        if let Some(r) = attempt() {
            break commit(Some(r));
        }
        // A claim made while `attempt` ran (it may take a channel lock
        // that the claimant held): its unpark is stored for our `park`
        // anyway, but loom drops an unpark that arrives while the thread
        // spins on a lock (yield), so look before parking.
        if offers.is_some() && waiter.claim.load(Ordering::Acquire) >= CLAIMED {
            break commit(None);
        }
        if paused < spin_polls + yield_steps {
            if expired(deadline) {
                break commit(None);
            }
            paused = pause(paused, spin_polls, yield_steps, pace);
            continue;
        }
        match deadline {
            None => thread::park(),
            Some(d) => {
                let now = Instant::now();
                // loom has no time: a deadline expires the first time we
                // would sleep, so models explore the timeout races.
                if now >= d || cfg!(loom) {
                    break commit(None);
                }
                thread::park_timeout(d - now);
            }
        }
        // Woken by a notification (this swap reads the notifier's value and
        // acquires what it published), by a claim, or spuriously. Try at
        // once: usually the wake-up means we can go on, and the heavy
        // barrier below costs a system call. Only if we cannot, re-arm: a
        // notifier skips waiters it does not count, so count ourselves
        // again and re-check after the heavy barrier (the same Dekker
        // pairing as the first registration).
        let tag = waiter.notified.swap(0, Ordering::AcqRel);
        if tag != 0 {
            woken_by |= 1 << (tag - 1).min(63);
            // (Not under loom: like the spin stage, an attempt outside the
            // registered protocol is always safe, and it multiplies the
            // interleavings the models explore: the 2x2 broadcast model went
            // from 43 s to over 5 minutes.)
            if !cfg!(loom) && (offers.is_none() || waiter.claim.load(Ordering::Acquire) == OPEN) {
                if let Some(r) = attempt() {
                    break commit(Some(r));
                }
            }
            for (i, q) in queues.iter().enumerate() {
                q.arm(&waiter, i + 1);
            }
            barrier::heavy();
        }
    };
    for q in queues {
        q.unregister(&waiter);
    }
    if let Some(offers) = offers {
        offers.unregister(&waiter);
    }
    let (used, result) = match result {
        Some((used, r)) => (used, Some(r)),
        // Timed out: whatever woke us was not acted on.
        None => (None, None),
    };
    // Notifications taken in the loop were followed by an attempt: the one
    // through the queue we completed on may be what we acted on.
    if woken_by != 0 {
        pass_on(queues, woken_by, used);
    }
    // A notification that came after our last attempt was never acted on,
    // whatever the outcome: a waiter that succeeded on its own attempt and
    // was chosen by a `notify_one` before it unregistered would otherwise
    // swallow it (two producers on a full MPSC ring: the consumer's next
    // receive chose the producer that was leaving, and the other slept
    // forever; found by loom). Passing it on costs at most a spurious
    // wake-up.
    let late = waiter.notified.load(Ordering::Acquire);
    if late != 0 {
        queues[late - 1].notify_one();
    }
    result
}

/// Wakes one other waiter of each queue in `woken_by` except `used`: the
/// notifications a leaving waiter took and did not act on.
#[cold]
fn pass_on(queues: &[&WaitQueue], woken_by: u64, used: Option<usize>) {
    for (i, q) in queues.iter().enumerate() {
        if Some(i) != used && woken_by & (1 << i.min(63)) != 0 {
            q.notify_one();
        }
    }
}

/// Outcome of the spinning stages.
enum Spun<R> {
    Done(R),
    Expired,
    Park,
}

/// Stages 1 and 2 of every wait: poll, then yield, a bounded number of
/// times. Under loom go straight to parking so that models explore
/// registration and wake-up.
#[inline]
fn spin_then_yield<R>(
    deadline: Option<Instant>,
    pace: Pace,
    attempt: &mut impl FnMut() -> Option<R>,
) -> Spun<R> {
    if cfg!(loom) {
        return Spun::Park;
    }
    let (spin_polls, yield_steps) = stages(pace);
    let mut step = 0;
    // On one CPU, yield before the first attempt: every caller has just
    // tried, and nothing can have changed since unless this thread was
    // preempted. (An attempt is not always free: a receiver that accepts
    // a direct hand-off disarms and re-arms its cell in each, a locked
    // instruction: skipping it took a one-CPU ping-pong through two
    // capacity-1 channels from 1.01 to 1.05 M round trips a second.)
    if single_core() {
        thread::yield_now();
    }
    loop {
        if let Some(r) = attempt() {
            if spin_polls > 0 && step > 0 {
                spin_outcome(step <= spin_polls);
            }
            return Spun::Done(r);
        }
        if expired(deadline) {
            return Spun::Expired;
        }
        if step == spin_polls + yield_steps {
            if spin_polls > 0 {
                spin_outcome(false);
            }
            return Spun::Park;
        }
        step = pause(step, spin_polls, yield_steps, pace);
    }
}

/// Pause `step` of stages 1 and 2 (`spin_polls` polls, then `yield_steps`
/// yields): returns the next step, or the end of the stages after a slow
/// yield (then the waiter looks once more and parks). A yield that ran
/// another thread may be followed by a nap. See [`timed_yield`]; crowded
/// waiters and one CPU only yield.
fn pause(step: u32, spin_polls: u32, yield_steps: u32, pace: Pace) -> u32 {
    if step < spin_polls {
        // Poll at a constant, short interval: we wait for a store to a
        // line we only read, so polling costs the other side nothing, and
        // a long pause would only add latency.
        crate::sync::spin_loop();
        step + 1
    } else if pace == Pace::Spin && !single_core() {
        match timed_yield() {
            Yielded::Slow => spin_polls + yield_steps,
            Yielded::Switched => {
                nap_if_due();
                step + 1
            }
            Yielded::AtOnce => step + 1,
        }
    } else {
        thread::yield_now();
        step + 1
    }
}

/// How a wait uses its CPU before it parks (see [`block_on`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Pace {
    /// Spin, then yield: the thread it waits for probably runs on another
    /// CPU.
    Spin,
    /// Only yield, a few times: more threads share the channel than there
    /// are CPUs.
    Crowded,
    /// Only yield, for longer: a quiet receiver (the watch store's
    /// watchers, see `spsc::Builder::build_with`).
    Quiet,
}

impl From<bool> for Pace {
    /// `true`: [`Pace::Spin`]; `false`: [`Pace::Crowded`].
    fn from(spin: bool) -> Pace {
        if spin {
            Pace::Spin
        } else {
            Pace::Crowded
        }
    }
}

/// How many polls (one spin hint apart) and then yields a wait makes
/// before it parks (see the constants).
fn stages(pace: Pace) -> (u32, u32) {
    if single_core() {
        (0, SINGLE_CORE_YIELD_STEPS)
    } else if pace == Pace::Crowded {
        (0, CROWDED_YIELD_STEPS)
    } else if pace == Pace::Quiet {
        (0, QUIET_YIELD_STEPS)
    } else if spin_futile() {
        (0, YIELD_STEPS)
    } else {
        (SPIN_POLLS, YIELD_STEPS)
    }
}

/// Waits of this thread in a row whose spinning found nothing, after which
/// [`spin_futile`] skips spinning (the one after them still spins).
const FUTILE_SPINS: u32 = 3;
/// While spinning is skipped, one wait in this many spins anyway, to find
/// out whether it helps again.
const SPIN_PROBE_EVERY: u32 = 8;

/// Whether this wait should skip spinning. Spinning helps only while the
/// thread we wait for runs on another CPU; when it shares ours (two CPUs,
/// one of them taken by another process: both threads of a ping-pong end
/// up on the free one), it cannot run until we yield, and each wait spun
/// for microseconds first (a ping-pong through two capacity-1 channels,
/// that way: 60-85 thousand round trips a second, crossbeam-channel 108,
/// and 350 on one CPU, where nothing spins). So after [`FUTILE_SPINS`]
/// waits whose spinning found nothing, and one more, a thread goes
/// straight to yielding, except in one wait in [`SPIN_PROBE_EVERY`]; a
/// spin that finds the channel ready starts over.
///
/// This thread's count (`sync::spin_misses`) is `m`: below
/// `FUTILE_SPINS`, the spins in vain so far; `FUTILE_SPINS`, the next
/// wait spins (a probe); above it, the waits skip spinning, counting up to
/// the next probe.
fn spin_futile() -> bool {
    let m = crate::sync::spin_misses();
    if m <= FUTILE_SPINS {
        return false;
    }
    let next = if m + 1 >= FUTILE_SPINS + SPIN_PROBE_EVERY {
        FUTILE_SPINS
    } else {
        m + 1
    };
    crate::sync::set_spin_misses(next);
    true
}

/// Records how a wait that spun ended: `found`, the channel became ready
/// while it spun (see [`spin_futile`]).
fn spin_outcome(found: bool) {
    let m = crate::sync::spin_misses();
    crate::sync::set_spin_misses(if found {
        0
    } else {
        (m + 1).min(FUTILE_SPINS + 1)
    });
}

/// A yield that returns later than this gave the CPU to a thread that kept
/// it: [`Yielded::Slow`].
const SLOW_YIELD: Duration = Duration::from_micros(50);
/// A yield that returns later than this ran another thread on this CPU
/// ([`Yielded::Switched`]): one that finds nothing else to run returns in
/// 0.5 us on the machine this was measured on, one that runs a thread that
/// yields straight back in 2.7 us.
const SWITCHED_YIELD: Duration = Duration::from_micros(2);
/// At most one nap ([`nap_if_due`]) per thread in this long.
const NAP_EVERY: Duration = Duration::from_millis(1);

/// How a yield of a waiter that spins (two CPUs or more, not crowded)
/// went.
enum Yielded {
    /// Nothing else ran: the thread we wait for is on another CPU.
    AtOnce,
    /// Another thread ran briefly: probably the thread we wait for, on our
    /// CPU. See [`nap_if_due`].
    Switched,
    /// Another thread kept this CPU for [`SLOW_YIELD`] or more. Then the
    /// waiter parks instead of yielding again: each further yield would
    /// hand this CPU to that thread for a whole time slice (a CPU-bound
    /// thread of another process, on one of two CPUs, made a ping-pong
    /// whose threads shared its CPU take up to 1.5 ms a round trip, 32
    /// yields of a slice each, where a parked thread is woken at once: the
    /// scheduler favours a woken thread over one that ran). A yield to our
    /// partner, which answers and waits in turn, returns within a few
    /// microseconds. (Not on one CPU, where every yield runs another
    /// thread, see [`SINGLE_CORE_YIELD_STEPS`], nor for a crowded channel's
    /// waiter, whose yields are meant to run the other threads of the
    /// channel: parking after a slow one, broadcast 1->4 on two CPUs went
    /// from 3.1-3.5x crossbeam-channel to 2.4-2.6x.)
    Slow,
}

/// Yields, and tells how long that took (see [`Yielded`]).
fn timed_yield() -> Yielded {
    let yielded = Instant::now();
    thread::yield_now();
    match yielded.elapsed() {
        t if t >= SLOW_YIELD => Yielded::Slow,
        t if t >= SWITCHED_YIELD => Yielded::Switched,
        _ => Yielded::AtOnce,
    }
}

/// After a yield that ran another thread ([`Yielded::Switched`]): sleeps
/// for a moment, at most once per [`NAP_EVERY`] per thread, so that the
/// scheduler places this thread again when it wakes.
///
/// Two threads that wait for each other by yielding can end up on one CPU
/// with the other idle, and stay there: each yield runs the partner, which
/// answers and yields back, neither ever sleeps, and the scheduler does
/// not move a thread that ran a moment ago (it is "cache-hot"). A wake-up
/// does not place them apart either: on these machines a woken thread is
/// often put on its waker's CPU. A thread that sleeps is placed again when
/// its timer wakes it, on the idle CPU if there is one. Rendezvous hand-offs
/// on two CPUs, microseconds each, medians of 7 rounds, three runs (the
/// threads shared a CPU in most rounds before): a `recv` meeting a plain
/// `send` 3.9-4.0 -> 0.38-0.43, a select's send 7.7 -> 0.80 (crossbeam-
/// channel 0.76-12, bimodal the same way), a select on both ends 7.7-7.9
/// -> 0.79-0.83. The sleep asks for 1 us and takes about 55 (the timer
/// slack); at most once a millisecond, that is at most 6% of a thread's
/// time where sharing the CPU is all there is (a CPU-bound thread on the
/// other CPU: ping-pong through capacity-1 channels measured no slower).
fn nap_if_due() {
    let now = Instant::now();
    let due = crate::sync::last_nap().map_or(true, |t| now - t >= NAP_EVERY);
    if due {
        crate::sync::set_last_nap(now);
        // std's: loom has no sleep, and no timing under loom reaches here.
        std::thread::sleep(Duration::from_micros(1));
    }
}

/// A blocked thread waits for `cap / SLACK_DIVISOR` slots (or messages)
/// before it goes on: see [`pause_until`]. SPSC and MPSC go through
/// [`slack_for`], which raises small rings' batch to two lines (except the
/// MPSC consumer, which waits for a quarter of the ring: see its
/// `before_recv_wait`); broadcast still uses the divisor alone (not
/// measured with `slack_for`).
pub(crate) const SLACK_DIVISOR: usize = 8;
/// How many free slots (of type `S`) a blocked sender, or messages a
/// receiver that caught up, waits for (briefly, see [`pause_until`]) before it
/// goes on: `cap / SLACK_DIVISOR`, but at least two cache lines of
/// messages if that is at most a quarter of the ring. Two threads, u64,
/// a probe of `versus`'s loop, medians of 7 runs, four rounds in turns
/// with the build before: capacity 64, 39-50 -> 54-63 M msg/s
/// (crossbeam-channel 58, rtrb 53 in an earlier run); 12: 18-21 -> 26-31;
/// 16: 29-31 -> 31-37; 2, 4, 8, 32 as before; 64-byte messages unchanged
/// (their two lines are two slots). One line was the slack of a
/// capacity-64 ring of u64: each side then waited for the line the other
/// was still writing or reading.
pub(crate) fn slack_for<S>(cap: usize) -> usize {
    let two_lines = 128 / std::mem::size_of::<S>().max(1);
    (cap / SLACK_DIVISOR).max((cap / 4).min(two_lines))
}

/// Rounds of [`pause_until`]: exponential spins starting at
/// `FIRST_PAUSE_SPINS` spin hints (248 in all), or one yield each.
const PAUSE_ROUNDS: u32 = 5;
/// The first round's spin hints. Every check of `ready()` reads a line the
/// other thread is writing and costs it a cache miss on its next store, so
/// the first look waits a little: starting at 1 hint instead of 8 made the
/// two-thread SPSC u64 run about 9% slower.
const FIRST_PAUSE_SPINS: u32 = 8;

/// A bounded pause until `ready()`: a blocked sender waiting for a batch of
/// free slots rather than the next one, a receiver that caught up waiting
/// for a batch of messages rather than the next one. Taking each slot the
/// moment the other side frees it keeps both sides on the same cache lines,
/// message after message. Spins (or, when `spin` is false because the
/// thread we wait for is probably not running, yields) for a few
/// microseconds at most and never parks; the caller then goes on whether or
/// not `ready()` became true. Off under loom and on one CPU.
#[inline(always)]
pub(crate) fn pause_until(spin: bool, ready: impl FnMut() -> bool) {
    if cfg!(loom) || single_core() {
        return;
    }
    pause_rounds(spin, PAUSE_ROUNDS, ready);
}

/// Yields of [`pause_quietly`].
const QUIET_PAUSE_YIELDS: u32 = 12;

/// [`pause_until`] for a quiet receiver (the watch store's watchers, see
/// `spsc::Builder::build_with`): yields, never spins, and for longer. A
/// watcher that caught up and went on at once took one event, then
/// yielded again: 4 writers and 8 watchers on two CPUs made 270,000
/// context switches for 480,000 writes. Pausing until a batch is there
/// took that flow from 9.3-10.0 to 9.9-10.6 M events/s with 5 yields and
/// 10.7-11.1 with 12 (32 no better). With nothing else runnable a yield
/// returns at once, so an idle watcher waits a few microseconds longer at
/// most.
#[inline(always)]
pub(crate) fn pause_quietly(ready: impl FnMut() -> bool) {
    if cfg!(loom) || single_core() {
        return;
    }
    pause_rounds(false, QUIET_PAUSE_YIELDS, ready);
}

#[inline(always)]
fn pause_rounds(spin: bool, rounds: u32, mut ready: impl FnMut() -> bool) {
    for round in 0..rounds {
        if spin {
            for _ in 0..FIRST_PAUSE_SPINS << round {
                crate::sync::spin_loop();
            }
        } else {
            thread::yield_now();
        }
        if ready() {
            return;
        }
    }
}

/// Waits (spin, then yield) for a short state transition that another thread
/// is in the middle of (a close being finished). Never parks: the other
/// thread is running code that cannot block.
pub(crate) fn wait_brief(mut done: impl FnMut() -> bool) {
    let mut step = 0u32;
    while !done() {
        if step < SPIN_STEPS && !single_core() {
            for _ in 0..(1u32 << step) {
                crate::sync::spin_loop();
            }
            step += 1;
        } else {
            thread::yield_now();
        }
    }
}
