//! A local npm registry (a directory-style registry served on 127.0.0.1 by the test) used from the
//! sandbox through the real binary, on every backend available (see `sandbox_common`):
//! - allowlist mode with the registry's `127.0.0.1:PORT` allowed: `npm install --registry …`
//!   succeeds through the proxy, a later command `require`s the package, npm's cache is under the
//!   persistent `HOME`, and the patch holds `package.json` (a real change) but neither
//!   `node_modules` (ignored by the repository's `.gitignore`) nor the cache;
//! - network `off`: the registry is unreachable and sees no request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/as_user.rs"]
mod as_user;
#[path = "support/npm_registry.rs"]
mod npm_registry;
mod sandbox_common;
#[path = "support/repo.rs"]
mod support;

use sandbox_common::*;
use serde_json::json;

const PKG: &str = "tb-npm-probe";

fn npm_install(registry: &str) -> String {
    format!(
        "npm install --registry {registry} --no-audit --no-fund --no-update-notifier \
         --fetch-retries=0 {PKG} 2>&1 | tail -20; echo rc=${{PIPESTATUS[0]}}"
    )
}

fn npm_available() -> bool {
    ["/usr/bin/npm", "/usr/bin/node"]
        .iter()
        .all(|p| std::path::Path::new(p).exists())
}

#[test]
fn npm_installs_from_a_local_registry_through_the_proxy() {
    assert!(npm_available(), "node and npm are expected at /usr/bin");
    let registry = npm_registry::start(PKG);
    for kind in backends("npm through the allow-list proxy") {
        let env = support::Env::new();
        let repo = support::make_repo(
            &env.path("r"),
            "main",
            &[("a.txt", "a\n"), (".gitignore", "node_modules/\n")],
        );
        let s = env.write(
            "script.json",
            &support::script(json!([
                {"tool_calls": [{"name": "bash", "input": {"command": npm_install(&registry.url()), "timeout_secs": 300}}]},
                {"tool_calls": [{"name": "bash", "input": {"command": format!("node -e \"console.log(require('{PKG}').hello())\"")}}]},
                {"tool_calls": [{"name": "bash", "input": {"command": "echo HOME=$HOME; echo CACHE=$npm_config_cache; ls \"$npm_config_cache\""}}]},
                {"text": "done"}
            ])),
        );
        let allow = format!("127.0.0.1:{}", registry.port);
        let before = registry.hits();
        let out = env.run_scripted(
            &repo,
            "p",
            &s,
            &["--allow-host", &allow, "--sandbox", kind.as_str()],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "[{kind:?}] {stderr}");
        let bash = as_user::bash_outputs(&out);
        assert!(
            bash[0].contains("rc=0"),
            "[{kind:?}] npm install: {}",
            bash[0]
        );
        assert!(
            registry.hits() >= before + 2,
            "[{kind:?}] packument and tarball"
        );
        assert!(
            bash[1].contains("HELLO-FROM-LOCAL-REGISTRY"),
            "[{kind:?}] require in a later command: {}",
            bash[1]
        );
        let home = bash[2]
            .lines()
            .find_map(|l| l.strip_prefix("HOME="))
            .unwrap();
        let cache = bash[2]
            .lines()
            .find_map(|l| l.strip_prefix("CACHE="))
            .unwrap();
        assert!(cache.starts_with(home), "[{kind:?}] {}", bash[2]);
        assert!(bash[2].contains("_cacache"), "[{kind:?}] {}", bash[2]);
        let statuses: Vec<String> = support::events(&out.stdout)
            .iter()
            .filter(|e| e["type"] == "Status")
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(
            statuses
                .iter()
                .any(|m| m.contains(&format!("proxy: allowed GET {allow}"))),
            "[{kind:?}] {statuses:#?}"
        );
        let paths = as_user::diff_paths(&out);
        assert!(
            paths.iter().any(|p| p == "package.json"),
            "[{kind:?}] {paths:?}"
        );
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with("node_modules") || p.contains(".cache")),
            "[{kind:?}] {paths:?}"
        );
    }
}

#[test]
fn with_the_network_off_the_registry_is_unreachable() {
    assert!(npm_available(), "node and npm are expected at /usr/bin");
    let registry = npm_registry::start(PKG);
    for kind in backends("npm with the network off") {
        let env = support::Env::new();
        let repo = support::make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
        let s = env.write(
            "script.json",
            &support::script(json!([
                {"tool_calls": [{"name": "bash", "input": {"command": npm_install(&registry.url()), "timeout_secs": 300}}]},
                {"text": "done"}
            ])),
        );
        let out = env.run_scripted(&repo, "p", &s, &["--sandbox", kind.as_str()]);
        assert_eq!(out.status.code(), Some(0), "[{kind:?}] {out:?}");
        let bash = as_user::bash_outputs(&out);
        assert!(
            !bash[0].contains("rc=0") && bash[0].contains("rc="),
            "[{kind:?}] {}",
            bash[0]
        );
        assert_eq!(registry.hits(), 0, "[{kind:?}] the registry was reached");
    }
}
