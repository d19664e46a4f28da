//! Command-line surface: argument parsing and dispatch to the front-ends.
//!
//! Invariants: flags only become [`Overrides`] and a [`RunRequest`]; nothing here decides pipeline
//! behaviour. Exit codes: 0 success, 1 the run failed, 2 bad input.

mod run;
mod show;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::sanitize::visible;

#[derive(Debug, Parser)]
#[command(
    name = "tiny-backspace",
    version,
    about = "Prompt → sandboxed coding agent → reviewed diff → pull request",
    long_about = "tiny-backspace clones a repository into a fresh workspace, runs a tool-calling coding \
        agent whose every command runs in a sandbox, streams each step, and lets you review the diff \
        before anything is published.",
    after_help = "Examples:\n  tiny-backspace demo                      the offline demo (no keys, no network)\n  \
        tiny-backspace --repo octo/calc --prompt \"Make divide reject zero\"   the terminal UI, prefilled\n  \
        tiny-backspace run --repo octo/calc --prompt \"Make divide reject zero\" --json --no-pr\n  \
        tiny-backspace serve --addr 127.0.0.1:8000\n  \
        tiny-backspace runs\n  tiny-backspace config"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Prefill the repository field (TUI).
    #[arg(long, global = false)]
    pub repo: Option<String>,
    /// Prefill the prompt (TUI).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Prefill the base branch (TUI).
    #[arg(long)]
    pub base: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Model as provider:model (anthropic:…, openai:…, scripted:PATH). Env: TB_MODEL.
    #[arg(long, global = true)]
    pub model: Option<String>,
    /// Sandbox backend: bwrap, landlock or none (none must be asked for explicitly). Env: TB_SANDBOX.
    #[arg(long, global = true)]
    pub sandbox: Option<String>,
    /// Network for sandboxed commands: off (default), allowlist (only --allow-host hosts, through a
    /// proxy) or on (the host's network); `--network` alone means on. Env: TB_NETWORK.
    #[arg(
        long,
        global = true,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "on"
    )]
    pub network: Option<String>,
    /// Allow sandboxed commands to reach HOST[:PORT] through the run's proxy (repeatable; implies
    /// --network=allowlist; no port: 80 and 443). Env: TB_ALLOW_HOSTS (comma-separated).
    #[arg(long = "allow-host", global = true, value_name = "HOST[:PORT]")]
    pub allow_host: Vec<String>,
    /// Mount a host directory read-only at the same path in the sandbox (repeatable), e.g. a
    /// toolchain: `--ro-path ~/.rustup --ro-path ~/.cargo/bin:path` (`:path` adds its `bin`
    /// directory, or itself when it is one, to PATH). Secret stores (~/.ssh, ~/.aws, ~/.cargo
    /// with its credentials, …), homes and their parents are refused. Env: TB_RO_PATHS
    /// (comma-separated).
    #[arg(long = "ro-path", global = true, value_name = "PATH[:path]")]
    pub ro_path: Vec<String>,
    /// State directory for runs and logs. Env: TB_HOME.
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Run CMD once in the sandbox after the clone, before the agent (e.g. install the
    /// dependencies); without it an executable .tiny-backspace/setup.sh is run. Env: TB_SETUP.
    #[arg(long, global = true, value_name = "CMD")]
    pub setup: Option<String>,
    /// Network of the setup command: off, allowlist or on (default: allowlist when --allow-host
    /// is given, else off). The agent then runs with --network (default off). Env: TB_SETUP_NETWORK.
    #[arg(long = "setup-network", global = true, value_name = "MODE")]
    pub setup_network: Option<String>,
    /// A failing setup does not stop the run: the model is told how it failed.
    /// Env: TB_SETUP_OPTIONAL=1.
    #[arg(long = "setup-optional", global = true)]
    pub setup_optional: bool,
    /// Time limit of the setup command in seconds (default 600). Env: TB_SETUP_TIMEOUT.
    #[arg(long = "setup-timeout", global = true, value_name = "SECS")]
    pub setup_timeout: Option<u64>,
    /// Extended-thinking tokens per turn for Claude models that have it (at least 1024; 0 = off).
    /// Env: TB_THINKING_BUDGET. Config: agent.thinking_budget.
    #[arg(long, global = true, value_name = "N")]
    pub thinking_budget: Option<String>,
    /// Reasoning effort for OpenAI's reasoning models: low, medium or high.
    /// Env: TB_REASONING_EFFORT. Config: agent.reasoning_effort.
    #[arg(long, global = true, value_name = "EFFORT")]
    pub reasoning_effort: Option<String>,
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            model: self.model.clone(),
            sandbox: self.sandbox.clone(),
            network: self.network.clone(),
            home: self.home.clone(),
        }
    }

    pub fn setup_flags(&self) -> crate::config::SetupFlags {
        crate::config::SetupFlags {
            command: self.setup.clone(),
            network: self.setup_network.clone(),
            optional: self.setup_optional,
            timeout_secs: self.setup_timeout,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run headless: clone, run the agent, print events, save the patch.
    #[command(
        after_help = "Examples:\n  tiny-backspace run --repo https://github.com/octo/calc --prompt \"Add a CLI flag --verbose\" --no-pr\n  \
        tiny-backspace run --repo ./repo --prompt \"Fix the failing test\" --json --no-pr > events.jsonl\n\n\
        Exit codes: 0 success, 1 the run failed, 2 bad input."
    )]
    Run(RunArgs),
    /// Publish a finished run from its folder (again): push its branch and open its pull request.
    #[command(
        after_help = "Idempotent: it finds the branch and pull request an earlier attempt made instead of \
        making new ones.\n\nExamples:\n  tiny-backspace publish 20260101-120000-a3f0\n  \
        tiny-backspace runs --json | jq -r '.[0].id' | xargs tiny-backspace publish --draft\n\n\
        Exit codes: 0 published, 1 publishing failed (retry later), 2 no such run."
    )]
    Publish(PublishArgs),
    /// Show a saved run: what was asked, what came of it, and its patch with numbered hunks.
    #[command(
        after_help = "Each hunk is preceded by a `# PATH:N` line, N as `publish --exclude-hunk PATH:N` counts it.\n\n\
        Example:\n  tiny-backspace show 20260101-120000-a3f0 | less\n\n\
        Exit codes: 0 shown, 2 no such run."
    )]
    Show {
        /// The run to show (see `tiny-backspace runs`).
        run_id: String,
    },
    /// List past runs (newest first).
    #[command(after_help = "Example:\n  tiny-backspace runs --json | jq -r '.[0].id'")]
    Runs {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The offline demo: a sample repository, a recorded model session (replay), a local origin.
    #[command(
        after_help = "Examples:\n  tiny-backspace demo\n  tiny-backspace demo --headless | jq -r .type\n\n\
        Needs git, bubblewrap and python3 (the sample project's tests run in the sandbox). No keys, no network."
    )]
    Demo {
        /// No UI: print one JSON event per line (like `run --json --yes`).
        #[arg(long)]
        headless: bool,
    },
    /// Serve the HTTP API: POST /code streams a run as Server-Sent Events.
    #[command(after_help = "Examples:\n  tiny-backspace serve\n  \
        TB_SERVER_TOKEN=s3cret tiny-backspace serve --addr 0.0.0.0:8000 --max-concurrent 4\n  \
        curl -N -H \"authorization: Bearer $TB_SERVER_TOKEN\" -H 'content-type: application/json' \
        -d '{\"repoUrl\":\"octo/calc\",\"prompt\":\"Fix the typo\"}' http://127.0.0.1:8000/code\n\n\
        Clients always need the bearer token: TB_SERVER_TOKEN, else one generated into \
        $TB_HOME/server-token (mode 0600; the path is printed, never the token).")]
    Serve(ServeArgs),
    /// Print the resolved configuration (secrets masked) and where each value came from.
    #[command(
        after_help = "Precedence: flags > environment > .env in the current directory > config file > defaults.\n\
        Config file: $TB_CONFIG, else ~/.config/tiny-backspace/config.toml\n\n\
        Examples:\n  tiny-backspace config\n  TB_MODEL=openai:gpt-4.1 tiny-backspace config --network"
    )]
    Config,
    /// Measure the agent on a file of tasks, each graded by its own tests in a fresh sandbox.
    #[command(
        after_help = "Each line of the tasks file: {\"id\", \"repo\", \"base\"?, \"prompt\", \"setup\"?, \
        \"test_cmd\", \"hidden_paths\"?: [...], \"model\"?}.\nResults: DIR/results.jsonl, one line per task \
        and repeat; test output: DIR/logs/.\n\nExamples:\n  tiny-backspace eval --tasks assets/eval/tasks.jsonl --out /tmp/ev\n  \
        tiny-backspace eval --tasks tasks.jsonl --out ev --model anthropic:claude-sonnet-4-5 --jobs 2 --repeat 3 --max-cost 0.50\n  \
        tiny-backspace eval --polyglot polyglot-benchmark --languages python,go --out-tasks polyglot.jsonl\n\n\
        Exit codes: 0 done (resolved or not), 1 stopped by a signal, 2 bad input. See docs/eval.md."
    )]
    Eval(EvalArgs),
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// The tasks, one JSON object per line.
    #[arg(long, value_name = "FILE.jsonl", required_unless_present = "polyglot")]
    pub tasks: Option<PathBuf>,
    /// Where results.jsonl and the test logs go.
    #[arg(long, value_name = "DIR", required_unless_present = "polyglot")]
    pub out: Option<PathBuf>,
    /// Tasks run at once.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Run every task K times (results carry `repeat` 1..K).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub repeat: u32,
    /// Skip the (task, repeat) pairs already in DIR/results.jsonl.
    #[arg(long)]
    pub resume: bool,
    /// Stop a task's run once its cost passes this many USD.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Time limit of the setup and of the test command, each (90s, 10m…).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub test_timeout: std::time::Duration,
    /// Convert the Aider polyglot benchmark checked out at DIR into a tasks file (--out-tasks).
    #[arg(
        long,
        value_name = "DIR",
        requires = "out_tasks",
        conflicts_with = "tasks"
    )]
    pub polyglot: Option<PathBuf>,
    /// With --polyglot: the languages to take, comma-separated (default: all it knows).
    #[arg(long, value_delimiter = ',')]
    pub languages: Vec<String>,
    /// With --polyglot: the tasks file to write.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out_tasks: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: std::net::SocketAddr,
    /// Runs at once; more wait in a queue that reports their position.
    #[arg(long, default_value_t = 2)]
    pub max_concurrent: usize,
    /// Longest prompt accepted, in characters.
    #[arg(long, default_value_t = 20_000)]
    pub max_prompt_chars: usize,
    /// A run still going after this long is stopped: `90s`, `30m`, `2h` (a bare number is seconds).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub max_run: std::time::Duration,
    /// Keep a run going when its client disconnects (default: cancel it).
    #[arg(long)]
    pub keep_running_on_disconnect: bool,
    /// Accept local repository paths and scripted models from clients (trusted setups, tests).
    #[arg(long)]
    pub allow_local: bool,
    /// Seconds running runs get to finish after SIGTERM before they are cancelled.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Seconds between heartbeat comments on event streams.
    #[arg(long, default_value_t = 15)]
    pub heartbeat_secs: u64,
    /// Open connections at most (at most half the open-file limit); more wait to be accepted.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Host names (NAME or NAME:PORT, comma-separated) clients may reach the server by besides its
    /// address, e.g. behind a reverse proxy. Env: TB_SERVER_HOST. Config: server.public_host.
    #[arg(long, value_name = "NAME")]
    pub public_host: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Repository: https://github.com/OWNER/REPO, OWNER/REPO, another https git URL, or a local path.
    #[arg(long)]
    pub repo: String,
    /// What the agent should do.
    #[arg(long)]
    pub prompt: String,
    /// Branch to start from (default: the repository's default branch).
    #[arg(long)]
    pub base: Option<String>,
    /// Print one JSON event per line on stdout, nothing else.
    #[arg(long)]
    pub json: bool,
    /// Stop after the diff; keep the patch in the run folder.
    #[arg(long, conflicts_with = "yes")]
    pub no_pr: bool,
    /// Approve the whole diff without asking.
    #[arg(long)]
    pub yes: bool,
    /// Keep the workspace after the run (for debugging).
    #[arg(long)]
    pub keep_workspace: bool,
    #[command(flatten)]
    pub pr: PrTextArgs,
}

