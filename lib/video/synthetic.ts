/**
 * Synthetic clips for tests, the demo and the benchmark (no soccer footage exists offline): ffmpeg's
 * testsrc2 pattern with full-frame white flashes / black cuts at known frames, so frame-index mapping can
 * be checked end to end.
 */
import { execa } from 'execa';
import { MinerError } from '../core/errors.ts';

export interface Marker {
  /** First and last source frame (inclusive) of the mark; a mark should last >= 2 frames. */
  from: number;
  to: number;
  colour: 'white' | 'black';
}

export interface ClipSpec {
  width: number;
  height: number;
  fps: number;
  seconds: number;
  markers?: Marker[];
}

/**
 * The demo's clip (`npm run demo`, and the deploy's rehearsal when the miner names none): 10 s 1280x720 at
 * 25 fps with a white flash at 3.0 s (the bundled model calls it a "goal") and a black cut at 7.0 s
 * ("ball_out_of_play"), so the bundled model answers with events, not an empty list.
 */
export const DEMO_CLIP: ClipSpec = {
  width: 1280,
  height: 720,
  fps: 25,
  seconds: 10,
  markers: [
    { from: 75, to: 77, colour: 'white' },
    { from: 175, to: 177, colour: 'black' },
  ],
};

/** The argv that renders `spec` to an H.264 mp4 at `output`. */
export function syntheticClipArgs(spec: ClipSpec, output: string): string[] {
  const boxes = (spec.markers ?? []).map(
    (m) => `drawbox=x=0:y=0:w=iw:h=ih:color=${m.colour}:t=fill:enable='between(n\\,${m.from}\\,${m.to})'`,
  );
  return [
    '-y',
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${spec.width}x${spec.height}:rate=${spec.fps}`,
    '-t',
    String(spec.seconds),
    ...(boxes.length ? ['-vf', boxes.join(',')] : []),
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-pix_fmt',
    'yuv420p',
    output,
  ];
}

export async function makeSyntheticClip(ffmpegPath: string, spec: ClipSpec, output: string): Promise<string> {
  const result = await execa(ffmpegPath, syntheticClipArgs(spec, output), { stdin: 'ignore', reject: false });
  if (result.failed) {
    const cause = result.stderr.trim() || result.originalMessage || result.shortMessage;
    throw new MinerError(`could not render a synthetic clip: ${cause}`, {
      hint: 'check that ffmpeg has libx264 (the bundled @ffmpeg-installer binary does)',
    });
  }
  return output;
}

/** Where a marker's first frame lands in Score's 25 fps frame indices. */
export function markerFrameAt25(marker: Marker, sourceFps: number): number {
  return Math.round((marker.from / sourceFps) * 25);
}
