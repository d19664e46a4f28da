//! Adversarial suite, part 3: host file metadata (mode, owner, times, extended attributes, inode
//! flags) and host IPC (SysV shared memory, message queues, semaphores; POSIX shm and queues).
//!
//! Landlock governs opening and changing file *contents*, not `chmod`, `chown`, `utime`,
//! `setxattr`, inode-flag ioctls or SysV IPC, and the landlock backend shares the host's IPC
//! namespace; the issue reproduced all of these as reaching the host. Every case runs on every
//! backend this machine has, as the calling user and — when that is root — again as the ordinary
//! user `tbuser` (the test binary re-executes itself as that user, see
//! `hostmeta::rerun_as_ordinary_user`). The workspace cases check that ordinary work (`chmod +x`,
//! `touch`, `cp -p`, `tar x`) still works and really changes the files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hostmeta;
mod sandbox_common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hostmeta::ipc::{HostIpc, IPC_PY};
use hostmeta::*;
use sandbox_common::*;
use tiny_backspace::sandbox::SandboxKind;

/// Tries every route to change a file's metadata; prints `HIT <route>` for each that worked.
/// argv: path, a uid/gid that is not the caller's.
const ATTACK_PY: &str = r#"
import ctypes, fcntl, os, platform, struct, sys
P, OTHER = sys.argv[1], int(sys.argv[2])
B = P.encode()
l = ctypes.CDLL(None, use_errno=True)
def t(name, f):
    try:
        r = f()
    except OSError as e:
        print("refused", name, e.strerror, flush=True); return
    if r is None or r >= 0:
        print("HIT", name, flush=True)
    else:
        print("refused", name, os.strerror(ctypes.get_errno()), flush=True)
t("chmod", lambda: os.chmod(P, 0o4777))
t("chown", lambda: os.chown(P, OTHER, -1))
t("chgrp", lambda: os.chown(P, -1, OTHER))
t("lchown", lambda: os.lchown(P, OTHER, OTHER))
t("utime", lambda: os.utime(P, (1, 1)))
t("utime-now", lambda: os.utime(P, None))
t("lutime", lambda: os.utime(P, (2, 2), follow_symlinks=False))
t("setxattr", lambda: os.setxattr(P, "user.tb", b"x"))
t("lsetxattr", lambda: os.setxattr(P, "user.tb", b"x", follow_symlinks=False))
t("removexattr", lambda: os.removexattr(P, "user.keep"))
t("lremovexattr", lambda: os.removexattr(P, "user.keep", follow_symlinks=False))
if os.path.lexists("sl"): os.unlink("sl")
os.symlink(P, "sl")
t("chmod-via-symlink", lambda: os.chmod("sl", 0o777))
t("utime-via-symlink", lambda: os.utime("sl", (3, 3)))
t("setxattr-via-symlink", lambda: os.setxattr("sl", "user.tb", b"x"))
t("hard-link", lambda: os.link(P, "hl"))
t("mknod-char", lambda: os.mknod("dev", 0o20666, os.makedev(1, 3)))
try:
    fd = os.open(P, os.O_RDONLY)
except OSError as e:
    fd = None
    print("no fd:", e.strerror)
if fd is not None:
    t("fchmod", lambda: os.fchmod(fd, 0o777))
    t("fchown", lambda: os.fchown(fd, OTHER, OTHER))
    t("futimens", lambda: os.utime(fd, (4, 4)))
    t("fsetxattr", lambda: os.setxattr(fd, "user.tb", b"x"))
    t("fremovexattr", lambda: os.removexattr(fd, "user.keep"))
    t("chmod-proc-fd", lambda: os.chmod("/proc/self/fd/%d" % fd, 0o777))
    t("link-proc-fd", lambda: os.link("/proc/self/fd/%d" % fd, "hl2", follow_symlinks=True))
    def setflags():
        buf = fcntl.ioctl(fd, 0x80086601, struct.pack("l", 0))
        fcntl.ioctl(fd, 0x40086602, struct.pack("l", struct.unpack("l", buf)[0] | 0x40))
    t("ioctl-setflags", setflags)
    def fssetxattr():
        buf = bytearray(fcntl.ioctl(fd, 0x801C581F, bytes(28)))
        buf[0] |= 0x80
        fcntl.ioctl(fd, 0x401C5820, bytes(buf))
    t("ioctl-fssetxattr", fssetxattr)
