//! Model-based fuzz target for `rillet::mpsc`: an arbitrary sequence of
//! operations over a changing set of cloned senders is applied to a real
//! channel and to a `VecDeque` model with the overflow policy applied; every
//! result must match, and at the end every message must have been dropped
//! exactly once. Capacity 0 (rendezvous, `Block` only) is included: on one
//! thread nobody ever waits on the other side.
//!
//! Run: `cargo +nightly fuzz run mpsc -- -max_total_time=30`

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rillet::{mpsc, Overflow, RecvError, SendError, TryRecvError, TrySendError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Policy {
    Block,
    DropNewest,
    DropOldest,
}

/// Sender indices are taken modulo the number of live senders; sender ops
/// are skipped when none is alive.
#[derive(Arbitrary, Debug)]
enum Op {
    TrySend(u8),
    SendZeroTimeout(u8),
    /// Blocking `send`, only run when it cannot wait.
    Send(u8),
    TryRecv,
    RecvZeroTimeout,
    /// Blocking `recv`, only run when it cannot wait.
    Recv,
    SendMany(u8, u8),
    RecvMany(u8),
    TryIter(u8),
    CloseTx(u8),
    CloseRx,
    CloseWith(u8),
    CloneSender(u8),
    DropSender(u8),
    Introspect,
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    policy: Policy,
    /// Drain at the end, or drop the receiver with messages still buffered
    /// (the channel's own drop must drop each of them once).
    drain: bool,
    ops: Vec<Op>,
}

/// A message that counts its drops.
#[derive(Debug)]
struct Msg {
    id: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

struct Model {
    q: VecDeque<u32>,
    cap: usize,
    policy: Overflow,
    closed: bool,
    dropped: u64,
}

impl Model {
    /// Also `true` at capacity 0: a rendezvous channel is always "full".
    fn full(&self) -> bool {
        self.q.len() == self.cap
    }

    /// Whether a blocking send would wait forever on this single thread.
    fn send_would_block(&self) -> bool {
        !self.closed && self.policy == Overflow::Block && self.full()
    }

    /// `close_with`'s final message always goes in: on a full ring under a
    /// dropping policy the oldest buffered message is evicted for it.
    fn push_final(&mut self, id: u32) -> bool {
        if self.full() && self.policy != Overflow::Block {
            self.q.pop_front();
            self.dropped += 1;
        }
        self.push(id)
    }

    /// Enqueues ignoring close; `false` when full under Block.
    fn push(&mut self, id: u32) -> bool {
        if !self.full() {
            self.q.push_back(id);
            return true;
        }
        match self.policy {
            Overflow::Block => false,
            Overflow::DropNewest => {
                self.dropped += 1;
                true
            }
            Overflow::DropOldest => {
                self.q.pop_front();
                self.q.push_back(id);
                self.dropped += 1;
                true
            }
        }
    }
}

fn pick(txs: &[mpsc::Sender<Msg>], i: u8) -> Option<usize> {
    (!txs.is_empty()).then(|| usize::from(i) % txs.len())
}

fuzz_target!(|input: Input| {
    let cap = usize::from(input.capacity % 10);
    let policy = match input.policy {
        _ if cap == 0 => Overflow::Block,
        Policy::Block => Overflow::Block,
        Policy::DropNewest => Overflow::DropNewest,
        Policy::DropOldest => Overflow::DropOldest,
    };
    let drops = Arc::new(AtomicUsize::new(0));
    let mut created = 0u32;
    let mut new_msg = || {
        created += 1;
        Msg {
            id: created,
            drops: drops.clone(),
        }
    };
    let (tx, rx) = mpsc::Builder::new(cap).overflow(policy).build::<Msg>();
    let mut txs = vec![tx];
    let mut m = Model {
        q: VecDeque::new(),
        cap,
        policy,
        closed: false,
        dropped: 0,
    };

    for op in input.ops.iter().take(512) {
        match *op {
            Op::TrySend(i) | Op::SendZeroTimeout(i) | Op::Send(i) => {
                let Some(i) = pick(&txs, i) else { continue };
                let tx = &txs[i];
                if matches!(op, Op::Send(_)) && m.send_would_block() {
                    continue; // would wait forever on one thread
                }
                let msg = new_msg();
                let id = msg.id;
                let (ok, back) = match op {
                    Op::TrySend(_) => match tx.try_send(msg) {
                        Ok(()) => (true, None),
                        Err(TrySendError::Full(b)) => {
                            assert!(!m.closed && m.full() && policy == Overflow::Block);
                            (false, Some(b))
                        }
                        Err(TrySendError::Closed(b)) => {
                            assert!(m.closed);
                            (false, Some(b))
                        }
                    },
                    Op::SendZeroTimeout(_) => match tx.send_timeout(msg, Duration::ZERO) {
                        Ok(()) => (true, None),
                        Err(e) => {
                            assert_eq!(e.is_closed(), m.closed);
                            (false, Some(e.into_inner()))
                        }
                    },
                    _ => match tx.send(msg) {
                        Ok(()) => (true, None),
                        Err(SendError(b)) => {
                            assert!(m.closed);
                            (false, Some(b))
                        }
                    },
                };
                if let Some(b) = back {
                    assert_eq!(b.id, id, "the rejected message comes back");
                }
                let want = !m.closed && m.push(id);
                assert_eq!(ok, want);
            }
            Op::TryRecv | Op::RecvZeroTimeout | Op::Recv => {
                if matches!(op, Op::Recv) && m.q.is_empty() && !m.closed {
                    continue; // would wait forever on one thread
                }
                let got = match op {
                    Op::TryRecv => rx.try_recv().map(|m| m.id).map_err(|e| e.is_closed()),
                    Op::RecvZeroTimeout => rx
                        .recv_timeout(Duration::ZERO)
                        .map(|m| m.id)
                        .map_err(|e| e.is_closed()),
                    _ => rx.recv().map(|m| m.id).map_err(|RecvError| true),
                };
                let want = match m.q.pop_front() {
                    Some(id) => Ok(id),
                    None => Err(m.closed),
                };
                assert_eq!(got, want);
            }
            Op::SendMany(i, k) => {
                let Some(i) = pick(&txs, i) else { continue };
                let k = usize::from(k % 12);
                if policy == Overflow::Block && !m.closed && m.q.len() + k > cap {
                    continue; // would wait forever on one thread (always at cap 0)
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
                        assert!(m.closed);
                        assert_eq!(back.len(), 1);
                        assert_eq!(back[0].id, ids[0]);
                    }
                }
            }
            Op::RecvMany(max) => {
                let max = usize::from(max % 12);
                if max > 0 && m.q.is_empty() && !m.closed {
                    continue; // would wait forever on one thread
                }
                let mut buf = Vec::new();
                let got = rx.recv_many(&mut buf, max);
                if max == 0 {
                    assert_eq!(got, Ok(0));
                    assert!(buf.is_empty());
                } else if m.q.is_empty() {
                    assert_eq!(got, Err(RecvError));
                    assert!(buf.is_empty());
                } else {
                    let k = m.q.len().min(max);
                    assert_eq!(got, Ok(k));
                    let want: Vec<u32> = m.q.drain(..k).collect();
                    assert_eq!(buf.iter().map(|m| m.id).collect::<Vec<_>>(), want);
                }
            }
            Op::TryIter(n) => {
                let n = usize::from(n % 12);
                let got: Vec<u32> = rx.try_iter().take(n).map(|m| m.id).collect();
                let k = m.q.len().min(n);
                assert_eq!(got, m.q.drain(..k).collect::<Vec<_>>());
            }
            Op::CloseTx(i) => {
                let Some(i) = pick(&txs, i) else { continue };
                assert_eq!(txs[i].close(), !std::mem::replace(&mut m.closed, true));
            }
            Op::CloseRx => assert_eq!(rx.close(), !std::mem::replace(&mut m.closed, true)),
            Op::CloseWith(i) => {
                let Some(i) = pick(&txs, i) else { continue };
                if m.send_would_block() {
                    continue; // would wait for room (or a receiver) forever
                }
                let sender = txs.remove(i);
                let msg = new_msg();
                let id = msg.id;
                match sender.close_with(msg) {
                    Ok(()) => {
                        assert!(!m.closed);
                        assert!(m.push_final(id));
                        m.closed = true;
                    }
                    Err(SendError(b)) => {
                        assert!(m.closed);
                        assert_eq!(b.id, id);
                    }
                }
            }
            Op::CloneSender(i) => {
                let Some(i) = pick(&txs, i) else { continue };
                let clone = txs[i].clone();
                txs.push(clone);
            }
            Op::DropSender(i) => {
                let Some(i) = pick(&txs, i) else { continue };
                drop(txs.remove(i));
                if txs.is_empty() {
                    m.closed = true; // the last sender closes the channel
                }
            }
            Op::Introspect => {
                assert_eq!(rx.len(), m.q.len());
                assert_eq!(rx.is_empty(), m.q.is_empty());
                assert_eq!(rx.is_full(), m.full());
                assert_eq!(rx.capacity(), cap);
                assert_eq!(rx.overflow(), policy);
                for tx in &txs {
                    assert_eq!(tx.len(), m.q.len());
                    assert_eq!(tx.is_empty(), m.q.is_empty());
                    assert_eq!(tx.is_full(), m.full());
                    assert_eq!(tx.capacity(), cap);
                    assert_eq!(tx.is_closed(), m.closed);
                    assert_eq!(tx.dropped(), m.dropped);
                }
            }
        }
        assert_eq!(rx.dropped(), m.dropped);
        assert_eq!(rx.is_closed(), m.closed);
    }

    // Drain (or not), then every message ever created must have been
    // dropped exactly once.
    drop(txs);
    assert!(rx.is_closed());
    assert_eq!(rx.dropped(), m.dropped);
    if input.drain {
        let rest: Vec<u32> = rx.try_iter().map(|m| m.id).collect();
        assert_eq!(rest, m.q.drain(..).collect::<Vec<_>>());
        assert_eq!(rx.try_recv().map(|m| m.id), Err(TryRecvError::Closed));
    }
    drop(rx);
    assert_eq!(drops.load(Ordering::Relaxed), created as usize);
});
