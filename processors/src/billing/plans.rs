//! Plans, their limits, and the map from Stripe price ids to plans.
//!
//! Every creation path (the API for REST callers, the router for direct producers) calls
//! [`check_limit`] with the count it is about to grow, so the refusal reads the same
//! everywhere.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Length of the free trial, in days. The trial has [`Plan::Start`]'s limits.
pub const TRIAL_DAYS: i64 = 14;

/// A billing plan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// The 14-day trial every account starts on, with Start-level limits.
    #[default]
    Trial,
    /// The free plan.
    Free,
    /// The entry paid plan.
    Start,
    /// The middle paid plan.
    Grow,
    /// The top paid plan.
    Deliver,
}

impl Plan {
    /// Every plan, cheapest first.
    pub const ALL: [Self; 5] = [
        Self::Trial,
        Self::Free,
        Self::Start,
        Self::Grow,
        Self::Deliver,
    ];

    /// The plan's name in config, records and the API: `trial`, `free`, `start`, ….
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trial => "trial",
            Self::Free => "free",
            Self::Start => "start",
            Self::Grow => "grow",
            Self::Deliver => "deliver",
        }
    }

    /// The plan's name as customers see it: `Trial`, `Free`, `Start`, ….
    pub const fn label(self) -> &'static str {
        match self {
            Self::Trial => "Trial",
            Self::Free => "Free",
            Self::Start => "Start",
            Self::Grow => "Grow",
            Self::Deliver => "Deliver",
        }
    }

    /// The plan named `name` (as [`Plan::as_str`] spells it), if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Position for upgrade/downgrade detection: Free 0, Trial and Start 1, Grow 2,
    /// Deliver 3. Trial and Start share a rank because they share limits.
    pub const fn rank(self) -> u8 {
        match self {
            Self::Free => 0,
            Self::Trial | Self::Start => 1,
            Self::Grow => 2,
            Self::Deliver => 3,
        }
    }

    /// Whether executions past the monthly limit run on and are billed as overage (the
    /// paid plans) instead of being refused (trial and free).
    pub const fn meters_overage(self) -> bool {
        matches!(self, Self::Start | Self::Grow | Self::Deliver)
    }

    /// The plan's limits.
    pub const fn limits(self) -> Limits {
        match self {
            Self::Free => Limits {
                helpers: Some(3),
                connections: Some(1),
                api_keys: Some(1),
                executions_per_month: Some(500),
            },
            Self::Trial | Self::Start => Limits {
                helpers: Some(10),
                connections: Some(1),
                api_keys: Some(2),
                executions_per_month: Some(10_000),
            },
            Self::Grow => Limits {
                helpers: Some(50),
                connections: Some(3),
                api_keys: Some(5),
                executions_per_month: Some(100_000),
            },
            Self::Deliver => Limits {
                helpers: None,
                connections: Some(10),
                api_keys: Some(20),
                executions_per_month: Some(1_000_000),
            },
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plan allows; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Limits {
    /// Configured helpers.
    pub helpers: Option<u32>,
    /// CRM connections.
    pub connections: Option<u32>,
    /// Live API keys.
    pub api_keys: Option<u32>,
    /// Helper executions per calendar month (UTC).
    pub executions_per_month: Option<u64>,
}

impl Limits {
    /// The limit on `kind`; `None` means unlimited.
    pub fn get(&self, kind: LimitKind) -> Option<u64> {
        match kind {
            LimitKind::Helpers => self.helpers.map(u64::from),
            LimitKind::Connections => self.connections.map(u64::from),
            LimitKind::ApiKeys => self.api_keys.map(u64::from),
            LimitKind::ExecutionsPerMonth => self.executions_per_month,
        }
    }
}

/// One limited resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Configured helpers.
    Helpers,
    /// CRM connections.
    Connections,
    /// Live API keys.
    ApiKeys,
    /// Helper executions this month.
    ExecutionsPerMonth,
}

impl LimitKind {
    /// Machine name: `helpers`, `connections`, `api_keys`, `executions_per_month`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Helpers => "helpers",
            Self::Connections => "connections",
            Self::ApiKeys => "api_keys",
            Self::ExecutionsPerMonth => "executions_per_month",
        }
    }

    /// Words for messages: "helpers", "CRM connections", "API keys", "executions per month".
    pub const fn noun(self) -> &'static str {
        match self {
            Self::Helpers => "helpers",
            Self::Connections => "CRM connections",
            Self::ApiKeys => "API keys",
            Self::ExecutionsPerMonth => "executions per month",
        }
    }

    const fn verb(self) -> &'static str {
        match self {
            Self::ExecutionsPerMonth => "has used",
            _ => "has",
        }
    }
}

