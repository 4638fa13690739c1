//! Helpers shared by the tests that run the example programs.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The example `name`'s binary, built now (so that `cargo test --test
/// <one>` runs the current code): cargo says where it put it. Built
/// plainly, without the outer build's `RUSTFLAGS` (a sanitizer run's flags
/// need `-Zbuild-std --target`, which this build does not pass).
pub fn example_binary(name: &str) -> PathBuf {
    example_binary_with(name, &[])
}

/// [`example_binary`] with these cargo features on.
pub fn example_binary_with(name: &str, features: &[&str]) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--example", name, "--message-format=json"])
        .args(["--features", &features.join(",")])
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo build --example {name} failed");
    // The line of the example's artifact: `..."executable":"<path>"...`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout
        .lines()
        .filter(|l| l.contains(&format!("\"name\":\"{name}\"")))
        .find_map(|l| {
            let start = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let len = l[start..].find('"')?;
            Some(PathBuf::from(&l[start..start + len]))
        })
        .unwrap_or_else(|| panic!("cargo did not say where example {name} is"));
    assert!(path.exists(), "no {name} binary at {}", path.display());
    path
}

/// Runs example `name` to its end: its stdout, after checking that it
/// exited with success.
pub fn run_example(name: &str, args: &[&str]) -> String {
    let out = Command::new(example_binary(name))
        .args(args)
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
