//! The production clock and secrets: [`SystemClock`] (wall time, tokio sleeps) and
//! [`EnvSecrets`] (`${ENV:NAME}` from the process environment).

use std::time::Duration;

use async_trait::async_trait;

use super::{Clock, Secrets};
use crate::time::Timestamp;

/// Secrets from the process environment.
#[derive(Debug, Default)]
pub struct EnvSecrets;

impl Secrets for EnvSecrets {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
