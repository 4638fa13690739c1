//! The MPSC rendezvous flavour (capacity 0), described in the module docs
//! of `mpsc`.

use crate::chan::Core;
use crate::error::{RecvTimeoutError, SendError, SendTimeoutError};
use crate::park;
use crate::sync::{thread, Arc, AtomicU8, AtomicUsize, Mutex, Ordering, UnsafeCell};
use crate::Overflow;
use std::time::Instant;

const WAITING: u8 = 0;
/// A sender's packet: the receiver took the message. A receiver's packet:
/// a sender put a message in.
const DONE: u8 = 1;
/// The channel closed while the packet waited.
const CLOSED: u8 = 2;

/// A thread waiting to meet the other side; the message travels through
/// `msg`. Owned by the waiting thread and the list entry (an `Arc`).
struct Packet<T> {
    state: AtomicU8,
    msg: UnsafeCell<Option<T>>,
    thread: thread::Thread,
    /// A sender's `close_with`: taking this message closes the channel.
    last: bool,
}

impl<T> Packet<T> {
    fn new(msg: Option<T>, last: bool) -> Arc<Self> {
        Arc::new(Packet {
            state: AtomicU8::new(WAITING),
            msg: UnsafeCell::new(msg),
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

    /// # Safety
    ///
    /// As for [`take`](Self::take).
    unsafe fn put(&self, msg: T) {
        // SAFETY: guaranteed by the caller.
        self.msg.with_mut(|p| unsafe { *p = Some(msg) });
    }

    /// Marks the packet (the caller removed it from the list under the
    /// lock). The caller then wakes it with [`wake`](Self::wake) after
    /// releasing the lock, so that the woken thread does not block on it.
    fn mark(&self, state: u8) {
        // Release: the message (taken or put) is visible to the owner.
        self.state.store(state, Ordering::Release);
    }

    fn wake(&self) {
        self.thread.unpark();
    }
}

struct ZeroInner<T> {
    /// Senders waiting for the receiver, oldest first.
    senders: std::collections::VecDeque<Arc<Packet<T>>>,
    /// The receiver, waiting for a sender.
    receiver: Option<Arc<Packet<T>>>,
    closed: bool,
}

pub(crate) struct Zero<T> {
    inner: Mutex<ZeroInner<T>>,
    /// Mirrors of the list state, so that `try_*` calls that meet nobody
    /// return without the lock. Written under the lock.
    senders_waiting: AtomicUsize,
    receiver_waiting: AtomicUsize,
    closed: AtomicUsize,
}

// SAFETY: messages move between threads inside packets, accessed under the
// lock or after the packet's state hand-off; `T: Send` suffices.
unsafe impl<T: Send> Send for Zero<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Zero<T> {}

impl<T> Zero<T> {
    pub(crate) fn new() -> Self {
        Zero {
            inner: Mutex::new(ZeroInner {
                senders: std::collections::VecDeque::new(),
                receiver: None,
                closed: false,
            }),
            senders_waiting: AtomicUsize::new(0),
            receiver_waiting: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
        }
    }

    fn sync_counts(&self, inner: &ZeroInner<T>) {
        self.senders_waiting
            .store(inner.senders.len(), Ordering::Relaxed);
        self.receiver_waiting
            .store(usize::from(inner.receiver.is_some()), Ordering::Relaxed);
    }

    /// `try`: only meet a receiver already waiting. Otherwise queue and wait
    /// until `deadline`.
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
        if !wait && self.receiver_waiting.load(Ordering::Relaxed) == 0 {
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
            if let Some(receiver) = inner.receiver.take() {
                self.sync_counts(&inner);
                // SAFETY: the receiver's packet is listed and we hold the lock.
                unsafe { receiver.put(msg) };
                receiver.mark(DONE);
                let closed = if last {
                    self.close_locked(&mut inner)
                } else {
                    None
                };
                drop(inner);
                receiver.wake();
                closed.into_iter().flatten().for_each(|p| p.wake());
                return Ok(());
            }
            if !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendTimeoutError::Timeout(msg));
            }
            let packet = Packet::new(Some(msg), last);
            inner.senders.push_back(packet.clone());
            self.sync_counts(&inner);
            packet
        };
        let done = park::wait_for(deadline, || packet.state.load(Ordering::Acquire) != WAITING);
        if !done {
            // Timed out: take the message back unless the receiver got it.
            let mut inner = self.inner.lock();
            if let Some(i) = inner.senders.iter().position(|p| Arc::ptr_eq(p, &packet)) {
                inner.senders.remove(i);
                self.sync_counts(&inner);
                // SAFETY: we removed our packet from the list under the lock.
                let msg = unsafe { packet.take() }.expect("an untaken packet holds its message");
                return Err(SendTimeoutError::Timeout(msg));
            }
        }
        // Out of the list: the state was set before the removal was visible.
        park::wait_for(None, || packet.state.load(Ordering::Acquire) != WAITING);
        match packet.state.load(Ordering::Acquire) {
            DONE => Ok(()),
            // SAFETY: the closer removed the packet and set its state, which
            // we acquired; nobody else touches it now.
            _ => Err(SendTimeoutError::Closed(
                unsafe { packet.take() }.expect("a closed packet keeps its message"),
            )),
        }
    }

