/**
 * tasks/eval.ts end to end: synthetic labelled clips rendered by the real ffmpeg, the bundled model on
 * onnxruntime, label files in both formats, the report, tuning, and a real miner (server/app.ts) whose
 * /challenge answers must equal eval's own predictions for the same clips.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROJECT_ROOT } from '../lib/core/config.ts';
import { serveFiles } from '../lib/core/fileserver.ts';
import { parseManifest } from '../lib/inference/manifest.ts';
import type { RunningMiner } from '../server/app.ts';
import { main } from '../tasks/eval.ts';
import { clip, tempDir } from './support/media.ts';
import { startLocalMiner } from './support/miner.ts';

// Clip a (25 fps, 8 s): a white flash on frames 50-52 and a cut to black on 125-127, which the bundled model
// reports as goal@50 and ball_out_of_play@125. Clip b (6 s): a white flash on frames 100-102 -> goal@100.
const A_TRUTH = [
  { frame: 50, action: 'goal' },
  { frame: 125, action: 'ball_out_of_play' },
];
const B_TRUTH = [{ frame: 100, action: 'goal' }];
// The same, plus a shot at frame 150 that the model (no shot class) always misses. Clip a's score:
//   gt_weight = goal 10.9 + ball_out_of_play 2.9 + shot 4.7 = 18.5
//   matched   = 10.9 * 1 + 2.9 * 1 = 13.8 (both exact: decay 1), no false positive
//   score     = 13.8 / 18.5 = 0.745945945945946
const A_EXTRA_SCORE = 0.745945945945946;

const ENV = { DOTENV_DISABLE: '1', LOG_LEVEL: 'warn' };
let dirs: { perfect: string; extra: string; soccernet: string; bad: string; unlabelled: string; both: string };
let videos: { a: string; b: string };

async function runEval(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { env: ENV, out: (line) => out.push(line), err: (line) => err.push(line) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

interface EvalJson {
  ok: boolean;
  source: string;
  clips: Array<{
    name: string;
    format: string;
    score: number;
    predictions: Array<{ frame: number; action: string; confidence: number }>;
    truth: Array<{ frame: number; action: string }>;
    matched: number;
    missed: number;
    false_positives: number;
    mean_decay: number | null;
    processing_time_s: number;
    ignored_labels: number;
    actions: Record<
      string,
      {
        truth: number;
        predicted: number;
        matched: number;
        missed: number;
        false_positives: number;
        mean_decay: number | null;
        share: number;
      }
    >;
  }>;
  overall: {
    clips: number;
    mean_score: number;
    matched: number;
    missed: number;
    false_positives: number;
    mean_decay: number | null;
    actions: Record<string, unknown>;
  };
  tuning?: {
    folds: number;
    mean_score: { before: number; in_sample: number; out_of_sample: number | null };
    actions: Array<{ action: string; threshold: { before: number; after: number }; nms_window_s: { before: number; after: number } }>;
    written: string;
  };
  report?: string;
}

async function evalJson(argv: string[]): Promise<EvalJson> {
  const { code, out, err } = await runEval([...argv, '--json']);
  assert.equal(code, 0, err);
  return JSON.parse(out) as EvalJson;
}

async function folder(name: string, files: Record<string, string | object>): Promise<string> {
  const dir = path.join(tempDir, 'eval', name);
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    if (file.endsWith('.mp4')) await cp(content as string, path.join(dir, file));
    else await writeFile(path.join(dir, file), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

before(async () => {
  videos = {
    a: await clip('eval-a.mp4', {
      width: 320,
      height: 180,
      fps: 25,
      seconds: 8,
      markers: [
        { from: 50, to: 52, colour: 'white' },
        { from: 125, to: 127, colour: 'black' },
      ],
    }),
    b: await clip('eval-b.mp4', { width: 320, height: 180, fps: 25, seconds: 6, markers: [{ from: 100, to: 102, colour: 'white' }] }),
  };
  const clips = { 'a.mp4': videos.a, 'b.mp4': videos.b };
  dirs = {
    perfect: await folder('perfect', { ...clips, 'a.json': A_TRUTH, 'b.json': B_TRUTH }),
    extra: await folder('extra', { ...clips, 'a.json': [...A_TRUTH, { frame: 150, action: 'shot' }], 'b.json': B_TRUTH }),
    soccernet: await folder('soccernet', {
      ...clips,
      // position in ms: 2000 -> frame 50, 5000 -> 125, 6000 -> 150, 4000 -> 100; DRIVE maps to null (ignored).
      'a.Labels-v2.json': {
        UrlLocal: 'synthetic/a',
        annotations: [
          { gameTime: '1 - 00:01', label: 'DRIVE', position: '1000', team: 'home', visibility: 'visible' },
          { gameTime: '1 - 00:02', label: 'GOAL', position: '2000', team: 'home', visibility: 'visible' },
          { gameTime: '1 - 00:05', label: 'OUT', position: '5000', team: 'away', visibility: 'visible' },
          { gameTime: '1 - 00:06', label: 'SHOT', position: '6000', team: 'away', visibility: 'not shown' },
        ],
      },
      'b.Labels-ball.json': { annotations: [{ gameTime: '1 - 00:04', label: 'GOAL', position: '4000' }] },
      'map.json': { GOAL: 'goal', OUT: 'ball_out_of_play', SHOT: 'shot', DRIVE: null },
    }),
    bad: await folder('bad', {
      ...clips,
      'a.json': '[\n  {"frame": 50, "action": "goal"},\n  {"frame": 125, "action": "ball_out_of_pley"}\n]\n',
      'b.json': '[\n  {"frame": 100.5, "action": "goal"}\n]\n',
    }),
    unlabelled: await folder('unlabelled', { ...clips, 'a.json': A_TRUTH }),
    both: await folder('both', { ...clips, 'a.json': A_TRUTH, 'b.json': B_TRUTH, 'b.Labels-v2.json': { annotations: [] } }),
  };
});

describe('eval on the bundled model', () => {
  it('a perfect label file scores 1 on every clip', async () => {
    const result = await evalJson(['--clips', dirs.perfect]);
    assert.equal(result.ok, true);
    assert.equal(result.source, 'local');
    assert.deepEqual(
      result.clips.map((c) => [c.name, c.score, c.matched, c.missed, c.false_positives, c.mean_decay]),
      [
        ['a', 1, 2, 0, 0, 1],
        ['b', 1, 1, 0, 0, 1],
      ],
    );
    assert.deepEqual(
      result.clips[0].predictions.map((p) => `${p.action}@${p.frame}`),
      ['goal@50', 'ball_out_of_play@125'],
    );
    assert.equal(result.overall.mean_score, 1);
    assert.deepEqual([result.overall.matched, result.overall.missed, result.overall.false_positives], [3, 0, 0]);
  });

  it('an extra true event the model misses costs its weight in the denominator', async () => {
    const result = await evalJson(['--clips', dirs.extra]);
    const [a, b] = result.clips;
    assert.ok(Math.abs(a.score - A_EXTRA_SCORE) < 1e-12, String(a.score));
    assert.equal(b.score, 1);
    assert.ok(Math.abs(result.overall.mean_score - (A_EXTRA_SCORE + 1) / 2) < 1e-12);
    assert.deepEqual(a.actions.shot, { truth: 1, predicted: 0, matched: 0, missed: 1, false_positives: 0, mean_decay: null, share: 0 });
    assert.deepEqual([a.matched, a.missed, a.false_positives], [2, 1, 0]);
    assert.ok(Math.abs(a.actions.goal.share - 10.9 / 18.5) < 1e-12);
  });

  it('SoccerNet labels with a label map give the same numbers', async () => {
    const extra = await evalJson(['--clips', dirs.extra]);
    const soccernet = await evalJson(['--clips', dirs.soccernet, '--label-map', path.join(dirs.soccernet, 'map.json')]);
    assert.deepEqual(
      soccernet.clips.map((c) => c.format),
      ['soccernet', 'soccernet'],
    );
    assert.equal(soccernet.clips[0].ignored_labels, 1, 'DRIVE maps to null');
    assert.deepEqual(soccernet.clips[0].truth, [
      { frame: 50, action: 'goal' },
      { frame: 125, action: 'ball_out_of_play' },
      { frame: 150, action: 'shot' },
    ]);
    assert.ok(Math.abs(soccernet.clips[0].score - A_EXTRA_SCORE) < 1e-12);
    for (const [i, c] of soccernet.clips.entries()) {
      assert.equal(c.score, extra.clips[i].score);
      assert.deepEqual(c.actions, extra.clips[i].actions);
    }
    assert.equal(soccernet.overall.mean_score, extra.overall.mean_score);
  });

  it('prints per clip and overall: score, counts per action, mean decay, time; progress on stderr', async () => {
    const { code, out, err } = await runEval(['--clips', dirs.extra]);
    assert.equal(code, 0, err);
    assert.match(out, /^a {2}score 0\.7459 {2}time \d+\.\d\d s {2}matched 2 {2}missed 1 {2}fp 0 {2}mean decay 1\.000$/m);
    assert.match(out, /^ {2}shot\s+1\s+0\s+0\s+1\s+0\s+-\s+\+0\.000$/m);
    assert.match(out, /^overall {2}mean score 0\.8730 over 2 clips/m);
    assert.match(err, /^\[1\/2\] a: score 0\.7459/m);
    assert.match(err, /^\[2\/2\] b: score 1\.0000/m);
  });
});

describe('bad labels', () => {
  it('are named with file, line and JSON path, and nothing is evaluated (exit 1)', async () => {
    const { code, out, err } = await runEval(['--clips', dirs.bad]);
    assert.equal(code, 1);
    assert.equal(out, '');
    assert.match(
      err,
      new RegExp(
        `${path.join(dirs.bad, 'a.json').replace(/[.\\/]/g, '\\$&')}:3: \\[1\\]\\.action: "ball_out_of_pley" is not a Score action`,
      ),
    );
    assert.match(
      err,
      new RegExp(`${path.join(dirs.bad, 'b.json').replace(/[.\\/]/g, '\\$&')}:2: \\[0\\]\\.frame: 100\\.5 is not an integer`),
    );
    assert.match(err, /^error: 2 problems with the labels:/m);
  });

  it('a clip without labels, or with labels in two files, is refused', async () => {
    const unlabelled = await runEval(['--clips', dirs.unlabelled]);
    assert.equal(unlabelled.code, 1);
    assert.match(unlabelled.err, /b\.mp4: has no labels/);
    const both = await runEval(['--clips', dirs.both]);
    assert.equal(both.code, 1);
    assert.match(both.err, /b\.mp4: has 2 label files \(b\.json, b\.Labels-v2\.json\)/);
  });

  it('SoccerNet labels without --label-map are refused', async () => {
    const { code, err } = await runEval(['--clips', dirs.soccernet]);
    assert.equal(code, 1);
    assert.match(err, /a\.Labels-v2\.json:1: \(root\): SoccerNet labels need a label map/);
    assert.match(err, /map\.json: belongs to no clip/);
  });

  it('wrong command lines exit 2', async () => {
    assert.equal((await runEval([])).code, 2);
    assert.equal((await runEval(['--clips', dirs.perfect, '--tune', '--url', 'http://127.0.0.1:1'])).code, 2);
    assert.equal((await runEval(['--clips', dirs.perfect, '--folds', '2'])).code, 2);
    const folds = await runEval(['--clips', dirs.perfect, '--tune', '--folds', '3']);
    assert.equal(folds.code, 2);
    assert.match(folds.err, /--folds 3 is more than the 2 clips/);
  });
});

describe('output', () => {
  it('--report writes one self-contained index.html with the per-action chart', async () => {
    const reportDir = path.join(tempDir, 'eval-report');
    const result = await evalJson(['--clips', dirs.extra, '--report', reportDir]);
    assert.equal(result.report, path.join(reportDir, 'index.html'));
    const html = await readFile(path.join(reportDir, 'index.html'), 'utf8');
    assert.match(html, /^<!doctype html>/);
    const chart = /<svg id="per-action"[\s\S]*?<\/svg>/.exec(html)?.[0];
    assert.ok(chart, 'the per-action chart');
    for (const action of ['goal', 'ball_out_of_play', 'shot']) assert.match(chart, new RegExp(`data-action="${action}"`));
    assert.match(chart, /<title>shot missed: 1<\/title>/);
    assert.match(chart, /<title>goal matched: 2<\/title>/);
    assert.match(chart, /<title>ball_out_of_play false positives: 0<\/title>/);
    const scores = /<svg id="score-per-clip"[\s\S]*?<\/svg>/.exec(html)?.[0];
    assert.ok(scores, 'the score-per-clip chart');
    assert.match(scores, /<title>a: score 0\.7459<\/title>/);
    assert.match(scores, /<title>b: score 1\.0000<\/title>/);
    assert.match(html, /Mean validator score <strong>0\.8730<\/strong> over 2 clips/);
    // Self-contained: no script, no stylesheet or image fetched from anywhere.
    assert.doesNotMatch(html, /<script|<link|<img|src=|href=|@import|url\(/i);
  });

  it('--json has the documented shape', async () => {
    const result = await evalJson(['--clips', dirs.perfect]);
    assert.deepEqual(Object.keys(result).sort(), ['clips', 'clips_dir', 'describe', 'label_map', 'ok', 'overall', 'source']);
    assert.deepEqual(Object.keys(result.clips[0]).sort(), [
      'actions',
      'false_positives',
      'format',
      'ignored_labels',
      'labels',
      'matched',
      'mean_decay',
      'missed',
      'name',
      'predictions',
      'processing_time_s',
      'raw_score',
      'score',
      'truth',
      'video',
    ]);
    assert.deepEqual(Object.keys(result.clips[0].actions.goal).sort(), [
      'false_positives',
      'matched',
      'mean_decay',
      'missed',
      'predicted',
      'share',
      'truth',
    ]);
    assert.deepEqual(Object.keys(result.overall).sort(), [
      'actions',
      'clips',
      'false_positives',
      'matched',
      'mean_decay',
      'mean_score',
      'missed',
      'processing_time_s',
    ]);
    assert.ok(result.clips.every((c) => c.processing_time_s > 0));
  });
});

describe('--tune', () => {
  it('writes a valid model.json with the tuned postprocess block and reports in- and out-of-sample scores', async () => {
    const out = path.join(tempDir, 'eval-tuned', 'model.json');
    const result = await evalJson(['--clips', dirs.extra, '--tune', '--folds', '2', '--out', out]);
    const tuning = result.tuning!;
    assert.equal(tuning.folds, 2);
    assert.equal(tuning.written, out);
    // The model's values already find every goal and cut with no false positive, and no threshold makes a shot:
    // nothing can do better, so the values stay and every mean stays (13.8/18.5 + 1) / 2.
    const expected = (A_EXTRA_SCORE + 1) / 2;
    for (const value of [tuning.mean_score.before, tuning.mean_score.in_sample, tuning.mean_score.out_of_sample as number])
      assert.ok(Math.abs(value - expected) < 1e-12, String(value));
    assert.deepEqual(
      tuning.actions.map((a) => a.action),
      ['ball_out_of_play', 'goal'],
    );
    for (const a of tuning.actions) {
      assert.equal(a.threshold.after, a.threshold.before);
      assert.equal(a.nms_window_s.after, a.nms_window_s.before);
    }
    const written = JSON.parse(await readFile(out, 'utf8'));
    const manifest = parseManifest(written, out);
    assert.equal(manifest.postprocess.thresholds.goal, tuning.actions[1].threshold.after);
    assert.equal(manifest.postprocess.nmsWindowS.ball_out_of_play, tuning.actions[0].nms_window_s.after);
    assert.match(written.postprocess._tuned, /^tasks\/eval\.ts --tune on 2 clips, 2-fold/);
  });

  it('--write updates <model>/model.json in place, and text output shows before/after per action', async () => {
    const model = path.join(tempDir, 'eval-model');
    await cp(path.join(PROJECT_ROOT, 'models/default'), model, { recursive: true });
    const { code, out, err } = await runEval(['--clips', dirs.perfect, '--model', model, '--tune', '--folds', '2', '--write']);
    assert.equal(code, 0, err);
    assert.match(out, /^tuning on 2 clips, 2-fold cross-validation/m);
    assert.match(out, /^ {2}goal\s+0\.522 -> 0\.522\s+3 s -> 3 s\s+\+0\.895\s+\+0\.895\s+\+0\.895$/m);
    assert.match(out, /^ {2}mean score\s+1\.0000 \(model values\)\s+1\.0000\s+1\.0000$/m);
    const written = JSON.parse(await readFile(path.join(model, 'model.json'), 'utf8'));
    assert.match(written.postprocess._tuned, /^tasks\/eval\.ts --tune/);
    assert.ok(written.postprocess.thresholds.goal > 0.52 && written.postprocess.thresholds.goal < 0.53);
  });
});

describe('against a running miner', () => {
  let miner: RunningMiner;

  before(async () => {
    miner = await startLocalMiner({ DOWNLOAD_ALLOW_PRIVATE: 'true' }); // the clips are served on loopback
  });

  after(async () => {
    await miner?.close();
  });

  it("eval's predictions equal what /challenge answers for the same clips", async () => {
    const local = await evalJson(['--clips', dirs.extra]);
    const files = await serveFiles([videos.a, videos.b]);
    try {
      for (const [i, video] of [videos.a, videos.b].entries()) {
        const response = await fetch(`${miner.url}/challenge`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ challenge_id: `eval-${i}`, video_url: files.urlFor(video) }),
          signal: AbortSignal.timeout(120_000),
        });
        assert.equal(response.status, 200);
        const reply = (await response.json()) as { predictions: unknown[] };
        assert.deepEqual(reply.predictions, local.clips[i].predictions);
      }
    } finally {
      await files.close();
    }
  });

  it('--url evaluates the miner itself and gets the same scores', async () => {
    const local = await evalJson(['--clips', dirs.extra]);
    const remote = await evalJson(['--clips', dirs.extra, '--url', miner.url, '--scheme', 'none']);
    assert.equal(remote.source, 'url');
    for (const [i, c] of remote.clips.entries()) {
      assert.deepEqual(c.predictions, local.clips[i].predictions);
      assert.equal(c.score, local.clips[i].score);
      assert.ok(c.processing_time_s > 0, 'the miner reports its processing_time');
    }
    assert.ok(Math.abs(remote.overall.mean_score - (A_EXTRA_SCORE + 1) / 2) < 1e-12);
  });

  it('--url against nothing: each clip fails (score 0), exit 1', async () => {
    const { code, out, err } = await runEval([
      '--clips',
      dirs.perfect,
      '--url',
      'http://127.0.0.1:9',
      '--scheme',
      'none',
      '--timeout',
      '5',
    ]);
    assert.equal(code, 1);
    assert.match(out, /^a {2}score 0\.0000/m);
    assert.match(out, /error: cannot reach http:\/\/127\.0\.0\.1:9/);
    assert.match(err, /2 clip\(s\) failed: a, b/);
  });
});
