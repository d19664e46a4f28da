//! TUI benchmarks (`cargo bench --bench tui`): time to first frame, per-frame cost while
//! scrolling a 200,000-line diff side-by-side and unified (median, p99), the same with the review
//! workspace in use (wrap on, a search marking its matches, viewed and collapsed files, lines
//! left out, hunks out) and with a live diff arriving while the agent works, resident memory with
//! it loaded, and a flood of 100,000 pipeline events per second for 5 s with the frame time and
//! memory watched.
//!
//! Frames are drawn through the real crossterm backend into a sink (so escape-sequence generation
//! is included) with a fixed 200×60 viewport; "frame" = update + draw, as in the app loop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use tiny_backspace::config::{Config, Overrides};
use tiny_backspace::event::{Event, Stage};
use tiny_backspace::tui::diffview::DiffMode;
use tiny_backspace::tui::model::{Focus, Info, Model, Prefill};
use tiny_backspace::tui::update::{Msg, update};
use tiny_backspace::tui::{App, draw};

#[path = "tui/review.rs"]
mod review;

const W: u16 = 200;
const H: u16 = 60;

type Term = Terminal<CrosstermBackend<std::io::Sink>>;

fn terminal() -> Term {
    Terminal::with_options(
        CrosstermBackend::new(std::io::sink()),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, W, H)),
        },
    )
    .unwrap()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|v| v.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn model() -> Model {
    let info = Info {
        model: "replay · bench.json".into(),
        sandbox: "bwrap".into(),
        network: false,
        tokens: 0,
        cost_usd: None,
    };
    let mut m = Model::new(
        Prefill {
            repo: "octo/calc".into(),
            prompt: "Refactor everything".into(),
            base: String::new(),
        },
        "/".into(),
        info,
        false,
    );
    update(&mut m, Msg::Resize(W, H));
    m
}

/// 200 files × 1,000 body lines: context, paired changes (word highlights) and additions. With
/// `long`, every comment line is ~260 columns, so with wrap on one in seven lines takes two rows.
fn big_patch(long: bool) -> String {
    let tail = if long {
        " and more words".repeat(15)
    } else {
        String::new()
    };
    let mut p = String::with_capacity(16 << 20);
    for f in 0..200 {
        p.push_str(&format!(
            "diff --git a/src/mod{f}.rs b/src/mod{f}.rs\nindex 1111111..2222222 100644\n--- a/src/mod{f}.rs\n+++ b/src/mod{f}.rs\n"
        ));
        for h in 0..10 {
            let start = h * 200 + 1;
            p.push_str(&format!(
                "@@ -{start},80 +{start},100 @@ fn section_{h}() {{\n"
            ));
            for i in 0..20 {
                p.push_str(&format!(
                    "     let value_{i} = compute({i}, \"context line\");\n"
                ));
                p.push_str(&format!("-    let total_{i} = add(value_{i}, {i});\n"));
                p.push_str(&format!(
                    "+    let total_{i} = checked_add(value_{i}, {i})?;\n"
                ));
                p.push_str(&format!("+    tracing::debug!(total_{i}, \"added\");\n"));
                p.push_str(&format!(
                    "     // comment {i} with some words in it{tail}\n"
                ));
                p.push_str(&format!(
                    "     if total_{i} > LIMIT {{ return Err(Error::Big); }}\n"
                ));
                p.push_str(&format!("-    old_call_{i}();\n"));
            }
        }
    }
    p
}

