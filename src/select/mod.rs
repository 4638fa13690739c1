//! Waiting on several channel operations at once: [`select!`](crate::select!),
//! [`select_biased!`](crate::select_biased!), the dynamic [`Select`], and the
//! timer channels [`after`], [`tick`] and [`never`](never()).
//!
//! ```
//! use rillet::{mpsc, select, spsc};
//! use std::time::Duration;
//!
//! let (tx1, rx1) = spsc::channel::<u32>(4);
//! let (tx2, rx2) = mpsc::channel::<&str>(4);
//! tx2.send("hello").unwrap();
//! select! {
//!     recv(rx1) -> msg => panic!("nothing was sent on rx1: {msg:?}"),
//!     recv(rx2) -> msg => assert_eq!(msg, Ok("hello")),
//!     default(Duration::from_secs(1)) => panic!("rx2 was ready"),
//! }
//! # drop(tx1);
//! ```
//!
//! # How a select runs
//!
//! A select looks at its cases' readiness: a `recv` case is ready when its
//! receiver holds a message or is closed (or, for a broadcast subscriber,
//! has lagged), a `send` case when its channel has room, drops on overflow
//! (`DropNewest`, `DropOldest`) or is closed; a timer when it is due. Among
//! the ready cases it picks one uniformly at random (it looks at the cases
//! in a random order, drawn from a per-thread xorshift generator, and takes
//! the first ready one; `select_biased!` and
//! [`Select::new_biased`] take the first in order), and completes it: the
//! receive or send that the case names.
//!
//! When no case is ready, the selecting thread registers one waiter on
//! every wait queue its cases use (a channel that appears in two cases is
//! registered once) and waits in the same spin, yield, park stages as a
//! blocking `recv` (`park::block_on_any`). Any notification on any of those
//! queues wakes it to look again; a notification it took on one queue while
//! it completes a case on another is passed on to the next waiter of that
//! queue, so a producer parked on a full channel is never stranded by a
//! select that went elsewhere. Timers have no queue: the wait's deadline is
//! the earliest timer (or the select's timeout).
//!
//! # Decisions
//!
//! - **No slot is reserved.** A case wins on readiness, and then the
//!   operation runs. For a receiver (one thread receives from it) readiness
//!   holds until that thread acts, so the receive completes at once. A
//!   `send` case of a channel with several senders can lose the room it saw
//!   to another sender in between; the send then waits for room like
//!   [`send`](crate::mpsc::Sender::send) (it never fails for that reason,
//!   and the value is never evaluated twice). Because no slot is reserved,
//!   a send case's value expression that panics leaves a buffered channel
//!   exactly as it was. The one commitment is the rendezvous hand-over
//!   below, and it is undone when the value panics.
//! - A send case's value is evaluated only for the case that wins, after it
//!   won.
//! - A closed channel is ready: its `recv` case yields the receiver's
//!   `Closed` error, its `send` case `Err(SendError(value))`. Closing a
//!   channel therefore wakes every selector on it. A broadcast
//!   subscriber's `Lagged(n)` is that case's result.
//! - The same channel may appear in several cases, and a send and a receive
//!   on one channel may share a select.
//! - The rendezvous channel (`mpsc::channel(0)`) is ready for a `send` case
//!   while its receiver waits in it (in `recv` or in a select), and for a
//!   `recv` case while a sender waits in it: in `send`, or in a select
//!   whose `send` case on it is waiting. That last one is met as in Go and
//!   crossbeam: the receiving select (or `try_recv`) claims the waiting
//!   select's case, which then wins there; the sender evaluates its value
//!   and hands it over while the receiver waits for it. If that value
//!   expression panics (or leaves early with `?`, `return` or `break`), or
//!   a [`SelectedOperation`] for it is dropped without sending, the claim
//!   is withdrawn and the receiver goes on waiting for another sender.
//!   The other way round, a select's `send` case wins on a waiting
//!   receiver only once it has claimed it (a receiver waiting in a select
//!   may have gone to another case meanwhile; the select then chooses
//!   again): the receiver's select wins its `recv` case there and waits
//!   for the value. So a receiver whose select always has another ready
//!   case still meets a selecting sender, two selects, one on each end,
//!   meet, and two selects that each send to the other and receive from
//!   it pass one message, one way (until 2026-12-06 both could win their
//!   send case and wait forever). A select
//!   does not meet itself: one holding both ends of a rendezvous channel
//!   sees neither as ready through its own offer.
//! - [`Select::ready`] (and `try_ready`, `ready_timeout`, `ready_deadline`)
//!   complete nothing, so a rendezvous `send` case waiting there does not
//!   offer itself to be claimed: it waits for the receiver to wait.
//! - Timers ([`after`], [`tick`], [`never`](never())) are receivers of their own
//!   type, [`Timer`]; their message is the `Instant` at which they fired.

