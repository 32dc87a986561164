//! `bookbridge audit --user NAME`.

use crate::app::App;
use anyhow::Result;

pub async fn run(app: &App, user: &str, limit: u32, json: bool) -> Result<()> {
    let user = app.accounts.user(user).await?;
    let entries = app.accounts.audit_log(user.id, None, limit).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "entries": entries }))?
        );
        return Ok(());
    }
    for e in entries {
        println!(
            "{}\t{}\t{}\t{}",
            e.at.format("%Y-%m-%d %H:%M:%S UTC"),
            e.event,
            e.client_ip.as_deref().unwrap_or("-"),
            e.details
        );
    }
    Ok(())
}
