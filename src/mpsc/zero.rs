//! The MPSC rendezvous flavour (capacity 0), described in the module docs
//! of `mpsc`; built on the claimable waiters of `park.rs`, so that both of
//! its ends work in `select`.
//!
//! - A receive that must wait registers an *offer*: its waiter (whose claim
//!   word says whether it is still free) and the case it stands for. A plain
//!   `recv` is a select of one case.
//! - A sender that finds an offer claims it (`Waiter::try_claim`, a
//!   compare-exchange that the receiving thread's own commitment races),
//!   puts its message in `delivered` and unparks the receiver, whose select
//!   then reports the case as ready and whose receive takes the message.
//!   The channel has one receiver, so one `delivered` slot suffices; it is
//!   only filled through a claim, and a claimed receiver always takes it
//!   with its next receive.
//! - A sender that finds no offer queues a packet holding its message and
//!   waits until the receiver takes it (or the channel closes, or its
//!   deadline passes and it takes the message back). A `send_many` queues
//!   one packet for a batch (its first message delivered to an offer if
//!   there is one): the receiver takes the batch's messages one by one
//!   (`recv_many` a run of them under one lock), the packet staying first
//!   in the list until its last is taken, which completes the send.
//! - A sender waiting in a select registers a *send offer* (it has no
//!   message yet: a send case's value is evaluated only once the case won).
//!   It makes the receiver's `recv` case ready, so that a receiver whose
//!   select always has another ready case still meets it, as in Go. The
//!   receiver *reserves* that case by claiming the offer (the select calls
//!   `Case::reserve` on the case it picked; a failed claim means the sender
//!   committed elsewhere, and the select picks again). The claim is
//!   recorded in `claim`; the claimed sender's select returns its send
//!   case, the sender evaluates the value and its `send` finds the claim
//!   and fills `delivered`. The receiver's receive waits for that (without
//!   a deadline: the sender is already on its way). If the sender does not
//!   send after all (its value expression panicked, or it dropped its
//!   `SelectedOperation`), `Case::abort` withdraws the claim and the
//!   receiver looks again; a close withdraws it too.
//! - A select that will complete its `send` case reserves it by claiming
//!   an offering receiver (`reserve_send`), recorded in `claim` as above
//!   with the sender being this thread: the receiver's select reports its
//!   `recv` case, and its receive waits for this thread's `send`. (Winning
//!   on the offer alone, a send case could find the receiver gone to
//!   another case of its select and wait in a plain send: two selects,
//!   each sending on its own channel and receiving on the other's, both
//!   did so and waited forever.) A receive waits for a claimed sender
//!   before it takes a queued sender's packet: the claimed one completes
//!   only when its message is taken.
//! - Neither side meets its own thread: a select holding both ends of one
//!   channel does not see its own offers as ready.
//!
//! Offers, packets, `claim` and `delivered` change only under the lock, so
//! a waiter needs no barrier pairing for them: whichever of a sender and an
//! offering receiver takes the lock second sees the other.

use crate::chan::{self, Core, SendMode, Sending, MAX_BATCH};
use crate::error::{RecvTimeoutError, SendError, SendTimeoutError, TrySendError};
use crate::park::{self, WaitQueue, Waiter};
use crate::select::case::Case;
use crate::select::{self, Wait};
use crate::sync::thread::ThreadId;
use crate::sync::{thread, Arc, AtomicBool, AtomicU8, AtomicUsize, Mutex, Ordering, UnsafeCell};
use crate::Overflow;
use std::collections::VecDeque;
use std::time::Instant;

const WAITING: u8 = 0;
/// The receiver took the message.
const DONE: u8 = 1;
/// The channel closed while the packet waited; the message is still in it.
const CLOSED: u8 = 2;

/// A blocked sender's message, or a `send_many`'s batch of them (`msg`
/// first, then `more`, taken in order, the packet leaving the list with
/// its last). Owned by the sending thread and the list (an `Arc`).
struct Packet<T> {
    state: AtomicU8,
    msg: UnsafeCell<Option<T>>,
    more: UnsafeCell<VecDeque<T>>,
    thread: thread::Thread,
    /// A sender's `close_with`: taking this message closes the channel.
    last: bool,
}

