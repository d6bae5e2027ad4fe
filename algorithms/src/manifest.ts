/**
 * The algorithm manifest: what a package declares about its model, so that the
 * centre can validate it (适配纳管), schedule it onto nodes that can run it, and
 * the edge can pre- and post-process frames without knowing the model family.
 */
import { CitysenseError } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** `schema` value of manifests this code reads. */
export const MANIFEST_SCHEMA = 'citysense.algorithm/v1';

const Id = Type.String({
  pattern: '^[a-z0-9][a-z0-9._-]{1,63}$',
  description: 'algorithm id, e.g. yolox-nano',
});
const SemVer = Type.String({
  pattern: '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(-[0-9A-Za-z.-]+)?$',
  description: 'semantic version',
});
/** Path of a part inside the package: relative, no `..`, no leading slash. */
const PartPath = Type.String({ pattern: '^(?!/)(?!.*(^|/)\\.\\.(/|$))[A-Za-z0-9._/-]{1,200}$' });
const Box = Type.Tuple([Type.Number(), Type.Number(), Type.Number(), Type.Number()], {
  description: '[x1, y1, x2, y2] in source-image pixels',
});

/** How frames become the model's input tensor. */
export const ModelInputSchema = Type.Object({
  name: Type.String({ minLength: 1, description: 'graph input name' }),
  shape: Type.Array(Type.Integer({ minimum: 1 }), {
    minItems: 4,
    maxItems: 4,
    description: 'e.g. [1, 3, 416, 416]',
  }),
  layout: Type.Union([Type.Literal('NCHW'), Type.Literal('NHWC')]),
  colorOrder: Type.Union([Type.Literal('RGB'), Type.Literal('BGR')]),
  /** Pixel p (0–255) becomes (p * scale - mean[c]) / std[c]. */
  scale: Type.Number({ default: 1 }),
  mean: Type.Tuple([Type.Number(), Type.Number(), Type.Number()], { default: [0, 0, 0] }),
  std: Type.Tuple([Type.Number(), Type.Number(), Type.Number()], { default: [1, 1, 1] }),
  resize: Type.Union([Type.Literal('letterbox'), Type.Literal('stretch')], { default: 'letterbox' }),
  /** Where a letterboxed image sits: YOLOX pads right/bottom, YOLOv5/v8 pad both sides. */
  letterboxAlign: Type.Union([Type.Literal('top-left'), Type.Literal('center')], { default: 'top-left' }),
  padValue: Type.Integer({ minimum: 0, maximum: 255, default: 114 }),
});
/** The `input` section. */
export type ModelInput = Static<typeof ModelInputSchema>;

/** Output decoders this runtime knows. */
export const DECODERS = ['yolox', 'yolov8', 'softmax'] as const;
/** One of `DECODERS`. */
export type DecoderName = (typeof DECODERS)[number];

/** How the graph's output becomes objects. */
export const ModelOutputSchema = Type.Object({
  name: Type.String({ minLength: 1, description: 'graph output name' }),
  /**
   * `yolox`: [1, N, 5 + C] anchor-free grid (strides), objectness × class score;
   * `yolov8`: [1, 4 + C, N] boxes already in input pixels (cx, cy, w, h), no objectness;
   * `softmax`: [1, C] class scores (classification).
   */
  decoder: Type.Union(DECODERS.map((d) => Type.Literal(d))),
  strides: Type.Optional(
    Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, description: 'yolox: e.g. [8, 16, 32]' }),
  ),
  shape: Type.Optional(
    Type.Array(Type.Integer({ minimum: 1 }), {
      description: 'expected output shape, checked against the graph',
    }),
  ),
});
/** The `output` section. */
export type ModelOutput = Static<typeof ModelOutputSchema>;

/** What a test image must produce for the package to pass validation. */
export const ExpectationSchema = Type.Object({
  label: Type.String({ minLength: 1 }),
  minCount: Type.Integer({ minimum: 0, default: 1 }),
  maxCount: Type.Optional(Type.Integer({ minimum: 0 })),
  /** When set, one detection of `label` must overlap this box by at least `minIou`. */
  box: Type.Optional(Box),
  minIou: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
});
/** One expectation of a test image. */
export type Expectation = Static<typeof ExpectationSchema>;

