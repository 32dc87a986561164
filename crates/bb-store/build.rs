//! `sqlx::migrate!` embeds the migration folders when the crate compiles; without this,
//! cargo does not notice a migration file being added, and a build after adding one
//! silently leaves it out.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