mod macros;
mod timer;

pub use timer::{after, never, tick, Timer};

use crate::park::{self, WaitQueue};
use crate::SendError;
use std::fmt;
use std::time::{Duration, Instant};

/// What a select needs from one case's handle. Sealed: implemented by the
/// receivers and senders of this crate only.
pub(crate) mod case {
    use crate::park::{WaitQueue, Waiter};
    use crate::sync::Arc;
    use std::time::Instant;

    pub trait Case {
        /// Would the case's operation complete now without waiting (closed
        /// counts as complete)? Must read the channel state fresh: it runs
        /// after the heavy barrier of a registration.
        fn ready(&self) -> bool;
        /// The queue whose notifications may make the case ready (`None`
        /// for timers). Not used by a select that completes its case for a
        /// case that [`offers`](Self::offers): a partner that makes it
        /// ready claims the offer or unparks the waiter itself, and the
        /// close unparks every offering waiter.
        fn queue(&self) -> Option<&WaitQueue>;
        /// When the case becomes ready by itself (timers).
        fn deadline(&self) -> Option<Instant> {
            None
        }
        /// The handle's identity (its address), to check that an operation
        /// is completed on the handle that was selected.
        fn addr(&self) -> *const ();
        /// Whether the case registers an offer a partner may claim while
        /// the select waits (both ends of the rendezvous channel): a
        /// partner that claims it completes (receive) or commits (send) the
        /// case for the waiter.
        fn offers(&self) -> bool {
            false
        }
        /// Registers the offer of case `tag` for `waiter`. `complete`: the
        /// select will complete the case it returns (not `Select::ready`),
        /// so a send offer may be claimed: the claimant then waits for the
        /// message.
        fn register(&self, _waiter: &Arc<Waiter>, _tag: usize, _complete: bool) {}
        /// Withdraws every offer of `waiter`.
        fn unregister(&self, _waiter: &Arc<Waiter>) {}
        /// Commits to this case, which `ready` reported: `false` if the
        /// readiness is gone and the select must choose again (a rendezvous
        /// receive that could not claim the selecting sender it saw, or a
        /// rendezvous send that could not claim the selecting receiver).
        /// `complete`: the select will complete the case (not
        /// `Select::ready`), so a send may claim a receiver, which then
        /// waits for the message.
        fn reserve(&self, _complete: bool) -> bool {
            true
        }
        /// The selected case will not be completed after all (a send
        /// case's value expression panicked or left early, a
        /// `SelectedOperation` was dropped): release what a partner's
        /// claim committed (a rendezvous receiver waiting for this send).
        fn abort(&self) {}
    }
}

use case::Case;

/// A receiver that can be a `recv` case of [`select!`](crate::select!) or
/// [`Select::recv`]: the receivers of every channel kind, and [`Timer`].
pub trait SelectRecv: Case {
    /// What the case yields: what the receiver's `recv` returns.
    type Output;

    /// Receives, once the case was selected (ready).
    #[doc(hidden)]
    fn complete_recv(&self) -> Self::Output;
}

/// A sender that can be a `send` case of [`select!`](crate::select!) or
/// [`Select::send`]: the senders of every channel kind.
pub trait SelectSend: Case {
    /// The message type.
    type Msg;

    /// Sends, once the case was selected (ready).
    #[doc(hidden)]
    fn complete_send(&self, msg: Self::Msg) -> Result<(), SendError<Self::Msg>>;
}