impl<T> Packet<T> {
    fn new(msg: T, last: bool) -> Arc<Self> {
        Self::batch(msg, VecDeque::new(), last)
    }

    fn batch(msg: T, more: VecDeque<T>, last: bool) -> Arc<Self> {
        Arc::new(Packet {
            state: AtomicU8::new(WAITING),
            msg: UnsafeCell::new(Some(msg)),
            more: UnsafeCell::new(more),
            thread: thread::current(),
            last,
        })
    }

    /// # Safety
    ///
    /// The caller has exclusive access to the message: it holds the list
    /// lock while the packet is listed, or the packet has left the list and
    /// its state was acquired.
    unsafe fn take(&self) -> Option<T> {
        // SAFETY: guaranteed by the caller.
        self.msg.with_mut(|p| unsafe { (*p).take() })
    }

    /// Takes the next message and moves the one after it up; `true` if
    /// the packet has more (it stays listed).
    ///
    /// # Safety
    ///
    /// As [`take`](Self::take).
    unsafe fn take_next(&self) -> (Option<T>, bool) {
        // SAFETY: guaranteed by the caller (both cells are the packet's
        // messages).
        unsafe {
            let msg = self.take();
            let next = self.more.with_mut(|q| (*q).pop_front());
            let more = next.is_some();
            self.msg.with_mut(|p| *p = next);
            (msg, more)
        }
    }

    /// Every message still in the packet, in order.
    ///
    /// # Safety
    ///
    /// As [`take`](Self::take).
    unsafe fn take_all(&self) -> Vec<T> {
        // SAFETY: guaranteed by the caller.
        unsafe {
            let mut all: Vec<T> = self.take().into_iter().collect();
            all.extend(self.more.with_mut(|q| std::mem::take(&mut *q)));
            all
        }
    }

    /// Waits (its sender) until the receiver took its last message or the
    /// channel closed, which happen under the lock and then unpark us;
    /// `false` if `deadline` passed first.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        park::block_on_any(
            &[],
            None,
            deadline,
            park::Pace::Spin,
            || (self.state.load(Ordering::Acquire) != WAITING).then_some((None, ())),
            |_| unreachable!("a sender registers no offer"),
        )
        .is_some()
    }

    /// Marks the packet (the caller removed it from the list under the
    /// lock), then the caller wakes its thread after releasing the lock.
    fn mark(&self, state: u8) {
        // Release: the message taken (or left) is visible to the owner.
        self.state.store(state, Ordering::Release);
    }
}

/// A receive waiting in a select (a plain `recv` included) for a sender to
/// claim it, or a send waiting in a select for the receiver to claim it.
struct Offer {
    waiter: Arc<Waiter>,
    /// The select case it completes.
    tag: usize,
}

impl Offer {
    /// Of another thread, and still claimable (a hint, see
    /// [`Waiter::is_open`]).
    fn foreign_and_open(&self, me: ThreadId) -> bool {
        self.waiter.thread().id() != me && self.waiter.is_open()
    }
}

/// Claims, for its case, the first offer in `list` of another thread than
/// `me` whose waiter is still free, and unlists it with every stale offer
/// before it (a waiter that committed elsewhere). `None` if there is none.
fn claim_first(list: &mut Vec<Offer>, me: ThreadId) -> Option<Offer> {
    let mut i = 0;
    while i < list.len() {
        if list[i].waiter.thread().id() == me {
            // Our own select's (a thread holding both ends).
            i += 1;
            continue;
        }
        let offer = list.remove(i);
        if offer.waiter.try_claim(offer.tag) {
            return Some(offer);
        }
    }
    None
}

/// The receiver claimed a selecting sender's offer: that sender's next
/// `send` on this thread delivers to the receiver.
struct Claim {
    sender: ThreadId,
    receiver: thread::Thread,
}

struct ZeroInner<T> {
    /// Senders waiting for the receiver, oldest first.
    senders: VecDeque<Arc<Packet<T>>>,
    /// The receiver's offers (one per rendezvous case of the select it
    /// waits in).
    offers: Vec<Offer>,
    /// Selecting senders' offers.
    send_offers: Vec<Offer>,
    /// A message handed to the receiver by claiming one of its offers, or
    /// by the sender whose offer it claimed.
    delivered: Option<T>,
    /// The sender whose offer the receiver claimed, until it delivers (or
    /// aborts, or the channel closes).
    claim: Option<Claim>,
    closed: bool,
}

