//! Adversarial suite, part 2: resource abuse and escaping children. Each case checks that the
//! command is stopped, says what happened, leaves no process behind and that the sandbox still
//! runs the next command.

#![allow(clippy::unwrap_used)]

mod sandbox_common;

use std::time::Duration;

use sandbox_common::*;
use tiny_backspace::sandbox::Termination;

async fn still_usable(fx: &Fixture) {
    let out = fx.sh("echo next-command-ok").await;
    assert_eq!(
        out.output.trim(),
        "next-command-ok",
        "[{}] the sandbox no longer runs commands",
        fx.kind()
    );
}

#[tokio::test]
async fn fork_bomb_is_contained() {
    for kind in backends("fork bomb") {
        if !tiny_backspace::sandbox::enforcement().processes {
            eprintln!(
                "CANNOT RUN: case `fork bomb` on backend `{}`: no pids cgroup can be created and \
                 RLIMIT_NPROC does not apply to root, so nothing would bound it",
                kind.as_str()
            );
            continue;
        }
        let fx = fixture(kind, false);
        let k = fx.kind();
        // The script is named after a fresh tag, so its leftovers (and only those) can be found
        // on the host.
        let script = format!("{}.sh", random_token("bomb"));
        let out = fx
            .sh_for(
                &format!("printf '#!/bin/bash\\n$0 & $0 & wait\\n' > {script}; chmod +x {script}; exec ./{script}"),
                Duration::from_secs(4),
            )
            .await;
        assert_eq!(
            out.terminated,
            Some(Termination::Timeout),
            "[{k}] {}",
            out.output
        );
        let left = host_processes_matching(&script);
        assert!(
            left.is_empty(),
            "[{k}] {} fork bomb processes left, among them {:?}",
            left.len(),
            &left[..left.len().min(5)]
        );
        still_usable(&fx).await;
    }
}

#[tokio::test]
async fn memory_hog_is_stopped_by_the_memory_limit() {
    for kind in backends("memory hog") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        // 1 GiB in 16 MiB steps against a 256 MiB limit.
        let out = fx
            .sh_for(
                "python3 -c 'x=[bytearray(16<<20) for _ in range(64)]; print(\"ALLOCATED\")' 2>&1 || \
                 head -c 1073741824 /dev/zero | tail > /dev/null",
                Duration::from_secs(60),
            )
            .await;
        assert!(
            !out.output.contains("ALLOCATED"),
            "[{k}] 1 GiB allocated:\n{}",
            out.output
        );
        assert_ne!(out.exit_code, 0, "[{k}] {}", out.output);
        assert_ne!(
            out.terminated,
            Some(Termination::Timeout),
            "[{k}] only the timeout stopped it"
        );
        still_usable(&fx).await;
    }
}

#[tokio::test]
async fn infinite_output_is_cut_and_stopped() {
    for kind in backends("yes") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let name = random_token("tb-yes-");
        let out = fx
            .sh_for(&format!("exec -a {name} yes"), Duration::from_secs(60))
            .await;
        assert_eq!(out.terminated, Some(Termination::OutputLimit), "[{k}]");
        assert!(
            out.output.len() < 16 << 10,
            "[{k}] kept {} bytes",
            out.output.len()
        );
        assert!(out.output.contains("bytes of output cut"), "[{k}]");
        let left = host_processes_matching(&name);
        assert!(left.is_empty(), "[{k}] left running: {left:?}");
        still_usable(&fx).await;
    }
}

#[tokio::test]
async fn long_sleep_times_out_and_the_tree_dies() {
    for kind in backends("sleep 100000") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let out = fx
            .sh_for(
                "(exec -a tb-sleep-622 sleep 100000) & exec -a tb-sleep-621 sleep 100000",
                Duration::from_secs(1),
            )
            .await;
        assert_eq!(out.terminated, Some(Termination::Timeout), "[{k}]");
        let left = host_processes_matching("tb-sleep-62");
        assert!(left.is_empty(), "[{k}] left: {left:?}");
        still_usable(&fx).await;
    }
}

