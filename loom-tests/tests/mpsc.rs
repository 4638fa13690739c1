//! loom models of the MPSC channel (ring and rendezvous), on the real
//! `rillet::mpsc` code built with `--cfg loom`.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test mpsc`
//! (three threads with claim retries: bound 2 keeps it to seconds).

#![cfg(loom)]

mod common;

use common::{model, model_bound_1};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use rillet::{mpsc, Overflow, RecvError, SendError, SendTimeoutError, TryRecvError};
use std::time::Duration;

/// Two producers and the consumer at capacity 1: claims race on the tail,
/// the consumer parks on empty, a producer parks on full; every message
/// arrives once, then `Closed`.
#[test]
fn two_producers_capacity_1() {
    // The accepting direction has its own models (`accept_*`): off here,
    // which keeps this model's state space to what it checks.
    rillet::loom_accept(false);
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        let tx2 = tx.clone();
        let a = thread::spawn(move || tx.send(1).unwrap());
        let b = thread::spawn(move || tx2.send(2).unwrap());
        let mut got = [rx.recv().unwrap(), rx.recv().unwrap()];
        got.sort();
        assert_eq!(got, [1, 2]);
        assert_eq!(rx.recv(), Err(RecvError));
        a.join().unwrap();
        b.join().unwrap();
    });
}

/// Capacity 2, starting mid-ring: the two producers' claims straddle the
/// lap boundary (index 1, then index 0 of the next lap, whose stamp the
/// consumer released) while the consumer parks on empty. Three threads with
/// claim retries and parking: explored with one preemption, which already
/// covers a producer preempted between its claim and its write.
#[test]
fn two_producers_capacity_2_across_a_lap() {
    // The accepting direction has its own models (`accept_*`): off here,
    // which keeps this model's state space to what it checks.
    rillet::loom_accept(false);
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<usize>(2);
        tx.send(0).unwrap();
        assert_eq!(rx.recv(), Ok(0));
        let tx2 = tx.clone();
        let a = thread::spawn(move || tx.send(1).unwrap());
        let b = thread::spawn(move || tx2.send(2).unwrap());
        let mut got = [rx.recv().unwrap(), rx.recv().unwrap()];
        got.sort();
        assert_eq!(got, [1, 2]);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

/// A new ring's first lap: under loom only slot 0 has its stamp when the
/// channel is made, and each later slot gets it from the first producer
/// whose claim reaches it (see "A new channel" in `rillet::mpsc`), one
/// slot at a time. Two producers race to write stamps and claim, while the
/// consumer looks at slots that may not have a stamp yet (a read of one
/// fails the model: loom builds them with a stamp no position has).
#[test]
fn first_lap_stamps_written_by_racing_producers() {
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<usize>(4);
        let tx2 = tx.clone();
        let a = thread::spawn(move || tx.send(1).unwrap());
        let b = thread::spawn(move || tx2.send(2).unwrap());
        // A look that may find the second slot without a stamp.
        let early = rx.try_recv().ok();
        let mut got: Vec<usize> = early.into_iter().collect();
        while got.len() < 2 {
            got.push(rx.recv().unwrap());
        }
        got.sort();
        assert_eq!(got, [1, 2]);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

/// `close_with` racing another producer's send: the final message is last,
/// and the other send either lands before it or fails with its message.
#[test]
fn close_with_racing_a_send() {
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(2);
        let tx2 = tx.clone();
        let closer = thread::spawn(move || tx.close_with(99));
        let other = thread::spawn(move || tx2.send(1));
        assert_eq!(closer.join().unwrap(), Ok(()));
        let sent = other.join().unwrap();
        let got: Vec<usize> = rx.try_iter().collect();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        match sent {
            Ok(()) => assert_eq!(got, [1, 99]),
            Err(SendError(v)) => {
                assert_eq!(v, 1);
                assert_eq!(got, [99]);
            }
        }
    });
}

struct Tracked(usize, Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

/// `DropOldest`: a producer evicting the oldest message races the consumer
/// taking it. Each message is received or evicted, exactly once.
#[test]
fn eviction_racing_recv() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::Builder::new(1)
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
        assert_eq!(rx.try_recv().map(|m| m.0), Err(TryRecvError::Closed));
        drop(rx);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// Rendezvous: a timed send (under loom the deadline expires the first time
/// it would sleep) races the receiver taking its message. `Ok` exactly when
/// the receiver got it; otherwise the message comes back.
#[test]
fn rendezvous_hand_off_racing_a_timeout() {
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(0);
        let h = thread::spawn(move || {
            let r = tx.send_timeout(7, Duration::from_secs(3600));
            drop(tx);
            r
        });
        let got = rx.recv();
        match h.join().unwrap() {
            Ok(()) => assert_eq!(got, Ok(7)),
            Err(SendTimeoutError::Timeout(v)) => {
                assert_eq!(v, 7);
                assert_eq!(got, Err(RecvError));
            }
            Err(SendTimeoutError::Closed(_)) => panic!("nobody closed before the send"),
        }
    });
}

