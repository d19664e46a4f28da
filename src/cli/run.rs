//! The headless front-end: `run` (JSON lines or a readable log) and `runs`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use super::{PublishArgs, RunArgs};
use crate::config::Config;
use crate::event::Event;
use crate::pipeline::{self, Command, Gate, RunRequest, Selection};
use crate::store::Store;

pub async fn run(args: RunArgs, config: Config) -> color_eyre::Result<i32> {
    let interactive =
        !args.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let gate = if args.yes {
        Gate::AutoApprove
    } else if args.no_pr || !interactive {
        Gate::NoPr
    } else {
        Gate::Interactive
    };
    let request = RunRequest {
        repo: args.repo,
        prompt: args.prompt,
        base: args.base,
        gate,
        keep_workspace: args.keep_workspace,
        provider: None,
        publish: pipeline::publish::PublishOptions {
            title: args.pr.title,
            body: args.pr.body,
            draft: args.pr.draft,
            ..Default::default()
        },
    };
    drive(request, config, args.json).await
}

/// Runs `request` headless: JSON lines on stdout, or a readable log on stderr and the patch path
/// on stdout; asks on the terminal at an interactive gate. Returns the exit code.
pub async fn drive(request: RunRequest, config: Config, json: bool) -> color_eyre::Result<i32> {
    let gate = request.gate;
    let cwd = std::env::current_dir()?;
    // SIGINT, SIGTERM and SIGHUP stop the run: it is cancelled, cleans up (sandbox, workspace)
    // and records why; the exit code is then 1.
    let stop = crate::signals::watch()?;
    let mut pipeline = pipeline::start(request, Arc::new(config), cwd);
    crate::signals::stop_pipeline(&stop, pipeline.commands.clone());
    let mut patch_path = None;
    let mut output_open = true;
    while let Some(event) = pipeline.events.recv().await {
        if output_open && let Err(e) = show(&event, json) {
            // The reader or the terminal is gone (a closed pipe, a hangup): stop the run, which
            // still cleans up, instead of leaving it behind.
            output_open = false;
            let why = format!("its output could not be written ({e})");
            let _ = pipeline.commands.send(Command::Stop(why)).await;
        }
        if let Event::Done { patch_path: p, .. } = &event {
            patch_path = p.clone();
        }
        if gate == Gate::Interactive
            && matches!(&event, Event::Status { stage: crate::event::Stage::Review, message, .. }
                if message.starts_with("review the diff"))
        {
            // A signal while the question waits stops the run instead (the pipeline hears it).
            let answer = tokio::select! {
                approve = ask("Approve this change? [y/N] ") => approve,
                _ = stop.stopped() => continue,
            };
            let command = if answer {
                Command::Approve {
                    selection: Selection::default(),
                    title: None,
                    body: None,
                    draft: false,
                }
            } else {
                Command::Reject
            };
            let _ = pipeline.commands.send(command).await;
        }
    }
    let outcome = pipeline.task.await?;
    if !json && let Some(p) = patch_path {
        let _ = writeln!(std::io::stdout(), "{}", crate::sanitize::visible(&p));
    }
    Ok(pipeline::exit_code(&outcome))
}

/// One event: a JSON line on stdout, or a few readable lines on stderr.
fn show(event: &Event, json: bool) -> std::io::Result<()> {
    if !json {
        return write!(std::io::stderr(), "{}", render(event));
    }
    if matches!(event, Event::AiDelta { .. }) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", event.to_json_line())?;
    out.flush()
}

/// `tiny-backspace demo`: prepares the sample repository and runs the recorded session on it.
pub async fn demo(config: Config, headless: bool) -> color_eyre::Result<i32> {
    let id = crate::store::new_run_id();
    let setup = match crate::demo::prepare(&config.home, &id) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", crate::sanitize::visible(&e.to_string()));
            return Ok(1);
        }
    };
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !headless && terminal {
        let prefill = crate::tui::Prefill {
            repo: setup.origin.display().to_string(),
            prompt: crate::demo::PROMPT.to_string(),
            base: String::new(),
        };
        let factory: crate::tui::app::ProviderFactory = {
            let setup = Arc::new(setup);
            Arc::new(move || setup.provider() as Arc<dyn crate::pipeline::model::Provider>)
        };
        return crate::tui::term::run_with(prefill, config, Some(factory)).await;
    }
    let interactive =
        !headless && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !headless {
        eprintln!(
            "tiny-backspace demo — a recorded session (replay) on a sample project; its tools really \
             run, in the sandbox.\nsample origin: {}\n",
            setup.origin.display()
        );
    }
    let request = RunRequest {
        repo: setup.origin.display().to_string(),
        prompt: crate::demo::PROMPT.to_string(),
        base: None,
        gate: if interactive {
            Gate::Interactive
        } else {
            Gate::AutoApprove
        },
        keep_workspace: false,
        provider: Some(setup.provider()),
        publish: Default::default(),
    };
    let code = drive(request, config, headless).await?;
    if !headless && code == 0 {
        eprintln!(
            "\nThe branch is in the demo's origin: git --git-dir {} log --oneline --all",
            setup.origin.display()
        );
    }
    Ok(code)
}

