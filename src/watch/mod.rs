//! A typed, thread-safe key/value store whose watchers receive create,
//! update and delete events through this crate's own channels.
//!
//! ```
//! use rillet::watch::{EventType, Store, WatchOptions};
//!
//! let store: Store<u32> = Store::new();
//! store.set("users", "alice", 1);
//! let w = store.watch("users", WatchOptions::new().initial_replay());
//! store.set("users", "bob", 2);
//! store.set("users", "alice", 1); // equal: no event
//! store.delete("users", "alice");
//!
//! let seen: Vec<_> = w
//!     .try_iter()
//!     .map(|ev| (ev.name.clone(), ev.event_type, *ev.object))
//!     .collect();
//! assert_eq!(
//!     seen,
//!     [
//!         ("alice".to_string(), EventType::Create, 1), // the replay
//!         ("bob".to_string(), EventType::Create, 2),
//!         ("alice".to_string(), EventType::Delete, 1), // carries the old value
//!     ]
//! );
//! ```
//!
//! # How it works
//!
//! Entries live in one hash map per *kind* behind one lock; the kind also
//! holds its watchers, so a change reaches them without comparing kind
//! names. `list` and replays sort by name when they are made (`list` after
//! unlocking). A `BTreeMap`, sorted already, compared a dozen names or more
//! for a lookup in a kind of 256 entries, and how many depended on the
//! name: pinned to one CPU, the 4-writer, 8-watcher flow's `set` took
//! 300 ns at the median and 490-520 ns at p99 (the baseline's
//! `Mutex<HashMap>`: 290 and 420-430); with the hash map, 280 and 455-470.
//! It also holds 100,000 keys in 86 bytes a key rather than 111.
//!
//! A change takes the lock, compares the new value with the old one
//! (`PartialEq`, or the builder's compare function: an equal value is no
//! change and no event), gives the change the next store-wide revision,
//! and, still under the lock, offers one [`Event`] (reference-counted:
//! every watcher shares it) to every watcher of that kind whose filter
//! takes it. Delivering under the lock is what makes a watcher see
//! events in revision order, however many threads write.
//!
//! Each [`Watch`] owns an [`spsc`](crate::spsc) channel of its `buffer`
//! size and `overflow` policy: the lock holder is its only sender at any
//! time, so a delivery is the SPSC fast path (a slot write and an index
//! store, no read-modify-write). With an MPSC channel, whose sends claim a
//! slot with a locked instruction, each delivery waited for the previous
//! one's stores to reach the watchers' cache lines; the SPSC channel made
//! the 4-writer, 8-watcher flow about 1.2x faster. Its receiver is
//! *quiet*: a watch waiting for an event never spins; it yields (up to
//! 256 times, about 40 us when nothing else runs: a park costs the other
//! CPU an interrupt, see `park::Pace::Quiet`), then parks. A store
//! usually has more watchers than the machine has CPUs, and a spinning
//! watcher takes the CPU from the writer it waits for: with spinning
//! watchers, a third of the CPU of that flow on two CPUs went to
//! watchers pausing for a batch of events. Every event offered to
//! it carries the watcher's own sequence number. A channel's `dropped()` is a total, not a
//! position, so the watch finds its losses from the numbers instead: an
//! event whose number skips ahead reports `Lagged(skipped)` first (and is
//! returned by the next `recv`); a loss at the end (`DropNewest` dropped
//! the newest events and nothing came after) is found by comparing what it
//! received with the count of events offered to it, which the store
//! publishes after each offer (only a `DropNewest` watch reads it: under
//! `Block` nothing is lost, and `DropOldest` always keeps the newest event,
//! whose number shows the gap). So a loss is always reported in band, just
//! where it happened, and counted by [`Watch::missed`].
//!
//! `initial_replay` takes the snapshot and registers the watcher under the
//! same lock, so no change falls between them; the replay is kept by the
//! watch itself (not in its channel, so a replay larger than the buffer
//! loses nothing). `resync_on_lag` does the same after a `Lagged`: under
//! the lock it discards what the channel still holds (all of it older than
//! the snapshot) and replays the kind's current state.
//!
//! # Decisions
//!
//! - Revisions start at 1; [`Store::revision`] is 0 before the first
//!   change. A replayed `Create` carries the revision of the entry's last
//!   change (so replayed events are sorted by name, not by revision); live
//!   events carry the revision of their change.
//! - The `event_types` filter applies to everything a watcher receives,
//!   replays included (replayed entries are `Create` events).
//! - `Overflow::Block` makes a writer wait, holding the store's write
//!   order, until that watcher has room: other writers wait behind it (and
//!   so do `get`, `list` and new watches, of every kind: they take the
//!   same lock), but no watcher with another policy is ever waited for. A writer waiting on
//!   a watcher that is cancelled or dropped stops at once (it selects on
//!   the watcher's cancel channel).
//! - [`Watch::iter`] yields events and steps over a `Lagged` (the loss is
//!   counted by [`Watch::missed`]); use [`Watch::recv`] to see it.
//! - [`Watch::try_recv`] and [`Watch::recv_timeout`] return `Ok(None)` when
//!   there is no event yet.
//! - `watch_into` sends plain events into a caller's
//!   [`mpsc::Sender`](crate::mpsc::Sender), so that one receiver can serve
//!   many watches. That channel's own capacity and policy apply (its
//!   `dropped()` counts its losses), so `buffer`, `overflow` and
//!   `resync_on_lag` are refused for it with a panic that says so. Its
//!   replay is sent before `watch_into` returns, waiting for room as the
//!   channel's policy says. Dropping the [`WatchHandle`] cancels it, as
//!   dropping a [`Watch`] does.
//! - Bad input panics at once with a message that says what to change: an
//!   empty kind name (in every method), a buffer of 0.
//! - A panic in the compare function leaves the entry as it was. A
//!   panicking `T::drop` (of a replaced or deleted value, or of an event a
//!   watcher's full channel evicts while a writer delivers) is propagated
//!   to the writer after the store is consistent and every watcher was
//!   offered the event. No lock is poisoned. `T::drop` and the compare
//!   function must not call into the store that runs them (they run while
//!   it holds its lock).
//! - Dropping every [`Store`] handle ends every watch: each receives what
//!   was already delivered, then `Closed` (iteration ends).
//! - An event's object drops when the event's last holder lets it go (and
//!   the entry no longer holds it), as with an `Arc`. The event's own
//!   memory (the event, its kind and its name: 128 bytes and two small
//!   allocations, about 200 bytes with short names) is freed a while later: the store keeps it until as many later
//!   events were made as its largest watcher buffer (at most 1024), and
//!   the writer that pushes it out frees it after its lock. A watcher that
//!   keeps up is done with an event by then, so its memory goes back to
//!   the writer's thread, which allocates the next events, instead of a
//!   watcher's. In the 4-writer, 8-watcher flow on two CPUs the writers
//!   spent a third of their time allocating before (every allocation came
//!   from the allocator's shared lists: the frees had gone to the
//!   watchers' caches); with the store's memory of its events, a probe of
//!   that flow in turns with the build before, medians of 11 runs: 12.8
//!   -> 15.8 M events/s (the baseline 7.8). The writer that pushes such
//!   an event out keeps its memory and names for the next event it makes
//!   (one per thread, freed when the thread ends): an event is then one
//!   allocation, its value's, instead of four (medians of 15, 14.0 ->
//!   15.4; one writer alone 15.9 -> 17.2). When the event held the last
//!   reference to its object (no other `Arc` or `Weak`), the watcher that
//!   drops the event drops the object's value in place, and the object's
//!   memory goes back with the event's for the writer's next value
//!   (medians of 13, 15.4 -> 16.4; one writer alone 16.4 -> 18.1).

