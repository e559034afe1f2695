//! Operator settings of the five CRM vendors: API and OAuth endpoints (overridable so
//! tests and staging point at local servers), the OAuth app's client, published rate
//! limits, and what verifies their webhooks.

use super::vendor::{OAuthClient, RateLimit};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A CRM platform mfh connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Keap (Infusionsoft).
    Keap,
    /// GoHighLevel (LeadConnector).
    Gohighlevel,
    /// ActiveCampaign.
    Activecampaign,
    /// Ontraport.
    Ontraport,
    /// HubSpot.
    Hubspot,
}

impl Platform {
    /// Every platform.
    pub const ALL: [Self; 5] = [
        Self::Keap,
        Self::Gohighlevel,
        Self::Activecampaign,
        Self::Ontraport,
        Self::Hubspot,
    ];

    /// The lower-case name used in URLs and records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keap => "keap",
            Self::Gohighlevel => "gohighlevel",
            Self::Activecampaign => "activecampaign",
            Self::Ontraport => "ontraport",
            Self::Hubspot => "hubspot",
        }
    }

    /// Parses [`Self::as_str`]'s names.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the vendor offers the OAuth authorization-code flow for its REST API.
    #[must_use]
    pub fn supports_oauth(self) -> bool {
        matches!(self, Self::Keap | Self::Gohighlevel | Self::Hubspot)
    }

    /// Whether the vendor signs webhook deliveries (otherwise a per-connection token in
    /// the URL authenticates them).
    #[must_use]
    pub fn signs_webhooks(self) -> bool {
        matches!(self, Self::Gohighlevel | Self::Hubspot)
    }

    /// Whether the vendor delivers every installed account's webhooks to one URL per
    /// app, naming the account in each event (GoHighLevel's `locationId`, HubSpot's
    /// `portalId`), so events are routed by that id, never by the URL. GHL-docs
    /// `docs/oauth/Faqs.md` ("update the webhook url… you would start receiving the
    /// webhook event for the location"); HubSpot `PUT /webhooks/v3/{appId}/settings`
    /// takes one `targetUrl` per app.
    #[must_use]
    pub fn app_level_webhooks(self) -> bool {
        matches!(self, Self::Gohighlevel | Self::Hubspot)
    }
}

/// One vendor's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorConfig {
    /// The REST API's base URL. ActiveCampaign's is per customer and comes from the
    /// connection; this one is then unused.
    #[serde(default)]
    pub api_base: String,
    /// The OAuth authorization page.
    #[serde(default)]
    pub authorize_url: String,
    /// The OAuth token endpoint.
    #[serde(default)]
    pub token_url: String,
    /// The OAuth app's client id (empty: OAuth not offered by this deployment).
    #[serde(default)]
    pub client_id: String,
    /// The OAuth app's client secret; HubSpot and GoHighLevel marketplace apps also sign
    /// webhooks with it.
    #[serde(default)]
    pub client_secret: String,
    /// OAuth scopes requested.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The vendor's published limit per connection.
    pub rate_limit: RateLimit,
    /// Further published limits per connection that apply to API-key credentials (Keap
    /// PAT/SAK: per minute and per day); each must allow a request.
    #[serde(default)]
    pub key_rate_limits: Vec<RateLimit>,
    /// Published limits of the OAuth app as a whole, shared by every connection that
    /// authorised it (Keap: per client id "across all Keap applications"). Enforced per
    /// process: with several processes each gets the whole quota, so set these to the
    /// quota divided by their number.
    #[serde(default)]
    pub app_rate_limits: Vec<RateLimit>,
    /// GoHighLevel: the public key (PEM or base64 of the raw 32 bytes) that verifies
    /// `X-GHL-Signature` (Ed25519).
    #[serde(default)]
    pub webhook_public_key: String,
    /// Whether token refreshes authenticate the client with `Authorization: Basic`
    /// rather than form fields (Keap).
    #[serde(default)]
    pub refresh_basic_auth: bool,
}

