//! Unit tests of `rest`.
use super::*;

fn m(route: &Route, method: &str, path: &str) -> Option<Vec<(String, String)>> {
    let r = route.clone().compile().ok()?;
    r.matches(&Method::from_bytes(method.as_bytes()).ok()?, path)
}

#[test]
fn patterns_match_literals_variables_and_trailing_wildcard() {
    let users = Route::get("/api/users/:id", "users.get");
    assert_eq!(
        m(&users, "GET", "/api/users/7"),
        Some(vec![("id".into(), "7".into())])
    );
    assert_eq!(m(&users, "POST", "/api/users/7"), None);
    assert_eq!(m(&users, "GET", "/api/users/7/x"), None);
    let files = Route::new("*", "/api/files/*", "files.any");
    assert_eq!(m(&files, "PUT", "/api/files"), Some(vec![]));
    assert_eq!(m(&files, "GET", "/api/files/a/b"), Some(vec![]));
    assert_eq!(m(&files, "GET", "/api/other"), None);
}

#[test]
fn bad_patterns_are_errors() {
    assert!(Route::get("api", "a.b").compile().is_err());
    assert!(Route::get("/a/*/b", "a.b").compile().is_err());
    assert!(Route::get("/a/:", "a.b").compile().is_err());
    assert!(Route::get("/a", "").compile().is_err());
}

async fn request(
    method: &str,
    content_type: Option<&str>,
    vars: &[(&str, &str)],
    uri: &str,
    body: &str,
) -> Result<Value, MoleculerError> {
    let vars = vars
        .iter()
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = content_type {
        req = req.header(header::CONTENT_TYPE, t);
    }
    let req = req.body(Body::from(body.to_owned())).unwrap();
    params(vars, req, 1024, Duration::from_secs(10))
        .await
        .map_err(BodyError::into_error)
}

async fn p(vars: &[(&str, &str)], uri: &str, body: &str) -> Result<Value, MoleculerError> {
    request("POST", Some("application/json"), vars, uri, body).await
}

#[tokio::test]
async fn only_json_reaches_an_action_except_for_plain_gets() {
    for (method, content_type) in [
        ("POST", Some("text/plain")),
        ("POST", Some("application/x-www-form-urlencoded")),
        ("POST", Some("multipart/form-data; boundary=x")),
        ("POST", None),
        ("DELETE", None),
        ("PUT", Some("application/jsonx")),
        ("GET", Some("text/plain")),
    ] {
        let e = request(method, content_type, &[], "/x?a=1", r#"{"b":2}"#)
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.kind.as_str()),
            (415, "UNSUPPORTED_MEDIA_TYPE"),
            "{method} {content_type:?}"
        );
    }
    for content_type in ["application/json", "Application/JSON; charset=utf-8"] {
        let v = request("POST", Some(content_type), &[], "/x?a=1", r#"{"b":2}"#).await;
        assert_eq!(v.unwrap(), serde_json::json!({"a": "1", "b": 2}));
    }
    let v = request("GET", None, &[], "/x?a=1", "").await;
    assert_eq!(v.unwrap(), serde_json::json!({"a": "1"}));
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let (tx, body) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
    let body = Body::from_stream(tokio_stream_from(body));
    let req = Request::builder()
        .method("POST")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    let e = params(vec![], req, 1024, Duration::from_millis(50))
        .await
        .unwrap_err()
        .into_error();
    assert_eq!((e.code, e.kind.as_str()), (408, "BODY_TIMEOUT"));
    drop(tx);
}

/// A stream of the channel's items (the body of a client that never finishes sending).
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn params_merge_path_then_query_then_body() {
    let v = p(
        &[("id", "1")],
        "/x?id=2&q=a&q=b&k=v",
        r#"{"id":3,"k":"body","b":true}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"id":"1","q":["a","b"],"k":"v","b":true})
    );
    assert_eq!(
        p(&[], "/x", "[1,2]").await.unwrap(),
        serde_json::json!([1, 2])
    );
    assert_eq!(p(&[], "/x", "").await.unwrap(), serde_json::json!({}));
}

#[tokio::test]
async fn malformed_or_oversized_bodies_are_client_errors() {
    let e = p(&[], "/x", "{nope").await.unwrap_err();
    assert_eq!((e.code, e.kind.as_str()), (400, "INVALID_REQUEST_BODY"));
    let e = p(&[], "/x?a=1", "[1]").await.unwrap_err();
    assert_eq!(e.code, 400);
    let e = p(&[], "/x", &"x".repeat(2000)).await.unwrap_err();
    assert_eq!(e.code, 413);
}
