//! `Transport`, the shared reqwest client, against real servers on 127.0.0.1 (wiremock): the
//! retry loop (what is retried, how often, how long it waits), the size cap and the
//! User-Agent.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use switchboard_http::transport::{BodyError, RetryPolicy, Transport, TransportConfig, USER_AGENT};
use wiremock::matchers::{header, header_exists, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn retrying(max_retries: u32) -> TransportConfig {
    TransportConfig {
        label: "test",
        retry: RetryPolicy {
            max_retries,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(200),
        },
        ..TransportConfig::default()
    }
}

async fn post(
    transport: &Transport,
    url: &str,
) -> Result<switchboard_http::transport::Answer, String> {
    transport
        .send(|client| client.post(url).body("{}"))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_5xx_then_a_success_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("down"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("up"))
        .mount(&server)
        .await;
    let transport = Transport::new(retrying(2)).unwrap();
    let answer = post(&transport, &server.uri()).await.unwrap();
    assert_eq!(answer.status.as_u16(), 200);
    assert_eq!(answer.body.unwrap(), b"up");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn retries_are_bounded_and_the_last_answer_is_returned() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_string("slow down"))
        .mount(&server)
        .await;
    let transport = Transport::new(retrying(2)).unwrap();
    let answer = post(&transport, &server.uri()).await.unwrap();
    assert_eq!(answer.status.as_u16(), 429);
    assert_eq!(answer.body.unwrap(), b"slow down");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn other_statuses_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad"))
        .mount(&server)
        .await;
    let transport = Transport::new(retrying(3)).unwrap();
    let answer = post(&transport, &server.uri()).await.unwrap();
    assert_eq!(answer.status.as_u16(), 400);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "30"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let transport = Transport::new(retrying(1)).unwrap();
    let started = Instant::now();
    let answer = post(&transport, &server.uri()).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(answer.status.as_u16(), 200);
    // Retry-After (30 s) beats the 5 ms backoff but is capped at 200 ms.
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn a_timeout_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let transport = Transport::new(TransportConfig {
        timeout: Some(Duration::from_millis(200)),
        ..retrying(3)
    })
    .unwrap();
    let err = transport
        .send(|client| client.post(server.uri()))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    // Bind then drop a listener: the port is (almost certainly) closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let transport = Transport::new(TransportConfig {
        retry: RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        },
        ..TransportConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let err = transport
        .send(|client| client.post(format!("http://127.0.0.1:{port}/")))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    // Two backoffs: 100 ms, then 200 ms.
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(100)))
        .mount(&server)
        .await;
    let transport = Transport::new(TransportConfig {
        max_response_bytes: Some(10),
        ..TransportConfig::default()
    })
    .unwrap();
    let answer = post(&transport, &server.uri()).await.unwrap();
    assert!(matches!(
        answer.body,
        Err(BodyError::TooLarge { limit: 10 })
    ));
    let uncapped = Transport::new(TransportConfig::default()).unwrap();
    let answer = post(&uncapped, &server.uri()).await.unwrap();
    assert_eq!(answer.body.unwrap().len(), 100);
}

#[tokio::test]
async fn the_user_agent_is_sent_only_when_asked() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("user-agent", USER_AGENT))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header_exists("user-agent"))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(20)
        .mount(&server)
        .await;
    assert!(USER_AGENT.starts_with("switchboard/"));
    let with = Transport::new(TransportConfig {
        user_agent: true,
        ..TransportConfig::default()
    })
    .unwrap();
    assert_eq!(
        post(&with, &server.uri()).await.unwrap().status.as_u16(),
        201
    );
    let without = Transport::new(TransportConfig::default()).unwrap();
    assert_eq!(
        post(&without, &server.uri()).await.unwrap().status.as_u16(),
        204
    );
}
