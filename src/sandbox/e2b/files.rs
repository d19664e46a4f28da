//! Files in an E2B sandbox: envd's plain-HTTP `/files` (multipart upload, which every envd
//! version accepts; download as bytes) and seeding a work tree as a tar archive.
//!
//! Invariants: a download is bounded (`max_bytes`) so a hostile sandbox cannot fill the host's
//! memory; the seed archive is made on the host from a directory the host cloned, without its
//! `.git` (whose config may hold a remote URL with a token), so no credential enters the sandbox.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::E2bError;
use super::envd::{E2bSandbox, RunOptions};

const FILE_TIMEOUT: Duration = Duration::from_secs(300);

fn transport(what: &str) -> impl FnOnce(reqwest::Error) -> E2bError + '_ {
    move |source| E2bError::Transport {
        what: what.into(),
        source,
    }
}

impl E2bSandbox {
    /// Writes `data` to `path` inside the sandbox (parents created by envd).
    pub async fn write_file(&self, path: &str, data: &[u8]) -> Result<(), E2bError> {
        let boundary = format!("tb-e2b-{:016x}", fastrand::u64(..));
        let name: String = path
            .chars()
            .map(|c| if c == '"' || c.is_control() { '_' } else { c })
            .collect();
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let what = format!("writing {path}");
        let resp = self
            .envd
            .request(reqwest::Method::POST, "/files")
            .query(&[("path", path)])
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .timeout(FILE_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(transport(&what))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(transport(&what))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(self.envd.status_error(status, &bytes, &what))
        }
    }

    /// Reads `path` from the sandbox; more than `max_bytes` is an error.
    pub async fn read_file(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>, E2bError> {
        let what = format!("reading {path}");
        let mut resp = self
            .envd
            .request(reqwest::Method::GET, "/files")
            .query(&[("path", path)])
            .timeout(FILE_TIMEOUT)
            .send()
            .await
            .map_err(transport(&what))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let bytes = resp.bytes().await.map_err(transport(&what))?;
            return Err(self.envd.status_error(status, &bytes, &what));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport(&what))? {
            if out.len() as u64 + chunk.len() as u64 > max_bytes {
                return Err(E2bError::Http {
                    what,
                    status,
                    message: format!("the file is larger than {max_bytes} bytes"),
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Copies the host directory `work_tree` (without `.git`) to `dest` in the sandbox: one tar
    /// archive made by the host's `tar`, uploaded, unpacked by a sandboxed command.
    pub async fn seed(&self, work_tree: &Path, dest: &str) -> Result<(), E2bError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| E2bError::Io { what, source }
        };
        let out = tokio::process::Command::new("tar")
            .arg("-C")
            .arg(work_tree)
            .args(["--exclude=./.git", "-cf", "-", "."])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(io("running tar on the host to seed the sandbox"))?;
        if !out.status.success() {
            return Err(E2bError::Io {
                what: format!(
                    "tar could not archive {}: {}",
                    work_tree.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                source: std::io::Error::other("tar failed"),
            });
        }
        let archive = format!("/tmp/tb-seed-{:016x}.tar", fastrand::u64(..));
        self.write_file(&archive, &out.stdout).await?;
        let mut opts = RunOptions::default();
        opts.envs.insert("TB_SEED_ARCHIVE".into(), archive);
        opts.envs.insert("TB_SEED_DEST".into(), dest.into());
        let r = self
            .run(
                r#"mkdir -p -- "$TB_SEED_DEST" && tar -xf "$TB_SEED_ARCHIVE" -C "$TB_SEED_DEST"; rc=$?; rm -f -- "$TB_SEED_ARCHIVE"; exit $rc"#,
                &opts,
                &CancellationToken::new(),
            )
            .await?;
        if r.exit_code != 0 || r.terminated.is_some() {
            return Err(E2bError::Io {
                what: format!(
                    "unpacking the seed archive in the sandbox failed: {}",
                    r.stderr
                ),
                source: std::io::Error::other(format!("exit {}", r.exit_code)),
            });
        }
        Ok(())
    }
}
