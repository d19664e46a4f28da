//! State that lasts the run (issue 13): `HOME`, `/tmp` and package caches persist across every
//! command of a run — a bwrap sandbox restarted after a killed command and a new sandbox over the
//! same work tree included —, never appear in the patch, are bounded by `sandbox.tmp_mb`, and go
//! with the workspace (at the end of the run and by recovery after SIGKILL). Read-only host paths
//! (`--ro-path`) are readable, not writable, with their `bin` on `PATH` when asked; secret stores
//! are refused with exit 2. `sandbox.cache` keeps caches between two runs of one repository only
//! when on. Every case runs on every backend available (see `sandbox_common`), as root and, when
//! the suite runs as root, really switched to `tbuser`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/as_user.rs"]
mod as_user;
mod sandbox_common;
#[path = "support/repo.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sandbox_common::*;
use serde_json::json;
use tiny_backspace::sandbox::{self, SandboxKind, Termination, ro_paths, state_dir};

const WRITE_STATE: &str = "echo home-kept > \"$HOME/h.txt\" && echo tmp-kept > \"$TMPDIR/t.txt\" \
     && mkdir -p \"$XDG_CACHE_HOME/pip\" && echo cache-kept > \"$PIP_CACHE_DIR/c.txt\" && echo WROTE";
const READ_STATE: &str =
    "cat \"$HOME/h.txt\" \"$TMPDIR/t.txt\" \"$PIP_CACHE_DIR/c.txt\" 2>&1; echo HOME=$HOME";

