/**
 * URLs as they may appear in a message, a log line or GET /health: without user-info (user:password@), query
 * or fragment. Those are where secrets ride in a URL: an RPC endpoint's ?apikey=, a CDN's presigned
 * X-Amz-Signature, basic-auth credentials. Scheme, host, port and path stay, so the line still says where.
 */

/** Anything shaped like scheme://..., up to the first space, quote or angle bracket. */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'`<>]+/gi;
/** Punctuation that ends a sentence around a URL rather than belonging to it: "(see http://x/a)." */
const TRAILING_PUNCTUATION = /[)\].,;:!]+$/;

/** One URL with user-info, query and fragment removed; a string that does not parse is cut the same way by hand. */
export function redactUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return String(url)
      .replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1')
      .replace(/[?#].*$/s, '');
  }
  // Nothing to remove: the URL as given (not re-serialised, so a message keeps the spelling it was given in).
  if (!parsed.username && !parsed.password && !parsed.search && !parsed.hash) return String(url);
  const copy = new URL(parsed.href);
  copy.username = '';
  copy.password = '';
  copy.search = '';
  copy.hash = '';
  return copy.href;
}

/** Every URL inside free text (an error message from a library, a log field) redacted as by redactUrl. */
export function redactUrls(text: string): string {
  return text.replace(URL_IN_TEXT, (match) => {
    const trailing = TRAILING_PUNCTUATION.exec(match)?.[0] ?? '';
    const url = trailing ? match.slice(0, -trailing.length) : match;
    return redactUrl(url) + trailing;
  });
}
