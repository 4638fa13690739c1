//! Integration tests for `rillet::mpsc` (public API only).

use rillet::{
    mpsc, Overflow, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/scale.rs"]
mod scale;
#[path = "common/ring_end.rs"]
#[macro_use]
mod ring_end;
use scale::n;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug)]
struct Counted {
    id: usize,
    drops: Arc<AtomicUsize>,
    panic_on_drop: bool,
}

impl Counted {
    fn new(id: usize, drops: &Arc<AtomicUsize>) -> Self {
        Counted {
            id,
            drops: drops.clone(),
            panic_on_drop: false,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panic_on_drop && !thread::panicking() {
            panic!("Counted({}) panics in drop", self.id);
        }
    }
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn sender_is_send_sync_and_clone() {
    assert_send_sync::<mpsc::Sender<u8>>();
    let (tx, rx) = mpsc::channel(4);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    tx2.send(2).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
}

// ---------------------------------------------------------------- basics

#[test]
fn capacity_is_exact() {
    for cap in [1, 2, 3, 5, 8, 100] {
        let (tx, rx) = mpsc::channel(cap);
        assert_eq!(tx.capacity(), cap);
        for i in 0..cap {
            tx.try_send(i).unwrap();
        }
        assert!(tx.is_full() && rx.is_full());
        assert_eq!(rx.len(), cap);
        assert_eq!(tx.try_send(cap), Err(TrySendError::Full(cap)));
        assert_eq!(rx.recv(), Ok(0));
        tx.try_send(cap).unwrap();
        assert_eq!(tx.try_send(0), Err(TrySendError::Full(0)));
        let rest: Vec<_> = rx.try_iter().collect();
        assert_eq!(rest, (1..=cap).collect::<Vec<_>>());
        assert!(rx.is_empty());
    }
}

#[test]
#[should_panic(expected = "too large")]
fn absurd_capacity_panics_with_a_reason() {
    let _ = mpsc::channel::<u64>(usize::MAX / 2);
}

/// A capacity within the limits whose ring the system cannot provide: a
/// panic with a message, not an aborted process.
#[test]
#[cfg_attr(miri, ignore = "allocates terabytes")]
fn a_capacity_the_system_cannot_allocate_panics_with_a_message() {
    alloc::refused_or_built("mpsc::channel", || mpsc::channel::<[u64; 8]>((1 << 31) - 1));
}

#[test]
#[should_panic(expected = "rendezvous channel (capacity 0) has no buffer")]
fn rendezvous_with_a_drop_policy_panics_with_a_reason() {
    let _ = mpsc::Builder::new(0)
        .overflow(Overflow::DropOldest)
        .build::<u8>();
}

#[test]
fn zero_sized_messages() {
    let (tx, rx) = mpsc::channel(2);
    tx.send(()).unwrap();
    tx.send(()).unwrap();
    assert_eq!(tx.try_send(()), Err(TrySendError::Full(())));
    assert_eq!(rx.recv(), Ok(()));
    assert_eq!(rx.recv(), Ok(()));
}

// ---------------------------------------------------------------- close

#[test]
fn exactly_one_close_returns_true() {
    let (tx, rx) = mpsc::channel::<u8>(1);
    let tx2 = tx.clone();
    assert!(tx.close());
    assert!(!tx2.close());
    assert!(!rx.close());
    let (tx, rx) = mpsc::channel::<u8>(0);
    assert!(rx.close());
    assert!(!tx.close());
}

#[test]
fn concurrent_closes_from_both_sides_exactly_one_wins() {
    const THREADS: usize = 6;
    for cap in [0, 3] {
        for _ in 0..n(200) {
            let (tx, rx) = mpsc::channel::<u8>(cap);
            let barrier = Arc::new(Barrier::new(THREADS + 1));
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (tx, barrier) = (tx.clone(), barrier.clone());
                    thread::spawn(move || {
                        barrier.wait();
                        tx.close()
                    })
                })
                .collect();
            barrier.wait();
            let mine = rx.close();
            let wins = handles.into_iter().map(|h| h.join().unwrap());
            let total = wins.filter(|&w| w).count() + usize::from(mine);
            assert_eq!(total, 1);
        }
    }
}

#[test]
fn close_drains_then_closed_forever() {
    let (tx, rx) = mpsc::channel(4);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert!(rx.close());
    assert!(tx.is_closed() && rx.is_closed());
    assert_eq!(tx.send(3), Err(SendError(3)));
    assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
    assert_eq!(tx.send_timeout(5, ms(1)), Err(SendTimeoutError::Closed(5)));
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(2));
    for _ in 0..3 {
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.recv_timeout(ms(1)), Err(RecvTimeoutError::Closed));
    }
}

#[test]
fn last_sender_drop_closes() {
    let (tx, rx) = mpsc::channel(4);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed(), "a clone is still alive");
    tx2.send(2).unwrap();
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn receiver_drop_closes() {
    let (tx, rx) = mpsc::channel(4);
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(1), Err(SendError(1)));
}