#[cfg(feature = "etcd")]
pub mod etcd;
mod store;
mod watcher;

pub use store::{Store, StoreBuilder};
pub use watcher::{IntoIter, Iter, TryIter, Watch, WatchHandle};

use crate::counter::{ChanRef, Husk, Kept, Spend};
use crate::Overflow;
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// What happened to an entry.
///
/// ```
/// use rillet::watch::{EventType, Store};
///
/// let store: Store<u8> = Store::new();
/// assert_eq!(store.set("k", "a", 1), Some(EventType::Create));
/// assert_eq!(store.set("k", "a", 2), Some(EventType::Update));
/// assert_eq!(store.set("k", "a", 2), None); // equal: no event
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A new entry (also every entry of a replay).
    Create,
    /// A changed value.
    Update,
    /// A removed entry; the event carries the value it had.
    Delete,
}

impl EventType {
    const ALL: u8 = 0b111;

    fn bit(self) -> u8 {
        match self {
            EventType::Create => 1,
            EventType::Update => 2,
            EventType::Delete => 4,
        }
    }
}

/// One change, as a watcher receives it: shared (reference-counted, as an
/// `Arc`) by every watcher it is delivered to. Its fields are those of
/// [`EventData`] (`ev.kind`, `ev.name`, `ev.event_type`, `ev.object`,
/// `ev.revision`).
///
/// ```
/// use rillet::watch::{EventType, Store, WatchOptions};
///
/// let store: Store<String> = Store::new();
/// let w = store.watch("users", WatchOptions::new());
/// store.set("users", "alice", "admin".to_string());
/// let ev = w.recv().unwrap();
/// assert_eq!((ev.kind.as_str(), ev.name.as_str()), ("users", "alice"));
/// assert_eq!(ev.event_type, EventType::Create);
/// assert_eq!(*ev.object, "admin");
/// assert_eq!(ev.revision, store.revision());
/// ```
pub struct Event<T>(ChanRef<Kept<EventData<T>>>);

