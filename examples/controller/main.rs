//! An informer-style controller on the watch store (`controller.rs` has
//! the framework and its decisions). This program runs one over a few
//! "deployments" whose handlers show every status path, and checks what
//! `on_status` saw (a broken promise panics: the process exits non-zero):
//!
//! ```text
//! cargo run --example controller
//! ```
//!
//! - `web`: reports as it goes (seven statuses through a channel of five:
//!   the worker blocks until the collector catches up), completes, and
//!   closing it a second time returns `false` instead of panicking; its
//!   update and delete complete too;
//! - `flaky`: asks for a retry every time, and ends `MaxRetryReached`
//!   after 3 attempts; `eventually` succeeds on its second attempt;
//! - `boom`: its handler panics: reported as `Failure`, not lost;
//! - `lazy`: its handler forgets to close: `Failure` too;
//! - `quiet`: `skip_close`: `on_status` never hears of it.

mod controller;

use controller::{Controller, Handler, Status, StatusBuilder, StatusReport, StatusSender};
use rillet::watch::{Event, EventType, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Deployments {
    attempts: Mutex<HashMap<String, u32>>,
    reports: Arc<Mutex<Vec<StatusReport>>>,
}

impl Handler<String> for Deployments {
    fn added(&self, ev: &Event<String>, status: &StatusSender) {
        let attempt = {
            let mut a = self.attempts.lock().unwrap();
            let n = a.entry(ev.name.clone()).or_default();
            *n += 1;
            *n
        };
        match ev.name.as_str() {
            "web" => {
                status.send(StatusBuilder::new().with_message("pulling image"));
                status.send(
                    StatusBuilder::new()
                        .with_status(Status::PartialCompleted)
                        .with_message("1/3 replicas"),
                );
                for i in 0..4 {
                    status.send(StatusBuilder::new().with_message(format!("waiting {i}")));
                }
                assert!(status.send_close(
                    StatusBuilder::new()
                        .with_status(Status::Completed)
                        .with_message("3/3 replicas")
                ));
                // Closing twice: `false`, no panic, and nothing reported.
                assert!(status.is_closed());
                assert!(!status.send_close(StatusBuilder::new().with_status(Status::Completed)));
                assert!(!status.send(StatusBuilder::new().with_message("too late")));
            }
            "flaky" => {
                status.send_close(
                    StatusBuilder::new()
                        .with_retry(Duration::from_millis(5))
                        .with_max_retry(3)
                        .with_message(format!("not ready (attempt {attempt})")),
                );
            }
            "eventually" if attempt == 1 => {
                status.send_close(StatusBuilder::new().with_retry(Duration::from_millis(5)));
            }
            "eventually" => {
                status.send_close(StatusBuilder::new().with_status(Status::Completed));
            }
            "boom" => panic!("boom handler"),
            "lazy" => {}
            "quiet" => {
                status.skip_close(StatusBuilder::new().with_status(Status::Skip));
            }
            other => {
                status.send_close(StatusBuilder::new().with_error(format!("unknown {other}")));
            }
        }
    }

    fn updated(&self, ev: &Event<String>, status: &StatusSender) {
        status.send_close(
            StatusBuilder::new()
                .with_status(Status::Completed)
                .with_message(format!("rolled out {}", ev.object)),
        );
    }

    fn deleted(&self, _ev: &Event<String>, status: &StatusSender) {
        status.send_close(
            StatusBuilder::new()
                .with_status(Status::Completed)
                .with_message("cleaned up"),
        );
    }

    fn on_status(&self, report: &StatusReport) {
        self.reports.lock().unwrap().push(report.clone());
    }
}

fn main() {
    // The panic of `boom` is expected: keep its message off stderr.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("boom handler") {
            default_hook(info);
        }
    }));

    let store: Store<String> = Store::new();
    // Entries that exist before the controller starts arrive as `added`.
    store.set("deployments", "web", "v1".into());
    store.set("deployments", "flaky", "v1".into());
    let handler = Deployments::default();
    let reports = handler.reports.clone();
    let controller = Controller::start(&store, "deployments", 2, handler);
    for name in ["eventually", "boom", "lazy", "quiet"] {
        store.set("deployments", name, "v1".into());
    }
    store.set("deployments", "web", "v2".into());
    store.delete("deployments", "web");
    // Every event so far ends (retries included) before this returns.
    controller.shutdown();

    let reports = std::mem::take(&mut *reports.lock().unwrap());
    let mut by_event: BTreeMap<(String, &str), Vec<String>> = BTreeMap::new();
    for r in &reports {
        let kind = match r.event_type {
            EventType::Create => "added",
            EventType::Update => "updated",
            EventType::Delete => "deleted",
        };
        let mut s = format!("{:?}#{}", r.status, r.attempt);
        if let Some(e) = &r.error {
            s += &format!(" ({e})");
        } else if r.status == Status::MaxRetryReached {
            s += &format!(" ({})", r.message);
        }
        by_event.entry((r.name.clone(), kind)).or_default().push(s);
    }
    for ((name, kind), statuses) in &by_event {
        println!("{name:>10} {kind:<8} {}", statuses.join(", "));
    }
    let get = |name: &str, kind| {
        by_event
            .get(&(name.to_owned(), kind))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        get("web", "added"),
        [
            "Processing#1",
            "PartialCompleted#1",
            "Processing#1",
            "Processing#1",
            "Processing#1",
            "Processing#1",
            "Completed#1"
        ]
    );
    assert_eq!(get("web", "updated"), ["Completed#1"]);
    assert_eq!(get("web", "deleted"), ["Completed#1"]);
    assert_eq!(
        get("flaky", "added"),
        [
            "Retry#1",
            "Retry#2",
            "Retry#3",
            "MaxRetryReached#3 (gave up after 3 attempts)"
        ]
    );
    assert_eq!(get("eventually", "added"), ["Retry#1", "Completed#2"]);
    assert_eq!(
        get("boom", "added"),
        ["Failure#1 (the handler panicked: boom handler)"]
    );
    assert_eq!(
        get("lazy", "added"),
        ["Failure#1 (the handler returned without closing the event)"]
    );
    assert!(
        get("quiet", "added").is_empty(),
        "skip_close is not reported"
    );
    let last = reports.iter().filter(|r| r.last).count();
    println!(
        "controller: {} statuses reported ({last} of them final), none lost",
        reports.len()
    );
}
