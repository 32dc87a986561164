//! `bookbridge imports` (the user's import batches) and `bookbridge imports undo BATCH`.

use crate::app::App;
use anyhow::Result;
use bb_core::ids::BatchId;

pub async fn list(app: &App, user: &str, json: bool) -> Result<()> {
    let user = app.library.user_id(user).await?;
    let batches = app.library.batches(user).await?;
    if json {
        let list: Vec<serde_json::Value> = batches
            .iter()
            .map(|b| {
                serde_json::json!({
                    "id": b.id.0, "format": b.format, "label": b.label, "state": b.state,
                    "counts": b.counts, "created_at": b.created_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for b in batches {
        println!(
            "{}\t{}\t{}\t{}\t{} rows: {} created, {} merged, {} updated, {} unchanged, {} failed\t{}",
            b.id,
            b.created_at.format("%Y-%m-%d %H:%M UTC"),
            b.state.as_str(),
            b.format,
            b.counts.rows,
            b.counts.created,
            b.counts.merged,
            b.counts.updated,
            b.counts.unchanged,
            b.counts.failed,
            b.label.unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn undo(app: &App, user: &str, batch: i64) -> Result<()> {
    let user = app.library.user_id(user).await?;
    let touched = app.library.undo(user, BatchId(batch)).await?;
    eprintln!("import {batch} undone ({touched} items touched)");
    Ok(())
}