impl<R: Case + ?Sized> Case for &R {
    fn ready(&self) -> bool {
        (**self).ready()
    }
    fn queue(&self) -> Option<&WaitQueue> {
        (**self).queue()
    }
    fn deadline(&self) -> Option<Instant> {
        (**self).deadline()
    }
    fn addr(&self) -> *const () {
        (**self).addr()
    }
    fn offers(&self) -> bool {
        (**self).offers()
    }
    fn register(&self, waiter: &crate::sync::Arc<crate::park::Waiter>, tag: usize, complete: bool) {
        (**self).register(waiter, tag, complete)
    }
    fn unregister(&self, waiter: &crate::sync::Arc<crate::park::Waiter>) {
        (**self).unregister(waiter)
    }
    fn reserve(&self, complete: bool) -> bool {
        (**self).reserve(complete)
    }
    fn abort(&self) {
        (**self).abort()
    }
}

impl<R: SelectRecv + ?Sized> SelectRecv for &R {
    type Output = R::Output;
    fn complete_recv(&self) -> R::Output {
        (**self).complete_recv()
    }
}

impl<S: SelectSend + ?Sized> SelectSend for &S {
    type Msg = S::Msg;
    fn complete_send(&self, msg: S::Msg) -> Result<(), SendError<S::Msg>> {
        (**self).complete_send(msg)
    }
}

/// [`Select::try_select`] and [`Select::try_ready`] found no case ready.
///
/// ```
/// let (_tx, rx) = rillet::mpsc::channel::<u8>(1);
/// let mut sel = rillet::Select::new();
/// sel.recv(&rx);
/// assert_eq!(sel.try_select().unwrap_err(), rillet::select::TrySelectError);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrySelectError;

impl fmt::Display for TrySelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no select case was ready")
    }
}

impl std::error::Error for TrySelectError {}

/// [`Select::select_timeout`] (or `_deadline`, or a `ready_*` variant)
/// timed out before any case was ready.
///
/// ```
/// use std::time::Duration;
///
/// let (_tx, rx) = rillet::mpsc::channel::<u8>(1);
/// let mut sel = rillet::Select::new();
/// sel.recv(&rx);
/// let err = sel.select_timeout(Duration::from_millis(1)).unwrap_err();
/// assert_eq!(err.to_string(), "timed out waiting for a select case");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectTimeoutError;

impl fmt::Display for SelectTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for a select case")
    }
}

impl std::error::Error for SelectTimeoutError {}

