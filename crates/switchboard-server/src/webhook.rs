//! `GET`/`POST /webhooks/whatsapp`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ServerState;
use crate::api::ApiError;
use switchboard_whatsapp::{parse_webhook, verify_signature, verify_subscription};

/// The subscription handshake: 200 with `hub.challenge`, else 403.
pub(super) async fn handshake(
    State(state): State<ServerState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let params = query.map(|Query(p)| p).unwrap_or_default();
    match verify_subscription(&params, &state.verify_token) {
        Some(challenge) => (StatusCode::OK, challenge).into_response(),
        None => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the subscription handshake failed",
        )
        .into_response(),
    }
}

/// A webhook delivery: signature first, then parsing, then the inbox.
pub(super) async fn receive(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return ApiError::from(r).into_response(),
    };
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !verify_signature(&state.app_secret, &body, signature) {
        tracing::warn!(
            bytes = body.len(),
            signed = signature.is_some(),
            "webhook refused: missing or invalid X-Hub-Signature-256"
        );
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid X-Hub-Signature-256",
        )
        .into_response();
    }
    let events = match parse_webhook(&body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "webhook refused: malformed payload");
            return ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
                .into_response();
        }
    };
    for status in &events.statuses {
        if status.status == "failed" {
            let codes: Vec<i64> = status.errors.iter().filter_map(|e| e.code).collect();
            tracing::warn!(
                message_id = %status.message_id,
                phone_number_id = %status.phone_number_id,
                codes = ?codes,
                "outbound message failed to deliver"
            );
        } else {
            tracing::debug!(
                message_id = %status.message_id,
                status = %status.status,
                "delivery status"
            );
        }
        if let Some(hook) = &state.on_status {
            hook(status);
        }
    }
    let received = events.messages.len();
    for message in events.messages {
        if let Err(e) = state.inbox().receive(message).await {
            // A store failure or a concurrent turn: ask Meta to redeliver (processed messages are
            // deduplicated). Anything else concerns this message only and retrying cannot help.
            if matches!(e.code(), "internal" | "conflict") {
                tracing::warn!(
                    code = e.code(),
                    "webhook message not processed: asking for redelivery"
                );
                return ApiError::from(e).into_response();
            }
            tracing::warn!(code = e.code(), error = %e, "webhook message refused");
        }
    }
    tracing::info!(
        messages = received,
        statuses = events.statuses.len(),
        "webhook accepted"
    );
    (StatusCode::OK, axum::Json(json!({ "received": received }))).into_response()
}
