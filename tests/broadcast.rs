//! Integration tests for `rillet::broadcast` (public API only).

use rillet::broadcast::{self, RecvError, RecvTimeoutError, TryRecvError};
use rillet::{Overflow, SendError, SendTimeoutError, TrySendError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
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

fn dropping<T: Clone>(cap: usize) -> (broadcast::Sender<T>, broadcast::Receiver<T>) {
    broadcast::Builder::new(cap)
        .overflow(Overflow::DropOldest)
        .build()
}

/// Counts live instances: +1 on creation and clone, -1 on drop.
#[derive(Debug)]
struct Counted {
    id: usize,
    live: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
    panic_on_clone: Arc<AtomicBool>,
    panic_on_drop: bool,
}

impl Counted {
    fn new(id: usize, live: &Arc<AtomicUsize>, drops: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Counted {
            id,
            live: live.clone(),
            drops: drops.clone(),
            panic_on_clone: Arc::new(AtomicBool::new(false)),
            panic_on_drop: false,
        }
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        if self.panic_on_clone.load(Ordering::SeqCst) {
            panic!("Counted({}) panics in clone", self.id);
        }
        self.live.fetch_add(1, Ordering::SeqCst);
        Counted {
            id: self.id,
            live: self.live.clone(),
            drops: self.drops.clone(),
            panic_on_clone: self.panic_on_clone.clone(),
            panic_on_drop: false,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panic_on_drop && !thread::panicking() {
            panic!("Counted({}) panics in drop", self.id);
        }
    }
}

fn counters() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)))
}

fn panic_message(err: &(dyn std::any::Any + Send)) -> String {
    err.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn handles_are_send_and_clone() {
    assert_send_sync::<broadcast::Sender<u8>>();
    assert_send::<broadcast::Receiver<u8>>();
    let (tx, rx) = broadcast::channel::<u8>(1);
    let _tx2 = tx.clone();
    let _rx2 = rx.clone();
}

#[test]
fn zero_capacity_panics_with_a_reason() {
    let err = catch_unwind(|| broadcast::channel::<u8>(0)).unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains("capacity must be at least 1"), "{msg}");
}

#[test]
fn drop_newest_panics_naming_the_alternatives() {
    let err = catch_unwind(|| {
        broadcast::Builder::new(4)
            .overflow(Overflow::DropNewest)
            .build::<u8>()
    })
    .unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains("DropOldest") && msg.contains("Block"), "{msg}");
}

#[test]
#[should_panic(expected = "too large")]
fn absurd_capacity_panics_with_a_reason() {
    let _ = broadcast::channel::<u64>(usize::MAX / 2);
}

/// A capacity within the limits whose ring the system cannot provide: a
/// panic with a message, not an aborted process.
#[test]
#[cfg_attr(miri, ignore = "allocates terabytes")]
fn a_capacity_the_system_cannot_allocate_panics_with_a_message() {
    alloc::refused_or_built("broadcast::channel", || {
        broadcast::channel::<[u64; 8]>(1 << 32)
    });
}

#[test]
fn capacity_is_exact_and_the_slowest_subscriber_holds_senders() {
    for cap in [1, 2, 3, 7, 8] {
        let (tx, fast) = broadcast::channel::<usize>(cap);
        let slow = tx.subscribe();
        assert_eq!(tx.capacity(), cap);
        for i in 0..cap {
            tx.try_send(i).unwrap();
            assert_eq!(fast.try_recv(), Ok(i));
        }
        // The fast subscriber has read everything; the slow one holds all.
        assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
        assert!(tx.is_full());
        assert_eq!(tx.len(), cap);
        assert_eq!(slow.len(), cap);
        assert!(slow.is_full());
        assert_eq!(fast.len(), 0);
        assert_eq!(slow.try_recv(), Ok(0));
        tx.try_send(cap).unwrap();
        assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
    }
}

