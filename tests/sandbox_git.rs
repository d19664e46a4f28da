//! Adversarial suite, part 3: what the agent plants for host git. Hooks, `.git/config` settings
//! (fsmonitor, pager, external diff, aliases), `.gitattributes` filters and nested repositories
//! must never execute on the host through diff, commit or push. Each malicious command would create
//! a marker file on the host; the marker must never appear.

#![allow(clippy::unwrap_used)]

mod sandbox_common;

use std::path::{Path, PathBuf};

use sandbox_common::*;
use tiny_backspace::git::{self, CloneSpec, HostRepo};
use tiny_backspace::sandbox::SandboxMounts;
use tokio_util::sync::CancellationToken;

fn sh_host(dir: &Path, script: &str) {
    let st = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
}

/// A source repository, cloned the way the pipeline does (separate git dir), and a bare remote.
async fn cloned(root: &Path) -> (HostRepo, PathBuf) {
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    sh_host(
        &src,
        "git init -q -b main . && echo 'print(1)' > app.py && git add . && \
         git -c user.name=t -c user.email=t@t commit -q -m init",
    );
    let remote = root.join("remote.git");
    sh_host(
        root,
        &format!("git clone -q --bare src {}", remote.display()),
    );
    let spec = CloneSpec {
        url: src.display().to_string(),
        allow_protocols: "file".into(),
        branch: None,
        timeout: std::time::Duration::from_secs(60),
        max_size_bytes: 100 << 20,
        local: true,
        token: None,
    };
    let work_tree = root.join("ws/repo");
    let git_dir = root.join("ws/git");
    std::fs::create_dir_all(root.join("ws")).unwrap();
    let c = git::clone(
        &spec,
        &work_tree,
        &git_dir,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    (c.repo, remote)
}

/// A script that creates `marker` (plus a suffix saying which trick ran) when executed.
fn evil(marker: &Path, what: &str) -> String {
    format!("touch {}-{what}", marker.display())
}

fn markers(marker: &Path) -> Vec<String> {
    let dir = marker.parent().unwrap();
    let stem = marker.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&stem))
        .collect()
}

async fn diff_commit_push(repo: &HostRepo, remote: &Path) {
    let base = repo.head_commit().await;
    let d = repo
        .work_diff(base.as_deref(), &git::DiffLimits::default())
        .await
        .unwrap();
    let patch = String::from_utf8_lossy(&d.patch);
    assert!(patch.contains("app.py") || !d.files.is_empty(), "{patch}");
    repo.run(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "-m",
        "agent work",
    ])
    .await
    .unwrap();
    let remote = remote.display().to_string();
    repo.run(&["push", "-q", &remote, "HEAD:refs/heads/agent"])
        .await
        .unwrap();
    let _ = repo.run(&["log", "-p", "-1"]).await.unwrap();
    let _ = repo.run(&["status"]).await.unwrap();
}

