//! The watcher's side: [`Watch`] (its own channel, loss detection, replay
//! and resync) and [`WatchHandle`] (a `watch_into`).

use super::{Event, WatchError, WatchOptions};
use crate::select::case::Case;
use crate::sync::{AtomicBool, AtomicU64, Ordering};
use crate::{mpsc, spsc, RecvTimeoutError, TryRecvError};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a [`Watch`] needs from the store that feeds it: the embedded
/// store, or (feature `etcd`) the feeder thread of an etcd watch.
pub(super) trait Feed<T>: Send + Sync {
    /// Stops feeding watcher `id` (its cancel): its sender goes.
    fn remove(&self, id: u64);

    /// A resync after a loss (`resync_on_lag`): while nothing is offered
    /// to the watcher, `install` gets the kind's current state as replay
    /// items and the number of events offered so far; live events continue
    /// after that state, numbered from there.
    fn resync(
        &self,
        kind: &str,
        opts: &WatchOptions,
        offered: &AtomicU64,
        install: &mut dyn FnMut(Vec<Msg<T>>, u64),
    );
}

/// One item of a watcher's channel or replay: an event, or (etcd) an
/// entry that does not decode, reported in band.
pub(super) enum Msg<T> {
    Event(Event<T>),
    #[cfg(feature = "etcd")]
    Error(Box<WatchError>),
}

impl<T> Msg<T> {
    pub(super) fn into_result(self) -> Result<Event<T>, WatchError> {
        match self {
            Msg::Event(ev) => Ok(ev),
            #[cfg(feature = "etcd")]
            Msg::Error(e) => Err(*e),
        }
    }
}

/// A watcher's local state (only its receiving thread touches it).
pub(super) struct Local<T> {
    /// Replay items still to return (initial, or after a resync).
    replay: VecDeque<Msg<T>>,
    /// An item received after a gap: returned after the `Lagged`.
    pending: Option<(u64, Msg<T>)>,
    /// The sequence number of the next event we expect.
    expected: u64,
    /// Events lost so far.
    missed: u64,
}

impl<T> Local<T> {
    pub(super) fn new(replay: VecDeque<Msg<T>>) -> Self {
        Local {
            replay,
            pending: None,
            expected: 0,
            missed: 0,
        }
    }
}

/// A watcher of one kind of a [`Store`](super::Store): receives its events
/// in revision order, reports losses in band (`Err(WatchError::Lagged(n))`
/// just where they happened), and works as a receiver in
/// [`select!`](crate::select!). Cancelled by [`cancel`](Self::cancel) or
/// by dropping it.
///
/// ```
/// use rillet::watch::{Store, WatchOptions};
/// use std::time::Duration;
///
/// let store: Store<u32> = Store::new();
/// let w = store.watch("jobs", WatchOptions::new());
/// let writer = store.clone();
/// std::thread::spawn(move || writer.set("jobs", "build", 1));
/// rillet::select! {
///     recv(w) -> ev => assert_eq!(ev.unwrap().name, "build"),
///     default(Duration::from_secs(10)) => panic!("no event"),
/// }
/// ```
pub struct Watch<T> {
    shared: Arc<dyn Feed<T>>,
    id: u64,
    kind: String,
    opts: WatchOptions,
    rx: spsc::Receiver<(u64, Msg<T>)>,
    cancel_tx: mpsc::Sender<()>,
    offered: Arc<AtomicU64>,
    /// Whether an event can be lost with nothing newer after it to show
    /// the gap (see [`tail_gap`](Self::tail_gap)); only then do we read
    /// `offered` when the channel is empty.
    tail_losses: bool,
    local: RefCell<Local<T>>,
    cancelled: Cell<bool>,
}

/// What one look at the channel found.
enum Next<T> {
    Item(Result<Event<T>, WatchError>),
    Lagged(u64),
    Empty,
    Closed,
}