#[tokio::test]
async fn nohup_and_setsid_children_do_not_survive_the_command() {
    for kind in backends("nohup/setsid escape") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let out = fx
            .sh(
                "nohup sleep 987651 >/dev/null 2>&1 & setsid sleep 987652 >/dev/null 2>&1 < /dev/null & \
                 (setsid bash -c 'sleep 987653' >/dev/null 2>&1 &) ; \
                 setsid -f sleep 987654 >/dev/null 2>&1; echo launched",
            )
            .await;
        assert!(out.output.contains("launched"), "[{k}] {}", out.output);
        assert_eq!(out.terminated, None, "[{k}]");
        let left = host_processes_matching("sleep 98765");
        assert!(left.is_empty(), "[{k}] escaped processes survive: {left:?}");
        still_usable(&fx).await;
    }
}

#[tokio::test]
async fn disk_fill_is_stopped_by_the_file_size_and_workspace_limits() {
    for kind in backends("disk fill") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        // One big file: the file size limit (8 MiB here).
        let out = fx
            .sh("dd if=/dev/zero of=big bs=1M count=64 2>&1; ls -l big")
            .await;
        let size = std::fs::metadata(fx.mounts.work_tree.join("big"))
            .unwrap()
            .len();
        assert!(
            size <= 8 << 20,
            "[{k}] a {size}-byte file was written:\n{}",
            out.output
        );
        assert!(
            out.output.contains("SIGXFSZ") || out.output.contains("File size limit"),
            "[{k}] the result does not say what happened:\n{}",
            out.output
        );
        // Many files under the per-file limit: the workspace limit (32 MiB here).
        let out = fx
            .sh_for(
                "rm -f big; i=0; while true; do head -c 4000000 /dev/zero > f$i || exit 9; i=$((i+1)); sleep 0.05; done",
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(
            out.terminated,
            Some(Termination::DiskLimit),
            "[{k}] {}",
            out.output
        );
        still_usable(&fx).await;
        // The run's /tmp is bounded too (`tmp_mb`, by the disk watch on every backend).
        let out = fx
            .sh_for(
                "i=0; while true; do head -c 4000000 /dev/zero > ${TMPDIR:-/tmp}/t$i || exit 9; i=$((i+1)); sleep 0.05; done",
                Duration::from_secs(60),
            )
            .await;
        assert!(
            out.terminated == Some(Termination::TmpLimit),
            "[{k}] /tmp filled without a stop: {:?} {}",
            out.terminated,
            out.output
        );
    }
}

#[tokio::test]
async fn cpu_time_limit_stops_a_spinner() {
    for kind in backends("cpu limit") {
        let mut s = settings(kind, false);
        s.limits.cpu_secs = 1;
        let fx = fixture_with(s);
        let k = fx.kind();
        let out = fx
            .sh_for("while :; do :; done", Duration::from_secs(30))
            .await;
        assert_eq!(out.terminated, None, "[{k}] only the timeout stopped it");
        assert!(
            out.output.contains("SIGXCPU") || out.exit_code == 128 + libc::SIGXCPU,
            "[{k}] {} {}",
            out.exit_code,
            out.output
        );
        still_usable(&fx).await;
    }
}

#[tokio::test]
async fn sandbox_drop_leaves_nothing_running() {
    for kind in backends("cleanup at the end of the run") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let _ = fx.sh("(sleep 987661 &) ; echo started").await;
        drop(fx);
        let left = host_processes_matching("sleep 987661");
        assert!(left.is_empty(), "[{k}] left after the run: {left:?}");
    }
}

/// bwrap keeps one sandbox per run and replaces it after a command had to be killed; on every
/// backend no process of a killed command survives, while the run's /tmp does (on disk).
#[tokio::test]
async fn a_killed_command_takes_nothing_into_the_next_one() {
    for kind in backends("state after a kill") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let first = fx.sh("echo one > ${TMPDIR:-/tmp}/state; echo $$").await;
        let second = fx.sh("cat ${TMPDIR:-/tmp}/state").await;
        assert_eq!(second.output.trim(), "one", "[{k}] {}", first.output);
        let out = fx
            .sh_for("sleep 987671 & sleep 100000", Duration::from_secs(1))
            .await;
        assert_eq!(out.terminated, Some(Termination::Timeout), "[{k}]");
        assert!(host_processes_matching("sleep 987671").is_empty(), "[{k}]");
        let after = fx.sh("cat ${TMPDIR:-/tmp}/state 2>&1; echo ok").await;
        assert!(after.output.contains("ok"), "[{k}] {}", after.output);
        // A fresh bwrap sandbox, the same /tmp (issue 13: state lasts the run).
        assert!(after.output.contains("one"), "[{k}] {}", after.output);
    }
}