    pub(crate) fn recv(
        &self,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<T, RecvTimeoutError> {
        if !wait && self.senders_waiting.load(Ordering::Relaxed) == 0 {
            return if Core::is_closed(self) {
                Err(RecvTimeoutError::Closed)
            } else {
                Err(RecvTimeoutError::Timeout)
            };
        }
        let packet = {
            let mut inner = self.inner.lock();
            if let Some(sender) = inner.senders.pop_front() {
                self.sync_counts(&inner);
                // SAFETY: the sender's packet was listed and we hold the lock.
                let msg = unsafe { sender.take() }.expect("a waiting sender holds its message");
                sender.mark(DONE);
                let closed = if sender.last {
                    self.close_locked(&mut inner)
                } else {
                    None
                };
                drop(inner);
                sender.wake();
                closed.into_iter().flatten().for_each(|p| p.wake());
                return Ok(msg);
            }
            if inner.closed {
                return Err(RecvTimeoutError::Closed);
            }
            if !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            let packet = Packet::new(None, false);
            inner.receiver = Some(packet.clone());
            self.sync_counts(&inner);
            packet
        };
        let done = park::wait_for(deadline, || packet.state.load(Ordering::Acquire) != WAITING);
        if !done {
            let mut inner = self.inner.lock();
            if inner
                .receiver
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(p, &packet))
            {
                inner.receiver = None;
                self.sync_counts(&inner);
                return Err(RecvTimeoutError::Timeout);
            }
        }
        park::wait_for(None, || packet.state.load(Ordering::Acquire) != WAITING);
        match packet.state.load(Ordering::Acquire) {
            // SAFETY: the sender put the message, removed our packet and set
            // its state, which we acquired.
            DONE => Ok(unsafe { packet.take() }.expect("a finished packet holds a message")),
            _ => Err(RecvTimeoutError::Closed),
        }
    }

    /// Closes under the lock: `None` if already closed, else the packets
    /// (all marked `CLOSED`) that the caller wakes after unlocking.
    fn close_locked(&self, inner: &mut ZeroInner<T>) -> Option<Vec<Arc<Packet<T>>>> {
        if inner.closed {
            return None;
        }
        inner.closed = true;
        self.closed.store(1, Ordering::Release);
        let mut packets: Vec<_> = inner.senders.drain(..).collect();
        packets.extend(inner.receiver.take());
        for p in &packets {
            p.mark(CLOSED);
        }
        self.sync_counts(inner);
        Some(packets)
    }

    /// Waits for the receiver like `send`; the meeting closes the channel.
    pub(crate) fn close_with(&self, msg: T) -> Result<(), SendError<T>> {
        self.meet(msg, None, true, true)
            .map_err(|e| SendError(e.into_inner()))
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
        self.closed.load(Ordering::Acquire) != 0
    }

    fn dropped(&self) -> u64 {
        0
    }

    fn overflow(&self) -> Overflow {
        Overflow::Block
    }

    fn close(&self) -> bool {
        let closed = self.close_locked(&mut self.inner.lock());
        match closed {
            Some(packets) => {
                packets.iter().for_each(|p| p.wake());
                true
            }
            None => false,
        }
    }
}
