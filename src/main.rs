//! Binary entry point: error reporting setup, then the CLI.
//!
//! An error that reaches this edge is printed here rather than by the runtime: its text can name
//! repositories, files and model output, so it goes through `sanitize::visible` (controls and
//! invisible characters shown, never obeyed). The report has no colors of its own (a blank
//! theme), so what the terminal gets is only what the error says.

fn main() -> color_eyre::Result<()> {
    // Inside an allowlist bwrap sandbox, before anything else: hand the proxy listener over and
    // exec the executor (see sandbox::bridge).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == tiny_backspace::sandbox::BRIDGE_ARG)
    {
        std::process::exit(tiny_backspace::sandbox::bridge_main(&args[2..]));
    }
    color_eyre::config::HookBuilder::new()
        .theme(color_eyre::config::Theme::new())
        .install()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = match runtime.block_on(tiny_backspace::cli::main()) {
        Ok(code) => code,
        Err(report) => {
            let text = format!("{report:?}");
            eprintln!("Error: {}", tiny_backspace::sanitize::visible(&text));
            1
        }
    };
    // Every run has ended and cleaned up by now; what may still block is a read of the terminal
    // (an approval question a signal cut short), which must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
