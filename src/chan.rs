//! The one internal surface every channel kind presents, and the public
//! methods written once on top of it.
//!
//! A kind provides, per handle, a handful of private primitives:
//!
//! - senders: `try_send_now(msg)` (never waits), `send_now(msg)` (the
//!   first attempt of a blocking send: never waits either, but may pause
//!   for a batch of room) and `send_until(msg, deadline)` (waits under
//!   `Block` until `deadline`, `None` meaning forever);
//! - receivers: `try_recv_now()` and `recv_until(deadline)`;
//! - both: [`Handle::core`], a [`Core`] with the introspection of the
//!   channel.
//!
//! The macros below turn those into the public methods (`send`,
//! `send_timeout`, `send_deadline`, `recv`, `iter`, `len`, `is_full`, ...)
//! with their documentation and a runnable example per kind, so every
//! handle of every kind has the same methods, written once. The waiting
//! itself is [`send`] and [`recv_with`] over `park::block_on`, for
//! every kind that implements [`Sending`] and [`Receiving`]: one sending
//! wait loop and one receiving wait loop.

use crate::error::{SendTimeoutError, TrySendError};
use crate::park::{self, WaitQueue};
use crate::Overflow;
use std::time::Instant;

/// Largest batch `send_many` takes from its iterator before it claims room
/// for it (MPSC, broadcast: one compare-exchange per batch).
pub(crate) const MAX_BATCH: usize = 64;

/// `send_many` batches only when at least this many slots look free
/// (MPSC, broadcast); below, it sends one message at a time, as a loop of
/// `send`. A nearly full ring otherwise made batches of one or two
/// messages, each after a look at the ring, and a full one sent each
/// message the slow way: MPSC, capacity 64, two producers, u64 in calls of
/// 256, 21-22 M msg/s against 127-137 for the loop (criterion; now
/// 136-159); broadcast, capacity 64, one subscriber, 30 against 55-58 (a
/// probe; now 71-73 against 75-94, still below). (Under loom, one: the
/// models' rings have a few slots, and their `send_many`s must take both
/// paths.)
pub(crate) const MIN_BATCH: usize = if cfg!(loom) { 1 } else { 16 };

/// How a send attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendMode {
    /// `try_send`: take any free slot at once.
    Try,
    /// A blocking send's first attempt: may pause briefly for more room
    /// (SPSC's `wait_for_slack`); its retries are `Try`.
    Wait,
    /// `close_with`: the message goes in and the channel closes in one
    /// step; waits for room under `Block` like a send.
    Last,
}

/// The sending side of a channel kind, as the one sending wait loop sees
/// it.
pub(crate) trait Sending<T> {
    /// One attempt that never parks. `Full` only while waiting could help
    /// (under `Block`); the dropping policies act here. A `Last` attempt
    /// that succeeds has closed the channel.
    fn try_send_as(&self, msg: T, mode: SendMode) -> Result<(), TrySendError<T>>;
    /// The queue a blocked sender waits on.
    fn send_queue(&self) -> &WaitQueue;
    /// Whether a blocked sender spins before it yields (see
    /// `park::block_on`).
    fn spin_on_send(&self) -> bool {
        true
    }
    /// Runs once when a send is about to wait.
    fn before_send_wait(&self) {}
    /// A blocking send, as `send` makes it (a batch's flush from inside
    /// its iterator, see [`Batch`]): the one sending wait loop, unless the
    /// kind waits its own way (the rendezvous channel queues the message
    /// for the receiver).
    fn send_blocking(&self, msg: T) -> Result<(), SendTimeoutError<T>>
    where
        Self: Sized,
    {
        send(self, msg, None, SendMode::Wait)
    }
}

/// Sends through `s`, waiting until `deadline` (`None`: forever) while the
/// channel is full under `Block`.
#[inline(always)]
pub(crate) fn send<T, S: Sending<T>>(
    s: &S,
    msg: T,
    deadline: Option<Instant>,
    mode: SendMode,
) -> Result<(), SendTimeoutError<T>> {
    match s.try_send_as(msg, mode) {
        Ok(()) => Ok(()),
        Err(TrySendError::Closed(m)) => Err(SendTimeoutError::Closed(m)),
        Err(TrySendError::Full(m)) => send_slow(s, m, deadline, mode),
    }
}

/// The one sending wait loop: waits on the send queue until an attempt
/// takes the message or finds the channel closed, or until `deadline`
/// passes, which hands the message back.
#[cold]
#[inline(never)]
pub(crate) fn send_slow<T, S: Sending<T>>(
    s: &S,
    msg: T,
    deadline: Option<Instant>,
    mode: SendMode,
) -> Result<(), SendTimeoutError<T>> {
    s.before_send_wait();
    let retry = if mode == SendMode::Wait {
        SendMode::Try
    } else {
        mode
    };
    let mut pending = Some(msg);
    let outcome = park::block_on(
        &[s.send_queue()],
        deadline,
        s.spin_on_send().into(),
        || match s.try_send_as(pending.take()?, retry) {
            Ok(()) => Some(Ok(())),
            Err(TrySendError::Closed(m)) => Some(Err(SendTimeoutError::Closed(m))),
            Err(TrySendError::Full(m)) => {
                pending = Some(m);
                None
            }
        },
    );
    match (outcome, pending) {
        (Some(result), _) => result,
        (None, Some(m)) => Err(SendTimeoutError::Timeout(m)),
        (None, None) => unreachable!("a timed-out send still holds its message"),
    }
}