/// A select over a number of cases known only at run time (crossbeam's
/// shape). Add cases with [`recv`](Self::recv) and [`send`](Self::send),
/// which return the case's index; [`select`](Self::select) waits until one
/// is ready and returns it as a [`SelectedOperation`], which you complete
/// with the same handle.
///
/// ```
/// use rillet::{mpsc, Select};
///
/// let (tx1, rx1) = mpsc::channel::<i32>(1);
/// let (tx2, rx2) = mpsc::channel::<i32>(1);
/// tx2.send(20).unwrap();
///
/// let mut sel = Select::new();
/// let a = sel.recv(&rx1);
/// let b = sel.recv(&rx2);
/// let op = sel.select();
/// match op.index() {
///     i if i == a => panic!("rx1 is empty: {:?}", op.recv(&rx1)),
///     i if i == b => assert_eq!(op.recv(&rx2), Ok(20)),
///     _ => unreachable!(),
/// }
/// # drop(tx1);
/// ```
pub struct Select<'a> {
    cases: Vec<&'a dyn Case>,
    biased: bool,
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("cases", &self.cases.len())
            .field("biased", &self.biased)
            .finish()
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Select<'a> {
    /// An empty select whose ready cases each win with equal probability.
    ///
    /// ```
    /// let sel = rillet::Select::new();
    /// assert_eq!(format!("{sel:?}"), "Select { cases: 0, biased: false }");
    /// ```
    pub fn new() -> Self {
        Select {
            cases: Vec::new(),
            biased: false,
        }
    }

    /// An empty select in which the first ready case, in the order the
    /// cases were added, wins.
    ///
    /// ```
    /// let (tx1, rx1) = rillet::mpsc::channel::<u8>(1);
    /// let (tx2, rx2) = rillet::mpsc::channel::<u8>(1);
    /// tx1.send(1).unwrap();
    /// tx2.send(2).unwrap();
    /// let mut sel = rillet::Select::new_biased();
    /// let first = sel.recv(&rx1);
    /// sel.recv(&rx2);
    /// assert_eq!(sel.ready(), first); // both are ready: the first wins
    /// ```
    pub fn new_biased() -> Self {
        Select {
            cases: Vec::new(),
            biased: true,
        }
    }

    /// Adds a `recv` case; returns its index.
    ///
    /// ```
    /// let (_tx, rx) = rillet::spsc::channel::<u8>(1);
    /// let mut sel = rillet::Select::new();
    /// let never = rillet::select::never();
    /// assert_eq!(sel.recv(&rx), 0);
    /// assert_eq!(sel.recv(&never), 1);
    /// ```
    pub fn recv<R: SelectRecv>(&mut self, r: &'a R) -> usize {
        self.cases.push(r);
        self.cases.len() - 1
    }

    /// Adds a `send` case; returns its index.
    ///
    /// ```
    /// let (tx, rx) = rillet::broadcast::channel::<u8>(1);
    /// let mut sel = rillet::Select::new();
    /// let i = sel.send(&tx);
    /// let op = sel.select();
    /// assert_eq!(op.index(), i);
    /// assert_eq!(op.send(&tx, 5), Ok(()));
    /// assert_eq!(rx.recv(), Ok(5));
    /// ```
    pub fn send<S: SelectSend>(&mut self, s: &'a S) -> usize {
        self.cases.push(s);
        self.cases.len() - 1
    }

    /// Removes the case with this index (the indices of the others stay as
    /// they were; a removed case is never selected).
    ///
    /// # Panics
    ///
    /// If no case has this index, or it was removed already.
    ///
    /// ```
    /// let (tx1, rx1) = rillet::mpsc::channel::<u8>(1);
    /// let (_tx2, rx2) = rillet::mpsc::channel::<u8>(1);
    /// tx1.send(1).unwrap();
    /// let mut sel = rillet::Select::new();
    /// let a = sel.recv(&rx1);
    /// let b = sel.recv(&rx2);
    /// sel.remove(a);
    /// assert!(sel.try_ready().is_err()); // rx1 is no longer a case
    /// # let _ = b;
    /// ```
    pub fn remove(&mut self, index: usize) {
        let case = self
            .cases
            .get_mut(index)
            .unwrap_or_else(|| panic!("Select::remove: no case has index {index}"));
        assert!(
            case.addr() != REMOVED.addr(),
            "Select::remove: case {index} was removed already"
        );
        *case = &REMOVED;
    }

    /// Waits until a case is ready and selects it.
    ///
    /// # Panics
    ///
    /// If the select has no case (it would wait forever); a select of only
    /// [`never`](never()) timers does wait forever.
    ///
    /// ```
    /// let (tx, rx) = rillet::spsc::channel::<u8>(1);
    /// std::thread::spawn(move || tx.send(3).unwrap());
    /// let mut sel = rillet::Select::new();
    /// sel.recv(&rx);
    /// assert_eq!(sel.select().recv(&rx), Ok(3));
    /// ```
    pub fn select(&mut self) -> SelectedOperation<'a> {
        self.check_not_empty("select");
        let index = run(&self.cases, self.biased, Wait::Until(None), true)
            .expect("waited without a deadline");
        self.operation(index)
    }

    /// Selects a ready case if there is one, without waiting.
    ///
    /// ```
    /// let (tx, rx) = rillet::spsc::channel::<u8>(1);
    /// let mut sel = rillet::Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.try_select().is_err());
    /// tx.send(1).unwrap();
    /// assert_eq!(sel.try_select().unwrap().recv(&rx), Ok(1));
    /// ```
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        let index = run(&self.cases, self.biased, Wait::No, true).ok_or(TrySelectError)?;
        Ok(self.operation(index))
    }

    /// Waits at most `timeout` for a case to be ready.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (_tx, rx) = rillet::spsc::channel::<u8>(1);
    /// let mut sel = rillet::Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.select_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.select_waiting(Wait::For(timeout))
    }

    /// Waits until `deadline` at most for a case to be ready.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let (tx, rx) = rillet::mpsc::channel::<u8>(1);
    /// tx.send(9).unwrap();
    /// let mut sel = rillet::Select::new();
    /// sel.recv(&rx);
    /// let op = sel.select_deadline(Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert_eq!(op.recv(&rx), Ok(9));
    /// ```
    pub fn select_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.select_waiting(Wait::Until(Some(deadline)))
    }

    /// Waits until a case is ready and returns its index, completing
    /// nothing: the caller then performs the operation itself (which, for a
    /// send on a channel with other senders, may find the room taken).
    ///
    /// # Panics
    ///
    /// If the select has no case.
    ///
    /// ```
    /// let (tx, rx) = rillet::mpsc::channel::<u8>(1);
    /// tx.send(1).unwrap();
    /// let mut sel = rillet::Select::new();
    /// let i = sel.recv(&rx);
    /// assert_eq!(sel.ready(), i);
    /// assert_eq!(rx.try_recv(), Ok(1)); // still there: nothing was received
    /// ```
    pub fn ready(&mut self) -> usize {
        self.check_not_empty("ready");
        run(&self.cases, self.biased, Wait::Until(None), false).expect("waited without a deadline")
    }

    /// The index of a ready case, without waiting.
    ///
    /// ```
    /// let (tx, rx) = rillet::spsc::channel::<u8>(1);
    /// let mut sel = rillet::Select::new();
    /// sel.send(&tx);
    /// assert_eq!(sel.try_ready(), Ok(0)); // room for one
    /// # drop(rx);
    /// ```
    pub fn try_ready(&mut self) -> Result<usize, TrySelectError> {
        run(&self.cases, self.biased, Wait::No, false).ok_or(TrySelectError)
    }

    /// The index of a ready case, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = rillet::select::after(Duration::from_millis(1));
    /// let mut sel = rillet::Select::new();
    /// sel.recv(&timer);
    /// assert_eq!(sel.ready_timeout(Duration::from_secs(5)), Ok(0));
    /// ```
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, SelectTimeoutError> {
        run(&self.cases, self.biased, Wait::For(timeout), false).ok_or(SelectTimeoutError)
    }

    /// The index of a ready case, waiting until `deadline` at most.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let (_tx, rx) = rillet::spsc::channel::<u8>(1);
    /// let mut sel = rillet::Select::new();
    /// sel.recv(&rx);
    /// let deadline = Instant::now() + Duration::from_millis(2);
    /// assert!(sel.ready_deadline(deadline).is_err());
    /// assert!(Instant::now() >= deadline);
    /// ```
    pub fn ready_deadline(&mut self, deadline: Instant) -> Result<usize, SelectTimeoutError> {
        run(&self.cases, self.biased, Wait::Until(Some(deadline)), false).ok_or(SelectTimeoutError)
    }

    fn select_waiting(&mut self, wait: Wait) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        let index = run(&self.cases, self.biased, wait, true).ok_or(SelectTimeoutError)?;
        Ok(self.operation(index))
    }

    fn check_not_empty(&self, what: &str) {
        assert!(
            self.cases.iter().any(|c| c.addr() != REMOVED.addr()),
            "Select::{what}: a select with no case would wait forever"
        );
    }

    fn operation(&self, index: usize) -> SelectedOperation<'a> {
        SelectedOperation {
            index,
            case: self.cases[index],
            _not_send: std::marker::PhantomData,
        }
    }
}

