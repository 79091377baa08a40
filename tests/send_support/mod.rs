//! A transport that records every request and answers from a script, for dispatcher tests
//! that need no network.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookrelay::send::{OutboundRequest, Transport, TransportError, TransportResponse};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub url: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Answers per URL host+path from a queue; the default answer once the queue is empty.
#[derive(Debug, Clone, Default)]
pub struct ScriptedTransport {
    inner: Arc<Mutex<Script>>,
}

#[derive(Debug, Default)]
struct Script {
    answers: HashMap<String, VecDeque<Result<TransportResponse, TransportError>>>,
    default: HashMap<String, Result<TransportResponse, TransportError>>,
    seen: Vec<Seen>,
    delay: HashMap<String, Duration>,
}

fn key(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("test url");
    format!("{}{}", parsed.host_str().unwrap_or(""), parsed.path())
}

impl ScriptedTransport {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues answers for `url`.
    pub fn answer(
        &self,
        url: &str,
        answers: impl IntoIterator<Item = Result<TransportResponse, TransportError>>,
    ) -> &Self {
        self.inner
            .lock()
            .unwrap()
            .answers
            .entry(key(url))
            .or_default()
            .extend(answers);
        self
    }

    /// The answer for `url` once its queue is empty (default: 200).
    pub fn always(&self, url: &str, answer: Result<TransportResponse, TransportError>) -> &Self {
        self.inner.lock().unwrap().default.insert(key(url), answer);
        self
    }

    /// Every request to `url` takes this long.
    pub fn delay(&self, url: &str, by: Duration) -> &Self {
        self.inner.lock().unwrap().delay.insert(key(url), by);
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn seen_at(&self, url: &str) -> Vec<Seen> {
        let k = key(url);
        self.seen()
            .into_iter()
            .filter(|s| key(&s.url) == k)
            .collect()
    }
}

pub fn status(code: u16) -> Result<TransportResponse, TransportError> {
    Ok(TransportResponse::status(code))
}

pub fn status_with(
    code: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<TransportResponse, TransportError> {
    Ok(TransportResponse {
        status: code,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: bytes::Bytes::copy_from_slice(body.as_bytes()),
    })
}

impl Transport for ScriptedTransport {
    async fn send(&self, request: OutboundRequest) -> Result<TransportResponse, TransportError> {
        let k = key(request.url.as_str());
        let (answer, delay) = {
            let mut script = self.inner.lock().unwrap();
            script.seen.push(Seen {
                url: request.url.to_string(),
                headers: request.headers.clone(),
                body: request.body.to_vec(),
                timeout: request.timeout,
            });
            let answer = script
                .answers
                .get_mut(&k)
                .and_then(VecDeque::pop_front)
                .or_else(|| script.default.get(&k).cloned())
                .unwrap_or_else(|| status(200));
            (answer, script.delay.get(&k).copied())
        };
        if let Some(delay) = delay {
            if delay >= request.timeout {
                tokio::time::sleep(request.timeout).await;
                return Err(TransportError::Timeout);
            }
            tokio::time::sleep(delay).await;
        }
        answer
    }
}