// ---- send_many's batch (MPSC and broadcast)

/// Messages `send_many` has taken from the caller's iterator and not yet
/// enqueued (MPSC and broadcast, which claim room for a batch with one
/// compare-exchange; SPSC writes each message into its slot at once and
/// keeps its own account, `spsc::Run`).
///
/// The iterator is user code, and it runs while the batch waits here. So
/// that `send_many` stays a loop of `send`, the batch is registered on its
/// thread while it exists (a list through `sync::batch_top`), and:
/// - a call into the same channel made from inside the iterator (a send,
///   `close_with`, a select's send, a close from either side, an MPSC
///   receiver's drop, a broadcast `subscribe` or subscriber's drop) first
///   sends the batch ([`flush_batches`]): the messages land where the loop
///   had put them, before that call;
/// - a receive or a select readiness on the same channel made from inside
///   the iterator that finds nothing sends the batch (without waiting for
///   room) and looks again; `len()` and `recv_many` send it first: they
///   find what the loop had sent. (SPSC registers its unpublished run in
///   the same list, `spsc::Run`, and publishes it then.)
/// - if the iterator panics, dropping the registration sends the batch
///   (the loop had sent those messages before the panic);
/// - [`Batch::collect`] asks the iterator for more than one message only
///   while it promises them (`size_hint`'s lower bound): an iterator that
///   may wait for its next item (a channel's `iter()`) is asked for it only
///   once what it gave is sent, so forwarding through `send_many` holds
///   nothing back.
#[repr(C)]
pub(crate) struct Batch<'a, T, S: Sending<T>> {
    /// First (`repr(C)`): the list links batches through their heads.
    head: Pending,
    sender: &'a S,
    /// Touched only through [`Batch::items`].
    items: std::cell::UnsafeCell<Vec<T>>,
    /// A re-entrant call flushed the batch since `collect` began.
    flushed: std::cell::Cell<bool>,
}

/// Messages a `send_many` of this thread has taken and not yet made
/// visible, as this thread's list of them holds them: the type-erased first
/// field of a [`Batch`] (MPSC, broadcast) or of an `spsc::Run`.
pub(crate) struct Pending {
    /// The channel (its key: see [`flush_batches`]).
    chan: *const (),
    /// Sends (or publishes) what is pending, waiting for room if asked and
    /// the kind can; `true` if anything became visible.
    flush: unsafe fn(*const Pending, bool) -> bool,
    /// The next older entry of this thread (null: none).
    prev: std::cell::Cell<*const Pending>,
}

impl Pending {
    /// An entry for the channel keyed `chan`, flushed by `flush`, which is
    /// handed a pointer to the whole entry (the struct whose first field
    /// this is).
    pub(crate) fn new(chan: *const (), flush: unsafe fn(*const Pending, bool) -> bool) -> Self {
        Pending {
            chan,
            flush,
            prev: std::cell::Cell::new(std::ptr::null()),
        }
    }

    /// Puts the entry at `whole` on this thread's list.
    ///
    /// # Safety
    ///
    /// `whole` points to a `repr(C)` struct whose first field is a
    /// `Pending`, and is derived from a reference to that whole struct
    /// (its `flush` reads all of it); the struct stays where it is, alive,
    /// until [`pop`](Self::pop) takes it off, and entries are pushed and
    /// popped in nested order.
    pub(crate) unsafe fn push(whole: *const Pending) {
        // SAFETY: `whole` is live (the caller's contract).
        unsafe {
            (*whole)
                .prev
                .set(crate::sync::batch_top() as *const Pending)
        };
        crate::sync::set_batch_top(whole as *const ());
    }

    /// Takes this entry (the innermost) off this thread's list.
    pub(crate) fn pop(&self) {
        debug_assert_eq!(
            crate::sync::batch_top() as *const Pending,
            self as *const Pending
        );
        crate::sync::set_batch_top(self.prev.get() as *const ());
    }
}

