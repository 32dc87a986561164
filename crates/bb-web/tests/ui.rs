//! The web app through the real router: sign-in and the first-run page, redirects when
//! signed out, CSRF on every state change, escaping of hostile text, and each page's
//! forms doing what they say.
#![allow(clippy::unwrap_used)]

mod common;
mod ui_support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::app;
use ui_support::{
    GOODREADS, HOSTILE_REVIEW, HOSTILE_TITLE, get, hardcover_app, hidden, post_form, seed_conflict,
    seed_hostile, seed_possible_duplicate, send, sign_in,
};

const PAGES: [&str; 8] = [
    "/",
    "/library",
    "/library/1",
    "/library/duplicates",
    "/import",
    "/activity",
    "/settings",
    "/connections",
];

#[tokio::test]
async fn signed_out_pages_lead_to_login() {
    let app = app().await;
    for path in PAGES {
        let res = send(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.location(), "/login", "{path}");
    }
    // A stale or forged cookie is no better.
    let res = get(&app, "/library", "bb_session=forged").await;
    assert_eq!(res.location(), "/login");
    // Signed in, `/` leads to the library and every page renders.
    let s = sign_in(&app, "alice", "correct horse").await;
    assert_eq!(get(&app, "/", &s.cookie).await.location(), "/library");
    for path in PAGES.iter().filter(|p| **p != "/" && **p != "/library/1") {
        let res = get(&app, path, &s.cookie).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        assert_eq!(
            res.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(res.body.contains("alice"), "{path} shows who is signed in");
    }
}

#[tokio::test]
async fn first_run_explains_the_one_command() {
    let app = app().await;
    app.state.accounts.delete_user("alice").await.unwrap();
    let res = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.body.contains("bookbridge user add NAME"),
        "{}",
        res.body
    );
    assert!(
        !res.body.contains("type=\"password\""),
        "no sign-in form without users"
    );
}

/// One try at the sign-in form as alice.
async fn attempt(
    app: &common::TestApp,
    cookie: &str,
    token: &str,
    password: &str,
) -> ui_support::Page {
    let fields = [
        ("csrf", token),
        ("username", "alice"),
        ("password", password),
    ];
    post_form(app, "/login", cookie, &fields).await
}

