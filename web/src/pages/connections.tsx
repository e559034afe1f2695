// Connections: connect each CRM with the fields it needs (API/OAuth), check its health,
// sync its contacts with a live progress bar, and copy its webhook URL.
import { useEffect, useState } from 'react';
import { useSearchParams } from 'react-router';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { connections } from '../api/endpoints';
import type { Connection, CreateConnection, Health, Platform } from '../api/types';
import {
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
import { keys, useConnections } from '../queries';

interface PlatformSpec {
  label: string;
  oauth: boolean;
  /** Credentials fields: [key in `credentials`, label, hint]. */
  credentials: [keyof NonNullable<CreateConnection['credentials']>, string, string][];
  /** Settings: [key, label, required, hint]. */
  settings: [string, string, boolean, string][];
  /** Whether the vendor signs webhooks (otherwise the URL's token authenticates). */
  signs: boolean;
}

// From api/src/routes/connections.rs (credentials_for, required_settings) and the
// settings each connector reads.
const PLATFORMS: Record<Platform, PlatformSpec> = {
  keap: {
    label: 'Keap (Infusionsoft)',
    oauth: true,
    credentials: [['token', 'Keap API key', 'A Service Account Key from Keap → Settings → API. Leave empty to connect with OAuth.']],
    settings: [
      ['goal_integration', 'API goal integration name', false, 'The Integration of your API goals (default “mfh”).'],
      ['note_user_id', 'Note author user id', false, 'The Keap user notes are written as.'],
    ],
    signs: false,
  },
  gohighlevel: {
    label: 'GoHighLevel',
    oauth: true,
    credentials: [['token', 'Private integration token', 'Leave empty to connect with OAuth.']],
    settings: [['location_id', 'Location id', true, 'The sub-account (location) whose contacts mfh works on.']],
    signs: true,
  },
  activecampaign: {
    label: 'ActiveCampaign',
    oauth: false,
    credentials: [['api_token', 'API token', 'Settings → Developer → API Access.']],
    settings: [
      ['api_url', 'API URL', true, 'Like https://youraccount.api-us1.com (same page as the token).'],
      ['list_id', 'List id', false, 'The list new contacts are subscribed to.'],
    ],
    signs: false,
  },
  ontraport: {
    label: 'Ontraport',
    oauth: false,
    credentials: [
      ['api_key', 'API key', 'Administration → Integrations → Ontraport API Instructions and Key Manager.'],
      ['app_id', 'App id', 'Shown next to the API key.'],
    ],
    settings: [],
    signs: false,
  },
  hubspot: {
    label: 'HubSpot',
    oauth: true,
    credentials: [['token', 'Private app access token', 'Leave empty to connect with OAuth.']],
    settings: [
      ['tag_property', 'Tag property', false, 'The contact property that holds tags (default mfh_tags).'],
      ['subscription_id', 'Subscription type id', false, 'For opt-in changes.'],
      ['legal_basis', 'Legal basis', false, 'For opt-in changes, e.g. CONSENT_WITH_NOTICE.'],
    ],
    signs: true,
  },
};

/** The form's spec for a connection's platform: `undefined` for one this dashboard does not
 * know (the API document types `platform` as any string). */
function specFor(platform: string): PlatformSpec | undefined {
  return Object.hasOwn(PLATFORMS, platform) ? PLATFORMS[platform as Platform] : undefined;
}

export function ConnectionsPage() {
  const q = useConnections();
  const [params, setParams] = useSearchParams();
  const connected = params.get('connected');
  const [created, setCreated] = useState<Connection | null>(null);
  const [adding, setAdding] = useState(false);
  const qc = useQueryClient();
  useEffect(() => {
    if (connected) qc.invalidateQueries({ queryKey: keys.connections });
  }, [connected, qc]);
  return (
    <>
      <PageHeader title="Connections">
        {!adding && (
          <button type="button" className="btn btn-primary" onClick={() => setAdding(true)}>
            Connect a CRM
          </button>
        )}
      </PageHeader>
      {connected && (
        <Notice kind="success">
          Connected <code>{connected}</code>: mfh can now work on its contacts.{' '}
          <button type="button" className="link" onClick={() => setParams({}, { replace: true })}>
            Dismiss
          </button>
        </Notice>
      )}
      {/* GET /v1/oauth/callback sends the browser back here with connected= or oauth_error=. */}
      {params.get('oauth_error') && <ProblemBanner error={new Error(`The connection was not authorised: ${params.get('oauth_error')}`)} />}
      {adding && (
        <NewConnection
          onDone={(c) => {
            setAdding(false);
            setCreated(c);
          }}
          onCancel={() => setAdding(false)}
        />
      )}
      {created && <CreatedConnection c={created} onDismiss={() => setCreated(null)} />}
      <section className="card" aria-labelledby="sandbox-h">
        <h2 id="sandbox-h">
          Sandbox CRM <StatusBadge status="active" />
        </h2>
        <p className="muted">
          Every account has it: seven demo contacts (ids 1–7) and their tags, to try helpers without touching a real CRM. Its connection
          id is <code>sandbox</code>.
        </p>
      </section>
      <QueryView q={q} what="connections">
        {(list) =>
          list.length === 0 ? (
            <p className="muted">No CRM connected yet.</p>
          ) : (
            <>
              {list.map((c) => (
                <ConnectionCard key={c.connection_id} c={c} />
              ))}
            </>
          )
        }
      </QueryView>
    </>
  );
}

function NewConnection({ onDone, onCancel }: { onDone: (c: Connection) => void; onCancel: () => void }) {
  const [platform, setPlatform] = useState<Platform>('keap');
  const [name, setName] = useState('');
  const [creds, setCreds] = useState<Record<string, string>>({});
  const [settings, setSettings] = useState<Record<string, string>>({});
  const spec = PLATFORMS[platform];
  const qc = useQueryClient();
  const m = useMutation({
    mutationFn: () => {
      const credentials = Object.fromEntries(spec.credentials.map(([k]) => [k, (creds[k] ?? '').trim()]).filter(([, v]) => v));
      const body: CreateConnection = {
        platform,
        name: name.trim() || undefined,
        settings: Object.fromEntries(spec.settings.map(([k]) => [k, (settings[k] ?? '').trim()]).filter(([, v]) => v)),
      };
      // An OAuth platform without a token is connected by the OAuth button afterwards.
      if (Object.keys(credentials).length > 0 || !spec.oauth) body.credentials = credentials;
      return connections.create(body);
    },
    onSuccess: (c) => {
      qc.invalidateQueries({ queryKey: keys.connections });
      onDone(c);
    },
  });
  const credError = fieldError(m.error, 'credentials');
  const shown = ['platform', 'name', 'credentials', ...spec.settings.map(([k]) => `settings.${k}`)];
  return (
    <section className="card" aria-labelledby="new-conn-h">
      <h2 id="new-conn-h">Connect a CRM</h2>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate();
        }}
      >
        <div className="form-row">
          <SelectField
            label="CRM"
            name="platform"
            value={platform}
            onChange={(e) => {
              setPlatform(e.target.value as Platform);
              m.reset();
            }}
            error={fieldError(m.error, 'platform')}
          >
            {(Object.keys(PLATFORMS) as Platform[]).map((p) => (
              <option key={p} value={p}>
                {PLATFORMS[p].label}
              </option>
            ))}
          </SelectField>
          <TextField label="Connection name" name="name" value={name} onChange={(e) => setName(e.target.value)} error={fieldError(m.error, 'name')} hint="Optional, e.g. “Main Keap app”." />
        </div>
        {spec.credentials.map(([k, label, hint], i) => (
          <TextField
            key={k}
            label={label}
            name={`credentials.${k}`}
            type="password"
            autoComplete="off"
            value={creds[k] ?? ''}
            onChange={(e) => setCreds({ ...creds, [k]: e.target.value })}
            hint={hint}
            error={i === spec.credentials.length - 1 ? credError : undefined}
          />
        ))}
        {spec.settings.map(([k, label, required, hint]) => (
          <TextField
            key={k}
            label={required ? label : `${label} (optional)`}
            name={`settings.${k}`}
            value={settings[k] ?? ''}
            onChange={(e) => setSettings({ ...settings, [k]: e.target.value })}
            hint={hint}
            error={fieldError(m.error, `settings.${k}`)}
            required={required}
          />
        ))}
        {spec.oauth && <p className="muted">{spec.label} can also be connected with OAuth: leave the token empty and use “Connect with OAuth” on the next step.</p>}
        <ProblemBanner error={m.error} fields={shown} />
        <div className="form-actions">
          <button className="btn btn-primary" type="submit" disabled={m.isPending}>
            {m.isPending ? 'Connecting…' : 'Save connection'}
          </button>
          <button className="btn" type="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}

/** GoHighLevel and HubSpot send every account's webhooks to one URL per app, set once by whoever runs mfh. */
function AppWebhookHint({ label }: { label: string }) {
  return (
    <p className="hint">
      {label} sends the webhooks of every connected account to this one app URL (set once in the app’s settings); mfh routes each event to the connections
      of the location or portal it names.
    </p>
  );
}

function CreatedConnection({ c, onDismiss }: { c: Connection; onDismiss: () => void }) {
  const spec = specFor(c.platform);
  const label = spec?.label ?? c.platform;
  return (
    <section className="card card-success" aria-labelledby="created-h">
      <h2 id="created-h">{c.name} saved</h2>
      {spec?.signs ? (
        <AppWebhookHint label={label} />
      ) : (
        <p>
          Copy its webhook URL now: it carries a secret token that is shown only this once. Paste it into {label}’s webhook settings so contact changes reach
          mfh.
        </p>
      )}
      <CopyField label={spec?.signs ? 'Webhook URL' : 'Webhook URL (with token)'} value={c.webhook_url} />
      {c.status === 'pending_authorization' && <OAuthButton id={c.connection_id} />}
      <button type="button" className="btn" onClick={onDismiss}>
        Done
      </button>
    </section>
  );
}

function OAuthButton({ id, primary = true }: { id: string; primary?: boolean }) {
  const m = useMutation({
    mutationFn: () => connections.oauthStart(id),
    onSuccess: (r) => window.location.assign(r.authorize_url),
  });
  return (
    <>
      <button type="button" className={primary ? 'btn btn-primary' : 'btn'} onClick={() => m.mutate()} disabled={m.isPending}>
        {m.isPending ? 'Opening…' : 'Connect with OAuth'}
      </button>
      <ProblemBanner error={m.error} title="OAuth could not start" />
    </>
  );
}

function ConnectionCard({ c }: { c: Connection }) {
  const qc = useQueryClient();
  const spec = specFor(c.platform);
  const [health, setHealth] = useState<Health | null>(null);
  const healthM = useMutation({
    mutationFn: () => connections.health(c.connection_id),
    onSuccess: (h) => {
      setHealth(h);
      qc.invalidateQueries({ queryKey: keys.connections });
    },
  });
  const remove = useMutation({
    mutationFn: () => connections.remove(c.connection_id),
    onSuccess: () => qc.invalidateQueries({ queryKey: keys.connections }),
  });
  const titleId = `conn-${c.connection_id}`;
  return (
    <section className="card" aria-labelledby={titleId}>
      <h2 id={titleId}>
        {c.name} <StatusBadge status={c.status} />
      </h2>
      <p className="muted">
        {spec?.label ?? c.platform} · <code>{c.connection_id}</code> · added {formatTime(c.created_at)}
      </p>
      <CopyField label="Webhook URL" value={c.webhook_url} />
      {spec?.signs ? (
        <AppWebhookHint label={spec.label} />
      ) : (
        <p className="hint">
          Add the <code>?token=…</code> shown when the connection was created; {spec?.label} does not sign its webhooks.
        </p>
      )}
      <div className="card-actions">
        {spec?.oauth && <OAuthButton id={c.connection_id} primary={c.status === 'pending_authorization'} />}
        <button type="button" className="btn" onClick={() => healthM.mutate()} disabled={healthM.isPending}>
          {healthM.isPending ? 'Checking…' : 'Check health'}
        </button>
        <ConfirmButton confirm="Remove this connection? Helpers using it will fail." onConfirm={() => remove.mutate()} disabled={remove.isPending}>
          Remove
        </ConfirmButton>
      </div>
      <ProblemBanner error={healthM.error ?? remove.error} />
      {health && (
        <div className={`banner ${health.ok ? 'banner-success' : 'banner-error'}`} role="status">
          {health.ok ? 'Healthy: the CRM answered.' : `Not healthy (${health.status.replace(/_/g, ' ')}): ${health.error?.message ?? 'no answer'}`}
        </div>
      )}
      <SyncPanel c={c} />
    </section>
  );
}

const running = (s: string | undefined) => s === 'requested' || s === 'running';

/** Starts a contact sync and follows its progress (GET …/sync every second while it runs). */
function SyncPanel({ c }: { c: Connection }) {
  const qc = useQueryClient();
  const key = ['connections', c.connection_id, 'sync'];
  const q = useQuery({
    queryKey: key,
    // `sync` may be absent as well as null before the first run; a query's data must not be undefined.
    queryFn: async () => (await connections.syncProgress(c.connection_id)).sync ?? null,
    refetchInterval: (query) => (running(query.state.data?.status) ? 1000 : false),
  });
  const start = useMutation({
    mutationFn: () => connections.sync(c.connection_id),
    onSuccess: (r) => qc.setQueryData(key, r.sync ?? null),
  });
  const s = q.data;
  const pct = s && s.total ? Math.min(100, Math.round((s.synced / s.total) * 100)) : undefined;
  return (
    <div className="sync">
      <div className="sync-head">
        <h3>Contact sync</h3>
        <button type="button" className="btn" onClick={() => start.mutate()} disabled={start.isPending || running(s?.status) || c.status !== 'active'}>
          {running(s?.status) ? 'Syncing…' : 'Sync now'}
        </button>
      </div>
      {c.status !== 'active' && <p className="hint">Authorise the connection before syncing.</p>}
      <ProblemBanner error={start.error ?? q.error} />
      {s ? (
        <>
          <label className="progress-label" htmlFor={`sync-${c.connection_id}`}>
            {s.status === 'done'
              ? `Synced ${formatNumber(s.synced)} contacts, finished ${formatTime(s.finished_at)}`
              : s.status === 'failed'
                ? `Failed after ${formatNumber(s.synced)} contacts: ${s.error ?? 'unknown error'}`
                : `${s.status === 'requested' ? 'Waiting to start' : 'Syncing'}: ${formatNumber(s.synced)}${s.total ? ` of ${formatNumber(s.total)}` : ''} contacts`}
          </label>
          <progress id={`sync-${c.connection_id}`} max={100} value={s.status === 'done' ? 100 : pct}>
            {pct ?? 0}%
          </progress>
        </>
      ) : (
        <p className="muted">Never synced.</p>
      )}
    </div>
  );
}
