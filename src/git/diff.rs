//! The work tree's changes against the base commit, as the host computes them.
//!
//! Invariants: the diff covers every change in the work tree (new files included, whoever made
//! them: tools or shell commands), honours `.gitignore`, and is in `git diff --binary` form —
//! bytes, never decoded — so that `git apply` on a clean checkout of the base reproduces the
//! work exactly. Left out, and listed with a reason: every nested repository (never followed:
//! see [`super::scan`]), every file over [`DiffLimits::max_file_bytes`] (never staged, never
//! read by the host) or whose part of the patch is, and — largest first — what would take the
//! patch past [`DiffLimits::max_patch_bytes`]. The index always holds the base's version of
//! whatever is left out, so every git command after `add` needs no pathspec to agree.

use std::collections::{HashMap, HashSet};

use super::listing::{LineCounts, RawEntry, parse_numstat, parse_raw, status_of};
use super::output::{PatchRead, output_capped, read_patch};
use super::scan::{Scan, scan};
use super::{GitError, HostRepo};
use crate::event::FileStat;

/// Listings (`--raw`, `--numstat`, `cat-file`) larger than this fail rather than fill memory.
const LISTING_CAP: u64 = 64 << 20;

/// Paths the setup command created (NUL-separated, relative to the work tree), written by the
/// pipeline's setup stage into the git directory: never staged.
pub const SETUP_PATHS_FILE: &str = "info/tb-setup-paths";

fn setup_paths(git_dir: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read(git_dir.join(SETUP_PATHS_FILE))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|p| !p.is_empty())
                .map(<[u8]>::to_vec)
                .collect()
        })
        .unwrap_or_default()
}

/// How large a patch may get (`diff.max_file_mb`, `diff.max_patch_mb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffLimits {
    /// A file larger than this (or whose part of the patch is) is left out.
    pub max_file_bytes: u64,
    /// The whole patch stays at most this large: the largest files are left out first.
    pub max_patch_bytes: u64,
}

impl Default for DiffLimits {
    fn default() -> Self {
        DiffLimits {
            max_file_bytes: 10 << 20,
            max_patch_bytes: 50 << 20,
        }
    }
}

/// Why a changed path is not in the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOutReason {
    /// A directory holding a `.git` of its own.
    NestedRepository,
    /// Over `diff.max_file_mb`.
    TooLarge,
    /// Left out so the patch stays under `diff.max_patch_mb`.
    PatchTooLarge,
    /// A name git refuses to add (`.GIT`, `git~1`, …: a `.git` look-alike).
    ReservedName,
}

