//! Webhook authentication: the `X-Hub-Signature-256` HMAC and the subscription handshake.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Whether `header` (the `X-Hub-Signature-256` value, `sha256=<hex>`) is the HMAC-SHA256 of
/// `body` under `app_secret`.
///
/// The comparison is constant time. `false` when the header is missing, lacks the `sha256=`
/// prefix, is not 64 hex digits (either case), or when `app_secret` is empty (an empty secret
/// would let anyone sign).
pub fn verify_signature(app_secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    if app_secret.is_empty() {
        return false;
    }
    let Some(header) = header else {
        return false;
    };
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    if expected.len() != 32 {
        return false;
    }
    let Ok(mut mac) = HmacSha256::new_from_slice(app_secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The subscription handshake (`GET` webhook with `hub.mode`, `hub.verify_token`,
/// `hub.challenge` query parameters): the challenge to echo when `hub.mode` is `subscribe` and
/// `hub.verify_token` equals `verify_token` (compared in constant time), else `None`.
///
/// The first occurrence of each parameter counts. An empty configured `verify_token` never
/// matches; a missing challenge is `None`.
pub fn verify_subscription(params: &[(String, String)], verify_token: &str) -> Option<String> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if verify_token.is_empty() || get("hub.mode")? != "subscribe" {
        return None;
    }
    let given = get("hub.verify_token")?;
    if !constant_time_eq(given.as_bytes(), verify_token.as_bytes()) {
        return None;
    }
    get("hub.challenge").map(str::to_owned)
}

/// Constant-time equality, also hiding the lengths: both sides are HMACed under a fixed key
/// and the tags compared with `verify_slice`.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    const KEY: &[u8] = b"switchboard whatsapp verify token";
    let (Ok(mut left), Ok(mut right)) = (
        HmacSha256::new_from_slice(KEY),
        HmacSha256::new_from_slice(KEY),
    ) else {
        return false;
    };
    left.update(a);
    right.update(b);
    let tag = right.finalize().into_bytes();
    left.verify_slice(&tag).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
