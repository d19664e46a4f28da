//! Binary entry point: error reporting setup, then the CLI.

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(tiny_backspace::cli::main())?;
    drop(runtime);
    std::process::exit(code);
}
