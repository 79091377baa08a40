//! CHECKLIST D33–D44: the SSRF guard, through `AddressPolicy` and `ReqwestTransport` with a
//! stub resolver. Every connection goes to 127.0.0.1; every other address is refused before
//! any connection is made.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hookrelay::send::{
    AddressPolicy, IpRange, OutboundRequest, Refusal, ReqwestTransport, StaticResolver, Transport,
    TransportError, is_public,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

fn url(text: &str) -> url::Url {
    url::Url::parse(text).unwrap()
}

fn refused(policy: &AddressPolicy, text: &str) -> Option<Refusal> {
    policy.check_url(&url(text)).err()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn d33_literal_internal_destinations() {
    let policy = AddressPolicy::new();
    for target in [
        "https://127.0.0.1/",
        "https://localhost/",
        "https://LOCALHOST./",
        "https://api.localhost/",
        "https://[::1]/",
        "https://0.0.0.0/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://metadata.google.internal/computeMetadata/v1/",
    ] {
        assert_eq!(
            refused(&policy, target),
            Some(Refusal::NonPublicAddress),
            "{target}"
        );
    }
}

#[test]
fn d34_encoded_loopback_is_classified_after_parsing() {
    let policy = AddressPolicy::new();
    for target in [
        "https://2130706433/",
        "https://0x7f.1/",
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://[0:0:0:0:0:ffff:7f00:1]/",
    ] {
        assert_eq!(
            refused(&policy, target),
            Some(Refusal::NonPublicAddress),
            "{target}"
        );
    }
}

#[test]
fn d35_ipv6_forms_wrapping_ipv4() {
    let policy = AddressPolicy::new();
    for target in [
        "https://[::7f00:1]/",
        "https://[::ffff:0:7f00:1]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[2002:a9fe:a9fe::1]/",
    ] {
        assert_eq!(
            refused(&policy, target),
            Some(Refusal::NonPublicAddress),
            "{target}"
        );
    }
    assert_eq!(refused(&policy, "https://[64:ff9b::1.1.1.1]/"), None);
}

#[test]
fn d36_ranges_and_public_edges() {
    for refused in [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.0.1",
        "100.64.0.1",
        "192.0.0.1",
        "198.18.0.1",
        "198.19.255.255",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "240.0.0.1",
        "255.255.255.255",
        "224.0.0.1",
        "239.255.255.255",
        "fe80::1",
        "fc00::1",
        "fdff::1",
        "2001:db8::1",
        "ff02::1",
    ] {
        assert!(!is_public(ip(refused)), "{refused}");
    }
    for allowed in [
        "1.1.1.1",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "8.8.8.8",
    ] {
        assert!(is_public(ip(allowed)), "{allowed}");
    }
}

#[test]
fn d42_schemes_credentials_and_https() {
    let policy = AddressPolicy::new();
    assert_eq!(
        refused(&policy, "ftp://example.com/"),
        Some(Refusal::Scheme)
    );
    assert_eq!(
        refused(&policy, "file:///etc/passwd"),
        Some(Refusal::Scheme)
    );
    assert_eq!(
        refused(&policy, "http://example.com/"),
        Some(Refusal::InsecureScheme)
    );
    assert_eq!(
        refused(&policy, "https://user:pw@example.com/"),
        Some(Refusal::Userinfo)
    );
    assert_eq!(
        refused(&policy, "https://user@example.com/"),
        Some(Refusal::Userinfo)
    );
    assert_eq!(
        refused(&policy.clone().allow_http(), "http://example.com/"),
        None
    );
    assert_eq!(refused(&policy, "https://example.com/"), None);
}

/// A one-shot HTTP server on 127.0.0.1 answering `response` to every request.
async fn server(response: &'static [u8]) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut seen = Vec::new();
                // Read the request head and a small body.
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(response).await;
                let _ = socket.flush().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    (port, hits)
}

fn request(url_text: &str, timeout: Duration) -> OutboundRequest {
    OutboundRequest {
        url: url(url_text),
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::from_static(b"{}"),
        timeout,
    }
}

fn local_only() -> AddressPolicy {
    AddressPolicy::new()
        .allow_http()
        .allow_range(IpRange::parse("127.0.0.1/32").unwrap())
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

#[tokio::test]
async fn d37_a_name_resolving_to_a_private_address_is_refused_at_connect_time() {
    let (port, hits) = server(OK).await;
    let resolver = StaticResolver::new().answer("hooks.example.com", &[ip("127.0.0.1")]);
    let transport = ReqwestTransport::builder()
        .policy(AddressPolicy::new().allow_http())
        .resolver(resolver.clone())
        .build()
        .unwrap();
    let err = transport
        .send(request(
            &format!("http://hooks.example.com:{port}/"),
            Duration::from_secs(5),
        ))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Refused(Refusal::NonPublicAddress));
    assert_eq!(resolver.lookups("hooks.example.com"), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no connection was made");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("127.0.0.1") && !shown.contains("hooks.example.com"),
        "{shown}"
    );
}

#[tokio::test]
async fn d38_dns_rebinding_cannot_move_a_connection() {
    let (port, hits) = server(OK).await;
    // First answer: the allowed address. Every later answer: another loopback address the
    // policy does not allow (standing in for an internal one).
    let resolver = StaticResolver::new()
        .answer("rebind.example.com", &[ip("127.0.0.1")])
        .answer("rebind.example.com", &[ip("127.0.0.2")]);
    let build = || {
        ReqwestTransport::builder()
            .policy(local_only())
            .resolver(resolver.clone())
            .build()
            .unwrap()
    };
    let target = format!("http://rebind.example.com:{port}/");
    let first = build();
    assert_eq!(
        first
            .send(request(&target, Duration::from_secs(5)))
            .await
            .unwrap()
            .status,
        200
    );
    // The same client reuses its connection to the vetted address, or resolves again and
    // vets the new answer: either way nothing reaches 127.0.0.2.
    let again = first.send(request(&target, Duration::from_secs(5))).await;
    assert!(
        matches!(
            again,
            Ok(_)
                | Err(TransportError::Refused(Refusal::NonPublicAddress))
                | Err(TransportError::Connection)
        ),
        "{again:?}"
    );
    let second = build();
    assert_eq!(
        second.send(request(&target, Duration::from_secs(5))).await,
        Err(TransportError::Refused(Refusal::NonPublicAddress))
    );
    assert!(hits.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn d39_mixed_answers_connect_only_to_the_vetted_addresses() {
    let (port, hits) = server(OK).await;
    // 10.0.0.1 is dropped before any connection; only 127.0.0.1 (allowed here) is dialled.
    let resolver =
        StaticResolver::new().answer("mixed.example.com", &[ip("10.0.0.1"), ip("127.0.0.1")]);
    let transport = ReqwestTransport::builder()
        .policy(local_only())
        .resolver(resolver)
        .build()
        .unwrap();
    let response = transport
        .send(request(
            &format!("http://mixed.example.com:{port}/"),
            Duration::from_secs(5),
        ))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn d40_redirects_are_not_followed() {
    for response in [
        &b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n"[..],
        b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 308 Permanent Redirect\r\nlocation: http://[::1]:1/\r\ncontent-length: 0\r\n\r\n",
    ] {
        let (port, hits) = server(response).await;
        let transport = ReqwestTransport::builder().policy(local_only()).build().unwrap();
        let answer = transport
            .send(request(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5)))
            .await
            .unwrap();
        assert!((300..400).contains(&answer.status), "{}", answer.status);
        assert!(answer.header("location").is_some(), "kept for the attempt log");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let class = hookrelay::retry::Classifier::new().classify_status(answer.status);
        assert!(class.is_failure(), "a redirect is a failed attempt");
    }
}

#[tokio::test]
async fn d43_bodies_are_capped_and_a_trickle_hits_the_deadline() {
    // 1 MiB body: 16 KiB kept.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let head = format!("HTTP/1.1 500 Oops\r\ncontent-length: {}\r\n\r\n", 1 << 20);
                let _ = socket.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 65536];
                for _ in 0..16 {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let transport = ReqwestTransport::builder()
        .policy(local_only())
        .build()
        .unwrap();
    let answer = transport
        .send(request(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_secs(5),
        ))
        .await
        .unwrap();
    assert_eq!(answer.status, 500);
    assert_eq!(answer.body.len(), hookrelay::send::RESPONSE_BODY_CAP);

    // A server that sends its headers, then one byte every 100 ms, forever.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
                    .await;
                for _ in 0..200 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if socket.write_all(b"x").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let started = std::time::Instant::now();
    let err = transport
        .send(request(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(500),
        ))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));

    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let err = transport
        .send(request(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(300),
        ))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Timeout);
}

