//! The library pages: the list (search, filters, covers, pages), one item with where every
//! value came from and the values it beat (choose one = a manual edit, which always
//! wins), editing, merging, splitting, and possible duplicates.

use super::csrf::CheckedForm;
use super::display::{
    self, FORMATS, PROVIDERS, RATINGS, STATUSES, Stamp, origin_label, provider_label, stars,
    status_label,
};
use super::{Chrome, PageUser, UiError, render, see_other};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bb_core::ids::ItemId;
use bb_core::library::service::{DuplicateView, ItemFilter, ItemPatch, ItemSource};
use serde::Deserialize;
use serde_json::{Map, Value, json};

const PER_PAGE: u64 = 24;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    shelf: Option<String>,
    format: Option<String>,
    source: Option<String>,
    rating: Option<String>,
    page: Option<String>,
}

fn non_blank(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// One book on the list.
#[derive(Debug)]
struct Card {
    id: i64,
    title: String,
    subtitle: String,
    authors: String,
    cover: Option<String>,
    initials: String,
    status: String,
    stars: String,
    rating_label: String,
    formats: String,
    sources: String,
}

#[derive(Debug)]
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn choices(list: &[(&'static str, &'static str)], current: Option<&str>) -> Vec<Choice> {
    list.iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: current == Some(*value),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "library.html")]
struct ListPage {
    chrome: Chrome,
    cards: Vec<Card>,
    q: String,
    shelf: String,
    statuses: Vec<Choice>,
    formats: Vec<Choice>,
    sources: Vec<Choice>,
    ratings: Vec<Choice>,
    total: u64,
    page: u64,
    pages: u64,
    prev: Option<String>,
    next: Option<String>,
    filtered: bool,
    duplicates: usize,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(ToOwned::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn initials(title: &str) -> String {
    title
        .split_whitespace()
        .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .collect::<String>()
        .to_uppercase()
}

fn first_cover(item: &Value) -> Option<String> {
    item["covers"]
        .as_array()?
        .iter()
        .filter_map(|c| c["url"].as_str())
        .find(|u| u.starts_with("https://"))
        .map(ToOwned::to_owned)
}

fn card(item: &Value) -> Card {
    let title = text(&item["title"]);
    let rating = item["rating"].as_f64();
    Card {
        id: item["id"].as_i64().unwrap_or_default(),
        initials: initials(&title),
        subtitle: text(&item["subtitle"]),
        authors: strings(&item["authors"]).join(", "),
        cover: first_cover(item),
        status: item["status"]
            .as_str()
            .map(status_label)
            .unwrap_or_default(),
        stars: stars(rating),
        rating_label: rating.map(display::stars_label).unwrap_or_default(),
        formats: strings(&item["formats"])
            .iter()
            .map(|f| display::book_format_label(f))
            .collect::<Vec<_>>()
            .join(", "),
        sources: {
            let mut p: Vec<String> = item["sources"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s["provider"].as_str().map(provider_label))
                        .collect()
                })
                .unwrap_or_default();
            p.dedup();
            p.join(", ")
        },
        title,
    }
}

fn page_url(q: &ListQuery, page: u64) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("q", &q.q),
        ("status", &q.status),
        ("shelf", &q.shelf),
        ("format", &q.format),
        ("source", &q.source),
        ("rating", &q.rating),
    ] {
        if let Some(v) = non_blank(v.as_ref()) {
            s.append_pair(k, &v);
        }
    }
    s.append_pair("page", &page.to_string());
    format!("/library?{}", s.finish())
}

