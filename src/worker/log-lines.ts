/**
 * Turning a child's output stream into bounded lines, and reading epoch progress from them.
 *
 * sleap-nn's progress bars (tqdm, Lightning) redraw with "\r" and colour with ANSI escapes, and a
 * runaway process can print a line of any length. Lines here end at "\n", "\r\n" or a lone "\r";
 * escapes are removed; a line longer than the bound is cut, and the rest of it is dropped as it
 * arrives instead of being buffered.
 */

const TRUNCATION_MARK = ' …[truncated]';
// CSI sequences (colours, cursor moves) and two-byte escapes; enough for progress-bar output.
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\u001b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])/g;

export class LineSplitter {
  private buffer = '';
  private truncated = false;
  private afterCR = false;

  constructor(
    private readonly maxChars: number,
    private readonly emit: (line: string) => void,
  ) {
    if (maxChars <= TRUNCATION_MARK.length) throw new RangeError(`maxChars must exceed ${TRUNCATION_MARK.length}`);
  }

  /** Feed decoded text (use a stream with setEncoding('utf8') so characters are never split). */
  push(text: string): void {
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 /* \n */ || c === 13 /* \r */) {
        this.append(text.slice(start, i));
        // The "\n" of a "\r\n" ends a line already emitted; a bare "\r" redraw emits nothing empty.
        const secondHalfOfCrlf = c === 10 && this.afterCR && i === start;
        const emptyRedraw = c === 13 && this.buffer === '' && !this.truncated;
        if (!secondHalfOfCrlf && !emptyRedraw) this.flush();
        this.afterCR = c === 13;
        start = i + 1;
      } else if (this.afterCR) {
        this.afterCR = false;
      }
    }
    this.append(text.slice(start));
  }

  /** The stream ended: emit a last line that had no terminator. */
  end(): void {
    if (this.buffer !== '' || this.truncated) this.flush();
  }

  private append(part: string): void {
    if (part === '' || this.truncated) return;
    const room = this.maxChars - this.buffer.length;
    if (part.length <= room) {
      this.buffer += part;
    } else {
      this.buffer += part.slice(0, room);
      this.truncated = true;
    }
  }

  private flush(): void {
    let line = this.buffer.replace(ANSI_ESCAPE, '');
    if (this.truncated) line = line.slice(0, this.maxChars - TRUNCATION_MARK.length) + TRUNCATION_MARK;
    this.buffer = '';
    this.truncated = false;
    this.emit(line);
  }
}

export interface EpochProgress {
  epoch: number;
  totalEpochs: number;
}

const EPOCH = /\bEpoch\s+(\d{1,9})\s*\/\s*(\d{1,9})\b/;

/** `Epoch 3/100` anywhere in a line; undefined for lines without a plausible epoch counter. */
export function parseEpochProgress(line: string): EpochProgress | undefined {
  const m = EPOCH.exec(line);
  if (!m) return undefined;
  const epoch = Number(m[1]);
  const totalEpochs = Number(m[2]);
  if (totalEpochs === 0 || epoch > totalEpochs) return undefined;
  return { epoch, totalEpochs };
}