#[test]
fn close_with_is_the_last_message_even_with_racing_producers() {
    for _ in 0..n(200) {
        let (tx, rx) = mpsc::channel(8);
        let barrier = Arc::new(Barrier::new(4));
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let (tx, barrier) = (tx.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    let mut ok = 0;
                    while tx.send(p).is_ok() {
                        ok += 1;
                    }
                    ok
                })
            })
            .collect();
        barrier.wait();
        // The final message comes from a producer thread too; under `Block`
        // it competes for room with the others.
        let closer = thread::spawn(move || {
            thread::yield_now();
            tx.close_with(99)
        });
        let got: Vec<_> = rx.iter().collect();
        closer.join().unwrap().unwrap();
        assert_eq!(got.last(), Some(&99), "the final message is last");
        let sent: usize = producers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(got.len(), sent + 1, "every Ok send was received");
    }
}

#[test]
fn close_with_fails_on_a_closed_channel() {
    let (tx, rx) = mpsc::channel(2);
    rx.close();
    assert_eq!(tx.close_with(1), Err(SendError(1)));
}

#[test]
fn close_with_under_each_policy_on_a_full_ring() {
    let (tx, rx) = mpsc::Builder::new(1).overflow(Overflow::DropOldest).build();
    tx.send(1).unwrap();
    tx.close_with(2).unwrap();
    assert_eq!(rx.iter().collect::<Vec<_>>(), [2]);
    assert_eq!(rx.dropped(), 1);

    // The final message always goes in: DropNewest evicts for it too.
    let (tx, rx) = mpsc::Builder::new(1).overflow(Overflow::DropNewest).build();
    tx.send(1).unwrap();
    tx.close_with(2).unwrap();
    assert_eq!(rx.iter().collect::<Vec<_>>(), [2]);
    assert_eq!(rx.dropped(), 1);

    let (tx, rx) = mpsc::channel(1);
    tx.send(1).unwrap();
    let h = thread::spawn(move || tx.close_with(2));
    thread::sleep(ms(30));
    assert_eq!(rx.recv(), Ok(1));
    h.join().unwrap().unwrap();
    assert_eq!(rx.iter().collect::<Vec<_>>(), [2]);
}

// ---------------------------------------------------------------- wake-ups

#[test]
fn parked_receiver_is_woken_by_last_sender_drop() {
    let (tx, rx) = mpsc::channel::<u8>(2);
    let tx2 = tx.clone();
    let h = thread::spawn(move || rx.recv());
    thread::sleep(ms(30));
    drop(tx);
    thread::sleep(ms(10));
    drop(tx2);
    assert_eq!(h.join().unwrap(), Err(RecvError));
}

#[test]
fn parked_senders_are_woken_by_receiver_close() {
    let (tx, rx) = mpsc::channel(1);
    tx.send(0).unwrap();
    let handles: Vec<_> = (1..4)
        .map(|i| {
            let tx = tx.clone();
            thread::spawn(move || tx.send(i))
        })
        .collect();
    thread::sleep(ms(50));
    rx.close();
    for h in handles {
        assert!(h.join().unwrap().is_err());
    }
    assert_eq!(rx.recv(), Ok(0));
    assert_eq!(rx.recv(), Err(RecvError));
}

/// DESIGN.md: a deadline is looked at only after the operation was tried.
/// `send_deadline` has no attempt of its own before the wait (the wait's
/// first attempt is it), so a deadline already past still sends into a
/// ring with room, also with the consumer parked, and on a full ring it
/// times out with the message handed back.
#[test]
fn send_deadline_already_past_still_tries_first() {
    let past = Instant::now();
    for cap in [1, 64, 1024] {
        let (tx, rx) = mpsc::channel(cap);
        assert_eq!(tx.send_deadline(1, past), Ok(()));
        assert_eq!(rx.recv(), Ok(1));
        let h = thread::spawn(move || rx.recv());
        thread::sleep(ms(10));
        assert_eq!(tx.send_deadline(2, past), Ok(()));
        assert_eq!(h.join().unwrap(), Ok(2));
    }
    let (tx, _rx) = mpsc::channel(1);
    tx.send(1).unwrap();
    assert_eq!(tx.send_deadline(2, past), Err(SendTimeoutError::Timeout(2)));
}

#[test]
fn timeouts() {
    let (tx, rx) = mpsc::channel(1);
    assert_eq!(rx.recv_timeout(ms(10)), Err(RecvTimeoutError::Timeout));
    tx.send(1).unwrap();
    assert_eq!(
        tx.send_timeout(2, ms(10)),
        Err(SendTimeoutError::Timeout(2))
    );
    assert_eq!(
        tx.send_deadline(3, Instant::now()),
        Err(SendTimeoutError::Timeout(3))
    );
    assert_eq!(rx.recv_deadline(Instant::now()), Ok(1));
    let h = thread::spawn(move || {
        thread::sleep(ms(20));
        tx.send(4).unwrap();
    });
    assert_eq!(rx.recv_timeout(Duration::MAX), Ok(4));
    h.join().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::MAX),
        Err(RecvTimeoutError::Closed)
    );
}

