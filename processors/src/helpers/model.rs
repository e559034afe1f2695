//! The values helpers work on: a contact snapshot, the changes to make, the outcome.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A snapshot of one CRM contact, with CRM-native field keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The CRM's contact id.
    pub id: String,
    /// Standard and custom fields by key (e.g. `first_name`, `email`, `_LeadScore`).
    pub fields: BTreeMap<String, String>,
    /// Tags on the contact: id → name.
    pub tags: BTreeMap<String, String>,
    /// The owning user's id, if any.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// The linked company's id, if any.
    #[serde(default)]
    pub company_id: Option<String>,
    /// Whether the primary email may receive marketing; `None` when the CRM does not say.
    #[serde(default)]
    pub marketable: Option<bool>,
    /// When the CRM created the contact (milliseconds since the epoch).
    #[serde(default)]
    pub created_at: Option<i64>,
    /// When the CRM last updated the contact (milliseconds since the epoch).
    #[serde(default)]
    pub updated_at: Option<i64>,
}

impl Contact {
    /// The field's value, treating missing, empty and whitespace-only alike as absent.
    #[must_use]
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Whether the contact carries the tag id.
    #[must_use]
    pub fn has_tag(&self, tag_id: &str) -> bool {
        self.tags.contains_key(tag_id)
    }
}

/// One change a helper asks the connector to make to the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Set a field; `None` clears it.
    SetField {
        /// Field key.
        field: String,
        /// New value.
        value: Option<String>,
    },
    /// Apply a tag by id.
    ApplyTag {
        /// Tag id.
        tag_id: String,
    },
    /// Remove a tag by id.
    RemoveTag {
        /// Tag id.
        tag_id: String,
    },
    /// Add a note to the contact.
    AddNote {
        /// Note title.
        title: String,
        /// Note body.
        body: String,
    },
    /// Achieve an API goal (Keap) or its equivalent on other CRMs.
    AchieveGoal {
        /// Goal call name.
        call_name: String,
    },
    /// Apply the tag with this name, creating it (in `category`) when the CRM lacks it.
    ApplyTagNamed {
        /// Tag name.
        name: String,
        /// Category for a newly created tag.
        category: Option<String>,
    },
    /// Make `user_id` the contact's owner.
    SetOwner {
        /// CRM user id.
        user_id: String,
    },
    /// Opt an email address in to or out of marketing.
    SetOptIn {
        /// The address.
        email: String,
        /// True to opt in, false to opt out.
        opted_in: bool,
        /// The consent or opt-out reason recorded by the CRM.
        reason: String,
    },
    /// Link the contact to a company; `company_id: None` creates the company first.
    LinkCompany {
        /// An existing company's id.
        company_id: Option<String>,
        /// The company's name (used when creating it).
        company_name: String,
    },
    /// Start a CRM automation (Keap campaign sequence, GHL workflow, ...).
    TriggerAutomation {
        /// Automation id.
        automation_id: String,
    },
    /// Move one of the contact's opportunities to a stage.
    MoveOpportunity {
        /// Opportunity id.
        opportunity_id: String,
        /// Target stage.
        stage: String,
    },
    /// Merge another contact into this one: its tags join this contact's, and it is
    /// deleted or marked as merged. Field values are copied by separate `SetField`s.
    MergeContact {
        /// The contact merged away.
        loser_id: String,
        /// Delete the loser instead of marking it merged.
        delete_loser: bool,
    },
    /// Create a related record (an order, an invoice) on the contact.
    AddRecord {
        /// Record kind.
        record_kind: crate::connectors::RecordKind,
        /// Its fields.
        fields: BTreeMap<String, String>,
    },
    /// A change to another contact of the same CRM (bulk tagging, merges).
    ForContact {
        /// The other contact.
        contact_id: String,
        /// What to change on it.
        #[schema(no_recursion)]
        change: Box<Change>,
    },
}

