//! Builds a helper's [`Ctx`] for one execution, the same way for the worker and the
//! API's dry run: account-scoped state and files, the helper instance id, the seed.

use crate::connectors::CrmRead;
use crate::helpers::{Ctx, Vendors};
use crate::http::HttpClient;
use crate::state::{DryRunState, StateStore};
use crate::store::Store;
use crate::store::state::DynamoState;
use mfh_schemas::ExecutionRequested;
use object_store::ObjectStore;
use object_store::prefix::PrefixStore;
use std::sync::Arc;

/// What a context borrows for one execution, owned.
pub struct Scope {
    state: DynamoState,
    files: PrefixStore<Arc<dyn ObjectStore>>,
    instance: String,
    seed: u64,
}

impl Scope {
    /// The scope of `req`: state and files of its account only, and the helper
    /// instance its state is keyed by ([`crate::router::Validated::instance`]).
    #[must_use]
    pub fn new(
        store: &Store,
        files: &Arc<dyn ObjectStore>,
        req: &ExecutionRequested,
        instance: &str,
    ) -> Self {
        Self {
            state: DynamoState::new(store.clone(), &req.account_id),
            files: PrefixStore::new(files.clone(), format!("accounts/{}", req.account_id)),
            instance: instance.to_owned(),
            // Fresh OS randomness: a seed derived from the execution id would let anyone
            // who knows the id recompute password_it's password. Redelivery does not need
            // the same draws, because the recorded outcome is reused, not re-drawn.
            seed: rand::random(),
        }
    }

    /// The account's durable state.
    #[must_use]
    pub fn state(&self) -> &dyn StateStore {
        &self.state
    }

    /// The context of `req` against `crm`; `state` is [`Scope::state`] or a dry run's
    /// overlay of it.
    #[allow(clippy::too_many_arguments)]
    pub fn ctx<'a>(
        &'a self,
        req: &'a ExecutionRequested,
        input: Option<&'a serde_json::Value>,
        http: &'a HttpClient,
        crm: &'a dyn CrmRead,
        vendors: &'a Vendors,
        state: &'a dyn StateStore,
        dry_run: bool,
    ) -> Ctx<'a> {
        Ctx {
            execution_id: &req.execution_id,
            account_id: &req.account_id,
            instance: &self.instance,
            now: chrono::Utc::now(),
            seed: self.seed,
            input,
            http,
            crm,
            state,
            vendors,
            files: &self.files,
            dry_run,
        }
    }

    /// An overlay of the account's state for a dry run.
    #[must_use]
    pub fn dry_run_state(&self) -> DryRunState<'_> {
        DryRunState::new(&self.state)
    }
}
