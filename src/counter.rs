//! Sender counting, for the kinds whose sender is `Clone` (MPSC and
//! broadcast): one definition of "the last sender to go closes the
//! channel" (crossbeam-channel's `counter.rs` plays this part there).

use crate::chan::Core;
use crate::sync::{Arc, AtomicUsize, Ordering};
use std::ops::Deref;

/// A channel core with its sender count; receivers hold an `Arc` of it.
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
    shared: Arc<Counted<C>>,
}

impl<C: Core> SenderRef<C> {
    /// The first sender of the channel `make` builds (in place, in its
    /// shared allocation), and the shared core for its receiver.
    pub(crate) fn new(make: impl FnOnce() -> C) -> (Self, Arc<Counted<C>>) {
        let shared = crate::sync::arc_in_place(|| Counted {
            senders: AtomicUsize::new(1),
            chan: make(),
        });
        (
            SenderRef {
                shared: shared.clone(),
            },
            shared,
        )
    }
}

impl<C: Core> SenderRef<C> {
    /// The shared core, for a new receiver.
    pub(crate) fn shared(&self) -> Arc<Counted<C>> {
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
        // AcqRel: the last sender sees every other sender's last use before
        // it closes.
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.chan.close();
        }
    }
}
