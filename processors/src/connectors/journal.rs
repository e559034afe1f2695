//! The apply journal around a vendor connector: a vendor CRM cannot tell us whether it
//! already took an execution's changes, so what each execution applied to each contact
//! is recorded, and a redelivery gets the recorded report back instead of writing again.
//!
//! A failure to record after the vendor answered is never turned into an error (which
//! would make the CRM retry write again). The window left is a crash after the vendor
//! took the changes and before the record was written; the redelivery then applies them
//! again. Field sets, tags, owners and
//! consent land on the same state again; a note would be added twice.

use super::{
    ApplyReport, Capability, Company, ContactPage, ContactQuery, CrmConnector, CrmError, CrmRead,
    EmailStats, Opportunity, RecordKind, RelatedRecord, Tag, User,
};
use crate::helpers::{Change, Contact};
use crate::store::Store;
use async_trait::async_trait;
use std::sync::Arc;

/// A connector whose applies happen at most once per execution and contact.
pub struct Journaled {
    inner: Arc<dyn CrmConnector>,
    store: Store,
    connection_id: String,
}

impl Journaled {
    /// `inner`'s applies journaled in `store` under `connection_id`.
    #[must_use]
    pub fn new(inner: Arc<dyn CrmConnector>, store: Store, connection_id: String) -> Self {
        Self {
            inner,
            store,
            connection_id,
        }
    }
}

fn unavailable(e: &crate::store::StoreError) -> CrmError {
    CrmError::Unavailable {
        message: mfh_pipeline::report(e),
    }
}

#[async_trait]
impl CrmRead for Journaled {
    async fn search_contacts(
        &self,
        query: &ContactQuery,
        page: Option<&str>,
    ) -> Result<ContactPage, CrmError> {
        self.inner.search_contacts(query, page).await
    }
    async fn list_tags(&self) -> Result<Vec<Tag>, CrmError> {
        self.inner.list_tags().await
    }
    async fn list_users(&self) -> Result<Vec<User>, CrmError> {
        self.inner.list_users().await
    }
    async fn find_companies(&self, name: &str) -> Result<Vec<Company>, CrmError> {
        self.inner.find_companies(name).await
    }
    async fn related_records(
        &self,
        contact_id: &str,
        kind: RecordKind,
    ) -> Result<Vec<RelatedRecord>, CrmError> {
        self.inner.related_records(contact_id, kind).await
    }
    async fn email_stats(&self, email: &str) -> Result<EmailStats, CrmError> {
        self.inner.email_stats(email).await
    }
    async fn opportunities(&self, contact_id: &str) -> Result<Vec<Opportunity>, CrmError> {
        self.inner.opportunities(contact_id).await
    }
}

#[async_trait]
impl CrmConnector for Journaled {
    fn platform(&self) -> &'static str {
        self.inner.platform()
    }
    fn capabilities(&self) -> &'static [Capability] {
        self.inner.capabilities()
    }
    async fn healthcheck(&self) -> Result<(), CrmError> {
        self.inner.healthcheck().await
    }
    async fn vendor_account(&self) -> Result<Option<String>, CrmError> {
        self.inner.vendor_account().await
    }
    async fn get_contact(&self, contact_id: &str) -> Result<Contact, CrmError> {
        self.inner.get_contact(contact_id).await
    }
    async fn apply(
        &self,
        contact_id: &str,
        execution_id: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, CrmError> {
        if let Some(r) = self
            .store
            .recorded_apply(&self.connection_id, execution_id, contact_id)
            .await
            .map_err(|e| unavailable(&e))?
        {
            return Ok(r);
        }
        let report = self.inner.apply(contact_id, execution_id, changes).await?;
        // The vendor answered: its write happened, whatever the record does now. An
        // error from here would make the caller's CRM retry write again, so recording
        // is retried here, and if the store stays away the report still goes back (only
        // a redelivery, after a restart, could then repeat the write).
        if let Err(e) = crate::with_retries("record CRM apply", || {
            self.store
                .record_apply(&self.connection_id, execution_id, contact_id, &report)
        })
        .await
        {
            tracing::error!(execution_id, contact_id, error = %mfh_pipeline::report(&e),
                "The CRM took the changes but the journal could not record them.");
        }
        Ok(report)
    }
}
