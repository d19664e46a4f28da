//! The E2B test peer speaks E2B: the official Python SDK's own create → run → files → timeout →
//! list → kill sequence (`tests/peers/e2b/sdk_check.py`) passes against it. The E2B backend's
//! tests (`tests/e2b_backend.rs`) rely on the peer, so this is checked first.
#![allow(clippy::unwrap_used)]

#[path = "support/e2b_peer.rs"]
mod e2b_peer;

use std::process::Command;

#[test]
fn official_sdk_sequence_passes_against_the_peer() {
    let Some(peer) = e2b_peer::peer_or_skip("official SDK sequence") else {
        return;
    };
    let out = Command::new("python3")
        .arg(e2b_peer::peer_dir().join("sdk_check.py"))
        .args([&peer.url, e2b_peer::API_KEY])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sdk_check failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("sdk_check: all passed"), "{text}");
}
