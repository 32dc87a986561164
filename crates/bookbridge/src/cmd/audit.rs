//! `bookbridge audit [--user NAME]`: one account's audit log, or the system's.

use crate::app::App;
use anyhow::Result;

pub async fn run(app: &App, user: Option<&str>, limit: u32, json: bool) -> Result<()> {
    let entries = match user {
        Some(name) => {
            let user = app.accounts.user(name).await?;
            app.accounts.audit_log(user.id, None, limit).await?
        }
        None => app.accounts.system_audit_log(None, limit).await?,
    };
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
