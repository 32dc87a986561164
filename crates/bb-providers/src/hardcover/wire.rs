//! Hardcover's JSON as it arrives: GraphQL envelopes, error bodies and the rows our queries
//! select. Private to the module; lenient (every field optional, numerics as numbers or
//! strings) because the API is documented as "in flux".

// Field names mirror the API's column names (`edition.edition_format`).
#![allow(clippy::struct_field_names)]

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct GraphQlRequest<'a> {
    pub query: &'a str,
    pub variables: Value,
    #[serde(rename = "operationName")]
    pub operation_name: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct GraphQlResponse {
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub errors: Vec<GraphQlError>,
}

#[derive(Debug, Deserialize)]
pub struct GraphQlError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub extensions: Option<ErrorExtensions>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorExtensions {
    #[serde(default)]
    pub code: Option<String>,
}

/// The non-GraphQL error bodies of 400/401/403/429/5xx (dossier §5).
#[derive(Debug, Default, Deserialize)]
pub struct HttpErrorBody {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<GraphQlError>,
}

#[derive(Debug, Deserialize)]
pub struct MeData {
    /// A Hasura array relation: the user is element 0.
    #[serde(default)]
    pub me: Vec<MeUser>,
}

#[derive(Debug, Deserialize)]
pub struct MeUser {
    pub id: i64,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LibraryData {
    /// Kept as raw JSON so each record's `raw` is the item exactly as received.
    #[serde(default)]
    pub user_books: Vec<Value>,
}

#[derive(Debug, Deserialize)]
pub struct UserBook {
    pub id: i64,
    #[serde(default)]
    pub book_id: Option<i64>,
    #[serde(default)]
    pub status_id: Option<i64>,
    #[serde(default, deserialize_with = "numeric")]
    pub rating: Option<f64>,
    #[serde(default)]
    pub review_raw: Option<String>,
    #[serde(default)]
    pub reviewed_at: Option<String>,
    #[serde(default)]
    pub date_added: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub user_book_reads: Vec<UserBookRead>,
    #[serde(default)]
    pub book: Option<Book>,
    #[serde(default)]
    pub edition: Option<Edition>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserBookRead {
    pub id: i64,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default, deserialize_with = "numeric")]
    pub progress: Option<f64>,
    #[serde(default, deserialize_with = "numeric")]
    pub progress_pages: Option<f64>,
    #[serde(default, deserialize_with = "numeric")]
    pub progress_seconds: Option<f64>,
    #[serde(default)]
    pub edition_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Book {
    pub id: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub subtitle: Option<String>,
    #[serde(default, deserialize_with = "numeric")]
    pub pages: Option<f64>,
    #[serde(default)]
    pub image: Option<Image>,
    #[serde(default)]
    pub contributions: Vec<Contribution>,
    #[serde(default)]
    pub featured_book_series: Option<FeaturedSeries>,
}

#[derive(Debug, Deserialize)]
pub struct Image {
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Contribution {
    #[serde(default)]
    pub author: Option<Named>,
    /// `null` for the author; "Narrator", "Translator", "Illustrator", … otherwise.
    #[serde(default)]
    pub contribution: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Named {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct FeaturedSeries {
    #[serde(default, deserialize_with = "numeric")]
    pub position: Option<f64>,
    #[serde(default)]
    pub series: Option<Named>,
}

#[derive(Debug, Deserialize)]
pub struct Edition {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub isbn_13: Option<String>,
    #[serde(default)]
    pub isbn_10: Option<String>,
    #[serde(default)]
    pub asin: Option<String>,
    #[serde(default, deserialize_with = "numeric")]
    pub pages: Option<f64>,
    #[serde(default, deserialize_with = "numeric")]
    pub audio_seconds: Option<f64>,
    #[serde(default)]
    pub release_date: Option<String>,
    #[serde(default)]
    pub edition_format: Option<String>,
    #[serde(default)]
    pub reading_format_id: Option<i64>,
    #[serde(default)]
    pub publisher: Option<Named>,
}

/// Result of `update_user_book`, `insert_user_book_read`, …: an `error` string on failure.
#[derive(Debug, Deserialize)]
pub struct MutationResult {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ReadLookupData {
    #[serde(default)]
    pub user_books: Vec<ReadLookup>,
}

#[derive(Debug, Deserialize)]
pub struct ReadLookup {
    #[serde(default)]
    pub edition_id: Option<i64>,
    #[serde(default)]
    pub user_book_reads: Vec<UserBookRead>,
    /// The edition's length and format, to turn a progress fraction into pages or seconds.
    #[serde(default)]
    pub edition: Option<Edition>,
    #[serde(default)]
    pub book: Option<BookLength>,
}

#[derive(Debug, Deserialize)]
pub struct BookLength {
    #[serde(default, deserialize_with = "numeric")]
    pub pages: Option<f64>,
}

/// Hasura `numeric` is usually a JSON number, but may arrive as a string for precision.
fn numeric<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}