/// The pull request's text, when given on the command line.
#[derive(Debug, Clone, Args)]
pub struct PrTextArgs {
    /// Pull request title (default: the saved one, else the first line of the agent's summary).
    #[arg(long)]
    pub title: Option<String>,
    /// Pull request body (default: the saved one, else summary, files, commands run, prompt).
    #[arg(long)]
    pub body: Option<String>,
    /// Open the pull request as a draft. Config: publish.draft / TB_DRAFT.
    #[arg(long)]
    pub draft: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The run to publish (see `tiny-backspace runs`).
    pub run_id: String,
    /// Print one JSON event per line on stdout, nothing else.
    #[arg(long)]
    pub json: bool,
    /// Leave this file of the run's patch out of the PR (repeatable).
    #[arg(long = "exclude", value_name = "PATH")]
    pub exclude_files: Vec<String>,
    /// Leave the N-th hunk (from 1, in the order of patch.diff) of PATH out (repeatable).
    #[arg(long = "exclude-hunk", value_name = "PATH:N", value_parser = parse_hunk_ref)]
    pub exclude_hunks: Vec<(String, usize)>,
    /// Publish even though files in it carry warnings (hidden or bidi characters, control
    /// characters, line-ending changes, git-control files); without it such a publish is refused.
    #[arg(long)]
    pub accept_warnings: bool,
    #[command(flatten)]
    pub pr: PrTextArgs,
}

