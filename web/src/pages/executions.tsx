// Executions: the history with filters (helper, contact, status, dates) kept in the URL,
// and one execution's timings, output, changes, error and a retry of a failure.
import { useState } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { executions } from '../api/endpoints';
import type { Execution, ExecutionFilter, ExecutionStatus } from '../api/types';
import {
  JsonBlock,
  Loading,
  PageHeader,
  ProblemBanner,
  QueryView,
  SelectField,
  StatusBadge,
  TextField,
  formatDuration,
  formatTime,
} from '../components/ui';
import { connectionLabel, keys, useConnections, useHelperTypes, useHelpers } from '../queries';

const STATUSES: ExecutionStatus[] = ['queued', 'throttled', 'succeeded', 'failed'];
const pending = (s: string) => s === 'queued' || s === 'throttled';

/** A date input's day as the instant its local midnight starts; `endOfDay` the next one. */
function dayToInstant(day: string, endOfDay: boolean): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (endOfDay) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

export function ExecutionsPage() {
  const [params, setParams] = useSearchParams();
  const helpersQ = useHelpers();
  const typesQ = useHelperTypes();
  const f = {
    helper_id: params.get('helper_id') ?? '',
    helper: params.get('helper') ?? '',
    contact_id: params.get('contact_id') ?? '',
    status: (params.get('status') ?? '') as ExecutionStatus | '',
    since: params.get('since') ?? '',
    until: params.get('until') ?? '',
  };
  const [contactDraft, setContactDraft] = useState(f.contact_id);
  const set = (k: string, v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    setParams(p, { replace: true });
  };
  const filter: ExecutionFilter = {
    helper_id: f.helper_id || undefined,
    helper: f.helper || undefined,
    contact_id: f.contact_id || undefined,
    status: f.status || undefined,
    since: dayToInstant(f.since, false),
    until: dayToInstant(f.until, true),
    limit: 25,
  };
  const q = useInfiniteQuery({
    queryKey: [...keys.executions, 'list', filter],
    queryFn: ({ pageParam }) => executions.list({ ...filter, cursor: pageParam }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: 3000,
  });
  const items = q.data?.pages.flatMap((p) => p.items) ?? [];
  const helperName = (id?: string | null) => (id ? helpersQ.data?.items.find((h) => h.helper_id === id)?.name ?? id : null);
  const anyFilter = Object.values(f).some(Boolean);

  return (
    <>
      <PageHeader title="Executions" />
      <form
        className="filters"
        role="search"
        aria-label="Filter executions"
        onSubmit={(e) => {
          e.preventDefault();
          set('contact_id', contactDraft.trim());
        }}
      >
        <SelectField label="Helper" value={f.helper_id} onChange={(e) => set('helper_id', e.target.value)}>
          <option value="">All helpers</option>
          {helpersQ.data?.items.map((h) => (
            <option key={h.helper_id} value={h.helper_id}>
              {h.name}
            </option>
          ))}
        </SelectField>
        <SelectField label="Helper type" value={f.helper} onChange={(e) => set('helper', e.target.value)}>
          <option value="">All types</option>
          {typesQ.data?.map((t) => (
            <option key={t.name} value={t.name}>
              {t.name}
            </option>
          ))}
        </SelectField>
        <TextField
          label="Contact id"
          name="contact_id"
          value={contactDraft}
          onChange={(e) => setContactDraft(e.target.value)}
          onBlur={() => set('contact_id', contactDraft.trim())}
        />
        <SelectField label="Status" value={f.status} onChange={(e) => set('status', e.target.value)}>
          <option value="">Any status</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </SelectField>
        <TextField label="From" type="date" value={f.since} onChange={(e) => set('since', e.target.value)} />
        <TextField label="To" type="date" value={f.until} onChange={(e) => set('until', e.target.value)} />
        <div className="filter-actions">
          <button type="submit" className="btn">
            Apply
          </button>
          {anyFilter && (
            <button
              type="button"
              className="btn btn-link"
              onClick={() => {
                setContactDraft('');
                setParams(new URLSearchParams(), { replace: true });
              }}
            >
              Clear filters
            </button>
          )}
        </div>
      </form>
      {q.isPending ? (
        <Loading what="Loading executions" />
      ) : q.isError ? (
        <ProblemBanner error={q.error} title="Could not load executions" />
      ) : items.length === 0 ? (
        <div className="empty">
          <p>{anyFilter ? 'No execution matches these filters.' : 'No executions yet. Call a helper’s run URL, or try one from its page.'}</p>
        </div>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table" aria-label="Executions">
              <thead>
                <tr>
                  <th scope="col">Requested</th>
                  <th scope="col">Helper</th>
                  <th scope="col">Contact</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num hide-narrow">
                    Duration
                  </th>
                  <th scope="col" className="hide-narrow">
                    Source
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((x) => (
                  <tr key={x.execution_id}>
                    <td>
                      <Link to={`/executions/${x.execution_id}`}>{formatTime(x.requested_at)}</Link>
                    </td>
                    <td>
                      {helperName(x.helper_id) ?? <code>{x.helper}</code>}
                      {x.helper_id && (
                        <div className="muted small">
                          <code>{x.helper}</code>
                        </div>
                      )}
                    </td>
                    <td>{x.contact_id}</td>
                    <td>
                      <StatusBadge status={x.status} />
                    </td>
                    <td className="num hide-narrow">{formatDuration(x.duration_ms)}</td>
                    <td className="hide-narrow">{x.source.replace(/_/g, ' ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {q.hasNextPage && (
            <button type="button" className="btn" onClick={() => q.fetchNextPage()} disabled={q.isFetchingNextPage}>
              {q.isFetchingNextPage ? 'Loading…' : 'Load more'}
            </button>
          )}
        </>
      )}
    </>
  );
}

export function ExecutionDetailPage() {
  const { id = '' } = useParams();
  const q = useQuery({
    queryKey: keys.execution(id),
    queryFn: () => executions.get(id),
    refetchInterval: (query) => (query.state.data && pending(query.state.data.status) ? 1500 : false),
  });
  return (
    <QueryView q={q} what="the execution">
      {(x) => <ExecutionDetail x={x} />}
    </QueryView>
  );
}

function ExecutionDetail({ x }: { x: Execution }) {
  const helpersQ = useHelpers();
  const conns = useConnections();
  const qc = useQueryClient();
  const nav = useNavigate();
  const retry = useMutation({
    mutationFn: () => executions.retry(x.execution_id),
    onSuccess: (a) => {
      qc.invalidateQueries({ queryKey: keys.executions });
      nav(`/executions/${a.execution_id}`);
    },
  });
  const saved = x.helper_id ? helpersQ.data?.items.find((h) => h.helper_id === x.helper_id) : undefined;
  // Optional as well as nullable in the API document: absent and null both mean "not yet".
  const started = x.started_at ?? null;
  const completed = x.completed_at ?? null;
  const wait = started !== null ? started - x.requested_at : null;
  const run = started !== null && completed !== null ? completed - started : null;
  return (
    <>
      <PageHeader title="Execution">
        <StatusBadge status={x.status} />
        {x.status === 'failed' && x.helper_id && (
          <button type="button" className="btn btn-primary" onClick={() => retry.mutate()} disabled={retry.isPending}>
            {retry.isPending ? 'Retrying…' : 'Retry'}
          </button>
        )}
        <Link className="btn" to="/executions">
          All executions
        </Link>
      </PageHeader>
      <ProblemBanner error={retry.error} title="Retry refused" />
      {pending(x.status) && <Loading what={x.status === 'throttled' ? 'Waiting out the CRM’s rate limit' : 'Queued; this page updates when it finishes'} />}
      <dl className="facts">
        <dt>Helper</dt>
        <dd>
          {x.helper_id ? <Link to={`/helpers/${x.helper_id}`}>{saved?.name ?? x.helper_id}</Link> : 'Inline config'} (<code>{x.helper}</code>)
        </dd>
        <dt>Contact</dt>
        <dd>
          <Link to={`/executions?contact_id=${encodeURIComponent(x.contact_id)}`}>{x.contact_id}</Link> on {connectionLabel(x.connection_id, conns.data)}
        </dd>
        <dt>Source</dt>
        <dd>{x.source.replace(/_/g, ' ')}</dd>
        {x.retry_of && (
          <>
            <dt>Retry of</dt>
            <dd>
              <Link to={`/executions/${x.retry_of}`}>{x.retry_of}</Link>
            </dd>
          </>
        )}
        <dt>Execution id</dt>
        <dd>
          <code>{x.execution_id}</code>
        </dd>
        {x.message && (
          <>
            <dt>Message</dt>
            <dd>{x.message}</dd>
          </>
        )}
      </dl>

      <section className="card" aria-labelledby="timings-h">
        <h2 id="timings-h">Timings</h2>
        <dl className="facts">
          <dt>Requested</dt>
          <dd>{formatTime(x.requested_at)}</dd>
          <dt>Started</dt>
          <dd>
            {formatTime(x.started_at)} {wait !== null && <span className="muted">(waited {formatDuration(wait)})</span>}
          </dd>
          <dt>Completed</dt>
          <dd>
            {formatTime(x.completed_at)} {run !== null && <span className="muted">(ran {formatDuration(run)})</span>}
          </dd>
          <dt>Total</dt>
          <dd>{formatDuration(x.duration_ms)}</dd>
          <dt>Recorded</dt>
          <dd>{formatTime(x.written_at)}</dd>
        </dl>
      </section>

      {(x.error_kind || x.error_message) && (
        <section className="card card-error" aria-labelledby="error-h">
          <h2 id="error-h">Error</h2>
          <p>
            <strong>{x.error_kind}</strong>
          </p>
          <p>{x.error_message}</p>
        </section>
      )}

      <section className="card" aria-labelledby="changes-h">
        <h2 id="changes-h">Changes</h2>
        {x.changes.length === 0 ? (
          <p className="muted">{pending(x.status) ? 'Not finished yet.' : 'No changes were made to the contact.'}</p>
        ) : (
          <div className="table-wrap">
            <table className="table" aria-label="Changes">
              <thead>
                <tr>
                  <th scope="col">Change</th>
                  <th scope="col">Target</th>
                  <th scope="col">Before</th>
                  <th scope="col">After</th>
                </tr>
              </thead>
              <tbody>
                {x.changes.map((c, i) => (
                  <tr key={i}>
                    <td>{c.kind.replace(/_/g, ' ')}</td>
                    <td>
                      <code>{c.target}</code>
                    </td>
                    <td>{c.old_value ?? '—'}</td>
                    <td>{c.new_value ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section className="card" aria-labelledby="output-h">
        <h2 id="output-h">Output</h2>
        <JsonBlock value={x.output} label="Output" />
      </section>

      {x.input !== null && x.input !== undefined && (
        <section className="card" aria-labelledby="input-h">
          <h2 id="input-h">Input</h2>
          <JsonBlock value={x.input} label="Input" />
        </section>
      )}
    </>
  );
}
