// One function per API route the dashboard uses.
import { api } from './client';
import type * as T from './types';

const enc = encodeURIComponent;

export const auth = {
  register: (b: T.RegisterBody) => api<T.Registered>('/v1/auth/register', { method: 'POST', body: b }),
  verify: (token: string) => api<T.Verified>('/v1/auth/verify', { method: 'POST', body: { token } satisfies T.TokenBody }),
  resendVerification: (email: string) => api<void>('/v1/auth/verify/resend', { method: 'POST', body: { email } satisfies T.EmailBody }),
  login: (b: T.LoginBody) => api<T.Me>('/v1/auth/login', { method: 'POST', body: b, quiet401: true }),
  logout: () => api<void>('/v1/auth/logout', { method: 'POST' }),
  me: () => api<T.Me>('/v1/auth/me', { quiet401: true }),
  requestReset: (email: string) => api<void>('/v1/auth/password-reset', { method: 'POST', body: { email } satisfies T.EmailBody }),
  confirmReset: (token: string, password: string) =>
    api<void>('/v1/auth/password-reset/confirm', { method: 'POST', body: { token, password } satisfies T.ConfirmResetBody }),
  invite: (token: string) => api<T.InviteInfo>(`/v1/auth/invites/${enc(token)}`, { quiet401: true }),
  acceptInvite: (b: T.AcceptInviteBody) => api<T.InviteAccepted>('/v1/auth/invites/accept', { method: 'POST', body: b }),
};

export const account = {
  get: () => api<T.Profile>('/v1/account'),
  patch: (b: T.PatchAccount) => api<T.Profile>('/v1/account', { method: 'PATCH', body: b }),
  prefs: () => api<T.NotificationPreferences>('/v1/account/notification-preferences'),
  setPrefs: (b: T.NotificationSwitches) =>
    api<T.NotificationPreferences>('/v1/account/notification-preferences', { method: 'PUT', body: b }),
  keys: () => api<T.KeyList>('/v1/api-keys'),
  createKey: (name: string, role: T.Role) => api<T.NewApiKey>('/v1/api-keys', { method: 'POST', body: { name, role } satisfies T.CreateKey }),
  revokeKey: (id: string) => api<void>(`/v1/api-keys/${enc(id)}`, { method: 'DELETE' }),
  team: () => api<T.Team>('/v1/team'),
  invite: (email: string, role: T.Role) => api<T.Member>('/v1/team/invites', { method: 'POST', body: { email, role } satisfies T.InviteBody }),
  setRole: (email: string, role: T.Role) => api<T.Member>(`/v1/team/${enc(email)}`, { method: 'PATCH', body: { role } satisfies T.SetRoleBody }),
  removeMember: (email: string) => api<void>(`/v1/team/${enc(email)}`, { method: 'DELETE' }),
  checkout: (plan: T.Plan) => api<T.BillingSession>('/v1/billing/checkout', { method: 'POST', body: { plan } satisfies T.CheckoutBody }),
  portal: () => api<T.BillingSession>('/v1/billing/portal', { method: 'POST' }),
};

export const helperTypes = {
  list: () => api<T.HelperType[]>('/v1/helper-types'),
};

export const helpers = {
  list: (q: T.HelperFilter = {}) =>
    api<T.HelperPage>('/v1/helpers', { query: { limit: 100, ...q } }),
  get: (id: string) => api<T.Helper>(`/v1/helpers/${enc(id)}`),
  create: (b: T.CreateHelper) => api<T.Helper>('/v1/helpers', { method: 'POST', body: b }),
  patch: (id: string, b: T.PatchHelper) => api<T.Helper>(`/v1/helpers/${enc(id)}`, { method: 'PATCH', body: b }),
  remove: (id: string) => api<void>(`/v1/helpers/${enc(id)}`, { method: 'DELETE' }),
  copy: (id: string) => api<T.Helper>(`/v1/helpers/${enc(id)}/copy`, { method: 'POST' }),
  rotateUrl: (id: string) => api<T.Helper>(`/v1/helpers/${enc(id)}/rotate-url`, { method: 'POST' }),
};

export const executions = {
  list: (f: T.ExecutionFilter) => api<T.ExecutionPage>('/v1/executions', { query: { ...f } }),
  get: (id: string) => api<T.Execution>(`/v1/executions/${enc(id)}`),
  retry: (id: string) => api<T.Accepted>(`/v1/executions/${enc(id)}/retry`, { method: 'POST' }),
  dryRun: (b: T.CreateExecution) =>
    api<T.DryRun>('/v1/executions', { method: 'POST', body: b, query: { dry_run: true } }),
};

export const explorer = {
  query: (sql: string, max_rows?: number) =>
    api<T.QueryResult>('/v1/explorer/query', { method: 'POST', body: (max_rows ? { sql, max_rows } : { sql }) satisfies T.QueryBody }),
};

export const connections = {
  list: () => api<T.ConnectionList>('/v1/connections'),
  get: (id: string) => api<T.ConnectionDetail>(`/v1/connections/${enc(id)}`),
  create: (b: T.CreateConnection) => api<T.Connection>('/v1/connections', { method: 'POST', body: b }),
  remove: (id: string) => api<void>(`/v1/connections/${enc(id)}`, { method: 'DELETE' }),
  health: (id: string) => api<T.Health>(`/v1/connections/${enc(id)}/health`, { method: 'POST' }),
  sync: (id: string) => api<T.SyncView>(`/v1/connections/${enc(id)}/sync`, { method: 'POST' }),
  syncProgress: (id: string) => api<T.SyncView>(`/v1/connections/${enc(id)}/sync`),
  oauthStart: (id: string) => api<T.OAuthStart>(`/v1/connections/${enc(id)}/oauth/start`, { method: 'POST' }),
  /** The CRM's tags; `id` may be `sandbox`. 409 when the CRM cannot list them. */
  tags: (id: string) => api<T.TagList>(`/v1/connections/${enc(id)}/tags`),
};