impl<'a, T, S: Sending<T> + 'a> Batch<'a, T, S> {
    pub(crate) fn new(sender: &'a S) -> Self {
        Batch {
            head: Pending::new(sender as *const S as *const (), Self::flush_erased),
            sender,
            items: std::cell::UnsafeCell::new(Vec::new()),
            flushed: std::cell::Cell::new(false),
        }
    }

    /// Registers the batch on this thread until the returned guard drops.
    /// A batch of the same channel registered earlier (an outer
    /// `send_many`, whose iterator called us) is sent first.
    pub(crate) fn register(&self) -> Registered<'_, 'a, T, S> {
        flush_batches(self.head.chan, true);
        // SAFETY: from the whole batch, whose first field is the head
        // (`repr(C)`); `Registered` pops it before the batch can move or
        // drop (it borrows the batch), and guards nest.
        unsafe { Pending::push(self as *const Self as *const Pending) };
        Registered(self)
    }

    /// Takes up to `want` messages from `iter` into the batch: the first
    /// always, the others only while `iter` promises them (see the type's
    /// docs), the channel was open when the first came (`closed()`: a loop
    /// of `send` asks for nothing after its first failure) and no call the
    /// iterator made into the channel flushed the batch (a close made from
    /// the iterator is one; the caller then finds the channel closed).
    /// Returns how many it took, and whether `iter` ended.
    #[inline(always)]
    pub(crate) fn collect(
        &self,
        iter: &mut impl Iterator<Item = T>,
        want: usize,
        closed: impl FnOnce() -> bool,
    ) -> (usize, bool) {
        self.flushed.set(false);
        self.items(|items| items.reserve(want));
        let Some(first) = iter.next() else {
            return (0, true);
        };
        self.items(|items| items.push(first));
        let mut n = 1;
        if closed() {
            return (n, false);
        }
        let mut promised = 0;
        while n < want {
            if self.flushed.get() || promised == 0 {
                promised = iter.size_hint().0;
                if self.flushed.get() || promised == 0 {
                    break;
                }
            }
            // Pushed before the iterator runs again: a re-entrant call
            // flushes it.
            let Some(msg) = iter.next() else {
                return (n, true);
            };
            self.items(|items| items.push(msg));
            n += 1;
            promised -= 1;
        }
        (n, false)
    }

    /// Runs `f` on the waiting messages. `f` never runs user code (it
    /// moves messages, and drops none), so no other access to them can
    /// happen while it runs.
    #[inline(always)]
    fn items<R>(&self, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        // SAFETY: the batch is `!Sync` (the cell), so only its thread
        // reaches it: `send_many`, and re-entrant calls made from inside
        // the iterator, which run while `send_many` is in the iterator and
        // not in here; and no `f` re-enters (above).
        f(unsafe { &mut *self.items.get() })
    }

    /// Moves the messages waiting here into `out` (empty), for the caller
    /// to enqueue: from then on they are its own, and a re-entrant call
    /// does not see them. The only user code that can run while they are
    /// out is the `Drop` of a message a dropping policy discards, and a
    /// send it makes belongs before them, as in the loop (see [`Taken`]).
    /// The two vectors trade places, so that both keep their room from
    /// batch to batch.
    pub(crate) fn take_into(&self, out: &mut Vec<T>) {
        debug_assert!(out.is_empty());
        self.items(|items| std::mem::swap(items, out));
    }

    fn take(&self) -> Vec<T> {
        self.items(std::mem::take)
    }

    /// Sends the waiting messages like `send` (`wait`) or `try_send`. The
    /// first that fails (the channel is closed, or full without `wait`)
    /// and the rest stay in the batch, for `send_many`. `true` if it sent
    /// any.
    fn flush(&self, wait: bool) -> bool {
        self.flushed.set(true);
        let mut rest = self.take().into_iter();
        let mut sent = false;
        while let Some(msg) = rest.next() {
            let failed = if wait {
                self.sender
                    .send_blocking(msg)
                    .map_err(SendTimeoutError::into_inner)
            } else {
                self.sender
                    .try_send_as(msg, SendMode::Try)
                    .map_err(TrySendError::into_inner)
            };
            if let Err(msg) = failed {
                let mut back = vec![msg];
                back.extend(rest);
                self.items(|items| {
                    back.append(items);
                    *items = back;
                });
                return sent;
            }
            sent = true;
        }
        sent
    }

    /// # Safety
    ///
    /// `head` is the head of a live `Batch<T, S>` (registered, so not
    /// moved and not dropped), pointing to the whole batch.
    unsafe fn flush_erased(head: *const Pending, wait: bool) -> bool {
        // SAFETY: `head` is the first field of a `repr(C)` `Batch<T, S>`
        // that is alive (the caller's contract).
        let batch = unsafe { &*(head as *const Self) };
        batch.flush(wait)
    }
}

/// Messages taken out of a [`Batch`] to be enqueued (`Batch::take_into`).
/// If a panic unwinds past them (a message's `Drop` run by a dropping
/// policy, the only user code that can run while they are out), they go
/// back to the batch, whose registration then sends them: dropped here
/// during the unwinding, a panicking `Drop` among them would abort the
/// process, and every other message would be lost without a count.
pub(crate) struct Taken<'b, 'a, T, S: Sending<T>> {
    batch: &'b Batch<'a, T, S>,
    msgs: Vec<T>,
}

impl<'b, 'a, T, S: Sending<T>> Taken<'b, 'a, T, S> {
    pub(crate) fn new(batch: &'b Batch<'a, T, S>) -> Self {
        Taken {
            batch,
            msgs: Vec::new(),
        }
    }

    /// Takes the batch's waiting messages (see [`Batch::take_into`]).
    pub(crate) fn refill(&mut self) {
        self.batch.take_into(&mut self.msgs);
    }
}

impl<T, S: Sending<T>> std::ops::Deref for Taken<'_, '_, T, S> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.msgs
    }
}

impl<T, S: Sending<T>> std::ops::DerefMut for Taken<'_, '_, T, S> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.msgs
    }
}

impl<T, S: Sending<T>> Drop for Taken<'_, '_, T, S> {
    fn drop(&mut self) {
        if !self.msgs.is_empty() {
            let mut back = std::mem::take(&mut self.msgs);
            self.batch.items(|items| {
                back.append(items);
                *items = back;
            });
        }
    }
}

