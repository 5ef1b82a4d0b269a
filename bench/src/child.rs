//! Processes of a benchmark run: servers started as children (each says its address on its
//! first stdout line) and the deadline every benchmark program keeps.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `command` with a piped stdout and returns it with its first line, after `prefix`.
///
/// # Panics
/// If it cannot start or its first line does not start with `prefix` (a benchmark cannot go
/// on without its server).
#[allow(clippy::expect_used)]
pub fn spawn_announced(command: &mut Command, prefix: &str) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("read {command:?}: {e}"));
    let rest = line
        .trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{command:?} said {line:?}, not {prefix:?}..."))
        .to_owned();
    (child, rest)
}

/// Ends the process (exit code 2) after `secs` seconds whatever happens, so that no
/// benchmark outlives its run.
pub fn exit_after(secs: f64, name: &'static str) {
    let deadline = Duration::from_secs_f64(secs);
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!("{name}: deadline reached, exiting");
        std::process::exit(2);
    });
}