pub(crate) struct Zero<T> {
    inner: Mutex<ZeroInner<T>>,
    /// Mirrors of the list state, so that readiness checks and `try_*`
    /// calls that meet nobody read no lock. Written under the lock.
    senders_waiting: AtomicUsize,
    offers_waiting: AtomicUsize,
    send_offers_waiting: AtomicUsize,
    delivered: AtomicBool,
    claimed: AtomicBool,
    closed: AtomicBool,
    /// Senders waiting in a select that completes nothing
    /// ([`Select::ready`](crate::select::Select::ready)) for the receiver
    /// to offer: notified when an offer is registered, and on close. A
    /// select that completes its case needs no queue (nor the heavy
    /// barrier of registering on one, a system call per wait): it
    /// registers a send offer, which the receiver claims when it comes
    /// (a receiver that offers first is met by the sender's look after
    /// registering, or woken by `register_send`), and the close unparks.
    /// Neither does a receiver: a sender that comes while it offers claims
    /// the offer and unparks it.
    send_select: WaitQueue,
}

// SAFETY: messages move between threads inside packets and `delivered`,
// accessed under the lock or after the packet's state hand-off; `T: Send`
// suffices.
unsafe impl<T: Send> Send for Zero<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Zero<T> {}

impl<T> Zero<T> {
    pub(crate) fn new() -> Self {
        Zero {
            inner: Mutex::new(ZeroInner {
                senders: VecDeque::new(),
                offers: Vec::new(),
                send_offers: Vec::new(),
                delivered: None,
                claim: None,
                closed: false,
            }),
            senders_waiting: AtomicUsize::new(0),
            offers_waiting: AtomicUsize::new(0),
            send_offers_waiting: AtomicUsize::new(0),
            delivered: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            send_select: WaitQueue::new(),
        }
    }

    fn sync_counts(&self, inner: &ZeroInner<T>) {
        self.senders_waiting
            .store(inner.senders.len(), Ordering::Relaxed);
        self.offers_waiting
            .store(inner.offers.len(), Ordering::Relaxed);
        self.send_offers_waiting
            .store(inner.send_offers.len(), Ordering::Relaxed);
        self.delivered
            .store(inner.delivered.is_some(), Ordering::Relaxed);
        // Release: the receiver waiting for its claimed sender reads this
        // without the lock (then takes the lock to receive).
        self.claimed.store(inner.claim.is_some(), Ordering::Release);
    }

    /// A message is there to take, or the channel is closed: delivered, a
    /// sender's packet, a claimed sender on its way.
    fn recv_ready_now(&self) -> bool {
        self.delivered.load(Ordering::Relaxed)
            || self.senders_waiting.load(Ordering::Relaxed) != 0
            || self.claimed.load(Ordering::Relaxed)
            || Core::is_closed(self)
    }

    /// A `recv` case is ready: a message can be taken now (see above), or
    /// another thread's select offers to send. (The lock is taken only
    /// when an offer is listed: a thread about to claim it and wake its
    /// owner.)
    pub(crate) fn recv_ready(&self) -> bool {
        self.recv_ready_now()
            || (self.send_offers_waiting.load(Ordering::Relaxed) != 0
                && self.any_foreign_open(|inner| &inner.send_offers))
    }

    /// A `send` case is ready: the receiver (on another thread) offers, or
    /// the channel is closed.
    pub(crate) fn send_ready(&self) -> bool {
        Core::is_closed(self)
            || (self.offers_waiting.load(Ordering::Relaxed) != 0
                && self.any_foreign_open(|inner| &inner.offers))
    }

    fn any_foreign_open(&self, list: impl Fn(&ZeroInner<T>) -> &Vec<Offer>) -> bool {
        let me = thread::current().id();
        list(&self.inner.lock())
            .iter()
            .any(|o| o.foreign_and_open(me))
    }