/// A creation refused because the account is at its plan's limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plan {plan} allows {limit} {}; this account {} {current}", .kind.noun(), .kind.verb())]
pub struct LimitExceeded {
    /// The limited resource.
    pub kind: LimitKind,
    /// The limit.
    pub limit: u64,
    /// The plan whose limit it is.
    pub plan: Plan,
    /// How many the account has (or, for executions, has used this month).
    pub current: u64,
}

/// Checks that the account may add one more `kind`, given that it has `current` now.
///
/// `plan` names the plan in the error; `limits` is normally `plan.limits()` but may carry
/// an account's negotiated limits.
///
/// # Errors
/// [`LimitExceeded`] when `current` has reached the limit.
pub fn check_limit(
    plan: Plan,
    limits: &Limits,
    kind: LimitKind,
    current: u64,
) -> Result<(), LimitExceeded> {
    match limits.get(kind) {
        Some(limit) if current >= limit => Err(LimitExceeded {
            kind,
            limit,
            plan,
            current,
        }),
        _ => Ok(()),
    }
}

/// Which plan each Stripe price id buys, loaded from config: `{ "price_123": "grow" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceMap(HashMap<String, Plan>);

impl PriceMap {
    /// The plan bought by `price_id`, if the price is known.
    pub fn plan_for_price(&self, price_id: &str) -> Option<Plan> {
        self.0.get(price_id).copied()
    }

    /// The highest-ranked plan among the known `price_ids` (a subscription may carry
    /// add-on prices next to its plan price), if any is known.
    pub fn plan_for_prices(&self, price_ids: &[String]) -> Option<Plan> {
        price_ids
            .iter()
            .filter_map(|p| self.plan_for_price(p))
            .max_by_key(|p| p.rank())
    }
}

impl FromIterator<(String, Plan)> for PriceMap {
    fn from_iter<I: IntoIterator<Item = (String, Plan)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for plan in Plan::ALL {
            assert_eq!(Plan::parse(plan.as_str()), Some(plan));
            let json = serde_json::to_value(plan).unwrap();
            assert_eq!(json, plan.as_str());
        }
        assert_eq!(Plan::parse("enterprise"), None);
    }

    #[test]
    fn ranks_order_paid_plans_and_trial_matches_start() {
        assert!(Plan::Free.rank() < Plan::Start.rank());
        assert!(Plan::Start.rank() < Plan::Grow.rank());
        assert!(Plan::Grow.rank() < Plan::Deliver.rank());
        assert_eq!(Plan::Trial.rank(), Plan::Start.rank());
        assert_eq!(Plan::Trial.limits(), Plan::Start.limits());
    }

    #[test]
    fn limit_message_names_the_limit() {
        let err = check_limit(
            Plan::Start,
            &Plan::Start.limits(),
            LimitKind::ExecutionsPerMonth,
            10_000,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plan start allows 10000 executions per month; this account has used 10000"
        );
        let err = check_limit(Plan::Free, &Plan::Free.limits(), LimitKind::Helpers, 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plan free allows 3 helpers; this account has 3"
        );
        assert_eq!(err.kind, LimitKind::Helpers);
    }

    #[test]
    fn below_limit_and_unlimited_pass() {
        let deliver = Plan::Deliver.limits();
        assert!(check_limit(Plan::Free, &Plan::Free.limits(), LimitKind::ApiKeys, 0).is_ok());
        assert!(check_limit(Plan::Deliver, &deliver, LimitKind::Helpers, u64::MAX).is_ok());
        assert!(check_limit(Plan::Deliver, &deliver, LimitKind::Connections, 10).is_err());
    }

    #[test]
    fn price_map_deserializes_and_picks_highest_rank() {
        let prices: PriceMap =
            serde_json::from_str(r#"{"price_start":"start","price_grow":"grow"}"#).unwrap();
        assert_eq!(prices.plan_for_price("price_grow"), Some(Plan::Grow));
        assert_eq!(prices.plan_for_price("price_nope"), None);
        let ids = ["price_addon", "price_start", "price_grow"].map(String::from);
        assert_eq!(prices.plan_for_prices(&ids), Some(Plan::Grow));
        assert_eq!(prices.plan_for_prices(&[]), None);
        assert!(serde_json::from_str::<PriceMap>(r#"{"p":"gold"}"#).is_err());
    }
}
