//! `websocket.send` delivery rules: the frame, the path, isolation and fan-out.

use serde_json::{json, Value};

use super::{expect_text, row, Ctx};
use crate::report::CaseResult;
use crate::wire::Next;

pub(super) async fn run(ctx: &Ctx) -> Vec<CaseResult> {
    let mut out = Vec::new();
    let data_cases: [(&str, &str, Option<Value>, &str); 6] = [
        (
            "data.number",
            "`data: 123` arrives as the text `123`",
            Some(json!(123)),
            "123",
        ),
        (
            "data.string",
            "`data: \"hi\"` arrives as `\"hi\"` with the quotes",
            Some(json!("hi")),
            "\"hi\"",
        ),
        (
            "data.object",
            "an object arrives as its compact JSON",
            Some(json!({"a": 1, "b": [true, null]})),
            r#"{"a":1,"b":[true,null]}"#,
        ),
        (
            "data.array",
            "an array arrives as its compact JSON",
            Some(json!([1, "x", {"k": 2}])),
            r#"[1,"x",{"k":2}]"#,
        ),
        (
            "data.missing",
            "a missing `data` arrives as the text `null`",
            None,
            "null",
        ),
        (
            "data.key-order",
            "object keys keep the order they were sent in",
            Some(json!({"z": 1, "a": 2, "m": {"y": 0, "b": 1}})),
            r#"{"z":1,"a":2,"m":{"y":0,"b":1}}"#,
        ),
    ];
    for (case, expectation, data, want) in data_cases {
        out.push(row(
            case,
            expectation,
            data_case(ctx, case, data, want).await,
        ));
    }
    out.push(row(
        "path.leading-slash",
        "`/ws/x` reaches sockets at /ws/x",
        slash(ctx, true).await,
    ));
    out.push(row(
        "path.no-leading-slash",
        "`ws/x` (no leading slash) reaches sockets at /ws/x",
        slash(ctx, false).await,
    ));
    out.push(row(
        "path.query-stripped",
        "a socket at /ws/x?k=v is registered at /ws/x",
        query(ctx).await,
    ));
    out.push(row(
        "path.percent-decoded",
        "a socket at /ws/a%20b receives `ws/a b`",
        percent(ctx).await,
    ));
    out.push(row(
        "path.isolation",
        "a message for one path does not reach another",
        isolation(ctx).await,
    ));
    out.push(row(
        "fan-out",
        "every socket of a path receives the message (10 sockets)",
        fan_out(ctx, 10).await,
    ));
    out
}

async fn data_case(
    ctx: &Ctx,
    name: &str,
    data: Option<Value>,
    want: &str,
) -> Result<String, String> {
    let path = ctx.path(name);
    let mut ws = ctx.open(&path).await?;
    let mut params = json!({ "path": path });
    if let (Some(d), Some(obj)) = (data, params.as_object_mut()) {
        obj.insert("data".into(), d);
    }
    ctx.trigger(&params).await?;
    let got = ctx.next(&mut ws).await;
    expect_text(&got, want)?;
    match ctx.quiet(&mut ws).await {
        Next::Silence => Ok(format!("one frame: {want}")),
        other => Err(format!("expected ONE frame, then also got {other}")),
    }
}

async fn slash(ctx: &Ctx, leading: bool) -> Result<String, String> {
    let path = ctx.path(if leading { "slash" } else { "noslash" });
    let mut ws = ctx.open(&path).await?;
    let sent = if leading {
        path.clone()
    } else {
        path.trim_start_matches('/').to_owned()
    };
    ctx.trigger(&json!({"path": sent, "data": "slash"})).await?;
    expect_text(&ctx.next(&mut ws).await, "\"slash\"")
}

async fn query(ctx: &Ctx) -> Result<String, String> {
    let path = ctx.path("query");
    let mut ws = ctx.open(&format!("{path}?key=value&x=1")).await?;
    ctx.trigger(&json!({"path": path, "data": "q"})).await?;
    expect_text(&ctx.next(&mut ws).await, "\"q\"")
}

async fn percent(ctx: &Ctx) -> Result<String, String> {
    let base = ctx.path("pct");
    let mut ws = ctx.open(&format!("{base}/a%20b")).await?;
    ctx.trigger(&json!({"path": format!("{base}/a b"), "data": "decoded"}))
        .await?;
    expect_text(&ctx.next(&mut ws).await, "\"decoded\"")
}

async fn isolation(ctx: &Ctx) -> Result<String, String> {
    let (p1, p2) = (ctx.path("iso1"), ctx.path("iso2"));
    let mut a = ctx.open(&p1).await?;
    let mut b = ctx.open(&p2).await?;
    ctx.trigger(&json!({"path": p1, "data": "for one"})).await?;
    ctx.trigger(&json!({"path": p2, "data": "for two"})).await?;
    expect_text(&ctx.next(&mut a).await, "\"for one\"")?;
    // The first frame at the second path must be its own message, not the other's.
    expect_text(&ctx.next(&mut b).await, "\"for two\"")?;
    match ctx.quiet(&mut a).await {
        Next::Silence => Ok("each path got only its own message".into()),
        other => Err(format!("the first path also got {other}")),
    }
}

async fn fan_out(ctx: &Ctx, n: usize) -> Result<String, String> {
    let path = ctx.path("fanout");
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        sockets.push(ctx.open(&path).await?);
    }
    ctx.trigger(&json!({"path": path, "data": {"fan": n}}))
        .await?;
    let want = format!("{{\"fan\":{n}}}");
    for (i, ws) in sockets.iter_mut().enumerate() {
        expect_text(&ctx.next(ws).await, &want).map_err(|e| format!("socket {i}: {e}"))?;
    }
    Ok(format!("all {n} sockets received it"))
}