/// A registered [`Batch`]; dropping it sends what is left in the batch
/// (only a panic leaves anything) and unregisters it.
pub(crate) struct Registered<'b, 'a, T, S: Sending<T>>(&'b Batch<'a, T, S>);

impl<T, S: Sending<T>> Drop for Registered<'_, '_, T, S> {
    fn drop(&mut self) {
        let batch = self.0;
        if !batch.items(|items| items.is_empty()) {
            if std::thread::panicking() {
                // A panic in a message's drop (a dropping policy) would
                // abort the process here: keep unwinding the first one.
                let _ =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch.flush(true)));
            } else {
                batch.flush(true);
            }
        }
        // Batches register and unregister in nested order: this one is
        // the innermost.
        batch.head.pop();
    }
}

/// Sends every batch this thread has pending on the channel keyed `chan`
/// (called on entry by every operation that a batch must precede, and on
/// the empty path of every receive; see [`Batch`]), waiting for room like
/// `send` if `wait`. A close does not wait: what finds no room stays in the
/// batch, and `send_many` hands it back (a loop of `send` would have been
/// waiting for that room, and the closing thread may be the only one that
/// could make it); nor does a receive (on the empty path there is room,
/// but for a broadcast subscriber's lagging twin). `true` if any message
/// became visible. One thread-local load when there is none.
///
/// A channel's key is the address of its `Sending` core (MPSC: the
/// `Array`; broadcast: the `Chan`; SPSC: the `Chan`); [`Handle::pending_key`]
/// gives it from any handle.
#[inline(always)]
pub(crate) fn flush_batches(chan: *const (), wait: bool) -> bool {
    let top = crate::sync::batch_top();
    !top.is_null() && flush_batches_slow(top as *const Pending, chan, wait)
}

#[cold]
#[inline(never)]
fn flush_batches_slow(mut head: *const Pending, chan: *const (), wait: bool) -> bool {
    // At most one batch per channel holds messages: a newer one registers
    // only after sending the older ones of its channel (`register`; an
    // SPSC run is the only one of its channel, its sender being unique).
    let mut sent = false;
    while !head.is_null() {
        // SAFETY: every entry on this thread's list is live and registered
        // (`Pending::push`'s contract: it is popped before it is dropped or
        // moved, and only this thread reads its list).
        let (this_chan, flush, prev) = unsafe { ((*head).chan, (*head).flush, (*head).prev.get()) };
        if this_chan == chan {
            // SAFETY: as above; `flush` is the entry's own.
            sent |= unsafe { flush(head, wait) };
        }
        head = prev;
    }
    sent
}

/// A kind's `try_recv` error: it can say "empty now" (the one outcome a
/// wait can change) and becomes the kind's timed-receive error, `Empty`
/// turning into `Timeout`. (Kept as the kind's own small enum rather than a
/// shared one with a payload: a `Result<u64, TryRecvError>` comes back in
/// registers, and the receive fast path depends on it.)
pub(crate) trait TryError: Copy {
    type Timeout;
    const EMPTY: Self;
    fn is_empty(&self) -> bool;
    fn timed_out(self) -> Self::Timeout;
}

impl TryError for crate::TryRecvError {
    type Timeout = crate::RecvTimeoutError;
    const EMPTY: Self = crate::TryRecvError::Empty;

    #[inline(always)]
    fn is_empty(&self) -> bool {
        matches!(self, crate::TryRecvError::Empty)
    }

    #[inline(always)]
    fn timed_out(self) -> crate::RecvTimeoutError {
        match self {
            crate::TryRecvError::Empty => crate::RecvTimeoutError::Timeout,
            crate::TryRecvError::Closed => crate::RecvTimeoutError::Closed,
        }
    }
}

/// The receiving side of a channel kind, as the one receiving wait loop
/// sees it.
pub(crate) trait Receiving {
    type Msg;
    type Error: TryError;
    /// One attempt that never parks.
    fn try_recv_as(&self) -> Result<Self::Msg, Self::Error>;
    /// The queue a blocked receiver waits on.
    fn recv_queue(&self) -> &WaitQueue;
    /// How a blocked receiver waits before it parks: spinning first,
    /// unless the kind says otherwise.
    fn recv_pace(&self) -> park::Pace {
        park::Pace::Spin
    }
    /// Runs once when a receive is about to wait.
    fn before_recv_wait(&self) {}
}

/// The timed-receive error of `R`.
pub(crate) type TimeoutOf<R> = <<R as Receiving>::Error as TryError>::Timeout;

/// Receives through `r` with `attempt` (a receive, or a batch of them),
/// waiting while it reports empty until `deadline` (`None`: forever).
#[inline(always)]
pub(crate) fn recv_with<R: Receiving, M>(
    r: &R,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Result<M, R::Error>,
) -> Result<M, TimeoutOf<R>> {
    match attempt() {
        Ok(m) => Ok(m),
        Err(e) if e.is_empty() => recv_slow(r, deadline, attempt),
        Err(e) => Err(e.timed_out()),
    }
}