    /// Commits the receiver's select to its `recv` case (see the module
    /// docs): `true` if a message can be taken, or a selecting sender's
    /// offer was claimed; `false` if the readiness seen is gone.
    pub(crate) fn reserve_recv(&self) -> bool {
        if self.recv_ready_now() {
            return true;
        }
        if self.send_offers_waiting.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut inner = self.inner.lock();
        if inner.delivered.is_some()
            || !inner.senders.is_empty()
            || inner.claim.is_some()
            || inner.closed
        {
            return true;
        }
        let claimed = self.claim_offer(
            &mut inner,
            |inner| &mut inner.send_offers,
            |offer| Claim {
                sender: offer.waiter.thread().id(),
                receiver: thread::current(),
            },
        );
        drop(inner);
        let Some(offer) = claimed else { return false };
        offer.waiter.unpark();
        true
    }

    /// Claims the first free offer of another thread in `list`
    /// ([`claim_first`]) and records the claim `claim` makes of it; the
    /// counts are synced either way (stale offers may have been
    /// unlisted). The caller wakes the claimed offer's waiter once it has
    /// released the lock.
    fn claim_offer(
        &self,
        inner: &mut ZeroInner<T>,
        list: impl FnOnce(&mut ZeroInner<T>) -> &mut Vec<Offer>,
        claim: impl FnOnce(&Offer) -> Claim,
    ) -> Option<Offer> {
        let claimed = claim_first(list(inner), thread::current().id());
        if let Some(offer) = &claimed {
            inner.claim = Some(claim(offer));
        }
        self.sync_counts(inner);
        claimed
    }

    /// Commits a select to its `send` case, which it will complete: `true`
    /// if the channel is closed (the send fails at once) or an offering
    /// receiver of another thread was claimed; `false` if the readiness
    /// seen is gone (the receiver committed elsewhere), and the select
    /// picks again. The claim is recorded in `claim` with this thread as
    /// the sender, as when the receiver claims a selecting sender: the
    /// receiver's select returns its `recv` case, whose receive waits for
    /// this thread's `send` (or [`abort_send`](Self::abort_send), or the
    /// close).
    ///
    /// Also called for a send case that the receiver claimed (a select
    /// reserves the case it returns, whoever chose it): the claim names
    /// this thread, and holds. Always under the lock: the receiver records
    /// its claim under the lock after winning our claim word, so the
    /// mirrors could still say "no claim" here.
    pub(crate) fn reserve_send(&self) -> bool {
        if Core::is_closed(self) {
            return true;
        }
        let mut inner = self.inner.lock();
        if inner.closed {
            return true;
        }
        let me = thread::current().id();
        // A receiver committed already: to us (it claimed our offer), or
        // to another sender (claimed, or a message delivered to it), and
        // then its listed offers are stale.
        if let Some(claim) = &inner.claim {
            return claim.sender == me;
        }
        if inner.delivered.is_some() {
            return false;
        }
        let claimed = self.claim_offer(
            &mut inner,
            |inner| &mut inner.offers,
            |offer| Claim {
                sender: me,
                receiver: offer.waiter.thread().clone(),
            },
        );
        drop(inner);
        let Some(offer) = claimed else { return false };
        offer.waiter.unpark();
        true
    }

    /// A claimed sender will not send (see the module docs): withdraws the
    /// claim, if this thread is the claimed sender, and wakes the receiver.
    pub(crate) fn abort_send(&self) {
        // Always under the lock: the receiver records its claim under the
        // lock after winning the sender's claim word, so a mirror could
        // still say "no claim" here.
        let mut inner = self.inner.lock();
        let me = thread::current().id();
        if inner.claim.as_ref().is_some_and(|c| c.sender == me) {
            let claim = inner.claim.take().expect("checked above");
            self.sync_counts(&inner);
            drop(inner);
            claim.receiver.unpark();
        }
    }

    /// Registers a selecting sender's offer for case `tag`, and wakes the
    /// receiver if it waits in a select (its offers are listed).
    pub(crate) fn register_send(&self, waiter: &Arc<Waiter>, tag: usize) {
        let offering: Vec<Arc<Waiter>> = {
            let mut inner = self.inner.lock();
            inner.send_offers.push(Offer {
                waiter: waiter.clone(),
                tag,
            });
            self.sync_counts(&inner);
            let me = thread::current().id();
            inner
                .offers
                .iter()
                .filter(|o| o.foreign_and_open(me))
                .map(|o| o.waiter.clone())
                .collect()
        };
        offering.iter().for_each(|w| w.unpark());
    }

