/**
 * scripts/build-tdeed-model.ts, the benchmark's model generator: both backbones build the same bytes every
 * time, cost what they claim, hold the operators that make them T-DEED-shaped, and load through the server's
 * own model loader (model.json checked against the session). No inference here: one clip of the realistic
 * backbone takes over a second and 1.5 GB, which is the benchmark's job.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { loadModel } from '../lib/inference/model.ts';
import { ACTIONS } from '../lib/protocol/actions.ts';
import { buildTdeedOnnx, TDEED_MODEL, writeTdeedModel } from '../scripts/build-tdeed-model.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SCRIPT = path.join(ROOT, 'scripts', 'build-tdeed-model.ts');
const { onnx } = onnxProto;

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function opCounts(bytes: Uint8Array): Map<string, number> {
  const counts = new Map<string, number>();
  for (const n of onnx.ModelProto.decode(bytes).graph?.node ?? []) counts.set(n.opType ?? '', (counts.get(n.opType ?? '') ?? 0) + 1);
  return counts;
}

function groupedConvs(bytes: Uint8Array): number {
  return (onnx.ModelProto.decode(bytes).graph?.node ?? []).filter(
    (n) => n.opType === 'Conv' && n.attribute?.some((a) => a.name === 'group' && Number(a.i) > 1),
  ).length;
}

describe('benchmark model generator', () => {
  it('dense: the same bytes every run, and the multiply-accumulates of its five strided 3x3 convolutions', () => {
    const a = buildTdeedOnnx('dense');
    const b = buildTdeedOnnx('dense');
    assert.deepEqual(Buffer.from(a.bytes), Buffer.from(b.bytes));
    // Worked out by hand: 224x398 halves (rounding up) five times; each layer costs out * in * 9 per output pixel.
    const layers = [
      [112, 199, 3, 24],
      [56, 100, 24, 48],
      [28, 50, 48, 96],
      [14, 25, 96, 192],
      [7, 13, 192, 384],
    ];
    const macs = layers.reduce((sum, [h, w, cin, cout]) => sum + h * w * cin * cout * 9, 0);
    assert.equal(a.macsPerFrame, macs);
    assert.equal(opCounts(a.bytes).get('Conv'), 5 + 3); // the backbone, the temporal conv and the two heads
    assert.equal(groupedConvs(a.bytes), 0);
  });

  it('regnety: the same bytes every run, RegNetY-200MF cost at 224x398, grouped convs, squeeze-excitation and gate-shift', () => {
    const a = buildTdeedOnnx('regnety');
    const b = buildTdeedOnnx('regnety');
    assert.deepEqual(Buffer.from(a.bytes), Buffer.from(b.bytes));
    // RegNetY-200MF is 0.20 GMAC at 224x224; 224x398 has 1.78x the pixels; the gate convolutions add a little.
    const published = 0.2e9 * (398 / 224);
    assert.ok(a.macsPerFrame > published * 0.95 && a.macsPerFrame < published * 1.2, `${a.macsPerFrame} MACs per frame`);
    const blocks = TDEED_MODEL.regnety.stages.reduce((n, s) => n + s.depth, 0);
    assert.equal(blocks, 13);
    assert.equal(groupedConvs(a.bytes), blocks); // one grouped 3x3 per block
    const ops = opCounts(a.bytes);
    assert.equal(ops.get('Sigmoid'), blocks); // squeeze-excitation
    assert.equal(ops.get('Pad'), 2 * blocks); // one frame forward and one back, per gate-shift
    assert.equal(ops.get('Tanh'), blocks + 1); // the gates, and the displacement head
    assert.notDeepEqual(Buffer.from(a.bytes), Buffer.from(buildTdeedOnnx('dense').bytes));
  });

  for (const backbone of ['regnety', 'dense'] as const) {
    it(`${backbone}: the written folder loads through the server's model loader with the T-DEED interface`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'score-miner-bench-model-'));
      dirs.push(dir);
      const written = writeTdeedModel(dir, backbone);
      assert.equal(written.bytes, fs.statSync(path.join(dir, 'model.onnx')).size);
      const model = await loadModel(dir, { threads: 1, providers: ['cpu'] });
      try {
        assert.equal(model.manifest.name, `tdeed-shaped-bench-${backbone}`);
        assert.equal(model.clipBytes, TDEED_MODEL.clipFrames * TDEED_MODEL.height * TDEED_MODEL.width * 3);
        assert.equal(model.manifest.timing.fps, 12.5);
        assert.equal(model.manifest.classes.length, 1 + Object.keys(ACTIONS).length);
        assert.ok(model.manifest.outputs.displacement);
        assert.match(model.manifest.description ?? '', new RegExp(`${((2 * written.macsPerFrame) / 1e9).toFixed(2)} GFLOP per frame`));
      } finally {
        await model.release();
      }
    });
  }

  it('refuses an unknown backbone and a folder inside the repository, with the usage, exit 2', () => {
    const unknown = spawnSync(process.execPath, [SCRIPT, '--backbone', 'resnet', os.tmpdir()], { encoding: 'utf8' });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /--backbone resnet: expected one of regnety, dense/);
    assert.match(unknown.stderr, /usage: node scripts\/build-tdeed-model.ts/);
    const inside = spawnSync(process.execPath, [SCRIPT, path.join(ROOT, 'models', 'bench')], { encoding: 'utf8' });
    assert.equal(inside.status, 2);
    assert.match(inside.stderr, /is inside the repository/);
    assert.equal(fs.existsSync(path.join(ROOT, 'models', 'bench')), false);
  });
});
