//! `bookbridge user add|list|passwd|delete`.

use crate::app::App;
use crate::cli::UserCommand;
use anyhow::{Context, Result, bail};
use secrecy::SecretString;
use std::io::{BufRead, IsTerminal};

/// A password from the terminal (asked twice), or one line from stdin when piped.
fn read_password(prompt: &str) -> Result<SecretString> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt).context("cannot read the password")?;
        let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        if first != again {
            bail!("the passwords do not match");
        }
        Ok(SecretString::from(first))
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        if pw.is_empty() {
            bail!("no password on stdin (give it as one line)");
        }
        Ok(SecretString::from(pw))
    }
}

pub async fn run(app: &App, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add { name } => {
            let pw = read_password(&format!("Password for {name}: "))?;
            let user = app.accounts.create_user(&name, &pw).await?;
            eprintln!("created user {}", user.username);
        }
        UserCommand::List => {
            for u in app.accounts.list_users().await? {
                println!(
                    "{}\t{}",
                    u.username,
                    u.created_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
        }
        UserCommand::Passwd { name } => {
            app.accounts.user(&name).await?;
            let pw = read_password(&format!("New password for {name}: "))?;
            app.accounts.change_password(&name, &pw).await?;
            eprintln!("password changed; {name}'s sessions have ended");
        }
        UserCommand::Delete { name } => {
            app.accounts.delete_user(&name).await?;
            eprintln!("deleted user {name} and everything they owned");
        }
    }
    Ok(())
}
