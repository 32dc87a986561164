//! `bookbridge token create|list|revoke`.

use crate::app::App;
use crate::cli::TokenCommand;
use anyhow::Result;
use bb_core::ids::TokenId;
use secrecy::ExposeSecret;

pub async fn run(app: &App, command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Create { user, name } => {
            let (secret, record) = app.accounts.create_token(&user, name.as_deref()).await?;
            eprintln!(
                "token {} ({}) created; it is shown once, keep it safe",
                record.id, record.name
            );
            println!("{}", secret.expose_secret());
        }
        TokenCommand::List { user } => {
            for t in app.accounts.list_tokens(&user).await? {
                let used = t.last_used_at.map_or_else(
                    || "never used".to_owned(),
                    |at| format!("last used {}", at.format("%Y-%m-%d %H:%M UTC")),
                );
                println!(
                    "{}\t{}\tcreated {}\t{used}",
                    t.id,
                    t.name,
                    t.created_at.format("%Y-%m-%d")
                );
            }
        }
        TokenCommand::Revoke { id, user } => {
            app.accounts.revoke_token(&user, TokenId(id)).await?;
            eprintln!("token {id} revoked");
        }
    }
    Ok(())
}