/** The manifest as authored (before `algo pack` adds the part digests). */
export const ManifestSourceSchema = Type.Object(
  {
    schema: Type.Literal(MANIFEST_SCHEMA),
    id: Id,
    version: SemVer,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.String({ maxLength: 4000, default: '' }),
    task: Type.Union([Type.Literal('detection'), Type.Literal('classification')]),
    model: PartPath,
    labels: PartPath,
    input: ModelInputSchema,
    output: ModelOutputSchema,
    thresholds: Type.Object(
      {
        score: Type.Number({ minimum: 0, maximum: 1, default: 0.3 }),
        iou: Type.Number({ minimum: 0, maximum: 1, default: 0.45 }),
        maxDetections: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
      },
      { default: {} },
    ),
    requirements: Type.Object(
      {
        /** Oldest ONNX Runtime that can run the graph. */
        onnxruntime: Type.String({ pattern: '^\\d+\\.\\d+(\\.\\d+)?$', default: '1.16' }),
        minMemoryMiB: Type.Integer({ minimum: 1, default: 256 }),
        minCpuCores: Type.Integer({ minimum: 1, default: 1 }),
        executionProviders: Type.Array(Type.String(), { default: ['cpu'] }),
      },
      { default: {} },
    ),
    licence: Type.Object({
      spdx: Type.String({ minLength: 1, description: 'SPDX id, e.g. Apache-2.0' }),
      file: Type.Optional(PartPath),
    }),
    provenance: Type.Object({
      source: Type.String({ minLength: 1, description: 'where the weights come from' }),
      author: Type.Optional(Type.String()),
      trainedOn: Type.Optional(Type.String()),
      notes: Type.Optional(Type.String()),
    }),
    tests: Type.Array(Type.Object({ image: PartPath, expect: Type.Array(ExpectationSchema) }), {
      default: [],
      description: 'test images and what each must produce (the adaptation test)',
    }),
  },
  { additionalProperties: false },
);
/** The authored manifest. */
export type ManifestSource = Static<typeof ManifestSourceSchema>;

/** A part's digest and size, recorded by `algo pack`. */
export const PartDigestSchema = Type.Object({
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  bytes: Type.Integer({ minimum: 0 }),
});

/** The manifest inside a package: the source plus every part's digest. */
export const ManifestSchema = Type.Composite([
  ManifestSourceSchema,
  Type.Object({ parts: Type.Record(PartPath, PartDigestSchema) }),
]);
/** A packed manifest. */
export type Manifest = Static<typeof ManifestSchema>;

/** Validates an authored manifest (defaults filled in); throws CS_ERR_ALGO_MANIFEST with every problem. */
export function parseManifestSource(doc: unknown): ManifestSource {
  return check(ManifestSourceSchema, doc);
}

/** Validates a packed manifest; throws CS_ERR_ALGO_MANIFEST with every problem. */
export function parseManifest(doc: unknown): Manifest {
  const manifest = check(ManifestSchema, doc);
  for (const path of referencedParts(manifest))
    if (!manifest.parts[path])
      throw new CitysenseError(
        'CS_ERR_ALGO_MANIFEST',
        `manifest names part ${path} but lists no digest for it`,
        400,
      );
  return manifest;
}

/** Every part the manifest refers to: model, labels, licence, test images. */
export function referencedParts(m: ManifestSource): string[] {
  const parts = [
    m.model,
    m.labels,
    ...(m.licence.file ? [m.licence.file] : []),
    ...m.tests.map((t) => t.image),
  ];
  return [...new Set(parts)];
}

function check<S extends typeof ManifestSourceSchema | typeof ManifestSchema>(
  schema: S,
  doc: unknown,
): Static<S> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new CitysenseError('CS_ERR_ALGO_MANIFEST', 'manifest must be a JSON object', 400);
  const withDefaults = Value.Default(schema, structuredClone(doc));
  const problems = [...Value.Errors(schema, withDefaults)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length > 0)
    throw new CitysenseError(
      'CS_ERR_ALGO_MANIFEST',
      `invalid manifest: ${problems.slice(0, 20).join('; ')}`,
      400,
      {
        problems,
      },
    );
  const m = withDefaults as Static<S>;
  const semantic = semanticProblems(m);
  if (semantic.length > 0)
    throw new CitysenseError('CS_ERR_ALGO_MANIFEST', `invalid manifest: ${semantic.join('; ')}`, 400, {
      problems: semantic,
    });
  return m;
}

/** Rules JSON Schema cannot say. */
function semanticProblems(m: ManifestSource): string[] {
  const problems: string[] = [];
  const channels = m.input.layout === 'NCHW' ? m.input.shape[1] : m.input.shape[3];
  if (channels !== 3)
    problems.push(`/input/shape: ${m.input.layout} input needs 3 channels, got ${channels}`);
  if (m.task === 'detection' && m.output.decoder === 'softmax')
    problems.push('/output/decoder: softmax is a classification decoder; detection needs yolox or yolov8');
  if (m.task === 'classification' && m.output.decoder !== 'softmax')
    problems.push(`/output/decoder: classification needs softmax, got ${m.output.decoder}`);
  if (m.output.decoder === 'yolox' && !m.output.strides)
    problems.push('/output/strides: the yolox decoder needs the grid strides, e.g. [8, 16, 32]');
  if (m.input.std.some((s) => s === 0)) problems.push('/input/std: must not be 0');
  return problems;
}
