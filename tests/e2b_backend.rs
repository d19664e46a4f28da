//! tiny-backspace's E2B client against the offline E2B peer (`tests/peers/e2b/peer.py`, itself
//! checked with the official SDK in `tests/e2b_peer.rs`): commands, containment of what they
//! leave behind, limits, files, seeding, the sandbox's lifetime, and injected faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/e2b_peer.rs"]
mod e2b_peer;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2b_peer::{API_KEY, Peer};
use tiny_backspace::sandbox::Termination;
use tiny_backspace::sandbox::e2b::{
    E2bClient, E2bError, E2bSandbox, E2bSettings, NewSandbox, RunOptions,
};
use tiny_backspace::secret::Secret;
use tokio_util::sync::CancellationToken;

fn settings(peer: &Peer, key: &str) -> E2bSettings {
    E2bSettings {
        api_key: Some(Secret::new(key)),
        domain: Some("peer.invalid".into()),
        api_url: Some(peer.url.clone()),
        sandbox_url: Some(peer.url.clone()),
        template: None,
    }
}

fn client(peer: &Peer) -> E2bClient {
    E2bClient::new(settings(peer, API_KEY)).unwrap()
}

fn new_sandbox(tag: &str, timeout: u64) -> NewSandbox {
    NewSandbox {
        template_id: "base".into(),
        timeout,
        allow_internet_access: false,
        metadata: BTreeMap::from([("tb-test".to_string(), tag.to_string())]),
        env_vars: BTreeMap::new(),
    }
}

async fn sandbox(peer: &Peer, tag: &str) -> E2bSandbox {
    E2bSandbox::create(&client(peer), &new_sandbox(tag, 300))
        .await
        .unwrap()
}

fn opts(timeout_secs: u64) -> RunOptions {
    RunOptions {
        timeout: Duration::from_secs(timeout_secs),
        ..RunOptions::default()
    }
}

/// Waits (generously) until `cond` holds.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