fn kept(out: &str) -> bool {
    out.contains("home-kept") && out.contains("tmp-kept") && out.contains("cache-kept")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_lasts_across_commands_restarts_and_new_sandboxes() {
    for kind in backends("state across commands and restarts") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let w = fx.sh(WRITE_STATE).await;
        assert!(w.output.contains("WROTE"), "[{k}] {}", w.output);
        let r = fx.sh(READ_STATE).await;
        assert!(kept(&r.output), "[{k}] {}", r.output);
        // A killed command: bwrap replaces its sandbox.
        let t = fx.sh_for("sleep 100000", Duration::from_secs(1)).await;
        assert_eq!(t.terminated, Some(Termination::Timeout), "[{k}]");
        let r = fx.sh(READ_STATE).await;
        assert!(kept(&r.output), "[{k}] after a restart: {}", r.output);
        // A new sandbox over the same work tree (a follow-up, a setup phase).
        let again = sandbox::open(&fx.settings, fx.mounts.clone()).unwrap();
        let r = exec(again.as_ref(), READ_STATE).await;
        assert!(kept(&r.output), "[{k}] in a new sandbox: {}", r.output);
        // Outside the work tree, inside the run's workspace.
        let state = state_dir(&fx.mounts);
        assert!(state.starts_with(fx.tmp.path()) && !state.starts_with(&fx.mounts.work_tree));
        let home = state.join("tmp/home/h.txt");
        assert_eq!(
            std::fs::read_to_string(&home).unwrap().trim(),
            "home-kept",
            "[{k}]"
        );
        let listing: Vec<_> = std::fs::read_dir(&fx.mounts.work_tree)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(listing, vec![std::ffi::OsString::from(".git")], "[{k}]");
        // Control for the planted-config case of the real run below: a git configuration the
        // sandbox writes into its HOME is live for any git that takes that HOME as its own.
        let pwned = fx.tmp.path().join("pwned");
        let plant = fx
            .sh(&format!(
                "printf '[core]\\n\\tfsmonitor = \"touch {}\"\\n' > \"$HOME/.gitconfig\"",
                pwned.display()
            ))
            .await;
        assert_eq!(plant.exit_code, 0, "[{k}] {}", plant.output);
        let control = tempfile::tempdir().unwrap();
        support::git(control.path(), &["init", "-q"]);
        let st = std::process::Command::new("git")
            .args(["status", "--short"])
            .current_dir(control.path())
            .env("HOME", state.join("tmp/home"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_CONFIG_GLOBAL")
            .output()
            .unwrap();
        assert!(pwned.exists(), "[{k}] the control did not run: {st:?}");
        // Caches go under HOME.
        let env = fx
            .sh("echo $XDG_CACHE_HOME $PIP_CACHE_DIR $npm_config_cache $GOCACHE")
            .await;
        let home_in = r
            .output
            .lines()
            .find_map(|l| l.strip_prefix("HOME="))
            .unwrap();
        for var in env.output.split_whitespace() {
            assert!(var.starts_with(home_in), "[{k}] {var} not under {home_in}");
        }
    }
}

async fn exec(sb: &dyn sandbox::Sandbox, command: &str) -> sandbox::ExecOutput {
    let req = sandbox::ExecRequest {
        command: command.into(),
        timeout: Duration::from_secs(60),
    };
    sb.exec(&req, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap()
}

/// `sandbox.tmp_mb` still bounds what `HOME` (not only `/tmp`) can hold, now that both are on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tmp_limit_bounds_home_too() {
    for kind in backends("tmp limit on HOME") {
        let fx = fixture(kind, false); // tmp_mb = 16 here
        let k = fx.kind();
        let out = fx
            .sh_for(
                "i=0; while true; do head -c 4000000 /dev/zero > \"$HOME/f$i\" || exit 9; i=$((i+1)); sleep 0.05; done",
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(
            out.terminated,
            Some(Termination::TmpLimit),
            "[{k}] {}",
            out.output
        );
        let why = Termination::TmpLimit.describe(Duration::from_secs(60));
        assert!(why.contains("tmp_mb") && why.contains("HOME"), "{why}");
        // Over the limit but not growing: the agent can still clean up.
        let clean = fx.sh("rm -f \"$HOME\"/f*; echo CLEAN").await;
        assert!(clean.output.contains("CLEAN"), "[{k}] {}", clean.output);
    }
}

/// A directory beneath `root` holding `bin/tb-ro-hello` and `data.txt`.
fn toolchain(root: &Path) -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("tb-ro-")
        .tempdir_in(root)
        .unwrap();
    std::fs::create_dir_all(t.path().join("bin")).unwrap();
    let exe = t.path().join("bin/tb-ro-hello");
    std::fs::write(&exe, "#!/bin/sh\necho HELLO-FROM-RO\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(t.path().join("data.txt"), "RO-DATA\n").unwrap();
    for p in [t.path(), &t.path().join("bin")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    t
}

/// Read-only paths: readable and executable, not writable, `bin` on `PATH` only when asked. As
/// root the toolchain lives in root's home (0700), which bwrap's unprivileged uid could not even
/// traverse without the staging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ro_paths_are_readable_not_writable_and_on_path_when_asked() {
    let home = PathBuf::from(std::env::var("HOME").unwrap());
    let parent = if as_user::is_root() {
        home.clone()
    } else {
        PathBuf::from("/var/tmp")
    };
    let tool = toolchain(&parent);
    let state = tempfile::tempdir().unwrap();
    let p = tool.path().display().to_string();
    for kind in backends("read-only paths") {
        for on_path in [true, false] {
            let entry = if on_path {
                format!("{p}:path")
            } else {
                p.clone()
            };
            let mut s = settings(kind, false);
            s.ro_paths = ro_paths::check_all(&[entry], Some(&home), state.path()).unwrap();
            let fx = fixture_with(s);
            let k = fx.kind();
            let out = fx
                .sh(&format!(
                    "cat {p}/data.txt; {p}/bin/tb-ro-hello; tb-ro-hello 2>&1 | tail -1; \
                     touch {p}/x 2>/dev/null && echo WROTE-RO; \
                     echo y > {p}/data.txt 2>/dev/null && echo OVERWROTE-RO; echo END"
                ))
                .await;
            let o = &out.output;
            assert!(o.contains("RO-DATA") && o.contains("END"), "[{k}] {o}");
            assert!(o.contains("HELLO-FROM-RO"), "[{k}] executable: {o}");
            assert!(
                !o.contains("WROTE-RO") && !o.contains("OVERWROTE-RO"),
                "[{k}] {o}"
            );
            let hellos = o.matches("HELLO-FROM-RO").count();
            assert_eq!(hellos, if on_path { 2 } else { 1 }, "[{k}] on PATH: {o}");
            assert!(!tool.path().join("x").exists(), "[{k}]");
        }
    }
}

/// Every secret store (and a home, its parents, the state dir, a symlink to a store, `..`
/// tricks, a missing path) is refused by the real binary with exit 2, naming the input, the
/// secret and what to do instead — from the flag, the environment and the config file.
#[test]
fn secret_stores_and_their_parents_are_refused_with_exit_2() {
    let env = support::Env::new();
    let home = env.tmp.path();
    for store in ro_paths::SECRET_STORES {
        let p = home.join(store);
        if store.contains("credentials") || store.ends_with("rc") {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "secret").unwrap();
        } else {
            std::fs::create_dir_all(&p).unwrap();
        }
    }
    std::fs::create_dir_all(home.join("tools")).unwrap();
    std::os::unix::fs::symlink(home.join(".ssh"), home.join("tools/keys")).unwrap();
    let tb_home = env.home();
    std::fs::create_dir_all(&tb_home).unwrap();
    let mut cases: Vec<(String, String)> = ro_paths::SECRET_STORES
        .iter()
        .map(|s| (format!("~/{s}"), home.join(s).display().to_string()))
        .collect();
    let ssh = home.join(".ssh").display().to_string();
    cases.extend([
        ("~/.cargo".into(), "credentials".into()),
        ("~".into(), ".ssh".into()),
        ("/home".into(), ".ssh".into()),
        ("/".into(), ".ssh".into()),
        (
            "~/.config".into(),
            home.join(".config").display().to_string(),
        ),
        ("~/tools/keys".into(), ssh.clone()),
        ("~/tools/../.ssh".into(), ssh.clone()),
        (tb_home.display().to_string(), "state directory".into()),
        ("~/no-such-dir".into(), "no-such-dir".into()),
        ("/proc".into(), "/proc".into()),
    ]);
    for (input, names) in &cases {
        let out = env.run(&["--ro-path", input, "config"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{input}: {stderr}");
        assert!(
            stderr.contains(input.as_str()) && stderr.contains(names.as_str()),
            "{input}: {stderr}"
        );
        if input != "~/no-such-dir" {
            assert!(stderr.contains("refused"), "{input}: {stderr}");
        }
    }
    let cargo = env.run(&["--ro-path", "~/.cargo", "config"]);
    assert!(String::from_utf8_lossy(&cargo.stderr).contains("~/.cargo/bin"));
    // The environment and the config file are checked the same way.
    let out = env
        .command()
        .env(
            "TB_RO_PATHS",
            format!("{},~/.aws", home.join("tools").display()),
        )
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(".aws"));
    env.write(
        "config.toml",
        "[sandbox]\nro_paths = [{ path = \"~/.kube\", add_to_path = true }]\n",
    );
    let out = env.run(&["config"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(".kube"));
    // An allowed one is shown with its source.
    env.write(
        "config.toml",
        "[sandbox]\ncache = true\nro_paths = [{ path = \"~/tools\", add_to_path = true }]\n",
    );
    let out = env.run(&["config"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        shown.contains("(bin on PATH)") && shown.contains("config file"),
        "{shown}"
    );
    assert!(
        shown.contains("kept between runs per repository"),
        "{shown}"
    );
}

/// A scripted run on `kind` whose bash commands are `commands`; as `tbuser` when asked.
fn run_commands(
    env: &support::Env,
    repo: &Path,
    kind: SandboxKind,
    commands: &[serde_json::Value],
    as_tbuser: bool,
    extra_env: &[(&str, &str)],
    extra_args: &[&str],
) -> std::process::Output {
    let mut turns: Vec<serde_json::Value> = commands
        .iter()
        .map(|c| json!({"tool_calls": [{"name": "bash", "input": c}]}))
        .collect();
    turns.push(json!({"text": "done"}));
    let s = env.write(
        &format!("script-{}.json", fastrand::u32(..)),
        &support::script(json!(turns)),
    );
    let mut args = vec!["--sandbox", kind.as_str()];
    args.extend(extra_args);
    let mut cmd = env.scripted_command(repo.to_str().unwrap(), "p", &s, &args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    if as_tbuser {
        as_user::give_to_tbuser(env.tmp.path());
        cmd = as_user::as_tbuser(&cmd, env.tmp.path());
    }
    as_user::output_retrying_busy(&mut cmd)
}

/// Through the real binary, as root and as `tbuser`: state written by one command is read after a
/// killed command (a restarted bwrap), is not in the patch, and is gone with the workspace.
#[test]
fn a_real_run_keeps_state_out_of_the_patch_and_removes_it_at_the_end() {
    let users: &[bool] = if as_user::is_root() {
        &[false, true]
    } else {
        &[false]
    };
    for kind in backends("state through a real run") {
        for &tbuser in users {
            let case = format!(
                "{} as {}",
                kind.as_str(),
                if tbuser { "tbuser" } else { "caller" }
            );
            let env = support::Env::new();
            let repo = support::make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
            // The persisted HOME is the agent's: git configuration planted there must never reach
            // host git (diff, commit), which would run its fsmonitor as the host user.
            let pwned = env.path("pwned");
            let plant = format!(
                "mkdir -p \"$HOME/.config/git\"; for f in \"$HOME/.gitconfig\" \"$HOME/.config/git/config\"; do \
                 printf '[core]\\n\\tfsmonitor = \"touch {p}\"\\n\\thooksPath = /nonexistent\\n' > \"$f\"; done",
                p = pwned.display()
            );
            // A toolchain the user owns, mounted read-only with its bin on PATH.
            let tool = toolchain(env.tmp.path());
            let ro = format!("{}:path", tool.path().display());
            let out = run_commands(
                &env,
                &repo,
                kind,
                &[
                    json!({"command": format!("{WRITE_STATE}; {plant}; echo change >> a.txt")}),
                    json!({"command": "sleep 100000", "timeout_secs": 1}),
                    json!({"command": format!("tb-ro-hello; touch {}/x 2>/dev/null && echo WROTE-RO; {READ_STATE}; id -u", tool.path().display())}),
                ],
                tbuser,
                &[],
                &["--ro-path", &ro],
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{case}: {stderr}");
            let bash = as_user::bash_outputs(&out);
            assert!(bash[0].contains("WROTE"), "{case}: {bash:?}");
            assert!(kept(&bash[2]), "{case}: {bash:?}");
            assert!(
                bash[2].contains("HELLO-FROM-RO") && !bash[2].contains("WROTE-RO"),
                "{case}: {bash:?}"
            );
            if tbuser {
                let uid = bash[2].lines().last().unwrap_or("").trim().to_string();
                assert_eq!(uid, as_user::tbuser().0.to_string(), "{case}: {bash:?}");
            }
            assert_eq!(as_user::diff_paths(&out), vec!["a.txt"], "{case}");
            let patch = as_user::patch(&out);
            assert!(!patch.contains("kept"), "{case}: {patch}");
            assert!(!pwned.exists(), "{case}: host git read the sandbox's HOME");
            assert!(
                env.leftover_workspaces().is_empty(),
                "{case}: {:?}",
                env.leftover_workspaces()
            );
        }
    }
}

/// SIGKILL of the binary mid-run: the next start's recovery removes the state with the workspace.
#[test]
fn recovery_after_sigkill_removes_the_state() {
    for kind in backends("state removed by recovery") {
        let env = support::Env::new();
        let repo = support::make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
        let s = env.write(
            "script.json",
            &support::script(json!([
                {"tool_calls": [{"name": "bash", "input": {"command": "echo x > \"$HOME/marker\"; sleep 100000", "timeout_secs": 300}}]},
                {"text": "done"}
            ])),
        );
        let mut child = env
            .scripted_command(
                repo.to_str().unwrap(),
                "p",
                &s,
                &["--sandbox", kind.as_str()],
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let marker = loop {
            let found = std::fs::read_dir(env.home().join("work"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join("sandbox-repo/tmp/home/marker"))
                .find(|m| m.exists());
            if let Some(m) = found {
                break m;
            }
            assert!(
                Instant::now() < deadline,
                "[{kind:?}] the marker never appeared"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let out = env.run(&["runs"]);
        assert!(out.status.success(), "{out:?}");
        assert!(!marker.exists(), "[{kind:?}] {} is left", marker.display());
        assert!(
            env.leftover_workspaces().is_empty(),
            "[{kind:?}] {:?}",
            env.leftover_workspaces()
        );
    }
}

/// `sandbox.cache`: a second run of the same repository reads what the first wrote in its cache
/// only when on; the cache lives in the state directory, keyed by the repository.
#[test]
fn the_cache_is_kept_between_runs_only_when_enabled() {
    for kind in backends("cache between runs") {
        for enabled in [true, false] {
            let env = support::Env::new();
            let repo = support::make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
            let flag = if enabled { "1" } else { "0" };
            let write = json!({"command": "mkdir -p \"$npm_config_cache\" && echo from-run-1 > \"$npm_config_cache/m\" && echo WROTE"});
            let read = json!({"command": "cat \"$npm_config_cache/m\" 2>&1; echo READ"});
            let first = run_commands(
                &env,
                &repo,
                kind,
                &[write],
                false,
                &[("TB_SANDBOX_CACHE", flag)],
                &[],
            );
            assert_eq!(first.status.code(), Some(0), "{first:?}");
            let second = run_commands(
                &env,
                &repo,
                kind,
                &[read],
                false,
                &[("TB_SANDBOX_CACHE", flag)],
                &[],
            );
            assert_eq!(second.status.code(), Some(0), "{second:?}");
            let out = as_user::bash_outputs(&second).join("\n");
            assert_eq!(
                out.contains("from-run-1"),
                enabled,
                "[{kind:?}] cache {flag}: {out}"
            );
            let caches: Vec<_> = std::fs::read_dir(env.home().join("cache"))
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            assert_eq!(caches.len(), usize::from(enabled), "[{kind:?}] {caches:?}");
        }
    }
}
