//! The E2B `Sandbox` implementation (`RemoteSandbox`) against the offline peer: seeding without
//! `.git`, commands in the remote work tree, the network mode, and the sandbox killed (DELETE
//! seen) on close and on drop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/e2b_peer.rs"]
mod e2b_peer;

use std::time::{Duration, Instant};

use e2b_peer::{API_KEY, Peer};
use tiny_backspace::sandbox::e2b::{E2bError, E2bSettings, RUN_ID_KEY, RemoteSandbox};
use tiny_backspace::sandbox::{AllowHost, ExecRequest, Sandbox, SandboxKind, SandboxSettings};
use tiny_backspace::secret::Secret;
use tokio_util::sync::CancellationToken;

macro_rules! peer {
    ($case:expr) => {
        match e2b_peer::peer_or_skip($case) {
            Some(p) => p,
            None => return,
        }
    };
}

fn settings(peer: &Peer) -> E2bSettings {
    E2bSettings {
        api_key: Some(Secret::new(API_KEY)),
        domain: Some("peer.invalid".into()),
        api_url: Some(peer.url.clone()),
        sandbox_url: Some(peer.url.clone()),
        template: None,
    }
}

fn work_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi from the host\n").unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(
        dir.path().join(".git/config"),
        "[remote]\nurl = https://x-access-token:SECRET@example.invalid/r\n",
    )
    .unwrap();
    dir
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn req(command: &str) -> ExecRequest {
    ExecRequest {
        command: command.into(),
        timeout: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_in_the_seeded_work_tree_and_is_killed_on_close() {
    let peer = peer!("remote sandbox close");
    let tree = work_tree();
    let sb = RemoteSandbox::open(
        settings(&peer),
        &SandboxSettings::default(),
        tree.path(),
        "run-1",
    )
    .await
    .unwrap();
    assert_eq!(sb.kind(), SandboxKind::E2b);
    assert!(!sb.network());
    let cancel = CancellationToken::new();
    let out = sb
        .exec(
            &req("pwd; cat hello.txt; ls -A; echo x > made.txt"),
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.output);
    assert!(
        out.output.contains("/home/user/workspace"),
        "{}",
        out.output
    );
    assert!(out.output.contains("hi from the host"), "{}", out.output);
    assert!(
        !out.output.contains(".git"),
        "no .git seeded: {}",
        out.output
    );
    let created = peer
        .log()
        .into_iter()
        .find(|e| e["kind"] == "create" && e["sandbox"] == sb.id())
        .expect("the peer saw the create");
    assert_eq!(created["metadata"][RUN_ID_KEY], "run-1", "{created}");
    assert_eq!(sb.read("made.txt", 1024).await.unwrap(), b"x\n");
    sb.write("dir/new.txt", b"written by the host\n")
        .await
        .unwrap();
    let out = sb.exec(&req("cat dir/new.txt"), &cancel).await.unwrap();
    assert!(out.output.contains("written by the host"), "{}", out.output);
    assert!(sb.read("../../etc/passwd", 1024).await.is_err());
    let id = sb.id().to_string();
    sb.close().await.unwrap();
    assert!(peer.saw("delete", &id), "the peer saw DELETE");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_it_kills_the_sandbox() {
    let peer = peer!("remote sandbox drop");
    let tree = work_tree();
    let sb = RemoteSandbox::open(
        settings(&peer),
        &SandboxSettings::default(),
        tree.path(),
        "run-2",
    )
    .await
    .unwrap();
    let id = sb.id().to_string();
    assert!(!peer.saw("delete", &id));
    drop(sb);
    wait_for("DELETE after drop", || peer.saw("delete", &id)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn network_mode_sets_internet_access_and_allowlist_is_refused() {
    let peer = peer!("remote sandbox network");
    let tree = work_tree();
    let on = SandboxSettings {
        network: true,
        ..SandboxSettings::default()
    };
    let sb = RemoteSandbox::open(settings(&peer), &on, tree.path(), "run-3")
        .await
        .unwrap();
    assert!(sb.network());
    let created = peer
        .log()
        .into_iter()
        .find(|e| e["kind"] == "create" && e["sandbox"] == sb.id())
        .unwrap();
    assert_eq!(created["allow_internet_access"], true, "{created}");
    sb.close().await.unwrap();

    let allow = SandboxSettings {
        allow_hosts: Some(vec![AllowHost::parse("example.invalid").unwrap()]),
        ..SandboxSettings::default()
    };
    let before = peer.log().iter().filter(|e| e["kind"] == "create").count();
    let err = RemoteSandbox::open(settings(&peer), &allow, tree.path(), "run-4")
        .await
        .err()
        .expect("allowlist refused");
    assert!(matches!(err, E2bError::AllowlistUnsupported), "{err}");
    assert!(err.to_string().contains("allow"), "{err}");
    let after = peer.log().iter().filter(|e| e["kind"] == "create").count();
    assert_eq!(before, after, "no sandbox was created for a refused mode");
}

#[test]
fn e2b_parses_but_is_not_opened_by_runs_yet() {
    assert_eq!(SandboxKind::parse("e2b").unwrap(), SandboxKind::E2b);
    let s = SandboxSettings {
        kind: Some(SandboxKind::E2b),
        ..SandboxSettings::default()
    };
    let err = tiny_backspace::sandbox::resolve_kind(&s).unwrap_err();
    assert!(
        err.to_string().contains("cannot run an agent yet")
            && !err.to_string().contains("bubblewrap"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_through_the_trait_stops_the_command() {
    let peer = peer!("remote sandbox cancel");
    let tree = work_tree();
    let sb = RemoteSandbox::open(
        settings(&peer),
        &SandboxSettings::default(),
        tree.path(),
        "run-5",
    )
    .await
    .unwrap();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let id = sb.id().to_string();
    let task = tokio::spawn(async move {
        let out = sb.exec(&req("sleep 120 & sleep 120"), &c).await;
        (sb, out)
    });
    wait_for("the command to start", || peer.procs(&id) > 0).await;
    cancel.cancel();
    let (sb, out) = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("cancel returns")
        .unwrap();
    let out = out.unwrap();
    assert_eq!(
        out.terminated,
        Some(tiny_backspace::sandbox::Termination::Cancelled),
        "{}",
        out.output
    );
    wait_for("no process left", || peer.procs(&id) == 0).await;
    sb.close().await.unwrap();
    assert!(peer.saw("delete", &id));
}
