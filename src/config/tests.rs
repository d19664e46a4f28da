//! Layering, parsing and rendering of the configuration.

use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

#[test]
fn precedence_flag_env_dotenv_file_default() {
    let t = tempfile::tempdir().unwrap();
    let dotenv = t.path().join(".env");
    std::fs::write(
        &dotenv,
        "TB_MODEL=openai:from-dotenv\nOPENAI_API_KEY=sk-dotenv-123456789\n",
    )
    .unwrap();
    let file = t.path().join("config.toml");
    std::fs::write(
        &file,
        "model = \"anthropic:from-file\"\n[sandbox]\nnetwork = true\n",
    )
    .unwrap();

    let env = env_of(&[]);
    let c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
    assert_eq!(c.model.as_deref(), Some("anthropic:from-file"));
    assert!(c.sandbox.network);

    let c = Config::load_from(&Overrides::default(), &env, Some(&dotenv), Some(&file)).unwrap();
    assert_eq!(c.model.as_deref(), Some("openai:from-dotenv"));

    let env = env_of(&[("TB_MODEL", "openai:from-env")]);
    let c = Config::load_from(&Overrides::default(), &env, Some(&dotenv), Some(&file)).unwrap();
    assert_eq!(c.model.as_deref(), Some("openai:from-env"));
    assert_eq!(c.source("model"), "environment");

    let o = Overrides {
        model: Some("scripted:x".into()),
        ..Default::default()
    };
    let c = Config::load_from(&o, &env, Some(&dotenv), Some(&file)).unwrap();
    assert_eq!(c.model.as_deref(), Some("scripted:x"));
    assert_eq!(c.source("model"), "flag");
    assert_eq!(c.source("openai_api_key"), ".env");
}

#[test]
fn secrets_are_masked_everywhere() {
    let env = env_of(&[
        ("GITHUB_TOKEN", "ghp_supersecretvalue1234"),
        ("ANTHROPIC_API_KEY", "sk-ant-abcdefghijkl"),
    ]);
    let c = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
    let shown = c.render(&Derived::default());
    assert!(!shown.contains("supersecret"), "{shown}");
    assert!(!shown.contains("abcdefgh"), "{shown}");
    assert!(shown.contains("****1234"));
    assert!(!format!("{c:?}").contains("supersecret"));
}

#[test]
fn the_rendering_says_what_is_missing_in_one_line_each() {
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, None).unwrap();
    let shown = c.render(&Derived::default());
    assert!(!shown.contains("()"), "{shown}");
    let chain = shown
        .lines()
        .find(|l| l.starts_with("model chain"))
        .unwrap();
    assert!(chain.contains("(none: set ANTHROPIC_API_KEY"), "{chain}");
    assert!(shown.lines().all(|l| l == l.trim_end()), "{shown}");
}

#[test]
fn token_discovery_order() {
    let env = env_of(&[("GH_TOKEN", "second"), ("GITHUB_PAT", "third")]);
    let c = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
    assert_eq!(c.github_token.unwrap().expose(), "second");
}

#[test]
fn publish_settings_follow_precedence() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("config.toml");
    std::fs::write(
        &file,
        "[publish]\nbranch_prefix = \"bot/\"\nfork = false\ndraft = true\n\
         author_name = \"File Name\"\nmax_rate_limit_wait_secs = 5\n",
    )
    .unwrap();
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, None).unwrap();
    assert_eq!(c.publish, PublishSettings::default());
    assert_eq!(c.publish.branch_prefix, "tb/");
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
    assert_eq!(c.publish.branch_prefix, "bot/");
    assert!(!c.publish.fork && c.publish.draft);
    assert_eq!(c.publish.author_name.as_deref(), Some("File Name"));
    assert_eq!(c.publish.max_rate_limit_wait, Duration::from_secs(5));
    let env = env_of(&[
        ("TB_BRANCH_PREFIX", "env/"),
        ("TB_FORK", "yes"),
        ("TB_AUTHOR_EMAIL", "e@x"),
    ]);
    let c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
    assert_eq!(c.publish.branch_prefix, "env/");
    assert!(c.publish.fork);
    assert_eq!(c.source("branch_prefix"), "environment");
    assert_eq!(c.publish.author_email.as_deref(), Some("e@x"));
    assert!(c.render(&Derived::default()).contains("File Name <e@x>"));
    for bad in ["-x/", "a..b/", "a b/", "/abs"] {
        let pairs = [("TB_BRANCH_PREFIX", bad)];
        let env = env_of(&pairs);
        let e = Config::load_from(&Overrides::default(), &env, None, None).unwrap_err();
        assert!(e.to_string().contains("branch_prefix"), "{bad}: {e}");
    }
}

