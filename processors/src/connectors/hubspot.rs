//! The HubSpot connector. (Being written: every operation still answers "unsupported".)

use super::registry::VendorContext;
use super::vendor::VendorHttp;
use super::{ApplyReport, Capability, CrmConnector, CrmError, CrmRead};
use crate::helpers::{Change, Contact};
use async_trait::async_trait;

/// A HubSpot account reached through one connection.
#[derive(Debug)]
pub struct HubSpot {
    http: VendorHttp,
}

impl HubSpot {
    /// The connector of `ctx.connection`.
    ///
    /// # Errors
    /// [`CrmError::Invalid`] when a needed setting is missing.
    pub fn new(ctx: VendorContext) -> Result<Self, CrmError> {
        Ok(Self { http: ctx.http })
    }
}

fn unsupported() -> CrmError {
    CrmError::Unsupported {
        what: "HubSpot operations (connector not finished)".into(),
    }
}

#[async_trait]
impl CrmRead for HubSpot {}

#[async_trait]
impl CrmConnector for HubSpot {
    fn platform(&self) -> &'static str {
        "hubspot"
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[]
    }
    async fn healthcheck(&self) -> Result<(), CrmError> {
        let _ = &self.http;
        Err(unsupported())
    }
    async fn get_contact(&self, _contact_id: &str) -> Result<Contact, CrmError> {
        Err(unsupported())
    }
    async fn apply(
        &self,
        _contact_id: &str,
        _execution_id: &str,
        _changes: &[Change],
    ) -> Result<ApplyReport, CrmError> {
        Err(unsupported())
    }
}
