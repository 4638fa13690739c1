//! The etcd backend against a real etcd (feature `etcd`; each test starts
//! its own server): bad input, a value another program wrote, compaction,
//! a dropped connection, a killed and restarted server, and two processes
//! on one cluster. The guarantees shared with the embedded store are in
//! `watch_backends.rs`.
#![cfg(feature = "etcd")]

mod common;
#[path = "common/etcd_server.rs"]
mod etcd_server;

use etcd_server::{EtcdServer, Proxy};
use rillet::watch::etcd::{EtcdStore, StoreError};
use rillet::watch::{Event, EventType, Watch, WatchError, WatchOptions};
use rillet::Overflow;
use std::collections::BTreeMap;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(30);
const PREFIX: &str = "/rillet-test/";

fn next<T>(w: &Watch<T>) -> Result<Event<T>, WatchError> {
    match w.recv_timeout(PATIENCE) {
        Ok(Some(ev)) => Ok(ev),
        Ok(None) => panic!("no event within {} s", PATIENCE.as_secs()),
        Err(e) => Err(e),
    }
}

/// Sets until it works (a set whose answer was lost but which was applied
/// finds the same value the second time: `None`, and no second event).
fn set_retrying(store: &EtcdStore<u32>, kind: &str, name: &str, value: u32) {
    loop {
        match store.set(kind, name, value) {
            Ok(_) => return,
            Err(StoreError::Unavailable { .. }) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn an_unreachable_cluster_is_an_error_not_a_hang() {
    // Port 1: nothing listens. Run it on a thread so that a hang fails the
    // test instead of stalling the suite.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(EtcdStore::<u32>::connect(["127.0.0.1:1"], PREFIX).map(|_| ()));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("connect returns")
        .expect_err("nothing listens on port 1");
    let msg = err.to_string();
    assert!(
        msg.starts_with("etcd at 127.0.0.1:1: connect /rillet-test/ failed"),
        "{msg}"
    );
    assert!(matches!(err, StoreError::Unavailable { op: "connect", .. }));
    let none: [&str; 0] = [];
    assert!(
        EtcdStore::<u32>::connect(none, PREFIX).is_err(),
        "no endpoint"
    );
}

#[test]
fn requests_fail_cleanly_while_the_server_is_down() {
    let mut server = EtcdServer::start();
    let store = EtcdStore::<u32>::connect([server.endpoint()], PREFIX).unwrap();
    store.set("k", "a", 1).unwrap();
    server.kill();
    let err = store.get("k", "a").expect_err("the server is down");
    assert!(err.to_string().contains(&server.endpoint()), "{err}");
    server.restart();
    // The same handle works again once the server is back.
    let got = loop {
        match store.get("k", "a") {
            Ok(v) => break v,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert_eq!(got.as_deref(), Some(&1));
}

#[test]
fn a_value_that_does_not_decode_is_an_error_in_band() {
    let server = EtcdServer::start();
    let store = EtcdStore::<u32>::connect([server.endpoint()], PREFIX).unwrap();
    let other = EtcdStore::<String>::connect([server.endpoint()], PREFIX).unwrap();
    store.set("k", "a", 1).unwrap();
    other.set("k", "bad", "not a number".into()).unwrap();
    let w = store
        .watch("k", WatchOptions::new().initial_replay())
        .unwrap();
    assert_eq!(*next(&w).unwrap().object, 1);
    // The replay's bad entry, then the live one, each in its place.
    match next(&w) {
        Err(WatchError::Invalid { key, error, .. }) => {
            assert_eq!(key, "/rillet-test/k/bad");
            assert!(error.contains("expected u32"), "{error}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    other.set("k", "bad2", "still not".into()).unwrap();
    store.set("k", "b", 2).unwrap();
    assert!(matches!(next(&w), Err(WatchError::Invalid { key, .. }) if key.ends_with("/bad2")));
    assert_eq!(next(&w).unwrap().name, "b");
    assert_eq!(w.missed(), 2, "each undecodable entry counts as missed");
    // get and list say so too.
    let err = store.get("k", "bad").unwrap_err();
    assert!(
        matches!(&err, StoreError::Decode { key, .. } if key == "/rillet-test/k/bad"),
        "{err}"
    );
    assert!(store.list("k").is_err());
    assert_eq!(store.get("k", "b").unwrap().as_deref(), Some(&2));
}

#[test]
fn a_kind_with_a_slash_is_refused() {
    let server = EtcdServer::start();
    let store = EtcdStore::<u32>::connect([server.endpoint()], PREFIX).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.set("a/b", "x", 1)))
        .unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("contains '/'"), "{msg}");
    assert!(msg.contains("EtcdStore::set"), "{msg}");
    // An empty kind's message names this store's method too (it named the
    // embedded store's).
    let err =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.get("", "x"))).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("kind name is empty"), "{msg}");
    assert!(msg.contains("rillet::watch::etcd::EtcdStore::get"), "{msg}");
}

/// The network drops: the watch resumes from the revision after its last
/// event, every change made meanwhile arrives once, in order.
#[test]
fn a_dropped_connection_resumes_without_loss_or_duplicate() {
    let server = EtcdServer::start();
    let proxy = Proxy::new(server.endpoint());
    let watched = EtcdStore::<u32>::connect([proxy.endpoint()], PREFIX).unwrap();
    let writer = EtcdStore::<u32>::connect([server.endpoint()], PREFIX).unwrap();
    let w = watched.watch("k", WatchOptions::new().buffer(256)).unwrap();
    for i in 0..10 {
        writer.set("k", "a", i).unwrap();
    }
    for i in 0..10 {
        assert_eq!(*next(&w).unwrap().object, i);
    }
    proxy.cut();
    for i in 10..40 {
        writer.set("k", "a", i).unwrap();
    }
    proxy.restore();
    for i in 10..40 {
        assert_eq!(*next(&w).unwrap().object, i);
    }
    assert_eq!(w.missed(), 0);
    assert_eq!(
        w.recv_timeout(Duration::from_millis(200)),
        Ok(None),
        "nothing twice"
    );
}

/// While the connection is down, etcd compacts past the watch's position:
/// `Lagged` (with `missed` counting it), then, with `resync_on_lag`, the
/// current state as a replay and live events again.
#[test]
fn a_compacted_start_revision_is_lagged_then_resynced() {
    let server = EtcdServer::start();
    let proxy = Proxy::new(server.endpoint());
    let watched = EtcdStore::<u32>::connect([proxy.endpoint()], PREFIX).unwrap();
    let writer = EtcdStore::<u32>::connect([server.endpoint()], PREFIX).unwrap();
    let w = watched
        .watch("k", WatchOptions::new().buffer(256).resync_on_lag())
        .unwrap();
    writer.set("k", "a", 1).unwrap();
    assert_eq!(*next(&w).unwrap().object, 1);
    proxy.cut();
    writer.set("k", "a", 2).unwrap();
    writer.set("k", "b", 3).unwrap();
    writer.delete("k", "a").unwrap();
    writer.set("k", "c", 4).unwrap();
    server.compact(writer.revision().unwrap());
    proxy.restore();
    match next(&w) {
        // Compacting at revision R keeps R watchable: the 3 changes before
        // it are the ones lost.
        Err(WatchError::Lagged(n)) => assert_eq!(n, 3),
        other => panic!("expected Lagged, got {other:?}"),
    }
    assert_eq!(w.missed(), 3);
    let replay: Vec<_> = (0..2)
        .map(|_| {
            let ev = next(&w).unwrap();
            assert_eq!(ev.event_type, EventType::Create);
            (ev.name.clone(), *ev.object)
        })
        .collect();
    assert_eq!(replay, [("b".to_string(), 3), ("c".to_string(), 4)]);
    writer.set("k", "d", 5).unwrap();
    let ev = next(&w).unwrap();
    assert_eq!(
        (ev.name.as_str(), *ev.object),
        ("d", 5),
        "live again, no gap"
    );
}

/// SIGKILL the server while writers and watchers run, restart it on the
/// same data directory: every watcher ends with every change exactly once,
/// in revision order.
#[test]
fn a_killed_and_restarted_server_loses_nothing() {
    const WRITES: u32 = 60;
    let mut server = EtcdServer::start();
    let store = EtcdStore::<u32>::connect([server.endpoint()], PREFIX).unwrap();
    let watchers: Vec<_> = (0..2)
        .map(|_| {
            let w = store
                .watch("k", WatchOptions::new().buffer(8).overflow(Overflow::Block))
                .unwrap();
            std::thread::spawn(move || {
                let mut seen: Vec<Event<u32>> = Vec::new();
                let mut done = 0;
                while done < 2 {
                    let ev = next(&w).expect("no loss");
                    if *ev.object == WRITES - 1 {
                        done += 1;
                    }
                    seen.push(ev);
                }
                (seen, w.missed())
            })
        })
        .collect();
    let (half_tx, half_rx) = std::sync::mpsc::channel();
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let s = store.clone();
            let half = half_tx.clone();
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    set_retrying(&s, "k", &format!("w{t}"), i);
                    if i == WRITES / 3 {
                        let _ = half.send(());
                    }
                }
            })
        })
        .collect();
    half_rx.recv().unwrap();
    server.kill();
    std::thread::sleep(Duration::from_millis(300));
    server.restart();
    for t in writers {
        t.join().unwrap();
    }
    for h in watchers {
        let (seen, missed) = h.join().unwrap();
        assert_eq!(missed, 0);
        for pair in seen.windows(2) {
            assert!(
                pair[0].revision < pair[1].revision,
                "revision order, nothing twice"
            );
        }
        let mut per_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for ev in &seen {
            per_key.entry(ev.name.clone()).or_default().push(*ev.object);
        }
        let all: Vec<u32> = (0..WRITES).collect();
        assert_eq!(per_key.len(), 2);
        for (name, values) in per_key {
            assert_eq!(values, all, "{name}: every change once, in order");
        }
    }
}

