/**
 * One challenge's compute: decode the downloaded file into clip windows, run the model on each, average the
 * overlapping windows per frame, and post-process into Score predictions (25 fps frame indices).
 * Runs inside the inference worker; pure orchestration over frames.ts, model.ts and postprocess.ts.
 */

import { decodeClips } from './frames.ts';
import { postprocessOptionsFrom } from './manifest.ts';
import type { Model } from './model.ts';
import { type Prediction, postprocess, WindowAccumulator } from './postprocess.ts';

export interface PipelineStats {
  /** Frames decoded at the model's rate. */
  frames: number;
  clips: number;
  /** Milliseconds spent inside the model (the rest is decode and post-processing). */
  inferMs: number;
  totalMs: number;
}

export async function runPipeline(
  videoPath: string,
  model: Model,
  ffmpegPath: string,
): Promise<{ predictions: Prediction[]; stats: PipelineStats }> {
  const started = performance.now();
  const { manifest } = model;
  const numClasses = manifest.classes.length;
  const margins = { marginFrames: manifest.timing.marginFrames };
  const scores = new WindowAccumulator(numClasses, margins);
  const displacement = manifest.outputs.displacement ? new WindowAccumulator(1, margins) : undefined;
  let clips = 0;
  let inferMs = 0;
  for await (const clip of decodeClips(videoPath, ffmpegPath, {
    fps: manifest.timing.fps,
    width: manifest.input.width,
    height: manifest.input.height,
    colour: manifest.input.colour,
    resize: manifest.input.resize,
    clipFrames: manifest.timing.clipFrames,
    strideFrames: manifest.timing.strideFrames,
  })) {
    const t0 = performance.now();
    const output = await model.inferClip(clip.frames);
    inferMs += performance.now() - t0;
    scores.add(clip.startFrame, output.scores, clip.validFrames);
    if (displacement && output.displacement) displacement.add(clip.startFrame, output.displacement, clip.validFrames);
    clips++;
  }
  const frames = scores.numFrames;
  const predictions = postprocess(scores.result(), frames, { ...postprocessOptionsFrom(manifest), displacement: displacement?.result() });
  return { predictions, stats: { frames, clips, inferMs: Math.round(inferMs), totalMs: Math.round(performance.now() - started) } };
}
