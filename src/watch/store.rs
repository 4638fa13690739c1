//! The embedded store: the map, the revisions and the delivery to watchers
//! (described in the module docs of `watch`).

use super::watcher::{Feed, Local, Msg, Watch, WatchHandle};
use super::{check_buffer, check_kind, Event, EventData, EventType, WatchOptions, WatchStore};
use crate::counter::Husk;
use crate::select::SelectSend;
use crate::sync::{AtomicU64, AtomicUsize, Ordering, StateMutex};
use crate::{mpsc, spsc, Overflow, TrySendError};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Decides whether two values are equal (an equal `set` is no change).
type Compare<T> = Box<dyn Fn(&T, &T) -> bool + Send + Sync>;

/// A thread-safe key/value store of `T` values, grouped by kind, whose
/// watchers receive every change as an [`Event`]. Cloning gives another
/// handle to the same store; dropping the last one ends every watch.
///
/// ```
/// use rillet::watch::Store;
/// use std::sync::Arc;
///
/// let store: Store<String> = Store::new();
/// let s2 = store.clone();
/// std::thread::spawn(move || s2.set("users", "alice", "admin".into()))
///     .join()
///     .unwrap();
/// assert_eq!(store.get("users", "alice"), Some(Arc::new("admin".to_string())));
/// assert_eq!(store.revision(), 1);
/// ```
pub struct Store<T> {
    shared: Arc<Shared<T>>,
}

pub(super) struct Shared<T> {
    state: StateMutex<State<T>>,
    /// Mirror of `State::revision`, for [`Store::revision`] without the lock.
    revision: AtomicU64,
    /// Live `Store` handles; the last one to go ends every watch.
    handles: AtomicUsize,
    /// Registered watchers, of every kind: written under the lock (as
    /// `State`'s watcher lists change), read without it by `set` as a hint
    /// of whether to build an event before locking (see [`Store::set`]).
    watching: AtomicUsize,
    compare: Compare<T>,
}

struct State<T> {
    /// A kind is here while it has an entry or a watcher.
    kinds: HashMap<String, Kind<T>>,
    revision: u64,
    next_id: u64,
    /// Every store handle was dropped: no watcher is registered any more.
    ended: bool,
    /// The husks of the latest events (see `counter::Kept`), oldest first:
    /// the memory of an event waits here until `keep` later events were
    /// made, and is freed by the writer that pushes it out, after the
    /// lock. By then its watchers are usually done with it, and its
    /// allocations go back to a writer's allocator cache instead of a
    /// watcher's (4 writers and 8 watchers on two CPUs: the writers spent
    /// a third of their time allocating, the watchers a tenth freeing;
    /// the `watch` module's decisions give the numbers).
    husks: VecDeque<Husk<EventData<T>>>,
    /// How many husks to keep: the largest buffer of the store's
    /// watchers (a watcher that keeps up is at most that many events
    /// behind), at most [`KEEP_MAX`]; 0 without watchers.
    keep: usize,
}

/// The most husks a store keeps (about 200 bytes each with short names:
/// the events' memory, not their objects).
const KEEP_MAX: usize = 1024;

impl<T> State<T> {
    /// Keeps `husk` as the latest; returns the one it pushes out, for the
    /// caller to drop after the lock.
    fn push_husk(
        husks: &mut VecDeque<Husk<EventData<T>>>,
        keep: usize,
        husk: Husk<EventData<T>>,
    ) -> Option<Husk<EventData<T>>> {
        if keep == 0 {
            return Some(husk);
        }
        husks.push_back(husk);
        if husks.len() > keep {
            husks.pop_front()
        } else {
            None
        }
    }

    /// After watchers came or went: the largest buffer among them, and
    /// no more husks than that (the rest are dropped here: memory only).
    fn rekeep(&mut self) {
        self.keep = self
            .kinds
            .values()
            .flat_map(|k| &k.watchers)
            .map(|w| w.opts.buffer.min(KEEP_MAX))
            .max()
            .unwrap_or(0);
        while self.husks.len() > self.keep {
            self.husks.pop_front();
        }
    }
}

