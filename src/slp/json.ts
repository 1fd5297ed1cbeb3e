/**
 * The JSON in a labels file is written by Python, whose `json` module writes `NaN`, `Infinity`
 * and `-Infinity` for such floats (and reads them back). JavaScript's JSON does neither, so each
 * such token outside a string is swapped for a placeholder string before parsing and swapped back
 * after serializing: a rewritten entry keeps every value it had.
 */

const SPECIALS = ['-Infinity', 'Infinity', 'NaN'] as const;
const PLACEHOLDER = (token: string) => `\u0000py:${token}`;

/** Python JSON text -> standard JSON text with placeholders (and whether any were needed). */
function toStandard(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    const token = SPECIALS.find((t) => text.startsWith(t, i));
    if (token) {
      out += JSON.stringify(PLACEHOLDER(token));
      i += token.length - 1;
      continue;
    }
    out += c;
  }
  return out;
}

export function parsePythonJson(text: string): unknown {
  return JSON.parse(text.includes('NaN') || text.includes('Infinity') ? toStandard(text) : text);
}

/** Compact JSON (as SLEAP writes it), with Python's float tokens restored. */
export function stringifyPythonJson(value: unknown): string {
  let text = JSON.stringify(value);
  for (const token of SPECIALS) text = text.split(JSON.stringify(PLACEHOLDER(token))).join(token);
  return text;
}

/** A parsed special float read back as a number (for callers that look at values). */
export function isPythonSpecial(value: unknown): boolean {
  return typeof value === 'string' && SPECIALS.some((t) => value === PLACEHOLDER(t));
}
