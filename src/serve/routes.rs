//! HTTP routes of `serve`: `POST /code`, `GET /runs/{id}/events` (in `replay`),
//! `POST /runs/{id}/publish`, `GET /healthz`, `GET /openapi.json`, all behind [`super::guard`].
//!
//! Invariants: a run being published is claimed by a [`PublishClaim`] that the publish task owns,
//! so the claim ends with the publish whatever ends it — a client that leaves neither cuts a
//! publish short nor leaves its run locked.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::validate::{CodeRequest, parse_code_request, parse_publish_request};
use super::{AppState, guard, replay};
use crate::event::{Event, Stage};
use crate::pipeline::publish::PublishRequest;
use crate::pipeline::{self, Command, Gate, RunRequest};
use crate::store::{RunDir, Store};

pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

pub(super) fn router(state: Arc<AppState>) -> Router {
    let limit = state.options.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .route("/code", post(post_code))
        .route("/runs/{id}/events", get(replay::run_events))
        .route("/runs/{id}/publish", post(publish_run))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}

/// The error shape of every refusal: `{"error": what to do, "field": the field at fault}`.
pub(super) fn error(
    status: StatusCode,
    message: impl Into<String>,
    field: Option<&str>,
) -> Response {
    (
        status,
        axum::Json(json!({ "error": message.into(), "field": field })),
    )
        .into_response()
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(json!({
        "status": if state.shutting_down.is_cancelled() { "shutting-down" } else { "ok" },
        "running": state.queue.running(),
        "queued": state.queue.waiting(),
    }))
    .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route", None)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

type SseStream = Sse<std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>>>;

pub(super) fn sse_from(rx: mpsc::Receiver<SseEvent>) -> SseStream {
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Sse::new(Box::pin(stream))
}

async fn post_code(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    if state.shutting_down.is_cancelled() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
            None,
        );
    }
    let request = match parse_code_request(&state, &body) {
        Ok(r) => r,
        Err(resp) => return resp.into_response(),
    };
    let run_id = crate::store::new_run_id();
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(run_session(state, request, run_id, tx));
    sse_from(rx).into_response()
}

fn status(run_id: &str, message: String) -> SseEvent {
    let e = Event::Status {
        run_id: run_id.to_string(),
        stage: Stage::Validate,
        message,
    };
    SseEvent::default().data(e.to_json_line())
}