impl<T> Watch<T> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        shared: Arc<dyn Feed<T>>,
        id: u64,
        kind: &str,
        opts: WatchOptions,
        rx: spsc::Receiver<(u64, Msg<T>)>,
        cancel_tx: mpsc::Sender<()>,
        offered: Arc<AtomicU64>,
        tail_losses: bool,
        local: Local<T>,
    ) -> Self {
        Watch {
            shared,
            id,
            kind: kind.to_owned(),
            opts,
            rx,
            cancel_tx,
            tail_losses,
            offered,
            local: RefCell::new(local),
            cancelled: Cell::new(false),
        }
    }

    /// The next event, waiting for one: `Err(Lagged(n))` if `n` events
    /// were lost just before it (it then comes with the next call),
    /// `Err(Closed)` once the watch is cancelled or the store is gone and
    /// everything delivered has been received.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchError, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new());
    /// store.set("k", "a", 1);
    /// drop(store);
    /// assert_eq!(*w.recv().unwrap().object, 1);
    /// assert_eq!(w.recv(), Err(WatchError::Closed));
    /// ```
    pub fn recv(&self) -> Result<Event<T>, WatchError> {
        self.next(Some(None))
            .map(|e| e.expect("a wait without deadline returns an event"))
    }

    /// The next event if there is one now (`Ok(None)` if not).
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new());
    /// assert!(w.try_recv().unwrap().is_none());
    /// store.set("k", "a", 1);
    /// assert!(w.try_recv().unwrap().is_some());
    /// ```
    pub fn try_recv(&self) -> Result<Option<Event<T>>, WatchError> {
        self.next(None)
    }

    /// The next event, waiting at most `timeout` (`Ok(None)` if none came).
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    /// use std::time::Duration;
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new());
    /// assert!(w.recv_timeout(Duration::from_millis(1)).unwrap().is_none());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Event<T>>, WatchError> {
        // The first look needs no clock (as the channels' `recv_timeout`).
        match self.try_recv() {
            Ok(None) => self.next(Some(Instant::now().checked_add(timeout))),
            found => found,
        }
    }

    /// Waits for events, skipping over losses (which [`missed`](Self::missed)
    /// counts; with the etcd store also `Invalid` entries), until the
    /// watch ends.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new());
    /// store.set("k", "a", 1);
    /// store.set("k", "b", 2);
    /// drop(store); // ends the watch
    /// assert_eq!(w.iter().count(), 2);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { w: self }
    }

    /// The events there are now, skipping over losses.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new());
    /// store.set("k", "a", 1);
    /// assert_eq!(w.try_iter().count(), 1);
    /// assert_eq!(w.try_iter().count(), 0);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { w: self }
    }

    /// Events lost so far (the sum of every `Lagged(n)` reported, and of
    /// those `iter` stepped over; with the etcd store, also each entry
    /// reported as `Invalid`).
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new().buffer(1));
    /// store.set("k", "a", 1);
    /// store.set("k", "b", 2); // dropped: DropNewest, a buffer of 1
    /// assert_eq!(w.try_iter().count(), 1);
    /// assert_eq!(w.missed(), 1);
    /// ```
    pub fn missed(&self) -> u64 {
        self.local.borrow().missed
    }

    /// The kind this watch follows.
    ///
    /// ```
    /// let store: rillet::watch::Store<u8> = rillet::watch::Store::new();
    /// let w = store.watch("users", rillet::watch::WatchOptions::new());
    /// assert_eq!(w.kind(), "users");
    /// ```
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Stops the watch: `true` the first time, `false` after. Once it
    /// returns, nothing more is delivered, not even events already
    /// buffered (they are dropped): `recv` returns `Closed`. A writer
    /// waiting for room in this watcher's buffer (`Block`) stops at once.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchError, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new());
    /// store.set("k", "a", 1);
    /// assert!(w.cancel());
    /// assert!(!w.cancel());
    /// assert_eq!(w.recv(), Err(WatchError::Closed));
    /// ```
    pub fn cancel(&self) -> bool {
        if self.cancelled.replace(true) {
            return false;
        }
        // First wake a writer waiting for room in our channel (it holds
        // the store lock we are about to take).
        self.cancel_tx.close();
        self.shared.remove(self.id);
        self.rx.close();
        let buffered: Vec<_> = self.rx.try_iter().collect();
        let (replay, pending) = {
            let mut local = self.local.borrow_mut();
            (std::mem::take(&mut local.replay), local.pending.take())
        };
        drop((buffered, replay, pending));
        true
    }

    /// `wait`: `None` do not wait, `Some(deadline)` wait until it
    /// (`Some(None)`: forever).
    fn next(&self, wait: Option<Option<Instant>>) -> Result<Option<Event<T>>, WatchError> {
        if self.cancelled.get() {
            return Err(WatchError::Closed);
        }
        {
            let mut local = self.local.borrow_mut();
            if let Some(item) = local.replay.pop_front() {
                if local.replay.is_empty() {
                    // A replay is as long as the kind: do not keep its room.
                    local.replay = VecDeque::new();
                }
                drop(local);
                return self.report(item.into_result());
            }
        }
        let pending = self.local.borrow_mut().pending.take();
        let found = match pending {
            Some(item) => self.check(item),
            None => self.look(wait),
        };
        match found {
            Next::Item(item) => self.report(item),
            Next::Empty => Ok(None),
            Next::Closed => Err(WatchError::Closed),
            Next::Lagged(n) => {
                self.local.borrow_mut().missed += n;
                if self.opts.resync {
                    self.resync();
                }
                Err(WatchError::Lagged(n))
            }
        }
    }

    /// An item as `next` returns it. An entry that does not decode (etcd)
    /// is one event the watcher cannot have: `missed` counts it.
    fn report(&self, item: Result<Event<T>, WatchError>) -> Result<Option<Event<T>>, WatchError> {
        #[cfg(feature = "etcd")]
        if let Err(e) = &item {
            debug_assert!(matches!(e, WatchError::Invalid { .. }));
            self.local.borrow_mut().missed += 1;
        }
        item.map(Some)
    }

    /// An item from the channel: its event, or the gap before it (the item
    /// is kept for the next call).
    fn check(&self, item: (u64, Msg<T>)) -> Next<T> {
        let mut local = self.local.borrow_mut();
        if item.0 > local.expected {
            let gap = item.0 - local.expected;
            local.expected = item.0;
            local.pending = Some(item);
            return Next::Lagged(gap);
        }
        local.expected = item.0 + 1;
        Next::Item(item.1.into_result())
    }

    /// The events offered to us and neither received nor in the channel
    /// were dropped (at the end: nothing newer came after them). Only a
    /// feed with `tail_losses` can lose those; otherwise the newest event
    /// offered always reaches the channel and its number shows any gap, so
    /// we leave `offered` alone: reading it on every empty channel took
    /// its line from the writer that stores it on every offer (4 writers,
    /// 8 watchers on two CPUs: a third of `set`'s samples sat on that
    /// load).
    fn tail_gap(&self) -> Option<Next<T>> {
        if !self.tail_losses {
            return None;
        }
        // Acquire: every event below `offered` was sent (or dropped) before
        // the store published it; look at the channel once more after
        // reading it.
        let offered = self.offered.load(Ordering::Acquire);
        let expected = self.local.borrow().expected;
        if offered <= expected {
            return None;
        }
        Some(match self.rx.try_recv() {
            Ok(item) => self.check(item),
            Err(_) => {
                self.local.borrow_mut().expected = offered;
                Next::Lagged(offered - expected)
            }
        })
    }

    fn look(&self, wait: Option<Option<Instant>>) -> Next<T> {
        match self.rx.try_recv() {
            Ok(item) => return self.check(item),
            Err(TryRecvError::Closed) => return self.tail_gap().unwrap_or(Next::Closed),
            Err(TryRecvError::Empty) => {}
        }
        if let Some(found) = self.tail_gap() {
            return found;
        }
        // Nothing lost and nothing there: wait. (A loss needs a full
        // buffer, so none happens while we wait on an empty one.)
        let got = match wait {
            None => return Next::Empty,
            Some(None) => self.rx.recv().map_err(|_| RecvTimeoutError::Closed),
            Some(Some(deadline)) => self.rx.recv_deadline(deadline),
        };
        match got {
            Ok(item) => self.check(item),
            Err(RecvTimeoutError::Timeout) => Next::Empty,
            Err(RecvTimeoutError::Closed) => self.tail_gap().unwrap_or(Next::Closed),
        }
    }

    /// After a loss (`resync_on_lag`): replace what the channel holds (all
    /// of it older than the snapshot) with the kind's current state.
    fn resync(&self) {
        let mut stale = Vec::new();
        let mut replaced = None;
        self.shared.resync(
            &self.kind,
            &self.opts,
            &self.offered,
            &mut |replay, offered| {
                stale.extend(self.rx.try_iter());
                let mut local = self.local.borrow_mut();
                replaced = local.pending.take();
                local.replay = replay.into();
                local.expected = offered;
            },
        );
        // Dropped outside the store lock.
        drop(stale);
        drop(replaced);
    }

    /// Ready for a select: an event, a loss or the end to report.
    fn ready(&self) -> bool {
        if self.cancelled.get() {
            return true;
        }
        {
            let local = self.local.borrow();
            if !local.replay.is_empty() || local.pending.is_some() {
                return true;
            }
            if self.tail_losses && self.offered.load(Ordering::Acquire) > local.expected {
                return true;
            }
        }
        self.rx.ready()
    }
}

