//! `tiny-backspace eval`: run the agent on a file of tasks and grade each result by the task's
//! own tests, run in a fresh sandbox on a checkout the agent never touched.
//!
//! Invariants: the whole task file is checked before anything runs (a bad line is exit 2);
//! hidden paths never reach the agent (see [`repo`]); `results.jsonl` gets one line per finished
//! (task, repeat), appended as each ends, so `--resume` can skip what is there; at most `--jobs`
//! tasks run at once; a signal stops the running tasks, which are not recorded.

pub mod metrics;
pub mod polyglot;
pub mod repo;
pub mod run;
pub mod task;

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use run::{Context, TaskResult};

pub struct EvalOptions {
    pub tasks: PathBuf,
    pub out: PathBuf,
    pub jobs: usize,
    /// `--model` given on the command line (wins over the tasks' own).
    pub model: Option<String>,
    pub repeat: u32,
    pub resume: bool,
    pub max_cost: Option<f64>,
    pub test_timeout: Duration,
}

fn fail(message: String) -> i32 {
    eprintln!("error: {}", crate::sanitize::visible(&message));
    2
}

/// Runs the evaluation; returns the exit code (0 done, 1 stopped by a signal, 2 bad input).
pub async fn eval(options: EvalOptions, config: Config) -> color_eyre::Result<i32> {
    let text = match std::fs::read_to_string(&options.tasks) {
        Ok(t) => t,
        Err(e) => return Ok(fail(format!("--tasks {}: {e}", options.tasks.display()))),
    };
    let tasks = match task::parse_tasks(&options.tasks, &text) {
        Ok(t) => t,
        Err(e) => return Ok(fail(e.to_string())),
    };
    if options.repeat == 0 || options.jobs == 0 {
        return Ok(fail("--repeat and --jobs must be at least 1".into()));
    }
    if options.max_cost.is_some_and(|c| !c.is_finite() || c <= 0.0) {
        return Ok(fail("--max-cost must be a positive amount of USD".into()));
    }
    let results_path = options.out.join("results.jsonl");
    let logs = options.out.join("logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        return Ok(fail(format!("--out {}: {e}", options.out.display())));
    }
    let previous = read_results(&results_path);
    if !options.resume && !previous.is_empty() {
        return Ok(fail(format!(
            "{} already holds results: add --resume to continue it, or choose another --out",
            results_path.display()
        )));
    }
    let done: HashSet<(String, u32)> = previous.iter().map(|r| (r.id.clone(), r.repeat)).collect();
    let store = crate::store::Store::open(&config.home)?;
    let cwd = std::env::current_dir()?;
    let tasks_dir = options
        .tasks
        .canonicalize()?
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| cwd.clone());
    let ctx = Arc::new(Context {
        config: Arc::new(config),
        store,
        tasks_dir,
        cwd,
        flag_model: options.model.clone(),
        max_cost: options.max_cost,
        test_timeout: options.test_timeout,
        logs,
        prompt_sha: crate::agent::prompt::prompt_sha(),
        stop: crate::signals::watch()?,
    });
    let todo: Vec<(task::Task, u32)> = (1..=options.repeat)
        .flat_map(|r| tasks.iter().map(move |t| (t.clone(), r)))
        .filter(|(t, r)| !done.contains(&(t.id.clone(), *r)))
        .collect();
    let total = todo.len();
    if total < tasks.len() * options.repeat as usize {
        eprintln!(
            "resuming: {} of {} already in {}",
            tasks.len() * options.repeat as usize - total,
            tasks.len() * options.repeat as usize,
            results_path.display()
        );
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&results_path)?;
    // Started in file order, at most `jobs` at a time; each result is saved as it ends.
    let mut set = tokio::task::JoinSet::new();
    let mut queue = todo.into_iter();
    let mut finished = 0;
    loop {
        while set.len() < options.jobs && !ctx.stop.token().is_cancelled() {
            let Some((task, repeat)) = queue.next() else {
                break;
            };
            let ctx = ctx.clone();
            set.spawn(async move { run::run_task(&ctx, &task, repeat).await });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let Ok(Some(result)) = joined else { continue };
        finished += 1;
        writeln!(file, "{}", serde_json::to_string(&result)?)?;
        file.flush()?;
        eprintln!(
            "{}",
            crate::sanitize::visible(&progress_line(&result, finished, total))
        );
    }
    let all = read_results(&results_path);
    print!("{}", crate::sanitize::visible(&summary(&all)));
    if ctx.stop.token().is_cancelled() {
        eprintln!("stopped by a signal: the unfinished tasks are not recorded; --resume runs them");
        return Ok(1);
    }
    Ok(0)
}

