//! `bookbridge duplicates`: possible duplicates the merge left for the user, and
//! `--confirm ID` (merge them) or `--dismiss ID` (they are different works).

use crate::app::App;
use anyhow::Result;

pub async fn run(
    app: &App,
    user: &str,
    confirm: Option<i64>,
    dismiss: Option<i64>,
    json: bool,
) -> Result<()> {
    let user = app.library.user_id(user).await?;
    if let Some(id) = confirm {
        let item = app.library.confirm_duplicate(user, id).await?;
        eprintln!("merged into item {}", item["id"]);
        return Ok(());
    }
    if let Some(id) = dismiss {
        app.library.dismiss_duplicate(user, id).await?;
        eprintln!("dismissed {id}");
        return Ok(());
    }
    let dups = app.library.duplicates(user, false).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&dups)?);
        return Ok(());
    }
    for d in dups {
        println!(
            "{}\t{} \"{}\" ({})\t{} \"{}\" ({})\t{}",
            d.id,
            d.a.id,
            d.a.title,
            d.a.authors.join(", "),
            d.b.id,
            d.b.title,
            d.b.authors.join(", "),
            d.reason["reason"]["kind"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}
