//! A micro-benchmark of what a durable SQLite commit costs on this machine, apart from
//! Switchboard: the rate of `fdatasync` after a 4 KiB append, and the rate of WAL transactions
//! with `synchronous = FULL` (one sync each, as `SqliteStore` commits) and `OFF` (no sync: the
//! CPU and page-cache part alone), one small row each and 32 rows of a bench turn's size each
//! (one group commit of 32 conversations).
//!
//! `cargo run --release -p switchboard-sqlite --example wal_commit_rate [DIR]` (default: the
//! temporary directory; use the directory of the database you mean to measure).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, params};

/// Bytes of rows of one bench commit (conversation, execution, ~7 events, an outbox record),
/// as measured on the runtime bench.
const COMMIT_BYTES: usize = 7_500;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, PathBuf::from);
    let tag = std::process::id();
    let mut out = std::io::stdout().lock();

    let file = dir.join(format!("wal-commit-rate-{tag}.bin"));
    let rate = fsync_rate(&file, 200)?;
    std::fs::remove_file(&file)?;
    writeln!(
        out,
        "append 4 KiB + fdatasync: {rate:.0}/s ({:.0} µs each)",
        1e6 / rate
    )?;

    let db = dir.join(format!("wal-commit-rate-{tag}.sqlite"));
    for (sync, rows, bytes, n) in [
        ("FULL", 1, 200, 200),
        ("OFF", 1, 200, 5_000),
        ("FULL", 32, COMMIT_BYTES, 100),
        ("OFF", 32, COMMIT_BYTES, 500),
    ] {
        let tps = wal_rate(&db, sync, rows, bytes, n)?;
        writeln!(
            out,
            "WAL transaction, synchronous={sync}, {rows} row(s) of {bytes} B: {tps:.0} transactions/s = {:.0} rows/s ({:.0} µs each)",
            tps * rows as f64,
            1e6 / tps
        )?;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    writeln!(
        out,
        "ceiling of durable turns/s with C conversations at once and k commits per turn \
         (each waits for a sync): C × syncs/s ÷ k, e.g. 32 × {rate:.0} ÷ 3.1 = {:.0}",
        32.0 * rate / 3.1
    )?;
    Ok(())
}

fn fsync_rate(path: &Path, n: u32) -> std::io::Result<f64> {
    let mut f = std::fs::File::create(path)?;
    let block = [b'x'; 4096];
    let t = Instant::now();
    for _ in 0..n {
        f.write_all(&block)?;
        f.sync_data()?;
    }
    Ok(f64::from(n) / t.elapsed().as_secs_f64())
}

fn wal_rate(path: &Path, sync: &str, rows: usize, bytes: usize, n: u32) -> rusqlite::Result<f64> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", sync)?;
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")?;
    let body = "y".repeat(bytes);
    let t = Instant::now();
    for _ in 0..n {
        let tx = conn.unchecked_transaction()?;
        {
            let mut s = tx.prepare_cached("INSERT INTO t (body) VALUES (?1)")?;
            for _ in 0..rows {
                s.execute(params![body])?;
            }
        }
        tx.commit()?;
    }
    Ok(f64::from(n) / t.elapsed().as_secs_f64())
}