impl<T> Drop for Watch<T> {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl<T> fmt::Debug for Watch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("kind", &self.kind)
            .field("cancelled", &self.cancelled.get())
            .finish_non_exhaustive()
    }
}

impl<T> Case for Watch<T> {
    fn ready(&self) -> bool {
        Watch::ready(self)
    }

    fn queue(&self) -> Option<&crate::park::WaitQueue> {
        self.rx.queue()
    }

    fn addr(&self) -> *const () {
        self as *const Self as *const ()
    }
}

impl<T> crate::select::SelectRecv for Watch<T> {
    type Output = Result<Event<T>, WatchError>;

    fn complete_recv(&self) -> Self::Output {
        self.recv()
    }
}

/// Blocking iterator over a [`Watch`]'s events ([`Watch::iter`]).
#[derive(Debug)]
pub struct Iter<'a, T> {
    w: &'a Watch<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = Event<T>;

    fn next(&mut self) -> Option<Event<T>> {
        loop {
            match self.w.recv() {
                Ok(ev) => return Some(ev),
                Err(WatchError::Closed) => return None,
                // A loss (or an entry that does not decode): counted by
                // `missed`.
                Err(_) => continue,
            }
        }
    }
}

/// Non-blocking iterator over a [`Watch`]'s events ([`Watch::try_iter`]).
#[derive(Debug)]
pub struct TryIter<'a, T> {
    w: &'a Watch<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = Event<T>;

    fn next(&mut self) -> Option<Event<T>> {
        loop {
            match self.w.try_recv() {
                Ok(ev) => return ev,
                Err(WatchError::Closed) => return None,
                // A loss (or an entry that does not decode): counted by
                // `missed`.
                Err(_) => continue,
            }
        }
    }
}

