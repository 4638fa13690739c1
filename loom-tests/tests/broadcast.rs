//! loom models of the broadcast channel, on the real `rillet::broadcast`
//! code built with `--cfg loom`.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test broadcast`
//! (the four-thread models set their own bound of 1).

#![cfg(loom)]

mod common;

use common::{model, model_bound_1};
use loom::sync::Arc;
use loom::thread;
use rillet::broadcast::{self, RecvError, TryRecvError};
use rillet::{Overflow, SendError};

/// Receives everything until `Closed`, adding up lags.
fn drain(rx: &broadcast::Receiver<usize>) -> (Vec<usize>, u64) {
    let (mut got, mut lagged) = (Vec::new(), 0);
    loop {
        match rx.recv() {
            Ok(v) => got.push(v),
            Err(RecvError::Lagged(n)) => lagged += n,
            Err(RecvError::Closed) => return (got, lagged),
        }
    }
}

/// Checks per-sender order: sender A sends 1 then 2, sender B sends 3.
fn in_sender_order(got: &[usize]) -> bool {
    let a: Vec<_> = got.iter().filter(|&&v| v != 3).collect();
    a.windows(2).all(|w| w[0] < w[1])
}

/// Block, capacity 2: `recv_many` frees the slots of its batch and tells
/// a waiting sender once, at the end: a sender of four messages (it waits
/// for room at least once) gets through (no wake-up lost), and every
/// message arrives once, in order.
#[test]
fn recv_many_frees_a_run_for_a_waiting_sender() {
    model(|| {
        let (tx, rx) = broadcast::channel::<usize>(2);
        let sender = thread::spawn(move || {
            for v in 0..4 {
                tx.send(v).unwrap();
            }
        });
        let mut got = Vec::new();
        while got.len() < 4 {
            rx.recv_many(&mut got, 4).unwrap();
        }
        sender.join().unwrap();
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

/// Block, capacity 2: two senders (three messages, so one waits for room)
/// and two subscribers that park on empty. Both subscribers get all three
/// messages in per-sender order, then `Closed`.
#[test]
fn two_senders_two_subscribers_block_capacity_2() {
    // As in the `DropOldest` model below: the handles' last-by-load step
    // is off (with it, this model took five times as long).
    rillet::loom_last_by_load(false);
    model_bound_1(|| {
        let (tx, rx) = broadcast::channel::<usize>(2);
        let rx2 = tx.subscribe();
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let b = thread::spawn(move || tx2.send(3).unwrap());
        let other = thread::spawn(move || drain(&rx2));
        let (got, lagged) = drain(&rx);
        a.join().unwrap();
        b.join().unwrap();
        let (got2, lagged2) = other.join().unwrap();
        assert_eq!((lagged, lagged2), (0, 0));
        for g in [&got, &got2] {
            let mut sorted = g.clone();
            sorted.sort();
            assert_eq!(sorted, [1, 2, 3]);
            assert!(in_sender_order(g), "{g:?}");
        }
    });
}

/// DropOldest, capacity 2: evictions race the subscribers' copies. Each
/// subscriber receives or is told about every position exactly once, in
/// per-sender order, and the channel drops what it evicted.
#[test]
fn two_senders_two_subscribers_drop_oldest_capacity_2() {
    // The handles' last-by-load step (`counter::ChanRef`, modelled in the
    // SPSC and MPSC models) is off here: with four threads dropping
    // handles it made this model take more than five times as long (and
    // the `Block` model above five times).
    rillet::loom_last_by_load(false);
    model_bound_1(|| {
        let (tx, rx) = broadcast::Builder::new(2)
            .overflow(Overflow::DropOldest)
            .build::<usize>();
        let rx2 = tx.subscribe();
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let b = thread::spawn(move || tx2.send(3).unwrap());
        let other = thread::spawn(move || drain(&rx2));
        let (got, lagged) = drain(&rx);
        a.join().unwrap();
        b.join().unwrap();
        let (got2, lagged2) = other.join().unwrap();
        for (g, l) in [(&got, lagged), (&got2, lagged2)] {
            assert_eq!(g.len() as u64 + l, 3, "{g:?} lagged {l}");
            assert!(in_sender_order(g), "{g:?}");
        }
    });
}

/// DropOldest at capacity 1: a sender evicts the message a subscriber is
/// copying (the busy count keeps the evicter out until the copy is done).
/// Messages are `Arc`s: each is dropped exactly once whatever the
/// interleaving (the final count is checked).
#[test]
fn eviction_racing_recv() {
    model(|| {
        let (tx, rx) = broadcast::Builder::new(1)
            .overflow(Overflow::DropOldest)
            .build::<Arc<usize>>();
        let first = Arc::new(1);
        let probe = first.clone();
        tx.send(first).unwrap();
        let sender = thread::spawn(move || tx.send(Arc::new(2)).unwrap());
        let got = rx.try_recv();
        sender.join().unwrap();
        match &got {
            Ok(v) => assert_eq!(**v, 1),
            Err(TryRecvError::Lagged(1)) => {}
            other => panic!("unexpected {other:?}"),
        }
        // Only our probe (and a received copy) can still hold message 1.
        let expected = 1 + usize::from(got.is_ok());
        assert_eq!(Arc::strong_count(&probe), expected);
        drop(got);
        assert_eq!(rx.try_recv().map(|v| *v), Ok(2));
        drop(rx);
        assert_eq!(Arc::strong_count(&probe), 1);
    });
}

/// Block, capacity 1: the sender waits for a slow subscriber, which goes
/// away instead of reading: the sender is released at once and the other
/// subscriber gets both messages.
#[test]
fn subscriber_dropped_while_a_sender_waits_on_it() {
    model(|| {
        let (tx, fast) = broadcast::channel::<usize>(1);
        let slow = tx.subscribe();
        tx.send(1).unwrap();
        assert_eq!(fast.recv(), Ok(1));
        let sender = thread::spawn(move || {
            tx.send(2).unwrap();
        });
        drop(slow);
        sender.join().unwrap();
        assert_eq!(fast.recv(), Ok(2));
        assert_eq!(fast.recv(), Err(RecvError::Closed));
    });
}

/// A close (from a subscriber) racing a parked `recv` and a send: the
/// subscriber gets the message if the send won, then `Closed`; a send that
/// lost gets its message back.
#[test]
fn close_racing_recv_and_send() {
    model(|| {
        let (tx, rx) = broadcast::channel::<usize>(1);
        let closer_rx = tx.subscribe();
        let closer = thread::spawn(move || {
            assert!(closer_rx.close());
        });
        let sent = tx.send(7);
        let got = rx.recv();
        closer.join().unwrap();
        match sent {
            Ok(()) => {
                assert_eq!(got, Ok(7));
                assert_eq!(rx.recv(), Err(RecvError::Closed));
            }
            Err(SendError(7)) => assert_eq!(got, Err(RecvError::Closed)),
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert!(!tx.close());
    });
}

/// The last sender goes while the subscriber parks: it wakes with `Closed`.
#[test]
fn last_sender_drop_while_the_subscriber_parks() {
    model(|| {
        let (tx, rx) = broadcast::channel::<usize>(1);
        let tx2 = tx.clone();
        let a = thread::spawn(move || drop(tx));
        let b = thread::spawn(move || {
            let _ = tx2.send(5);
        });
        let first = rx.recv();
        a.join().unwrap();
        b.join().unwrap();
        match first {
            Ok(5) => assert_eq!(rx.recv(), Err(RecvError::Closed)),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// A subscriber clones itself while a message is being sent and the last
/// other subscriber leaves: the clone gets exactly what its original gets,
/// and the message is dropped exactly once.
#[test]
fn clone_racing_send_and_leave() {
    model(|| {
        let (tx, rx) = broadcast::channel::<Arc<usize>>(2);
        let leaver = tx.subscribe();
        let msg = Arc::new(1);
        let probe = msg.clone();
        let sender = thread::spawn(move || tx.send(msg).unwrap());
        let leave = thread::spawn(move || drop(leaver));
        let twin = rx.clone();
        sender.join().unwrap();
        leave.join().unwrap();
        assert_eq!(*rx.recv().unwrap(), 1);
        assert_eq!(*twin.recv().unwrap(), 1);
        assert_eq!(Arc::strong_count(&probe), 1);
        assert_eq!(rx.recv().map(|v| *v), Err(RecvError::Closed));
    });
}

/// DropOldest at capacity 1: a subscriber leaves (passing what it had not
/// read) while a sender evicts that same message and another subscriber
/// reads. Every message is dropped exactly once: by its last reader, the
/// leaver or the evicter. (Three threads that wait on each other's slot
/// states: one preemption.)
#[test]
fn leave_racing_eviction_and_recv() {
    model_bound_1(|| {
        let (tx, rx) = broadcast::Builder::new(1)
            .overflow(Overflow::DropOldest)
            .build::<Arc<usize>>();
        let leaver = tx.subscribe();
        let (first, second) = (Arc::new(1), Arc::new(2));
        let (p1, p2) = (first.clone(), second.clone());
        tx.send(first).unwrap();
        let sender = thread::spawn(move || tx.send(second).unwrap());
        let leave = thread::spawn(move || drop(leaver));
        let got = rx.try_recv().map(|v| *v);
        sender.join().unwrap();
        leave.join().unwrap();
        // Message 1 is gone from the channel whoever took it.
        assert_eq!(Arc::strong_count(&p1), 1, "got {got:?}");
        let rest: Vec<usize> = rx.try_iter().map(|v| *v).collect();
        assert_eq!(rest, [2]);
        assert_eq!(Arc::strong_count(&p2), 1);
        assert_eq!(rx.try_recv().map(|v| *v), Err(TryRecvError::Closed));
    });
}

/// A receive made by a subscriber from inside `send_many`'s iterator sends
/// the pending batch first and looks again (see the MPSC model of the same
/// name), while another subscriber receives on its own thread: the receive
/// finds 0, and both subscribers get 0, 1, 2 once each.
#[test]
fn send_many_whose_iterator_receives_racing_a_subscriber() {
    model(|| {
        let (tx, rx) = broadcast::channel::<usize>(4);
        let other = tx.subscribe();
        let b = thread::spawn(move || (0..3).map(|_| other.recv().unwrap()).collect::<Vec<_>>());
        let mut seen = None;
        let items = (0..3).inspect(|&i| {
            if i == 2 {
                seen = rx.try_recv().ok();
            }
        });
        assert_eq!(tx.send_many(items), Ok(3));
        assert_eq!(seen, Some(0), "the batch was not sent before the receive");
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(b.join().unwrap(), [0, 1, 2]);
    });
}

/// `send_many` whose iterator sends through a clone while producing item
/// 1, racing a subscriber on a ring of 2 (see the MPSC model of the same
/// name): the subscriber sees 0, 10, 1 in that order.
#[test]
fn send_many_with_a_reentrant_iterator_racing_the_subscriber() {
    model(|| {
        let (tx, rx) = broadcast::channel::<usize>(2);
        let inner = tx.clone();
        let a = thread::spawn(move || {
            let items = (0..2).inspect(|&i| {
                if i == 1 {
                    inner.send(10).unwrap();
                }
            });
            assert_eq!(tx.send_many(items), Ok(2));
        });
        let got: Vec<usize> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, [0, 10, 1]);
        a.join().unwrap();
    });
}
