/**
 * What ffmpeg may do with a caller's video. The miner feeds whatever a `video_url` serves to ffmpeg, whose
 * demuxers can open other resources (HLS and DASH playlists, concat scripts, SDP, image sequences, mov data
 * references): a file served as `video.mp4` could make it read any local file. So every decode:
 * - is sniffed first (sniffContainer): only the MP4/MOV family goes on; anything else is refused by name,
 *   before ffmpeg starts, with nothing decoded and nothing opened;
 * - runs with the demuxer forced and whitelisted (`mov`, no external data references) and only the one
 *   protocol its input needs (`pipe`, `file`, or `http,tcp` for the challenge's own loopback range server);
 * - is bounded: frame size (-max_pixels), decoder and filter threads, and an address-space limit (RLIMIT_AS,
 *   through util-linux `prlimit`) on the ffmpeg process;
 * - sees a built environment (PATH and locale), never the miner's (which may hold registry tokens);
 * - fails with one of a fixed set of messages: ffmpeg's stderr (heap addresses, caller-chosen names) goes to
 *   the log only.
 * docs/security.md ("Hostile media") is the policy in words.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';

/** ffmpeg's demuxer for the ISO base media family (mov, mp4, m4a, 3gp, 3g2, mj2): what validators send. */
export const ACCEPTED_DEMUXER = 'mov';

/** Validator chunks are at most 1080p; 4096x2304 leaves room for 4K-class sources and stops a 16000x12000 bomb. */
export const MAX_WIDTH = 4096;
export const MAX_HEIGHT = 2304;
export const MAX_PIXELS = MAX_WIDTH * MAX_HEIGHT;

/**
 * The address space one ffmpeg may map. Debian's ffmpeg 5.1 maps about 850 MB (libraries, thread stacks and
 * malloc arenas; 110 MB resident) decoding 1080p with 4 decoder and 4 filter threads; frames above MAX_PIXELS
 * never get this far. A decoder that asks for more gets an allocation failure, not the host's memory.
 */
export const FFMPEG_ADDRESS_SPACE_BYTES = 1536 * 1024 * 1024;

/** Thread caps: frame threads grow with the core count (and their buffers with them) on a big GPU host. */
export const MAX_DECODER_THREADS = 4;
export const MAX_FILTER_THREADS = 4;

/** The first bytes looked at to name a container (an XML declaration can precede a DASH `<MPD`). */
export const SNIFF_BYTES = 512;

/** How ffmpeg reaches its input: its stdin, a local file, or the challenge's loopback range server. */
export type InputKind = 'pipe' | 'file' | 'http';

export function inputKind(input: string): InputKind {
  if (input === 'pipe:0' || input === '-') return 'pipe';
  if (/^http:\/\//.test(input)) return 'http';
  return 'file';
}

/** The only protocols an input of this kind needs (http reaches its server over tcp). */
export function protocolWhitelist(kind: InputKind): string {
  return { pipe: 'pipe', file: 'file', http: 'http,tcp' }[kind];
}

/** Decoder threads: ffmpeg's own choice (cores + 1) below the cap, so a 2-core host decodes as before. */
export function decoderThreads(cores = os.availableParallelism()): number {
  return Math.max(1, Math.min(cores + 1, MAX_DECODER_THREADS));
}

export function filterThreads(cores = os.availableParallelism()): number {
  return Math.max(1, Math.min(cores, MAX_FILTER_THREADS));
}

/** ffmpeg's options before `-i` for `input`: the format, the protocols and the bounds. */
export function policyInputOptions(input: string, cores = os.availableParallelism()): string[] {
  return [
    '-filter_threads',
    String(filterThreads(cores)),
    '-threads',
    String(decoderThreads(cores)),
    '-max_pixels',
    String(MAX_PIXELS),
    '-f',
    ACCEPTED_DEMUXER,
    '-format_whitelist',
    ACCEPTED_DEMUXER,
    '-protocol_whitelist',
    protocolWhitelist(inputKind(input)),
    // mov's default too, said here so no build or future default can turn it on: no external tracks.
    '-enable_drefs',
    '0',
  ];
}

/** ffmpeg's whole environment: where its libraries' helpers are found, and a fixed locale. Nothing else. */
export function ffmpegEnvironment(env: Record<string, string | undefined> = process.env): Record<string, string> {
  return { PATH: env.PATH || '/usr/local/bin:/usr/bin:/bin', LC_ALL: 'C' };
}

/** What sniffContainer saw: the MP4/MOV family, or the name of what is refused. */
export type ContainerVerdict = { accepted: true; name: 'MP4/MOV' } | { accepted: false; name: RefusedContainer };

/** Every name a refusal can carry (a fixed set: the caller's bytes never reach the message). */
export const REFUSED_CONTAINERS = [
  'HLS playlist',
  'DASH manifest',
  'XML document',
  'ffconcat script',
  'SDP description',
  'Matroska/WebM',
  'AVI/RIFF',
  'MPEG-TS',
  'MPEG-PS',
  'FLV',
  'Ogg',
  'raw H.264/H.265 stream',
  'PNG image',
  'JPEG image',
  'GIF image',
  'text',
  'empty file',
  'unknown format',
] as const;
export type RefusedContainer = (typeof REFUSED_CONTAINERS)[number];

/** Top-level box types an ISO base media file starts with (ftyp, or a QuickTime file's first atom). */
const MP4_FIRST_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot']);

function ascii(head: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...head.subarray(start, Math.min(end, head.byteLength)));
}