/// The case a [`Select`] chose; complete it with the handle of that case.
/// Dropping it without completing it completes nothing: a message stays in
/// its channel, and a rendezvous receiver that had claimed this selected
/// send (and waits for its message) is released and looks again.
#[must_use = "a selected operation does nothing until it is completed"]
pub struct SelectedOperation<'a> {
    index: usize,
    case: &'a dyn Case,
    /// Completed (or dropped) on the selecting thread: a rendezvous
    /// claim names that thread.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation")
            .field("index", &self.index)
            .finish()
    }
}

impl Drop for SelectedOperation<'_> {
    fn drop(&mut self) {
        self.case.abort();
    }
}

impl SelectedOperation<'_> {
    /// The index of the selected case.
    ///
    /// ```
    /// let (tx, rx) = rillet::spsc::channel::<u8>(1);
    /// tx.send(1).unwrap();
    /// let never = rillet::select::never();
    /// let mut sel = rillet::Select::new();
    /// sel.recv(&never);
    /// let i = sel.recv(&rx);
    /// assert_eq!(sel.select().index(), i);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// Completes a selected `recv` case: what `r.recv()` returns.
    ///
    /// # Panics
    ///
    /// If `r` is not the receiver of the selected case.
    ///
    /// ```
    /// let (tx, rx) = rillet::spsc::channel::<u8>(1);
    /// drop(tx);
    /// let mut sel = rillet::Select::new();
    /// sel.recv(&rx);
    /// assert_eq!(sel.select().recv(&rx), Err(rillet::RecvError)); // closed is ready
    /// ```
    pub fn recv<R: SelectRecv>(self, r: &R) -> R::Output {
        self.check(r.addr(), "receiver");
        std::mem::forget(self);
        r.complete_recv()
    }

    /// Completes a selected `send` case: what `s.send(msg)` returns.
    ///
    /// # Panics
    ///
    /// If `s` is not the sender of the selected case.
    ///
    /// ```
    /// let (tx, rx) = rillet::mpsc::channel::<u8>(1);
    /// drop(rx);
    /// let mut sel = rillet::Select::new();
    /// sel.send(&tx);
    /// assert_eq!(sel.select().send(&tx, 4), Err(rillet::SendError(4)));
    /// ```
    pub fn send<S: SelectSend>(self, s: &S, msg: S::Msg) -> Result<(), SendError<S::Msg>> {
        self.check(s.addr(), "sender");
        std::mem::forget(self);
        s.complete_send(msg)
    }

    fn check(&self, addr: *const (), what: &str) {
        assert!(
            addr == self.case.addr(),
            "SelectedOperation::{}: this {what} is not the one of the selected case {}",
            if what == "sender" { "send" } else { "recv" },
            self.index
        );
    }
}