/// Rendezvous: the receiver closing while a sender waits wakes it with its
/// message.
#[test]
fn rendezvous_close_wakes_a_waiting_sender() {
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(0);
        let h = thread::spawn(move || tx.send(5));
        assert!(rx.close());
        match h.join().unwrap() {
            Err(SendError(v)) => assert_eq!(v, 5),
            Ok(()) => panic!("nobody received"),
        }
    });
}

/// Rendezvous `send_many`: its messages wait for the receiver together
/// (one packet; the first goes straight to a receiver already waiting),
/// the receiver takes them with `recv_many` (the rest of the packet in one
/// run after its first, which wakes the sender), and `send_many` returns
/// only once the last is taken. Not waking the sender whose packet a run
/// emptied fails the model.
#[test]
fn rendezvous_send_many_to_recv_many() {
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(0);
        let h = thread::spawn(move || {
            let r = tx.send_many(0..3);
            drop(tx);
            r
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            rx.recv_many(&mut got, 3).unwrap();
        }
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(h.join().unwrap(), Ok(3));
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// Rendezvous `send_many` racing the receiver, which takes one message
/// and closes, and a second sender: the messages `send_many` took and the
/// receiver did not come back, in order, the ones it did not take yet stay
/// in the iterator (as a loop of `send` stops at its first failure), and
/// nothing is received twice or lost; the second sender's message goes to
/// the receiver or back to it.
#[test]
fn rendezvous_send_many_racing_a_sender_and_the_receivers_close() {
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<usize>(0);
        let other = tx.clone();
        let a = thread::spawn(move || {
            let mut items = 0..3;
            let r = tx.send_many(&mut items);
            (r, items.collect::<Vec<usize>>())
        });
        let b = thread::spawn(move || other.send(10));
        let first = rx.recv().unwrap();
        assert!(rx.close());
        let (back_a, left) = match a.join().unwrap() {
            (Ok(n), _) => panic!("send_many sent {n} with one receive"),
            (Err(SendError(back)), left) => (back, left),
        };
        let back_b = b.join().unwrap().err().map(|SendError(m)| m);
        let ours: Vec<usize> = std::iter::once(first)
            .filter(|&m| m != 10)
            .chain(back_a)
            .chain(left)
            .collect();
        assert_eq!(ours, [0, 1, 2]);
        assert_eq!((first == 10) as usize + back_b.is_some() as usize, 1);
    });
}