/// Queues, runs and streams one request; cancels the run if the client goes away.
async fn run_session(
    state: Arc<AppState>,
    request: CodeRequest,
    run_id: String,
    tx: mpsc::Sender<SseEvent>,
) {
    let queued_tx = tx.clone();
    let queued_id = run_id.clone();
    let permit = tokio::select! {
        p = state.queue.acquire(|position| {
            let _ = queued_tx.try_send(status(&queued_id, format!("queued: position {position}")));
        }) => p,
        _ = tx.closed() => return,
    };
    if state.shutting_down.is_cancelled() {
        let e = Event::Error {
            run_id: run_id.clone(),
            stage: Stage::Validate,
            message: "the server is shutting down; the run was not started".into(),
            retryable: true,
            code: crate::event::ErrorCode::Stopped,
        };
        let _ = tx.send(SseEvent::default().data(e.to_json_line())).await;
        return;
    }
    let mut config = (*state.config).clone();
    if let Some(m) = request.model {
        config.model = Some(m);
    }
    let run_request = RunRequest {
        repo: request.repo,
        prompt: request.prompt,
        base: request.base,
        gate: if request.review {
            Gate::NoPr
        } else {
            Gate::AutoApprove
        },
        keep_workspace: false,
        provider: None,
        publish: pipeline::publish::PublishOptions {
            draft: request.draft,
            ..Default::default()
        },
    };
    // The run's folder exists as soon as it starts: hold the table while starting it, so a replay
    // that finds the folder also finds the run live. Keyed by the folder's id (a collision at
    // reservation picks a new one).
    let mut p = {
        let mut active = state.active.lock().ok();
        let p = pipeline::start_with_id(
            run_id.clone(),
            run_request,
            Arc::new(config),
            state.cwd.clone(),
        );
        if let Some(active) = active.as_mut() {
            active.insert(p.run_id.clone(), p.commands.clone());
        }
        p
    };
    let run_id = p.run_id.clone();
    tracing::info!(run = %run_id, "serve: run started");
    let mut seq: u64 = 0;
    let mut client_gone = false;
    let mut cancelled = false;
    let deadline = tokio::time::sleep(state.options.max_run);
    tokio::pin!(deadline);
    let mut heartbeat = tokio::time::interval(state.options.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    loop {
        let outgoing = tokio::select! {
            event = p.events.recv() => match event {
                None => break,
                Some(event) => {
                    let mut sse = SseEvent::default().data(event.to_json_line());
                    // Ids count the events stored in events.jsonl, for Last-Event-ID replay.
                    if !event.is_transient() {
                        seq += 1;
                        sse = sse.id(seq.to_string());
                    }
                    Some(sse)
                }
            },
            _ = heartbeat.tick() => Some(SseEvent::default().comment("keep-alive")),
            _ = &mut deadline, if !cancelled => {
                tracing::warn!(run = %run_id, "serve: run over its time limit, cancelling");
                cancelled = true;
                let limit = state.options.max_run.as_secs();
                let _ = p
                    .commands
                    .send(Command::Stop(format!(
                        "the run went over this server's time limit of {limit} s (serve --max-run)"
                    )))
                    .await;
                None
            }
        };
        if let Some(sse) = outgoing
            && !client_gone
            && tx.send(sse).await.is_err()
        {
            client_gone = true;
            if !state.options.keep_running_on_disconnect && !cancelled {
                tracing::info!(run = %run_id, "serve: client disconnected, cancelling");
                cancelled = true;
                let _ = p.commands.send(Command::Cancel).await;
            }
        }
    }
    let _ = p.task.await;
    if let Ok(mut active) = state.active.lock() {
        active.remove(&run_id);
    }
    drop(permit);
}

/// Publishes a reviewed run from its folder: validates, claims the run, publishes.
async fn publish_run(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(run_dir) = Store::open(&state.config.home)
        .ok()
        .and_then(|s| s.run_dir(&id))
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no run with id '{id}'"),
            Some("id"),
        );
    };
    let request = match parse_publish_request(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if let Some(selection) = &request.selection
        && let Err(e) = pipeline::publish::check_selection(&run_dir, selection)
    {
        let field = if e.in_hunks {
            "excludeHunks"
        } else {
            "excludeFiles"
        };
        return error(StatusCode::BAD_REQUEST, e.message, Some(field));
    }
    if state
        .active
        .lock()
        .map(|a| a.contains_key(&id))
        .unwrap_or(false)
    {
        return error(
            StatusCode::CONFLICT,
            format!("run '{id}' is still going; publish it when it has ended"),
            None,
        );
    }
    let Some(claim) = PublishClaim::take(&state, &id) else {
        return error(
            StatusCode::CONFLICT,
            format!("run '{id}' is being published already"),
            None,
        );
    };
    // Its own task, owning the claim: if the client leaves, this handler is dropped but the
    // publish still ends (no half-done push) and then frees the run.
    let publish = tokio::spawn(async move {
        let response = publish_claimed(state, run_dir, id, request).await;
        drop(claim);
        response
    });
    publish.await.unwrap_or_else(|e| {
        tracing::error!("serve: the publish task failed: {e}");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "publishing failed unexpectedly; the run can be published again",
            None,
        )
    })
}

/// A run's claim to be published: one publish per run at a time. Dropping it — when the publish
/// ends, fails or panics — frees the run.
struct PublishClaim {
    state: Arc<AppState>,
    id: String,
}

impl PublishClaim {
    fn take(state: &Arc<AppState>, id: &str) -> Option<PublishClaim> {
        let mut publishing = state
            .publishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        publishing.insert(id.to_string()).then(|| PublishClaim {
            state: state.clone(),
            id: id.to_string(),
        })
    }
}

impl Drop for PublishClaim {
    fn drop(&mut self) {
        let mut publishing = self
            .state
            .publishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        publishing.remove(&self.id);
    }
}

/// Publishes a claimed run; answers with the outcome and the events it made.
async fn publish_claimed(
    state: Arc<AppState>,
    run_dir: RunDir,
    id: String,
    request: PublishRequest,
) -> Response {
    let cancel = state.shutting_down.child_token();
    let (ok, events) = match pipeline::publish::publish_saved_run(
        run_dir,
        state.config.clone(),
        request,
        cancel,
    ) {
        Ok(mut publishing) => {
            let mut events = vec![];
            while let Some(e) = publishing.events.recv().await {
                events.push(e);
            }
            (publishing.task.await.unwrap_or(false), events)
        }
        Err(e) => {
            tracing::error!("cannot append to the run's events: {e}");
            (false, vec![])
        }
    };
    let last = events.last().cloned();
    let events_json: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    match (ok, last) {
        (true, Some(Event::Done { pr_url, branch, .. })) => (
            StatusCode::OK,
            axum::Json(json!({"runId": id, "prUrl": pr_url, "branch": branch, "events": events_json})),
        )
            .into_response(),
        (_, Some(Event::Error { message, retryable, code, .. })) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({"error": message, "field": null, "retryable": retryable, "code": code, "events": events_json})),
        )
            .into_response(),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "publishing ended without a result", None),
    }
}