/// How long a select may wait.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// Not at all (`default =>`).
    No,
    /// Until the deadline (`None`: forever).
    Until(Option<Instant>),
    /// For this long from the call, the deadline worked out only if the
    /// select has to wait: a select that finds a case ready reads no clock
    /// (a loop of `select!` with `default(timeout)` over a busy channel
    /// spent a third of its time in `clock_gettime`).
    For(Duration),
}

/// The case a removed one is replaced with: never ready.
struct Removed;

static REMOVED: Removed = Removed;

impl Case for Removed {
    fn ready(&self) -> bool {
        false
    }
    fn queue(&self) -> Option<&WaitQueue> {
        None
    }
    fn addr(&self) -> *const () {
        self as *const Removed as *const ()
    }
}

/// The select itself (used by [`Select`] and by the macros): the index of
/// a ready case, reserved (see `Case::reserve`), waiting as `wait` allows;
/// `None` if the wait ended first. `complete`: the caller completes the
/// case returned (see `Case::register`).
#[doc(hidden)]
pub fn run(cases: &[&dyn Case], biased: bool, wait: Wait, complete: bool) -> Option<usize> {
    if let Some(i) = pick_reserved(cases, biased, complete) {
        return Some(i);
    }
    match wait {
        Wait::No => None,
        Wait::Until(deadline) => wait_ready(cases, biased, deadline, complete),
        Wait::For(timeout) => {
            wait_ready(cases, biased, Instant::now().checked_add(timeout), complete)
        }
    }
}

/// [`pick`], then reserve the case picked; pick again if that fails (each
/// failure unlists the stale offer it met, so this ends).
#[inline]
fn pick_reserved(cases: &[&dyn Case], biased: bool, complete: bool) -> Option<usize> {
    loop {
        let i = pick(cases, biased)?;
        if cases[i].reserve(complete) {
            return Some(i);
        }
    }
}