/// The final diff as the app hands it to the model: whole (the event's inline patch is cut past
/// 2 MiB; the app reads the rest from the run folder, `tui::app::whole_diff`).
fn whole_diff(patch: &str) -> Event {
    Event::Diff {
        run_id: "b".into(),
        files: vec![],
        patch: patch.to_string(),
        patch_base64: None,
        patch_truncated: false,
        patch_path: None,
        files_truncated: false,
    }
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn first_frame() {
    let env = |_: &str| None::<String>;
    let dir = tempfile::tempdir().unwrap();
    let mut samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let config = Config::load_from(
            &Overrides {
                model: Some("scripted:bench.json".into()),
                home: Some(dir.path().to_path_buf()),
                ..Default::default()
            },
            &env,
            None,
            None,
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _g = rt.enter();
        let (mut app, _rx) = App::new(
            Arc::new(config),
            "/".into(),
            Prefill {
                repo: "octo/calc".into(),
                prompt: "p".into(),
                base: String::new(),
            },
            false,
            None,
        );
        app.handle(Msg::Resize(W, H));
        let mut term = terminal();
        term.draw(|f| draw(f, &app.model)).unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "time to first frame (config + app + sandbox probe + first 200x60 draw): median {}, p99 {}",
        ms(pct(&samples, 0.5)),
        ms(pct(&samples, 0.99))
    );
}

/// The real binary in a private tmux server: from spawn until the screen shows the fields
/// (tmux polling every 2 ms adds up to that much).
fn first_frame_real_binary() {
    let bin = env!("CARGO_BIN_EXE_tiny-backspace");
    let dir = tempfile::tempdir().unwrap();
    // A fresh server per sample: a server whose last session was killed is shutting down and
    // would refuse the next one.
    let tmux = |i: usize, args: &[&str]| {
        std::process::Command::new("tmux")
            .arg("-S")
            .arg(dir.path().join(format!("sock{i}")))
            .args(args)
            .output()
            .unwrap()
    };
    let mut samples = Vec::new();
    for i in 0..10 {
        let name = format!("b{i}");
        let cmd = format!(
            "TB_HOME={0}/home TB_CONFIG={0}/none.toml {bin} --repo octo/calc --prompt p --model scripted:x.json",
            dir.path().display()
        );
        let t = Instant::now();
        let out = tmux(
            i,
            &[
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "200",
                "-y",
                "60",
                &cmd,
            ],
        );
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        loop {
            let out = tmux(i, &["capture-pane", "-p", "-t", &name]);
            if String::from_utf8_lossy(&out.stdout).contains("Repository") {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "no first frame: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        samples.push(t.elapsed());
        tmux(i, &["kill-server"]);
    }
    samples.sort();
    println!(
        "time to first frame, real binary in tmux 200x60 (spawn → fields on screen): median {}, max {}",
        ms(pct(&samples, 0.5)),
        ms(*samples.last().unwrap())
    );
}

/// Scrolls line by line, by pages and by hunks, one frame (update + draw) per step. With `live`,
/// that event arrives before every 94th step (a live diff at most every 1.5 s, at 16 ms a frame);
/// those frames are timed apart.
fn scroll(m: &mut Model, term: &mut Term, label: &str, live: Option<&Event>) {
    let mode = m.diff.as_ref().unwrap().mode;
    let mut samples = Vec::new();
    let mut arrivals = Vec::new();
    // Three passes of 1,000 steps from the top, each about half-way down (100 of 200 files).
    let steps: Vec<Msg> = (0..3000)
        .map(|i| match i % 10 {
            _ if i % 1000 == 0 => key(KeyCode::Home),
            0..=5 => key(KeyCode::Char('j')),
            6 | 7 => key(KeyCode::PageDown),
            8 => key(KeyCode::Char('n')),
            _ => key(KeyCode::Char(']')),
        })
        .collect();
    // Syntax colors left for later frames: after every 10th step the user pauses, and the frames
    // the app then draws until the screen has all its colors are timed apart.
    let mut fill = Vec::new();
    let mut fill_runs = Vec::new();
    let mut pending_steps = 0;
    for (i, msg) in steps.into_iter().enumerate() {
        let t = Instant::now();
        let arriving = live.filter(|_| i % 94 == 93);
        if let Some(e) = arriving {
            update(m, Msg::Pipeline(e.clone()));
        }
        update(m, msg);
        term.draw(|f| draw(f, m)).unwrap();
        if arriving.is_some() {
            arrivals.push(t.elapsed());
        } else {
            samples.push(t.elapsed());
        }
        let mut pending = m.take_highlight_pending();
        pending_steps += usize::from(pending);
        if i % 10 == 9 {
            let mut n = 0;
            while pending {
                let t = Instant::now();
                term.draw(|f| draw(f, m)).unwrap();
                fill.push(t.elapsed());
                pending = m.take_highlight_pending();
                n += 1;
                assert!(n < 1000, "the colors never filled in");
            }
            fill_runs.push(n);
        }
    }
    let d = m.diff.as_ref().unwrap();
    assert_eq!(d.mode, mode);
    assert!(d.cursor > 100_000, "it scrolled: row {}", d.cursor);
    // The first frame also compiles the grammar's regexes on first use (once per process).
    let first = samples[0];
    samples.sort();
    println!(
        "scrolling the 200k diff at {W}x{H}, {label}, {mode:?}: {} frames, median {}, p99 {}, max {}; first {}",
        samples.len(),
        ms(pct(&samples, 0.5)),
        ms(pct(&samples, 0.99)),
        ms(*samples.last().unwrap()),
        ms(first)
    );
    arrivals.sort();
    if !arrivals.is_empty() {
        println!(
            "  {} frames with a live diff arriving (parse + rows + draw): median {}, max {}",
            arrivals.len(),
            ms(pct(&arrivals, 0.5)),
            ms(*arrivals.last().unwrap())
        );
    }
    fill.sort();
    fill_runs.sort();
    if !fill.is_empty() {
        println!(
            "  colors pending after {pending_steps} of those frames; {} pauses: frames until all \
             colors are in: median {}, max {}; those {} frames: median {}, p99 {}, max {}",
            fill_runs.len(),
            fill_runs[fill_runs.len() / 2],
            fill_runs.last().unwrap(),
            fill.len(),
            ms(pct(&fill, 0.5)),
            ms(pct(&fill, 0.99)),
            ms(*fill.last().unwrap())
        );
    }
}

fn big_diff() {
    let before = rss_kib();
    let patch = big_patch(false);
    let lines = patch.lines().count();
    let mut m = model();
    // Start a run (as Ctrl+S does), so the diff arrives as a run's: it takes the focus and the
    // review state, and the keys below reach it (not the prompt field).
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)),
    );
    let t = Instant::now();
    update(&mut m, Msg::Pipeline(whole_diff(&patch)));
    update(
        &mut m,
        Msg::Pipeline(Event::Status {
            run_id: "b".into(),
            stage: Stage::Review,
            message: "review".into(),
        }),
    );
    let load = t.elapsed();
    assert_eq!(m.focus, Focus::Diff, "the keys go to the diff");
    let after = rss_kib();
    let rows = m.diff.as_ref().unwrap().rows.len();
    println!(
        "200k diff: {lines} patch lines, {rows} rows, parse+index {}; RSS {} MiB (+{} MiB for the diff)",
        ms(load),
        after / 1024,
        after.saturating_sub(before) / 1024
    );
    // The app loads the grammars on a background thread at start; do the same here.
    tiny_backspace::tui::highlight::warm_up();
    let mut term = terminal();
    // 200×60 opens side-by-side; `v` switches to unified for the second run.
    assert_eq!(m.diff.as_ref().unwrap().mode, DiffMode::SideBySide);
    scroll(&mut m, &mut term, "plain", None);
    update(&mut m, key(KeyCode::Char('v')));
    assert_eq!(m.diff.as_ref().unwrap().mode, DiffMode::Unified);
    scroll(&mut m, &mut term, "plain", None);
    drop(m);
}