/// Owning blocking iterator over a [`Watch`]'s events.
#[derive(Debug)]
pub struct IntoIter<T> {
    w: Watch<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = Event<T>;

    fn next(&mut self) -> Option<Event<T>> {
        self.w.iter().next()
    }
}

impl<T> IntoIterator for Watch<T> {
    type Item = Event<T>;
    type IntoIter = IntoIter<T>;

    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new());
    /// store.set("k", "a", 1);
    /// drop(store);
    /// assert_eq!(w.into_iter().count(), 1);
    /// ```
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { w: self }
    }
}

impl<'a, T> IntoIterator for &'a Watch<T> {
    type Item = Event<T>;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// The handle of a [`watch_into`](super::Store::watch_into): cancels the
/// watch (also when dropped).
///
/// ```
/// use rillet::watch::{Store, WatchOptions};
///
/// let store: Store<u8> = Store::new();
/// let (tx, rx) = rillet::mpsc::channel(4);
/// let h = store.watch_into("k", WatchOptions::new(), tx);
/// store.set("k", "a", 1);
/// assert!(h.cancel());
/// store.set("k", "b", 2); // not delivered
/// assert_eq!(rx.try_iter().count(), 1);
/// ```
pub struct WatchHandle<T> {
    shared: Arc<dyn Feed<T>>,
    id: u64,
    cancel_tx: mpsc::Sender<()>,
    cancelled: AtomicBool,
}

impl<T> WatchHandle<T> {
    pub(super) fn new(shared: Arc<dyn Feed<T>>, id: u64, cancel_tx: mpsc::Sender<()>) -> Self {
        WatchHandle {
            shared,
            id,
            cancel_tx,
            cancelled: AtomicBool::new(false),
        }
    }

    /// Stops the watch: `true` the first time, `false` after. Once it
    /// returns, no further event is sent into the channel; a writer
    /// waiting for room in it stops at once.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let (tx, _rx) = rillet::mpsc::channel(4);
    /// let h = store.watch_into("k", WatchOptions::new(), tx);
    /// assert!(h.cancel());
    /// assert!(!h.cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        if self.cancelled.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.cancel_tx.close();
        self.shared.remove(self.id);
        true
    }

    /// Whether [`cancel`](Self::cancel) was called.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let (tx, _rx) = rillet::mpsc::channel(4);
    /// let h = store.watch_into("k", WatchOptions::new(), tx);
    /// assert!(!h.is_cancelled());
    /// drop(h); // cancels too
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

impl<T> Drop for WatchHandle<T> {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl<T> fmt::Debug for WatchHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchHandle")
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}
