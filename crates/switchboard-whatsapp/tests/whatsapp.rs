//! The WhatsApp Cloud API adapter: outbound JSON against a local mock server, webhook
//! parsing, signature verification and the subscription handshake.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_runtime::Reply;
use switchboard_runtime::Timestamp;
use switchboard_runtime::adapters::{
    AdapterError, Choice, Cta, FlowParameters, Interactive, InteractiveHeader, ListSection,
    Messenger, OutboundBody, OutboundMessage,
};
use switchboard_runtime::offline::MapSecrets;
use switchboard_whatsapp::{
    CloudApiConfig, CloudApiMessenger, TemplateName, WebhookError, parse_webhook, verify_signature,
    verify_subscription,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "EAAG-super-secret-token-1234567890";
const PHONE_ID: &str = "106540352242922";

// --- Outbound ----------------------------------------------------------------------------------

fn config(server: &MockServer) -> CloudApiConfig {
    CloudApiConfig {
        base_url: server.uri(),
        api_version: "v21.0".to_owned(),
        token_env: "TEST_WA_TOKEN".to_owned(),
        retry_base_delay: Duration::from_millis(5),
        ..CloudApiConfig::default()
    }
}

fn messenger(server: &MockServer) -> CloudApiMessenger {
    messenger_with(config(server))
}

fn messenger_with(config: CloudApiConfig) -> CloudApiMessenger {
    let secrets = MapSecrets::default();
    secrets.set("TEST_WA_TOKEN", TOKEN);
    CloudApiMessenger::with_secrets(config, &secrets).unwrap()
}

fn outbound(body: OutboundBody) -> OutboundMessage {
    OutboundMessage {
        from: PHONE_ID.to_owned(),
        to: "+4915112345678".to_owned(),
        execution_id: "exec-1".to_owned(),
        node_id: "node-1".to_owned(),
        body,
        reference: None,
    }
}

async fn ok_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "4915112345678", "wa_id": "4915112345678"}],
            "messages": [{"id": "wamid.HBgLNDkxNTExMjM0NTY3OBUCABEYEjA="}]
        })))
        .mount(&server)
        .await;
    server
}

/// Sends `body` and returns the JSON the server received.
async fn sent_json(body: OutboundBody) -> Value {
    let server = ok_server().await;
    let receipt = messenger(&server).send(outbound(body)).await.unwrap();
    assert_eq!(receipt.message_id, "wamid.HBgLNDkxNTExMjM0NTY3OBUCABEYEjA=");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    serde_json::from_slice(&requests[0].body).unwrap()
}

fn envelope(kind: &str, content: Value) -> Value {
    let mut v = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915112345678",
        "type": kind,
    });
    v[kind] = content;
    v
}

fn interactive(kind: &str) -> Interactive {
    Interactive {
        interactive_type: kind.to_owned(),
        body: "Pick one".to_owned(),
        ..Interactive::default()
    }
}

#[tokio::test]
async fn text_request_has_url_auth_and_exact_body() {
    let server = ok_server().await;
    let receipt = messenger(&server)
        .send(outbound(OutboundBody::Text {
            text: "Hello *there*".to_owned(),
        }))
        .await
        .unwrap();
    assert_eq!(receipt.message_id, "wamid.HBgLNDkxNTExMjM0NTY3OBUCABEYEjA=");
    let requests = server.received_requests().await.unwrap();
    let request = &requests[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), format!("/v21.0/{PHONE_ID}/messages"));
    assert_eq!(
        request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {TOKEN}")
    );
    assert_eq!(
        request
            .headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap(),
        "application/json"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        envelope(
            "text",
            json!({"body": "Hello *there*", "preview_url": false})
        )
    );
}

