/**
 * JSON with line numbers: `JSON.parse` builds and validates the value, and a small scanner walks the same
 * (valid) text to record where each member and element starts, so an error about `annotations[3].label` can
 * name `file:line`. Pure.
 */
import { MinerError } from './errors.ts';

export type JsonPath = ReadonlyArray<string | number>;

export interface LocatedJson {
  value: unknown;
  /** 1-based line of the value at `path` (of its key, for an object member); undefined when there is none. */
  lineOf(path: JsonPath): number | undefined;
}

/** Text that is not JSON; `reason` is JSON.parse's message (with the line and column where Node gives them). */
export class JsonSyntaxError extends MinerError {
  readonly source: string;
  readonly reason: string;

  constructor(source: string, reason: string) {
    super(`${source} is not valid JSON: ${reason}`, {
      hint: 'fix the JSON syntax (a trailing comma or a missing quote is the usual cause)',
      kind: 'invalid-input',
    });
    this.name = 'JsonSyntaxError';
    this.source = source;
    this.reason = reason;
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `[1].frame`, `annotations[3].label`, `"Ball out of play"`; the root is `(root)`. */
export function formatJsonPath(path: JsonPath): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (IDENTIFIER.test(part)) out += out ? `.${part}` : part;
    else out += out ? `[${JSON.stringify(part)}]` : JSON.stringify(part);
  }
  return out;
}

const key = (path: JsonPath) => JSON.stringify(path);

/** Start offset of every value in `text` (assumed valid JSON), by JSON.stringify(path). */
function scanOffsets(text: string): Map<string, number> {
  const offsets = new Map<string, number>();
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const string = (): string => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: (string | number)[], at?: number): void => {
    ws();
    offsets.set(key(path), at ?? i);
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        const memberAt = i;
        const name = string();
        ws();
        i++; // ':'
        value([...path, name], memberAt);
        ws();
        if (text[i++] === ',') continue;
        return; // '}'
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        value([...path, n]);
        ws();
        if (text[i++] === ',') continue;
        return; // ']'
      }
    }
    if (c === '"') {
      string();
      return;
    }
    while (i < text.length && !',]} \t\n\r'.includes(text[i])) i++; // number, true, false, null
  };
  value([]);
  return offsets;
}

/** Parse `text` (a leading BOM is dropped); invalid JSON is a JsonSyntaxError naming `source` and JSON.parse's cause. */
export function parseJsonLocated(text: string, source: string): LocatedJson {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new JsonSyntaxError(source, (error as Error).message);
  }
  let offsets: Map<string, number> | undefined;
  return {
    value,
    lineOf(path) {
      offsets ??= scanOffsets(body);
      const offset = offsets.get(key(path));
      if (offset === undefined) return undefined;
      let line = 1;
      for (let i = 0; i < offset; i++) if (body.charCodeAt(i) === 10) line++;
      return line;
    },
  };
}
