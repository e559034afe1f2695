//! Integration helpers: third-party services and webhooks.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

use super::DynHelper;

pub mod hook_it;
// -- modules A (calendly_it … hook_it_v4) --
pub mod calendly_it;
pub mod donor_search;
pub mod dropbox_it;
pub mod email_attach_it;
pub mod email_validate_it;
pub mod everwebinar;
pub mod excel_it;
pub mod facebook_lead_ads;
pub mod google_sheet_it;
pub mod gotowebinar;
pub mod hook_it_by_tag;
pub mod hook_it_v2;
pub mod hook_it_v3;
pub mod hook_it_v4;
// -- modules B (mail_it … zoom_webinar_participant) --
pub mod mail_it;
pub mod order_it;
pub mod query_it_basic;
pub mod search_it;
pub mod slack_it;
pub mod stripe_hooks;
pub mod trello_it;
pub mod twilio_sms;
pub mod upload_it;
pub mod webinar_jam;
pub mod zoom_meeting;
pub mod zoom_webinar;
pub mod zoom_webinar_absentee;
pub mod zoom_webinar_participant;

/// The integration helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &hook_it::HookIt,
    // -- registry A --
    &calendly_it::CalendlyIt,
    &donor_search::DonorSearch,
    &dropbox_it::DropboxIt,
    &email_attach_it::EmailAttachIt,
    &email_validate_it::EmailValidateIt,
    &everwebinar::Everwebinar,
    &excel_it::ExcelIt,
    &facebook_lead_ads::FacebookLeadAds,
    &google_sheet_it::GoogleSheetIt,
    &gotowebinar::Gotowebinar,
    &hook_it_by_tag::HookItByTag,
    &hook_it_v2::HookItV2,
    &hook_it_v3::HookItV3,
    &hook_it_v4::HookItV4,
    // -- registry B --
    &mail_it::MailIt,
    &order_it::OrderIt,
    &query_it_basic::QueryItBasic,
    &search_it::SearchIt,
    &slack_it::SlackIt,
    &stripe_hooks::StripeHooks,
    &trello_it::TrelloIt,
    &twilio_sms::TwilioSms,
    &upload_it::UploadIt,
    &webinar_jam::WebinarJam,
    &zoom_meeting::ZoomMeeting,
    &zoom_webinar::ZoomWebinar,
    &zoom_webinar_absentee::ZoomWebinarAbsentee,
    &zoom_webinar_participant::ZoomWebinarParticipant,
];
