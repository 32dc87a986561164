//! `bookbridge library`: the user's library, as JSON (`{"items": […]}`) or a short list.

use crate::app::App;
use anyhow::Result;
use bb_core::library::service::ItemFilter;
use std::fmt::Write as _;

pub async fn run(app: &App, user: &str, json: bool, filter: ItemFilter) -> Result<()> {
    let user = app.library.user_id(user).await?;
    let unfiltered = filter == ItemFilter::default();
    let items = if unfiltered {
        app.library.all_items(user).await?
    } else {
        app.library.list_items(user, &filter).await?.items
    };
    if json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "items": items }))?;
        return write_out(&text);
    }
    let mut text = String::new();
    for item in &items {
        let authors: Vec<&str> = item["authors"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "{}\t{}\t{}\t{}",
            item["id"],
            item["title"].as_str().unwrap_or_default(),
            authors.join(", "),
            item["status"].as_str().unwrap_or("-")
        );
    }
    write_out(text.trim_end())
}

/// Prints, treating a closed pipe (`| head`) as the reader being done rather than an error.
fn write_out(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
