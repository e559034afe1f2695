// Every shape the dashboard sends to or reads from the API, in one module, so that the
// types generated from /v1/openapi.json (openapi-typescript) can replace this file alone.
// Written from api/src/routes/*.rs and the auth contract; times are Unix milliseconds
// unless named otherwise.

/** An RFC 9457 problem body; every API error is one. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
}

export interface FieldError {
  /** `password`, `settings.api_url`, `config.tag_ids`, … */
  field: string;
  message: string;
}

// ---------------------------------------------------------------- auth

export type Role = 'owner' | 'admin' | 'member';

export interface RegisterBody {
  email: string;
  password: string;
  name: string;
  account_name: string;
}

export interface Registered {
  email: string;
  account_id: string;
  verification_required: boolean;
}

export interface Verified {
  email: string;
  verified: boolean;
}

export interface LoginBody {
  email: string;
  password: string;
}

/** `GET /v1/auth/me`, and the answer to a sign-in. */
export interface Me {
  user: { email: string; name: string; verified: boolean };
  account: { account_id: string; name: string };
  role: Role;
  plan: Plan;
  status: AccountStatus;
  csrf_token: string;
}

export interface InviteInfo {
  email: string;
  account_name: string;
  role: Role;
  user_exists: boolean;
}

export interface AcceptInviteBody {
  token: string;
  name?: string;
  password?: string;
}

export interface InviteAccepted {
  email: string;
  account_id: string;
  role: Role;
}

export interface NotificationPreferences {
  execution_failures: boolean;
  connection_problems: boolean;
  usage_alerts: boolean;
  billing: boolean;
  /** Kinds sent whatever the preferences say (billing-critical mail). */
  always_sent: string[];
}

export type NotificationPreferenceKey = 'execution_failures' | 'connection_problems' | 'usage_alerts' | 'billing';

// ---------------------------------------------------------------- account

export type Plan = 'trial' | 'free' | 'start' | 'grow' | 'deliver';
export type AccountStatus = 'trialing' | 'active' | 'past_due' | 'canceled' | 'expired';

/** `null` means unlimited. */
export interface Limits {
  helpers: number | null;
  connections: number | null;
  api_keys: number | null;
  executions_per_month: number | null;
}

export interface Usage {
  month: string;
  executions: number;
  api_keys: number;
  helpers: number;
  overage: number;
}

/** `GET /v1/account`. */
export interface Profile {
  account_id: string;
  name: string;
  billing_email: string | null;
  plan: Plan;
  status: AccountStatus;
  trial_ends_at: number | null;
  limits: Limits;
  usage: Usage;
}

export interface PatchAccount {
  name?: string;
  billing_email?: string;
}

export interface ApiKey {
  key_id: string;
  name: string;
  prefix: string;
  role: Role;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** A key just created: `key` is shown this once. */
export interface NewApiKey {
  key_id: string;
  name: string;
  key: string;
  prefix: string;
  role: Role;
  created_at: number;
}

export interface Member {
  email: string;
  role: Role;
  status: 'invited' | 'active';
  invited_by: string | null;
  invited_at: number;
  joined_at: number | null;
}

/** Stripe Checkout / Billing Portal session. */
export interface BillingSession {
  id: string;
  url: string;
}

// ---------------------------------------------------------------- helpers

export type Category =
  | 'tagging'
  | 'contact'
  | 'data'
  | 'automation'
  | 'integration'
  | 'notification'
  | 'analytics'
  | 'platform';

/** `GET /v1/helper-types`: one helper type. */
export interface HelperType {
  name: string;
  category: Category;
  summary: string;
  example_config: Record<string, unknown>;
  outputs: string[];
  requires: string[];
  /** JSON Schema (draft 2020-12) of the config. */
  config_schema: Record<string, unknown>;
}

/** A saved helper. */
export interface Helper {
  helper_id: string;
  account_id: string;
  name: string;
  helper: string;
  config: Record<string, unknown>;
  connection_id: string;
  enabled: boolean;
  created_at: number;
  updated_at: number;
  execution_count: number;
  failure_count: number;
  last_executed_at: number | null;
  last_failed_at: number | null;
  /** Absent when it cannot be shown again. */
  run_url: string | null;
  goals: string[];
  /** Only on `GET /v1/helpers/{id}`. */
  last_failures?: HelperFailure[];
}

export interface HelperFailure {
  execution_id: string;
  contact_id: string;
  requested_at: number;
  error_kind: string | null;
  error_message: string | null;
}

export interface CreateHelper {
  name: string;
  helper: string;
  config: Record<string, unknown>;
  connection_id: string;
  enabled?: boolean;
}

export interface PatchHelper {
  name?: string;
  config?: Record<string, unknown>;
  connection_id?: string;
  enabled?: boolean;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

// ---------------------------------------------------------------- executions

export type ExecutionStatus = 'queued' | 'throttled' | 'succeeded' | 'failed';

export interface Change {
  kind: string;
  target: string;
  old_value: string | null;
  new_value: string | null;
}

export interface Execution {
  execution_id: string;
  account_id: string;
  helper: string;
  helper_id: string | null;
  retry_of: string | null;
  category: string | null;
  contact_id: string;
  connection_id: string;
  status: ExecutionStatus;
  message: string | null;
  requested_at: number;
  started_at: number | null;
  completed_at: number | null;
  duration_ms: number | null;
  written_at: number | null;
  output: unknown;
  changes: Change[];
  error_kind: string | null;
  error_message: string | null;
  source: string;
  input: unknown;
}

export interface ExecutionFilter {
  helper?: string;
  helper_id?: string;
  contact_id?: string;
  status?: ExecutionStatus | '';
  /** RFC 3339 or Unix ms. */
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

export interface CreateExecution {
  helper: string;
  config: Record<string, unknown>;
  connection_id: string;
  contact_id: string;
  input?: unknown;
}

export interface Accepted {
  execution_id: string;
  status: string;
  href: string;
}

/** `POST /v1/executions?dry_run=true`: what the helper would do. Changes here are the
 * helper's own change records (`{kind: "apply_tag", tag_id: "102"}` and the like), not
 * the recorded `Change` rows of an execution. */
export interface DryRun {
  dry_run: true;
  helper: string;
  contact_id: string;
  success: boolean;
  message: string | null;
  output: unknown;
  changes: Record<string, unknown>[];
  follow_ups: unknown[];
}

// ---------------------------------------------------------------- explorer

export interface QueryResult {
  columns: string[];
  rows: unknown[][];
  truncated: boolean;
}

// ---------------------------------------------------------------- connections

export type Platform = 'keap' | 'gohighlevel' | 'activecampaign' | 'ontraport' | 'hubspot';

export interface Connection {
  connection_id: string;
  platform: Platform;
  name: string;
  /** `pending_authorization`, `active` or `error`. */
  status: string;
  settings: Record<string, unknown>;
  created_at: number;
  webhook_url: string;
  /** Only in the answer to a create: shown once. */
  webhook_token?: string;
  sync?: SyncState | null;
}

export interface CreateConnection {
  platform: Platform;
  name?: string;
  settings: Record<string, string>;
  credentials?: { token?: string; api_token?: string; api_key?: string; app_id?: string };
}

export interface Health {
  connection_id: string;
  ok: boolean;
  status: string;
  error: { kind: string; message: string } | null;
}

export interface SyncState {
  connection_id: string;
  account_id: string;
  /** `requested`, `running`, `done` or `failed`. */
  status: string;
  run_id: string;
  synced: number;
  total: number | null;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
}

export interface OAuthStart {
  authorize_url: string;
  state: string;
  expires_at: number;
}
