//! Tests of the derived repository and the grading tree, on real git repositories.
use super::*;

fn sh_git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_derived_repository_holds_no_hidden_object_and_grading_restores_them() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin");
    std::fs::create_dir_all(origin.join("t")).unwrap();
    sh_git(&origin, &["init", "-q"]);
    // An older version of the hidden test, in history only.
    std::fs::write(origin.join("t/secret.py"), "OLD-ORACLE\n").unwrap();
    std::fs::write(origin.join("code.py"), "x = 1\n").unwrap();
    sh_git(&origin, &["add", "-A"]);
    sh_git(&origin, &["commit", "-qm", "one"]);
    std::fs::write(origin.join("t/secret.py"), "NEW-ORACLE\n").unwrap();
    std::fs::write(origin.join("t/keep.py"), "kept\n").unwrap();
    sh_git(&origin, &["add", "-A"]);
    sh_git(&origin, &["commit", "-qm", "two"]);

    let source = open_source("origin", None, tmp.path(), tmp.path())
        .await
        .unwrap();
    let derived = tmp.path().join("derived.git");
    let hidden = vec!["t/secret.py".to_string()];
    source.derive(&derived, &hidden).await.unwrap();
    let d = derived.to_str().unwrap();
    assert_eq!(
        sh_git(tmp.path(), &["--git-dir", d, "rev-list", "--all"])
            .lines()
            .count(),
        1
    );
    assert!(!derived.join("objects/info/alternates").exists());
    let all = sh_git(
        tmp.path(),
        &["--git-dir", d, "cat-file", "--batch-all-objects", "--batch"],
    );
    assert!(!all.contains("ORACLE"), "{all}");
    assert!(all.contains("kept") && all.contains("x = 1"), "{all}");

    // A missing hidden path is an error, not a silent pass.
    let typo = source
        .derive(&tmp.path().join("typo.git"), &["t/nope.py".into()])
        .await;
    assert!(matches!(typo, Err(RepoError::HiddenMissing(_))), "{typo:?}");

    // The agent wrote its own t/secret.py: grading applies that, then restores the original.
    let patch = b"diff --git a/t/secret.py b/t/secret.py\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/t/secret.py\n@@ -0,0 +1 @@\n+FAKE\n";
    let grade = tmp.path().join("grade");
    source
        .grading_tree(&grade, &hidden, patch)
        .await
        .unwrap()
        .unwrap();
    let secret = std::fs::read_to_string(grade.join("repo/t/secret.py")).unwrap();
    assert_eq!(secret, "NEW-ORACLE\n");
    let bad = b"diff --git a/code.py b/code.py\n--- a/code.py\n+++ b/code.py\n@@ -1 +1 @@\n-y = 2\n+y = 3\n";
    let failed = source
        .grading_tree(&tmp.path().join("g2"), &hidden, bad)
        .await
        .unwrap();
    assert!(failed.is_err_and(|why| why.contains("code.py")));
}

#[tokio::test]
async fn a_sha256_repository_derives_in_its_own_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin");
    std::fs::create_dir_all(origin.join("t")).unwrap();
    sh_git(&origin, &["init", "-q", "--object-format=sha256"]);
    std::fs::write(origin.join("t/secret.py"), "ORACLE\n").unwrap();
    std::fs::write(origin.join("code.py"), "x = 1\n").unwrap();
    sh_git(&origin, &["add", "-A"]);
    sh_git(&origin, &["commit", "-qm", "one"]);
    let source = open_source("origin", None, tmp.path(), tmp.path())
        .await
        .unwrap();
    let derived = tmp.path().join("derived.git");
    source.derive(&derived, &["t".into()]).await.unwrap();
    let d = derived.to_str().unwrap();
    let head = sh_git(tmp.path(), &["--git-dir", d, "rev-parse", "HEAD"]);
    assert_eq!(head.trim().len(), 64, "{head}");
    let files = sh_git(
        tmp.path(),
        &["--git-dir", d, "ls-tree", "-r", "--name-only", "HEAD"],
    );
    assert_eq!(files, "code.py\n");
}

#[test]
fn sources_where_a_sandbox_can_read_are_refused() {
    for p in ["/usr/share", "/opt/bench", "/etc", "/"] {
        assert!(check_private(Path::new(p)).is_err(), "{p}");
    }
    let tmp = tempfile::tempdir().unwrap();
    check_private(tmp.path()).unwrap();
    check_private(Path::new("/usrlocal-not-a-prefix")).unwrap();
}

#[test]
fn removal_never_follows_a_planted_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("t")).unwrap();
    std::fs::write(outside.join("t/keep.py"), "x").unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("tests")).unwrap();
    remove_in_tree(&root, "tests/t/keep.py").unwrap();
    assert!(outside.join("t/keep.py").is_file());
    assert!(std::fs::symlink_metadata(root.join("tests")).is_err());
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(root.join("a/b/c"), "x").unwrap();
    remove_in_tree(&root, "a/b").unwrap();
    assert!(root.join("a").is_dir() && !root.join("a/b").exists());
    remove_in_tree(&root, "missing/x").unwrap();
}
