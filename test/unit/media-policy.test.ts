import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  boundedCommand,
  DECODE_FAILURE,
  decodeFailureMessage,
  decoderThreads,
  ffmpegEnvironment,
  filterThreads,
  inputKind,
  MAX_PIXELS,
  memoryBound,
  policyInputOptions,
  REFUSED_CONTAINERS,
  refusedContainerMessage,
  sniffContainer,
} from '../../lib/video/media-policy.ts';

const bytes = (...values: Array<number | string>): Uint8Array =>
  Buffer.concat(values.map((v) => (typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from([v]))));
const box = (type: string, size = 24) => bytes(0, 0, 0, size, type, ...Array(size - 8).fill(0));

describe('sniffContainer', () => {
  const cases: Array<[string, Uint8Array, string]> = [
    ['ftyp first', box('ftyp'), 'MP4/MOV'],
    ['QuickTime moov first', box('moov'), 'MP4/MOV'],
    ['QuickTime wide atom first', box('wide', 8), 'MP4/MOV'],
    ['mdat to the end (size 0)', bytes(0, 0, 0, 0, 'mdat'), 'MP4/MOV'],
    ['HLS playlist', bytes('#EXTM3U\n#EXT-X-VERSION:3\n/tmp/x.ts\n'), 'HLS playlist'],
    ['HLS after a BOM and blank line', bytes(0xef, 0xbb, 0xbf, '\n#EXTM3U\n'), 'HLS playlist'],
    [
      'DASH manifest after an XML declaration',
      bytes('<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">'),
      'DASH manifest',
    ],
    ['other XML', bytes('<?xml version="1.0"?><svg/>'), 'XML document'],
    ['ffconcat script', bytes('ffconcat version 1.0\nfile self.mp4\n'), 'ffconcat script'],
    ['SDP description', bytes('v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n'), 'SDP description'],
    ['Matroska', bytes(0x1a, 0x45, 0xdf, 0xa3, 0x9f), 'Matroska/WebM'],
    ['AVI', bytes('RIFF\x00\x00\x00\x00AVI '), 'AVI/RIFF'],
    ['MPEG-TS', bytes(0x47, 0x40, 0x00, 0x10, ...Array(184).fill(0xff), 0x47, 0x40), 'MPEG-TS'],
    ['MPEG-PS', bytes(0, 0, 1, 0xba, 0x44), 'MPEG-PS'],
    ['Annex B H.264', bytes(0, 0, 0, 1, 0x67, 0x64), 'raw H.264/H.265 stream'],
    ['FLV', bytes('FLV\x01\x05'), 'FLV'],
    ['Ogg', bytes('OggS\x00\x02'), 'Ogg'],
    ['PNG', bytes(0x89, 'PNG\r\n\x1a\n'), 'PNG image'],
    ['JPEG', bytes(0xff, 0xd8, 0xff, 0xe0), 'JPEG image'],
    ['GIF', bytes('GIF89a'), 'GIF image'],
    ['an HTML error page', bytes('<html>not found</html>'), 'XML document'],
    ['plain text', bytes('this is not a video'), 'text'],
    ['empty', bytes(), 'empty file'],
    ['binary noise', bytes(0x13, 0x37, 0xc0, 0xde, 0x00, 0xff, 0x80, 0x01, 0x02), 'unknown format'],
    ['a box name that is not an mp4 first box', box('abcd'), 'unknown format'],
  ];
  for (const [label, head, name] of cases) {
    it(label, () => {
      const verdict = sniffContainer(head);
      assert.equal(verdict.name, name);
      assert.equal(verdict.accepted, name === 'MP4/MOV');
    });
  }
  it('every refusal message is one of a fixed set, naming the container', () => {
    for (const name of REFUSED_CONTAINERS) {
      assert.equal(refusedContainerMessage(name), `Video could not be decoded: unsupported container (${name}); only MP4/MOV is accepted`);
    }
  });
});