impl VendorConfig {
    /// The OAuth client, when one is configured.
    #[must_use]
    pub fn oauth(&self) -> Option<OAuthClient> {
        (!self.client_id.is_empty() && !self.token_url.is_empty()).then(|| OAuthClient {
            token_url: self.token_url.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_basic_auth: self.refresh_basic_auth,
        })
    }
}

/// Settings of every vendor plus the connection machinery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmConfig {
    /// Keap.
    #[serde(default = "keap")]
    pub keap: VendorConfig,
    /// GoHighLevel.
    #[serde(default = "gohighlevel")]
    pub gohighlevel: VendorConfig,
    /// ActiveCampaign.
    #[serde(default = "activecampaign")]
    pub activecampaign: VendorConfig,
    /// Ontraport.
    #[serde(default = "ontraport")]
    pub ontraport: VendorConfig,
    /// HubSpot.
    #[serde(default = "hubspot")]
    pub hubspot: VendorConfig,
    /// The key that encrypts stored credentials: base64 of 32 bytes. Empty in the
    /// embedded default, which then keeps a generated key in its data directory.
    #[serde(default)]
    pub encryption_key: String,
    /// Where vendors send the user back after authorising: mfh's `/v1/oauth/callback`.
    #[serde(default = "default_redirect")]
    pub oauth_redirect_url: String,
    /// How long an OAuth `state` stays usable.
    #[serde(with = "humantime_serde", default = "default_state_ttl")]
    pub oauth_state_ttl: Duration,
    /// How old a signed webhook's timestamp may be.
    #[serde(with = "humantime_serde", default = "default_replay_window")]
    pub webhook_replay_window: Duration,
    /// How often each connection's contacts are synced in full; zero disables it.
    #[serde(with = "humantime_serde", default = "default_sync_interval")]
    pub sync_interval: Duration,
}