// ---------------------------------------------------------------- overflow

#[test]
fn drop_newest_and_drop_oldest() {
    let (tx, rx) = mpsc::Builder::new(3).overflow(Overflow::DropNewest).build();
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    assert_eq!(tx.dropped(), 7);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);

    let (tx, rx) = mpsc::Builder::new(3).overflow(Overflow::DropOldest).build();
    for i in 0..10 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(rx.dropped(), 7);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [7, 8, 9]);
}

/// `send_many` on a full `DropNewest` ring drops each message as `send`
/// would (counted, then dropped) before it asks for the next, also when a
/// drop panics: the panic comes out, the items after it stay in the
/// iterator, and the ring is untouched.
#[test]
fn send_many_on_a_full_drop_newest_ring_drops_each_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::Builder::new(2).overflow(Overflow::DropNewest).build();
    let sent = tx.send_many((0..40).map(|i| Counted::new(i, &drops)));
    assert_eq!(sent.ok(), Some(40));
    assert_eq!((tx.dropped(), drops.load(Ordering::SeqCst)), (38, 38));

    let mut batch = (40..50).map(|i| {
        let mut m = Counted::new(i, &drops);
        m.panic_on_drop = i == 43;
        m
    });
    let r = catch_unwind(AssertUnwindSafe(|| tx.send_many(&mut batch)));
    assert!(r.is_err(), "the panicking drop comes out");
    assert_eq!((tx.dropped(), drops.load(Ordering::SeqCst)), (42, 42));
    assert_eq!(batch.next().map(|m| m.id), Some(44));
    let ids: Vec<_> = rx.try_iter().map(|m| m.id).collect();
    assert_eq!(ids, [0, 1]);
    let sent = tx.send_many((50..55).map(|i| Counted::new(i, &drops)));
    assert_eq!(sent.ok(), Some(5));
    assert_eq!(tx.dropped(), 45);
    assert_eq!(rx.try_iter().map(|m| m.id).collect::<Vec<_>>(), [50, 51]);
}

#[test]
fn drop_oldest_with_racing_producers_receives_or_evicts_each_once() {
    let per = n(20_000);
    for cap in [1, 2, 7] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::Builder::new(cap)
            .overflow(Overflow::DropOldest)
            .build();
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let (tx, drops) = (tx.clone(), drops.clone());
                thread::spawn(move || {
                    for i in 0..per {
                        tx.send(Counted::new(p * per + i, &drops)).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut seen = vec![false; 3 * per];
        let mut last = [None::<usize>; 3];
        for m in rx.iter() {
            assert!(!seen[m.id], "received twice");
            seen[m.id] = true;
            let p = m.id / per;
            assert!(last[p].map_or(true, |l| m.id > l), "per-producer order");
            last[p] = Some(m.id);
        }
        for p in producers {
            p.join().unwrap();
        }
        let received = seen.iter().filter(|&&s| s).count();
        assert_eq!(received as u64 + rx.dropped(), 3 * per as u64, "cap {cap}");
        drop(rx);
        assert_eq!(drops.load(Ordering::SeqCst), 3 * per);
    }
}

// ---------------------------------------------------------------- drops

#[test]
fn buffered_evicted_and_rejected_messages_are_dropped_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::Builder::new(2).overflow(Overflow::DropOldest).build();
    for i in 0..5 {
        tx.send(Counted::new(i, &drops)).unwrap();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 3, "evicted");
    rx.close();
    let back = tx.send(Counted::new(9, &drops)).unwrap_err().0;
    assert_eq!(back.id, 9);
    drop(back);
    assert_eq!(drops.load(Ordering::SeqCst), 4, "rejected");
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), 6, "buffered");
}

