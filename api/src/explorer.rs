//! The explorer: DuckDB over one account's part of the lake.
//!
//! Each query gets a fresh in-memory database. The caller's visible files (from the
//! partition manifests, never a directory listing) are loaded into a table `executions`;
//! then external access is switched off and the configuration locked, and only then does
//! the caller's SQL run. So `read_parquet`, `COPY`, `ATTACH`, `INSTALL` and `SET` cannot
//! reach any file or setting: the only data in reach is the caller's own.

use duckdb::types::{TimeUnit, Value};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// A query's answer.
#[derive(Debug, Serialize)]
pub struct QueryResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each a list of JSON values.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Whether more rows existed than were returned.
    pub truncated: bool,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum ExplorerError {
    /// DuckDB rejected the SQL (including any attempt to leave the sandbox).
    #[error("{0}")]
    Sql(String),
    /// The query ran past its time.
    #[error("query timed out")]
    Timeout,
    /// The lake could not be read.
    #[error("{0}")]
    Internal(String),
}

const EMPTY_TABLE: &str = "CREATE TABLE executions (execution_id VARCHAR, account_id VARCHAR, contact_id VARCHAR, \
    connection_id VARCHAR, helper VARCHAR, category VARCHAR, status VARCHAR, message VARCHAR, \
    requested_at TIMESTAMPTZ, started_at TIMESTAMPTZ, completed_at TIMESTAMPTZ, duration_ms BIGINT, \
    output_json VARCHAR, changes_json VARCHAR, error_kind VARCHAR, error_message VARCHAR, source VARCHAR)";

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Runs `sql` over `account_id`'s tables.
///
/// # Errors
/// [`ExplorerError`].
pub fn run_query(
    files: &[PathBuf],
    sql: &str,
    max_rows: usize,
    timeout: Duration,
    memory_limit: &str,
) -> Result<QueryResult, ExplorerError> {
    let internal = |e: &dyn std::fmt::Display| ExplorerError::Internal(e.to_string());
    let sql = sql.trim().trim_end_matches(';').trim();
    if sql.contains(';') {
        return Err(ExplorerError::Sql("one statement per query".into()));
    }
    let conn = duckdb::Connection::open_in_memory().map_err(|e| internal(&e))?;
    let load = if files.is_empty() {
        EMPTY_TABLE.to_owned()
    } else {
        let list: Vec<String> = files.iter().map(|p| quote(&p.to_string_lossy())).collect();
        format!(
            "CREATE TABLE executions AS SELECT * FROM read_parquet([{}])",
            list.join(",")
        )
    };
    conn.execute_batch(&format!(
        "SET threads = 1; SET memory_limit = {}; {load}; \
         SET enable_external_access = false; SET autoinstall_known_extensions = false; \
         SET autoload_known_extensions = false; SET lock_configuration = true;",
        quote(memory_limit)
    ))
    .map_err(|e| internal(&e))?;

    let handle = conn.interrupt_handle();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout).is_err() {
            handle.interrupt();
            return true;
        }
        false
    });
    let result = collect(&conn, sql, max_rows);
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    match result {
        Err(_) if timed_out => Err(ExplorerError::Timeout),
        Err(e) => Err(ExplorerError::Sql(e.to_string())),
        Ok(r) => Ok(r),
    }
}

fn collect(conn: &duckdb::Connection, sql: &str, max_rows: usize) -> duckdb::Result<QueryResult> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows_out = Vec::new();
    let mut truncated = false;
    let mut rows = stmt.query([])?;
    let columns: Vec<String> = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    while let Some(row) = rows.next()? {
        if rows_out.len() == max_rows {
            truncated = true;
            break;
        }
        let mut out = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            out.push(to_json(row.get::<_, Value>(i)?));
        }
        rows_out.push(out);
    }
    Ok(QueryResult {
        columns,
        rows: rows_out,
        truncated,
    })
}

fn to_json(v: Value) -> serde_json::Value {
    use serde_json::json;
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Boolean(b) => json!(b),
        Value::TinyInt(i) => json!(i),
        Value::SmallInt(i) => json!(i),
        Value::Int(i) => json!(i),
        Value::BigInt(i) => json!(i),
        Value::HugeInt(i) => json!(i.to_string()),
        Value::UTinyInt(i) => json!(i),
        Value::USmallInt(i) => json!(i),
        Value::UInt(i) => json!(i),
        Value::UBigInt(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Double(f) => json!(f),
        Value::Text(s) => json!(s),
        Value::Timestamp(unit, t) => {
            let micros = match unit {
                TimeUnit::Second => t.saturating_mul(1_000_000),
                TimeUnit::Millisecond => t.saturating_mul(1_000),
                TimeUnit::Microsecond => t,
                TimeUnit::Nanosecond => t / 1_000,
            };
            chrono::DateTime::from_timestamp_micros(micros)
                .map_or(json!(t), |d| json!(d.to_rfc3339()))
        }
        other => json!(format!("{other:?}")),
    }
}
