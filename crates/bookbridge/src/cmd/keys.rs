//! `bookbridge keys rotate|retire|status`: master key versions of the credential vault.

use crate::app::App;
use crate::cli::KeysCommand;
use anyhow::{Result, bail};
use bb_core::audit::AuditEvent;
use bb_vault::Keyring;
use serde_json::json;

pub async fn run(app: &App, command: KeysCommand) -> Result<()> {
    let (vault, key_file) = app.vault().await?;
    match command {
        KeysCommand::Rotate => {
            // Finish an interrupted rotation before minting another key, so a crash never
            // leaves a string of unused keys in the file.
            let new_key = if vault.rotation_pending().await? {
                None
            } else if let Some(key) = vault.unregistered_keys().into_iter().next() {
                Some(key)
            } else if let Some(path) = &key_file {
                let key = Keyring::append_new_key(path)?;
                eprintln!("added a new master key to {}", path.display());
                Some(key)
            } else {
                bail!(
                    "the master keys come from BOOKBRIDGE_MASTER_KEY: add a new base64 key to it \
                     (comma-separated, keeping the current one) and run `keys rotate` again"
                );
            };
            let report = vault.rotate(new_key).await?;
            app.accounts
                .record(
                    None,
                    AuditEvent::KeyRotated,
                    json!({
                        "primary_version": report.primary_version,
                        "registered_version": report.registered_version,
                        "resumed": report.resumed,
                        "rewrapped": report.rewrapped,
                    }),
                )
                .await?;
            println!(
                "primary master key: version {}; re-wrapped {} data keys{}",
                report.primary_version,
                report.rewrapped,
                if report.resumed {
                    " (finished an interrupted rotation)"
                } else {
                    ""
                }
            );
            if report.new_key_deferred {
                println!("run `keys rotate` again to move to the newest key");
            }
        }
        KeysCommand::Retire { version } => {
            vault.retire(version).await?;
            app.accounts
                .record(None, AuditEvent::KeyRetired, json!({"version": version}))
                .await?;
            println!(
                "master key version {version} retired; it is no longer needed and may be removed \
                 from the key file"
            );
        }
        KeysCommand::Status => {
            let status = vault.status().await?;
            for v in &status.versions {
                println!(
                    "version {}\t{}\t{} data keys\t{}",
                    v.version,
                    if v.retired_at.is_some() {
                        "retired"
                    } else if v.primary {
                        "primary"
                    } else {
                        "active"
                    },
                    v.data_keys,
                    if v.loaded {
                        "key loaded"
                    } else {
                        "key not loaded"
                    },
                );
            }
            if status.rotation_pending {
                println!("a rotation is unfinished: run `keys rotate`");
            }
        }
    }
    Ok(())
}