/// The fields of an [`Event`].
#[derive(Debug, Clone, PartialEq)]
pub struct EventData<T> {
    /// The kind the entry belongs to.
    pub kind: String,
    /// The entry's name within its kind.
    pub name: String,
    /// What happened.
    pub event_type: EventType,
    /// The new value (for `Delete`, the value the entry had).
    pub object: Arc<T>,
    /// The store-wide revision of the change (of the entry's last change,
    /// in a replay).
    pub revision: u64,
}

impl<T> Event<T> {
    fn data(
        kind: &str,
        name: &str,
        event_type: EventType,
        object: Arc<T>,
        revision: u64,
    ) -> EventData<T> {
        EventData {
            kind: kind.to_owned(),
            name: name.to_owned(),
            event_type,
            object,
            revision,
        }
    }

    fn new(kind: &str, name: &str, event_type: EventType, object: Arc<T>, revision: u64) -> Self {
        Event(ChanRef::unkept(Self::data(
            kind, name, event_type, object, revision,
        )))
    }

    /// An event, and a husk that keeps its memory (not its object) until
    /// dropped: see `counter::Kept`. The store drops the husks of its
    /// events a while later, on a writer's thread.
    fn kept(
        kind: &str,
        name: &str,
        event_type: EventType,
        object: Arc<T>,
        revision: u64,
    ) -> (Self, Husk<EventData<T>>) {
        let layout = ChanRef::<Kept<EventData<T>>>::layout();
        if let Some(mut spare) = Spare::take(layout) {
            spare.kind.clear();
            spare.kind.push_str(kind);
            spare.name.clear();
            spare.name.push_str(name);
            let (mem, kind, name) = spare.into_parts();
            let data = EventData {
                kind,
                name,
                event_type,
                object,
                revision,
            };
            // SAFETY: a spare's memory is ours, allocated with its layout
            // (which `Spare::take` checked is this one), and holds nothing.
            let (ev, husk) = unsafe { ChanRef::kept_in(mem, data) };
            return (Event(ev), husk);
        }
        let (ev, husk) = ChanRef::kept(Self::data(kind, name, event_type, object, revision));
        (Event(ev), husk)
    }

    /// Lets go of an event's husk (see `kept`): if its watchers are done
    /// with it, its memory and names become this thread's spare, for the
    /// next event this thread makes, instead of being freed.
    fn release(husk: Husk<EventData<T>>) {
        let layout = ChanRef::<Kept<EventData<T>>>::layout();
        // SAFETY: the closure moves both names out, and the other fields
        // need no drop (the object was dropped by the spend, the rest is
        // `Copy`).
        let reclaimed = unsafe {
            husk.reclaim(|data, object| {
                if let Some(object) = object {
                    let _ = SPARE_OBJECT.try_with(|s| s.replace(Some(object)));
                }
                (
                    std::ptr::read(std::ptr::addr_of!((*data).kind)),
                    std::ptr::read(std::ptr::addr_of!((*data).name)),
                )
            })
        };
        if let Some((mem, (kind, name))) = reclaimed {
            Spare::put(Spare {
                mem,
                layout,
                kind,
                name,
            });
        }
    }

