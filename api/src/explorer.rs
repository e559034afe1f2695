//! The explorer: DuckDB over one account's part of the lake.
//!
//! Each query gets a fresh in-memory database. The caller's visible files (from the
//! partition manifests, never a directory listing) are loaded into a table `executions`,
//! and their contact snapshots into a table `contacts` holding each contact's latest
//! state (see [`CONTACTS_LATEST`]); then external access is switched off and the configuration locked, and only then does
//! the caller's SQL run. So `read_parquet`, `COPY`, `ATTACH`, `INSTALL` and `SET` cannot
//! reach any file or setting: the only data in reach is the caller's own.

use duckdb::types::{TimeUnit, Value};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// A query's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    output_json VARCHAR, changes_json VARCHAR, error_kind VARCHAR, error_message VARCHAR, source VARCHAR, \
    helper_id VARCHAR)";

/// The columns of `contacts`: a snapshot's, without the deletion marker (a deleted
/// contact is absent) and the topic position (only a tie-break).
const CONTACT_COLUMNS: &str = "account_id, connection_id, platform, contact_id, email, \
    first_name, last_name, fields_json, tags_json, owner_id, crm_updated_at, observed_at, source";

const EMPTY_CONTACTS: &str = "CREATE TABLE contacts (account_id VARCHAR, connection_id VARCHAR, \
    platform VARCHAR, contact_id VARCHAR, email VARCHAR, first_name VARCHAR, last_name VARCHAR, \
    fields_json VARCHAR, tags_json VARCHAR, owner_id VARCHAR, crm_updated_at TIMESTAMPTZ, \
    observed_at TIMESTAMPTZ, source VARCHAR)";

/// The latest state of each contact, from the snapshot files `{files}` (a DuckDB list):
/// the row with the greatest `observed_at`, then `crm_updated_at` (a missing one ranks
/// lowest), then topic position, the order the lake's compaction keeps too. The latest
/// row is picked before deleted contacts are dropped, so an older live snapshot never
/// shows through a deletion. Hive partitioning is off: the path's `date` is only where a
/// row was written.
pub const CONTACTS_LATEST: &str = "CREATE TABLE contacts AS SELECT {columns} FROM ( \
    SELECT * FROM read_parquet({files}, hive_partitioning = false) \
    QUALIFY row_number() OVER ( \
        PARTITION BY account_id, connection_id, contact_id \
        ORDER BY observed_at DESC, crm_updated_at DESC NULLS LAST, \
            topic_partition DESC, topic_offset DESC) = 1 \
) WHERE NOT deleted";

/// One row per execution, as DynamoDB keeps it: a succeeded copy over a failed one, then
/// the later. Compaction keeps the same row within a tier; this picks it across tiers.
const ONE_PER_EXECUTION: &str = "QUALIFY row_number() OVER (PARTITION BY execution_id \
    ORDER BY status = 'succeeded' DESC, completed_at DESC) = 1";

/// The most one query may spill to disk.
const SPILL_LIMIT: &str = "1GB";

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn file_list(files: &[PathBuf]) -> String {
    let list: Vec<String> = files.iter().map(|p| quote(&p.to_string_lossy())).collect();
    format!("[{}]", list.join(","))
}

/// What one query may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rows returned at most.
    pub max_rows: usize,
    /// Bytes of returned values at most (as JSON, roughly): the rows are held twice in
    /// the API (values, then the response), which DuckDB's memory limit does not cover.
    pub max_bytes: usize,
    /// Longest the query may take, loading the caller's files included.
    pub timeout: Duration,
    /// DuckDB's memory limit, e.g. `512MB`.
    pub memory_limit: String,
}

