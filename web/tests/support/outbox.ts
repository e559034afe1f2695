// Reads the emails the embedded stack writes to its outbox (one .eml file each): MIME
// headers (folded, RFC 2047 encoded words), multipart bodies, quoted-printable and
// base64 parts, and the dashboard links in them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface Email {
  file: string;
  mtimeMs: number;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Every http(s) URL in the text and HTML parts, decoded (&amp; → &). */
  links: string[];
}

function splitHeaderBody(raw: string): [string, string] {
  const m = raw.match(/\r?\n\r?\n/);
  if (!m || m.index === undefined) return [raw, ''];
  return [raw.slice(0, m.index), raw.slice(m.index + m[0].length)];
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  // Unfold: a line starting with whitespace continues the previous one.
  const unfolded = block.replace(/\r?\n[ \t]+/g, ' ');
  for (const line of unfolded.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return headers;
}

function decodeQuotedPrintable(s: string): Buffer {
  const soft = s.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/** RFC 2047 encoded words in a header: =?utf-8?q?…?= and =?utf-8?b?…?=. */
export function decodeWords(v: string): string {
  return v
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([qQbB])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, text: string) => {
      if (enc.toLowerCase() === 'b') return Buffer.from(text, 'base64').toString('utf8');
      return decodeQuotedPrintable(text.replace(/_/g, ' ')).toString('utf8');
    });
}

function param(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  const m = header.match(new RegExp(`${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i'));
  return m ? (m[1] ?? m[2]) : undefined;
}

interface Part {
  type: string;
  body: string;
}

function parts(headers: Map<string, string>, body: string): Part[] {
  const type = (headers.get('content-type') ?? 'text/plain').toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = param(headers.get('content-type'), 'boundary');
    if (!boundary) return [];
    const out: Part[] = [];
    const chunks = body.split(`--${boundary}`);
    for (const chunk of chunks.slice(1)) {
      if (chunk.startsWith('--')) break;
      const [h, b] = splitHeaderBody(chunk.replace(/^\r?\n/, ''));
      out.push(...parts(parseHeaders(h), b));
    }
    return out;
  }
  const enc = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  let decoded: string;
  if (enc === 'quoted-printable') decoded = decodeQuotedPrintable(body).toString('utf8');
  else if (enc === 'base64') decoded = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  else decoded = body;
  return [{ type: type.split(';')[0].trim(), body: decoded }];
}

export function parseEmail(raw: string, file = '', mtimeMs = 0): Email {
  const [h, b] = splitHeaderBody(raw);
  const headers = parseHeaders(h);
  const ps = parts(headers, b);
  const text = ps.filter((p) => p.type === 'text/plain').map((p) => p.body).join('\n');
  const html = ps.filter((p) => p.type === 'text/html').map((p) => p.body).join('\n');
  const links = new Set<string>();
  for (const m of (text + '\n' + html).matchAll(/https?:\/\/[^\s"'<>)\]]+/g)) links.add(m[0].replace(/&amp;/g, '&').replace(/[.,;]+$/, ''));
  return {
    file,
    mtimeMs,
    to: decodeWords(headers.get('to') ?? ''),
    subject: decodeWords(headers.get('subject') ?? ''),
    text,
    html,
    links: [...links],
  };
}

export function readOutbox(dir: string): Email[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.eml'));
  } catch {
    return [];
  }
  return names
    .map((n) => {
      const file = join(dir, n);
      return parseEmail(readFileSync(file, 'utf8'), file, statSync(file).mtimeMs);
    })
    .sort((a, b) => a.mtimeMs - b.mtimeMs);
}

/**
 * Waits for an email to `to` with a link to the dashboard path `path` (e.g. "/verify")
 * and returns that link; with `after`, only emails written after that time count.
 */
export async function waitForLink(opts: { to: string; path: string; after?: number; timeoutMs?: number }): Promise<{ link: string; email: Email }> {
  const dir = process.env.OUTBOX_DIR;
  if (!dir) throw new Error('OUTBOX_DIR is not set (scripts/browser-test sets it)');
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  const to = opts.to.toLowerCase();
  let seen: Email[] = [];
  while (Date.now() < deadline) {
    seen = readOutbox(dir);
    const found = seen
      .filter((e) => e.to.toLowerCase().includes(to) && (opts.after === undefined || e.mtimeMs >= opts.after))
      .reverse()
      .map((e) => ({ email: e, link: e.links.find((l) => new URL(l).pathname === opts.path && new URL(l).searchParams.has('token')) }))
      .find((x) => x.link);
    if (found?.link) return { link: found.link, email: found.email };
    await new Promise((r) => setTimeout(r, 300));
  }
  const summary = seen.map((e) => `  ${e.to} | ${e.subject} | links: ${e.links.join(' ')}`).join('\n');
  throw new Error(`no email to ${opts.to} with a ${opts.path}?token= link in ${dir} within ${opts.timeoutMs ?? 30_000} ms; outbox:\n${summary || '  (empty)'}`);
}
