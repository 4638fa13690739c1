//! The writer half of a two-process program on etcd (feature `etcd`):
//! four threads create, update and delete users under `/rillet-demo/`,
//! then it marks the end with the entry `~done` and prints the final
//! state. Run `etcd_watcher` beside it (in another terminal, or before it):
//!
//! ```text
//! etcd --data-dir /tmp/etcd-demo &        # Debian: apt-get install etcd-server
//! cargo run --features etcd --example etcd_watcher -- --endpoint 127.0.0.1:2379 &
//! cargo run --features etcd --example etcd_writer -- --endpoint 127.0.0.1:2379
//! ```
//!
//! The same code runs on the embedded store: only the constructor
//! (`EtcdStore::connect` here, `Store::new` there) and the `?`s differ.

use rillet::watch::etcd::{EtcdStore, StoreError};
#[path = "common/etcd_demo.rs"]
mod etcd_demo;

use etcd_demo::{endpoint, print_state, User, PREFIX};

fn main() -> Result<(), StoreError> {
    let store: EtcdStore<User> = EtcdStore::connect([endpoint()], PREFIX)?;
    // A fresh run: the previous run's entries go (each delete is an event).
    for (name, _) in store.list("users")? {
        store.delete("users", &name)?;
    }
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || -> Result<(), StoreError> {
                for i in 0..50u32 {
                    let name = format!("user-{}", (i * 4 + t) % 30);
                    if i % 7 == 6 {
                        store.delete("users", &name)?;
                    } else {
                        let group = if i % 2 == 0 { "staff" } else { "guests" };
                        store.set(
                            "users",
                            &name,
                            User {
                                group: group.into(),
                                logins: i,
                            },
                        )?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join().expect("a writer panicked")?;
    }
    let state = store.list("users")?;
    store.set(
        "users",
        "~done",
        User {
            group: String::new(),
            logins: 0,
        },
    )?;
    print_state(state.iter().map(|(name, user)| (name, &**user)));
    Ok(())
}