/// Two OS processes on one etcd: the watcher process's rebuilt state
/// equals the writer process's final state.
#[test]
fn a_writer_process_and_a_watcher_process() {
    let server = EtcdServer::start();
    let endpoint = server.endpoint();
    let watcher_bin = common::example_binary_with("etcd_watcher", &["etcd"]);
    let writer_bin = common::example_binary_with("etcd_writer", &["etcd"]);
    let watcher = std::process::Command::new(watcher_bin)
        .args(["--endpoint", &endpoint])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the watcher process");
    let writer = std::process::Command::new(writer_bin)
        .args(["--endpoint", &endpoint])
        .output()
        .expect("run the writer process");
    assert!(
        writer.status.success(),
        "{}",
        String::from_utf8_lossy(&writer.stderr)
    );
    let watcher = watcher.wait_with_output().unwrap();
    assert!(
        watcher.status.success(),
        "{}",
        String::from_utf8_lossy(&watcher.stderr)
    );
    let final_state = |out: &[u8]| -> String {
        let s = String::from_utf8_lossy(out);
        let start = s
            .find("state:")
            .unwrap_or_else(|| panic!("no state in:\n{s}"));
        s[start..].to_string()
    };
    let written = final_state(&writer.stdout);
    assert_eq!(final_state(&watcher.stdout), written);
    assert!(written.lines().count() > 5, "{written}");
}

