//! google_sheet_it: writes the contact as a row of a Google Sheet, with the columns in
//! the configured `fields` order (the rebuild's map-order columns drifted between runs).
//! `append` (default) adds the row below the sheet's data (`POST /v4/spreadsheets/{id}/
//! values/{range}:append?valueInputOption=USER_ENTERED&insertDataOption=INSERT_ROWS`,
//! bearer token), writing a header row of the field keys first when the sheet is empty
//! (`include_headers`, default true). `upsert` looks the contact up by the `upsert_key`
//! column and overwrites that row (`PUT …/values/{range}?valueInputOption=USER_ENTERED`),
//! appending when it is not there, which makes re-runs idempotent. Values the sheet would
//! run as formulas are prefixed with `'`. Writes are journaled, so a redelivered
//! execution writes once; the header and key-column reads also run in a dry run.

use super::excel_it::literal_cell;
use crate::connectors::Capability;
use crate::helpers::defaults::{default_true, given};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, once,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// How the row is written.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Add a row below the data (default).
    #[default]
    Append,
    /// Overwrite the row whose `upsert_key` column holds the contact's value, else append.
    Upsert,
}

/// Config of google_sheet_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Google OAuth access token with the spreadsheets scope.
    pub access_token: String,
    /// The spreadsheet id (from its URL).
    pub spreadsheet_id: String,
    /// The tab's name; default `Sheet1`.
    #[serde(default = "default_sheet")]
    pub sheet_name: String,
    /// Contact field keys, one per column, in column order.
    pub fields: Vec<String>,
    /// Write the field keys as a header row into an empty sheet; default true.
    #[serde(default = "default_true")]
    pub include_headers: bool,
    /// `append` (default) or `upsert`.
    #[serde(default)]
    pub mode: Mode,
    /// The field (one of `fields`) identifying the contact's row; required for `upsert`.
    pub upsert_key: Option<String>,
    /// Prefix formula-like values with `'`; default true.
    #[serde(default = "default_true")]
    pub escape_formulas: bool,
    /// Tag applied after the write.
    pub apply_tag: Option<String>,
}

fn default_sheet() -> String {
    "Sheet1".into()
}
impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (name, value) in [
            ("access_token", &self.access_token),
            ("spreadsheet_id", &self.spreadsheet_id),
            ("sheet_name", &self.sheet_name),
        ] {
            check(&mut errors, value.trim().is_empty(), name, "is required");
        }
        check(
            &mut errors,
            self.fields.is_empty(),
            "fields",
            "must list at least one column",
        );
        check(
            &mut errors,
            self.fields.iter().any(|f| f.trim().is_empty()),
            "fields",
            "field keys must not be empty",
        );
        let key = given(&self.upsert_key);
        check(
            &mut errors,
            self.mode == Mode::Upsert && key.is_none(),
            "upsert_key",
            "is required for upsert",
        );
        check(
            &mut errors,
            key.is_some_and(|k| !self.fields.iter().any(|f| f.trim() == k)),
            "upsert_key",
            "must be one of fields",
        );
        check(
            &mut errors,
            self.apply_tag.is_some() && given(&self.apply_tag).is_none(),
            "apply_tag",
            "must not be empty when set",
        );
        finish(errors)
    }
}

/// The google_sheet_it helper.
pub struct GoogleSheetIt;

impl Helper for GoogleSheetIt {
    const NAME: &'static str = "google_sheet_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Appends or updates the contact's row in a Google Sheet, with a fixed column order.";
    const EXAMPLE_CONFIG: &'static str = r#"{"access_token": "ya29.token", "spreadsheet_id": "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms", "fields": ["email", "first_name", "last_name"], "mode": "upsert", "upsert_key": "email"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "spreadsheet_id",
        "sheet",
        "mode",
        "rows_written",
        "updated_range",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(SheetStep { config }))
    }
}

struct SheetStep {
    config: Config,
}

/// The sheet name quoted for A1 notation.
fn quoted(sheet: &str) -> String {
    format!("'{}'", sheet.trim().replace('\'', "''"))
}

/// The column letters of a zero-based index: 0 → A, 26 → AA.
fn column(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(char::from(b'A' + u8::try_from(i % 26).unwrap_or(0)));
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.iter().rev().collect()
}

/// A values range answer; `values` is absent when the range is empty.
#[derive(Debug, Default, Deserialize)]
struct ValueRange {
    #[serde(default)]
    values: Vec<Vec<Value>>,
}

fn unexpected(e: serde_json::Error) -> StepError {
    StepError::External {
        message: format!("unexpected Google Sheets response: {e}"),
        retryable: false,
    }
}