#[tokio::test]
async fn template_positional_parameters() {
    // An array, and keys "1".."n" (ordered by number, not by key order).
    let expected = envelope(
        "template",
        json!({
            "name": "order_update",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [
                {"type": "text", "text": "Ann"},
                {"type": "text", "text": "42"},
                {"type": "text", "text": "shipped"}
            ]}]
        }),
    );
    let array = sent_json(OutboundBody::Template {
        template_id: "order_update".to_owned(),
        parameters: json!(["Ann", 42, "shipped"]),
    })
    .await;
    assert_eq!(array, expected);
    let numbered = sent_json(OutboundBody::Template {
        template_id: "order_update".to_owned(),
        parameters: json!({"3": "shipped", "1": "Ann", "2": 42}),
    })
    .await;
    assert_eq!(numbered, expected);
}

#[tokio::test]
async fn template_named_parameters_and_configured_language() {
    let server = ok_server().await;
    let messenger = messenger_with(CloudApiConfig {
        language_code: "pt_BR".to_owned(),
        ..config(&server)
    });
    messenger
        .send(outbound(OutboundBody::Template {
            template_id: "welcome".to_owned(),
            parameters: json!({"first_name": "Ana", "points": 10, "note": null}),
        }))
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        body,
        envelope(
            "template",
            json!({
                "name": "welcome",
                "language": {"code": "pt_BR"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                    {"type": "text", "parameter_name": "points", "text": "10"},
                    {"type": "text", "parameter_name": "note", "text": ""}
                ]}]
            })
        )
    );
}

#[tokio::test]
async fn kapso_template_ids_are_mapped_to_meta_names_and_languages() {
    // `[whatsapp.templates]`: a Kapso template id names Meta's template and language; an id
    // without an entry is sent as the name, with the configured language.
    let server = ok_server().await;
    let messenger = messenger_with(CloudApiConfig {
        templates: BTreeMap::from([
            (
                "7f3c9a10-kapso".to_owned(),
                TemplateName {
                    name: "order_update".to_owned(),
                    language: Some("es".to_owned()),
                },
            ),
            (
                "9a1b-kapso".to_owned(),
                TemplateName {
                    name: "welcome".to_owned(),
                    language: None,
                },
            ),
        ]),
        ..config(&server)
    });
    for id in ["7f3c9a10-kapso", "9a1b-kapso", "unmapped_name"] {
        messenger
            .send(outbound(OutboundBody::Template {
                template_id: id.to_owned(),
                parameters: json!({}),
            }))
            .await
            .unwrap();
    }
    let requests = server.received_requests().await.unwrap();
    let templates: Vec<Value> = requests
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["template"].clone())
        .collect();
    assert_eq!(
        templates,
        [
            json!({"name": "order_update", "language": {"code": "es"}}),
            json!({"name": "welcome", "language": {"code": "en_US"}}),
            json!({"name": "unmapped_name", "language": {"code": "en_US"}}),
        ]
    );
}

#[tokio::test]
async fn template_without_parameters_has_no_components() {
    let body = sent_json(OutboundBody::Template {
        template_id: "hello_world".to_owned(),
        parameters: json!({}),
    })
    .await;
    assert_eq!(
        body,
        envelope(
            "template",
            json!({"name": "hello_world", "language": {"code": "en_US"}})
        )
    );
}

#[tokio::test]
async fn button_with_text_header_and_footer() {
    let body = sent_json(OutboundBody::Interactive(Interactive {
        header: Some(InteractiveHeader {
            kind: "text".to_owned(),
            value: "Menu".to_owned(),
        }),
        footer: Some("Reply to continue".to_owned()),
        buttons: vec![
            Choice {
                id: "yes".to_owned(),
                title: "Yes".to_owned(),
                description: None,
            },
            Choice {
                id: "no".to_owned(),
                title: "No".to_owned(),
                description: None,
            },
        ],
        ..interactive("button")
    }))
    .await;
    assert_eq!(
        body,
        envelope(
            "interactive",
            json!({
                "type": "button",
                "header": {"type": "text", "text": "Menu"},
                "body": {"text": "Pick one"},
                "footer": {"text": "Reply to continue"},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "no", "title": "No"}}
                ]}
            })
        )
    );
}