/// One kind: its entries, and the watchers of its events (kept with the
/// kind, so that a change finds its watchers without comparing kind names).
struct Kind<T> {
    entries: HashMap<String, Entry<T>>,
    watchers: Vec<Watcher<T>>,
}

impl<T> Default for Kind<T> {
    fn default() -> Self {
        Kind {
            entries: HashMap::new(),
            watchers: Vec::new(),
        }
    }
}

impl<T> Kind<T> {
    fn is_unused(&self) -> bool {
        self.entries.is_empty() && self.watchers.is_empty()
    }
}

struct Entry<T> {
    value: Arc<T>,
    /// The revision of the entry's last change.
    revision: u64,
}

/// A registered watcher, as the writers see it.
struct Watcher<T> {
    id: u64,
    opts: WatchOptions,
    target: Target<T>,
    /// Closed by the watch's `cancel` (or drop): a writer waiting for room
    /// in this watcher's channel selects on it and stops at once. Only the
    /// lock holder uses it.
    cancel: mpsc::Receiver<()>,
}

enum Target<T> {
    /// A [`Watch`]'s own channel; events carry the watcher's sequence
    /// numbers, and `offered` counts the events offered (published after
    /// each offer, Release: a watch that reads it and then finds its
    /// channel empty knows the rest were dropped).
    Own {
        tx: spsc::Sender<(u64, Msg<T>)>,
        offered: Arc<AtomicU64>,
    },
    /// A caller's channel (`watch_into`).
    Into(mpsc::Sender<Event<T>>),
}

impl<T> Watcher<T> {
    /// Offers `ev`: `false` if the watcher is gone (its channel closed, or
    /// it was cancelled while we waited for room).
    fn offer(&self, ev: Event<T>) -> bool {
        match &self.target {
            Target::Own { tx, offered } => {
                let seq = offered.load(Ordering::Relaxed);
                let sent = send_or_cancel(tx, (seq, Msg::Event(ev)), &self.cancel);
                if sent {
                    offered.store(seq + 1, Ordering::Release);
                }
                sent
            }
            Target::Into(tx) => send_or_cancel(tx, ev, &self.cancel),
        }
    }
}

/// The senders a watcher is fed through: a [`Watch`]'s own channel is an
/// SPSC channel (only the lock holder sends into it, so there is one
/// sender at a time, and a delivery is a slot write and an index store,
/// with no read-modify-write that would wait for the previous delivery's
/// stores to reach the watchers' cache lines); a `watch_into` target is the
/// caller's MPSC sender.
pub(super) trait TrySend<M> {
    fn try_send(&self, msg: M) -> Result<(), TrySendError<M>>;
}

impl<M> TrySend<M> for spsc::Sender<M> {
    fn try_send(&self, msg: M) -> Result<(), TrySendError<M>> {
        spsc::Sender::try_send(self, msg)
    }
}

impl<M> TrySend<M> for mpsc::Sender<M> {
    fn try_send(&self, msg: M) -> Result<(), TrySendError<M>> {
        mpsc::Sender::try_send(self, msg)
    }
}

/// Sends `msg` as the channel's policy says (only `Block` waits), unless
/// `cancel` closes first: `false` if the message was not sent because the
/// channel is closed or the watcher cancelled.
fn send_or_cancel<M, S>(tx: &S, msg: M, cancel: &mpsc::Receiver<()>) -> bool
where
    S: TrySend<M> + SelectSend<Msg = M>,
{
    match tx.try_send(msg) {
        Ok(()) => true,
        Err(TrySendError::Closed(_)) => false,
        Err(TrySendError::Full(msg)) => crate::select! {
            send(tx, msg) -> r => r.is_ok(),
            recv(cancel) -> _ => false,
        },
    }
}

impl<T: PartialEq + Send + Sync + 'static> Store<T> {
    /// An empty store whose `set` compares values with `PartialEq`.
    ///
    /// ```
    /// let store: rillet::watch::Store<u8> = rillet::watch::Store::new();
    /// assert_eq!(store.revision(), 0);
    /// ```
    pub fn new() -> Self {
        Store::builder().compare(|a: &T, b: &T| a == b).build()
    }
}