fn default_redirect() -> String {
    "http://127.0.0.1:8080/v1/oauth/callback".into()
}
fn default_state_ttl() -> Duration {
    Duration::from_secs(600)
}
fn default_replay_window() -> Duration {
    Duration::from_secs(300)
}
fn default_sync_interval() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn vendor(
    api_base: &str,
    authorize: &str,
    token: &str,
    limit: RateLimit,
    scopes: &[&str],
) -> VendorConfig {
    VendorConfig {
        api_base: api_base.into(),
        authorize_url: authorize.into(),
        token_url: token.into(),
        client_id: String::new(),
        client_secret: String::new(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        rate_limit: limit,
        key_rate_limits: Vec::new(),
        app_rate_limits: Vec::new(),
        webhook_public_key: String::new(),
        refresh_basic_auth: false,
    }
}

// Published limits (reference/crm-apis.md §0), each the tightest that applies to one
// connection.
fn keap() -> VendorConfig {
    let mut v = vendor(
        "https://api.infusionsoft.com/crm/rest",
        "https://accounts.infusionsoft.com/app/oauth/authorize",
        "https://api.infusionsoft.com/token",
        RateLimit::new(10, Duration::from_secs(1)),
        // Keap's only scope.
        &["full"],
    );
    // Keap-PHP `refreshAccessToken` (infusionsoft-php 034667c, Infusionsoft.php):
    // `'Authorization' => 'Basic ' . base64_encode($clientId . ':' . $clientSecret)`, with
    // only grant_type and refresh_token in the body; the code exchange sends them in it.
    v.refresh_basic_auth = true;
    // developer.infusionsoft.com/api-token-quota-and-usage-measurements: PAT/SAK "10
    // Queries per Second, 240 Queries per Minute, 30000 per Day" (the 10/s is
    // `rate_limit`); OAuth "Each key/secret pair… across all Keap applications: 1500
    // Queries per Minute, 150000 per Day".
    v.key_rate_limits = vec![
        RateLimit::new(240, Duration::from_secs(60)),
        RateLimit::new(30_000, Duration::from_secs(86_400)),
    ];
    v.app_rate_limits = vec![
        RateLimit::new(1_500, Duration::from_secs(60)),
        RateLimit::new(150_000, Duration::from_secs(86_400)),
    ];
    v
}
/// GoHighLevel's published Ed25519 key for `X-GHL-Signature` (SPKI, base64), from
/// marketplace.gohighlevel.com/docs/webhook/ProviderOutboundMessage; since 2026-07-01
/// GHL sends only this signature, so deliveries verify out of the box.
pub const GHL_WEBHOOK_PUBLIC_KEY: &str =
    "MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=";

fn gohighlevel() -> VendorConfig {
    let mut v = vendor(
        "https://services.leadconnectorhq.com",
        "https://marketplace.gohighlevel.com/oauth/chooselocation",
        "https://services.leadconnectorhq.com/oauth/token",
        RateLimit::new(100, Duration::from_secs(10)),
        &[
            "contacts.readonly",
            "contacts.write",
            "locations/customFields.readonly",
            "locations/tags.readonly",
            "locations/tags.write",
            "users.readonly",
            "workflows.readonly",
        ],
    );
    v.webhook_public_key = GHL_WEBHOOK_PUBLIC_KEY.into();
    v
}
fn activecampaign() -> VendorConfig {
    vendor("", "", "", RateLimit::new(5, Duration::from_secs(1)), &[])
}
fn ontraport() -> VendorConfig {
    vendor(
        "https://api.ontraport.com/1",
        "",
        "",
        RateLimit::new(180, Duration::from_secs(60)),
        &[],
    )
}
fn hubspot() -> VendorConfig {
    vendor(
        "https://api.hubapi.com",
        "https://app.hubspot.com/oauth/authorize",
        // developers.hubspot.com/changelog/v1-oauth-api-deprecation: "the v1 API will be
        // fully deprecated on February 16th, 2027… Migrate to… POST /oauth/2026-03/token",
        // which takes the same form body (api-reference/2026-03/authentication/
        // oauth-tokens/refresh-oauth-token).
        "https://api.hubapi.com/oauth/2026-03/token",
        RateLimit::new(100, Duration::from_secs(10)),
        &[
            "oauth",
            "crm.objects.contacts.read",
            "crm.objects.contacts.write",
            "crm.schemas.contacts.read",
            "crm.schemas.contacts.write",
            "crm.objects.owners.read",
            "communication_preferences.read_write",
        ],
    )
}

impl Default for CrmConfig {
    fn default() -> Self {
        Self {
            keap: keap(),
            gohighlevel: gohighlevel(),
            activecampaign: activecampaign(),
            ontraport: ontraport(),
            hubspot: hubspot(),
            encryption_key: String::new(),
            oauth_redirect_url: default_redirect(),
            oauth_state_ttl: default_state_ttl(),
            webhook_replay_window: default_replay_window(),
            sync_interval: default_sync_interval(),
        }
    }
}

impl CrmConfig {
    /// The settings of `platform`.
    #[must_use]
    pub fn vendor(&self, platform: Platform) -> &VendorConfig {
        match platform {
            Platform::Keap => &self.keap,
            Platform::Gohighlevel => &self.gohighlevel,
            Platform::Activecampaign => &self.activecampaign,
            Platform::Ontraport => &self.ontraport,
            Platform::Hubspot => &self.hubspot,
        }
    }

    /// Points every vendor's API and token endpoints at `base` (a local test server):
    /// `base/<platform>` for the API and `base/<platform>/oauth/token` for tokens.
    #[must_use]
    pub fn all_at(mut self, base: &str) -> Self {
        for p in Platform::ALL {
            let v = match p {
                Platform::Keap => &mut self.keap,
                Platform::Gohighlevel => &mut self.gohighlevel,
                Platform::Activecampaign => &mut self.activecampaign,
                Platform::Ontraport => &mut self.ontraport,
                Platform::Hubspot => &mut self.hubspot,
            };
            v.api_base = format!("{base}/{}", p.as_str());
            v.token_url = format!("{base}/{}/oauth/token", p.as_str());
            v.authorize_url = format!("{base}/{}/oauth/authorize", p.as_str());
        }
        self
    }
}
