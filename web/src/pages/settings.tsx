// Settings: profile, team and invitations, API keys, plan and usage (Stripe Checkout
// and the billing portal), notification preferences.
import { useState } from 'react';
import { NavLink, Navigate, useParams } from 'react-router';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { account } from '../api/endpoints';
import type { Me, NewApiKey, NotificationPreferenceKey, NotificationPreferences, Plan, Profile, Role } from '../api/types';
import {
  Checkbox,
  ConfirmButton,
  CopyField,
  Notice,
  PageHeader,
  ProblemBanner,
  QueryView,
  SelectField,
  StatusBadge,
  TextField,
  fieldError,
  formatNumber,
  formatTime,
} from '../components/ui';
import { keys } from '../queries';
import { ME_KEY, canManage } from '../session';

const TABS = [
  ['profile', 'Profile'],
  ['team', 'Team'],
  ['api-keys', 'API keys'],
  ['billing', 'Plan and usage'],
  ['notifications', 'Notifications'],
] as const;

export function SettingsPage({ me }: { me: Me }) {
  const { tab = 'profile' } = useParams();
  if (!TABS.some(([t]) => t === tab)) return <Navigate to="/settings" replace />;
  return (
    <>
      <PageHeader title="Settings" />
      <nav className="tabs" aria-label="Settings sections">
        {TABS.map(([t, label]) => (
          <NavLink key={t} to={t === 'profile' ? '/settings' : `/settings/${t}`} end>
            {label}
          </NavLink>
        ))}
      </nav>
      {tab === 'profile' && <ProfileTab me={me} />}
      {tab === 'team' && <TeamTab me={me} />}
      {tab === 'api-keys' && <KeysTab me={me} />}
      {tab === 'billing' && <BillingTab me={me} />}
      {tab === 'notifications' && <NotificationsTab />}
    </>
  );
}

function useProfile() {
  return useQuery({ queryKey: keys.account, queryFn: account.get });
}

function ProfileTab({ me }: { me: Me }) {
  const q = useProfile();
  return (
    <>
      <section className="card" aria-labelledby="you-h">
        <h2 id="you-h">You</h2>
        <dl className="facts">
          <dt>Name</dt>
          <dd>{me.user.name || '—'}</dd>
          <dt>Email</dt>
          <dd>
            {me.user.email} {me.user.verified && <StatusBadge status="verified" />}
          </dd>
          <dt>Role</dt>
          <dd>{me.role}</dd>
        </dl>
        <p className="muted">
          To change your password, sign out and use “Forgot your password?”; the emailed link signs you out everywhere.
        </p>
      </section>
      <QueryView q={q} what="the account">
        {(p) => <AccountForm p={p} me={me} />}
      </QueryView>
    </>
  );
}

function AccountForm({ p, me }: { p: Profile; me: Me }) {
  const [name, setName] = useState(p.name);
  const [billingEmail, setBillingEmail] = useState(p.billing_email ?? '');
  const qc = useQueryClient();
  const m = useMutation({
    mutationFn: () => {
      const body: { name?: string; billing_email?: string } = {};
      if (name !== p.name) body.name = name;
      if (billingEmail !== (p.billing_email ?? '')) body.billing_email = billingEmail;
      return account.patch(body);
    },
    onSuccess: (np) => {
      qc.setQueryData(keys.account, np);
      qc.invalidateQueries({ queryKey: ME_KEY });
    },
  });
  const mayEdit = canManage(me);
  return (
    <section className="card" aria-labelledby="acct-h">
      <h2 id="acct-h">Account</h2>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate();
        }}
      >
        <TextField label="Account name" name="account_name" value={name} onChange={(e) => setName(e.target.value)} error={fieldError(m.error, 'name')} disabled={!mayEdit} />
        <TextField
          label="Billing email"
          name="billing_email"
          type="email"
          value={billingEmail}
          onChange={(e) => setBillingEmail(e.target.value)}
          error={fieldError(m.error, 'billing_email')}
          hint="Invoices and billing notices go here."
          disabled={me.role !== 'owner'}
        />
        <p className="muted">
          Account id <code>{p.account_id}</code>
        </p>
        <ProblemBanner error={m.error} fields={['name', 'billing_email']} />
        {m.isSuccess && <Notice kind="success">Saved.</Notice>}
        <button className="btn btn-primary" type="submit" disabled={m.isPending || !mayEdit}>
          Save
        </button>
      </form>
    </section>
  );
}

