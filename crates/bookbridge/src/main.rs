//! The `bookbridge` binary: parses the command line, loads the configuration once, and
//! hands off to one module per subcommand. Wiring only.

mod app;
mod cli;
mod cmd;
mod config;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: an import makes and frees many small
/// strings, on several threads (one reads the file, one matches, SQLite's writes), and
/// glibc's malloc spent about a quarter of a large import's CPU on them. Built without
/// transparent huge pages (`no_thp`): with them, a 100k-row import's peak memory went from
/// about 124 MB to 144–154 MB. See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
