//! The terminal side: raw mode and the alternate screen, the event loop, and the effects that need
//! the terminal (editor, suspend, clipboard, browser).
//!
//! Invariants: every way out (return, error, panic, SIGTERM/SIGHUP/SIGINT — which quit like
//! Ctrl+C-then-quit: the run is cancelled and cleaned up, exit code 1) restores the terminal;
//! redraws are coalesced
//! and capped at [`FRAME`]; with nothing running and no input, the loop sleeps (no redraw) —
//! only a running spinner wakes it, ten times a second, and syntax colors still to fill in on
//! screen (the highlighter's per-frame budget) ask for the next frames until all are drawn; the
//! key reader is dropped while an editor or a suspended shell owns the terminal, so it never
//! steals their input.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as CtEvent, EventStream,
};
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::app::{App, PipeMsg};
use super::model::{Field, Prefill};
use super::update::{Action, Msg};
use crate::config::Config;

/// The shortest time between two frames (about 60 per second).
pub const FRAME: Duration = Duration::from_millis(16);
/// How often a running spinner advances.
pub const SPIN: Duration = Duration::from_millis(100);

type Term = Terminal<CrosstermBackend<std::io::Stdout>>;

/// Clears the screen and makes the next frame draw every cell, after an editor or a suspended
/// shell had the terminal. Not `Terminal::clear`: that asks the terminal where its cursor is, and
/// the answer can be lost to the input reader of the event stream just dropped (the app then
/// failed with "the cursor position could not be read").
fn redraw_everything(terminal: &mut Term) -> std::io::Result<()> {
    let size = terminal.size()?;
    terminal.resize(ratatui::layout::Rect::new(0, 0, size.width, size.height))
}

/// Whether the alternate screen is on (so `restore` clears it before leaving, and only then).
static ALTERNATE: AtomicBool = AtomicBool::new(false);

fn enter() -> std::io::Result<()> {
    enable_raw_mode()?;
    ALTERNATE.store(true, Ordering::SeqCst);
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableMouseCapture,
        cursor::Hide
    )
}

/// Puts the terminal back the way it was. Safe to call more than once.
pub fn restore() {
    // A terminal resized while the alternate screen was on (tmux) can copy rows of it onto the
    // shell's screen when it is left with the cursor low: leave it blank, cursor at the top. Only
    // while it is on — clearing the shell's own screen would lose the user's text.
    if ALTERNATE.swap(false, Ordering::SeqCst) {
        let _ = execute!(
            std::io::stdout(),
            Clear(ClearType::All),
            cursor::MoveTo(0, 0)
        );
    }
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Restores the terminal when dropped (error paths).
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Runs the TUI until the user quits. Returns the process exit code.
pub async fn run(prefill: Prefill, config: Config) -> color_eyre::Result<i32> {
    run_with(prefill, config, None).await
}

/// Like [`run`], with every run using a provider from `provider` (e.g. the demo's replay) instead
/// of the configured model.
pub async fn run_with(
    prefill: Prefill,
    config: Config,
    provider: Option<super::app::ProviderFactory>,
) -> color_eyre::Result<i32> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!(
            "error: the interactive UI needs a terminal; for scripts use `tiny-backspace run --repo R \
             --prompt P --json`"
        );
        return Ok(2);
    }
    let no_color = crate::config::Conventions::from_env().no_color;
    let cwd = std::env::current_dir()?;
    if !no_color {
        std::thread::spawn(super::highlight::warm_up);
    }
    let (mut app, mut rx) = App::new(Arc::new(config), cwd, prefill, no_color, provider);
    // Before the terminal changes: from here a signal cannot end the process without restoring it.
    let stop = crate::signals::watch()?;
    // A retried publish reads the token again (fixed in `.env`, the config file, or `gh`).
    app.set_config_reload(crate::pipeline::publish::ConfigReload::new(|| {
        Config::load(&crate::config::Overrides::default()).map_err(|e| e.to_string())
    }));
    install_panic_hook();
    enter()?;
    let guard = Guard;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    redraw_everything(&mut terminal)?;
    let result = event_loop(&mut terminal, &mut app, &mut rx, &stop).await;
    drop(guard);
    // Not eprintln!: after a hangup the terminal is gone, and a failed write must not cut the
    // cleanup short.
    let mut err = std::io::stderr();
    if let Some(signal) = stop.signal() {
        let _ = writeln!(err, "{} received: quitting", signal.name());
    }
    if app.busy() {
        let _ = writeln!(err, "cancelling the run and cleaning up…");
    }
    app.shutdown(Duration::from_secs(20)).await;
    match stop.signal() {
        // A hangup may show first as a failed terminal read; the signal is the reason either way.
        Some(_) => Ok(1),
        None => result.map(|()| 0),
    }
}