#[test]
fn panicking_drop_of_buffered_messages_drops_the_rest_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel(4);
    for i in 0..4 {
        let mut m = Counted::new(i, &drops);
        m.panic_on_drop = i == 0;
        tx.send(m).unwrap();
    }
    drop(tx);
    assert!(catch_unwind(AssertUnwindSafe(move || drop(rx))).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

// ---------------------------------------------------------------- batches

recv_many_across_the_ring_end!(mpsc);

#[test]
fn send_many_and_recv_many() {
    let (tx, rx) = mpsc::channel(100);
    assert_eq!(tx.send_many(0..70), Ok(70));
    let mut buf = Vec::new();
    assert_eq!(rx.recv_many(&mut buf, 50), Ok(50));
    assert_eq!(rx.recv_many(&mut buf, 50), Ok(20));
    assert_eq!(buf, (0..70).collect::<Vec<_>>());
    assert_eq!(rx.recv_many(&mut buf, 0), Ok(0));
    rx.close();
    let mut rest = vec![1, 2, 3].into_iter();
    assert_eq!(tx.send_many(rest.by_ref()), Err(SendError(vec![1])));
    assert_eq!(rest.collect::<Vec<_>>(), [2, 3]);
    assert_eq!(rx.recv_many(&mut buf, 5), Err(RecvError));
}

#[test]
fn send_many_from_many_producers_keeps_per_producer_order() {
    let per = n(20_000);
    let (tx, rx) = mpsc::channel(16);
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                let items: Vec<_> = (0..per).map(|i| (p, i)).collect();
                for chunk in items.chunks(37) {
                    assert_eq!(tx.send_many(chunk.iter().copied()), Ok(chunk.len()));
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0usize; 4];
    let mut buf = Vec::new();
    while rx.recv_many(&mut buf, 13).is_ok() {
        for (p, i) in buf.drain(..) {
            assert_eq!(i, next[p]);
            next[p] += 1;
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(next, [per; 4]);
}

// ---------------------------------------------------------------- stress

#[test]
fn eight_producers_checksum() {
    let per = n(50_000) as u64;
    // Under Miri without capacity 4 (between the two others): eight
    // threads per capacity made this 32 s of the Miri job.
    let caps: &[usize] = if cfg!(miri) {
        &[1, 1024]
    } else {
        &[1, 4, 1024]
    };
    for &cap in caps {
        let (tx, rx) = mpsc::channel(cap);
        let producers: Vec<_> = (0..8u64)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..per {
                        tx.send(p * per + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let (mut sum, mut count) = (0u64, 0u64);
        let mut last = [None::<u64>; 8];
        for v in rx.iter() {
            let p = (v / per) as usize;
            assert!(last[p].map_or(true, |l| v > l));
            last[p] = Some(v);
            sum += v;
            count += 1;
        }
        for p in producers {
            p.join().unwrap();
        }
        let total = 8 * per;
        assert_eq!(count, total);
        assert_eq!(sum, total * (total - 1) / 2, "cap {cap}");
    }
}

#[test]
fn last_sender_drops_racing_a_parked_receiver() {
    for _ in 0..n(300) {
        let (tx, rx) = mpsc::channel::<u8>(1);
        let others: Vec<_> = (0..3).map(|_| tx.clone()).collect();
        let h = thread::spawn(move || rx.recv());
        let droppers: Vec<_> = others
            .into_iter()
            .map(|tx| thread::spawn(move || drop(tx)))
            .collect();
        drop(tx);
        for d in droppers {
            d.join().unwrap();
        }
        assert_eq!(h.join().unwrap(), Err(RecvError));
    }
}

// ---------------------------------------------------------------- rendezvous

#[test]
fn rendezvous_send_completes_only_when_received() {
    let (tx, rx) = mpsc::channel(0);
    assert_eq!(tx.capacity(), 0);
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let taken = Arc::new(AtomicUsize::new(0));
    let t = taken.clone();
    let h = thread::spawn(move || {
        tx.send(7).unwrap();
        assert_eq!(
            t.load(Ordering::SeqCst),
            1,
            "send returned before the receive"
        );
        tx.send(8).unwrap();
    });
    thread::sleep(ms(30));
    taken.store(1, Ordering::SeqCst);
    assert_eq!(rx.recv(), Ok(7));
    assert_eq!(rx.recv(), Ok(8));
    h.join().unwrap();
    assert_eq!(rx.recv(), Err(RecvError));
}

/// A rendezvous `send_many` hands its messages over together (the
/// receiver takes them one by one, or a run at a time with `recv_many`),
/// in order, and returns only once the receiver took the last: the
/// receiver holds the last back until a flag is set, and `send_many` finds
/// the flag set when it returns.
#[test]
fn rendezvous_send_many_returns_once_the_last_is_taken() {
    let total = n(100);
    for batch_recv in [false, true] {
        let (tx, rx) = mpsc::channel::<usize>(0);
        let released = Arc::new(AtomicBool::new(false));
        let r = released.clone();
        let h = thread::spawn(move || {
            assert_eq!(tx.send_many(0..total), Ok(total));
            assert!(
                r.load(Ordering::SeqCst),
                "send_many returned before its last message was taken"
            );
            assert_eq!(tx.send_many(std::iter::empty()), Ok(0));
        });
        let mut got = Vec::new();
        while got.len() < total - 1 {
            if batch_recv {
                let max = total - 1 - got.len();
                rx.recv_many(&mut got, max).unwrap();
            } else {
                got.push(rx.recv().unwrap());
            }
        }
        thread::sleep(ms(20));
        released.store(true, Ordering::SeqCst);
        got.push(rx.recv().unwrap());
        assert_eq!(got, (0..total).collect::<Vec<_>>());
        h.join().unwrap();
        assert_eq!(rx.recv(), Err(RecvError));
    }
}

/// Several rendezvous `send_many`s and plain sends at once: every message
/// arrives once, each sender's in its order.
#[test]
fn rendezvous_send_many_from_many_senders_keeps_each_order() {
    let per = n(2_000);
    let (tx, rx) = mpsc::channel::<(usize, usize)>(0);
    let hs: Vec<_> = (0..3)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                if p == 2 {
                    for i in 0..per {
                        tx.send((p, i)).unwrap();
                    }
                } else {
                    let mut i = 0;
                    while i < per {
                        let next = (i + 1 + i % 70).min(per);
                        assert_eq!(tx.send_many((i..next).map(|i| (p, i))), Ok(next - i));
                        i = next;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0; 3];
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match rx.recv_many(&mut buf, 1 + next[0] % 40) {
            Ok(_) => {}
            Err(RecvError) => break,
        }
        for &(p, i) in &buf {
            assert_eq!(i, next[p], "sender {p} out of order");
            next[p] += 1;
        }
    }
    assert_eq!(next, [per; 3]);
    for h in hs {
        h.join().unwrap();
    }
}

/// The receiver leaves in the middle of a rendezvous `send_many`: the
/// messages it did not take come back in the error, in order, and nothing
/// is lost or received twice.
#[test]
fn rendezvous_send_many_racing_the_receivers_drop_hands_back_the_rest() {
    let total = n(200);
    for take in [0, 1, 5, 63, 64, 65, 200].map(|t| t.min(total)) {
        let (tx, rx) = mpsc::channel::<usize>(0);
        let h = thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < take {
                let max = take - got.len();
                rx.recv_many(&mut got, max).unwrap();
            }
            got
        });
        let back = match tx.send_many(0..total) {
            Ok(sent) => {
                assert_eq!((sent, take), (total, total));
                Vec::new()
            }
            Err(SendError(back)) => back,
        };
        let got = h.join().unwrap();
        assert_eq!(got, (0..take).collect::<Vec<_>>());
        let resumed = back.first().copied().unwrap_or(total);
        assert!(
            resumed >= take,
            "message {resumed} both received and handed back"
        );
        assert_eq!(back, (resumed..resumed + back.len()).collect::<Vec<_>>());
        // What the iterator still held was never taken from it: only the
        // current batch comes back.
        assert!(resumed + back.len() <= total);
    }
}

/// A rendezvous `send_many` whose iterator sends on the same channel while
/// producing an item: the items before it are handed over first (the send
/// waits for the receiver to take them, as the loop's sends had), so the
/// receiver sees the loop's order.
#[test]
fn rendezvous_send_many_with_a_reentrant_iterator_keeps_loop_order() {
    let (tx, rx) = mpsc::channel::<usize>(0);
    let h = thread::spawn(move || {
        let inner = tx.clone();
        let items = (0..6).inspect(move |i| {
            if i % 2 == 1 {
                inner.send(100 + i).unwrap();
            }
        });
        assert_eq!(tx.send_many(items), Ok(6));
    });
    let got: Vec<usize> = rx.iter().collect();
    assert_eq!(got, [0, 101, 1, 2, 103, 3, 4, 105, 5]);
    h.join().unwrap();
}

/// A rendezvous `send_many` whose iterator panics: what it yielded before
/// the panic is handed to the receiver (as the loop had sent it), then
/// the panic goes on; nothing is lost or dropped twice.
#[test]
fn rendezvous_send_many_whose_iterator_panics_keeps_what_it_yielded() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<Counted>(0);
    let receiver = thread::spawn(move || rx.iter().map(|m| m.id).collect::<Vec<_>>());
    let d = drops.clone();
    let result = catch_unwind(AssertUnwindSafe(|| {
        tx.send_many((0..5).map(|i| {
            if i == 3 {
                panic!("the iterator panics");
            }
            Counted::new(i, &d)
        }))
    }));
    assert!(result.is_err());
    tx.send(Counted::new(9, &drops)).unwrap();
    drop(tx);
    assert_eq!(receiver.join().unwrap(), [0, 1, 2, 9]);
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn rendezvous_timeout_hands_the_message_back() {
    let (tx, rx) = mpsc::channel(0);
    assert_eq!(
        tx.send_timeout(1, ms(20)),
        Err(SendTimeoutError::Timeout(1))
    );
    assert_eq!(rx.recv_timeout(ms(20)), Err(RecvTimeoutError::Timeout));
    rx.close();
    assert_eq!(tx.send(2), Err(SendError(2)));
}

#[test]
fn rendezvous_try_send_meets_a_waiting_receiver() {
    let (tx, rx) = mpsc::channel(0);
    let h = thread::spawn(move || rx.recv());
    let mut v = 5;
    loop {
        match tx.try_send(v) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) => {
                v = back;
                thread::yield_now();
            }
            Err(TrySendError::Closed(_)) => unreachable!(),
        }
    }
    assert_eq!(h.join().unwrap(), Ok(5));
}

#[test]
fn rendezvous_close_wakes_waiting_senders_with_their_messages() {
    let (tx, rx) = mpsc::channel(0);
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let tx = tx.clone();
            thread::spawn(move || tx.send(i))
        })
        .collect();
    thread::sleep(ms(30));
    rx.close();
    let mut back: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap_err().0)
        .collect();
    back.sort();
    assert_eq!(back, [0, 1, 2]);
}

