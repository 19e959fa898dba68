//! The executions API and the error body: bearer-token access, limits, and every operation on a
//! conversation run in the conversation's order (through the worker).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use switchboard_runtime::store::ExecutionFilter;
use switchboard_runtime::{
    Engine, EngineError, EventType, ResumeRequest, StartRequest, Status, Timestamp, WaitingReason,
    normalise_phone,
};

use crate::ServerState;

/// The HTTP status of an API error code ([`EngineError::code`] and the server's own codes):
/// `not_found` 404, `invalid_request` 400, `conflict` and `invalid_transition` 409,
/// `flow_inactive` 422, `unauthorized` 401, `forbidden` 403, `payload_too_large` 413,
/// `unavailable` 503, anything else 500.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "not_found" => StatusCode::NOT_FOUND,
        "invalid_request" => StatusCode::BAD_REQUEST,
        "conflict" | "invalid_transition" => StatusCode::CONFLICT,
        "flow_inactive" => StatusCode::UNPROCESSABLE_ENTITY,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
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

/// Unknown routes (and the API when it is off): 404 in the API's error shape.
pub(super) async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Constant-time equality (the length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// Lets a request through only with `Authorization: Bearer <token>` for a configured token.
pub(super) async fn authorize(
    State(state): State<ServerState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(access) = &state.api else {
        return no_route().await.into_response();
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let allowed = presented.is_some_and(|p| {
        // Every token is compared, so the time does not say which one (if any) matched.
        access
            .tokens
            .iter()
            .fold(false, |acc, t| same(p.as_bytes(), t.as_bytes()) | acc)
    });
    if !allowed {
        tracing::warn!(
            path = %request.uri().path(),
            presented = presented.is_some(),
            "API request refused: missing or wrong bearer token"
        );
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token",
        )
        .into_response();
    }
    next.run(request).await
}

/// `variables` (and `context`) of a request within the limit.
fn check_size(
    state: &ServerState,
    what: &str,
    values: &[&Map<String, Value>],
) -> Result<(), ApiError> {
    let limit = state.limits.variables;
    let size: usize = values
        .iter()
        .map(|m| serde_json::to_vec(m).map_or(usize::MAX, |v| v.len()))
        .fold(0, usize::saturating_add);
    if size > limit {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("{what} are {size} bytes as JSON, more than {limit}"),
        ));
    }
    Ok(())
}

/// `POST /v1/executions`.
pub(super) async fn start(
    State(state): State<ServerState>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: StartRequest = body(raw)?;
    check_size(
        &state,
        "`variables` and `context`",
        &[&req.variables, &req.context],
    )?;
    let engine = state.engine();
    let pnid = req
        .phone_number_id
        .clone()
        .unwrap_or_else(|| engine.config().default_phone_number_id.clone());
    let allowed = state.api.as_ref().is_some_and(|a| {
        if a.phone_number_ids.is_empty() {
            pnid == engine.config().default_phone_number_id
        } else {
            a.phone_number_ids.contains(&pnid)
        }
    });
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this server does not start executions from business number `{pnid}`"),
        ));
    }
    let phone = normalise_phone(&req.phone_number).ok_or_else(|| {
        ApiError::invalid(format!(
            "`{}` is not an E.164 phone number",
            req.phone_number
        ))
    })?;
    let conv = Engine::conversation_id(&pnid, &phone);
    let result = state
        .worker()
        .with_conversation(&conv, engine.start_execution(req))
        .await?;
    ok(StatusCode::CREATED, result)
}

/// The conversation of an execution (404 when it does not exist).
async fn conversation_of(state: &ServerState, execution_id: &str) -> Result<String, ApiError> {
    Ok(state
        .engine()
        .get_execution(execution_id)
        .await?
        .conversation_id)
}

/// `GET /v1/executions/{id}/messages`: the outbox records of an execution.
pub(super) async fn messages(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(id)?;
    conversation_of(&state, &id).await?;
    let data = state.engine().outbox(&id).await?;
    ok(StatusCode::OK, json!({ "data": data }))
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
    check_size(&state, "`variables`", &[&b.variables])?;
    let conv = conversation_of(&state, &execution_id).await?;
    let summary = state
        .worker()
        .with_conversation(
            &conv,
            state.engine().resume_execution(ResumeRequest {
                execution_id,
                message: b.message,
                variables: b.variables,
            }),
        )
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
    let conv = conversation_of(&state, &id).await?;
    let summary = state
        .worker()
        .with_conversation(&conv, state.engine().update_status(&id, b.status))
        .await?;
    ok(StatusCode::OK, summary)
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
    let conv = conversation_of(&state, &id).await?;
    let summary = state
        .worker()
        .with_conversation(&conv, state.engine().jump_to_node(&id, &b.node_id, &actor))
        .await?;
    ok(StatusCode::OK, summary)
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