/// The one receiving wait loop: waits on the receive queue until `attempt`
/// returns anything but empty, or until `deadline` passes.
#[cold]
#[inline(never)]
fn recv_slow<R: Receiving, M>(
    r: &R,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Result<M, R::Error>,
) -> Result<M, TimeoutOf<R>> {
    r.before_recv_wait();
    park::block_on(
        &[r.recv_queue()],
        deadline,
        r.recv_pace(),
        || match attempt() {
            Err(e) if e.is_empty() => None,
            other => Some(other),
        },
    )
    .unwrap_or(Err(R::Error::EMPTY))
    .map_err(TryError::timed_out)
}

/// `recv` of a kind, from its `recv_timeout` error (no deadline: never a
/// timeout).
pub(crate) trait WithoutTimeout<E> {
    fn without_timeout(self) -> E;
}

impl WithoutTimeout<crate::RecvError> for crate::RecvTimeoutError {
    fn without_timeout(self) -> crate::RecvError {
        crate::RecvError
    }
}

/// What every channel core tells about itself (the introspection methods of
/// every handle read it).
pub(crate) trait Core {
    /// Messages buffered now (a snapshot).
    fn len(&self) -> usize;
    fn capacity(&self) -> usize;
    fn is_closed(&self) -> bool;
    fn dropped(&self) -> u64;
    fn overflow(&self) -> Overflow;
    /// Closes the channel; `true` for the call that closed it.
    fn close(&self) -> bool;
    /// The channel's key in this thread's list of pending `send_many`
    /// batches ([`flush_batches`]): the address of the core its senders
    /// send through.
    fn pending_key(&self) -> *const () {
        self as *const Self as *const ()
    }
}

/// A handle and the core it reads; `len` and `close` are per handle where
/// they differ (a broadcast subscriber counts what it has not received; an
/// SPSC sender closes at its own tail).
pub(crate) trait Handle {
    type Core: Core;
    fn core(&self) -> &Self::Core;
    /// The channel's key in this thread's list of pending `send_many`
    /// batches ([`flush_batches`]).
    fn pending_key(&self) -> *const () {
        self.core().pending_key()
    }
    fn len(&self) -> usize {
        self.core().len()
    }
    /// Closes from this handle (a kind may close differently per side).
    fn close(&self) -> bool {
        self.core().close()
    }
}

/// The public `send`, `try_send`, `send_timeout` and `send_deadline` of a
/// sender, from its private `try_send_now` and `send_until`.
macro_rules! sender_methods {
    ($kind:literal) => {
        /// Sends a message, waiting for room under
        /// [`Overflow::Block`](crate::Overflow::Block) (the dropping
        /// policies never wait). Fails only if the channel is closed,
        /// handing the message back.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(1);")]
        #[doc = concat!("let h = std::thread::spawn(move || rx.recv());")]
        /// tx.send(1).unwrap(); // waits until the receiver is there
        /// assert_eq!(h.join().unwrap().unwrap(), 1);
        /// // The receiver is gone: the message comes back.
        /// assert_eq!(tx.send(2), Err(rillet::SendError(2)));
        /// ```
        #[inline(always)]
        pub fn send(&self, msg: T) -> Result<(), $crate::SendError<T>> {
            match self.send_now(msg) {
                Ok(()) => Ok(()),
                Err($crate::TrySendError::Closed(m)) => Err($crate::SendError(m)),
                Err($crate::TrySendError::Full(m)) => self
                    .send_until(m, None)
                    .map_err(|e| $crate::SendError(e.into_inner())),
            }
        }

        /// Sends without waiting. Under `Block` a full channel returns
        /// [`TrySendError::Full`](crate::TrySendError::Full); the dropping
        /// policies never do.
        ///
        /// ```
        /// use rillet::TrySendError;
        ///
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(1);")]
        /// assert_eq!(tx.try_send(1), Ok(()));
        /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
        /// drop(rx);
        /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
        /// ```
        #[inline]
        pub fn try_send(&self, msg: T) -> Result<(), $crate::TrySendError<T>> {
            self.try_send_now(msg)
        }

        /// Sends, waiting at most `timeout` for room (`Duration::MAX`
        /// waits forever). The send is tried before the time is checked.
        ///
        /// ```
        /// use rillet::SendTimeoutError;
        /// use std::time::Duration;
        ///
        #[doc = concat!("let (tx, _rx) = rillet::", $kind, "::channel(1);")]
        /// tx.send(1).unwrap();
        /// let err = tx.send_timeout(2, Duration::from_millis(5)).unwrap_err();
        /// assert_eq!(err, SendTimeoutError::Timeout(2));
        /// assert_eq!(err.into_inner(), 2); // the message comes back
        /// ```
        pub fn send_timeout(
            &self,
            msg: T,
            timeout: std::time::Duration,
        ) -> Result<(), $crate::SendTimeoutError<T>> {
            // The first attempt needs no clock (see `recv_timeout`).
            match self.send_now(msg) {
                Ok(()) => Ok(()),
                Err($crate::TrySendError::Closed(m)) => Err($crate::SendTimeoutError::Closed(m)),
                Err($crate::TrySendError::Full(m)) => {
                    self.send_until(m, std::time::Instant::now().checked_add(timeout))
                }
            }
        }

        /// Sends, waiting until `deadline` at most for room.
        ///
        /// ```
        /// use std::time::{Duration, Instant};
        ///
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(1);")]
        /// let deadline = Instant::now() + Duration::from_millis(5);
        /// assert_eq!(tx.send_deadline(1, deadline), Ok(()));
        /// assert!(tx.send_deadline(2, deadline).unwrap_err().is_timeout());
        /// # drop(rx);
        /// ```
        pub fn send_deadline(
            &self,
            msg: T,
            deadline: std::time::Instant,
        ) -> Result<(), $crate::SendTimeoutError<T>> {
            self.send_until(msg, Some(deadline))
        }
    };
}

