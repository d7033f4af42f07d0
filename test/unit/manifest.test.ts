import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MinerError } from '../../lib/core/errors.ts';
import { defaultThreshold, loadManifest, parseManifest, postprocessOptionsFrom } from '../../lib/inference/manifest.ts';
import { checkSession, loadModel } from '../../lib/inference/model.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEFAULT_DIR = path.join(ROOT, 'models', 'default');
const DEFAULT_JSON = JSON.parse(fs.readFileSync(path.join(DEFAULT_DIR, 'model.json'), 'utf8')) as Record<string, any>;

function valid(): Record<string, any> {
  return structuredClone(DEFAULT_JSON);
}

function expectError(fn: () => unknown, ...parts: string[]): MinerError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof MinerError, `expected a MinerError, got ${String(caught)}`);
  for (const part of parts)
    assert.ok(caught.message.includes(part), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(part)}`);
  assert.ok(caught.hint && caught.hint.length > 0, 'a hint says what to do next');
  return caught;
}

const tmpDirs: string[] = [];
function tempModelDir(edit: (m: Record<string, any>) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'score-miner-manifest-'));
  tmpDirs.push(dir);
  fs.copyFileSync(path.join(DEFAULT_DIR, 'model.onnx'), path.join(dir, 'model.onnx'));
  const m = valid();
  edit(m);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(m));
  return dir;
}
after(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('parseManifest: valid', () => {
  it('parses the bundled manifest and fills defaults', () => {
    const m = parseManifest(valid(), 'model.json');
    assert.equal(m.name, 'default-flash-cut');
    assert.equal(m.input.channels, 3);
    assert.equal(m.input.layout, 'NCTHW');
    assert.equal(m.input.scale, 1 / 255);
    assert.deepEqual(m.timing, { fps: 25, clipFrames: 64, strideFrames: 48, marginFrames: 8 });
    assert.deepEqual(
      m.classes.map((c) => c.action),
      ['goal', 'ball_out_of_play'],
    );
    assert.equal(m.outputs.displacement, undefined);
    // thresholds = 1/(1+d), d = 1 - (0.5 / tol) * (1 - min_score)
    assert.equal(m.postprocess.thresholds.goal, 1 / (1 + (1 - (0.5 / 3) * 0.5))); // 0.5217...
    assert.equal(m.postprocess.thresholds.pass, 1 / 1.5);
    assert.equal(m.postprocess.thresholds.ball_out_of_play, 1 / (1 + 0.875));
    assert.equal(m.postprocess.nmsWindowS.goal, 3);
    assert.equal(m.postprocess.nmsWindowS.pass, 1);
    assert.equal(Object.keys(m.postprocess.thresholds).length, 15);
    for (const t of Object.values(m.postprocess.thresholds)) assert.ok(t >= 0.5 && t <= 1);
  });

  it('optional fields: defaults, overrides, displacement, background, comments', () => {
    const j = valid();
    delete j.input.scale;
    delete j.input.mean;
    delete j.input.std;
    delete j.input.resize;
    delete j.timing.marginFrames;
    delete j.description;
    delete j.postprocess;
    j._comment = 'ignored';
    j.input.colour = 'gray';
    j.outputs.displacement = { name: 'displ' };
    j.outputs.scores.backgroundIndex = 0;
    j.classes = [{ name: 'bg', action: null }, ...j.classes];
    let m = parseManifest(j, 'x');
    assert.equal(m.input.channels, 1);
    assert.deepEqual([m.input.scale, m.input.mean, m.input.std, m.input.resize], [1, [0], [1], 'bicubic']);
    assert.equal(m.timing.marginFrames, 0);
    assert.equal(m.description, '');
    assert.deepEqual(m.outputs.displacement, { name: 'displ' });
    assert.equal(m.outputs.scores.backgroundIndex, 0);
    assert.deepEqual(postprocessOptionsFrom(m).classes, [null, 'goal', 'ball_out_of_play']);

    j.postprocess = { thresholds: { goal: 0.8 }, nmsWindowS: { pass: 0.5 }, expectedErrorS: 0 };
    m = parseManifest(j, 'x');
    assert.equal(m.postprocess.thresholds.goal, 0.8);
    assert.equal(m.postprocess.thresholds.pass, 0.5); // expected error 0 -> decay 1 -> 1/2
    assert.equal(m.postprocess.nmsWindowS.pass, 0.5);
    assert.equal(m.postprocess.nmsWindowS.goal, 3);
  });

  it('defaultThreshold never goes below 0.5 and is 1 when the expected error reaches the tolerance', () => {
    assert.equal(defaultThreshold('pass', 0), 0.5);
    assert.equal(defaultThreshold('pass', 1), 1);
    assert.equal(defaultThreshold('goal', 10), 1);
  });
});

describe('parseManifest: each invalid field is named with its value', () => {
  const cases: Array<[string, (m: Record<string, any>) => void, string[]]> = [
    [
      'root not an object',
      (m) => {
        for (const k of Object.keys(m)) delete m[k];
      },
      ['name missing'],
    ],
    ['unknown top-level field', (m) => (m.postProcess = {}), ['postProcess is not a known field']],
    ['unknown nested field', (m) => (m.input.heigth = 36), ['input.heigth is not a known field']],
    ['empty name', (m) => (m.name = ''), ['name ""', 'non-empty string']],
    ['version missing', (m) => delete m.version, ['version missing']],
    ['input missing', (m) => delete m.input, ['input missing', 'an object']],
    ['input.name a number', (m) => (m.input.name = 3), ['input.name 3']],
    ['input.dtype', (m) => (m.input.dtype = 'float16'), ['input.dtype "float16"', '"float32", "uint8"']],
    ['input.layout', (m) => (m.input.layout = 'NHWC'), ['input.layout "NHWC"', '"NTHWC", "NCTHW", "NTCHW"']],
    ['input.height 0', (m) => (m.input.height = 0), ['input.height 0', 'an integer from 1']],
    ['input.width fractional', (m) => (m.input.width = 63.5), ['input.width 63.5']],
    ['input.colour', (m) => (m.input.colour = 'bgr'), ['input.colour "bgr"', '"rgb", "gray"']],
    ['input.resize', (m) => (m.input.resize = 'cubic'), ['input.resize "cubic"', '"bicubic"']],
    ['input.scale negative', (m) => (m.input.scale = -1), ['input.scale -1']],
    ['input.mean wrong length', (m) => (m.input.mean = [0, 0]), ['input.mean [0,0]', 'an array of 3 numbers']],
    ['input.std zero', (m) => (m.input.std = [1, 0, 1]), ['input.std[1] 0', 'greater than 0']],
    ['uint8 with a scale', (m) => (m.input.dtype = 'uint8'), ['input.scale 0.00392156862745098', 'uint8']],
    ['timing.fps 0', (m) => (m.timing.fps = 0), ['timing.fps 0', 'greater than 0']],
    ['timing.fps a string', (m) => (m.timing.fps = '25'), ['timing.fps "25"']],
    ['timing.clipFrames 0', (m) => (m.timing.clipFrames = 0), ['timing.clipFrames 0']],
    ['timing.strideFrames > clipFrames', (m) => (m.timing.strideFrames = 65), ['timing.strideFrames 65', 'from 1 to 64']],
    ['timing.marginFrames > overlap / 2', (m) => (m.timing.marginFrames = 9), ['timing.marginFrames 9', 'from 0 to 8']],
    ['outputs.scores.name missing', (m) => delete m.outputs.scores.name, ['outputs.scores.name missing']],
    [
      'outputs.scores.activation',
      (m) => (m.outputs.scores.activation = 'relu'),
      ['outputs.scores.activation "relu"', '"sigmoid", "softmax", "none"'],
    ],
    [
      'outputs.scores.backgroundIndex out of range',
      (m) => (m.outputs.scores.backgroundIndex = 5),
      ['outputs.scores.backgroundIndex 5', 'from 0 to 1'],
    ],
    ['background class mapped', (m) => (m.outputs.scores.backgroundIndex = 0), ['classes[0].action "goal"', 'null']],
    ['displacement same as scores', (m) => (m.outputs.displacement = { name: 'scores' }), ['outputs.displacement.name "scores"']],
    ['classes empty', (m) => (m.classes = []), ['classes []', 'non-empty array']],
    ['classes[1].action unknown', (m) => (m.classes[1].action = 'penalty'), ['classes[1].action "penalty"', 'ball_out_of_play']],
    ['classes[1].name duplicate', (m) => (m.classes[1].name = 'bright_flash'), ['classes[1].name "bright_flash"']],
    [
      'no class mapped',
      (m) => {
        for (const c of m.classes) c.action = null;
      },
      ['classes [null,null]', 'at least one class mapped'],
    ],
    [
      'postprocess.thresholds.goal > 1',
      (m) => (m.postprocess.thresholds = { goal: 1.5 }),
      ['postprocess.thresholds.goal 1.5', 'from 0 to 1'],
    ],
    [
      'postprocess.thresholds unknown action',
      (m) => (m.postprocess.thresholds = { penalty: 0.6 }),
      ['postprocess.thresholds.penalty "penalty"', 'a Score action name'],
    ],
    ['postprocess.nmsWindowS negative', (m) => (m.postprocess.nmsWindowS = { pass: -1 }), ['postprocess.nmsWindowS.pass -1']],
    ['postprocess.expectedErrorS', (m) => (m.postprocess.expectedErrorS = 'half'), ['postprocess.expectedErrorS "half"']],
  ];
  for (const [title, edit, parts] of cases) {
    it(title, () => {
      const j = valid();
      edit(j);
      expectError(() => parseManifest(j, '/models/x/model.json'), '/models/x/model.json', ...parts);
    });
  }
  it('not an object at all', () => {
    expectError(() => parseManifest(null, 'm.json'), 'm.json', 'null is not valid', 'an object');
    expectError(() => parseManifest([1], 'm.json'), '[1] is not valid');
  });
});

describe('loadManifest', () => {
  it('loads the bundled folder', () => {
    assert.equal(loadManifest(DEFAULT_DIR).name, 'default-flash-cut');
  });
  it('missing folder, missing model.json, invalid JSON', () => {
    expectError(() => loadManifest('/nonexistent/model-dir'), '/nonexistent/model-dir does not exist');
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'score-miner-empty-'));
    tmpDirs.push(empty);
    expectError(() => loadManifest(empty), 'has no readable model.json');
    fs.writeFileSync(path.join(empty, 'model.json'), '{"name": ');
    expectError(() => loadManifest(empty), 'model.json is not valid JSON');
  });
});

describe('manifest against the real session', () => {
  const refused: Array<[string, (m: Record<string, any>) => void, string[]]> = [
    ['input name wrong', (m) => (m.input.name = 'images'), ['input.name "images" is not an input of the model', 'inputs: "frames"']],
    [
      'scores output missing',
      (m) => (m.outputs.scores.name = 'logits'),
      ['outputs.scores.name "logits" is not an output of the model', 'outputs: "scores"'],
    ],
    [
      'displacement output missing',
      (m) => (m.outputs.displacement = { name: 'displ' }),
      ['outputs.displacement.name "displ" is not an output'],
    ],
    [
      'layout mismatch',
      (m) => (m.input.layout = 'NTHWC'),
      ['input "frames" has shape [1, 3, 64, 36, 64]: dim 1 is 3, the manifest implies 64', 'layout NTHWC'],
    ],
    ['size mismatch', (m) => (m.input.width = 32), ['dim 4 is 64, the manifest implies 32']],
    [
      'gray vs rgb',
      (m) => {
        m.input.colour = 'gray';
        delete m.input.mean;
        delete m.input.std;
      },
      ['dim 1 is 3, the manifest implies 1'],
    ],
    [
      'dtype mismatch',
      (m) => Object.assign(m.input, { dtype: 'uint8', scale: 1, mean: [0, 0, 0] }),
      ['element type float32, the manifest says input.dtype uint8'],
    ],
    [
      'clip length mismatch',
      (m) => Object.assign(m.timing, { clipFrames: 32, strideFrames: 24, marginFrames: 4 }),
      ['dim 2 is 64, the manifest implies 32', 'output "scores" has shape [1, 64, 2]: dim 1 is 64'],
    ],
    [
      'class count mismatch',
      (m) => m.classes.push({ name: 'extra', action: 'shot' }),
      ['output "scores" has shape [1, 64, 2]: dim 2 is 2, the manifest implies 3'],
    ],
  ];
  for (const [title, edit, parts] of refused) {
    it(`refuses: ${title}`, async () => {
      const dir = tempModelDir(edit);
      await assert.rejects(loadModel(dir, { providers: ['cpu'], threads: 1 }), (error: unknown) => {
        assert.ok(error instanceof MinerError, String(error));
        assert.ok(error.message.includes(`${dir}/model.json does not match model.onnx`), error.message);
        for (const part of parts)
          assert.ok(error.message.includes(part), `message ${JSON.stringify(error.message)} lacks ${JSON.stringify(part)}`);
        return true;
      });
    });
  }

  it('accepts the unedited copy, and symbolic dims / undeclared shapes are not refused', async () => {
    const model = await loadModel(
      tempModelDir(() => {}),
      { providers: ['cpu'], threads: 1 },
    );
    assert.equal(model.manifest.name, 'default-flash-cut');
    await model.release();
    const m = parseManifest(valid(), 'm.json');
    const meta = (shape: Array<number | string>) => ({ name: 'frames', isTensor: true as const, type: 'float32' as const, shape });
    checkSession(
      m,
      {
        inputNames: ['frames'],
        outputNames: ['scores'],
        inputMetadata: [meta(['batch', 3, 'T', 36, 64])],
        outputMetadata: [{ ...meta([]), name: 'scores' }],
      },
      'm.json',
    );
    checkSession(m, { inputNames: ['frames'], outputNames: ['scores'] }, 'm.json');
    expectError(
      () => checkSession(m, { inputNames: ['frames', 'mask'], outputNames: ['scores'] }, 'm.json'),
      'inputs the miner does not feed: "mask"',
    );
    expectError(
      () => checkSession(m, { inputNames: ['frames'], outputNames: ['scores'], inputMetadata: [meta([1, 3, 64, 36])] }, 'm.json'),
      'expected 5 dims',
    );
  });
});