#[test]
fn rendezvous_close_with_closes_after_the_meeting() {
    let (tx, rx) = mpsc::channel(0);
    let h = thread::spawn(move || tx.close_with("done"));
    assert_eq!(rx.recv(), Ok("done"));
    h.join().unwrap().unwrap();
    assert!(rx.is_closed());
    assert!(!rx.close());
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn rendezvous_many_senders_each_delivered_once() {
    let per = n(2_000);
    let (tx, rx) = mpsc::channel(0);
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..per {
                    tx.send(p * per + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut got: Vec<_> = rx.iter().collect();
    for p in producers {
        p.join().unwrap();
    }
    got.sort();
    assert_eq!(got, (0..4 * per).collect::<Vec<_>>());
}

#[test]
fn rendezvous_timed_sends_racing_receives_lose_nothing() {
    for _ in 0..n(200) {
        let (tx, rx) = mpsc::channel(0);
        let h = thread::spawn(move || {
            let mut ok = 0;
            for i in 0..20 {
                match tx.send_timeout(i, Duration::from_micros(50)) {
                    Ok(()) => ok += 1,
                    Err(SendTimeoutError::Timeout(v)) => assert_eq!(v, i),
                    Err(SendTimeoutError::Closed(_)) => unreachable!(),
                }
            }
            ok
        });
        let mut got = 0;
        while let Ok(_v) = rx.recv() {
            got += 1;
        }
        assert_eq!(h.join().unwrap(), got);
    }
}

// ------------------------------------------------- re-entrancy and panics

/// A re-entrant iterator: `send_many` behaves like a loop of `send`, so a
/// message the iterator sends (through the handle itself or a clone) while
/// it produces item `i` lands after item `i - 1` and before `i`. (Before
/// the fix the batch being collected went in after the iterator's sends:
/// `[100, 101, 102, 103, 0, 1, 2, 3]`.)
#[test]
fn send_many_with_a_reentrant_iterator_is_a_loop_of_send() {
    for overflow in [Overflow::Block, Overflow::DropNewest, Overflow::DropOldest] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::Builder::new(16).overflow(overflow).build();
        let inner = tx.clone();
        let items = (0..4).map(|i| {
            if i % 2 == 0 {
                tx.send(Counted::new(100 + i, &drops)).unwrap();
            } else {
                inner.send(Counted::new(100 + i, &drops)).unwrap();
            }
            Counted::new(i, &drops)
        });
        assert_eq!(tx.send_many(items).map_err(|_| ()), Ok(4), "{overflow:?}");
        let got: Vec<usize> = rx.try_iter().map(|m| m.id).collect();
        assert_eq!(got, [100, 0, 101, 1, 102, 2, 103, 3], "{overflow:?}");
        drop((tx, inner, rx));
        assert_eq!(drops.load(Ordering::SeqCst), 8, "{overflow:?}");
    }
}

/// The same across threads on small rings, so that the inner sends use up
/// the room the outer loop counted on and both wait for the receiver.
#[test]
fn reentrant_send_many_on_a_small_ring_keeps_loop_order() {
    let total = n(20_000);
    for cap in [1, 2, 3, 8, 200] {
        let (tx, rx) = mpsc::channel(cap);
        let h = thread::spawn(move || {
            let inner = tx.clone();
            let tx = &tx;
            let items = (0..total).inspect(|&i| {
                if i % 3 == 0 {
                    inner.send(usize::MAX - i).unwrap();
                }
            });
            tx.send_many(items).map_err(|_| ())
        });
        let mut expected = Vec::new();
        for i in 0..total {
            if i % 3 == 0 {
                expected.push(usize::MAX - i);
            }
            expected.push(i);
        }
        let got: Vec<usize> = rx.iter().collect();
        assert_eq!(h.join().unwrap(), Ok(total));
        assert!(
            got == expected,
            "cap {cap}: order differs from a loop of send"
        );
    }
}

/// An iterator that calls `send_many` on the same channel: the inner call
/// is one more loop of `send`, made while the outer one produces item 2.
#[test]
fn nested_send_many_on_the_same_channel_is_a_loop_of_send() {
    let (tx, rx) = mpsc::channel(64);
    let items = (0..4).inspect(|&i| {
        if i == 2 {
            assert_eq!(tx.send_many(10..13), Ok(3));
        }
    });
    assert_eq!(tx.send_many(items), Ok(4));
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 10, 11, 12, 2, 3]);
}