/// `DropOldest` at capacity 1: a send racing a receiver-side close. An
/// eviction happens only for a send that succeeds: if the send fails, the
/// buffered message is still there for the receiver to drain.
#[test]
fn drop_oldest_send_racing_close_evicts_only_for_a_successful_send() {
    model(|| {
        let (tx, rx) = mpsc::Builder::new(1)
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
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::Builder::new(1)
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
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel::<Tracked>(2);
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

/// Two senders each send and go on their own threads while the receiver
/// waits: the last of them closes the channel (its decrement of the
/// sender count, or its load that finds it at 1: `counter::SenderRef`),
/// so the receiver gets both messages and then `Closed`, and the channel
/// is freed once, by the last handle.
#[test]
fn the_last_of_two_departing_senders_closes() {
    rillet::loom_accept(false);
    model_bound_1(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel::<Tracked>(2);
        let tx2 = tx.clone();
        let (d1, d2) = (drops.clone(), drops.clone());
        let a = thread::spawn(move || tx.send(Tracked(1, d1)).unwrap());
        let b = thread::spawn(move || tx2.send(Tracked(2, d2)).unwrap());
        let mut got = 0;
        while let Ok(m) = rx.recv() {
            got += m.0;
        }
        assert_eq!(got, 3);
        a.join().unwrap();
        b.join().unwrap();
        drop(rx);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// Two producers blocked on a full ring, the consumer receives three
/// times. A producer that succeeded on its own attempt could be chosen by
/// the consumer's next `notify_one` before it unregistered, and left
/// without passing that wake-up on: the other producer slept forever
/// beside a free slot (found by the select models; fails before the fix
/// in `park::block_on_any`).
#[test]
fn a_late_notification_of_a_leaving_producer_is_passed_on() {
    // The accepting direction has its own models (`accept_*`): off here,
    // which keeps this model's state space to what it checks.
    rillet::loom_accept(false);
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        tx.send(0).unwrap();
        let tx2 = tx.clone();
        let a = thread::spawn(move || tx.send(1).unwrap());
        let b = thread::spawn(move || tx2.send(2).unwrap());
        let mut got = [rx.recv().unwrap(), rx.recv().unwrap(), rx.recv().unwrap()];
        got.sort();
        assert_eq!(got, [0, 1, 2]);
        a.join().unwrap();
        b.join().unwrap();
    });
}

// ------------------------------------------------------ direct hand-off
// Under loom every `Block` ring lets the first producer that finds it full
// offer its message (outside loom only on one CPU); the consumer that frees
// a slot sends it for that producer. The models above also go through it.

/// A sender parked with its message on offer is woken by the receive
/// that takes the offer, with nothing after it to wake the sender instead:
/// the receiver receives once and then waits for the sender. (The take
/// wakes the sender only when the send queue's word says it may be
/// registered, and the sender sits out `TAKING` rather than park: with it
/// parking there, this model loses the wake-up.)
#[test]
fn handoff_wakes_a_parked_sender() {
    rillet::loom_accept(false);
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
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

/// One producer's message is on offer while a second producer offers
/// its own in a second cell (allocated then) or claims the freed slot
/// first: every message arrives exactly once.
#[test]
fn handoff_with_a_second_producer() {
    // The accepting direction has its own models (`accept_*`): off here,
    // which keeps this model's state space to what it checks.
    rillet::loom_accept(false);
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        tx.send(1).unwrap();
        let tx2 = tx.clone();
        let a = thread::spawn(move || tx.send(2).unwrap());
        let b = thread::spawn(move || tx2.send(3).unwrap());
        let mut got = [rx.recv().unwrap(), rx.recv().unwrap(), rx.recv().unwrap()];
        got.sort();
        assert_eq!(got, [1, 2, 3]);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

/// Two producers each have a message on offer (one in the first hand-off
/// cell, one in the cell allocated for it) while the consumer receives
/// once and closes: each send reports `Ok` exactly when its message is
/// drained, and a failed one has its own message back.
#[test]
fn two_offers_racing_receiver_close() {
    rillet::loom_accept(false);
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        tx.send(1).unwrap();
        let tx2 = tx.clone();
        let a = thread::spawn(move || tx.send(2));
        let b = thread::spawn(move || tx2.send(3));
        assert_eq!(rx.recv(), Ok(1));
        assert!(rx.close());
        let drained: Vec<usize> = rx.try_iter().collect();
        for (h, v) in [(a, 2), (b, 3)] {
            match h.join().unwrap() {
                Ok(()) => assert!(drained.contains(&v), "{v} sent but not drained"),
                Err(SendError(back)) => {
                    assert_eq!(back, v);
                    assert!(!drained.contains(&v), "{v} both drained and handed back");
                }
            }
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

/// Another producer closes the channel while the consumer takes the offer:
/// the offered send reports `Ok` exactly when its message is drained.
#[test]
fn handoff_racing_a_producer_close() {
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        tx.send(1).unwrap();
        let closer = tx.clone();
        let a = thread::spawn(move || (tx.send(2), tx));
        let c = thread::spawn(move || assert!(closer.close()));
        let mut drained = vec![rx.recv().unwrap()];
        drained.extend(rx.try_iter());
        c.join().unwrap();
        let (sent, _tx) = a.join().unwrap();
        drained.extend(rx.try_iter());
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

/// A timed send whose message is on offer races the consumer's claim:
/// `Ok` and the message in the ring, or `Timeout` with the message back.
#[test]
fn handoff_racing_send_timeout() {
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        tx.send(1).unwrap();
        let a = thread::spawn(move || {
            let r = tx.send_timeout(2, Duration::from_millis(1));
            (r, tx)
        });
        assert_eq!(rx.recv(), Ok(1));
        let (sent, _tx) = a.join().unwrap();
        match sent {
            Ok(()) => assert_eq!(rx.try_recv(), Ok(2)),
            Err(SendTimeoutError::Timeout(v)) => {
                assert_eq!(v, 2);
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    });
}

/// The consumer closes (from its side) while a message is on offer, then
/// drains: a send that reports `Ok` is drained, one that fails has its
/// message back.
#[test]
fn handoff_racing_receiver_close() {
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        tx.send(1).unwrap();
        let a = thread::spawn(move || (tx.send(2), tx));
        assert!(rx.close());
        let drained: Vec<usize> = rx.try_iter().collect();
        let (sent, _tx) = a.join().unwrap();
        match sent {
            Ok(()) => assert_eq!(drained, [1, 2]),
            Err(SendError(v)) => {
                assert_eq!(v, 2);
                assert_eq!(drained, [1]);
            }
        }
    });
}

/// The consumer takes one message and is dropped while a producer's next
/// message may be on offer: each message is dropped exactly once (by the
/// consumer, the channel or the failed send).
#[test]
fn handoff_racing_receiver_drop_drops_each_message_once() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel::<Tracked>(1);
        tx.send(Tracked(1, drops.clone())).unwrap();
        let d = drops.clone();
        let a = thread::spawn(move || {
            let r = tx.send(Tracked(2, d));
            (r.is_ok(), tx)
        });
        drop(rx.recv().unwrap());
        drop(rx);
        let (_, tx) = a.join().unwrap();
        drop(tx);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

// The other direction of the hand-off: the consumer waiting on an empty
// ring accepts a message in the channel's accept cell, and a producer that
// finds it accepting (and the ring empty) fills that cell instead of
// claiming a slot.

/// Two producers race for the accepting consumer's cell and the ring: each
/// producer's messages arrive in its order, and all of them arrive.
#[test]
fn accept_racing_a_second_producer_keeps_each_order() {
    // One preemption: three threads and three messages.
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<usize>(2);
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let b = thread::spawn(move || tx2.send(10).unwrap());
        let got: Vec<usize> = (0..3).map(|_| rx.recv().unwrap()).collect();
        let ones: Vec<usize> = got.iter().copied().filter(|&v| v < 10).collect();
        assert_eq!(ones, [1, 2]);
        assert!(got.contains(&10));
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// A producer's send races another producer's `close_with`, with the
/// consumer accepting: the final message is received last, and the other
/// send either arrives before it or fails with its message back.
#[test]
fn accept_racing_close_with_keeps_the_final_message_last() {
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        let tx2 = tx.clone();
        // Flagged joins: a send's wake-up may reach the receiver after it
        // stopped waiting (see `common::Flagged::join`).
        let a = common::spawn_flagged(move || tx.send(1));
        let b = common::spawn_flagged(move || tx2.close_with(99).unwrap());
        let mut got = Vec::new();
        while let Ok(v) = rx.recv() {
            got.push(v);
        }
        let sent = a.join();
        b.join();
        match sent {
            Ok(()) => assert_eq!(got, [1, 99]),
            Err(SendError(v)) => {
                assert_eq!(v, 1);
                assert_eq!(got, [99]);
            }
        }
    });
}

/// A zero-timeout receive races a producer's send: either the receive has
/// the message, or it timed out and the message is in the ring.
#[test]
fn accept_racing_recv_timeout() {
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        // A flagged join: the send may wake the receiver after its receive
        // timed out (see `common::Flagged::join`).
        let h = common::spawn_flagged(move || {
            tx.send(1).unwrap();
            tx
        });
        let got = rx.recv_timeout(Duration::ZERO);
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

/// A receiver parked on an empty ring is woken by the send that fills its
/// accept cell, with no close after it to wake it instead: the sender
/// keeps its handle. (A fill wakes the receiver only when the receive
/// queue's word says it may be registered; every other model here ends
/// with the sender's drop, whose close also wakes the receiver, and
/// passed with the wake-up left out.)
#[test]
fn accept_wakes_a_parked_receiver() {
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(1);
        let h = common::spawn_flagged(move || {
            tx.send(1).unwrap();
            tx
        });
        assert_eq!(rx.recv(), Ok(1));
        let _tx = h.join();
    });
}

/// `send_many` whose iterator sends through a clone while producing item
/// 1, racing the consumer on a ring of 2: the batch is registered on its
/// thread (a loom thread-local), the iterator's send sends it first, and
/// the batch's claims race the consumer's frees. The iterator's message
/// lands where a loop of `send` puts it (0, 10, 1), nothing is lost or
/// repeated.
#[test]
fn send_many_with_a_reentrant_iterator_racing_the_consumer() {
    rillet::loom_accept(false);
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(2);
        let inner = tx.clone();
        let a = thread::spawn(move || {
            let items = (0..2).inspect(|&i| {
                if i == 1 {
                    inner.send(10).unwrap();
                }
            });
            assert_eq!(tx.send_many(items), Ok(2));
        });
        let got: Vec<usize> = rx.iter().collect();
        assert_eq!(got, [0, 10, 1]);
        a.join().unwrap();
    });
}

/// `send_many` of three messages into a ring of 2, racing another
/// producer and the consumer across a lap. Under `Block` a batch's room
/// comes from `head` alone (no slot's stamp is read): it must count the
/// other producer's claim made since `send_many` looked at the ring, and
/// never take a slot whose message of the lap before is unread (claiming
/// one slot more than `head` allows fails the model, and so does reading
/// `head` Relaxed). Every message arrives once, the batch's in order.
#[test]
fn send_many_across_a_lap_racing_a_producer_and_the_consumer() {
    rillet::loom_accept(false);
    model_bound_1(|| {
        let (tx, rx) = mpsc::channel::<usize>(2);
        let other = tx.clone();
        let a = thread::spawn(move || assert_eq!(tx.send_many(0..3), Ok(3)));
        let b = thread::spawn(move || other.send(10).unwrap());
        let got: Vec<usize> = rx.iter().collect();
        let ours: Vec<usize> = got.iter().copied().filter(|&m| m != 10).collect();
        assert_eq!(ours, [0, 1, 2]);
        assert_eq!(got.len(), 4);
        a.join().unwrap();
        b.join().unwrap();
    });
}

/// `recv_many` frees its run a part at a time (under loom a ring of 2
/// publishes `head` after each message) and wakes a producer blocked on
/// the full ring then, not only at the end: the producer's `send_many`
/// (whose room comes from `head`) refills the freed slot while the run
/// goes on, and the run may take that message too (runs of 1 to 4 are
/// explored). Every message arrives once, in order, and nobody waits
/// forever. Publishing one position too many mid-run fails the model (the
/// batch overwrites a message the run has not read).
#[test]
fn recv_many_frees_its_run_to_a_blocked_producer() {
    rillet::loom_accept(false);
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(2);
        let h = thread::spawn(move || assert_eq!(tx.send_many(0..4), Ok(4)));
        let mut got = Vec::new();
        while rx.recv_many(&mut got, 4).is_ok() {}
        assert_eq!(got, [0, 1, 2, 3]);
        h.join().unwrap();
    });
}

