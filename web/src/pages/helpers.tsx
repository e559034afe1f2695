// Helpers: the saved helpers, the catalog of helper types by category, the create/edit
// form generated from each type's JSON Schema, and a helper's page with its run URL,
// goal names, a dry run on a contact, pause/enable, copy and delete.
import { lazy, Suspense, useMemo, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { ApiError } from '../api/client';
import { executions, helpers } from '../api/endpoints';
import type { DryRun, FieldError, Helper, HelperType } from '../api/types';
import {
  ConfirmButton,
  CopyButton,
  CopyField,
  Loading,
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
  JsonBlock,
} from '../components/ui';
import type { ConfigFormHandle } from '../forms/ConfigForm';
import { cleanConfig, configObject, normalizeSchema, toErrorSchema } from '../forms/schema';
import { CATEGORY_LABELS, SANDBOX, connectionLabel, keys, useConnections, useHelperType, useHelperTypes, useHelpers } from '../queries';

// rjsf and its validator are most of the code: loaded with the first helper form.
const ConfigForm = lazy(() => import('../forms/ConfigForm').then((m) => ({ default: m.ConfigForm })));

export function HelpersPage() {
  const q = useHelpers();
  const conns = useConnections();
  return (
    <>
      <PageHeader title="Helpers">
        <Link className="btn btn-primary" to="/helpers/new">
          New helper
        </Link>
      </PageHeader>
      <QueryView q={q} what="helpers">
        {(page) =>
          page.items.length === 0 ? (
            <div className="empty">
              <p>No helpers yet. A helper does one job on a contact (tag it, score it, copy a field, …) each time your CRM calls its URL.</p>
              <Link className="btn btn-primary" to="/helpers/new">
                Create your first helper
              </Link>
            </div>
          ) : (
            <div className="table-wrap">
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Type</th>
                    <th scope="col" className="hide-narrow">
                      Connection
                    </th>
                    <th scope="col">Status</th>
                    <th scope="col" className="num">
                      Runs
                    </th>
                    <th scope="col" className="num hide-narrow">
                      Failed
                    </th>
                    <th scope="col" className="hide-narrow">
                      Last run
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((h) => (
                    <tr key={h.helper_id}>
                      <td>
                        <Link to={`/helpers/${h.helper_id}`}>{h.name}</Link>
                      </td>
                      <td>
                        <code>{h.helper}</code>
                      </td>
                      <td className="hide-narrow">{connectionLabel(h.connection_id, conns.data)}</td>
                      <td>
                        <StatusBadge status={h.enabled ? 'enabled' : 'paused'} />
                      </td>
                      <td className="num">{formatNumber(h.execution_count)}</td>
                      <td className="num hide-narrow">{formatNumber(h.failure_count)}</td>
                      <td className="hide-narrow">{formatTime(h.last_executed_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </QueryView>
    </>
  );
}

export function HelperTypesPage() {
  const q = useHelperTypes();
  const [params, setParams] = useSearchParams();
  const search = params.get('q') ?? '';
  const category = params.get('category') ?? '';
  const setParam = (k: string, v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    setParams(p, { replace: true });
  };
  return (
    <>
      <PageHeader title="New helper">
        <Link className="btn" to="/helpers">
          Back to helpers
        </Link>
      </PageHeader>
      <p className="muted">Pick what the helper should do. Each type has its own settings on the next page.</p>
      <QueryView q={q} what="helper types">
        {(types) => {
          const cats = [...new Set(types.map((t) => t.category))];
          const needle = search.trim().toLowerCase();
          const shown = types.filter(
            (t) =>
              (!category || t.category === category) &&
              (!needle || t.name.toLowerCase().includes(needle) || t.summary.toLowerCase().includes(needle)),
          );
          return (
            <>
              <div className="filters">
                <TextField
                  label="Search helper types"
                  type="search"
                  placeholder="tag, score, date, email…"
                  value={search}
                  onChange={(e) => setParam('q', e.target.value)}
                />
                <SelectField label="Category" value={category} onChange={(e) => setParam('category', e.target.value)}>
                  <option value="">All categories ({types.length})</option>
                  {cats.map((c) => (
                    <option key={c} value={c}>
                      {CATEGORY_LABELS[c] ?? c} ({types.filter((t) => t.category === c).length})
                    </option>
                  ))}
                </SelectField>
              </div>
              <p className="muted" aria-live="polite">
                {shown.length} of {types.length} helper types
              </p>
              {cats
                .filter((c) => shown.some((t) => t.category === c))
                .map((c) => (
                  <section key={c} className="type-group" aria-labelledby={`cat-${c}`}>
                    <h2 id={`cat-${c}`}>{CATEGORY_LABELS[c] ?? c}</h2>
                    <ul className="type-grid">
                      {shown
                        .filter((t) => t.category === c)
                        .map((t) => (
                          <li key={t.name}>
                            <Link className="type-card" to={`/helpers/new/${t.name}`}>
                              <span className="type-name">{t.name}</span>
                              <span className="type-summary">{t.summary}</span>
                              {t.requires.length > 0 && <span className="type-requires">Needs: {t.requires.join(', ')}</span>}
                            </Link>
                          </li>
                        ))}
                    </ul>
                  </section>
                ))}
              {shown.length === 0 && <p>No helper type matches “{search}”.</p>}
            </>
          );
        }}
      </QueryView>
    </>
  );
}

/** The form of a helper: name, connection and the generated config form. */
function HelperForm({
  type,
  initial,
  submitLabel,
  onSubmit,
  pending,
  error,
}: {
  type: HelperType;
  initial: { name: string; connection_id: string; config: Record<string, unknown> };
  submitLabel: string;
  onSubmit: (v: { name: string; connection_id: string; config: Record<string, unknown> }) => void;
  pending: boolean;
  error: unknown;
}) {
  const [name, setName] = useState(initial.name);
  const [connectionId, setConnectionId] = useState(initial.connection_id);
  const [config, setConfig] = useState<Record<string, unknown>>(initial.config);
  const conns = useConnections();
  const formRef = useRef<ConfigFormHandle>(null);
  const schema = useMemo(() => normalizeSchema(type.config_schema), [type]);
  const mapped = useMemo(
    () => (error instanceof ApiError ? toErrorSchema(error.errors, 'config.', schema) : { schema: undefined, unplaced: [] as FieldError[] }),
    [error, schema],
  );
  const placed = error instanceof ApiError ? error.errors.filter((e) => !mapped.unplaced.includes(e) && e.field.startsWith('config.')).map((e) => e.field) : [];
  return (
    <form
      className="helper-form"
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        if (formRef.current && !formRef.current.validate()) return;
        onSubmit({ name: name.trim(), connection_id: connectionId, config: cleanConfig(config) as Record<string, unknown> });
      }}
    >
      <div className="form-row">
        <TextField label="Helper name" name="name" value={name} onChange={(e) => setName(e.target.value)} error={fieldError(error, 'name')} hint="A name you will recognise in lists, e.g. “Tag VIP buyers”." required />
        <SelectField
          label="CRM connection"
          name="connection_id"
          value={connectionId}
          onChange={(e) => setConnectionId(e.target.value)}
          error={fieldError(error, 'connection_id')}
          hint={
            <>
              The CRM whose contacts it works on. <Link to="/connections">Connect a CRM</Link>
            </>
          }
        >
          <option value={SANDBOX}>{connectionLabel(SANDBOX, undefined)}</option>
          {conns.data?.map((c) => (
            <option key={c.connection_id} value={c.connection_id}>
              {c.name} ({c.platform}){c.status !== 'active' ? ` — ${c.status.replace(/_/g, ' ')}` : ''}
            </option>
          ))}
        </SelectField>
      </div>
      <fieldset className="config-fieldset">
        <legend>
          Settings of <code>{type.name}</code>
        </legend>
        <p className="muted">{type.summary}</p>
        <p>
          <button type="button" className="link" onClick={() => setConfig(configObject(type.example_config))}>
            Fill in the example settings
          </button>
        </p>
        <Suspense fallback={<Loading what="Loading the settings form" />}>
          <ConfigForm ref={formRef} type={type} value={config} onChange={setConfig} extraErrors={mapped.schema} disabled={pending} connectionId={connectionId} />
        </Suspense>
      </fieldset>
      <ProblemBanner error={error} fields={['name', 'connection_id', ...placed]} />
      <div className="form-actions">
        <button className="btn btn-primary" type="submit" disabled={pending}>
          {pending ? 'Saving…' : submitLabel}
        </button>
      </div>
    </form>
  );
}

export function NewHelperPage() {
  const { type: typeName } = useParams();
  const types = useHelperTypes();
  const type = useHelperType(typeName);
  const nav = useNavigate();
  const qc = useQueryClient();
  const m = useMutation({
    mutationFn: helpers.create,
    onSuccess: (h) => {
      qc.invalidateQueries({ queryKey: keys.helpers });
      qc.setQueryData(keys.helper(h.helper_id), h);
      nav(`/helpers/${h.helper_id}`, { state: { created: true } });
    },
  });
  if (types.isPending) return <Loading what="Loading helper types" />;
  if (types.isError) return <ProblemBanner error={types.error} />;
  if (!type)
    return (
      <>
        <PageHeader title="Unknown helper type" />
        <p>
          There is no helper type “{typeName}”. <Link to="/helpers/new">Browse the helper types</Link>
        </p>
      </>
    );
  return (
    <>
      <PageHeader title={`New ${type.name} helper`}>
        <Link className="btn" to="/helpers/new">
          Choose another type
        </Link>
      </PageHeader>
      <HelperForm
        type={type}
        initial={{ name: '', connection_id: SANDBOX, config: {} }}
        submitLabel="Create helper"
        pending={m.isPending}
        error={m.error}
        onSubmit={(v) => m.mutate({ ...v, helper: type.name })}
      />
    </>
  );
}

export function HelperDetailPage() {
  const { id = '' } = useParams();
  const q = useQuery({ queryKey: keys.helper(id), queryFn: () => helpers.get(id) });
  return (
    <QueryView q={q} what="the helper">
      {(h) => <HelperDetail h={h} />}
    </QueryView>
  );
}

function HelperDetail({ h }: { h: Helper }) {
  const qc = useQueryClient();
  const nav = useNavigate();
  const type = useHelperType(h.helper);
  const conns = useConnections();
  const [editing, setEditing] = useState(false);
  const refresh = (updated?: Helper) => {
    if (updated) qc.setQueryData(keys.helper(h.helper_id), { ...updated, last_failures: h.last_failures });
    qc.invalidateQueries({ queryKey: keys.helpers });
  };
  const toggle = useMutation({ mutationFn: () => helpers.patch(h.helper_id, { enabled: !h.enabled }), onSuccess: refresh });
  const copy = useMutation({
    mutationFn: () => helpers.copy(h.helper_id),
    onSuccess: (c) => {
      qc.invalidateQueries({ queryKey: keys.helpers });
      qc.setQueryData(keys.helper(c.helper_id), c);
      nav(`/helpers/${c.helper_id}`);
    },
  });
  const rotate = useMutation({ mutationFn: () => helpers.rotateUrl(h.helper_id), onSuccess: refresh });
  const remove = useMutation({
    mutationFn: () => helpers.remove(h.helper_id),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: keys.helpers });
      nav('/helpers');
    },
  });
  const save = useMutation({
    mutationFn: (v: { name: string; connection_id: string; config: Record<string, unknown> }) => helpers.patch(h.helper_id, v),
    onSuccess: (u) => {
      refresh(u);
      setEditing(false);
    },
  });
  const actionError = toggle.error ?? copy.error ?? rotate.error ?? remove.error;
  return (
    <>
      <PageHeader title={h.name}>
        <StatusBadge status={h.enabled ? 'enabled' : 'paused'} />
        <button type="button" className="btn" onClick={() => toggle.mutate()} disabled={toggle.isPending}>
          {h.enabled ? 'Pause' : 'Enable'}
        </button>
        <button type="button" className="btn" onClick={() => copy.mutate()} disabled={copy.isPending}>
          Copy
        </button>
        <ConfirmButton confirm="Delete this helper? Its URL stops working." onConfirm={() => remove.mutate()} disabled={remove.isPending}>
          Delete
        </ConfirmButton>
      </PageHeader>
      <ProblemBanner error={actionError} />
      <p className="muted">
        <code>{h.helper}</code> on {connectionLabel(h.connection_id, conns.data)} · {formatNumber(h.execution_count)} runs,{' '}
        {formatNumber(h.failure_count)} failed · last run {formatTime(h.last_executed_at)} ·{' '}
        <Link to={`/executions?helper_id=${h.helper_id}`}>See its executions</Link>
      </p>
      {!h.enabled && <Notice kind="warning">Paused: its URL answers 423 and nothing runs until you enable it.</Notice>}

      <section className="card" aria-labelledby="run-url-h">
        <h2 id="run-url-h">Run URL</h2>
        {h.run_url ? (
          <>
            <CopyField label="Run URL" value={h.run_url} />
            <details className="recipe">
              <summary>How to call it from Keap Campaign Builder</summary>
              <ol>
                <li>In the campaign sequence, add a <strong>Send HTTP Post</strong> step.</li>
                <li>Paste the URL above as the <strong>POST URL</strong>.</li>
                <li>
                  Add the name/value pair <code>contactId</code> = <code>~Contact.Id~</code>.
                </li>
                <li>Save, mark the sequence Ready and publish.</li>
              </ol>
              <p className="muted">ActiveCampaign posts contact[id], GoHighLevel and Ontraport contact_id, HubSpot objectId: the same URL reads them all.</p>
            </details>
          </>
        ) : (
          <p className="muted">This URL was shown once when the helper was created. Make a new one to see it again.</p>
        )}
        <ConfirmButton className="btn" confirm="The current URL stops working at once. Continue?" onConfirm={() => rotate.mutate()} disabled={rotate.isPending}>
          Make a new URL
        </ConfirmButton>
      </section>

      <section className="card" aria-labelledby="goals-h">
        <h2 id="goals-h">Goal names</h2>
        {h.goals.length === 0 ? (
          <p className="muted">This helper fires no API goals.</p>
        ) : (
          <>
            <p className="muted">Add an API goal in Campaign Builder with integration “mfh” and one of these call names.</p>
            <ul className="goal-list">
              {h.goals.map((g) => (
                <li key={g}>
                  <code>{g}</code> <CopyButton text={g} name={`Copy ${g}`} />
                </li>
              ))}
            </ul>
          </>
        )}
      </section>

      <DryRunCard h={h} />

      <section className="card" aria-labelledby="settings-h">
        <h2 id="settings-h">Settings</h2>
        {editing && type ? (
          <HelperForm
            type={type}
            initial={{ name: h.name, connection_id: h.connection_id, config: configObject(h.config) }}
            submitLabel="Save changes"
            pending={save.isPending}
            error={save.error}
            onSubmit={(v) => save.mutate(v)}
          />
        ) : (
          <>
            <JsonBlock value={h.config} label="Current settings" />
            <button type="button" className="btn" onClick={() => setEditing(true)} disabled={!type}>
              Edit settings
            </button>
          </>
        )}
        {editing && (
          <button type="button" className="btn btn-link" onClick={() => setEditing(false)}>
            Cancel editing
          </button>
        )}
      </section>

      {h.last_failures && h.last_failures.length > 0 && (
        <section className="card" aria-labelledby="failures-h">
          <h2 id="failures-h">Recent failures</h2>
          <ul className="failure-list">
            {h.last_failures.map((f) => (
              <li key={f.execution_id}>
                <Link to={`/executions/${f.execution_id}`}>{formatTime(f.requested_at)}</Link> · contact {f.contact_id} ·{' '}
                <strong>{f.error_kind}</strong> {f.error_message}
              </li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}

/** Runs the helper's saved settings on one contact without changing anything. */
function DryRunCard({ h }: { h: Helper }) {
  const [contactId, setContactId] = useState('');
  const m = useMutation<DryRun, unknown, string>({
    mutationFn: (contact_id) => executions.dryRun({ helper: h.helper, config: h.config, connection_id: h.connection_id, contact_id }),
  });
  return (
    <section className="card" aria-labelledby="dry-run-h">
      <h2 id="dry-run-h">Try it on a contact</h2>
      <p className="muted">A dry run: shows what the helper would change, without changing the contact.</p>
      <form
        className="inline-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate(contactId.trim());
        }}
      >
        <TextField
          label="Contact id"
          name="contact_id"
          value={contactId}
          onChange={(e) => setContactId(e.target.value)}
          error={fieldError(m.error, 'contact_id')}
          hint={h.connection_id === SANDBOX ? 'The sandbox has contacts 1 to 7.' : 'The contact’s id in your CRM.'}
        />
        <button className="btn btn-primary" type="submit" disabled={m.isPending || !contactId.trim()}>
          {m.isPending ? 'Running…' : 'Dry run'}
        </button>
      </form>
      <ProblemBanner error={m.error} fields={['contact_id']} />
      {m.data && (
        <div className="dry-run-result" aria-live="polite">
          <p>
            <StatusBadge status={m.data.success ? 'succeeded' : 'failed'} /> {m.data.message}
          </p>
          <h3>Changes it would make</h3>
          {m.data.changes.length === 0 ? (
            <p className="muted">No changes.</p>
          ) : (
            <ul className="change-list">
              {m.data.changes.map((c, i) => (
                <li key={i}>
                  <strong>{c.kind.replace(/_/g, ' ')}</strong>{' '}
                  {Object.entries(c)
                    .filter(([k]) => k !== 'kind')
                    .map(([k, v]) => (
                      <span key={k} className="kv">
                        {k.replace(/_/g, ' ')} <code>{typeof v === 'string' ? v : JSON.stringify(v)}</code>
                      </span>
                    ))}
                </li>
              ))}
            </ul>
          )}
          <h3>Output</h3>
          <JsonBlock value={m.data.output} label="Output" />
          {m.data.follow_ups.length > 0 && (
            <>
              <h3>Follow-up executions</h3>
              <JsonBlock value={m.data.follow_ups} label="Follow-ups" />
            </>
          )}
        </div>
      )}
    </section>
  );
}