impl<T: PartialEq + Send + Sync + 'static> Default for Store<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`Store`] with a compare function of your own (for values
/// without `PartialEq`, or to ignore fields that do not matter).
///
/// ```
/// use rillet::watch::Store;
///
/// struct Pod { name: String, heartbeat: u64 }
/// let store = Store::builder()
///     .compare(|a: &Pod, b: &Pod| a.name == b.name) // heartbeats are no change
///     .build();
/// store.set("pods", "p1", Pod { name: "web".into(), heartbeat: 1 });
/// assert_eq!(store.set("pods", "p1", Pod { name: "web".into(), heartbeat: 2 }), None);
/// ```
pub struct StoreBuilder<T> {
    compare: Option<Compare<T>>,
}

impl<T> fmt::Debug for StoreBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("compare", &self.compare.is_some())
            .finish()
    }
}

impl<T: Send + Sync + 'static> StoreBuilder<T> {
    /// `set` treats `a` and `b` as equal (no change, no event) when
    /// `compare(a, b)` is true. A panicking compare function leaves the
    /// entry as it was.
    ///
    /// ```
    /// let store = rillet::watch::Store::builder()
    ///     .compare(|a: &f64, b: &f64| (a - b).abs() < 0.5)
    ///     .build();
    /// store.set("t", "x", 1.0);
    /// assert_eq!(store.set("t", "x", 1.2), None);
    /// ```
    pub fn compare(mut self, f: impl Fn(&T, &T) -> bool + Send + Sync + 'static) -> Self {
        self.compare = Some(Box::new(f));
        self
    }

    /// The store. Without [`compare`](Self::compare) no two values are
    /// equal: every `set` is a change (use [`Store::new`] to compare with
    /// `PartialEq`).
    ///
    /// ```
    /// let store = rillet::watch::Store::builder().build();
    /// store.set("k", "a", 1);
    /// assert!(store.set("k", "a", 1).is_some()); // no compare function
    /// ```
    pub fn build(self) -> Store<T> {
        Store {
            shared: Arc::new(Shared {
                state: StateMutex::new(State {
                    kinds: HashMap::new(),
                    revision: 0,
                    next_id: 0,
                    ended: false,
                    husks: VecDeque::new(),
                    keep: 0,
                }),
                revision: AtomicU64::new(0),
                handles: AtomicUsize::new(1),
                watching: AtomicUsize::new(0),
                compare: self.compare.unwrap_or_else(|| Box::new(|_, _| false)),
            }),
        }
    }
}