    /// The fields, while no one else holds the event.
    fn get_mut(&mut self) -> Option<&mut EventData<T>> {
        self.0.get_mut().map(Kept::get_mut)
    }

    /// `n` references to this event, this one among them, taken with one
    /// atomic add (see `ChanRef::share`): one for each watcher it goes to.
    fn into_copies(self, n: usize) -> impl Iterator<Item = Event<T>> {
        let others = self.0.share(n.saturating_sub(1)).map(Event);
        others.chain((n > 0).then_some(self))
    }
}

/// The memory of an `Arc` whose value was dropped in place by the last
/// holder of the event that held it (a watcher's thread), left with the
/// event's husk for the writer that lets go of it: that writer builds its
/// next value's `Arc` in it (`new_object`) instead of allocating. Only an
/// `Arc` nobody else can reach (no other strong or weak reference) gives
/// its memory: its value's drop still happens when the last event goes,
/// and nothing can tell that the memory lives on. Typed only by its
/// size and alignment: `Arc::from_raw` takes the memory of an `Arc<U>`
/// as that of an `Arc<V>` when `U` and `V` have the same size and
/// alignment.
pub(crate) struct ArcMem {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
    /// Frees the memory, as the `Arc<MaybeUninit<T>>` it is.
    free: unsafe fn(NonNull<u8>),
}

// SAFETY: memory only (its value was dropped); as an `Arc`'s allocation,
// it may be freed or reused on any thread.
unsafe impl Send for ArcMem {}

impl ArcMem {
    /// Drops `arc`; if it was the only reference, drops its value in
    /// place and keeps its memory.
    fn take<T>(mut arc: Arc<T>) -> Option<ArcMem> {
        if Arc::get_mut(&mut arc).is_none() {
            drop(arc);
            return None;
        }
        unsafe fn free<T>(ptr: NonNull<u8>) {
            // SAFETY: `ptr` came from `Arc::<T>::into_raw` and its value
            // was dropped: as an `Arc<MaybeUninit<T>>` (same size and
            // alignment) it is freed without dropping it again.
            drop(unsafe { Arc::from_raw(ptr.as_ptr().cast::<std::mem::MaybeUninit<T>>()) });
        }
        let ptr = NonNull::new(Arc::into_raw(arc).cast_mut()).expect("an Arc is not null");
        let mem = ArcMem {
            ptr: ptr.cast(),
            layout: std::alloc::Layout::new::<T>(),
            free: free::<T>,
        };
        // SAFETY: the only reference (`get_mut` said so), so nobody else
        // reaches the value; dropped once. If its drop unwinds, `mem`
        // frees the memory as it unwinds.
        unsafe { std::ptr::drop_in_place(ptr.as_ptr()) };
        Some(mem)
    }

    /// `value` in this memory, if it has `T`'s size and alignment.
    fn reuse<T>(self, value: T) -> Result<Arc<T>, T> {
        if self.layout != std::alloc::Layout::new::<T>() {
            return Err(value);
        }
        let mem = std::mem::ManuallyDrop::new(self);
        // SAFETY: the memory of an `Arc` with one reference (ours) whose
        // value was dropped, of `T`'s size and alignment (checked above).
        let mut arc = unsafe { Arc::from_raw(mem.ptr.as_ptr().cast::<std::mem::MaybeUninit<T>>()) };
        Arc::get_mut(&mut arc)
            .expect("the only reference to the memory")
            .write(value);
        // SAFETY: just written; `MaybeUninit<T>` has `T`'s size and
        // alignment (`Arc::assume_init`, which says the same, needs a
        // newer Rust than ours).
        Ok(unsafe { Arc::from_raw(Arc::into_raw(arc).cast::<T>()) })
    }
}

impl Drop for ArcMem {
    fn drop(&mut self) {
        // SAFETY: as `free` says; once (we are dropped once).
        unsafe { (self.free)(self.ptr) }
    }
}

std::thread_local! {
    static SPARE_OBJECT: std::cell::Cell<Option<ArcMem>> = const { std::cell::Cell::new(None) };
}

/// `Arc::new(value)`, in this thread's spare `Arc` memory if it has some
/// of `T`'s size (see [`ArcMem`]).
pub(crate) fn new_object<T>(value: T) -> Arc<T> {
    match SPARE_OBJECT.try_with(|s| s.take()).ok().flatten() {
        Some(mem) => mem.reuse(value).unwrap_or_else(Arc::new),
        None => Arc::new(value),
    }
}