/// The iterator closes the channel (through the receiver) while producing
/// item 3: items 0..3 were sent before the close, item 3 comes back, and
/// the iterator is asked for nothing more. (Before the fix: nothing was
/// sent, and the error held `0..5`.)
#[test]
fn send_many_whose_iterator_closes_the_channel() {
    let (tx, rx) = mpsc::channel(8);
    let mut items = (0..5).inspect(|&i| {
        if i == 3 {
            assert!(rx.close());
        }
    });
    assert_eq!(tx.send_many(items.by_ref()), Err(SendError(vec![3])));
    assert_eq!(items.next(), Some(4), "unpulled items stay in the iterator");
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
}

/// A panicking iterator: what it yielded before the panic was sent, as by
/// a loop of `send`, and the sender stays usable. (Before the fix the batch
/// being collected was dropped: 0, 1 and 2 lost, and not counted.)
#[test]
fn send_many_whose_iterator_panics_keeps_what_it_yielded() {
    for overflow in [Overflow::Block, Overflow::DropNewest, Overflow::DropOldest] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::Builder::new(8).overflow(overflow).build();
        let result = catch_unwind(AssertUnwindSafe(|| {
            tx.send_many((0..5).map(|i| {
                if i == 3 {
                    panic!("the iterator panics");
                }
                Counted::new(i, &drops)
            }))
        }));
        assert!(result.is_err());
        tx.send(Counted::new(9, &drops)).unwrap();
        let got: Vec<usize> = rx.try_iter().map(|m| m.id).collect();
        assert_eq!(got, [0, 1, 2, 9], "{overflow:?}");
        drop((tx, rx));
        assert_eq!(drops.load(Ordering::SeqCst), 4, "{overflow:?}");
    }
}

