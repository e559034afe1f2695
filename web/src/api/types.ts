// Every shape the dashboard sends to or reads from the API, named the way the app uses
// them. Each one is an alias of a schema in the API's OpenAPI document
// (docs/openapi.json, the same document the API serves at /v1/openapi.json), whose
// TypeScript form `npm run types` generates into ./schema.gen.ts (openapi-typescript,
// before every typecheck and build; never committed). So when the API changes a shape,
// the dashboard fails to type-check instead of drifting. Only the few types at the end,
// marked client-side, are written here by hand. Times are Unix milliseconds unless
// named otherwise.
import type { components, operations } from './schema.gen';

type Schemas = components['schemas'];

/** An RFC 9457 problem body; every API error is one. */
export type Problem = Schemas['Problem'];
/** One invalid field: `password`, `settings.api_url`, `config.tag_ids`, … */
export type FieldError = Schemas['FieldError'];

// ---------------------------------------------------------------- auth

export type Role = Schemas['Role'];
export type RegisterBody = Schemas['Register'];
export type Registered = Schemas['Registered'];
export type Verified = Schemas['Verified'];
export type LoginBody = Schemas['Login'];
/** `GET /v1/auth/me`, and the answer to a sign-in. */
export type Me = Schemas['Me'];
export type InviteInfo = Schemas['InviteInfo'];
export type AcceptInviteBody = Schemas['Accept'];
export type InviteAccepted = Schemas['Joined'];
export type TokenBody = Schemas['TokenBody'];
export type EmailBody = Schemas['EmailBody'];
export type ConfirmResetBody = Schemas['Confirm'];

/** The switches of `PUT /v1/account/notification-preferences`. */
export type NotificationSwitches = Schemas['NotificationPrefs'];
/** The preferences and the kinds sent whatever they say (billing-critical mail). */
export type NotificationPreferences = Schemas['Preferences'];
export type NotificationPreferenceKey = keyof NotificationSwitches;

// ---------------------------------------------------------------- account

export type Plan = Schemas['Plan'];
export type AccountStatus = Schemas['AccountStatus'];
/** `null` (or absent) means unlimited. */
export type Limits = Schemas['Limits'];
export type Usage = Schemas['Usage'];
/** `GET /v1/account`. */
export type Profile = Schemas['Profile'];
export type PatchAccount = Schemas['PatchAccount'];
export type ApiKey = Schemas['ApiKeyView'];
export type KeyList = Schemas['KeyList'];
export type CreateKey = Schemas['CreateKey'];
/** A key just created: `key` is shown this once. */
export type NewApiKey = Schemas['NewKey'];
export type Member = Schemas['Member'];
export type MemberStatus = Schemas['MemberStatus'];
export type Team = Schemas['Team'];
export type InviteBody = Schemas['Invite'];
export type SetRoleBody = Schemas['SetRole'];
export type CheckoutBody = Schemas['CheckoutBody'];
/** Stripe Checkout / Billing Portal session. */
export type BillingSession = Schemas['Session'];

// ---------------------------------------------------------------- helpers

/** `GET /v1/helper-types`: one helper type. */
export type HelperType = Schemas['HelperInfo'];
/** A saved helper, as every helper route answers it. */
export type Helper = Schemas['HelperView'];
export type HelperFailure = Schemas['FailureView'];
export type HelperPage = Schemas['HelperPage'];
/** The query of `GET /v1/helpers`. */
export type HelperFilter = NonNullable<operations['helpers_list']['parameters']['query']>;
export type CreateHelper = Schemas['CreateHelper'];
export type PatchHelper = Schemas['PatchHelper'];

// ---------------------------------------------------------------- executions

/** A change recorded on an execution (`field_updated`, `tag_applied`, …). */
export type Change = Schemas['ContactChangeView'];
/** A change a helper asks the connector to make (`{kind: "apply_tag", tag_id}`, …): what a
 * dry run reports, not the recorded `Change` rows of an execution. */
export type HelperChange = Schemas['Change'];
export type FollowUp = Schemas['FollowUp'];
export type Execution = Schemas['ExecutionView'];
export type ExecutionPage = Schemas['ExecutionPage'];
/** The query of `GET /v1/executions`. */
export type ExecutionFilter = NonNullable<operations['executions_list']['parameters']['query']>;
export type CreateExecution = Schemas['CreateExecution'];
export type Accepted = Schemas['Accepted'];
/** `POST /v1/executions?dry_run=true`: what the helper would do. */
export type DryRun = Schemas['DryRun'];

// ---------------------------------------------------------------- explorer

export type QueryBody = Schemas['QueryBody'];
export type QueryResult = Schemas['QueryResult'];

// ---------------------------------------------------------------- connections

/** A connection as listed and as created (only a create carries `webhook_token`). */
export type Connection = Schemas['ConnectionView'];
/** `GET /v1/connections/{id}`: the connection and its latest sync. */
export type ConnectionDetail = Schemas['ConnectionDetail'];
export type ConnectionList = Schemas['ConnectionList'];
export type CreateConnection = Schemas['CreateConnection'];
export type Credentials = Schemas['CredentialsIn'];
export type Health = Schemas['Health'];
export type SyncState = Schemas['SyncState'];
export type SyncView = Schemas['SyncView'];
export type OAuthStart = Schemas['OAuthStart'];
/** `GET /v1/connections/{id}/tags`: the CRM's tag catalog (the helper form's tag picker). */
export type TagList = Schemas['TagList'];
/** A tag in a CRM's catalog: `id` is what helper configs name; `category` is null when the CRM has none. */
export type TagView = Schemas['TagView'];

// ---------------------------------------------------------------- client-side
// Not API shapes: the values the dashboard offers in its own pickers and filters. The
// document types these fields as plain strings, so anything read back from the API is a
// `string`; these only narrow what the user can choose.

/** The statuses the executions filter offers (an execution's `status` is any string). */
export type ExecutionStatus = 'queued' | 'throttled' | 'succeeded' | 'failed';

/** The CRMs the new-connection form offers (a connection's `platform` is any string). */
export type Platform = 'keap' | 'gohighlevel' | 'activecampaign' | 'ontraport' | 'hubspot';