/// `tiny-backspace publish RUN_ID`: retries publishing from the saved run folder.
pub async fn publish(args: PublishArgs, config: Config) -> color_eyre::Result<i32> {
    let store = Store::open(&config.home)?;
    let Some(run_dir) = store.run_dir(&args.run_id) else {
        let message = format!(
            "error: there is no run '{}' in {}; `tiny-backspace runs` lists them",
            args.run_id,
            config.home.display()
        );
        eprintln!("{}", crate::sanitize::visible(&message));
        return Ok(2);
    };
    let selection =
        (!args.exclude_files.is_empty() || !args.exclude_hunks.is_empty()).then(|| Selection {
            excluded_files: args.exclude_files.clone(),
            excluded_hunks: args.exclude_hunks.clone(),
            ..Default::default()
        });
    if let Some(selection) = &selection
        && let Err(e) = pipeline::publish::check_selection(&run_dir, selection)
    {
        let flag = if e.in_hunks {
            "--exclude-hunk"
        } else {
            "--exclude"
        };
        eprintln!("error: {flag}: {}", crate::sanitize::visible(&e.message));
        return Ok(2);
    }
    // Named before anything is pushed; publishing them takes an explicit yes.
    let warned = pipeline::publish::warned_files_of_run(&run_dir, selection.as_ref());
    if !warned.is_empty() && !args.accept_warnings {
        let message = format!(
            "error: files in this publish carry warnings a reviewer must not miss: {}. Read them \
             with `tiny-backspace show {}`, then publish again with --accept-warnings, or leave \
             them out with --exclude PATH",
            pipeline::publish::describe_warned(&warned),
            run_dir.id
        );
        eprintln!("{}", crate::sanitize::visible(&message));
        return Ok(2);
    }
    // SIGINT, SIGTERM and SIGHUP cancel publishing.
    let cancel = crate::signals::watch()?.token();
    let request = pipeline::publish::PublishRequest {
        selection,
        title: args.pr.title,
        body: args.pr.body,
        draft: args.pr.draft.then_some(true),
    };
    let mut publishing =
        pipeline::publish::publish_saved_run(run_dir, Arc::new(config), request, cancel)?;
    let stdout = std::io::stdout();
    while let Some(event) = publishing.events.recv().await {
        if args.json {
            let mut out = stdout.lock();
            let _ = writeln!(out, "{}", event.to_json_line());
            let _ = out.flush();
        } else {
            eprint!("{}", render(&event));
        }
    }
    let ok = publishing.task.await.unwrap_or(false);
    Ok(if ok { 0 } else { 1 })
}

async fn ask(question: &str) -> bool {
    let _ = write!(std::io::stderr(), "{question}");
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).ok();
        matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    })
    .await
    .unwrap_or(false)
}

fn indent(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for l in lines.iter().take(max_lines) {
        out.push_str("    │ ");
        out.push_str(l);
        out.push('\n');
    }
    if lines.len() > max_lines {
        out.push_str(&format!("    │ … {} more lines\n", lines.len() - max_lines));
    }
    out
}

/// One event as a few readable lines for stderr, every control and invisible character shown
/// (`␛`, `<U+202E>`), never printed: model text, command output and paths are untrusted.
pub fn render(event: &Event) -> String {
    crate::sanitize::visible(&render_raw(event)).into_owned()
}

