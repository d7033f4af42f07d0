/**
 * Which ffmpeg the miner runs: FFMPEG_PATH, else the binary shipped in @ffmpeg-installer/ffmpeg, else PATH.
 * Each candidate is run once (`ffmpeg -version`) to prove it works before it is chosen.
 */
import { createRequire } from 'node:module';
import { execaSync } from 'execa';
import { MinerError } from '../core/errors.ts';

export interface FfmpegBinary {
  path: string;
  /** Where it came from: FFMPEG_PATH, the npm package, or PATH. */
  source: 'FFMPEG_PATH' | '@ffmpeg-installer/ffmpeg' | 'PATH';
  /** First line of `ffmpeg -version`. */
  version: string;
}

function ffmpegVersion(binary: string): string | undefined {
  const result = execaSync(binary, ['-hide_banner', '-version'], { stdin: 'ignore', timeout: 10_000, reject: false });
  if (result.failed || result.exitCode !== 0 || !result.stdout) return undefined;
  return result.stdout.split('\n')[0].trim();
}

function packagedFfmpeg(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    return undefined; // no binary for this platform: fall through to PATH
  }
}

/**
 * Resolve ffmpeg in a fixed order: FFMPEG_PATH (must work, no silent fallback), then the binary shipped in
 * @ffmpeg-installer/ffmpeg (works offline), then `ffmpeg` on PATH. Each candidate is run once to prove it works.
 */
export function resolveFfmpeg(override?: string): FfmpegBinary {
  if (override) {
    const version = ffmpegVersion(override);
    if (!version) {
      throw new MinerError(`FFMPEG_PATH=${override} does not run as ffmpeg`, {
        hint: 'point FFMPEG_PATH at a working ffmpeg binary, or unset it to use the bundled one',
      });
    }
    return { path: override, source: 'FFMPEG_PATH', version };
  }
  const packaged = packagedFfmpeg();
  const packagedVersion = packaged ? ffmpegVersion(packaged) : undefined;
  if (packaged && packagedVersion) return { path: packaged, source: '@ffmpeg-installer/ffmpeg', version: packagedVersion };
  const onPath = ffmpegVersion('ffmpeg');
  if (onPath) return { path: 'ffmpeg', source: 'PATH', version: onPath };
  throw new MinerError('no working ffmpeg found (tried FFMPEG_PATH, @ffmpeg-installer/ffmpeg, PATH)', {
    hint: 'run `npm ci` again, or install ffmpeg (`apt-get install ffmpeg`) or set FFMPEG_PATH',
  });
}