#[tokio::test]
async fn button_with_image_header() {
    let body = sent_json(OutboundBody::Interactive(Interactive {
        header: Some(InteractiveHeader {
            kind: "image".to_owned(),
            value: "https://example.com/a.png".to_owned(),
        }),
        buttons: vec![Choice {
            id: "ok".to_owned(),
            title: "OK".to_owned(),
            description: None,
        }],
        ..interactive("button")
    }))
    .await;
    assert_eq!(
        body,
        envelope(
            "interactive",
            json!({
                "type": "button",
                "header": {"type": "image", "image": {"link": "https://example.com/a.png"}},
                "body": {"text": "Pick one"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "ok", "title": "OK"}}]}
            })
        )
    );
}

#[tokio::test]
async fn list_message() {
    let body = sent_json(OutboundBody::Interactive(Interactive {
        footer: Some("Prices incl. VAT".to_owned()),
        list_button_text: Some("See plans".to_owned()),
        sections: vec![
            ListSection {
                title: Some("Plans".to_owned()),
                rows: vec![
                    Choice {
                        id: "basic".to_owned(),
                        title: "Basic".to_owned(),
                        description: Some("$5/month".to_owned()),
                    },
                    Choice {
                        id: "pro".to_owned(),
                        title: "Pro".to_owned(),
                        description: None,
                    },
                ],
            },
            ListSection {
                title: None,
                rows: vec![Choice {
                    id: "help".to_owned(),
                    title: "Talk to us".to_owned(),
                    description: None,
                }],
            },
        ],
        ..interactive("list")
    }))
    .await;
    assert_eq!(
        body,
        envelope(
            "interactive",
            json!({
                "type": "list",
                "body": {"text": "Pick one"},
                "footer": {"text": "Prices incl. VAT"},
                "action": {
                    "button": "See plans",
                    "sections": [
                        {"title": "Plans", "rows": [
                            {"id": "basic", "title": "Basic", "description": "$5/month"},
                            {"id": "pro", "title": "Pro"}
                        ]},
                        {"rows": [{"id": "help", "title": "Talk to us"}]}
                    ]
                }
            })
        )
    );
}

#[tokio::test]
async fn cta_url_message() {
    let body = sent_json(OutboundBody::Interactive(Interactive {
        header: Some(InteractiveHeader {
            kind: "document".to_owned(),
            value: "https://example.com/terms.pdf".to_owned(),
        }),
        cta: Some(Cta {
            display_text: "Open site".to_owned(),
            url: "https://example.com/?a=1&b=2".to_owned(),
        }),
        ..interactive("cta_url")
    }))
    .await;
    assert_eq!(
        body,
        envelope(
            "interactive",
            json!({
                "type": "cta_url",
                "header": {"type": "document", "document": {"link": "https://example.com/terms.pdf"}},
                "body": {"text": "Pick one"},
                "action": {"name": "cta_url", "parameters": {
                    "display_text": "Open site", "url": "https://example.com/?a=1&b=2"
                }}
            })
        )
    );
}

#[tokio::test]
async fn flow_message() {
    let body = sent_json(OutboundBody::Interactive(Interactive {
        header: Some(InteractiveHeader {
            kind: "video".to_owned(),
            value: "https://example.com/v.mp4".to_owned(),
        }),
        footer: Some("Takes 1 minute".to_owned()),
        flow: Some(FlowParameters {
            flow_id: "1234567890".to_owned(),
            flow_cta: "Book now".to_owned(),
            flow_token: "tok-abc".to_owned(),
            flow_action: "navigate".to_owned(),
            flow_action_payload: Some(json!({"screen": "BOOKING", "data": {"city": "Lisbon"}})),
        }),
        ..interactive("flow")
    }))
    .await;
    assert_eq!(
        body,
        envelope(
            "interactive",
            json!({
                "type": "flow",
                "header": {"type": "video", "video": {"link": "https://example.com/v.mp4"}},
                "body": {"text": "Pick one"},
                "footer": {"text": "Takes 1 minute"},
                "action": {"name": "flow", "parameters": {
                    "flow_message_version": "3",
                    "flow_token": "tok-abc",
                    "flow_id": "1234567890",
                    "flow_cta": "Book now",
                    "flow_action": "navigate",
                    "flow_action_payload": {"screen": "BOOKING", "data": {"city": "Lisbon"}}
                }}
            })
        )
    );
}