describe('ffmpeg input options', () => {
  const value = (options: string[], flag: string) => options[options.indexOf(flag) + 1];
  it('each input kind gets only its own protocol', () => {
    assert.equal(inputKind('pipe:0'), 'pipe');
    assert.equal(inputKind('http://127.0.0.1:41234/abc'), 'http');
    assert.equal(inputKind('/tmp/score-miner-job/video'), 'file');
    assert.equal(value(policyInputOptions('pipe:0'), '-protocol_whitelist'), 'pipe');
    assert.equal(value(policyInputOptions('/tmp/x/video'), '-protocol_whitelist'), 'file');
    assert.equal(value(policyInputOptions('http://127.0.0.1:1/r'), '-protocol_whitelist'), 'http,tcp');
  });
  it('the demuxer is forced and whitelisted, drefs off, pixels capped', () => {
    const options = policyInputOptions('pipe:0', 2);
    assert.equal(value(options, '-f'), 'mov');
    assert.equal(value(options, '-format_whitelist'), 'mov');
    assert.equal(value(options, '-enable_drefs'), '0');
    assert.equal(value(options, '-max_pixels'), String(4096 * 2304));
    assert.equal(MAX_PIXELS, 9_437_184);
  });
  it('threads follow the cores up to a cap', () => {
    assert.deepEqual(
      [1, 2, 3, 16, 128].map((c) => decoderThreads(c)),
      [2, 3, 4, 4, 4],
    );
    assert.deepEqual(
      [1, 2, 3, 16, 128].map((c) => filterThreads(c)),
      [1, 2, 3, 4, 4],
    );
    const options = policyInputOptions('pipe:0', 64);
    assert.equal(value(options, '-threads'), '4');
    assert.equal(value(options, '-filter_threads'), '4');
  });
});

describe('ffmpeg environment and memory bound', () => {
  it('the environment is PATH and a locale, nothing of the miner', () => {
    const env = ffmpegEnvironment({ PATH: '/usr/bin:/bin', DOCKERHUB_TOKEN: 'secret', HOME: '/root', http_proxy: 'http://127.0.0.1:3128' });
    assert.deepEqual(env, { PATH: '/usr/bin:/bin', LC_ALL: 'C' });
    assert.deepEqual(Object.keys(ffmpegEnvironment({})).sort(), ['LC_ALL', 'PATH']);
  });
  it('prlimit wraps ffmpeg when the host has it, and nothing wraps it when not', () => {
    const found = memoryBound([process.execPath]);
    assert.equal(found.method, 'prlimit');
    assert.deepEqual(boundedCommand('/usr/bin/ffmpeg', ['-i', 'pipe:0'], found), {
      file: process.execPath,
      args: [`--as=${found.bytes}`, '--', '/usr/bin/ffmpeg', '-i', 'pipe:0'],
    });
    const missing = memoryBound(['/nonexistent/prlimit']);
    assert.equal(missing.method, 'none');
    assert.deepEqual(boundedCommand('/usr/bin/ffmpeg', ['-i', 'pipe:0'], missing), { file: '/usr/bin/ffmpeg', args: ['-i', 'pipe:0'] });
  });
});

describe('decodeFailureMessage', () => {
  const cases: Array<[string, string, string | undefined, string]> = [
    ['a pixel-cap refusal', 'Picture size 16000x12000 exceeds specified max pixel count 9437184', undefined, DECODE_FAILURE.tooLarge],
    ['an allocation failure', '[h264 @ 0x55d0] Cannot allocate memory', undefined, DECODE_FAILURE.outOfMemory],
    ['a crash', '', 'SIGSEGV', DECODE_FAILURE.crashed],
    [
      'anything else, caller names and heap addresses included',
      "[mov @ 0x5581] /etc/passwd: Invalid data found 'x'",
      undefined,
      DECODE_FAILURE.invalid,
    ],
  ];
  for (const [label, stderr, killedBy, message] of cases) {
    it(label, () => {
      const got = decodeFailureMessage(stderr, killedBy);
      assert.equal(got, message);
      assert.ok(!got.includes('0x55'), 'no address reaches the caller');
    });
  }
});
