//! HTTP routes of `serve`: `POST /code`, `GET /runs/{id}/events`, `POST /runs/{id}/publish`,
//! `GET /healthz`, `GET /openapi.json`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{AppState, tokens_match};
use crate::event::{Event, Stage};
use crate::forge::record::PublishRequest;
use crate::pipeline::{self, Command, Gate, RunRequest, Selection};
use crate::repo::RepoSource;
use crate::store::Store;

pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

pub(super) fn router(state: Arc<AppState>) -> Router {
    let limit = state.options.max_body_bytes;
    let protected = Router::new()
        .route("/code", post(post_code))
        .route("/runs/{id}/events", get(run_events))
        .route("/runs/{id}/publish", post(publish_run))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .merge(protected)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Response {
    (
        status,
        axum::Json(json!({ "error": message.into(), "field": field })),
    )
        .into_response()
}

/// A 400 naming the field at fault.
struct BadRequest {
    message: String,
    field: Option<&'static str>,
}

fn bad(message: impl Into<String>, field: Option<&'static str>) -> BadRequest {
    BadRequest {
        message: message.into(),
        field,
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.message, self.field)
    }
}

async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !tokens_match(given.as_bytes(), expected.expose().as_bytes()) {
            let mut resp = error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token: send `Authorization: Bearer <TB_SERVER_TOKEN>`",
                None,
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    }
    next.run(request).await
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(json!({
        "status": if state.shutting_down.is_cancelled() { "shutting-down" } else { "ok" },
        "running": state.queue.running(),
        "queued": state.queue.waiting(),
    }))
    .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// A validated `POST /code` body.
struct CodeRequest {
    repo: String,
    prompt: String,
    base: Option<String>,
    model: Option<String>,
    review: bool,
    draft: bool,
}

fn field_str<'a>(body: &'a Value, field: &'static str) -> Result<Option<&'a str>, BadRequest> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad(format!("'{field}' must be a string"), Some(field))),
    }
}

fn field_bool(body: &Value, field: &'static str) -> Result<bool, BadRequest> {
    match body.get(field) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("'{field}' must be true or false"), Some(field))),
    }
}

fn parse_code_request(state: &AppState, bytes: &[u8]) -> Result<CodeRequest, BadRequest> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the body must be a JSON object: {e}"), None))?;
    if !body.is_object() {
        return Err(bad("the body must be a JSON object", None));
    }
    let repo = field_str(&body, "repoUrl")?.map(str::trim).unwrap_or("");
    if repo.is_empty() {
        return Err(bad("'repoUrl' is required", Some("repoUrl")));
    }
    match RepoSource::parse(repo, &state.cwd) {
        Err(e) => {
            return Err(bad(e.to_string(), Some("repoUrl")));
        }
        Ok(RepoSource::Local { .. }) if !state.options.allow_local => {
            return Err(bad(
                "this server does not accept local paths; give an https:// URL or OWNER/REPO",
                Some("repoUrl"),
            ));
        }
        Ok(_) => {}
    }
    let prompt = field_str(&body, "prompt")?.map(str::trim).unwrap_or("");
    if prompt.is_empty() {
        return Err(bad(
            "'prompt' is required and must not be empty",
            Some("prompt"),
        ));
    }
    let max = state.options.max_prompt_chars;
    if prompt.chars().count() > max {
        return Err(bad(
            format!("'prompt' is longer than {max} characters"),
            Some("prompt"),
        ));
    }
    let base = field_str(&body, "base")?.map(str::to_string);
    if let Some(b) = &base {
        crate::repo::check_branch_name(b).map_err(|m| bad(m, Some("base")))?;
    }
    let model = field_str(&body, "model")?.map(str::to_string);
    if let Some(m) = &model {
        let (provider, name) = m.split_once(':').unwrap_or((m, ""));
        if provider == "scripted" && !state.options.allow_local {
            return Err(bad(
                "this server does not accept scripted models",
                Some("model"),
            ));
        }
        let name_ok = provider == "scripted"
            || (!name.is_empty()
                && name.len() <= 100
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c)));
        if !matches!(provider, "anthropic" | "openai" | "scripted") || !name_ok {
            return Err(bad(
                format!("'{m}' is not a model: use anthropic:MODEL or openai:MODEL"),
                Some("model"),
            ));
        }
    }
    let draft = field_bool(&body, "draft")?;
    let review = field_bool(&body, "review")?;
    Ok(CodeRequest {
        repo: repo.to_string(),
        prompt: prompt.to_string(),
        base,
        model,
        review,
        draft,
    })
}