function startsWith(head: Uint8Array, bytes: readonly number[], at = 0): boolean {
  return head.byteLength >= at + bytes.length && bytes.every((b, i) => head[at + i] === b);
}

/** Names the container from the first bytes of a file (SNIFF_BYTES, or all of a shorter one). */
export function sniffContainer(head: Uint8Array): ContainerVerdict {
  const refused = (name: RefusedContainer): ContainerVerdict => ({ accepted: false, name });
  if (head.byteLength === 0) return refused('empty file');
  if (head.byteLength >= 8) {
    const size = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0);
    if (MP4_FIRST_BOXES.has(ascii(head, 4, 8)) && (size === 0 || size === 1 || size >= 8)) return { accepted: true, name: 'MP4/MOV' };
  }
  // Text formats may start with a UTF-8 byte-order mark or white space.
  const text = ascii(head, 0, head.byteLength)
    .replace(/^\u00ef\u00bb\u00bf/, '')
    .trimStart();
  if (text.startsWith('#EXTM3U') || text.startsWith('#EXT-X-')) return refused('HLS playlist');
  if (/<MPD[\s>]/.test(text)) return refused('DASH manifest');
  if (text.startsWith('<?xml') || text.startsWith('<')) return refused('XML document');
  if (text.startsWith('ffconcat')) return refused('ffconcat script');
  if (/^v=0\r?\n/.test(text)) return refused('SDP description');
  if (startsWith(head, [0x1a, 0x45, 0xdf, 0xa3])) return refused('Matroska/WebM');
  if (ascii(head, 0, 4) === 'RIFF') return refused('AVI/RIFF');
  if (head.byteLength > 188 && head[0] === 0x47 && head[188] === 0x47) return refused('MPEG-TS'); // two 188-byte packets
  if (startsWith(head, [0x00, 0x00, 0x01, 0xba])) return refused('MPEG-PS');
  if (startsWith(head, [0x00, 0x00, 0x00, 0x01]) || startsWith(head, [0x00, 0x00, 0x01])) return refused('raw H.264/H.265 stream');
  if (ascii(head, 0, 3) === 'FLV') return refused('FLV');
  if (ascii(head, 0, 4) === 'OggS') return refused('Ogg');
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47])) return refused('PNG image');
  if (startsWith(head, [0xff, 0xd8, 0xff])) return refused('JPEG image');
  if (ascii(head, 0, 4) === 'GIF8') return refused('GIF image');
  // Printable ASCII and white space only: a script, a list, an error page.
  if (head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f))) return refused('text');
  return refused('unknown format');
}

/** The fixed messages a decode failure answers with (the details are logged, never sent). */
export const DECODE_FAILURE = {
  invalid: 'Video could not be decoded: not a valid or complete MP4/MOV video',
  tooLarge: `Video could not be decoded: its frame size is above the ${MAX_WIDTH}x${MAX_HEIGHT} limit`,
  outOfMemory: 'Video could not be decoded: ffmpeg reached its memory limit',
  crashed: 'Video could not be decoded: ffmpeg stopped on this input',
  noFrames: 'Video could not be decoded: no video frames found',
} as const;

export function refusedContainerMessage(name: RefusedContainer): string {
  return `Video could not be decoded: unsupported container (${name}); only MP4/MOV is accepted`;
}

/** Picks the fixed message for a failed ffmpeg run from its stderr and how it ended. */
export function decodeFailureMessage(stderr: string, killedBy: string | undefined): string {
  if (/exceeds specified max pixel count|Picture size \d+x\d+ is invalid/i.test(stderr)) return DECODE_FAILURE.tooLarge;
  if (/Cannot allocate memory|out of memory|ENOMEM/i.test(stderr)) return DECODE_FAILURE.outOfMemory;
  if (killedBy) return DECODE_FAILURE.crashed;
  return DECODE_FAILURE.invalid;
}

/** util-linux prlimit, where the host has it (Debian and the image do: util-linux is essential). */
const PRLIMIT_CANDIDATES = ['/usr/bin/prlimit', '/bin/prlimit'];

export interface MemoryBound {
  /** 'prlimit': RLIMIT_AS set on each ffmpeg; 'none': the host has no prlimit, ffmpeg is bounded by pixels and threads only. */
  method: 'prlimit' | 'none';
  bytes: number;
  prlimit?: string;
}

export function memoryBound(candidates: readonly string[] = PRLIMIT_CANDIDATES): MemoryBound {
  const prlimit = candidates.find((candidate) => existsSync(candidate));
  return prlimit
    ? { method: 'prlimit', bytes: FFMPEG_ADDRESS_SPACE_BYTES, prlimit }
    : { method: 'none', bytes: FFMPEG_ADDRESS_SPACE_BYTES };
}

/** The command that runs ffmpeg under the memory bound: prlimit sets RLIMIT_AS on itself, then execs ffmpeg (same pid). */
export function boundedCommand(ffmpegPath: string, args: readonly string[], bound: MemoryBound): { file: string; args: string[] } {
  if (bound.method === 'none' || !bound.prlimit) return { file: ffmpegPath, args: [...args] };
  return { file: bound.prlimit, args: [`--as=${bound.bytes}`, '--', ffmpegPath, ...args] };
}