impl SheetStep {
    /// `…/v4/spreadsheets/{id}/values/{range}` with the query pairs.
    fn url(&self, ctx: &Ctx<'_>, range: &str, query: &[(&str, &str)]) -> Result<String, StepError> {
        let mut url = url::Url::parse(&ctx.vendors.url("google_sheets", "/v4/spreadsheets"))
            .map_err(|e| StepError::Input(format!("google_sheets base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| StepError::Input("google_sheets base URL cannot take a path".into()))?
            .extend([self.config.spreadsheet_id.trim(), "values", range]);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url.to_string())
    }

    async fn read(&self, ctx: &Ctx<'_>, range: &str) -> Result<ValueRange, StepError> {
        let url = self.url(ctx, range, &[])?;
        let token = self.config.access_token.trim();
        let resp = ctx
            .http
            .send(reqwest::Method::GET, &url, |r| r.bearer_auth(token))
            .await?;
        serde_json::from_slice(&resp.body).map_err(unexpected)
    }

    async fn write(
        &self,
        ctx: &Ctx<'_>,
        method: reqwest::Method,
        url: String,
        body: Value,
    ) -> Result<Value, StepError> {
        let token = self.config.access_token.trim();
        let resp = ctx
            .http
            .send(method, &url, |r| r.bearer_auth(token).json(&body))
            .await?;
        serde_json::from_slice(&resp.body).map_err(unexpected)
    }
}

#[async_trait::async_trait]
impl AsyncStep for SheetStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let sheet = quoted(&c.sheet_name);
        let row: Vec<String> = c
            .fields
            .iter()
            .map(|f| {
                let v = contact.fields.get(f.trim()).map_or("", String::as_str);
                literal_cell(v, c.escape_formulas)
            })
            .collect();
        if row.iter().all(|v| v.trim().is_empty()) {
            return Ok(Outcome::failed("None of the configured fields has a value"));
        }
        let header: Vec<&str> = c.fields.iter().map(|f| f.trim()).collect();
        let mut existing_row = None;
        let mut empty_sheet = false;
        if c.mode == Mode::Upsert {
            let key = given(&c.upsert_key).unwrap_or_default();
            let Some(value) = contact.field(key).map(str::trim) else {
                return Ok(Outcome::failed(format!(
                    "The contact has no {key} to match a row"
                )));
            };
            let idx = header.iter().position(|f| *f == key).unwrap_or(0);
            let col = column(idx);
            let cells = self
                .read(ctx, &format!("{sheet}!{col}:{col}"))
                .await?
                .values;
            empty_sheet = cells.iter().all(|r| r.is_empty());
            let skip = usize::from(c.include_headers);
            existing_row = cells.iter().enumerate().skip(skip).find_map(|(i, r)| {
                let cell = r.first().and_then(Value::as_str).unwrap_or_default();
                cell.trim().eq_ignore_ascii_case(value).then_some(i + 1)
            });
        } else if c.include_headers {
            empty_sheet = self
                .read(ctx, &format!("{sheet}!1:1"))
                .await?
                .values
                .is_empty();
        }
        let (mode, written) = if let Some(n) = existing_row {
            let range = format!("{sheet}!A{n}");
            let url = self.url(ctx, &range, &[("valueInputOption", "USER_ENTERED")])?;
            let body = json!({"range": range, "majorDimension": "ROWS", "values": [row]});
            let done = once(ctx, "sheet row update", || {
                self.write(ctx, reqwest::Method::PUT, url, body)
            })
            .await?;
            ("update", done)
        } else {
            let mut rows = Vec::new();
            if c.include_headers && empty_sheet {
                rows.push(json!(header));
            }
            rows.push(json!(row));
            let url = self.url(
                ctx,
                &format!("{sheet}!A1:append"),
                &[
                    ("valueInputOption", "USER_ENTERED"),
                    ("insertDataOption", "INSERT_ROWS"),
                ],
            )?;
            let body = json!({"majorDimension": "ROWS", "values": rows});
            let done = once(ctx, "sheet row append", || {
                self.write(ctx, reqwest::Method::POST, url, body)
            })
            .await?;
            ("append", done)
        };
        let base = |out: Outcome| {
            out.with("spreadsheet_id", c.spreadsheet_id.trim())
                .with("sheet", c.sheet_name.trim())
                .with("mode", mode)
        };
        let Some(written) = written else {
            return Ok(base(Outcome::ok(format!(
                "Would {mode} the contact's row in {}",
                c.sheet_name.trim()
            ))));
        };
        let updates = written.get("updates").unwrap_or(&written);
        Ok(base(
            Outcome::ok(format!(
                "Wrote the contact's row ({mode}) in {}",
                c.sheet_name.trim()
            ))
            .branch(contact, given(&c.apply_tag), None),
        )
        .with("rows_written", updates["updatedRows"].clone())
        .with("updated_range", updates["updatedRange"].clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact};

    const SID: &str = "SID1";

    fn path(range: &str) -> String {
        format!("/v4/spreadsheets/{SID}/values/{range}")
    }

    fn appended(range: &str, rows: u32) -> Value {
        json!({"spreadsheetId": SID, "tableRange": "'Sheet1'!A1:C4",
            "updates": {"spreadsheetId": SID, "updatedRange": range, "updatedRows": rows,
                "updatedColumns": 3, "updatedCells": rows * 3}})
    }

    fn cfg() -> Value {
        json!({"access_token": "gt", "spreadsheet_id": SID, "fields": ["email", "first_name", "_Note"],
            "apply_tag": "8"})
    }

    fn ada() -> Contact {
        contact(
            &[
                ("email", "ada@example.com"),
                ("first_name", "Ada"),
                ("_Note", "=HYPERLINK(\"x\")"),
            ],
            &[],
        )
    }

    async fn setup(routes: Vec<(&str, String, u16, Value)>) -> (MockVendor, Env) {
        let routes: Vec<(&str, &str, u16, Value)> = routes
            .iter()
            .map(|(m, p, s, b)| (*m, p.as_str(), *s, b.clone()))
            .collect();
        let m = MockVendor::start(&routes).await;
        let env = Env::new().vendor("google_sheets", &m.base);
        env.state.set_now(env.now);
        (m, env)
    }

    #[tokio::test]
    async fn appends_below_existing_data_in_column_order() {
        let (m, env) = setup(vec![
            (
                "GET",
                path("'Sheet1'!1:1"),
                200,
                json!({"range": "Sheet1!A1:Z1", "majorDimension": "ROWS",
                "values": [["email", "first_name", "_Note"]]}),
            ),
            (
                "POST",
                path("'Sheet1'!A1:append"),
                200,
                appended("Sheet1!A5:C5", 1),
            ),
        ])
        .await;
        let out = env.run(&GoogleSheetIt, cfg(), &ada()).await.unwrap();
        let reqs = m.received();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].header("authorization"), Some("Bearer gt"));
        let post = &reqs[1];
        assert_eq!(
            (post.method.as_str(), post.path.as_str()),
            ("POST", path("'Sheet1'!A1:append").as_str())
        );
        assert_eq!(
            post.query,
            "valueInputOption=USER_ENTERED&insertDataOption=INSERT_ROWS"
        );
        assert_eq!(post.header("authorization"), Some("Bearer gt"));
        assert_eq!(
            post.json(),
            json!({"majorDimension": "ROWS", "values": [["ada@example.com", "Ada", "'=HYPERLINK(\"x\")"]]})
        );
        assert_eq!(out.changes, vec![Change::ApplyTag { tag_id: "8".into() }]);
        assert_eq!(out.output["rows_written"], json!(1));
        assert_eq!(out.output["updated_range"], json!("Sheet1!A5:C5"));
        assert_eq!(out.output["mode"], json!("append"));
    }

