//! The command line: global flags and one subcommand per file in `cmd/`.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "bookbridge",
    version,
    about = "One library you own, from every account you have elsewhere"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML); see `bookbridge config example`
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        help = "Data directory [env: BOOKBRIDGE_DATA_DIR] [default: ./data]"
    )]
    pub data_dir: Option<PathBuf>,
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help = "sqlite://… or postgres://… [env: BOOKBRIDGE_DATABASE_URL] \
                [default: sqlite://<data-dir>/bookbridge.db]"
    )]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web service and API
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
    },
    /// Apply pending database migrations
    Migrate,
    /// Manage local accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Manage personal access tokens for the API
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show a user's audit log, or without --user the system's (key rotation), newest first
    Audit {
        #[arg(long)]
        user: Option<String>,
        /// How many entries
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Manage the master keys that encrypt stored credentials
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show configuration help
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Import export files into a user's library (one undoable batch per file)
    Import {
        #[arg(long)]
        user: String,
        /// Skip detection: goodreads-csv, storygraph-csv, kindle-clippings, bookbridge-json, …
        #[arg(long)]
        format: Option<String>,
        /// Print each summary as JSON
        #[arg(long)]
        json: bool,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Show a user's library
    Library {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
        /// to-read, reading, read, did-not-finish, paused
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        shelf: Option<String>,
        /// print, ebook, audiobook
        #[arg(long = "item-format")]
        item_format: Option<String>,
        /// A provider: goodreads, storygraph, kindle, …
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        search: Option<String>,
    },
    /// List a user's imports, or undo one
    Imports(ImportsArgs),
    /// Export a user's library
    Export {
        #[arg(long)]
        user: String,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write here instead of stdout
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List the providers accounts can be connected from
    Providers {
        #[arg(long)]
        json: bool,
    },
    /// List a user's connected accounts
    Connections {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Connect an account (OAuth: opens a sign-in address and waits on a loopback port)
    Connect {
        /// A provider id (see `bookbridge providers`)
        provider: String,
        #[arg(long)]
        user: String,
        /// The personal token (token providers); `-` or omitted reads it from stdin
        #[arg(long, conflicts_with = "username")]
        token: Option<String>,
        /// The public account name (feed providers)
        #[arg(long)]
        username: Option<String>,
        /// Audible marketplace: us, uk, de, fr, ca, it, au, in, jp, es, br
        #[arg(long)]
        marketplace: Option<String>,
    },
    /// Sync a connection now (by id, or by provider when there is one)
    Sync {
        connection: String,
        #[arg(long)]
        user: String,
    },
    /// Disconnect an account, keeping or removing the data it brought in
    Disconnect {
        connection: String,
        #[arg(long)]
        user: String,
        #[arg(
            long,
            conflicts_with = "delete_data",
            required_unless_present = "delete_data"
        )]
        keep_data: bool,
        #[arg(long)]
        delete_data: bool,
    },
    /// List possible duplicates, or confirm (merge) or dismiss one
    Duplicates {
        #[arg(long)]
        user: String,
        #[arg(long, value_name = "ID", conflicts_with = "dismiss")]
        confirm: Option<i64>,
        #[arg(long, value_name = "ID")]
        dismiss: Option<i64>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImportsArgs {
    /// Whose imports (also accepted after `undo BATCH`)
    #[arg(long, global = true)]
    pub user: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<ImportsAction>,
}

#[derive(Debug, Subcommand)]
pub enum ImportsAction {
    /// Withdraw everything one import contributed
    Undo { batch: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    GoodreadsCsv,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (password from a prompt, or one line on stdin)
    Add { name: String },
    /// List users
    List,
    /// Change a user's password (ends their sessions)
    Passwd { name: String },
    /// Delete a user and everything they own
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it alone on stdout, once
    Create {
        #[arg(long)]
        user: String,
        /// A label to recognise it by
        #[arg(long)]
        name: Option<String>,
    },
    /// List a user's tokens
    List {
        #[arg(long)]
        user: String,
    },
    /// Revoke a token by id
    Revoke {
        id: i64,
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new master key version and re-wrap every data key (resumable)
    Rotate,
    /// Stop accepting an old master key version (refused while still in use)
    Retire { version: u32 },
    /// Show master key versions and how many data keys each wraps
    Status,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every option with its default and meaning
    Example,
}
