//! The delivery dashboard in a real browser: Debian's `chromium` driven headless through
//! `chromedriver` (WebDriver, plain HTTP JSON calls over reqwest), against the built
//! `hookrelay serve` (a child process over a temporary SQLite file, `--max-attempts 1` so a
//! failing delivery is dead-lettered at once). A local receiver on 127.0.0.1 answers `204` on
//! `/ok` and `500` on `/fail`; events are published over the management API, as an app
//! would. Without `chromium` and `chromedriver` this test fails (`.ci/run` installs them): it
//! never passes silently.
//!
//! Screenshots at 1280 px and 390 px go to the target directory, or to `docs/` (the committed
//! ones) with `HOOKRELAY_UPDATE_SCREENSHOTS=1`.
#![cfg(unix)]

mod serve_support;

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};

use hookrelay::Secret;
use hookrelay::send::{MemoryStore, Owner, Sender};
use hookrelay::server::Dashboard;
use serve_support::{Serve, temp_dir};

const ADMIN: &str = "browser-admin-token";
const GLOBEX: &str = "globex-customer-token";
/// The dashboard's key, given to `serve` (`HOOKRELAY_DASHBOARD_KEY`) and used by the app to
/// sign portal links.
const KEY: &[u8] = b"browser test key";
const XSS_NAME: &str = "<script>alert(1)</script>";

/// Kills `chromedriver` when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session.
struct Browser {
    http: reqwest::Client,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Ends the WebDriver session (and so its chromium) however the test ends: a failed
/// assertion must not leave a browser behind. A plain blocking request, as `Drop` cannot wait
/// on a future.
impl Drop for Browser {
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        let Some(rest) = self.session.strip_prefix("http://") else {
            return;
        };
        let Some((host, path)) = rest.split_once('/') else {
            return;
        };
        if let Ok(mut stream) = std::net::TcpStream::connect(host) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request =
                format!("DELETE /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(request.as_bytes());
            // The reply comes once the session (and its browser) has ended.
            let _ = stream.read(&mut [0u8; 1024]);
        }
    }
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{}", self.session, path);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let text = request.send().await.unwrap().text().await.unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        value["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn open(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap().to_owned()
    }

