/**
 * One logging style for server and tasks: `2026-11-25T12:00:00.000Z INFO  message key=value`.
 * Lines go to stderr so a task's stdout stays machine-readable (e.g. `--json`).
 * The threshold starts at info and is set from the validated configuration (LOG_LEVEL, lib/core/config.ts) by
 * whoever owns the process: the task helper (lib/core/task.ts) and the server's entry point. Nothing here reads
 * the environment, so a LOG_LEVEL from `.env` (loaded later than any import) is honoured.
 */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: LogLevel = 'info';

export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

export function getLogLevel(): LogLevel {
  return threshold;
}

/**
 * Caller-controlled text (a hotkey or nonce from a header, a challenge id, a URL, a user agent) as a log field:
 * at most `max` characters, then how long it really was. A forger's 16 KiB header makes a short line.
 */
export function clip(text: string, max?: number): string;
export function clip(text: string | undefined, max?: number): string | undefined;
export function clip(text: string | undefined, max = 64): string | undefined {
  if (text === undefined || text.length <= max) return text;
  return `${text.slice(0, max)}…(${text.length} chars)`;
}

/** A backstop for fields nobody clipped: no value makes a line longer than this (a stack trace fits). */
const FIELD_MAX_CHARS = 4000;

/** Quoted (JSON) when it holds whitespace, a quote or a control character, so a value cannot forge a line. */
function formatValue(value: unknown): string {
  if (typeof value !== 'string') return clip(JSON.stringify(value), FIELD_MAX_CHARS) ?? String(value);
  const text = clip(value, FIELD_MAX_CHARS);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
  return /[\s"\x00-\x1f\x7f-\x9f]/.test(text) ? JSON.stringify(text) : text;
}

function formatFields(fields?: Record<string, unknown>): string {
  if (!fields) return '';
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ` ${key}=${formatValue(value)}`)
    .join('');
}

function write(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
  if (ORDER[level] < ORDER[threshold]) return;
  process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}${formatFields(fields)}\n`);
}

export const log = {
  debug: (message: string, fields?: Record<string, unknown>) => write('debug', message, fields),
  info: (message: string, fields?: Record<string, unknown>) => write('info', message, fields),
  warn: (message: string, fields?: Record<string, unknown>) => write('warn', message, fields),
  error: (message: string, fields?: Record<string, unknown>) => write('error', message, fields),
};

export type LineWriter = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

export interface RepeatSummaryOptions {
  /** One summary line per key per this many ms (default 60 s). */
  intervalMs?: number;
  /** Injected by tests; default Date.now. */
  now?: () => number;
  /** Where lines go; default this module's logger. */
  write?: LineWriter;
}

interface RepeatState {
  level: LogLevel;
  message: string;
  /** When the current interval began: at the line written in full, then at each summary. */
  since: number;
  /** Occurrences not written since then. */
  count: number;
}

/**
 * Lines that may repeat at a caller's pace (rejected requests): the first occurrence of each key is written in
 * full, later ones within the interval only counted, and each interval that saw any ends with one line per key
 * (`repeated=N over_s=S`). A key quiet for a whole interval is forgotten, so its next occurrence is written in full
 * again. Keys must come from a fixed set (reasons, never caller input): each holds one entry until it goes quiet.
 */
export class RepeatSummary {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly write: LineWriter;
  private readonly states = new Map<string, RepeatState>();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: RepeatSummaryOptions = {}) {
    this.intervalMs = options.intervalMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.write = options.write ?? ((level, message, fields) => log[level](message, fields));
  }

  /** One occurrence of `key`: written in full when it is the first of its interval, otherwise counted. */
  note(key: string, level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    const now = this.now();
    let state = this.states.get(key);
    if (state && now - state.since >= this.intervalMs) {
      this.summarise(key, state, now);
      state = this.states.get(key);
    }
    if (state) {
      state.count++;
      return;
    }
    this.states.set(key, { level, message, since: now, count: 0 });
    this.write(level, message, { ...fields, repeats: `summarised every ${this.intervalMs / 1000} s` });
  }

  /** Ends every interval that is over: its summary line when it saw repeats, else the key is forgotten. */
  flush(): void {
    const now = this.now();
    for (const [key, state] of this.states) if (now - state.since >= this.intervalMs) this.summarise(key, state, now);
  }

  /** Flush on a timer (unref'd: it never keeps the process alive). */
  start(): this {
    this.timer ??= setInterval(() => this.flush(), Math.max(1000, this.intervalMs / 4)).unref();
    return this;
  }

  /** Stop the timer and write what is still counted, however short its interval was so far. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    const now = this.now();
    for (const [key, state] of this.states) if (state.count > 0) this.summarise(key, state, now);
    this.states.clear();
  }

  private summarise(key: string, state: RepeatState, now: number): void {
    if (state.count === 0) {
      this.states.delete(key);
      return;
    }
    this.write(state.level, state.message, { key, repeated: state.count, over_s: Math.round((now - state.since) / 1000) });
    state.since = now;
    state.count = 0;
  }
}