/// A receive made from inside `send_many`'s iterator sends the pending
/// batch first (without waiting for room: another producer may have taken
/// it) and looks again; racing a second producer, the receive finds a
/// message (a loop of `send` had sent 0 and 1), and every message arrives
/// once, the batch's in order.
#[test]
fn send_many_whose_iterator_receives_racing_a_producer() {
    rillet::loom_accept(false);
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(4);
        let other = tx.clone();
        let b = thread::spawn(move || other.send(10).unwrap());
        let mut got = Vec::new();
        let mut seen = None;
        let items = (0..3).inspect(|&i| {
            if i == 2 {
                seen = rx.try_recv().ok();
            }
        });
        assert_eq!(tx.send_many(items), Ok(3));
        got.extend(seen);
        b.join().unwrap();
        got.extend(rx.try_iter());
        assert!(seen.is_some(), "the batch was not sent before the receive");
        let ours: Vec<usize> = got.iter().copied().filter(|&m| m != 10).collect();
        assert_eq!(ours, [0, 1, 2]);
        assert_eq!(got.len(), 4);
    });
}

/// `send_many` of a batch racing a receiver-side close: as a loop of
/// `send`, every message taken from the iterator is either received
/// (enqueued before the close) or handed back in the error, once, in
/// order, and the items after the first failure stay in the iterator.
#[test]
fn send_many_racing_receiver_close_loses_nothing() {
    rillet::loom_accept(false);
    model(|| {
        let (tx, rx) = mpsc::channel::<usize>(4);
        let a = thread::spawn(move || {
            let mut items = 0..3;
            let back = match tx.send_many(items.by_ref()) {
                Ok(n) => {
                    assert_eq!(n, 3);
                    Vec::new()
                }
                Err(SendError(back)) => back,
            };
            (back, items.collect::<Vec<_>>())
        });
        rx.close();
        let mut got: Vec<usize> = rx.iter().collect();
        let (back, rest) = a.join().unwrap();
        got.extend(back);
        got.extend(rest);
        assert_eq!(got, [0, 1, 2]);
    });
}