#[tokio::test]
async fn d44_refusals_never_reveal_the_address() {
    let transport = ReqwestTransport::new().unwrap();
    for target in [
        "https://169.254.169.254/latest/meta-data/iam?token=abc",
        "https://10.0.0.1/internal",
        "https://[fd00:ec2::254]/",
    ] {
        let err = transport
            .send(request(target, Duration::from_secs(1)))
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        for secret_part in ["169.254", "10.0.0.1", "fd00", "token=abc", "internal"] {
            assert!(!shown.contains(secret_part), "{shown}");
        }
    }
    let shown = format!(
        "{:?}",
        request("https://example.com/path?token=abc", Duration::from_secs(1))
    );
    assert!(
        !shown.contains("token=abc") && !shown.contains("/path"),
        "{shown}"
    );
}

/// A lookup that fails (a DNS time-out, a server failure) or finds no address yet is
/// transient: a connection failure the retry policy retries, never a refusal that
/// dead-letters the delivery. Only addresses that resolve and are refused are a refusal.
#[tokio::test]
async fn a_failed_or_empty_lookup_is_transient_and_the_next_one_delivers() {
    let (port, hits) = server(OK).await;
    let resolver = StaticResolver::new()
        .fail("blip.example.com")
        .answer("blip.example.com", &[])
        .answer("blip.example.com", &[ip("127.0.0.1")]);
    let transport = ReqwestTransport::builder()
        .policy(local_only())
        .resolver(resolver.clone())
        .build()
        .unwrap();
    let target = format!("http://blip.example.com:{port}/");
    for _ in 0..2 {
        let err = transport
            .send(request(&target, Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert_eq!(err, TransportError::Connection);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    let response = transport
        .send(request(&target, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(resolver.lookups("blip.example.com"), 3);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
