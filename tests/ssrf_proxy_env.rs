//! CHECKLIST D41: proxy environment variables are ignored unless a proxy is configured
//! explicitly. The variables are process-wide, so the check runs in a child process that
//! starts with them set.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hookrelay::send::{AddressPolicy, IpRange, OutboundRequest, ReqwestTransport, Transport};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const CHILD: &str = "HOOKRELAY_PROXY_CHILD";

async fn listener(reply: &'static [u8]) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(reply).await;
            });
        }
    });
    (port, hits)
}

#[tokio::test]
async fn proxy_variables_are_ignored() {
    if std::env::var(CHILD).is_ok() {
        return child().await;
    }
    let (proxy_port, proxy_hits) =
        listener(b"HTTP/1.1 502 Proxy\r\ncontent-length: 0\r\n\r\n").await;
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(std::env::current_exe().unwrap())
            .args(["proxy_variables_are_ignored", "--exact", "--nocapture"])
            .env(CHILD, "1")
            .env("HTTP_PROXY", &proxy)
            .env("http_proxy", &proxy)
            .env("HTTPS_PROXY", &proxy)
            .env("ALL_PROXY", &proxy)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        proxy_hits.load(Ordering::SeqCst),
        1,
        "only the control client (a default reqwest client) went through the proxy"
    );
}

async fn child() {
    let (port, hits) = listener(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let transport = ReqwestTransport::builder()
        .policy(
            AddressPolicy::new()
                .allow_http()
                .allow_range(IpRange::parse("127.0.0.1/32").unwrap()),
        )
        .build()
        .unwrap();
    let response = transport
        .send(OutboundRequest {
            url: url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from_static(b"{}"),
            timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "went straight to the destination"
    );
    // Control: a default client honours the variables, so they are in effect here.
    let control = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        control.status().as_u16(),
        502,
        "the control request went to the proxy"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
