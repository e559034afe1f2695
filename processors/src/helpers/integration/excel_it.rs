//! excel_it: appends the contact as a row to a table in an Excel workbook on OneDrive or
//! SharePoint, through Microsoft Graph (`POST /v1.0/me/drive/items/{item-id}/workbook/
//! tables/{table}/rows`, or `/v1.0/drives/{drive-id}/items/…` with `drive_id`, bearer
//! token, body `{"values": [[…]]}`). The columns are `fields` in the configured order, so
//! rows always line up; a missing field is an empty cell. Values Excel would run as a
//! formula (starting with `=`, `+`, `-` or `@`) are prefixed with `'` unless
//! `escape_formulas` is off. The append is journaled, so a redelivered execution adds no
//! second row; every new execution appends another (non-idempotent by design).

use crate::connectors::Capability;
use crate::helpers::defaults::{default_true, given};
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish, once,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Config of excel_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Microsoft Graph access token (Files.ReadWrite).
    pub access_token: String,
    /// The drive holding the workbook; default the token owner's drive (`/me/drive`).
    pub drive_id: Option<String>,
    /// The workbook's drive item id.
    pub item_id: String,
    /// The table's name or id, e.g. `Table1`.
    pub table: String,
    /// Contact field keys, one per column, in column order.
    pub fields: Vec<String>,
    /// Prefix formula-like values with `'`; default true.
    #[serde(default = "default_true")]
    pub escape_formulas: bool,
    /// Tag applied after the row is added.
    pub apply_tag: Option<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (name, value) in [
            ("access_token", &self.access_token),
            ("item_id", &self.item_id),
            ("table", &self.table),
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
        for (name, value) in [("drive_id", &self.drive_id), ("apply_tag", &self.apply_tag)] {
            check(
                &mut errors,
                value.is_some() && given(value).is_none(),
                name,
                "must not be empty when set",
            );
        }
        finish(errors)
    }
}

/// The excel_it helper.
pub struct ExcelIt;

impl Helper for ExcelIt {
    const NAME: &'static str = "excel_it";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str = "Appends the contact's fields as a row to a table in an Excel workbook via Microsoft Graph.";
    const EXAMPLE_CONFIG: &'static str = r#"{"access_token": "graph_token", "item_id": "01BYE5RZ6QN3ZWBTUFOFD3GSPGOHDJD36K", "table": "Contacts", "fields": ["first_name", "last_name", "email"]}"#;
    const OUTPUTS: &'static [&'static str] = &["row_index", "data_row", "columns"];
    const REQUIRES: &'static [Capability] = &[Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(ExcelStep { config }))
    }
}

struct ExcelStep {
    config: Config,
}

