/**
 * Writes docs/protocol.md from the wire schemas (`npm run docs:protocol`), so the reference says
 * what the code accepts and cannot drift: test/docs/protocol-doc.test.ts regenerates it in memory
 * and fails when the committed file differs.
 *
 * Sources: the zod schemas of src/protocol (structure and constraints, through zod's own
 * `z.toJSONSchema`), their JSDoc comments (descriptions, read with the TypeScript parser),
 * src/limits.ts (numbers), and the prose in scripts/protocol-doc.template.md. Template
 * placeholders: {{overview}}, {{messages:SECTION}}, {{shared-types}}, {{object:ExportName}},
 * {{limit:NAME}}, {{limits:NAME NAME ...}}. An unknown placeholder or name is an error, so the
 * template cannot point at something that no longer exists.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { z } from 'zod';
import { LIMITS } from '../src/limits.js';
import * as common from '../src/protocol/common.js';
import * as job from '../src/protocol/job.js';
import * as progress from '../src/protocol/progress.js';
import * as routing from '../src/protocol/routing.js';
import * as signaling from '../src/protocol/signaling.js';
import * as transfer from '../src/protocol/transfer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PROTOCOL_DOC_PATH = path.join(ROOT, 'docs', 'protocol.md');
const TEMPLATE_PATH = path.join(ROOT, 'scripts', 'protocol-doc.template.md');

/** Defining module first: signaling.ts re-exports common.ts, and the first name seen wins. */
const MODULES: readonly [string, Record<string, unknown>][] = [
  ['src/protocol/common.ts', common],
  ['src/protocol/routing.ts', routing],
  ['src/protocol/transfer.ts', transfer],
  ['src/protocol/progress.ts', progress],
  ['src/protocol/job.ts', job],
  ['src/protocol/signaling.ts', signaling],
];

export interface Section {
  id: string;
  title: string;
  /** Where these messages travel, for the overview table. */
  carrier: string;
  union: z.ZodType;
}

export const SECTIONS: readonly Section[] = [
  { id: 'peer-to-server', title: 'Peer → server', carrier: 'signaling WebSocket', union: signaling.PeerToServerSchema },
  { id: 'server-to-peer', title: 'Server → peer', carrier: 'signaling WebSocket', union: signaling.ServerToPeerSchema },
  { id: 'client-to-worker', title: 'Client → worker', carrier: '`control` data channel', union: job.ClientToWorkerSchema },
  { id: 'worker-to-client', title: 'Worker → client', carrier: '`control` data channel', union: job.WorkerToClientSchema },
  { id: 'transfer-sender', title: 'Transfer channel: sender → receiver', carrier: '`transfer:<id>` data channel', union: transfer.SenderToReceiverSchema },
  { id: 'transfer-receiver', title: 'Transfer channel: receiver → sender', carrier: '`transfer:<id>` data channel', union: transfer.ReceiverToSenderSchema },
];

/** Named building blocks: documented once under "Shared types" and linked from every field that uses them. */
const SHARED_TYPES: readonly [string, z.ZodType][] = [
  ['PeerInfo', common.PeerInfoSchema],
  ['Metadata', common.MetadataSchema],
  ['Capabilities', common.CapabilitiesSchema],
  ['GpuInfo', common.GpuInfoSchema],
  ['DiscoverFilters', signaling.DiscoverFiltersSchema],
  ['PropertyFilter', signaling.PropertyFilterSchema],
  ['WorkerStatusEntry', routing.WorkerStatusEntrySchema],
  ['WorkerSlots', routing.WorkerSlotsSchema],
  ['JobStorage', job.JobStorageSchema],
  ['TrainSpec', job.TrainSpecSchema],
  ['TrackSpec', job.TrackSpecSchema],
  ['SHARED_INPUT_PATH', job.SharedInputPathSchema],
  ['SHARED_OUTPUT_PATH', job.SharedOutputPathSchema],
  ['Id', common.IdSchema],
  ['BackendName', common.BackendNameSchema],
  ['RelativePath', job.RelativePathSchema],
  ['MaybeEmptyRelativePath', job.MaybeEmptyRelativePathSchema],
  ['ClientBasePath', job.ClientBasePathSchema],
  ['PathField', job.PathFieldSchema],
  ['Sha256Hex', transfer.Sha256HexSchema],
];