fn flood() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(4096);
        const RATE: u64 = 100_000;
        const SECS: u64 = 5;
        let producer = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut sent = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while start.elapsed() < Duration::from_secs(SECS) {
                tick.tick().await;
                let due = (start.elapsed().as_secs_f64() * RATE as f64) as u64;
                while sent < due {
                    let e = match sent % 4 {
                        0 | 1 => Event::AiDelta {
                            run_id: "f".into(),
                            delta: format!("token{sent} "),
                        },
                        2 => Event::ToolRead {
                            filepath: format!("src/file{sent}.rs"),
                            run_id: None,
                        },
                        _ => Event::ToolBash {
                            command: "cargo test".into(),
                            output: "test result: ok. 12 passed; 0 failed\n".repeat(4),
                            exit_code: 0,
                            run_id: None,
                            duration_ms: 3,
                            terminated: None,
                        },
                    };
                    if tx.send(e).await.is_err() {
                        return sent;
                    }
                    sent += 1;
                }
            }
            sent
        });
        let mut m = model();
        update(&mut m, Msg::Pipeline(Event::Status {
            run_id: "f".into(),
            stage: Stage::Agent,
            message: "agent".into(),
        }));
        let mut term = terminal();
        let rss_start = rss_kib();
        let mut rss_max = rss_start;
        let mut frames = Vec::new();
        let mut received = 0u64;
        let mut batch = Vec::with_capacity(4096);
        let mut last_draw = Instant::now();
        let started = Instant::now();
        loop {
            let n = tokio::select! {
                n = rx.recv_many(&mut batch, 4096) => n,
                _ = tokio::time::sleep(Duration::from_millis(16)) => 0,
            };
            if n == 0 && producer.is_finished() && rx.is_empty() {
                break;
            }
            let t = Instant::now();
            for e in batch.drain(..) {
                update(&mut m, Msg::Pipeline(e));
            }
            received += n as u64;
            if last_draw.elapsed() >= Duration::from_millis(16) {
                update(&mut m, Msg::Tick(started.elapsed().as_millis() as u64));
                term.draw(|f| draw(f, &m)).unwrap();
                last_draw = Instant::now();
                frames.push(t.elapsed());
                rss_max = rss_max.max(rss_kib());
            }
        }
        let sent = producer.await.unwrap();
        let wall = started.elapsed();
        frames.sort();
        println!(
            "event flood: {sent} events sent in {:.2} s ({:.0}/s), {received} applied, {} frames; \
             frame (batch + draw) median {}, p99 {}, max {}; RSS start {} MiB, max {} MiB; log entries {}",
            wall.as_secs_f64(),
            sent as f64 / wall.as_secs_f64(),
            frames.len(),
            ms(pct(&frames, 0.5)),
            ms(pct(&frames, 0.99)),
            ms(*frames.last().unwrap()),
            rss_start / 1024,
            rss_max / 1024,
            m.log.entries.len()
        );
        assert_eq!(sent, received, "the UI kept up with every event");
    });
}

fn main() {
    // `cargo test --benches` runs benches with --bench absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    first_frame();
    first_frame_real_binary();
    big_diff();
    review::review_workspace();
    review::live_diff();
    flood();
}
