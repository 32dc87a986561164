//! `bookbridge config example`.

use crate::cli::ConfigCommand;
use anyhow::{Context, Result};
use std::io::Write;

pub fn run(command: &ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Example => std::io::stdout()
            .write_all(crate::config::EXAMPLE.as_bytes())
            .context("cannot write to stdout"),
    }
}
