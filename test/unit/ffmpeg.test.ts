/**
 * lib/video/ffmpeg.ts: the release read from `ffmpeg -version`, and the order ffmpeg is chosen in
 * (FFMPEG_PATH, then a 5.1+ ffmpeg on PATH, then the bundled build). The candidates are tiny shell scripts
 * that print a chosen version line, each in a folder of a temporary PATH: the version line is what is under test.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { findOnPath, formatFfmpegRelease, parseFfmpegRelease, releaseAtLeast, resolveFfmpeg } from '../../lib/video/ffmpeg.ts';

describe('parseFfmpegRelease', () => {
  const cases: [string, string | undefined][] = [
    ['ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026 the FFmpeg developers', '5.1.9'], // Debian 12
    ['ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021 the FFmpeg developers', '4.4.2'], // Ubuntu 22.04
    ['ffmpeg version 6.0-static https://johnvansickle.com/ffmpeg/  Copyright (c) 2000-2023', '6.0'],
    ['ffmpeg version n7.1.1-6-g48c0f071d4-20250405 Copyright (c) 2000-2025 the FFmpeg developers', '7.1.1'], // a release tag's build
    ['ffmpeg version 7.1.1 Copyright (c) 2000-2025 the FFmpeg developers', '7.1.1'],
    ['ffmpeg version 10.0 Copyright (c) 2000-2031', '10.0'],
    // Git snapshots name no release: the bundled 2018 build is one.
    ['ffmpeg version N-47683-g0e8eb07980-static https://johnvansickle.com/ffmpeg/  Copyright (c) 2000-2018', undefined],
    ['ffmpeg version git-2020-08-31-4a11a6f Copyright (c) 2000-2020 the FFmpeg developers', undefined],
    ['ffmpeg version 2025-01-01-git-abc123-full_build-www.gyan.dev Copyright (c) 2000-2025', undefined],
    ['ffmpeg version 7.1.1.2 Copyright', undefined],
    ['ffprobe version 6.0 Copyright', undefined],
    ['', undefined],
  ];
  for (const [line, expected] of cases) {
    it(`${JSON.stringify(line.slice(0, 44))} -> ${expected ?? 'undefined'}`, () => {
      const release = parseFfmpegRelease(line);
      assert.equal(release && formatFfmpegRelease(release), expected);
    });
  }
  it('compares major, then minor, against 5.1', () => {
    const at = (major: number, minor: number) => releaseAtLeast({ major, minor });
    assert.deepEqual(
      [at(4, 9), at(5, 0), at(5, 1), at(5, 10), at(6, 0), at(7, 1), at(10, 0)],
      [false, false, true, true, true, true, true],
    );
    assert.equal(releaseAtLeast({ major: 6, minor: 0 }, { major: 6, minor: 1 }), false);
  });
});

describe('resolveFfmpeg', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'score-miner-ffmpeg-order-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let folders = 0;

  /** A folder holding an executable `ffmpeg` that prints `line` (exit 0) or fails (`line` undefined). */
  function fakeFfmpeg(line: string | undefined, options: { name?: string; mode?: number } = {}): string {
    const dir = path.join(root, String(++folders));
    mkdirSync(dir);
    const file = path.join(dir, options.name ?? 'ffmpeg');
    const body = line === undefined ? 'echo "cannot start" >&2; exit 1' : `echo '${line}'`;
    writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: options.mode ?? 0o755 });
    return dir;
  }
  const bundledDir = fakeFfmpeg('ffmpeg version N-47683-g0e8eb07980-static https://johnvansickle.com/ffmpeg/');
  const bundled = path.join(bundledDir, 'ffmpeg');
  const debian = fakeFfmpeg('ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026 the FFmpeg developers');
  const ubuntu = fakeFfmpeg('ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021 the FFmpeg developers');
  const empty = path.join(root, 'empty');
  mkdirSync(empty);

  it('FFMPEG_PATH wins over a newer ffmpeg on PATH, whatever its version', () => {
    const chosen = resolveFfmpeg(path.join(ubuntu, 'ffmpeg'), { pathEnv: debian, bundled });
    assert.deepEqual(
      { ...chosen },
      {
        path: path.join(ubuntu, 'ffmpeg'),
        source: 'FFMPEG_PATH',
        version: 'ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021 the FFmpeg developers',
        release: '4.4.2',
        outdated: false,
        passedOver: [],
      },
    );
  });

  it('a FFMPEG_PATH that does not run is an error, never a fallback to PATH', () => {
    assert.throws(
      () => resolveFfmpeg(path.join(fakeFfmpeg(undefined), 'ffmpeg'), { pathEnv: debian, bundled }),
      /FFMPEG_PATH=.*\/ffmpeg does not run as ffmpeg/,
    );
  });

  it('takes a 5.1 ffmpeg from PATH before the bundled build, by its full path', () => {
    const chosen = resolveFfmpeg(undefined, { pathEnv: [empty, debian].join(path.delimiter), bundled });
    assert.equal(chosen.path, path.join(debian, 'ffmpeg'));
    assert.equal(chosen.source, 'PATH');
    assert.equal(chosen.release, '5.1.9');
    assert.equal(chosen.outdated, false);
    assert.deepEqual(chosen.passedOver, []);
  });

  it('the first ffmpeg on PATH decides: an older one is passed over for the bundled build, not for a later PATH entry', () => {
    const chosen = resolveFfmpeg(undefined, { pathEnv: [ubuntu, debian].join(path.delimiter), bundled });
    assert.equal(chosen.path, bundled);
    assert.equal(chosen.source, '@ffmpeg-installer/ffmpeg');
    assert.equal(chosen.release, undefined);
    assert.equal(chosen.outdated, true);
    assert.deepEqual(chosen.passedOver, [`${path.join(ubuntu, 'ffmpeg')}: 4.4.2 is older than 5.1`]);
  });

  it('passes over a PATH ffmpeg that names no release (a git snapshot) or does not run', () => {
    const snapshot = fakeFfmpeg('ffmpeg version N-113000-g1234567890 Copyright (c) 2000-2024 the FFmpeg developers');
    const fromSnapshot = resolveFfmpeg(undefined, { pathEnv: snapshot, bundled });
    assert.equal(fromSnapshot.source, '@ffmpeg-installer/ffmpeg');
    assert.match(fromSnapshot.passedOver.join(), /: no release in "ffmpeg version N-113000-g1234567890 .*" \(set FFMPEG_PATH to use it\)$/);
    const broken = fakeFfmpeg(undefined);
    const fromBroken = resolveFfmpeg(undefined, { pathEnv: broken, bundled });
    assert.equal(fromBroken.path, bundled);
    assert.deepEqual(fromBroken.passedOver, [`${path.join(broken, 'ffmpeg')}: does not run as ffmpeg`]);
  });

  it('skips PATH entries whose ffmpeg is not an executable file, as spawn does', () => {
    const notExecutable = fakeFfmpeg('ffmpeg version 7.1.1', { mode: 0o644 });
    const folderNamedFfmpeg = path.join(root, 'folder');
    mkdirSync(path.join(folderNamedFfmpeg, 'ffmpeg'), { recursive: true });
    const pathEnv = ['', notExecutable, folderNamedFfmpeg, debian].join(path.delimiter);
    assert.equal(findOnPath('ffmpeg', pathEnv), path.join(debian, 'ffmpeg'));
    assert.equal(resolveFfmpeg(undefined, { pathEnv, bundled }).path, path.join(debian, 'ffmpeg'));
  });

  it('with no usable PATH ffmpeg and no bundled build (the image removes it): an error naming each candidate', () => {
    assert.throws(
      () => resolveFfmpeg(undefined, { pathEnv: empty, bundled: undefined }),
      (error: Error & { hint?: string }) => {
        assert.equal(error.message, 'no working ffmpeg found (no ffmpeg on PATH; @ffmpeg-installer/ffmpeg is not installed)');
        assert.match(error.hint ?? '', /apt-get install ffmpeg.*FFMPEG_PATH/);
        return true;
      },
    );
    assert.throws(
      () => resolveFfmpeg(undefined, { pathEnv: ubuntu, bundled: path.join(fakeFfmpeg(undefined), 'ffmpeg') }),
      /^MinerError: no working ffmpeg found \(.*\/ffmpeg: 4\.4\.2 is older than 5\.1; .*\/ffmpeg: does not run as ffmpeg\)$/,
    );
  });
});
