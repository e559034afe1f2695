//! Small pieces many helper configs share: serde defaults for the usual contact fields
//! and the reading of optional text settings.

/// Serde default `true`.
pub(crate) const fn default_true() -> bool {
    true
}

/// Serde default: the contact's `email` field.
pub(crate) fn default_email() -> String {
    "email".into()
}

/// Serde default: the contact's `first_name` field.
pub(crate) fn default_first() -> String {
    "first_name".into()
}

/// Serde default: the contact's `last_name` field.
pub(crate) fn default_last() -> String {
    "last_name".into()
}

/// Serde default: the contact's `phone` field.
pub(crate) fn default_phone() -> String {
    "phone".into()
}

/// An optional text setting, trimmed; `None` when absent or blank.
pub(crate) fn given(o: &Option<String>) -> Option<&str> {
    o.as_deref().map(str::trim).filter(|s| !s.is_empty())
}
