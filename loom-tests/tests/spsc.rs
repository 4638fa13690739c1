//! loom models of the SPSC channel: every interleaving (up to the
//! preemption bound) of the real `rillet::spsc` code, built with
//! `--cfg loom` so that its atomics, cells, mutex and park/unpark are loom's.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release`

#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use rillet::{spsc, Overflow, RecvError, SendError, TryRecvError};

mod common;

/// Blocking send and receive through a capacity-1 ring: both sides park
/// (full / empty) and must be woken; order is kept.
#[test]
fn send_recv_capacity_1_parks_and_wakes_both_sides() {
    loom::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Err(RecvError));
        h.join().unwrap();
    });
}

/// Capacity 2: the ring wraps (indices 0..3 reuse slots).
#[test]
fn send_recv_capacity_2_wraps() {
    // The accepting direction has its own models (`accept_*`): off here,
    // which keeps this model's state space to what it checks.
    rillet::loom_accept(false);
    loom::model(|| {
        let (tx, rx) = spsc::channel::<usize>(2);
        let h = thread::spawn(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
            }
        });
        for i in 0..3 {
            assert_eq!(rx.recv(), Ok(i));
        }
        h.join().unwrap();
    });
}

/// `recv_many` frees its run a part at a time (under loom a ring of 2
/// publishes `head` after each message) and tells the sender, which may
/// be parked on the full ring, then rather than only at the end: the
/// sender's `send_many` refills the freed slot while the run goes on.
/// Every message arrives once, in order, and nobody waits forever.
/// Publishing one position too many mid-run fails the model (the sender
/// overwrites a message the run has not read).
#[test]
fn recv_many_frees_its_run_to_a_blocked_sender() {
    rillet::loom_accept(false);
    loom::model(|| {
        let (tx, rx) = spsc::channel::<usize>(2);
        let h = thread::spawn(move || assert_eq!(tx.send_many(0..4), Ok(4)));
        let mut got = Vec::new();
        while rx.recv_many(&mut got, 4).is_ok() {}
        assert_eq!(got, [0, 1, 2, 3]);
        h.join().unwrap();
    });
}

/// The last sender is dropped while the receiver parks: the receiver must
/// wake and see `Closed` (no lost wake-up).
#[test]
fn last_sender_drop_while_receiver_parks() {
    loom::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = thread::spawn(move || drop(tx));
        assert_eq!(rx.recv(), Err(RecvError));
        h.join().unwrap();
    });
}

/// Closing from both sides at once: exactly one `close` returns true.
#[test]
fn close_racing_close_exactly_one_wins() {
    loom::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = thread::spawn(move || tx.close());
        let mine = rx.close();
        let theirs = h.join().unwrap();
        assert!(mine ^ theirs);
    });
}