impl<T: Send + Sync + 'static> Store<T> {
    /// A builder, to give the store a compare function.
    ///
    /// ```
    /// let store = rillet::watch::Store::builder().compare(|a: &u8, b: &u8| a == b).build();
    /// # let _ = store;
    /// ```
    pub fn builder() -> StoreBuilder<T> {
        StoreBuilder { compare: None }
    }

    /// Sets `kind/name` to `value`: `Some(Create)` or `Some(Update)`, or
    /// `None` (and no event) when the value equals the current one.
    ///
    /// # Panics
    ///
    /// If `kind` is empty; if the compare function panics (the entry stays
    /// as it was) or a `T::drop` run by the change panics (the change is
    /// made and delivered first).
    ///
    /// ```
    /// use rillet::watch::{EventType, Store};
    ///
    /// let store: Store<u8> = Store::new();
    /// assert_eq!(store.set("k", "a", 1), Some(EventType::Create));
    /// assert_eq!(store.set("k", "a", 1), None);
    /// ```
    pub fn set(&self, kind: &str, name: &str, value: T) -> Option<EventType> {
        check_kind(kind, "Store::set");
        // Every allocation of a change happens before the lock (the value's
        // `Arc`, the event with its kind and name): the lock is the store's
        // write order, and its holder is what every writer and watcher
        // waits for. An equal value pays them for nothing. A store without
        // watchers builds no event (`watching`, read without the lock, is
        // a hint: a watch registered meanwhile gets its event built under
        // the lock). With no watcher, a `set` cost 1.3 times a
        // `Mutex<HashMap>`'s insert, four allocations against two.
        let object = super::new_object(value);
        let ev = (self.shared.watching.load(Ordering::Relaxed) != 0)
            .then(|| Event::kept(kind, name, EventType::Create, object.clone(), 0));
        let mut guard = self.shared.state.lock();
        let st = &mut *guard;
        let revision = st.revision + 1;
        let entry = Entry {
            value: object,
            revision,
        };
        // One lookup of the kind (it holds the entries and the watchers).
        let Some(k) = st.kinds.get_mut(kind) else {
            // A kind that is not there has no watcher (a watch registers
            // its kind): the change is the new entry alone.
            let mut k = Kind::default();
            k.entries.insert(name.to_owned(), entry);
            st.kinds.insert(kind.to_owned(), k);
            self.shared.advance(&mut st.revision, revision);
            drop(guard);
            drop(ev);
            return Some(EventType::Create);
        };
        let (event_type, replaced) = match k.entries.get_mut(name) {
            // A panicking compare unwinds through the guard: nothing changed.
            Some(e) if (self.shared.compare)(&e.value, &entry.value) => {
                drop(guard);
                drop((ev, entry));
                return None;
            }
            // An update replaces the entry in place: no key is allocated.
            Some(e) => (EventType::Update, Some(std::mem::replace(e, entry))),
            None => (EventType::Create, k.entries.insert(name.to_owned(), entry)),
        };
        let mut pushed_out = None;
        let panic = if k.watchers.is_empty() {
            self.shared.advance(&mut st.revision, revision);
            drop(ev);
            None
        } else {
            let (ev, husk) = match ev {
                Some((mut ev, husk)) => {
                    let data = ev.get_mut().expect("the event is not shared yet");
                    data.event_type = event_type;
                    data.revision = revision;
                    (ev, husk)
                }
                // A watch came after our look at `watching`.
                None => {
                    let object = k.entries[name].value.clone();
                    Event::kept(kind, name, event_type, object, revision)
                }
            };
            let panic = self.commit(&mut st.revision, k, ev);
            pushed_out = State::push_husk(&mut st.husks, st.keep, husk);
            panic
        };
        drop(guard);
        if let Some(husk) = pushed_out {
            Event::release(husk);
        }
        drop(replaced);
        if let Some(p) = panic {
            resume_unwind(p);
        }
        Some(event_type)
    }

    /// The current value of `kind/name`.
    ///
    /// ```
    /// let store: rillet::watch::Store<u8> = rillet::watch::Store::new();
    /// assert_eq!(store.get("k", "a"), None);
    /// store.set("k", "a", 1);
    /// assert_eq!(store.get("k", "a").as_deref(), Some(&1));
    /// ```
    pub fn get(&self, kind: &str, name: &str) -> Option<Arc<T>> {
        check_kind(kind, "Store::get");
        let st = self.shared.state.lock();
        st.kinds
            .get(kind)
            .and_then(|k| k.entries.get(name))
            .map(|e| e.value.clone())
    }

    /// Removes `kind/name`; returns the value it had. Watchers get a
    /// `Delete` event carrying that value.
    ///
    /// ```
    /// let store: rillet::watch::Store<u8> = rillet::watch::Store::new();
    /// store.set("k", "a", 1);
    /// assert_eq!(store.delete("k", "a").as_deref(), Some(&1));
    /// assert_eq!(store.delete("k", "a"), None);
    /// ```
    pub fn delete(&self, kind: &str, name: &str) -> Option<Arc<T>> {
        check_kind(kind, "Store::delete");
        let mut guard = self.shared.state.lock();
        let st = &mut *guard;
        let k = st.kinds.get_mut(kind)?;
        let old = k.entries.remove(name)?;
        let revision = st.revision + 1;
        let mut pushed_out = None;
        let panic = if k.watchers.is_empty() {
            self.shared.advance(&mut st.revision, revision);
            None
        } else {
            let (ev, husk) =
                Event::kept(kind, name, EventType::Delete, old.value.clone(), revision);
            let panic = self.commit(&mut st.revision, k, ev);
            pushed_out = State::push_husk(&mut st.husks, st.keep, husk);
            panic
        };
        if k.is_unused() {
            st.kinds.remove(kind);
        }
        drop(guard);
        if let Some(husk) = pushed_out {
            Event::release(husk);
        }
        if let Some(p) = panic {
            resume_unwind(p);
        }
        Some(old.value)
    }

    /// The entries of `kind`, sorted by name.
    ///
    /// ```
    /// let store: rillet::watch::Store<u8> = rillet::watch::Store::new();
    /// store.set("k", "b", 2);
    /// store.set("k", "a", 1);
    /// let names: Vec<_> = store.list("k").into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn list(&self, kind: &str) -> Vec<(String, Arc<T>)> {
        check_kind(kind, "Store::list");
        let st = self.shared.state.lock();
        let mut list = st.kinds.get(kind).map_or_else(Vec::new, |k| {
            k.entries
                .iter()
                .map(|(n, e)| (n.clone(), e.value.clone()))
                .collect::<Vec<_>>()
        });
        drop(st);
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// The revision of the latest change (0 before the first).
    ///
    /// ```
    /// let store: rillet::watch::Store<u8> = rillet::watch::Store::new();
    /// store.set("k", "a", 1);
    /// store.delete("k", "a");
    /// assert_eq!(store.revision(), 2);
    /// ```
    pub fn revision(&self) -> u64 {
        self.shared.revision.load(Ordering::Acquire)
    }

    /// Watches `kind`: a [`Watch`] that receives its events.
    ///
    /// # Panics
    ///
    /// If `kind` is empty, or if the buffer (`WatchOptions::buffer`) is
    /// too large to allocate.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new());
    /// store.set("k", "a", 1);
    /// store.set("other", "a", 1); // another kind never shows up
    /// assert_eq!(w.recv().unwrap().name, "a");
    /// assert_eq!(w.try_recv(), Ok(None));
    /// ```
    pub fn watch(&self, kind: &str, opts: WatchOptions) -> Watch<T> {
        check_kind(kind, "Store::watch");
        check_buffer::<(u64, Msg<T>)>(opts.buffer, "Store::watch");
        let (tx, rx) = spsc::Builder::new(opts.buffer)
            .overflow(opts.overflow)
            .build_with::<(u64, Msg<T>)>(true);
        let (cancel_tx, cancel_rx) = mpsc::channel::<()>(1);
        let offered = Arc::new(AtomicU64::new(0));
        // `Block` never loses an event; `DropOldest` keeps the newest.
        let tail_losses = opts.overflow == Overflow::DropNewest;
        let mut replay = VecDeque::new();
        let id = {
            let mut st = self.shared.state.lock();
            if opts.replay {
                replay = snapshot(&st, kind, &opts)
                    .into_iter()
                    .map(Msg::Event)
                    .collect();
            }
            self.shared.register(
                &mut st,
                kind,
                opts.clone(),
                Target::Own {
                    tx,
                    offered: offered.clone(),
                },
                cancel_rx,
            )
        };
        Watch::new(
            self.shared.clone(),
            id,
            kind,
            opts,
            rx,
            cancel_tx,
            offered,
            tail_losses,
            Local::new(replay),
        )
    }

    /// Watches `kind`, sending its events into `tx` (so that one receiver
    /// serves several watches). The channel's own capacity and policy
    /// apply; its `dropped()` counts what its policy dropped. A replay is
    /// sent before this returns, waiting for room as the channel's policy
    /// says. The handle cancels the watch (also when dropped).
    ///
    /// # Panics
    ///
    /// If `kind` is empty, or `opts` sets `buffer`, `overflow` or
    /// `resync_on_lag` (they belong to a [`Watch`]'s own channel).
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let (tx, rx) = rillet::mpsc::channel(16);
    /// let users = store.watch_into("users", WatchOptions::new(), tx.clone());
    /// let groups = store.watch_into("groups", WatchOptions::new(), tx);
    /// store.set("users", "alice", 1);
    /// store.set("groups", "admins", 2);
    /// let kinds: Vec<_> = rx.try_iter().map(|ev| ev.kind.clone()).collect();
    /// assert_eq!(kinds, ["users", "groups"]);
    /// assert!(users.cancel());
    /// assert!(!users.cancel());
    /// # drop(groups);
    /// ```
    pub fn watch_into(
        &self,
        kind: &str,
        opts: WatchOptions,
        tx: mpsc::Sender<Event<T>>,
    ) -> WatchHandle<T> {
        check_kind(kind, "Store::watch_into");
        assert!(
            !opts.channel_set && !opts.resync,
            "Store::watch_into: the target channel's own capacity and overflow policy apply, \
             and a plain Event channel cannot carry Lagged; do not set buffer, overflow or \
             resync_on_lag (use Store::watch for those)"
        );
        let (cancel_tx, cancel_rx) = mpsc::channel::<()>(1);
        let mut st = self.shared.state.lock();
        if opts.replay {
            for ev in snapshot(&st, kind, &opts) {
                if !send_or_cancel(&tx, ev, &cancel_rx) {
                    break;
                }
            }
        }
        let id = self
            .shared
            .register(&mut st, kind, opts, Target::Into(tx), cancel_rx);
        drop(st);
        WatchHandle::new(self.shared.clone(), id, cancel_tx)
    }

    /// Records a change under the lock: the revision, then the event
    /// offered to every watcher of its kind that wants it. A panic in an
    /// offer (an evicted event whose `T::drop` panics) is caught so that
    /// every watcher is offered the event and the state stays consistent;
    /// the caller resumes it after unlocking.
    fn commit(
        &self,
        revision: &mut u64,
        k: &mut Kind<T>,
        ev: Event<T>,
    ) -> Option<Box<dyn std::any::Any + Send + 'static>> {
        debug_assert!(!k.watchers.is_empty());
        self.shared.advance(revision, ev.revision);
        let mut panic = None;
        let mut gone = Vec::new();
        let event_type = ev.event_type;
        let wanted = k
            .watchers
            .iter()
            .filter(|w| w.opts.wants(event_type))
            .count();
        let mut copies = ev.into_copies(wanted);
        for w in &k.watchers {
            if !w.opts.wants(event_type) {
                continue;
            }
            let copy = copies
                .next()
                .expect("a copy for each watcher that wants it");
            match catch_unwind(AssertUnwindSafe(|| w.offer(copy))) {
                Ok(true) => {}
                Ok(false) => gone.push(w.id),
                Err(p) => {
                    panic.get_or_insert(p);
                }
            }
        }
        if !gone.is_empty() {
            k.watchers.retain(|w| !gone.contains(&w.id));
            self.shared.count_watchers(-(gone.len() as isize));
        }
        panic
    }
}

