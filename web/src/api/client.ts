// The one way the dashboard talks to the API: same origin, the session cookie, the CSRF
// header on every request that changes something, and problem+json bodies turned into
// an `ApiError` that pages show next to what caused it.
import type { FieldError, Problem } from './types';

/** An API answer that was not a success, with the problem body's parts. */
export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[];
  /** Seconds, from a 429's `Retry-After`. */
  readonly retryAfter: number | null;

  constructor(status: number, problem: Partial<Problem>, retryAfter: number | null = null) {
    const detail = problem.detail || problem.title || `HTTP ${status}`;
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.title = problem.title || `HTTP ${status}`;
    this.detail = detail;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.retryAfter = retryAfter;
  }

  /** The message for `field` (also matches nested fields such as `config.x` under `config`). */
  fieldMessage(field: string): string | undefined {
    return this.errors.find((e) => e.field === field)?.message;
  }
}

let csrfToken: string | null = null;

/** Remembers the CSRF token from a sign-in or `/v1/auth/me` answer. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

function csrfFromCookie(): string | null {
  const m = document.cookie.match(/(?:^|;\s*)mfh_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : null;
}

/** Listeners told when an API call answers 401 (the session ended). */
const unauthorizedListeners = new Set<() => void>();
export function onUnauthorized(f: () => void): () => void {
  unauthorizedListeners.add(f);
  return () => unauthorizedListeners.delete(f);
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined | null>;
  signal?: AbortSignal;
  /** Do not tell the unauthorized listeners about a 401 (sign-in, `/me`). */
  quiet401?: boolean;
}

/** Calls `path` (e.g. `/v1/helpers`) and returns the parsed JSON, or `undefined` for 204. */
export async function api<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const method = opts.method ?? 'GET';
  const headers: Record<string, string> = { Accept: 'application/json' };
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  if (method !== 'GET') {
    const token = csrfFromCookie() ?? csrfToken;
    if (token) headers['X-CSRF-Token'] = token;
  }
  let url = path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const s = q.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  let resp: Response;
  try {
    resp = await fetch(url, { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, { title: 'Network error', detail: 'The server could not be reached. Check your connection and try again.' });
  }
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!resp.ok) {
    const problem: Partial<Problem> =
      parsed && typeof parsed === 'object' ? (parsed as Partial<Problem>) : { detail: text.slice(0, 300) || resp.statusText };
    const ra = resp.headers.get('Retry-After');
    const err = new ApiError(resp.status, problem, ra && /^\d+$/.test(ra) ? Number(ra) : null);
    if (resp.status === 401 && !opts.quiet401) unauthorizedListeners.forEach((f) => f());
    throw err;
  }
  return parsed as T;
}

/** A readable sentence for any error a page catches. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 429 && e.retryAfter) return `${e.detail} (try again in ${e.retryAfter} s)`;
    return e.detail;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}