if platform.machine() == "x86_64":
    s = l.syscall
    ts = (ctypes.c_long * 4)(5, 0, 5, 0)
    t("sys-chmod", lambda: s(90, B, 0o777))
    t("sys-utime", lambda: s(132, B, (ctypes.c_long * 2)(6, 6)))
    t("sys-utimes", lambda: s(235, B, ts))
    t("sys-futimesat", lambda: s(261, -100, B, ts))
    t("sys-fchmodat", lambda: s(268, -100, B, 0o777))
    t("sys-fchmodat2-nofollow", lambda: s(452, -100, B, 0o777, 0x100))
    t("sys-fchownat", lambda: s(260, -100, B, OTHER, OTHER, 0))
    t("sys-utimensat", lambda: s(280, -100, B, ts, 0))
    class XattrArgs(ctypes.Structure):
        _fields_ = [("value", ctypes.c_uint64), ("size", ctypes.c_uint32), ("flags", ctypes.c_uint32)]
    v = ctypes.create_string_buffer(b"x")
    xa = XattrArgs(ctypes.cast(v, ctypes.c_void_p).value, 1, 0)
    t("sys-setxattrat", lambda: s(463, -100, B, 0, b"user.tb", ctypes.byref(xa), 16))
    t("sys-removexattrat", lambda: s(466, -100, B, 0, b"user.keep"))
    fa = (ctypes.c_uint32 * 6)(0x80, 0, 0, 0, 0, 0)
    t("sys-file_setattr", lambda: s(469, -100, B, fa, 24, 0))
    if fd is not None:
        E = b""
        t("sys-fchmodat2-empty", lambda: s(452, fd, E, 0o777, 0x1000))
        t("sys-fchownat-empty", lambda: s(260, fd, E, OTHER, OTHER, 0x1000))
        t("sys-utimensat-empty", lambda: s(280, fd, E, ts, 0x1000))
        t("sys-utimensat-fd", lambda: s(280, fd, None, ts, 0))
        t("sys-setxattrat-empty", lambda: s(463, fd, E, 0x1000, b"user.tb", ctypes.byref(xa), 16))
t("rename-in", lambda: os.rename(P, "moved"))
print("attack done", flush=True)
"#;

/// The coreutils spelling of the issue's reproductions.
fn attack_sh(p: &str, other: u32) -> String {
    format!(
        "P='{p}'\n\
         chmod 4755 \"$P\" 2>&1 && echo 'HIT sh-chmod-4755'\n\
         chmod 0666 \"$P\" 2>&1 && echo 'HIT sh-chmod-0666'\n\
         chown {other} \"$P\" 2>&1 && echo 'HIT sh-chown'\n\
         chgrp {other} \"$P\" 2>&1 && echo 'HIT sh-chgrp'\n\
         test -e \"$P\" && touch -c -d 2011-01-01 \"$P\" 2>&1 && echo 'HIT sh-touch-d'\n\
         test -e \"$P\" && touch -c \"$P\" 2>&1 && echo 'HIT sh-touch'\n\
         python3 attack.py \"$P\" {other} 2>&1\n"
    )
}

/// Where a host path appears inside a sandbox of `kind` (bwrap shows the git directory at
/// `/workspace/.git` and hides everything else that is not a system directory).
fn inside(kind: SandboxKind, fx: &Fixture, host: &Path) -> String {
    match (kind, host.strip_prefix(&fx.mounts.git_dir)) {
        (SandboxKind::Bwrap, Ok(rest)) => format!("/workspace/.git/{}", rest.display()),
        _ => host.display().to_string(),
    }
}

fn other_id() -> u32 {
    if euid() == 0 { 1001 } else { 0 }
}