/**
 * Rules written as code (superRefine) carry no message the generator could read; each needs a
 * sentence here. A schema with such a rule and no note, or a note nobody needs, fails generation.
 */
const RULE_NOTES: Readonly<Record<string, string>> = {
  FILE_META: 'With `kind: "file"`, `size` and `sha256` must be given (not null). With `kind: "tar"`, both must be null: a folder is packed while it is sent, so `FILE_COMPLETE` carries them. With `kind: "folder"` (a folder offered file by file), `size`, `sha256` and `files` must be given; `files` is allowed with no other kind.',
};

// ---- zod internals we read (zod 4's documented `_zod.def`) --------------------------------------

interface CheckDef {
  check: string;
  format?: string;
  error?: (issue: unknown) => unknown;
}
interface Inner {
  _zod: {
    def: {
      type: string;
      options?: readonly Inner[];
      discriminator?: string;
      values?: readonly unknown[];
      shape?: Record<string, Inner>;
      checks?: readonly { _zod: { def: CheckDef } }[];
    };
  };
}
const inner = (s: unknown): Inner => s as Inner;

export interface Variant {
  type: string;
  /** The discriminator that tells variants of one type apart, e.g. `job_type: "train"`. */
  label: string | null;
  schema: z.ZodType;
}

/** The messages of a union, nested discriminated unions flattened into labelled variants. */
export function variantsOf(union: z.ZodType): Variant[] {
  const out: Variant[] = [];
  const walk = (s: Inner, label: string | null): void => {
    const def = s._zod.def;
    if (def.type === 'union') {
      const key = def.discriminator;
      for (const o of def.options ?? []) {
        const value = key && key !== 'type' ? o._zod.def.shape?.[key]?._zod.def.values?.[0] : undefined;
        walk(o, value === undefined ? label : `${key}: ${JSON.stringify(value)}`);
      }
      return;
    }
    const type = def.shape?.type?._zod.def.values?.[0];
    if (typeof type !== 'string') throw new Error(`a message schema without a literal "type" (${def.type})`);
    out.push({ type, label, schema: s as unknown as z.ZodType });
  };
  walk(inner(union), null);
  return out;
}

// ---- JSON Schema, annotated --------------------------------------------------------------------

type Json = { [key: string]: unknown } & {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  $ref?: string;
  anyOf?: Json[];
  oneOf?: Json[];
  items?: Json;
  properties?: Record<string, Json>;
  required?: string[];
  additionalProperties?: boolean | Json;
  propertyNames?: Json;
  default?: unknown;
  $defs?: Record<string, Json>;
};

const registry = z.registry<{ id: string }>();
for (const [id, schema] of SHARED_TYPES) registry.add(schema, { id });

function messageOf(check: CheckDef): string | undefined {
  const m = typeof check.error === 'function' ? check.error({ code: 'custom', input: undefined }) : undefined;
  if (typeof m === 'string') return m;
  if (m && typeof m === 'object' && typeof (m as { message?: unknown }).message === 'string') return (m as { message: string }).message;
  return undefined;
}

function toJson(schema: z.ZodType): Json {
  return z.toJSONSchema(schema, {
    metadata: registry,
    io: 'input', // what a sender may write: a field with a default may be left out
    unrepresentable: 'any',
    override: (ctx) => {
      const j = ctx.jsonSchema as Json;
      if (ctx.zodSchema === (common.ErrorCodeSchema as unknown)) {
        for (const k of Object.keys(j)) delete j[k];
        Object.assign(j, { type: 'string', 'x-error-code': true });
        return;
      }
      const rules: string[] = [];
      for (const c of inner(ctx.zodSchema)._zod.def.checks ?? []) {
        const d = c._zod.def;
        if (d.check === 'string_format' && d.format === 'regex') {
          const m = messageOf(d);
          if (m) j['x-pattern-message'] = m;
        } else if (d.check === 'custom') {
          const m = messageOf(d);
          if (m) rules.push(m);
          else j['x-unnamed-rule'] = true;
        }
      }
      if (rules.length) j['x-rules'] = rules;
    },
  }) as Json;
}

/** The body of a schema: a top-level `$ref` (the schema is itself a shared type) is followed. */
function bodyOf(json: Json): Json {
  const ref = json.$ref?.replace('#/$defs/', '');
  return ref !== undefined && json.$defs?.[ref] ? (json.$defs[ref] as Json) : json;
}

// ---- JSDoc from the schema sources -------------------------------------------------------------