#[tokio::test]
async fn location_request_message() {
    let body = sent_json(OutboundBody::Interactive(Interactive {
        body: "Where are you?".to_owned(),
        ..interactive("location_request_message")
    }))
    .await;
    assert_eq!(
        body,
        envelope(
            "interactive",
            json!({
                "type": "location_request_message",
                "body": {"text": "Where are you?"},
                "action": {"name": "send_location"}
            })
        )
    );
}

#[tokio::test]
async fn media_messages() {
    let image = sent_json(OutboundBody::Media {
        media_type: "image".to_owned(),
        url: "https://example.com/cat.jpg".to_owned(),
        caption: Some("A cat".to_owned()),
    })
    .await;
    assert_eq!(
        image,
        envelope(
            "image",
            json!({"link": "https://example.com/cat.jpg", "caption": "A cat"})
        )
    );
    let document = sent_json(OutboundBody::Media {
        media_type: "document".to_owned(),
        url: "https://example.com/a.pdf".to_owned(),
        caption: None,
    })
    .await;
    assert_eq!(
        document,
        envelope("document", json!({"link": "https://example.com/a.pdf"}))
    );
    // Audio takes no caption.
    let audio = sent_json(OutboundBody::Media {
        media_type: "audio".to_owned(),
        url: "https://example.com/a.ogg".to_owned(),
        caption: Some("ignored".to_owned()),
    })
    .await;
    assert_eq!(
        audio,
        envelope("audio", json!({"link": "https://example.com/a.ogg"}))
    );
}

#[tokio::test]
async fn unsendable_messages_are_invalid_requests_and_never_reach_the_server() {
    let server = ok_server().await;
    let m = messenger(&server);
    let cases = [
        OutboundBody::Interactive(interactive("carousel")),
        OutboundBody::Interactive(interactive("list")),
        OutboundBody::Interactive(interactive("button")),
        OutboundBody::Interactive(interactive("cta_url")),
        OutboundBody::Interactive(interactive("flow")),
        OutboundBody::Media {
            media_type: "hologram".to_owned(),
            url: "https://example.com/x".to_owned(),
            caption: None,
        },
    ];
    for body in cases {
        let err = m.send(outbound(body)).await.unwrap_err();
        assert_eq!(err.kind, "invalid_request", "{err}");
    }
    let mut bad_from = outbound(OutboundBody::Text { text: "x".into() });
    bad_from.from = "../../me".to_owned();
    assert_eq!(m.send(bad_from).await.unwrap_err().kind, "invalid_request");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn graph_error_body_is_http_status_with_code_and_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {
                "message": "(#131030) Recipient phone number not in allowed list",
                "type": "OAuthException",
                "code": 131030,
                "error_subcode": 2494010,
                "fbtrace_id": "AbCdEf123"
            }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = messenger(&server)
        .send(outbound(OutboundBody::Text { text: "hi".into() }))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "http_status");
    assert_eq!(err.status, Some(400));
    assert!(err.message.contains("131030"), "{}", err.message);
    assert!(err.message.contains("2494010"), "{}", err.message);
    assert!(
        err.message
            .contains("Recipient phone number not in allowed list"),
        "{}",
        err.message
    );
    assert!(err.message.contains("AbCdEf123"), "{}", err.message);
}

