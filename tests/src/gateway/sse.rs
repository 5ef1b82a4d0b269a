//! The event-stream extension (docs/protocol.md section 6.7): framing, keep-alive, ids,
//! replay by `Last-Event-ID`, bad ids, and refusals like an upgrade's. A gateway without the
//! extension gets every `sse.*` case as information, not as a failure: the first case finds
//! out whether it answers event streams at all.

use std::time::Duration;

use serde_json::{json, Value};

use super::{row, Ctx};
use crate::report::{CaseResult, Outcome};
use crate::wire::Next;

const CASES: [(&str, &str); 6] = [
    (
        "sse.open",
        "a GET with Accept: text/event-stream on a path is 200 text/event-stream, no-cache, X-Accel-Buffering: no",
    ),
    (
        "sse.framing",
        "a broadcast is one event whose data is the text a socket at the path receives",
    ),
    (
        "sse.keep-alive",
        "a quiet stream gets a keep-alive (a comment line) within twice the wait",
    ),
    (
        "sse.ids",
        "with recover=1: first the event reset with id <E>:<S>, then each message with id <E>:<seq>",
    ),
    (
        "sse.replay",
        "Last-Event-ID <E>:<seq> replays what came after (event recovered, then the messages with their ids)",
    ),
    (
        "sse.refusals",
        "a bad Last-Event-ID gets reset (200); a path over the length limit is refused with the upgrade's status",
    ),
];

pub(super) async fn run(ctx: &Ctx) -> Vec<CaseResult> {
    let opened = open(ctx).await;
    if let Err(why) = &opened {
        if why.starts_with("no event streams") {
            return CASES
                .iter()
                .map(|(case, expectation)| {
                    CaseResult::new(case, expectation, Outcome::Info, why.clone())
                })
                .collect();
        }
    }
    vec![
        row(CASES[0].0, CASES[0].1, opened),
        row(CASES[1].0, CASES[1].1, framing(ctx).await),
        row(CASES[2].0, CASES[2].1, keep_alive(ctx).await),
        row(CASES[3].0, CASES[3].1, ids(ctx).await),
        row(CASES[4].0, CASES[4].1, replay(ctx).await),
        row(CASES[5].0, CASES[5].1, refusals(ctx).await),
    ]
}

/// One thing read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Comment,
    Event {
        name: String,
        id: Option<String>,
        data: String,
    },
}

/// An open event stream, read line by line.
struct Stream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    wait: Duration,
}