    /// Withdraws the send offers of `waiter` that the receiver did not
    /// claim.
    pub(crate) fn unregister_send(&self, waiter: &Arc<Waiter>) {
        let mut inner = self.inner.lock();
        inner
            .send_offers
            .retain(|o| !Arc::ptr_eq(&o.waiter, waiter));
        self.sync_counts(&inner);
    }

    pub(crate) fn send_select_queue(&self) -> &WaitQueue {
        &self.send_select
    }

    /// Registers the receiver's offer for select case `tag`, and tells the
    /// selecting senders.
    pub(crate) fn register(&self, waiter: &Arc<Waiter>, tag: usize) {
        {
            let mut inner = self.inner.lock();
            inner.offers.push(Offer {
                waiter: waiter.clone(),
                tag,
            });
            self.sync_counts(&inner);
        }
        self.send_select.notify_all();
    }

    /// Withdraws the offers of `waiter` that no sender claimed.
    pub(crate) fn unregister(&self, waiter: &Arc<Waiter>) {
        let mut inner = self.inner.lock();
        inner.offers.retain(|o| !Arc::ptr_eq(&o.waiter, waiter));
        self.sync_counts(&inner);
    }

    /// `try`: only meet a receiver already offering. Otherwise queue and
    /// wait until `deadline`.
    pub(crate) fn send(
        &self,
        msg: T,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<(), SendTimeoutError<T>> {
        self.meet(msg, deadline, wait, false)
    }

    /// `send`; with `last`, the meeting also closes the channel, under the
    /// same lock, so that no other sender's message can follow.
    fn meet(
        &self,
        msg: T,
        deadline: Option<Instant>,
        wait: bool,
        last: bool,
    ) -> Result<(), SendTimeoutError<T>> {
        // A `send_many` of ours whose iterator called us goes first.
        chan::flush_batches(self.pending_key(), true);
        if !wait
            && self.offers_waiting.load(Ordering::Relaxed) == 0
            && !self.claimed.load(Ordering::Relaxed)
        {
            return if Core::is_closed(self) {
                Err(SendTimeoutError::Closed(msg))
            } else {
                Err(SendTimeoutError::Timeout(msg))
            };
        }
        let packet = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err(SendTimeoutError::Closed(msg));
            }
            if let Some(receiver) = self.waiting_receiver(&mut inner) {
                inner.delivered = Some(msg);
                let closed = if last {
                    self.close_locked(&mut inner)
                } else {
                    None
                };
                self.sync_counts(&inner);
                drop(inner);
                receiver.unpark();
                self.wake_closed(closed);
                return Ok(());
            }
            // Stale offers may have been unlisted.
            self.sync_counts(&inner);
            if !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendTimeoutError::Timeout(msg));
            }
            let packet = Packet::new(msg, last);
            inner.senders.push_back(packet.clone());
            self.sync_counts(&inner);
            packet
        };
        if !packet.wait(deadline) {
            // Timed out: take the message back unless the receiver got it.
            let mut inner = self.inner.lock();
            if let Some(i) = inner.senders.iter().position(|p| Arc::ptr_eq(p, &packet)) {
                inner.senders.remove(i);
                self.sync_counts(&inner);
                // SAFETY: we removed our packet from the list under the lock.
                let msg = unsafe { packet.take() }.expect("an untaken packet holds its message");
                return Err(SendTimeoutError::Timeout(msg));
            }
            // Not listed: whoever removed it marked it under the lock we
            // now hold, so the state below is final.
        }
        match packet.state.load(Ordering::Acquire) {
            DONE => Ok(()),
            // SAFETY: the closer removed the packet and set its state, which
            // we acquired; nobody else touches it now.
            _ => Err(SendTimeoutError::Closed(
                unsafe { packet.take() }.expect("a closed packet keeps its message"),
            )),
        }
    }

    /// The receiver waiting for a message of this thread: it claimed this
    /// thread's select offer, or we claim the first of its offers whose
    /// waiter is still free (the others of a waiter that committed
    /// elsewhere are stale). The caller delivers to it and wakes it.
    fn waiting_receiver(&self, inner: &mut ZeroInner<T>) -> Option<thread::Thread> {
        let me = thread::current().id();
        if inner.claim.as_ref().is_some_and(|c| c.sender == me) {
            let claim = inner.claim.take().expect("checked above");
            debug_assert!(inner.delivered.is_none(), "a claim waits for an empty slot");
            Some(claim.receiver)
        } else if inner.delivered.is_none() {
            claim_first(&mut inner.offers, me).map(|o| o.waiter.thread().clone())
        } else {
            None
        }
    }

    /// `send_many`: a loop of `send` whose messages wait for the receiver
    /// together, up to [`MAX_BATCH`] in one packet that the receiver takes
    /// from message by message (`recv_many` takes a run of them under one
    /// lock); it returns once the receiver took the last of them. The
    /// iterator runs only while no message of ours waits, and the batch it
    /// fills is a [`chan::Batch`] (see there for an iterator that calls
    /// into this channel, panics or waits for its next item).
    pub(crate) fn send_many(
        &self,
        iter: &mut impl Iterator<Item = T>,
    ) -> Result<usize, SendError<Vec<T>>> {
        let batch = chan::Batch::new(self);
        let _registered = batch.register();
        let mut msgs = Vec::new();
        let mut taken = 0;
        loop {
            let (n, ended) = batch.collect(iter, MAX_BATCH, || Core::is_closed(self));
            taken += n;
            batch.take_into(&mut msgs);
            if !msgs.is_empty() {
                self.meet_many(&mut msgs).map_err(SendError)?;
            }
            if ended {
                return Ok(taken);
            }
        }
    }

    /// Hands `msgs` (taken out, leaving it empty) to the receiver and waits
    /// until it took the last; on a close, the ones it did not take come
    /// back.
    fn meet_many(&self, msgs: &mut Vec<T>) -> Result<(), Vec<T>> {
        let mut rest: VecDeque<T> = std::mem::take(msgs).into();
        let packet = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err(rest.into());
            }
            // The first to a receiver waiting for it, as `send` does.
            let receiver = self.waiting_receiver(&mut inner);
            if receiver.is_some() {
                inner.delivered = rest.pop_front();
            }
            let packet = rest.pop_front().map(|first| {
                let packet = Packet::batch(first, rest, false);
                inner.senders.push_back(packet.clone());
                packet
            });
            self.sync_counts(&inner);
            drop(inner);
            if let Some(receiver) = receiver {
                receiver.unpark();
            }
            match packet {
                Some(packet) => packet,
                None => return Ok(()),
            }
        };
        packet.wait(None);
        match packet.state.load(Ordering::Acquire) {
            DONE => Ok(()),
            // SAFETY: the closer removed the packet and set its state, which
            // we acquired; nobody else touches it now.
            _ => Err(unsafe { packet.take_all() }),
        }
    }

    /// `recv_many` after its first message: takes up to `max` messages of
    /// waiting senders, in their order, under one lock (the senders whose
    /// last message it took are woken after). Nothing if a delivered
    /// message or a claimed sender comes first (`take_locked`'s order).
    pub(crate) fn take_run(&self, buf: &mut Vec<T>, max: usize) -> usize {
        if max == 0 || self.senders_waiting.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut done = Vec::new();
        let mut closed = None;
        let mut n = 0;
        {
            let mut inner = self.inner.lock();
            if inner.delivered.is_some() || inner.claim.is_some() {
                return 0;
            }
            while n < max {
                let Some(front) = inner.senders.front() else {
                    break;
                };
                // SAFETY: the sender's packet is listed and we hold the lock.
                let (msg, more) = unsafe { front.take_next() };
                buf.push(msg.expect("a waiting sender holds its message"));
                n += 1;
                if !more {
                    let sender = inner.senders.pop_front().expect("listed above");
                    sender.mark(DONE);
                    let last = sender.last;
                    done.push(sender);
                    if last {
                        closed = self.close_locked(&mut inner);
                        break;
                    }
                }
            }
            self.sync_counts(&inner);
        }
        done.iter().for_each(|p| p.thread.unpark());
        self.wake_closed(closed);
        n
    }

    /// Takes a delivered message or a waiting sender's: `None` if there is
    /// neither and the channel is open. A selecting sender's offer is
    /// claimed, and its message waited for (see the module docs), as
    /// crossbeam's and Go's non-blocking receives do. `look`: take the lock
    /// even if the mirrors say there is nothing (after a claim of our
    /// offer, whose claimant may not have updated them yet: it fills
    /// `delivered` under the lock it holds while it claims).
    fn try_take(&self, look: bool) -> Option<Result<T, RecvTimeoutError>> {
        if !look && !self.reserve_recv() {
            return None;
        }
        loop {
            match self.take_locked() {
                Taken::Claimed => self.wait_for_claimed(),
                Taken::Nothing => return None,
                Taken::Done(result) => return Some(result),
            }
        }
    }

    /// Waits until the sender whose offer we claimed delivers (or aborts,
    /// or the channel closes): the claim is withdrawn under the lock, and
    /// its receiver unparked.
    fn wait_for_claimed(&self) {
        park::block_on_any(
            &[],
            None,
            None,
            park::Pace::Spin,
            || (!self.claimed.load(Ordering::Acquire)).then_some((None, ())),
            |_| unreachable!("no offers registered"),
        );
    }

    fn take_locked(&self) -> Taken<T> {
        let mut inner = self.inner.lock();
        if let Some(msg) = inner.delivered.take() {
            self.sync_counts(&inner);
            return Taken::Done(Ok(msg));
        }
        // A claim first: the receiver committed to that sender's message
        // (a queued sender's waits for the next receive).
        if inner.claim.is_some() {
            return Taken::Claimed;
        }
        if let Some(front) = inner.senders.front() {
            // SAFETY: the sender's packet is listed and we hold the lock.
            let (msg, more) = unsafe { front.take_next() };
            let msg = msg.expect("a waiting sender holds its message");
            if more {
                // A batch (`send_many`) with messages left: it stays first.
                return Taken::Done(Ok(msg));
            }
            let sender = inner.senders.pop_front().expect("listed above");
            self.sync_counts(&inner);
            sender.mark(DONE);
            let closed = if sender.last {
                self.close_locked(&mut inner)
            } else {
                None
            };
            drop(inner);
            sender.thread.unpark();
            self.wake_closed(closed);
            return Taken::Done(Ok(msg));
        }
        if inner.closed {
            Taken::Done(Err(RecvTimeoutError::Closed))
        } else {
            Taken::Nothing
        }
    }

    pub(crate) fn recv(
        &self,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<T, RecvTimeoutError> {
        loop {
            if let Some(result) = self.try_take(wait) {
                return result;
            }
            if !wait {
                return Err(RecvTimeoutError::Timeout);
            }
            // A select of one case: offer, and wait to be claimed (or for a
            // sender to queue, or the close).
            let case = RecvCase(self);
            if select::run(&[&case], true, Wait::Until(deadline), true).is_none() {
                return self
                    .try_take(true)
                    .unwrap_or(Err(RecvTimeoutError::Timeout));
            }
        }
    }

    /// Closes under the lock: `None` if already closed, else the packets
    /// (all marked `CLOSED`) and the offering waiters, which the caller
    /// wakes after unlocking with [`wake_closed`](Self::wake_closed).
    fn close_locked(&self, inner: &mut ZeroInner<T>) -> Option<Closed<T>> {
        if inner.closed {
            return None;
        }
        inner.closed = true;
        self.closed.store(true, Ordering::Release);
        let packets: Vec<_> = inner.senders.drain(..).collect();
        for p in &packets {
            p.mark(CLOSED);
        }
        // Offers stay listed (their waiters withdraw them); the waiters
        // wake and find the channel closed (a selecting sender's offer
        // included: its select has no queue to be told through).
        let offering = inner
            .offers
            .iter()
            .chain(&inner.send_offers)
            .map(|o| o.waiter.clone())
            .collect();
        // A claimed sender's send now fails with `Closed`.
        let claimant = inner.claim.take().map(|c| c.receiver);
        self.sync_counts(inner);
        Some(Closed {
            packets,
            offering,
            claimant,
        })
    }

    /// After [`close_locked`](Self::close_locked) and unlocking: wakes what
    /// it marked, and every select on the senders. `true` if this call
    /// closed.
    fn wake_closed(&self, closed: Option<Closed<T>>) -> bool {
        match closed {
            Some(c) => {
                c.packets.iter().for_each(|p| p.thread.unpark());
                c.offering.iter().for_each(|w| w.unpark());
                if let Some(t) = &c.claimant {
                    t.unpark();
                }
                self.send_select.notify_all();
                true
            }
            None => false,
        }
    }

    /// Waits for the receiver like `send`; the meeting closes the channel.
    pub(crate) fn close_with(&self, msg: T) -> Result<(), SendError<T>> {
        self.meet(msg, None, true, true)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// The receiver's drop: closes, and drops a message delivered to it
    /// but not yet received.
    pub(crate) fn close_and_drain(&self) {
        // A `send_many` of ours whose iterator drops the receiver: nobody
        // can take its messages now (nothing to wait for); it finds the
        // channel closed.
        // One critical section for both (a channel made and dropped at
        // once paid for a lock per step).
        let (closed, delivered) = {
            let mut inner = self.inner.lock();
            let closed = self.close_locked(&mut inner);
            let delivered = inner.delivered.take();
            self.sync_counts(&inner);
            (closed, delivered)
        };
        self.wake_closed(closed);
        drop(delivered);
    }
}

/// What a close must wake.
struct Closed<T> {
    packets: Vec<Arc<Packet<T>>>,
    offering: Vec<Arc<Waiter>>,
    /// The receiver waiting for a claimed sender.
    claimant: Option<thread::Thread>,
}

/// What [`Zero::take_locked`] found.
enum Taken<T> {
    /// A message, or `Closed`.
    Done(Result<T, RecvTimeoutError>),
    /// Nothing yet, but a claimed sender is on its way.
    Claimed,
    Nothing,
}

/// The receive of a rendezvous channel as a select case (a plain `recv`
/// selects on it alone; the receiver handle's own case delegates here).
pub(crate) struct RecvCase<'a, T>(pub(crate) &'a Zero<T>);

