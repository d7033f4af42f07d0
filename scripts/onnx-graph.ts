/**
 * The small ONNX protobuf builders both model generators use (scripts/build-model.ts for the bundled default,
 * scripts/build-tdeed-model.ts for the benchmark's): value types, initializers, attributes and nodes.
 */
import type { onnx as P } from 'onnx-proto';
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type { P };

/** ONNX 1.8; onnxruntime 1.30 reads IR 3..11. */
export const IR_VERSION = 7;
export const OPSET = 13;
export const FLOAT = onnx.TensorProto.DataType.FLOAT;

export function tensorType(elemType: number, dims: number[]): P.ITypeProto {
  return { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } };
}

export function int64s(name: string, values: number[]): P.ITensorProto {
  return { name, dataType: onnx.TensorProto.DataType.INT64, dims: [values.length], int64Data: values };
}

/** A float32 scalar initializer. */
export function float(name: string, value: number): P.ITensorProto {
  return { name, dataType: FLOAT, dims: [], floatData: [value] };
}

export function ints(name: string, values: number[]): P.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}

export function int(name: string, value: number): P.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

export function str(name: string, value: string): P.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) };
}

export function node(opType: string, inputs: string[], outputs: string[], attribute: P.IAttributeProto[] = []): P.INodeProto {
  return { opType, input: inputs, output: outputs, name: outputs[0], attribute };
}