#[test]
fn server_hosts_from_the_file_the_environment_and_the_flag() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("c.toml");
    std::fs::write(&file, "[server]\npublic_host = \"TB.Example.com\"\n").unwrap();
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
    assert_eq!(c.server_hosts, ["tb.example.com"]);
    let env = env_of(&[("TB_SERVER_HOST", "a.example:8443, [::1]:9000,b")]);
    let mut c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
    assert_eq!(c.server_hosts, ["a.example:8443", "[::1]:9000", "b"]);
    assert_eq!(c.source("server_host"), "environment");
    c.set_server_hosts_flag("flag.example").unwrap();
    assert_eq!(c.server_hosts, ["flag.example"]);
    assert!(c.render(&Derived::default()).contains("flag.example"));
    for bad in ["a b", "-x", "x:port", "x:70000", "[nope]", "x/y", "a@b"] {
        let pairs = [("TB_SERVER_HOST", bad)];
        let env = env_of(&pairs);
        let e = Config::load_from(&Overrides::default(), &env, None, None).unwrap_err();
        assert!(e.to_string().contains("server_host"), "{bad}: {e}");
    }
}

#[test]
fn diff_limits_come_from_the_file_and_the_environment() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("config.toml");
    std::fs::write(&file, "[diff]\nmax_file_mb = 3\nmax_patch_mb = 20\n").unwrap();
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, None).unwrap();
    assert_eq!(c.diff, crate::git::DiffLimits::default());
    assert_eq!(c.diff.max_file_bytes, 10 << 20);
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
    assert_eq!(
        (c.diff.max_file_bytes, c.diff.max_patch_bytes),
        (3 << 20, 20 << 20)
    );
    let env = env_of(&[("TB_DIFF_MAX_FILE_MB", "200")]);
    let c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
    assert_eq!(c.diff.max_file_bytes, 200 << 20);
    assert_eq!(c.source("diff_max_file_mb"), "environment");
    assert!(
        c.render(&Derived::default()).contains("diff max file"),
        "{}",
        c.render(&Derived::default())
    );
    for bad in ["0", "ten", "-1"] {
        let pairs = [("TB_DIFF_MAX_PATCH_MB", bad)];
        let e = Config::load_from(&Overrides::default(), &env_of(&pairs), None, None).unwrap_err();
        assert!(e.to_string().contains("diff.max_patch_mb"), "{bad}: {e}");
    }
}

#[test]
fn bad_values_are_named() {
    let env = env_of(&[("TB_SANDBOX", "docker")]);
    let e = Config::load_from(&Overrides::default(), &env, None, None).unwrap_err();
    assert!(
        e.to_string().contains("sandbox") && e.to_string().contains("docker"),
        "{e}"
    );
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("c.toml");
    std::fs::write(&file, "[sandbox]\nnetwrok = true\n").unwrap();
    let e = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap_err();
    assert!(e.to_string().contains("netwrok"), "{e}");
}

#[test]
fn sandbox_limits_from_the_file_and_landlock_by_name() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("c.toml");
    std::fs::write(
        &file,
        "[sandbox]\nbackend = \"landlock\"\ncpu_secs = 30\nmemory_mb = 512\n\
         max_processes = 64\nfile_size_mb = 10\nworkspace_mb = 100\n",
    )
    .unwrap();
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
    assert_eq!(c.sandbox.kind, Some(SandboxKind::Landlock));
    assert_eq!(c.sandbox.limits.cpu_secs, 30);
    assert_eq!(c.sandbox.limits.memory_bytes, 512 << 20);
    assert_eq!(c.sandbox.limits.max_processes, 64);
    assert_eq!(c.sandbox.limits.file_size_bytes, 10 << 20);
    assert_eq!(c.sandbox.limits.workspace_bytes, 100 << 20);
    // The flag still wins over the file.
    let o = Overrides {
        sandbox: Some("bwrap".into()),
        ..Default::default()
    };
    let c = Config::load_from(&o, &env_of(&[]), None, Some(&file)).unwrap();
    assert_eq!(c.sandbox.kind, Some(SandboxKind::Bwrap));
    assert!(c.render(&Derived::default()).contains("memory 512 MB"));
}

