//! The wording of every notification: a subject and body lines with `{key}` placeholders,
//! each line listing alternatives from the most to the least specific.

use crate::billing::notify::NotificationKind;

/// Alternatives for one line, best first.
pub(super) type Line = &'static [&'static str];

pub(super) struct Template {
    /// The last alternative has no placeholders, so a subject always renders.
    pub(super) subject: Line,
    pub(super) body: &'static [Line],
    /// The data key holding a URL, and the link's label.
    pub(super) link: Option<(&'static str, &'static str)>,
}

const KEEP_RUNNING: &str = "Choose a plan in the dashboard to keep running helpers.";

pub(super) fn template(kind: NotificationKind) -> Template {
    use NotificationKind as K;
    let (subject, body, link): (Line, &'static [Line], _) = match kind {
        K::SubscriptionCreated => (
            &[
                "Your MyFusionHelper {plan_name} subscription is active",
                "Your MyFusionHelper subscription is active",
            ],
            &[
                &[
                    "Thanks for subscribing: your {plan_name} plan is active.",
                    "Thanks for subscribing: your subscription is active.",
                ],
                &["It renews on {current_period_end_date}."],
            ],
            None,
        ),
        K::PlanUpgraded => (
            &[
                "Your plan is now {to_name}",
                "Your MyFusionHelper plan was upgraded",
            ],
            &[&[
                "Your plan changed from {from_name} to {to_name}. The higher limits apply now.",
                "Your plan was upgraded. The higher limits apply now.",
            ]],
            None,
        ),
        K::PlanDowngraded => (
            &[
                "Your plan is now {to_name}",
                "Your MyFusionHelper plan was changed",
            ],
            &[&[
                "Your plan changed from {from_name} to {to_name}. The limits of {to_name} apply now.",
                "Your plan was changed to a smaller one; its limits apply now.",
            ]],
            None,
        ),
        K::SubscriptionCancelled => (
            &["Your MyFusionHelper subscription has ended"],
            &[
                &[
                    "Your {plan_name} subscription ended on {ended_on}.",
                    "Your subscription has ended.",
                ],
                &[KEEP_RUNNING],
            ],
            None,
        ),
        K::PaymentFailed => (
            &[
                "Payment of {amount_display} failed",
                "A MyFusionHelper payment failed",
            ],
            &[
                &[
                    "We could not collect {amount_display} for invoice {invoice_id} (attempt {attempt_count}).",
                    "We could not collect the payment for your latest invoice.",
                ],
                &[
                    "We will try again on {next_payment_attempt_date}.",
                    "We will not retry automatically.",
                ],
                &[
                    "Please pay the invoice or update your payment method so your helpers keep running.",
                ],
            ],
            Some(("hosted_invoice_url", "Pay the invoice")),
        ),
        K::PaymentRecovered => (
            &["Payment received: your subscription is active again"],
            &[&[
                "Thanks: we received your payment and your {plan_name} plan is active again.",
                "Thanks: we received your payment and your subscription is active again.",
            ]],
            None,
        ),
        K::PaymentReceipt => (
            &[
                "Receipt for {amount_display}",
                "Your MyFusionHelper receipt",
            ],
            &[&[
                "We received {amount_display} for invoice {invoice_id}. Thank you.",
                "We received your payment. Thank you.",
            ]],
            Some(("hosted_invoice_url", "View the invoice")),
        ),
        K::TrialEnding => (
            &[
                "Your trial ends on {trial_end_date}",
                "Your MyFusionHelper trial ends soon",
            ],
            &[
                &[
                    "Your trial ends on {trial_end_date}.",
                    "Your trial ends soon.",
                ],
                &["Make sure a payment method is on file so your helpers keep running."],
            ],
            None,
        ),
        K::TrialExpired => (
            &["Your MyFusionHelper trial has ended"],
            &[
                &[
                    "Your trial ended on {trial_end_date}.",
                    "Your trial has ended.",
                ],
                &[KEEP_RUNNING],
            ],
            None,
        ),
        K::CardExpiring => (
            &[
                "Your card ending in {last4} expires soon",
                "A card on file expires soon",
            ],
            &[
                &[
                    "Your {brand} card ending in {last4} expires at the end of {exp_month}/{exp_year}.",
                    "A card on file expires at the end of the month.",
                ],
                &["Update your payment method to avoid an interruption."],
            ],
            None,
        ),
        K::RefundProcessed => (
            &[
                "Refund processed: {refunded_display}",
                "Your MyFusionHelper refund was processed",
            ],
            &[
                &[
                    "We refunded {refunded_display} of {amount_display} on charge {charge_id}.",
                    "We processed a refund.",
                ],
                &["It can take 5 to 10 days to appear on your statement."],
            ],
            None,
        ),
        K::Welcome => (
            &["Welcome to MyFusionHelper"],
            &[
                &[
                    "Hi {name}, welcome to MyFusionHelper.",
                    "Welcome to MyFusionHelper.",
                ],
                &[
                    "Your {trial_days}-day trial has started.",
                    "Your trial has started.",
                ],
            ],
            Some(("dashboard_url", "Open the dashboard")),
        ),
        K::TeamInvite => (
            &[
                "{inviter} invited you to {account_name} on MyFusionHelper",
                "You are invited to a MyFusionHelper team",
            ],
            &[&[
                "{inviter} invited you to join {account_name} as {role}.",
                "You were invited to join a MyFusionHelper team.",
            ]],
            Some(("invite_url", "Accept the invitation")),
        ),
        K::UsageAlert => (
            &[
                "You have used {percent}% of your {limit_name}",
                "You are close to a plan limit",
            ],
            &[
                &[
                    "This account uses {used} of the {limit} {limit_name} its {plan_name} plan allows.",
                    "This account is close to a limit of its plan.",
                ],
                &["Upgrade the plan to raise the limit."],
            ],
            None,
        ),
        K::ConnectionAlert => (
            &["Your CRM connection needs attention"],
            &[
                &[
                    "The CRM refused the credentials of connection {connection_id}: {error}",
                    "The CRM refused the credentials of one of your connections.",
                ],
                &["Helpers on it fail until it is connected again."],
            ],
            None,
        ),
        K::ExecutionAlert => (
            &["Helper {helper} failed", "A helper execution failed"],
            &[&[
                "{helper} failed for contact {contact_id}: {error}",
                "{helper} failed: {error}",
                "A helper execution failed.",
            ]],
            Some(("execution_url", "View the execution")),
        ),
        K::EmailVerification => (
            &["Confirm your email address for MyFusionHelper"],
            &[
                &[
                    "Hi {name}, please confirm your email address.",
                    "Please confirm your email address.",
                ],
                &[
                    "The link works once and expires in {expires_hours} hours.",
                    "The link works once and expires soon.",
                ],
                &["If you did not sign up, ignore this email."],
            ],
            Some(("verify_url", "Confirm my email address")),
        ),
        K::PasswordReset => (
            &["Reset your MyFusionHelper password"],
            &[
                &[
                    "Someone (hopefully you) asked to reset the password of {email}.",
                    "Someone asked to reset your password.",
                ],
                &[
                    "The link works once and expires in {expires_minutes} minutes; using it signs you out everywhere.",
                    "The link works once and expires soon.",
                ],
                &["If you did not ask, ignore this email: your password stays as it is."],
            ],
            Some(("reset_url", "Choose a new password")),
        ),
    };
    Template {
        subject,
        body,
        link,
    }
}