/// Runs `sql` over one account's tables: `files` are its executions files, `contact_files`
/// its contacts files (both from [`mfh_processors::lake::Lake::materialize_account`]).
///
/// # Errors
/// [`ExplorerError`].
pub fn run_query(
    files: &[PathBuf],
    contact_files: &[PathBuf],
    sql: &str,
    limits: &Limits,
) -> Result<QueryResult, ExplorerError> {
    let internal = |e: &dyn std::fmt::Display| ExplorerError::Internal(e.to_string());
    let sql = sql.trim().trim_end_matches(';').trim();
    if sql.contains(';') {
        return Err(ExplorerError::Sql("one statement per query".into()));
    }
    // Spilled blocks hold the caller's rows: each query spills to a directory of its own
    // (the only one besides its files that the lock-down leaves reachable), capped, and
    // removed with it. DuckDB's default, `.tmp` under the process's directory, is shared
    // by every query of every account.
    let spill = tempfile::Builder::new()
        .prefix("mfh-explorer-")
        .tempdir()
        .map_err(|e| internal(&e))?;
    let conn = duckdb::Connection::open_in_memory().map_err(|e| internal(&e))?;
    // Files written before a column was added lack it: they read as null by name.
    let load = if files.is_empty() {
        EMPTY_TABLE.to_owned()
    } else {
        format!(
            "{EMPTY_TABLE}; INSERT INTO executions BY NAME SELECT * FROM read_parquet({}, union_by_name = true, hive_partitioning = false) {ONE_PER_EXECUTION}",
            file_list(files)
        )
    };
    let contacts = if contact_files.is_empty() {
        EMPTY_CONTACTS.to_owned()
    } else {
        CONTACTS_LATEST
            .replace("{columns}", CONTACT_COLUMNS)
            .replace("{files}", &file_list(contact_files))
    };
    // The clock runs from here: loading a large lake is as much the caller's time as
    // the SQL itself.
    let handle = conn.interrupt_handle();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let timeout = limits.timeout;
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout).is_err() {
            handle.interrupt();
            return true;
        }
        false
    });
    let result = conn
        .execute_batch(&format!(
            "SET threads = 1; SET memory_limit = {}; SET temp_directory = {}; \
             SET max_temp_directory_size = {}; {load}; {contacts}; \
             SET enable_external_access = false; SET autoinstall_known_extensions = false; \
             SET autoload_known_extensions = false; SET lock_configuration = true;",
            quote(&limits.memory_limit),
            quote(&spill.path().display().to_string()),
            quote(SPILL_LIMIT),
        ))
        .map_err(Loading::Load)
        .and_then(|()| collect(&conn, sql, limits).map_err(Loading::Query));
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    match result {
        Err(_) if timed_out => Err(ExplorerError::Timeout),
        Err(Loading::Load(e)) => Err(internal(&e)),
        Err(Loading::Query(e)) => Err(ExplorerError::Sql(e.to_string())),
        Ok(r) => Ok(r),
    }
}

/// Which step failed: loading is ours (a defect or a broken file), the query the caller's.
enum Loading {
    Load(duckdb::Error),
    Query(duckdb::Error),
}

fn collect(conn: &duckdb::Connection, sql: &str, limits: &Limits) -> duckdb::Result<QueryResult> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows_out = Vec::new();
    let mut truncated = false;
    let mut bytes = 0usize;
    let mut rows = stmt.query([])?;
    let columns: Vec<String> = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    'rows: while let Some(row) = rows.next()? {
        if rows_out.len() == limits.max_rows {
            truncated = true;
            break;
        }
        let mut out = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let v = to_json(row.get::<_, Value>(i)?);
            bytes = bytes.saturating_add(json_size(&v));
            if bytes > limits.max_bytes {
                truncated = true;
                break 'rows;
            }
            out.push(v);
        }
        rows_out.push(out);
    }
    Ok(QueryResult {
        columns,
        rows: rows_out,
        truncated,
    })
}