/// A ready case: the first in order when `biased`, else one chosen
/// uniformly among the ready ones. The cases are looked at in a random
/// order, a Fisher-Yates shuffle drawn one step at a time, and the first
/// ready one wins: in a uniformly random order, each ready case comes
/// first among the ready ones with the same probability. So a select whose
/// cases are mostly ready looks at one or two channels (each look reads a
/// line the channel's other side writes), not at every one: it used to
/// look at all of them and choose by reservoir sampling, and the dynamic
/// `Select` over 8 and 16 busy MPSC receivers ran at 0.74x and 0.58x
/// crossbeam-channel (which shuffles too; found by an independent bench).
#[inline]
fn pick(cases: &[&dyn Case], biased: bool) -> Option<usize> {
    if biased {
        return cases.iter().position(|c| c.ready());
    }
    let n = cases.len();
    if n == 2 {
        // Both looked at, then a coin if both are ready: a select of a
        // busy receive and a busy send ran at 34 M ops/s with the shuffle
        // (it looks at one of them), 49 this way, as before the shuffle;
        // two receives 63-67 -> 74.
        return match (cases[0].ready(), cases[1].ready()) {
            (true, true) => Some(rng::below(2) as usize),
            (true, false) => Some(0),
            (false, true) => Some(1),
            (false, false) => None,
        };
    }
    if n > NIBBLES_MAX {
        return pick_many(cases);
    }
    // The order so far, one case index per 4 bits (in a register: no
    // array is set up per select).
    let mut order: u64 = 0xfedc_ba98_7654_3210;
    for k in 0..n {
        // The k-th case looked at: one of those not looked at yet.
        if n - k > 1 {
            let j = k + rng::below((n - k) as u32) as usize;
            let swapped = ((order >> (4 * k)) ^ (order >> (4 * j))) & 0xf;
            order ^= (swapped << (4 * k)) | (swapped << (4 * j));
        }
        let i = ((order >> (4 * k)) & 0xf) as usize;
        if cases[i].ready() {
            return Some(i);
        }
    }
    None
}

/// The most cases whose order fits in [`pick`]'s `u64`.
const NIBBLES_MAX: usize = 16;

/// [`pick`] for more than [`NIBBLES_MAX`] cases: the same shuffle with the
/// order in an array, and from [`SHUFFLED_MAX`] on, reservoir sampling
/// (every case is looked at; the k-th ready one replaces the choice with
/// probability 1/k).
#[cold]
fn pick_many(cases: &[&dyn Case]) -> Option<usize> {
    let n = cases.len();
    if n <= SHUFFLED_MAX {
        let mut order = [0u8; SHUFFLED_MAX];
        for (i, o) in order[..n].iter_mut().enumerate() {
            *o = i as u8;
        }
        for k in 0..n {
            let j = k + rng::below((n - k) as u32) as usize;
            order.swap(k, j);
            let i = usize::from(order[k]);
            if cases[i].ready() {
                return Some(i);
            }
        }
        return None;
    }
    let mut chosen = None;
    let mut seen = 0u32;
    for (i, case) in cases.iter().enumerate() {
        if case.ready() {
            seen += 1;
            if seen == 1 || rng::below(seen) == 0 {
                chosen = Some(i);
            }
        }
    }
    chosen
}

/// The most cases [`pick_many`] shuffles (its order is on the stack).
const SHUFFLED_MAX: usize = 64;

/// The waiting part of [`run`]: registers on every queue the cases use and
/// waits until a case is ready, a timer is due or `deadline` passes.
#[cold]
#[inline(never)]
fn wait_ready(
    cases: &[&dyn Case],
    biased: bool,
    deadline: Option<Instant>,
    complete: bool,
) -> Option<usize> {
    // One registration per queue, however many cases share it; remember
    // which queue each case's readiness depends on.
    let mut queues: Vec<&WaitQueue> = Vec::new();
    let mut queue_of: Vec<Option<usize>> = Vec::with_capacity(cases.len());
    let mut timer: Option<Instant> = None;
    for case in cases {
        // A case that offers, in a select that completes its case, is made
        // ready only through its offer (see `Case::queue`).
        let queue = if complete && case.offers() {
            None
        } else {
            case.queue()
        };
        queue_of.push(
            queue.map(|q| match queues.iter().position(|&r| std::ptr::eq(r, q)) {
                Some(i) => i,
                None => {
                    queues.push(q);
                    queues.len() - 1
                }
            }),
        );
        if let Some(d) = case.deadline() {
            timer = Some(timer.map_or(d, |t| t.min(d)));
        }
    }
    let wake_at = match (timer, deadline) {
        (Some(t), Some(d)) => Some(t.min(d)),
        (t, d) => t.or(d),
    };
    let offering = CaseOffers(cases, complete);
    let offers = cases
        .iter()
        .any(|c| c.offers())
        .then_some(&offering as &dyn park::Offers);
    loop {
        let found = park::block_on_any(
            &queues,
            offers,
            wake_at,
            park::Pace::Spin,
            || pick(cases, biased).map(|i| (queue_of[i], i)),
            // A partner completed case `i` for us.
            |i| (queue_of[i], i),
        );
        match found {
            // A partner's claim needs no reserving; our own pick does (our
            // claim word already says we committed, so no partner claims
            // us while we reserve). If that fails, wait again.
            Some(i) if cases[i].reserve(complete) => return Some(i),
            Some(_) => continue,
            None => {}
        }
        // `wake_at` passed: a due timer is ready now.
        if let Some(i) = pick_reserved(cases, biased, complete) {
            return Some(i);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) || cfg!(loom) {
            return None;
        }
    }
}

