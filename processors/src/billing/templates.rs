//! Subject, plain text and HTML for every [`NotificationKind`].
//!
//! A template is a list of lines with `{key}` placeholders filled from the intent's data.
//! Each line lists alternatives; the first whose values are all present wins, and a line
//! with none left is dropped, so one template serves events that know more or less.
//! Every interpolated value is HTML-escaped in the HTML part, subjects are kept to one
//! line, and links are made only from `http(s)` URLs.

use super::notify::NotificationKind;
use copy::template;
use serde_json::Value;

mod copy;

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, no control characters.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

const SIGN_OFF: &str = "The MyFusionHelper team";

/// Renders `kind` with `data` (an object; anything else renders the generic wording).
pub fn render(kind: NotificationKind, data: &Value) -> Rendered {
    let t = template(kind);
    let subject = first_filled(t.subject, data, false)
        .map_or_else(|| kind.as_str().replace('_', " "), |s| one_line(&s));
    let mut text = Vec::new();
    let mut html = Vec::new();
    for line in t.body {
        if let (Some(plain), Some(escaped)) = (
            first_filled(line, data, false),
            first_filled(line, data, true),
        ) {
            text.push(plain);
            html.push(format!("<p>{escaped}</p>"));
        }
    }
    // Every email leads somewhere: the template's own link, else the dashboard (the
    // notifier puts `dashboard_url` in every notification's data).
    let own = t
        .link
        .and_then(|(key, label)| link_in(data, key).map(|u| (u, label)));
    if let Some((url, label)) =
        own.or_else(|| link_in(data, "dashboard_url").map(|u| (u, "Open the dashboard")))
    {
        text.push(format!("{label}: {url}"));
        html.push(format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape_html(url),
            escape_html(label)
        ));
    }
    text.push(SIGN_OFF.to_owned());
    html.push(format!("<p>{SIGN_OFF}</p>"));
    Rendered {
        subject,
        text: text.join("\n\n") + "\n",
        html: format!(
            "<!DOCTYPE html>\n<html><body>\n{}\n</body></html>\n",
            html.join("\n")
        ),
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'`, so the result is safe in element text and in
/// quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Currencies without a minor unit, as Stripe lists them.
const ZERO_DECIMAL: [&str; 16] = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// An amount in the currency's minor unit for people: `format_amount(4900, "usd")` is
/// `49.00 USD`.
pub fn format_amount(minor: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let amount = if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        format!("{sign}{abs}")
    } else {
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    };
    format!("{amount} {code}").trim_end().to_owned()
}

/// A unix time as a UTC date, `2026-05-01`; out-of-range values print as the number.
pub fn format_date(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0).map_or_else(
        || unix_seconds.to_string(),
        |t| t.format("%Y-%m-%d").to_string(),
    )
}

fn first_filled(alternatives: &[&str], data: &Value, html: bool) -> Option<String> {
    alternatives.iter().find_map(|t| fill(t, data, html))
}

/// `template` with each `{key}` replaced by `data[key]`; `None` if a value is missing.
fn fill(template: &str, data: &Value, html: bool) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let value = value_text(data.get(&after[..close])?)?;
        out.push_str(&if html { escape_html(&value) } else { value });
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn link_in<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key)
        .and_then(Value::as_str)
        .filter(|u| is_web_url(u))
}

fn is_web_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_key() -> Value {
        let mut data = serde_json::Map::new();
        for kind in NotificationKind::ALL {
            let t = template(kind);
            for line in t.body.iter().chain([&t.subject]) {
                for alt in line.iter() {
                    for part in alt.split('{').skip(1) {
                        let key = part.split('}').next().unwrap_or_default();
                        data.insert(key.to_owned(), json!(format!("<script>{key}</script>")));
                    }
                }
            }
        }
        for url in [
            "hosted_invoice_url",
            "dashboard_url",
            "invite_url",
            "execution_url",
            "verify_url",
            "reset_url",
        ] {
            data.insert(
                url.to_owned(),
                json!("https://example.com/x?a=1&b=<script>"),
            );
        }
        Value::Object(data)
    }

    #[test]
    fn every_kind_renders_with_and_without_data() {
        for kind in NotificationKind::ALL {
            for data in [json!({}), json!(null), json!([1]), every_key()] {
                let r = render(kind, &data);
                assert!(!r.subject.trim().is_empty(), "{kind:?}");
                assert!(
                    r.text.contains(SIGN_OFF) && r.html.contains("<p>"),
                    "{kind:?}"
                );
            }
        }
    }

    #[test]
    fn interpolated_values_are_escaped_in_html() {
        let data = every_key();
        for kind in NotificationKind::ALL {
            let r = render(kind, &data);
            assert!(!r.html.contains("<script>"), "{kind:?}: {}", r.html);
            assert!(r.html.contains("&lt;script&gt;"), "{kind:?}");
            assert!(!r.subject.contains('\n'));
        }
    }

    #[test]
    fn every_kind_leads_to_the_dashboard_without_a_link_of_its_own() {
        let data = json!({"dashboard_url": "http://127.0.0.1:8080/settings/billing"});
        for kind in NotificationKind::ALL {
            let r = render(kind, &data);
            assert!(
                r.html
                    .contains("<a href=\"http://127.0.0.1:8080/settings/billing\">"),
                "{kind:?}: {}",
                r.html
            );
        }
        let r = render(
            NotificationKind::TeamInvite,
            &json!({"dashboard_url": "http://d/", "invite_url": "http://d/invite?token=t"}),
        );
        assert!(
            r.text
                .contains("Accept the invitation: http://d/invite?token=t")
        );
        assert!(!r.text.contains("http://d/\n"));
    }

    #[test]
    fn payment_failed_links_the_hosted_invoice() {
        let data = json!({
            "amount_display": "49.00 USD", "invoice_id": "in_1", "attempt_count": 2,
            "next_payment_attempt_date": "2026-05-04",
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test_1?s=a&t=b",
        });
        let r = render(NotificationKind::PaymentFailed, &data);
        assert_eq!(r.subject, "Payment of 49.00 USD failed");
        assert!(r.text.contains("(attempt 2)"));
        assert!(
            r.text
                .contains("Pay the invoice: https://invoice.stripe.com/i/acct_1/test_1?s=a&t=b")
        );
        assert!(
            r.html
                .contains("<a href=\"https://invoice.stripe.com/i/acct_1/test_1?s=a&amp;t=b\">")
        );
        let js = render(
            NotificationKind::PaymentFailed,
            &json!({"hosted_invoice_url": "javascript:x"}),
        );
        assert!(!js.html.contains("href") && js.text.contains("will not retry"));
    }

    #[test]
    fn subject_injection_and_formatting() {
        let r = render(
            NotificationKind::PlanUpgraded,
            &json!({"to_name": "Grow\r\nBcc: x@y"}),
        );
        assert_eq!(r.subject, "Your plan is now Grow  Bcc: x@y");
        assert_eq!(format_amount(4900, "usd"), "49.00 USD");
        assert_eq!(format_amount(-5, "eur"), "-0.05 EUR");
        assert_eq!(format_amount(500, "jpy"), "500 JPY");
        assert_eq!(format_amount(100, ""), "1.00");
        assert_eq!(format_date(1_777_593_600), "2026-05-01");
        assert_eq!(format_date(i64::MAX), i64::MAX.to_string());
    }
}