impl<T> Shared<T> {
    /// Records `n` more (or fewer) registered watchers. Under the lock: a
    /// load and a store, no read-modify-write.
    fn count_watchers(&self, n: isize) {
        let now = self.watching.load(Ordering::Relaxed);
        self.watching
            .store(now.wrapping_add_signed(n), Ordering::Relaxed);
    }

    /// Sets the store's revision (`State::revision`, under the lock, and
    /// its mirror for [`Store::revision`]).
    fn advance(&self, state_revision: &mut u64, revision: u64) {
        *state_revision = revision;
        self.revision.store(revision, Ordering::Release);
    }

    fn register(
        &self,
        st: &mut State<T>,
        kind: &str,
        opts: WatchOptions,
        target: Target<T>,
        cancel: mpsc::Receiver<()>,
    ) -> u64 {
        let id = st.next_id;
        st.next_id += 1;
        // After the last store handle went, a new watch ends at once (its
        // channel closes when `target` drops here).
        if !st.ended {
            let k = st.kinds.entry(kind.to_owned()).or_default();
            st.keep = st.keep.max(opts.buffer.min(KEEP_MAX));
            k.watchers.push(Watcher {
                id,
                opts,
                target,
                cancel,
            });
            self.count_watchers(1);
        }
        id
    }
}

