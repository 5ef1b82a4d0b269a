//! Gateway conformance of our gateway, diffed against the committed expectations
//! (`tests/expected/gateway.json`), as tungstenite does with its Autobahn results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moleculer_ws_conformance::{check_gateway, report, CaseResult, GatewayTarget};
use moleculer_ws_server::{Gateway, GatewayConfig};

const EXPECTED: &str = include_str!("../expected/gateway.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_gateway_matches_the_committed_expectations() {
    let gw = Gateway::builder()
        .config(GatewayConfig::default().trigger(true))
        .build()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let target = GatewayTarget::new(format!("http://{}", gw.local_addr()).parse().unwrap());
    let results = check_gateway(target).await;
    print!("{}", report::table(&results));
    let expected: Vec<CaseResult> = serde_json::from_str(EXPECTED).unwrap();
    let diff = report::diff(&expected, &results);
    assert!(
        diff.is_empty(),
        "differs from expected/gateway.json:\n{}",
        diff.join("\n")
    );
    assert!(!report::any_failed(&results));
    // The informational frame-limit case reports our limit.
    let limit = results
        .iter()
        .find(|r| r.case == "limit.frame-size")
        .unwrap();
    assert_eq!(limit.detail, "socket closed with Some(1009)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_protected_gateway_passes_with_the_token_and_fails_without() {
    let config = GatewayConfig::default().trigger(true).token("t0k");
    let gw = Gateway::builder()
        .config(config)
        .build()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let url: url::Url = format!("http://{}", gw.local_addr()).parse().unwrap();
    let mut target = GatewayTarget::new(url.clone());
    target.token = Some("t0k".into());
    let results = check_gateway(target).await;
    assert!(!report::any_failed(&results), "{}", report::table(&results));
    // Without the token the upgrade is refused: the harness must say so, not pass.
    let results = check_gateway(GatewayTarget::new(url)).await;
    let upgrade = results
        .iter()
        .find(|r| r.case == "upgrade.any-path")
        .unwrap();
    assert_eq!(upgrade.result, report::Outcome::Fail);
    assert!(upgrade.detail.contains("403"), "{}", upgrade.detail);
}

#[test]
fn cli_exits_non_zero_when_a_case_fails() {
    // Nothing listens on a port just released: every case fails, exit code 1.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moleculer-ws-conformance"))
        .args([
            "gateway",
            "--url",
            &format!("http://{addr}"),
            "--wait-ms",
            "500",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 passed, 28 failed"), "{text}");
}