/// A send racing a receiver-side close: either the message is received, or
/// the send fails and hands it back. Never both, never neither.
#[test]
fn close_racing_send_loses_nothing() {
    loom::model(|| {
        let (tx, rx) = spsc::channel::<usize>(2);
        // The sender hands its handle back so that its drop does not close.
        let h = thread::spawn(move || (tx.send(7), tx));
        assert!(rx.close());
        let received = rx.try_recv();
        let (sent, _tx) = h.join().unwrap();
        match sent {
            Ok(()) => assert_eq!(received, Ok(7)),
            Err(SendError(v)) => {
                assert_eq!(v, 7);
                assert_eq!(received, Err(TryRecvError::Closed));
            }
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

/// A sender parked on a full ring is woken by the receiver's close.
#[test]
fn close_wakes_a_parked_sender() {
    loom::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        tx.send(1).unwrap();
        let h = thread::spawn(move || tx.send(2));
        rx.close();
        assert_eq!(h.join().unwrap(), Err(SendError(2)));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// A receive racing a sender's close: messages sent before the close are
/// received, then `Closed`.
#[test]
fn close_racing_recv_drains_first() {
    loom::model(|| {
        let (tx, rx) = spsc::channel::<usize>(2);
        let h = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.close_with(2).unwrap();
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Err(RecvError));
        h.join().unwrap();
    });
}

/// A message that counts how often it is dropped.
struct Tracked(usize, Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

/// `DropOldest`: the sender evicting the oldest message races the receiver
/// taking it. Each message is received or evicted, exactly once.
#[test]
fn drop_oldest_eviction_racing_recv() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::Builder::new(1)
            .overflow(Overflow::DropOldest)
            .build::<Tracked>();
        tx.send(Tracked(1, drops.clone())).unwrap();
        let d = drops.clone();
        let h = thread::spawn(move || {
            tx.send(Tracked(2, d)).unwrap();
            tx.dropped()
        });
        let first = rx.recv().unwrap().0;
        let evicted = h.join().unwrap();
        let rest: Vec<usize> = rx.try_iter().map(|m| m.0).collect();
        match (first, evicted) {
            (1, 0) => assert_eq!(rest, [2]),
            (2, 1) => assert!(rest.is_empty()),
            other => panic!("impossible outcome {other:?}"),
        }
        drop(rx);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// `DropOldest` at capacity 1 (two slots): a sender of four messages,
/// evicting, races a receiver claiming. A slot is written again only once
/// its previous reader is done (loom checks the slot's accesses), also on
/// the fast path the sender takes when it evicted nothing for a lap; every
/// message is received or evicted once, in order.
#[test]
fn drop_oldest_reuses_a_slot_only_after_its_reader() {
    loom::model(|| {
        let (tx, rx) = spsc::Builder::new(1)
            .overflow(Overflow::DropOldest)
            .build::<usize>();
        let h = thread::spawn(move || {
            for v in 0..4 {
                tx.send(v).unwrap();
            }
            tx.dropped()
        });
        let mut got = Vec::new();
        for _ in 0..2 {
            if let Ok(v) = rx.try_recv() {
                got.push(v);
            }
        }
        let evicted = h.join().unwrap();
        got.extend(rx.try_iter());
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert_eq!(got.last(), Some(&3), "{got:?}");
        assert_eq!(got.len() as u64 + evicted, 4, "{got:?}");
    });
}

/// `DropOldest` at capacity 1, the interleaving the fast path rests on: a
/// full send of 1 publishes, and before its eviction looks at the head the
/// receiver has taken 0 and 1, so the sender caches an empty ring and
/// writes 2 on the fast path into the slot 0 was read from. Only the
/// `Acquire` of that head load orders the receiver's copy of 0 before the
/// write: with it weakened to `Relaxed` loom reports the slot access from
/// three preemptions on, so this model sets four, whatever the environment
/// says (it takes well under a second).
#[test]
fn drop_oldest_fast_path_after_the_receiver_emptied_the_ring() {
    common::model_bound(4, || {
        let (tx, rx) = spsc::Builder::new(1)
            .overflow(Overflow::DropOldest)
            .build::<usize>();
        tx.send(0).unwrap();
        let h = thread::spawn(move || {
            let a = rx.try_recv();
            let b = rx.try_recv();
            (a, b, rx)
        });
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let (a, b, rx) = h.join().unwrap();
        let mut got: Vec<usize> = [a, b].into_iter().filter_map(Result::ok).collect();
        got.extend(rx.try_iter());
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert_eq!(got.last(), Some(&2), "{got:?}");
        assert_eq!(got.len() as u64 + tx.dropped(), 3, "{got:?}");
    });
}

/// `DropOldest` at capacity 1: a send racing a receiver-side close. An
/// eviction happens only for a send that succeeds: if the send fails, the
/// buffered message is still there for the receiver to drain.
#[test]
fn drop_oldest_send_racing_close_evicts_only_for_a_successful_send() {
    loom::model(|| {
        let (tx, rx) = spsc::Builder::new(1)
            .overflow(Overflow::DropOldest)
            .build::<usize>();
        tx.send(1).unwrap();
        let h = thread::spawn(move || tx.send(2).is_ok());
        rx.close();
        // `iter`: a send claimed before the close may still be in flight.
        let rest: Vec<usize> = rx.iter().collect();
        let sent = h.join().unwrap();
        if sent {
            assert!(rest == [2] || rest == [1, 2], "{rest:?}");
        } else {
            assert_eq!(rest, [1], "a failed send evicted the buffered message");
        }
    });
}

/// `close_with` on a full `DropNewest` channel evicts the oldest message
/// while the receiver may be claiming it: the final message arrives last,
/// every other message is received or counted once.
#[test]
fn close_with_evicting_races_recv() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::Builder::new(1)
            .overflow(Overflow::DropNewest)
            .build::<Tracked>();
        tx.send(Tracked(1, drops.clone())).unwrap();
        let d = drops.clone();
        let h = thread::spawn(move || tx.close_with(Tracked(2, d)).is_ok());
        let first = rx.recv().unwrap().0;
        assert!(h.join().unwrap());
        let rest: Vec<usize> = rx.iter().map(|m| m.0).collect();
        match first {
            1 => assert_eq!((rest.as_slice(), rx.dropped()), (&[2][..], 0)),
            2 => assert_eq!((rest.as_slice(), rx.dropped()), (&[][..], 1)),
            other => panic!("impossible first message {other}"),
        }
        drop(rx);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// Dropping the receiver while a sender sends: every message is dropped
/// exactly once, by the receiver (buffered before it went) or by whoever
/// holds it last.
#[test]
fn receiver_drop_racing_a_send_drops_each_message_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::channel::<Tracked>(2);
        tx.send(Tracked(1, drops.clone())).unwrap();
        let d = drops.clone();
        let h = thread::spawn(move || {
            let r = tx.send(Tracked(2, d));
            (r.is_ok(), tx)
        });
        drop(rx);
        let (_, tx) = h.join().unwrap();
        assert!(
            drops.load(Ordering::Relaxed) >= 1,
            "the buffered message went with the receiver"
        );
        drop(tx);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// The sender sends and goes while the receiver is dropped on another
/// thread: whichever handle goes last (its decrement, or its load that
/// finds the count at 1: `counter::ChanRef`) frees the channel and drops
/// the message, once, after the other's last use of it. (A leak fails the
/// model: the message holds a loom `Arc`.)
#[test]
fn both_handles_dropped_at_once_free_the_channel_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::channel::<Tracked>(2);
        let d = drops.clone();
        let h = thread::spawn(move || {
            let _ = tx.send(Tracked(1, d));
        });
        drop(rx);
        h.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

// ------------------------------------------------------ direct hand-off
// Under loom every `Block` channel offers a blocked sender's message for
// direct hand-off (outside loom only on one CPU): the sender parks its
// message in the hand-off cell, and the receiver that frees a slot moves
// it into the ring and completes that send. `send_recv_capacity_1_...`
// and `close_wakes_a_parked_sender` above also go through it.

/// A sender parked with its message on offer is woken by the receive
/// that takes the offer, with nothing after it to wake the sender instead:
/// the receiver receives once and then waits for the sender. (The take
/// wakes the sender only when the send queue's word says it may be
/// registered, and the sender sits out `TAKING` rather than park: with it
/// parking there, this model loses the wake-up.)
#[test]
fn handoff_wakes_a_parked_sender() {
    rillet::loom_accept(false);
    common::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = common::spawn_flagged(move || {
            tx.send(0).unwrap();
            tx.send(1).unwrap();
            tx
        });
        assert_eq!(rx.recv(), Ok(0));
        let _tx = h.join();
        assert_eq!(rx.try_recv(), Ok(1));
    });
}

/// A timed send on a full ring races the receiver that would take its
/// offer: either the receiver took it (the send reports `Ok` and the
/// message is in the ring) or the send timed out and has it back, never
/// both and never neither.
#[test]
fn handoff_racing_send_timeout() {
    common::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        tx.send(1).unwrap();
        let h = thread::spawn(move || {
            let r = tx.send_timeout(2, std::time::Duration::from_millis(1));
            (r, tx)
        });
        assert_eq!(rx.recv(), Ok(1));
        let (sent, _tx) = h.join().unwrap();
        match sent {
            Ok(()) => assert_eq!(rx.try_recv(), Ok(2)),
            Err(e) => {
                assert_eq!(e.into_inner(), 2);
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            }
        }
    });
}

/// The receiver closes while the sender's second message may be on offer,
/// receiving the first one before the close or while draining after it: a
/// send that reports `Ok` is drained after the close, one that fails has
/// its message back. (A receiver that took an offer after its close would
/// publish it past the cutoff: reported sent, never received.)
fn handoff_racing_receiver_close(recv_first: bool) {
    common::model(move || {
        let (tx, rx) = spsc::channel::<usize>(1);
        tx.send(1).unwrap();
        let h = thread::spawn(move || (tx.send(2), tx));
        let mut drained = Vec::new();
        if recv_first {
            drained.push(rx.recv().unwrap());
        }
        assert!(rx.close());
        drained.extend(rx.try_iter());
        let (sent, _tx) = h.join().unwrap();
        match sent {
            Ok(()) => assert_eq!(drained, [1, 2]),
            Err(SendError(v)) => {
                assert_eq!(v, 2);
                assert_eq!(drained, [1]);
            }
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

#[test]
fn handoff_racing_receiver_close_after_a_recv() {
    handoff_racing_receiver_close(true);
}

#[test]
fn handoff_racing_receiver_close_then_drain() {
    handoff_racing_receiver_close(false);
}

/// The receiver takes one message and is dropped while the sender's next
/// message is on offer: each message is dropped exactly once (by the
/// receiver, the channel or the failed send).
#[test]
fn handoff_racing_receiver_drop_drops_each_message_once() {
    common::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = spsc::channel::<Tracked>(1);
        tx.send(Tracked(1, drops.clone())).unwrap();
        let d = drops.clone();
        let h = thread::spawn(move || {
            let r = tx.send(Tracked(2, d));
            (r.is_ok(), tx)
        });
        let first = rx.recv().unwrap();
        assert_eq!(first.0, 1);
        drop(first);
        drop(rx);
        let (_, tx) = h.join().unwrap();
        drop(tx);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// The receiver that frees the slot is a `select`: it completes the
/// offered send like a plain `recv`, and the order holds.
#[test]
fn handoff_to_a_selecting_receiver() {
    common::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        tx.send(1).unwrap();
        let h = thread::spawn(move || tx.send(2));
        for want in [1, 2] {
            let got = rillet::select! {
                recv(rx) -> m => m,
            };
            assert_eq!(got, Ok(want));
        }
        h.join().unwrap().unwrap();
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// Three messages through capacity 1: the sender may see the slot the
/// receiver freed before the receiver looks at the offer, withdraw it, send
/// on its own and offer its next message; the receiver must then leave
/// that offer for the next slot it frees.
#[test]
fn handoff_offer_renewed_before_the_receiver_looks() {
    // The accepting direction has its own models (`accept_*`): off here,
    // which keeps this model's state space to what it checks.
    rillet::loom_accept(false);
    common::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = thread::spawn(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
            }
        });
        for i in 0..3 {
            assert_eq!(rx.recv(), Ok(i));
        }
        assert_eq!(rx.recv(), Err(RecvError));
        h.join().unwrap();
    });
}

/// The receiver may claim an offer and put it back: the slot it freed went
/// to the sender's previous message, which the sender sent on its own
/// after it saw the room (as in the model above). A timed send whose
/// deadline passes meanwhile must then take its message back, not wait
/// for the receiver to free another slot: this receiver frees none, it
/// waits for the sender after its first receive. (The send waited for
/// `TAKEN` alone there, and spun for as long as the receiver did not
/// receive again.) The race takes four preemptions (the sender sees the
/// room, withdraws, sends and offers again between the receiver's steps),
/// hence the bound: with three, the model passed without the fix; with
/// four it fails without it (loom's branch limit: the send spins) and
/// passes with it.
#[test]
fn handoff_put_back_after_the_deadline() {
    rillet::loom_accept(false);
    common::model_bound(4, || {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = common::spawn_flagged(move || {
            tx.send(0).unwrap();
            tx.send(1).unwrap();
            let third = tx.send_timeout(2, std::time::Duration::from_millis(1));
            (third, tx)
        });
        assert_eq!(rx.recv(), Ok(0));
        let (third, _tx) = h.join();
        assert_eq!(rx.try_recv(), Ok(1));
        match third {
            Ok(()) => assert_eq!(rx.try_recv(), Ok(2)),
            Err(e) => {
                assert_eq!(e.into_inner(), 2);
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            }
        }
    });
}

// The other direction of the hand-off: a receiver waiting on an empty ring
// accepts a message in the channel's accept cell, and a sender that finds
// it accepting fills that cell instead of the ring. Every model above with
// a receiver that waits on an empty ring also goes through it.

/// A zero-timeout receive on an empty ring races the send that would fill
/// its cell: either the receive has the message and the ring is empty, or
/// it timed out and the message is in the ring; never both, never neither.
#[test]
fn accept_racing_recv_timeout() {
    common::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = common::spawn_flagged(move || {
            tx.send(1).unwrap();
            tx
        });
        let got = rx.recv_timeout(std::time::Duration::ZERO);
        // The filler may still be about to unpark us.
        let _tx = h.join();
        match got {
            Ok(v) => {
                assert_eq!(v, 1);
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            }
            Err(e) => {
                assert_eq!(e, rillet::RecvTimeoutError::Timeout);
                assert_eq!(rx.try_recv(), Ok(1));
            }
        }
    });
}

/// Given messages come before the ring's: the sender fills the accepting
/// receiver's cell with its first message and puts the next ones in the
/// ring (capacity 2); the receiver gets them in order.
#[test]
fn accept_keeps_the_order_with_the_ring() {
    // One preemption: three messages through two slots and the cell is a
    // large model (about 100 s at three).
    common::model_bound_1(|| {
        let (tx, rx) = spsc::channel::<usize>(2);
        let h = thread::spawn(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
            }
        });
        for i in 0..3 {
            assert_eq!(rx.recv(), Ok(i));
        }
        assert_eq!(rx.recv(), Err(RecvError));
        h.join().unwrap();
    });
}

/// A sender that closes the channel and then sends never gives that
/// message to a receiver accepting since before the close: the send fails
/// and the receiver sees the end.
#[test]
fn accept_never_takes_a_send_after_close() {
    common::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = thread::spawn(move || {
            assert!(tx.close());
            assert_eq!(tx.send(1), Err(SendError(1)));
        });
        assert_eq!(rx.recv(), Err(RecvError));
        h.join().unwrap();
    });
}

/// A receiver parked on an empty ring is woken by the send that fills its
/// accept cell, with no close after it to wake it instead: the sender
/// keeps its handle. (A fill wakes the receiver only when the receive
/// queue's word says it may be registered; every other model here ends
/// with the sender's drop, whose close also wakes the receiver, and
/// passed with the wake-up left out.)
#[test]
fn accept_wakes_a_parked_receiver() {
    common::model(|| {
        let (tx, rx) = spsc::channel::<usize>(1);
        let h = common::spawn_flagged(move || {
            tx.send(1).unwrap();
            tx
        });
        assert_eq!(rx.recv(), Ok(1));
        let _tx = h.join();
    });
}
