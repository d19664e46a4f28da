//! The agent's tools over a work tree and git directory laid out like the pipeline's, in the
//! default sandbox: what the agent-level tests drive directly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tiny_backspace::agent::fs::WorkspaceFs;
use tiny_backspace::agent::tools::Toolbox;
use tiny_backspace::sandbox::{self, SandboxMounts, SandboxSettings};

/// A `Toolbox` on `root` (the work tree) and `git_dir`, results capped at `output_cap_chars`.
pub fn toolbox(root: &Path, git_dir: PathBuf, run_id: &str, output_cap_chars: usize) -> Toolbox {
    let settings = SandboxSettings::default();
    let sb = sandbox::open(
        &settings,
        SandboxMounts {
            work_tree: root.to_path_buf(),
            git_dir,
        },
    )
    .unwrap();
    Toolbox {
        fs: WorkspaceFs::open(root).unwrap(),
        sandbox: Arc::from(sb),
        sandbox_settings: settings,
        run_id: run_id.into(),
        output_cap_chars,
    }
}