const ROLES: Role[] = ['member', 'admin', 'owner'];

function TeamTab({ me }: { me: Me }) {
  const q = useQuery({ queryKey: keys.team, queryFn: async () => (await account.team()).members });
  const qc = useQueryClient();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('member');
  const invite = useMutation({
    mutationFn: () => account.invite(email.trim(), role),
    onSuccess: () => {
      setEmail('');
      qc.invalidateQueries({ queryKey: keys.team });
    },
  });
  const setRoleM = useMutation({
    mutationFn: (v: { email: string; role: Role }) => account.setRole(v.email, v.role),
    onSuccess: () => qc.invalidateQueries({ queryKey: keys.team }),
  });
  const remove = useMutation({
    mutationFn: (e: string) => account.removeMember(e),
    onSuccess: () => qc.invalidateQueries({ queryKey: keys.team }),
  });
  const manage = canManage(me);
  return (
    <>
      {manage && (
        <section className="card" aria-labelledby="invite-h">
          <h2 id="invite-h">Invite a teammate</h2>
          <form
            className="inline-form"
            noValidate
            onSubmit={(e) => {
              e.preventDefault();
              invite.mutate();
            }}
          >
            <TextField label="Email" name="invite_email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} error={fieldError(invite.error, 'email')} />
            <SelectField label="Role" name="invite_role" value={role} onChange={(e) => setRole(e.target.value as Role)} error={fieldError(invite.error, 'role')}>
              {ROLES.filter((r) => r !== 'owner' || me.role === 'owner').map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </SelectField>
            <button className="btn btn-primary" type="submit" disabled={invite.isPending || !email.trim()}>
              {invite.isPending ? 'Sending…' : 'Send invitation'}
            </button>
          </form>
          <p className="hint">Members run helpers and read data; admins also manage the team, keys and connections; owners also billing.</p>
          <ProblemBanner error={invite.error} fields={['email', 'role']} />
          {invite.isSuccess && (
            <Notice kind="success">
              Invitation sent to <strong>{invite.data.email}</strong>. The link in the email works once.
            </Notice>
          )}
        </section>
      )}
      <section className="card" aria-labelledby="members-h">
        <h2 id="members-h">Members</h2>
        <ProblemBanner error={setRoleM.error ?? remove.error} />
        <QueryView q={q} what="the team">
          {(members) => (
            <div className="table-wrap">
              <table className="table" aria-label="Team members">
                <thead>
                  <tr>
                    <th scope="col">Email</th>
                    <th scope="col">Role</th>
                    <th scope="col">Status</th>
                    <th scope="col" className="hide-narrow">
                      Since
                    </th>
                    {manage && <th scope="col">Actions</th>}
                  </tr>
                </thead>
                <tbody>
                  {members.map((m) => {
                    const self = m.email === me.user.email.toLowerCase();
                    return (
                      <tr key={m.email}>
                        <td>
                          {m.email} {self && <span className="muted">(you)</span>}
                        </td>
                        <td>
                          {manage && !self ? (
                            <select
                              aria-label={`Role of ${m.email}`}
                              value={m.role}
                              onChange={(e) => setRoleM.mutate({ email: m.email, role: e.target.value as Role })}
                            >
                              {ROLES.map((r) => (
                                <option key={r} value={r}>
                                  {r}
                                </option>
                              ))}
                            </select>
                          ) : (
                            m.role
                          )}
                        </td>
                        <td>
                          <StatusBadge status={m.status} />
                        </td>
                        <td className="hide-narrow">{formatTime(m.joined_at ?? m.invited_at)}</td>
                        {manage && (
                          <td>
                            {!self && (
                              <ConfirmButton confirm={`Remove ${m.email}?`} onConfirm={() => remove.mutate(m.email)} className="btn btn-small btn-danger">
                                {m.status === 'invited' ? 'Cancel invite' : 'Remove'}
                              </ConfirmButton>
                            )}
                          </td>
                        )}
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </QueryView>
      </section>
    </>
  );
}

function KeysTab({ me }: { me: Me }) {
  const manage = canManage(me);
  const q = useQuery({ queryKey: keys.apiKeys, queryFn: async () => (await account.keys()).api_keys, enabled: manage });
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('admin');
  const [created, setCreated] = useState<NewApiKey | null>(null);
  const create = useMutation({
    mutationFn: () => account.createKey(name.trim(), role),
    onSuccess: (k) => {
      setCreated(k);
      setName('');
      qc.invalidateQueries({ queryKey: keys.apiKeys });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => account.revokeKey(id),
    onSuccess: () => qc.invalidateQueries({ queryKey: keys.apiKeys }),
  });
  if (!manage) return <Notice>Only owners and admins manage API keys.</Notice>;
  return (
    <>
      <section className="card" aria-labelledby="newkey-h">
        <h2 id="newkey-h">Create an API key</h2>
        <form
          className="inline-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            create.mutate();
          }}
        >
          <TextField label="Key name" name="key_name" value={name} onChange={(e) => setName(e.target.value)} error={fieldError(create.error, 'name')} hint="What uses it, e.g. “Zapier”." />
          <SelectField label="Key role" name="key_role" value={role} onChange={(e) => setRole(e.target.value as Role)} error={fieldError(create.error, 'role')}>
            {ROLES.filter((r) => r !== 'owner' || me.role === 'owner').map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </SelectField>
          <button className="btn btn-primary" type="submit" disabled={create.isPending}>
            Create key
          </button>
        </form>
        <ProblemBanner error={create.error} fields={['name', 'role']} />
        {created && (
          <div className="banner banner-success" role="status">
            <p>
              <strong>{created.name}</strong> created. Copy the key now: it is shown only this once.
            </p>
            <CopyField label="New API key" value={created.key} />
            <button type="button" className="btn btn-small" onClick={() => setCreated(null)}>
              I have copied it
            </button>
          </div>
        )}
      </section>
      <section className="card" aria-labelledby="keys-h">
        <h2 id="keys-h">Keys</h2>
        <ProblemBanner error={revoke.error} />
        <QueryView q={q} what="API keys">
          {(list) =>
            list.length === 0 ? (
              <p className="muted">No API keys.</p>
            ) : (
              <div className="table-wrap">
                <table className="table" aria-label="API keys">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Key</th>
                      <th scope="col">Role</th>
                      <th scope="col" className="hide-narrow">
                        Last used
                      </th>
                      <th scope="col">Status</th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.map((k) => (
                      <tr key={k.key_id}>
                        <td>{k.name}</td>
                        <td>
                          <code>{k.prefix}…</code>
                        </td>
                        <td>{k.role}</td>
                        <td className="hide-narrow">{formatTime(k.last_used_at)}</td>
                        <td>
                          {k.revoked_at ? (
                            <StatusBadge status="revoked" />
                          ) : (
                            <ConfirmButton confirm={`Revoke ${k.name}?`} onConfirm={() => revoke.mutate(k.key_id)} className="btn btn-small btn-danger">
                              Revoke
                            </ConfirmButton>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </QueryView>
      </section>
    </>
  );
}

const PAID: { plan: Plan; label: string }[] = [
  { plan: 'start', label: 'Start' },
  { plan: 'grow', label: 'Grow' },
  { plan: 'deliver', label: 'Deliver' },
];

/** `limit` null or absent: unlimited. */
function Meter({ label, used, limit = null }: { label: string; used: number; limit?: number | null }) {
  const id = `meter-${label.replace(/\W+/g, '-')}`;
  return (
    <div className="meter">
      <label htmlFor={id}>
        {label}: <strong>{formatNumber(used)}</strong> {limit === null ? '(unlimited)' : `of ${formatNumber(limit)}`}
      </label>
      {limit !== null && (
        <meter id={id} min={0} max={limit || 1} value={Math.min(used, limit)} high={limit * 0.8} optimum={0}>
          {used} of {limit}
        </meter>
      )}
    </div>
  );
}

function BillingTab({ me }: { me: Me }) {
  const q = useProfile();
  const checkout = useMutation({ mutationFn: (p: Plan) => account.checkout(p), onSuccess: (s) => window.location.assign(s.url) });
  const portal = useMutation({ mutationFn: account.portal, onSuccess: (s) => window.location.assign(s.url) });
  const owner = me.role === 'owner';
  return (
    <QueryView q={q} what="plan and usage">
      {(p) => (
        <>
          <section className="card" aria-labelledby="plan-h">
            <h2 id="plan-h">
              Plan: {p.plan} <StatusBadge status={p.status} />
            </h2>
            {/* trial_ends_at is Unix seconds, unlike the API's other times. */}
            {p.trial_ends_at && p.plan === 'trial' && <p>Your trial ends {formatTime(p.trial_ends_at * 1000)}.</p>}
            {p.status === 'past_due' && <Notice kind="warning">A payment failed; Stripe is retrying. Update your card in the billing portal.</Notice>}
            {(p.status === 'expired' || p.status === 'canceled') && <Notice kind="warning">Executions are stopped until you choose a plan.</Notice>}
            <h3>Usage in {p.usage.month}</h3>
            <Meter label="Executions" used={p.usage.executions} limit={p.limits.executions_per_month} />
            <Meter label="Helpers" used={p.usage.helpers} limit={p.limits.helpers} />
            <Meter label="API keys" used={p.usage.api_keys} limit={p.limits.api_keys} />
            <p className="muted">Connections allowed: {p.limits.connections ?? 'unlimited'}</p>
            {p.usage.overage > 0 && <Notice kind="warning">{formatNumber(p.usage.overage)} executions over the plan’s monthly limit (billed as overage).</Notice>}
          </section>
          <section className="card" aria-labelledby="upgrade-h">
            <h2 id="upgrade-h">Change plan</h2>
            {!owner && <p className="muted">Only the account owner manages billing.</p>}
            <div className="card-actions">
              {PAID.map(({ plan, label }) => (
                <button key={plan} type="button" className={`btn${plan === p.plan ? '' : ' btn-primary'}`} disabled={!owner || checkout.isPending} onClick={() => checkout.mutate(plan)}>
                  {plan === p.plan ? `${label} (current)` : `Choose ${label}`}
                </button>
              ))}
              <button type="button" className="btn" disabled={!owner || portal.isPending} onClick={() => portal.mutate()}>
                Open billing portal
              </button>
            </div>
            <ProblemBanner error={checkout.error} title="Checkout could not start" />
            <ProblemBanner error={portal.error} title="The billing portal could not open" />
          </section>
        </>
      )}
    </QueryView>
  );
}

const PREFS: { key: NotificationPreferenceKey; label: string; hint: string }[] = [
  { key: 'execution_failures', label: 'Execution failures', hint: 'When helpers fail.' },
  { key: 'connection_problems', label: 'Connection problems', hint: 'When a CRM connection stops working.' },
  { key: 'usage_alerts', label: 'Usage alerts', hint: 'When the month’s executions near the plan’s limit.' },
  { key: 'billing', label: 'Billing', hint: 'Receipts and plan changes. Payment failures are always sent.' },
];

function NotificationsTab() {
  const q = useQuery({ queryKey: keys.prefs, queryFn: account.prefs });
  return <QueryView q={q} what="notification preferences">{(p) => <PrefsForm p={p} />}</QueryView>;
}

function PrefsForm({ p }: { p: NotificationPreferences }) {
  const [v, setV] = useState<Record<NotificationPreferenceKey, boolean>>({
    // Every switch is on unless the account turned it off (the document marks them optional).
    execution_failures: p.execution_failures ?? true,
    connection_problems: p.connection_problems ?? true,
    usage_alerts: p.usage_alerts ?? true,
    billing: p.billing ?? true,
  });
  const qc = useQueryClient();
  const m = useMutation({ mutationFn: () => account.setPrefs(v), onSuccess: (np) => qc.setQueryData(keys.prefs, np) });
  return (
    <section className="card" aria-labelledby="prefs-h">
      <h2 id="prefs-h">Email notifications</h2>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate();
        }}
      >
        <fieldset>
          <legend>Send me emails about</legend>
          {PREFS.map(({ key, label, hint }) => (
            <Checkbox key={key} label={label} hint={hint} checked={v[key]} onChange={(e) => setV({ ...v, [key]: e.target.checked })} />
          ))}
        </fieldset>
        {p.always_sent.length > 0 && (
          <p className="muted">Always sent, whatever you choose: {p.always_sent.map((k) => k.replace(/_/g, ' ')).join(', ')}.</p>
        )}
        <ProblemBanner error={m.error} />
        {m.isSuccess && <Notice kind="success">Preferences saved.</Notice>}
        <button className="btn btn-primary" type="submit" disabled={m.isPending}>
          Save preferences
        </button>
      </form>
    </section>
  );
}
