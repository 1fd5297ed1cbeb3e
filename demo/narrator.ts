/**
 * How the demo talks: numbered steps in plain words, each command as a user would type it on the
 * machine it belongs to, and the command's own output indented below it. Paths inside the demo's
 * temp folder are shown as `$DEMO/...` so that lines stay short; the folder is named once at the
 * start.
 */

const INDENT = '    ';
/** Command lines longer than this are broken, one option per line. */
const WRAP_AT = 100;

/** Quotes a word for a POSIX shell only when it needs it. */
function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./~-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;
}

export class Narrator {
  readonly #root: string;
  readonly #out: NodeJS.WritableStream;
  #step = 0;

  constructor(root: string, out: NodeJS.WritableStream = process.stdout) {
    this.#root = root;
    this.#out = out;
  }

  /** `$DEMO/...` for paths inside the demo folder. */
  short(text: string): string {
    return text.replaceAll(this.#root, '$DEMO');
  }

  #write(text: string): void {
    this.#out.write(`${text}\n`);
  }

  title(text: string): void {
    this.#write(`\n${text}\n${'='.repeat(text.length)}`);
  }

  step(title: string): void {
    this.#step += 1;
    const head = `${this.#step}. ${title}`;
    this.#write(`\n${head}\n${'-'.repeat(head.length)}`);
  }

  /** Plain explanation; long sentences are left to the terminal to wrap. */
  say(...lines: string[]): void {
    for (const l of lines) this.#write(this.short(l));
  }

  /** Text written as is (not shortened). */
  raw(text: string): void {
    this.#write(text);
  }

  /**
   * A command line as typed on `machine` (a `laptop$ ...` prompt). A long one is shown the way a
   * shell script would break it: one `--option value` per line, with `\` continuations.
   */
  command(machine: string, words: readonly string[]): void {
    const shown = words.map((w) => this.short(shellWord(w)));
    const prompt = `  ${machine}$ `;
    if (prompt.length + shown.join(' ').length <= WRAP_AT) {
      this.#write(`\n${prompt}${shown.join(' ')}`);
      return;
    }
    const lines: string[] = [];
    for (const w of shown) {
      if (lines.length === 0 || w.startsWith('-')) lines.push(w);
      else lines[lines.length - 1] += ` ${w}`;
    }
    const pad = ' '.repeat(prompt.length + 2);
    this.#write(`\n${prompt}${lines.map((l, i) => (i === 0 ? l : pad + l)).join(' \\\n')}`);
  }

  /** Output of the last command (or a file's contents), indented. */
  output(text: string): void {
    if (text === '') return;
    const lines = text.replace(/\n+$/, '').split('\n');
    for (const l of lines) this.#write(`${INDENT}${this.short(l)}`.trimEnd());
  }

  /** Lines another process printed meanwhile (a worker's log), under a short heading. */
  aside(heading: string, lines: readonly string[]): void {
    if (lines.length === 0) return;
    this.#write(`\n  ${heading}`);
    for (const l of lines) this.#write(`${INDENT}${this.short(l)}`.trimEnd());
  }
}
