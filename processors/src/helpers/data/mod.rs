//! Data helpers: transforms of field values, lookups and splits.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod advance_math;
pub mod date_calc;
pub mod format_it;
pub mod get_the_first;
pub mod get_the_last;
pub mod ip_location;
pub mod last_click_it;
pub mod last_open_it;
pub mod last_send_it;
pub mod math_it;
pub mod password_it;
pub mod phone_lookup;
pub mod quote_it;
pub mod split_it;
pub mod split_it_basic;
pub mod text_it;
pub mod when_is_it;
pub mod word_count_it;

/// The data helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &advance_math::AdvanceMath,
    &date_calc::DateCalc,
    &format_it::FormatIt,
    &get_the_first::GetTheFirst,
    &get_the_last::GetTheLast,
    &ip_location::IpLocation,
    &last_click_it::LastClickIt,
    &last_open_it::LastOpenIt,
    &last_send_it::LastSendIt,
    &math_it::MathIt,
    &password_it::PasswordIt,
    &phone_lookup::PhoneLookup,
    &quote_it::QuoteIt,
    &split_it::SplitIt,
    &split_it_basic::SplitItBasic,
    &text_it::TextIt,
    &when_is_it::WhenIsIt,
    &word_count_it::WordCountIt,
];
