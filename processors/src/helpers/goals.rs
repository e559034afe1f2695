//! The API goal call names a saved helper fires, derived from its id the way
//! MyFusionHelper users know them: every `<outcome>_goal` setting a saved helper's config
//! leaves out is filled in when it is saved as `<outcome><key>`, where `<outcome>` is the
//! setting's name without `_goal` and without underscores and `<key>` is the helper id
//! without its `hlp_` prefix. So a when_is_it helper `hlp_3f9a0c1b2d4e5f60` fires
//! `past3f9a0c1b2d4e5f60`, `today3f9a0c1b2d4e5f60`, `future3f9a0c1b2d4e5f60`, …, which a
//! user pastes into Keap's Campaign Builder as API goals (integration `mfh`, or the
//! connection's `goal_integration`). Goal names the user sets are kept as they are.

use super::DynHelper;
use serde_json::Value;

/// The suffix of a saved helper's derived goal names.
#[must_use]
pub fn goal_key(helper_id: &str) -> &str {
    helper_id.strip_prefix("hlp_").unwrap_or(helper_id)
}

/// Whether property `schema` of a config schema accepts a string.
fn takes_string(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
        _ => schema
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|alts| alts.iter().any(takes_string)),
    }
}

/// Fills in every `<outcome>_goal` setting of `helper`'s config that `config` leaves
/// out (or sets to null) with its derived name.
pub fn fill_default_goals(helper: &dyn DynHelper, config: &mut Value, helper_id: &str) {
    let schema = helper.config_schema();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let Some(obj) = config.as_object_mut() else {
        return;
    };
    for (name, prop) in props {
        let Some(outcome) = name.strip_suffix("_goal") else {
            continue;
        };
        if !takes_string(prop) || obj.get(name).is_some_and(|v| !v.is_null()) {
            continue;
        }
        let derived = format!("{}{}", outcome.replace('_', ""), goal_key(helper_id));
        obj.insert(name.clone(), Value::String(derived));
    }
}

/// Moves the goal names derived from `from_id` to those of `to_id` (a copied helper
/// fires its own goals); names the user set stay.
pub fn rederive_goals(config: &mut Value, from_id: &str, to_id: &str) {
    let Some(obj) = config.as_object_mut() else {
        return;
    };
    for (name, v) in obj.iter_mut() {
        let Some(outcome) = name.strip_suffix("_goal") else {
            continue;
        };
        let outcome = outcome.replace('_', "");
        if v.as_str() == Some(format!("{outcome}{}", goal_key(from_id)).as_str()) {
            *v = Value::String(format!("{outcome}{}", goal_key(to_id)));
        }
    }
}

/// The goal call names a config can fire: its `<outcome>_goal` and `goal_name`
/// settings and its `goals` list, in config order, without repeats.
#[must_use]
pub fn goal_names(config: &Value) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str().map(str::trim).filter(|s| !s.is_empty())
            && !names.iter().any(|n| n == s)
        {
            names.push(s.to_owned());
        }
    };
    for (k, v) in config.as_object().into_iter().flatten() {
        if k.ends_with("_goal") || k == "goal_name" {
            push(v);
        } else if k == "goals" {
            v.as_array().into_iter().flatten().for_each(&mut push);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unset_outcome_goals_are_derived_from_the_helper_id() {
        let when = super::super::find("when_is_it").map(|h| {
            let mut c = json!({"date_field": "Birthday", "future_goal": "mine"});
            fill_default_goals(h, &mut c, "hlp_3f9a0c1b2d4e5f60");
            c
        });
        let c = when.unwrap_or_default();
        assert_eq!(c["past_goal"], "past3f9a0c1b2d4e5f60");
        assert_eq!(c["today_goal"], "today3f9a0c1b2d4e5f60");
        assert_eq!(c["future_goal"], "mine", "a name the user set is kept");
        let names = goal_names(&c);
        assert!(names.contains(&"past3f9a0c1b2d4e5f60".to_owned()));
        assert!(names.contains(&"mine".to_owned()));
    }

    #[test]
    fn a_copy_fires_its_own_derived_goals_and_keeps_the_users() {
        let mut c = json!({"past_goal": "pastaaaa", "future_goal": "mine", "x": "pastaaaa"});
        rederive_goals(&mut c, "hlp_aaaa", "hlp_bbbb");
        assert_eq!(
            c,
            json!({"past_goal": "pastbbbb", "future_goal": "mine", "x": "pastaaaa"})
        );
    }

    #[test]
    fn helpers_without_goal_settings_are_left_alone() {
        let tag_it = super::super::find("tag_it");
        let mut c = json!({"action": "apply", "tag_ids": ["1"]});
        if let Some(h) = tag_it {
            fill_default_goals(h, &mut c, "hlp_1");
        }
        assert_eq!(c, json!({"action": "apply", "tag_ids": ["1"]}));
        assert!(goal_names(&c).is_empty());
    }

    #[test]
    fn every_derived_config_still_validates() {
        for h in super::super::HELPERS.iter() {
            let mut c: Value = serde_json::from_str(h.example_config()).unwrap_or_default();
            fill_default_goals(*h, &mut c, "hlp_0123456789abcdef");
            assert!(
                h.build_json(&c).is_ok(),
                "{}: the example with derived goals does not validate",
                h.name()
            );
            for g in goal_names(&c) {
                assert!(
                    g.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "_-. ".contains(ch)),
                    "{g}"
                );
            }
        }
    }
}