impl Stream {
    async fn line(&mut self, wait: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8(line[..i].to_vec()).map_err(|e| e.to_string());
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return Err(format!("nothing within {wait:?}")),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(None)) => return Err("the stream ended".into()),
                Ok(Ok(Some(chunk))) => self.buf.extend_from_slice(&chunk),
            }
        }
    }

    /// The next comment or event, within `wait`.
    async fn item(&mut self, wait: Duration) -> Result<Item, String> {
        let (mut name, mut id, mut data, mut any) = (None, None, String::new(), false);
        loop {
            let line = self.line(wait).await?;
            if line.is_empty() {
                if any {
                    return Ok(Item::Event {
                        name: name.unwrap_or_else(|| "message".to_owned()),
                        id,
                        data,
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                if !any {
                    return Ok(Item::Comment);
                }
                continue;
            }
            any = true;
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => name = Some(value.to_owned()),
                "id" => id = Some(value.to_owned()),
                "data" => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
    }

    /// The next event (comments skipped), within the wait.
    async fn event(&mut self) -> Result<(String, Option<String>, String), String> {
        loop {
            if let Item::Event { name, id, data } = self.item(self.wait).await? {
                return Ok((name, id, data));
            }
        }
    }
}

/// Opens a stream at `path_and_query` with the extra `headers`; a refusal gives its status.
async fn stream(
    ctx: &Ctx,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Result<Stream, u16>, String> {
    let mut req = ctx
        .http
        .get(ctx.http_url(path_and_query))
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(3600));
    if let Some(token) = &ctx.target.token {
        req = req.bearer_auth(token);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(ctx.target.wait, req.send())
        .await
        .map_err(|_| "no answer within the wait".to_owned())?
        .map_err(|e| e.to_string())?;
    if resp.status() != 200 {
        return Ok(Err(resp.status().as_u16()));
    }
    Ok(Ok(Stream {
        resp,
        buf: Vec::new(),
        wait: ctx.target.wait,
    }))
}

async fn opened(ctx: &Ctx, path_and_query: &str) -> Result<Stream, String> {
    stream(ctx, path_and_query, &[])
        .await?
        .map_err(|status| format!("the stream was refused with HTTP {status}"))
}

async fn open(ctx: &Ctx) -> Result<String, String> {
    let path = ctx.path("sse-open");
    let s = match stream(ctx, &path, &[]).await? {
        Ok(s) => s,
        Err(status) => return Err(format!("no event streams: HTTP {status}")),
    };
    let header = |name: &str| {
        s.resp
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let content_type = header("content-type");
    if !content_type.starts_with("text/event-stream") {
        return Err(format!(
            "no event streams: 200 with Content-Type {content_type:?}"
        ));
    }
    let (cache, buffering) = (header("cache-control"), header("x-accel-buffering"));
    if cache != "no-cache" || buffering != "no" {
        return Err(format!(
            "Cache-Control {cache:?}, X-Accel-Buffering {buffering:?}"
        ));
    }
    Ok(format!(
        "200 {content_type}, Cache-Control {cache}, X-Accel-Buffering {buffering}"
    ))
}

async fn framing(ctx: &Ctx) -> Result<String, String> {
    let path = ctx.path("sse-framing");
    let mut s = opened(ctx, &path).await?;
    let mut ws = ctx.open(&path).await?;
    let data = json!({"a": 1, "b": ["x", null], "c": "é \"q\""});
    ctx.trigger(&json!({"path": path, "data": data})).await?;
    let frame = match ctx.next(&mut ws).await {
        Next::Text(t) => t,
        other => return Err(format!("the socket got {other}")),
    };
    let (name, id, event) = s.event().await?;
    if name != "message" || id.is_some() || event != frame {
        return Err(format!(
            "event {name:?} id {id:?} data {event:?}, the socket's frame {frame:?}"
        ));
    }
    Ok(format!("data: {event}"))
}

async fn keep_alive(ctx: &Ctx) -> Result<String, String> {
    let mut s = opened(ctx, &ctx.path("sse-keep-alive")).await?;
    let wait = ctx.target.wait * 2;
    // The first comment comes at once (the answer's head goes out with it); the next one is
    // the keep-alive.
    let started = tokio::time::Instant::now();
    for n in 0..2 {
        match s.item(wait).await? {
            Item::Comment => {}
            other => return Err(format!("item {n}: expected a comment, got {other:?}")),
        }
    }
    Ok(format!(
        "two comments, the second after {} ms",
        started.elapsed().as_millis()
    ))
}

/// `(epoch, seq)` from an id `<E>:<seq>`.
fn position(id: &str) -> Result<(String, u64), String> {
    let (e, s) = id.split_once(':').ok_or_else(|| format!("id {id:?}"))?;
    if e.len() != 16 || !e.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("id {id:?}: the epoch is not 16 hex digits"));
    }
    Ok((e.to_owned(), s.parse().map_err(|_| format!("id {id:?}"))?))
}

/// Opens `path` with `recover=1`, checks the `reset` and one message; returns the stream and
/// the epoch.
async fn recovering(ctx: &Ctx, path: &str) -> Result<(Stream, String), String> {
    let mut s = opened(ctx, &format!("{path}?recover=1")).await?;
    let (name, id, data) = s.event().await?;
    let id = id.ok_or("the reset has no id")?;
    let (epoch, seq) = position(&id)?;
    let status: Value = serde_json::from_str(&data).map_err(|e| format!("{data}: {e}"))?;
    if name != "reset" || status != json!({"epoch": epoch, "seq": seq}) {
        return Err(format!("expected reset, got {name} {id} {data}"));
    }
    ctx.trigger(&json!({"path": path, "data": 1})).await?;
    let (name, id, data) = s.event().await?;
    let want = format!("{epoch}:{}", seq + 1);
    if name != "message" || id.as_deref() != Some(want.as_str()) || data != "1" {
        return Err(format!(
            "expected id {want} data 1, got {name} {id:?} {data}"
        ));
    }
    Ok((s, epoch))
}

async fn ids(ctx: &Ctx) -> Result<String, String> {
    let (_, epoch) = recovering(ctx, &ctx.path("sse-ids")).await?;
    Ok(format!("reset {epoch}:0, then id {epoch}:1"))
}

async fn replay(ctx: &Ctx) -> Result<String, String> {
    let path = ctx.path("sse-replay");
    let (s, epoch) = recovering(ctx, &path).await?;
    drop(s);
    // Two messages while away (a socket at the path keeps the history going).
    let mut ws = ctx.open(&format!("{path}?recover=1")).await?;
    let _status = ctx.next(&mut ws).await;
    for n in [2, 3] {
        ctx.trigger(&json!({"path": path, "data": n})).await?;
        let _ = ctx.next(&mut ws).await;
    }
    let last = format!("{epoch}:1");
    let mut back = stream(
        ctx,
        &format!("{path}?recover=1"),
        &[("last-event-id", &last)],
    )
    .await?
    .map_err(|status| format!("refused with HTTP {status}"))?;
    let (name, id, data) = back.event().await?;
    let status: Value = serde_json::from_str(&data).map_err(|e| format!("{data}: {e}"))?;
    if name != "recovered" || id.is_some() || status["replayed"] != 2 {
        return Err(format!(
            "expected recovered (2 replayed), got {name} {id:?} {data}"
        ));
    }
    for n in [2u64, 3] {
        let (name, id, data) = back.event().await?;
        let want = format!("{epoch}:{n}");
        if name != "message" || id.as_deref() != Some(want.as_str()) || data != n.to_string() {
            return Err(format!(
                "expected id {want} data {n}, got {name} {id:?} {data}"
            ));
        }
    }
    Ok(format!("recovered from {last}: 2 replayed with their ids"))
}

async fn refusals(ctx: &Ctx) -> Result<String, String> {
    let path = ctx.path("sse-refusals");
    let mut bad = stream(
        ctx,
        &format!("{path}?recover=1"),
        &[("last-event-id", "not-an-id")],
    )
    .await?
    .map_err(|status| format!("a bad Last-Event-ID was refused with HTTP {status}"))?;
    let (name, ..) = bad.event().await?;
    if name != "reset" {
        return Err(format!("a bad Last-Event-ID got {name}, expected reset"));
    }
    let long = format!("{}/{}", path, "x".repeat(10_000));
    let upgrade = match crate::wire::open(
        &ctx.ws_url(&long),
        ctx.target.token.as_deref(),
        ctx.target.wait,
    )
    .await
    {
        Ok(_) => return Err("a 10 KB path was accepted as a WebSocket".into()),
        Err(e) => e,
    };
    let status = match stream(ctx, &long, &[]).await? {
        Ok(_) => return Err("a 10 KB path was accepted as an event stream".into()),
        Err(status) => status,
    };
    if !upgrade.contains(&format!("HTTP {status}")) {
        return Err(format!("the stream got {status}, the upgrade: {upgrade}"));
    }
    Ok(format!("bad id: reset; a 10 KB path: {status} for both"))
}
