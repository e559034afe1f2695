//! Automation helpers: branching, routing, chaining and timers.
//!
//! A new helper here is one file, one `pub mod` line and one entry in [`HELPERS`].

pub mod action_it;
pub mod chain_it;
pub mod countdown_timer;
pub mod drip_it;
pub mod goal_it;
pub mod ip_notifications;
pub mod ip_redirects;
pub mod limit_it;
pub mod match_it;
pub mod route_it;
pub mod route_it_by_custom;
pub mod route_it_by_day;
pub mod route_it_by_time;
pub mod route_it_geo;
pub mod route_it_score;
pub mod route_it_source;
pub mod simple_opt_in;
pub mod simple_opt_out;
pub mod stage_it;
pub mod timezone_triggers;
pub mod trigger_it;
pub mod video_trigger_it;

use super::DynHelper;

/// The automation helpers, in listing order.
#[rustfmt::skip]
pub(super) static HELPERS: &[&dyn DynHelper] = &[
    &action_it::ActionIt,
    &chain_it::ChainIt,
    &countdown_timer::CountdownTimer,
    &drip_it::DripIt,
    &goal_it::GoalIt,
    &ip_notifications::IpNotifications,
    &ip_redirects::IpRedirects,
    &limit_it::LimitIt,
    &match_it::MatchIt,
    &route_it::RouteIt,
    &route_it_by_custom::RouteItByCustom,
    &route_it_by_day::RouteItByDay,
    &route_it_by_time::RouteItByTime,
    &route_it_geo::RouteItGeo,
    &route_it_score::RouteItScore,
    &route_it_source::RouteItSource,
    &simple_opt_in::SimpleOptIn,
    &simple_opt_out::SimpleOptOut,
    &stage_it::StageIt,
    &timezone_triggers::TimezoneTriggers,
    &trigger_it::TriggerIt,
    &video_trigger_it::VideoTriggerIt,
];
