//! tiny-backspace: prompt → sandboxed coding agent → reviewed diff → pull request.
//! See ARCHITECTURE.md for how the modules fit together.

pub mod agent;
pub mod cli;
pub mod config;
pub mod demo;
pub mod diff;
pub mod emit;
pub mod error_code;
pub mod eval;
pub mod event;
pub mod forge;
pub mod git;
pub mod llm;
pub mod pipeline;
pub mod recovery;
pub mod repo;
pub mod sandbox;
pub mod sanitize;
pub mod secret;
pub mod serve;
pub mod signals;
pub mod store;
pub mod telemetry;
pub mod tui;
