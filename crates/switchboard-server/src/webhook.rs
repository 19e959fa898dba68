//! `GET`/`POST /webhooks/whatsapp`: the handshake, and webhooks written to the inbox at once.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ServerState;
use crate::api::ApiError;
use switchboard_runtime::store::{Enqueued, InboundItem};
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
    let received_at = state.engine().adapters().clock.now();
    let mut items = Vec::with_capacity(events.messages.len() + events.statuses.len());
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
        items.push(InboundItem::Status(status.to_delivery_status(received_at)));
    }
    let received = events.messages.len();
    items.extend(events.messages.into_iter().map(InboundItem::Message));
    let results = match state.worker().accept(items).await {
        Ok(r) => r,
        Err(e) => {
            // The store did not take them: ask WhatsApp to redeliver (accepted items are
            // deduplicated by message id, so a redelivery is safe).
            tracing::warn!(code = e.code(), error = %e, "webhook not accepted: asking for redelivery");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the webhook could not be stored; deliver it again",
            )
            .into_response();
        }
    };
    let refused = results.iter().filter(|r| r.is_err()).count();
    let duplicates = results
        .iter()
        .filter(|r| matches!(r, Ok(Enqueued::Duplicate)))
        .count();
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        tracing::warn!(code = e.code(), error = %e, "webhook item refused");
    }
    tracing::info!(
        messages = received,
        statuses = events.statuses.len(),
        duplicates,
        refused,
        "webhook accepted"
    );
    (StatusCode::OK, axum::Json(json!({ "received": received }))).into_response()
}
