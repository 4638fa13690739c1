//! The watcher half of a two-process program on etcd (feature `etcd`):
//! follows the users under `/rillet-demo/` with an initial replay,
//! rebuilds their state from the events, and prints it when the writer's
//! `~done` entry arrives. See `etcd_writer` for how to run both.

use rillet::watch::etcd::{EtcdStore, StoreError};
use rillet::watch::{EventType, WatchError, WatchOptions};
use rillet::Overflow;
#[path = "common/etcd_demo.rs"]
mod etcd_demo;

use etcd_demo::{endpoint, print_state, User, PREFIX};
use std::collections::BTreeMap;

fn main() -> Result<(), StoreError> {
    let store: EtcdStore<User> = EtcdStore::connect([endpoint()], PREFIX)?;
    // A watch that never loses an event: the feeder waits for us (Block),
    // and etcd keeps the history meanwhile.
    let w = store.watch(
        "users",
        WatchOptions::new()
            .initial_replay()
            .buffer(1024)
            .overflow(Overflow::Block),
    )?;
    let mut state: BTreeMap<String, User> = BTreeMap::new();
    let mut events = 0u64;
    loop {
        match w.recv() {
            Ok(ev) if ev.name == "~done" && ev.event_type != EventType::Delete => break,
            Ok(ev) => {
                events += 1;
                match ev.event_type {
                    EventType::Delete => {
                        state.remove(&ev.name);
                    }
                    _ => {
                        state.insert(ev.name.clone(), (*ev.object).clone());
                    }
                }
            }
            Err(WatchError::Closed) => break,
            Err(e) => eprintln!("etcd_watcher: {e}"),
        }
    }
    eprintln!("etcd_watcher: {events} events, {} users", state.len());
    print_state(&state);
    Ok(())
}