fn render_raw(event: &Event) -> String {
    match event {
        Event::Status { stage, message, .. } => format!("· {:<8} {message}\n", stage.as_str()),
        Event::ToolRead { filepath, .. } => format!("  read   {filepath}\n"),
        Event::ToolEdit {
            filepath,
            old_str,
            new_str,
            ..
        } => {
            let (a, r) = (new_str.lines().count(), old_str.lines().count());
            format!("  edit   {filepath} (+{a} −{r})\n")
        }
        Event::ToolBash {
            command,
            output,
            exit_code,
            duration_ms,
            terminated,
            ..
        } => {
            let note = terminated
                .as_deref()
                .map(|t| format!(" — {t}"))
                .unwrap_or_default();
            format!(
                "  $ {command}\n    → exit {exit_code} in {:.1}s{note}\n{}",
                *duration_ms as f64 / 1000.0,
                indent(output, 12)
            )
        }
        Event::ToolSearch {
            pattern, matches, ..
        } => format!("  search /{pattern}/ → {matches} matches\n"),
        Event::ToolList { path, entries, .. } => format!("  list   {path} → {entries} files\n"),
        Event::ToolError { tool, message, .. } => format!("  ✗ {tool}: {message}\n"),
        Event::Plan {
            steps, explanation, ..
        } => format!(
            "  plan\n{}",
            indent(&crate::event::plan_lines(steps, explanation.as_deref()), 40)
        ),
        Event::AiMessage { message, .. } => format!("◆ {}\n", message.trim().replace('\n', "\n  ")),
        // Streamed output and the live diff are left out of the log: the whole output follows
        // with `Tool: Bash` and the final diff with `Diff` (`--json` carries them).
        Event::AiDelta { .. } | Event::Output { .. } | Event::LiveDiff { .. } => String::new(),
        Event::Usage { .. } => String::new(),
        Event::Diff { files, .. } => {
            let mut s = format!("· diff     {} files\n", files.len());
            for f in files {
                let warned = if f.warnings.is_empty() {
                    String::new()
                } else {
                    format!("  ⚠ {}", f.warnings.join(", "))
                };
                match &f.left_out {
                    Some(why) => s.push_str(&format!("    left out  {} ({why}){warned}\n", f.path)),
                    None => s.push_str(&format!(
                        "    {:<9} {} +{} −{}{warned}\n",
                        f.status, f.path, f.insertions, f.deletions
                    )),
                }
            }
            let warned = files
                .iter()
                .filter(|f| f.left_out.is_none() && !f.warnings.is_empty())
                .count();
            if warned > 0 {
                s.push_str(&format!(
                    "    ⚠ {warned} file(s) carry warnings (marked above): read them before approving\n"
                ));
            }
            s
        }
        Event::Pr { url, .. } => format!("· PR       {url}\n"),
        Event::Error { stage, message, .. } => format!("error ({}): {message}\n", stage.as_str()),
        Event::Done {
            duration_ms,
            usage,
            pr_url,
            ..
        } => {
            let cost = usage
                .cost_usd
                .map(|c| format!(" · ${c:.4}"))
                .unwrap_or_default();
            let pr = pr_url
                .as_deref()
                .map(|u| format!(" · {u}"))
                .unwrap_or_default();
            format!(
                "done in {:.1}s · {} tokens{cost}{pr}\n",
                *duration_ms as f64 / 1000.0,
                usage.total_tokens()
            )
        }
    }
}

pub fn list_runs(config: &Config, json: bool) -> color_eyre::Result<i32> {
    let store = Store::open(&config.home)?;
    let runs = store.list();
    if json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(0);
    }
    // Prompts, repositories and URLs are the user's or the forge's text: shown, never obeyed.
    let print = |line: String| println!("{}", crate::sanitize::visible(&line));
    if runs.is_empty() {
        print(format!("no runs yet in {}", config.home.display()));
        return Ok(0);
    }
    println!(
        "{:<21} {:<17} {:<11} {:<28} {:<36} PR",
        "ID", "TIME", "STATUS", "REPO", "PROMPT"
    );
    for r in runs {
        let prompt: String = r
            .prompt
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(34)
            .collect();
        let repo: String = r
            .repo
            .chars()
            .rev()
            .take(28)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        print(format!(
            "{:<21} {:<17} {:<11} {:<28} {:<36} {}",
            r.id,
            r.created_at.format("%Y-%m-%d %H:%M"),
            r.status.as_str(),
            repo,
            prompt,
            r.pr_url.as_deref().unwrap_or("-")
        ));
    }
    print(format!(
        "\nEach run's folder is {}/ID (events.jsonl, patch.diff, meta.json).",
        store.root().join("runs").display()
    ));
    Ok(0)
}