/// A command that signals everything it can (inside bwrap that includes the executor) ends, the
/// run goes on with a working sandbox, and nothing outside was touched.
#[tokio::test]
async fn a_command_killing_everything_it_can_only_hurts_itself() {
    let me = std::process::id();
    for kind in backends("kill -9 -1") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        // Only if signalling this test process is already impossible (checked first).
        let probe = fx
            .sh(&format!("kill -0 {me} 2>/dev/null && echo REACHABLE"))
            .await;
        assert!(
            !probe.output.contains("REACHABLE"),
            "[{k}] the test process can be signalled"
        );
        let out = fx
            .sh("sleep 987681 & kill -9 -1; echo after; sleep 1; echo survived")
            .await;
        // bwrap: the executor is killed too, so the sandbox is replaced; landlock: only the
        // command's own processes could be reached, the shell itself survives.
        if k == "bwrap" {
            assert!(
                out.output.contains("ended unexpectedly"),
                "[{k}] {}",
                out.output
            );
        } else {
            assert!(out.output.contains("survived"), "[{k}] {}", out.output);
        }
        assert!(host_processes_matching("sleep 987681").is_empty(), "[{k}]");
        still_usable(&fx).await;
    }
}

/// Without any cgroup (unprivileged machines): escaped children still die with their command.
#[tokio::test]
async fn without_cgroups_escaped_children_still_die() {
    for kind in backends("escapes without cgroups") {
        let mut s = settings(kind, false);
        s.use_cgroups = false;
        let fx = fixture_with(s);
        let k = fx.kind();
        let out = fx
            .sh("nohup sleep 987691 >/dev/null 2>&1 & setsid sleep 987692 >/dev/null 2>&1 < /dev/null & setsid -f sleep 987693 >/dev/null 2>&1; echo launched")
            .await;
        assert!(out.output.contains("launched"), "[{k}] {}", out.output);
        let left = host_processes_matching("sleep 98769");
        assert!(left.is_empty(), "[{k}] escaped processes survive: {left:?}");
        // The same when the command has to be stopped.
        let out = fx
            .sh_for(
                "setsid sleep 987694 >/dev/null 2>&1 < /dev/null & sleep 100000",
                Duration::from_secs(1),
            )
            .await;
        assert_eq!(out.terminated, Some(Termination::Timeout), "[{k}]");
        let left = host_processes_matching("sleep 98769");
        assert!(
            left.is_empty(),
            "[{k}] escaped processes survive a timeout: {left:?}"
        );
        still_usable(&fx).await;
    }
}

/// Through the agent's `bash` tool: `timeout_secs` is capped at the maximum, the whole tree is
/// killed, and the result the model sees says what happened.
#[tokio::test]
async fn the_bash_tool_result_says_what_happened() {
    use std::sync::Arc;
    use tiny_backspace::agent::fs::WorkspaceFs;
    use tiny_backspace::agent::tools::Toolbox;
    for kind in backends("bash tool result") {
        let mut s = settings(kind, false);
        s.max_timeout = Duration::from_secs(2);
        s.default_timeout = Duration::from_secs(1);
        let fx = fixture_with(s.clone());
        let k = fx.kind();
        let tools = Toolbox {
            fs: WorkspaceFs::open(&fx.mounts.work_tree).unwrap(),
            sandbox: Arc::from(fx.sandbox),
            sandbox_settings: s,
            run_id: "t".into(),
            output_cap_chars: 2_000,
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let out = tools
            .call(
                "bash",
                &serde_json::json!({"command": "setsid sleep 987701 & sleep 100000", "timeout_secs": 1000}),
                &cancel,
            )
            .await;
        assert!(
            out.content.contains("killed after the 2s time limit"),
            "[{k}] {}",
            out.content
        );
        assert!(host_processes_matching("sleep 987701").is_empty(), "[{k}]");
        let out = tools
            .call(
                "bash",
                &serde_json::json!({"command": "yes tb-tool-flood"}),
                &cancel,
            )
            .await;
        assert!(
            out.content.contains("more output than the limit"),
            "[{k}] {}",
            out.content
        );
        assert!(
            out.content.len() < 4_000,
            "[{k}] {} chars reached the model",
            out.content.len()
        );
        let out = tools
            .call(
                "bash",
                &serde_json::json!({"command": "echo fine"}),
                &cancel,
            )
            .await;
        assert!(
            out.content.contains("exit code: 0") && out.content.contains("fine"),
            "[{k}] {}",
            out.content
        );
    }
}