#[test]
fn network_modes_and_allow_hosts_from_file_env_and_flag() {
    use crate::sandbox::NetworkMode;
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("config.toml");
    std::fs::write(
        &file,
        "[sandbox]\nnetwork = \"allowlist\"\nallow_hosts = [\"127.0.0.1:8080\", \"example.org\"]\n",
    )
    .unwrap();
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
    assert_eq!(c.sandbox.network_mode(), NetworkMode::Allowlist);
    assert_eq!(c.sandbox.allow_hosts.as_ref().map(Vec::len), Some(2));
    assert!(
        c.render(&Derived::default())
            .contains("127.0.0.1:8080, example.org")
    );
    // The environment's list replaces the file's; a list alone implies allowlist.
    let env = env_of(&[("TB_ALLOW_HOSTS", "10.0.0.1:3000")]);
    let c = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
    assert_eq!(c.sandbox.network_mode(), NetworkMode::Allowlist);
    // An explicit mode wins over a list; the flag's list replaces the others.
    let o = Overrides {
        network: Some("on".into()),
        ..Default::default()
    };
    let mut c = Config::load_from(&o, &env, None, None).unwrap();
    c.set_allow_hosts_flag(&["example.org".into()]).unwrap();
    assert_eq!(c.sandbox.network_mode(), NetworkMode::On);
    let mut c = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
    c.set_allow_hosts_flag(&["example.org:8443".into()])
        .unwrap();
    let hosts = c.sandbox.allow_hosts.clone().unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].to_string(), "example.org:8443");
    let e = c
        .set_allow_hosts_flag(&["https://x.org".into()])
        .unwrap_err();
    assert!(e.to_string().contains("'https://x.org'"), "{e}");
    // true/false keep working in the file.
    std::fs::write(&file, "[sandbox]\nnetwork = true\n").unwrap();
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
    assert_eq!(c.sandbox.network_mode(), NetworkMode::On);
}

