// Turns a helper type's config JSON Schema (draft 2020-12, derived from the Rust config
// by schemars) into one @rjsf/core renders well, without changing what it accepts:
//   - `$ref`s into `$defs` are inlined (siblings such as `description` win), so rjsf and
//     the draft-07 validator need no 2020-12 support;
//   - `anyOf: [X, {type: "null"}]` (an Option<X>) becomes X: an empty field is `null`/absent;
//   - enum-like `oneOf` consts and object variants get titles (their description or
//     value), so selects read "apply: Apply the tags." instead of "Option 1";
//   - Rust integer formats (`uint32`, …) become `minimum: 0` and drop the format;
//   - `default: null` is dropped so an untouched optional field is left out;
//   - every property gets a human title from its key.
// Server-side validation stays authoritative; its field errors (`config.tag_ids`) are
// mapped back onto the form by `toErrorSchema`.
import type { ErrorSchema, RJSFSchema } from '@rjsf/utils';
import type { FieldError } from '../api/types';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** "tag_ids" → "Tag ids"; "save_to_field" → "Save to field". */
export function humanize(key: string): string {
  const s = key.replace(/_/g, ' ').replace(/\s+/g, ' ').trim();
  return s ? s[0].toUpperCase() + s.slice(1) : key;
}

function plain(text: unknown): string {
  return typeof text === 'string' ? text.replace(/`/g, '') : '';
}

const UNSIGNED = /^uint(8|16|32|64)?$/;
const NUMERIC_FORMATS = /^(u?int(8|16|32|64)?|double|float)$/;

/** `schema` is a helper type's `config_schema`: any JSON to the API document, in practice an
 * object (anything else is treated as the empty schema, which accepts any config). */
export function normalizeSchema(schema: unknown): RJSFSchema {
  const root: Json = isObj(schema) ? schema : {};
  const defs: Json = isObj(root.$defs) ? root.$defs : isObj(root.definitions) ? (root.definitions as Json) : {};

  function deref(ref: string, stack: string[]): Json | null {
    const m = ref.match(/^#\/(?:\$defs|definitions)\/(.+)$/);
    if (!m) return null;
    const name = decodeURIComponent(m[1]);
    if (stack.includes(name)) return null; // recursive: leave the $ref to rjsf
    const target = defs[name];
    return isObj(target) ? walk(target, [...stack, name]) : null;
  }

  function walk(node: Json, stack: string[]): Json {
    let out: Json = { ...node };
    if (typeof out.$ref === 'string') {
      const target = deref(out.$ref, stack);
      if (target) {
        const { $ref: _ignored, ...siblings } = out;
        out = { ...target, ...siblings };
      }
    }
    for (const key of ['anyOf', 'oneOf'] as const) {
      const alts = out[key];
      if (!Array.isArray(alts)) continue;
      const walked = alts.map((a) => (isObj(a) ? walk(a, stack) : a)) as Json[];
      const nonNull = walked.filter((a) => !(isObj(a) && a.type === 'null' && Object.keys(a).length <= 2));
      if (nonNull.length === 1 && walked.length === 2) {
        // Option<X>: X, with this node's own description, default and title on top.
        const { [key]: _alts, ...rest } = out;
        out = { ...nonNull[0], ...rest };
        if (isObj(nonNull[0]) && nonNull[0].description && !rest.description) out.description = nonNull[0].description;
        continue;
      }
      out[key] = walked.map((a, i) => titled(a, i));
      // An enum written as consts: rjsf draws a select only when the field has a type.
      const types = new Set(walked.map((a) => (isObj(a) && a.const !== undefined ? (a.type ?? typeof a.const) : null)));
      if (out.type === undefined && types.size === 1 && !types.has(null)) out.type = [...types][0];
    }
    if (Array.isArray(out.allOf)) out.allOf = (out.allOf as unknown[]).map((a) => (isObj(a) ? walk(a, stack) : a));
    if (isObj(out.properties)) {
      const props: Json = {};
      for (const [k, v] of Object.entries(out.properties)) {
        if (!isObj(v)) {
          props[k] = v;
          continue;
        }
        const w = walk(v, stack);
        if (!w.title) w.title = humanize(k);
        // A discriminator (`type: {const: "has_tag"}`): filled in and shown, not typed.
        if (w.const !== undefined) {
          w.default = w.const;
          w.readOnly = true;
        }
        props[k] = w;
      }
      out.properties = props;
    }
    if (isObj(out.items)) out.items = walk(out.items, stack);
    if (isObj(out.additionalProperties)) out.additionalProperties = walk(out.additionalProperties, stack);
    if (typeof out.format === 'string' && NUMERIC_FORMATS.test(out.format)) {
      if (UNSIGNED.test(out.format) && out.minimum === undefined) out.minimum = 0;
      delete out.format;
    }
    if (out.default === null) delete out.default;
    if (typeof out.description === 'string') out.description = plain(out.description);
    return out;
  }

  function titled(alt: Json, i: number): Json {
    if (!isObj(alt) || alt.title) return alt;
    if (alt.const !== undefined) {
      const d = plain(alt.description).replace(/\.$/, '');
      return { ...alt, title: d ? `${String(alt.const)}: ${d}` : String(alt.const) };
    }
    if (alt.description) return { ...alt, title: plain(alt.description).replace(/\.$/, '') };
    if (typeof alt.type === 'string') return { ...alt, title: { integer: 'Number', number: 'Number', string: 'Text', boolean: 'Yes/no', array: 'List', object: 'Group' }[alt.type] ?? alt.type };
    return { ...alt, title: `Option ${i + 1}` };
  }

  const out = walk(root, []);
  delete out.$schema;
  delete out.title;
  delete out.description;
  // Keep the definitions only if a recursive $ref still points into them.
  const stillRefs = JSON.stringify(out.properties ?? {}).includes('"$ref"');
  delete out.$defs;
  delete out.definitions;
  if (stillRefs) out.$defs = defs;
  return out as RJSFSchema;
}

/**
 * The server's field errors under `prefix` (e.g. `config.`) as an rjsf error schema,
 * and the ones that name no form field (shown in the banner instead).
 */
export function toErrorSchema(errors: FieldError[], prefix: string, schema: RJSFSchema): { schema: ErrorSchema; unplaced: FieldError[] } {
  const out: Record<string, unknown> = {};
  const unplaced: FieldError[] = [];
  const props = isObj(schema.properties) ? schema.properties : {};
  for (const e of errors) {
    if (!e.field.startsWith(prefix)) continue;
    const path = e.field
      .slice(prefix.length)
      .split(/\.|\[(\d+)\]/)
      .filter((p) => p !== undefined && p !== '');
    if (path.length === 0 || !(path[0] in props)) {
      unplaced.push(e);
      continue;
    }
    let node = out;
    for (const p of path) {
      node[p] = (node[p] as Record<string, unknown>) ?? {};
      node = node[p] as Record<string, unknown>;
    }
    node.__errors = [...((node.__errors as string[]) ?? []), e.message];
  }
  return { schema: out as ErrorSchema, unplaced };
}

/** A config as the form edits it. The API document types a config (and a helper type's
 * example) as any JSON; every helper's is an object, so anything else starts empty. */
export function configObject(v: unknown): Json {
  return isObj(v) ? v : {};
}

/** Drops empty strings, empty objects and nulls an untouched form leaves behind. */
export function cleanConfig(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cleanConfig);
  if (isObj(v)) {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) {
      const c = cleanConfig(x);
      if (c === undefined || c === null || c === '') continue;
      out[k] = c;
    }
    return out;
  }
  return v;
}