#[tokio::test]
async fn rate_limit_then_success_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "error": {"message": "rate limited", "code": 130429}
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"messages": [{"id": "wamid.RETRY"}]})),
        )
        .mount(&server)
        .await;
    let receipt = messenger(&server)
        .send(outbound(OutboundBody::Text { text: "hi".into() }))
        .await
        .unwrap();
    assert_eq!(receipt.message_id, "wamid.RETRY");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .mount(&server)
        .await;
    let err = messenger_with(CloudApiConfig {
        max_retries: 2,
        ..config(&server)
    })
    .send(outbound(OutboundBody::Text { text: "hi".into() }))
    .await
    .unwrap_err();
    assert_eq!(err.kind, "http_status");
    assert_eq!(err.status, Some(503));
    assert!(err.message.contains("upstream down"), "{}", err.message);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn slow_answer_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"messages": [{"id": "wamid.LATE"}]}))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    let err = messenger_with(CloudApiConfig {
        timeout: Duration::from_millis(200),
        ..config(&server)
    })
    .send(outbound(OutboundBody::Text { text: "hi".into() }))
    .await
    .unwrap_err();
    assert_eq!(err.kind, "timeout");
    // Not retried: the message may have been sent.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn unreachable_server_is_transport() {
    // Bind then drop a listener: the port is (almost certainly) closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = messenger_with(CloudApiConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        max_retries: 1,
        retry_base_delay: Duration::from_millis(1),
        token_env: "TEST_WA_TOKEN".to_owned(),
        ..CloudApiConfig::default()
    })
    .send(outbound(OutboundBody::Text { text: "hi".into() }))
    .await
    .unwrap_err();
    assert_eq!(err.kind, "transport");
    assert!(!err.message.contains(TOKEN));
}

#[tokio::test]
async fn success_without_message_id_is_invalid_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messages": []})))
        .mount(&server)
        .await;
    let err = messenger(&server)
        .send(outbound(OutboundBody::Text { text: "hi".into() }))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "invalid_json");
}

#[tokio::test]
async fn token_never_appears_in_errors_or_debug() {
    let server = MockServer::start().await;
    // A hostile server echoing the Authorization header back in its error.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": format!("Invalid OAuth access token - Bearer {TOKEN}"), "code": 190}
        })))
        .mount(&server)
        .await;
    let m = messenger(&server);
    let debug = format!("{m:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
    let err: AdapterError = m
        .send(outbound(OutboundBody::Text { text: "hi".into() }))
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(401));
    assert!(err.message.contains("190"), "{}", err.message);
    for text in [err.to_string(), format!("{err:?}"), err.message.clone()] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    // A missing secret names the variable, not a value.
    let missing =
        CloudApiMessenger::with_secrets(config(&server), &MapSecrets::default()).unwrap_err();
    assert!(missing.message.contains("TEST_WA_TOKEN"));
}

// --- Webhooks ----------------------------------------------------------------------------------

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "data",
        "whatsapp",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(path).unwrap()
}

/// Parses a one-message fixture and returns the message.
fn one(name: &str) -> switchboard_runtime::InboundMessage {
    let events = parse_webhook(&fixture(name)).unwrap();
    assert_eq!(events.messages.len(), 1, "{name}");
    assert!(events.statuses.is_empty());
    assert_eq!(events.skipped, 0);
    let m = events.messages.into_iter().next().unwrap();
    assert_eq!(m.phone_number_id, "106540352242922");
    assert_eq!(m.from, "16315551181");
    assert_eq!(m.profile_name.as_deref(), Some("Kerry Fisher"));
    assert_eq!(m.timestamp, Some(Timestamp(1_714_510_003_000)));
    m
}

#[test]
fn webhook_text() {
    let m = one("text.json");
    assert_eq!(m.id, "wamid.HBgLMTYzMTU1NTExODEVAgASGBQzTEXT");
    assert_eq!(m.kind, "text");
    assert_eq!(m.text, "Hello, I need help");
    assert_eq!(m.reply, None);
}