/// The offers of a select's cases, registered while it parks, and whether
/// the select completes the case it returns.
struct CaseOffers<'a, 'b>(&'a [&'b dyn Case], bool);

impl park::Offers for CaseOffers<'_, '_> {
    fn register(&self, waiter: &crate::sync::Arc<park::Waiter>) {
        for (i, case) in self.0.iter().enumerate() {
            if case.offers() {
                case.register(waiter, i, self.1);
            }
        }
    }

    fn unregister(&self, waiter: &crate::sync::Arc<park::Waiter>) {
        for case in self.0 {
            if case.offers() {
                case.unregister(waiter);
            }
        }
    }
}

/// Fixes the element type of the macros' case array (so that a select
/// with no case compiles too).
#[doc(hidden)]
#[inline(always)]
pub fn __cases<const N: usize>(cases: [&dyn Case; N]) -> [&dyn Case; N] {
    cases
}

/// Selects among `cases` (the [`select!`](crate::select!) macros' entry).
#[doc(hidden)]
#[inline]
pub fn __select(cases: &[&dyn Case], biased: bool, wait: Wait) -> Option<usize> {
    run(cases, biased, wait, true)
}

/// A `recv` case's handle, for the macros.
#[doc(hidden)]
#[inline]
pub fn __recv_case<R: SelectRecv>(r: &R) -> &dyn Case {
    r
}

/// A `send` case's handle, for the macros.
#[doc(hidden)]
#[inline]
pub fn __send_case<S: SelectSend>(s: &S) -> &dyn Case {
    s
}

/// Completes a selected `recv` case, for the macros.
#[doc(hidden)]
#[inline]
pub fn __complete_recv<R: SelectRecv>(r: &R) -> R::Output {
    r.complete_recv()
}

/// Guards the evaluation of a selected `send` case's value, for the
/// macros: if it panics or leaves early (`?`, `return`, `break`), the guard
/// aborts the case (see `Case::abort`).
#[doc(hidden)]
pub struct __SendGuard<'a, S: SelectSend>(&'a S);

impl<S: SelectSend> Drop for __SendGuard<'_, S> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Arms a [`__SendGuard`] before a selected `send` case's value is
/// evaluated, for the macros.
#[doc(hidden)]
#[inline]
pub fn __send_guard<S: SelectSend>(s: &S) -> __SendGuard<'_, S> {
    __SendGuard(s)
}

/// Completes a selected `send` case with its evaluated value (disarming
/// the guard), for the macros.
#[doc(hidden)]
#[inline]
pub fn __complete_send<S: SelectSend>(
    guard: __SendGuard<'_, S>,
    msg: S::Msg,
) -> Result<(), SendError<S::Msg>> {
    let s = guard.0;
    std::mem::forget(guard);
    s.complete_send(msg)
}

/// A per-thread xorshift generator for the fair choice (no dependency;
/// seeded from std's per-process random hasher keys). Under loom it always
/// returns 0, so that models are deterministic.
mod rng {
    #[cfg(not(loom))]
    use std::cell::Cell;

    #[cfg(not(loom))]
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }

    #[cfg(not(loom))]
    fn seed() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(&h as *const _ as usize);
        h.finish() | 1
    }

    /// A number in `0..n` (`n > 0`), uniform up to a bias of n / 2^32.
    #[inline]
    pub(super) fn below(n: u32) -> u32 {
        #[cfg(not(loom))]
        {
            STATE.with(|s| {
                let mut x = s.get();
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.set(x);
                (((x >> 32) * u64::from(n)) >> 32) as u32
            })
        }
        #[cfg(loom)]
        {
            let _ = n;
            0
        }
    }
}