macro_rules! peer {
    ($case:expr) => {
        match e2b_peer::peer_or_skip($case) {
            Some(p) => p,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_and_split_output() {
    let peer = peer!("exit codes");
    let sb = sandbox(&peer, "exit").await;
    let no = CancellationToken::new();
    let r = sb
        .run("echo out; echo err >&2; exit 3", &opts(60), &no)
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.stdout.as_str(), r.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    assert_eq!(r.terminated, None);
    let r = sb.run("pwd; true", &opts(60), &no).await.unwrap();
    assert_eq!((r.exit_code, r.stdout.as_str()), (0, "/home/user\n"));
    let r = sb.run("kill -9 $$", &opts(60), &no).await.unwrap();
    assert_eq!(r.exit_code, 137, "killed by SIGKILL: 128+9");
    sb.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn leftover_background_processes_are_killed() {
    let peer = peer!("leftover processes");
    let sb = sandbox(&peer, "leftover").await;
    let r = sb
        .run(
            "sleep 300 & nohup sleep 301 >/dev/null 2>&1 & setsid sleep 302 & \
             (setsid sh -c 'sleep 303' &) ; echo started",
            &opts(60),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.stdout.as_str()), (0, "started\n"));
    // The peer sees every process of the sandbox; none may outlive the command.
    wait_for("no process left in the sandbox", || {
        peer.procs(sb.id()) == 0
    })
    .await;
    sb.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_the_command_and_its_children() {
    let peer = peer!("timeout");
    let sb = sandbox(&peer, "timeout").await;
    let r = sb
        .run(
            "echo before; sleep 300 & sleep 300",
            &opts(2),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.terminated, Some(Termination::Timeout));
    assert_eq!(r.stdout, "before\n", "output before the timeout is kept");
    wait_for("no process left after the timeout", || {
        peer.procs(sb.id()) == 0
    })
    .await;
    sb.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_drop_kill_the_command() {
    let peer = peer!("cancel");
    let sb = sandbox(&peer, "cancel").await;
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let long = opts(600);
    let (run, ()) = tokio::join!(sb.run("sleep 300", &long, &cancel), async {
        wait_for("the command started", || peer.procs(sb.id()) > 0).await;
        c2.cancel();
    });
    assert_eq!(run.unwrap().terminated, Some(Termination::Cancelled));
    wait_for("no process left after cancel", || peer.procs(sb.id()) == 0).await;

    // A future dropped mid-command kills it too.
    let no = CancellationToken::new();
    tokio::select! {
        _ = sb.run("sleep 301", &long, &no) => panic!("sleep 301 ended"),
        _ = wait_for("the second command started", || peer.procs(sb.id()) > 0) => {}
    }
    wait_for("no process left after drop", || peer.procs(sb.id()) == 0).await;
    sb.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn output_cap_stops_the_command() {
    let peer = peer!("output cap");
    let sb = sandbox(&peer, "cap").await;
    let o = RunOptions {
        output_limit_bytes: 200_000,
        output_keep_bytes: 1000,
        ..opts(120)
    };
    let r = sb
        .run("yes e2b-output-cap", &o, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(r.terminated, Some(Termination::OutputLimit));
    assert!(r.total_bytes > 200_000);
    assert!(r.stdout.len() < 2000, "head and tail kept only");
    wait_for("no process left after the cap", || peer.procs(sb.id()) == 0).await;
    sb.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn files_round_trip_and_seed_archive() {
    let peer = peer!("files");
    let sb = sandbox(&peer, "files").await;
    let no = CancellationToken::new();
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    sb.write_file("/home/user/d/bin.dat", &data).await.unwrap();
    assert_eq!(
        sb.read_file("/home/user/d/bin.dat", 1 << 20).await.unwrap(),
        data
    );
    let r = sb.run("wc -c < d/bin.dat", &opts(60), &no).await.unwrap();
    assert_eq!(r.stdout.trim(), "70000");
    assert!(matches!(
        sb.read_file("/home/user/d/bin.dat", 1000).await,
        Err(E2bError::Http { .. })
    ));
    assert!(matches!(
        sb.read_file("/home/user/missing", 1000).await,
        Err(E2bError::NotFound { .. })
    ));

    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("src")).unwrap();
    std::fs::write(tree.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::create_dir_all(tree.path().join(".git")).unwrap();
    std::fs::write(
        tree.path().join(".git/config"),
        "url = https://x-access-token:SECRET@host/r\n",
    )
    .unwrap();
    sb.seed(tree.path(), "/home/user/repo").await.unwrap();
    let r = sb
        .run(
            "cat repo/src/main.rs; test -e repo/.git && echo HAS_GIT; grep -r SECRET /home/user /tmp; ls /tmp",
            &opts(60),
            &no,
        )
        .await
        .unwrap();
    assert_eq!(
        r.stdout, "fn main() {}\n",
        "seeded, without .git, archive removed"
    );
    sb.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_list_and_kill() {
    let peer = peer!("lifetime");
    let c = client(&peer);
    let sb = E2bSandbox::create(&c, &new_sandbox("life", 3))
        .await
        .unwrap();
    let other = sandbox(&peer, "other").await;
    let guard = sb.spawn_keep_alive(Duration::from_millis(300), Duration::from_secs(3));
    let created = Instant::now();
    wait_for(
        "3 keep-alives and more than the first timeout passed",
        || {
            let n = peer
                .log()
                .iter()
                .filter(|e| e["kind"] == "timeout" && e["sandbox"] == sb.id())
                .count();
            n >= 3 && created.elapsed() > Duration::from_secs(4)
        },
    )
    .await;
    let no = CancellationToken::new();
    let r = sb.run("echo alive", &opts(60), &no).await.unwrap();
    assert_eq!(r.stdout, "alive\n", "kept alive past its first timeout");
    drop(guard);

    let tag = BTreeMap::from([("tb-test".to_string(), "life".to_string())]);
    let listed = c.list(&tag).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|s| s.sandbox_id.as_str())
            .collect::<Vec<_>>(),
        vec![sb.id()]
    );

    sb.kill().await.unwrap();
    assert!(peer.saw("delete", sb.id()), "the peer saw DELETE");
    sb.kill().await.unwrap(); // idempotent
    let err = sb.run("true", &opts(60), &no).await.unwrap_err();
    assert!(matches!(err, E2bError::SandboxGone { .. }), "{err}");
    assert!(c.list(&tag).await.unwrap().is_empty());
    other.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults() {
    let peer = peer!("faults");
    // 401: a wrong key names E2B_API_KEY; no key at all is caught before any request.
    let bad = E2bClient::new(settings(&peer, "wrong")).unwrap();
    let err = E2bSandbox::create(&bad, &new_sandbox("f", 60))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, E2bError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("E2B_API_KEY"), "{err}");
    assert!(!err.is_retryable());
    let mut none = settings(&peer, "x");
    none.api_key = None;
    assert!(matches!(E2bClient::new(none), Err(E2bError::MissingApiKey)));

    // 502: retryable.
    peer.fault("502", 1);
    let err = E2bSandbox::create(&client(&peer), &new_sandbox("f", 60))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, E2bError::Http { status: 502, .. }), "{err}");
    assert!(err.is_retryable());

    let sb = sandbox(&peer, "faults").await;
    let no = CancellationToken::new();
    // 404 on the control plane.
    peer.fault("404", 1);
    let err = sb.keep_alive(Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(err, E2bError::NotFound { .. }), "{err}");
    // 401 from envd.
    peer.fault("401", 1);
    let err = sb.run("true", &opts(60), &no).await.unwrap_err();
    assert!(matches!(err, E2bError::EnvdUnauthorized { .. }), "{err}");

    // A stream cut after the first output: an error, and the command is still killed.
    peer.fault("cut", 1);
    let err = sb
        .run("echo first; sleep 300", &opts(120), &no)
        .await
        .unwrap_err();
    assert!(matches!(err, E2bError::StreamCut), "{err}");
    assert!(!err.is_retryable());
    wait_for("no process left after a cut stream", || {
        peer.procs(sb.id()) == 0
    })
    .await;

    // The sandbox expires: commands see it gone, the control plane a 404.
    peer.fault("expire", 1);
    let err = sb.run("true", &opts(60), &no).await.unwrap_err();
    assert!(matches!(err, E2bError::SandboxGone { .. }), "{err}");
    let err = sb.keep_alive(Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(err, E2bError::NotFound { .. }), "{err}");
    sb.kill().await.unwrap();
}