    /// The element `css` selects, waiting (a bounded number of polls) for a page a click
    /// started to load.
    async fn find(&self, css: &str) -> String {
        let mut found = Value::Null;
        for _ in 0..100 {
            found = self
                .post("/element", json!({"using": "css selector", "value": css}))
                .await;
            if let Some(element) = found[ELEMENT].as_str() {
                return element.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no element {css}: {found}")
    }

    async fn count(&self, css: &str) -> usize {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .as_array()
            .map_or(0, Vec::len)
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        let reply = self
            .post(&format!("/element/{element}/click"), json!({}))
            .await;
        assert!(reply.get("error").is_none(), "click {css}: {reply}");
    }

    /// Clicks `css` and waits (a bounded number of polls) until the page it submits has
    /// replaced this one, so a navigation that follows cannot cancel it.
    async fn click_and_load(&self, css: &str) {
        self.script("window.__hookrelay_old_page = true; return null;")
            .await;
        self.click(css).await;
        for _ in 0..100 {
            let old = self
                .script("return window.__hookrelay_old_page === true;")
                .await;
            if old == json!(false) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} loaded no page");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/clear"), json!({}))
            .await;
        self.post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.get(&format!("/element/{element}/text"))
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// Whether a JavaScript dialog is open (an `alert` an injection would raise).
    async fn alert_open(&self) -> bool {
        self.get("/alert/text").await.is_string()
    }

    async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Saves a screenshot as `name` under [`screenshot_dir`].
    async fn screenshot(&self, name: &str) {
        let data = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }

    /// Waits (a bounded number of polls) until the URL contains `part`.
    async fn wait_url(&self, part: &str) {
        for _ in 0..100 {
            if self.url().await.contains(part) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the browser never reached {part}: {}", self.url().await);
    }
}

async fn start_browser(port: u16) -> Browser {
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(reply) = http.get(format!("{base}/status")).send().await
            && reply.status().is_success()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "chromedriver did not answer");
    let capabilities = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--force-prefers-reduced-motion", "--hide-scrollbars"]
        }
    }}});
    let reply: Value = serde_json::from_str(
        &http
            .post(format!("{base}/session"))
            .header("content-type", "application/json")
            .body(capabilities.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let session = reply["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
        .to_owned();
    Browser {
        http,
        session: format!("{base}/session/{session}"),
    }
}

/// Where screenshots go: `docs/` with `HOOKRELAY_UPDATE_SCREENSHOTS=1` (to refresh the
/// committed ones), else the target directory, so a test run leaves the tree clean.
fn screenshot_dir() -> PathBuf {
    if std::env::var("HOOKRELAY_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
    }
}

async fn receiver() -> String {
    let app = Router::new()
        .route("/ok", post(|| async { http::StatusCode::NO_CONTENT }))
        .route(
            "/fail",
            post(|| async {
                (
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "<b>receiver down</b>",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// The management API of the `serve` under test, as an app calls it.
struct Api {
    http: reqwest::Client,
    site: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api{path}", self.site))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let reply = request.send().await.unwrap();
        let status = reply.status().as_u16();
        let text = reply.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn publish(&self, event_type: &str, data: Value) {
        let event = json!({"type": event_type, "data": data});
        let (status, body) = self
            .call(reqwest::Method::POST, "/events", ADMIN, Some(event))
            .await;
        assert_eq!(status, 202, "{body}");
    }

    /// Waits (a bounded number of polls) until `endpoint` has no pending delivery and
    /// `done` deliveries delivered or dead.
    async fn settled(&self, endpoint: &str, done: u64) {
        let mut stats = Value::Null;
        for _ in 0..600 {
            (_, stats) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/webhooks/{endpoint}/stats"),
                    ADMIN,
                    None,
                )
                .await;
            let d = &stats["deliveries"];
            let finished = d["delivered"].as_u64().unwrap_or(0) + d["dead"].as_u64().unwrap_or(0);
            if d["pending"] == json!(0) && finished == done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{endpoint} never settled at {done}: {stats}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_and_a_customer_use_the_dashboard_in_chromium() {
    let chromium = Command::new("chromium").arg("--version").output();
    assert!(
        chromium.is_ok_and(|o| o.status.success()),
        "chromium is missing: apt-get install -y chromium chromium-driver (.ci/run does)"
    );
    let driver_port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is missing: apt-get install -y chromium-driver");
    let _driver = Driver(driver);

    // reqwest is built without a default crypto provider (the crate picks ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let receiver = receiver().await;
    let dir = temp_dir("dashboard-browser");
    let database = format!("sqlite://{}", dir.join("hookrelay.db").display());
    let globex_token = format!("globex={GLOBEX}");
    let key = base64::engine::general_purpose::STANDARD.encode(KEY);
    let serve = Serve::start_with_env(
        &dir,
        &[
            "--database",
            &database,
            "--token",
            ADMIN,
            "--customer-token",
            &globex_token,
            "--allow-http",
            "--allow-private-network",
            "--max-attempts",
            "1",
        ],
        &[("HOOKRELAY_DASHBOARD_KEY", &key)],
    );
    let site = format!("http://127.0.0.1:{}", serve.port);
    let api = Api {
        http: reqwest::Client::new(),
        site: site.clone(),
    };
    // The app signs portal links with the key it gave `serve`.
    let links = Dashboard::new(Sender::new(MemoryStore::new()))
        .key(Secret::from_raw(KEY).unwrap())
        .portal_links();

    // Another customer's endpoint, registered by that customer over the API.
    let (status, created) = api
        .call(
            reqwest::Method::POST,
            "/webhooks",
            GLOBEX,
            Some(
                json!({"url": format!("{receiver}/ok"), "name": "globex orders", "events": ["*"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let globex = created["id"].as_str().unwrap().to_owned();

    let browser = start_browser(driver_port).await;

    // Sign in: the pages send a visitor without a session to the form.
    browser.open(&format!("{site}/dashboard/endpoints")).await;
    browser.wait_url("/dashboard/sign-in").await;
    browser.type_into("#token", ADMIN).await;
    browser.click("form button[type=submit]").await;
    browser.wait_url("/dashboard/endpoints").await;
    assert!(!browser.url().await.contains(ADMIN), "no token in a URL");
    let cookie_visible = browser.script("return document.cookie").await;
    assert_eq!(cookie_visible, json!(""), "the session cookie is HttpOnly");

    // Create an endpoint through the form: named with markup, failing (and, by
    // `--max-attempts 1`, dead-lettered after one attempt).
    browser.click("a[href$='/endpoints/new']").await;
    browser.type_into("#url", &format!("{receiver}/fail")).await;
    browser.type_into("#name", XSS_NAME).await;
    browser.type_into("#events", "*").await;
    browser.type_into("#owner", "acme").await;
    browser.click("#endpoint-form button[type=submit]").await;
    assert!(browser.text("#new-secret").await.starts_with("whsec_"));
    let acme = browser.text("#created").await;

    // Publish over the API: a payload full of markup.
    for i in 0..3 {
        api.publish(
            "invoice.paid",
            json!({"i": i, "note": "<img src=x onerror=alert(2)>"}),
        )
        .await;
    }
    api.publish("user.created", json!({"id": 7})).await;
    api.settled(&acme, 4).await;
    api.settled(&globex, 4).await;

    // The endpoint list: the markup name is text, no dialog opened.
    browser.open(&format!("{site}/dashboard/endpoints")).await;
    assert!(browser.text("#endpoints").await.contains(XSS_NAME));
    assert!(!browser.alert_open().await);
    assert_eq!(browser.count("#endpoints script").await, 0);
    browser.resize(1280, 900).await;
    browser.screenshot("dashboard-endpoints-1280.png").await;
    browser.resize(390, 844).await;
    browser.screenshot("dashboard-endpoints-390.png").await;
    browser.resize(1280, 900).await;

    // Filter the log through its form: the filters land in the URL.
    browser.open(&format!("{site}/dashboard/deliveries")).await;
    assert_eq!(browser.count("#delivery-rows tr").await, 8);
    browser
        .script("document.getElementById('f-status').value = 'dead'; return null;")
        .await;
    browser.type_into("#f-event_type", "invoice.*").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_url("status=dead").await;
    let url = browser.url().await;
    assert!(
        url.contains("event_type=invoice.*") || url.contains("event_type=invoice.%2A"),
        "{url}"
    );
    assert_eq!(browser.count("#delivery-rows tr").await, 3);
    browser.screenshot("dashboard-deliveries-1280.png").await;

    // Open a delivery: payload as text, why it gave up, one attempt.
    browser.click("#delivery-rows tr a").await;
    browser.wait_url("/dashboard/deliveries/dlv").await;
    let payload = browser.text("#payload").await;
    assert!(
        payload.contains("<img src=x onerror=alert(2)>"),
        "{payload}"
    );
    assert_eq!(browser.count("#payload img").await, 0);
    assert!(!browser.alert_open().await);
    assert!(browser.text("#dead-reason").await.contains("HTTP 500"));
    assert_eq!(browser.count("#attempts > li").await, 1);
    let attempts = browser.text("#attempts").await;
    assert!(attempts.contains("<b>receiver down</b>") || attempts.contains("Attempt 1"));
    browser.screenshot("dashboard-delivery-1280.png").await;
    browser.resize(390, 844).await;
    browser.screenshot("dashboard-delivery-390.png").await;
    browser.resize(1280, 900).await;

    // Retry the dead letter and see the new attempt.
    let delivery_url = browser.url().await;
    browser.click_and_load("#retry").await;
    let mut attempts = 0;
    for _ in 0..100 {
        browser.open(&delivery_url).await;
        attempts = browser.count("#attempts > li").await;
        if attempts == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(attempts, 2, "the new attempt appears");
    assert!(browser.text("#attempts").await.contains("(by hand)"));
    api.settled(&acme, 4).await;

    // Bulk retry by the filters: the count first, then the confirmation.
    browser
        .open(&format!(
            "{site}/dashboard/deliveries?status=dead&event_type=invoice.*"
        ))
        .await;
    browser.click("#bulk-retry").await;
    browser.wait_url("/deliveries/bulk-retry").await;
    let count = browser.text("#bulk-count").await;
    assert!(count.contains("This retries 3 deliveries"), "{count}");
    browser.click_and_load("#confirm-bulk").await;
    assert!(browser.text("#bulk-done").await.contains("Queued 3 of 3"));
    api.settled(&acme, 4).await;

    // Live mode: a delivery published while the page is open appears without a reload.
    browser.open(&format!("{site}/dashboard/deliveries")).await;
    browser.click("#live").await;
    api.publish("live.event", json!({})).await;
    let mut appeared = false;
    for _ in 0..100 {
        let text = browser
            .script("return document.getElementById('delivery-rows').textContent")
            .await;
        if text.as_str().unwrap_or("").contains("live.event") {
            appeared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(appeared, "the live mode shows the new delivery");
    browser.click("#live").await;
    api.settled(&acme, 5).await;
    api.settled(&globex, 5).await;

    // Charts are inline SVG.
    browser.open(&format!("{site}/dashboard/charts")).await;
    assert!(browser.count("svg.svg-chart rect").await > 0);
    browser.screenshot("dashboard-charts-1280.png").await;

    // Sign out, then a customer's portal link: only their endpoint, another's is 404.
    browser.open(&format!("{site}/dashboard/endpoints")).await;
    browser.click(".signout button").await;
    browser.wait_url("/dashboard/sign-in").await;
    let link = links.link(&Owner::new("acme").unwrap(), Duration::from_secs(600));
    browser.open(&format!("{site}{link}")).await;
    browser.wait_url("/dashboard/endpoints").await;
    let list = browser.text("#endpoints").await;
    assert!(list.contains(XSS_NAME));
    assert!(!list.contains("globex"));
    browser.resize(390, 844).await;
    browser.screenshot("dashboard-portal-390.png").await;
    browser.resize(1280, 900).await;
    browser
        .open(&format!("{site}/dashboard/endpoints/{globex}"))
        .await;
    assert_eq!(browser.text("h1").await, "Not found");
    browser
        .open(&format!("{site}/dashboard/deliveries?endpoint={globex}"))
        .await;
    assert_eq!(browser.text("h1").await, "Not found");

    drop(browser);
    assert_eq!(serve.terminate().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