#[tokio::test]
async fn host_file_metadata_cannot_be_changed() {
    let outside = tempfile::Builder::new()
        .prefix("tb-hostmeta-outside-")
        .tempdir()
        .unwrap();
    let mut failures = Vec::new();
    for kind in backends("host file metadata") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        std::fs::write(fx.mounts.work_tree.join("attack.py"), ATTACK_PY).unwrap();
        // A file in a host directory the sandbox cannot read (like ~/.bashrc), and one it can
        // read (the git directory, like /etc on landlock): fd-based calls need an open file.
        let victims = [
            outside.path().join(format!("victim-{k}")),
            fx.mounts.git_dir.join("victim"),
        ];
        for v in &victims {
            plant_victim(v);
            let before = meta(v);
            let out = fx.sh(&attack_sh(&inside(kind, &fx, v), other_id())).await;
            eprintln!("[{k}] {}:\n{}", v.display(), out.output);
            assert!(
                out.output.contains("attack done"),
                "[{k}] the attack did not run:\n{}",
                out.output
            );
            let hits: Vec<&str> = out
                .output
                .lines()
                .filter(|l| l.starts_with("HIT"))
                .collect();
            if !hits.is_empty() {
                failures.push(format!("[{k}] {} changed via {hits:?}", v.display()));
            }
            let after = meta(v);
            if before != after {
                failures.push(format!(
                    "[{k}] {}: {before:?} became {after:?}",
                    v.display()
                ));
            }
            for made in ["hl", "hl2", "moved", "dev"] {
                if fx.mounts.work_tree.join(made).exists() {
                    failures.push(format!("[{k}] {made} appeared in the work tree"));
                }
            }
        }
    }
    conclude("host_file_metadata_cannot_be_changed", failures);
}

/// A host file hard-linked into the work tree by the *host* (the sandbox cannot make such a link:
/// see the `hard-link` routes above) is still a host file: changing it through the link must
/// fail. Landlock-only: on bwrap the link is the same inode in a writable bind mount — and the
/// host never makes such links, so this guards the landlock supervisor's own rule.
#[tokio::test]
async fn a_host_file_linked_into_the_work_tree_keeps_its_metadata() {
    let mut failures = Vec::new();
    for kind in backends("host-made hard link") {
        if kind != SandboxKind::Landlock {
            continue;
        }
        let fx = fixture(kind, false);
        let k = fx.kind();
        std::fs::write(fx.mounts.work_tree.join("attack.py"), ATTACK_PY).unwrap();
        let victim = fx.tmp.path().join("linked-victim");
        plant_victim(&victim);
        std::fs::hard_link(&victim, fx.mounts.work_tree.join("hostlink")).unwrap();
        let before = meta(&victim);
        let out = fx.sh(&attack_sh("hostlink", other_id())).await;
        eprintln!("[{k}] hostlink:\n{}", out.output);
        let hits: Vec<&str> = out
            .output
            .lines()
            .filter(|l| l.starts_with("HIT"))
            .collect();
        // Linking or moving the work tree's own name within the work tree changes no metadata.
        let hits: Vec<&str> = hits
            .into_iter()
            .filter(|h| !["HIT rename-in", "HIT hard-link"].contains(h))
            .collect();
        if !hits.is_empty() || !out.output.contains("attack done") {
            failures.push(format!(
                "[{k}] changed through a host-made link via {hits:?}"
            ));
        }
        let after = meta(&victim);
        // The attack's own `hl`/`hl2` links of the work-tree name are allowed (same tree).
        if (
            before.mode,
            before.uid,
            before.gid,
            before.mtime,
            &before.xattrs,
            before.flags,
        ) != (
            after.mode,
            after.uid,
            after.gid,
            after.mtime,
            &after.xattrs,
            after.flags,
        ) {
            failures.push(format!("[{k}] {before:?} became {after:?}"));
        }
    }
    conclude(
        "a_host_file_linked_into_the_work_tree_keeps_its_metadata",
        failures,
    );
}

