//! One module per subcommand.

mod audit;
mod config;
mod connections;
mod duplicates;
mod export;
mod import;
mod imports;
mod keys;
mod library;
mod serve;
mod token;
mod user;

use crate::app::{self, App};
use crate::cli::{Cli, Command};
use crate::config::{Config, Overrides, ServeOverride};
use anyhow::{Result, anyhow};

pub async fn run(cli: Cli) -> Result<()> {
    if let Command::Config(c) = &cli.command {
        return config::run(c);
    }
    let overrides = Overrides {
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        serve: match &cli.command {
            Command::Serve { bind: Some(bind) } => Some(ServeOverride { bind: *bind }),
            _ => None,
        },
    };
    let config = Config::load(cli.global.config.as_deref(), &overrides).map_err(|e| anyhow!(e))?;
    app::init_logging(&config);
    let app = App::open(config).await?;
    let store = app.store.clone();
    let outcome = run_command(app, cli.command).await;
    // Every command ends with the database closed: with SQLite that leaves the library in
    // its one file (no write-ahead log beside it), as a backup by copying expects.
    store.close().await;
    outcome
}

#[allow(clippy::too_many_lines)] // one arm per subcommand: a table, read top to bottom
async fn run_command(app: App, command: Command) -> Result<()> {
    match command {
        Command::Serve { .. } => serve::run(app).await,
        Command::Migrate => {
            // App::open has applied them.
            println!("database is up to date");
            Ok(())
        }
        Command::User(c) => user::run(&app, c).await,
        Command::Token(c) => token::run(&app, c).await,
        Command::Audit { user, limit, json } => {
            audit::run(&app, user.as_deref(), limit, json).await
        }
        Command::Keys(c) => keys::run(&app, c).await,
        Command::Config(_) => Ok(()),
        Command::Import {
            user,
            format,
            json,
            files,
        } => import::run(&app, &user, format.as_deref(), json, &files).await,
        Command::Library {
            user,
            json,
            status,
            shelf,
            item_format,
            source,
            search,
        } => {
            let filter = bb_core::library::service::ItemFilter {
                status,
                shelf,
                format: item_format,
                source,
                search,
                ..Default::default()
            };
            library::run(&app, &user, json, filter).await
        }
        Command::Providers { json } => connections::providers(&app, json).await,
        Command::Connections { user, json } => connections::list(&app, &user, json).await,
        Command::Connect {
            provider,
            user,
            token,
            username,
            marketplace,
        } => {
            connections::connect(
                &app,
                connections::ConnectArgs {
                    provider,
                    user,
                    token,
                    username,
                    marketplace,
                },
            )
            .await
        }
        Command::Sync { connection, user } => connections::sync(&app, &connection, &user).await,
        Command::Disconnect {
            connection,
            user,
            keep_data,
            delete_data: _,
        } => connections::disconnect(&app, &connection, &user, keep_data).await,
        Command::Imports(args) => {
            let user = args
                .user
                .ok_or_else(|| anyhow!("--user NAME is required"))?;
            match args.action {
                None => imports::list(&app, &user, args.json).await,
                Some(crate::cli::ImportsAction::Undo { batch }) => {
                    imports::undo(&app, &user, batch).await
                }
            }
        }
        Command::Export {
            user,
            format,
            output,
        } => export::run(&app, &user, format, output.as_deref()).await,
        Command::Duplicates {
            user,
            confirm,
            dismiss,
            json,
        } => duplicates::run(&app, &user, confirm, dismiss, json).await,
    }
}
