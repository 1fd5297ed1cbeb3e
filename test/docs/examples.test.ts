/**
 * The examples in the user documentation must keep working: every TOML block is parsed with the
 * real configuration parser, and every `sleap-rtc ...` command line shown in code uses commands
 * and flags the real CLI program has.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { ConfigError, parseConfig } from '../../src/config/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');
/** Every page under docs/ and the README; the pages this suite requires are listed even if they go missing. */
const DOC_FILES = [
  ...new Set([
    'docs/storage-backends.md',
    'docs/migration.md',
    ...readdirSync(path.join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
    'README.md',
  ]),
];

interface Block {
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  text: string;
}

/** Fenced code blocks, also those inside HTML table cells (side-by-side examples). */
function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  let open: { lang: string; line: number; body: string[]; indent: string } | null = null;
  markdown.split('\n').forEach((line, i) => {
    const fence = /^(\s*)```(\S*)\s*$/.exec(line);
    if (!open) {
      if (fence) open = { lang: fence[2] ?? '', line: i + 1, body: [], indent: fence[1] ?? '' };
      return;
    }
    if (fence && (fence[2] ?? '') === '') {
      blocks.push({ lang: open.lang, line: open.line, text: open.body.join('\n') });
      open = null;
      return;
    }
    open.body.push(line.startsWith(open.indent) ? line.slice(open.indent.length) : line);
  });
  assert.equal(open, null, 'a code fence is never closed');
  return blocks;
}

/** Parses like a machine reading this file, with no SHARED_STORAGE_ROOT in its environment. */
function parseExample(text: string, source: string): ReturnType<typeof parseConfig> {
  try {
    return parseConfig(text, source, {}, '/home/alice');
  } catch (err) {
    if (err instanceof ConfigError) assert.fail(`${source}: this example is not a valid configuration:\n${err.message}`);
    throw err;
  }
}

function checkToml(text: string, source: string): void {
  const config = parseExample(text, source);
  // Every backend the example declares is in the result, under the same name.
  for (const m of text.matchAll(/^\s*\[storage\.([A-Za-z0-9_-]+)\]/gm)) {
    assert.ok(Object.hasOwn(config.storage, m[1] as string), `${source}: [storage.${m[1]}] did not become a backend`);
  }
}

// ---- TOML ----------------------------------------------------------------------------------------

/** Pages whose TOML examples this suite must find (so it cannot pass by finding none). */
const REQUIRED_TOML_BLOCKS: Record<string, number> = { 'docs/storage-backends.md': 8, 'docs/migration.md': 4 };

for (const file of DOC_FILES) {
  test(`${file}: every TOML example is a valid configuration`, () => {
    const blocks = fencedBlocks(read(file)).filter((b) => b.lang === 'toml');
    assert.ok(blocks.length >= (REQUIRED_TOML_BLOCKS[file] ?? 0), `${file}: expected at least ${REQUIRED_TOML_BLOCKS[file]} TOML blocks, found ${blocks.length}`);
    for (const b of blocks) checkToml(b.text, `${file}:${b.line}`);
  });
}

test('config.example.toml is valid as shipped', () => {
  const config = parseExample(read('config.example.toml'), 'config.example.toml');
  assert.deepEqual(Object.keys(config.storage), ['vast', 'scratch']);
});

/**
 * The commented-out sections are examples too: a line `# key = value`, `# [section]` or a line of
 * a commented multi-line array is turned back into TOML, prose comments stay comments.
 */
test('config.example.toml is valid with every commented-out example switched on', () => {
  const text = read('config.example.toml')
    .split('\n')
    .map((line) => {
      const m = /^# ((?:\[[a-z_.]+\])|(?:[a-z_]+ = .*)|(?: {2}\{ .*)|\])$/.exec(line);
      return m ? (m[1] as string) : line;
    })
    .join('\n');
  assert.notEqual(text, read('config.example.toml'));
  const config = parseExample(text, 'config.example.toml (uncommented)');
  assert.deepEqual(Object.keys(config.storage), ['vast', 'scratch', 'lab_drive', 'dept_smb']);
  assert.equal(config.worker.name, 'gpu-node-07');
  assert.equal(config.ice.servers.length, 2);
  assert.equal(config.signaling.room_id, 'my-lab-room');
});

test('a broken TOML example would be caught', () => {
  for (const bad of ['[storage.vast]\nbase_path = "relative/path"', '[storage.vast]\nbase_pth = "/mnt/vast"', '[storage vast]\nbase_path = "/x"']) {
    assert.throws(() => parseConfig(bad, 'example', {}, '/home/alice'), ConfigError);
  }
});

// ---- command lines -------------------------------------------------------------------------------

interface Mention {
  where: string;
  words: string[];
}

/**
 * `sleap-rtc ...` command lines in code: fenced blocks (other than TOML, JSON and TypeScript) and
 * inline code spans. Only a command position counts: the start of a line or span (after
 * indentation or a `$ ` prompt), or after `&&`, `;`, `|` or `exec`. So a log line such as
 * `INFO: [signaling] sleap-rtc signaling server listening` is not read as a command.
 */
function mentions(file: string, markdown: string): Mention[] {
  const out: Mention[] = [];
  const scan = (code: string, where: string): void => {
    for (const line of code.split('\n')) {
      for (const m of line.matchAll(/(?:^|&&|;|\||\bexec)\s*(?:\$\s+)?sleap-rtc[ \t]+([^#\n`]*)/g)) {
        const words = (m[1] as string).trim().split(/\s+/).filter(Boolean);
        if (words.length) out.push({ where, words });
      }
    }
  };
  for (const b of fencedBlocks(markdown)) {
    if (!['toml', 'json', 'ts', 'typescript'].includes(b.lang)) scan(b.text, `${file}:${b.line}`);
  }
  const prose = markdown.replace(/^\s*```[\s\S]*?^\s*```/gm, '');
  for (const m of prose.matchAll(/`([^`\n]+)`/g)) scan(m[1] as string, `${file}: \`${m[1]}\``);
  return out;
}

function longFlags(cmd: Command): Set<string> {
  const flags = new Set(['--help']);
  for (const o of cmd.options) {
    if (o.long) flags.add(o.long);
    if (o.short) flags.add(o.short);
  }
  return flags;
}

/** Why a mention does not match the real program, or null when it does. */
function problemWith(program: Command, words: readonly string[]): string | null {
  let cmd = program;
  let i = 0;
  for (; i < words.length; i++) {
    const next = cmd.commands.find((c) => c.name() === words[i]);
    if (!next) break;
    cmd = next;
  }
  if (cmd === program && !['--help', '-h', '--version', '-V'].includes(words[0] ?? '')) {
    return `"${words[0]}" is not a sleap-rtc command (commands: ${program.commands.map((c) => c.name()).join(', ')})`;
  }
  const known = cmd === program ? new Set(['--help', '-h', '--version', '-V']) : longFlags(cmd);
  for (const w of words.slice(i)) {
    const flag = /^\[?(--?[A-Za-z][A-Za-z0-9-]*)/.exec(w)?.[1];
    if (flag && !known.has(flag)) {
      return `sleap-rtc ${words.slice(0, i).join(' ')} has no option ${flag} (it has: ${[...known].sort().join(', ')})`;
    }
  }
  return null;
}

test('the command-line checker catches wrong commands and flags', () => {
  const program = buildProgram();
  assert.equal(problemWith(program, ['train', '--labels', 'x.slp', '--no-fallback']), null);
  assert.equal(problemWith(program, ['config', 'check', '--json']), null);
  assert.match(problemWith(program, ['trian', '--labels', 'x']) ?? '', /not a sleap-rtc command/);
  assert.match(problemWith(program, ['worker', '--prefix-map', 'a->b']) ?? '', /has no option --prefix-map/);
  assert.match(problemWith(program, ['workers', '[--storage]']) ?? '', /has no option --storage/);
  assert.match(problemWith(program, ['config', 'check', '--config-file', 'x']) ?? '', /has no option --config-file/);
});

test('the scanner finds command lines in code and ignores log lines and prose', () => {
  const md = [
    'Run `sleap-rtc train --labels a.slp` or sleap-rtc trian in prose.',
    '```sh',
    '$ sleap-rtc config check --json',
    'cd x && sleap-rtc worker --name a  # comment --not-a-flag',
    '```',
    '```text',
    '[12:00:00] INFO: [signaling] sleap-rtc signaling server listening',
    'sleap-rtc: error [USAGE]: ...',
    '```',
  ].join('\n');
  assert.deepEqual(
    mentions('x.md', md).map((m) => m.words.join(' ')),
    ['config check --json', 'worker --name a', 'train --labels a.slp'],
  );
});

/** Pages that must show these commands (so the check below cannot pass by finding nothing). */
const REQUIRED_COMMANDS: Record<string, string[]> = {
  'docs/storage-backends.md': ['worker', 'train', 'track', 'config', 'workers'],
  'docs/migration.md': ['worker', 'train', 'config'],
};

for (const file of DOC_FILES) {
  test(`${file}: every sleap-rtc command line uses real commands and flags`, () => {
    const program = buildProgram();
    const found = mentions(file, read(file));
    const problems = found.flatMap((m) => {
      const p = problemWith(program, m.words);
      return p ? [`${m.where}: ${p}`] : [];
    });
    assert.deepEqual(problems, []);
    const commands = new Set(found.map((m) => m.words[0]));
    for (const c of REQUIRED_COMMANDS[file] ?? []) assert.ok(commands.has(c), `${file} shows no \`sleap-rtc ${c} ...\` command line`);
  });
}

/** Flags of sleap-nn's command line that the docs explain; everything else must be a sleap-rtc flag. */
const SLEAP_NN_FLAGS = new Set(['--prefix-map', '--video-path-map', '--video-paths', '--config-name', '--config-dir', '--data_path', '--model_paths', '--output_path', '--version']);

for (const file of DOC_FILES) {
  test(`${file}: every flag quoted on its own is a real flag`, () => {
    const program = buildProgram();
    const all = new Set<string>();
    const walk = (cmd: Command): void => {
      for (const f of longFlags(cmd)) all.add(f);
      cmd.commands.forEach(walk);
    };
    walk(program);
    const prose = read(file).replace(/^\s*```[\s\S]*?^\s*```/gm, '');
    const unknown = [...prose.matchAll(/`(--[a-z][a-z0-9_-]*)[^`]*`/g)]
      .map((m) => m[1] as string)
      .filter((f) => !all.has(f) && !SLEAP_NN_FLAGS.has(f));
    assert.deepEqual(unknown, [], `${file} quotes flags that no sleap-rtc command has`);
  });
}

test('docs/architecture.md lists exactly the benchmarks package.json defines', () => {
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
  const defined = Object.keys(scripts).filter((s) => s.startsWith('bench:'));
  assert.ok(defined.length > 0);
  for (const s of defined) {
    const file = /bench\/[\w-]+\.ts/.exec(scripts[s] as string)?.[0];
    assert.ok(file && existsSync(path.join(ROOT, file)), `package.json script ${s} runs no existing bench/*.ts file`);
  }
  const doc = read('docs/architecture.md');
  const listed = [...new Set([...doc.matchAll(/^\| `npm run (bench:[\w-]+)`/gm)].map((m) => m[1] as string))];
  assert.deepEqual(
    defined.filter((s) => !listed.includes(s)),
    [],
    'benchmarks in package.json that docs/architecture.md does not list (add a row to its benchmark table)',
  );
  assert.deepEqual(
    listed.filter((s) => !defined.includes(s)),
    [],
    'benchmarks docs/architecture.md lists that package.json does not define',
  );
});