impl Change {
    /// The change's kind as recorded in results: `field_updated`, `tag_applied`, ...
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SetField { .. } => "field_updated",
            Self::ApplyTag { .. } => "tag_applied",
            Self::RemoveTag { .. } => "tag_removed",
            Self::AddNote { .. } => "note_added",
            Self::AchieveGoal { .. } => "goal_achieved",
            Self::ApplyTagNamed { .. } => "tag_applied",
            Self::SetOwner { .. } => "owner_set",
            Self::SetOptIn { .. } => "opt_in_changed",
            Self::LinkCompany { .. } => "company_linked",
            Self::TriggerAutomation { .. } => "automation_triggered",
            Self::MoveOpportunity { .. } => "opportunity_moved",
            Self::MergeContact { .. } => "contact_merged",
            Self::AddRecord { .. } => "record_created",
            Self::ForContact { change, .. } => change.kind(),
        }
    }

    /// What the change targets: field key, tag id, note title or goal name.
    #[must_use]
    pub fn target(&self) -> &str {
        match self {
            Self::SetField { field, .. } => field,
            Self::ApplyTag { tag_id } | Self::RemoveTag { tag_id } => tag_id,
            Self::AddNote { title, .. } => title,
            Self::AchieveGoal { call_name } => call_name,
            Self::ApplyTagNamed { name, .. } => name,
            Self::SetOwner { user_id } => user_id,
            Self::SetOptIn { email, .. } => email,
            Self::LinkCompany { company_name, .. } => company_name,
            Self::TriggerAutomation { automation_id } => automation_id,
            Self::MoveOpportunity { opportunity_id, .. } => opportunity_id,
            Self::MergeContact { loser_id, .. } => loser_id,
            Self::AddRecord { record_kind, .. } => record_kind.as_str(),
            Self::ForContact { change, .. } => change.target(),
        }
    }
}

/// What a helper decided: whether it succeeded, its outputs and the changes to make.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// False when the helper ran but could not do its job (e.g. an unparsable date).
    pub success: bool,
    /// A one-line human summary.
    pub message: String,
    /// Helper-specific outputs (the catalog's `modified_data`).
    pub output: serde_json::Map<String, serde_json::Value>,
    /// Changes for the connector to apply, in order.
    pub changes: Vec<Change>,
    /// Notes on what the helper did, for the execution log.
    pub logs: Vec<String>,
    /// Executions to start after this one, on the same contact (chains, timers).
    #[serde(default)]
    pub follow_ups: Vec<FollowUp>,
}

/// An execution a helper asks the pipeline to start after it, on the same contact and
/// connection, one chain level deeper. Its id derives from the parent's id and its index,
/// so a redelivered parent requests the same follow-up, which runs once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FollowUp {
    /// Registry name of the helper to run.
    pub helper: String,
    /// Its config.
    pub config: serde_json::Value,
    /// Its trigger payload.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    /// When to run it; `None` or a past time runs it at once. Later times are kept in
    /// the durable timer table and fired by the scheduler.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Outcome {
    /// A successful outcome with a message and nothing else yet.
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            success: true,
            message: message.into(),
            ..Self::default()
        }
    }

    /// An unsuccessful outcome with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            success: false,
            message: message.into(),
            ..Self::default()
        }
    }

    /// Adds an output value.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.output.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a change.
    #[must_use]
    pub fn change(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }

    /// Adds a follow-up execution.
    #[must_use]
    pub fn follow_up(mut self, follow_up: FollowUp) -> Self {
        self.follow_ups.push(follow_up);
        self
    }

    /// Adds a log line.
    #[must_use]
    pub fn log(mut self, line: impl Into<String>) -> Self {
        self.logs.push(line.into());
        self
    }

    /// Delivers a branch outcome the catalog's way: applies `tag_id` (when given and
    /// missing) and achieves `goal` (when given; goals re-fire on every run).
    #[must_use]
    pub fn branch(mut self, contact: &Contact, tag_id: Option<&str>, goal: Option<&str>) -> Self {
        if let Some(t) = tag_id.filter(|t| !t.trim().is_empty() && !contact.has_tag(t)) {
            self = self.change(Change::ApplyTag {
                tag_id: t.to_owned(),
            });
        }
        if let Some(g) = goal.filter(|g| !g.trim().is_empty()) {
            self = self.change(Change::AchieveGoal {
                call_name: g.to_owned(),
            });
        }
        self
    }

    /// Adds a field change, unless the contact already holds that value.
    #[must_use]
    pub fn set_field(self, contact: &Contact, field: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if contact.fields.get(field) == Some(&value) {
            return self;
        }
        self.change(Change::SetField {
            field: field.to_owned(),
            value: Some(value),
        })
    }
}