/// An iterator that receives on the same channel while `send_many` runs
/// finds what a loop of `send` had sent by then. Every third item it makes
/// one call, so that each call finds two items waiting in the pending batch:
/// `try_recv`, `recv`, a zero-timeout receive, `recv_many`, a `select!`
/// with a default, `len()`. (Before the fix the batch was invisible to
/// them: the first `try_recv` found nothing.)
#[test]
fn send_many_whose_iterator_receives_sees_what_a_loop_sent() {
    for overflow in [Overflow::Block, Overflow::DropNewest, Overflow::DropOldest] {
        let (tx, rx) = mpsc::Builder::new(16).overflow(overflow).build();
        let mut received = Vec::new();
        let items = (0..20u32).inspect(|&i| {
            if i % 3 != 2 {
                return;
            }
            // A loop of `send` has sent `0..i` by now. Checked at once,
            // before a later `recv` could wait for what is missing.
            let before = received.len();
            let op = i / 3;
            match op {
                0 => received.extend(rx.try_recv().ok()),
                1 => received.extend(rx.recv().ok()),
                2 => received.extend(rx.recv_timeout(Duration::ZERO).ok()),
                3 => {
                    rx.recv_many(&mut received, 100).unwrap();
                }
                4 => received.extend(rillet::select! {
                    recv(rx) -> m => m.ok(),
                    default => None,
                }),
                _ => {
                    let len = rx.len();
                    assert_eq!(len, i as usize - before, "{overflow:?}: len() at item {i}");
                    return;
                }
            }
            let want: Vec<u32> = if op == 3 {
                (before as u32..i).collect()
            } else {
                vec![before as u32]
            };
            assert_eq!(
                received[before..],
                want,
                "{overflow:?}: call {op} at item {i}"
            );
        });
        assert_eq!(tx.send_many(items), Ok(20), "{overflow:?}");
        received.extend(rx.try_iter());
        assert_eq!(received, (0..20).collect::<Vec<_>>(), "{overflow:?}");
        assert_eq!(rx.dropped(), 0, "{overflow:?}");
    }
}

/// On a full `Block` channel a loop of `send` waits in the send of the item
/// it just took: `send_many` asks the iterator for no item beyond that
/// before the receiver makes room (capacity 2, a receiver that starts only
/// well after item 2 was taken: item 3 must not be asked for before).
#[test]
fn send_many_takes_no_item_a_loop_would_be_waiting_to_take() {
    let (tx, rx) = mpsc::channel(2);
    let took_2 = Arc::new(AtomicBool::new(false));
    let receiving = Arc::new(AtomicBool::new(false));
    let (t2, r2) = (took_2.clone(), receiving.clone());
    let h = thread::spawn(move || {
        let mut early = Vec::new();
        let items = (0..10).inspect(|&i| {
            if i == 2 {
                t2.store(true, Ordering::SeqCst);
            }
            if i > 2 && !r2.load(Ordering::SeqCst) {
                early.push(i);
            }
        });
        assert_eq!(tx.send_many(items), Ok(10));
        early
    });
    while !took_2.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    // Time for the sender to ask for more, if it would: a wrong answer
    // shows up as a failure, never the other way round.
    thread::sleep(ms(20));
    receiving.store(true, Ordering::SeqCst);
    assert_eq!(rx.iter().collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
    assert_eq!(
        h.join().unwrap(),
        Vec::<i32>::new(),
        "items asked for while a loop waits"
    );
}

/// Forwarding with `send_many(upstream.iter())`: each item goes on before
/// the iterator waits for the next one, as a loop of `send` would send it.
/// (Before the fix the first item waited in the batch for the second.)
#[test]
fn send_many_forwards_each_item_of_a_waiting_iterator() {
    let (up_tx, up_rx) = mpsc::channel::<u32>(8);
    let (tx, rx) = mpsc::channel(8);
    let h = thread::spawn(move || tx.send_many(up_rx.iter()));
    let items = n(100);
    for i in 0..items as u32 {
        up_tx.send(i).unwrap();
        // Nothing else is sent until this one arrives: a batch that held
        // it back would hang here (the timeout only turns a hang into a
        // failure).
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(i));
    }
    drop(up_tx);
    assert_eq!(h.join().unwrap(), Ok(items));
}

