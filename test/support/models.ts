/** Model folders the image tests bake in: the bundled model made non-deterministic, as a broken miner's would be. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { buildDefaultOnnx, manifestText } from '../../scripts/build-model.ts';

const { onnx } = onnxProto;

/** The bundled model plus uniform noise in [0, 10) on every logit: false events, different on every run. */
export function writeNoisyModel(dir: string): void {
  const model = onnx.ModelProto.decode(buildDefaultOnnx());
  const graph = model.graph!;
  const last = graph.node!.find((node) => node.output?.[0] === 'scores')!;
  last.output = ['clean_scores'];
  last.name = 'clean_scores';
  const float = (name: string, f: number) => ({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f });
  graph.node!.push(
    {
      opType: 'RandomUniformLike',
      input: ['clean_scores'],
      output: ['noise'],
      name: 'noise',
      attribute: [float('low', 0), float('high', 10)],
    },
    { opType: 'Add', input: ['clean_scores', 'noise'], output: ['scores'], name: 'scores' },
  );
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  writeFileSync(path.join(dir, 'model.json'), manifestText());
}
