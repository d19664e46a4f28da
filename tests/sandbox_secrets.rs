//! Adversarial suite, part 4: secrets in the tiny-backspace process never reach a sandbox.
//!
//! One test in this binary on purpose: it sets the secret variables in its own process before any
//! other thread could read the environment.

#![allow(clippy::unwrap_used)]

mod sandbox_common;

use sandbox_common::*;

#[test]
fn process_secrets_are_not_visible_inside() {
    let secrets: Vec<(&str, String)> = ["GITHUB_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
        .into_iter()
        .map(|k| (k, random_token("s3cr3t-")))
        .collect();
    for (k, v) in &secrets {
        // SAFETY: the only test in this binary, before the runtime or any other thread starts.
        unsafe { std::env::set_var(k, v) };
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for kind in backends("secrets in the environment") {
            for network in [false, true] {
                let fx = fixture(kind, network);
                let k = fx.kind();
                let out = fx
                    .sh(
                        "env; echo ---; tr '\\0' '\\n' < /proc/self/environ; echo ---; \
                         tr '\\0' '\\n' < /proc/1/environ; echo ---; \
                         for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done 2>/dev/null; \
                         cat /proc/[0-9]*/cmdline 2>/dev/null; echo ---; ps auxe 2>/dev/null; true",
                    )
                    .await;
                assert!(
                    out.output.contains("PATH="),
                    "[{k}] env not shown: {}",
                    out.output
                );
                for (name, value) in &secrets {
                    assert!(
                        !out.output.contains(value.as_str()),
                        "[{k}] {name}'s value is visible inside:\n{}",
                        out.output
                    );
                }
                for line in out.output.lines().filter(|l| l.contains('=')) {
                    let key = line.split('=').next().unwrap_or("").to_ascii_uppercase();
                    // Only variable names: a `ps` line showing bwrap's `--ro-bind /dev/null
                    // /proc/keys` is not a variable.
                    if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        continue;
                    }
                    assert!(
                        !["TOKEN", "KEY", "SECRET", "PASSWORD"]
                            .iter()
                            .any(|w| key.contains(w)),
                        "[{k}] a secret-like variable is set inside: {line}"
                    );
                }
            }
        }
    });
}
