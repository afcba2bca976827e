/** Where a progress bar draws: a writable with a TTY flag and a width (process.stderr). */
export interface ProgressOutput {
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  write(text: string): unknown;
}

const WIDTH = 30;
const REDRAW_MS = 100;

/**
 * A one-line progress bar redrawn in place (`\r`), at most every 100 ms. It draws only on
 * a terminal: piped or redirected output gets nothing, so scripts see clean streams.
 */
export class ProgressBar {
  readonly #output: ProgressOutput;
  readonly #total: number;
  readonly #label: string;
  #drawnAt = 0;
  #drawn = false;

  constructor(output: ProgressOutput, total: number, label: string) {
    this.#output = output;
    this.#total = total;
    this.#label = label;
  }

  /** Whether anything will be drawn. */
  get enabled(): boolean {
    return this.#output.isTTY === true;
  }

  /** Shows `done` of the total; `force` draws now even if drawn less than 100 ms ago. */
  update(done: number, detail = "", force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.#drawnAt < REDRAW_MS) return;
    this.#drawnAt = now;
    const ratio = this.#total <= 0 ? 1 : Math.min(1, done / this.#total);
    const filled = Math.round(ratio * WIDTH);
    const bar = `${"█".repeat(filled)}${"░".repeat(WIDTH - filled)}`;
    const line = `${this.#label} ${bar} ${String(Math.floor(ratio * 100)).padStart(3)}% ${detail}`;
    // A pseudo-terminal without a size reports 0 columns.
    const columns = this.#output.columns || 80;
    this.#output.write(`\r${line.slice(0, columns - 1).padEnd(Math.min(columns - 1, line.length))}\x1b[K`);
    this.#drawn = true;
  }

  /** Ends the bar's line, so what follows starts on a fresh one. */
  finish(): void {
    if (this.#drawn) this.#output.write("\n");
    this.#drawn = false;
  }
}

/** Bytes in a readable unit: 512 B, 1.5 KiB, 12.0 MiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