#[test]
fn setup_settings_from_file_env_and_flags_with_their_network_rules() {
    use crate::sandbox::NetworkMode;
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("config.toml");
    std::fs::write(
        &file,
        "[agent]\nsetup = \"make deps\"\nsetup_timeout_secs = 30\n[sandbox]\nallow_hosts = [\"127.0.0.1:8080\"]\n",
    )
    .unwrap();
    let env = env_of(&[("TB_SETUP_OPTIONAL", "1")]);
    let mut c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
    assert_eq!(c.setup.command.as_deref(), Some("make deps"));
    assert_eq!(c.setup.timeout, Duration::from_secs(30));
    assert!(c.setup.optional);
    // An allow-list makes the setup's network allowlist; the agent's, after a setup, off.
    assert_eq!(c.setup_network_mode(), NetworkMode::Allowlist);
    assert_eq!(c.agent_network_after_setup(), NetworkMode::Off);
    let text = c.render(&Derived::default());
    assert!(
        text.contains("make deps") && text.contains("(config file)"),
        "{text}"
    );
    assert!(
        text.contains("setup optional") && text.contains("(environment)"),
        "{text}"
    );
    c.set_setup_flags(&SetupFlags {
        command: Some("pip install -e .".into()),
        network: Some("off".into()),
        optional: false,
        timeout_secs: Some(90),
    })
    .unwrap();
    assert_eq!(c.setup.command.as_deref(), Some("pip install -e ."));
    assert_eq!(c.setup_network_mode(), NetworkMode::Off);
    assert_eq!(c.setup.timeout, Duration::from_secs(90));
    assert_eq!(c.source("setup"), "flag");
    c.set_setup_flags(&SetupFlags {
        command: Some(String::new()),
        ..SetupFlags::default()
    })
    .unwrap();
    assert_eq!(c.setup.command.as_deref(), Some(""));
    assert!(
        c.render(&Derived::default())
            .contains("(off, the repository's script too)")
    );
    let e = c
        .set_setup_flags(&SetupFlags {
            network: Some("sometimes".into()),
            ..SetupFlags::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("'sometimes'"), "{e}");
    // Without an allow-list the setup has no network; an explicit agent mode is kept.
    let o = Overrides {
        network: Some("on".into()),
        ..Default::default()
    };
    let c = Config::load_from(&o, &env_of(&[]), None, None).unwrap();
    assert_eq!(c.setup_network_mode(), NetworkMode::Off);
    assert_eq!(c.agent_network_after_setup(), NetworkMode::On);
    assert_eq!(c.setup.timeout, SETUP_TIMEOUT_DEFAULT);
}

#[test]
fn reasoning_keys_from_the_file_the_environment_and_the_flags() {
    use crate::llm::settings::{OpenAiApi, ReasoningEffort};
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("config.toml");
    std::fs::write(
        &file,
        "[agent]\nthinking_budget = 4096\nreasoning_effort = \"low\"\n[openai]\napi = \"chat\"\n",
    )
    .unwrap();
    let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
    assert_eq!(c.llm.thinking_budget, Some(4096));
    assert_eq!(c.llm.reasoning_effort, Some(ReasoningEffort::Low));
    assert_eq!(c.llm.openai_api, OpenAiApi::Chat);
    assert_eq!(c.source("thinking_budget"), "config file");
    let shown = c.render(&Derived::default());
    for want in [
        "thinking budget",
        "4096 tokens",
        "reasoning effort",
        "low",
        "openai api",
    ] {
        assert!(shown.contains(want), "{want} missing from:\n{shown}");
    }

    let env = env_of(&[("TB_THINKING_BUDGET", "0"), ("TB_REASONING_EFFORT", "high")]);
    let mut c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
    assert_eq!(c.llm.thinking_budget, None, "0 turns thinking off");
    assert_eq!(c.llm.reasoning_effort, Some(ReasoningEffort::High));
    assert_eq!(c.source("reasoning_effort"), "environment");
    c.set_reasoning_flags(Some("2048"), Some("medium")).unwrap();
    assert_eq!(c.llm.thinking_budget, Some(2048));
    assert_eq!(c.llm.reasoning_effort, Some(ReasoningEffort::Medium));
    assert_eq!(c.source("thinking_budget"), "flag");
    let plain = Config::load_from(&Overrides::default(), &env_of(&[]), None, None).unwrap();
    assert!(
        plain
            .render(&Derived::default())
            .contains("auto (responses on api.openai.com")
    );

    let e = c
        .set_reasoning_flags(Some("512"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("agent.thinking_budget") && e.contains("1024"),
        "{e}"
    );
    let env = env_of(&[("TB_REASONING_EFFORT", "extreme")]);
    let e = Config::load_from(&Overrides::default(), &env, None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("agent.reasoning_effort"), "{e}");
    std::fs::write(&file, "[openai]\napi = \"soap\"\n").unwrap();
    let e = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file))
        .unwrap_err()
        .to_string();
    assert!(e.contains("openai.api"), "{e}");
}

#[test]
fn e2b_settings_come_from_config_and_the_key_is_masked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "[sandbox]\ne2b_template = \"tb-tools\"\n").unwrap();
    let env = |k: &str| match k {
        "E2B_API_KEY" => Some("e2b_secret_value".to_string()),
        "E2B_DOMAIN" => Some("example.test".to_string()),
        "E2B_API_URL" => Some("http://127.0.0.1:1".to_string()),
        "E2B_SANDBOX_URL" => Some("http://127.0.0.1:2".to_string()),
        _ => None,
    };
    let c = Config::load_from(&Default::default(), &env, None, Some(&file)).unwrap();
    let e = &c.e2b;
    assert_eq!(
        e.api_key.as_ref().map(crate::secret::Secret::expose),
        Some("e2b_secret_value")
    );
    assert_eq!(e.domain(), "example.test");
    assert_eq!(e.api_url(), "http://127.0.0.1:1");
    assert_eq!(e.envd_url("x", None), "http://127.0.0.1:2");
    assert_eq!(e.template(), "tb-tools");
    let shown = c.render(&Derived::default());
    assert!(
        shown.contains("tb-tools") && !shown.contains("e2b_secret_value"),
        "{shown}"
    );
}
