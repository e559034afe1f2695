//! Merge-field templates: `{{field_key}}` is replaced by the contact's value.
//!
//! One engine for every helper, as the catalog recommends; `{{contact.id}}` and
//! `{{contact.tags}}` give the id and the tag ids.

use super::Contact;

/// Renders `template` against `contact`; unknown keys render as empty strings.
#[must_use]
pub fn render(template: &str, contact: &Contact) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        match key {
            "contact.id" => out.push_str(&contact.id),
            "contact.tags" => {
                out.push_str(&contact.tags.keys().cloned().collect::<Vec<_>>().join(","));
            }
            _ => out.push_str(contact.fields.get(key).map_or("", String::as_str)),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::contact;

    #[test]
    fn replaces_known_and_blanks_unknown_keys() {
        let c = contact(&[("first_name", "Ada")], &["7"]);
        assert_eq!(render("Hi {{ first_name }} {{nope}}!", &c), "Hi Ada !");
        assert_eq!(render("{{contact.id}}/{{contact.tags}}", &c), "c-1/7");
        assert_eq!(render("open {{ never closed", &c), "open {{ never closed");
    }
}
