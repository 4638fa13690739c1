//! The close state shared by every channel kind.
//!
//! ```text
//!   OPEN --begin() wins--> CLOSING --finish(cutoff)--> CLOSED
//! ```
//!
//! - `begin` is one compare-exchange: exactly one call, from any side and any
//!   thread, moves the state out of `OPEN`, and only that call's `close()`
//!   returns `true`. Every other call sees the state already moved and
//!   returns `false`; nothing panics.
//! - Between `begin` and `finish` the winner computes the **cutoff**: the
//!   index one past the last message that belongs to the channel. Receivers
//!   deliver indices below the cutoff and nothing else. A sender that
//!   published a message concurrently with a close reads the cutoff to learn
//!   whether its message made it (below) or must be taken back (at or above).
//! - `finish` stores the cutoff, then `CLOSED` with `Release`; whoever loads
//!   `CLOSED` with `Acquire` sees the cutoff.
//!
//! Channels whose producers already claim positions with a compare-exchange
//! (MPSC) keep the closed bit in the tail word instead, set by
//! [`set_mark`]: the claim then fails atomically once closed, and no cutoff
//! is needed.
//!
//! `is_closed()` is true from `begin` on. A receiver treats `CLOSING` as
//! still open (it keeps waiting); the closer wakes every waiter after
//! `finish`.

use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// Sets `mark` in `word` (a tail that carries the closed bit, as in the MPSC
/// and broadcast rings). `true` only for the call that set it: the once-only
/// close for a channel whose producers claim positions with a
/// compare-exchange, so that the claim and the close check are one atomic
/// step.
pub(crate) fn set_mark<W: MarkWord>(word: &W, mark: W::Value) -> bool {
    word.set_bits(mark)
}

/// An atomic word that can carry a closed bit.
pub(crate) trait MarkWord {
    /// The integer type of the word.
    type Value;
    /// `fetch_or(bits)`; `true` if none of `bits` was set before.
    fn set_bits(&self, bits: Self::Value) -> bool;
}

macro_rules! mark_word {
    ($atomic:ty, $int:ty) => {
        impl MarkWord for $atomic {
            type Value = $int;
            fn set_bits(&self, bits: $int) -> bool {
                // AcqRel: the closer sees every claim made before the mark;
                // whoever observes the mark sees what the closer did before
                // closing (also through the load, which lets the second
                // close, most often the other handle's drop, go without a
                // read-modify-write).
                self.load(Ordering::Acquire) & bits != bits
                    && self.fetch_or(bits, Ordering::AcqRel) & bits == 0
            }
        }
    };
}
mark_word!(AtomicUsize, usize);
mark_word!(AtomicU64, u64);

const OPEN: usize = 0;
const CLOSING: usize = 1;
const CLOSED: usize = 2;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct CloseState {
    state: AtomicUsize,
    cutoff: AtomicUsize,
}

impl CloseState {
    pub(crate) fn new() -> Self {
        CloseState {
            state: AtomicUsize::new(OPEN),
            cutoff: AtomicUsize::new(0),
        }
    }

    /// `true` while nobody has begun to close. `Relaxed`: a hint for a fast
    /// rejection; the authoritative check is made after the light barrier.
    #[inline(always)]
    pub(crate) fn is_open_relaxed(&self) -> bool {
        self.state.load(Ordering::Relaxed) == OPEN
    }

    /// `true` from the moment a close began.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) != OPEN
    }

    /// Tries to become the closer. `true` for exactly one caller ever.
    pub(crate) fn begin(&self) -> bool {
        // A load first: the second close (the other handle's drop, most
        // often) then costs no read-modify-write.
        self.state.load(Ordering::Acquire) == OPEN
            && self
                .state
                .compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Completes the close begun by this thread's successful [`begin`](Self::begin).
    pub(crate) fn finish(&self, cutoff: usize) {
        self.cutoff.store(cutoff, Ordering::Relaxed);
        // Release: publishes the cutoff (and everything the closer did
        // before, such as the final message of `close_with`).
        self.state.store(CLOSED, Ordering::Release);
    }

    /// The cutoff if the close has finished.
    #[inline]
    pub(crate) fn cutoff(&self) -> Option<usize> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            Some(self.cutoff.load(Ordering::Relaxed))
        } else {
            None
        }
    }

    /// The cutoff of a close that has begun, waiting (briefly: the closer is
    /// running straight-line code) for it to finish.
    pub(crate) fn wait_cutoff(&self) -> usize {
        let mut cutoff = None;
        crate::park::wait_brief(|| {
            cutoff = self.cutoff();
            cutoff.is_some()
        });
        cutoff.unwrap_or_default()
    }
}
