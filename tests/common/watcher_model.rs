//! The reference model of one `Watch`'s channel: a bounded queue that
//! applies the overflow policy, numbers every event offered, and reports
//! each loss as `Lagged(n)` just where it happened (or at the tail), with
//! an optional resync. Shared by `tests/watch_model.rs` (proptest) and the
//! fuzz target `fuzz/fuzz_targets/watch.rs`, which keep their own event
//! type and filters.
#![allow(dead_code)]

use rillet::watch::WatchError;
use std::collections::VecDeque;

pub struct WatcherModel<E> {
    cap: usize,
    /// `DropOldest` (else `DropNewest`; `Block` is a large `cap`).
    oldest: bool,
    resync: bool,
    replay: VecDeque<E>,
    /// The channel: (sequence number, event).
    queue: VecDeque<(u64, E)>,
    /// The event after a reported gap: out of the channel (so it leaves
    /// room), returned by the next receive.
    pending: Option<(u64, E)>,
    offered: u64,
    expected: u64,
    pub missed: u64,
    pub cancelled: bool,
}

impl<E> WatcherModel<E> {
    pub fn new(cap: usize, oldest: bool, resync: bool, replay: VecDeque<E>) -> Self {
        WatcherModel {
            cap,
            oldest,
            resync,
            replay,
            queue: VecDeque::new(),
            pending: None,
            offered: 0,
            expected: 0,
            missed: 0,
            cancelled: false,
        }
    }

    /// An event the watcher's filters take.
    pub fn offer(&mut self, ev: E) {
        if self.cancelled {
            return;
        }
        let seq = self.offered;
        self.offered += 1;
        if self.queue.len() == self.cap {
            if !self.oldest {
                return; // DropNewest: the new one goes
            }
            self.queue.pop_front();
        }
        self.queue.push_back((seq, ev));
    }

    /// What one `try_recv` returns. `ended`: every store handle is gone.
    /// `snapshot`: the kind's state as a replay (for a resync; also after
    /// the store ended, so that the watcher converges before its end).
    pub fn recv(
        &mut self,
        ended: bool,
        snapshot: impl FnOnce() -> VecDeque<E>,
    ) -> Result<Option<E>, WatchError> {
        if self.cancelled {
            return Err(WatchError::Closed);
        }
        if let Some(ev) = self.replay.pop_front() {
            return Ok(Some(ev));
        }
        if let Some((seq, ev)) = self.pending.take() {
            self.expected = seq + 1;
            return Ok(Some(ev));
        }
        let gap = match self.queue.front() {
            Some(&(seq, _)) if seq > self.expected => {
                self.pending = self.queue.pop_front();
                seq - self.expected
            }
            Some(_) => {
                let (seq, ev) = self.queue.pop_front().expect("looked at the front");
                self.expected = seq + 1;
                return Ok(Some(ev));
            }
            // Offered, not in the channel: lost at the tail.
            None if self.offered > self.expected => self.offered - self.expected,
            None if ended => return Err(WatchError::Closed),
            None => return Ok(None),
        };
        self.missed += gap;
        self.expected += gap;
        if self.resync {
            self.queue.clear();
            self.pending = None;
            self.replay = snapshot();
            self.expected = self.offered;
        }
        Err(WatchError::Lagged(gap))
    }
}