/// About what `v` takes in the response, counted without serializing scalars.
fn json_size(v: &serde_json::Value) -> usize {
    use serde_json::Value as J;
    match v {
        J::Null | J::Bool(_) => 5,
        J::Number(_) => 24,
        J::String(s) => s.len() + 2,
        J::Array(_) | J::Object(_) => serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use mfh_processors::lake::compact::{LakeWriter, WriterConfig};
    use mfh_processors::lake::{CONTACTS_TABLE, ContactRow, Lake};
    use mfh_schemas::ContactSnapshot;
    use serde_json::json;

    const T: i64 = 1_760_000_000_000;

    fn snap(account: &str, contact: &str, observed_at: i64, email: &str) -> ContactSnapshot {
        ContactSnapshot {
            account_id: account.into(),
            connection_id: "c1".into(),
            platform: "keap".into(),
            contact_id: contact.into(),
            deleted: false,
            email: Some(email.into()),
            first_name: None,
            last_name: None,
            fields_json: "{}".into(),
            tags_json: "{}".into(),
            owner_id: None,
            crm_updated_at: None,
            observed_at,
            source: "full_sync".into(),
        }
    }

    fn limits() -> Limits {
        Limits {
            max_rows: 100,
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(10),
            memory_limit: "256MB".into(),
        }
    }

    fn query(files: &[PathBuf], sql: &str) -> QueryResult {
        run_query(&[], files, sql, &limits()).unwrap()
    }

    #[test]
    fn contacts_is_an_empty_typed_table_without_files() {
        let r = query(&[], "select * from contacts");
        assert!(r.rows.is_empty());
        assert_eq!(r.columns.len(), 13);
        assert_eq!(r.columns[3], "contact_id");
        let r = query(&[], "select count(*) from executions");
        assert_eq!(r.rows, vec![vec![json!(0)]]);
    }

    /// The spill directory is the query's own: DuckDB's shared default is not reachable,
    /// and two queries never share one.
    #[test]
    fn each_query_spills_to_a_directory_of_its_own() {
        let shared = run_query(&[], &[], "select count(*) from glob('.tmp/*')", &limits());
        assert!(matches!(shared, Err(ExplorerError::Sql(_))), "{shared:?}");
        let dir = || {
            query(&[], "select current_setting('temp_directory')").rows[0][0]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (a, b) = (dir(), dir());
        assert_ne!(a, b);
        assert!(a.contains("mfh-explorer-"), "{a}");
        assert!(
            !std::path::Path::new(&a).exists(),
            "removed after the query"
        );
    }

    /// Files written before `helper_id` existed and files with it read as one table.
    #[test]
    fn executions_of_every_file_version_read_by_name() {
        use mfh_processors::lake::rows::{SCHEMA, encode_parquet, to_batch};
        let result = |id: &str, helper_id: Option<&str>| mfh_schemas::ExecutionCompleted {
            execution_id: id.into(),
            account_id: "a".into(),
            contact_id: "c".into(),
            connection_id: "sandbox".into(),
            helper: "tag_it".into(),
            category: "tagging".into(),
            status: mfh_schemas::ExecutionStatus::Succeeded,
            message: String::new(),
            requested_at: T,
            started_at: T,
            completed_at: T,
            output_json: "{}".into(),
            changes: vec![],
            error_kind: None,
            error_message: None,
            source: "api".into(),
            helper_id: helper_id.map(str::to_owned),
        };
        let dir = tempfile::tempdir().unwrap();
        let new = to_batch(&[mfh_processors::lake::ExecutionRow::new(result(
            "e2",
            Some("hlp_x"),
        ))])
        .unwrap();
        let keep: Vec<usize> = (0..SCHEMA.fields().len() - 1).collect();
        let old = to_batch(&[mfh_processors::lake::ExecutionRow::new(result("e1", None))])
            .unwrap()
            .project(&keep)
            .unwrap();
        let mut files = Vec::new();
        for (name, batch) in [("old.parquet", old), ("new.parquet", new)] {
            let (bytes, _) = encode_parquet(name, &batch.schema(), &[batch]).unwrap();
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            files.push(path);
        }
        let executions = |files: &[PathBuf]| {
            run_query(
                files,
                &[],
                "select execution_id, helper_id from executions order by 1",
                &limits(),
            )
            .unwrap()
        };
        assert_eq!(
            executions(&files[..1]).rows,
            vec![vec![json!("e1"), json!(null)]]
        );
        let r = run_query(
            &files,
            &[],
            "select execution_id, helper_id from executions order by 1",
            &limits(),
        )
        .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![json!("e1"), json!(null)],
                vec![json!("e2"), json!("hlp_x")]
            ]
        );
    }

    #[tokio::test]
    async fn contacts_holds_the_callers_latest_live_state() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path()).unwrap();
        // No compaction: every snapshot stays in its own file, so the explorer's SQL alone
        // has to pick the latest state.
        let w = LakeWriter::start(
            lake.table(CONTACTS_TABLE),
            WriterConfig {
                max_batch: 1,
                max_wait: Duration::from_millis(1),
                compact_min_files: 1000,
                delete_grace: Duration::ZERO,
            },
        );
        let mut deleted = snap("a", "y", T + 10, "y-gone");
        deleted.deleted = true;
        let mut z_unknown = snap("a", "z", T, "z-unknown");
        z_unknown.crm_updated_at = None;
        let mut z_known = snap("a", "z", T, "z-crm");
        z_known.crm_updated_at = Some(T - 1);
        let records = [
            snap("a", "x", T, "x-old"),
            snap("a", "x", T + 10, "x-new"),
            // Stale: observed before the newest one but delivered after it.
            snap("a", "x", T + 5, "x-stale"),
            snap("a", "y", T, "y-live"),
            deleted,
            snap("a", "y", T + 1, "y-stale"),
            z_known,
            // Same observed_at and a later offset, but no CRM time: loses.
            z_unknown,
            snap("b", "x", T + 99, "b-x"),
            snap("b", "w", T, "b-w"),
        ];
        for (offset, s) in (0..).zip(records) {
            w.submit(
                mfh_processors::lake::compact::Position::fetched(0, offset, 1),
                Some(ContactRow::new(s, 0, offset)),
            )
            .await
            .unwrap();
        }
        let scratch = tempfile::tempdir().unwrap();
        let contacts = lake.table(CONTACTS_TABLE);
        let a = contacts
            .materialize_account("a", scratch.path())
            .await
            .unwrap();
        assert_eq!(a.len(), 8);
        let r = query(
            &a,
            "select account_id, contact_id, email, observed_at from contacts order by contact_id",
        );
        assert_eq!(
            r.rows,
            vec![
                vec![
                    json!("a"),
                    json!("x"),
                    json!("x-new"),
                    json!("2025-10-09T08:53:20.010+00:00")
                ],
                vec![
                    json!("a"),
                    json!("z"),
                    json!("z-crm"),
                    json!("2025-10-09T08:53:20+00:00")
                ],
            ]
        );
        // The caller's executions are unaffected, and empty here.
        let r = query(&a, "select count(*) from executions");
        assert_eq!(r.rows, vec![vec![json!(0)]]);

        let b = contacts
            .materialize_account("b", scratch.path())
            .await
            .unwrap();
        let r = query(
            &b,
            "select string_agg(email, ',' order by email) from contacts",
        );
        assert_eq!(r.rows, vec![vec![json!("b-w,b-x")]]);
        // The lock-down still holds with contacts loaded.
        let path = a[0].display().to_string();
        let leak = run_query(
            &[],
            &b,
            &format!("select * from read_parquet('{path}')"),
            &limits(),
        );
        assert!(matches!(leak, Err(ExplorerError::Sql(_))), "{leak:?}");
    }

    /// A query's clock covers loading the caller's files: a lake too large to load in
    /// time is a timeout, not a load that runs unbounded before the clock starts.
    #[test]
    fn the_timeout_covers_loading() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.parquet");
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "COPY (SELECT 'e' || i AS execution_id, repeat('x', 40) AS message, \
             'succeeded' AS status, now() AS completed_at \
             FROM range(3000000) t(i)) TO {} (FORMAT parquet)",
            quote(&big.display().to_string())
        ))
        .unwrap();
        let started = std::time::Instant::now();
        let r = run_query(
            &[big],
            &[],
            "select 1",
            &Limits {
                timeout: Duration::from_millis(50),
                ..limits()
            },
        );
        assert!(matches!(r, Err(ExplorerError::Timeout)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    /// Review finding 10: the rows' bytes were unbounded in the API, whatever DuckDB's
    /// memory limit.
    #[test]
    fn returned_rows_stop_at_the_byte_budget() {
        let r = run_query(
            &[],
            &[],
            "select repeat('x', 100000) from range(1000)",
            &Limits {
                max_rows: 10_000,
                max_bytes: 1 << 20,
                ..limits()
            },
        )
        .unwrap();
        assert!(r.truncated);
        assert_eq!(r.rows.len(), 10, "about 1 MiB of 100 kB values");
    }

    /// Two accounts' queries spilling at once: a query can neither list, read nor write
    /// another query's spill directory (nor its own through SQL).
    #[test]
    fn spilling_queries_cannot_reach_each_others_files() {
        let spill_dirs = || -> Vec<PathBuf> {
            std::fs::read_dir(std::env::temp_dir())
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("mfh-explorer-"))
                .filter(|e| std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some()))
                .map(|e| e.path())
                .collect()
        };
        let spilling = || {
            std::thread::spawn(|| {
                run_query(
                    &[],
                    &[],
                    "select count(*) from (select i, md5(i::varchar) || repeat('y', 200) s \
                     from range(1500000) t(i) order by s desc, i)",
                    &Limits {
                        memory_limit: "100MB".into(),
                        timeout: Duration::from_secs(120),
                        ..limits()
                    },
                )
            })
        };
        let (a, b) = (spilling(), spilling());
        let started = std::time::Instant::now();
        let dirs = loop {
            let d = spill_dirs();
            if d.len() >= 2 || a.is_finished() || b.is_finished() {
                break d;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "no spill seen");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(dirs.len() >= 2, "both queries spill to disk: {dirs:?}");
        for d in &dirs {
            let d = d.display().to_string();
            for sql in [
                format!("select * from glob('{d}/*')"),
                format!("select count(*) from read_blob('{d}/*')"),
                format!("copy (select 1) to '{d}/planted.csv'"),
            ] {
                let r = run_query(&[], &[], &sql, &limits());
                assert!(matches!(r, Err(ExplorerError::Sql(_))), "{sql}: {r:?}");
            }
            assert!(!std::path::Path::new(&d).join("planted.csv").exists());
        }
        for q in [a, b] {
            let r = q.join().unwrap().unwrap();
            assert_eq!(r.rows, vec![vec![json!(1_500_000)]]);
        }
        for d in &dirs {
            assert!(!d.exists(), "{} removed after its query", d.display());
        }
    }
}