#[tokio::test]
async fn planted_git_config_hooks_and_filters_never_run_on_the_host() {
    for kind in backends("planted git hooks/config/filters") {
        let root = tempfile::tempdir().unwrap();
        let (repo, remote) = cloned(root.path()).await;
        let marker_dir = tempfile::tempdir().unwrap();
        let marker = marker_dir.path().join("PWNED");
        let mounts = SandboxMounts {
            work_tree: repo.work_tree.clone().unwrap(),
            git_dir: repo.git_dir.clone(),
        };
        let fx = fixture_at(tempfile::tempdir().unwrap(), mounts, settings(kind, false));
        let k = fx.kind();
        let script = format!(
            r#"
set +e
for h in pre-commit post-commit pre-push post-index-change reference-transaction fsmonitor-watchman; do
  mkdir -p .git/hooks 2>/dev/null; printf '#!/bin/sh\n{hook}\n' > .git/hooks/$h && chmod +x .git/hooks/$h && echo WROTE-HOOK-$h
done
git config core.fsmonitor '{fsm}' && echo WROTE-CONFIG
git config core.pager '{pager}'
git config diff.external '{ext}'
git config alias.status '!{alias}'
git config filter.evil.clean '{clean}'
git config filter.evil.process '{process}'
git config diff.evil.textconv '{textconv}'
printf '[core]\n\tfsmonitor = {fsm}\n\thooksPath = .githooks\n' >> .git/config && echo APPENDED-CONFIG
printf '* filter=evil diff=evil merge=evil\n' > .gitattributes
mkdir -p .githooks && printf '#!/bin/sh\n{hook}\n' > .githooks/pre-commit && chmod +x .githooks/pre-commit
mkdir -p sub && cd sub && env -u GIT_DIR -u GIT_WORK_TREE git init -q . && echo n > n && env -u GIT_DIR -u GIT_WORK_TREE git add n && env -u GIT_DIR -u GIT_WORK_TREE git -c user.name=x -c user.email=x@x commit -q -m n; cd ..; mkdir -p sub/.git/hooks
printf '[core]\n\tfsmonitor = {nested}\n' >> sub/.git/config
printf '#!/bin/sh\n{nested}\n' > sub/.git/hooks/pre-commit; chmod +x sub/.git/hooks/pre-commit
echo 'print(2)' >> app.py
echo done
"#,
            hook = evil(&marker, "hook"),
            fsm = evil(&marker, "fsmonitor"),
            pager = evil(&marker, "pager"),
            ext = evil(&marker, "external-diff"),
            alias = evil(&marker, "alias"),
            clean = evil(&marker, "filter-clean"),
            process = evil(&marker, "filter-process"),
            textconv = evil(&marker, "textconv"),
            nested = evil(&marker, "nested"),
        );
        let out = fx.sh(&script).await;
        assert!(out.output.contains("done"), "[{k}] {}", out.output);
        // The real git directory is read-only inside.
        assert!(!out.output.contains("WROTE-CONFIG"), "[{k}] {}", out.output);
        let config = std::fs::read_to_string(repo.git_dir.join("config")).unwrap();
        assert!(
            !config.contains("PWNED"),
            "[{k}] the host git config was changed:\n{config}"
        );
        assert!(
            std::fs::read_dir(repo.git_dir.join("hooks"))
                .map(|d| d
                    .flatten()
                    .all(|e| e.file_name().to_string_lossy().ends_with(".sample")))
                .unwrap_or(true),
            "[{k}] a hook was written to the host git dir"
        );
        diff_commit_push(&repo, &remote).await;
        let m = markers(&marker);
        assert!(m.is_empty(), "[{k}] planted code ran on the host: {m:?}");
        // Nothing the agent could do inside created the marker either.
        assert!(markers(&marker).is_empty());
    }
}

/// Even if the git directory's config and hooks were tampered with (they cannot be from inside),
/// the host's overrides keep hooks, fsmonitor, pager and external diff drivers off.
#[tokio::test]
async fn host_git_overrides_hold_against_a_tampered_git_dir() {
    let root = tempfile::tempdir().unwrap();
    let (repo, remote) = cloned(root.path()).await;
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("PWNED");
    let hooks = repo.git_dir.join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for h in [
        "pre-commit",
        "post-commit",
        "pre-push",
        "post-index-change",
        "reference-transaction",
        "post-checkout",
        "fsmonitor-watchman",
    ] {
        let p = hooks.join(h);
        std::fs::write(&p, format!("#!/bin/sh\n{}\n", evil(&marker, h))).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(&p).unwrap().permissions(),
            0o755,
        );
        sh_host(root.path(), &format!("chmod +x {}", p.display()));
    }
    let mut config = std::fs::read_to_string(repo.git_dir.join("config")).unwrap();
    config.push_str(&format!(
        "[core]\n\tfsmonitor = {}\n\tpager = {}\n\thooksPath = {}\n[diff]\n\texternal = {}\n\
         [pager]\n\tdiff = {}\n",
        evil(&marker, "fsmonitor"),
        evil(&marker, "pager"),
        hooks.display(),
        evil(&marker, "external"),
        evil(&marker, "pager-diff"),
    ));
    std::fs::write(repo.git_dir.join("config"), config).unwrap();
    std::fs::write(
        repo.work_tree.as_ref().unwrap().join("app.py"),
        "print(3)\n",
    )
    .unwrap();
    diff_commit_push(&repo, &remote).await;
    let m = markers(&marker);
    assert!(m.is_empty(), "tampered git dir ran code on the host: {m:?}");
}