#[test]
fn webhook_interactive_replies() {
    let m = one("interactive_button_reply.json");
    assert_eq!(m.kind, "interactive");
    assert_eq!(m.text, "Yes please");
    assert_eq!(
        m.reply,
        Some(Reply {
            kind: "button_reply".into(),
            id: "opt_yes".into(),
            title: "Yes please".into()
        })
    );
    let m = one("interactive_list_reply.json");
    assert_eq!(m.text, "Premium plan");
    assert_eq!(
        m.reply,
        Some(Reply {
            kind: "list_reply".into(),
            id: "row_2".into(),
            title: "Premium plan".into()
        })
    );
    // The interactive object is kept as sent (a row's description; a WhatsApp Flow's answer,
    // which is no reply to a choice).
    assert_eq!(
        m.interactive.as_ref().unwrap()["list_reply"]["description"],
        "$20/month"
    );
    let m = one("interactive_nfm_reply.json");
    assert_eq!((m.text.as_str(), m.reply.as_ref()), ("", None));
    assert_eq!(
        m.interactive.unwrap(),
        json!({"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent",
               "response_json": "{\"flow_token\": \"ex_1\", \"date\": \"2026-02-01\"}"}})
    );
    assert_eq!(one("text.json").interactive, None);
}

#[test]
fn webhook_template_quick_reply() {
    let m = one("template_button.json");
    assert_eq!(m.kind, "button");
    assert_eq!(m.text, "Stop promotions");
    assert_eq!(
        m.reply,
        Some(Reply {
            kind: "button".into(),
            id: "STOP_PROMOS".into(),
            title: "Stop promotions".into()
        })
    );
}

#[test]
fn webhook_media() {
    for (file, kind, text) in [
        ("image.json", "image", "My receipt"),
        ("video.json", "video", ""),
        ("audio.json", "audio", ""),
        ("document.json", "document", "Invoice March"),
        ("sticker.json", "sticker", ""),
    ] {
        let m = one(file);
        assert_eq!(m.kind, kind);
        assert_eq!(m.text, text, "{file}");
        assert_eq!(m.reply, None);
    }
}

#[test]
fn webhook_location_contacts_reaction_unsupported() {
    let m = one("location.json");
    assert_eq!(m.kind, "location");
    assert_eq!(m.text, "37.4219983,-122.084");
    for (file, kind) in [
        ("contacts.json", "contacts"),
        ("reaction.json", "reaction"),
        ("unsupported.json", "unsupported"),
    ] {
        let m = one(file);
        assert_eq!(m.kind, kind);
        assert_eq!(m.text, "", "{file}");
        assert_eq!(m.reply, None);
    }
}

#[test]
fn webhook_statuses() {
    let events = parse_webhook(&fixture("statuses.json")).unwrap();
    assert!(events.messages.is_empty());
    assert_eq!(events.skipped, 0);
    let kinds: Vec<&str> = events.statuses.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(kinds, ["sent", "delivered", "read", "failed"]);
    let sent = &events.statuses[0];
    assert_eq!(sent.message_id, "wamid.OUT1");
    assert_eq!(sent.phone_number_id, "106540352242922");
    assert_eq!(sent.recipient_id, "16315551181");
    assert_eq!(sent.timestamp, Some(Timestamp(1_714_510_010_000)));
    assert_eq!(sent.conversation_id.as_deref(), Some("CONVERSATION_ID"));
    assert!(sent.errors.is_empty());
    let failed = &events.statuses[3];
    assert_eq!(failed.message_id, "wamid.OUT2");
    assert_eq!(failed.conversation_id, None);
    assert_eq!(failed.errors.len(), 1);
    let error = &failed.errors[0];
    assert_eq!(error.code, Some(131047));
    assert_eq!(error.title.as_deref(), Some("Re-engagement message"));
    assert!(error.details.as_deref().unwrap().contains("24 hours"));
}

