/**
 * One check for every `--url`-like flag naming a server (a miner's base URL): an http(s) URL with a host, read by
 * the URL parser rather than a pattern. Trailing slashes are dropped so callers append `/challenge` safely.
 */
import { UsageError } from './task.ts';

/** `value` as a base URL without trailing slashes, or a UsageError naming `--<flag>`. */
export function baseUrlFlag(flag: string, value: string): string {
  const url = value.trim().replace(/\/+$/, '');
  let parsed: URL | undefined;
  try {
    parsed = /\s/.test(url) ? undefined : new URL(url);
  } catch {
    parsed = undefined;
  }
  // The parser forgives `http:/host` and `http:///host`; a miner's address is written out as scheme://host.
  const afterScheme = parsed ? url.slice(parsed.protocol.length) : '';
  const spelledOut = afterScheme.startsWith('//') && !['/', '\\'].includes(afterScheme.charAt(2));
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.host === '' || !spelledOut)
    throw new UsageError(`--${flag} must look like http://HOST:PORT (got ${JSON.stringify(value)})`);
  return url;
}