impl<T> Case for RecvCase<'_, T> {
    fn ready(&self) -> bool {
        self.0.recv_ready()
    }

    fn reserve(&self, _complete: bool) -> bool {
        self.0.reserve_recv()
    }

    fn queue(&self) -> Option<&WaitQueue> {
        None
    }

    fn addr(&self) -> *const () {
        self.0 as *const Zero<T> as *const ()
    }

    fn offers(&self) -> bool {
        true
    }

    fn register(&self, waiter: &Arc<Waiter>, tag: usize, _complete: bool) {
        self.0.register(waiter, tag);
    }

    fn unregister(&self, waiter: &Arc<Waiter>) {
        self.0.unregister(waiter);
    }
}

impl<T> Core for Zero<T> {
    fn len(&self) -> usize {
        0
    }

    fn capacity(&self) -> usize {
        0
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn dropped(&self) -> u64 {
        0
    }

    fn overflow(&self) -> Overflow {
        Overflow::Block
    }

    fn close(&self) -> bool {
        // `closed` is set under the lock and never cleared: a channel that
        // is closed already (the last sender's drop after the receiver's)
        // needs no lock to answer `false`.
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        // A `send_many` of ours whose iterator closes: its messages go to a
        // receiver waiting for them, if there is one, before the close.
        chan::flush_batches(self.pending_key(), false);
        let closed = self.close_locked(&mut self.inner.lock());
        self.wake_closed(closed)
    }
}

/// The sending side as [`chan::Batch`] sees it (`send_many`'s flushes).
impl<T> Sending<T> for Zero<T> {
    /// Meets a receiver waiting for it, or fails `Full`.
    fn try_send_as(&self, msg: T, mode: SendMode) -> Result<(), TrySendError<T>> {
        debug_assert!(
            mode != SendMode::Last,
            "close_with meets through `close_with`"
        );
        self.send(msg, None, false).map_err(|e| match e {
            SendTimeoutError::Timeout(m) => TrySendError::Full(m),
            SendTimeoutError::Closed(m) => TrySendError::Closed(m),
        })
    }

    /// Not waited on: a blocking send queues its message instead
    /// (`send_blocking`).
    fn send_queue(&self) -> &WaitQueue {
        &self.send_select
    }

    fn send_blocking(&self, msg: T) -> Result<(), SendTimeoutError<T>> {
        self.send(msg, None, true)
    }
}
