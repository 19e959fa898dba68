//! `--store`: where executions live — `memory`, `sqlite://PATH`, `postgres://…` (or
//! `postgresql://…`), or `env:NAME` to read one of those from an environment variable (so a
//! database password never appears on a command line) — and the commands that maintain a store:
//! `switchboard migrate` and `switchboard prune`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use switchboard_postgres::{PoolOptions, PostgresStore};
use switchboard_runtime::Timestamp;
use switchboard_runtime::store::{ExecutionStore, MemoryStore};
use switchboard_sqlite::SqliteStore;

use crate::config::{Config, seconds};

/// A parsed `--store`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// In memory (lost at exit).
    Memory,
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (may hold a password: never print it).
    Postgres(String),
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl StoreSpec {
    /// Parses a `--store` value.
    pub fn parse(spec: &str) -> anyhow::Result<StoreSpec> {
        let spec = match spec.strip_prefix("env:") {
            Some(name) => std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| format!("--store env:{name}: the variable is not set"))?,
            None => spec.to_owned(),
        };
        if spec == "memory" {
            return Ok(StoreSpec::Memory);
        }
        if let Some(path) = spec.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!("--store sqlite://PATH needs a path");
            }
            return Ok(StoreSpec::Sqlite(PathBuf::from(path)));
        }
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            return Ok(StoreSpec::Postgres(spec));
        }
        // Name only the scheme of a URL: the rest may hold a password.
        let shown = match spec.split_once("://") {
            Some((scheme, _)) => format!("{}://…", excerpt(scheme)),
            None => excerpt(&spec),
        };
        bail!(
            "--store must be `memory`, `sqlite://PATH`, `postgres://…` or `env:NAME`, not `{shown}`"
        )
    }

    /// The store in words, without any credential (for logs and messages).
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Memory => "memory".into(),
            StoreSpec::Sqlite(p) => format!("sqlite://{}", p.display()),
            StoreSpec::Postgres(url) => {
                // Keep the scheme, host, port and database; drop the user and password.
                let rest = url.split_once("://").map_or("", |(_, r)| r);
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                let host = host.split('?').next().unwrap_or("");
                format!("postgres://…@{host}")
            }
        }
    }

    /// Opens the store (a PostgreSQL pool connects on first use).
    pub fn open(&self, config: &Config) -> anyhow::Result<Arc<dyn ExecutionStore>> {
        Ok(match self {
            StoreSpec::Memory => Arc::new(MemoryStore::new()),
            StoreSpec::Sqlite(path) => Arc::new(SqliteStore::open(path).map_err(|e| {
                anyhow::anyhow!("cannot open the SQLite store {}: {e}", path.display())
            })?),
            StoreSpec::Postgres(_) => Arc::new(self.postgres(config)?),
        })
    }

    /// The PostgreSQL store of a `postgres://` spec, with `[postgres]` pool settings.
    pub fn postgres(&self, config: &Config) -> anyhow::Result<PostgresStore> {
        let StoreSpec::Postgres(url) = self else {
            bail!("{} is not a PostgreSQL store", self.describe());
        };
        let mut options = PoolOptions::default();
        if let Some(p) = &config.postgres {
            if let Some(n) = p.pool_size {
                if n == 0 {
                    bail!("[postgres] pool_size must be positive");
                }
                options.max_size = n;
            }
            if let Some(s) = p.pool_wait_seconds {
                options.wait_timeout = seconds("[postgres] pool_wait_seconds", s)?;
            }
            if let Some(s) = p.connect_timeout_seconds {
                options.connect_timeout = seconds("[postgres] connect_timeout_seconds", s)?;
            }
            if let Some(s) = p.statement_timeout_seconds {
                options.statement_timeout = seconds("[postgres] statement_timeout_seconds", s)?;
            }
            options.schema.clone_from(&p.schema);
        }
        PostgresStore::connect(url, &options).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Brings a durable store's schema up to date (SQLite migrates when opened). Returns a line
    /// saying what was done.
    pub async fn migrate(&self, config: &Config) -> anyhow::Result<String> {
        match self {
            StoreSpec::Memory => Ok("memory: nothing to migrate".into()),
            StoreSpec::Sqlite(path) => {
                let store = SqliteStore::open(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                Ok(format!(
                    "{}: schema version {}",
                    self.describe(),
                    store.schema_version().await?
                ))
            }
            StoreSpec::Postgres(_) => {
                let store = self.postgres(config)?;
                let applied = store.migrate().await?;
                let version = store.schema_version().await?;
                Ok(if applied.is_empty() {
                    format!(
                        "{}: schema version {version}, already current",
                        self.describe()
                    )
                } else {
                    format!(
                        "{}: applied migrations {applied:?}; schema version {version}",
                        self.describe()
                    )
                })
            }
        }
    }

    /// Fails unless a PostgreSQL schema is current (`serve` without `--migrate`).
    pub async fn check(&self, config: &Config) -> anyhow::Result<()> {
        if let StoreSpec::Postgres(_) = self {
            self.postgres(config)?.check_schema().await?;
        }
        Ok(())
    }
}

fn excerpt(s: &str) -> String {
    let head: String = s.chars().take(40).collect();
    if head.len() < s.len() {
        format!("{head}…")
    } else {
        head
    }
}

/// Parses a duration such as `30d`, `12h`, `90m` or `45s`.
pub fn parse_age(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number
        .parse()
        .with_context(|| format!("`{text}`: give a number and a unit (d, h, m or s), e.g. 30d"))?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => bail!("`{text}`: the unit must be d, h, m or s"),
    };
    secs.map(Duration::from_secs)
        .with_context(|| format!("`{text}` is too long"))
}