#[test]
fn webhook_multiple_entries_and_changes() {
    let events = parse_webhook(&fixture("multi.json")).unwrap();
    assert_eq!(events.skipped, 0);
    let summary: Vec<(&str, &str, &str, Option<&str>)> = events
        .messages
        .iter()
        .map(|m| {
            (
                m.id.as_str(),
                m.phone_number_id.as_str(),
                m.text.as_str(),
                m.profile_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("wamid.A1", "111", "first", Some("Ann")),
            ("wamid.B1", "111", "second", Some("Bob")),
            ("wamid.C1", "222", "One", Some("Cem")),
        ]
    );
    assert_eq!(events.statuses.len(), 1);
    assert_eq!(events.statuses[0].status, "delivered");
    assert_eq!(events.statuses[0].phone_number_id, "111");
}

#[test]
fn webhook_missing_fields_are_skipped_or_defaulted() {
    let events = parse_webhook(&fixture("missing_fields.json")).unwrap();
    let ids: Vec<&str> = events.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "wamid.NOTYPE",
            "wamid.NOBODY",
            "wamid.BADLOC",
            "wamid.NOREPLY"
        ]
    );
    for m in &events.messages {
        assert_eq!(m.text, "", "{}", m.id);
        assert_eq!(m.reply, None, "{}", m.id);
        assert_eq!(m.profile_name, None);
        assert_eq!(m.phone_number_id, "111");
    }
    assert_eq!(events.messages[0].kind, "");
    assert_eq!(events.messages[1].timestamp, None);
    assert_eq!(
        events.messages[2].timestamp,
        Some(Timestamp(1_714_510_200_000))
    );
    assert!(events.statuses.is_empty());
    // 4 messages without id/from or not objects, 2 statuses without id/status, 1 message in a
    // change without metadata, 1 change without value, 1 entry without changes, 1 non-object
    // entry.
    assert_eq!(events.skipped, 10);
}

#[test]
fn webhook_rejects_garbage_without_panicking() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\xff\xfe\x00garbage".to_vec(),
        b"{\"object\":".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"whatsapp_business_account\"".to_vec(),
        br#"{"entry": []}"#.to_vec(),
        br#"{"object": 7, "entry": []}"#.to_vec(),
        br#"{"object": "page", "entry": []}"#.to_vec(),
        br#"{"object": "whatsapp_business_account"}"#.to_vec(),
        br#"{"object": "whatsapp_business_account", "entry": {}}"#.to_vec(),
        deep.into_bytes(),
    ];
    for body in cases {
        let err = parse_webhook(&body).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    assert!(matches!(
        parse_webhook(b"not json"),
        Err(WebhookError::InvalidJson(_))
    ));
    assert_eq!(
        parse_webhook(br#"{"object": "page", "entry": []}"#),
        Err(WebhookError::WrongObject("page".into()))
    );
    // Wrong types everywhere inside a well-formed envelope: no panic, nothing parsed.
    let weird = json!({"object": "whatsapp_business_account", "entry": [
        {"changes": "x"},
        {"changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": 5},
            "messages": {"id": "x"}, "statuses": 3, "contacts": "y"}}]},
        {"changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "1"},
            "contacts": [null, 1, {"wa_id": []}],
            "messages": [{"id": 12, "from": 34, "type": 5, "timestamp": -1e300,
                          "text": "not an object"}],
            "statuses": [{"id": "w", "status": "read", "timestamp": "99999999999999999999",
                          "errors": [null, {"code": "x"}, {"code": 1.5}]}]}}]}
    ]});
    let events = parse_webhook(weird.to_string().as_bytes()).unwrap();
    assert_eq!(events.messages.len(), 1);
    assert_eq!(events.messages[0].id, "12");
    assert_eq!(events.messages[0].kind, "");
    assert_eq!(events.messages[0].timestamp, None);
    assert_eq!(events.statuses.len(), 1);
    assert_eq!(events.statuses[0].timestamp, None);
    assert_eq!(events.statuses[0].errors.len(), 3);
    assert!(events.statuses[0].errors.iter().all(|e| e.code.is_none()));
    // Valid but empty.
    let empty = parse_webhook(br#"{"object":"whatsapp_business_account","entry":[]}"#).unwrap();
    assert!(empty.messages.is_empty() && empty.statuses.is_empty() && empty.skipped == 0);
}

