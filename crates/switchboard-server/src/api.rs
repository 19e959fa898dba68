//! The executions API (runtime-semantics §10) and the error body.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use switchboard_runtime::store::ExecutionFilter;
use switchboard_runtime::{
    EngineError, EventType, ResumeRequest, StartRequest, Status, Timestamp, WaitingReason,
};

use crate::ServerState;

/// The HTTP status of an API error code ([`EngineError::code`] and the server's own codes):
/// `not_found` 404, `invalid_request` 400, `conflict` and `invalid_transition` 409,
/// `flow_inactive` 422, `unauthorized` 401, `forbidden` 403, `payload_too_large` 413, anything
/// else 500.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "not_found" => StatusCode::NOT_FOUND,
        "invalid_request" => StatusCode::BAD_REQUEST,
        "conflict" | "invalid_transition" => StatusCode::CONFLICT,
        "flow_inactive" => StatusCode::UNPROCESSABLE_ENTITY,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error response: `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = e.code();
        let status = status_for(code);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "request failed: internal error");
            "internal error".to_owned()
        } else {
            e.to_string()
        };
        ApiError {
            status,
            code,
            message,
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "invalid_request"
        };
        ApiError::new(status, code, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(status: StatusCode, value: impl serde::Serialize) -> ApiResult {
    Ok((status, Json(value)).into_response())
}

/// A JSON body; an empty body reads as `{}`.
fn body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(id)| id)
        .map_err(|e| ApiError::invalid(e.body_text()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::invalid(e.body_text()))
}

/// A snake_case enum value from a query parameter.
fn enum_param<T: DeserializeOwned>(
    name: &str,
    value: Option<String>,
) -> Result<Option<T>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            serde_json::from_value(Value::String(v.clone()))
                .map_err(|_| ApiError::invalid(format!("`{name}`: unknown value `{v}`")))
        })
        .transpose()
}

fn limit_param(value: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(format!(
                "`limit` must be an integer from 1 to {max}"
            ))),
        },
    }
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            Timestamp::parse_rfc3339(v)
                .ok_or_else(|| ApiError::invalid(format!("`{name}` is not an RFC 3339 time")))
        })
        .transpose()
}

/// Unknown routes: 404 in the API's error shape.
pub(super) async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// `POST /v1/executions`.
pub(super) async fn start(
    State(state): State<ServerState>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: StartRequest = body(raw)?;
    let result = state.engine().start_execution(req).await?;
    ok(StatusCode::CREATED, result)
}

/// `GET /v1/executions/{id}`.
pub(super) async fn get_one(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(id)?;
    ok(StatusCode::OK, state.engine().get_execution(&id).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResumeBody {
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    variables: Map<String, Value>,
}

/// `POST /v1/executions/{id}/resume`.
pub(super) async fn resume(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let execution_id = path(id)?;
    let b: ResumeBody = body(raw)?;
    let summary = state
        .engine()
        .resume_execution(ResumeRequest {
            execution_id,
            message: b.message,
            variables: b.variables,
        })
        .await?;
    ok(StatusCode::OK, summary)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusBody {
    status: Status,
}

/// `POST /v1/executions/{id}/status`.
pub(super) async fn status(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let id = path(id)?;
    let b: StatusBody = body(raw)?;
    ok(
        StatusCode::OK,
        state.engine().update_status(&id, b.status).await?,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JumpBody {
    node_id: String,
    #[serde(default)]
    actor: Option<String>,
}

/// `POST /v1/executions/{id}/jump`.
pub(super) async fn jump(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let id = path(id)?;
    let b: JumpBody = body(raw)?;
    let actor = b.actor.unwrap_or_else(|| "api".to_owned());
    ok(
        StatusCode::OK,
        state.engine().jump_to_node(&id, &b.node_id, &actor).await?,
    )
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    flow: Option<String>,
    conversation_id: Option<String>,
    status: Option<String>,
    waiting_reason: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    limit: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

/// `GET /v1/executions`.
pub(super) async fn list(
    State(state): State<ServerState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let limit = limit_param(q.limit.as_deref(), 20, 100)?;
    let filter = ExecutionFilter {
        flow_id: q.flow.filter(|v| !v.is_empty()),
        conversation_id: q.conversation_id.filter(|v| !v.is_empty()),
        status: enum_param::<Status>("status", q.status)?,
        waiting_reason: enum_param::<WaitingReason>("waiting_reason", q.waiting_reason)?,
        created_after: time_param("created_after", q.created_after.as_deref())?,
        created_before: time_param("created_before", q.created_before.as_deref())?,
        limit,
        after: q.after.filter(|v| !v.is_empty()),
        before: q.before.filter(|v| !v.is_empty()),
    };
    let data = state.engine().list_executions(&filter).await?;
    // Cursors where more may lie: older ones past a full page (or past a `before` page, whose
    // cursor itself is older), newer ones before a page reached with `after` (or a full
    // `before` page).
    let backwards = filter.after.is_none() && filter.before.is_some();
    let full = data.len() >= limit;
    let after = data
        .last()
        .filter(|_| full || backwards)
        .map(|e| e.id.clone());
    let before = data
        .first()
        .filter(|_| filter.after.is_some() || (backwards && full))
        .map(|e| e.id.clone());
    ok(
        StatusCode::OK,
        json!({"data": data, "paging": {"after": after, "before": before}}),
    )
}

/// `GET /v1/events/{event_id}`.
pub(super) async fn get_event(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(id)?;
    let event = state.engine().get_event(&id).await?;
    ok(StatusCode::OK, event)
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct EventsQuery {
    event_type: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// `GET /v1/executions/{id}/events`.
pub(super) async fn events(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult {
    let id = path(id)?;
    let q = query(q)?;
    let event_type = match q.event_type.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(t) => Some(
            EventType::parse(t)
                .ok_or_else(|| ApiError::invalid(format!("unknown `event_type` `{t}`")))?,
        ),
    };
    let limit = limit_param(q.limit.as_deref(), 100, 1000)?;
    // `after` is a seq, or an event id `<execution id>:<seq>`.
    let after = match q.after.as_deref().filter(|v| !v.is_empty()) {
        None => 0,
        Some(a) => a
            .rsplit(':')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| ApiError::invalid("`after` must be an event seq or id"))?,
    };
    // 404 for an unknown execution (the store answers an empty list).
    state.engine().get_execution(&id).await?;
    let data = state
        .engine()
        .list_events(&id, event_type, limit, after)
        .await?;
    let next = if data.len() >= limit {
        data.last().map(|e| e.seq)
    } else {
        None
    };
    ok(
        StatusCode::OK,
        json!({"data": data, "paging": {"after": next}}),
    )
}