#[tokio::test]
async fn sign_in_uses_the_api_session_and_its_throttle() {
    let app = app().await;
    let form = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let token = hidden(&form.body, "csrf").unwrap();
    let cookie = format!("bb_login_csrf={token}");

    // Without the form's token, or with another one, nothing is checked at all.
    for fields in [
        vec![("username", "alice"), ("password", "correct horse")],
        vec![
            ("csrf", "0000"),
            ("username", "alice"),
            ("password", "correct horse"),
        ],
    ] {
        let res = post_form(&app, "/login", &cookie, &fields).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert!(
            !res.headers.contains_key(header::SET_COOKIE)
                || !res.headers[header::SET_COOKIE]
                    .to_str()
                    .unwrap()
                    .starts_with("bb_session=")
        );
    }

    let wrong = attempt(&app, &cookie, &token, "nope nope").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("username or password is wrong"));

    let s = sign_in(&app, "alice", "correct horse").await;
    assert_eq!(
        app.me_status(&s.cookie).await,
        StatusCode::OK,
        "the API takes the same cookie"
    );

    // Sign out: the session ends on the server.
    let out = post_form(&app, "/logout", &s.cookie, &[("csrf", &s.csrf)]).await;
    assert_eq!(out.location(), "/login");
    assert_eq!(app.me_status(&s.cookie).await, StatusCode::UNAUTHORIZED);

    // The accounts use-case throttles the form like the API.
    for _ in 0..10 {
        attempt(&app, &cookie, &token, "nope nope").await;
    }
    let throttled = attempt(&app, &cookie, &token, "correct horse").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn every_state_change_needs_the_session_token() {
    let app = app().await;
    let item = seed_conflict(&app).await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let other = sign_in(&app, "alice", "correct horse").await;
    assert_ne!(s.csrf, other.csrf, "the token is per session");
    let posts = [
        "/logout".to_owned(),
        "/settings/tokens".to_owned(),
        "/settings/password".to_owned(),
        "/settings/export".to_owned(),
        "/settings/delete".to_owned(),
        "/settings/tokens/1/revoke".to_owned(),
        format!("/library/{item}/edit"),
        format!("/library/{item}/choose"),
        format!("/library/{item}/merge"),
        format!("/library/{item}/split"),
        "/library/duplicates/1".to_owned(),
        "/import/1/undo".to_owned(),
    ];
    for path in &posts {
        for bad in [None, Some("deadbeef"), Some(other.csrf.as_str())] {
            let mut fields = vec![
                ("name", "sneaky"),
                ("title", "Hijacked"),
                ("field", "title"),
                ("value", "\"Hijacked\""),
                ("password", "correct horse"),
                ("understood", "yes"),
            ];
            if let Some(t) = bad {
                fields.push(("csrf", t));
            }
            let res = post_form(&app, path, &s.cookie, &fields).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{path} with {bad:?}");
        }
    }
    // Nothing happened: still signed in, no token, the title untouched, alice exists.
    assert_eq!(app.me_status(&s.cookie).await, StatusCode::OK);
    assert!(
        app.state
            .accounts
            .list_tokens("alice")
            .await
            .unwrap()
            .is_empty()
    );
    let page = get(&app, &format!("/library/{item}"), &s.cookie).await;
    assert!(!page.body.contains("Hijacked"));

    // The upload form is multipart: its token is checked before any file is read.
    let boundary = "b0undary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\nTitle,Author\r\nA,B\r\n--{boundary}--\r\n"
    );
    let res = post_import(&app, &s.cookie, boundary, body).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    // A cross-site browser post is refused before the token matters.
    let res = send(
        &app,
        Request::post("/settings/tokens")
            .header(header::COOKIE, &s.cookie)
            .header("sec-fetch-site", "cross-site")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={}&name=x", s.csrf)))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(
        app.state
            .accounts
            .list_tokens("alice")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn hostile_titles_and_reviews_are_text() {
    let app = app().await;
    let item = seed_hostile(&app).await;
    let s = sign_in(&app, "alice", "correct horse").await;
    for path in ["/library".to_owned(), format!("/library/{item}")] {
        let page = get(&app, &path, &s.cookie).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
        assert!(!page.body.contains("<b>Mallory"), "{path}");
        assert!(
            page.body.contains("&lt;script&gt;") || page.body.contains("&#60;script&#62;"),
            "{path}"
        );
    }
    let page = get(&app, &format!("/library/{item}"), &s.cookie).await;
    assert!(
        page.body.contains("loved it"),
        "the review is shown, as text"
    );
    assert!(HOSTILE_TITLE.contains("<script>") && HOSTILE_REVIEW.contains("<img"));
    // And the page may not run inline script even if something slipped through.
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
}

#[tokio::test]
async fn choosing_a_conflicting_value_is_a_manual_edit_that_can_be_undone() {
    let app = app().await;
    let item = seed_conflict(&app).await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let path = format!("/library/{item}");
    let page = get(&app, &path, &s.cookie).await;
    assert!(
        page.body.contains("Dune: Deluxe Edition"),
        "the losing title is shown"
    );
    assert!(
        page.body.contains("from StoryGraph (import #"),
        "with where it came from"
    );

    let res = post_form(
        &app,
        &format!("{path}/choose"),
        &s.cookie,
        &[
            ("csrf", &s.csrf),
            ("field", "title"),
            ("value", "\"Dune: Deluxe Edition\""),
        ],
    )
    .await;
    assert_eq!(res.location(), path);
    let user = app.state.library.user_id("alice").await.unwrap();
    let v = app.state.library.get_item(user, item).await.unwrap();
    assert_eq!(v["title"], "Dune: Deluxe Edition");
    assert_eq!(v["provenance"]["title"]["source"], "manual");
    let page = get(&app, &path, &s.cookie).await;
    assert!(page.body.contains("from your edit"));

    // Only changed fields of the edit form become edits.
    let res = post_form(
        &app,
        &format!("{path}/edit"),
        &s.cookie,
        &[
            ("csrf", &s.csrf),
            ("title", "Dune: Deluxe Edition"),
            ("subtitle", ""),
            ("authors", "Frank Herbert"),
            ("status", "read"),
            ("rating", "4"),
            ("shelves", ""),
            ("progress", "50"),
        ],
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let v = app.state.library.get_item(user, item).await.unwrap();
    assert_eq!(v["progress"], 0.5);
    assert!(
        v["edits"]["rating"].is_null(),
        "an unchanged rating is not frozen: {}",
        v["edits"]
    );
    assert!(v["edits"]["progress"].is_object());
    let page = get(&app, &path, &s.cookie).await;
    assert!(page.body.contains("50% read"), "progress on the item page");

    // Handing the title back to the sources.
    post_form(
        &app,
        &format!("{path}/choose"),
        &s.cookie,
        &[("csrf", &s.csrf), ("field", "title"), ("revert", "1")],
    )
    .await;
    let v = app.state.library.get_item(user, item).await.unwrap();
    assert_eq!(v["title"], "Dune");
}

#[tokio::test]
async fn split_and_merge_by_hand() {
    let app = app().await;
    let item = seed_conflict(&app).await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let user = app.state.library.user_id("alice").await.unwrap();
    let sources = app.state.library.item_sources(user, item).await.unwrap();
    let sg = sources.iter().find(|x| x.provider == "storygraph").unwrap();
    let res = post_form(
        &app,
        &format!("/library/{item}/split"),
        &s.cookie,
        &[("csrf", &s.csrf), ("source", &sg.id.to_string())],
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let new_path = res.location().to_owned();
    assert_ne!(new_path, format!("/library/{item}"));
    assert_eq!(app.state.library.all_items(user).await.unwrap().len(), 2);
    let new_id = new_path.trim_start_matches("/library/").to_owned();

    let res = post_form(
        &app,
        &format!("/library/{item}/merge"),
        &s.cookie,
        &[("csrf", &s.csrf), ("other", &format!("#{new_id}"))],
    )
    .await;
    assert_eq!(res.location(), format!("/library/{item}"));
    assert_eq!(app.state.library.all_items(user).await.unwrap().len(), 1);
    assert_eq!(
        get(&app, &new_path, &s.cookie).await.status,
        StatusCode::NOT_FOUND
    );
}

/// `POST /import` with a multipart `body` cut by `boundary`.
async fn post_import(
    app: &common::TestApp,
    cookie: &str,
    boundary: &str,
    body: impl Into<Body>,
) -> ui_support::Page {
    send(
        app,
        Request::post("/import")
            .header(header::COOKIE, cookie)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body.into())
            .unwrap(),
    )
    .await
}

async fn upload(
    app: &common::TestApp,
    cookie: &str,
    csrf: &str,
    name: &str,
    bytes: &[u8],
) -> ui_support::Page {
    let boundary = "bookbridge-ui-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    post_import(app, cookie, boundary, body).await
}

#[tokio::test]
async fn import_shows_format_and_summary_and_undo_withdraws_it() {
    let app = app().await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let file = std::fs::read(GOODREADS).unwrap();
    let res = upload(&app, &s.cookie, &s.csrf, "export.csv", &file).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let done = res.location().to_owned();
    assert!(done.starts_with("/import?done="), "{done}");
    let page = get(&app, &done, &s.cookie).await;
    assert!(
        page.body.contains("Goodreads CSV"),
        "the detected format is shown"
    );
    assert!(page.body.contains("Imported export.csv"));

    let user = app.state.library.user_id("alice").await.unwrap();
    assert!(!app.state.library.all_items(user).await.unwrap().is_empty());
    let library = get(&app, "/library", &s.cookie).await;
    assert!(library.body.contains("class=\"card\""));

    let batch = done.trim_start_matches("/import?done=");
    let res = post_form(
        &app,
        &format!("/import/{batch}/undo"),
        &s.cookie,
        &[("csrf", &s.csrf)],
    )
    .await;
    assert_eq!(res.location(), "/import");
    assert!(app.state.library.all_items(user).await.unwrap().is_empty());
    assert!(
        get(&app, "/import", &s.cookie)
            .await
            .body
            .contains("undone")
    );

    // A file that is no export: said on the page, with its name.
    let res = upload(&app, &s.cookie, &s.csrf, "notes.txt", b"just some words").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body.contains("notes.txt</strong> was not imported"),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn a_large_upload_shows_its_job_progress_then_the_summary_with_every_failed_row() {
    let app = app().await.with_inline_max(1024);
    let s = sign_in(&app, "alice", "correct horse").await;
    let mut file = std::fs::read(GOODREADS).unwrap();
    if !file.ends_with(b"\n") {
        file.push(b'\n');
    }
    file.extend_from_slice(b",,Nobody,,,,,0,0,,,,,,,,,,read,,,,0,0\n");
    let rows = String::from_utf8_lossy(&file).lines().count() - 1;
    let res = upload(&app, &s.cookie, &s.csrf, "big.csv", &file).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let done = res.location().to_owned();
    let id = done.trim_start_matches("/import?done=").to_owned();

    // Queued: the bar, what it waits for, the script that follows it, and a self-refresh
    // for a browser without script.
    let page = get(&app, &done, &s.cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Importing big.csv"), "{}", page.body);
    assert!(page.body.contains(&format!("data-import-job=\"{id}\"")));
    assert!(page.body.contains("<progress class=\"job\""));
    assert!(
        page.body.contains("Waiting to start (2.3 KiB)"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<script src=\"/static/import.js\" defer></script>")
    );
    assert!(
        page.body
            .contains("<noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript>")
    );
    let past = get(&app, "/import", &s.cookie).await;
    assert!(
        past.body
            .contains(&format!("<a href=\"/import?done={id}\">importing…</a>"))
    );
    assert!(
        !past.body.contains("http-equiv"),
        "only a page following a job refreshes"
    );
    let user = app.state.library.user_id("alice").await.unwrap();
    assert!(app.state.library.all_items(user).await.unwrap().is_empty());

    // The script polls the API with the page's own session.
    let script = get(&app, "/static/import.js", &s.cookie).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("\"/api/imports/\""));
    let api = get(&app, &format!("/api/imports/{id}"), &s.cookie).await;
    assert_eq!(api.status, StatusCode::OK);
    assert!(
        api.body.contains("\"job_state\":\"queued\""),
        "{}",
        api.body
    );

    // The job runs (as `serve`'s runner would): the same address now has the summary,
    // the failed row with its number and why, and no longer refreshes.
    let report = app.job_runner().step().await.unwrap().unwrap();
    assert!(
        matches!(report.outcome, bb_jobs::StepOutcome::Succeeded(_)),
        "{report:?}"
    );
    let page = get(&app, &done, &s.cookie).await;
    assert!(page.body.contains("Imported big.csv"), "{}", page.body);
    assert!(
        page.body.contains(&format!("<strong>{rows}</strong> rows")),
        "{}",
        page.body
    );
    assert!(page.body.contains("<strong>1</strong> failed"));
    assert!(
        page.body
            .contains("the row has neither a Title nor a Book Id")
    );
    assert!(!page.body.contains("data-import-job") && !page.body.contains("http-equiv"));
    assert!(!app.state.library.all_items(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn several_files_in_one_form_each_import_inline_or_as_a_job() {
    let app = app().await.with_inline_max(1024);
    let s = sign_in(&app, "alice", "correct horse").await;
    let small = std::fs::read(format!("{REAL}goodreads/goodreads.csv")).unwrap();
    let large = std::fs::read(GOODREADS).unwrap();
    assert!(small.len() <= 1024 && large.len() > 1024);
    let boundary = "bookbridge-ui-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n",
        s.csrf
    )
    .into_bytes();
    for (name, bytes) in [("small.csv", &small), ("large.csv", &large)] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let res = post_import(&app, &s.cookie, boundary, body).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let ids: Vec<&str> = res
        .location()
        .trim_start_matches("/import?done=")
        .split(',')
        .collect();
    assert_eq!(ids.len(), 2, "{}", res.location());
    let page = get(&app, res.location(), &s.cookie).await;
    assert!(page.body.contains("Imported small.csv"), "{}", page.body);
    assert!(page.body.contains("Importing large.csv"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("data-import-job=\"{}\"", ids[1]))
    );
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test]
async fn the_library_filters_by_rating_from_a_labelled_select() {
    let app = app().await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let file = std::fs::read(GOODREADS).unwrap();
    let res = upload(&app, &s.cookie, &s.csrf, "export.csv", &file).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);

    let all = get(&app, "/library", &s.cookie).await;
    assert!(all.body.contains("<label for=\"rating\">Rating</label>"));
    assert!(all.body.contains("<select id=\"rating\" name=\"rating\">"));
    assert!(
        all.body
            .contains("<option value=\"4\">4 stars or more</option>")
    );

    // Five stars: every card shown says so, and the choice stays selected.
    let five_stars = get(&app, "/library?rating=5", &s.cookie).await;
    assert_eq!(five_stars.status, StatusCode::OK);
    let cards = count(&five_stars.body, "class=\"card\"");
    assert!(cards > 0, "the fixture has five-star books");
    assert_eq!(count(&five_stars.body, "title=\"5 stars\""), cards);
    assert!(
        five_stars
            .body
            .contains("<option value=\"5\" selected>5 stars</option>")
    );
    assert!(
        five_stars.body.contains("match"),
        "the count says it is filtered"
    );

    // A hand-set 3.5 counts exactly: among "3 stars or more", not "4 stars or more".
    let gaules = ui_support::alices_items(&app)
        .await
        .into_iter()
        .find(|i| i["title"] == "La guerre des Gaules")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let edited = app
        .call(
            "PATCH",
            &format!("/api/library/{gaules}"),
            &s.cookie,
            Some(&serde_json::json!({"rating": 3.5})),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let four = get(&app, "/library?rating=4", &s.cookie).await;
    assert_eq!(count(&four.body, "class=\"card\""), cards);
    assert!(!four.body.contains("La guerre des Gaules"));
    let three = get(&app, "/library?rating=3", &s.cookie).await;
    assert_eq!(count(&three.body, "class=\"card\""), cards + 1);
    assert!(three.body.contains("title=\"3.5 stars\""), "{}", three.body);

    // Not rated: cards without stars.
    let unrated = get(&app, "/library?rating=unrated", &s.cookie).await;
    assert!(count(&unrated.body, "class=\"card\"") > 0);
    assert!(!unrated.body.contains("class=\"stars\""));

    // The pager keeps the filter.
    if let Some(at) = unrated.body.find("rel=\"next\"") {
        let link = &unrated.body[..at];
        let href = &link[link.rfind("href=\"").unwrap()..];
        assert!(href.contains("rating=unrated"), "{href}");
    }

    // The other filters, alone and combined with it.
    let all_cards = count(&all.body, "class=\"card\"");
    let read = get(&app, "/library?status=read", &s.cookie).await;
    let read_cards = count(&read.body, "class=\"card\"");
    assert!(read_cards > 0 && read_cards < all_cards);
    assert_eq!(
        count(&read.body, "<span class=\"pill\">Read</span>"),
        read_cards
    );
    assert!(
        read.body
            .contains("<option value=\"read\" selected>Read</option>")
    );
    let goodreads = get(&app, "/library?source=goodreads", &s.cookie).await;
    assert_eq!(count(&goodreads.body, "class=\"card\""), all_cards);
    let kindle = get(&app, "/library?source=kindle", &s.cookie).await;
    assert!(kindle.body.contains("No book matches"));
    let both = get(
        &app,
        "/library?status=read&rating=5&source=goodreads",
        &s.cookie,
    )
    .await;
    let both_cards = count(&both.body, "class=\"card\"");
    assert!(both_cards > 0 && both_cards <= cards.min(read_cards));
    assert_eq!(
        count(&both.body, "<span class=\"pill\">Read</span>"),
        both_cards
    );

    // A hand-made address with a bad rating says what was wrong.
    let bad = get(&app, "/library?rating=lots", &s.cookie).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("`lots`"), "{}", bad.body);
}

#[tokio::test]
async fn settings_tokens_and_export() {
    let app = app().await;
    let s = sign_in(&app, "alice", "correct horse").await;

    let res = post_form(
        &app,
        "/settings/tokens",
        &s.cookie,
        &[("csrf", &s.csrf), ("name", "laptop")],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    let at = res.body.find("bbpat_").unwrap();
    let token = res.body[at..at + 49].to_owned();
    assert!(token.starts_with("bbpat_"));
    let me = app
        .get(
            "/api/me",
            Some(("authorization", &format!("Bearer {token}"))),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "the shown token works");
    let listed = get(&app, "/settings", &s.cookie).await;
    assert!(listed.body.contains("laptop"));
    assert!(!listed.body.contains(&token), "shown once");
    let id = app.state.accounts.list_tokens("alice").await.unwrap()[0].id;
    let res = post_form(
        &app,
        &format!("/settings/tokens/{id}/revoke"),
        &s.cookie,
        &[("csrf", &s.csrf)],
    )
    .await;
    assert_eq!(res.location(), "/settings?done=revoked");
    assert!(
        app.state
            .accounts
            .list_tokens("alice")
            .await
            .unwrap()
            .is_empty()
    );

    // Export asks for the password again.
    let mut res = None;
    for (password, status) in [
        ("wrong one", StatusCode::UNAUTHORIZED),
        ("correct horse", StatusCode::OK),
    ] {
        let fields = [
            ("csrf", s.csrf.as_str()),
            ("format", "json"),
            ("password", password),
        ];
        let r = post_form(&app, "/settings/export", &s.cookie, &fields).await;
        assert_eq!(r.status, status);
        res = Some(r);
    }
    let res = res.unwrap();
    assert!(
        res.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert!(res.body.contains("bookbridge-json"));
    // The Goodreads-importable CSV, from the same form.
    let fields = [
        ("csrf", s.csrf.as_str()),
        ("format", "goodreads-csv"),
        ("password", "correct horse"),
    ];
    let csv = post_form(&app, "/settings/export", &s.cookie, &fields).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains(".csv")
    );
    assert!(csv.body.starts_with("Book Id,Title,Author"), "{}", csv.body);
}

#[tokio::test]
async fn password_change_and_account_deletion() {
    let app = app().await;
    let s = sign_in(&app, "alice", "correct horse").await;

    // Password change: the old one stops working, this browser stays signed in.
    let res = post_form(
        &app,
        "/settings/password",
        &s.cookie,
        &[
            ("csrf", &s.csrf),
            ("current", "correct horse"),
            ("new", "battery staple"),
            ("confirm", "battery staple"),
        ],
    )
    .await;
    assert_eq!(res.location(), "/settings?done=password");
    assert_eq!(
        app.me_status(&s.cookie).await,
        StatusCode::UNAUTHORIZED,
        "old sessions end"
    );
    let fresh = res.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = get(&app, "/settings?done=password", &fresh).await;
    assert!(page.body.contains("Your password was changed"));
    let csrf = hidden(&page.body, "csrf").unwrap();

    // Deleting asks for the password and a tick, and explains what goes.
    assert!(page.body.contains("Your encryption key is destroyed"));
    let cases: [(&[(&str, &str)], StatusCode); 3] = [
        (&[("password", "battery staple")], StatusCode::BAD_REQUEST),
        (
            &[("password", "correct horse"), ("understood", "yes")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            &[("password", "battery staple"), ("understood", "yes")],
            StatusCode::SEE_OTHER,
        ),
    ];
    let mut res = None;
    for (fields, status) in cases {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let r = post_form(&app, "/settings/delete", &fresh, &all).await;
        assert_eq!(r.status, status);
        res = Some(r);
    }
    let res = res.unwrap();
    assert_eq!(res.location(), "/login");
    assert!(app.state.accounts.list_users().await.unwrap().is_empty());
}

#[tokio::test]
async fn activity_lists_the_audit_log() {
    let app = app().await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let page = get(&app, "/activity", &s.cookie).await;
    assert!(page.body.contains("Signed in"));
    assert!(
        page.body
            .contains("<time datetime=\"2026-05-01T12:00:00Z\">2026-05-01 12:00 UTC</time>"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn possible_duplicates_are_confirmed_or_dismissed() {
    let app = app().await;
    let merge = seed_possible_duplicate(&app, "Mistborn", "The Well of Ascension").await;
    let keep = seed_possible_duplicate(&app, "Warbreaker", "A Tale of Nalthis").await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let user = app.state.library.user_id("alice").await.unwrap();
    assert_eq!(app.state.library.all_items(user).await.unwrap().len(), 4);

    let library = get(&app, "/library", &s.cookie).await;
    assert!(library.body.contains("2 possible duplicates to review"));
    let page = get(&app, "/library/duplicates", &s.cookie).await;
    assert!(
        page.body.contains("Mistborn: The Well of Ascension") && page.body.contains("Warbreaker")
    );

    let path = |id: i64| format!("/library/duplicates/{id}");
    let res = post_form(
        &app,
        &path(merge),
        &s.cookie,
        &[("csrf", &s.csrf), ("action", "confirm")],
    )
    .await;
    assert!(
        res.location().starts_with("/library/"),
        "to the merged item"
    );
    let res = post_form(
        &app,
        &path(keep),
        &s.cookie,
        &[("csrf", &s.csrf), ("action", "dismiss")],
    )
    .await;
    assert_eq!(res.location(), "/library/duplicates");

    assert_eq!(
        app.state.library.all_items(user).await.unwrap().len(),
        3,
        "one pair merged, one kept apart"
    );
    assert!(
        get(&app, "/library/duplicates", &s.cookie)
            .await
            .body
            .contains("Nothing to review")
    );
}

/// The activity page lists each sync attempt of the connection `id`: the first sync
/// (queued by linking) finishes with its counts; then one whose provider fails says why.
async fn sync_history_on_activity(
    app: &common::TestApp,
    fake: &bb_testkit::hardcover::FakeHardcover,
    cookie: &str,
    id: &str,
) {
    let runner = app.job_runner();
    runner.drain().await.unwrap();
    fake.fail_next(bb_testkit::hardcover::Failure::Status503);
    app.state
        .connections
        .sync_now(
            app.state.library.user_id("alice").await.unwrap(),
            bb_core::ids::ConnectionId(id.parse().unwrap()),
        )
        .await
        .unwrap();
    runner.step().await.unwrap().unwrap();
    let activity = get(app, "/activity", cookie).await;
    let at = activity
        .body
        .find(&format!("id=\"syncs-{id}\""))
        .expect("a sync history section for the connection");
    let history = &activity.body[at..activity.body[at..].find("</section>").unwrap() + at];
    assert!(history.contains("Hardcover · reader"), "{history}");
    assert!(
        history.contains("<td>Finished</td>") && history.contains(" new, "),
        "{history}"
    );
    assert!(history.contains("Failed, will try again: "), "{history}");
    let api = app
        .call("GET", &format!("/api/connections/{id}/syncs"), cookie, None)
        .await;
    let runs = api.body.as_array().unwrap().len();
    assert!(runs >= 2, "{}", api.body);
    assert_eq!(
        history.matches("<tr>").count() - 1,
        runs,
        "the same runs as the API's: {history}"
    );
}

#[tokio::test]
async fn hardcover_is_connected_synced_and_disconnected_from_its_card() {
    let (app, fake) = hardcover_app().await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let page = get(&app, "/connections", &s.cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("id=\"provider-hardcover\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("name=\"token\" type=\"password\""));

    let connect = [("provider", "hardcover"), ("token", "hc-test-token")];
    let res = post_form(&app, "/connections/connect", &s.cookie, &connect).await;
    assert_eq!(
        res.status,
        StatusCode::FORBIDDEN,
        "no CSRF token, no connection"
    );

    let mut fields = vec![("csrf", s.csrf.as_str())];
    fields.extend_from_slice(&connect);
    let res = post_form(&app, "/connections/connect", &s.cookie, &fields).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let id = res
        .location()
        .trim_start_matches("/connections?connected=")
        .to_owned();
    let page = get(&app, res.location(), &s.cookie).await;
    assert!(page.body.contains(&format!("id=\"connection-{id}\"")));
    assert!(
        page.body.contains("Connected") && page.body.contains("reader"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("hc-test-token"),
        "the token is never shown"
    );

    let csrf = [("csrf", s.csrf.as_str())];
    let res = post_form(&app, &format!("/connections/{id}/sync"), &s.cookie, &csrf).await;
    assert_eq!(res.location(), "/connections?done=sync");

    sync_history_on_activity(&app, &fake, &s.cookie, &id).await;

    let res = post_form(
        &app,
        &format!("/connections/{id}/settings"),
        &s.cookie,
        &[
            ("csrf", &s.csrf),
            ("write_back", "on"),
            ("sync_every_hours", "12"),
        ],
    )
    .await;
    assert_eq!(res.location(), "/connections?done=saved");
    let user = app.state.library.user_id("alice").await.unwrap();
    let listed = app.state.connections.list(user).await.unwrap();
    assert!(listed[0].settings.write_back);
    assert_eq!(listed[0].settings.sync_every_hours, Some(12));

    // Disconnect says what happens to the data; without a choice nothing happens.
    let path = format!("/connections/{id}/disconnect");
    assert_eq!(
        post_form(&app, &path, &s.cookie, &csrf).await.status,
        StatusCode::BAD_REQUEST
    );
    let res = post_form(
        &app,
        &path,
        &s.cookie,
        &[("csrf", &s.csrf), ("data", "delete")],
    )
    .await;
    assert_eq!(res.location(), "/connections?done=disconnected");
    let activity = get(&app, "/activity", &s.cookie).await;
    assert!(
        activity.body.contains("Account connected")
            && activity.body.contains("Hardcover (connection #")
    );
    assert!(
        activity.body.contains("Account disconnected"),
        "{}",
        activity.body
    );
    assert!(
        activity.body.contains("Hardcover · reader (disconnected)"),
        "its sync history stays, marked: {}",
        activity.body
    );
    let page = get(&app, "/connections?done=disconnected", &s.cookie).await;
    assert!(!page.body.contains(&format!("id=\"connection-{id}\"")));
}

#[tokio::test]
async fn audible_is_linked_by_pasting_the_landing_address() {
    let (app, fake) = ui_support::audible_app().await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let page = get(&app, "/connections", &s.cookie).await;
    assert!(page.body.contains("name=\"marketplace\""), "{}", page.body);

    let fields = [
        ("csrf", s.csrf.as_str()),
        ("provider", "audible"),
        ("marketplace", "us"),
    ];
    let next = post_form(&app, "/connections/connect", &s.cookie, &fields).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
    assert!(next.body.contains("bookbridge never sees your password"));
    assert!(
        next.body
            .contains("It appears there as “Anna’s Audible for iPhone”, with your own first name"),
        "what the device will be called in Amazon's list: {}",
        next.body
    );
    let at = next
        .body
        .find("href=\"https://www.amazon.com/ap/signin?")
        .unwrap()
        + 6;
    let url = next.body[at..at + next.body[at..].find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let action = next.body.find("action=\"/connections/").unwrap() + 8;
    let complete = next.body[action..action + next.body[action..].find('"').unwrap()].to_owned();
    assert!(complete.ends_with("/complete"), "{complete}");

    // A wrong paste is explained on the page; the right one links the account.
    let wrong = [
        ("csrf", s.csrf.as_str()),
        ("redirect_url", "https://www.amazon.com/"),
    ];
    let wrong = post_form(&app, &complete, &s.cookie, &wrong).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("maplanding"), "{}", wrong.body);
    let landing = fake.sign_in(&url).unwrap();
    let right = [
        ("csrf", s.csrf.as_str()),
        ("redirect_url", landing.as_str()),
    ];
    let done = post_form(&app, &complete, &s.cookie, &right).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = get(&app, done.location(), &s.cookie).await;
    assert!(page.body.contains("Connected"), "{}", page.body);
    audible_card_after_sync_and_when_it_needs_reconnecting(&app, &s.cookie).await;
}

/// The linked Audible card: its last sync (when, counts, result) and the next one, what
/// disconnecting tells Amazon; once the connection needs re-authorisation, a Reconnect
/// button and no Sync now.
async fn audible_card_after_sync_and_when_it_needs_reconnecting(
    app: &common::TestApp,
    cookie: &str,
) {
    use bb_core::clock::Clock;
    app.job_runner().drain().await.unwrap();
    let card = |body: &str| {
        let at = body.find("<div class=\"linked\"").unwrap();
        body[at..at + body[at..].find("</details>\n  </div>").unwrap()].to_owned()
    };
    let page = get(app, "/connections", cookie).await;
    let linked = card(&page.body);
    assert!(linked.contains("Last sync <time datetime="), "{linked}");
    assert!(linked.contains("finished: 10 new, 0 updated"), "{linked}");
    assert!(linked.contains(". Next: <time datetime="), "{linked}");
    assert!(linked.contains(">Sync now</button>"), "{linked}");
    assert!(
        linked.contains("Audible will be told to revoke bookbridge"),
        "{linked}"
    );

    let user = app.state.library.user_id("alice").await.unwrap();
    let id = app.state.connections.list(user).await.unwrap()[0].id;
    app.state
        .store
        .set_connection_state(
            id,
            bb_core::connections::ConnectionState::NeedsReauth,
            Some(("refresh_rejected", "Amazon refused the stored sign-in")),
            app.clock.now(),
        )
        .await
        .unwrap();
    let page = get(app, "/connections", cookie).await;
    let linked = card(&page.body);
    assert!(linked.contains("Needs reconnecting"), "{linked}");
    assert!(
        linked.contains("Amazon refused the stored sign-in"),
        "{linked}"
    );
    assert!(linked.contains(">Reconnect</button>"), "{linked}");
    assert!(!linked.contains(">Sync now</button>"), "{linked}");
}

#[tokio::test]
async fn a_provider_that_brings_no_books_says_so_on_its_card() {
    use bb_core::clock::Clock;
    let mut app = app().await;
    let config: bb_providers::oauth::OAuthProviderConfig = toml::from_str(
        r#"
        id = "example-id"
        name = "Example ID"
        authorize_url = "https://id.example.org/authorize"
        token_url = "https://id.example.org/token"
        client_id = "bookbridge"
        client_secret = "not used: nothing is requested"
        "#,
    )
    .unwrap();
    let clock: std::sync::Arc<dyn Clock> = app.clock.clone();
    let client = bb_providers::oauth::OAuthClient::new(
        bb_providers::http::build_client(bb_providers::http::HttpSettings::default()).unwrap(),
        clock.clone(),
    );
    let provider = bb_providers::oauth::OAuthConnector::new(
        bb_providers::oauth::OAuthProvider::from_config(config).unwrap(),
        client,
    );
    let (hardcover, _fake) = ui_support::hardcover_provider(&clock).await;
    app.state.connections =
        common::connections_with(&app, &clock, vec![hardcover, std::sync::Arc::new(provider)]);
    let s = sign_in(&app, "alice", "correct horse").await;
    let page = get(&app, "/connections", &s.cookie).await;
    let card = |id: &str| {
        let at = page.body.find(&format!("id=\"provider-{id}\"")).unwrap();
        page.body[at..at + page.body[at..].find("</section>").unwrap()].to_owned()
    };
    let generic = card("example-id");
    assert!(
        generic.contains("<strong>Brings:</strong> no books (yet): it links your account"),
        "{generic}"
    );
    assert!(!generic.contains("<strong>Brings:</strong> </p>"));
    assert!(
        card("hardcover").contains("<strong>Brings:</strong> books, "),
        "a provider with capabilities still lists them"
    );
    // A token provider's form links to where the token is made.
    assert!(
        card("hardcover").contains("Make one at <a href=\"https://"),
        "{}",
        card("hardcover")
    );
}

const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/real/"
);

/// The item page of the first of alice's items titled `title`.
async fn item_page(app: &common::TestApp, cookie: &str, title: &str) -> String {
    let item = ui_support::alices_items(app)
        .await
        .into_iter()
        .find(|i| i["title"] == title)
        .unwrap_or_else(|| panic!("no item titled {title}"));
    let page = get(app, &format!("/library/{}", item["id"]), cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    page.body
}

#[tokio::test]
async fn an_item_shows_its_read_throughs_reviews_highlights_and_notes_with_their_sources() {
    let app = app().await;
    let s = sign_in(&app, "alice", "correct horse").await;
    for file in [
        "goodreads/goodreads_library_export_one_line_modified_review.csv",
        "kindle-clippings/multiline_notes.txt",
    ] {
        let bytes = std::fs::read(format!("{REAL}{file}")).unwrap();
        let res = upload(&app, &s.cookie, &s.csrf, "export", &bytes).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{file}: {}", res.body);
    }

    let grapes = item_page(&app, &s.cookie, "The Grapes of Wrath").await;
    assert!(grapes.contains("Read-throughs"), "{grapes}");
    assert!(grapes.contains("2023-04-17"), "{grapes}");
    assert!(grapes.contains("Your review on Goodreads"), "{grapes}");
    assert!(grapes.contains("Incredible story of a family trying to survive"));

    let azkaban = item_page(&app, &s.cookie, "Harry Potter e il Prigioniero di Azkaban").await;
    assert!(azkaban.contains("Highlights and notes"), "{azkaban}");
    assert!(
        azkaban.contains("<blockquote>all’espressione</blockquote>"),
        "{azkaban}"
    );
    assert!(azkaban.contains("<strong>Note:</strong> This"), "{azkaban}");
    assert!(azkaban.contains("5170"), "where in the book: {azkaban}");
    assert!(azkaban.contains("Kindle"), "from which source: {azkaban}");
}

#[tokio::test]
async fn openlibrary_is_linked_by_username_from_its_card() {
    let (app, fake) = crate::common::openlibrary_app(4).await;
    let s = sign_in(&app, "alice", "correct horse").await;
    let page = get(&app, "/connections", &s.cookie).await;
    assert!(
        page.body.contains("id=\"provider-openlibrary\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("id=\"user-openlibrary\" name=\"username\"")
    );
    assert!(page.body.contains("make it public at"), "{}", page.body);

    // A private log: the card page again, saying what to do, and nothing linked.
    let fields = [
        ("csrf", s.csrf.as_str()),
        ("provider", "openlibrary"),
        ("username", "hermit"),
    ];
    let res = post_form(&app, "/connections/connect", &s.cookie, &fields).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert!(res.body.contains("public reading log"), "{}", res.body);
    let user = app.state.library.user_id("alice").await.unwrap();
    assert!(app.state.connections.list(user).await.unwrap().is_empty());

    let fields = [
        ("csrf", s.csrf.as_str()),
        ("provider", "openlibrary"),
        ("username", " reader "),
    ];
    let res = post_form(&app, "/connections/connect", &s.cookie, &fields).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let page = get(&app, res.location(), &s.cookie).await;
    assert!(
        page.body.contains("Connected") && page.body.contains("reader"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("nothing needs revoking"),
        "{}",
        page.body
    );

    // The log made private: the card offers to reconnect the same name once it is public.
    fake.set_public("reader", false);
    let listed = app.state.connections.list(user).await.unwrap();
    assert!(app.state.connections.run_sync(listed[0].id).await.is_err());
    let page = get(&app, "/connections", &s.cookie).await;
    assert!(page.body.contains("Needs reconnecting"), "{}", page.body);
    assert_eq!(hidden(&page.body, "username").as_deref(), Some("reader"));
    fake.set_public("reader", true);
    let fields = [
        ("csrf", s.csrf.as_str()),
        ("provider", "openlibrary"),
        ("username", "reader"),
    ];
    let res = post_form(&app, "/connections/connect", &s.cookie, &fields).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let listed = app.state.connections.list(user).await.unwrap();
    assert_eq!(listed.len(), 1, "the same connection, reconnected");
    assert_eq!(listed[0].state.as_str(), "active");
}
