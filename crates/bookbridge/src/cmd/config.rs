//! `bookbridge config example`.

use crate::cli::ConfigCommand;
use anyhow::Result;

pub fn run(command: &ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Example => print!("{}", crate::config::EXAMPLE),
    }
    Ok(())
}