#[test]
fn every_subscriber_receives_every_message() {
    let total = n(20_000);
    let (tx, rx) = broadcast::channel::<usize>(16);
    let mut subs = vec![rx];
    for _ in 0..3 {
        subs.push(tx.subscribe());
    }
    let handles: Vec<_> = subs
        .into_iter()
        .map(|rx| {
            thread::spawn(move || {
                let mut expect = 0;
                for v in rx.iter() {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                expect
            })
        })
        .collect();
    for i in 0..total {
        tx.send(i).unwrap();
    }
    drop(tx);
    for h in handles {
        assert_eq!(h.join().unwrap(), total);
    }
}

#[test]
fn two_senders_four_subscribers_keep_per_sender_order() {
    let per = n(10_000);
    let (tx, rx) = broadcast::channel::<(usize, usize)>(8);
    let subs: Vec<_> = (0..3).map(|_| tx.subscribe()).chain([rx]).collect();
    let readers: Vec<_> = subs
        .into_iter()
        .map(|rx| {
            thread::spawn(move || {
                let mut next = [0usize; 2];
                for (s, i) in rx.iter() {
                    assert_eq!(i, next[s]);
                    next[s] += 1;
                }
                next
            })
        })
        .collect();
    let writers: Vec<_> = (0..2)
        .map(|s| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..per {
                    tx.send((s, i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for w in writers {
        w.join().unwrap();
    }
    for r in readers {
        assert_eq!(r.join().unwrap(), [per, per]);
    }
}

#[test]
fn subscribe_sees_only_later_messages_and_clone_starts_at_the_same_position() {
    let (tx, rx) = broadcast::channel(8);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let late = tx.subscribe();
    tx.send(3).unwrap();
    assert_eq!(rx.recv(), Ok(1));
    let twin = rx.clone();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 3]);
    assert_eq!(twin.try_iter().collect::<Vec<_>>(), [2, 3]);
    assert_eq!(late.try_iter().collect::<Vec<_>>(), [3]);
}

#[test]
fn receiver_count_and_len() {
    let (tx, rx) = broadcast::channel::<u8>(4);
    assert_eq!(tx.receiver_count(), 1);
    let a = tx.subscribe();
    let b = a.clone();
    assert_eq!(rx.receiver_count(), 3);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!((rx.len(), a.len(), b.len(), tx.len()), (2, 2, 2, 2));
    a.recv().unwrap();
    assert_eq!((rx.len(), a.len(), tx.len()), (2, 1, 2));
    drop(rx);
    drop(b);
    // Only `a` is left: what it has read is no longer held.
    assert_eq!(tx.len(), 1);
    assert!(!tx.is_empty());
    assert_eq!(tx.receiver_count(), 1);
    a.recv().unwrap();
    assert!(tx.is_empty() && a.is_empty());
}

#[test]
fn sender_blocked_on_the_slowest_subscriber_wakes_when_it_reads() {
    let (tx, fast) = broadcast::channel::<u32>(2);
    let slow = tx.subscribe();
    tx.send(0).unwrap();
    tx.send(1).unwrap();
    fast.recv().unwrap();
    fast.recv().unwrap();
    let h = thread::spawn(move || {
        tx.send(2).unwrap();
        tx
    });
    thread::sleep(ms(30));
    assert_eq!(fast.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(slow.recv(), Ok(0));
    let _tx = h.join().unwrap();
    assert_eq!(fast.recv(), Ok(2));
    assert_eq!(slow.try_iter().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn slow_subscriber_dropped_while_the_sender_is_blocked_releases_it() {
    let (tx, fast) = broadcast::channel::<u32>(2);
    let slow = tx.subscribe();
    tx.send(0).unwrap();
    tx.send(1).unwrap();
    fast.recv().unwrap();
    fast.recv().unwrap();
    let h = thread::spawn(move || tx.send_timeout(2, Duration::from_secs(30)).map(|_| tx));
    thread::sleep(ms(30));
    drop(slow);
    let tx = h.join().unwrap().unwrap();
    assert_eq!(fast.recv(), Ok(2));
    assert_eq!(tx.receiver_count(), 1);
}

#[test]
fn drop_oldest_lag_counts_are_exact_and_per_subscriber() {
    let (tx, a) = dropping::<u64>(3);
    let b = tx.subscribe();
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    assert_eq!(b.recv(), Ok(0));
    assert_eq!(b.recv(), Ok(1));
    assert_eq!(b.recv(), Ok(2));
    for i in 3..8 {
        tx.send(i).unwrap();
    }
    // a missed 0..5 (5 messages), b missed 3..5 (2 messages).
    assert_eq!(a.recv(), Err(RecvError::Lagged(5)));
    assert_eq!(a.recv(), Ok(5));
    assert_eq!(b.try_recv(), Err(TryRecvError::Lagged(2)));
    assert_eq!(b.try_iter().collect::<Vec<_>>(), [5, 6, 7]);
    assert_eq!(a.try_iter().collect::<Vec<_>>(), [6, 7]);
    // 0..5 were evicted, and each was missed by a (0, 1, 2 also read by b).
    assert_eq!(tx.dropped(), 5);
    assert_eq!(a.dropped(), 5);
}

#[test]
fn drop_oldest_catch_up_then_lag_again() {
    let (tx, rx) = dropping(2);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.recv(), Err(RecvError::Lagged(3)));
    assert_eq!(rx.recv(), Ok(3));
    assert_eq!(rx.recv(), Ok(4));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    for i in 5..9 {
        tx.send(i).unwrap();
    }
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Lagged(2))
    );
    assert_eq!(rx.recv(), Ok(7));
    assert_eq!(rx.recv(), Ok(8));
    assert_eq!(tx.dropped(), 5);
}

/// The position a lagged subscriber continues from is evicted too before
/// its next receive: a second `Lagged`, for that gap alone.
#[test]
fn drop_oldest_lag_twice_in_a_row() {
    let (tx, rx) = dropping(2);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.recv(), Err(RecvError::Lagged(3)));
    tx.send(5).unwrap();
    tx.send(6).unwrap(); // evicts 3 and 4, where rx was to continue
    assert_eq!(rx.recv(), Err(RecvError::Lagged(2)));
    assert_eq!(rx.recv(), Ok(5));
    assert_eq!(rx.recv(), Ok(6));
    assert_eq!(tx.dropped(), 5, "every message the subscriber missed");
}

#[test]
fn drop_oldest_sender_dropped_while_a_subscriber_lags() {
    let (tx, rx) = dropping(2);
    for i in 0..6 {
        tx.send(i).unwrap();
    }
    drop(tx);
    assert!(rx.is_closed());
    assert_eq!(rx.recv(), Err(RecvError::Lagged(4)));
    assert_eq!(rx.recv(), Ok(4));
    assert_eq!(rx.recv(), Ok(5));
    assert_eq!(rx.recv(), Err(RecvError::Closed));
    assert_eq!(rx.recv(), Err(RecvError::Closed));
}

#[test]
fn drop_oldest_recv_many_and_iter_around_gaps() {
    let (tx, rx) = dropping(2);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    let mut buf = Vec::new();
    assert_eq!(rx.recv_many(&mut buf, 10), Err(RecvError::Lagged(3)));
    assert_eq!(rx.recv_many(&mut buf, 10), Ok(2));
    assert_eq!(buf, [3, 4]);
    tx.send(5).unwrap();
    tx.send(6).unwrap();
    tx.send(7).unwrap();
    // iter() skips the gap (5 was evicted).
    drop(tx);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [6, 7]);
}

#[test]
fn drop_oldest_racing_senders_lose_nothing_uncounted() {
    let per = n(20_000);
    let (tx, rx) = dropping::<(usize, usize)>(4);
    let subs: Vec<_> = (0..2).map(|_| tx.subscribe()).chain([rx]).collect();
    let readers: Vec<_> = subs
        .into_iter()
        .map(|rx| {
            thread::spawn(move || {
                let (mut got, mut missed) = (0u64, 0u64);
                let mut last = [None::<usize>; 2];
                loop {
                    match rx.recv() {
                        Ok((s, i)) => {
                            // Per-sender order is kept even across gaps.
                            assert!(last[s].map_or(true, |l| i > l), "{s}: {i} after {last:?}");
                            last[s] = Some(i);
                            got += 1;
                        }
                        Err(RecvError::Lagged(n)) => missed += n,
                        Err(RecvError::Closed) => break,
                    }
                }
                (got, missed)
            })
        })
        .collect();
    let writers: Vec<_> = (0..2)
        .map(|s| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..per {
                    tx.send((s, i)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    drop(tx);
    let mut missed_any = 0;
    for r in readers {
        let (got, missed) = r.join().unwrap();
        assert_eq!(
            got + missed,
            2 * per as u64,
            "every position received or counted"
        );
        missed_any = missed_any.max(missed);
    }
    let _ = missed_any;
}

#[test]
fn exactly_one_close_returns_true() {
    for _ in 0..n(200) {
        let (tx, rx) = broadcast::channel::<u8>(2);
        let rx2 = tx.subscribe();
        let barrier = Arc::new(Barrier::new(4));
        let wins = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for closer in 0..4 {
            let (tx, rx, rx2) = (tx.clone(), rx.clone(), rx2.clone());
            let (barrier, wins) = (barrier.clone(), wins.clone());
            handles.push(thread::spawn(move || {
                barrier.wait();
                let won = match closer {
                    0 => tx.close(),
                    1 => rx.close(),
                    2 => rx2.close(),
                    _ => tx.close(),
                };
                if won {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(wins.load(Ordering::SeqCst), 1);
        assert!(!tx.close() && !rx.close());
    }
}

#[test]
fn close_drains_then_closed_forever_and_subscribe_after_close_is_closed() {
    let (tx, rx) = broadcast::channel(4);
    let other = tx.subscribe();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert!(rx.close());
    assert!(tx.is_closed() && rx.is_closed());
    assert_eq!(tx.send(3), Err(SendError(3)));
    assert!(matches!(tx.try_send(4), Err(TrySendError::Closed(4))));
    assert!(matches!(
        tx.send_timeout(5, ms(1)),
        Err(SendTimeoutError::Closed(5))
    ));
    // A loop of `send`: the first failure ends it, 7 is never taken.
    let mut rest = [6, 7].into_iter();
    assert_eq!(tx.send_many(rest.by_ref()), Err(SendError(vec![6])));
    assert_eq!(rest.next(), Some(7));
    let late = tx.subscribe();
    assert_eq!(late.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(late.recv(), Err(RecvError::Closed));
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError::Closed));
    assert_eq!(
        rx.recv_timeout(Duration::MAX),
        Err(RecvTimeoutError::Closed)
    );
    assert_eq!(other.iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(other.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn close_with_is_the_last_message_even_with_racing_senders() {
    for policy in [Overflow::Block, Overflow::DropOldest] {
        for _ in 0..n(50) {
            let (tx, rx) = broadcast::Builder::new(64).overflow(policy).build::<i64>();
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let tx = tx.clone();
                    thread::spawn(move || {
                        let mut i = 0;
                        while tx.send(i).is_ok() {
                            i += 1;
                        }
                    })
                })
                .collect();
            let reader = thread::spawn(move || {
                let mut last = None;
                loop {
                    match rx.recv() {
                        Ok(v) => last = Some(v),
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return last,
                    }
                }
            });
            thread::sleep(Duration::from_micros(200));
            tx.close_with(-1).unwrap();
            assert_eq!(reader.join().unwrap(), Some(-1));
            for r in racers {
                r.join().unwrap();
            }
        }
    }
}

#[test]
fn close_with_fails_on_a_closed_channel_and_counts_as_the_close() {
    let (tx, rx) = broadcast::channel(2);
    let tx2 = tx.clone();
    tx.close_with(7).unwrap();
    assert!(!tx2.close());
    assert!(!rx.close());
    assert_eq!(tx2.clone().close_with(8), Err(SendError(8)));
    assert_eq!(rx.recv(), Ok(7));
    assert_eq!(rx.recv(), Err(RecvError::Closed));
}

#[test]
fn last_sender_drop_closes() {
    let (tx, rx) = broadcast::channel(2);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed());
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(RecvError::Closed));
}

#[test]
fn dropping_every_receiver_closes() {
    let (tx, rx) = broadcast::channel(2);
    let rx2 = rx.clone();
    drop(rx);
    assert!(!tx.is_closed());
    tx.send(1).unwrap();
    drop(rx2);
    assert!(tx.is_closed());
    assert_eq!(tx.send(2), Err(SendError(2)));
    assert!(!tx.close());
}

#[test]
fn parked_receivers_are_woken_by_close_and_by_sender_drop() {
    let (tx, rx) = broadcast::channel::<u8>(2);
    let rx2 = tx.subscribe();
    let h1 = thread::spawn(move || rx.recv());
    let h2 = thread::spawn(move || rx2.recv_timeout(Duration::MAX));
    thread::sleep(ms(30));
    assert!(tx.close());
    assert_eq!(h1.join().unwrap(), Err(RecvError::Closed));
    assert_eq!(h2.join().unwrap(), Err(RecvTimeoutError::Closed));

    let (tx, rx) = broadcast::channel::<u8>(2);
    let h = thread::spawn(move || rx.recv());
    thread::sleep(ms(30));
    drop(tx);
    assert_eq!(h.join().unwrap(), Err(RecvError::Closed));
}

#[test]
fn parked_senders_are_woken_by_receiver_close_with_their_messages() {
    let (tx, rx) = broadcast::channel::<u32>(1);
    tx.send(0).unwrap();
    let handles: Vec<_> = (1..3)
        .map(|i| {
            let tx = tx.clone();
            thread::spawn(move || tx.send(i))
        })
        .collect();
    thread::sleep(ms(30));
    assert!(rx.close());
    for (i, h) in (1..3).zip(handles) {
        assert_eq!(h.join().unwrap(), Err(SendError(i)));
    }
    assert_eq!(rx.recv(), Ok(0));
    assert_eq!(rx.recv(), Err(RecvError::Closed));
}

#[test]
fn timeouts() {
    let (tx, rx) = broadcast::channel::<u8>(1);
    assert_eq!(rx.recv_timeout(ms(5)), Err(RecvTimeoutError::Timeout));
    tx.send(1).unwrap();
    assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));
    tx.send(2).unwrap();
    let start = Instant::now();
    assert!(matches!(
        tx.send_timeout(3, ms(10)),
        Err(SendTimeoutError::Timeout(3))
    ));
    assert!(start.elapsed() >= ms(10));
    assert!(matches!(
        tx.send_deadline(4, Instant::now()),
        Err(SendTimeoutError::Timeout(4))
    ));
    assert_eq!(rx.recv_deadline(Instant::now()), Ok(2));
    tx.send_timeout(5, Duration::MAX).unwrap();
    assert_eq!(rx.recv_timeout(Duration::MAX), Ok(5));
    drop(tx);
    assert_eq!(rx.recv_timeout(ms(1)), Err(RecvTimeoutError::Closed));
}

#[test]
fn each_message_is_dropped_once_when_every_subscriber_has_passed_it() {
    let (live, drops) = counters();
    let (tx, a) = broadcast::channel::<Counted>(4);
    let b = tx.subscribe();
    tx.send(Counted::new(0, &live, &drops)).unwrap();
    let got_a = a.recv().unwrap();
    // b has not passed it: the channel still holds it.
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert_eq!(live.load(Ordering::SeqCst), 2);
    let got_b = b.recv().unwrap();
    // The last subscriber took the original itself: nothing dropped, no
    // extra copy.
    assert_eq!(live.load(Ordering::SeqCst), 2);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert_eq!(tx.len(), 0);
    drop((got_a, got_b));
    assert_eq!(live.load(Ordering::SeqCst), 0);

    // A subscriber that goes away passes what it had not read.
    tx.send(Counted::new(1, &live, &drops)).unwrap();
    let _got = a.recv().unwrap();
    assert_eq!(live.load(Ordering::SeqCst), 2);
    drop(b);
    assert_eq!(live.load(Ordering::SeqCst), 1);
    assert_eq!(tx.len(), 0);
}

#[test]
fn buffered_evicted_and_rejected_messages_are_dropped_once() {
    for policy in [Overflow::Block, Overflow::DropOldest] {
        let (live, drops) = counters();
        {
            let (tx, a) = broadcast::Builder::new(3)
                .overflow(policy)
                .build::<Counted>();
            let b = tx.subscribe();
            let c = b.clone();
            for i in 0..6 {
                let _ = tx.try_send(Counted::new(i, &live, &drops));
            }
            drop(a.recv());
            let _ = b.try_iter().count();
            tx.close();
            let _ = tx.try_send(Counted::new(99, &live, &drops));
            drop(c);
        }
        assert_eq!(live.load(Ordering::SeqCst), 0, "{policy:?}");
    }
}

#[test]
fn panicking_clone_leaves_the_receiver_usable() {
    for policy in [Overflow::Block, Overflow::DropOldest] {
        let (live, drops) = counters();
        {
            let (tx, a) = broadcast::Builder::new(4)
                .overflow(policy)
                .build::<Counted>();
            let b = tx.subscribe();
            let bomb = Counted::new(0, &live, &drops);
            let fuse = bomb.panic_on_clone.clone();
            tx.send(bomb).unwrap();
            tx.send(Counted::new(1, &live, &drops)).unwrap();
            fuse.store(true, Ordering::SeqCst);
            let err = catch_unwind(AssertUnwindSafe(|| a.recv())).unwrap_err();
            let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains("panics in clone"), "{msg}");
            fuse.store(false, Ordering::SeqCst);
            // a passed message 0; it goes on with 1.
            assert_eq!(a.recv().unwrap().id, 1);
            // b is the last one for 0: it takes the original (no clone).
            assert_eq!(b.recv().unwrap().id, 0);
            assert_eq!(b.recv().unwrap().id, 1);
            tx.send(Counted::new(2, &live, &drops)).unwrap();
            assert_eq!(a.recv().unwrap().id, 2);
            assert_eq!(b.recv().unwrap().id, 2);
            assert_eq!(tx.len(), 0);
        }
        assert_eq!(live.load(Ordering::SeqCst), 0, "{policy:?}");
    }
}

/// `recv_many` clones a run of messages another subscriber still has to
/// read; a `Clone` that panics in the middle leaves what was taken before
/// it in the buffer, passes its own message, and the next call goes on
/// after it (as a loop of `recv` would); nothing is dropped twice or kept.
#[test]
fn panicking_clone_inside_recv_many_keeps_the_run_before_it() {
    let (live, drops) = counters();
    {
        let (tx, a) = broadcast::channel::<Counted>(8);
        let b = tx.subscribe();
        tx.send(Counted::new(0, &live, &drops)).unwrap();
        let bomb = Counted::new(1, &live, &drops);
        let fuse = bomb.panic_on_clone.clone();
        tx.send(bomb).unwrap();
        tx.send(Counted::new(2, &live, &drops)).unwrap();
        fuse.store(true, Ordering::SeqCst);
        let mut buf = Vec::new();
        let err = catch_unwind(AssertUnwindSafe(|| a.recv_many(&mut buf, 10))).unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("panics in clone"), "{msg}");
        fuse.store(false, Ordering::SeqCst);
        let ids = |v: &[Counted]| v.iter().map(|m| m.id).collect::<Vec<_>>();
        let first = ids(&buf);
        buf.clear();
        let again = a.recv_many(&mut buf, 10);
        let second = ids(&buf);
        // b is the last one for every message: it moves them out.
        let mut rest = Vec::new();
        let last = b.recv_many(&mut rest, 10);
        let seen = (first, again, second, last, ids(&rest), tx.len());
        if seen != (vec![0], Ok(1), vec![2], Ok(3), vec![0, 1, 2], 0) {
            // A subscriber whose position went wrong may wait for ever in
            // its drop for a message that is not coming: fail instead.
            std::mem::forget((tx, a, b, buf, rest));
            panic!("after the panicking clone: {seen:?}");
        }
    }
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn panicking_drop_of_a_buffered_message_wedges_nothing() {
    let (live, drops) = counters();
    let (tx, a) = broadcast::channel::<Counted>(2);
    let mut bomb = Counted::new(0, &live, &drops);
    bomb.panic_on_drop = true;
    tx.send(bomb).unwrap();
    tx.send(Counted::new(1, &live, &drops)).unwrap();
    // The only subscriber leaves: the channel drops both; the first panics.
    let err = catch_unwind(AssertUnwindSafe(|| drop(a))).unwrap_err();
    assert!(err
        .downcast_ref::<String>()
        .is_some_and(|m| m.contains("panics in drop")));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    assert!(tx.is_closed());
}

#[test]
fn panicking_drop_on_eviction_wedges_nothing() {
    let (live, drops) = counters();
    let (tx, rx) = broadcast::Builder::new(1)
        .overflow(Overflow::DropOldest)
        .build::<Counted>();
    let mut bomb = Counted::new(0, &live, &drops);
    bomb.panic_on_drop = true;
    tx.send(bomb).unwrap();
    let err = catch_unwind(AssertUnwindSafe(|| {
        tx.send(Counted::new(1, &live, &drops)).unwrap()
    }))
    .unwrap_err();
    assert!(err
        .downcast_ref::<String>()
        .is_some_and(|m| m.contains("panics in drop")));
    assert!(matches!(rx.recv(), Err(RecvError::Lagged(1))));
    assert_eq!(rx.recv().unwrap().id, 1);
    tx.send(Counted::new(2, &live, &drops)).unwrap();
    assert_eq!(rx.recv().unwrap().id, 2);
    drop((tx, rx));
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

recv_many_across_the_ring_end!(broadcast);

#[test]
fn send_many_and_recv_many() {
    let (tx, rx) = broadcast::channel::<u32>(8);
    let other = tx.subscribe();
    assert_eq!(tx.send_many(0..5), Ok(5));
    let mut buf = Vec::new();
    assert_eq!(rx.recv_many(&mut buf, 3), Ok(3));
    assert_eq!(rx.recv_many(&mut buf, 10), Ok(2));
    assert_eq!(buf, [0, 1, 2, 3, 4]);
    assert_eq!(rx.recv_many(&mut buf, 0), Ok(0));
    // send_many waits for room like send: 200 messages through 8 slots.
    let h = thread::spawn(move || tx.send_many(5..205));
    let mut all = Vec::new();
    let mut all_other = Vec::new();
    while all.len() < 200 || all_other.len() < 205 {
        if all.len() < 200 {
            rx.recv_many(&mut all, 64).unwrap();
        }
        if all_other.len() < 205 {
            other.recv_many(&mut all_other, 64).unwrap();
        }
    }
    assert_eq!(h.join().unwrap(), Ok(200));
    assert_eq!(all, (5..205).collect::<Vec<_>>());
    assert_eq!(all_other, (0..205).collect::<Vec<_>>());
}

#[test]
fn send_many_on_close_hands_back_what_it_took() {
    let (tx, rx) = broadcast::channel::<u32>(2);
    let h = {
        let tx = tx.clone();
        thread::spawn(move || tx.send_many(0..10))
    };
    // Close only once the sender has filled the ring (it then waits for
    // room for message 2): a fixed sleep lost this race under Miri, where
    // the spawned sender had not started 30 ms later.
    while rx.len() < 2 {
        thread::yield_now();
    }
    thread::sleep(ms(30));
    rx.close();
    let Err(SendError(back)) = h.join().unwrap() else {
        panic!("send_many succeeded on a closed channel");
    };
    let got: Vec<_> = rx.iter().collect();
    assert_eq!(got, [0, 1]);
    assert_eq!(back, (2..back.len() as u32 + 2).collect::<Vec<_>>());
    drop(tx);
}

#[test]
fn iterators() {
    let (tx, rx) = broadcast::channel(4);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    tx.send(3).unwrap();
    let other = rx.clone();
    drop(tx);
    let mut got = Vec::new();
    for v in &rx {
        got.push(v);
    }
    assert_eq!(got, [3]);
    assert_eq!(other.into_iter().collect::<Vec<_>>(), [3]);
}

#[test]
fn zero_sized_and_large_messages() {
    let (tx, rx) = broadcast::channel::<()>(3);
    let rx2 = rx.clone();
    for _ in 0..3 {
        tx.send(()).unwrap();
    }
    assert!(tx.try_send(()).is_err());
    assert_eq!(rx.try_iter().count(), 3);
    assert_eq!(rx2.try_iter().count(), 3);

    let (tx, rx) = broadcast::channel::<[u8; 4096]>(2);
    let rx2 = tx.subscribe();
    tx.send([7; 4096]).unwrap();
    assert_eq!(rx.recv().unwrap()[4095], 7);
    assert_eq!(rx2.recv().unwrap()[0], 7);
}

#[test]
fn receivers_joining_and_leaving_while_messages_flow() {
    let total = n(20_000);
    let (tx, rx) = broadcast::channel::<usize>(8);
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (tx, stop) = (tx.clone(), stop.clone());
        thread::spawn(move || {
            let mut joined = 0;
            while !stop.load(Ordering::SeqCst) {
                let r = tx.subscribe();
                let r2 = r.clone();
                let _ = r.try_recv();
                drop(r);
                let _ = r2.try_recv();
                joined += 1;
            }
            joined
        })
    };
    let reader = thread::spawn(move || rx.iter().count());
    for i in 0..total {
        tx.send(i).unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    churn.join().unwrap();
    drop(tx);
    assert_eq!(reader.join().unwrap(), total);
}

#[test]
fn subscribers_created_by_many_threads_each_see_a_suffix() {
    let (tx, rx) = broadcast::channel::<usize>(4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tx2 = tx.clone();
    let subscribers: Vec<_> = (0..3)
        .map(|_| {
            let (tx, seen) = (tx.clone(), seen.clone());
            thread::spawn(move || {
                let rx = tx.subscribe();
                drop(tx);
                let got: Vec<_> = rx.iter().collect();
                seen.lock().unwrap().push(got);
            })
        })
        .collect();
    drop(tx);
    let reader = thread::spawn(move || rx.iter().count());
    for i in 0..n(2_000) {
        tx2.send(i).unwrap();
    }
    drop(tx2);
    assert_eq!(reader.join().unwrap(), n(2_000));
    for s in subscribers {
        s.join().unwrap();
    }
    for got in seen.lock().unwrap().iter() {
        // A contiguous run ending at the last message.
        if let Some(&first) = got.first() {
            assert_eq!(*got, (first..n(2_000)).collect::<Vec<_>>());
        }
    }
}

// ------------------------------------------------- re-entrancy and panics

/// Runs `f` on another thread and fails the test if it has not finished
/// within `limit`: a wedged channel fails instead of hanging the suite.
fn finishes_within<R: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = done_tx.send(f());
    });
    done_rx.recv_timeout(limit).expect("the channel is wedged")
}

/// `send_many` under `DropOldest`: an evicted message whose drop panics.
/// (Once the panic escaped between claiming a batch's positions and
/// writing them; the claimed-but-never-written positions wedged every
/// later sender. `send_many` now sends one message at a time under
/// `DropOldest`, as a loop of `send`: the panic comes out of the send of
/// 2, and 3 and 4 stay in the iterator.)
#[test]
fn send_many_whose_evicted_message_panics_on_drop_wedges_nothing() {
    let (live, drops) = counters();
    let (tx, rx) = dropping(2);
    let mut first = Counted::new(0, &live, &drops);
    first.panic_on_drop = true;
    tx.send(first).unwrap();
    tx.send(Counted::new(1, &live, &drops)).unwrap();
    let batch: Vec<_> = (2..5).map(|i| Counted::new(i, &live, &drops)).collect();
    let result = catch_unwind(AssertUnwindSafe(|| tx.send_many(batch)));
    assert!(result.is_err(), "the evicted message's drop panicked");
    let (tx, rx) = finishes_within(ms(10_000), move || {
        tx.send(Counted::new(5, &live, &drops)).unwrap();
        (tx, rx)
    });
    assert_eq!(rx.recv().map(|m| m.id), Err(RecvError::Lagged(2)));
    assert_eq!(rx.try_iter().map(|m| m.id).collect::<Vec<_>>(), [2, 5]);
    assert_eq!(tx.dropped(), 2);
}

/// A re-entrant iterator: `send_many` behaves like a loop of `send`, so a
/// message the iterator sends while it produces item `i` lands after item
/// `i - 1` and before `i`. (Before the fix the batch being collected went
/// in after the iterator's sends.)
#[test]
fn send_many_with_a_reentrant_iterator_is_a_loop_of_send() {
    for overflow in [Overflow::Block, Overflow::DropOldest] {
        let (tx, rx) = broadcast::Builder::new(256).overflow(overflow).build();
        let items = (0..100).inspect(|&i| {
            tx.send(1000 + i).unwrap();
        });
        assert_eq!(tx.send_many(items), Ok(100));
        drop(tx);
        let got: Vec<usize> = rx.iter().collect();
        let expected: Vec<usize> = (0..100).flat_map(|i| [1000 + i, i]).collect();
        assert_eq!(got, expected, "{overflow:?}");
    }
}

/// The same across threads on small rings, with two subscribers.
#[test]
fn reentrant_send_many_on_a_small_ring_keeps_loop_order() {
    let total = n(5_000);
    let mut expected = Vec::new();
    for i in 0..total {
        if i % 3 == 0 {
            expected.push(usize::MAX - i);
        }
        expected.push(i);
    }
    for cap in [1, 2, 3, 8] {
        let (tx, rx) = broadcast::channel(cap);
        let rx2 = rx.clone();
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
        let other = thread::spawn(move || rx2.iter().collect::<Vec<usize>>());
        let got: Vec<usize> = rx.iter().collect();
        assert_eq!(h.join().unwrap(), Ok(total));
        assert!(
            got == expected,
            "cap {cap}: order differs from a loop of send"
        );
        assert!(
            other.join().unwrap() == expected,
            "cap {cap}: second subscriber"
        );
    }
}

/// The iterator closes the channel while producing item 3: items 0..3
/// were sent before the close, item 3 comes back, and the iterator is asked
/// for nothing more.
#[test]
fn send_many_whose_iterator_closes_the_channel() {
    let (tx, rx) = broadcast::channel(8);
    let mut items = (0..5).inspect(|&i| {
        if i == 3 {
            assert!(rx.close());
        }
    });
    assert_eq!(tx.send_many(items.by_ref()), Err(SendError(vec![3])));
    assert_eq!(items.next(), Some(4), "unpulled items stay in the iterator");
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
}

/// The iterator drops the last subscriber while producing item 3: a loop
/// of `send` had delivered 0, 1 and 2 to it (dropped with it, inside the
/// iterator), and item 3 finds the channel closed. (Before the fix the
/// subscriber's drop did not send the pending batch: `Err([0, 1, 2, 3])`.)
#[test]
fn send_many_whose_iterator_drops_the_last_subscriber() {
    let (live, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (tx, rx) = broadcast::channel(8);
    let mut rx = Some(rx);
    let mut items = (0..5).map(|i| {
        if i == 3 {
            drop(rx.take());
            assert_eq!(
                drops.load(Ordering::SeqCst),
                3,
                "0, 1, 2 go with the subscriber"
            );
        }
        Counted::new(i, &live, &drops)
    });
    let back = tx.send_many(items.by_ref()).unwrap_err().0;
    assert_eq!(back.iter().map(|m| m.id).collect::<Vec<_>>(), [3]);
    assert_eq!(
        items.next().map(|m| m.id),
        Some(4),
        "unpulled items stay in the iterator"
    );
    drop((back, tx));
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// On a full `Block` channel a loop of `send` waits in the send of the item
/// it just took: `send_many` asks the iterator for no item beyond that
/// before the subscriber makes room. Capacity 2 and a subscriber that
/// starts receiving only well after item 2 was taken: item 3 must not be
/// asked for before. (Before the fix a batch took up to 64 items whatever
/// the room: all ten at once.)
#[test]
fn send_many_takes_no_item_a_loop_would_be_waiting_to_take() {
    let (tx, rx) = broadcast::channel(2);
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
    assert_eq!(
        rx.iter().take(10).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(
        h.join().unwrap(),
        Vec::<i32>::new(),
        "items asked for while a loop waits"
    );
}

/// A subscriber made while the iterator produces item 2 sees what a loop
/// of `send` would have sent after it: from item 2 on.
#[test]
fn send_many_whose_iterator_subscribes_sees_only_later_items() {
    let (tx, rx) = broadcast::channel(16);
    let late = std::cell::RefCell::new(None);
    let items = (0..5).inspect(|&i| {
        if i == 2 {
            *late.borrow_mut() = Some(tx.subscribe());
        }
    });
    assert_eq!(tx.send_many(items), Ok(5));
    let late = late.into_inner().unwrap();
    assert_eq!(late.try_iter().collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
}

/// A panicking iterator: what it yielded before the panic was sent, as by
/// a loop of `send`. (Before the fix the batch being collected was dropped.)
#[test]
fn send_many_whose_iterator_panics_keeps_what_it_yielded() {
    for overflow in [Overflow::Block, Overflow::DropOldest] {
        let (tx, rx) = broadcast::Builder::new(8).overflow(overflow).build();
        let result = catch_unwind(AssertUnwindSafe(|| {
            tx.send_many((0..5).inspect(|&i| {
                if i == 3 {
                    panic!("the iterator panics");
                }
            }))
        }));
        assert!(result.is_err());
        tx.send(9).unwrap();
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            [0, 1, 2, 9],
            "{overflow:?}"
        );
    }
}

/// A subscriber that receives from inside `send_many`'s iterator finds
/// what a loop of `send` had sent by then. Every third item it makes one
/// call, so that each call finds two items waiting in the pending batch:
/// `try_recv`, `recv`, a zero-timeout receive, `recv_many`, a `select!`
/// with a default, `len()`. A second subscriber, read at the end (room for
/// all 20), gets every item. (Before the fix the batch was invisible to
/// them: the first `try_recv` found nothing.)
#[test]
fn send_many_whose_iterator_receives_sees_what_a_loop_sent() {
    for overflow in [Overflow::Block, Overflow::DropOldest] {
        let (tx, rx) = broadcast::Builder::new(32).overflow(overflow).build();
        let other = tx.subscribe();
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
        assert_eq!(
            other.try_iter().collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>(),
            "{overflow:?}"
        );
    }
}

/// Forwarding with `send_many(upstream.iter())`: each item goes on before
/// the iterator waits for the next one.
#[test]
fn send_many_forwards_each_item_of_a_waiting_iterator() {
    let (up_tx, up_rx) = rillet::mpsc::channel::<u32>(8);
    let (tx, rx) = broadcast::channel(8);
    let h = thread::spawn(move || tx.send_many(up_rx.iter()));
    let items = n(100);
    for i in 0..items as u32 {
        up_tx.send(i).unwrap();
        // A batch that held it back would hang here (the timeout only
        // turns a hang into a failure).
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(i));
    }
    drop(up_tx);
    assert_eq!(h.join().unwrap(), Ok(items));
}

/// A message whose `Clone` sends on the same channel (with room): the send
/// completes as if made after the receive that ran it.
#[test]
fn clone_that_sends_on_the_same_channel() {
    #[derive(Debug)]
    struct Loud(u32);
    thread_local! {
        static TX: std::cell::RefCell<Option<broadcast::Sender<Loud>>> =
            const { std::cell::RefCell::new(None) };
    }
    impl Clone for Loud {
        fn clone(&self) -> Self {
            if self.0 < 10 {
                TX.with(|tx| {
                    if let Some(tx) = tx.borrow().as_ref() {
                        tx.send(Loud(self.0 + 10)).unwrap();
                    }
                });
            }
            Loud(self.0)
        }
    }
    for overflow in [Overflow::Block, Overflow::DropOldest] {
        let (tx, rx) = broadcast::Builder::new(16).overflow(overflow).build();
        let other = tx.subscribe(); // two subscribers: the first one clones
        TX.with(|cell| *cell.borrow_mut() = Some(tx));
        TX.with(|tx| tx.borrow().as_ref().unwrap().send(Loud(1)).unwrap());
        assert_eq!(rx.try_recv().map(|m| m.0), Ok(1)); // its clone sends 11
        assert_eq!(rx.try_recv().map(|m| m.0), Ok(11));
        TX.with(|cell| cell.borrow_mut().take());
        // Under DropOldest every subscriber clones (its clone of 1 sends
        // another 11); under Block the last one moves the message out.
        let rest: Vec<u32> = other.iter().map(|m| m.0).collect();
        assert_eq!(rest[..2], [1, 11], "{overflow:?}");
        assert!(rest[2..].iter().all(|&m| m == 11), "{overflow:?}");
    }
}

/// A message whose `Clone` (run by `recv_many`, another subscriber still
/// to read it) drops that other subscriber and receives from this one:
/// `recv_many` goes on after what the clone took, as a loop of `recv`
/// would, moving out the messages it is now the last subscriber of. Its
/// run is kept in registers between messages, so it must read its
/// position again after user code ran.
#[test]
fn recv_many_goes_on_after_a_clone_that_receives() {
    #[derive(Debug, PartialEq)]
    struct Msg(u32);
    thread_local! {
        static RX: std::cell::RefCell<Option<broadcast::Receiver<Msg>>> =
            const { std::cell::RefCell::new(None) };
        static OTHER: std::cell::RefCell<Option<broadcast::Receiver<Msg>>> =
            const { std::cell::RefCell::new(None) };
        static TAKEN: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    impl Clone for Msg {
        fn clone(&self) -> Self {
            if self.0 == 0 {
                OTHER.with(|o| drop(o.borrow_mut().take()));
                let got = RX.with(|rx| rx.borrow().as_ref().unwrap().try_recv());
                TAKEN.with(|t| t.borrow_mut().push(got.unwrap().0));
            }
            Msg(self.0)
        }
    }
    let (tx, rx) = broadcast::channel(8);
    OTHER.with(|o| *o.borrow_mut() = Some(tx.subscribe()));
    RX.with(|r| *r.borrow_mut() = Some(rx));
    for i in 0..5 {
        tx.send(Msg(i)).unwrap();
    }
    let mut buf = Vec::new();
    let n = RX.with(|rx| rx.borrow().as_ref().unwrap().recv_many(&mut buf, 10));
    let rx = RX.with(|rx| rx.borrow_mut().take().unwrap());
    if buf != [Msg(0), Msg(2), Msg(3), Msg(4)] {
        // A subscriber whose position went wrong may wait forever in its
        // drop for a message that was taken already: fail instead.
        std::mem::forget(rx);
        panic!("recv_many took {buf:?}");
    }
    assert_eq!(n, Ok(4));
    assert_eq!(TAKEN.with(|t| t.borrow().clone()), [1]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(tx.len(), 0);
}

/// Dropping every subscriber drops the buffered messages at once, while a
/// sender still exists.
#[test]
fn dropping_every_receiver_drops_buffered_messages_at_once() {
    for overflow in [Overflow::Block, Overflow::DropOldest] {
        let (live, drops) = counters();
        let (tx, rx) = broadcast::Builder::new(4).overflow(overflow).build();
        let rx2 = rx.clone();
        for i in 0..3 {
            tx.send(Counted::new(i, &live, &drops)).unwrap();
        }
        drop(rx);
        assert_eq!(
            live.load(Ordering::SeqCst),
            3,
            "{overflow:?}: rx2 still holds them"
        );
        drop(rx2);
        assert_eq!(live.load(Ordering::SeqCst), 0, "{overflow:?}");
        assert!(tx.send(Counted::new(9, &live, &drops)).is_err());
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn close_with_on_a_full_drop_oldest_channel_evicts_the_oldest() {
    let (tx, rx) = dropping(2);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    tx.close_with(3).unwrap();
    assert_eq!(rx.recv(), Err(RecvError::Lagged(1)));
    assert_eq!(rx.iter().collect::<Vec<_>>(), [2, 3]);
}

/// The only subscriber under `DropOldest` moves each message out instead of
/// cloning it and dropping the original inside its receive: a message whose
/// drop panics is delivered, not lost in an unwinding `recv` (found by the
/// soak/fuzz review: before, `try_recv` panicked and the message was gone,
/// uncounted).
#[test]
fn the_only_subscriber_receives_a_message_whose_drop_panics() {
    let (live, drops) = counters();
    let (tx, rx) = dropping(4);
    let mut bomb = Counted::new(1, &live, &drops);
    bomb.panic_on_drop = true;
    tx.send(bomb).unwrap();
    tx.send(Counted::new(2, &live, &drops)).unwrap();
    let mut got = catch_unwind(AssertUnwindSafe(|| rx.try_recv()))
        .expect("the receive itself does not panic")
        .expect("message 1 is delivered");
    assert_eq!(got.id, 1);
    got.panic_on_drop = false;
    assert_eq!(rx.try_recv().map(|m| m.id), Ok(2));
    assert_eq!((rx.dropped(), live.load(Ordering::SeqCst)), (0, 1));
    drop(got);
    assert_eq!(live.load(Ordering::SeqCst), 0);
}