/// A cell value that Excel will not evaluate as a formula.
pub(crate) fn literal_cell(value: &str, escape: bool) -> String {
    if escape && value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

#[async_trait::async_trait]
impl AsyncStep for ExcelStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
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
        let mut url = url::Url::parse(&ctx.vendors.url("microsoft_graph", "/v1.0"))
            .map_err(|e| StepError::Input(format!("microsoft_graph base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| StepError::Input("microsoft_graph base URL cannot take a path".into()))?
            .extend(match given(&c.drive_id) {
                Some(d) => vec!["drives", d],
                None => vec!["me", "drive"],
            })
            .extend([
                "items",
                c.item_id.trim(),
                "workbook",
                "tables",
                c.table.trim(),
                "rows",
            ]);
        let url = url.to_string();
        let body = json!({"values": [row]});
        let token = c.access_token.trim();
        let added = once(ctx, "excel row", || async move {
            let resp = ctx
                .http
                .send(reqwest::Method::POST, &url, |r| {
                    r.bearer_auth(token).json(&body)
                })
                .await?;
            serde_json::from_slice::<Value>(&resp.body).map_err(|e| StepError::External {
                message: format!("unexpected Microsoft Graph response: {e}"),
                retryable: false,
            })
        })
        .await?;
        let columns = c.fields.len();
        let Some(added) = added else {
            return Ok(Outcome::ok(format!(
                "Would add a {columns}-column row to table {}",
                c.table.trim()
            ))
            .with("data_row", row)
            .with("columns", columns));
        };
        Ok(
            Outcome::ok(format!("Added a row to table {}", c.table.trim()))
                .branch(contact, given(&c.apply_tag), None)
                .with("row_index", added["index"].clone())
                .with("data_row", row)
                .with("columns", columns),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact};

    const PATH: &str = "/v1.0/me/drive/items/ITEM1/workbook/tables/Contacts/rows";

    fn cfg() -> Value {
        json!({"access_token": "gt", "item_id": "ITEM1", "table": "Contacts",
            "fields": ["first_name", "phone", "email", "_Note"], "apply_tag": "9"})
    }

    async fn setup(path: &str, status: u16) -> (MockVendor, Env) {
        let m = MockVendor::start(&[(
            "POST",
            path,
            status,
            json!({"index": 41, "values": [["Ada", "", "ada@example.com", "'=1+1"]]}),
        )])
        .await;
        let env = Env::new().vendor("microsoft_graph", &m.base);
        env.state.set_now(env.now);
        (m, env)
    }

    fn ada() -> Contact {
        contact(
            &[
                ("first_name", "Ada"),
                ("email", "ada@example.com"),
                ("_Note", "=1+1"),
            ],
            &[],
        )
    }

    #[tokio::test]
    async fn appends_the_row_in_column_order() {
        let (m, env) = setup(PATH, 201).await;
        let out = env.run(&ExcelIt, cfg(), &ada()).await.unwrap();
        let req = m.single();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", PATH));
        assert_eq!(req.header("authorization"), Some("Bearer gt"));
        assert_eq!(
            req.json(),
            json!({"values": [["Ada", "", "ada@example.com", "'=1+1"]]})
        );
        assert_eq!(out.changes, vec![Change::ApplyTag { tag_id: "9".into() }]);
        assert_eq!(out.output["row_index"], json!(41));
        assert_eq!(out.output["columns"], json!(4));
    }

    #[tokio::test]
    async fn a_drive_id_addresses_a_shared_drive_and_escaping_can_be_off() {
        let path = "/v1.0/drives/b!drive/items/ITEM1/workbook/tables/Contacts/rows";
        let (m, env) = setup(path, 201).await;
        let mut cfg = cfg();
        cfg["drive_id"] = json!("b!drive");
        cfg["escape_formulas"] = json!(false);
        env.run(&ExcelIt, cfg, &ada()).await.unwrap();
        assert_eq!(m.single().json()["values"][0][3], json!("=1+1"));
    }

    #[tokio::test]
    async fn an_empty_row_is_not_added() {
        let (m, env) = setup(PATH, 201).await;
        let out = env
            .run(&ExcelIt, cfg(), &contact(&[("first_name", " ")], &[]))
            .await
            .unwrap();
        assert!(!out.success && m.received().is_empty());
    }

    #[tokio::test]
    async fn dry_run_rerun_and_vendor_errors() {
        let (m, mut env) = setup(PATH, 201).await;
        env.dry_run = true;
        let out = env.run(&ExcelIt, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.message.starts_with("Would add") && m.received().is_empty());
        env.dry_run = false;
        let first = env.run(&ExcelIt, cfg(), &ada()).await.unwrap();
        let again = env.run(&ExcelIt, cfg(), &ada()).await.unwrap();
        assert_eq!((m.received().len(), first), (1, again));
        for (status, retryable) in [(404, false), (429, true), (504, true)] {
            m.route("POST", PATH, status, json!({"error": {"code": "x"}}));
            env.execution_id = format!("e{status}");
            let err = env.run(&ExcelIt, cfg(), &ada()).await.unwrap_err();
            assert!(
                matches!(err, StepError::External { retryable: r, .. } if r == retryable),
                "{status}"
            );
        }
    }

    #[test]
    fn formula_cells_are_made_literal() {
        for (v, expected) in [
            ("=SUM(A1)", "'=SUM(A1)"),
            ("+1", "'+1"),
            ("-5", "'-5"),
            ("@x", "'@x"),
            ("a=b", "a=b"),
        ] {
            assert_eq!(literal_cell(v, true), expected);
        }
        assert_eq!(literal_cell("=x", false), "=x");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &ExcelIt,
            json!({"access_token": "", "item_id": " ", "table": "", "fields": []}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["access_token", "item_id", "table", "fields"]);
        assert!(
            !config_errors(
                &ExcelIt,
                json!({"access_token": "t", "item_id": "i", "table": "t", "fields": [""]})
            )
            .is_empty()
        );
        assert!(!config_errors(&ExcelIt, json!({"access_token": "t", "item_id": "i", "table": "t", "fields": ["a"], "drive_id": ""})).is_empty());
    }
}
