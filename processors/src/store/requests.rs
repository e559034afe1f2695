//! Counts every DynamoDB request the store sends, by table and operation, into the
//! process's metrics (`mfh_dynamodb_requests_total`): the machine-independent measure of
//! what one execution costs. Counted once per operation after serialization, so an SDK
//! retry of the same request is not counted again and a batch or transaction counts once.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use mfh_pipeline::metrics::{DynamoLabels, Metrics};
use std::collections::BTreeSet;

/// The interceptor; one per [`super::Store`].
#[derive(Debug)]
pub(crate) struct RequestCounter {
    pub(crate) metrics: Metrics,
    pub(crate) prefix: String,
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "mfh-request-counter"
    }

    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit_once('.'))
            .map_or("unknown", |(_, op)| op);
        let table = tables(request.body().bytes().unwrap_or_default(), &self.prefix);
        self.metrics
            .dynamodb_requests
            .get_or_create(&DynamoLabels {
                table,
                op: op.to_owned(),
            })
            .inc();
        Ok(())
    }
}

/// The tables a request body names, without `prefix`: `"TableName"` fields for single-item
/// operations and transactions, `"RequestItems"` keys for batches.
fn tables(body: &[u8], prefix: &str) -> String {
    const FIELD: &[u8] = b"\"TableName\":\"";
    let mut names = BTreeSet::new();
    let mut rest = body;
    while let Some(at) = find(rest, FIELD) {
        rest = &rest[at + FIELD.len()..];
        let Some(end) = rest.iter().position(|b| *b == b'"') else {
            break;
        };
        names.insert(String::from_utf8_lossy(&rest[..end]).into_owned());
        rest = &rest[end..];
    }
    if names.is_empty()
        && find(body, b"\"RequestItems\"").is_some()
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(items) = v.get("RequestItems").and_then(|i| i.as_object())
    {
        names.extend(items.keys().cloned());
    }
    if names.is_empty() {
        return "-".to_owned();
    }
    names
        .iter()
        .map(|n| n.strip_prefix(prefix).unwrap_or(n))
        .collect::<Vec<_>>()
        .join("+")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::tables;

    #[test]
    fn names_the_tables_without_the_prefix() {
        assert_eq!(
            tables(br#"{"TableName":"mfh_accounts","Key":{}}"#, "mfh_"),
            "accounts"
        );
        assert_eq!(
            tables(
                br#"{"TransactItems":[{"Put":{"TableName":"mfh_usage"}},{"Update":{"TableName":"mfh_usage_marks"}},{"Put":{"TableName":"mfh_usage"}}]}"#,
                "mfh_"
            ),
            "usage+usage_marks"
        );
        assert_eq!(
            tables(
                br#"{"RequestItems":{"mfh_executions":{"Keys":[]},"mfh_outcomes":{}}}"#,
                "mfh_"
            ),
            "executions+outcomes"
        );
        assert_eq!(tables(b"{}", "mfh_"), "-");
        assert_eq!(tables(br#"{"TableName":"mfh_x"#, "mfh_"), "-");
    }
}
