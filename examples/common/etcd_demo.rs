//! What the two etcd example processes share: the value type, the store's
//! prefix and the `--endpoint` argument.

use serde::{Deserialize, Serialize};

/// A user, as both processes encode it (JSON, in etcd).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub group: String,
    pub logins: u32,
}

/// Where the demo's keys live.
pub const PREFIX: &str = "/rillet-demo/";

/// `--endpoint host:port` (default `127.0.0.1:2379`, etcd's own).
pub fn endpoint() -> String {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--endpoint") {
        Some(i) => args.get(i + 1).cloned().expect("--endpoint needs a value"),
        None => "127.0.0.1:2379".into(),
    }
}

/// The final state as both processes print it.
pub fn print_state<'a>(state: impl IntoIterator<Item = (&'a String, &'a User)>) {
    println!("state:");
    for (name, user) in state {
        println!("{name} {} {}", user.group, user.logins);
    }
}
