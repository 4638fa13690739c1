//! What idle watchers cost: a store with many keys and 100 idle watchers
//! holds no more than the keys plus a small constant per watcher (each
//! watcher's channel and registration; nothing per key). Counts live heap
//! bytes with a counting global allocator (its own test binary).

use rillet::watch::{Store, WatchOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The tests count the process's live bytes: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn idle_watchers_cost_a_constant_each_not_a_copy_of_the_keys() {
    let _one_at_a_time = serial();
    let keys = if cfg!(miri) { 200 } else { 100_000 };
    let before = live();
    let store: Store<u64> = Store::new();
    for k in 0..keys {
        store.set("k", &format!("key{k:06}"), k);
    }
    let with_keys = live();
    let watchers: Vec<_> = (0..100)
        .map(|_| store.watch("k", WatchOptions::new()))
        .collect();
    let with_watchers = live();
    let per_key = (with_keys - before) / keys as isize;
    let per_watcher = (with_watchers - with_keys) / 100;
    println!(
        "{keys} keys: {} bytes ({per_key} per key); 100 idle watchers (buffer 128): {} bytes \
         ({per_watcher} per watcher)",
        with_keys - before,
        with_watchers - with_keys
    );
    // A watcher is its channel and its registration: a few KiB, and
    // independent of the number of keys. The channel is an SPSC ring of a
    // sequence number and an event pointer per slot; under a dropping
    // policy it has one slot more than the buffer, rounded up to a power
    // of two (256 for the default 128), and a stamp per slot: about 8 KiB.
    assert!(
        per_watcher < 12 * 1024,
        "an idle watcher costs {per_watcher} bytes"
    );
    // With a replay, a watcher holds the replay's events until it takes
    // them: that memory is per key, and goes once they are received
    // (what stays is one more watcher).
    let replaying = store.watch("k", WatchOptions::new().initial_replay());
    assert!(live() - with_watchers > keys as isize * 8);
    assert_eq!(replaying.try_iter().count(), keys as usize);
    let after_replay = live();
    assert!(
        after_replay - with_watchers < 12 * 1024,
        "a drained replay leaves {} bytes",
        after_replay - with_watchers
    );
    drop(replaying);
    drop(watchers);
    drop(store);
}

/// Watchers registered before the writes: each of 100 idle watchers
/// (buffer 128, `DropNewest`) holds the first 128 events, which they all
/// share, and the store keeps the memory of its latest 128 events (as
/// many as its largest buffer) for its writers to reuse: a constant, not
/// a cost per key or per write.
#[test]
fn writes_watched_by_idle_watchers_cost_the_keys_and_a_constant() {
    let _one_at_a_time = serial();
    // Under Miri, 10 watchers and 200 keys (every write is a delivery to
    // each watcher with room: 100 watchers took it 150 s).
    let (keys, count) = if cfg!(miri) {
        (200, 10)
    } else {
        (100_000, 100)
    };
    let before = live();
    let store: Store<u64> = Store::new();
    let watchers: Vec<_> = (0..count)
        .map(|_| store.watch("k", WatchOptions::new()))
        .collect();
    let with_watchers = live();
    for k in 0..keys {
        store.set("k", &format!("key{k:06}"), k);
    }
    let with_keys = live();
    // The same keys, unwatched, in a second store: what the keys cost.
    let plain: Store<u64> = Store::new();
    let plain_before = live();
    for k in 0..keys {
        plain.set("k", &format!("key{k:06}"), k);
    }
    let keys_alone = live() - plain_before;
    let extra = (with_keys - with_watchers) - keys_alone;
    println!(
        "{keys} keys: {keys_alone} bytes alone, {} with {count} idle watchers registered \
         before the writes ({extra} more); the watchers themselves {} bytes",
        with_keys - with_watchers,
        with_watchers - before
    );
    // 128 shared events held by the watchers and 128 kept by the store,
    // about 200 bytes each with their names, and the store's list of
    // them: well under 128 KiB, whatever the number of keys.
    assert!(
        extra < 128 * 1024,
        "{extra} bytes beyond the keys for {keys} watched writes"
    );
    drop(watchers);
    drop(store);
    drop(plain);
}
