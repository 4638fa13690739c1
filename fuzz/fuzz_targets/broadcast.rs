//! Model-based fuzz target for `rillet::broadcast`: an arbitrary sequence of
//! operations over a changing set of senders and subscribers is applied to a
//! real channel and to a model with one `VecDeque` and one pending lag count
//! per live subscriber; every result must match. Messages count their live
//! instances (originals and clones): after every step the channel holds
//! exactly the messages some subscriber has still to receive, and at the end
//! every instance has been dropped exactly once.
//!
//! Run: `cargo +nightly fuzz run broadcast -- -max_total_time=30`

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rillet::broadcast::{self, RecvError, RecvTimeoutError, TryRecvError};
use rillet::{Overflow, SendError, SendTimeoutError, TrySendError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Policy {
    Block,
    DropOldest,
}

/// Sender indices are taken modulo the number of live senders, subscriber
/// indices modulo the number of live subscribers; an op is skipped when no
/// handle of its kind is alive.
#[derive(Arbitrary, Debug)]
enum Op {
    TrySend(u8),
    SendZeroTimeout(u8),
    /// Blocking `send`, only run when it cannot wait.
    Send(u8),
    SendMany(u8, u8),
    TryRecv(u8),
    RecvZeroTimeout(u8),
    /// Blocking `recv`, only run when it cannot wait.
    Recv(u8),
    RecvMany(u8, u8),
    TryIter(u8, u8),
    Subscribe(u8),
    CloneRx(u8),
    DropRx(u8),
    CloseTx(u8),
    CloseRx(u8),
    CloseWith(u8),
    CloneSender(u8),
    DropSender(u8),
    Introspect,
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    policy: Policy,
    /// Drain at the end, or drop the subscribers with messages still
    /// buffered (leaving must release each of them once).
    drain: bool,
    ops: Vec<Op>,
}

/// A message that counts its live instances: +1 on creation and clone, -1
/// on drop.
#[derive(Debug)]
struct Msg {
    id: u32,
    live: Arc<AtomicUsize>,
}

impl Msg {
    fn new(id: u32, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Msg {
            id,
            live: live.clone(),
        }
    }
}

impl Clone for Msg {
    fn clone(&self) -> Self {
        Msg::new(self.id, &self.live)
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        let before = self.live.fetch_sub(1, Ordering::Relaxed);
        assert!(
            before > 0,
            "message {} dropped more often than made",
            self.id
        );
    }
}

/// One live subscriber: what it has still to receive, and how many messages
/// it lost to evictions since its last receive.
#[derive(Debug, Clone, Default)]
struct Sub {
    q: VecDeque<u32>,
    lag: u64,
}

struct Model {
    subs: Vec<Sub>,
    cap: usize,
    policy: Overflow,
    closed: bool,
    dropped: u64,
}

impl Model {
    /// Messages held: the queues are suffixes of what was sent, so their
    /// union is the longest one.
    fn held(&self) -> usize {
        self.subs.iter().map(|s| s.q.len()).max().unwrap_or(0)
    }

    fn full(&self) -> bool {
        self.held() == self.cap
    }

    /// Whether a blocking send would wait forever on this single thread.
    fn send_would_block(&self) -> bool {
        !self.closed && self.policy == Overflow::Block && self.full()
    }

    /// Whether a blocking receive by subscriber `i` would wait forever.
    fn recv_would_block(&self, i: usize) -> bool {
        let s = &self.subs[i];
        !self.closed && s.lag == 0 && s.q.is_empty()
    }

    /// Enqueues ignoring close; `false` when full under Block. Under
    /// DropOldest the oldest message is evicted (counted once) from every
    /// subscriber that still had it, which lags by one more.
    fn push(&mut self, id: u32) -> bool {
        if self.full() {
            if self.policy == Overflow::Block {
                return false;
            }
            self.dropped += 1;
            for s in &mut self.subs {
                if s.q.len() == self.cap {
                    s.q.pop_front();
                    s.lag += 1;
                }
            }
        }
        for s in &mut self.subs {
            s.q.push_back(id);
        }
        true
    }

    /// What a sender's `try_send` must return.
    fn try_send(&mut self, id: u32) -> Result<(), TrySendError<u32>> {
        if self.closed {
            Err(TrySendError::Closed(id))
        } else if self.push(id) {
            Ok(())
        } else {
            Err(TrySendError::Full(id))
        }
    }

    fn try_recv(&mut self, i: usize) -> Result<u32, TryRecvError> {
        let s = &mut self.subs[i];
        if s.lag > 0 {
            return Err(TryRecvError::Lagged(std::mem::take(&mut s.lag)));
        }
        match s.q.pop_front() {
            Some(id) => Ok(id),
            None if self.closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    fn close(&mut self) -> bool {
        !std::mem::replace(&mut self.closed, true)
    }
}

fn pick(len: usize, i: u8) -> Option<usize> {
    (len > 0).then(|| usize::from(i) % len)
}

fuzz_target!(|input: Input| {
    let cap = 1 + usize::from(input.capacity % 8);
    let policy = match input.policy {
        Policy::Block => Overflow::Block,
        Policy::DropOldest => Overflow::DropOldest,
    };
    let live = Arc::new(AtomicUsize::new(0));
    let mut created = 0u32;
    let mut new_msg = || {
        created += 1;
        Msg::new(created, &live)
    };
    let (tx, rx) = broadcast::Builder::new(cap).overflow(policy).build::<Msg>();
    let mut txs = vec![tx];
    let mut rxs = vec![rx];
    let mut m = Model {
        subs: vec![Sub::default()],
        cap,
        policy,
        closed: false,
        dropped: 0,
    };

    for op in input.ops.iter().take(512) {
        match *op {
            Op::TrySend(i) | Op::SendZeroTimeout(i) | Op::Send(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                if matches!(op, Op::Send(_)) && m.send_would_block() {
                    continue; // would wait forever on one thread
                }
                let tx = &txs[i];
                let msg = new_msg();
                let id = msg.id;
                // Every outcome as a `try_send` result, with the id of the
                // message handed back.
                let got = match op {
                    Op::TrySend(_) => tx.try_send(msg).map_err(|e| match e {
                        TrySendError::Full(b) => TrySendError::Full(b.id),
                        TrySendError::Closed(b) => TrySendError::Closed(b.id),
                    }),
                    Op::SendZeroTimeout(_) => {
                        tx.send_timeout(msg, Duration::ZERO).map_err(|e| match e {
                            SendTimeoutError::Timeout(b) => TrySendError::Full(b.id),
                            SendTimeoutError::Closed(b) => TrySendError::Closed(b.id),
                        })
                    }
                    _ => tx
                        .send(msg)
                        .map_err(|SendError(b)| TrySendError::Closed(b.id)),
                };
                assert_eq!(got, m.try_send(id));
            }
            Op::SendMany(i, k) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                let k = usize::from(k % 12);
                if policy == Overflow::Block && !m.closed && m.held() + k > cap {
                    continue; // would wait forever on one thread
                }
                let msgs: Vec<Msg> = (0..k).map(|_| new_msg()).collect();
                let ids: Vec<u32> = msgs.iter().map(|m| m.id).collect();
                match txs[i].send_many(msgs) {
                    Ok(n) => {
                        // An empty batch succeeds even on a closed channel,
                        // like an empty loop of sends.
                        assert!(!m.closed || k == 0);
                        assert_eq!(n, k);
                        for id in ids {
                            assert!(m.push(id));
                        }
                    }
                    Err(SendError(back)) => {
                        // A loop of `send`: the first message fails and
                        // comes back; the rest are never taken.
                        assert!(m.closed);
                        assert_eq!(back.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..1]);
                    }
                }
            }
            Op::TryRecv(i) | Op::RecvZeroTimeout(i) | Op::Recv(i) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                if matches!(op, Op::Recv(_)) && m.recv_would_block(i) {
                    continue; // would wait forever on one thread
                }
                let rx = &rxs[i];
                // Every outcome as a `try_recv` result.
                let got = match op {
                    Op::TryRecv(_) => rx.try_recv().map(|m| m.id),
                    Op::RecvZeroTimeout(_) => rx
                        .recv_timeout(Duration::ZERO)
                        .map(|m| m.id)
                        .map_err(|e| match e {
                            RecvTimeoutError::Timeout => TryRecvError::Empty,
                            RecvTimeoutError::Closed => TryRecvError::Closed,
                            RecvTimeoutError::Lagged(n) => TryRecvError::Lagged(n),
                        }),
                    _ => rx.recv().map(|m| m.id).map_err(TryRecvError::from),
                };
                assert_eq!(got, m.try_recv(i));
            }
            Op::RecvMany(i, max) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                let max = usize::from(max % 12);
                if max > 0 && m.recv_would_block(i) {
                    continue; // would wait forever on one thread
                }
                let mut buf = vec![Msg::new(0, &live)];
                let got = rxs[i].recv_many(&mut buf, max);
                let got_ids: Vec<u32> = buf.iter().map(|m| m.id).collect();
                if max == 0 {
                    // Returns at once: not even a pending lag is reported.
                    assert_eq!(got, Ok(0));
                    assert_eq!(got_ids, [0]);
                    continue;
                }
                // A lag before the first message is the error; after it, on
                // one thread, no new gap can open.
                match m.try_recv(i) {
                    Ok(first) => {
                        let q = &mut m.subs[i].q;
                        let rest = q.len().min(max - 1);
                        let mut want = vec![0, first];
                        want.extend(q.drain(..rest));
                        assert_eq!(got, Ok(rest + 1));
                        assert_eq!(got_ids, want);
                    }
                    Err(e) => {
                        let want = match e {
                            TryRecvError::Closed => RecvError::Closed,
                            TryRecvError::Lagged(n) => RecvError::Lagged(n),
                            TryRecvError::Empty => unreachable!("checked above"),
                        };
                        assert_eq!(got, Err(want));
                        assert_eq!(got_ids, [0]);
                    }
                }
            }
            Op::TryIter(i, n) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                let n = usize::from(n % 12);
                let got: Vec<u32> = rxs[i].try_iter().take(n).map(|m| m.id).collect();
                // The iterator skips a lag gap (when asked for anything).
                if n > 0 {
                    m.subs[i].lag = 0;
                }
                let q = &mut m.subs[i].q;
                let k = q.len().min(n);
                assert_eq!(got, q.drain(..k).collect::<Vec<_>>());
            }
            Op::Subscribe(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                rxs.push(txs[i].subscribe());
                m.subs.push(Sub::default());
            }
            Op::CloneRx(i) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                let clone = rxs[i].clone();
                rxs.push(clone);
                m.subs.push(m.subs[i].clone());
            }
            Op::DropRx(i) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                drop(rxs.remove(i));
                m.subs.remove(i);
                if m.subs.is_empty() {
                    m.closed = true; // the last subscriber closes the channel
                }
            }
            Op::CloseTx(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                assert_eq!(txs[i].close(), m.close());
            }
            Op::CloseRx(i) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                assert_eq!(rxs[i].close(), m.close());
            }
            Op::CloseWith(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                if m.send_would_block() {
                    continue; // would wait for room forever
                }
                let sender = txs.remove(i);
                let msg = new_msg();
                let id = msg.id;
                match sender.close_with(msg) {
                    Ok(()) => {
                        assert!(!m.closed);
                        assert!(m.push(id));
                        m.closed = true;
                    }
                    Err(SendError(b)) => {
                        assert!(m.closed);
                        assert_eq!(b.id, id);
                    }
                }
            }
            Op::CloneSender(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                let clone = txs[i].clone();
                txs.push(clone);
            }
            Op::DropSender(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                drop(txs.remove(i));
                if txs.is_empty() {
                    m.closed = true; // the last sender closes the channel
                }
            }
            Op::Introspect => {
                for (rx, s) in rxs.iter().zip(&m.subs) {
                    assert_eq!(rx.len(), s.q.len());
                    assert_eq!(rx.is_empty(), s.q.is_empty());
                    assert_eq!(rx.is_full(), s.q.len() == cap);
                    assert_eq!(rx.receiver_count(), m.subs.len());
                    assert_eq!(rx.capacity(), cap);
                    assert_eq!(rx.overflow(), policy);
                }
                for tx in &txs {
                    assert_eq!(tx.len(), m.held());
                    assert_eq!(tx.is_empty(), m.held() == 0);
                    assert_eq!(tx.is_full(), m.full());
                    assert_eq!(tx.receiver_count(), m.subs.len());
                    assert_eq!(tx.capacity(), cap);
                    assert_eq!(tx.overflow(), policy);
                }
            }
        }
        assert_eq!(rxs.len(), m.subs.len());
        for rx in &rxs {
            assert_eq!(rx.dropped(), m.dropped);
            assert_eq!(rx.is_closed(), m.closed);
        }
        for tx in &txs {
            assert_eq!(tx.dropped(), m.dropped);
            assert_eq!(tx.is_closed(), m.closed);
        }
        // A message passed by every subscriber, or evicted, is dropped at
        // once: the channel holds one instance per message still owed.
        assert_eq!(live.load(Ordering::Relaxed), m.held());
    }

    // No sender left: closed. Drain (or not), then every instance ever made
    // must have been dropped exactly once.
    drop(txs);
    m.closed = true;
    for rx in &rxs {
        assert!(rx.is_closed());
        assert_eq!(rx.dropped(), m.dropped);
    }
    if input.drain {
        for (rx, s) in rxs.iter().zip(&mut m.subs) {
            let rest: Vec<u32> = rx.try_iter().map(|m| m.id).collect();
            assert_eq!(rest, s.q.drain(..).collect::<Vec<_>>());
            assert_eq!(rx.try_recv().map(|m| m.id), Err(TryRecvError::Closed));
            assert_eq!(rx.len(), 0);
        }
        assert_eq!(live.load(Ordering::Relaxed), 0);
    }
    drop(rxs);
    assert_eq!(live.load(Ordering::Relaxed), 0);
});