/// `watch_into`, as in the embedded store: several watches into one
/// channel, the replay sent before it returns, nothing after `cancel`.
#[test]
fn watch_into_fans_several_kinds_into_one_channel() {
    let server = EtcdServer::start();
    let store = EtcdStore::<u32>::connect([server.endpoint()], PREFIX).unwrap();
    store.set("users", "alice", 1).unwrap();
    let (tx, rx) = rillet::mpsc::channel(64);
    let users = store
        .watch_into("users", WatchOptions::new().initial_replay(), tx.clone())
        .unwrap();
    assert_eq!(
        rx.try_recv().unwrap().name,
        "alice",
        "the replay came first"
    );
    let groups = store.watch_into("groups", WatchOptions::new(), tx).unwrap();
    store.set("groups", "admins", 2).unwrap();
    store.set("users", "bob", 3).unwrap();
    let mut got: Vec<(String, u32)> = (0..2)
        .map(|_| {
            let ev = rx.recv_timeout(PATIENCE).expect("an event");
            (ev.kind.clone(), *ev.object)
        })
        .collect();
    got.sort();
    assert_eq!(got, [("groups".to_string(), 2), ("users".to_string(), 3)]);
    assert!(users.cancel());
    assert!(!users.cancel());
    store.set("users", "carol", 4).unwrap();
    store.set("groups", "ops", 5).unwrap();
    let ev = rx.recv_timeout(PATIENCE).expect("the groups watch goes on");
    assert_eq!((ev.kind.as_str(), *ev.object), ("groups", 5));
    assert!(rx.try_recv().is_err(), "nothing from the cancelled watch");
    drop(groups);
}

#[test]
#[should_panic(expected = "do not set buffer, overflow or resync_on_lag")]
fn watch_into_refuses_a_watch_s_own_channel_options() {
    let server = EtcdServer::start();
    let store = EtcdStore::<u32>::connect([server.endpoint()], PREFIX).unwrap();
    let (tx, _rx) = rillet::mpsc::channel(4);
    let _ = store.watch_into("k", WatchOptions::new().buffer(8), tx);
}