interface VarDocs {
  doc: string;
  /** Dotted property path inside the initializer -> JSDoc. */
  props: Map<string, string>;
  /** Dotted property path -> the schema constant it is built from (`BackendNameSchema.optional()`). */
  refs: Map<string, string>;
  /** Top-level `...fields` spreads. */
  spreads: string[];
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function jsDocOf(node: ts.Node): string {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  const last = docs.at(-1);
  return last ? oneLine(ts.getTextOfJSDocComment(last.comment) ?? '') : '';
}

function leftmostIdentifier(expr: ts.Expression): string | undefined {
  let e: ts.Expression = expr;
  for (;;) {
    if (ts.isCallExpression(e)) e = e.expression;
    else if (ts.isPropertyAccessExpression(e)) e = e.expression;
    else break;
  }
  return ts.isIdentifier(e) && e.text !== 'z' ? e.text : undefined;
}

function collectDocs(): Map<string, VarDocs> {
  const vars = new Map<string, VarDocs>();
  for (const [file] of MODULES) {
    const sf = ts.createSourceFile(file, readFileSync(path.join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
    for (const statement of sf.statements) {
      if (!ts.isVariableStatement(statement)) continue;
      for (const decl of statement.declarationList.declarations) {
        if (!ts.isIdentifier(decl.name) || !decl.initializer) continue;
        const entry: VarDocs = { doc: jsDocOf(decl), props: new Map(), refs: new Map(), spreads: [] };
        const visit = (node: ts.Node, at: readonly string[]): void => {
          if (ts.isArrowFunction(node) || ts.isFunctionExpression(node)) return;
          if (ts.isSpreadAssignment(node) && at.length === 0 && ts.isIdentifier(node.expression)) entry.spreads.push(node.expression.text);
          if (ts.isPropertyAssignment(node) && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name))) {
            const key = [...at, node.name.text].join('.');
            const doc = jsDocOf(node);
            if (doc) entry.props.set(key, doc);
            const ref = leftmostIdentifier(node.initializer);
            if (ref) entry.refs.set(key, ref);
            visit(node.initializer, [...at, node.name.text]);
            return;
          }
          ts.forEachChild(node, (c) => visit(c, at));
        };
        visit(decl.initializer, []);
        // Names are unique across the protocol modules except for re-exports, which carry no docs.
        if (!vars.has(decl.name.text) || entry.doc || entry.props.size) vars.set(decl.name.text, entry);
      }
    }
  }
  return vars;
}

class Docs {
  readonly #vars = collectDocs();
  readonly #names = new Map<unknown, string>();

