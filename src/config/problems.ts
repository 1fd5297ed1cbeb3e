/**
 * Turns zod issues into ConfigProblems: one sentence per problem that names the key and says what
 * to write instead. Unknown keys get a "did you mean" drawn from the schema itself, so the
 * suggestions can never drift from what the schema accepts.
 */
import type { z } from 'zod';
import type { ConfigProblem } from './errors.js';
import { didYouMean } from './suggest.js';

type Issue = z.core.$ZodIssue;
type PathKey = PropertyKey;

/** `storage.vast.base_path`, `ice.servers[0].urls`. */
export function dottedPath(keys: readonly PathKey[]): string {
  let out = '';
  for (const key of keys) {
    if (typeof key === 'number') {
      out += `[${key}]`;
      continue;
    }
    // Written the way TOML would need it: `storage."bad name"`.
    const name = /^[A-Za-z0-9_-]+$/.test(String(key)) ? String(key) : JSON.stringify(String(key));
    out += out ? `.${name}` : name;
  }
  return out;
}

/** Fix-it hints for required keys, by key name. */
const REQUIRED_HINTS: Record<string, string> = {
  base_path: 'add base_path = "/mnt/your-storage" (the folder where this storage is mounted on this machine)',
  urls: 'add urls = ["stun:stun.example.org:3478"]',
};

/** Shapes of values, in the words of a TOML file. */
function describeExpected(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a string in quotes, e.g. "text"';
    case 'number':
      return 'a number';
    case 'int':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'a list in brackets, e.g. ["a", "b"]';
    case 'object':
    case 'record':
      return 'a table (a [section] or { key = value })';
    default:
      return expected;
  }
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return `the string '${v.length > 80 ? `${v.slice(0, 80)}...` : v}'`;
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Date) return 'a date';
  if (v !== null && typeof v === 'object') return 'a table';
  return `${typeof v} ${String(v)}`;
}

interface SchemaDef {
  type: string;
  format?: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  in?: unknown;
  valueType?: unknown;
  element?: unknown;
}

function defOf(schema: unknown): SchemaDef | undefined {
  return (schema as { _zod?: { def?: SchemaDef } } | undefined)?._zod?.def;
}

const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch']);

/** The definition of the value at `keys` inside `schema`, wrappers (defaults, optional) removed. */
function defAt(schema: unknown, keys: readonly PathKey[]): SchemaDef | undefined {
  let current = schema;
  let i = 0;
  for (let guard = 0; guard < 100; guard++) {
    const def = defOf(current);
    if (!def) return undefined;
    if (def.innerType !== undefined && WRAPPERS.has(def.type)) {
      current = def.innerType;
      continue;
    }
    if (def.type === 'pipe') {
      current = def.in;
      continue;
    }
    if (i === keys.length) return def;
    const key = keys[i++];
    if (def.type === 'object' && def.shape) current = def.shape[String(key)];
    else if (def.type === 'record') current = def.valueType;
    else if (def.type === 'array') current = def.element;
    else return undefined;
  }
  return undefined;
}

/** The keys an object at `keys` inside `schema` accepts (empty when it is not an object). */
export function knownKeysAt(schema: unknown, keys: readonly PathKey[]): string[] {
  const def = defAt(schema, keys);
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function unknownKeyProblem(file: string, schema: unknown, at: readonly PathKey[], key: string, value: unknown): ConfigProblem {
  const known = knownKeysAt(schema, at);
  const suggestion = didYouMean(key, known);
  if (at.length === 0) {
    const isTable = value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date);
    const what = isTable ? `unknown section [${key}]` : `unknown top-level key '${key}' (keys belong inside a [section])`;
    const fix = suggestion ? `did you mean [${suggestion}]?` : `sections are ${known.map((k) => `[${k}]`).join(', ')}`;
    return { file, path: key, message: `${what}; ${fix}` };
  }
  const fix = suggestion ? `did you mean '${suggestion}'?` : `allowed keys here: ${known.join(', ')}`;
  return { file, path: dottedPath([...at, key]), message: `unknown key '${key}'; ${fix}` };
}

function messageFor(issue: Issue, schema: unknown): string {
  const got = 'input' in issue && issue.input !== undefined ? `; got ${describeValue(issue.input)}` : '';
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) {
        const key = issue.path[issue.path.length - 1];
        const hint = typeof key === 'string' ? REQUIRED_HINTS[key] : undefined;
        return `is required${hint ? `; ${hint}` : ''}`;
      }
      const isInt = issue.expected === 'number' && /int/.test(defAt(schema, issue.path)?.format ?? '');
      return `must be ${describeExpected(isInt ? 'int' : issue.expected)}${got}`;
    }
    case 'invalid_value': {
      const options = issue.values.map((v) => JSON.stringify(v));
      const suggestion = typeof issue.input === 'string' ? didYouMean(issue.input, issue.values.map(String)) : undefined;
      return `must be one of ${options.join(', ')}${got}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
    }
    case 'too_small':
      if (issue.origin === 'array') return `must list at least ${String(issue.minimum)} entr${issue.minimum === 1 ? 'y' : 'ies'}`;
      if (issue.origin === 'string') return issue.message.startsWith('Too small') ? 'must not be empty' : issue.message;
      return `must be ${issue.inclusive ? 'at least' : 'greater than'} ${String(issue.minimum)}${got}`;
    case 'too_big':
      if (issue.origin === 'string' || issue.origin === 'array') return `is too long (at most ${String(issue.maximum)})`;
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}${got}`;
    case 'invalid_format':
      // Our regexes carry their own sentence; zod's default ("Invalid string: ...") does not.
      return issue.message.startsWith('Invalid') ? `has the wrong format${got}` : `${issue.message}${got}`;
    case 'custom':
      return issue.message;
    default:
      return `${issue.message}${got}`;
  }
}

/**
 * All problems in `issues`, in the order zod reports them, at most one per key: a value that breaks
 * two rules (an empty room_id is both too short and badly formed) needs one fix, not two lines.
 */
export function issuesToProblems(issues: readonly Issue[], file: string, schema: unknown, input: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const table = valueAt(input, issue.path);
      for (const key of issue.keys) {
        problems.push(unknownKeyProblem(file, schema, issue.path, key, (table as Record<string, unknown> | undefined)?.[key]));
      }
      continue;
    }
    const at = dottedPath(issue.path);
    if (seen.has(at)) continue;
    seen.add(at);
    problems.push({ file, path: at, message: messageFor(issue, schema) });
  }
  return problems;
}

function valueAt(input: unknown, keys: readonly PathKey[]): unknown {
  let v = input;
  for (const k of keys) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}