/// The memory of an event whose watchers are done with it, and its kind
/// and name (with their capacity), kept by the thread that let go of its
/// husk for the next event it makes: a writer then builds an event with
/// one allocation (its value's) instead of four, and frees none. One per
/// thread. Its memory's layout is the same for every `T` (an event holds
/// its object through an `Arc`), and is checked before reuse.
struct Spare {
    mem: NonNull<u8>,
    layout: std::alloc::Layout,
    kind: String,
    name: String,
}

std::thread_local! {
    static SPARE: std::cell::Cell<Option<Spare>> = const { std::cell::Cell::new(None) };
}

impl Spare {
    /// This thread's spare, if it has one of `layout`.
    fn take(layout: std::alloc::Layout) -> Option<Spare> {
        let spare = SPARE.try_with(|s| s.take()).ok().flatten()?;
        (spare.layout == layout).then_some(spare)
    }

    /// Keeps `spare` as this thread's (the one it replaces is freed;
    /// while the thread ends, `spare` is).
    fn put(spare: Spare) {
        let _ = SPARE.try_with(|s| s.replace(Some(spare)));
    }

    /// The memory and the names; the memory is then the caller's to free.
    fn into_parts(self) -> (NonNull<u8>, String, String) {
        let mut me = std::mem::ManuallyDrop::new(self);
        (
            me.mem,
            std::mem::take(&mut me.kind),
            std::mem::take(&mut me.name),
        )
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        // SAFETY: the memory is ours, allocated with `layout`, and holds
        // nothing that needs dropping (see `Husk::reclaim`).
        unsafe { std::alloc::dealloc(self.mem.as_ptr(), self.layout) }
    }
}

impl<T> Deref for Event<T> {
    type Target = EventData<T>;

    fn deref(&self) -> &EventData<T> {
        &self.0
    }
}

impl<T> Spend for EventData<T> {
    type Left = ArcMem;

    /// The object: its `T` is the user's, and so is the moment it drops.
    /// If this was its only reference, its `T` is dropped in place and the
    /// `Arc`'s memory left for the husk (see [`ArcMem`]).
    unsafe fn spend(this: *mut Self) -> Option<ArcMem> {
        // SAFETY: as the trait says: valid, ours alone, not spent; the
        // field is not dropped again (it is spent).
        let object = unsafe { std::ptr::read(std::ptr::addr_of!((*this).object)) };
        ArcMem::take(object)
    }

    /// Every other field: names and `Copy` values, memory only.
    unsafe fn drop_spent(this: *mut Self) {
        // A field added to `EventData` fails to compile here until this
        // says which part it belongs to (the closure is never called).
        let _parts = |d: &EventData<T>| {
            let EventData {
                kind: _,
                name: _,
                event_type: _,
                object: _,
                revision: _,
            } = d;
        };
        // SAFETY: as the trait says: valid, spent (the object dropped),
        // ours alone, once.
        unsafe {
            std::ptr::drop_in_place(std::ptr::addr_of_mut!((*this).kind));
            std::ptr::drop_in_place(std::ptr::addr_of_mut!((*this).name));
        }
    }
}

impl<T> Clone for Event<T> {
    fn clone(&self) -> Self {
        Event(self.0.clone())
    }
}

impl<T: fmt::Debug> fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: PartialEq> PartialEq for Event<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

/// Why a [`Watch`] returned no event.
///
/// ```
/// use rillet::watch::WatchError;
///
/// assert_eq!(WatchError::Lagged(3).to_string(), "the watcher lagged: 3 events were lost");
/// assert_eq!(WatchError::Closed.to_string(), "the watch has ended");
/// ```
///
/// With the `etcd` feature it has a third variant, `Invalid`, and is
/// `Clone` but not `Copy` (the variant carries the key and the error): a
/// crate that may be built with the feature matches it with a wildcard
/// arm as well.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "etcd"), derive(Copy))]
pub enum WatchError {
    /// The watch was cancelled, or every store handle was dropped, and
    /// every event delivered before that has been received.
    Closed,
    /// The watcher's buffer overflowed and this many events were lost just
    /// before the next one (also counted by [`Watch::missed`]).
    Lagged(u64),
    /// (feature `etcd`) An entry under the store's prefix whose value does
    /// not decode as `T` (another program wrote it): reported in band, in
    /// revision order, in place of its event; the watch goes on.
    #[cfg(feature = "etcd")]
    Invalid {
        /// The entry's etcd key.
        key: String,
        /// The revision of the change.
        revision: u64,
        /// What the decoder said.
        error: String,
    },
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Closed => f.write_str("the watch has ended"),
            WatchError::Lagged(n) => write!(f, "the watcher lagged: {n} events were lost"),
            #[cfg(feature = "etcd")]
            WatchError::Invalid {
                key,
                revision,
                error,
            } => write!(
                f,
                "the value of {key} at revision {revision} does not decode: {error}"
            ),
        }
    }
}

