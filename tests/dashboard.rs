//! The delivery dashboard through its router, in process (`tower::ServiceExt::oneshot`):
//! sign-in and the session cookie's attributes, CSRF refusals, security headers, escaping,
//! portal links (signature, expiry, owner isolation), filters kept in the URL, cursor paging,
//! retries (one and in bulk after a dry-run count), charts.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::RetryPolicy;
use hookrelay::send::{
    DispatcherHandle, Endpoint, MemoryStore, OutboundRequest, Owner, Sender, Transport,
    TransportError, TransportResponse,
};
use hookrelay::server::dashboard::{FrameAncestors, PortalCookies};
use hookrelay::server::{Dashboard, PortalLinks, Principal, Token};

const ADMIN: &str = "admin-token";

/// Echoes the handshake's challenge to URLs containing `echo`, answers `500` to URLs
/// containing `fail`, `204` to the rest.
struct Receiver;

impl Transport for Receiver {
    async fn send(&self, request: OutboundRequest) -> Result<TransportResponse, TransportError> {
        if request.url.as_str().contains("echo") {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            let mut response = TransportResponse::status(200);
            response.body = serde_json::json!({ "challenge": body["challenge"] })
                .to_string()
                .into();
            return Ok(response);
        }
        if request.url.as_str().contains("fail") {
            let mut response = TransportResponse::status(500);
            response.body = "<b>boom</b>".into();
            Ok(response)
        } else {
            Ok(TransportResponse::status(204))
        }
    }
}

struct Setup {
    app: Router,
    sender: Sender<MemoryStore>,
    links: PortalLinks,
}

fn setup_with(frames: FrameAncestors) -> Setup {
    let sender = Sender::new(MemoryStore::new());
    let dashboard = Dashboard::new(sender.clone())
        .token(Token::new(ADMIN).unwrap(), Principal::Admin)
        .key(Secret::from_raw("dashboard test key").unwrap())
        .frame_ancestors(frames);
    let links = dashboard.portal_links();
    let app = Router::new().nest("/dashboard", dashboard.router());
    Setup { app, sender, links }
}