/// `recv_blocking`, which `recv` calls, for a kind without a shape of its
/// own: the non-waiting attempt, then the wait. (SPSC and MPSC have their
/// own, which read the message in place: see
/// `spsc::Receiver::recv_blocking`. MPSC keeps this one, out of line, as
/// `recv_other`, for its rendezvous channels and claiming consumers.)
macro_rules! generic_recv_blocking {
    () => {
        generic_recv_blocking!(recv_blocking, inline(always));
    };
    ($name:ident, $inline:meta) => {
        /// `recv`: the non-waiting attempt, then the wait.
        #[$inline]
        fn $name(&self) -> Result<T, RecvError> {
            use $crate::chan::{TryError, WithoutTimeout};
            match self.try_recv_now() {
                Ok(msg) => Ok(msg),
                Err(e) if !e.is_empty() => Err(e.timed_out().without_timeout()),
                Err(_) => self
                    .recv_until(None)
                    .map_err(WithoutTimeout::without_timeout),
            }
        }
    };
}

/// The public `recv`, `try_recv`, `recv_timeout`, `recv_deadline`, `iter`
/// and `try_iter` of a receiver, from its private `recv_blocking`,
/// `try_recv_now` and `recv_until`, with the kind's error types.
macro_rules! receiver_methods {
    ($kind:literal, $recv:ty, $try_recv:ty, $recv_timeout:ty) => {
        /// Receives a message, waiting until one arrives. Fails only when
        /// the channel is closed and everything sent has been received.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// std::thread::spawn(move || tx.send("hello").unwrap());
        /// assert_eq!(rx.recv(), Ok("hello"));
        /// assert!(rx.recv().is_err()); // the sender is gone, nothing left
        /// ```
        #[inline(always)]
        pub fn recv(&self) -> Result<T, $recv> {
            self.recv_blocking()
        }

        /// Receives without waiting. Never waits for a sender that has
        /// claimed a slot but not finished writing it (that is `Empty`).
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// assert!(rx.try_recv().is_err()); // empty
        /// tx.send(1).unwrap();
        /// assert_eq!(rx.try_recv(), Ok(1));
        /// ```
        #[inline]
        pub fn try_recv(&self) -> Result<T, $try_recv> {
            self.try_recv_now()
        }

        /// Receives, waiting at most `timeout` (`Duration::MAX` waits
        /// forever). A queued message is taken even with a zero timeout;
        /// a closed and drained channel reports that, not a timeout.
        ///
        /// ```
        /// use std::time::Duration;
        ///
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel::<u8>(4);")]
        /// assert!(rx.recv_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
        /// tx.send(1).unwrap();
        /// assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));
        /// drop(tx);
        /// assert!(rx.recv_timeout(Duration::ZERO).unwrap_err().is_closed());
        /// ```
        pub fn recv_timeout(&self, timeout: std::time::Duration) -> Result<T, $recv_timeout> {
            // The first attempt needs no clock: the deadline is worked out
            // only for a wait. Reading the clock on every call cost a loop
            // of `recv_timeout` more than the receive itself (two CPUs, two
            // producers, capacity 1024: 36% of the samples in
            // `clock_gettime`, 12-14 M msg/s against `recv`'s 128-195).
            match self.try_recv_now() {
                Ok(msg) => Ok(msg),
                Err(e) if $crate::chan::TryError::is_empty(&e) => {
                    self.recv_until(std::time::Instant::now().checked_add(timeout))
                }
                Err(e) => Err($crate::chan::TryError::timed_out(e)),
            }
        }

        /// Receives, waiting until `deadline` at most.
        ///
        /// ```
        /// use std::time::{Duration, Instant};
        ///
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel::<u8>(4);")]
        /// let deadline = Instant::now() + Duration::from_millis(5);
        /// assert!(rx.recv_deadline(deadline).unwrap_err().is_timeout());
        /// # drop(tx);
        /// ```
        pub fn recv_deadline(&self, deadline: std::time::Instant) -> Result<T, $recv_timeout> {
            self.recv_until(Some(deadline))
        }

        /// A blocking iterator: yields messages until the channel is closed
        /// and everything sent has been received.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// std::thread::spawn(move || {
        ///     for i in 0..10 {
        ///         tx.send(i).unwrap();
        ///     }
        /// });
        /// assert_eq!(rx.iter().sum::<i32>(), 45);
        /// ```
        pub fn iter(&self) -> Iter<'_, T> {
            Iter { rx: self }
        }

        /// A non-blocking iterator over what can be received now.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// tx.send(1).unwrap();
        /// tx.send(2).unwrap();
        /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
        /// assert_eq!(rx.try_iter().count(), 0); // nothing now; tx is still open
        /// ```
        pub fn try_iter(&self) -> TryIter<'_, T> {
            TryIter { rx: self }
        }
    };
}

