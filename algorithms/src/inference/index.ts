/** Edge inference: frames → tensors → ONNX Runtime → detections, as an algorithm manifest says. */
export * from './decoders.ts';
export * from './detector.ts';
export * from './expectations.ts';
export * from './labels.ts';
export * from './nms.ts';
export * from './preprocess.ts';