/// Arguments of `switchboard migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The store: `sqlite://PATH`, `postgres://…` or `env:NAME`.
    #[arg(long, value_name = "STORE")]
    pub store: String,
    /// A `switchboard.toml` (its `[postgres]` section).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `switchboard prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// The store: `sqlite://PATH`, `postgres://…` or `env:NAME`.
    #[arg(long, value_name = "STORE")]
    pub store: String,
    /// Remove executions that ended (or failed) longer ago than this: `30d`, `12h`, …
    #[arg(long, value_name = "AGE")]
    pub older_than: String,
    /// Executions removed per transaction.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// A `switchboard.toml` (its `[postgres]` section).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn read_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Config::read(p),
        None => Ok(Config::default()),
    }
}

/// `switchboard migrate`.
pub async fn migrate(args: &MigrateArgs, out: &mut dyn std::io::Write) -> anyhow::Result<u8> {
    let config = read_config(args.config.as_ref())?;
    let spec = StoreSpec::parse(&args.store)?;
    writeln!(out, "{}", spec.migrate(&config).await?)?;
    Ok(0)
}

/// `switchboard prune`.
pub async fn prune(args: &PruneArgs, out: &mut dyn std::io::Write) -> anyhow::Result<u8> {
    let config = read_config(args.config.as_ref())?;
    let spec = StoreSpec::parse(&args.store)?;
    let age = parse_age(&args.older_than)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let before = Timestamp(now - i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
    let line = match &spec {
        StoreSpec::Memory => bail!("a memory store has nothing to prune"),
        StoreSpec::Sqlite(path) => {
            let store =
                SqliteStore::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let p = store.prune(before, args.batch).await?;
            format!(
                "{}: removed {} executions, {} events, {} outbox records",
                spec.describe(),
                p.executions,
                p.events,
                p.outbox
            )
        }
        StoreSpec::Postgres(_) => {
            let store = spec.postgres(&config)?;
            store.check_schema().await?;
            let p = store.prune(before, args.batch).await?;
            format!(
                "{}: removed {} executions, {} events, {} outbox records, {} message ids, {} idempotency records",
                spec.describe(),
                p.executions,
                p.events,
                p.outbox,
                p.message_ids,
                p.idempotency
            )
        }
    };
    writeln!(out, "{line}")?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_never_show_a_password() {
        assert_eq!(StoreSpec::parse("memory").unwrap(), StoreSpec::Memory);
        assert!(StoreSpec::parse("sqlite://").is_err());
        assert!(StoreSpec::parse("redis://x").is_err());
        let p = StoreSpec::parse("postgres://sb:hunter2@db.internal:5433/prod?sslmode=disable")
            .unwrap();
        assert_eq!(p.describe(), "postgres://…@db.internal:5433/prod");
        assert!(!format!("{p:?}").contains("hunter2"));
        let e = StoreSpec::parse("mysql://root:s3cr3t@x/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mysql://"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(StoreSpec::parse("env:SB_TEST_SURELY_UNSET_VAR").is_err());
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(12 * 3_600));
        assert!(parse_age("30").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
    }
}
