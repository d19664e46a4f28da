//! Binary entry point: error reporting setup, then the CLI.

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(tiny_backspace::cli::main())?;
    // Every run has ended and cleaned up by now; what may still block is a read of the terminal
    // (an approval question a signal cut short), which must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
