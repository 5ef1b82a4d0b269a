//! Opening an event stream (Server-Sent Events, docs/protocol.md section 6.7): the same URL
//! with `http`/`https` for `ws`/`wss`, the same headers, token, proxy and TLS as the
//! WebSocket, and a `GET` with `Accept: text/event-stream` through hyper's HTTP/1 client. The
//! body's bytes go to the session core, which parses them.

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HOST};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use super::socket::Settings;
use crate::session::ConnectFailure;

/// An open event stream: the response body, and the task that runs its connection (ended
/// when the stream is dropped).
pub(super) struct EventStream {
    body: Incoming,
    conn: JoinHandle<()>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl EventStream {
    /// The next bytes of the body: `None` at its end, `Err` when the connection failed.
    pub(super) async fn next(&mut self) -> Option<Result<Bytes, String>> {
        loop {
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                    // Trailers: nothing for the session.
                }
                Err(e) => return Some(Err(e.to_string())),
            }
        }
    }
}

/// Opens the event stream of `settings`' URL: the token provider is asked now, once per
/// attempt, as for a WebSocket.
pub(super) async fn open(
    settings: std::sync::Arc<Settings>,
) -> Result<EventStream, ConnectFailure> {
    let failed = |e: String| ConnectFailure::Transport(e);
    let (url, token) = super::socket::attempt(&settings).await;
    let scheme = match url.scheme() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        other => {
            return Err(failed(format!(
                "{url}: scheme {other:?} has no event stream"
            )))
        }
    };
    let mut http_url = url.clone();
    http_url
        .set_scheme(scheme)
        .map_err(|()| failed(format!("{url}: no {scheme} URL")))?;
    let authority = match (http_url.host_str(), http_url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err(failed(format!("{url}: no host"))),
    };
    let target = match http_url.query() {
        Some(q) => format!("{}?{q}", http_url.path()),
        None => http_url.path().to_owned(),
    };
    let mut request = http::Request::get(target.as_str())
        .header(HOST, authority.as_str())
        .header(ACCEPT, "text/event-stream")
        .header(CACHE_CONTROL, "no-cache")
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(e.to_string()))?;
    super::socket::add_headers(request.headers_mut(), &settings, token.as_deref());
    // The WebSocket's way to the gateway (proxy tunnel or TCP), then TLS for https.
    let net = &settings.defaults.net;
    let stream = super::connect::transport(&url, net).await?;
    let io = super::connect::secure(&http_url, stream, net)
        .await
        .map_err(failed)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| failed(format!("{authority}: {e}")))?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed(format!("{authority}: {e}")))?;
    let status = response.status().as_u16();
    if status != 200 {
        conn.abort();
        return Err(match super::socket::retry_after(response.headers()) {
            Some(delay) => ConnectFailure::RetryAfter { status, delay },
            None => ConnectFailure::HttpStatus(status),
        });
    }
    let is_stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/event-stream"));
    if !is_stream {
        conn.abort();
        return Err(failed(format!(
            "{authority} answered 200 without an event stream (Content-Type {:?})",
            response.headers().get(CONTENT_TYPE)
        )));
    }
    Ok(EventStream {
        body: response.into_body(),
        conn,
    })
}
