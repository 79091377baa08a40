//! HTTPS through `ReqwestTransport`: real TLS handshakes (rustls, *ring*) with a local rustls
//! server on 127.0.0.1 whose certificate chains to a test CA (`tests/fixtures/tls`), trusted
//! through `ReqwestTransportBuilder::root_certificate` — and refused without it.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hookrelay::send::{
    AddressPolicy, IpRange, OutboundRequest, ReqwestTransport, StaticResolver, Transport,
    TransportError,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CA: &[u8] = include_bytes!("fixtures/tls/ca.der");
const LEAF: &[u8] = include_bytes!("fixtures/tls/leaf.der");
const LEAF_KEY: &[u8] = include_bytes!("fixtures/tls/leaf-key.der");
const HOST: &str = "tls.hookrelay.example";

/// What the server saw on one connection.
#[derive(Debug)]
struct Seen {
    /// The SNI the client sent, once the handshake completed.
    sni: Option<String>,
    /// The request as read, or why the handshake or the read failed.
    request: Result<String, String>,
}

/// A TLS server on 127.0.0.1 for one connection: it answers 200 `ok` to one request.
fn server() -> (u16, JoinHandle<Seen>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(LEAF.to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(LEAF_KEY.to_vec())),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut conn = rustls::ServerConnection::new(config).unwrap();
        let mut request = Vec::new();
        let mut failure = None;
        {
            let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
            let mut buf = [0u8; 4096];
            // The head, then the two-byte body.
            while !request.ends_with(b"\r\n\r\n{}") {
                match tls.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
            if failure.is_none() {
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
                let _ = tls.flush();
            }
        }
        conn.send_close_notify();
        let _ = conn.complete_io(&mut tcp);
        Seen {
            sni: conn.server_name().map(str::to_owned),
            request: match failure {
                Some(why) => Err(why),
                None => Ok(String::from_utf8_lossy(&request).into_owned()),
            },
        }
    });
    (port, handle)
}

fn request(port: u16) -> OutboundRequest {
    OutboundRequest {
        url: url::Url::parse(&format!("https://{HOST}:{port}/hook")).unwrap(),
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::from_static(b"{}"),
        timeout: Duration::from_secs(10),
    }
}

fn loopback() -> (AddressPolicy, StaticResolver) {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    (
        AddressPolicy::new().allow_range(IpRange::parse("127.0.0.1/32").unwrap()),
        StaticResolver::new().answer(HOST, &[loopback]),
    )
}

#[tokio::test]
async fn https_delivery_completes_a_tls_handshake() {
    let (port, seen) = server();
    let (policy, resolver) = loopback();
    let transport = ReqwestTransport::builder()
        .policy(policy)
        .resolver(resolver)
        .root_certificate(reqwest::Certificate::from_der(CA).unwrap())
        .build()
        .unwrap();
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_some(),
        "building installed a crypto provider"
    );
    let response = transport.send(request(port)).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"ok");

    let seen = tokio::task::spawn_blocking(move || seen.join().unwrap())
        .await
        .unwrap();
    assert_eq!(seen.sni.as_deref(), Some(HOST), "{seen:?}");
    let request = seen.request.unwrap();
    assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
    assert!(request.ends_with("\r\n\r\n{}"), "{request}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let (port, seen) = server();
    let (policy, resolver) = loopback();
    // Only the platform's roots: the test CA is not among them.
    let transport = ReqwestTransport::builder()
        .policy(policy)
        .resolver(resolver)
        .build()
        .unwrap();
    let err = transport.send(request(port)).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Connection | TransportError::Other),
        "{err:?}"
    );

    let seen = tokio::task::spawn_blocking(move || seen.join().unwrap())
        .await
        .unwrap();
    // The client reached the TLS layer (it sent its hello with the name) and then refused.
    assert_eq!(seen.sni.as_deref(), Some(HOST), "{seen:?}");
    assert!(seen.request.is_err(), "{seen:?}");
}