impl<T: Send + Sync> Feed<T> for Shared<T> {
    /// Unregisters watcher `id` (its cancel). Its channel's sender goes
    /// with it, outside the lock.
    fn remove(&self, id: u64) {
        let mut st = self.state.lock();
        let found = st.kinds.iter_mut().find_map(|(name, k)| {
            let i = k.watchers.iter().position(|w| w.id == id)?;
            let removed = k.watchers.swap_remove(i);
            Some((k.is_unused().then(|| name.clone()), removed))
        });
        let removed = found.map(|(unused, removed)| {
            if let Some(name) = unused {
                st.kinds.remove(&name);
            }
            self.count_watchers(-1);
            removed
        });
        if removed.is_some() {
            st.rekeep();
        }
        drop(st);
        drop(removed);
    }

    /// A resync after a lag (`resync_on_lag`): under the lock, `f` gets the
    /// kind's current state as replay events and the number of events
    /// offered to the watcher so far (exact: no writer runs). Also after
    /// the last store handle went: the entries are still here, and the
    /// replay of the final state lets the watcher converge before its end.
    fn resync(
        &self,
        kind: &str,
        opts: &WatchOptions,
        offered: &AtomicU64,
        install: &mut dyn FnMut(Vec<Msg<T>>, u64),
    ) {
        let st = self.state.lock();
        let replay = snapshot(&st, kind, opts).into_iter().map(Msg::Event);
        install(replay.collect(), offered.load(Ordering::Relaxed));
    }
}

