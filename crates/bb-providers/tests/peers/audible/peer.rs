//! Harness for the reference Audible client: the `PyPI` `audible` package (mkb79), pinned with
//! hashes in `requirements.txt` and installed into this folder's `.venv` (see `.ci/run`).
//!
//! Included by the `audible_peer` test with `#[path]`. When the virtual environment is
//! missing the tests skip with a loud banner — unless `BOOKBRIDGE_REQUIRE_PEERS=1`, which CI
//! sets so a broken install cannot pass as a skip.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

pub fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/audible")
}

/// The virtual environment's interpreter with `audible` importable, or `None` after a
/// SKIPPED banner.
pub fn python() -> Option<PathBuf> {
    let python = peer_dir().join(".venv/bin/python");
    let reason = if python.exists() {
        match Command::new(&python)
            .args(["-c", "import audible"])
            .output()
        {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "`import audible` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Some(format!("python could not run: {e}")),
        }
    } else {
        Some("the virtual environment is not installed".to_owned())
    };
    let Some(reason) = reason else {
        return Some(python);
    };
    assert!(
        std::env::var("BOOKBRIDGE_REQUIRE_PEERS").map_or(true, |v| v != "1"),
        "BOOKBRIDGE_REQUIRE_PEERS=1 but the Audible peer is unavailable: {reason}"
    );
    eprintln!(
        "\n==================== SKIPPED ====================\n\
         Audible peer test skipped: {reason}.\n\
         Install it with: python3 -m venv crates/bb-providers/tests/peers/audible/.venv && \
         crates/bb-providers/tests/peers/audible/.venv/bin/pip install --require-hashes \
         -r crates/bb-providers/tests/peers/audible/requirements.txt\n\
         =================================================\n"
    );
    None
}

/// Runs `script` (a file in this folder) with `input` on stdin; its stdout as JSON.
pub fn run(python: &PathBuf, script: &str, input: &Value) -> Value {
    let mut child = Command::new(python)
        .arg(peer_dir().join(script))
        // The package warns that it uses its pure-Python crypto fallback; that is expected.
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Audible peer");
    child
        .stdin
        .take()
        .expect("stdin of the peer")
        .write_all(input.to_string().as_bytes())
        .expect("write to the peer");
    let out = child.wait_with_output().expect("the peer finishes");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the peer prints JSON")
}