type SseStream = Sse<std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>>>;

fn sse_from(rx: mpsc::Receiver<SseEvent>) -> SseStream {
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
    let mut p = pipeline::start_with_id(
        run_id.clone(),
        run_request,
        Arc::new(config),
        state.cwd.clone(),
    );
    if let Ok(mut active) = state.active.lock() {
        active.insert(run_id.clone(), p.commands.clone());
    }
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
                    if !matches!(event, Event::AiDelta { .. }) {
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

fn last_event_id(headers: &HeaderMap) -> usize {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn is_terminal(line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| {
            v.get("type")
                .and_then(Value::as_str)
                .map(|t| t == "Done" || t == "Error")
        })
        .unwrap_or(false)
}

/// Replays a run's stored events, resuming after `Last-Event-ID`, and follows a run still going.
async fn run_events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(store) = Store::open(&state.config.home) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the state directory is not usable",
            None,
        );
    };
    let Some(dir) = store.run_dir(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no run with id '{id}'"),
            Some("id"),
        );
    };
    let after = last_event_id(&headers);
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let path = dir.events_path();
        let mut sent = 0usize;
        loop {
            let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
            // Only whole lines: the writer may be mid-line.
            let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
            let mut ended = false;
            for (i, line) in complete.lines().enumerate().skip(sent) {
                sent = i + 1;
                ended |= is_terminal(line);
                if sent > after
                    && tx
                        .send(SseEvent::default().id(sent.to_string()).data(line))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            let running = state
                .active
                .lock()
                .map(|a| a.contains_key(&id))
                .unwrap_or(false);
            if ended || !running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    sse_from(rx).into_response()
}

fn parse_publish_request(bytes: &[u8]) -> Result<PublishRequest, BadRequest> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(PublishRequest::default());
    }
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the body must be a JSON object: {e}"), None))?;
    if !body.is_object() {
        return Err(bad("the body must be a JSON object", None));
    }
    let strings = |field: &'static str| -> Result<Vec<String>, BadRequest> {
        match body.get(field) {
            None => Ok(vec![]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("'{field}' must list strings"), Some(field)))
                })
                .collect(),
            Some(_) => Err(bad(format!("'{field}' must be an array"), Some(field))),
        }
    };
    let excluded_files = strings("excludeFiles")?;
    let mut excluded_hunks = vec![];
    match body.get("excludeHunks") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let path = item.get("path").and_then(Value::as_str);
                let hunk = item.get("hunk").and_then(Value::as_u64);
                match (path, hunk) {
                    (Some(p), Some(h)) => excluded_hunks.push((p.to_string(), h as usize)),
                    _ => {
                        return Err(bad(
                            "each of 'excludeHunks' must be {\"path\": string, \"hunk\": integer ≥ 0}",
                            Some("excludeHunks"),
                        ));
                    }
                }
            }
        }
        Some(_) => return Err(bad("'excludeHunks' must be an array", Some("excludeHunks"))),
    }
    let title = field_str(&body, "title")?.map(str::to_string);
    let body_text = field_str(&body, "body")?.map(str::to_string);
    let draft = match body.get("draft") {
        None => None,
        Some(_) => Some(field_bool(&body, "draft")?),
    };
    let selection =
        (!excluded_files.is_empty() || !excluded_hunks.is_empty()).then_some(Selection {
            excluded_files,
            excluded_hunks,
        });
    Ok(PublishRequest {
        selection,
        title,
        body: body_text,
        draft,
    })
}

/// Publishes a reviewed run from its folder; answers with the outcome and the events it made.
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
    let claimed = state
        .publishing
        .lock()
        .map(|mut p| p.insert(id.clone()))
        .unwrap_or(false);
    if !claimed {
        return error(
            StatusCode::CONFLICT,
            format!("run '{id}' is being published already"),
            None,
        );
    }
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
    if let Ok(mut p) = state.publishing.lock() {
        p.remove(&id);
    }
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
        (_, Some(Event::Error { message, retryable, .. })) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({"error": message, "field": null, "retryable": retryable, "events": events_json})),
        )
            .into_response(),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "publishing ended without a result", None),
    }
}