pub async fn list(
    State(state): State<AppState>,
    user: PageUser,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    let page = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    let rating = non_blank(q.rating.as_ref());
    let filter = ItemFilter {
        status: non_blank(q.status.as_ref()),
        rating: rating.as_deref().map(str::parse).transpose()?,
        shelf: non_blank(q.shelf.as_ref()),
        format: non_blank(q.format.as_ref()),
        source: non_blank(q.source.as_ref()),
        search: non_blank(q.q.as_ref()),
        page: Some(page),
        per_page: Some(PER_PAGE),
    };
    let filtered = filter.status.is_some()
        || filter.shelf.is_some()
        || filter.format.is_some()
        || filter.source.is_some()
        || filter.rating.is_some()
        || filter.search.is_some();
    let result = state.library.list_items(user.user.id, &filter).await?;
    let duplicates = state.library.duplicates(user.user.id, false).await?.len();
    let pages = result.total.div_ceil(PER_PAGE).max(1);
    let view = ListPage {
        chrome: Chrome::new(&user, "library"),
        cards: result.items.iter().map(card).collect(),
        q: filter.search.clone().unwrap_or_default(),
        shelf: filter.shelf.clone().unwrap_or_default(),
        statuses: choices(&STATUSES, filter.status.as_deref()),
        formats: choices(&FORMATS, filter.format.as_deref()),
        sources: choices(&PROVIDERS, filter.source.as_deref()),
        ratings: choices(&RATINGS, rating.as_deref()),
        total: result.total,
        page,
        pages,
        prev: (page > 1).then(|| page_url(&q, page - 1)),
        next: (page < pages).then(|| page_url(&q, page + 1)),
        filtered,
        duplicates,
    };
    Ok(render(StatusCode::OK, &view))
}

/// A value that lost to the shown one.
#[derive(Debug)]
struct AltRow {
    text: String,
    origin: String,
    at: Option<Stamp>,
    /// The value as JSON, for the "use this" form; `None` when it cannot be chosen.
    choose: Option<String>,
}

/// One resolved field with its provenance.
#[derive(Debug)]
struct FieldRow {
    key: &'static str,
    label: &'static str,
    text: String,
    origin: String,
    at: Option<Stamp>,
    manual: bool,
    editable: bool,
    alternatives: Vec<AltRow>,
}

#[derive(Debug)]
struct ReadRow {
    started: String,
    finished: String,
    sources: String,
}

#[derive(Debug)]
struct NoteRow {
    text: String,
    note: String,
    location: String,
    source: String,
    at: Option<Stamp>,
}

#[derive(Debug)]
struct ReviewRow {
    text: String,
    source: String,
    at: Option<Stamp>,
}

#[derive(Debug)]
struct SourceRow {
    id: i64,
    provider: String,
    external_id: String,
    title: String,
    origin: String,
}

#[derive(Template)]
#[template(path = "item.html")]
struct ItemPage {
    chrome: Chrome,
    id: i64,
    title: String,
    subtitle: String,
    authors: String,
    cover: Option<String>,
    initials: String,
    fields: Vec<FieldRow>,
    identifiers: Vec<(String, String)>,
    formats: String,
    progress: String,
    reads: Vec<ReadRow>,
    ratings: Vec<ReviewRow>,
    reviews: Vec<ReviewRow>,
    highlights: Vec<NoteRow>,
    sources: Vec<SourceRow>,
    can_split: bool,
    edit_title: String,
    edit_subtitle: String,
    edit_authors: String,
    edit_shelves: String,
    edit_progress: String,
    edit_statuses: Vec<Choice>,
    edit_ratings: Vec<(String, String, bool)>,
}

