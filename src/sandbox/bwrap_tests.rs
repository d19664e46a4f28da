//! Unit tests of `bwrap_args.rs` (kept apart so the module stays readable).
use super::*;
use std::path::PathBuf;

fn mounts() -> SandboxMounts {
    SandboxMounts {
        work_tree: PathBuf::from("/w/repo"),
        git_dir: PathBuf::from("/w/git"),
    }
}

fn joined(net: bool) -> String {
    bwrap_args(&mounts(), net, "echo hi")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn isolates_by_default() {
    let a = joined(false);
    for must in [
        "--unshare-all",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--remount-ro /",
        "--bind /w/repo /workspace",
        "--ro-bind /w/git /workspace/.git",
        "--tmpfs /tmp",
    ] {
        assert!(a.contains(must), "missing {must}: {a}");
    }
    assert!(!a.contains("--share-net"));
    assert!(!a.contains("/root"));
    assert!(!a.contains("bind /home"));
    assert!(a.ends_with("-c echo hi"));
}

#[test]
fn network_only_when_asked() {
    assert!(joined(true).contains("--share-net"));
}

#[test]
fn seccomp_and_tmp_size_when_asked() {
    let policy = BwrapPolicy {
        seccomp_fd3: true,
        tmp_bytes: Some(1234),
        ..BwrapPolicy::default()
    };
    let a = bwrap_args_with(&mounts(), &policy, "true")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(a.contains("--seccomp 3 --"), "{a}");
    assert!(a.contains("--size 1234 --tmpfs /tmp"), "{a}");
    assert!(a.contains("--setenv TMPDIR /tmp"), "{a}");
    assert!(!joined(false).contains("--seccomp"));
}

#[test]
fn proc_is_read_only_with_runc_masks() {
    let a = joined(false);
    let proc_at = a.find("--proc /proc").unwrap();
    let ro_at = a.find("--remount-ro /proc --dev").unwrap();
    assert!(proc_at < ro_at, "{a}");
    for f in MASKED_PROC_FILES.iter().filter(|f| Path::new(f).exists()) {
        assert!(a.contains(&format!("--ro-bind /dev/null {f} ")), "{f}: {a}");
    }
    for d in MASKED_PROC_DIRS.iter().filter(|d| Path::new(d).is_dir()) {
        assert!(
            a.contains(&format!("--tmpfs {d} --remount-ro {d} ")),
            "{d}: {a}"
        );
    }
    assert!(!a.contains("/sys"), "{a}");
}

#[test]
fn uid_drop_binds_the_staged_idmapped_mounts() {
    let policy = BwrapPolicy {
        uid_drop: true,
        ..BwrapPolicy::default()
    };
    let a = bwrap_args_with(&mounts(), &policy, "true")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(a.contains("--uid 0 --gid 0"), "{a}");
    assert!(
        a.contains(&format!("--bind {STAGED_WORK_TREE} /workspace")),
        "{a}"
    );
    assert!(
        a.contains(&format!("--ro-bind {STAGED_GIT_DIR} /workspace/.git")),
        "{a}"
    );
    assert!(!a.contains("/w/repo") && !a.contains("/w/git"), "{a}");
    assert!(!joined(false).contains("--uid"));
}

#[test]
fn no_secret_names_in_the_environment() {
    for (k, _) in super::super::sandbox_env("/tmp/home") {
        let k = k.to_ascii_uppercase();
        assert!(
            !["TOKEN", "KEY", "SECRET", "PASSWORD"]
                .iter()
                .any(|s| k.contains(s)),
            "{k}"
        );
    }
}

fn state() -> RunState {
    RunState {
        root: PathBuf::from("/w/sandbox-repo"),
        tmp: PathBuf::from("/w/sandbox-repo/tmp"),
        home: PathBuf::from("/w/sandbox-repo/tmp/home"),
        repo_cache: Some(PathBuf::from("/s/cache/abc")),
    }
}

fn args_of(policy: &BwrapPolicy) -> String {
    bwrap_args_with(&mounts(), policy, "true")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_run_state_replaces_the_tmpfs_and_ro_paths_are_bound_read_only() {
    let mut policy = BwrapPolicy {
        tmp_bytes: Some(1234),
        state: Some(state()),
        ro_paths: vec![RoPath {
            path: PathBuf::from("/opt/tool"),
            add_to_path: true,
        }],
        ..BwrapPolicy::default()
    };
    let a = args_of(&policy);
    assert!(!a.contains("--tmpfs /tmp") && !a.contains("--size"), "{a}");
    assert!(a.contains("--bind /w/sandbox-repo/tmp /tmp"), "{a}");
    assert!(a.contains("--bind /s/cache/abc /tmp/home/.cache"), "{a}");
    assert!(a.contains("--ro-bind /opt/tool /opt/tool"), "{a}");
    assert!(
        a.contains("--setenv PATH /opt/tool/bin:/usr/local/sbin"),
        "{a}"
    );
    assert!(
        a.contains("--setenv npm_config_cache /tmp/home/.cache/npm"),
        "{a}"
    );
    policy.uid_drop = true;
    let a = args_of(&policy);
    assert!(
        a.contains(&format!("--bind {STAGED_STATE}/tmp /tmp")),
        "{a}"
    );
    assert!(
        a.contains(&format!("--bind {STAGED_CACHE} /tmp/home/.cache")),
        "{a}"
    );
    assert!(
        a.contains(&format!("--ro-bind {} /opt/tool", staged_ro(0))),
        "{a}"
    );
    assert!(
        !a.contains("/w/sandbox-repo") && !a.contains("/s/cache"),
        "{a}"
    );
}