#[tokio::test]
async fn host_ipc_objects_are_unreachable() {
    let mut failures = Vec::new();
    for kind in backends("host IPC") {
        let ipc = HostIpc::create();
        let fx = fixture(kind, false);
        let k = fx.kind();
        std::fs::write(fx.mounts.work_tree.join("ipc.py"), IPC_PY).unwrap();
        let cmd = format!(
            "python3 ipc.py {} {} {} {} {} {} {} {} 2>&1",
            ipc.shm_key,
            ipc.shm_id,
            ipc.msg_key,
            ipc.msg_id,
            ipc.sem_key,
            ipc.sem_id,
            ipc.posix_shm.display(),
            ipc.mq_name.to_string_lossy()
        );
        let out = fx.sh(&cmd).await;
        eprintln!("[{k}] IPC:\n{}", out.output);
        if !out.output.contains("attack done") {
            failures.push(format!("[{k}] the IPC attack did not run"));
        }
        let hits: Vec<&str> = out
            .output
            .lines()
            .filter(|l| l.starts_with("HIT"))
            .collect();
        if !hits.is_empty() {
            failures.push(format!("[{k}] host IPC reached via {hits:?}"));
        }
        if out.output.contains(&ipc.secret) {
            failures.push(format!("[{k}] a host IPC secret was read"));
        }
        for d in ipc.damage() {
            failures.push(format!("[{k}] {d}"));
        }
    }
    conclude("host_ipc_objects_are_unreachable", failures);
}

/// Ordinary work on the work tree's and the private temporary directory's own files still works
/// and really changes them.
const WORK_SH: &str = r#"set -e
printf '#!/bin/sh\necho script-ran\n' > script.sh
chmod +x script.sh && ./script.sh
echo x > existing
touch -d '2001-02-03 04:05:06 UTC' existing
cp -p script.sh copy.sh
mkdir -p d/sub && echo a > d/sub/f && chmod 0640 d/sub/f && touch -d '2002-01-01 UTC' d/sub/f
chmod 0750 d/sub
tar cf t.tar d
rm -rf d
tar xf t.tar
rm t.tar
echo y > viafd
python3 -c 'import os; fd = os.open("viafd", os.O_RDONLY); os.fchmod(fd, 0o600); os.utime(fd, (5, 5)); os.setxattr(fd, "user.tb", b"fd")'
python3 -c 'import os; os.setxattr("existing", "user.tb", b"path"); os.setxattr("existing", "user.gone", b"1"); os.removexattr("existing", "user.gone")'
echo z > target && ln -s target rel-link && chmod 0604 rel-link
ln -s "$PWD/abs-target" abs-link && echo w > abs-target && chmod 0602 abs-link
touch -h -d '2003-01-01 UTC' rel-link
chmod 0640 "$PWD/existing"
chown "$(id -u):$(id -g)" existing
echo t > "$TMPDIR/tmpfile" && chmod 0700 "$TMPDIR/tmpfile" && touch -d '2004-01-01 UTC' "$TMPDIR/tmpfile"
stat -c 'tmp %a %Y' "$TMPDIR/tmpfile"
mkdir -p "$HOME/.local/bin" && printf '#!/bin/sh\necho installed-ran\n' > "$HOME/.local/bin/tool"
chmod 755 "$HOME/.local/bin/tool" && "$HOME/.local/bin/tool"
echo work-done
"#;