fn setup() -> Setup {
    setup_with(FrameAncestors::None)
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `value` of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

async fn call(app: &Router, method: &str, uri: &str, cookie: Option<&str>, form: &str) -> Reply {
    call_with(app, method, uri, cookie, form, &[]).await
}

async fn call_with(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if method == "POST" {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(form.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `name=value` of a `Set-Cookie`.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// Signs in with `token`; returns the session cookie pair (`hookrelay_session=…`).
async fn sign_in(app: &Router, token: &str) -> Reply {
    let form = call(app, "GET", "/dashboard/sign-in", None, "").await;
    assert_eq!(form.status, StatusCode::OK);
    let pre = pair(&form.cookies()[0]);
    let body = format!("csrf={}&token={}", form.csrf(), enc(token));
    call(app, "POST", "/dashboard/sign-in", Some(&pre), &body).await
}

async fn operator(app: &Router) -> String {
    let reply = sign_in(app, ADMIN).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    pair(&reply.cookies()[0])
}

/// The CSRF token of a session (read from a page's form).
async fn csrf_of(app: &Router, cookie: &str) -> String {
    call(app, "GET", "/dashboard/endpoints/new", Some(cookie), "")
        .await
        .csrf()
}

async fn add(sender: &Sender<MemoryStore>, url: &str, name: &str, owner: Option<&str>) -> String {
    let mut builder = Endpoint::builder(url, Profile::StandardWebhooks)
        .secret(Secret::generate().unwrap())
        .name(name)
        .retry_policy(RetryPolicy::builder().max_attempts(1).build().unwrap());
    if let Some(owner) = owner {
        builder = builder.owner(Owner::new(owner).unwrap());
    }
    sender
        .add_endpoint(builder.build().unwrap())
        .await
        .unwrap()
        .as_str()
        .to_owned()
}

async fn publish(sender: &Sender<MemoryStore>, event_type: &str, data: serde_json::Value) {
    sender
        .publish(OutgoingEvent::new(event_type, data))
        .await
        .unwrap();
}

async fn delivered(dispatcher: &DispatcherHandle) {
    dispatcher.wait_idle(Duration::from_secs(30)).await.unwrap();
}

/// The ids of the deliveries linked from a log page, in order.
fn delivery_links(body: &str) -> Vec<String> {
    body.split("href=\"/dashboard/deliveries/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .filter(|id| {
            !id.starts_with("bulk-retry") && !id.starts_with("rows") && !id.starts_with('?')
        })
        .collect()
}

#[tokio::test]
async fn pages_need_a_session_and_sign_in_sets_a_strict_cookie() {
    let Setup { app, .. } = setup();
    let away = call(&app, "GET", "/dashboard/endpoints", None, "").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(away.header("location"), "/dashboard/sign-in");

    let wrong = sign_in(&app, "not-the-token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .cookies()
            .iter()
            .all(|c| !c.starts_with("hookrelay_session="))
    );

    let ok = sign_in(&app, ADMIN).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), "/dashboard/endpoints");
    let cookie = &ok.cookies()[0];
    assert!(cookie.starts_with("hookrelay_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(cookie.split("; ").any(|a| a == attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(
        !cookie.contains(ADMIN),
        "the token never goes in the cookie"
    );

    let page = call(&app, "GET", "/dashboard/endpoints", Some(&pair(cookie)), "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Endpoints</h1>"));

    // Behind a TLS-terminating proxy the cookie is Secure.
    let form = call(&app, "GET", "/dashboard/sign-in", None, "").await;
    let body = format!("csrf={}&token={ADMIN}", form.csrf());
    let https = call_with(
        &app,
        "POST",
        "/dashboard/sign-in",
        Some(&pair(&form.cookies()[0])),
        &body,
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert!(
        https.cookies()[0].contains("; Secure"),
        "{:?}",
        https.cookies()
    );

    // A forged or tampered cookie is no session.
    let tampered = pair(cookie).replace("hookrelay_session=a", "hookrelay_session=c");
    let refused = call(&app, "GET", "/dashboard/endpoints", Some(&tampered), "").await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_out_revokes_the_session_so_a_copied_cookie_is_refused() {
    let Setup { app, .. } = setup();
    let cookie = operator(&app).await;
    let other = operator(&app).await;
    let copy = cookie.clone();
    let csrf = csrf_of(&app, &cookie).await;
    let out = call(
        &app,
        "POST",
        "/dashboard/sign-out",
        Some(&cookie),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), "/dashboard/sign-in");
    assert!(
        out.cookies()
            .iter()
            .any(|c| c.starts_with("hookrelay_session=;") && c.contains("Max-Age=0")),
        "{:?}",
        out.cookies()
    );

    // The copy, replayed, goes to the sign-in page; so does a state change with it.
    let replayed = call(&app, "GET", "/dashboard/endpoints", Some(&copy), "").await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER);
    assert_eq!(replayed.header("location"), "/dashboard/sign-in");
    let replayed = call(
        &app,
        "POST",
        "/dashboard/sign-out",
        Some(&copy),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(replayed.header("location"), "/dashboard/sign-in");

    // Another session of the same operator is untouched.
    let page = call(&app, "GET", "/dashboard/endpoints", Some(&other), "").await;
    assert_eq!(page.status, StatusCode::OK);
}

#[tokio::test]
async fn sign_in_needs_its_form_token_and_never_takes_a_token_in_the_url() {
    let Setup { app, .. } = setup();
    let form = call(&app, "GET", "/dashboard/sign-in", None, "").await;
    assert!(form.body.contains("type=\"password\""));
    assert!(form.body.contains("method=\"post\""));
    // Without the pre-session cookie, or with another form's token: refused.
    let body = format!("csrf={}&token={ADMIN}", form.csrf());
    let no_cookie = call(&app, "POST", "/dashboard/sign-in", None, &body).await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    let other = call(&app, "GET", "/dashboard/sign-in", None, "").await;
    let crossed = call(
        &app,
        "POST",
        "/dashboard/sign-in",
        Some(&pair(&other.cookies()[0])),
        &body,
    )
    .await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);
    // A token in the query string signs nobody in.
    let query = call(
        &app,
        "GET",
        &format!("/dashboard/sign-in?token={ADMIN}"),
        None,
        "",
    )
    .await;
    assert!(
        query
            .cookies()
            .iter()
            .all(|c| !c.starts_with("hookrelay_session="))
    );
}

#[tokio::test]
async fn every_state_change_needs_the_sessions_csrf_token() {
    let Setup { app, sender, .. } = setup();
    let cookie = operator(&app).await;
    let id = add(&sender, "https://a.example/hook", "a", None).await;
    let create = "url=https%3A%2F%2Fb.example%2Fhook&events=*";
    let cases = [
        ("/dashboard/endpoints".to_owned(), create.to_owned()),
        (format!("/dashboard/endpoints/{id}/pause"), String::new()),
        (format!("/dashboard/endpoints/{id}/delete"), String::new()),
        (
            format!("/dashboard/endpoints/{id}/rotate-secret"),
            String::new(),
        ),
        (format!("/dashboard/endpoints/{id}/test"), String::new()),
        ("/dashboard/deliveries/bulk-retry".to_owned(), String::new()),
        ("/dashboard/sign-out".to_owned(), String::new()),
    ];
    for (path, form) in &cases {
        let missing = call(&app, "POST", path, Some(&cookie), form).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN, "{path}");
        let wrong = format!("{form}&csrf={}", "ab".repeat(32));
        let refused = call(&app, "POST", path, Some(&cookie), &wrong).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Another session's token does not fit this one.
    let other = operator(&app).await;
    let other_csrf = csrf_of(&app, &other).await;
    let crossed = format!("{create}&csrf={other_csrf}");
    let refused = call(
        &app,
        "POST",
        "/dashboard/endpoints",
        Some(&cookie),
        &crossed,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Nothing changed.
    let list = call(&app, "GET", "/dashboard/endpoints", Some(&cookie), "").await;
    assert!(!list.body.contains("b.example"));
    assert!(list.body.contains("a.example"));
    // State changes answer only POST.
    let get = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{id}/delete"),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_refuse_framing_unless_told() {
    let Setup { app, .. } = setup();
    for path in [
        "/dashboard/sign-in",
        "/dashboard/assets/dashboard.js",
        "/dashboard/nowhere",
    ] {
        let reply = call(&app, "GET", path, None, "").await;
        let csp = reply.header("content-security-policy");
        assert!(csp.starts_with("default-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self';") && csp.contains("style-src 'self';"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(reply.header("x-frame-options"), "DENY");
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
    }
    let sign_in = call(&app, "GET", "/dashboard/sign-in", None, "").await;
    assert!(!sign_in.body.contains("<script>"), "no inline script");
    assert!(!sign_in.body.contains("style="), "no inline style");
    let missing = call(&app, "GET", "/dashboard/nowhere", None, "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let embedded = setup_with(FrameAncestors::Origins(vec![
        "https://app.example.com".into(),
    ]));
    let reply = call(&embedded.app, "GET", "/dashboard/sign-in", None, "").await;
    assert!(
        reply
            .header("content-security-policy")
            .ends_with("frame-ancestors https://app.example.com")
    );
    assert_eq!(reply.header("x-frame-options"), "");
}

#[tokio::test]
async fn markup_in_names_and_payloads_renders_as_text() {
    let Setup { app, sender, .. } = setup();
    let dispatcher = sender.dispatcher(Receiver).spawn();
    let cookie = operator(&app).await;
    let csrf = csrf_of(&app, &cookie).await;
    let xss = "<script>alert(1)</script>";
    let form = format!(
        "csrf={csrf}&url={}&name={}&events=*&profile=standard-webhooks&description={}",
        enc("https://fail.example/hook"),
        enc(xss),
        enc("\"><img src=x onerror=alert(2)>")
    );
    let created = call(&app, "POST", "/dashboard/endpoints", Some(&cookie), &form).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(
        created.body.contains("whsec_"),
        "a generated secret is shown once"
    );
    publish(
        &sender,
        "note.created",
        serde_json::json!({"html": "<img src=x onerror=alert(3)>", "q": "\"'&"}),
    )
    .await;
    delivered(&dispatcher).await;

    let list = call(&app, "GET", "/dashboard/endpoints", Some(&cookie), "").await;
    assert!(list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!list.body.contains(xss));
    let id = list
        .body
        .split("href=\"/dashboard/endpoints/ep_")
        .nth(1)
        .unwrap();
    let id = format!("ep_{}", id.split('"').next().unwrap());
    let detail = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{id}"),
        Some(&cookie),
        "",
    )
    .await;
    assert!(!detail.body.contains(xss));
    assert!(!detail.body.contains("<img"));
    assert!(
        detail
            .body
            .contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;")
    );

    let log = call(&app, "GET", "/dashboard/deliveries", Some(&cookie), "").await;
    let delivery = &delivery_links(&log.body)[0];
    let page = call(
        &app,
        "GET",
        &format!("/dashboard/deliveries/{delivery}"),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("&lt;img src=x onerror=alert(3)&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<img"));
    assert!(
        page.body.contains("&lt;b&gt;boom&lt;/b&gt;"),
        "the response body, escaped"
    );
    assert!(!page.body.contains("<b>boom"));
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn an_embeddable_portal_sets_a_cross_site_cookie_and_operators_stay_strict() {
    let sender = Sender::new(MemoryStore::new());
    add(
        &sender,
        "https://acme.example/hook",
        "acme hook",
        Some("acme"),
    )
    .await;
    let dashboard = Dashboard::new(sender)
        .token(Token::new(ADMIN).unwrap(), Principal::Admin)
        .key(Secret::from_raw("dashboard test key").unwrap())
        .frame_ancestors(FrameAncestors::Origins(vec![
            "https://app.example".to_owned(),
        ]))
        .portal_cookies(PortalCookies::CrossSite);
    let links = dashboard.portal_links();
    let app = Router::new().nest("/dashboard", dashboard.router());

    let link = links.link(&Owner::new("acme").unwrap(), Duration::from_secs(600));
    let opened = call(&app, "GET", &link, None, "").await;
    assert_eq!(opened.status, StatusCode::OK);
    let set = &opened.cookies()[0];
    let attributes: Vec<&str> = set.split("; ").collect();
    for attribute in ["SameSite=None", "Secure", "HttpOnly"] {
        assert!(attributes.contains(&attribute), "{set}");
    }
    assert!(!set.contains("SameSite=Strict"), "{set}");
    let csp = opened.header("content-security-policy");
    assert!(csp.contains("frame-ancestors https://app.example"), "{csp}");
    // The embedded portal's pages open with that cookie, and its forms still need CSRF.
    let cookie = pair(set);
    let list = call(&app, "GET", "/dashboard/endpoints", Some(&cookie), "").await;
    assert!(list.body.contains("acme hook"));

    // An operator's session stays SameSite=Strict.
    let operator = sign_in(&app, ADMIN).await;
    assert!(operator.cookies()[0].contains("SameSite=Strict"));
}

#[tokio::test]
async fn portal_links_open_one_owners_pages_and_nothing_else() {
    let Setup { app, sender, links } = setup();
    let acme = add(
        &sender,
        "https://acme.example/hook",
        "acme hook",
        Some("acme"),
    )
    .await;
    let globex = add(
        &sender,
        "https://globex.example/hook",
        "globex hook",
        Some("globex"),
    )
    .await;
    publish(&sender, "a.b", serde_json::json!({})).await;

    let link = links.link(&Owner::new("acme").unwrap(), Duration::from_secs(600));
    let opened = call(&app, "GET", &link, None, "").await;
    assert_eq!(opened.status, StatusCode::OK);
    assert!(opened.body.contains("data-auto-follow"));
    let cookie = pair(&opened.cookies()[0]);
    assert!(opened.cookies()[0].contains("SameSite=Strict"));

    let list = call(&app, "GET", "/dashboard/endpoints", Some(&cookie), "").await;
    assert!(list.body.contains("acme hook"));
    assert!(!list.body.contains("globex"));
    assert!(
        !list.body.contains("Portal links"),
        "customers do not make links"
    );
    let own = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{acme}"),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(own.status, StatusCode::OK);
    let csrf = own.csrf();
    for path in [
        format!("/dashboard/endpoints/{globex}"),
        format!("/dashboard/deliveries?endpoint={globex}"),
        format!("/dashboard/deliveries/bulk-retry?endpoint={globex}"),
    ] {
        let reply = call(&app, "GET", &path, Some(&cookie), "").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let pause = call(
        &app,
        "POST",
        &format!("/dashboard/endpoints/{globex}/pause"),
        Some(&cookie),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(pause.status, StatusCode::NOT_FOUND);
    // Their log holds only their deliveries; another's delivery id is a 404.
    let admin = operator(&app).await;
    let all = call(&app, "GET", "/dashboard/deliveries", Some(&admin), "").await;
    let all_ids = delivery_links(&all.body);
    assert_eq!(all_ids.len(), 2);
    let theirs = call(&app, "GET", "/dashboard/deliveries", Some(&cookie), "").await;
    let their_ids = delivery_links(&theirs.body);
    assert_eq!(their_ids.len(), 1);
    let other = all_ids.iter().find(|id| !their_ids.contains(id)).unwrap();
    let reply = call(
        &app,
        "GET",
        &format!("/dashboard/deliveries/{other}"),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let mine = call(
        &app,
        "GET",
        &format!("/dashboard/deliveries/{}", their_ids[0]),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK);
    let portal_page = call(&app, "GET", "/dashboard/portal-links", Some(&cookie), "").await;
    assert_eq!(portal_page.status, StatusCode::FORBIDDEN);

    // A changed owner, a changed expiry, a stale link: refused, no session.
    let tampered = link.replace("owner=acme", "owner=globex");
    let stretched = {
        let (head, tail) = link.split_once("expires=").unwrap();
        let rest = tail.split_once('&').unwrap().1;
        format!("{head}expires=99999999999&{rest}")
    };
    let stale = links.link(&Owner::new("acme").unwrap(), Duration::ZERO);
    for bad in [
        tampered,
        stretched,
        stale,
        "/dashboard/portal?owner=acme".to_owned(),
    ] {
        let reply = call(&app, "GET", &bad, None, "").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.cookies().is_empty(), "{bad}");
    }

    // An operator makes links through a form.
    let csrf = csrf_of(&app, &admin).await;
    let made = call(
        &app,
        "POST",
        "/dashboard/portal-links",
        Some(&admin),
        &format!("csrf={csrf}&owner=globex&hours=2"),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK);
    let at = made.body.find("/dashboard/portal?owner=globex").unwrap();
    let made_link = made.body[at..]
        .split('<')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let opened = call(&app, "GET", &made_link, None, "").await;
    assert_eq!(opened.status, StatusCode::OK);
    let globex_cookie = pair(&opened.cookies()[0]);
    let reply = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{acme}"),
        Some(&globex_cookie),
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_logs_filters_live_in_the_url_and_pages_follow_cursors() {
    let Setup { app, sender, .. } = setup();
    let dispatcher = sender.dispatcher(Receiver).spawn();
    let ok = add(&sender, "https://ok.example/hook", "ok", None).await;
    add(&sender, "https://fail.example/hook", "failing", None).await;
    for i in 0..60 {
        let event_type = if i % 2 == 0 {
            "order.created"
        } else {
            "user.deleted"
        };
        publish(&sender, event_type, serde_json::json!({ "i": i })).await;
    }
    delivered(&dispatcher).await;
    let cookie = operator(&app).await;

    // 120 deliveries: three pages of at most 50, newest first, none twice.
    let mut seen = Vec::new();
    let mut next = Some("/dashboard/deliveries".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        assert!(pages <= 5, "paging ends");
        let page = call(&app, "GET", &path, Some(&cookie), "").await;
        assert_eq!(page.status, StatusCode::OK);
        let ids = delivery_links(&page.body);
        assert!(ids.len() <= 50);
        seen.extend(ids);
        next = page
            .body
            .split("rel=\"next\" id=\"next-page\" href=\"")
            .nth(1)
            .map(|rest| rest.split('"').next().unwrap().replace("&amp;", "&"));
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 120);

    // Filters: their state is the URL; the form shows it; the next page keeps it.
    let path = "/dashboard/deliveries?status=dead&event_type=order.*&response=5xx";
    let page = call(&app, "GET", path, Some(&cookie), "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("method=\"get\" action=\"/dashboard/deliveries\"")
    );
    assert!(page.body.contains("<option selected>dead</option>"));
    assert!(page.body.contains("<option selected>5xx</option>"));
    assert!(page.body.contains("value=\"order.*\""));
    assert_eq!(delivery_links(&page.body).len(), 30);
    assert!(!page.body.contains("user.deleted"));
    assert!(!page.body.contains("id=\"next-page\""));
    assert!(
        page.body
            .contains("bulk-retry?status=dead&amp;event_type=order.*&amp;response=5xx")
    );
    let one = call(
        &app,
        "GET",
        &format!("/dashboard/deliveries?endpoint={ok}&event_type=user.deleted"),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(delivery_links(&one.body).len(), 30);
    assert!(!one.body.contains("order.created"));
    let none = call(
        &app,
        "GET",
        &format!("/dashboard/deliveries?endpoint={ok}&status=dead"),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(delivery_links(&none.body).len(), 0);
    assert!(none.body.contains("No deliveries match."));
    // The live mode's fragment: the same filters, rows only.
    let rows = call(
        &app,
        "GET",
        "/dashboard/deliveries/rows?status=dead&event_type=order.*",
        Some(&cookie),
        "",
    )
    .await;
    assert!(rows.body.starts_with("<tr>"));
    assert_eq!(delivery_links(&rows.body).len(), 30);
    // Bad filters: 400, not 500.
    for bad in [
        "status=nope",
        "response=6xx",
        "since=yesterday",
        "cursor=zzz",
    ] {
        let reply = call(
            &app,
            "GET",
            &format!("/dashboard/deliveries?{bad}"),
            Some(&cookie),
            "",
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // A date range from the form's datetime-local inputs.
    let future = call(
        &app,
        "GET",
        "/dashboard/deliveries?since=2999-01-01T00%3A00",
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(delivery_links(&future.body).len(), 0);
    let past = call(
        &app,
        "GET",
        "/dashboard/deliveries?since=2000-01-01T00%3A00&until=2999-01-01T00%3A00",
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(delivery_links(&past.body).len(), 50);
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_dead_letter_says_why_and_retries_one_by_one_or_in_bulk_after_a_count() {
    let Setup { app, sender, .. } = setup();
    let dispatcher = sender.dispatcher(Receiver).spawn();
    let failing = add(&sender, "https://fail.example/hook", "failing", None).await;
    for i in 0..3 {
        publish(&sender, "job.failed", serde_json::json!({ "i": i })).await;
    }
    delivered(&dispatcher).await;
    let cookie = operator(&app).await;
    let log = call(
        &app,
        "GET",
        "/dashboard/deliveries?status=dead",
        Some(&cookie),
        "",
    )
    .await;
    let ids = delivery_links(&log.body);
    assert_eq!(ids.len(), 3);

    let page = call(
        &app,
        "GET",
        &format!("/dashboard/deliveries/{}", ids[0]),
        Some(&cookie),
        "",
    )
    .await;
    assert!(page.body.contains("id=\"dead-reason\""));
    assert!(
        page.body
            .contains("every attempt the retry policy allows failed")
    );
    assert!(page.body.contains("HTTP 500"));
    assert!(page.body.contains("data-copy=\"payload\""));
    assert!(page.body.contains("&quot;i&quot;: 2") || page.body.contains("&quot;i&quot;:"));
    assert_eq!(page.body.matches("<h3>Attempt ").count(), 1);
    let csrf = page.csrf();
    let retried = call(
        &app,
        "POST",
        &format!("/dashboard/deliveries/{}/retry", ids[0]),
        Some(&cookie),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER);
    delivered(&dispatcher).await;
    let page = call(
        &app,
        "GET",
        &format!("/dashboard/deliveries/{}", ids[0]),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(
        page.body.matches("<h3>Attempt ").count(),
        2,
        "the new attempt shows"
    );
    assert!(page.body.contains("(by hand)"));

    // Bulk: the dry run counts first and changes nothing; the confirmation queues.
    let count = call(
        &app,
        "GET",
        &format!("/dashboard/deliveries/bulk-retry?endpoint={failing}&status=dead"),
        Some(&cookie),
        "",
    )
    .await;
    assert!(
        count.body.contains("This retries <strong>3</strong>"),
        "{}",
        count.body
    );
    let still = call(
        &app,
        "GET",
        "/dashboard/deliveries?status=dead",
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(
        delivery_links(&still.body).len(),
        3,
        "a dry run changes nothing"
    );
    let form = format!(
        "csrf={}&endpoint={failing}&status=dead&event_type=&since=&until=&response=",
        count.csrf()
    );
    let done = call(
        &app,
        "POST",
        "/dashboard/deliveries/bulk-retry",
        Some(&cookie),
        &form,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(
        done.body.contains("Queued <strong>3</strong> of 3"),
        "{}",
        done.body
    );
    delivered(&dispatcher).await;
    let page = call(
        &app,
        "GET",
        &format!("/dashboard/deliveries/{}", ids[1]),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(page.body.matches("<h3>Attempt ").count(), 2);
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn endpoints_are_created_changed_paused_rotated_tested_and_deleted_through_forms() {
    let Setup { app, sender, .. } = setup();
    let cookie = operator(&app).await;
    let csrf = csrf_of(&app, &cookie).await;
    let form = format!(
        "csrf={csrf}&url={}&name=orders&events=order.*%2C+user.deleted&profile=standard-webhooks&owner=acme",
        enc("https://orders.example/hook")
    );
    let created = call(&app, "POST", "/dashboard/endpoints", Some(&cookie), &form).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created
        .body
        .split("id=\"created\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let endpoint = sender
        .endpoint(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(endpoint.owner().unwrap().as_str(), "acme");
    assert_eq!(endpoint.filter().patterns(), ["order.*", "user.deleted"]);
    // A secret never appears on the endpoint's page.
    let secret = created
        .body
        .split("id=\"new-secret\" class=\"wrap\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let page = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{id}"),
        Some(&cookie),
        "",
    )
    .await;
    assert!(!page.body.contains(&secret));
    assert!(page.body.contains("<svg"), "charts");

    let edit = format!(
        "csrf={csrf}&url={}&name=renamed&events=*&description=d",
        enc("https://orders.example/v2")
    );
    let changed = call(
        &app,
        "POST",
        &format!("/dashboard/endpoints/{id}"),
        Some(&cookie),
        &edit,
    )
    .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    let endpoint = sender
        .endpoint(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(endpoint.name(), Some("renamed"));
    assert_eq!(endpoint.url().as_str(), "https://orders.example/v2");

    let bad = format!("csrf={csrf}&url=not-a-url&events=*");
    let refused = call(
        &app,
        "POST",
        &format!("/dashboard/endpoints/{id}"),
        Some(&cookie),
        &bad,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);

    let post = |path: String| {
        let app = app.clone();
        let cookie = cookie.clone();
        let csrf = csrf.clone();
        async move {
            call(
                &app,
                "POST",
                &path,
                Some(&cookie),
                &format!("csrf={csrf}&payload=%7B%22taskId%22%3A%22123%22%7D"),
            )
            .await
        }
    };
    assert_eq!(
        post(format!("/dashboard/endpoints/{id}/pause"))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let page = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{id}"),
        Some(&cookie),
        "",
    )
    .await;
    assert!(page.body.contains("s-paused"));
    assert_eq!(
        post(format!("/dashboard/endpoints/{id}/resume"))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let rotated = post(format!("/dashboard/endpoints/{id}/rotate-secret")).await;
    assert!(rotated.body.contains("whsec_"));
    let endpoint = sender
        .endpoint(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(endpoint.secrets().len(), 2);
    let tested = post(format!("/dashboard/endpoints/{id}/test")).await;
    assert_eq!(tested.status, StatusCode::SEE_OTHER);
    let log = call(&app, "GET", tested.header("location"), Some(&cookie), "").await;
    assert!(log.body.contains("webhook.test"));
    let bad_json = call(
        &app,
        "POST",
        &format!("/dashboard/endpoints/{id}/test"),
        Some(&cookie),
        &format!("csrf={csrf}&payload=%7Bnope"),
    )
    .await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        post(format!("/dashboard/endpoints/{id}/delete"))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert!(
        sender
            .endpoint(&id.parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let gone = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{id}"),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn charts_are_inline_svg_with_escaped_labels() {
    let Setup { app, sender, .. } = setup();
    let dispatcher = sender.dispatcher(Receiver).spawn();
    add(&sender, "https://ok.example/hook", "<i>ok</i>", None).await;
    add(&sender, "https://fail.example/hook", "failing", None).await;
    for _ in 0..5 {
        publish(&sender, "a.b", serde_json::json!({})).await;
    }
    delivered(&dispatcher).await;
    let cookie = operator(&app).await;
    for window in ["24h", "7d"] {
        let page = call(
            &app,
            "GET",
            &format!("/dashboard/charts?window={window}"),
            Some(&cookie),
            "",
        )
        .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("<svg viewBox"));
        assert!(page.body.contains("10 deliveries"), "{window}");
        assert!(page.body.contains("class=\"o-delivered\""));
        assert!(page.body.contains("class=\"o-failed\""));
        assert!(page.body.contains("&lt;i&gt;ok&lt;/i&gt;"));
        assert!(!page.body.contains("<i>ok"));
        // Latency percentiles per hour over every endpoint: p50, p95 and p99 lines.
        assert!(
            page.body.contains("Latency per hour, all endpoints"),
            "{window}"
        );
        for class in ["l-p50", "l-p95", "l-p99"] {
            let line = format!("<path class=\"{class}\"");
            assert!(page.body.contains(&line), "{window} {class}");
        }
    }
    // An endpoint's page charts its latency percentiles per hour: p50, p95 and p99 lines.
    let failing = add(&sender, "https://fail.example/other", "failing 2", None).await;
    publish(&sender, "a.b", serde_json::json!({})).await;
    delivered(&dispatcher).await;
    let page = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{failing}"),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    for class in ["l-p50", "l-p95", "l-p99"] {
        assert!(
            page.body.contains(&format!("<path class=\"{class}\"")),
            "{class}"
        );
    }
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_page_of_a_ten_thousand_delivery_history_is_one_page_of_rows() {
    let Setup { app, sender, .. } = setup();
    add(&sender, "https://ok.example/hook", "ok", None).await;
    for i in 0..10_000u32 {
        publish(&sender, "bulk.item", serde_json::json!({ "i": i })).await;
    }
    let cookie = operator(&app).await;
    let page = call(&app, "GET", "/dashboard/deliveries", Some(&cookie), "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(delivery_links(&page.body).len(), 50);
    assert!(page.body.contains("id=\"next-page\""));
    let list = call(&app, "GET", "/dashboard/endpoints", Some(&cookie), "").await;
    assert_eq!(list.status, StatusCode::OK);
}

#[tokio::test]
async fn an_endpoint_waiting_for_its_handshake_is_verified_from_its_page() {
    let sender = Sender::new(MemoryStore::new());
    let app = Router::new().nest(
        "/dashboard",
        Dashboard::new(sender.clone())
            .token(Token::new(ADMIN).unwrap(), Principal::Admin)
            .transport(Receiver)
            .router(),
    );
    let mut ids = Vec::new();
    for url in ["https://echo.example/hook", "https://silent.example/hook"] {
        let endpoint = Endpoint::builder(url, Profile::ProposalGenerator)
            .secret(Secret::generate().unwrap())
            .build()
            .unwrap();
        ids.push(sender.add_endpoint(endpoint).await.unwrap());
    }
    let cookie = operator(&app).await;
    let page = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{}", ids[0]),
        Some(&cookie),
        "",
    )
    .await;
    assert!(page.body.contains("s-pending_verification"));
    assert!(page.body.contains("id=\"verify\""));
    let csrf = page.csrf();
    let verify = |id: String| {
        let (app, cookie, csrf) = (app.clone(), cookie.clone(), csrf.clone());
        async move {
            call(
                &app,
                "POST",
                &format!("/dashboard/endpoints/{id}/verify"),
                Some(&cookie),
                &format!("csrf={csrf}"),
            )
            .await
        }
    };
    let ok = verify(ids[0].to_string()).await;
    assert!(ok.body.contains("it is verified"), "{}", ok.body);
    let endpoint = sender.endpoint(&ids[0]).await.unwrap().unwrap();
    assert_eq!(endpoint.status().as_str(), "active");
    let failed = verify(ids[1].to_string()).await;
    assert!(
        failed.body.contains("the challenge was not echoed"),
        "{}",
        failed.body
    );
    let refused = call(
        &app,
        "POST",
        &format!("/dashboard/endpoints/{}/verify", ids[1]),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Without a transport there is no button and no route to run it.
    let Setup { app, sender, .. } = setup();
    let id = add(&sender, "https://a.example/hook", "a", None).await;
    let cookie = operator(&app).await;
    let page = call(
        &app,
        "GET",
        &format!("/dashboard/endpoints/{id}"),
        Some(&cookie),
        "",
    )
    .await;
    assert!(!page.body.contains("id=\"verify\""));
    let csrf = page.csrf();
    let none = call(
        &app,
        "POST",
        &format!("/dashboard/endpoints/{id}/verify"),
        Some(&cookie),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}

/// The receiver's inbox page (issue #21): operators see entries, a dead letter's reason, its
/// body as text (markup escaped) and headers, and run it again with the session's CSRF
/// token; a customer gets 404.
#[tokio::test]
async fn the_inbox_page_shows_dead_letters_and_replays_them() {
    use hookrelay::receive::Receiver as Inbound;
    use hookrelay::receive::inbox::{
        AttemptResult, Inbox, InboxAttempt, InboxQueue as _, MemoryInbox,
    };
    use hookrelay::retry::UnixMillis;
    use hookrelay::scheme::{Message, Scheme, XHub};

    let inbox = Inbox::new(MemoryInbox::new());
    let secret = Secret::from_raw("hub-secret").unwrap();
    let receiver = Inbound::builder(Profile::TaskHub)
        .secret(secret.clone())
        .build()
        .unwrap();
    let body = r#"{"type":"task.<b>x</b>","data":{"note":"<script>alert(1)</script>"}}"#;
    let signed = XHub::new()
        .sign(&secret, &Message::new(body.as_bytes()))
        .unwrap();
    let reply = receiver
        .accept(&signed.to_header_map().unwrap(), body.into(), &inbox)
        .await;
    assert_eq!(reply.status, 200);
    let now = UnixMillis::now();
    let claimed = inbox
        .store()
        .claim(now, Duration::from_secs(30), 1)
        .await
        .unwrap();
    let attempt = InboxAttempt::new(now, Duration::from_millis(2), Some("<i>db down</i>".into()));
    let dead = AttemptResult::Dead {
        error: "<i>db down</i>".into(),
    };
    inbox
        .store()
        .record(claimed[0].entry.id, claimed[0].token, attempt, dead)
        .await
        .unwrap();

    let sender = Sender::new(MemoryStore::new());
    let dashboard = Dashboard::new(sender.clone())
        .token(Token::new(ADMIN).unwrap(), Principal::Admin)
        .token(
            Token::new("acme-token").unwrap(),
            Principal::Customer(Owner::new("acme").unwrap()),
        )
        .key(Secret::from_raw("dashboard test key").unwrap())
        .inbox(inbox.clone());
    let app = Router::new().nest("/dashboard", dashboard.router());
    let cookie = operator(&app).await;

    let list = call(
        &app,
        "GET",
        "/dashboard/inbox?status=dead",
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("1 dead"), "{}", list.body);
    assert!(list.body.contains("task.&lt;b&gt;x&lt;/b&gt;") && !list.body.contains("<b>x</b>"));
    let page = call(&app, "GET", "/dashboard/inbox/1", Some(&cookie), "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the body as text"
    );
    assert!(!page.body.contains("<script>alert"));
    assert!(
        page.body.contains("&lt;i&gt;db down&lt;/i&gt;"),
        "the last error as text"
    );
    assert!(
        page.body.contains("x-hub-signature"),
        "the headers as received"
    );

    // Replaying needs the CSRF token; with it, the entry is pending again.
    let refused = call(&app, "POST", "/dashboard/inbox/1/replay", Some(&cookie), "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let csrf = page.csrf();
    let replayed = call(
        &app,
        "POST",
        "/dashboard/inbox/1/replay",
        Some(&cookie),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER);
    assert_eq!(inbox.counts().await.unwrap().pending, 1);

    // Customers do not see the inbox.
    let reply = sign_in(&app, "acme-token").await;
    let customer = pair(&reply.cookies()[0]);
    let hidden = call(&app, "GET", "/dashboard/inbox", Some(&customer), "").await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(!hidden.body.contains("db down"));
}