fn to_msg(e: CtEvent) -> Option<Msg> {
    match e {
        CtEvent::Key(k) => Some(Msg::Key(k)),
        CtEvent::Paste(s) => Some(Msg::Paste(s)),
        CtEvent::Mouse(m) => Some(Msg::Mouse(m)),
        CtEvent::Resize(w, h) => Some(Msg::Resize(w, h)),
        _ => None,
    }
}

async fn event_loop(
    terminal: &mut Term,
    app: &mut App,
    rx: &mut tokio::sync::mpsc::Receiver<PipeMsg>,
    stop: &crate::signals::Stop,
) -> color_eyre::Result<()> {
    let size = terminal.size()?;
    app.handle(Msg::Resize(size.width, size.height));
    let mut keys = EventStream::new();
    let mut batch: Vec<PipeMsg> = Vec::with_capacity(1024);
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        app.tick();
        let now = Instant::now();
        if dirty && last_draw.is_none_or(|t| now.duration_since(t) >= FRAME) {
            terminal.draw(|f| super::view::draw(f, &app.model))?;
            last_draw = Some(now);
            // Syntax colors the frame's budget did not reach: one more frame at the frame cap.
            dirty = app.model.take_highlight_pending();
        }
        if app.model.should_quit {
            return Ok(());
        }
        let wake = if dirty {
            last_draw.map(|t| t + FRAME)
        } else if app.model.animating() {
            Some(now + SPIN)
        } else {
            None
        };
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let mut pending: Vec<Action> = Vec::new();
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(e)) => {
                    if let Some(msg) = to_msg(e) {
                        pending = app.handle(msg);
                        dirty = true;
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            n = rx.recv_many(&mut batch, 4096) => {
                if n > 0 {
                    for m in batch.drain(..) {
                        app.pipeline_event(m);
                    }
                    dirty = true;
                }
            }
            _ = sleep => {
                if app.model.animating() {
                    dirty = true;
                }
            }
            // SIGTERM, SIGHUP (the terminal went away) or SIGINT: quit without asking.
            _ = stop.stopped() => return Ok(()),
        }
        for action in pending {
            match action {
                Action::Quit => return Ok(()),
                Action::Edit(field, text) => {
                    drop(keys);
                    let edited = edit_in_editor(field, &text);
                    enter()?;
                    redraw_everything(terminal)?;
                    keys = EventStream::new();
                    let msg = match edited {
                        Ok(t) => Msg::EditorDone(field, Some(t)),
                        Err(e) => Msg::Failed(format!("editor: {e}")),
                    };
                    app.handle(msg);
                }
                Action::RunEditor { path, rel } => {
                    drop(keys);
                    restore();
                    let edited = super::editor::run_editor(&path);
                    enter()?;
                    redraw_everything(terminal)?;
                    keys = EventStream::new();
                    app.handle(Msg::FileEdited {
                        rel,
                        error: edited.err().map(|e| e.to_string()),
                    });
                }
                Action::Suspend => {
                    drop(keys);
                    restore();
                    let stopped = Instant::now();
                    // SAFETY: raising a signal on our own process; execution continues on SIGCONT.
                    unsafe {
                        libc::raise(libc::SIGTSTP);
                    }
                    // The whole process was stopped: the run's clock did not run.
                    app.skip_clock(stopped.elapsed());
                    enter()?;
                    redraw_everything(terminal)?;
                    keys = EventStream::new();
                }
                Action::OpenUrl(url) => {
                    if let Err(e) = open_url(&url) {
                        app.handle(Msg::Failed(format!(
                            "could not open a browser: {e}; the URL is {url}"
                        )));
                    }
                }
                Action::Copy(text) => {
                    let mut out = std::io::stdout();
                    let _ = write!(out, "\x1b]52;c;{}\x07", base64(text.as_bytes()));
                    let _ = out.flush();
                }
                _ => {}
            }
            dirty = true;
        }
    }
}

/// Opens `text` in `$VISUAL` / `$EDITOR` (default `vi`) and returns what was saved.
fn edit_in_editor(field: Field, text: &str) -> std::io::Result<String> {
    restore();
    let dir = tempfile::tempdir()?;
    let name = match field {
        Field::Prompt | Field::FollowUp | Field::PrBody => "tiny-backspace.md",
        _ => "tiny-backspace.txt",
    };
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, text)?;
    let editor = super::editor::editor_command();
    // Through the shell so that EDITOR="code --wait" works; the path is passed as an argument.
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "{editor} exited with {status}"
        )));
    }
    std::fs::read_to_string(&path)
}

fn open_url(url: &str) -> std::io::Result<()> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(std::io::Error::other("not a web address"));
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
}

/// Standard base64 (for OSC 52).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc_vectors() {
        let v = [
            "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy",
        ];
        for (i, want) in v.iter().enumerate() {
            assert_eq!(super::base64(&b"foobar"[..i]), *want);
        }
    }
}
