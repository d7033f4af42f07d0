/**
 * Which ffmpeg the miner runs: FFMPEG_PATH, else an `ffmpeg` on PATH of release 5.1 or newer (a maintained
 * build, e.g. Debian 12's), else the static build shipped in @ffmpeg-installer (a December 2018 git snapshot:
 * it works offline but carries years of fixed memory-safety bugs). Each candidate is run once
 * (`ffmpeg -version`) to prove it works before it is chosen.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { execaSync } from 'execa';
import { MinerError } from '../core/errors.ts';

/** The oldest release taken from PATH: Debian 12's (bookworm) ffmpeg, still receiving security fixes. */
export const MIN_FFMPEG_RELEASE = { major: 5, minor: 1 } as const;

export interface FfmpegRelease {
  major: number;
  minor: number;
  /** Absent where the build prints none (`6.0-static`). */
  patch?: number;
}

export interface FfmpegBinary {
  path: string;
  /** Where it came from: FFMPEG_PATH, PATH, or the npm package. */
  source: 'FFMPEG_PATH' | 'PATH' | '@ffmpeg-installer/ffmpeg';
  /** First line of `ffmpeg -version`. */
  version: string;
  /** The release parsed from `version`, e.g. `5.1.9`; undefined for builds that print none (git snapshots: `N-…`). */
  release: string | undefined;
  /** The 2018 build bundled in @ffmpeg-installer was chosen: no security fixes since; see README troubleshooting. */
  outdated: boolean;
  /** Candidates passed over and why, e.g. `/usr/local/bin/ffmpeg: 4.4.2 is older than 5.1`. */
  passedOver: string[];
}

/** Where resolveFfmpeg looks: the PATH to search and the bundled binary (undefined where the package is absent). */
export interface FfmpegSearch {
  pathEnv: string;
  bundled: string | undefined;
}

/**
 * The release in the first line of `ffmpeg -version`: `ffmpeg version 5.1.9-0+deb12u1 …` (Debian), `6.0-static`,
 * `n7.1.1-6-g48c0f071d4-20250405` (a build of a release tag). Git snapshots (`N-47683-g0e8eb07980-static`,
 * `git-2020-08-31-…`) and anything else unrecognised give undefined: their age cannot be told from the line.
 */
export function parseFfmpegRelease(versionLine: string): FfmpegRelease | undefined {
  const match = /^ffmpeg version n?(\d+)\.(\d+)(?:\.(\d+))?(?![\d.])/.exec(versionLine.trim());
  if (!match) return undefined;
  const release: FfmpegRelease = { major: Number(match[1]), minor: Number(match[2]) };
  if (match[3] !== undefined) release.patch = Number(match[3]);
  return release;
}

export function formatFfmpegRelease(release: FfmpegRelease): string {
  return [release.major, release.minor, release.patch].filter((part) => part !== undefined).join('.');
}

/** Whether a release is at least `minimum` (major.minor). */
export function releaseAtLeast(release: FfmpegRelease, minimum: { major: number; minor: number } = MIN_FFMPEG_RELEASE): boolean {
  return release.major !== minimum.major ? release.major > minimum.major : release.minor >= minimum.minor;
}

function ffmpegVersion(binary: string): string | undefined {
  const result = execaSync(binary, ['-hide_banner', '-version'], { stdin: 'ignore', timeout: 10_000, reject: false });
  if (result.failed || result.exitCode !== 0 || !result.stdout) return undefined;
  return result.stdout.split('\n')[0].trim();
}

/** The first executable file named `name` in a PATH string, as spawn would find it; undefined if none. */
export function findOnPath(name: string, pathEnv: string): string | undefined {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir) continue; // an empty entry means the working directory: never a source of binaries for the miner
    const candidate = path.join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not there, or not executable: the next directory
    }
  }
  return undefined;
}

/** The binary inside @ffmpeg-installer, or undefined where the package or its platform build is absent (the image removes it). */
export function bundledFfmpeg(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    return undefined;
  }
}

function binary(file: string, source: FfmpegBinary['source'], version: string, passedOver: string[]): FfmpegBinary {
  const release = parseFfmpegRelease(version);
  return {
    path: file,
    source,
    version,
    release: release && formatFfmpegRelease(release),
    outdated: source === '@ffmpeg-installer/ffmpeg',
    passedOver,
  };
}

/**
 * Resolve ffmpeg in a fixed order:
 * 1. FFMPEG_PATH (`override`): must run, any version (an explicit choice); no silent fallback.
 * 2. `ffmpeg` on PATH if it runs and its release is 5.1 or newer. A build whose version line names no release
 *    (a git snapshot) is passed over: its age is unknown, and the bundled build is one such snapshot from 2018.
 *    Name it with FFMPEG_PATH to use it.
 * 3. The static build bundled in @ffmpeg-installer (`outdated`: the caller warns where it matters).
 */
export function resolveFfmpeg(
  override?: string,
  search: FfmpegSearch = { pathEnv: process.env.PATH ?? '', bundled: bundledFfmpeg() },
): FfmpegBinary {
  if (override) {
    const version = ffmpegVersion(override);
    if (!version) {
      throw new MinerError(`FFMPEG_PATH=${override} does not run as ffmpeg`, {
        hint: 'point FFMPEG_PATH at a working ffmpeg binary, or unset it to use the ffmpeg on PATH',
      });
    }
    return binary(override, 'FFMPEG_PATH', version, []);
  }
  const passedOver: string[] = [];
  const onPath = findOnPath('ffmpeg', search.pathEnv);
  if (onPath) {
    const version = ffmpegVersion(onPath);
    const release = version ? parseFfmpegRelease(version) : undefined;
    const minimum = `${MIN_FFMPEG_RELEASE.major}.${MIN_FFMPEG_RELEASE.minor}`;
    if (!version) passedOver.push(`${onPath}: does not run as ffmpeg`);
    else if (!release) passedOver.push(`${onPath}: no release in "${version}" (set FFMPEG_PATH to use it)`);
    else if (!releaseAtLeast(release)) passedOver.push(`${onPath}: ${formatFfmpegRelease(release)} is older than ${minimum}`);
    else return binary(onPath, 'PATH', version, passedOver);
  }
  const bundledVersion = search.bundled ? ffmpegVersion(search.bundled) : undefined;
  if (search.bundled && bundledVersion) return binary(search.bundled, '@ffmpeg-installer/ffmpeg', bundledVersion, passedOver);
  const tried = [
    ...passedOver,
    ...(onPath ? [] : ['no ffmpeg on PATH']),
    search.bundled ? `${search.bundled}: does not run as ffmpeg` : '@ffmpeg-installer/ffmpeg is not installed',
  ];
  throw new MinerError(`no working ffmpeg found (${tried.join('; ')})`, {
    hint: 'install ffmpeg 5.1 or newer (`apt-get install ffmpeg`), or set FFMPEG_PATH; `npm ci` restores the bundled 2018 build',
  });
}
