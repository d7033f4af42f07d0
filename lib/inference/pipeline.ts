/**
 * The compute side of one challenge: each clip window goes through the model, overlapping windows are averaged
 * per frame, and after every window the predictions over the frames covered so far are ready. So a challenge
 * cut at its deadline answers with exactly what was inferred, and a complete one with the last snapshot.
 * Runs in the inference worker (the model blocks its thread); pure orchestration over model.ts and postprocess.ts.
 */
import type { ClipWindow, DecodeSpec } from '../video/frames.ts';
import { type ModelManifest, postprocessOptionsFrom } from './manifest.ts';
import type { Model } from './model.ts';
import { type Prediction, postprocess, WindowAccumulator } from './postprocess.ts';

export interface Snapshot {
  /** Score predictions over the frames covered so far (25 fps frame indices). */
  predictions: Prediction[];
  /** Model-rate frames covered by the windows inferred so far. */
  frames: number;
  windows: number;
  /** Milliseconds spent inside the model. */
  inferMs: number;
}

/** How a model wants its frames decoded (model.json input and timing). */
export function decodeSpecOf(manifest: ModelManifest): DecodeSpec {
  return {
    fps: manifest.timing.fps,
    width: manifest.input.width,
    height: manifest.input.height,
    colour: manifest.input.colour,
    resize: manifest.input.resize,
    clipFrames: manifest.timing.clipFrames,
    strideFrames: manifest.timing.strideFrames,
  };
}

export const EMPTY_SNAPSHOT: Snapshot = { predictions: [], frames: 0, windows: 0, inferMs: 0 };

export class ClipScorer {
  private readonly model: Model;
  private readonly scores: WindowAccumulator;
  private readonly displacement: WindowAccumulator | undefined;
  private windows = 0;
  private inferMs = 0;

  constructor(model: Model) {
    const { manifest } = model;
    const margins = { marginFrames: manifest.timing.marginFrames };
    this.model = model;
    this.scores = new WindowAccumulator(manifest.classes.length, margins);
    this.displacement = manifest.outputs.displacement ? new WindowAccumulator(1, margins) : undefined;
  }

  /** Infers one window (its frames are read, never kept) and returns the predictions so far. */
  async add(window: Pick<ClipWindow, 'startFrame' | 'frames' | 'validFrames'>): Promise<Snapshot> {
    const t0 = performance.now();
    const output = await this.model.inferClip(window.frames);
    this.inferMs += performance.now() - t0;
    this.scores.add(window.startFrame, output.scores, window.validFrames);
    if (this.displacement && output.displacement) this.displacement.add(window.startFrame, output.displacement, window.validFrames);
    this.windows++;
    return this.snapshot();
  }

  snapshot(): Snapshot {
    const frames = this.scores.numFrames;
    const predictions = postprocess(this.scores.result(), frames, {
      ...postprocessOptionsFrom(this.model.manifest),
      displacement: this.displacement?.result(),
    });
    return { predictions, frames, windows: this.windows, inferMs: Math.round(this.inferMs) };
  }

  /** The averaged per-frame scores (frames x classes) and displacement snapshot() post-processes (tasks/eval.ts --tune). */
  raw(): { scores: Float32Array; frames: number; displacement?: Float32Array } {
    return { scores: this.scores.result(), frames: this.scores.numFrames, displacement: this.displacement?.result() };
  }
}