/// `len`, `is_empty`, `is_full`, `capacity`, `is_closed`, `dropped`,
/// `overflow` and `close` of a handle (`$h`: `tx` or `rx`, for the
/// examples), from [`Handle`].
macro_rules! introspection_methods {
    ($kind:literal, $h:literal) => {
        /// Number of messages buffered now: a snapshot, which other threads
        /// may change at once.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// tx.send(1).unwrap();
        #[doc = concat!("assert_eq!(", $h, ".len(), 1);")]
        /// ```
        pub fn len(&self) -> usize {
            // A `send_many` of this thread whose iterator asks: counted as
            // sent, as in a loop of `send`.
            $crate::chan::flush_batches($crate::chan::Handle::pending_key(self), false);
            $crate::chan::Handle::len(self)
        }

        /// `true` if nothing is buffered (a snapshot, as [`len`](Self::len)).
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel::<u8>(4);")]
        #[doc = concat!("assert!(", $h, ".is_empty());")]
        /// ```
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// `true` if the buffer is full (a snapshot, as [`len`](Self::len)).
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(1);")]
        /// tx.send(1).unwrap();
        #[doc = concat!("assert!(", $h, ".is_full());")]
        /// ```
        pub fn is_full(&self) -> bool {
            self.len() >= self.capacity()
        }

        /// The capacity the channel was created with (exact: never more
        /// messages are buffered).
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel::<u8>(3);")]
        #[doc = concat!("assert_eq!(", $h, ".capacity(), 3);")]
        /// ```
        pub fn capacity(&self) -> usize {
            $crate::chan::Core::capacity($crate::chan::Handle::core(self))
        }

        /// `true` once the channel has been closed, also while messages are
        /// still buffered.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// tx.send(1).unwrap();
        /// tx.close();
        #[doc = concat!("assert!(", $h, ".is_closed());")]
        /// assert_eq!(rx.recv(), Ok(1)); // still delivered
        /// ```
        pub fn is_closed(&self) -> bool {
            $crate::chan::Core::is_closed($crate::chan::Handle::core(self))
        }

        /// Messages discarded by the overflow policy so far (a channel-wide
        /// total). Nothing is lost without being counted here.
        ///
        /// ```
        /// use rillet::Overflow;
        ///
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::Builder::new(1)")]
        ///     .overflow(Overflow::DropOldest)
        ///     .build();
        /// tx.send(1).unwrap();
        /// tx.send(2).unwrap(); // evicts 1
        #[doc = concat!("assert_eq!(", $h, ".dropped(), 1);")]
        /// # drop(rx);
        /// ```
        pub fn dropped(&self) -> u64 {
            $crate::chan::Core::dropped($crate::chan::Handle::core(self))
        }

        /// The overflow policy of this channel.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel::<u8>(4);")]
        #[doc = concat!("assert_eq!(", $h, ".overflow(), rillet::Overflow::Block);")]
        /// ```
        pub fn overflow(&self) -> $crate::Overflow {
            $crate::chan::Core::overflow($crate::chan::Handle::core(self))
        }

        /// Closes the channel for every handle. Returns `true` only for the
        /// call that closed it: every other call, concurrent or later, from
        /// either side, returns `false`, and none panics. Buffered messages
        /// can still be received; sends fail from now on.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// tx.send(1).unwrap();
        #[doc = concat!("assert!(", $h, ".close());")]
        /// assert!(!tx.close() && !rx.close());
        /// assert!(tx.send(2).is_err());
        /// assert_eq!(rx.recv(), Ok(1));
        /// ```
        pub fn close(&self) -> bool {
            $crate::chan::Handle::close(self)
        }
    };
}