/// The results already in `path` (unreadable lines are skipped).
pub fn read_results(path: &std::path::Path) -> Vec<TaskResult> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn progress_line(r: &TaskResult, n: usize, total: usize) -> String {
    format!(
        "[{n}/{total}] {} #{}: {} ({}, {}) · {} turns · {} · run {}{}",
        r.id,
        r.repeat,
        if r.resolved {
            "resolved"
        } else {
            "not resolved"
        },
        r.stop_reason,
        r.grade,
        r.turns,
        money(r.cost_usd),
        r.run_id.as_deref().unwrap_or("-"),
        r.error
            .as_deref()
            .map(|e| format!(" · {}", e.lines().next().unwrap_or("")))
            .unwrap_or_default()
    )
}

fn money(cost: Option<f64>) -> String {
    cost.map_or("cost unknown".into(), |c| format!("${c:.4}"))
}

/// The table printed at the end: one row per repeat and their mean.
pub fn summary(results: &[TaskResult]) -> String {
    let mut repeats: Vec<u32> = results.iter().map(|r| r.repeat).collect();
    repeats.sort_unstable();
    repeats.dedup();
    let mut out = format!(
        "\n{:<8} {:>6} {:>9} {:>11} {:>11} {:>10}\n",
        "repeat", "tasks", "resolved", "pass rate", "total cost", "mean turns"
    );
    let mut rates = Vec::new();
    let mut costs = Vec::new();
    let mut turns = Vec::new();
    for rep in &repeats {
        let rows: Vec<&TaskResult> = results.iter().filter(|r| r.repeat == *rep).collect();
        let n = rows.len();
        let resolved = rows.iter().filter(|r| r.resolved).count();
        let rate = resolved as f64 / n.max(1) as f64;
        let cost = rows
            .iter()
            .try_fold(0.0, |acc, r| r.cost_usd.map(|c| acc + c));
        let mean_turns = rows.iter().map(|r| r.turns as f64).sum::<f64>() / n.max(1) as f64;
        out.push_str(&format!(
            "{:<8} {:>6} {:>9} {:>10.1}% {:>11} {:>10.1}\n",
            rep,
            n,
            resolved,
            rate * 100.0,
            cost.map_or("unknown".into(), |c| format!("${c:.4}")),
            mean_turns
        ));
        rates.push(rate);
        costs.push(cost);
        turns.push(mean_turns);
    }
    if repeats.is_empty() {
        out.push_str("(no results)\n");
        return out;
    }
    let k = repeats.len() as f64;
    let total: Option<f64> = costs.iter().try_fold(0.0, |acc, c| c.map(|c| acc + c));
    let per_task = total.map(|t| t / results.len().max(1) as f64);
    out.push_str(&format!(
        "{:<8} {:>6} {:>9} {:>10.1}% {:>11} {:>10.1}\n",
        "mean",
        "",
        "",
        rates.iter().sum::<f64>() / k * 100.0,
        total.map_or("unknown".into(), |c| format!("${:.4}", c / k)),
        turns.iter().sum::<f64>() / k
    ));
    out.push_str(&format!(
        "total cost {} · mean cost per task {}\n",
        money(total),
        money(per_task)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, repeat: u32, resolved: bool, cost: Option<f64>, turns: u64) -> TaskResult {
        TaskResult {
            id: id.into(),
            repeat,
            resolved,
            cost_usd: cost,
            turns,
            ..Default::default()
        }
    }

    #[test]
    fn summary_has_a_row_per_repeat_and_the_mean() {
        let s = summary(&[
            row("a", 1, true, Some(0.5), 2),
            row("b", 1, false, Some(0.5), 4),
            row("a", 2, true, Some(1.0), 2),
            row("b", 2, true, Some(0.0), 2),
        ]);
        let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("1 2 1 50.0% $1.0000 3.0"), "{s}");
        assert!(flat.contains("2 2 2 100.0% $1.0000 2.0"), "{s}");
        assert!(flat.contains("mean 75.0% $1.0000 2.5"), "{s}");
        assert!(
            flat.contains("total cost $2.0000 · mean cost per task $0.5000"),
            "{s}"
        );
        let unknown = summary(&[row("a", 1, true, None, 1)]);
        assert!(unknown.contains("unknown"), "{unknown}");
        assert!(summary(&[]).contains("(no results)"));
    }
}
