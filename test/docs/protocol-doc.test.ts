import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_DOC_PATH, renderProtocolDoc } from '../../scripts/gen-protocol-docs.js';
import { typesOf } from '../../src/protocol/codec.js';
import { CLIENT_TO_WORKER_TYPES, WORKER_TO_CLIENT_TYPES } from '../../src/protocol/job.js';
import { PeerToServerSchema, ServerToPeerSchema } from '../../src/protocol/signaling.js';
import { RECEIVER_TO_SENDER_TYPES, SENDER_TO_RECEIVER_TYPES } from '../../src/protocol/transfer.js';

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs');
const committed = readFileSync(PROTOCOL_DOC_PATH, 'utf8');

test('docs/protocol.md is what the schemas generate', () => {
  const fresh = renderProtocolDoc();
  if (fresh === committed) return;
  const a = committed.split('\n');
  const b = fresh.split('\n');
  let i = 0;
  while (i < Math.max(a.length, b.length) && a[i] === b[i]) i++;
  assert.fail(
    `docs/protocol.md is out of date with src/protocol: run \`npm run docs:protocol\` and commit the result.\n` +
      `First difference at line ${i + 1}:\n  committed: ${a[i] ?? '(end of file)'}\n  generated: ${b[i] ?? '(end of file)'}`,
  );
});

/** The message types the decoders accept, per direction: taken from the code, not from the generator. */
const DIRECTIONS: readonly [string, ReadonlySet<string>][] = [
  ['Peer → server', typesOf(PeerToServerSchema)],
  ['Server → peer', typesOf(ServerToPeerSchema)],
  ['Client → worker', CLIENT_TO_WORKER_TYPES],
  ['Worker → client', WORKER_TO_CLIENT_TYPES],
  ['Transfer channel: sender → receiver', SENDER_TO_RECEIVER_TYPES],
  ['Transfer channel: receiver → sender', RECEIVER_TO_SENDER_TYPES],
];

/** The `#### \`TYPE\`` headings under `### title`, up to the next heading of level 3 or above. */
function documentedTypes(doc: string, title: string): Set<string> | undefined {
  const lines = doc.split('\n');
  const start = lines.indexOf(`### ${title}`);
  if (start < 0) return undefined;
  const types = new Set<string>();
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,3} /.test(line)) break;
    const m = /^#### `([^`]+)`/.exec(line);
    if (m) types.add(m[1] as string);
  }
  return types;
}

for (const [title, known] of DIRECTIONS) {
  test(`docs/protocol.md lists every ${title} message and no other`, () => {
    const documented = documentedTypes(committed, title);
    assert.ok(documented, `docs/protocol.md has no "### ${title}" section`);
    assert.deepEqual([...known].filter((t) => !documented.has(t)), [], `types the code accepts but the document does not list under "${title}"`);
    assert.deepEqual([...documented].filter((t) => !known.has(t)), [], `types the document lists under "${title}" that the code does not accept`);
  });
}

test('every message heading is followed by a field table or a type line', () => {
  const sections = committed.split(/^#### /m).slice(1);
  assert.ok(sections.length > 40);
  for (const s of sections) {
    const heading = s.split('\n')[0];
    assert.match(s, /\| field \| type \| required \| constraints \| default \| description \|\n\|---\|---\|---\|---\|---\|---\|\n\| `type` \|/, `no field table under "#### ${heading}"`);
  }
});

// ---- links -------------------------------------------------------------------------------------

/** Anchors GitHub gives the headings of a Markdown file. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const base = (m[1] as string).replace(/`/g, '').toLowerCase().replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base);
    seen.set(base, (n ?? 0) + 1);
    out.add(n === undefined ? base : `${base}-${n}`);
  }
  return out;
}

test('every link in docs/protocol.md leads to an existing file and heading', () => {
  const links = [...committed.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
  assert.ok(links.length > 50);
  const broken: string[] = [];
  for (const link of links) {
    if (/^[a-z]+:/.test(link)) continue;
    const [file, anchor] = link.split('#') as [string, string | undefined];
    const target = file === '' ? PROTOCOL_DOC_PATH : path.join(DOCS, file);
    if (!existsSync(target)) {
      broken.push(`${link}: no file ${path.relative(DOCS, target)}`);
      continue;
    }
    if (anchor !== undefined && !anchorsOf(readFileSync(target, 'utf8')).has(anchor)) broken.push(`${link}: no such heading`);
  }
  assert.deepEqual(broken, []);
});
