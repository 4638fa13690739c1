//! Model-based fuzz target for `rillet::spsc`: an arbitrary sequence of
//! operations is applied to a real channel and to a `VecDeque` model with
//! the overflow policy applied; every result must match, and at the end
//! every message must have been dropped exactly once.
//!
//! Run: `cargo +nightly fuzz run spsc -- -max_total_time=30`

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rillet::{spsc, Overflow, RecvError, SendError, TryRecvError, TrySendError};
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

#[derive(Arbitrary, Debug)]
enum Op {
    TrySend,
    SendZeroTimeout,
    TryRecv,
    RecvZeroTimeout,
    SendMany(u8),
    RecvMany(u8),
    CloseTx,
    CloseRx,
    CloseWith,
    Introspect,
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    policy: Policy,
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
    fn full(&self) -> bool {
        self.q.len() == self.cap
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

fuzz_target!(|input: Input| {
    let cap = usize::from(input.capacity % 9) + 1;
    let policy = match input.policy {
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
    let (tx, rx) = spsc::Builder::new(cap).overflow(policy).build::<Msg>();
    let mut tx = Some(tx);
    let mut m = Model {
        q: VecDeque::new(),
        cap,
        policy,
        closed: false,
        dropped: 0,
    };

    for op in input.ops.iter().take(512) {
        match *op {
            Op::TrySend | Op::SendZeroTimeout => {
                let Some(tx) = &tx else { continue };
                let msg = new_msg();
                let id = msg.id;
                let (ok, back) = if matches!(op, Op::TrySend) {
                    match tx.try_send(msg) {
                        Ok(()) => (true, None),
                        Err(TrySendError::Full(b)) => {
                            assert!(!m.closed && m.full() && policy == Overflow::Block);
                            (false, Some(b))
                        }
                        Err(TrySendError::Closed(b)) => {
                            assert!(m.closed);
                            (false, Some(b))
                        }
                    }
                } else {
                    match tx.send_timeout(msg, Duration::ZERO) {
                        Ok(()) => (true, None),
                        Err(e) => {
                            assert_eq!(e.is_closed(), m.closed);
                            (false, Some(e.into_inner()))
                        }
                    }
                };
                if let Some(b) = back {
                    assert_eq!(b.id, id, "the rejected message comes back");
                }
                let want = !m.closed && m.push(id);
                assert_eq!(ok, want);
            }
            Op::TryRecv | Op::RecvZeroTimeout => {
                let got = if matches!(op, Op::TryRecv) {
                    rx.try_recv().map(|m| m.id).map_err(|e| e.is_closed())
                } else {
                    rx.recv_timeout(Duration::ZERO)
                        .map(|m| m.id)
                        .map_err(|e| e.is_closed())
                };
                let want = match m.q.pop_front() {
                    Some(id) => Ok(id),
                    None => Err(m.closed),
                };
                assert_eq!(got, want);
            }
            Op::SendMany(k) => {
                let Some(tx) = &tx else { continue };
                let k = usize::from(k % 12);
                if policy == Overflow::Block && !m.closed && m.q.len() + k > cap {
                    continue; // would block forever on one thread
                }
                let msgs: Vec<Msg> = (0..k).map(|_| new_msg()).collect();
                let ids: Vec<u32> = msgs.iter().map(|m| m.id).collect();
                match tx.send_many(msgs) {
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
                    continue; // would block forever on one thread
                }
                let mut buf = Vec::new();
                let got = rx.recv_many(&mut buf, max);
                if max == 0 {
                    assert_eq!(got, Ok(0));
                } else if m.q.is_empty() {
                    assert_eq!(got, Err(RecvError));
                } else {
                    let k = m.q.len().min(max);
                    assert_eq!(got, Ok(k));
                    let want: Vec<u32> = m.q.drain(..k).collect();
                    assert_eq!(buf.iter().map(|m| m.id).collect::<Vec<_>>(), want);
                }
            }
            Op::CloseTx => {
                if let Some(tx) = &tx {
                    assert_eq!(tx.close(), !std::mem::replace(&mut m.closed, true));
                }
            }
            Op::CloseRx => assert_eq!(rx.close(), !std::mem::replace(&mut m.closed, true)),
            Op::CloseWith => {
                let Some(sender) = tx.take() else { continue };
                if policy == Overflow::Block && !m.closed && m.full() {
                    tx = Some(sender);
                    continue; // would wait for room forever
                }
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
            Op::Introspect => {
                assert_eq!(rx.len(), m.q.len());
                assert_eq!(rx.is_empty(), m.q.is_empty());
                assert_eq!(rx.is_full(), m.full());
                assert_eq!(rx.is_closed(), m.closed);
                assert_eq!(rx.capacity(), cap);
                if let Some(tx) = &tx {
                    assert_eq!(tx.len(), m.q.len());
                    assert_eq!(tx.dropped(), m.dropped);
                }
            }
        }
        assert_eq!(rx.dropped(), m.dropped);
    }

    // Drain, then every message ever created must have been dropped once.
    drop(tx);
    let rest: Vec<u32> = rx.try_iter().map(|m| m.id).collect();
    assert_eq!(rest, m.q.drain(..).collect::<Vec<_>>());
    assert_eq!(rx.try_recv().map(|m| m.id), Err(TryRecvError::Closed));
    drop(rx);
    assert_eq!(drops.load(Ordering::Relaxed), created as usize);
});