impl std::error::Error for WatchError {}

/// How a watcher is set up: which event types, an initial replay, its
/// buffer and overflow policy, and whether it resynchronises after a loss.
///
/// ```
/// use rillet::watch::{EventType, WatchOptions};
/// use rillet::Overflow;
///
/// let opts = WatchOptions::new()
///     .event_types([EventType::Create, EventType::Update])
///     .initial_replay()
///     .buffer(1024)
///     .overflow(Overflow::DropOldest)
///     .resync_on_lag();
/// assert_eq!(opts.buffer_size(), 1024);
/// ```
#[derive(Debug, Clone)]
pub struct WatchOptions {
    types: u8,
    replay: bool,
    buffer: usize,
    overflow: Overflow,
    resync: bool,
    /// `buffer` or `overflow` was set (refused by `watch_into`).
    channel_set: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl WatchOptions {
    /// Every event type, no replay, a buffer of 128 events, `DropNewest`,
    /// no resync.
    ///
    /// ```
    /// let opts = rillet::watch::WatchOptions::new();
    /// assert_eq!(opts.buffer_size(), 128);
    /// ```
    pub fn new() -> Self {
        WatchOptions {
            types: EventType::ALL,
            replay: false,
            buffer: 128,
            overflow: Overflow::DropNewest,
            resync: false,
            channel_set: false,
        }
    }

    /// Only these event types are delivered (replays included).
    ///
    /// # Panics
    ///
    /// If `types` is empty: such a watcher would never receive anything.
    ///
    /// ```
    /// use rillet::watch::{EventType, Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// let w = store.watch("k", WatchOptions::new().event_types([EventType::Delete]));
    /// store.set("k", "a", 1);
    /// store.delete("k", "a");
    /// assert_eq!(w.recv().unwrap().event_type, EventType::Delete);
    /// ```
    pub fn event_types(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.types = types.into_iter().fold(0, |m, t| m | t.bit());
        assert!(
            self.types != 0,
            "WatchOptions::event_types: no event type given; a watcher needs at least one"
        );
        self
    }

    /// The kind's existing entries arrive first, as `Create` events sorted
    /// by name, then live events, with no gap and no duplicate.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchOptions};
    ///
    /// let store: Store<u8> = Store::new();
    /// store.set("k", "b", 2);
    /// store.set("k", "a", 1);
    /// let w = store.watch("k", WatchOptions::new().initial_replay());
    /// let names: Vec<_> = w.try_iter().map(|ev| ev.name.clone()).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn initial_replay(mut self) -> Self {
        self.replay = true;
        self
    }

    /// The watcher's buffer, in events (default 128).
    ///
    /// # Panics
    ///
    /// If `events` is 0.
    ///
    /// ```should_panic
    /// rillet::watch::WatchOptions::new().buffer(0); // refused
    /// ```
    pub fn buffer(mut self, events: usize) -> Self {
        assert!(
            events > 0,
            "WatchOptions::buffer: a watcher's buffer must hold at least 1 event (got 0)"
        );
        self.buffer = events;
        self.channel_set = true;
        self
    }

    /// What a full buffer does with a new event (default `DropNewest`):
    /// `DropNewest` and `DropOldest` never make a writer wait (the loss is
    /// reported as `Lagged`), `Block` makes writers wait for this watcher.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchError, WatchOptions};
    /// use rillet::Overflow;
    ///
    /// let store: Store<u32> = Store::new();
    /// let w = store.watch("k", WatchOptions::new().buffer(2).overflow(Overflow::DropOldest));
    /// for i in 0..5 {
    ///     store.set("k", "a", i);
    /// }
    /// assert_eq!(w.recv(), Err(WatchError::Lagged(3)));
    /// assert_eq!(*w.recv().unwrap().object, 3);
    /// assert_eq!(*w.recv().unwrap().object, 4);
    /// assert_eq!(w.missed(), 3);
    /// ```
    pub fn overflow(mut self, policy: Overflow) -> Self {
        self.overflow = policy;
        self.channel_set = true;
        self
    }

