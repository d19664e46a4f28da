//! With the `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, a run's spans are exported over
//! OTLP/HTTP; run by `.ci/run` as `cargo test --features otel --test otel`.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::json;
use support::{Env, make_repo, script};

/// What the collector received: content type and body.
type Request = (String, Vec<u8>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_exports_its_spans_to_the_collector() {
    let received: Arc<Mutex<Vec<Request>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                sink.lock().unwrap().push((ct, body.to_vec()));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let env = Env::new();
    let repo = make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    let s = env.write("s.json", &script(json!([{"text": "done"}])));
    let out = tokio::task::spawn_blocking({
        let mut cmd = env.scripted_command(repo.to_str().unwrap(), "p", &s, &[]);
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"));
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = received.lock().unwrap().clone();
    assert!(!got.is_empty(), "the collector received spans");
    let (ct, body) = &got[0];
    assert_eq!(ct, "application/x-protobuf");
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("tiny-backspace") && text.contains("run_id"),
        "{text}"
    );
}