/// How one field's value reads.
fn field_text(key: &str, v: &Value) -> String {
    match key {
        "status" => v.as_str().map(status_label).unwrap_or_default(),
        "rating" => v.as_f64().map(display::stars_label).unwrap_or_default(),
        "progress" => v
            .as_f64()
            .map(|f| format!("{}%", (f * 100.0).round()))
            .unwrap_or_default(),
        "series" => v
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        match s["position"]
                            .as_str()
                            .map(ToOwned::to_owned)
                            .or_else(|| s["position"].as_f64().map(|p| p.to_string()))
                        {
                            Some(p) => format!("{} #{p}", text(&s["name"])),
                            None => text(&s["name"]),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default(),
        _ => match v {
            Value::String(s) => s.clone(),
            Value::Array(_) => strings(v).join(", "),
            Value::Null => String::new(),
            other => other.to_string(),
        },
    }
}

const FIELDS: [(&str, &str, bool); 11] = [
    ("title", "Title", true),
    ("subtitle", "Subtitle", true),
    ("authors", "Authors", true),
    ("narrators", "Narrators", false),
    ("translators", "Translators", false),
    ("series", "Series", false),
    ("status", "Status", true),
    ("rating", "Your rating", true),
    ("progress", "Progress", true),
    ("shelves", "Shelves", true),
    ("cover", "Cover", false),
];

fn field_rows(item: &Value) -> Vec<FieldRow> {
    let prov = &item["provenance"];
    FIELDS
        .iter()
        .filter_map(|&(key, label, editable)| {
            let p = prov.get(key)?;
            let current = if key == "cover" {
                Value::String(first_cover(item).unwrap_or_default())
            } else {
                item[key].clone()
            };
            let alternatives = p["alternatives"]
                .as_array()
                .map(|alts| {
                    alts.iter()
                        .map(|a| AltRow {
                            text: field_text(key, &a["value"]),
                            origin: origin_label(&a["source"]),
                            at: a["at"].as_str().and_then(Stamp::parse),
                            choose: editable.then(|| a["value"].to_string()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(FieldRow {
                key,
                label,
                text: field_text(key, &current),
                origin: origin_label(&p["source"]),
                at: p["at"].as_str().and_then(Stamp::parse),
                manual: p["source"].as_str() == Some("manual"),
                editable,
                alternatives,
            })
        })
        .collect()
}

fn review_rows(v: &Value, text_of: impl Fn(&Value) -> String) -> Vec<ReviewRow> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| ReviewRow {
                    text: text_of(r),
                    source: provider_label(r["source"].as_str().unwrap_or_default()),
                    at: r["at"].as_str().and_then(Stamp::parse),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn read_rows(v: &Value) -> Vec<ReadRow> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| ReadRow {
                    started: text(&r["started"]),
                    finished: text(&r["finished"]),
                    sources: strings(&r["sources"])
                        .iter()
                        .map(|s| provider_label(s))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn highlight_rows(v: &Value) -> Vec<NoteRow> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|h| NoteRow {
                    text: text(&h["text"]),
                    note: text(&h["note"]),
                    location: text(&h["location"]),
                    source: provider_label(h["source"].as_str().unwrap_or_default()),
                    at: h["at"].as_str().and_then(Stamp::parse),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn item_page(user: &PageUser, item: &Value, sources: Vec<ItemSource>) -> ItemPage {
    let title = text(&item["title"]);
    let rating = item["rating"].as_f64();
    let edit_ratings = std::iter::once((String::new(), "No rating".to_owned(), rating.is_none()))
        .chain((1..=10).map(|h| {
            let v = f64::from(h) / 2.0;
            (
                v.to_string(),
                format!("{} ({})", stars(Some(v)), display::stars_label(v)),
                rating.is_some_and(|r| (r - v).abs() < 0.01),
            )
        }))
        .collect();
    let progress = item["progress"].as_f64();
    ItemPage {
        chrome: Chrome::new(user, "library"),
        id: item["id"].as_i64().unwrap_or_default(),
        initials: initials(&title),
        subtitle: text(&item["subtitle"]),
        authors: strings(&item["authors"]).join(", "),
        cover: first_cover(item),
        fields: field_rows(item),
        identifiers: item["identifiers"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.replace('_', "-").to_uppercase(), strings(v).join(", ")))
                    .collect()
            })
            .unwrap_or_default(),
        formats: strings(&item["formats"])
            .iter()
            .map(|f| display::book_format_label(f))
            .collect::<Vec<_>>()
            .join(", "),
        progress: field_text("progress", &item["progress"]),
        reads: read_rows(&item["reads"]),
        ratings: review_rows(&item["ratings"], |r| {
            r["stars"]
                .as_f64()
                .map(display::stars_label)
                .unwrap_or_default()
        }),
        reviews: review_rows(&item["reviews"], |r| text(&r["text"])),
        highlights: highlight_rows(&item["highlights"]),
        can_split: sources.len() > 1,
        sources: sources
            .into_iter()
            .map(|s| SourceRow {
                id: s.id,
                provider: provider_label(&s.provider),
                external_id: s.external_id.unwrap_or_default(),
                title: s.title,
                origin: format!(
                    "{} #{}",
                    match s.origin_kind {
                        bb_core::library::resolve::SourceKind::Batch => "import",
                        bb_core::library::resolve::SourceKind::Connection => "connection",
                    },
                    s.origin_id
                ),
            })
            .collect(),
        edit_title: title.clone(),
        edit_subtitle: text(&item["subtitle"]),
        edit_authors: strings(&item["authors"]).join("\n"),
        edit_shelves: strings(&item["shelves"]).join(", "),
        edit_progress: progress
            .map(|p| format!("{}", (p * 100.0).round()))
            .unwrap_or_default(),
        edit_statuses: choices(&STATUSES, item["status"].as_str()),
        edit_ratings,
        title,
    }
}

pub async fn item(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let value = state.library.get_item(user.user.id, ItemId(id)).await?;
    let sources = state.library.item_sources(user.user.id, ItemId(id)).await?;
    Ok(render(StatusCode::OK, &item_page(&user, &value, sources)))
}

/// Whether a submitted number is what is shown already (floats from JSON and forms).
fn same_number(new: Option<f64>, old: Option<f64>, tolerance: f64) -> bool {
    match (new, old) {
        (Some(a), Some(b)) => (a - b).abs() < tolerance,
        (None, None) => true,
        _ => false,
    }
}

fn patch_from(map: Map<String, Value>) -> Result<ItemPatch, UiError> {
    serde_json::from_value(Value::Object(map))
        .map_err(|e| UiError::BadRequest(format!("that value cannot be used: {e}")))
}

/// The edit form: only fields that differ from what is shown become manual edits, so
/// saving an untouched form does not freeze every field against future imports.
pub async fn edit(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let uid = form.user.user.id;
    let current = state.library.get_item(uid, ItemId(id)).await?;
    let mut patch = Map::new();
    let field = |n: &str| form.get(n).map(str::trim);

    if let Some(t) = field("title").filter(|t| !t.is_empty())
        && t != current["title"].as_str().unwrap_or_default()
    {
        patch.insert("title".into(), json!(t));
    }
    if let Some(s) = field("subtitle")
        && s != current["subtitle"].as_str().unwrap_or_default()
    {
        patch.insert(
            "subtitle".into(),
            if s.is_empty() { Value::Null } else { json!(s) },
        );
    }
    if let Some(a) = form.get("authors") {
        let authors: Vec<&str> = a.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if !authors.is_empty() && authors != strings(&current["authors"]) {
            patch.insert("authors".into(), json!(authors));
        }
    }
    if let Some(s) = field("status").filter(|s| !s.is_empty())
        && Some(s) != current["status"].as_str()
    {
        patch.insert("status".into(), json!(s));
    }
    if let Some(r) = field("rating") {
        let new = if r.is_empty() {
            None
        } else {
            Some(
                r.parse::<f64>()
                    .map_err(|_| UiError::BadRequest("a rating is a number of stars".into()))?,
            )
        };
        if !same_number(new, current["rating"].as_f64(), 0.01) {
            patch.insert("rating".into(), json!(new));
        }
    }
    if let Some(s) = form.get("shelves") {
        let shelves: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .collect();
        if shelves != strings(&current["shelves"]) {
            patch.insert("shelves".into(), json!(shelves));
        }
    }
    if let Some(p) = field("progress") {
        let new = if p.is_empty() {
            None
        } else {
            let pct = p.trim_end_matches('%').trim().parse::<f64>().map_err(|_| {
                UiError::BadRequest("progress is a percentage from 0 to 100".into())
            })?;
            if !(0.0..=100.0).contains(&pct) {
                return Err(UiError::BadRequest(
                    "progress is a percentage from 0 to 100".into(),
                ));
            }
            Some(pct / 100.0)
        };
        if !same_number(new, current["progress"].as_f64(), 0.005) {
            patch.insert("progress".into(), json!(new));
        }
    }
    if !patch.is_empty() {
        state
            .library
            .edit_item(uid, ItemId(id), &patch_from(patch)?)
            .await?;
    }
    Ok(see_other(&format!("/library/{id}")))
}

/// Fields a conflicting value can be chosen for (those a manual edit can set).
const CHOOSABLE: [&str; 7] = [
    "title", "subtitle", "authors", "status", "rating", "shelves", "progress",
];

/// Picks one source's value for a field (a manual edit), or hands the field back to the
/// sources (`revert`).
pub async fn choose(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let field = form.required("field", "the field")?;
    let Some(field) = CHOOSABLE.iter().find(|f| **f == field) else {
        return Err(UiError::BadRequest("that field cannot be chosen".into()));
    };
    let mut patch = Map::new();
    if form.get("revert").is_some() {
        patch.insert("revert".into(), json!([field]));
    } else {
        let value: Value = serde_json::from_str(form.required("value", "the value")?)
            .map_err(|_| UiError::BadRequest("that value cannot be used".into()))?;
        patch.insert((*field).to_owned(), value);
    }
    state
        .library
        .edit_item(form.user.user.id, ItemId(id), &patch_from(patch)?)
        .await?;
    Ok(see_other(&format!("/library/{id}")))
}

/// Merges another item (by its number) into this one.
pub async fn merge(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let other = form
        .required("other", "the other item's number")?
        .trim_start_matches('#')
        .parse::<i64>()
        .map_err(|_| UiError::BadRequest("an item number looks like 123".into()))?;
    state
        .library
        .merge_items(form.user.user.id, ItemId(id), ItemId(other))
        .await?;
    Ok(see_other(&format!("/library/{id}")))
}

/// Moves the ticked sources to a new item, and keeps the two apart from now on.
pub async fn split(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let sources = form
        .all("source")
        .iter()
        .map(|s| s.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| UiError::BadRequest("tick the sources to split off".into()))?;
    let new = state
        .library
        .split_item(form.user.user.id, ItemId(id), &sources)
        .await?;
    Ok(see_other(&format!("/library/{}", new.0)))
}

#[derive(Template)]
#[template(path = "duplicates.html")]
struct DuplicatesPage {
    chrome: Chrome,
    pairs: Vec<DuplicateView>,
}

pub async fn duplicates(
    State(state): State<AppState>,
    user: PageUser,
) -> Result<Response, UiError> {
    let pairs = state.library.duplicates(user.user.id, false).await?;
    Ok(render(
        StatusCode::OK,
        &DuplicatesPage {
            chrome: Chrome::new(&user, "library"),
            pairs,
        },
    ))
}

/// Confirm (merge the two) or dismiss (keep apart for good) a possible duplicate.
pub async fn decide_duplicate(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let uid = form.user.user.id;
    match form.get("action") {
        Some("confirm") => {
            let merged = state.library.confirm_duplicate(uid, id).await?;
            if let Some(item) = merged["id"].as_i64() {
                return Ok(see_other(&format!("/library/{item}")));
            }
        }
        Some("dismiss") => state.library.dismiss_duplicate(uid, id).await?,
        _ => return Err(UiError::BadRequest("choose confirm or dismiss".into())),
    }
    Ok(see_other("/library/duplicates"))
}
