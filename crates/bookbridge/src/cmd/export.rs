//! `bookbridge export`: the whole library as bookbridge JSON (complete, re-importable) or
//! as a Goodreads library CSV.

use crate::app::App;
use crate::cli::ExportFormat;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

pub async fn run(app: &App, user: &str, format: ExportFormat, output: Option<&Path>) -> Result<()> {
    let user = app.library.user_id(user).await?;
    let mut buf: Vec<u8> = Vec::new();
    match format {
        ExportFormat::Json => app.library.export_json(user, &mut buf).await?,
        ExportFormat::GoodreadsCsv => app.library.export_goodreads_csv(user, &mut buf).await?,
    }
    if let Some(path) = output {
        std::fs::write(path, &buf).with_context(|| format!("cannot write {}", path.display()))?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(&buf)?;
        if format == ExportFormat::Json {
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}
