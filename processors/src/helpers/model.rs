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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
