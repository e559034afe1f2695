//! The one typed config of mfh.

use mfh_api::ApiConfig;
use mfh_pipeline::kafka::KafkaConfig;
use mfh_processors::ProcessorsConfig;
use mfh_processors::billing::BillingConfig;
use mfh_processors::http::HttpConfig;
use mfh_processors::lake::LakeConfig;
use mfh_processors::store::DynamoConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../default.toml");

/// Settings of `mfh up`'s embedded stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Data of the broker, store, registry and lake.
    pub data_dir: PathBuf,
    /// Where `scripts/install-deps` put the broker and store binaries.
    pub bin_dir: PathBuf,
    /// Broker port on 127.0.0.1.
    pub broker_port: u16,
    /// Schema Registry port on 127.0.0.1.
    pub registry_port: u16,
    /// DynamoDB-compatible server port on 127.0.0.1.
    pub dynamo_port: u16,
    /// Sandbox CRM seed file.
    pub seed_file: PathBuf,
    /// The demo account that gets the bootstrap API key.
    pub account_id: String,
    /// Where the demo account's billing emails go (the outbox, by default).
    #[serde(default = "default_billing_email")]
    pub billing_email: String,
}

fn default_billing_email() -> String {
    "owner@demo.mfh.localhost".into()
}

/// Everything.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Broker and registry.
    pub kafka: KafkaConfig,
    /// DynamoDB.
    pub dynamo: DynamoConfig,
    /// Lake.
    pub lake: LakeConfig,
    /// API.
    pub api: ApiConfig,
    /// Processors.
    pub processors: ProcessorsConfig,
    /// Outbound HTTP.
    pub http: HttpConfig,
    /// Billing: Stripe webhook secrets and prices, the trial job, email delivery.
    #[serde(default)]
    pub billing: BillingConfig,
    /// CRM vendors: endpoints, OAuth apps, limits, webhook verification, sync schedule.
    #[serde(default)]
    pub crm: mfh_processors::connectors::config::CrmConfig,
    /// Embedded stack.
    pub embedded: EmbeddedConfig,
}

impl Config {
    /// Loads defaults, then `file`, then `MFH__…` env vars, and validates.
    ///
    /// # Errors
    /// Every problem found, one per line.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        // The CRM vendors' defaults come from code (one per vendor), not DEFAULTS, so they
        // go in as the bottom layer: overriding one vendor key keeps the vendor's others.
        let base = figment::Figment::new().merge(figment::providers::Serialized::default(
            "crm",
            mfh_processors::connectors::config::CrmConfig::default(),
        ));
        let mut cfg: Self = mfh_pipeline::config::load_over(base, DEFAULTS, file).map_err(|e| {
            e.into_iter()
                .map(|e| format!("- {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        // Unset, the public URL is the listen address, so run and webhook URLs printed
        // by a local stack on another port are ones that work.
        if cfg.api.public_url.trim().is_empty() {
            cfg.api.public_url = format!("http://{}", cfg.api.listen);
        }
        if cfg.billing.email.dashboard_url.trim().is_empty() {
            cfg.billing
                .email
                .dashboard_url
                .clone_from(&cfg.api.public_url);
        }
        cfg.validate().map_err(|errs| {
            errs.iter()
                .map(|e| format!("- {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        Ok(cfg)
    }

    /// Checks what types cannot; lists every problem.
    ///
    /// # Errors
    /// The problems.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if self.kafka.brokers.trim().is_empty() {
            errs.push("kafka.brokers: must name at least one broker".to_owned());
        }
        if !self.kafka.schema_registry_url.starts_with("http://")
            && !self.kafka.schema_registry_url.starts_with("https://")
        {
            errs.push("kafka.schema_registry_url: must be an http(s) URL".to_owned());
        }
        if !self.crm.encryption_key.is_empty()
            && mfh_processors::connectors::secrets::Cipher::from_base64(&self.crm.encryption_key)
                .is_err()
        {
            errs.push("crm.encryption_key: must be base64 of 32 bytes".to_owned());
        }
        if self.kafka.partitions < 1 {
            errs.push("kafka.partitions: must be at least 1".to_owned());
        }
        if self.api.listen.parse::<std::net::SocketAddr>().is_err() {
            errs.push(format!(
                "api.listen: {:?} is not an address like 127.0.0.1:8080",
                self.api.listen
            ));
        }
        if self.processors.max_in_flight == 0
            || self.processors.max_buffered < self.processors.max_in_flight
        {
            errs.push(
                "processors: need max_in_flight >= 1 and max_buffered >= max_in_flight".to_owned(),
            );
        }
        if self.api.explorer_max_concurrent == 0 || self.api.explorer_max_bytes == 0 {
            errs.push(
                "api: explorer_max_concurrent and explorer_max_bytes must be at least 1".to_owned(),
            );
        }
        if self.processors.drain_timeout > std::time::Duration::from_secs(240) {
            errs.push(
                "processors.drain_timeout: at most 4m, under the broker's 5-minute poll interval"
                    .to_owned(),
            );
        }
        if self.processors.lake_max_batch == 0 {
            errs.push("processors.lake_max_batch: must be at least 1".to_owned());
        }
        if self.billing.trial_check_interval.is_zero() {
            errs.push("billing.trial_check_interval: must be positive".to_owned());
        }
        if !self.billing.email.smtp_url.is_empty()
            && !self.billing.email.smtp_url.starts_with("smtp://")
            && !self.billing.email.smtp_url.starts_with("smtps://")
        {
            errs.push("billing.email.smtp_url: must be an smtp:// or smtps:// URL".to_owned());
        }
        if let Err(e) = mfh_processors::billing::checkout::StripeBilling::from_config(&self.billing)
        {
            errs.push(mfh_pipeline::report(&e));
        }
        if self.http.max_attempts == 0 {
            errs.push("http.max_attempts: must be at least 1".to_owned());
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_validate() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.api.listen, "127.0.0.1:8080");
    }

    /// One vendor key in a file (the environment is the same merge) keeps every other key
    /// of that vendor at its default.
    #[test]
    fn one_vendor_key_overrides_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfh.toml");
        std::fs::write(
            &path,
            "[crm.keap]\napi_base = \"http://127.0.0.1:9\"\n[crm.hubspot]\nclient_id = \"app\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path)).unwrap();
        let d = mfh_processors::connectors::config::CrmConfig::default();
        assert_eq!(c.crm.keap.api_base, "http://127.0.0.1:9");
        assert_eq!(c.crm.keap.token_url, d.keap.token_url);
        assert_eq!(
            format!("{:?}", c.crm.keap.rate_limit),
            format!("{:?}", d.keap.rate_limit)
        );
        assert_eq!(c.crm.hubspot.client_id, "app");
        assert_eq!(c.crm.hubspot.api_base, d.hubspot.api_base);
        assert_eq!(c.crm.gohighlevel.api_base, d.gohighlevel.api_base);
    }

    #[test]
    fn validation_lists_every_problem() {
        let mut c = Config::load(None).unwrap();
        c.kafka.brokers = String::new();
        c.kafka.partitions = 0;
        c.api.listen = "nope".into();
        assert_eq!(c.validate().unwrap_err().len(), 3);
    }
}
