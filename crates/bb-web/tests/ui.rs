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
    let res = send(
        &app,
        Request::post("/import")
            .header(header::COOKIE, &s.cookie)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
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
    send(
        app,
        Request::post("/import")
            .header(header::COOKIE, cookie)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap(),
    )
    .await
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

#[tokio::test]
async fn hardcover_is_connected_synced_and_disconnected_from_its_card() {
    let (app, _fake) = hardcover_app().await;
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