/// `PATH:N` with N counted from 1, as a (path, index from 0) pair.
fn parse_hunk_ref(text: &str) -> Result<(String, usize), String> {
    let usage =
        || format!("`{text}` is not PATH:N (N counts the file's hunks from 1, e.g. src/lib.rs:2)");
    let (path, n) = text.rsplit_once(':').ok_or_else(usage)?;
    let n: usize = n.parse().map_err(|_| usage())?;
    if path.is_empty() || n == 0 {
        return Err(usage());
    }
    Ok((path.to_string(), n - 1))
}

/// Parses arguments, runs the command, returns the process exit code.
pub async fn main() -> color_eyre::Result<i32> {
    let cli = Cli::parse();
    let overrides = cli.global.overrides();
    let config = match Config::load(&overrides)
        .and_then(|mut c| c.set_allow_hosts_flag(&cli.global.allow_host).map(|()| c))
        .and_then(|mut c| c.set_setup_flags(&cli.global.setup_flags()).map(|()| c))
        .and_then(|mut c| c.set_ro_paths_flag(&cli.global.ro_path).map(|()| c))
        .and_then(|mut c| {
            let g = &cli.global;
            c.set_reasoning_flags(g.thinking_budget.as_deref(), g.reasoning_effort.as_deref())
                .map(|()| c)
        }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", visible(&e.to_string()));
            return Ok(2);
        }
    };
    let _log_guard = crate::telemetry::init(&config);
    if !matches!(cli.command, Some(Cmd::Config)) {
        // Not on the TUI's screen nor before serve's first line (its address): the log has it.
        let say_so = !matches!(cli.command, None | Some(Cmd::Serve(_)));
        recover_interrupted_runs(&config, say_so);
    }
    match cli.command {
        Some(Cmd::Run(args)) => run::run(args, config).await,
        Some(Cmd::Publish(args)) => run::publish(args, config).await,
        Some(Cmd::Demo { headless }) => run::demo(config, headless).await,
        Some(Cmd::Runs { json }) => run::list_runs(&config, json),
        Some(Cmd::Show { run_id }) => show::show(&config, &run_id),
        Some(Cmd::Serve(args)) => {
            let mut config = config;
            if let Some(hosts) = &args.public_host
                && let Err(e) = config.set_server_hosts_flag(hosts)
            {
                eprintln!("error: {e}");
                return Ok(2);
            }
            let options = crate::serve::ServeOptions {
                addr: args.addr,
                max_concurrent: args.max_concurrent.max(1),
                max_prompt_chars: args.max_prompt_chars,
                max_run: args.max_run,
                heartbeat: std::time::Duration::from_secs(args.heartbeat_secs.max(1)),
                keep_running_on_disconnect: args.keep_running_on_disconnect,
                allow_local: args.allow_local,
                shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace_secs),
                max_connections: args.max_connections.max(1),
                ..Default::default()
            };
            match crate::serve::serve(config, options).await {
                Ok(()) => Ok(0),
                Err(e @ crate::serve::ServeError::Token(_)) => {
                    eprintln!("error: {}", visible(&e.to_string()));
                    Ok(2)
                }
                Err(e) => {
                    eprintln!("error: {}", visible(&e.to_string()));
                    Ok(1)
                }
            }
        }
        Some(Cmd::Eval(args)) => eval(args, cli.global.model.clone(), config).await,
        Some(Cmd::Config) => {
            // Values come from the environment, `.env` and the config file: shown, not obeyed.
            print!(
                "{}",
                visible(&config.render(&crate::pipeline::model::config_rows(&config)))
            );
            Ok(0)
        }
        None => {
            let prefill = crate::tui::Prefill {
                repo: cli.repo.unwrap_or_default(),
                prompt: cli.prompt.unwrap_or_default(),
                base: cli.base.unwrap_or_default(),
            };
            crate::tui::term::run(prefill, config).await
        }
    }
}

