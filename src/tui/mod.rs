//! The full-screen terminal UI: input fields, live step log, diff review with hunk selection, PR
//! dialog, past runs.
//!
//! Shape: model ([`model`]) / update ([`update`], pure) / view ([`view`], a function of the model);
//! [`app::App`] performs the effects `update` asks for; [`term`] owns the terminal and runs one
//! `tokio::select!` loop over key input, pipeline events (drained in batches) and a frame timer.
//!
//! Invariants: the TUI holds no pipeline logic — it only turns keys into `Command`s and draws
//! `Event`s; the terminal is restored on every exit path, panics included.

pub mod app;
pub mod comments;
mod dialog_keys;
mod dialogs;
mod diffpane;
pub mod diffview;
mod diffwrap;
pub mod editor;
pub mod filelist;
pub mod highlight;
mod hunkjump;
mod hunksplit;
mod ingest;
pub mod layout;
mod livediff;
pub mod model;
mod mouse;
mod pager;
mod pane_keys;
mod review_keys;
pub mod review_store;
pub mod sanitize;
pub mod search;
pub mod sidebyside;
pub mod steplive;
pub mod steplog;
mod stepview;
pub mod term;
mod theme;
pub mod update;
pub mod view;

pub use app::{App, PipeMsg, ProviderFactory};
pub use model::{Model, Prefill};
pub use update::{Action, Msg, update};
pub use view::draw;