impl LeftOutReason {
    /// The code in the `Diff` event's `left_out` field.
    pub fn code(self) -> &'static str {
        match self {
            LeftOutReason::NestedRepository => "nested_repository",
            LeftOutReason::TooLarge => "too_large",
            LeftOutReason::PatchTooLarge => "patch_too_large",
            LeftOutReason::ReservedName => "reserved_name",
        }
    }

    /// The warning code the file carries.
    pub fn warning(self) -> &'static str {
        match self {
            LeftOutReason::NestedRepository | LeftOutReason::ReservedName => "git_control",
            LeftOutReason::TooLarge | LeftOutReason::PatchTooLarge => "too_large",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub path: String,
    pub reason: LeftOutReason,
    /// The file's size, or its part of the patch, in bytes (when known).
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkDiff {
    pub patch: Vec<u8>,
    /// The files in the patch, then those left out (each with `left_out` set).
    pub files: Vec<FileStat>,
    pub left_out: Vec<LeftOut>,
}

impl WorkDiff {
    /// What to tell about the changes left out of the patch: one line per reason, saying what a
    /// user can do about it.
    pub fn left_out_messages(&self, limits: &DiffLimits) -> Vec<String> {
        use LeftOutReason as R;
        let mb = |b: u64| format!("{:.1} MB", b as f64 / f64::from(1u32 << 20));
        let list = |reason: R| {
            self.left_out
                .iter()
                .filter(|l| l.reason == reason)
                .map(|l| match l.size {
                    Some(s) if reason != R::NestedRepository => format!("{} ({})", l.path, mb(s)),
                    _ => l.path.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = Vec::new();
        let nested = list(R::NestedRepository);
        if !nested.is_empty() {
            out.push(format!(
                "left out of the diff: {nested} (a repository of its own inside the work tree)"
            ));
        }
        let reserved = list(R::ReservedName);
        if !reserved.is_empty() {
            out.push(format!(
                "left out of the diff: {reserved} (a name git refuses: it stands for `.git`)"
            ));
        }
        let large = list(R::TooLarge);
        if !large.is_empty() {
            out.push(format!(
                "left out of the diff: {large}: larger than diff.max_file_mb ({} MB). To include \
                 such a file, raise diff.max_file_mb (TB_DIFF_MAX_FILE_MB) or commit it outside \
                 tiny-backspace",
                limits.max_file_bytes >> 20
            ));
        }
        let over = list(R::PatchTooLarge);
        if !over.is_empty() {
            out.push(format!(
                "left out of the diff: {over}: the patch would be larger than diff.max_patch_mb \
                 ({} MB), so the largest files were left out first. To include them, raise \
                 diff.max_patch_mb (TB_DIFF_MAX_PATCH_MB)",
                limits.max_patch_bytes >> 20
            ));
        }
        out
    }
}

/// A walk of the work tree below `root` for the agent's `list_files` and `search`: hidden files
/// included, `.gitignore` and `.ignore` files honoured (only those inside `root`), the user's
/// global and host excludes ignored, symlinks not followed, `.git` never entered. It is what the
/// agent is shown — never what decides what git records ([`super::scan`] does that by git's
/// rules: git does not read `.ignore`).
pub fn worktree_walker(root: &std::path::Path) -> ignore::WalkBuilder {
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(false)
        .follow_links(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .parents(false)
        .filter_entry(|e| e.file_name() != ".git");
    builder
}

/// NUL-terminated literal pathspecs, for `--pathspec-from-file=- --pathspec-file-nul`.
fn pathspecs<'a>(first: &[u8], magic: &str, paths: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = first.to_vec();
    for p in paths {
        out.extend_from_slice(magic.as_bytes());
        out.extend_from_slice(p);
        out.push(0);
    }
    out
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

impl HostRepo {
    /// Stages everything into the host-only index and diffs it against `base` (or the empty
    /// tree), within `limits`.
    pub async fn work_diff(
        &self,
        base: Option<&str>,
        limits: &DiffLimits,
    ) -> Result<WorkDiff, GitError> {
        let base = match base {
            Some(b) => b.to_string(),
            None => self.empty_tree().await?,
        };
        let found = match self.work_tree.clone() {
            Some(w) => {
                let max = limits.max_file_bytes;
                let started = std::time::Instant::now();
                let s = tokio::task::spawn_blocking(move || scan(&w, max))
                    .await
                    .map_err(|e| GitError::Spawn(std::io::Error::other(e)))?
                    .map_err(GitError::WorkTree)?;
                tracing::debug!(
                    "work tree scan: {} entries in {:?}",
                    s.entries,
                    started.elapsed()
                );
                s
            }
            None => Scan::default(),
        };
        let (found, gitlinks) = self.outside_submodules(found).await?;
        let mut left_out = self.classify(&base, &found, &gitlinks).await?;
        // Never staged (git would follow the `.git`, refuse the name, or read the whole file):
        // excluded from the add, and the index put back to the base for them in case an earlier
        // diff staged them.
        // So are the paths the setup command made (`.venv/`, `node_modules/`): listed by the
        // host in the git directory, which no `.gitignore` negation reaches.
        let setup_made = setup_paths(&self.git_dir);
        let mut excluded: Vec<&[u8]> = found.paths().collect();
        excluded.extend(setup_made.iter().map(Vec::as_slice));
        self.restore_base(&base, &excluded).await?;
        let add = pathspecs(b".\0", ":(exclude,literal)", excluded.iter().copied());
        // Exit 1 is git's notice that an exclusion lies in an ignored directory ("The following
        // paths are ignored…"); the add is complete all the same (real failures exit 128).
        self.run_with_input(&["add", "--all"], add, &[1]).await?;

        let mut raw = self.raw_entries(&base).await?;
        let patch = self
            .patch_within(&base, limits, &mut raw, &mut left_out)
            .await?;
        let counts = self.numstat(&base).await?;
        let mut files: Vec<FileStat> = raw
            .iter()
            .map(|e| {
                let (ins, del) = counts.get(&e.path).copied().unwrap_or((Some(0), Some(0)));
                FileStat {
                    path: lossy(&e.path),
                    status: status_of(e.status),
                    insertions: ins.unwrap_or(0),
                    deletions: del.unwrap_or(0),
                    binary: ins.is_none() || del.is_none(),
                    old_path: e.old_path.as_deref().map(lossy),
                    ..FileStat::default()
                }
            })
            .collect();
        left_out.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        files.extend(left_out.iter().map(|(l, status)| FileStat {
            path: l.path.clone(),
            status: status_of(*status),
            left_out: Some(l.reason.code().to_string()),
            warnings: vec![l.reason.warning().to_string()],
            ..FileStat::default()
        }));
        Ok(WorkDiff {
            patch,
            files,
            left_out: left_out.into_iter().map(|(l, _)| l).collect(),
        })
    }

    /// The patch of what is staged, within `limits`: files over them are put back to the base in
    /// the index (the largest first for the patch limit) and added to `left_out`; `raw` is the
    /// listing of what stays.
    async fn patch_within(
        &self,
        base: &str,
        limits: &DiffLimits,
        raw: &mut Vec<RawEntry>,
        left_out: &mut Vec<(LeftOut, u8)>,
    ) -> Result<Vec<u8>, GitError> {
        let too_large = || GitError::PatchTooLarge {
            limit_mb: limits.max_patch_bytes >> 20,
        };
        let (patch, sizes) = match self.patch(base, limits.max_patch_bytes).await? {
            PatchRead::Whole { patch, sizes } => (Some(patch), sizes),
            PatchRead::Over { sizes } => (None, sizes),
        };
        let dropped = choose_left_out(&sizes, limits);
        if let Some(p) = patch.filter(|_| dropped.is_empty()) {
            return Ok(p);
        }
        if sizes.len() != raw.len() {
            // The listing and the patch disagree: no safe way to say what to leave out.
            return Err(too_large());
        }
        let mut paths: Vec<&[u8]> = Vec::new();
        for (i, reason) in &dropped {
            let e = &raw[*i];
            paths.push(&e.path);
            if let Some(old) = &e.old_path {
                paths.push(old);
            }
            left_out.push((
                LeftOut {
                    path: lossy(&e.path),
                    reason: *reason,
                    size: Some(sizes[*i]),
                },
                e.status,
            ));
        }
        self.restore_base(base, &paths).await?;
        *raw = self.raw_entries(base).await?;
        match self.patch(base, limits.max_patch_bytes).await? {
            PatchRead::Whole { patch, .. } => Ok(patch),
            PatchRead::Over { .. } => Err(too_large()),
        }
    }

    /// The nested repositories, reserved names and large files worth telling about (not ignored
    /// by git, and — for files — different from the base), with the status letter git would
    /// have given them.
    async fn classify(
        &self,
        base: &str,
        found: &Scan,
        gitlinks: &HashSet<Vec<u8>>,
    ) -> Result<Vec<(LeftOut, u8)>, GitError> {
        let candidates: Vec<&[u8]> = found.paths().collect();
        if candidates.is_empty() {
            return Ok(vec![]);
        }
        let ignored = self.ignored(&candidates).await?;
        let shown = |p: &&[u8]| !ignored.contains(*p);
        let in_base = self.base_objects(base, &candidates).await?;
        let mut out = Vec::new();
        for p in found.nested.iter().map(Vec::as_slice).filter(shown) {
            let status = if in_base.contains_key(p) || gitlinks.contains(p) {
                b'M'
            } else {
                b'A'
            };
            out.push((
                LeftOut {
                    path: lossy(p),
                    reason: LeftOutReason::NestedRepository,
                    size: None,
                },
                status,
            ));
        }
        for p in found.reserved.iter().map(Vec::as_slice).filter(shown) {
            out.push((
                LeftOut {
                    path: lossy(p),
                    reason: LeftOutReason::ReservedName,
                    size: None,
                },
                b'A',
            ));
        }
        let large: Vec<&(Vec<u8>, u64)> = found
            .large
            .iter()
            .filter(|(p, _)| shown(&p.as_slice()))
            .collect();
        // A tracked large file of the very size it has in the base may be unchanged: git hashes it.
        let same_size: Vec<&[u8]> = large
            .iter()
            .filter(|(p, size)| in_base.get(p).is_some_and(|o| o.size == Some(*size)))
            .map(|(p, _)| p.as_slice())
            .collect();
        let hashes = self.hash_files(&same_size).await?;
        for (p, size) in large {
            let status = match in_base.get(p) {
                None => b'A',
                Some(o) if o.size == Some(*size) && hashes.get(p) == Some(&o.id) => continue,
                Some(_) => b'M',
            };
            out.push((
                LeftOut {
                    path: lossy(p),
                    reason: LeftOutReason::TooLarge,
                    size: Some(*size),
                },
                status,
            ));
        }
        Ok(out)
    }

    /// `found` without what lies inside a submodule's path: git never adds anything there (and
    /// refuses a pathspec naming it); a `.git` at the submodule's path itself stays in. Also the
    /// submodules' paths (the index's gitlinks: always the base's, as none is ever staged).
    async fn outside_submodules(
        &self,
        mut found: Scan,
    ) -> Result<(Scan, HashSet<Vec<u8>>), GitError> {
        if found.is_empty() {
            return Ok((found, HashSet::new()));
        }
        let mut cmd = self.command();
        cmd.args(["ls-files", "-z", "--stage"]);
        let listing = output_capped(cmd, "ls-files", None, LISTING_CAP, &[]).await?;
        let gitlinks: HashSet<Vec<u8>> = listing
            .split(|b| *b == 0)
            .filter_map(|rec| {
                let tab = rec.iter().position(|b| *b == b'\t')?;
                rec.starts_with(b"160000 ").then(|| rec[tab + 1..].to_vec())
            })
            .collect();
        let outside = |p: &[u8]| {
            !gitlinks
                .iter()
                .any(|g| p.len() > g.len() && p.starts_with(g) && p[g.len()] == b'/')
        };
        found.nested.retain(|p| outside(p));
        found.reserved.retain(|p| outside(p));
        found.large.retain(|(p, _)| outside(p));
        Ok((found, gitlinks))
    }

    /// Which of `paths` git ignores (`.gitignore`, `info/exclude`; tracked paths never are).
    async fn ignored(&self, paths: &[&[u8]]) -> Result<HashSet<Vec<u8>>, GitError> {
        let input = pathspecs(b"", "", paths.iter().copied());
        let mut cmd = self.command();
        cmd.args(["check-ignore", "-z", "--stdin"]);
        let out = output_capped(cmd, "check-ignore", Some(input), LISTING_CAP, &[1]).await?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(<[u8]>::to_vec)
            .collect())
    }

    /// The base's object at each of `paths` that has one (a path with a newline is left out:
    /// `cat-file --batch-check` reads lines, so it counts as new).
    async fn base_objects(
        &self,
        base: &str,
        paths: &[&[u8]],
    ) -> Result<HashMap<Vec<u8>, BaseObject>, GitError> {
        let asked: Vec<&[u8]> = paths
            .iter()
            .copied()
            .filter(|p| !p.contains(&b'\n'))
            .collect();
        let names: Vec<Vec<u8>> = asked
            .iter()
            .map(|p| [base.as_bytes(), b":", p].concat())
            .collect();
        let input: Vec<u8> = names
            .iter()
            .flat_map(|n| [n.as_slice(), b"\n"].concat())
            .collect();
        let mut cmd = self.command();
        cmd.args(["cat-file", "--batch-check=%(objectname) %(objectsize)"]);
        let out = output_capped(cmd, "cat-file", Some(input), LISTING_CAP, &[]).await?;
        let mut found = HashMap::new();
        for ((p, name), line) in asked.iter().zip(&names).zip(out.split(|b| *b == b'\n')) {
            // `NAME missing`: no such path, or one whose object is not here (a submodule's
            // commit: the caller knows those from the index).
            if line.strip_suffix(b" missing") == Some(name.as_slice()) {
                continue;
            }
            let line = String::from_utf8_lossy(line);
            let mut it = line.split(' ');
            let id = it.next().unwrap_or_default().to_string();
            let size = it.next().and_then(|s| s.parse().ok());
            found.insert(p.to_vec(), BaseObject { id, size });
        }
        Ok(found)
    }

    /// git's object ids of the work-tree files at `paths`, hashed as they are (no filters).
    async fn hash_files(&self, paths: &[&[u8]]) -> Result<HashMap<Vec<u8>, String>, GitError> {
        let asked: Vec<&[u8]> = paths
            .iter()
            .copied()
            .filter(|p| !p.contains(&b'\n'))
            .collect();
        if asked.is_empty() {
            return Ok(HashMap::new());
        }
        let mut input = Vec::new();
        for p in &asked {
            input.extend_from_slice(p);
            input.push(b'\n');
        }
        let mut cmd = self.command();
        cmd.args(["hash-object", "--no-filters", "--stdin-paths"]);
        let out = output_capped(cmd, "hash-object", Some(input), LISTING_CAP, &[]).await?;
        Ok(asked
            .iter()
            .zip(String::from_utf8_lossy(&out).lines())
            .map(|(p, id)| (p.to_vec(), id.to_string()))
            .collect())
    }

    /// Puts the index back to the base's version of `paths` (gone where the base has none),
    /// without refreshing anything in the work tree.
    async fn restore_base(&self, base: &str, paths: &[&[u8]]) -> Result<(), GitError> {
        if paths.is_empty() {
            return Ok(());
        }
        let specs = pathspecs(b"", ":(literal)", paths.iter().copied());
        self.run_with_input(&["reset", "-q", "--no-refresh", base], specs, &[])
            .await
    }

    /// `cmd` with NUL-separated pathspecs on stdin (its output, capped, ignored); exit codes in
    /// `ok_codes` count as success.
    async fn run_with_input(
        &self,
        args: &[&str],
        specs: Vec<u8>,
        ok_codes: &[i32],
    ) -> Result<(), GitError> {
        let mut cmd = self.command();
        cmd.args(args)
            .args(["--pathspec-from-file=-", "--pathspec-file-nul"]);
        let what = args.first().copied().unwrap_or("git");
        output_capped(cmd, what, Some(specs), LISTING_CAP, ok_codes).await?;
        Ok(())
    }

    fn diff_command(&self, base: &str, format: &[&str]) -> tokio::process::Command {
        let mut cmd = self.command();
        cmd.args([
            "diff",
            "--cached",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            "-M",
        ])
        .args(format)
        .arg(base)
        .arg("--");
        cmd
    }

    async fn patch(&self, base: &str, cap: u64) -> Result<PatchRead, GitError> {
        read_patch(self.diff_command(base, &["--binary"]), "diff", cap).await
    }

    async fn raw_entries(&self, base: &str) -> Result<Vec<RawEntry>, GitError> {
        let cmd = self.diff_command(base, &["--raw", "-z", "--no-abbrev"]);
        let out = output_capped(cmd, "diff", None, LISTING_CAP, &[]).await?;
        Ok(parse_raw(&out))
    }

    async fn numstat(&self, base: &str) -> Result<HashMap<Vec<u8>, LineCounts>, GitError> {
        let cmd = self.diff_command(base, &["--numstat", "-z"]);
        let out = output_capped(cmd, "diff", None, LISTING_CAP, &[]).await?;
        Ok(parse_numstat(&out).into_iter().collect())
    }
}

struct BaseObject {
    id: String,
    /// `None` when the object is not in this repository (a submodule's commit).
    size: Option<u64>,
}

/// Which files (by position in the patch) to leave out: every part over the file limit, then the
/// largest remaining ones until the rest fits the patch limit.
fn choose_left_out(sizes: &[u64], limits: &DiffLimits) -> Vec<(usize, LeftOutReason)> {
    let mut out: Vec<(usize, LeftOutReason)> = sizes
        .iter()
        .enumerate()
        .filter(|(_, s)| **s > limits.max_file_bytes)
        .map(|(i, _)| (i, LeftOutReason::TooLarge))
        .collect();
    let mut total: u64 =
        sizes.iter().sum::<u64>() - out.iter().map(|(i, _)| sizes[*i]).sum::<u64>();
    let mut rest: Vec<usize> = (0..sizes.len())
        .filter(|i| sizes[*i] <= limits.max_file_bytes)
        .collect();
    rest.sort_by_key(|i| std::cmp::Reverse(sizes[*i]));
    for i in rest {
        if total <= limits.max_patch_bytes {
            break;
        }
        total -= sizes[i];
        out.push((i, LeftOutReason::PatchTooLarge));
    }
    out
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
