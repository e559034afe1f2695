//! Contact helpers: fields, names, notes, owners, consent, companies, duplicates.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod assign_it;
pub mod clear_it;
pub mod combine_it;
pub mod company_link;
pub mod contact_updater;
pub mod copy_it;
pub mod default_to_field;
pub mod field_to_field;
pub mod found_it;
pub mod merge_it;
pub mod move_it;
pub mod name_parse_it;
pub mod note_it;
pub mod opt_in;
pub mod opt_out;
pub mod own_it;
pub mod snapshot_it;

/// The contact helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &assign_it::AssignIt,
    &clear_it::ClearIt,
    &combine_it::CombineIt,
    &company_link::CompanyLink,
    &contact_updater::ContactUpdater,
    &copy_it::CopyIt,
    &default_to_field::DefaultToField,
    &field_to_field::FieldToField,
    &found_it::FoundIt,
    &merge_it::MergeIt,
    &move_it::MoveIt,
    &name_parse_it::NameParseIt,
    &note_it::NoteIt,
    &opt_in::OptIn,
    &opt_out::OptOut,
    &own_it::OwnIt,
    &snapshot_it::SnapshotIt,
];
