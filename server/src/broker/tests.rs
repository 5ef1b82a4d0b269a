//! Unit tests of `broker`.
use super::*;
use serde_json::json;
use std::sync::Mutex;

#[tokio::test]
async fn call_runs_local_action_and_reports_missing_one() {
    let broker = Broker::new("n1");
    broker.add_action("math.add", |ctx: Context| async move {
        let a = ctx.params["a"].as_i64().unwrap_or(0);
        let b = ctx.params["b"].as_i64().unwrap_or(0);
        Ok(json!(a + b))
    });
    assert_eq!(
        broker.call("math.add", json!({"a": 2, "b": 3})).await,
        Ok(json!(5))
    );
    let err = broker.call("math.sub", json!({})).await.unwrap_err();
    assert_eq!((err.code, err.kind.as_str()), (404, "SERVICE_NOT_FOUND"));
}

#[tokio::test]
async fn an_abandoned_call_aborts_its_action() {
    struct Dropped(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    let broker = Broker::new("n1");
    let (tx, dropped) = tokio::sync::oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    broker.add_action("slow", move |_ctx: Context| {
        let guard = Dropped(tx.lock().unwrap().take());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(Value::Null)
        }
    });
    let call = broker.call("slow", Value::Null);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(50), call)
            .await
            .is_err()
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), dropped)
        .await
        .expect("the action is aborted when its caller gives up")
        .expect("the guard reports its drop");
}

#[tokio::test]
async fn panicking_action_becomes_internal_error_without_details() {
    let broker = Broker::new("n1");
    broker.add_action("boom", |_ctx: Context| async move {
        if true {
            panic!("secret detail");
        }
        Ok(Value::Null)
    });
    let err = broker.call("boom", Value::Null).await.unwrap_err();
    assert_eq!(err.code, 500);
    assert!(!err.message.contains("secret"));
}

#[tokio::test]
async fn broadcast_reaches_all_listeners_emit_one_per_group() {
    let broker = Broker::new("n1");
    let seen = Arc::new(Mutex::new(Vec::new()));
    for (group, tag) in [("a", "a1"), ("a", "a2"), ("b", "b1")] {
        let seen = seen.clone();
        broker.on_event("ev", group, move |e: &Event| {
            seen.lock().unwrap().push((tag, e.params.clone()));
        });
    }
    broker.broadcast("ev", json!(1)).await;
    assert_eq!(seen.lock().unwrap().len(), 3);
    seen.lock().unwrap().clear();
    broker.emit("ev", json!(2)).await;
    let tags: Vec<&str> = seen.lock().unwrap().iter().map(|(t, _)| *t).collect();
    assert_eq!(tags.len(), 2);
    assert!(tags.contains(&"b1"));
    assert!(tags.contains(&"a1") ^ tags.contains(&"a2"));
}