/// `Clone`, `Handle` and `Debug` for the `Sender` of a kind whose senders
/// are counted (`chan: SenderRef<Chan<T>>`).
macro_rules! counted_sender {
    ($kind:literal) => {
        impl<T> Clone for Sender<T> {
            /// Another sender of the same channel; the channel closes when
            /// the last one is dropped.
            fn clone(&self) -> Self {
                Sender {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> $crate::chan::Handle for Sender<T> {
            type Core = Chan<T>;

            fn core(&self) -> &Chan<T> {
                &self.chan
            }
        }

        impl<T> std::fmt::Debug for Sender<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(concat!($kind, "::Sender { .. }"))
            }
        }
    };
}

/// A kind's `Builder` (capacity and overflow policy); the kind writes its
/// `build`. `$check` runs on the policy given to `overflow` (it panics on
/// one the kind does not support).
macro_rules! builder {
    ($kind:literal, $check:expr) => {
        /// Configures and creates a channel: its capacity and its
        /// [`Overflow`](crate::Overflow) policy.
        ///
        /// ```
        /// use rillet::Overflow;
        ///
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::Builder::new(2)")]
        ///     .overflow(Overflow::DropOldest)
        ///     .build();
        /// for i in 0..5 {
        ///     tx.send(i).unwrap(); // never waits: the oldest goes
        /// }
        /// assert_eq!(rx.dropped(), 3);
        /// ```
        #[derive(Debug, Clone)]
        pub struct Builder {
            capacity: usize,
            overflow: $crate::Overflow,
        }

        impl Builder {
            /// A builder for a channel holding at most `capacity` messages,
            /// with [`Overflow::Block`](crate::Overflow::Block).
            ///
            /// ```
            #[doc = concat!("let (tx, rx) = rillet::", $kind, "::Builder::new(8).build::<u32>();")]
            /// assert_eq!((tx.capacity(), rx.capacity()), (8, 8));
            /// ```
            pub fn new(capacity: usize) -> Self {
                Builder {
                    capacity,
                    overflow: $crate::Overflow::Block,
                }
            }

            /// Sets the overflow policy: what a send does when the channel
            /// is full.
            ///
            /// ```
            /// use rillet::Overflow;
            ///
            #[doc = concat!("let (tx, _rx) = rillet::", $kind, "::Builder::new(1)")]
            ///     .overflow(Overflow::DropOldest)
            ///     .build::<u8>();
            /// assert_eq!(tx.overflow(), Overflow::DropOldest);
            /// ```
            pub fn overflow(mut self, overflow: $crate::Overflow) -> Self {
                let check: fn($crate::Overflow) = $check;
                check(overflow);
                self.overflow = overflow;
                self
            }
        }
    };
}

/// Defines `Iter`, `TryIter`, `IntoIter` and the `IntoIterator` impls for a
/// module's `Receiver<T>`: one definition for every channel kind. By
/// default the iterators end at the first error of `recv`/`try_recv`; a
/// kind whose receive has non-final errors (broadcast's `Lagged`) passes
/// the bound on `T` and its own `next` and `try_next` expressions of `rx`.
macro_rules! receiver_iterators {
    ($kind:literal) => {
        receiver_iterators!($kind, T: Sized, |rx| rx.recv().ok(), |rx| rx.try_recv().ok());
    };
    ($kind:literal, T: $bound:path, |$rx:ident| $next:expr, |$try_rx:ident| $try_next:expr) => {
        /// Blocking iterator over a [`Receiver`], from [`Receiver::iter`] (or
        /// `for msg in &rx`): yields messages until the channel is closed and
        /// drained.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// std::thread::spawn(move || tx.send_many(1..=3).unwrap());
        /// let mut total = 0;
        /// for msg in &rx {
        ///     total += msg;
        /// }
        /// assert_eq!(total, 6);
        /// ```
        #[derive(Debug)]
        pub struct Iter<'a, T> {
            rx: &'a Receiver<T>,
        }

        impl<T: $bound> Iterator for Iter<'_, T> {
            type Item = T;
            fn next(&mut self) -> Option<T> {
                let $rx = self.rx;
                $next
            }
        }

        /// Non-blocking iterator over a [`Receiver`], from
        /// [`Receiver::try_iter`]: yields what can be received now.
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// tx.send_many([1, 2]).unwrap();
        /// let now: Vec<i32> = rx.try_iter().collect();
        /// assert_eq!(now, [1, 2]);
        /// ```
        #[derive(Debug)]
        pub struct TryIter<'a, T> {
            rx: &'a Receiver<T>,
        }

        impl<T: $bound> Iterator for TryIter<'_, T> {
            type Item = T;
            fn next(&mut self) -> Option<T> {
                let $try_rx = self.rx;
                $try_next
            }
        }

        /// Owning blocking iterator, from `Receiver::into_iter` (or
        /// `for msg in rx`).
        ///
        /// ```
        #[doc = concat!("let (tx, rx) = rillet::", $kind, "::channel(4);")]
        /// tx.send_many(["a", "b"]).unwrap();
        /// drop(tx);
        /// let all: Vec<&str> = rx.into_iter().collect();
        /// assert_eq!(all, ["a", "b"]);
        /// ```
        #[derive(Debug)]
        pub struct IntoIter<T> {
            rx: Receiver<T>,
        }

        impl<T: $bound> Iterator for IntoIter<T> {
            type Item = T;
            fn next(&mut self) -> Option<T> {
                let $rx = &self.rx;
                $next
            }
        }

        impl<'a, T: $bound> IntoIterator for &'a Receiver<T> {
            type Item = T;
            type IntoIter = Iter<'a, T>;
            fn into_iter(self) -> Iter<'a, T> {
                self.iter()
            }
        }

        impl<T: $bound> IntoIterator for Receiver<T> {
            type Item = T;
            type IntoIter = IntoIter<T>;
            fn into_iter(self) -> IntoIter<T> {
                IntoIter { rx: self }
            }
        }
    };
}

/// A handle's completion of a selected `select` case: the kind's own
/// `recv` and `send` (the readiness side, `select::case::Case`, is per
/// kind).
macro_rules! select_completions {
    ($recv_err:ty, [$($bound:tt)*]) => {
        impl<T $($bound)*> $crate::select::SelectRecv for Receiver<T> {
            type Output = Result<T, $recv_err>;

            fn complete_recv(&self) -> Result<T, $recv_err> {
                self.recv()
            }
        }

        impl<T> $crate::select::SelectSend for Sender<T> {
            type Msg = T;

            fn complete_send(&self, msg: T) -> Result<(), $crate::SendError<T>> {
                self.send(msg)
            }
        }
    };
}
