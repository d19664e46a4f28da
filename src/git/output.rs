//! Reading git's output with a cap: memory stays bounded whatever the work tree holds.
//!
//! Invariants: at most `cap` bytes of stdout are ever buffered; past the cap a plain read fails
//! with [`GitError::TooMuchOutput`] (git is killed), and a patch read goes on counting bytes per
//! file (nothing kept) so the caller can leave the largest files out; stderr is kept to 16 KiB.

use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::GitError;

const STDERR_KEEP: usize = 16 * 1024;

/// A patch read from git: all of it, or only what each file's part would have weighed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchRead {
    /// The patch, and the size in bytes of each file's part of it, in patch order.
    Whole { patch: Vec<u8>, sizes: Vec<u64> },
    /// Over the cap: only the size of each file's part.
    Over { sizes: Vec<u64> },
}

/// Counts each `diff --git` section of a patch as it streams past, across any chunking.
#[derive(Default)]
struct Sections {
    sizes: Vec<u64>,
    /// The first bytes of the current line, up to the length of [`SECTION`].
    line_start: Vec<u8>,
}

const SECTION: &[u8] = b"diff --git ";

impl Sections {
    fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            let end = chunk
                .iter()
                .position(|b| *b == b'\n')
                .map_or(chunk.len(), |i| i + 1);
            let (piece, rest) = chunk.split_at(end);
            if let Some(last) = self.sizes.last_mut() {
                *last += piece.len() as u64;
            }
            let before = self.line_start.len();
            if before < SECTION.len() {
                let take = (SECTION.len() - before).min(piece.len());
                self.line_start.extend_from_slice(&piece[..take]);
                if self.line_start == SECTION {
                    // This line, so far counted with the previous file, opens the next one.
                    let line = (before + piece.len()) as u64;
                    if let Some(last) = self.sizes.last_mut() {
                        *last = last.saturating_sub(line);
                    }
                    self.sizes.push(line);
                }
            }
            if piece.ends_with(b"\n") {
                self.line_start.clear();
            }
            chunk = rest;
        }
    }
}

fn spawn(
    mut cmd: tokio::process::Command,
    with_stdin: bool,
) -> Result<tokio::process::Child, GitError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if with_stdin {
        cmd.stdin(Stdio::piped());
    }
    cmd.spawn().map_err(GitError::Spawn)
}

/// Feeds `input` to the child's stdin (in the background) and keeps its stderr, capped.
fn plumb(
    child: &mut tokio::process::Child,
    input: Option<Vec<u8>>,
) -> tokio::task::JoinHandle<Vec<u8>> {
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
        });
    }
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        let mut kept = Vec::new();
        if let Some(mut s) = stderr {
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let room = STDERR_KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
        kept
    })
}

async fn finish(
    mut child: tokio::process::Child,
    stderr: tokio::task::JoinHandle<Vec<u8>>,
    what: &str,
    ok_codes: &[i32],
) -> Result<(), GitError> {
    let status = child.wait().await.map_err(GitError::Spawn)?;
    let stderr = stderr.await.unwrap_or_default();
    if !status.success() && !status.code().is_some_and(|c| ok_codes.contains(&c)) {
        return Err(GitError::Failed {
            what: what.to_string(),
            stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Runs `cmd`, giving it `input` on stdin, and returns its stdout — or fails once stdout passes
/// `cap` bytes. Exit codes in `ok_codes` count as success besides 0.
pub async fn output_capped(
    cmd: tokio::process::Command,
    what: &str,
    input: Option<Vec<u8>>,
    cap: u64,
    ok_codes: &[i32],
) -> Result<Vec<u8>, GitError> {
    let mut child = spawn(cmd, input.is_some())?;
    let stderr = plumb(&mut child, input);
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| GitError::Spawn(std::io::Error::other("no stdout")))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stdout.read(&mut buf).await.map_err(GitError::Spawn)?;
        if n == 0 {
            break;
        }
        if (out.len() + n) as u64 > cap {
            let _ = child.kill().await;
            return Err(GitError::TooMuchOutput {
                what: what.to_string(),
                limit_bytes: cap,
            });
        }
        out.extend_from_slice(&buf[..n]);
    }
    finish(child, stderr, what, ok_codes).await?;
    Ok(out)
}

/// Runs a `git diff` whose stdout is a patch: all of it when it fits in `cap` bytes, and each
/// file's share of it (read to the end, nothing kept past the cap).
pub async fn read_patch(
    cmd: tokio::process::Command,
    what: &str,
    cap: u64,
) -> Result<PatchRead, GitError> {
    let mut child = spawn(cmd, false)?;
    let stderr = plumb(&mut child, None);
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| GitError::Spawn(std::io::Error::other("no stdout")))?;
    let mut kept = Some(Vec::new());
    let mut total = 0u64;
    let mut sections = Sections::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stdout.read(&mut buf).await.map_err(GitError::Spawn)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        sections.feed(&buf[..n]);
        if total > cap {
            kept = None;
        }
        if let Some(k) = kept.as_mut() {
            k.extend_from_slice(&buf[..n]);
        }
    }
    finish(child, stderr, what, &[]).await?;
    Ok(match kept {
        Some(patch) => PatchRead::Whole {
            patch,
            sizes: sections.sizes,
        },
        None => PatchRead::Over {
            sizes: sections.sizes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes_of(patch: &[u8], chunk: usize) -> Vec<u64> {
        let mut s = Sections::default();
        for c in patch.chunks(chunk) {
            s.feed(c);
        }
        s.sizes
    }

    #[test]
    fn sections_are_counted_across_any_chunking() {
        let a = b"diff --git a/x b/x\n+diff --git not a start\n".to_vec();
        let b = b"diff --git a/y b/y\n@@ -1 +1 @@\n-1\n+2".to_vec();
        let patch = [a.clone(), b.clone()].concat();
        for chunk in 1..patch.len() + 1 {
            assert_eq!(
                sizes_of(&patch, chunk),
                [a.len() as u64, b.len() as u64],
                "chunk {chunk}"
            );
        }
    }

    #[tokio::test]
    async fn output_past_the_cap_is_an_error_not_a_buffer() {
        let mut cmd = tokio::process::Command::new("head");
        cmd.args(["-c", "1000000", "/dev/zero"]);
        let err = output_capped(cmd, "head", None, 1000, &[])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                GitError::TooMuchOutput {
                    limit_bytes: 1000,
                    ..
                }
            ),
            "{err}"
        );
        let mut cmd = tokio::process::Command::new("cat");
        cmd.arg("-");
        let out = output_capped(cmd, "cat", Some(b"abc".to_vec()), 3, &[]).await;
        assert_eq!(out.unwrap(), b"abc");
    }

    #[tokio::test]
    async fn a_patch_over_the_cap_comes_back_as_sizes() {
        let mut cmd = tokio::process::Command::new("printf");
        cmd.arg("diff --git a/x b/x\\n+1\\ndiff --git a/y b/y\\n+22\\n");
        let got = read_patch(cmd, "printf", 10).await.unwrap();
        assert_eq!(
            got,
            PatchRead::Over {
                sizes: vec![22, 23]
            }
        );
        let mut cmd = tokio::process::Command::new("printf");
        cmd.arg("diff --git a/x b/x\\n+1\\n");
        let got = read_patch(cmd, "printf", 22).await.unwrap();
        assert_eq!(
            got,
            PatchRead::Whole {
                patch: b"diff --git a/x b/x\n+1\n".to_vec(),
                sizes: vec![22]
            }
        );
    }
}
