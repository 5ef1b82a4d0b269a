//! One REST request.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use http::Method;
use serde::Serialize;
use serde_json::Value;

use super::{RequestError, Response};
use crate::client::parse_header;
use crate::url::{append_query, check_http, resolve};
use crate::{Client, Error};

/// Whether a request of this method says `Content-Type: application/json` even without a
/// body: gateways refuse (415) any request that is not a GET or HEAD and is not JSON, so that
/// a page of another site cannot reach an action without a CORS preflight.
fn needs_content_type(method: &Method) -> bool {
    method != Method::GET && method != Method::HEAD
}

/// A REST request being built; `.await` it (or call [`send`](Self::send)). Never panics: the
/// first invalid part is the error of the call.
///
/// Every request says `Accept: application/json`, and `Content-Type: application/json` when
/// it has a body or its method is not GET or HEAD (the gateway answers 415 otherwise);
/// [`header`](Self::header) replaces either.
#[derive(Debug)]
#[must_use]
pub struct RequestBuilder {
    client: Client,
    method: Method,
    url: Result<url::Url, Error>,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
    error: Option<Error>,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: Method, url: &str) -> RequestBuilder {
        let url = resolve(client.defaults.base_url.as_ref(), url).and_then(check_http);
        let timeout = client.defaults.timeout;
        RequestBuilder {
            client,
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            timeout,
            error: None,
        }
    }

    /// Appends query pairs (percent-encoded); call it again to add more.
    pub fn query<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        if let Ok(url) = &mut self.url {
            append_query(url, pairs);
        }
        self
    }

    /// Adds a header to this request only (on top of the client's defaults, replacing the
    /// defaults of the same name; call it again with the same name to send several values).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match parse_header(name, value) {
            Ok((n, v)) => {
                self.headers.append(n, v);
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Sends `body` as JSON (`Content-Type: application/json`).
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = Some(bytes),
            Err(e) => {
                self.error
                    .get_or_insert(Error::Decode(format!("request body: {e}")));
            }
        }
        self
    }

    /// Gives up after `timeout` (from sending to the end of the body). Default: the client's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole body.
    ///
    /// # Errors
    /// The first invalid part ([`Error::InvalidUrl`], [`Error::InvalidConfig`],
    /// [`Error::Decode`]), or [`Error::Request`] if the call fails below HTTP or times out.
    /// An HTTP error status is not an error here: see [`Response::error_for_status`].
    pub async fn send(self) -> Result<Response, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let url = self.url?;
        let mut headers = self.client.defaults.headers_now().await;
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if self.body.is_some() || needs_content_type(&self.method) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        // A name set on the request replaces the defaults of that name; repeated, it is sent
        // with every value.
        for name in self.headers.keys() {
            headers.remove(name);
        }
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        let mut req = self
            .client
            .http
            .request(self.method.clone(), url)
            .headers(headers);
        if let Some(body) = self.body {
            req = req.body(body);
        }
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        let started = web_time_now();
        let resp = req.send().await.map_err(RequestError::new)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(RequestError::new)?;
        tracing::debug!(
            target: "moleculer_ws_client::rest",
            method = %self.method,
            status = status.as_u16(),
            bytes = bytes.len(),
            elapsed_ms = elapsed_ms(started),
            "REST call answered"
        );
        Ok(Response::new(status, headers, parse_body(&bytes)))
    }
}

/// A REST call is a future: `client.get(url).query(..).await`.
impl IntoFuture for RequestBuilder {
    type Output = Result<Response, Error>;
    #[cfg(not(target_arch = "wasm32"))]
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;
    // reqwest's browser futures are not `Send` (nothing is, in a page).
    #[cfg(target_arch = "wasm32")]
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// The start of a call, for its log line (no clock on wasm32 without the browser's).
#[cfg(not(target_arch = "wasm32"))]
fn web_time_now() -> Option<std::time::Instant> {
    Some(std::time::Instant::now())
}
#[cfg(target_arch = "wasm32")]
fn web_time_now() -> Option<std::time::Instant> {
    None
}

fn elapsed_ms(started: Option<std::time::Instant>) -> Option<u64> {
    started.map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX))
}

/// JSON if the body parses, `null` if empty, else the text as a JSON string.
pub(crate) fn parse_body(bytes: &[u8]) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_parse_leniently() {
        assert_eq!(parse_body(b""), Value::Null);
        assert_eq!(parse_body(b" \n"), Value::Null);
        assert_eq!(parse_body(b"{\"a\":1}"), json!({"a": 1}));
        assert_eq!(parse_body(b"123"), json!(123));
        assert_eq!(parse_body(b"<html>"), json!("<html>"));
    }

    #[tokio::test]
    async fn invalid_parts_surface_at_send() {
        let c = Client::new().unwrap();
        let e = c
            .request(Method::GET, "/relative")
            .send()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidUrl(_)), "{e:?}");
        let e = c.request(Method::GET, "ws://h/").send().await.unwrap_err();
        assert!(matches!(e, Error::InvalidUrl(_)), "{e:?}");
        let e = c
            .request(Method::GET, "http://127.0.0.1:9/")
            .header("bad header", "x")
            .send()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidConfig(_)), "{e:?}");
    }
}