  constructor() {
    for (const [, mod] of MODULES) {
      for (const [name, value] of Object.entries(mod)) {
        if (value && typeof value === 'object' && '_zod' in value && !this.#names.has(value)) this.#names.set(value, name);
      }
    }
  }

  nameOf(schema: unknown): string {
    const name = this.#names.get(schema);
    if (!name) throw new Error('a documented schema is not exported from src/protocol');
    return name;
  }

  /** Export names of the shared types: a field of such a type links to it, so its doc is not repeated. */
  readonly linked = new Set<string>();

  of(owner: string): string {
    return this.#vars.get(owner)?.doc ?? '';
  }

  field(owner: string, at: readonly string[]): string {
    const key = at.join('.');
    const entry = this.#vars.get(owner);
    if (!entry) return '';
    const sources = [entry, ...entry.spreads.map((s) => this.#vars.get(s)).filter((v): v is VarDocs => v !== undefined)];
    for (const v of sources) {
      const doc = v.props.get(key);
      if (doc) return doc;
    }
    for (const v of sources) {
      const ref = v.refs.get(key);
      const doc = ref === undefined || this.linked.has(ref) ? '' : this.of(ref);
      if (doc) return doc;
    }
    return '';
  }
}

// ---- Markdown ------------------------------------------------------------------------------------

const code = (text: string): string => (text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``);
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const typeLink = (name: string): string => `[${name}](#@@type:${name}@@)`;
const refName = (j: Json): string | undefined => j.$ref?.replace('#/$defs/', '');
const isObjectWithFields = (j: Json | undefined): j is Json & { properties: Record<string, Json> } =>
  j !== undefined && j.type === 'object' && j.properties !== undefined && j.$ref === undefined;

function alternatives(j: Json): Json[] | undefined {
  return j.anyOf ?? j.oneOf;
}

function typeText(j: Json): string {
  if (j['x-error-code']) return 'string: an [error code](errors.md)';
  const ref = refName(j);
  if (ref !== undefined) return typeLink(ref);
  if (j.const !== undefined) return code(JSON.stringify(j.const));
  if (j.enum) return j.enum.map((v) => code(JSON.stringify(v))).join(' or ');
  const alts = alternatives(j);
  if (alts) return alts.map(typeText).join(' or ');
  switch (j.type) {
    case 'null':
      return code('null');
    case 'array':
      return `array of ${isObjectWithFields(j.items) ? 'objects' : typeText(j.items ?? {})}`;
    case 'object': {
      if (j.properties) {
        const required = new Set(j.required ?? []);
        return `{ ${Object.entries(j.properties).map(([k, v]) => `${code(`${k}${required.has(k) ? '' : '?'}`)}: ${typeText(v)}`).join(', ')} }`;
      }
      const values = typeof j.additionalProperties === 'object' ? typeText(j.additionalProperties) : 'any JSON';
      return `object of ${values}`;
    }
    case undefined:
      return Array.isArray(j.type) ? (j.type as string[]).map((t) => (t === 'null' ? code('null') : t)).join(' or ') : 'any JSON';
    default:
      return j.type;
  }
}

function countRange(min: unknown, max: unknown, unit: string): string | undefined {
  const lo = typeof min === 'number' && min > 0 ? min : undefined;
  const hi = typeof max === 'number' && max < Number.MAX_SAFE_INTEGER ? max : undefined;
  if (lo !== undefined && hi !== undefined) return `${lo}–${hi} ${unit}`;
  if (hi !== undefined) return `at most ${hi} ${unit}`;
  if (lo === 1) return unit === 'items' ? 'at least 1 item' : 'not empty';
  if (lo !== undefined) return `at least ${lo} ${unit}`;
  return undefined;
}

function constraintsOf(j: Json): string[] {
  const out: string[] = [];
  const alts = alternatives(j);
  if (alts) for (const a of alts) if (a.type !== 'null' && refName(a) === undefined) out.push(...constraintsOf(a));
  if (j.type === 'string') {
    const len = countRange(j.minLength, j.maxLength, 'characters');
    if (len) out.push(len);
    if (typeof j.pattern === 'string') {
      const why = j['x-pattern-message'];
      out.push(`matches ${code(j.pattern)}${typeof why === 'string' ? ` (${why})` : ''}`);
    }
  }
  if (j.type === 'number' || j.type === 'integer') {
    const bound = (key: string, sign: string): void => {
      const v = j[key];
      if (typeof v === 'number' && Math.abs(v) < Number.MAX_SAFE_INTEGER) out.push(`${sign} ${v}`);
    };
    bound('minimum', '≥');
    bound('exclusiveMinimum', '>');
    bound('maximum', '≤');
    bound('exclusiveMaximum', '<');
  }
  if (j.type === 'array') {
    const n = countRange(j.minItems, j.maxItems, 'items');
    if (n) out.push(n);
    const each = j.items && !isObjectWithFields(j.items) ? constraintsOf(j.items) : [];
    if (each.length) out.push(`each: ${each.join(', ')}`);
  }
  if (j.type === 'object') {
    if (j.properties && typeof j.additionalProperties === 'object') out.push('other keys allowed');
    const keys = j.propertyNames ? constraintsOf(j.propertyNames) : [];
    if (keys.length) out.push(`keys: ${keys.join(', ')}`);
  }
  if (j.properties === undefined) for (const r of (j['x-rules'] as string[] | undefined) ?? []) out.push(r);
  return out;
}

interface Row {
  name: string;
  type: string;
  required: boolean;
  constraints: string;
  default: string;
  description: string;
}

function fieldRows(obj: Json, owner: string, docs: Docs, at: readonly string[] = [], prefix = ''): Row[] {
  const rows: Row[] = [];
  const required = new Set(obj.required ?? []);
  for (const [key, prop] of Object.entries(obj.properties ?? {})) {
    const name = `${prefix}${key}`;
    rows.push({
      name,
      type: typeText(prop),
      required: required.has(key),
      constraints: constraintsOf(prop).join('; '),
      default: prop.default === undefined ? '' : code(JSON.stringify(prop.default)),
      description: docs.field(owner, [...at, key]),
    });
    if (isObjectWithFields(prop)) rows.push(...fieldRows(prop, owner, docs, [...at, key], `${name}.`));
    else if (prop.type === 'array' && isObjectWithFields(prop.items)) rows.push(...fieldRows(prop.items, owner, docs, [...at, key], `${name}[].`));
  }
  return rows;
}

function table(rows: readonly Row[]): string {
  const lines = ['| field | type | required | constraints | default | description |', '|---|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(`| ${[code(r.name), r.type, r.required ? 'yes' : 'no', r.constraints, r.default, r.description].map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Description, field table and rules of one object schema. */
function objectBlock(schema: z.ZodType, docs: Docs, noteKey: string): string {
  const owner = docs.nameOf(schema);
  const json = bodyOf(toJson(schema));
  const parts: string[] = [];
  const doc = docs.of(owner);
  if (doc) parts.push(doc);
  const alts = alternatives(json);
  if (alts && !json.properties) {
    parts.push(`One of:\n\n${alts.map((a) => `- ${typeText(a)}${constraintsOf(a).length ? ` (${constraintsOf(a).join('; ')})` : ''}`).join('\n')}`);
    return parts.join('\n\n');
  }
  if (json.type !== 'object') {
    const rules = constraintsOf(json);
    parts.push(`**${typeText(json)}**${rules.length ? `: ${rules.join('; ')}` : ''}.`);
    return parts.join('\n\n');
  }
  parts.push(table(fieldRows(json, owner, docs)));
  const rules = (json['x-rules'] as string[] | undefined) ?? [];
  const note = RULE_NOTES[noteKey];
  if (json['x-unnamed-rule'] && !note) throw new Error(`${owner} (${noteKey}) has a rule without a message: add a sentence for it to RULE_NOTES in scripts/gen-protocol-docs.ts`);
  if (note && !json['x-unnamed-rule']) throw new Error(`RULE_NOTES has a note for ${noteKey}, whose schema has no unnamed rule any more: remove it`);
  if (note) rules.push(note);
  if (rules.length) parts.push(`Rules: ${rules.map((r) => `${r.replace(/[.]$/, '')}.`).join(' ')}`);
  return parts.join('\n\n');
}

function messagesBlock(section: Section, docs: Docs, headings: Heading[]): string {
  const parts: string[] = [];
  const heading = (level: string, text: string, key: string): void => {
    headings.push({ text, key });
    parts.push(`${level} ${text}`);
  };
  heading('###', section.title, `section:${section.id}`);
  for (const v of variantsOf(section.union)) {
    heading('####', `${code(v.type)}${v.label ? ` (${code(v.label)})` : ''}`, `message:${section.id}:${v.type}:${v.label ?? ''}`);
    parts.push(objectBlock(v.schema, docs, v.type));
  }
  return parts.join('\n\n');
}

function overview(): string {
  const lines = ['| direction | carried on | messages |', '|---|---|---|'];
  for (const s of SECTIONS) {
    const seen = new Set<string>();
    const links = variantsOf(s.union)
      .filter((v) => !seen.has(v.type) && seen.add(v.type))
      .map((v) => `[${code(v.type)}](#@@message:${s.id}:${v.type}:${v.label ?? ''}@@)`);
    lines.push(`| [${s.title}](#@@section:${s.id}@@) | ${s.carrier} | ${links.join(', ')} |`);
  }
  return lines.join('\n');
}

function sharedTypes(docs: Docs, headings: Heading[]): string {
  return SHARED_TYPES.map(([name, schema]) => {
    headings.push({ text: name, key: `type:${name}` });
    return `### ${name}\n\n${objectBlock(schema, docs, name)}`;
  }).join('\n\n');
}

// ---- limits ------------------------------------------------------------------------------------

type LimitName = keyof typeof LIMITS;

function limitDocs(): Map<string, string> {
  const sf = ts.createSourceFile('limits.ts', readFileSync(path.join(ROOT, 'src/limits.ts'), 'utf8'), ts.ScriptTarget.ES2022, true);
  const out = new Map<string, string>();
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAssignment(node) && ts.isIdentifier(node.name)) out.set(node.name.text, jsDocOf(node));
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function duration(ms: number): string {
  const units: [number, string][] = [[86_400_000, 'days'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size} ${unit === 'days' && ms === size ? 'day' : unit}`;
  return `${ms} ms`;
}

function bytes(n: number): string {
  const units = ['TiB', 'GiB', 'MiB', 'KiB'];
  for (let i = 0; i < units.length; i++) {
    const size = 1024 ** (units.length - i);
    if (n >= size && n % size === 0) return `${n / size} ${units[i]}`;
  }
  return `${n} bytes`;
}

export function formatLimit(name: string): string {
  if (!Object.hasOwn(LIMITS, name)) throw new Error(`the template names LIMITS.${name}, which src/limits.ts does not define`);
  const value = LIMITS[name as LimitName];
  if (typeof value !== 'number') return code(String(value));
  if (name.endsWith('Bytes')) return bytes(value);
  if (name.endsWith('Ms')) return duration(value);
  if (name.endsWith('S')) return duration(value * 1000);
  return value.toLocaleString('en-US');
}

function limitsTable(names: readonly string[]): string {
  const docs = limitDocs();
  const lines = ['| limit | value | meaning |', '|---|---|---|'];
  for (const n of names) lines.push(`| ${code(`LIMITS.${n}`)} | ${formatLimit(n)} | ${cell(docs.get(n) ?? '')} |`);
  return lines.join('\n');
}

// ---- assembly ------------------------------------------------------------------------------------

interface Heading {
  text: string;
  key: string;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to "-", repeats numbered. */
function slugger(): (heading: string) => string {
  const seen = new Map<string, number>();
  return (heading) => {
    const base = heading
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base);
    seen.set(base, (n ?? 0) + 1);
    return n === undefined ? base : `${base}-${n}`;
  };
}

/** Resolves `#@@key@@` link targets to the anchors GitHub gives the generated headings. */
function linkAnchors(text: string, generated: readonly Heading[]): string {
  const slug = slugger();
  const anchors = new Map<string, string>();
  let next = 0;
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const anchor = slug((m[1] as string).replace(/`/g, ''));
    const want = generated[next];
    if (want && want.text === m[1]) {
      anchors.set(want.key, anchor);
      next += 1;
    }
  }
  if (next !== generated.length) throw new Error(`generated heading not found in the document: ${generated[next]?.text}`);
  return text.replace(/#@@([^@]+)@@/g, (_, key: string) => {
    const anchor = anchors.get(key);
    if (anchor === undefined) throw new Error(`link to a heading that is not generated: ${key}`);
    return `#${anchor}`;
  });
}

export function renderProtocolDoc(): string {
  const docs = new Docs();
  for (const [, schema] of SHARED_TYPES) docs.linked.add(docs.nameOf(schema));
  const headings: Heading[] = [];
  const objects = new Map<string, z.ZodType>();
  for (const [, mod] of MODULES) for (const [name, value] of Object.entries(mod)) if (value && typeof value === 'object' && '_zod' in value) objects.set(name, value as z.ZodType);
  const template = readFileSync(TEMPLATE_PATH, 'utf8');
  const body = template.replace(/\{\{([a-z-]+)(?::([^}]*))?\}\}/g, (whole, kind: string, arg: string | undefined) => {
    switch (kind) {
      case 'overview':
        return overview();
      case 'messages': {
        const section = SECTIONS.find((s) => s.id === arg);
        if (!section) throw new Error(`unknown section in ${whole}; known: ${SECTIONS.map((s) => s.id).join(', ')}`);
        return messagesBlock(section, docs, headings);
      }
      case 'shared-types':
        return sharedTypes(docs, headings);
      case 'object': {
        const schema = objects.get(arg ?? '');
        if (!schema) throw new Error(`${whole}: no such schema exported from src/protocol`);
        return objectBlock(schema, docs, arg ?? '');
      }
      case 'limit':
        return formatLimit(arg ?? '');
      case 'limits':
        return limitsTable((arg ?? '').split(/\s+/).filter(Boolean));
      default:
        throw new Error(`unknown placeholder ${whole} in ${path.relative(ROOT, TEMPLATE_PATH)}`);
    }
  });
  const header =
    '<!-- Generated by `npm run docs:protocol` (scripts/gen-protocol-docs.ts) from src/protocol/*.ts, src/limits.ts ' +
    'and scripts/protocol-doc.template.md. Do not edit: change those and regenerate. -->\n\n';
  return `${header}${linkAnchors(body, headings).trimEnd()}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  writeFileSync(PROTOCOL_DOC_PATH, renderProtocolDoc());
  console.log(`wrote ${path.relative(process.cwd(), PROTOCOL_DOC_PATH)}`);
}
