use super::*;
use crate::event::UsageTotals;

fn meta(id: &str, status: RunStatus) -> RunMeta {
    RunMeta {
        id: id.into(),
        created_at: chrono::Utc::now(),
        repo: "o/r".into(),
        base: None,
        base_commit: None,
        prompt: "p".into(),
        followups: vec![],
        model: "scripted:x".into(),
        sandbox: "landlock".into(),
        status,
        summary: None,
        error: None,
        branch: None,
        pr_url: None,
        usage: UsageTotals::default(),
        duration_ms: None,
        keep_workspace: false,
        interrupted_from: None,
    }
}

/// The record of a process that has ended.
fn dead_owner() -> Owner {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    let start = owner::stat(pid).map(|(_, t)| t).unwrap();
    child.wait().unwrap();
    Owner {
        pid,
        start_time: start,
        ..Owner::current().clone()
    }
}

fn run(store: &Store, id: &str, status: RunStatus, owner: &Owner) -> RunDir {
    let dir = store.create_run(&meta(id, status)).unwrap();
    dir.write_owner(owner).unwrap();
    let ws = store.create_workspace(id).unwrap();
    std::fs::create_dir_all(ws.join("repo")).unwrap();
    std::fs::write(
        dir.events_path(),
        format!(
            "{}\n",
            Event::Status {
                run_id: id.into(),
                stage: Stage::Clone,
                message: "cloning".into()
            }
            .to_json_line()
        ),
    )
    .unwrap();
    dir
}

#[test]
fn a_dead_owners_open_runs_are_interrupted_cleaned_and_keep_their_patch() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let dead = dead_owner();
    let review = run(&store, "20260101-000000-aaaa", RunStatus::Review, &dead);
    review.write_patch(b"diff --git a/x b/x\n").unwrap();
    let running = run(&store, "20260101-000000-bbbb", RunStatus::Running, &dead);
    // A stray second workspace of the same run goes too.
    store.create_workspace("20260101-000000-bbbb").unwrap();

    let mut got = recover(&store);
    got.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        got,
        [
            Recovered {
                id: review.id.clone(),
                was: RunStatus::Review
            },
            Recovered {
                id: running.id.clone(),
                was: RunStatus::Running
            }
        ]
    );
    assert!(store.workspaces_of(&review.id).is_empty());
    assert!(store.workspaces_of(&running.id).is_empty());
    let m = review.read_meta().unwrap();
    assert_eq!(m.status, RunStatus::Interrupted);
    assert_eq!(m.interrupted_from, Some(RunStatus::Review));
    let error = m.error.unwrap();
    assert!(error.contains(&format!("pid {}", dead.pid)), "{error}");
    assert!(error.contains("patch so far is kept"), "{error}");
    assert_eq!(
        std::fs::read_to_string(review.patch_path()).unwrap(),
        "diff --git a/x b/x\n"
    );
    // The events end with an Error at the stage the run was in.
    for (dir, stage) in [(&review, "review"), (&running, "clone")] {
        let events = std::fs::read_to_string(dir.events_path()).unwrap();
        let last: serde_json::Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
        assert_eq!(last["type"], "Error");
        assert_eq!(last["stage"], stage);
    }
    // Once is enough.
    assert!(recover(&store).is_empty());
}

#[test]
fn live_remote_ended_and_unowned_runs_are_left_alone() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let me = Owner::current().clone();
    let remote = Owner {
        host: format!("{}-elsewhere", me.host),
        ..dead_owner()
    };
    let dead = dead_owner();
    let live = run(&store, "20260101-000000-aaaa", RunStatus::Running, &me);
    let elsewhere = run(&store, "20260101-000000-bbbb", RunStatus::Running, &remote);
    let ended = run(&store, "20260101-000000-cccc", RunStatus::Cancelled, &dead);
    let legacy = run(&store, "20260101-000000-dddd", RunStatus::Running, &dead);
    std::fs::remove_file(legacy.owner_path()).unwrap();

    assert!(recover(&store).is_empty());
    for (dir, status) in [
        (&live, RunStatus::Running),
        (&elsewhere, RunStatus::Running),
        (&ended, RunStatus::Cancelled),
        (&legacy, RunStatus::Running),
    ] {
        assert_eq!(dir.read_meta().unwrap().status, status, "{}", dir.id);
        assert_eq!(store.workspaces_of(&dir.id).len(), 1, "{}", dir.id);
    }
}

#[test]
fn a_reservation_whose_process_died_is_removed_and_a_live_one_kept() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let dead = store.reserve_run("20260101-000000-aaaa").unwrap();
    dead.write_owner(&dead_owner()).unwrap();
    let live = store.reserve_run("20260101-000000-bbbb").unwrap();
    assert!(recover(&store).is_empty());
    assert!(!dead.path.exists());
    assert!(live.owner_path().is_file());
}

#[test]
fn a_run_being_recovered_by_another_start_is_skipped() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let dir = run(
        &store,
        "20260101-000000-aaaa",
        RunStatus::Running,
        &dead_owner(),
    );
    let held = claim(&dir).unwrap();
    assert!(recover(&store).is_empty());
    assert_eq!(dir.read_meta().unwrap().status, RunStatus::Running);
    drop(held);
    assert_eq!(recover(&store).len(), 1);
}

#[test]
fn a_kept_workspace_stays_kept() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let mut m = meta("20260101-000000-aaaa", RunStatus::Running);
    m.keep_workspace = true;
    let dir = store.create_run(&m).unwrap();
    dir.write_owner(&dead_owner()).unwrap();
    let ws = store.create_workspace(&dir.id).unwrap();
    assert_eq!(recover(&store).len(), 1);
    assert!(ws.is_dir());
    let m = dir.read_meta().unwrap();
    assert_eq!(m.status, RunStatus::Interrupted);
    assert!(m.error.unwrap().contains("kept its workspace"));
}