    /// After a `Lagged`, the watcher receives a fresh replay of the kind's
    /// current state (as `Create` events), then live events without gap.
    /// Rebuild from the replay: an entry missing from it was deleted.
    ///
    /// ```
    /// use rillet::watch::{Store, WatchError, WatchOptions};
    ///
    /// let store: Store<u32> = Store::new();
    /// let w = store.watch("k", WatchOptions::new().buffer(1).resync_on_lag());
    /// store.set("k", "a", 1);
    /// store.set("k", "b", 2); // dropped: the buffer holds one
    /// assert_eq!(*w.recv().unwrap().object, 1);
    /// assert_eq!(w.recv(), Err(WatchError::Lagged(1)));
    /// let replay: Vec<_> = w.try_iter().map(|ev| ev.name.clone()).collect();
    /// assert_eq!(replay, ["a", "b"]);
    /// ```
    pub fn resync_on_lag(mut self) -> Self {
        self.resync = true;
        self
    }

    /// The buffer size these options give a watcher.
    ///
    /// ```
    /// assert_eq!(rillet::watch::WatchOptions::new().buffer(7).buffer_size(), 7);
    /// ```
    pub fn buffer_size(&self) -> usize {
        self.buffer
    }

    fn wants(&self, t: EventType) -> bool {
        self.types & t.bit() != 0
    }
}

/// What every watch store offers, so that a program can move between the
/// embedded [`Store`] and another backend (the `etcd` feature's
/// `EtcdStore`) by changing its constructor. The embedded store's error is
/// [`Infallible`](std::convert::Infallible); its inherent methods return
/// the values directly.
///
/// ```
/// use rillet::watch::{Store, WatchOptions, WatchStore};
///
/// fn count<S: WatchStore<u8>>(s: &S) -> Result<usize, S::Error> {
///     Ok(s.list("k")?.len())
/// }
/// let store: Store<u8> = Store::new();
/// store.set("k", "a", 1);
/// assert_eq!(count(&store), Ok(1));
/// ```
pub trait WatchStore<T> {
    /// What a failed operation reports.
    type Error;

    /// Sets `kind/name` to `value`: the event type, or `None` when the
    /// value is equal to the current one (no event).
    fn set(&self, kind: &str, name: &str, value: T) -> Result<Option<EventType>, Self::Error>;
    /// The current value of `kind/name`.
    fn get(&self, kind: &str, name: &str) -> Result<Option<Arc<T>>, Self::Error>;
    /// Removes `kind/name`: its previous value.
    fn delete(&self, kind: &str, name: &str) -> Result<Option<Arc<T>>, Self::Error>;
    /// The entries of `kind`, sorted by name.
    fn list(&self, kind: &str) -> Result<Vec<(String, Arc<T>)>, Self::Error>;
    /// The revision of the latest change.
    fn revision(&self) -> Result<u64, Self::Error>;
    /// Watches `kind`.
    fn watch(&self, kind: &str, opts: WatchOptions) -> Result<Watch<T>, Self::Error>;
}

/// Panics on an empty kind name (every method of both stores checks;
/// `method` is its path under `rillet::watch`, as `Store::set`).
fn check_kind(kind: &str, method: &str) {
    assert!(
        !kind.is_empty(),
        "rillet::watch::{method}: the kind name is empty; give every entry and watch a kind"
    );
}

/// A watcher's channel of `buffer` messages `M` (its events, numbered), as
/// `method` builds it: refused with a message that names the watch (not
/// the channel underneath) when its size overflows the address space; a
/// buffer that fits but that the system cannot provide is refused by the
/// channel's own panic.
fn check_buffer<M>(buffer: usize, method: &str) {
    let fits = std::mem::size_of::<M>()
        .checked_mul(buffer)
        .is_some_and(|bytes| bytes <= isize::MAX as usize);
    assert!(
        fits,
        "rillet::watch::{method}: a buffer of {buffer} events is too large to allocate \
         (WatchOptions::buffer)"
    );
}