#[tokio::test]
async fn ordinary_metadata_work_in_the_workspace_still_works() {
    let mut failures = Vec::new();
    for kind in backends("workspace metadata") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let out = fx.sh(WORK_SH).await;
        eprintln!("[{k}] work:\n{}", out.output);
        let ws = &fx.mounts.work_tree;
        let mut check = |ok: bool, what: &str| {
            if !ok {
                failures.push(format!("[{k}] {what}"));
            }
        };
        check(
            out.exit_code == 0 && out.output.contains("work-done"),
            "the script failed",
        );
        check(
            out.output.contains("script-ran"),
            "chmod +x did not make it runnable",
        );
        check(
            out.output.contains("installed-ran"),
            "chmod of an installed tool in HOME",
        );
        check(
            out.output.contains("tmp 700 1072915200"),
            "chmod/touch in TMPDIR",
        );
        if !out.output.contains("work-done") {
            continue;
        }
        check(
            mode_of(&ws.join("script.sh")) & 0o111 == 0o111,
            "script.sh not executable",
        );
        check(
            mtime_of(&ws.join("existing")) == 981_173_106,
            "touch -d did not set the mtime",
        );
        check(
            mode_of(&ws.join("copy.sh")) == mode_of(&ws.join("script.sh"))
                && mtime_of(&ws.join("copy.sh")) == mtime_of(&ws.join("script.sh")),
            "cp -p did not keep mode and mtime",
        );
        check(
            mode_of(&ws.join("d/sub/f")) == 0o640,
            "tar x did not restore the mode",
        );
        check(
            mode_of(&ws.join("d/sub")) == 0o750,
            "tar x did not restore a directory mode",
        );
        check(
            mtime_of(&ws.join("d/sub/f")) == 1_009_843_200,
            "tar x did not restore the mtime",
        );
        check(
            mode_of(&ws.join("viafd")) == 0o600,
            "fchmod on an open file",
        );
        check(mtime_of(&ws.join("viafd")) == 5, "futimens on an open file");
        let x = xattrs(&ws.join("viafd"));
        check(
            x.iter().any(|(n, v)| n == "user.tb" && v == b"fd"),
            "fsetxattr",
        );
        let x = xattrs(&ws.join("existing"));
        check(
            x.iter().any(|(n, v)| n == "user.tb" && v == b"path") && x.len() == 1,
            "setxattr/removexattr by path",
        );
        check(
            mode_of(&ws.join("existing")) == 0o640,
            "chmod by absolute path",
        );
        check(
            mode_of(&ws.join("target")) == 0o604,
            "chmod through a relative symlink",
        );
        check(
            mode_of(&ws.join("abs-target")) == 0o602,
            "chmod through an absolute symlink",
        );
        check(
            mtime_of(&ws.join("rel-link")) == 1_041_379_200,
            "touch -h on a symlink",
        );
    }
    conclude(
        "ordinary_metadata_work_in_the_workspace_still_works",
        failures,
    );
}

/// A set-user-ID file in the work tree, owned by a root caller, would be a root shell for anyone
/// who can reach the workspace. The supervisor drops those bits from `chmod`; a file created
/// with them loses them on its first write (the command has no `CAP_FSETID`). Landlock-only:
/// bwrap's policy for this is its own.
#[tokio::test]
async fn no_set_id_file_can_be_made_in_the_work_tree() {
    let mut failures = Vec::new();
    for kind in backends("set-id files") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let out = fx
            .sh(
                "cp /bin/true t1 && chmod 4755 t1; cp /bin/true t2 && chmod u+s,g+s t2\n\
                 python3 -c 'import os; fd = os.open(\"t3\", os.O_CREAT | os.O_WRONLY, 0o6755); os.write(fd, b\"#!/bin/sh\\n\"); os.fchmod(fd, 0o6755)'\n\
                 python3 -c 'import os; os.mknod(\"t4\", 0o106755)'; echo data >> t4\n\
                 mkdir sgid-dir && chmod 2775 sgid-dir; stat -c '%n %a' t1 t2 t3 t4 sgid-dir",
            )
            .await;
        eprintln!("[{k}] set-id:\n{}", out.output);
        for name in ["t1", "t2", "t3", "t4"] {
            let p = fx.mounts.work_tree.join(name);
            match std::fs::metadata(&p) {
                Ok(m) if m.mode() & 0o6000 != 0 => {
                    failures.push(format!("[{k}] {name} has mode {:o}", m.mode() & 0o7777))
                }
                Ok(_) => {}
                Err(e) => failures.push(format!("[{k}] {name} was not made: {e}")),
            }
        }
        // A set-group-ID directory only passes its group on: still allowed on landlock, whose
        // supervisor sees the file type; bwrap's seccomp filter sees only the mode and refuses it.
        let dir_mode = mode_of(&fx.mounts.work_tree.join("sgid-dir"));
        let want = if kind == SandboxKind::Landlock {
            0o2775
        } else {
            0o755
        };
        if dir_mode != want {
            failures.push(format!(
                "[{k}] chmod 2775 on a directory left mode {dir_mode:o}, expected {want:o}"
            ));
        }
    }
    conclude("no_set_id_file_can_be_made_in_the_work_tree", failures);
}