// --- Signatures and handshake ------------------------------------------------------------------

fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[test]
fn signature_known_vector() {
    // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
    let body = b"what do ya want for nothing?";
    let expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    assert_eq!(sign(b"Jefe", body), expected);
    assert!(verify_signature(b"Jefe", body, Some(expected)));
    assert!(verify_signature(
        b"Jefe",
        body,
        Some(&expected.to_ascii_uppercase().replace("SHA256=", "sha256="))
    ));
    // A real webhook body.
    let webhook = fixture("text.json");
    let header = sign(b"app-secret", &webhook);
    assert!(verify_signature(b"app-secret", &webhook, Some(&header)));
}

#[test]
fn signature_rejections() {
    let body = fixture("text.json");
    let good = sign(b"app-secret", &body);
    let hex = good.trim_start_matches("sha256=");
    // Wrong secret, tampered body, flipped digit.
    assert!(!verify_signature(b"other-secret", &body, Some(&good)));
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(!verify_signature(b"app-secret", &tampered, Some(&good)));
    let flipped = format!(
        "sha256={}{}",
        &hex[..63],
        if hex.ends_with('0') { '1' } else { '0' }
    );
    assert!(!verify_signature(b"app-secret", &body, Some(&flipped)));
    // Missing header, wrong or missing prefix.
    assert!(!verify_signature(b"app-secret", &body, None));
    assert!(!verify_signature(b"app-secret", &body, Some("")));
    assert!(!verify_signature(b"app-secret", &body, Some(hex)));
    assert!(!verify_signature(
        b"app-secret",
        &body,
        Some(&format!("sha1={hex}"))
    ));
    // Different-length and non-hex digests.
    assert!(!verify_signature(
        b"app-secret",
        &body,
        Some(&format!("sha256={}", &hex[..62]))
    ));
    assert!(!verify_signature(
        b"app-secret",
        &body,
        Some(&format!("sha256={hex}00"))
    ));
    assert!(!verify_signature(
        b"app-secret",
        &body,
        Some(&format!("sha256={}", &hex[..63]))
    ));
    assert!(!verify_signature(
        b"app-secret",
        &body,
        Some(&format!("sha256={}zz", &hex[..62]))
    ));
    assert!(!verify_signature(b"app-secret", &body, Some("sha256=")));
    // An empty app secret never verifies, even with a matching signature.
    assert!(!verify_signature(b"", &body, Some(&sign(b"", &body))));
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn subscription_handshake() {
    let good = params(&[
        ("hub.mode", "subscribe"),
        ("hub.verify_token", "my-verify-token"),
        ("hub.challenge", "1158201444"),
    ]);
    assert_eq!(
        verify_subscription(&good, "my-verify-token"),
        Some("1158201444".to_owned())
    );
    // Wrong token (same length, different length), wrong mode, missing pieces.
    assert_eq!(verify_subscription(&good, "my-verify-tokeX"), None);
    assert_eq!(verify_subscription(&good, "my-verify-token-longer"), None);
    assert_eq!(verify_subscription(&good, ""), None);
    let wrong_mode = params(&[
        ("hub.mode", "unsubscribe"),
        ("hub.verify_token", "my-verify-token"),
        ("hub.challenge", "1"),
    ]);
    assert_eq!(verify_subscription(&wrong_mode, "my-verify-token"), None);
    let no_mode = params(&[("hub.verify_token", "t"), ("hub.challenge", "1")]);
    assert_eq!(verify_subscription(&no_mode, "t"), None);
    let no_challenge = params(&[("hub.mode", "subscribe"), ("hub.verify_token", "t")]);
    assert_eq!(verify_subscription(&no_challenge, "t"), None);
    let no_token = params(&[("hub.mode", "subscribe"), ("hub.challenge", "1")]);
    assert_eq!(verify_subscription(&no_token, "t"), None);
}
