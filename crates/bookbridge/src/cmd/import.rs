//! `bookbridge import`: parse each file (format from its content unless `--format` says
//! otherwise) and hand the rows to the library use-case; one batch per file.

use crate::app::App;
use anyhow::{Context, Result, anyhow, bail};
use bb_core::library::service::{ImportSource, ImportSummary, RowFailure, is_bookbridge_json};
use bb_importers::{ImportFormat, MAX_DOCUMENT_BYTES, detect, parse_reader};
use std::io::{IsTerminal, Read};
use std::path::Path;

pub async fn run(
    app: &App,
    user: &str,
    format: Option<&str>,
    json: bool,
    files: &[std::path::PathBuf],
) -> Result<()> {
    if files.is_empty() {
        bail!("name one or more files to import");
    }
    let user_id = app.library.user_id(user).await?;
    for path in files {
        let summary = import_file(app, user_id, format, path)
            .await
            .with_context(|| format!("cannot import {}", path.display()))?;
        if json {
            println!("{}", serde_json::to_string(&summary_json(&summary))?);
        } else {
            print_summary(path, &summary);
        }
    }
    Ok(())
}

/// Exactly the documented `--json` shape.
pub fn summary_json(s: &ImportSummary) -> serde_json::Value {
    serde_json::json!({
        "batch_id": s.batch_id.0,
        "format": s.format,
        "rows": s.rows,
        "created": s.created,
        "merged": s.merged,
        "updated": s.updated,
        "unchanged": s.unchanged,
        "failed": s.failed,
        "errors": s.errors.iter().map(|e| serde_json::json!({"row": e.row, "message": e.message})).collect::<Vec<_>>(),
    })
}

fn print_summary(path: &Path, s: &ImportSummary) {
    println!(
        "{}: batch {} ({}): {} rows, {} created, {} merged, {} updated, {} unchanged, {} failed",
        path.display(),
        s.batch_id,
        s.format,
        s.rows,
        s.created,
        s.merged,
        s.updated,
        s.unchanged,
        s.failed
    );
    for e in &s.errors {
        println!("  row {}: {}", e.row, e.message);
    }
}

fn head_of(path: &Path) -> Result<Vec<u8>> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(bb_importers::format::DETECT_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

async fn import_file(
    app: &App,
    user: bb_core::ids::UserId,
    format: Option<&str>,
    path: &Path,
) -> Result<ImportSummary> {
    let label = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let head = head_of(path)?;
    let wants_own = format.is_some_and(|f| f.eq_ignore_ascii_case("bookbridge-json"));
    if wants_own || (format.is_none() && is_bookbridge_json(&head)) {
        let meta = std::fs::metadata(path)?;
        if meta.len() > MAX_DOCUMENT_BYTES * 64 {
            bail!("the file is larger than the limit for a bookbridge export");
        }
        let bytes = std::fs::read(path)?;
        return Ok(app
            .library
            .import_bookbridge_json(user, &bytes, label)
            .await?);
    }
    let format = match format {
        Some(f) => f.parse::<ImportFormat>().map_err(|e| anyhow!(e))?,
        None => detect(&head).ok_or_else(|| {
            anyhow!("not a file bookbridge recognises; name its format with --format")
        })?,
    };
    let source = ImportSource {
        format: format.as_str().into(),
        provider: format.provider().into(),
        label,
    };
    let rows: Vec<Result<bb_core::library::SourceRecord, RowFailure>>;
    let summary = if format == ImportFormat::KoboSqlite {
        rows = bb_importers::kobo::read_kobo(path)
            .await
            .map_err(|e| anyhow!(e))?
            .into_iter()
            .map(|r| r.map_err(to_failure))
            .collect();
        app.library.import(user, &source, rows.into_iter()).await?
    } else {
        let file = std::fs::File::open(path)?;
        let parsed = parse_reader(format, Box::new(std::io::BufReader::new(file)))
            .map_err(|e| anyhow!(e))?
            .map(|r| r.map_err(to_failure));
        let show = std::io::stderr().is_terminal();
        let progress = move |n: u64| {
            if show {
                eprint!("\r  {n} rows…");
            }
        };
        let s = app
            .library
            .import_with_progress(user, &source, parsed, &progress)
            .await?;
        if show {
            eprint!("\r");
        }
        s
    };
    Ok(summary)
}

fn to_failure(e: bb_importers::RowError) -> RowFailure {
    RowFailure {
        row: e.row,
        message: e.message,
    }
}