    #[tokio::test]
    async fn an_empty_sheet_gets_a_header_row_first() {
        let (m, env) = setup(vec![
            (
                "GET",
                path("'Leads%202026'!1:1"),
                200,
                json!({"range": "'Leads 2026'!A1:Z1", "majorDimension": "ROWS"}),
            ),
            (
                "POST",
                path("'Leads%202026'!A1:append"),
                200,
                appended("'Leads 2026'!A1:C2", 2),
            ),
        ])
        .await;
        let mut cfg = cfg();
        cfg["sheet_name"] = json!("Leads 2026");
        env.run(&GoogleSheetIt, cfg, &ada()).await.unwrap();
        let reqs = m.received();
        assert_eq!(reqs[1].path, path("'Leads%202026'!A1:append"));
        assert_eq!(
            reqs[1].json()["values"][0],
            json!(["email", "first_name", "_Note"])
        );
        assert_eq!(reqs[1].json()["values"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn upsert_overwrites_the_matching_row_or_appends() {
        let (m, mut env) = setup(vec![
            (
                "GET",
                path("'Sheet1'!A:A"),
                200,
                json!({"range": "Sheet1!A1:A4", "majorDimension": "ROWS",
                "values": [["email"], ["bob@example.com"], [], ["ADA@example.com"]]}),
            ),
            (
                "PUT",
                path("'Sheet1'!A4"),
                200,
                json!({"spreadsheetId": SID, "updatedRange": "Sheet1!A4:C4",
                "updatedRows": 1, "updatedColumns": 3, "updatedCells": 3}),
            ),
            (
                "POST",
                path("'Sheet1'!A1:append"),
                200,
                appended("Sheet1!A5:C5", 1),
            ),
        ])
        .await;
        let mut cfg = cfg();
        cfg["mode"] = json!("upsert");
        cfg["upsert_key"] = json!("email");
        let out = env.run(&GoogleSheetIt, cfg.clone(), &ada()).await.unwrap();
        let put = m.received()[1].clone();
        assert_eq!(
            (put.method.as_str(), put.query.as_str()),
            ("PUT", "valueInputOption=USER_ENTERED")
        );
        assert_eq!(put.json()["range"], json!("'Sheet1'!A4"));
        assert_eq!(put.json()["values"][0][1], json!("Ada"));
        assert_eq!(out.output["mode"], json!("update"));
        env.execution_id = "e2".into();
        let carol = contact(&[("email", "carol@example.com")], &[]);
        let out = env.run(&GoogleSheetIt, cfg, &carol).await.unwrap();
        assert_eq!(m.received()[3].method, "POST");
        assert_eq!(
            m.received()[3].json()["values"].as_array().unwrap().len(),
            1,
            "no second header"
        );
        assert_eq!(out.output["mode"], json!("append"));
    }

    #[tokio::test]
    async fn upsert_needs_the_key_and_empty_rows_are_refused() {
        let (m, env) = setup(vec![]).await;
        let mut cfg = cfg();
        cfg["mode"] = json!("upsert");
        cfg["upsert_key"] = json!("email");
        let out = env
            .run(&GoogleSheetIt, cfg, &contact(&[("first_name", "Ada")], &[]))
            .await
            .unwrap();
        assert!(!out.success);
        let out = env
            .run(
                &GoogleSheetIt,
                json!({"access_token": "t", "spreadsheet_id": SID, "fields": ["x"]}),
                &contact(&[], &[]),
            )
            .await
            .unwrap();
        assert!(!out.success && m.received().is_empty());
    }

    #[tokio::test]
    async fn dry_run_rerun_and_vendor_errors() {
        let (m, mut env) = setup(vec![
            (
                "GET",
                path("'Sheet1'!1:1"),
                200,
                json!({"values": [["email"]]}),
            ),
            (
                "POST",
                path("'Sheet1'!A1:append"),
                200,
                appended("Sheet1!A5:C5", 1),
            ),
        ])
        .await;
        env.dry_run = true;
        let out = env.run(&GoogleSheetIt, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.message.starts_with("Would append"));
        assert!(
            m.received().iter().all(|r| r.method == "GET"),
            "only reads in a dry run"
        );
        env.dry_run = false;
        let first = env.run(&GoogleSheetIt, cfg(), &ada()).await.unwrap();
        let again = env.run(&GoogleSheetIt, cfg(), &ada()).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(
            m.received().iter().filter(|r| r.method == "POST").count(),
            1
        );
        for (status, retryable) in [(403, false), (429, true), (500, true)] {
            m.route(
                "POST",
                &path("'Sheet1'!A1:append"),
                status,
                json!({"error": {"code": status}}),
            );
            env.execution_id = format!("e{status}");
            let err = env.run(&GoogleSheetIt, cfg(), &ada()).await.unwrap_err();
            assert!(
                matches!(err, StepError::External { retryable: r, .. } if r == retryable),
                "{status}"
            );
        }
    }

    #[test]
    fn columns_and_quoting() {
        assert_eq!(
            [column(0), column(25), column(26), column(27), column(701)],
            ["A", "Z", "AA", "AB", "ZZ"]
        );
        assert_eq!(quoted("Bob's"), "'Bob''s'");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &GoogleSheetIt,
            json!({"access_token": "", "spreadsheet_id": "", "fields": [],
            "mode": "upsert"}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["access_token", "spreadsheet_id", "fields", "upsert_key"]
        );
        let errs = config_errors(
            &GoogleSheetIt,
            json!({"access_token": "t", "spreadsheet_id": "s",
            "fields": ["a"], "mode": "upsert", "upsert_key": "b"}),
        );
        assert_eq!(errs[0].field, "upsert_key");
        assert!(!config_errors(&GoogleSheetIt, json!({"access_token": "t", "spreadsheet_id": "s", "fields": ["a"], "mode": "replace"})).is_empty());
    }
}