/// The kind's entries as `Create` events, sorted by name, as `opts`
/// filters them.
fn snapshot<T>(st: &State<T>, kind: &str, opts: &WatchOptions) -> Vec<Event<T>> {
    if !opts.wants(EventType::Create) {
        return Vec::new();
    }
    let mut events = st.kinds.get(kind).map_or_else(Vec::new, |k| {
        k.entries
            .iter()
            .map(|(name, e)| Event::new(kind, name, EventType::Create, e.value.clone(), e.revision))
            .collect::<Vec<_>>()
    });
    events.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    events
}

impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Store {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Store<T> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last handle: every watch ends (its channel's sender goes).
            let watchers = {
                let mut st = self.shared.state.lock();
                st.ended = true;
                let watchers: Vec<_> = st
                    .kinds
                    .values_mut()
                    .flat_map(|k| std::mem::take(&mut k.watchers))
                    .collect();
                st.kinds.retain(|_, k| !k.is_unused());
                st.rekeep();
                self.shared.watching.store(0, Ordering::Relaxed);
                watchers
            };
            drop(watchers);
        }
    }
}

impl<T> fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("revision", &self.shared.revision.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> WatchStore<T> for Store<T> {
    type Error = Infallible;

    fn set(&self, kind: &str, name: &str, value: T) -> Result<Option<EventType>, Infallible> {
        Ok(Store::set(self, kind, name, value))
    }
    fn get(&self, kind: &str, name: &str) -> Result<Option<Arc<T>>, Infallible> {
        Ok(Store::get(self, kind, name))
    }
    fn delete(&self, kind: &str, name: &str) -> Result<Option<Arc<T>>, Infallible> {
        Ok(Store::delete(self, kind, name))
    }
    fn list(&self, kind: &str) -> Result<Vec<(String, Arc<T>)>, Infallible> {
        Ok(Store::list(self, kind))
    }
    fn revision(&self) -> Result<u64, Infallible> {
        Ok(Store::revision(self))
    }
    fn watch(&self, kind: &str, opts: WatchOptions) -> Result<Watch<T>, Infallible> {
        Ok(Store::watch(self, kind, opts))
    }
}
