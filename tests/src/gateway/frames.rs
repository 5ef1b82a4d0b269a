//! Connection and inbound-frame rules: upgrade, heartbeat, ping, ignored frames, close, limit.

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::{expect_text, row, Ctx};
use crate::report::{CaseResult, Outcome};
use crate::wire::{self, Next};

pub(super) async fn run(ctx: &Ctx) -> Vec<CaseResult> {
    vec![
        row(
            "upgrade.any-path",
            "a WebSocket upgrade on any path is accepted",
            upgrade(ctx).await,
        ),
        row(
            "connect.nothing-pushed",
            "nothing is pushed on connect",
            nothing_on_connect(ctx).await,
        ),
        row(
            "heartbeat.bang",
            "`!` is answered with the text `!`",
            bang(ctx, "!").await,
        ),
        row(
            "heartbeat.bang-prefix",
            "`!xyz` is answered with the text `!`",
            bang(ctx, "!xyz").await,
        ),
        row(
            "ping.pong",
            "a Ping is answered by a Pong with the same payload",
            ping(ctx).await,
        ),
        row(
            "frames.others-ignored",
            "other text and binary frames are ignored; the socket stays open",
            ignored(ctx).await,
        ),
        row(
            "close.handshake",
            "a Close is answered with a Close",
            close(ctx).await,
        ),
        frame_limit(ctx).await,
    ]
}

async fn upgrade(ctx: &Ctx) -> Result<String, String> {
    for p in [ctx.path("any/deep/path"), "/".to_owned()] {
        ctx.open(&p).await.map_err(|e| format!("{p}: {e}"))?;
    }
    Ok("opened sockets at a deep path and at /".into())
}

async fn nothing_on_connect(ctx: &Ctx) -> Result<String, String> {
    let path = ctx.path("nothing");
    let mut ws = ctx.open(&path).await?;
    match ctx.quiet(&mut ws).await {
        Next::Silence => Ok(format!("nothing within {:?}", ctx.target.quiet)),
        other => Err(format!("got {other} right after connecting")),
    }
}

async fn bang(ctx: &Ctx, frame: &str) -> Result<String, String> {
    let mut ws = ctx.open(&ctx.path("heartbeat")).await?;
    wire::send(&mut ws, Message::text(frame)).await?;
    expect_text(&ctx.next(&mut ws).await, "!")
}

async fn ping(ctx: &Ctx) -> Result<String, String> {
    let mut ws = ctx.open(&ctx.path("ping")).await?;
    wire::send(&mut ws, Message::Ping(b"conformance-ping".to_vec().into())).await?;
    match ctx.next(&mut ws).await {
        Next::Pong(p) if p == b"conformance-ping" => Ok("pong with the same payload".into()),
        other => Err(format!("expected pong \"conformance-ping\", got {other}")),
    }
}

async fn ignored(ctx: &Ctx) -> Result<String, String> {
    let mut ws = ctx.open(&ctx.path("ignored")).await?;
    for m in [
        Message::text("hello"),
        Message::text("{\"a\":1}"),
        Message::binary(vec![1u8, 2, 3]),
    ] {
        wire::send(&mut ws, m).await?;
    }
    match ctx.quiet(&mut ws).await {
        Next::Silence => {}
        other => return Err(format!("expected no answer to other frames, got {other}")),
    }
    wire::send(&mut ws, Message::text("!")).await?;
    expect_text(&ctx.next(&mut ws).await, "!")
        .map(|_| "no answer; `!` still answered afterwards".into())
}

async fn close(ctx: &Ctx) -> Result<String, String> {
    let mut ws = ctx.open(&ctx.path("close")).await?;
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "conformance".into(),
    };
    wire::send(&mut ws, Message::Close(Some(frame))).await?;
    match ctx.next(&mut ws).await {
        Next::Close(code) => Ok(format!("close answered (code {code:?})")),
        other => Err(format!("expected a close frame, got {other}")),
    }
}

/// Reported, not asserted: the original allows 64 KiB; what happens just above it.
async fn frame_limit(ctx: &Ctx) -> CaseResult {
    let case = "limit.frame-size";
    let expectation = "(reported) a 64 KiB + 1 text frame";
    let mut ws = match ctx.open(&ctx.path("limit")).await {
        Ok(ws) => ws,
        Err(e) => return CaseResult::new(case, expectation, Outcome::Fail, e),
    };
    let big = "x".repeat(64 * 1024 + 1);
    let sent = wire::send(&mut ws, Message::text(big)).await;
    let detail = match (sent, ctx.next(&mut ws).await) {
        (Err(e), _) => format!("send failed: {e}"),
        (Ok(()), Next::Close(code)) => format!("socket closed with {code:?}"),
        (Ok(()), Next::Silence) => "accepted (socket stays open)".into(),
        (Ok(()), other) => format!("answered with {other}"),
    };
    CaseResult::new(case, expectation, Outcome::Info, detail)
}
