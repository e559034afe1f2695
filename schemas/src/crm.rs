//! CRM records: verified webhook events and contact snapshots for the lake.

use serde::{Deserialize, Serialize};

/// What a CRM event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrmEventKind {
    /// A contact was created.
    ContactCreated,
    /// A contact's fields changed.
    ContactUpdated,
    /// A contact was deleted.
    ContactDeleted,
    /// A tag was applied to a contact.
    TagApplied,
    /// A tag was removed from a contact.
    TagRemoved,
    /// Anything else the vendor sends.
    Other,
}

impl CrmEventKind {
    /// The snake_case name used in trigger configs and the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactCreated => "contact_created",
            Self::ContactUpdated => "contact_updated",
            Self::ContactDeleted => "contact_deleted",
            Self::TagApplied => "tag_applied",
            Self::TagRemoved => "tag_removed",
            Self::Other => "other",
        }
    }

    /// Parses [`Self::as_str`]'s names.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "contact_created" => Self::ContactCreated,
            "contact_updated" => Self::ContactUpdated,
            "contact_deleted" => Self::ContactDeleted,
            "tag_applied" => Self::TagApplied,
            "tag_removed" => Self::TagRemoved,
            "other" => Self::Other,
            _ => return None,
        })
    }

    /// Whether the event changes what the lake holds for the contact.
    #[must_use]
    pub fn touches_contact(self) -> bool {
        !matches!(self, Self::Other)
    }
}

/// A verified, normalised CRM webhook event (`io.mfh.crm.CrmEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmEvent {
    /// Derived from the vendor's event id, so a redelivery has the same id.
    pub event_id: String,
    /// The vendor's id of the event.
    pub vendor_event_id: String,
    /// The account.
    pub account_id: String,
    /// The connection it came through.
    pub connection_id: String,
    /// The CRM platform.
    pub platform: String,
    /// What happened.
    pub kind: CrmEventKind,
    /// The CRM's contact id.
    pub contact_id: String,
    /// The tag's id, for tag events.
    pub tag_id: Option<String>,
    /// The tag's name, when the vendor sends it.
    pub tag_name: Option<String>,
    /// The vendor's event name.
    pub vendor_event_type: String,
    /// When it happened, Unix milliseconds.
    pub occurred_at: i64,
    /// When mfh received it, Unix milliseconds.
    pub received_at: i64,
    /// The vendor's event as JSON.
    pub payload_json: String,
}

impl CrmEvent {
    /// The record key: account and contact, so a contact's events stay in order.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}:{}", self.account_id, self.contact_id)
    }
}

/// One contact's state as last read (`io.mfh.crm.ContactSnapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactSnapshot {
    /// The account.
    pub account_id: String,
    /// The connection.
    pub connection_id: String,
    /// The CRM platform.
    pub platform: String,
    /// The CRM's contact id.
    pub contact_id: String,
    /// A deletion marker.
    pub deleted: bool,
    /// Primary email.
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Every field as a JSON object.
    pub fields_json: String,
    /// Tags as a JSON object, id to name.
    pub tags_json: String,
    /// The owner's CRM user id.
    pub owner_id: Option<String>,
    /// The CRM's last-modified time, ms.
    pub crm_updated_at: Option<i64>,
    /// When mfh read this state, ms.
    pub observed_at: i64,
    /// `full_sync` or `webhook`.
    pub source: String,
}

impl ContactSnapshot {
    /// The compaction key: one record per contact of one connection.
    #[must_use]
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.account_id, self.connection_id, self.contact_id
        )
    }
}

crate::avro_record!(CrmEvent, "crm_event.avsc");
crate::avro_record!(ContactSnapshot, "contact_snapshot.avsc");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AvroRecord, wire};

    #[test]
    fn crm_records_round_trip() {
        let e = CrmEvent {
            event_id: "e1".into(),
            vendor_event_id: "v1".into(),
            account_id: "a".into(),
            connection_id: "c".into(),
            platform: "hubspot".into(),
            kind: CrmEventKind::TagApplied,
            contact_id: "42".into(),
            tag_id: Some("7".into()),
            tag_name: None,
            vendor_event_type: "contact.propertyChange".into(),
            occurred_at: 1,
            received_at: 2,
            payload_json: "{}".into(),
        };
        let bytes = wire::encode(&e, 9).unwrap();
        let back: CrmEvent = wire::decode_body(CrmEvent::schema(), &bytes[5..]).unwrap();
        assert_eq!(back, e);
        let s = ContactSnapshot {
            account_id: "a".into(),
            connection_id: "c".into(),
            platform: "keap".into(),
            contact_id: "42".into(),
            deleted: false,
            email: Some("x@y.z".into()),
            first_name: None,
            last_name: None,
            fields_json: "{}".into(),
            tags_json: "{}".into(),
            owner_id: None,
            crm_updated_at: Some(5),
            observed_at: 6,
            source: "full_sync".into(),
        };
        let bytes = wire::encode(&s, 10).unwrap();
        let back: ContactSnapshot =
            wire::decode_body(ContactSnapshot::schema(), &bytes[5..]).unwrap();
        assert_eq!(back, s);
        assert_eq!(s.key(), "a:c:42");
    }
}