#[test]
fn close_with_on_a_full_channel_evicts_the_oldest_under_both_drop_policies() {
    for overflow in [Overflow::DropNewest, Overflow::DropOldest] {
        let (tx, rx) = mpsc::Builder::new(2).overflow(overflow).build();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        tx.close_with(3).unwrap();
        assert_eq!(rx.dropped(), 1, "{overflow:?}");
        assert_eq!(rx.len(), 2, "{overflow:?}");
        assert_eq!(rx.iter().collect::<Vec<_>>(), [2, 3], "{overflow:?}");
    }
}

#[test]
fn close_with_on_a_full_drop_newest_channel_with_other_senders_is_last() {
    let (tx, rx) = mpsc::Builder::new(1).overflow(Overflow::DropNewest).build();
    let other = tx.clone();
    other.send(1).unwrap();
    tx.close_with(2).unwrap();
    assert_eq!(other.send(3), Err(SendError(3)));
    assert_eq!(rx.iter().collect::<Vec<_>>(), [2]);
    assert_eq!(rx.dropped(), 1);
}

/// Under `DropOldest` an eviction happens only for a send that succeeds: a
/// send that fails on a racing close leaves the buffer as it was.
#[test]
fn drop_oldest_send_racing_close_evicts_only_for_a_successful_send() {
    for round in 0..n(2_000) {
        let cap = 1 + round % 3;
        let (tx, rx) = mpsc::Builder::new(cap)
            .overflow(Overflow::DropOldest)
            .build();
        let started = Arc::new(Barrier::new(2));
        let go = started.clone();
        let h = thread::spawn(move || {
            go.wait();
            let mut i = 0usize;
            while tx.send(i).is_ok() {
                i += 1;
            }
            i
        });
        started.wait();
        let mut rest: Vec<usize> = (0..round % 7).filter_map(|_| rx.try_recv().ok()).collect();
        rx.close();
        rest.extend(rx.iter());
        let sent = h.join().unwrap();
        for m in sent.saturating_sub(cap)..sent {
            assert!(
                rest.contains(&m),
                "round {round}, cap {cap}: message {m} of the last {cap} sent was lost (sent {sent}, received {rest:?})"
            );
        }
    }
}

/// Dropping the receiver drops the buffered messages at once, while senders
/// still exist (std's `drop_unreceived`).
#[test]
fn dropping_the_receiver_drops_buffered_messages_at_once() {
    for overflow in [Overflow::Block, Overflow::DropNewest, Overflow::DropOldest] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::Builder::new(4).overflow(overflow).build();
        for i in 0..3 {
            tx.send(Counted::new(i, &drops)).unwrap();
        }
        drop(rx);
        assert_eq!(drops.load(Ordering::SeqCst), 3, "{overflow:?}");
        assert!(tx.send(Counted::new(9, &drops)).is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 4);
        drop(tx);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    }
}

#[test]
fn dropping_the_receiver_with_a_panicking_message_drops_the_rest() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel(4);
    for i in 0..4 {
        let mut m = Counted::new(i, &drops);
        m.panic_on_drop = i == 1;
        tx.send(m).unwrap();
    }
    assert!(catch_unwind(AssertUnwindSafe(move || drop(rx))).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
    assert!(tx.is_closed());
}

/// Senders racing the receiver's drop: every message is dropped exactly
/// once, and none outlives the receiver by more than the sends in flight.
#[test]
fn dropping_the_receiver_while_senders_run_drops_each_message_once() {
    for _ in 0..n(200) {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel(8);
        let senders: Vec<_> = (0..2)
            .map(|p| {
                let tx = tx.clone();
                let drops = drops.clone();
                thread::spawn(move || {
                    let mut made = 0;
                    for i in 0..1000 {
                        made += 1;
                        if tx.send(Counted::new(p * 1000 + i, &drops)).is_err() {
                            break;
                        }
                    }
                    made
                })
            })
            .collect();
        drop(tx);
        let _ = rx.recv();
        drop(rx);
        let made: usize = senders.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(drops.load(Ordering::SeqCst), made);
    }
}