/// `tiny-backspace eval`: the converter with --polyglot, else the evaluation.
async fn eval(
    args: EvalArgs,
    flag_model: Option<String>,
    config: Config,
) -> color_eyre::Result<i32> {
    if let (Some(root), Some(out)) = (&args.polyglot, &args.out_tasks) {
        return Ok(crate::eval::polyglot::convert_cli(
            root,
            &args.languages,
            out,
        ));
    }
    let (Some(tasks), Some(out)) = (args.tasks, args.out) else {
        eprintln!("error: eval needs --tasks FILE.jsonl and --out DIR");
        return Ok(2);
    };
    let options = crate::eval::EvalOptions {
        tasks,
        out,
        jobs: args.jobs,
        model: flag_model,
        repeat: args.repeat,
        resume: args.resume,
        max_cost: args.max_cost,
        test_timeout: args.test_timeout,
    };
    crate::eval::eval(options, config).await
}

/// Every start that opens the state directory first finds the runs whose process died (SIGKILL,
/// a crash, a power cut), stops what is left of their sandboxes, removes their workspaces and marks
/// them `interrupted` (see `recovery`). Runs of live processes are not touched.
fn recover_interrupted_runs(config: &Config, say_so: bool) {
    let Ok(store) = crate::store::Store::open(&config.home) else {
        return; // the command itself reports an unusable state directory
    };
    let recovered = crate::recovery::recover(&store);
    if say_so && !recovered.is_empty() {
        let ids: Vec<&str> = recovered.iter().map(|r| r.id.as_str()).collect();
        eprintln!(
            "note: {} run(s) had been interrupted (their process ended without finishing them) and \
             are now cleaned up and marked `interrupted`: {}",
            ids.len(),
            ids.join(", ")
        );
    }
}

/// `90s`, `30m`, `2h` or a bare number of seconds; at least one second.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write e.g. 90s, 30m or 2h"))?;
    let secs = match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .ok_or_else(|| format!("`{text}` is not a duration: write e.g. 90s, 30m or 2h"))?;
    if secs == 0 {
        return Err("the duration must be at least 1s".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_hunk_ref};
    use std::time::Duration;

    #[test]
    fn hunk_references_count_from_one() {
        assert_eq!(parse_hunk_ref("src/a:b.rs:2"), Ok(("src/a:b.rs".into(), 1)));
        for bad in ["src/a.rs", "src/a.rs:0", ":1", "src/a.rs:x", "src/a.rs:-1"] {
            let err = parse_hunk_ref(bad).unwrap_err();
            assert!(err.contains("PATH:N"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in [
            "",
            "m",
            "1.5m",
            "10 minutes",
            "-3s",
            "0s",
            "99999999999999999999h",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad}: {err}");
        }
    }
}
