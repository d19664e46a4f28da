use super::*;

#[test]
fn the_largest_files_go_first_and_only_as_many_as_needed() {
    let limits = DiffLimits {
        max_file_bytes: 100,
        max_patch_bytes: 150,
    };
    // 120 is over the file limit; of the rest (90, 60, 50, 10 = 210) 90 must go.
    let chosen = choose_left_out(&[60, 120, 90, 50, 10], &limits);
    assert_eq!(
        chosen,
        [
            (1, LeftOutReason::TooLarge),
            (2, LeftOutReason::PatchTooLarge)
        ]
    );
    assert!(choose_left_out(&[50, 100], &limits).is_empty());
}

fn sh(dir: &std::path::Path, script: &str) {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn repo_with(script: &str) -> (tempfile::TempDir, HostRepo, Option<String>) {
    let t = tempfile::tempdir().unwrap();
    let w = t.path().join("w");
    std::fs::create_dir_all(&w).unwrap();
    sh(&w, &format!("git init -q -b main . && {script}"));
    let repo = HostRepo::open(w.join(".git"), Some(w)).await.unwrap();
    let base = repo.head_commit().await;
    (t, repo, base)
}

fn paths(d: &WorkDiff) -> Vec<(String, Option<String>)> {
    d.files
        .iter()
        .map(|f| (f.path.clone(), f.left_out.clone()))
        .collect()
}

#[tokio::test]
async fn planted_repositories_and_large_files_stay_out_of_the_index_and_the_patch() {
    let (t, repo, base) = repo_with(
        "echo a > a.txt && head -c 3000 /dev/zero | tr '\\0' x > tracked-big && \
         git add -A && git -c user.name=t -c user.email=t@t commit -qm base",
    )
    .await;
    let w = repo.work_tree.clone().unwrap();
    let host = t.path().join("host");
    sh(
        t.path(),
        "git init -q host && cd host && echo s > s && git add s && \
         git -c user.name=t -c user.email=t@t commit -qm s",
    );
    sh(
        &w,
        &format!(
            "mkdir -p vendor/x ignored/y && printf 'vendor/\\n' > .ignore && \
             printf 'ignored/\\n' > .gitignore && \
             printf 'gitdir: {h}/.git\\n' > vendor/x/.git && \
             printf 'gitdir: {h}/.git\\n' > ignored/y/.git && \
             mkdir -p odd/.GIT && echo x > odd/.GIT/x && echo y > 'odd/git~1' && \
             head -c 5000 /dev/zero > new-big && echo b >> a.txt",
            h = host.display()
        ),
    );
    let limits = DiffLimits {
        max_file_bytes: 4096,
        max_patch_bytes: 1 << 20,
    };
    let d = repo.work_diff(base.as_deref(), &limits).await.unwrap();
    let text = String::from_utf8_lossy(&d.patch).into_owned();
    assert!(
        !text.contains("Subproject") && !text.contains("b/vendor"),
        "{text}"
    );
    assert!(!text.contains("new-big"), "{text}");
    assert_eq!(
        paths(&d),
        [
            (".gitignore".to_string(), None),
            (".ignore".to_string(), None),
            ("a.txt".to_string(), None),
            ("new-big".to_string(), Some("too_large".to_string())),
            ("odd/.GIT".to_string(), Some("reserved_name".to_string())),
            ("odd/git~1".to_string(), Some("reserved_name".to_string())),
            (
                "vendor/x".to_string(),
                Some("nested_repository".to_string())
            ),
        ],
        "an ignored nested repository is excluded quietly; an unchanged large file is not listed"
    );
    let staged = repo.run(&["ls-files", "-s"]).await.unwrap();
    assert!(
        !staged.contains("160000") && !staged.contains("new-big"),
        "{staged}"
    );

    // A file staged by an earlier diff that has since grown too large is not published stale.
    sh(&w, "echo small > grows && echo c >> a.txt");
    let d = repo.work_diff(base.as_deref(), &limits).await.unwrap();
    assert!(String::from_utf8_lossy(&d.patch).contains("b/grows"));
    sh(&w, "head -c 6000 /dev/zero >> grows");
    let d = repo.work_diff(base.as_deref(), &limits).await.unwrap();
    let text = String::from_utf8_lossy(&d.patch).into_owned();
    assert!(!text.contains("grows"), "{text}");
    assert!(
        paths(&d).contains(&("grows".to_string(), Some("too_large".to_string()))),
        "{:?}",
        paths(&d)
    );
    // The tracked large file, changed, is left out as modified.
    sh(&w, "echo more >> tracked-big");
    let d = repo.work_diff(base.as_deref(), &limits).await.unwrap();
    let big = d.files.iter().find(|f| f.path == "tracked-big").unwrap();
    assert_eq!(
        (big.status.as_str(), big.left_out.as_deref()),
        ("modified", Some("too_large"))
    );
}

#[tokio::test]
async fn an_empty_repository_leaves_out_a_planted_repository_too() {
    let (_t, repo, base) = repo_with("true").await;
    assert!(base.is_none());
    let w = repo.work_tree.clone().unwrap();
    sh(&w, "mkdir -p sub/.git && echo n > new.txt");
    let d = repo.work_diff(None, &DiffLimits::default()).await.unwrap();
    assert_eq!(
        paths(&d),
        [
            ("new.txt".to_string(), None),
            ("sub".to_string(), Some("nested_repository".to_string()))
        ]
    );
}

#[tokio::test]
async fn a_patch_over_its_limit_keeps_what_fits_and_says_what_went() {
    let (_t, repo, base) = repo_with(
        "echo a > a && git add -A && git -c user.name=t -c user.email=t@t commit -qm base",
    )
    .await;
    let w = repo.work_tree.clone().unwrap();
    sh(
        &w,
        "seq 1 3000 > big && seq 1 2000 > mid && seq 1 100 > small && mv a moved",
    );
    let limits = DiffLimits {
        max_file_bytes: 1 << 20,
        max_patch_bytes: 16 * 1024,
    };
    let d = repo.work_diff(base.as_deref(), &limits).await.unwrap();
    assert!(d.patch.len() <= 16 * 1024, "{}", d.patch.len());
    let text = String::from_utf8_lossy(&d.patch).into_owned();
    assert!(text.contains("b/mid") && text.contains("b/small"), "{text}");
    assert!(!text.contains("b/big"), "{text}");
    assert_eq!(d.left_out.len(), 1);
    assert_eq!(d.left_out[0].path, "big");
    assert_eq!(d.left_out[0].reason, LeftOutReason::PatchTooLarge);
}

#[tokio::test]
async fn what_lies_inside_a_submodule_is_no_candidate_but_a_dot_git_at_its_path_is() {
    let (t, repo, base) = repo_with(
        "echo a > a && git add a && \
         git update-index --add --cacheinfo 160000,1111111111111111111111111111111111111111,sub && \
         git -c user.name=t -c user.email=t@t commit -qm base",
    )
    .await;
    let w = repo.work_tree.clone().unwrap();
    let host = t.path().join("host");
    sh(
        t.path(),
        "git init -q host && cd host && echo s > s && git add s && \
         git -c user.name=t -c user.email=t@t commit -qm s",
    );
    let limits = DiffLimits {
        max_file_bytes: 1024,
        max_patch_bytes: 1 << 20,
    };
    // Files and repositories inside the submodule's (empty) directory: git adds none of them.
    sh(
        &w,
        "mkdir -p sub/inner/.git && head -c 5000 /dev/zero > sub/big && echo b >> a",
    );
    let d = repo.work_diff(base.as_deref(), &limits).await.unwrap();
    assert_eq!(paths(&d), [("a".to_string(), None)]);
    // A `.git` at the submodule's path: never followed, the gitlink stays the base's.
    sh(
        &w,
        &format!("printf 'gitdir: {}/.git\\n' > sub/.git", host.display()),
    );
    let d = repo.work_diff(base.as_deref(), &limits).await.unwrap();
    let text = String::from_utf8_lossy(&d.patch).into_owned();
    assert!(!text.contains("Subproject"), "{text}");
    assert_eq!(
        paths(&d),
        [
            ("a".to_string(), None),
            ("sub".to_string(), Some("nested_repository".to_string()))
        ]
    );
    assert_eq!(d.files[1].status, crate::event::FileStatus::Modified);
}
